package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/partition"
)

// partitionCLI runs `auditpg partition <command> --schema schema args...`
// and fails the test on an error.
func partitionCLI(t *testing.T, schema, command string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, append([]string{"partition", command, "--schema", schema}, args...)...)
	if err != nil {
		t.Fatalf("partition %s %v: %v", command, args, err)
	}
	return out
}

// partitionErr runs the command and returns its error, failing the test
// when there is none or when it lacks one of wants.
func partitionErr(t *testing.T, wants []string, args ...string) error {
	t.Helper()
	_, err := runCLI(t, append([]string{"partition"}, args...)...)
	if err == nil {
		t.Fatalf("partition %v: no error, want one saying %q", args, wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("partition %v: error %q lacks %q", args, err, w)
		}
	}
	return err
}

func TestPartitionCommands(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	// A name that needs quoting, fixed so that the printed DDL can be checked.
	const schema = "cli partition"
	testdb.Exec(t, db, `CREATE SCHEMA "cli partition"`)
	t.Cleanup(func() { db.Exec(`DROP SCHEMA "cli partition" CASCADE`) })
	run := func(command string, args ...string) string {
		t.Helper()
		return partitionCLI(t, schema, command, append([]string{"--table", "audit_log"}, args...)...)
	}

	ddl := run("schema")
	if !strings.Contains(ddl, `CREATE TABLE IF NOT EXISTS "cli partition"."audit_log"`) || !strings.Contains(ddl, `PARTITION BY RANGE ("timestamp")`) {
		t.Errorf("schema printed:\n%s", ddl)
	}

	// A table that does not exist is refused unless --create-table is given.
	partitionErr(t, []string{`table "cli partition"."audit_log" does not exist`, "give --create-table", "audit_log schema"},
		"create", "--schema", schema, "--table", "audit_log")
	var r partition.Report
	if err := json.Unmarshal([]byte(run("create", "--create-table", "--interval", "monthly", "--premake", "2", "--json")), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Created) != 4 || r.Table != (partition.Table{Schema: schema, Name: "audit_log"}) { // default, current, 2 premade
		t.Errorf("create made %v in %v", r.Created, r.Table)
	}
	testdb.Exec(t, db, `INSERT INTO "cli partition".audit_log ("timestamp", action, status) VALUES ('2001-01-15', 'a', 's')`)
	if out := run("create", "--premake", "2"); !strings.Contains(out, "moved 1 rows out of the default partition") || !strings.Contains(out, "audit_log_p20010101") ||
		!strings.Contains(out, "audit_log_p20010201") { // the gap up to the current month, one partition
		t.Errorf("second create printed:\n%s", out)
	}
	out := run("list", "--exact")
	if !strings.Contains(out, "audit_log_p20010101  2001-01-01 00:00  2001-02-01 00:00  1") || !strings.Contains(out, "never analyzed") ||
		!strings.Contains(out, "partitioned on \"timestamp\": monthly") || strings.Contains(out, "gap:") {
		t.Errorf("list printed (the moved row's partition analyzed, no gap):\n%s", out)
	}
	if out := run("analyze"); strings.Contains(out, "gap") || !strings.Contains(out, "about 1 rows") {
		t.Errorf("analyze printed:\n%s", out)
	}
	if out := run("cleanup", "--retention", "365", "--dry-run"); !strings.Contains(out, "audit_log_p20010101 [2001-01-01T00:00:00Z, 2001-02-01T00:00:00Z) would be dropped (past the retention)") {
		t.Errorf("cleanup --dry-run printed:\n%s", out)
	}
	if out := run("cleanup", "--retention", "365", "--mode", "detach"); !strings.Contains(out, "audit_log_p20010101 [2001-01-01T00:00:00Z, 2001-02-01T00:00:00Z) detached") {
		t.Errorf("cleanup printed:\n%s", out)
	}
}

