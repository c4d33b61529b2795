package auditpg

import (
	"bytes"
	"context"
	"database/sql"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/auditpg/auditpg/internal/pgtemp"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// Tests of coherence with auditpg_invalidate=wal, on a cluster of their own
// with wal_level = logical: no statement trigger is installed, the WAL
// alone tells the caches of every writer.

// leaderOf is the WAL decoder's candidate of db's connector.
func leaderOf(db *sql.DB) *changefeed.Leader { return db.Driver().(*Driver).c.leader }

func TestCoherenceWAL(t *testing.T) {
	cluster := testdb.LogicalCluster(t)
	dsn := cluster.DSN()
	t.Run("randomized", func(t *testing.T) {
		run := 10 * time.Second
		if testing.Short() {
			run = 3 * time.Second
		}
		runCoherence(t, dsn, InvalidateWAL, run)
	})
	t.Run("truncate", func(t *testing.T) { walTruncate(t, dsn) })
	t.Run("decoder terminated", func(t *testing.T) { walFailover(t, dsn, false) })
	t.Run("leader closed", func(t *testing.T) { walFailover(t, dsn, true) })
	t.Run("server restarted", func(t *testing.T) { walRestart(t, cluster) })
}

// walRestart: the server restarts under two connectors in wal mode; a
// write made as soon as it is back, before any slot exists, is not served
// stale once the feeds are up again.
func walRestart(t *testing.T, cluster *pgtemp.Cluster) {
	ctx := context.Background()
	dsn := cluster.DSN()
	admin := testdb.Open(t, "pgx", dsn)
	walTable(t, admin, "coh_wal_restart")
	insts := []*cohInstance{openCohInstanceOf(t, dsn, InvalidateWAL, "A"), openCohInstanceOf(t, dsn, InvalidateWAL, "B")}
	for _, in := range insts {
		walRead(t, in, "coh_wal_restart")
		walFeedUp(t, in)
		if walRead(t, in, "coh_wal_restart") != 1 {
			t.Fatal("want 1")
		}
	}
	admin.SetMaxIdleConns(0) // none kept across the restart, for the clean-up
	if err := cluster.Restart(ctx, nil); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE coh_wal_restart SET v = 2 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	for _, in := range insts {
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(time.Millisecond) {
			if s := cacheStats(t, in.db); s.Feed == "up" && s.FeedDowns >= 1 {
				t.Logf("instance %s: the feed is up again %v after the server came back", in.name, time.Since(back))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s: the feed is not up again 15s after the restart: %+v", in.name, cacheStats(t, in.db))
			}
		}
		if v := walRead(t, in, "coh_wal_restart"); v != 2 {
			t.Errorf("instance %s: stale read %d after the restart; want 2", in.name, v)
		}
	}
}

// walTable creates a table (id, v) with one row (1, 1) and drops it when
// the test ends.
func walTable(t *testing.T, admin *sql.DB, name string) {
	t.Helper()
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS `+name)
	testdb.Exec(t, admin, `CREATE TABLE `+name+` (id int PRIMARY KEY, v int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO `+name+` VALUES (1, 1)`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS `+name) })
}

// walFeedUp waits until in's feed is up.
func walFeedUp(t *testing.T, in *cohInstance) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); cacheStats(t, in.db).Feed != "up"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("instance %s: the change feed is not up after 10s", in.name)
		}
	}
}

