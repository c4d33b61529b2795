package monitor

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func has[T any](list []T, match func(T) bool) bool { return slices.ContainsFunc(list, match) }

func TestStatementsStatusAndSlowQueries(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	m := newMonitor(t, db)
	st, err := m.StatementsStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || !st.Preloaded || !st.Installed || len(st.Advice) != 0 {
		t.Fatalf("status on the test cluster = %+v, want ready (pgtemp preloads and installs it)", st)
	}

	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_slow (id int PRIMARY KEY, v int)`)
	f.exec(`INSERT INTO mon_slow SELECT g, g % 100 FROM generate_series(1, 5000) g`)
	for i := range 5 {
		f.exec(`SELECT count(*) FROM mon_slow WHERE v > $1`, i)
	}
	find := func() (*SlowQuery, error) {
		qs, err := m.SlowQueries(ctx, SlowQueryOptions{MinCalls: 5, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for i, q := range qs {
			if strings.Contains(q.Query, "FROM mon_slow WHERE v >") {
				return &qs[i], nil
			}
		}
		return nil, nil
	}
	q, err := find()
	if err != nil || q == nil {
		t.Fatalf("SlowQueries: statement not found (err %v)", err)
	}
	if q.Calls != 5 || q.Mean <= 0 || q.Total < q.Mean || q.SharedHit+q.SharedRead == 0 || q.Rows != 5 {
		t.Errorf("statement figures = %+v, want 5 calls, 5 rows, times and buffers > 0", q)
	}
	// Filters: a mean of an hour excludes it; more calls than it has too.
	if qs, _ := m.SlowQueries(ctx, SlowQueryOptions{MinMean: time.Hour}); has(qs, func(s SlowQuery) bool { return s.QueryID == q.QueryID }) {
		t.Error("MinMean of 1h kept a millisecond statement")
	}
	if qs, _ := m.SlowQueries(ctx, SlowQueryOptions{MinCalls: 6, Limit: 1000}); has(qs, func(s SlowQuery) bool { return s.QueryID == q.QueryID }) {
		t.Error("MinCalls 6 kept a statement called 5 times")
	}

	// Reading reports never resets the statistics.
	if _, err := newMonitor(t, db).Summary(ctx); err != nil {
		t.Fatal(err)
	}
	if q2, _ := find(); q2 == nil || q2.Calls != 5 {
		t.Fatalf("after New and Summary the statement is %+v, want it kept with 5 calls", q2)
	}
	if err := m.ResetStatements(ctx); err != nil {
		t.Fatal(err)
	}
	if q3, _ := find(); q3 != nil {
		t.Errorf("after ResetStatements the statement is still there: %+v", q3)
	}
}

func TestStatementsNotInstalled(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if _, err := db.ExecContext(ctx, `DROP DATABASE IF EXISTS mon_noext`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE DATABASE mon_noext`); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	u.Path, u.RawPath = "/mon_noext", ""
	other := openDBAt(t, u.String())
	if _, err := other.ExecContext(ctx, `DROP EXTENSION IF EXISTS pg_stat_statements`); err != nil { // template1 may have it
		t.Fatal(err)
	}
	m := newMonitor(t, other)
	st, err := m.StatementsStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready || st.Installed || !st.Preloaded || len(st.Advice) != 1 || !strings.Contains(st.Advice[0], "CREATE EXTENSION pg_stat_statements") {
		t.Errorf("status without the extension = %+v, want not ready with the CREATE EXTENSION advice only", st)
	}
	if _, err := m.SlowQueries(ctx, SlowQueryOptions{}); !errors.Is(err, ErrStatementsUnavailable) || !strings.Contains(err.Error(), "CREATE EXTENSION") {
		t.Errorf("SlowQueries without the extension: err = %v, want ErrStatementsUnavailable saying what to run", err)
	}
	// The summary still works, and its statements component says why.
	s, err := m.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := component(s.Health, "statements"); c.Status != Warning {
		t.Errorf("statements health without the extension = %+v, want a warning", c)
	}
}

