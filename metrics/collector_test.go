package metrics_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/metrics"
	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/partition"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// sample is one gathered series: its labels and value.
type sample struct {
	labels map[string]string
	value  float64
}

// gather collects c once (through a registry, as a scrape does) and
// returns the series by metric name.
func gather(t *testing.T, c prometheus.Collector) map[string][]sample {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return flatten(mfs)
}

func flatten(mfs []*dto.MetricFamily) map[string][]sample {
	out := map[string][]sample{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			s := sample{labels: map[string]string{}}
			for _, l := range m.Label {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Gauge != nil:
				s.value = m.Gauge.GetValue()
			case m.Counter != nil:
				s.value = m.Counter.GetValue()
			case m.Untyped != nil:
				s.value = m.Untyped.GetValue()
			}
			out[mf.GetName()] = append(out[mf.GetName()], s)
		}
	}
	return out
}

// value returns the one series of name whose labels include want.
func value(t *testing.T, got map[string][]sample, name string, want ...string) float64 {
	t.Helper()
	var found []float64
	for _, s := range got[name] {
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if s.labels[want[i]] != want[i+1] {
				ok = false
			}
		}
		if ok {
			found = append(found, s.value)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1 (all: %v)", name, want, len(found), got[name])
	}
	return found[0]
}

