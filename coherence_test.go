package auditpg

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// Tests of coherence across processes: two connectors with caches of their
// own stand for two processes; every writer (each connector, bare pgx,
// psql, a trigger, a cascade, COPY) must reach both caches through the
// change feed. The tables are the test's own, and the tests are not
// parallel: other tests' DDL would flush these caches (harmless, but it
// makes the windows measured here longer).

// receipts is an InvalidationObserver that records when its connector
// invalidated each table (nil tables: everything).
type receipts struct {
	mu     sync.Mutex
	events []receipt
	wake   chan struct{}
}

type receipt struct {
	at     time.Time
	tables []string
}

func newReceipts() *receipts { return &receipts{wake: make(chan struct{}, 1)} }

func (r *receipts) Start(ctx context.Context, _ *Event) context.Context { return ctx }
func (r *receipts) End(context.Context, *Event)                         {}

func (r *receipts) Invalidated(_ context.Context, tables []string) {
	r.mu.Lock()
	r.events = append(r.events, receipt{time.Now(), slices.Clone(tables)})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// await returns when the connector first invalidated table (or everything)
// at or after since, waiting up to 5s; table "" waits for everything.
func (r *receipts) await(table string, since time.Time) (time.Time, bool) {
	return r.awaitEvent(since, func(tables []string) bool {
		return tables == nil || table != "" && slices.Contains(tables, table)
	})
}

// awaitNamed is await for an invalidation that names table: a barrier,
// which a drop of everything must not stand for.
func (r *receipts) awaitNamed(table string, since time.Time) (time.Time, bool) {
	return r.awaitEvent(since, func(tables []string) bool { return slices.Contains(tables, table) })
}

func (r *receipts) awaitEvent(since time.Time, match func(tables []string) bool) (time.Time, bool) {
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if !e.at.Before(since) && match(e.tables) {
				r.mu.Unlock()
				return e.at, true
			}
		}
		r.mu.Unlock()
		select {
		case <-r.wake:
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// cohInstance is one of the two "processes".
type cohInstance struct {
	name string
	db   *sql.DB
	rec  *receipts
}

func openCohInstance(t *testing.T, name string) *cohInstance {
	return openCohInstanceOf(t, testDSN, InvalidateNotify, name)
}

// openCohInstanceOf is an instance on dsn that hears of the others' writes
// from src.
func openCohInstanceOf(t *testing.T, dsn string, src Invalidation, name string, opts ...Option) *cohInstance {
	rec := newReceipts()
	db := ciOpenDSN(t, dsn, append([]Option{WithCacheMode(CacheAll), WithInvalidation(src), WithObserver(rec)}, opts...)...)
	return &cohInstance{name: name, db: db, rec: rec}
}

// cohObservable is a cached read whose value only grows as the test writes.
type cohObservable struct {
	table, query string
}

var (
	cohVersion = cohObservable{"coh_item", `SELECT v FROM coh_item WHERE id = 1`}
	cohOldest  = cohObservable{"coh_child", `SELECT coalesce(min(parent), 0) FROM coh_child`}
	cohParted  = cohObservable{"coh_parted", `SELECT coalesce(max(v), 0) FROM coh_parted`} // a partition's rows
)

// cohRead is one read an instance made, for the check after the run.
type cohRead struct {
	inst    int
	obs     cohObservable
	started time.Time
	value   int64
}

// cohWrite is one committed write: the value it made the observable reach,
// and when each instance received it.
type cohWrite struct {
	via      string
	local    int // the instance that wrote it, which invalidates in process; -1 for none
	obs      cohObservable
	value    int64
	commit   time.Time
	received [2]time.Time
}

func TestCoherenceAcrossConnectors(t *testing.T) {
	run := 30 * time.Second
	if testing.Short() {
		run = 3 * time.Second
	}
	runCoherence(t, testDSN, InvalidateNotify, run)
}

// cohDropLocalEvery, when above 0, has each reader of runCoherence empty
// its instance's own tier every that many reads, so that reads go to a
// shared tier (Redis) and not only to the instance's memory.
var cohDropLocalEvery = 0

// runCoherence runs the randomized reads and writes of two instances on
// dsn, opened with opts, that hear of each other's and every writer's
// changes from src (with notify, through the statement triggers it
// installs) for run, and checks that no read started after its instance
// received a write missed it; it returns the instances, still open, for
// the caller's own checks.
func runCoherence(t *testing.T, dsn string, src Invalidation, run time.Duration, opts ...Option) [2]*cohInstance {
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", dsn)
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS coh_item, coh_child, coh_parent, coh_src, coh_parted, coh_barrier`,
		`CREATE TABLE coh_item (id int PRIMARY KEY, v bigint NOT NULL)`,
		`INSERT INTO coh_item VALUES (1, 0)`,
		`CREATE TABLE coh_barrier (v bigint PRIMARY KEY)`,
		`INSERT INTO coh_barrier VALUES (0)`,
		`CREATE TABLE coh_parent (id bigint PRIMARY KEY)`,
		`CREATE TABLE coh_child (parent bigint NOT NULL REFERENCES coh_parent ON DELETE CASCADE)`,
		`INSERT INTO coh_parent VALUES (0)`,
		`INSERT INTO coh_child VALUES (0)`,
		// A write to coh_src is a write to coh_item, by a trigger the
		// driver never sees.
		`CREATE TABLE coh_src (v bigint NOT NULL)`,
		`CREATE OR REPLACE FUNCTION coh_src_apply() RETURNS trigger LANGUAGE plpgsql AS $$
		 BEGIN UPDATE coh_item SET v = NEW.v WHERE id = 1; RETURN NULL; END $$`,
		`CREATE TRIGGER coh_src_apply AFTER INSERT ON coh_src FOR EACH ROW EXECUTE FUNCTION coh_src_apply()`,
		// Writes to the parent land in the partition.
		`CREATE TABLE coh_parted (v bigint NOT NULL) PARTITION BY RANGE (v)`,
		`CREATE TABLE coh_parted_1 PARTITION OF coh_parted FOR VALUES FROM (0) TO (MAXVALUE)`,
	} {
		testdb.Exec(t, admin, stmt)
	}
	if src == InvalidateWAL { // tables without a primary key, in a publication of their updates and deletes
		for _, table := range []string{"coh_child", "coh_src", "coh_parted_1"} {
			testdb.Exec(t, admin, `ALTER TABLE `+table+` REPLICA IDENTITY FULL`)
		}
	}
	if src == InvalidateNotify {
		testdb.Exec(t, admin, changefeed.InstallFunctionSQL("public"))
		for _, table := range []string{"coh_item", "coh_child", "coh_parent", "coh_src", "coh_parted", "coh_parted_1"} {
			testdb.Exec(t, admin, changefeed.InstallTriggerSQL(pgx.Identifier{table}, "public"))
		}
	}
	t.Cleanup(func() {
		testdb.Exec(t, admin, `DROP TABLE IF EXISTS coh_item, coh_child, coh_parent, coh_src, coh_parted, coh_barrier`)
		testdb.Exec(t, admin, `DROP FUNCTION IF EXISTS coh_src_apply()`)
	})
	bare, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close(ctx)
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatalf("psql, one of the writers, is not installed: %v", err)
	}

	insts := [2]*cohInstance{openCohInstanceOf(t, dsn, src, "A", opts...), openCohInstanceOf(t, dsn, src, "B", opts...)}

	// Readers: each instance reads both observables without pause, so that
	// fills start before, during and after each write and its receipt.
	var reads []cohRead
	var readsMu sync.Mutex
	stop := make(chan struct{})
	var readers sync.WaitGroup
	var readErrors atomic.Int64
	for i, in := range insts {
		for range 2 {
			readers.Add(1)
			go func() {
				defer readers.Done()
				var local []cohRead
				for n := 0; ; n++ {
					select {
					case <-stop:
						readsMu.Lock()
						reads = append(reads, local...)
						readsMu.Unlock()
						return
					default:
					}
					obs := cohVersion
					switch n % 4 {
					case 2:
						obs = cohOldest
					case 3:
						obs = cohParted
					}
					started := time.Now()
					var v int64
					if err := in.db.QueryRowContext(ctx, obs.query).Scan(&v); err != nil {
						readErrors.Add(1)
						continue
					}
					local = append(local, cohRead{inst: i, obs: obs, started: started, value: v})
					if cohDropLocalEvery > 0 && n%cohDropLocalEvery == 0 {
						if c, err := connectorOf(in.db); err == nil {
							c.cache.DropLocal() // the next reads go to the shared tier
						}
					}
					time.Sleep(100 * time.Microsecond) // leave the writers some of the machine
				}
			}()
		}
	}

	var version, oldest, parted int64
	writers := []struct {
		via   string
		local int
		setup func() error // before the write, its notifications received first
		do    func() (cohObservable, int64, error)
	}{
		{"auditpg A", 0, nil, func() (cohObservable, int64, error) {
			version++
			_, err := insts[0].db.ExecContext(ctx, `UPDATE coh_item SET v = $1 WHERE id = 1`, version)
			return cohVersion, version, err
		}},
		{"auditpg B, in a transaction", 1, nil, func() (cohObservable, int64, error) {
			version++
			tx, err := insts[1].db.BeginTx(ctx, nil)
			if err != nil {
				return cohVersion, version, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE coh_item SET v = $1 WHERE id = 1`, version); err != nil {
				tx.Rollback()
				return cohVersion, version, err
			}
			return cohVersion, version, tx.Commit()
		}},
		{"bare pgx", -1, nil, func() (cohObservable, int64, error) {
			version++
			_, err := bare.Exec(ctx, `UPDATE coh_item SET v = $1 WHERE id = 1`, version)
			return cohVersion, version, err
		}},
		{"psql", -1, nil, func() (cohObservable, int64, error) {
			version++
			out, err := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn,
				"-c", fmt.Sprintf(`UPDATE coh_item SET v = %d WHERE id = 1`, version)).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, out)
			}
			return cohVersion, version, err
		}},
		{"a trigger on another table", -1, nil, func() (cohObservable, int64, error) {
			version++
			_, err := bare.Exec(ctx, `INSERT INTO coh_src VALUES ($1)`, version)
			return cohVersion, version, err
		}},
		{"COPY into a table whose trigger writes", -1, nil, func() (cohObservable, int64, error) {
			version++
			_, err := bare.CopyFrom(ctx, pgx.Identifier{"coh_src"}, []string{"v"}, pgx.CopyFromRows([][]any{{version - 1}, {version}}))
			return cohVersion, version, err
		}},
		{"a partition, through its parent", -1, nil, func() (cohObservable, int64, error) {
			parted++
			_, err := bare.Exec(ctx, `INSERT INTO coh_parted VALUES ($1)`, parted)
			return cohParted, parted, err
		}},
		{"ON DELETE CASCADE", -1, func() error {
			// A new parent with a child; then the write: the oldest parent
			// goes, and its child by the cascade alone.
			if _, err := bare.Exec(ctx, `INSERT INTO coh_parent VALUES ($1)`, oldest+1); err != nil {
				return err
			}
			_, err := bare.Exec(ctx, `INSERT INTO coh_child VALUES ($1)`, oldest+1)
			return err
		}, func() (cohObservable, int64, error) {
			oldest++
			_, err := bare.Exec(ctx, `DELETE FROM coh_parent WHERE id = $1`, oldest-1)
			return cohOldest, oldest, err
		}},
	}

	// quiesce returns once every notification of the writes so far has
	// arrived: the instances have sent what they published, and a barrier
	// notified after that (with wal, a write decoded after them) has
	// reached both. The first invalidation of a
	// table after the next write starts is then that write's.
	barriers := 0
	quiesce := func() {
		for _, in := range insts {
			for deadline := time.Now().Add(5 * time.Second); cacheStats(t, in.db).FeedPending > 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("instance %s still has invalidations to publish after 5s", in.name)
				}
			}
		}
		barriers++
		barrier := fmt.Sprint("coh_barrier_", barriers)
		sent := time.Now()
		var err error
		if src == InvalidateWAL {
			// The decoder publishes in commit order: a write's receipt
			// follows those of the commits before it.
			barrier = "coh_barrier"
			_, err = bare.Exec(ctx, `UPDATE coh_barrier SET v = $1`, barriers)
		} else {
			_, err = bare.Exec(ctx, `SELECT pg_notify($1, $2)`, changefeed.Channel, changefeed.Payload("public", barrier))
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range insts {
			if _, ok := in.rec.awaitNamed(barrier, sent); !ok {
				t.Fatalf("instance %s never received the barrier", in.name)
			}
		}
	}

	// The readers' first reads start each instance's feed.
	for _, in := range insts {
		for deadline := time.Now().Add(5 * time.Second); cacheStats(t, in.db).Feed != "up"; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("instance %s: the change feed is not up after 5s", in.name)
			}
		}
	}

	var writes []cohWrite
	rng := rand.New(rand.NewPCG(1, 2))
	var order []int
	for deadline := time.Now().Add(run); time.Now().Before(deadline); {
		if len(order) == 0 { // every writer once a round, in a random order
			order = rng.Perm(len(writers))
		}
		w := writers[order[0]]
		order = order[1:]
		if w.setup != nil {
			if err := w.setup(); err != nil {
				t.Fatalf("before the write through %s: %v", w.via, err)
			}
		}
		quiesce()
		start := time.Now()
		obs, value, err := w.do()
		commit := time.Now()
		if err != nil {
			t.Fatalf("write through %s: %v", w.via, err)
		}
		cw := cohWrite{via: w.via, local: w.local, obs: obs, value: value, commit: commit}
		for i, in := range insts {
			at, ok := in.rec.await(obs.table, start)
			if !ok {
				t.Fatalf("instance %s never received the write through %s to %s", in.name, w.via, obs.table)
			}
			cw.received[i] = at
		}
		writes = append(writes, cw)
	}
	close(stop)
	readers.Wait()

	// The check: a read that started after its instance received a write
	// sees that write (values only grow).
	stale := 0
	for _, r := range reads {
		for _, w := range writes {
			if w.obs != r.obs || !r.started.After(w.received[r.inst]) || r.value >= w.value {
				continue
			}
			if stale++; stale <= 10 {
				t.Errorf("stale read on %s: %s = %d, started %v after the receipt of the write through %s of %d",
					insts[r.inst].name, r.obs.query, r.value, r.started.Sub(w.received[r.inst]), w.via, w.value)
			}
		}
	}
	var windows []time.Duration
	byVia := map[string]int{}
	for _, w := range writes {
		byVia[w.via]++
		for i := range insts {
			if i != w.local {
				// A receipt may come before the writer's client has seen its
				// commit return: a window of 0.
				windows = append(windows, max(0, w.received[i].Sub(w.commit)))
			}
		}
	}
	slices.Sort(windows)
	hits := 0
	for _, in := range insts {
		hits += int(cacheStats(t, in.db).Hits)
	}
	t.Logf("%d writes %v, %d reads (%d read errors), %d cache hits, %d stale", len(writes), byVia, len(reads), readErrors.Load(), hits, stale)
	if len(windows) > 0 {
		t.Logf("commit-to-receipt window over %d receipts in other instances: p50 %v, p99 %v, max %v", len(windows),
			windows[len(windows)/2], windows[len(windows)*99/100], windows[len(windows)-1])
	}
	if readErrors.Load() > 0 {
		t.Errorf("%d reads failed", readErrors.Load())
	}
	if hits == 0 {
		t.Error("no read was served from a cache: the test proved nothing")
	}
	for _, w := range writers {
		if byVia[w.via] == 0 {
			t.Errorf("no write went through %s", w.via)
		}
	}
	return insts
}

