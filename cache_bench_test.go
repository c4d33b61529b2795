package auditpg

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// BenchmarkCache is the cache issue's targets, side by side in one run:
//
//	go test -run '^$' -bench Cache -count 6 . | tee cache.txt
//	go tool benchstat -col /driver cache.txt
//
// op=point: a select by primary key; op=rows100: a 100-row result. The
// drivers: bare pgx stdlib; auditpg with the cache off; auditpg answering
// from the cache (hit); the naive map cache the target is set against
// (naivecache_bench_test.go); auditpg missing the cache on every call (the table
// is invalidated before each query, so each one runs and fills), and the
// same with a store already full.
func BenchmarkCache(b *testing.B) {
	ctx := context.Background()
	createBenchItems(b)

	queries := []struct {
		op, sql string
		arg     func(i int) int64
	}{
		{"point", `SELECT id, name, created_at FROM bench_item WHERE id = $1`, func(i int) int64 { return int64(i%1000 + 1) }},
		{"rows100", `SELECT id, name, created_at FROM bench_item WHERE id > $1 ORDER BY id LIMIT 100`, func(i int) int64 { return int64(i % 8 * 100) }},
	}
	drivers := []struct {
		name       string
		open       func(b *testing.B) *sql.DB
		invalidate bool
	}{
		{"pgx", func(b *testing.B) *sql.DB { return openDB(b, "pgx") }, false},
		{"auditpg-cache-off", func(b *testing.B) *sql.DB { return openDB(b, DriverName, WithCacheMode(CacheOff)) }, false},
		{"auditpg-hit", func(b *testing.B) *sql.DB { return openDB(b, DriverName, WithCacheMode(CacheAll)) }, false},
		// The yardstick: a map behind sqlmw with none of the safety.
		{"naive-map-hit", openNaiveCacheDB, false},
		{"auditpg-miss", func(b *testing.B) *sql.DB { return openDB(b, DriverName, WithCacheMode(CacheAll)) }, true},
		// The same with a store already full (the warm-up goes on until
		// BigCache's ring has reached the limit): it no longer grows the
		// ring, as in a process that has run a while.
		{"auditpg-miss-full", func(b *testing.B) *sql.DB {
			return openDB(b, DriverName, WithCacheMode(CacheAll), WithCacheSize(1<<20))
		}, true},
	}
	for _, q := range queries {
		for _, d := range drivers {
			b.Run("op="+q.op+"/driver="+d.name, func(b *testing.B) {
				db := d.open(b)
				db.SetMaxOpenConns(1)
				var (
					id      int64
					label   string
					created time.Time
				)
				read := func(i int) {
					rows, err := db.QueryContext(ctx, q.sql, q.arg(i))
					if err != nil {
						b.Fatal(err)
					}
					n := 0
					for rows.Next() {
						if err := rows.Scan(&id, &label, &created); err != nil {
							b.Fatal(err)
						}
						n++
					}
					if err := rows.Close(); err != nil || n == 0 {
						b.Fatalf("%d rows, %v", n, err)
					}
				}
				for i := range 5000 { // warm: every key cached for the hit case
					if d.invalidate {
						Invalidate(db, "bench_item")
					}
					read(i)
				}
				if d.name == "auditpg-miss-full" {
					for i := 0; cacheStatsOf(b, db).Bytes < 1<<20; i++ {
						if i == 1_000_000 {
							b.Fatal("the store never filled up")
						}
						Invalidate(db, "bench_item")
						read(i)
					}
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if d.invalidate {
						Invalidate(db, "bench_item")
					}
					read(i)
				}
				b.StopTimer()
				if d.name == "auditpg-hit" {
					if s := cacheStatsOf(b, db); s.Hits < int64(b.N) {
						b.Fatalf("%d hits for %d reads: the cache did not answer", s.Hits, b.N)
					}
				}
			})
		}
	}
}

func cacheStatsOf(tb testing.TB, db *sql.DB) CacheStats {
	s, err := Stats(db)
	if err != nil || s.Cache == nil {
		tb.Fatalf("Stats: %v", err)
	}
	return *s.Cache
}