func TestStatementsExprsAcrossVersions(t *testing.T) {
	cols := func(names string) map[string]bool {
		m := map[string]bool{}
		for _, n := range strings.Fields(names) {
			m[n] = true
		}
		return m
	}
	for _, tc := range []struct {
		version, cols string
		want          stmtExprs
	}{
		{"12", "total_time blk_read_time", stmtExprs{"total_time", "0", "blk_read_time", "true"}},
		{"13", "total_exec_time total_plan_time blk_read_time", stmtExprs{"total_exec_time + total_plan_time", "total_plan_time", "blk_read_time", "true"}},
		{"14-16", "toplevel total_exec_time total_plan_time blk_read_time", stmtExprs{"total_exec_time + total_plan_time", "total_plan_time", "blk_read_time", "toplevel"}},
		{"17", "toplevel total_exec_time total_plan_time shared_blk_read_time local_blk_read_time", stmtExprs{"total_exec_time + total_plan_time", "total_plan_time", "shared_blk_read_time", "toplevel"}},
	} {
		if got := statementsExprs(cols(tc.cols)); got != tc.want {
			t.Errorf("PostgreSQL %s: %+v, want %+v", tc.version, got, tc.want)
		}
	}
}

func TestStatementsAdvice(t *testing.T) {
	for _, tc := range []struct {
		name string
		st   StatementsStatus
		want []string
	}{
		{"not preloaded", StatementsStatus{Available: true, Installed: true, QueryIDComputed: true, SharedPreloadLibraries: "auto_explain"},
			[]string{"shared_preload_libraries = 'auto_explain,pg_stat_statements'", "restart"}},
		{"nothing", StatementsStatus{},
			[]string{"contrib", "shared_preload_libraries = 'pg_stat_statements'", "compute_query_id", "CREATE EXTENSION"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.st.advise()
			all := strings.Join(tc.st.Advice, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("advice %q lacks %q", all, w)
				}
			}
			if tc.st.Ready {
				t.Error("Ready = true")
			}
		})
	}
}

func TestUnusedIndexes(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	th := DefaultThresholds()
	th.UnusedIndexMinBytes, th.UnusedIndexMaxScans = 64<<10, 0
	m := newMonitor(t, db, WithThresholds(th))
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_unused (id int PRIMARY KEY, v int, w int)`)
	f.exec(`INSERT INTO mon_unused SELECT g, g % 1000, g FROM generate_series(1, 20000) g`)
	f.exec(`CREATE INDEX mon_unused_v ON mon_unused (v)`)
	f.exec(`CREATE UNIQUE INDEX mon_unused_w ON mon_unused (w)`)
	f.exec(`CREATE TABLE mon_tiny (id int, v int)`)
	f.exec(`CREATE INDEX mon_tiny_v ON mon_tiny (v)`)
	f.flush()

	unused := func(name string) func() (bool, error) {
		return func() (bool, error) {
			u, err := m.UnusedIndexes(ctx)
			return has(u, func(x UnusedIndex) bool { return x.Index == name }), err
		}
	}
	if ok, err := unused("mon_unused_v")(); err != nil || !ok {
		t.Fatalf("mon_unused_v not reported unused (err %v)", err)
	}
	for _, name := range []string{"mon_unused_pkey", "mon_unused_w", "mon_tiny_v"} {
		if ok, _ := unused(name)(); ok {
			t.Errorf("%s reported unused: primary, unique and small indexes never are", name)
		}
	}
	// Fixed: once a query uses it, it is not unused any more.
	f.exec(`SET enable_seqscan = off`)
	f.exec(`SELECT * FROM mon_unused WHERE v = 7`)
	f.exec(`RESET enable_seqscan`)
	f.flush()
	eventually(t, "mon_unused_v drops out once scanned", func() (bool, error) { ok, err := unused("mon_unused_v")(); return !ok, err })
}

func TestUnusedIndexesRollUpPartitions(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	th := DefaultThresholds()
	th.UnusedIndexMinBytes, th.UnusedIndexMaxScans = 0, 0
	m := newMonitor(t, db, WithThresholds(th))
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_part (at date NOT NULL, v int) PARTITION BY RANGE (at)`)
	f.exec(`CREATE TABLE mon_part_2026 PARTITION OF mon_part FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
	f.exec(`CREATE TABLE mon_part_2027 PARTITION OF mon_part FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')`) // premade, empty
	f.exec(`CREATE INDEX mon_part_v ON mon_part (v)`)
	f.exec(`INSERT INTO mon_part SELECT date '2026-01-01' + g % 300, g FROM generate_series(1, 5000) g`)
	f.flush()
	usage, err := m.IndexUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(usage, func(u IndexUsage) bool { return u.Index == "mon_part_v" })
	if i < 0 || usage[i].Partitions != 2 || usage[i].Bytes == 0 {
		t.Fatalf("partitioned index usage = %+v, want mon_part_v rolled up over 2 partitions", usage)
	}
	if has(usage, func(u IndexUsage) bool { return strings.HasPrefix(u.Index, "mon_part_20") }) {
		t.Error("partition indexes listed on their own; want them rolled up into mon_part_v")
	}
	unused := func() (bool, error) {
		u, err := m.UnusedIndexes(ctx)
		return has(u, func(x UnusedIndex) bool { return x.Index == "mon_part_v" }), err
	}
	if ok, _ := unused(); !ok {
		t.Fatal("mon_part_v never scanned but not reported unused")
	}
	// Scanning the 2026 partition only: the index is used, though the
	// premade 2027 partition's index never is.
	f.exec(`SET enable_seqscan = off`)
	f.exec(`SELECT * FROM mon_part WHERE at = '2026-03-01' AND v = 7`)
	f.exec(`RESET enable_seqscan`)
	f.flush()
	eventually(t, "mon_part_v used through one partition", func() (bool, error) { ok, err := unused(); return !ok, err })
}

