package auditpg

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCoherenceServerRestart: across a restart of the server, a connector
// in notify mode loses its change feed, bypasses the cache while it is
// down, and once it is back drops every entry: a write made by another
// process as the server came back is never served stale.
func TestCoherenceServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL of its own, several seconds: not with -short")
	}
	ctx := context.Background()
	c := startRestartCluster(t)
	a := ciOpenDSN(t, c.DSN(), WithCacheMode(CacheAll), WithInvalidation(InvalidateNotify))
	read := func() (int, error) {
		var v int
		err := a.QueryRowContext(ctx, `SELECT v FROM restart_kv WHERE id = 1`).Scan(&v)
		return v, err
	}
	for range 2 {
		if _, err := read(); err != nil {
			t.Fatal(err)
		}
	}
	if s := cacheStats(t, a); s.Hits != 1 || s.Feed != "up" {
		t.Fatalf("before the restart: %+v; want a hit and the feed up", s)
	}

	var sawDown bool
	err := c.Restart(ctx, func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if cacheStats(t, a).Feed == "down" {
				sawDown = true
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	if !sawDown {
		t.Error("the change feed never went down while the server was")
	}
	// Another process writes as soon as the server is back, perhaps before
	// the feed listens again: the resynchronisation covers it.
	other, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, `UPDATE restart_kv SET v = -1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		s := cacheStats(t, a)
		if s.Feed == "up" && s.FeedResyncs >= 2 {
			t.Logf("the change feed was up again %v after the server", time.Since(back))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change feed is not back 10s after the server: %+v", s)
		}
	}
	// Reads before the feed was back bypassed or failed; now none is stale.
	// (The pool's connections died with the server: database/sql retries
	// on a fresh one, but a first error may surface.)
	reads := 0
	for range 5 {
		v, err := read()
		if err != nil {
			continue
		}
		reads++
		if v != -1 {
			t.Fatalf("after the restart, read %d; want -1 (written by another process as the server came back)", v)
		}
	}
	if reads < 3 {
		t.Errorf("only %d of 5 reads succeeded after the restart", reads)
	}
}