// TestPartitionFlags: each command takes only its own flags, and refuses a
// bad value naming the flag, the value and what it accepts.
func TestPartitionFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"list", "--premake", "7"}, []string{"unknown flag: --premake"}},
		{[]string{"list", "--retention", "3"}, []string{"unknown flag: --retention"}},
		{[]string{"list", "--interval", "fortnightly"}, []string{"unknown flag: --interval"}},
		{[]string{"analyze", "--interval", "daily"}, []string{"unknown flag: --interval"}},
		{[]string{"schema", "--lock-timeout", "1s"}, []string{"unknown flag: --lock-timeout"}},
		{[]string{"create", "--retention", "3"}, []string{"unknown flag: --retention"}},
		{[]string{"create", "--exact"}, []string{"unknown flag: --exact"}},
		{[]string{"convert", "--create-table"}, []string{"unknown flag: --create-table"}},
		{[]string{"list", "--table", ""}, []string{"--table must not be empty"}},
		{[]string{"schema", "--table", " "}, []string{"--table must not be empty"}},
		{[]string{"create", "--interval", "fortnightly"}, []string{`--interval "fortnightly"`, "want daily, weekly, monthly"}},
		{[]string{"create", "--premake", "-1"}, []string{"--premake must be 0", "got -1"}},
		{[]string{"create", "--interval", "daily", "--premake", "1000"}, []string{"--premake 1000", "at most 731 for daily partitions", "two years"}},
		{[]string{"create", "--lock-timeout", "-5s"}, []string{"--lock-timeout must be a positive duration", "got -5s"}},
		{[]string{"create", "--batch-size", "0"}, []string{"--batch-size must be between 1 and 1000000 rows, got 0"}},
		{[]string{"convert", "--column", ""}, []string{"--column must not be empty"}},
		{[]string{"convert", "--premake", "25"}, []string{"--premake 25: at most 24 for monthly partitions"}},
		{[]string{"cleanup"}, []string{"cleanup needs --retention DAYS", "or --future"}},
		{[]string{"cleanup", "--retention", "-3"}, []string{"--retention must be a number of days", "got -3"}},
		{[]string{"cleanup", "--future", "--mode", "detach"}, []string{"--mode and --archive-schema apply to --retention only"}},
		{[]string{"cleanup", "--retention", "3", "--premake", "2"}, []string{"--premake applies to --future only"}},
		{[]string{"cleanup", "--retention", "3", "--archive-schema", "old"}, []string{"--archive-schema applies to --mode archive only"}},
		{[]string{"cleanup", "--retention", "3", "--mode", "shred"}, []string{`--mode "shred"`, "want drop, detach or archive"}},
	} {
		err := partitionErr(t, tc.wants, tc.args...)
		for _, goName := range []string{"WithTable", "WithPremake", "WithInterval", "WithColumn", "AllowWrites"} {
			if strings.Contains(err.Error(), goName) {
				t.Errorf("partition %v: the error names the Go API: %v", tc.args, err)
			}
		}
	}
}

// TestPartitionCreateInterval: the interval comes from the table's
// partitions; another one is refused with an error that says which the
// table has; gaps left by a mix of intervals are filled by create, so that
// analyze and list report none; premake is bounded by the interval.
func TestPartitionCreateInterval(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	partitionCLI(t, schema, "create", "--create-table", "--interval", "daily", "--premake", "3")
	// Without --interval, the table's (daily) is kept: not the default monthly.
	var r partition.Report
	if err := json.Unmarshal([]byte(partitionCLI(t, schema, "create", "--premake", "6", "--json")), &r); err != nil {
		t.Fatal(err)
	}
	today := partition.Daily.Floor(time.Now())
	want := []string{}
	for i := 4; i <= 6; i++ {
		want = append(want, partition.PartitionName("audit_log", today.AddDate(0, 0, i)))
	}
	if fmt.Sprint(r.Created) != fmt.Sprint(want) {
		t.Errorf("create on a daily table without --interval made %v, want %v", r.Created, want)
	}
	partitionErr(t, []string{"--interval monthly", "has daily partitions", "leave out --interval", "cannot be changed"},
		"create", "--schema", schema, "--interval", "monthly")
	partitionErr(t, []string{"--premake 800", "at most 731 for daily partitions"}, "create", "--schema", schema, "--premake", "800")

	// A mix of intervals: a monthly partition attached by hand three months
	// ahead leaves a gap after the daily ones.
	table := partition.Table{Schema: schema, Name: "audit_log"}
	month := partition.Monthly.Floor(time.Now())
	later := partition.Monthly.Add(month, 3)
	testdb.Exec(t, db, fmt.Sprintf(`CREATE TABLE %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`, table.Sibling("later"), table,
		later.Format(time.RFC3339), partition.Monthly.Add(later, 1).Format(time.RFC3339)))
	if out := partitionCLI(t, schema, "analyze"); !strings.Contains(out, "1 gaps between partitions") || !strings.Contains(out, "run `auditpg partition create`, which fills them") {
		t.Errorf("analyze with a gap printed:\n%s", out)
	}
	// The table's interval is now the newest partition's, monthly: daily is refused.
	partitionErr(t, []string{"--interval daily", "has monthly partitions (the newest is later)"}, "create", "--schema", schema, "--interval", "daily")
	out := partitionCLI(t, schema, "create")
	var l partition.Listing
	if err := json.Unmarshal([]byte(partitionCLI(t, schema, "list", "--json")), &l); err != nil {
		t.Fatal(err)
	}
	if len(l.Gaps) != 0 || l.Interval != partition.Monthly {
		t.Errorf("after create (%s): gaps %v, interval %v; want none, monthly", out, l.Gaps, l.Interval)
	}
	var prev time.Time
	for _, p := range l.Partitions {
		if p.Default {
			continue
		}
		if !prev.IsZero() && !p.From.Equal(prev) {
			t.Errorf("%s starts at %v, the partition before ends at %v", p.Name, p.From, prev)
		}
		prev = p.To
	}
	if out := partitionCLI(t, schema, "analyze"); strings.Contains(out, "gap") {
		t.Errorf("analyze after create still reports a gap:\n%s", out)
	}
}