func newCollector(t *testing.T, db *sql.DB, opts ...metrics.Option) *metrics.Collector {
	t.Helper()
	c, err := metrics.NewCollector(db, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fixture makes, in a schema of the test's own, a table with rows and dead
// rows, an invalid index, an audit_log partitioned by month with rows in
// its default partition, and a statement run a known number of times.
type fixture struct {
	schema string
	items  partition.Table
	audit  partition.Table
	slot   string
}

func newFixture(t testing.TB, db *sql.DB) fixture {
	t.Helper()
	ctx := context.Background()
	schema := testdb.Schema(t, db)
	f := fixture{schema: schema, items: partition.Table{Schema: schema, Name: "items"}, audit: partition.Table{Schema: schema, Name: "audit_log"}}
	items := f.items.String()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A physical slot, reserved at once, keeps the WAL written after it.
	f.slot = schema
	testdb.Exec(t, conn, `SELECT pg_create_physical_replication_slot($1, true)`, f.slot)
	t.Cleanup(func() { db.Exec(`SELECT pg_drop_replication_slot($1)`, f.slot) })
	testdb.Exec(t, conn, `CREATE TABLE `+items+` (id int PRIMARY KEY, code int, note text)`)
	testdb.Exec(t, conn, `INSERT INTO `+items+` SELECT g, g % 10, 'n' FROM generate_series(1, 2000) g`)
	testdb.Exec(t, conn, `DELETE FROM `+items+` WHERE id <= 500`)
	// Statistics reach the shared ones when a session goes idle, at most
	// once a second: this makes the next report unconditional.
	testdb.Exec(t, conn, `SELECT pg_stat_force_next_flush()`)
	// A unique index on duplicate values fails, and CONCURRENTLY leaves it invalid.
	if _, err := db.ExecContext(ctx, `CREATE UNIQUE INDEX CONCURRENTLY items_code_key ON `+items+` (code)`); err == nil {
		t.Fatal("the unique index on duplicate codes was built: want it to fail and stay invalid")
	}
	if err := partition.CreateAuditLog(ctx, db, f.audit); err != nil {
		t.Fatal(err)
	}
	m, err := partition.New(db, partition.WithTable(f.audit), partition.WithInterval(partition.Monthly), partition.WithPremake(2),
		partition.WithRetention(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx); err != nil {
		t.Fatal(err)
	}
	// Rows far in the past land in the default partition.
	testdb.Exec(t, db, `INSERT INTO `+f.audit.String()+` ("timestamp", action, status)
		SELECT '2001-01-01'::timestamptz + g * interval '1 hour', 'a', 's' FROM generate_series(1, 7) g`)
	testdb.Exec(t, db, `ANALYZE `+items)
	return f
}

func TestCollectorAgreesWithMonitor(t *testing.T) {
	ctx := context.Background()
	pgxDB := testdb.Open(t, "pgx", testDSN)
	f := newFixture(t, pgxDB)

	db, err := auditpg.Open(testDSN, auditpg.WithCacheMode(auditpg.CacheAll))
	db = testdb.Opened(t, db, err)
	// A statement of a text of its own, run a known number of times.
	probe := `SELECT count(*) FROM ` + f.items.String() + ` AS metrics_probe WHERE code = $1`
	for i := range 7 {
		var n int
		if err := db.QueryRowContext(ctx, probe, i).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 { // cached: the second and third are hits
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+f.items.String()).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}

	auditMgr, err := partition.New(pgxDB, partition.WithTable(f.audit), partition.WithRetention(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(t, db, metrics.WithMemo(0), metrics.WithRetention(f.audit, 24*time.Hour), metrics.WithMaxTables(10000), metrics.WithTopStatements(10000))
	got := gather(t, c)

	mon, err := monitor.New(pgxDB)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(t, got, "auditpg_pg_up"); v != 1 {
		t.Errorf("auditpg_pg_up = %v, want 1", v)
	}
	for _, s := range got["auditpg_pg_scrape_error"] {
		if s.value != 0 {
			t.Errorf("section %s failed", s.labels["section"])
		}
	}

	// Tables: the monitor's figures for the test's tables.
	tables, err := mon.Tables(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, tb := range tables {
		if tb.Table.Schema != f.schema {
			continue
		}
		checked++
		l := []string{"schema", tb.Table.Schema, "table", tb.Table.Name}
		for name, want := range map[string]float64{
			"auditpg_pg_table_size_bytes":       float64(tb.Bytes),
			"auditpg_pg_table_index_size_bytes": float64(tb.IndexBytes),
			"auditpg_pg_table_live_rows":        float64(tb.LiveRows),
			"auditpg_pg_table_dead_rows":        float64(tb.DeadRows),
		} {
			if v := value(t, got, name, l...); v != want {
				t.Errorf("%s %s = %v, monitor says %v", name, tb.Table, v, want)
			}
		}
		if a := tb.LastAnalyzed(); a != nil {
			if v := value(t, got, "auditpg_pg_table_last_analyze_timestamp_seconds", l...); math.Abs(v-float64(a.UnixNano())/1e9) > 1e-3 {
				t.Errorf("last analyze of %s = %v, monitor says %v", tb.Table, v, a)
			}
		}
	}
	if checked < 2 {
		t.Fatalf("monitor lists %d tables of the test's schema, want the table and the partitions", checked)
	}
	if v := value(t, got, "auditpg_pg_table_dead_rows", "schema", f.schema, "table", "items"); v != 500 {
		t.Errorf("dead rows of items = %v, want the 500 deleted", v)
	}

	// Invalid index.
	if v := value(t, got, "auditpg_pg_index_invalid", "schema", f.schema, "table", "items", "index", "items_code_key"); v != 1 {
		t.Errorf("items_code_key invalid = %v, want 1", v)
	}
	invalid, err := mon.InvalidIndexes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(t, got, "auditpg_pg_invalid_indexes"); int(v) != len(invalid) {
		t.Errorf("auditpg_pg_invalid_indexes = %v, monitor lists %d", v, len(invalid))
	}

	// Statements: the probe's calls and time as pg_stat_statements says.
	qs, err := mon.SlowQueries(ctx, monitor.SlowQueryOptions{OrderByTotal: true, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, q := range qs {
		if !strings.Contains(q.Query, "metrics_probe") || !strings.Contains(q.Query, f.schema) || !q.TopLevel {
			continue
		}
		found = true
		id := strconv.FormatInt(q.QueryID, 10)
		if v := value(t, got, "auditpg_pg_statement_calls_total", "queryid", id); v != 7 || q.Calls != 7 {
			t.Errorf("probe calls: metric %v, monitor %d, want 7", v, q.Calls)
		}
		if v := value(t, got, "auditpg_pg_statement_seconds_total", "queryid", id); math.Abs(v-q.Total.Seconds()) > 1e-6 {
			t.Errorf("probe time: metric %v, monitor %v", v, q.Total.Seconds())
		}
		for _, s := range got["auditpg_pg_statement_calls_total"] {
			if want := "SELECT " + f.schema + ".items"; s.labels["queryid"] == id && s.labels["summary"] != want {
				t.Errorf("probe summary label %q, want %q (never the text)", s.labels["summary"], want)
			}
		}
	}
	if !found {
		t.Fatal("pg_stat_statements has no probe statement")
	}
	if v := value(t, got, "auditpg_pg_stat_statements_ready"); v != 1 {
		t.Errorf("auditpg_pg_stat_statements_ready = %v", v)
	}

	// Partitions: monitor's count and default rows, partition's analysis.
	pts, err := mon.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	al := []string{"schema", f.schema, "table", "audit_log"}
	for _, p := range pts {
		if p.Table != f.audit {
			continue
		}
		if v := value(t, got, "auditpg_pg_partitions", al...); int(v) != p.Partitions {
			t.Errorf("partitions = %v, monitor %d", v, p.Partitions)
		}
		if v := value(t, got, "auditpg_pg_partition_default_rows", al...); int64(v) != p.DefaultRows || v != 7 {
			t.Errorf("default rows = %v, monitor %d, want 7", v, p.DefaultRows)
		}
	}
	a, err := auditMgr.Analyze(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(t, got, "auditpg_pg_partitions_future", al...); int(v) != a.Future || a.Future != 2 {
		t.Errorf("future partitions = %v, analysis %d, want the 2 premade", v, a.Future)
	}
	if v := value(t, got, "auditpg_pg_partitions_expired", al...); int(v) != len(a.Expired) {
		t.Errorf("expired = %v, analysis %v", v, a.Expired)
	}
	// Coverage: the current month and two more, minus the part gone.
	now := time.Now().UTC()
	_, end := partition.Monthly.Range(now)
	want := partition.Monthly.Add(end, 2).Sub(now).Seconds()
	if v := value(t, got, "auditpg_pg_partition_ahead_seconds", al...); math.Abs(v-want) > 60 {
		t.Errorf("ahead = %vs, want about %vs (to %v)", v, want, partition.Monthly.Add(end, 2))
	}

	// Connections by state: monitor's counts, the collector's own
	// connection aside (it is active while it reads).
	if v := value(t, got, "auditpg_pg_max_connections"); v < 1 {
		t.Errorf("max_connections = %v", v)
	}
	if len(got["auditpg_pg_connections"]) == 0 {
		t.Error("no connections by state")
	}
	hit, err := mon.CacheHitRatio(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(t, got, "auditpg_pg_cache_hit_ratio", "kind", "table"); math.Abs(v-hit.Table) > 0.05 {
		t.Errorf("table hit ratio = %v, monitor %v", v, hit.Table)
	}

	if v := value(t, got, "auditpg_pg_blocks_hit_total", "kind", "table") + value(t, got, "auditpg_pg_blocks_read_total", "kind", "table"); v <= 0 || v > float64(hit.TableBlocks) {
		t.Errorf("table blocks hit and read = %v, want above 0 and at most the %d monitor counts after", v, hit.TableBlocks)
	}

	// Replication slots: the WAL the test's slot keeps.
	if v := value(t, got, "auditpg_pg_replication_slot_retained_wal_bytes", "slot", f.slot, "type", "physical"); v <= 0 {
		t.Errorf("WAL retained by slot %s = %v, want more than 0 after writes", f.slot, v)
	}
	if v := value(t, got, "auditpg_pg_replication_slot_active", "slot", f.slot); v != 0 {
		t.Errorf("slot %s active = %v, want 0: nothing consumes it", f.slot, v)
	}

	// Driver: the cache's figures as auditpg.Stats reports them.
	st, err := auditpg.Stats(db)
	if err != nil {
		t.Fatal(err)
	}
	if v := value(t, got, "auditpg_driver_cache_hits_total"); v != float64(st.Cache.Hits) || v < 2 {
		t.Errorf("cache hits = %v, Stats %d, want at least 2", v, st.Cache.Hits)
	}
	if v := value(t, got, "auditpg_driver_cache_feed_state", "state", string(st.Cache.Feed)); v != 1 {
		t.Errorf("feed state %s = %v, want 1", st.Cache.Feed, v)
	}
	if v := value(t, got, "auditpg_driver_cache_feed_state", "state", "up"); v != 1 {
		t.Errorf("feed up = %v: the feed should be up after the cached reads", v)
	}
	if v := value(t, got, "auditpg_driver_calls_total", "op", "query"); v < 10 {
		t.Errorf("queries = %v, want at least the 10 made", v)
	}
}

// A scrape storm costs one collection: scrapes within the memo window
// reuse it, concurrent scrapes share it.
func TestMemo(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	c := newCollector(t, db, metrics.WithMemo(time.Minute))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	start := time.Now()
	first := gatherOK(t, reg)
	collect := time.Since(start)
	start = time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { gatherOK(t, reg) })
	}
	wg.Wait()
	second := gatherOK(t, reg)
	memo := time.Since(start)
	if a, b := value(t, first, "auditpg_pg_collections_total"), value(t, second, "auditpg_pg_collections_total"); a != 1 || b != 1 {
		t.Errorf("collections after 10 scrapes in the memo window: %v then %v, want 1", a, b)
	}
	series := 0
	for _, ss := range first {
		series += len(ss)
	}
	t.Logf("a collection of %d series took %v; nine scrapes from the memo %v", series, collect, memo)

	// Without a memo, concurrent scrapes still share one collection.
	c = newCollector(t, db, metrics.WithMemo(0))
	reg = prometheus.NewRegistry()
	reg.MustRegister(c)
	gatherOK(t, reg)
	if v := value(t, gatherOK(t, reg), "auditpg_pg_collections_total"); v != 2 {
		t.Errorf("collections after 2 scrapes without a memo: %v, want 2", v)
	}
}

func gatherOK(t *testing.T, g prometheus.Gatherer) map[string][]sample {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Error(err)
	}
	return flatten(mfs)
}

// A table locked exclusively does not hang the scrape: it returns within
// the timeout with the sections that could run, and says which failed.
func TestTimeoutUnderLock(t *testing.T) {
	ctx := context.Background()
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	table := pgx.Identifier{schema, "locked"}.Sanitize()
	testdb.Exec(t, db, `CREATE TABLE `+table+` (id int)`)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+table+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	const timeout = time.Second
	c := newCollector(t, db, metrics.WithTimeout(timeout), metrics.WithMemo(0))
	start := time.Now()
	got := gather(t, c)
	took := time.Since(start)
	if took > timeout+500*time.Millisecond {
		t.Errorf("the scrape took %v under a lock, want at most the timeout (%v) and a little", took, timeout)
	}
	if v := value(t, got, "auditpg_pg_scrape_error", "section", "tables"); v != 1 {
		t.Errorf("tables section error = %v, want 1 while the table is locked", v)
	}
	if v := value(t, got, "auditpg_pg_scrape_error", "section", "activity"); v != 0 {
		t.Errorf("activity section error = %v, want 0: it takes no lock", v)
	}
	if v := value(t, got, "auditpg_pg_up"); v != 1 {
		t.Errorf("up = %v, want 1", v)
	}
	if len(got["auditpg_pg_connections"]) == 0 {
		t.Error("the connections were not reported: the sections before the locked one should be")
	}
	t.Logf("scrape under lock: %v", took)
	tx.Rollback()
	// A timeout of its own, for a loaded machine: the point is the lock.
	got = gather(t, newCollector(t, db, metrics.WithTimeout(30*time.Second), metrics.WithMemo(0), metrics.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))))
	if v := value(t, got, "auditpg_pg_scrape_error", "section", "tables"); v != 0 {
		t.Errorf("tables section error = %v once the lock is gone, want 0", v)
	}
}

// Labels stay bounded: at most the top N statements, tables and indexes.
func TestBoundedLabels(t *testing.T) {
	ctx := context.Background()
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	for i := range 12 {
		table := pgx.Identifier{schema, fmt.Sprintf("t%02d", i)}.Sanitize()
		testdb.Exec(t, db, `CREATE TABLE `+table+` (id int PRIMARY KEY)`)
		testdb.Exec(t, db, `INSERT INTO `+table+` SELECT generate_series(1, $1)`, 10*(i+1))
		var n int
		// Distinct texts: one statement each in pg_stat_statements.
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+table+` WHERE id > 0`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	got := gather(t, newCollector(t, db, metrics.WithTopStatements(5), metrics.WithMaxTables(3), metrics.WithMaxIndexes(4), metrics.WithMemo(0)))
	for name, want := range map[string]int{
		"auditpg_pg_statement_calls_total": 5,
		"auditpg_pg_table_size_bytes":      3,
		"auditpg_pg_index_size_bytes":      4,
	} {
		if n := len(got[name]); n != want {
			t.Errorf("%s: %d series, want %d", name, n, want)
		}
	}
	for _, s := range got["auditpg_pg_statement_calls_total"] {
		if strings.ContainsAny(s.labels["summary"], "'$") {
			t.Errorf("statement label %q holds a literal or a parameter", s.labels["summary"])
		}
	}
}

func TestOptionsRefuseBadValues(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	for _, o := range []metrics.Option{metrics.WithTimeout(0), metrics.WithTimeout(time.Hour), metrics.WithMemo(-1),
		metrics.WithMemo(2 * time.Hour), metrics.WithTopStatements(0), metrics.WithTopStatements(10001),
		metrics.WithMaxTables(0), metrics.WithMaxIndexes(-1), metrics.WithRetention(partition.Table{}, time.Hour),
		metrics.WithRetention(partition.Table{Name: "audit_log"}, -time.Hour), metrics.WithGatherer(nil)} {
		if _, err := metrics.NewCollector(db, o); err == nil || !strings.Contains(err.Error(), "want") {
			t.Errorf("option accepted, or error without what to give: %v", err)
		}
	}
	if _, err := metrics.NewCollector(nil); err == nil {
		t.Error("NewCollector(nil) accepted")
	}
	if _, err := metrics.NewMeterProvider(nil); err == nil {
		t.Error("NewMeterProvider(nil) accepted")
	}
}