func TestRedundantIndexes(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	m := newMonitor(t, db)
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_dup (a int, b int, c int)`)
	f.exec(`CREATE INDEX mon_dup_a ON mon_dup (a)`)           // prefix of mon_dup_ab
	f.exec(`CREATE INDEX mon_dup_ab ON mon_dup (a, b)`)       //
	f.exec(`CREATE INDEX mon_dup_ab_again ON mon_dup (a, b)`) // exact duplicate, newer
	f.exec(`CREATE INDEX mon_dup_a_part ON mon_dup (a) WHERE b > 0`)
	f.exec(`CREATE INDEX mon_dup_a_hash ON mon_dup USING hash (a)`)
	f.exec(`CREATE INDEX mon_dup_b_desc ON mon_dup (b DESC)`)
	f.exec(`CREATE INDEX mon_dup_ba ON mon_dup (b, a)`)
	f.exec(`CREATE UNIQUE INDEX mon_dup_c ON mon_dup (c)`)
	f.exec(`CREATE INDEX mon_dup_ca ON mon_dup (c, a)`)
	f.exec(`CREATE INDEX mon_dup_inc_c ON mon_dup (b) INCLUDE (c)`)
	f.exec(`CREATE INDEX mon_dup_inc_a ON mon_dup (b) INCLUDE (a)`) // (b, a) holds the same columns
	red := func() map[string]RedundantIndex {
		r, err := m.RedundantIndexes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]RedundantIndex{}
		for _, x := range r {
			if x.Table.Name == "mon_dup" {
				out[x.Index] = x
			}
		}
		return out
	}
	got := red()
	if r, ok := got["mon_dup_a"]; !ok || r.Duplicate || r.CoveredBy != "mon_dup_ab" && r.CoveredBy != "mon_dup_ab_again" {
		t.Errorf("mon_dup_a: %+v, want redundant (not duplicate), covered by mon_dup_ab", r)
	}
	if r, ok := got["mon_dup_ab_again"]; !ok || !r.Duplicate || r.CoveredBy != "mon_dup_ab" || r.DropSQL != `DROP INDEX CONCURRENTLY "public"."mon_dup_ab_again";` {
		t.Errorf("mon_dup_ab_again: %+v, want a duplicate of mon_dup_ab", r)
	}
	for _, name := range []string{"mon_dup_ab", "mon_dup_a_part", "mon_dup_a_hash", "mon_dup_b_desc", "mon_dup_ba", "mon_dup_c", "mon_dup_ca", "mon_dup_inc_c"} {
		if r, ok := got[name]; ok {
			t.Errorf("%s reported redundant (%+v): different predicate, method, order, leading column, or unique", name, r)
		}
	}
	if r, ok := got["mon_dup_inc_a"]; !ok || r.CoveredBy != "mon_dup_ba" {
		t.Errorf("mon_dup_inc_a: %+v, want covered by mon_dup_ba (same columns, as keys)", r)
	}
	if len(got) != 3 {
		t.Errorf("redundant = %v, want exactly mon_dup_a, mon_dup_ab_again and mon_dup_inc_a", got)
	}
	f.exec(`DROP INDEX mon_dup_inc_a`)
	f.exec(`DROP INDEX mon_dup_a`)
	f.exec(`DROP INDEX mon_dup_ab_again`)
	if got := red(); len(got) != 0 {
		t.Errorf("after dropping them, redundant = %v, want none", got)
	}
}

func TestSeqScanTables(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	m := newMonitor(t, db)
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_seq (id int, v int)`)
	f.exec(`INSERT INTO mon_seq SELECT g, g FROM generate_series(1, 20000) g`)
	f.exec(`ANALYZE mon_seq`)
	for i := range 3 {
		f.exec(`SELECT * FROM mon_seq WHERE v = $1`, i)
	}
	f.flush()
	listed := func() (bool, error) {
		s, err := m.SeqScanTables(ctx)
		return has(s, func(x SeqScanTable) bool { return x.Table.Name == "mon_seq" }), err
	}
	eventually(t, "mon_seq listed as read by sequential scans", listed)
	f.exec(`CREATE INDEX mon_seq_v ON mon_seq (v)`)
	for i := range 100 {
		f.exec(`SELECT * FROM mon_seq WHERE v = $1`, i)
	}
	f.flush()
	eventually(t, "mon_seq no longer listed once read by its index", func() (bool, error) { ok, err := listed(); return !ok, err })
}