// walRead reads v of row 1 of table through in.
func walRead(t *testing.T, in *cohInstance, table string) int {
	t.Helper()
	var v int
	if err := in.db.QueryRowContext(context.Background(), `SELECT v FROM `+table+` WHERE id = 1`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// walTruncate: a TRUNCATE by another writer empties what a cache holds.
func walTruncate(t *testing.T, dsn string) {
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", dsn)
	walTable(t, admin, "coh_wal_trunc")
	a := openCohInstanceOf(t, dsn, InvalidateWAL, "A")
	q := `SELECT count(*) FROM coh_wal_trunc`
	for i, want := range []string{"miss", "hit"} {
		if _, outcome, reason := ciDo(t, a.db, a.db, ctx, q); outcome != want {
			t.Fatalf("read %d: %s (%s); want %s", i+1, outcome, reason, want)
		}
	}
	sent := time.Now()
	testdb.Exec(t, admin, `TRUNCATE coh_wal_trunc`)
	if _, ok := a.rec.await("coh_wal_trunc", sent); !ok {
		t.Fatal("the TRUNCATE was not received")
	}
	var n int
	if err := a.db.QueryRowContext(ctx, q).Scan(&n); err != nil || n != 0 {
		t.Errorf("after the TRUNCATE was received: %d rows, %v; want 0", n, err)
	}
}

// walFailover: two connectors in wal mode, one leader. The decoder's
// stream is lost (its walsender terminated) or its leader closes, and a
// write by another process commits meanwhile: once the survivors have
// heard of a write committed after it, none serves the older value; the
// time until the takeover's All reached them is reported, and no slot is
// left once every connector is closed.
func walFailover(t *testing.T, dsn string, closeLeader bool) {
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", dsn)
	walTable(t, admin, "coh_wal_fail")
	walTable(t, admin, "coh_wal_barrier")
	insts := []*cohInstance{openCohInstanceOf(t, dsn, InvalidateWAL, "A"), openCohInstanceOf(t, dsn, InvalidateWAL, "B")}
	for _, in := range insts {
		walRead(t, in, "coh_wal_fail") // starts the feed
		walFeedUp(t, in)
	}
	time.Sleep(1500 * time.Millisecond) // the other candidate has tried the lock
	leaders := 0
	var leader, other *cohInstance
	for i, in := range insts {
		if leaderOf(in.db).Leading() {
			leaders++
			leader, other = in, insts[1-i]
		}
	}
	if leaders != 1 {
		t.Fatalf("%d of the 2 connectors lead; want 1", leaders)
	}
	slots := func() (n int) {
		if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'auditpg\_%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := slots(); n != 1 {
		t.Fatalf("%d slots; want 1", n)
	}
	survivors := insts
	for _, in := range insts {
		if v := walRead(t, in, "coh_wal_fail"); v != 1 || walRead(t, in, "coh_wal_fail") != 1 {
			t.Fatalf("instance %s read %d; want 1", in.name, v)
		}
	}
	hits := cacheStats(t, other.db).Hits

	lost := time.Now()
	if closeLeader {
		survivors = []*cohInstance{other}
		leader.db.Close()
	} else {
		var killed int
		if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name LIKE 'auditpg\_%'`).Scan(&killed); err != nil || killed != 1 {
			t.Fatalf("terminated %d walsenders, %v; want 1", killed, err)
		}
	}
	// Another process's write, during the takeover or after it.
	testdb.Exec(t, admin, `UPDATE coh_wal_fail SET v = 2 WHERE id = 1`)
	for _, in := range survivors {
		at, ok := in.rec.await("", lost)
		if !ok {
			t.Fatalf("instance %s: no All after the decoder was lost", in.name)
		}
		t.Logf("instance %s: the takeover's All received %v after the decoder was lost", in.name, at.Sub(lost))
	}
	if closeLeader && !leaderOf(other.db).Leading() {
		t.Error("the survivor does not lead")
	}
	// A write committed after the takeover and received: the decoder
	// publishes in commit order, so the one before was heard of too.
	sent := time.Now()
	testdb.Exec(t, admin, `UPDATE coh_wal_barrier SET v = 2 WHERE id = 1`)
	for _, in := range survivors {
		if _, ok := in.rec.awaitNamed("coh_wal_barrier", sent); !ok {
			t.Fatalf("instance %s: the barrier was not received", in.name)
		}
		walFeedUp(t, in)
		if v := walRead(t, in, "coh_wal_fail"); v != 2 {
			t.Errorf("instance %s: stale read %d after the takeover; want 2", in.name, v)
		}
		walRead(t, in, "coh_wal_fail")
	}
	if got := cacheStats(t, other.db).Hits; got <= hits {
		t.Errorf("instance %s serves no hit after the takeover (%d -> %d)", other.name, hits, got)
	}
	for deadline := time.Now().Add(5 * time.Second); slots() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots 5s after the takeover; want 1", slots())
		}
	}
	for _, in := range insts {
		in.db.Close()
	}
	for deadline := time.Now().Add(5 * time.Second); slots() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d slots left 5s after every connector closed; want 0", slots())
		}
	}
}

// TestCoherenceWALLevel: without wal_level = logical, the cache bypasses
// (the feed is down) and the log says why and what to do.
func TestCoherenceWALLevel(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var logged bytes.Buffer
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	admin := testdb.Open(t, "pgx", testDSN)
	var level string
	if err := admin.QueryRowContext(ctx, `SELECT current_setting('wal_level')`).Scan(&level); err != nil || level == "logical" {
		t.Fatalf("the shared cluster's wal_level is %q (%v); the test wants another", level, err)
	}
	walTable(t, admin, "coh_wal_level")
	a := openCohInstanceOf(t, testDSN, InvalidateWAL, "A", WithLogger(logger))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		out := logged.String()
		mu.Unlock()
		if strings.Contains(out, "ALTER SYSTEM SET wal_level = logical") && strings.Contains(out, "restart") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the log does not say to set wal_level = logical and restart: %s", out)
		}
		walRead(t, a, "coh_wal_level")
	}
	for range 2 {
		if _, outcome, reason := ciDo(t, a.db, a.db, ctx, `SELECT v FROM coh_wal_level WHERE id = 1`); outcome != "bypass" || !strings.Contains(reason, "feed") {
			t.Errorf("a read: %s (%s); want a bypass while the change feed is down", outcome, reason)
		}
	}
	if s := cacheStats(t, a.db); s.Feed != "down" {
		t.Errorf("the feed is %s; want down", s.Feed)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// With auditpg_invalidate=wal, every writer's changes reach the cache of
// every process from the server's logical decoding, triggers or not: the
// server needs wal_level = logical, the user REPLICATION.
func ExampleWithInvalidation() {
	db, err := Open("postgres://app@localhost:5432/audit",
		WithCacheMode(CacheAll), WithInvalidation(InvalidateWAL), WithLogger(slog.Default()))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}

// TestInvalidateWALParam: the DSN takes auditpg_invalidate=wal, and a
// value it does not know is refused with the three it does.
func TestInvalidateWALParam(t *testing.T) {
	c, err := NewConnector(ciDSN(t, "", map[string]string{"auditpg_invalidate": "WAL", "auditpg_cache": "all"}))
	if err != nil {
		t.Fatalf("auditpg_invalidate=WAL: %v", err)
	}
	if c.cfg.invalidation != InvalidateWAL || c.leader == nil {
		t.Errorf("auditpg_invalidate=WAL: invalidation %q, leader %v; want wal and a candidate", c.cfg.invalidation, c.leader)
	}
	c.Close()
	_, err = NewConnector(ciDSN(t, "", map[string]string{"auditpg_invalidate": "logical"}))
	if err == nil || !strings.Contains(err.Error(), "notify, wal or local") {
		t.Errorf("auditpg_invalidate=logical: %v; want an error naming notify, wal or local", err)
	}
	if _, err := Open(testDSN, WithInvalidation("logical")); err == nil || !strings.Contains(err.Error(), "InvalidateWAL") {
		t.Errorf("WithInvalidation(logical): %v; want an error naming InvalidateWAL", err)
	}
}
