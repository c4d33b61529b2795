package auditpg

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
)

// redisAggregate is the expensive read of the Redis tier's figures: an
// aggregate over an audit log of 400,000 events, several milliseconds on
// the server.
const redisAggregate = `SELECT action, count(*), sum(bytes), max(at) FROM redis_audit WHERE org = $1 GROUP BY action ORDER BY action`

func redisAuditTable(tb testing.TB) {
	tb.Helper()
	admin := testdb.Open(tb, "pgx", testDSN)
	testdb.Exec(tb, admin, `CREATE TABLE IF NOT EXISTS redis_audit (id bigint PRIMARY KEY, org int NOT NULL, action text NOT NULL, bytes bigint NOT NULL, at timestamptz NOT NULL)`)
	testdb.Exec(tb, admin, `INSERT INTO redis_audit SELECT g, g % 50, 'action ' || (g % 7), g % 1000, now() - g * interval '1 second'
		FROM generate_series(1, 400000) g ON CONFLICT DO NOTHING`)
	testdb.Exec(tb, admin, `ANALYZE redis_audit`)
}

// BenchmarkRedisTier: the aggregate from the server (bare pgx stdlib),
// from Redis (the process's own tier emptied before each read, outside the
// timer), and from the process's own tier; a point select that the tier
// skips, against bare pgx, with the Redis commands it cost.
func BenchmarkRedisTier(b *testing.B) {
	ctx := context.Background()
	redisAuditTable(b)
	srv := startRedis(b)
	pgx := testdb.Open(b, "pgx", testDSN)
	pgx.SetMaxOpenConns(1)
	// A budget of 50 ms: the figures are the tier's speed, not how often a
	// loaded machine misses a 5 ms budget.
	open := func() *sql.DB {
		db := ciOpen(b, WithCacheMode(CacheAll), WithCacheSize(8<<20), WithRedis(srv.url()), WithRedisPrefix("bench"), WithRedisTimeout(50*time.Millisecond))
		db.SetMaxOpenConns(1)
		return db
	}
	aggregate := func(b *testing.B, db *sql.DB, org int) {
		rows, err := db.QueryContext(ctx, redisAggregate, org)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Close(); err != nil || n != 7 {
			b.Fatalf("%d rows, %v", n, err)
		}
	}
	point := func(b *testing.B, db *sql.DB, id int) {
		var org int
		if err := db.QueryRowContext(ctx, `SELECT org FROM redis_audit WHERE id = $1`, id).Scan(&org); err != nil {
			b.Fatal(err)
		}
	}
	// warm runs q until the tier has decided on it (and, for a consulted
	// query, Redis holds the entries of the orgs 0 to 9).
	warm := func(b *testing.B, db *sql.DB, q func(*testing.B, *sql.DB, int)) {
		for i := range 40 {
			q(b, db, i%10+1)
			dropLocal(b, db)
		}
		time.Sleep(50 * time.Millisecond) // the writes, made in the background
	}

	b.Run("op=aggregate/driver=pgx", func(b *testing.B) {
		aggregate(b, pgx, 1)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			aggregate(b, pgx, i%10+1)
		}
	})
	b.Run("op=aggregate/driver=auditpg-redis-hit", func(b *testing.B) {
		db := open()
		warm(b, db, aggregate)
		before := redisStats(b, db).Redis.Hits
		b.ReportAllocs()
		n := 0
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			dropLocal(b, db)
			b.StartTimer()
			aggregate(b, db, i%10+1)
			n++
		}
		hits := redisStats(b, db).Redis.Hits - before
		b.ReportMetric(float64(hits)/float64(n), "redis-hits/op")
		if hits < int64(n)*99/100 {
			b.Fatalf("%d of %d reads hit Redis: %+v", hits, n, *redisStats(b, db).Redis)
		}
	})
	b.Run("op=aggregate/driver=auditpg-local-hit", func(b *testing.B) {
		db := open()
		warm(b, db, aggregate)
		for i := range 10 {
			aggregate(b, db, i+1)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			aggregate(b, db, i%10+1)
		}
	})
	b.Run("op=point/driver=pgx", func(b *testing.B) {
		point(b, pgx, 1)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			point(b, pgx, i%1000+1)
		}
	})
	b.Run("op=point/driver=auditpg-redis-skipped", func(b *testing.B) {
		db := open()
		for range 5 {
			warm(b, db, point) // the first runs on a connection, prepared then, cost more
		}
		before, skipped := dataCommands(b, srv), redisStats(b, db).Redis.Skipped
		b.ReportAllocs()
		n := 0
		for i := 0; b.Loop(); i++ {
			point(b, db, i%1000+1+n/1000*1000) // a new key each time: a miss of the process's own tier
			n++
		}
		b.StopTimer()
		b.ReportMetric(float64(dataCommands(b, srv)-before)/float64(n), "redis-cmds/op")
		b.ReportMetric(float64(redisStats(b, db).Redis.Skipped-skipped)/float64(n), "skipped/op")
	})
}

