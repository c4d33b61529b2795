package auditpg

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// BenchmarkChangeFeedWindow measures the window between a write by other
// connections (bare pgx, as other processes) and its receipt by a
// connector's change feed, at a steady 1,000 writes/s in all: p50, p99 and
// max in milliseconds, from the moment the write was sent (an upper bound:
// the commit comes later). Two writers, 500 writes/s each, write a table
// each; every write is one transaction, so one notification of its
// table's trigger, received in commit order: the n-th receipt of a table
// is its writer's n-th write.
func BenchmarkChangeFeedWindow(b *testing.B) {
	const writers, rate = 2, 1000 // rate: writes a second, in all
	ctx := context.Background()
	admin := testdb.Open(b, "pgx", testDSN)
	testdb.Exec(b, admin, changefeed.InstallFunctionSQL("public"))
	received := make(map[string]chan time.Time)
	for w := range writers {
		table := fmt.Sprint("coh_bench_", w)
		testdb.Exec(b, admin, `DROP TABLE IF EXISTS `+table)
		testdb.Exec(b, admin, `CREATE TABLE `+table+` (id int PRIMARY KEY, v bigint NOT NULL)`)
		testdb.Exec(b, admin, `INSERT INTO `+table+` VALUES (1, 0)`)
		testdb.Exec(b, admin, changefeed.InstallTriggerSQL(pgx.Identifier{table}, "public"))
		b.Cleanup(func() { testdb.Exec(b, admin, `DROP TABLE IF EXISTS `+table) })
		received[table] = make(chan time.Time, 1<<16)
	}
	db := ciOpenDSN(b, testDSN, WithCacheMode(CacheAll), WithInvalidation(InvalidateNotify), WithObserver(feedTimes(received)))
	var v int64
	if err := db.QueryRowContext(ctx, `SELECT v FROM coh_bench_0 WHERE id = 1`).Scan(&v); err != nil { // starts the feed
		b.Fatal(err)
	}
	if s := cacheStats(b, db); s.Feed != "up" {
		b.Fatalf("the change feed is %s", s.Feed)
	}

	measureWindows(b, testDSN, writers, rate, func(w, _ int) string { return fmt.Sprint("coh_bench_", w) }, received)
}

// measureWindows runs b.N writes, rate a second in all, from writers
// connections of their own to dsn: writer w's i-th write updates the table
// table(w, i), and its receipt is the first time received[table(w, i)]
// gives that is not before the write was sent. It reports p50, p99 and max
// of the windows in milliseconds, and the writes a second.
func measureWindows(b *testing.B, dsn string, writers, rate int, table func(w, i int) string, received map[string]chan time.Time) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	perWriter := (b.N + writers - 1) / writers
	sent := make([][]time.Time, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	begin := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				errs[w] = err
				return
			}
			defer conn.Close(ctx)
			tick := time.NewTicker(time.Second * time.Duration(writers) / time.Duration(rate))
			defer tick.Stop()
			for i := range perWriter {
				<-tick.C
				sent[w] = append(sent[w], time.Now())
				if _, err := conn.Exec(ctx, `UPDATE `+table(w, i)+` SET v = $1 WHERE id = 1`, i); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	var windows []time.Duration
	timeout := time.After(10 * time.Second)
	for w := range writers {
		if errs[w] != nil {
			b.Fatal(errs[w])
		}
		for i, at := range sent[w] {
			ch := received[table(w, i)]
			for found := false; !found; {
				select {
				case r := <-ch:
					if !r.Before(at) {
						found = true
						windows = append(windows, r.Sub(at))
					}
				case <-timeout:
					b.Fatalf("writer %d: %d of %d writes received after 10s", w, i, len(sent[w]))
				}
			}
		}
	}
	b.StopTimer()
	slices.Sort(windows)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(windows[len(windows)/2]), "p50-ms")
	b.ReportMetric(ms(windows[len(windows)*99/100]), "p99-ms")
	b.ReportMetric(ms(windows[len(windows)-1]), "max-ms")
	b.ReportMetric(float64(len(windows))/elapsed.Seconds(), "writes/s")
}

// feedTimes is an InvalidationObserver that sends the time of each
// invalidation of a table it has a channel for (by the feed: the
// benchmark's connector writes nothing).
type feedTimes map[string]chan time.Time

func (f feedTimes) Start(ctx context.Context, _ *Event) context.Context { return ctx }
func (f feedTimes) End(context.Context, *Event)                         {}
func (f feedTimes) Invalidated(_ context.Context, tables []string) {
	for _, t := range tables {
		if ch, ok := f[t]; ok {
			ch <- time.Now()
		}
	}
}
