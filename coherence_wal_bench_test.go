package auditpg

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// BenchmarkChangeFeedWindowWAL measures the window between a write by
// other connections (bare pgx, as other processes; no trigger installed)
// and its receipt by a connector with auditpg_invalidate=wal, whose own
// leader decodes the WAL, at a steady 1,000 writes/s in all: p50, p99 and
// max in milliseconds, from the moment the write was sent. Two writers,
// 500 writes/s each, each write one transaction; the leader folds the
// commits of a batch, so each writer cycles through walWindowTables tables
// of its own: the first receipt of a table after a write was sent is that
// write's (the table is written again 100 ms later, beyond any window
// measured).
func BenchmarkChangeFeedWindowWAL(b *testing.B) {
	const writers, rate, tables = 2, 1000, 50
	ctx := context.Background()
	dsn := testdb.LogicalCluster(b).DSN()
	admin := testdb.Open(b, "pgx", dsn)
	received := make(map[string]chan time.Time)
	name := func(w, i int) string { return fmt.Sprintf("coh_wal_bench_%d_%d", w, i) }
	for w := range writers {
		for i := range tables {
			testdb.Exec(b, admin, `CREATE TABLE `+name(w, i)+` (id int PRIMARY KEY, v bigint NOT NULL)`)
			testdb.Exec(b, admin, `INSERT INTO `+name(w, i)+` VALUES (1, 0)`)
			received[name(w, i)] = make(chan time.Time, 1<<16)
		}
	}
	// The leader's failures, if any, are logged with the benchmark's output.
	db := ciOpenDSN(b, dsn, WithCacheMode(CacheAll), WithInvalidation(InvalidateWAL), WithObserver(feedTimes(received)),
		WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	var v int64
	if err := db.QueryRowContext(ctx, `SELECT v FROM `+name(0, 0)+` WHERE id = 1`).Scan(&v); err != nil { // starts the feed
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); cacheStatsOf(b, db).Feed != "up"; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("the change feed is not up after 10s")
		}
	}
	for _, ch := range received { // the takeover's All
		for len(ch) > 0 {
			<-ch
		}
	}

	measureWindows(b, dsn, writers, rate, func(w, i int) string { return name(w, i%tables) }, received)
}

// BenchmarkWALDecoderCost measures what decoding costs at the audit log's
// insert rate: writers insert as fast as they can, in transactions of
// walCostBatch rows, for rounds of walCostRound, the decoder off and on in
// turn (a changefeed.Leader of this process streams while on). It reports
// the writers' rows/s off and on; the changes decoded a second, from the
// round's start until the decoder has seen every row; and the decoder's
// CPU time per 1,000 changes: this process's CPU time (getrusage) over the
// same span, less the writers' own (their CPU time per row with the
// decoder off, times the rows). The walsender's work is the server's: it
// shows in the rates only.
func BenchmarkWALDecoderCost(b *testing.B) {
	const writers, walCostBatch, walCostRound = 4, 100, 2 * time.Second
	ctx := context.Background()
	dsn := testdb.LogicalCluster(b).DSN()
	admin := testdb.Open(b, "pgx", dsn)
	testdb.Exec(b, admin, `CREATE TABLE coh_audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(),
		actor text NOT NULL, action text NOT NULL, target text NOT NULL, detail jsonb)`)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*pgx.Conn, writers)
	for w := range conns {
		if conns[w], err = pgx.Connect(ctx, dsn); err != nil {
			b.Fatal(err)
		}
		defer conns[w].Close(ctx)
	}
	// round inserts for walCostRound and returns the rows inserted and this
	// process's CPU time meanwhile.
	round := func() (rows int64, cpu time.Duration) {
		var n atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(walCostRound)
		cpu0, _ := processCPU()
		for _, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(stop) {
					_, err := c.Exec(ctx, `INSERT INTO coh_audit (actor, action, target, detail)
SELECT 'user-' || (g % 97), 'update', 'doc-' || g, jsonb_build_object('field', 'title', 'n', g)
  FROM generate_series(1, $1) AS g`, walCostBatch)
					if err != nil {
						b.Error(err)
						return
					}
					n.Add(walCostBatch)
				}
			}()
		}
		wg.Wait()
		cpu1, _ := processCPU()
		return n.Load(), cpu1 - cpu0
	}
	var offRate, onRate, decodeRate, perK []float64
	b.ResetTimer()
	for range b.N {
		rows, cpu := round()
		offRate = append(offRate, float64(rows)/walCostRound.Seconds())
		offPerRow := float64(cpu) / float64(rows)

		l := &changefeed.Leader{Config: cfg}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); l.Run(lctx) }()
		for deadline := time.Now().Add(10 * time.Second); l.Stats().Slots == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("the leader does not stream after 10s")
			}
		}
		before := l.Stats().Changes
		began := time.Now()
		cpu0, _ := processCPU()
		rows, _ = round()
		for deadline := time.Now().Add(2 * time.Minute); l.Stats().Changes-before < rows; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("the decoder saw %d changes of %d rows after 2 minutes", l.Stats().Changes-before, rows)
			}
		}
		decoded := time.Since(began)
		cpu1, _ := processCPU()
		changes := l.Stats().Changes - before
		cancel()
		<-done
		onRate = append(onRate, float64(rows)/walCostRound.Seconds())
		decodeRate = append(decodeRate, float64(changes)/decoded.Seconds())
		decoderCPU := float64(cpu1-cpu0) - float64(rows)*offPerRow
		perK = append(perK, decoderCPU/float64(changes)*1000/float64(time.Millisecond))
		b.Logf("round %d: off %.0f rows/s, on %.0f rows/s, decoded %.0f changes/s (caught up %v after the round began), decoder %.3f CPU-ms per 1,000 changes",
			len(perK), offRate[len(offRate)-1], onRate[len(onRate)-1], decodeRate[len(decodeRate)-1], decoded.Round(time.Millisecond), perK[len(perK)-1])
	}
	b.StopTimer()
	median := func(v []float64) float64 { s := slices.Clone(v); slices.Sort(s); return s[len(s)/2] }
	b.ReportMetric(median(offRate), "rows/s-off")
	b.ReportMetric(median(onRate), "rows/s-on")
	b.ReportMetric(median(decodeRate), "decoded/s")
	b.ReportMetric(median(perK), "cpu-ms/1k-changes")
}