// TestRedisSecondInstance: a second process started cold, while the first
// runs, reaches the first's hit ratio over the same traffic, sending the
// server one query per fingerprint (its first, to measure it) instead of
// one per key. Figures with -v.
func TestRedisSecondInstance(t *testing.T) {
	ctx := context.Background()
	redisAuditTable(t)
	srv := startRedis(t)
	open := func() *sql.DB {
		db, err := Open(testDSN, WithCacheMode(CacheAll), WithInvalidation(InvalidateNotify), WithRedis(srv.url()), WithRedisPrefix("second"),
			WithRedisTimeout(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	const keys = 50
	// traffic reads every org's aggregate once, 4 readers at a time.
	traffic := func(db *sql.DB) {
		t.Helper()
		errs := make(chan error, 4)
		for w := range 4 {
			go func() {
				var err error
				for org := w; org < keys && err == nil; org += 4 {
					var rows *sql.Rows
					if rows, err = db.QueryContext(ctx, redisAggregate, org); err == nil {
						for rows.Next() {
						}
						err = rows.Close()
					}
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	settle := func(db *sql.DB) {
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			if s := redisStats(t, db); s.Feed == "up" && s.Redis.State == "up" && s.Redis.Dropped == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not settled: %+v", redisStats(t, db))
			}
		}
	}
	start := time.Now()
	a := open()
	traffic(a)
	settle(a)
	traffic(a)
	for deadline := time.Now().Add(5 * time.Second); redisStats(t, a).Redis.Writes+redisStats(t, a).Redis.Dropped < keys-8; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the first process wrote too few entries: %+v", *redisStats(t, a).Redis)
		}
	}
	sa := redisStats(t, a)
	aRatio := sa.HitRatio

	b := open()
	traffic(b)
	settle(b)
	traffic(b)
	sb := redisStats(t, b)
	bQueries := sb.Misses // every miss is a query to the server
	report := fmt.Sprintf("first process: %d reads, hit ratio %.2f, %d misses; second, started cold: %d reads, hit ratio %.2f, "+
		"%d hits from Redis, %d aggregates sent to the server; %v of traffic in all (TTL %v)",
		sa.Hits+sa.Misses, aRatio, sa.Misses, sb.Hits+sb.Misses, sb.HitRatio, sb.Redis.Hits, bQueries,
		time.Since(start).Round(time.Millisecond), defaultConfig().cache.TTL)
	t.Log(report)
	t.Logf("a: %+v\nb: %+v", *sa.Redis, *sb.Redis)
	if sb.HitRatio < aRatio {
		t.Errorf("the second process's hit ratio %.2f is below the first's %.2f", sb.HitRatio, aRatio)
	}
	// The first read of the fingerprint on each of 4 readers (not measured
	// yet: not consulted), and the keys the first process read before its
	// own tier was up: a few, never one per key.
	if bQueries > 10 {
		t.Errorf("the second process sent the server %d aggregates over %d keys; want at most 10", bQueries, keys)
	}
}