// TestCoherenceFeedLoss: a connector whose listening connection is
// terminated bypasses the cache until the feed is back, then drops every
// entry: a write it could not hear of (no trigger, another process) is not
// served stale.
func TestCoherenceFeedLoss(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS coh_loss`)
	testdb.Exec(t, admin, `CREATE TABLE coh_loss (id int PRIMARY KEY, v int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO coh_loss VALUES (1, 1)`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS coh_loss`) })
	a := openCohInstance(t, "A")
	read := func() int {
		t.Helper()
		var v int
		if err := a.db.QueryRowContext(ctx, `SELECT v FROM coh_loss WHERE id = 1`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	read()
	if v := read(); v != 1 || cacheStats(t, a.db).Hits != 1 {
		t.Fatalf("read %d, %d hits; want 1 and a hit", v, cacheStats(t, a.db).Hits)
	}

	var killed int
	terminated := time.Now()
	if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		changefeed.ListenerName).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d listeners, %v; want 1", killed, err)
	}
	// A write no trigger publishes, as another process's would be missed
	// while the feed is down.
	testdb.Exec(t, admin, `UPDATE coh_loss SET v = 2 WHERE id = 1`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s := cacheStats(t, a.db)
		if s.FeedDowns == 1 && s.FeedResyncs == 2 && s.Feed == "up" {
			t.Logf("feed back %v after its connection was terminated", time.Since(terminated))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed did not go down and come back within 10s: %+v", s)
		}
	}
	if v := read(); v != 2 {
		t.Errorf("after the feed came back, read %d; want 2 (the cache must drop what it held)", v)
	}
	before := cacheStats(t, a.db).Hits
	if v := read(); v != 2 || cacheStats(t, a.db).Hits != before+1 {
		t.Errorf("the cache does not serve again once the feed is back: read %d, hits %d -> %d", v, before, cacheStats(t, a.db).Hits)
	}
}