// TestPartitionCleanupFuture: a surplus of future partitions is listed by
// a dry run, then removed, but for the one holding a row, which is kept
// with a warning naming it and its row count.
func TestPartitionCleanupFuture(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	table := partition.Table{Schema: schema, Name: "audit_log"}
	partitionCLI(t, schema, "create", "--create-table", "--interval", "daily", "--premake", "30")
	// An old row: its partition is past the retention (the gap after it,
	// filled, is not: it ends today).
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ('2001-01-15', 'a', 's')`)
	partitionCLI(t, schema, "create", "--premake", "30")
	at := partition.Daily.Floor(time.Now()).AddDate(0, 0, 10).Add(time.Hour)
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ($1, 'a', 's')`, at)
	kept := partition.PartitionName("audit_log", partition.Daily.Floor(at))
	count := func() int {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pg_inherits WHERE inhparent = $1::regclass`, table.String()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	out := partitionCLI(t, schema, "cleanup", "--future", "--premake", "3", "--dry-run")
	if n := strings.Count(out, "would be dropped (empty, beyond premake)"); n != 26 || !strings.Contains(out, "warning: "+kept) || !strings.Contains(out, "holds 1 rows: kept") {
		t.Errorf("dry run listed %d partitions:\n%s", n, out)
	}
	if count() != before {
		t.Fatal("the dry run removed partitions")
	}
	// Both at once, the retention archiving: one report.
	archive := testdb.Schema(t, db)
	out = partitionCLI(t, schema, "cleanup", "--future", "--premake", "3", "--retention", "365", "--mode", "archive", "--archive-schema", archive, "--json")
	checkJSON(t, "partition-cleanup", out)
	var r partition.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Removed) != 27 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], kept) ||
		r.Removed[0].Reason != "retention" || r.Removed[0].Name != "audit_log_p20010115" || r.Removed[0].ArchivedAs == nil || r.Removed[1].Reason != "future" {
		t.Errorf("cleanup --future --retention: removed %d, warnings %q:\n%s", len(r.Removed), r.Warnings, out)
	}
	if n := count(); n != before-27 { // the default, the gap's, today, 3 ahead and the one with a row
		t.Errorf("%d partitions left, want %d", n, before-27)
	}
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table.String()).Scan(&rows); err != nil || rows != 1 {
		t.Errorf("rows after cleanup --future: %d, %v; want the one row", rows, err)
	}
}

// TestPartitionAnalyzeEstimates: never-analyzed partitions holding rows make
// the row count unknown, said as such with the ANALYZE to run, not "about 0
// rows"; the partitions create moves rows into are analyzed.
func TestPartitionAnalyzeEstimates(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	table := partition.Table{Schema: schema, Name: "audit_log"}
	partitionCLI(t, schema, "create", "--create-table")
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES (now(), 'a', 's'), (now(), 'b', 's')`)
	out := partitionCLI(t, schema, "analyze")
	if strings.Contains(out, "about 0 rows") || !strings.Contains(out, "row count unknown") ||
		!strings.Contains(out, fmt.Sprintf("run `ANALYZE %s`", table)) {
		t.Errorf("analyze with a never-analyzed partition holding rows printed:\n%s", out)
	}
	testdb.Exec(t, db, `ANALYZE `+table.String())
	if out := partitionCLI(t, schema, "analyze"); !strings.Contains(out, "about 2 rows") || strings.Contains(out, "ANALYZE") {
		t.Errorf("analyze after ANALYZE printed:\n%s", out)
	}

	// For the documented example: every list filled (but overlaps, which
	// attached partitions cannot have).
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ('2001-01-15', 'a', 's'), ('2003-01-15', 'a', 's')`)
	partitionCLI(t, schema, "create")
	testdb.Exec(t, db, `ALTER TABLE `+table.String()+` DETACH PARTITION `+table.Sibling("audit_log_p20010201").String()) // a gap, empty
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ('2003-01-16', 'c', 's')`)
	testdb.Exec(t, db, `CREATE TABLE `+table.Sibling("audit_log_p20020101").String()+` PARTITION OF `+table.String()+` FOR VALUES FROM ('2002-01-01') TO ('2002-02-01')`)
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ('2002-01-16', 'c', 's')`)
	testdb.Exec(t, db, `CREATE INDEX ON ONLY `+table.String()+` (status)`)
	out = partitionCLI(t, schema, "analyze", "--retention", "3650", "--json")
	checkJSON(t, "partition-analyze", out)
	var a partition.Analysis
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if len(a.NotAnalyzedWithRows) != 1 || len(a.Expired) == 0 || len(a.Gaps) == 0 || len(a.MissingIndexes) == 0 || a.Table.Schema != schema {
		t.Errorf("analyze --json: %s", out)
	}
	out = partitionCLI(t, schema, "list", "--exact", "--json")
	checkJSON(t, "partition-list", out)
	var l partition.Listing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Partitions {
		if p.Name == "audit_log_p20030101" && (!p.Analyzed || p.EstimatedRows == nil) {
			t.Errorf("%s received a moved row from create but was not analyzed: %+v", p.Name, p)
		}
	}
}

// TestPartitionJSON checks the JSON of create and schema against the
// style and their documented examples.
func TestPartitionJSON(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	// A table of its own, whose key may be NULL: create warns of such rows.
	events := partition.Table{Schema: schema, Name: "events"}
	testdb.Exec(t, db, `CREATE TABLE `+events.String()+` (id int, at timestamptz) PARTITION BY RANGE (at)`)
	testdb.Exec(t, db, `CREATE TABLE `+events.Sibling("events_default").String()+` PARTITION OF `+events.String()+` DEFAULT`)
	testdb.Exec(t, db, `INSERT INTO `+events.String()+` VALUES (1, NULL), (2, '2001-01-15')`)
	out := partitionCLI(t, schema, "create", "--table", "events", "--json")
	checkJSON(t, "partition-create", out)
	var r partition.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Moved != 1 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "1 rows") || r.Table != events {
		t.Errorf("create --json: %s", out)
	}

	out = partitionCLI(t, schema, "schema", "--json")
	checkJSON(t, "partition-schema", out)
	var d struct {
		Table      partition.Table `json:"table"`
		Statements []string        `json:"statements"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if d.Table.Schema != schema || len(d.Statements) != 7 || !strings.HasPrefix(d.Statements[0], "CREATE TABLE IF NOT EXISTS") ||
		strings.HasSuffix(d.Statements[0], ";") {
		t.Errorf("schema --json: %s", out)
	}
	// The statements, run as they are, make the table.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, s := range d.Statements {
		if _, err := tx.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestPartitionConvert: --column names the time column; after convert the
