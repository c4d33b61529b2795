package partition

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
)

// TestCreateAuditLog: CreateAuditLog makes the missing schema, the
// partitioned parent with its kept indexes and the default partition, and a
// second call changes nothing.
func TestCreateAuditLog(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db) + "_new", Name: "audit_log"}
	t.Cleanup(func() { db.Exec(`DROP SCHEMA IF EXISTS ` + Table{Name: table.Schema}.String() + ` CASCADE`) })
	for range 2 {
		if err := CreateAuditLog(ctx, db, table); err != nil {
			t.Fatal(err)
		}
	}
	var kind string
	var indexes, parts int
	err := db.QueryRow(`SELECT c.relkind::text,
		(SELECT count(*) FROM pg_index WHERE indrelid = c.oid),
		(SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)
		FROM pg_class c WHERE c.oid = to_regclass($1)`, table.String()).Scan(&kind, &indexes, &parts)
	if err != nil || kind != "p" || indexes != 6 || parts != 1 {
		t.Errorf("after CreateAuditLog: relkind %q, %d indexes, %d partitions (%v); want p, 6 (the primary key included), 1 (the default)",
			kind, indexes, parts, err)
	}
}

func TestSchemaDDL(t *testing.T) {
	db := openDB(t, "")
	for _, tt := range []struct {
		opts        []SchemaOption
		wantIndexes int // the primary key included
	}{{nil, 6}, {[]SchemaOption{WithSeedIndexes()}, 15}} {
		table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
		ddl := AuditLogSchema(table, tt.opts...)
		for range 2 { // idempotent
			for stmt := range strings.SplitSeq(strings.TrimSpace(ddl), ";\n") {
				testdb.Exec(t, db, stmt)
			}
		}
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1)`, table.String()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != tt.wantIndexes {
			t.Errorf("%d indexes on the parent, want %d", n, tt.wantIndexes)
		}
		m := newManager(t, db, WithTable(table), WithClock(fixedClock(date(2024, 6, 15))))
		r, err := m.Create(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Created) != 5 || slices.Contains(r.Created, "audit_log_default") {
			t.Errorf("Create on the DDL's table: created %v; want 5 dated partitions, the DDL's default kept", r.Created)
		}
	}
}

func TestListAndAnalyze(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "Pacific/Kiritimati")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	now := date(2024, 6, 15)
	m := newManager(t, db, WithTable(table), WithClock(fixedClock(now)), WithRetention(30*24*time.Hour), WithPremake(5))
	if _, err := newManager(t, db, WithTable(table), WithClock(fixedClock(now))).Create(ctx); err != nil {
		t.Fatal(err)
	}
	for mo := date(2023, 6, 2); mo.Before(now); mo = mo.AddDate(0, 1, 0) {
		insertAt(t, db, table, mo)
	}
	if _, err := m.MoveDefault(ctx); err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, db, `DELETE FROM `+table.String()+` WHERE "timestamp" < '2024-01-01 00:00:00+00'`) // 7 empty past partitions
	insertAt(t, db, table, now)
	insertAt(t, db, table, now)
	testdb.Exec(t, db, `ANALYZE `+table.Sibling("audit_log_p20240601").String())
	testdb.Exec(t, db, `ALTER TABLE `+table.String()+` DETACH PARTITION `+table.Sibling("audit_log_p20240301").String()) // a gap
	testdb.Exec(t, db, `CREATE INDEX ON ONLY `+table.String()+` (action)`)                                               // on no partition
	insertAt(t, db, table, date(2024, 3, 5))                                                                             // into the gap: the default

	l, err := m.List(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Partitions {
		switch {
		case p.Name == "audit_log_p20240601":
			if !p.Analyzed || p.EstimatedRows == nil || *p.EstimatedRows != 3 || *p.ExactRows != 3 {
				t.Errorf("%s: analyzed %v, estimate %v, exact %v; want an estimate of 3", p.Name, p.Analyzed, *p.EstimatedRows, *p.ExactRows)
			}
		case p.Name == "audit_log_p20240801":
			if p.Analyzed || p.EstimatedRows != nil {
				t.Errorf("%s was never analyzed: got analyzed %v, estimate %v", p.Name, p.Analyzed, *p.EstimatedRows)
			}
		}
		if p.SizeBytes <= 0 {
			t.Errorf("%s: size %d", p.Name, p.SizeBytes)
		}
	}
	if len(l.Gaps) != 1 || !l.Gaps[0].From.Equal(date(2024, 3, 1)) || !l.Gaps[0].To.Equal(date(2024, 4, 1)) {
		t.Errorf("gaps %v, want March 2024", l.Gaps)
	}
	a, err := m.Analyze(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Empty) != 7 || a.DefaultRows != 1 || a.Future != 4 || len(a.Expired) != 10 || a.NotAnalyzed == 0 {
		t.Errorf("Analyze: empty %v, default rows %d, future %d, expired %v, not analyzed %d",
			a.Empty, a.DefaultRows, a.Future, a.Expired, a.NotAnalyzed)
	}
	if len(a.MissingIndexes) != a.TotalPartitions+1 { // the default too
		t.Errorf("missing indexes %v, want one per partition", a.MissingIndexes)
	}
	rec := strings.Join(a.Recommendations, "\n")
	for _, want := range []string{"7 past or current partitions are empty", "1 rows are in the default", "only 4 future partitions (premake is 5)",
		"10 partitions are past the retention", "partitions lack the index", "1 gaps"} {
		if !strings.Contains(rec, want) {
			t.Errorf("recommendations lack %q:\n%s", want, rec)
		}
	}
}

func TestConvert(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "Pacific/Pago_Pago")
	table := Table{Schema: testdb.Schema(t, db), Name: `audit "log"`}
	testdb.Exec(t, db, `CREATE TABLE `+table.String()+` (id serial PRIMARY KEY, "timestamp" timestamptz NOT NULL, organization_id text,
		action text NOT NULL, status text NOT NULL, details jsonb)`)
	testdb.Exec(t, db, `CREATE INDEX org_ts ON `+table.String()+` (organization_id, "timestamp")`)
	testdb.Exec(t, db, `CREATE UNIQUE INDEX uniq_details ON `+table.String()+` ((details->>'k'))`)
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", organization_id, action, status)
		SELECT '2024-04-01 00:00:00+00'::timestamptz + i * interval '1 minute' * 25, 'org' || (i % 7), 'a', 's' FROM generate_series(1, 5000) i`)
	count0, sum0 := checksum(t, db, table)

	// A writer keeps inserting until the conversion is over.
	var written atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := db.Exec(`INSERT INTO ` + table.String() + ` ("timestamp", action, status) VALUES ('2024-06-01 12:00:00+00', 'w', 's')`); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	var steps atomic.Int64
	m := newManager(t, db, WithTable(table), WithBatchSize(500), WithClock(fixedClock(date(2024, 6, 15))),
		WithProgress(func(Progress) { steps.Add(1) }))
	res, err := m.Convert(ctx)
	close(stop)
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if steps.Load() < 10 {
		t.Errorf("progress reported %d times; want one per batch", steps.Load())
	}
	if n := countIn(t, db, Table{Schema: table.Schema, Name: `audit "log"_unpartitioned`}); res.Rows > n || n < count0 {
		t.Errorf("converted %d rows; the backup holds %d, had %d before the writes", res.Rows, n, count0)
	}
	var kind string
	db.QueryRow(`SELECT relkind::text FROM pg_class WHERE oid = to_regclass($1)`, table.String()).Scan(&kind)
	if kind != "p" {
		t.Fatalf("%s has relkind %q after Convert, want p", table, kind)
	}
	total, _ := checksum(t, db, table)
	if total != count0+written.Load() {
		t.Errorf("%d rows in the converted table; want %d + %d written during the conversion", total, count0, written.Load())
	}
	var sum string
	db.QueryRow(`SELECT md5(string_agg(row(t.*)::text, ',' ORDER BY id)) FROM ` + table.String() + ` t WHERE id <= 5000`).Scan(&sum)
	if sum != sum0 {
		t.Error("the first 5000 rows differ after the conversion")
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "uniq_details") {
		t.Errorf("warnings %q, want one about the unique index", res.Warnings)
	}
	var idx int
	db.QueryRow(`SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 AND indexdef LIKE '%(organization_id, "timestamp")%'`,
		table.Schema, table.Name).Scan(&idx)
	if idx != 1 {
		t.Errorf("index on (organization_id, timestamp) not copied")
	}
	// The serial sequence now belongs to the new table: dropping the
	// backup leaves inserts working, with fresh ids.
	testdb.Exec(t, db, `DROP TABLE `+Table{Schema: table.Schema, Name: `audit "log"_unpartitioned`}.String())
	var id int64
	if err := db.QueryRow(`INSERT INTO ` + table.String() + ` ("timestamp", action, status) VALUES ('2024-06-02', 'a', 's') RETURNING id`).Scan(&id); err != nil || id <= total {
		t.Errorf("insert after dropping the backup: id %d, %v", id, err)
	}
	if _, err := m.Convert(ctx); !errors.Is(err, ErrAlreadyPartitioned) {
		t.Errorf("second Convert: %v, want ErrAlreadyPartitioned", err)
	}
}