// TestCoherenceDDLElsewhere: DDL by another process reaches a connector's
// memory of the catalog through the event trigger: once a table gains
// row-level security elsewhere, its reads bypass the cache.
func TestCoherenceDDLElsewhere(t *testing.T) {
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS coh_ddl`)
	testdb.Exec(t, admin, `CREATE TABLE coh_ddl (id int PRIMARY KEY, v int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO coh_ddl VALUES (1, 1)`)
	plan, err := changefeed.PlanInstall(ctx, admin, "public", []string{"coh_ddl"})
	if err != nil {
		t.Fatal(err)
	}
	if !plan.DDLTrigger {
		t.Fatal("the test user is not a superuser: the DDL trigger cannot be tested")
	}
	if err := plan.Apply(ctx, admin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		u, err := changefeed.PlanUninstall(ctx, admin, "public", nil)
		if err == nil {
			err = u.Apply(ctx, admin)
		}
		if err != nil {
			t.Error(err)
		}
		testdb.Exec(t, admin, `DROP TABLE IF EXISTS coh_ddl`)
	})

	a := openCohInstance(t, "A")
	q := `SELECT v FROM coh_ddl WHERE id = 1`
	for i := range 2 {
		if _, outcome, reason := ciDo(t, a.db, a.db, ctx, q); outcome != []string{"miss", "hit"}[i] {
			t.Fatalf("read %d: %s (%s); want %s", i+1, outcome, reason, []string{"miss", "hit"}[i])
		}
	}
	sent := time.Now()
	testdb.Exec(t, admin, `ALTER TABLE coh_ddl ENABLE ROW LEVEL SECURITY`)
	if _, ok := a.rec.await("", sent); !ok { // everything: the DDL trigger's payload
		t.Fatal("the DDL was not received")
	}
	if _, outcome, reason := ciDo(t, a.db, a.db, ctx, q); outcome != "bypass" || !strings.Contains(reason, "row-level security") {
		t.Errorf("after row-level security was enabled elsewhere: %s (%s); want a bypass for row-level security", outcome, reason)
	}
}