// table's primary key, indexes and identity sequence carry the old names,
// none the staging one, and the backup's are renamed after it.
func TestPartitionConvert(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	old := partition.Table{Schema: schema, Name: "old_log"}
	testdb.Exec(t, db, `CREATE TABLE `+old.String()+` (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at timestamptz NOT NULL, org text, k text)`)
	testdb.Exec(t, db, `CREATE INDEX old_log_org_idx ON `+old.String()+` (org, at)`)
	testdb.Exec(t, db, `CREATE UNIQUE INDEX old_log_k_key ON `+old.String()+` (k)`)
	testdb.Exec(t, db, `INSERT INTO `+old.String()+` (at, org) SELECT '2024-03-01'::timestamptz + i * interval '1 day', 'o' || i % 3 FROM generate_series(1, 100) i`)

	partitionErr(t, []string{`table "` + schema + `"."old_log" has no timestamptz or timestamp column "timestamp"`, "--column"},
		"convert", "--schema", schema, "--table", "old_log")
	out := partitionCLI(t, schema, "convert", "--table", "old_log", "--column", "at", "--json")
	checkJSON(t, "partition-convert", out)
	var res partition.ConvertResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.Rows != 100 || res.Column != "at" || res.Backup != old.Sibling("old_log_unpartitioned") || len(res.Warnings) != 1 {
		t.Errorf("convert --json: %s", out)
	}
	names := func(query string, args ...any) []string {
		t.Helper()
		rows, err := db.Query(query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			rows.Scan(&s)
			out = append(out, s)
		}
		return out
	}
	var pkey string
	if err := db.QueryRow(`SELECT conname FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`, old.String()).Scan(&pkey); err != nil || pkey != "old_log_pkey" {
		t.Errorf("the converted table's primary key is %q (%v), want old_log_pkey", pkey, err)
	}
	if staged := names(`SELECT conname::text FROM pg_constraint WHERE connamespace = $1::regnamespace AND conname LIKE '%convert%'
		UNION ALL SELECT indexname::text FROM pg_indexes WHERE schemaname = $2 AND indexname LIKE '%convert%'
		UNION ALL SELECT relname::text FROM pg_class WHERE relnamespace = $1::regnamespace AND relname LIKE '%convert%'`,
		pgIdent(schema), schema); len(staged) > 0 {
		t.Errorf("staging names left after convert: %v", staged)
	}
	if got := strings.Join(names(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'old_log' ORDER BY 1`, schema), " "); got != "old_log_org_idx old_log_pkey" {
		t.Errorf("the converted table's indexes: %s", got)
	}
	if got := strings.Join(names(`SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'old_log_unpartitioned' ORDER BY 1`, schema), " "); got != "old_log_unpartitioned_k_key old_log_unpartitioned_org_idx old_log_unpartitioned_pkey" {
		t.Errorf("the backup's indexes: %s", got)
	}
	var seq string
	if err := db.QueryRow(`SELECT pg_get_serial_sequence($1, 'id')`, old.String()).Scan(&seq); err != nil || seq != schema+".old_log_id_seq" {
		t.Errorf("identity sequence of the converted table: %q, %v", seq, err)
	}
	if out := partitionCLI(t, schema, "analyze", "--table", "old_log"); !strings.Contains(out, "about 100 rows") {
		t.Errorf("analyze right after convert printed:\n%s", out)
	}
	partitionErr(t, []string{"already partitioned"}, "convert", "--schema", schema, "--table", "old_log", "--column", "at")
}

func pgIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// cancelAfter is a terminal stderr that cancels the command after n
// progress lines of step.
type cancelAfter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	step   string
	n      int
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.step != "" && bytes.Contains(b, []byte(w.step)) {
		if w.n--; w.n == 0 {
			w.cancel()
		}
	}
	return w.buf.Write(b)
}

// runTerminal runs the command line as on a terminal, its stderr w.
func runTerminal(ctx context.Context, w *cancelAfter, args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCmd(&globals{stdout: &out, stderr: w, isTerm: true})
	root.SetArgs(append([]string{"--dsn", testDSN}, args...))
	root.SetOut(&out)
	root.SetErr(w)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// TestPartitionCreateProgressAndInterrupt: create shows its progress on a
// terminal; interrupted part way, it keeps the partitions it made, each
// attached, leaves no half-made one, says how far it got, and a second run
// finishes.
func TestPartitionCreateProgressAndInterrupt(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	args := []string{"partition", "create", "--schema", schema, "--create-table", "--interval", "daily", "--premake", "39"}

	// Progress, on a terminal: one line per partition, redrawn.
	w := &cancelAfter{}
	other := testdb.Schema(t, db)
	if _, err := runTerminal(context.Background(), w, "partition", "create", "--schema", other, "--create-table", "--interval", "weekly", "--premake", "5"); err != nil {
		t.Fatal(err)
	}
	if s := w.buf.String(); !strings.Contains(s, "\r\033[Kcreate partitions of audit_log: 3/6") || !strings.Contains(s, "6/6") {
		t.Errorf("progress on the terminal: %q", s)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w = &cancelAfter{step: "create partitions of audit_log", n: 13, cancel: cancel}
	_, err := runTerminal(ctx, w, args...)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("create cancelled part way: %v, want context.Canceled", err)
	}
	text := errorText(err, true)
	if !strings.Contains(text, "auditpg: interrupted (Ctrl-C) before the command finished: created 12 of 40 partitions") ||
		!strings.Contains(text, "run it again to finish") {
		t.Errorf("error printed after Ctrl-C: %q", text)
	}
	var attached, standalone int
	if err := db.QueryRow(`SELECT count(*) FILTER (WHERE relispartition), count(*) FILTER (WHERE NOT relispartition AND relname <> 'audit_log')
		FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'p')`, pgIdent(schema)).Scan(&attached, &standalone); err != nil {
		t.Fatal(err)
	}
	if attached != 13 || standalone != 0 { // the default and 12 dated partitions
		t.Errorf("after the interruption: %d partitions attached, %d tables not attached; want 13 and 0", attached, standalone)
	}
	var r partition.Report
	out, err := runCLI(t, append(args, "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Created) != 28 {
		t.Errorf("second run created %d partitions (%v), want the 28 left", len(r.Created), err)
	}
}
