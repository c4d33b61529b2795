package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/monitor"
)

func TestMonitorCommands(t *testing.T) {
	ctx := context.Background()
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(t, db, err)
	for _, q := range []string{
		`CREATE TABLE cli_mon (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false)`,
		`INSERT INTO cli_mon SELECT g, g % 10 FROM generate_series(1, 3000) g`,
		`DELETE FROM cli_mon WHERE id > 1000`,
		`CREATE INDEX cli_mon_v ON cli_mon (v)`,
		`CREATE INDEX cli_mon_v_again ON cli_mon (v)`,
		`SELECT pg_stat_force_next_flush()`,
	} {
		testdb.Exec(t, db, q)
	}

	// Text output: readable tables naming the findings.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"monitor", "indexes", "--no-hypopg"}, []string{"Redundant indexes (1)", "cli_mon_v_again", "duplicate of cli_mon_v"}},
		{[]string{"monitor", "tables"}, []string{"public.cli_mon", "last vacuum"}},
		{[]string{"monitor", "slow-queries", "--by-total", "--limit", "50"}, []string{"calls", "cli_mon"}},
		{[]string{"monitor", "explain", "SELECT * FROM cli_mon WHERE v = 3"}, []string{"rolled back", "cli_mon"}},
		{[]string{"monitor", "summary"}, []string{"Overall:", "Top statements by total time"}},
		{[]string{"optimize", "config", "--memory", "8GB"}, []string{"effective_cache_size", "6GB", "Nothing is applied"}},
		{[]string{"client", "health"}, []string{"Overall:", "indexes", "cli_mon_v_again"}},
	} {
		out, err := runCLI(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}

	// The duplicate index makes the health a warning: --fail-on warning exits non-zero.
	if _, err := runCLI(t, "client", "health", "--fail-on", "warning"); err == nil || !strings.Contains(err.Error(), "health is") {
		t.Errorf("client health --fail-on warning with a duplicate index: err = %v, want a failure", err)
	}
	if _, err := runCLI(t, "client", "health", "--fail-on", "bad"); err == nil {
		t.Error("--fail-on bad accepted")
	}

	// --json: one document of the package's types.
	out, err := runCLI(t, "--json", "client", "health")
	if err != nil {
		t.Fatal(err)
	}
	var h monitor.Health
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.Overall == "" || len(h.Components) == 0 {
		t.Fatalf("client health --json: %v\n%s", err, out)
	}
	out, err = runCLI(t, "--json", "monitor", "explain", "SELECT count(*) FROM cli_mon")
	var p monitor.Plan
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.Root == nil || p.Root.ActualLoops != 1 {
		t.Fatalf("monitor explain --json: %v\n%s", err, out)
	}

	// Writes are refused without --allow-writes, in the CLI's words, and
	// rolled back with it.
	if _, err := runCLI(t, "monitor", "explain", "DELETE FROM cli_mon"); err == nil || !strings.Contains(err.Error(), "give --allow-writes") ||
		strings.Contains(err.Error(), "AllowWrites") || !errors.Is(err, monitor.ErrWritesNotAllowed) {
		t.Errorf("explain DELETE without --allow-writes: %v", err)
	}
	if _, err := runCLI(t, "monitor", "explain", "--allow-writes", "DELETE FROM cli_mon"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM cli_mon`).Scan(&n); err != nil || n != 1000 {
		t.Fatalf("rows after explain --allow-writes DELETE: %d (%v), want 1000", n, err)
	}

	// Maintenance: the dry run lists, --apply runs, then nothing is left.
	out, err = runCLI(t, "--json", "optimize", "maintenance")
	if err != nil {
		t.Fatal(err)
	}
	var dry struct {
		DryRun  bool                        `json:"dry_run"`
		Actions []monitor.MaintenanceAction `json:"actions"`
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil || !dry.DryRun || !strings.Contains(out, `VACUUM (ANALYZE) \"public\".\"cli_mon\"`) {
		t.Fatalf("optimize maintenance --json: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "optimize", "maintenance", "--apply"); err != nil || !strings.Contains(out, `VACUUM (ANALYZE) "public"."cli_mon"`) {
		t.Fatalf("optimize maintenance --apply: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "optimize", "maintenance"); err != nil || strings.Contains(out, "cli_mon") {
		t.Errorf("after --apply the dry run still lists cli_mon: %v\n%s", err, out)
	}
}

// TestMonitorExplainGuard: through the auditpg driver and a DSN that asks
// for the simple protocol, the two texts whose side effects once ran past the
// classifier (a -- comment ends at a carriage return in PostgreSQL) are
// refused, the refusals say why and what to give, and nothing ran: the
// backend still answers, the program made no file.
func TestMonitorExplainGuard(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testDSN)
	if err != nil || u.Scheme == "" {
		t.Fatalf("testDSN is not a URL (%v)", err)
	}
	q := u.Query()
	q.Set("default_query_exec_mode", "simple_protocol")
	u.RawQuery = q.Encode()
	dsn := u.String()
	db, err := auditpg.Open(dsn)
	db = testdb.Opened(t, db, err)
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var pid int
	if err := victim.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}

	_, err = runCLI(t, "--dsn", dsn, "monitor", "explain", fmt.Sprintf("select 1 -- note\rwhere pg_terminate_backend(%d)", pid))
	if err == nil || !strings.Contains(err.Error(), "pg_terminate_backend") || !strings.Contains(err.Error(), "--allow-writes") ||
		strings.Contains(err.Error(), "AllowWrites") {
		t.Errorf("explain of a hidden pg_terminate_backend: err = %v, want a refusal naming it and --allow-writes", err)
	}
	if _, err := victim.ExecContext(ctx, `SELECT 1`); err != nil {
		t.Errorf("backend %d ended: %v", pid, err)
	}

	file := filepath.Join(os.TempDir(), fmt.Sprintf("auditpg-cli-explain-guard-%d", os.Getpid()))
	os.Remove(file)
	defer os.Remove(file)
	_, err = runCLI(t, "--dsn", dsn, "monitor", "explain", fmt.Sprintf("select 1 -- note\r; copy (select 1) to program 'touch %s'", file))
	if !errors.Is(err, monitor.ErrMultipleStatements) {
		t.Errorf("explain of a hidden second statement: err = %v, want ErrMultipleStatements", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the program ran: stat %s: %v", file, err)
	}
}

// TestMonitorExplainWords: explain's errors say what the command line
// takes; a text that does not parse is said so, with the server's message
// and position; a statement with parameters is explained with --arg values,
// or as its generic plan, said to be one and never run.
func TestMonitorExplainWords(t *testing.T) {
	ctx := context.Background()
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(t, db, err)
	testdb.Exec(t, db, `CREATE TABLE cli_explain (i int PRIMARY KEY, t text)`)
	testdb.Exec(t, db, `INSERT INTO cli_explain SELECT g, 'v' || g FROM generate_series(1, 100) g`)

	_, err = runCLI(t, "monitor", "explain", "selec 1")
	if err == nil || !strings.Contains(err.Error(), "does not parse") || !strings.Contains(err.Error(), `syntax error at or near "selec"`) ||
		!strings.Contains(err.Error(), "at character 1") || strings.Contains(err.Error(), "modify") {
		t.Errorf(`explain "selec 1": %v, want "does not parse" with the server's syntax error and position`, err)
	}
	_, err = runCLI(t, "monitor", "explain", "DELETE FROM cli_explain WHERE i = 1")
	if err == nil || !strings.Contains(err.Error(), "may modify data (DELETE): give --allow-writes") || strings.Contains(err.Error(), "AllowWrites") {
		t.Errorf("explain DELETE: %v, want the refusal naming --allow-writes", err)
	}

	// A fingerprint as slow-queries prints it, with values...
	q := `SELECT * FROM cli_explain WHERE i = $1 AND t <> $2`
	out, err := runCLI(t, "monitor", "explain", q, "--arg", "7", "--arg", "x")
	if err != nil || !strings.Contains(out, "rolled back") || !strings.Contains(out, "rows 1 est") {
		t.Errorf("explain with --arg: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "monitor", "explain", q, "--arg", "7"); err == nil || !strings.Contains(err.Error(), "2 parameter(s) and 1 value(s)") ||
		!strings.Contains(err.Error(), "give one --arg per parameter") {
		t.Errorf("explain with one --arg for two parameters: %v", err)
	}
	// ...or without: the generic plan, not run, and said to be.
	out, err = runCLI(t, "monitor", "explain", q)
	if err != nil || !strings.Contains(out, "Generic plan, without execution") || strings.Contains(out, "rolled back") || !strings.Contains(out, "cost ") {
		t.Errorf("explain of a fingerprint without --arg: %v\n%s", err, out)
	}
	out, err = runCLI(t, "--json", "monitor", "explain", q)
	var p monitor.Plan
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || !p.Generic || p.Root.ActualLoops != 0 {
		t.Errorf("explain --json of a fingerprint: %v\n%s", err, out)
	}
	// A generic plan of a write, with --allow-writes, runs nothing.
	if _, err := runCLI(t, "monitor", "explain", "--allow-writes", "DELETE FROM cli_explain WHERE i > $1"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM cli_explain`).Scan(&n); err != nil || n != 100 {
		t.Errorf("rows after the generic plan of a DELETE: %d (%v), want 100", n, err)
	}
}

// TestMonitorFlagValues: every monitor and optimize flag refuses a value
// it cannot use, before connecting, naming the flag, the value and what it
// accepts.
func TestMonitorFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"monitor", "explain", "--timeout", "-5s", "SELECT 1"}, []string{"--timeout -5s", "above 0"}},
		{[]string{"monitor", "explain", "--timeout", "0", "SELECT 1"}, []string{"--timeout 0s", "above 0"}},
		{[]string{"monitor", "explain", "--timeout", "48h", "SELECT 1"}, []string{"--timeout 48h0m0s", "at most 24h"}},
		{[]string{"monitor", "explain", "--set", "work_mem", "SELECT 1"}, []string{`--set "work_mem"`, "name=value"}},
		{[]string{"monitor", "explain", "--set", "=64MB", "SELECT 1"}, []string{`--set "=64MB"`, "name=value"}},
		{[]string{"monitor", "slow-queries", "--limit", "0"}, []string{"--limit 0", "1 to 10000"}},
		{[]string{"monitor", "slow-queries", "--limit", "-3"}, []string{"--limit -3", "1 to 10000"}},
		{[]string{"monitor", "slow-queries", "--limit", "1000000"}, []string{"--limit 1000000", "1 to 10000"}},
		{[]string{"monitor", "slow-queries", "--min-calls", "-1"}, []string{"--min-calls -1", "0 or more"}},
		{[]string{"monitor", "slow-queries", "--min-mean", "-1s"}, []string{"--min-mean -1s", "0 or more"}},
		{[]string{"monitor", "slow-queries", "--min-total", "-1m"}, []string{"--min-total -1m0s", "0 or more"}},
		{[]string{"monitor", "indexes", "--no-suggest", "--no-hypopg"}, []string{"--no-hypopg with --no-suggest"}},
		{[]string{"optimize", "config", "--memory", "0"}, []string{"--memory 0", "64MB to 1PB", "leave --memory out"}},
		{[]string{"optimize", "config", "--memory", ""}, []string{`--memory :`, "16GB"}},
		{[]string{"optimize", "config", "--memory", "1MB"}, []string{"--memory 1MB", "64MB to 1PB"}},
		{[]string{"optimize", "config", "--memory", "-8GB"}, []string{"--memory -8GB"}},
		{[]string{"optimize", "config", "--memory", "8gb"}, []string{"--memory 8gb", "GB"}},
		// Flags of one subcommand are not another's.
		{[]string{"monitor", "tables", "--limit", "5"}, []string{"unknown flag: --limit"}},
		{[]string{"monitor", "summary", "--apply"}, []string{"unknown flag: --apply"}},
		{[]string{"optimize", "maintenance", "--memory", "8GB"}, []string{"unknown flag: --memory"}},
		{[]string{"monitor", "slow-queries", "--arg", "1"}, []string{"unknown flag: --arg"}},
	} {
		// An unreachable server: a refusal must come before connecting.
		args := append([]string{"--dsn", "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"}, tc.args...)
		_, err := runCLI(t, args...)
		if err == nil {
			t.Errorf("%v: accepted", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q lacks %q", tc.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "connect") {
			t.Errorf("%v: %v; want the value refused before connecting", tc.args, err)
		}
	}
}

// hintPattern matches a command the outputs tell the user to run.
var hintPattern = regexp.MustCompile(`(?:run|with|give|use|try) auditpg((?: [a-z][a-z-]*)+)((?: --[a-z][a-z-]*)*)`)

// TestMonitorHints: every command an output of monitor or optimize tells
// the user to run exists, with the flags it names: its --help says so.
func TestMonitorHints(t *testing.T) {
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(t, db, err)
	testdb.Exec(t, db, `CREATE TABLE cli_hint (id int) WITH (autovacuum_enabled = false)`)
	testdb.Exec(t, db, `INSERT INTO cli_hint SELECT generate_series(1, 500)`)
	testdb.Exec(t, db, `SELECT pg_stat_force_next_flush()`)

	var texts []string
	for _, args := range [][]string{
		{"monitor", "summary"}, {"optimize", "maintenance"}, {"monitor", "indexes"}, {"optimize", "config"},
		{"monitor", "explain", "SELECT * FROM cli_hint WHERE id = $1"}, {"monitor", "tables"},
	} {
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		texts = append(texts, out)
	}
	for _, args := range [][]string{{"monitor", "explain", "DELETE FROM cli_hint"}, {"monitor", "explain", "SELECT $1", "--arg", "a", "--arg", "b"}} {
		if _, err := runCLI(t, args...); err != nil {
			texts = append(texts, err.Error())
		}
	}
	all := strings.Join(texts, "\n")
	if !strings.Contains(all, "run them with auditpg optimize maintenance --apply") {
		t.Fatalf("no maintenance hint in the outputs (cli_hint needs ANALYZE):\n%s", all)
	}
	hints := hintPattern.FindAllStringSubmatch(all, -1)
	for _, h := range hints {
		path := strings.Fields(h[1])
		help, err := runCLI(t, append(path, "--help")...)
		if err != nil || !strings.Contains(help, "auditpg "+strings.Join(path, " ")) {
			t.Errorf("hint %q: %v: no such command\n%s", h[0], err, help)
			continue
		}
		for _, flag := range strings.Fields(h[2]) {
			if !regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(flag) + `\b`).MatchString(help) {
				t.Errorf("hint %q: %s is not a flag of %v:\n%s", h[0], flag, path, help)
			}
		}
	}
	// The flags an error names exist on the command that printed it.
	for flag, cmd := range map[string][]string{"--allow-writes": {"monitor", "explain"}, "--arg": {"monitor", "explain"}, "--memory": {"optimize", "config"}} {
		help, err := runCLI(t, append(cmd, "--help")...)
		if err != nil || !strings.Contains(help, "  "+flag+" ") {
			t.Errorf("%v has no %s flag: %v\n%s", cmd, flag, err, help)
		}
	}
}

// TestMonitorNoise: small tables and rarely used indexes make no warning in
// the summary: 7-row partitions never analyzed need no ANALYZE, an index
// scanned 27 times is not unused.
func TestMonitorNoise(t *testing.T) {
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(t, db, err)
	testdb.Exec(t, db, `CREATE TABLE cli_noise (at date NOT NULL, v int) PARTITION BY RANGE (at)`)
	for i := range 30 {
		testdb.Exec(t, db, fmt.Sprintf(`CREATE TABLE cli_noise_%02d PARTITION OF cli_noise FOR VALUES FROM ('2026-01-01'::date + %d) TO ('2026-01-01'::date + %d) WITH (autovacuum_enabled = false)`, i, i, i+1))
	}
	testdb.Exec(t, db, `INSERT INTO cli_noise SELECT '2026-01-01'::date + p, g FROM generate_series(0, 29) p, generate_series(1, 7) g`)
	testdb.Exec(t, db, `CREATE TABLE cli_rare (id int, v int)`)
	testdb.Exec(t, db, `INSERT INTO cli_rare SELECT g, g FROM generate_series(1, 60000) g`)
	testdb.Exec(t, db, `CREATE INDEX cli_rare_v ON cli_rare (v)`) // over 1MB
	testdb.Exec(t, db, `SELECT pg_stat_force_next_flush()`)
	testdb.Exec(t, db, `ANALYZE cli_rare`)
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testdb.Exec(t, c, `SET enable_seqscan = off`)
	for i := range 27 {
		testdb.Exec(t, c, `SELECT * FROM cli_rare WHERE v = $1`, i)
	}
	testdb.Exec(t, c, `SELECT pg_stat_force_next_flush()`)
	testdb.Exec(t, db, `SELECT pg_stat_force_next_flush()`)

	out, err := runCLI(t, "monitor", "summary")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "- ") && (strings.Contains(line, "cli_noise_") || strings.Contains(line, "cli_rare")) ||
			strings.Contains(line, `ANALYZE "public"."cli_noise_`) {
			t.Errorf("summary flags a 7-row partition or an index scanned 27 times: %s", line)
		}
	}
	if !strings.Contains(out, "public.cli_noise: 30 partitions") {
		t.Errorf("summary lacks the partitioned table:\n%s", out)
	}
	out, err = runCLI(t, "monitor", "indexes", "--no-suggest")
	if err != nil || !regexp.MustCompile(`cli_rare_v\s+public.cli_rare\s+27\s`).MatchString(out) || strings.Contains(out, "cli_rare_v on public.cli_rare: 27 scans") {
		t.Errorf("indexes: %v; want cli_rare_v used 27 times, not listed unused:\n%s", err, out)
	}
}

// TestMonitorJSON: the --json output of every monitor and optimize command
// is in the one JSON style and matches its documented example
// (testdata/json). The fixture lives in a database of its own, so that the
// output holds its tables only, each finding filled in: an unused, a
// redundant and an invalid index, a table read by sequential scans, a
// suggested index, a sequence, a partitioned table with rows in its
// default partition, tables to vacuum and analyze, a blocked backend.
func TestMonitorJSON(t *testing.T) {
	ctx := context.Background()
	admin, err := auditpg.Open(testDSN)
	admin = testdb.Opened(t, admin, err)
	testdb.Exec(t, admin, `DROP DATABASE IF EXISTS cli_json WITH (FORCE)`)
	testdb.Exec(t, admin, `CREATE DATABASE cli_json`)
	u, err := url.Parse(testDSN)
	if err != nil || u.Scheme == "" {
		t.Fatalf("testDSN is not a URL (%v)", err)
	}
	u.Path, u.RawPath = "/cli_json", ""
	dsn := u.String()
	db, err := auditpg.Open(dsn)
	db = testdb.Opened(t, db, err)
	for _, q := range []string{
		`SELECT pg_stat_reset()`, // the report says since when its counts run
		`CREATE TABLE events (id serial PRIMARY KEY, org int, kind int, pad text) WITH (autovacuum_enabled = false)`,
		`INSERT INTO events (org, kind, pad) SELECT g % 500, g % 7, md5(g::text) FROM generate_series(1, 60000) g`,
		`CREATE INDEX events_pad ON events (pad)`,     // never scanned: unused
		`CREATE INDEX events_org ON events (org)`,     //
		`CREATE INDEX events_org_dup ON events (org)`, // a duplicate
		`DELETE FROM events WHERE id > 45000`,         // dead tuples past the vacuum threshold
		`CREATE TABLE notes (id int) WITH (autovacuum_enabled = false)`,
		`INSERT INTO notes SELECT generate_series(1, 100)`, // never analyzed
		`CREATE TABLE done (id int) WITH (autovacuum_enabled = false)`,
		`INSERT INTO done SELECT generate_series(1, 10)`,
		`CREATE TABLE log (at date NOT NULL, v int) PARTITION BY RANGE (at)`,
		`CREATE TABLE log_2026 PARTITION OF log FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') WITH (autovacuum_enabled = false)`,
		`CREATE TABLE log_default PARTITION OF log DEFAULT WITH (autovacuum_enabled = false)`,
		`CREATE INDEX log_v ON log (v)`,
		`INSERT INTO log VALUES ('2026-05-01', 1), ('2031-01-01', 2)`,
		`SELECT pg_stat_force_next_flush()`,
	} {
		testdb.Exec(t, db, q)
	}
	// An invalid unique index: built concurrently over duplicates.
	if _, err := db.ExecContext(ctx, `CREATE UNIQUE INDEX CONCURRENTLY events_kind ON events (kind)`); err == nil {
		t.Fatal("CREATE UNIQUE INDEX CONCURRENTLY over duplicates succeeded")
	}
	testdb.Exec(t, db, `VACUUM ANALYZE done`)
	for i := range 5 { // statements for slow-queries and the suggestions
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE kind = $1 AND org > $2`, i, 10).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	testdb.Exec(t, db, `SELECT pg_stat_force_next_flush()`)

	run := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append([]string{"--dsn", dsn, "--json"}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return out
	}
	checkJSON(t, "monitor-slow-queries", run("monitor", "slow-queries", "--by-total"))
	checkJSON(t, "monitor-indexes", run("monitor", "indexes"))
	checkJSON(t, "monitor-tables", run("monitor", "tables"))
	checkJSON(t, "monitor-explain", run("monitor", "explain", "SELECT count(*) FROM events WHERE kind = 3 AND org > 10"))
	checkJSON(t, "optimize-config", run("optimize", "config", "--memory", "8GB"))

	// The summary, with a backend waiting for a lock another holds.
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	testdb.Exec(t, holder, `BEGIN`)
	testdb.Exec(t, holder, `LOCK TABLE notes IN SHARE MODE`)
	waiter, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()
	done := make(chan error, 1)
	go func() {
		_, err := waiter.ExecContext(ctx, `INSERT INTO notes VALUES (0)`)
		done <- err
	}()
	var summary string
	for deadline := time.Now().Add(20 * time.Second); ; {
		summary = run("monitor", "summary")
		if strings.Contains(summary, `"blocked_by"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	testdb.Exec(t, holder, `COMMIT`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkJSON(t, "monitor-summary", summary, "activity.connections")
	if strings.Contains(summary, `"driver"`) {
		t.Error("monitor summary --json carries driver statistics: the command line's own pool is not the application's")
	}
	var s struct { // the Summary's fields checked; its driver member is an interface
		Activity    monitor.Activity            `json:"activity"`
		Maintenance []monitor.MaintenanceAction `json:"maintenance"`
		Partitions  []monitor.PartitionedTable  `json:"partitions"`
		Indexes     *monitor.IndexReport        `json:"indexes"`
		Sequences   []monitor.SequenceUsage     `json:"sequences"`
	}
	if err := json.Unmarshal([]byte(summary), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Activity.Blocked) == 0 || len(s.Maintenance) < 3 || len(s.Partitions) != 1 || s.Partitions[0].Default == nil ||
		len(s.Indexes.Unused) == 0 || len(s.Indexes.Redundant) == 0 || len(s.Indexes.Invalid) == 0 || len(s.Indexes.SeqScans) == 0 ||
		s.Indexes.Suggestions == nil || len(s.Indexes.Suggestions.Suggestions) == 0 || len(s.Sequences) == 0 || s.Sequences[0].Table == nil {
		t.Errorf("the summary lacks a finding the fixture makes:\n%s", summary)
	}

	// Maintenance: the dry run, then --apply, whose REINDEX of the unique
	// index over duplicates fails and says so in its result.
	dry := run("optimize", "maintenance")
	checkJSON(t, "optimize-maintenance", dry)
	applied, err := runCLI(t, "--dsn", dsn, "--json", "optimize", "maintenance", "--apply")
	if err == nil || !strings.Contains(applied, `"error"`) {
		t.Fatalf("optimize maintenance --apply with a unique index over duplicates: %v\n%s", err, applied)
	}
	checkJSON(t, "optimize-maintenance", applied)
	var m struct {
		DryRun  bool                        `json:"dry_run"`
		Actions []monitor.MaintenanceAction `json:"actions"`
		Results []monitor.MaintenanceResult `json:"results"`
	}
	if err := json.Unmarshal([]byte(applied), &m); err != nil || m.DryRun || len(m.Results) != len(m.Actions) || len(m.Results) < 3 {
		t.Errorf("optimize maintenance --apply --json: %v\n%s", err, applied)
	}
}
