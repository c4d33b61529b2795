package auditpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/benchdb"
)

// BenchmarkCache is the cache issue's targets, side by side in one run:
//
//	go test -run '^$' -bench Cache -count 6 . | tee cache.txt
//	go tool benchstat -col /driver cache.txt
//
// op=point: a select by primary key; op=rows100: a 100-row result. The
// drivers: bare pgx stdlib; auditpg with the cache off; auditpg answering
// from the cache (hit); the naive map cache the target is set against
// (naivecache_bench_test.go); auditpg missing the cache on every read, with
// a store already full (the warm-up goes on until BigCache's ring has
// reached its 1 MB limit), as in a process that has run a while.
//
// The hits cycle over a few keys, all warmed first; every other driver
// reads keys that do not come back before a full store has long dropped
// them, so that each miss runs, is captured and fills, as a miss does.
// (Invalidating the table before each read would make the write's own
// bump reject the fill before it, which is then not measured.) The
// benchmark fails unless every timed read was the hit or the miss it is
// meant to be. cpu-ns/op is the process's CPU time per read, on every
// goroutine, the garbage collector's included (the server's is not counted).
func BenchmarkCache(b *testing.B) {
	ctx := context.Background()
	benchdb.Create(b, testDSN)

	queries := []struct {
		op, sql   string
		hot, cold func(i int) int64 // the argument of read i: a few keys, or keys that do not come back
	}{
		{"point", `SELECT id, name, created_at FROM bench_item WHERE id = $1`,
			func(i int) int64 { return int64(i%1000 + 1) }, func(i int) int64 { return int64(i%benchdb.Items + 1) }},
		{"rows100", `SELECT id, name, created_at FROM bench_item WHERE id > $1 ORDER BY id LIMIT 100`,
			func(i int) int64 { return int64(i % 8 * 100) }, func(i int) int64 { return int64(i % (benchdb.Items - 100)) }},
	}
	drivers := []struct {
		name string
		open func(b *testing.B) *sql.DB
		hot  bool // reads the hot keys, and must hit
	}{
		{"pgx", func(b *testing.B) *sql.DB { return openDB(b, "pgx") }, false},
		{"auditpg-cache-off", func(b *testing.B) *sql.DB { return openDB(b, DriverName, WithCacheMode(CacheOff)) }, false},
		{"auditpg-hit", func(b *testing.B) *sql.DB { return openDB(b, DriverName, WithCacheMode(CacheAll)) }, true},
		// The yardstick: a map behind sqlmw with none of the safety.
		{"naive-map-hit", openNaiveCacheDB, true},
		{"auditpg-miss-full", func(b *testing.B) *sql.DB {
			return openDB(b, DriverName, WithCacheMode(CacheAll), WithCacheSize(1<<20))
		}, false},
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
				arg := q.cold
				if d.hot {
					arg = q.hot
				}
				read := func(i int) {
					rows, err := db.QueryContext(ctx, q.sql, arg(i))
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
				// Warm: every hot key cached for the hits; the store full
				// for the misses (the reads after it go on where it stopped).
				i := 0
				for ; i < 5000; i++ {
					read(i)
				}
				miss := d.name == "auditpg-miss-full"
				if miss {
					for ; cacheStatsOf(b, db).Bytes < 1<<20; i++ {
						if i == 1_000_000 {
							b.Fatal("the store never filled up")
						}
						read(i)
					}
				}
				var before CacheStats
				if miss {
					before = cacheStatsOf(b, db)
				}
				b.ReportAllocs()
				cpu0, cpuOK := processCPU()
				b.ResetTimer()
				for ; b.Loop(); i++ {
					read(i)
				}
				b.StopTimer()
				if cpu1, ok := processCPU(); cpuOK && ok {
					// What the reads cost this process on every
					// goroutine, the garbage collector's included.
					b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "cpu-ns/op")
				}
				if d.name == "auditpg-hit" {
					if s := cacheStatsOf(b, db); s.Hits < int64(b.N) {
						b.Fatalf("%d hits for %d reads: the cache did not answer", s.Hits, b.N)
					}
				}
				if miss {
					// Each timed read missed and was stored.
					s := cacheStatsOf(b, db)
					if s.Misses-before.Misses != int64(b.N) || s.Fills-before.Fills != int64(b.N) {
						b.Fatalf("%d reads: %d misses, %d fills, %d rejected", b.N,
							s.Misses-before.Misses, s.Fills-before.Fills, s.RejectedFills-before.RejectedFills)
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

// BenchmarkFillParts times a fill's two per-query parts on their own, with
// warm caches, over a live 100-row result: the column section (every
// ColumnType answer pgx gives, encoded) and one row's encoding. Compare
// with the same parts in a cpu profile of BenchmarkCache's misses, where
// they run cold after each network wait.
func BenchmarkFillParts(b *testing.B) {
	ctx := context.Background()
	benchdb.Create(b, testDSN)
	conn, err := openDB(b, "pgx").Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := newCache(defaultCacheConfig(), nil)
	err = conn.Raw(func(dc any) error {
		rows, err := dc.(driver.QueryerContext).QueryContext(ctx,
			`SELECT id, name, created_at FROM bench_item WHERE id > $1 ORDER BY id LIMIT 100`,
			[]driver.NamedValue{{Ordinal: 1, Value: int64(0)}})
		if err != nil {
			return err
		}
		defer rows.Close()
		buf := make([]byte, 0, 4096)
		b.Run("part=columns", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = c.appendColumns(buf[:0], rows)
			}
		})
		dest := make([]driver.Value, len(rows.Columns()))
		if err := rows.Next(dest); err != nil {
			return err
		}
		b.Run("part=row", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				if buf, ok = appendRow(buf[:0], dest); !ok {
					b.Fatalf("row %v not encoded", dest)
				}
			}
		})
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