func TestMaintenanceVacuumAnalyzeReindex(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	m := newMonitor(t, db)
	f := newFixture(t, db)
	f.exec(`CREATE TABLE mon_dead (id int, v int) WITH (autovacuum_enabled = false)`)
	f.exec(`INSERT INTO mon_dead SELECT g, g FROM generate_series(1, 10000) g`)
	f.exec(`ANALYZE mon_dead`)
	f.exec(`DELETE FROM mon_dead WHERE id % 2 = 0`)
	f.exec(`CREATE TABLE mon_never (id int) WITH (autovacuum_enabled = false)`)
	f.exec(`INSERT INTO mon_never SELECT generate_series(1, 100)`)
	// An invalid index: a unique index built concurrently over duplicates.
	f.exec(`CREATE TABLE mon_inv (id int, v int)`)
	f.exec(`INSERT INTO mon_inv SELECT g, g % 10 FROM generate_series(1, 100) g`)
	f.exec(`ANALYZE mon_inv`)
	if _, err := f.conn.ExecContext(ctx, `CREATE UNIQUE INDEX CONCURRENTLY mon_inv_v ON mon_inv (v)`); err == nil {
		t.Fatal("CREATE UNIQUE INDEX CONCURRENTLY over duplicates succeeded")
	}
	f.exec(`CREATE INDEX mon_inv_id ON mon_inv (id)`) // valid, unused: never reindexed
	f.flush()

	ours := func(actions []MaintenanceAction) map[string]MaintenanceAction {
		out := map[string]MaintenanceAction{}
		for _, a := range actions {
			obj := a.Table.Name
			if a.Index != "" {
				obj = a.Index
			}
			if strings.HasPrefix(obj, "mon_dead") || strings.HasPrefix(obj, "mon_never") || strings.HasPrefix(obj, "mon_inv") {
				out[obj] = a
			}
		}
		return out
	}
	var plan map[string]MaintenanceAction
	eventually(t, "dry run lists vacuum, analyze and reindex", func() (bool, error) {
		actions, err := m.PlanMaintenance(ctx)
		plan = ours(actions)
		return len(plan) == 3, err
	})
	want := map[string]string{
		"mon_dead":  `VACUUM (ANALYZE) "public"."mon_dead";`,
		"mon_never": `ANALYZE "public"."mon_never";`,
		"mon_inv_v": `REINDEX INDEX CONCURRENTLY "public"."mon_inv_v";`,
	}
	for obj, sql := range want {
		if plan[obj].SQL != sql {
			t.Errorf("plan for %s = %+v, want %s", obj, plan[obj], sql)
		}
	}
	if _, ok := plan["mon_inv_id"]; ok {
		t.Error("a valid (unused) index was planned for REINDEX")
	}
	inv, err := m.InvalidIndexes(ctx)
	if err != nil || !has(inv, func(x InvalidIndex) bool { return x.Index == "mon_inv_v" && x.Unique }) {
		t.Fatalf("InvalidIndexes = %+v, %v; want mon_inv_v", inv, err)
	}

	// While the duplicates remain, the reindex fails and says so.
	actions := []MaintenanceAction{plan["mon_dead"], plan["mon_never"], plan["mon_inv_v"]}
	res, err := m.RunMaintenance(ctx, actions, nil)
	if err == nil || len(res) != 3 || res[2].Err == "" || res[0].Err != "" || res[1].Err != "" {
		t.Fatalf("run with duplicates: %+v, %v; want vacuum and analyze done, reindex failed", res, err)
	}
	f.exec(`DELETE FROM mon_inv WHERE id > 10`)
	if _, err := m.RunMaintenance(ctx, actions[2:], nil); err != nil {
		t.Fatalf("reindex after removing duplicates: %v", err)
	}
	// The failed REINDEX CONCURRENTLY left its transient index: the plan
	// drops it rather than reindexing it.
	left, err := m.PlanMaintenance(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leftover := ours(left)["mon_inv_v_ccnew"]
	if leftover.Kind != ActionDropLeftover || leftover.SQL != `DROP INDEX CONCURRENTLY "public"."mon_inv_v_ccnew";` {
		t.Fatalf("plan after a failed reindex = %+v, want the _ccnew leftover dropped", ours(left))
	}
	if _, err := m.RunMaintenance(ctx, []MaintenanceAction{leftover}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.RunMaintenance(ctx, []MaintenanceAction{{Kind: ActionDropLeftover, Table: Table{Schema: "public", Name: "mon_inv"}, Index: "mon_inv_id"}}, nil); err == nil {
		t.Error("drop_leftover dropped an index that is not a REINDEX leftover")
	}
	eventually(t, "plan empty once fixed", func() (bool, error) {
		actions, err := m.PlanMaintenance(ctx)
		return len(ours(actions)) == 0, err
	})
	if inv, _ := m.InvalidIndexes(ctx); has(inv, func(x InvalidIndex) bool { return x.Index == "mon_inv_v" }) {
		t.Error("mon_inv_v still invalid after REINDEX")
	}
	// RunMaintenance builds its statements itself: a tampered SQL field is ignored.
	if _, err := m.RunMaintenance(ctx, []MaintenanceAction{{Kind: "drop", Table: Table{Schema: "public", Name: "mon_inv"}, SQL: "DROP TABLE mon_inv"}}, nil); err == nil {
		t.Error("an unknown action kind ran")
	}
}

func TestSequences(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	m := newMonitor(t, db)
	f := newFixture(t, db)
	f.exec(`CREATE SEQUENCE mon_seq_small MAXVALUE 100`)
	f.exec(`SELECT setval('mon_seq_small', 95)`)
	f.exec(`CREATE TABLE mon_seq_owner (id int)`)
	f.exec(`CREATE SEQUENCE mon_seq_big AS bigint OWNED BY mon_seq_owner.id`)
	f.exec(`SELECT setval('mon_seq_big', 2000000000)`)
	used := func() map[string]SequenceUsage {
		s, err := m.Sequences(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]SequenceUsage{}
		for _, x := range s {
			out[x.Sequence.Name] = x
		}
		return out
	}
	got := used()
	if s := got["mon_seq_small"]; s.Limit != 100 || s.Used < 0.94 || s.Used > 0.96 {
		t.Errorf("mon_seq_small = %+v, want 95%% of 100", s)
	}
	if s := got["mon_seq_big"]; s.Limit != 2147483647 || s.Table == nil || *s.Table != (Table{Schema: "public", Name: "mon_seq_owner"}) || s.Column != "id" || s.Used < 0.9 {
		t.Errorf("mon_seq_big = %+v, want limited by its integer column", s)
	}
	s, err := m.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := component(s.Health, "sequences"); c.Status != Critical || !strings.Contains(strings.Join(c.Reasons, " "), "mon_seq_small") {
		t.Errorf("sequences health = %+v, want critical naming mon_seq_small", c)
	}
	f.exec(`ALTER SEQUENCE mon_seq_small MAXVALUE 1000000`)
	f.exec(`ALTER TABLE mon_seq_owner ALTER id TYPE bigint`)
	got = used()
	if got["mon_seq_small"].Used > 0.01 || got["mon_seq_big"].Used > 0.01 {
		t.Errorf("after widening: %+v, want both nearly unused", got)
	}
}

func component(h Health, name string) Component {
	for _, c := range h.Components {
		if c.Name == name {
			return c
		}
	}
	return Component{}
}

func TestActivityLongRunningAndBlocked(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	th := DefaultThresholds()
	th.LongQueryWarning = 200 * time.Millisecond
	m := newMonitor(t, db, WithThresholds(th), WithLockTimeout(300*time.Millisecond))
	holder, waiter := newFixture(t, db), newFixture(t, db)
	holder.exec(`CREATE TABLE mon_lock (id int)`)
	var holderPID int
	if err := holder.conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&holderPID); err != nil {
		t.Fatal(err)
	}
	holder.exec(`BEGIN`)
	t.Cleanup(func() { _, _ = holder.conn.ExecContext(ctx, `ROLLBACK`) }) // frees the waiter, whatever happens
	// SHARE blocks the waiter's INSERT but not the monitor's reads.
	holder.exec(`LOCK TABLE mon_lock IN SHARE MODE`)
	done := make(chan error, 1)
	go func() {
		_, err := waiter.conn.ExecContext(ctx, `INSERT INTO mon_lock VALUES (1)`)
		done <- err
	}()
	eventually(t, "the waiter shows as blocked by the holder, the holder as long-running", func() (bool, error) {
		a, err := m.Activity(ctx)
		if err != nil {
			return false, err
		}
		blocked := has(a.Blocked, func(b Backend) bool { return slices.Contains(b.BlockedBy, holderPID) })
		long := has(a.LongRunning, func(b Backend) bool { return b.PID == holderPID && b.State == "idle in transaction" })
		return blocked && long && a.Connections["idle in transaction"] >= 1, nil
	})
	s, err := m.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := component(s.Health, "queries"); c.Status != Warning || len(c.Reasons) < 2 {
		t.Errorf("queries health = %+v, want a warning for the open transaction and the blocked query", c)
	}
	holder.exec(`COMMIT`)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	a, err := m.Activity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if has(a.Blocked, func(b Backend) bool { return slices.Contains(b.BlockedBy, holderPID) }) {
		t.Errorf("still blocked after COMMIT: %+v", a.Blocked)
	}

	// An exclusive lock (ALTER TABLE, VACUUM FULL) blocks reading sizes:
	// the report fails after the lock timeout, saying why, instead of hanging.
	holder.exec(`BEGIN`)
	holder.exec(`LOCK TABLE mon_lock IN ACCESS EXCLUSIVE MODE`)
	start := time.Now()
	_, err = m.Summary(ctx)
	if err == nil || !strings.Contains(err.Error(), "locked by another session") || time.Since(start) > 5*time.Second {
		t.Errorf("summary with a table locked exclusively: %v after %s, want the lock timeout explained", err, time.Since(start))
	}
	holder.exec(`COMMIT`)
}