func TestScheduler(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	m := newManager(t, db, WithTable(table), WithClock(fixedClock(date(2024, 6, 15))), WithLogger(testLogger(t)))
	runs := make(chan Run, 100)
	s := NewScheduler(m, Every(50*time.Millisecond), OnRun(func(r Run) { runs <- r }))
	if _, ok := s.Last(); ok {
		t.Error("Last before any run: want false")
	}
	s.Start(ctx)
	first := <-runs
	if first.Err != nil || first.Skipped || len(first.Report.Created) != 6 || first.Duration <= 0 {
		t.Fatalf("first run: %+v", first)
	}
	if second := <-runs; second.Err != nil || len(second.Report.Created) != 0 {
		t.Errorf("second run: %+v, want nothing to create", second)
	}
	// Another instance holds the lock: runs are skipped, not doubled.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := lockKey(table.Schema, table.Name)
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		t.Fatal(err)
	}
	for r := range runs {
		if r.Skipped {
			break
		}
	}
	if last, _ := s.Last(); !last.Skipped {
		t.Errorf("Last while another session holds the lock: %+v, want skipped", last)
	}
	conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, key)
	s.Stop()
	for len(runs) > 0 {
		<-runs
	}
	time.Sleep(150 * time.Millisecond)
	if len(runs) != 0 {
		t.Error("runs after Stop")
	}

	// Errors are reported, not swallowed.
	bad := NewScheduler(newManager(t, db, WithTable(Table{Schema: "no such schema", Name: "audit_log"})))
	if r := bad.RunOnce(ctx); r.Err == nil {
		t.Errorf("run on a missing schema: %+v, want an error", r)
	}
	if last, _ := bad.Last(); last.Err == nil || !strings.Contains(last.Error, "no such schema") {
		t.Errorf("Last lost the error: %+v", last)
	}
}

