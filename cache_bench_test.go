package auditpg

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/benchdb"
)

// BenchmarkCache sets the cache's hit and miss beside pgx and the cache off, in one run:
//
//	go test -run '^$' -bench 'Cache$' -count 6 . | tee cache.txt
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
	benchdb.Create(b, testDSN)

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
	for _, q := range benchQueries {
		for _, d := range drivers {
			b.Run("op="+q.op+"/driver="+d.name, func(b *testing.B) {
				db := d.open(b)
				db.SetMaxOpenConns(1)
				arg := q.cold
				if d.hot {
					arg = q.hot
				}
				read := benchRead(b, db, q.sql, arg)
				// Warm: every hot key cached for the hits; the store full
				// for the misses (the reads after it go on where it stopped).
				i := 0
				for ; i < 5000; i++ {
					read(i)
				}
				miss := d.name == "auditpg-miss-full"
				var before CacheStats
				if miss {
					i = fillStore(b, db, read, i)
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
					checkFilled(b, db, before)
				}
			})
		}
	}
}

// benchQueries are the cache benchmarks' two reads. hot gives read i's
// argument among a few keys; cold gives keys that do not come back before
// a full store has long dropped them.
var benchQueries = []struct {
	op, sql   string
	hot, cold func(i int) int64
}{
	{"point", benchdb.PointSelect,
		func(i int) int64 { return int64(i%1000 + 1) }, func(i int) int64 { return int64(i%benchdb.Items + 1) }},
	{"rows100", `SELECT id, name, created_at FROM bench_item WHERE id > $1 ORDER BY id LIMIT 100`,
		func(i int) int64 { return int64(i % 8 * 100) }, func(i int) int64 { return int64(i % (benchdb.Items - 100)) }},
}

// benchRead returns read i of query on db, scanned as an application does.
func benchRead(b *testing.B, db *sql.DB, query string, arg func(i int) int64) func(i int) {
	ctx := context.Background()
	var (
		id      int64
		label   string
		created time.Time
	)
	return func(i int) {
		rows, err := db.QueryContext(ctx, query, arg(i))
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
}

// fillStore reads on from read i until db's cache store holds its limit
// (1 MB), and returns where it stopped.
func fillStore(b *testing.B, db *sql.DB, read func(i int), i int) int {
	for ; cacheStatsOf(b, db).CapacityBytes < 1<<20; i++ {
		if i == 1_000_000 {
			b.Fatal("the store never filled up")
		}
		read(i)
	}
	return i
}

// checkFilled fails b unless each of its b.N timed reads of db missed the
// cache and was stored; before is the cache's figures before them.
func checkFilled(b *testing.B, db *sql.DB, before CacheStats) {
	s := cacheStatsOf(b, db)
	if s.Misses-before.Misses != int64(b.N) || s.Fills-before.Fills != int64(b.N) {
		b.Fatalf("%d reads: %d misses, %d fills, %d rejected", b.N,
			s.Misses-before.Misses, s.Fills-before.Fills, s.RejectedFills-before.RejectedFills)
	}
}

// BenchmarkCacheMissPaired sets a miss against the cache off read by read,
// which separate processes cannot do on a machine whose speed drifts by
// more than the 5% the miss is allowed:
//
//	go test -run '^$' -bench CacheMissPaired -count 10 . | tee paired.txt
//
// One process opens both databases, the cache off and the cache on with
// its 1 MB store full; each timed iteration reads one new key from both,
// the order alternating, and times each read. miss-over-off-% is the
// miss's extra time over the whole run; ns/op and allocs/op are the pair's.
// The two share the process's garbage collector, so this measures the work
// on the reader's path; BenchmarkCache's separate processes include what
// the store's memory does to the collector's pace.
func BenchmarkCacheMissPaired(b *testing.B) {
	benchdb.Create(b, testDSN)
	for _, q := range benchQueries {
		b.Run("op="+q.op, func(b *testing.B) {
			off := openDB(b, DriverName, WithCacheMode(CacheOff))
			miss := openDB(b, DriverName, WithCacheMode(CacheAll), WithCacheSize(1<<20))
			off.SetMaxOpenConns(1)
			miss.SetMaxOpenConns(1)
			reads := [2]func(i int){benchRead(b, off, q.sql, q.cold), benchRead(b, miss, q.sql, q.cold)}
			i := 0
			for ; i < 5000; i++ {
				reads[0](i)
				reads[1](i)
			}
			i = fillStore(b, miss, reads[1], i)
			before := cacheStatsOf(b, miss)
			var took [2]time.Duration // off, miss
			b.ReportAllocs()
			for ; b.Loop(); i++ {
				first := i & 1
				t0 := time.Now()
				reads[first](i)
				t1 := time.Now()
				reads[1-first](i)
				t2 := time.Now()
				took[first] += t1.Sub(t0)
				took[1-first] += t2.Sub(t1)
			}
			b.StopTimer()
			b.ReportMetric(float64(took[0])/float64(b.N), "off-ns/read")
			b.ReportMetric(float64(took[1])/float64(b.N), "miss-ns/read")
			b.ReportMetric(100*float64(took[1]-took[0])/float64(took[0]), "miss-over-off-%")
			checkFilled(b, miss, before)
		})
	}
}

func cacheStatsOf(tb testing.TB, db *sql.DB) CacheStats {
	s, err := Stats(db)
	if err != nil || s.Cache == nil {
		tb.Fatalf("Stats: %v", err)
	}
	return *s.Cache
}