// TestOneConnection checks that a Manager needs a single connection: the
// locked calls run on the connection that holds the lock instead of
// waiting on the pool for a second one.
func TestOneConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := openDB(t, "")
	db.SetMaxOpenConns(1)
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	now := date(2024, 6, 15)
	if _, err := newManager(t, db, WithTable(table), WithClock(fixedClock(now))).Create(ctx); err != nil {
		t.Fatal(err)
	}
	insertAt(t, db, table, date(2023, 1, 5))
	for _, withDefault := range []bool{true, false} {
		m := newManager(t, db, WithTable(table), WithClock(fixedClock(now)), WithRetention(90*24*time.Hour), WithDefaultPartition(withDefault))
		r, err := m.Maintain(ctx)
		if err != nil {
			t.Fatalf("default partition %v: %v", withDefault, err)
		}
		t.Logf("default partition %v: %+v", withDefault, r)
		if withDefault {
			testdb.Exec(t, db, `DROP TABLE `+table.Sibling("audit_log_default").String())
			insertAt(t, db, table, date(2024, 6, 1)) // keeps the table busy for the next run's check
			testdb.Exec(t, db, `CREATE TABLE `+table.Sibling("old").String()+` PARTITION OF `+table.String()+` FOR VALUES FROM ('2022-01-01 00:00:00+00') TO ('2022-02-01 00:00:00+00')`)
		} else if len(r.Removed) != 1 || r.Removed[0].Name != "old" || r.Removed[0].Detach != "concurrently" {
			// The gap after old ends before the retention's cutoff: not filled.
			t.Errorf("without a default partition: removed %+v, want old detached concurrently", r.Removed)
		}
	}
}
