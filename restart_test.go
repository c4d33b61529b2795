package auditpg

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpg/auditpg/internal/pgtemp"
	"github.com/auditpg/auditpg/internal/testdb"
)

// The restart harness: a steady load of point reads on a few goroutines,
// through one driver, while a PostgreSQL of the test's own is shut down
// (fast shutdown), held down and started again on the same port and data
// directory. It measures the time from the server's return, which a probe
// of its own detects, to the load's first successful read and until every
// worker has read again, and counts the load's connection attempts while
// the server is down.

const (
	restartWorkers = 4                // goroutines reading through the driver
	restartDown    = time.Second      // how long the server stays down
	restartPause   = time.Millisecond // between a worker's reads, failed or not: the load's pace
	restartProbe   = time.Millisecond // between the probe's attempts: the resolution of the return
	restartRead    = 5 * time.Second  // each read's context
	restartWait    = 30 * time.Second // for every worker's first read, before and after the restart
	restartRoundsN = 5                // restarts of each driver in TestRestartRecovery

	// How much later than pgx's TestRestartRecovery allows auditpg's median
	// first read, and its median time until every worker has read. Measured
	// over pgx's: the new schedule's -7ms to +14ms and +27ms to +82ms, the
	// old one's (a first delay of 1s) +130ms to +260ms and +1.4s to +1.8s.
	// The second bound is the one that tells the two apart.
	restartFirstSlack = 150 * time.Millisecond
	restartAllSlack   = 250 * time.Millisecond
)

// restartRun is what one restart showed of one driver.
type restartRun struct {
	recovery time.Duration // from the server's return to the load's first successful read
	allRead  time.Duration // from the server's return until every worker has read again
	down     time.Duration // from the old server's exit to the new one's return
	attempts int64         // the load's connection attempts meanwhile
}

func (r restartRun) attemptRate() float64 { return float64(r.attempts) / r.down.Seconds() }

func (r restartRun) String() string {
	return fmt.Sprintf("first read %5.1f ms after the server's return, every worker's %6.1f ms; down %v, %d connection attempts (%.0f/s)",
		ms(r.recovery), ms(r.allRead), r.down.Round(time.Millisecond), r.attempts, r.attemptRate())
}

func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// startRestartCluster starts a cluster of the caller's own, which it may
// restart (never the shared one), with the table the load reads.
func startRestartCluster(tb testing.TB) *pgtemp.Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgtemp.Start(ctx)
	if err != nil {
		testdb.Missing(tb, err) // a skip only for a missing server with AUDITPG_NO_INSTALL set
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Error(err)
		}
	})
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE restart_kv (id int PRIMARY KEY, v int NOT NULL);
		INSERT INTO restart_kv SELECT i, i FROM generate_series(1, 1000) i`); err != nil {
		tb.Fatal(err)
	}
	return c
}

// restartOnce runs the load through driverName ("pgx", or auditpg with
// opts) across one restart of c. Both drivers connect through the same
// *pgx.ConnConfig, whose dialer counts the attempts, and the same pool size.
func restartOnce(tb testing.TB, c *pgtemp.Cluster, driverName string, opts ...Option) restartRun {
	tb.Helper()
	cfg, err := pgx.ParseConfig(c.DSN())
	if err != nil {
		tb.Fatal(err)
	}
	cfg.ConnectTimeout = restartRead
	var attempts atomic.Int64
	var dialer net.Dialer
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		attempts.Add(1)
		return dialer.DialContext(ctx, network, addr)
	}
	name := stdlib.RegisterConnConfig(cfg)
	defer stdlib.UnregisterConnConfig(name)
	var db *sql.DB
	if driverName == DriverName {
		conn, err := NewConnector(name, opts...)
		if err != nil {
			tb.Fatal(err)
		}
		db = sql.OpenDB(conn)
	} else if db, err = sql.Open(driverName, name); err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(restartWorkers)
	db.SetMaxIdleConns(restartWorkers)

	var (
		base  = time.Now()
		armed atomic.Bool // set once the old server has exited
		// since base, the end of each worker's first read that began
		// armed; 0 until then
		firstOK [restartWorkers]atomic.Int64
		warm    = make(chan struct{}, restartWorkers)
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := range restartWorkers {
		wg.Go(func() {
			warmed := false
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A read that began before the old server exited may end
				// after arming: only one that began armed is from the new one.
				began := armed.Load()
				ctx, cancel := context.WithTimeout(context.Background(), restartRead)
				var v int
				err := db.QueryRowContext(ctx, "SELECT v FROM restart_kv WHERE id = $1", i%1000+1).Scan(&v)
				cancel()
				if err == nil {
					if began {
						firstOK[w].CompareAndSwap(0, int64(time.Since(base)))
					}
					if !warmed {
						warmed = true
						warm <- struct{}{}
					}
				}
				time.Sleep(restartPause)
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	timeout := time.After(restartWait)
	for range restartWorkers {
		select {
		case <-warm:
		case <-timeout:
			tb.Fatalf("%s: not every worker read within %v of the start", driverName, restartWait)
		}
	}

	var (
		downAt, readyAt             time.Time
		attemptsDown, attemptsReady int64
		probeErr                    error
		probed                      = make(chan struct{})
	)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = c.Restart(ctx, func() {
		downAt, attemptsDown = time.Now(), attempts.Load()
		armed.Store(true)
		time.Sleep(restartDown)
		go func() {
			defer close(probed)
			readyAt, attemptsReady, probeErr = probe(ctx, c.DSN(), &attempts)
		}()
	})
	if err != nil {
		tb.Fatalf("Restart: %v", err)
	}
	<-probed
	if probeErr != nil {
		tb.Fatal(probeErr)
	}
	var first, last time.Duration
	for i := range firstOK {
		for deadline := time.Now().Add(restartWait); firstOK[i].Load() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				tb.Fatalf("%s: worker %d read nothing within %v of the server's return", driverName, i, restartWait)
			}
		}
		t := time.Duration(firstOK[i].Load())
		if i == 0 || t < first {
			first = t
		}
		last = max(last, t)
	}
	return restartRun{
		recovery: base.Add(first).Sub(readyAt),
		allRead:  base.Add(last).Sub(readyAt),
		down:     readyAt.Sub(downAt),
		attempts: attemptsReady - attemptsDown,
	}
}

// probe connects every restartProbe until the server accepts a connection,
// and returns when that attempt began and the load's attempts counted then.
// It dials on its own: its attempts are not the load's.
func probe(ctx context.Context, dsn string, loadAttempts *atomic.Int64) (time.Time, int64, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return time.Time{}, 0, err
	}
	cfg.ConnectTimeout = time.Second
	for {
		at, n := time.Now(), loadAttempts.Load()
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err == nil {
			conn.Close(ctx)
			return at, n, nil
		}
		if ctx.Err() != nil {
			return time.Time{}, 0, fmt.Errorf("probe: the server did not come back: %w", err)
		}
		time.Sleep(restartProbe)
	}
}

// restartRounds restarts c rounds times for each driver, alternating which
// goes first, and returns the runs by driver name.
func restartRounds(tb testing.TB, c *pgtemp.Cluster, rounds int) map[string][]restartRun {
	drivers := []string{"pgx", DriverName}
	runs := map[string][]restartRun{}
	for i := range rounds {
		for j := range drivers {
			d := drivers[(i+j)%len(drivers)]
			r := restartOnce(tb, c, d)
			runs[d] = append(runs[d], r)
			tb.Logf("round %d, %-7s: %v", i+1, d, r)
		}
	}
	return runs
}

// median returns the median of f over runs.
func median[T cmp.Ordered](runs []restartRun, f func(restartRun) T) T {
	vs := make([]T, len(runs))
	for i, r := range runs {
		vs[i] = f(r)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}

func medianRecovery(runs []restartRun) time.Duration {
	return median(runs, func(r restartRun) time.Duration { return r.recovery })
}

func medianAllRead(runs []restartRun) time.Duration {
	return median(runs, func(r restartRun) time.Duration { return r.allRead })
}

func medianRate(runs []restartRun) float64 { return median(runs, restartRun.attemptRate) }

// maxAttemptRate is the most connection attempts a second that workers
// callers can make over a window w under cfg's schedule, each calling again
// at once after a failed connect: a connect spends at least half of each
// delay between its attempts (the jitter is ±50%), and a window may cut
// into one connect more than it holds whole.
func maxAttemptRate(cfg config, workers int, w time.Duration) float64 {
	var span time.Duration
	d := cfg.retryDelay
	for range cfg.retryAttempts - 1 {
		span += d / 2
		d = min(2*d, max(retryMaxDelay, cfg.retryDelay))
	}
	if span == 0 {
		return math.Inf(1)
	}
	connects := w.Seconds()/span.Seconds() + 1
	return float64(workers*cfg.retryAttempts) * connects / w.Seconds()
}

// TestRestartRecovery: through a restart of the server under load, auditpg
// with its default retry schedule reads again about as soon as bare pgx,
// on its first read and once every worker has read (the old schedule, a
// first delay of 1s, held workers for up to 2s), and while the server is
// down the load's connection attempts stay within what the schedule allows.
// Figures: BenchmarkRestartRecovery.
func TestRestartRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a PostgreSQL of its own, several seconds: not with -short")
	}
	c := startRestartCluster(t)
	runs := restartRounds(t, c, restartRoundsN)
	pgxRec, apgRec := medianRecovery(runs["pgx"]), medianRecovery(runs[DriverName])
	t.Logf("medians: first read after the return pgx %v, auditpg %v; every worker's pgx %v, auditpg %v; attempts while down pgx %.0f/s, auditpg %.0f/s",
		pgxRec, apgRec, medianAllRead(runs["pgx"]), medianAllRead(runs[DriverName]), medianRate(runs["pgx"]), medianRate(runs[DriverName]))
	if apgRec > pgxRec+restartFirstSlack {
		t.Errorf("auditpg's first read came %v after the server's return (median of %d), pgx's %v: want at most pgx's + %v",
			apgRec, restartRoundsN, pgxRec, restartFirstSlack)
	}
	if pgxAll, apgAll := medianAllRead(runs["pgx"]), medianAllRead(runs[DriverName]); apgAll > pgxAll+restartAllSlack {
		t.Errorf("auditpg's workers had all read again %v after the server's return (median of %d), pgx's %v: want at most pgx's + %v",
			apgAll, restartRoundsN, pgxAll, restartAllSlack)
	}
	cfg := defaultConfig()
	for _, r := range runs[DriverName] {
		if limit := maxAttemptRate(cfg, restartWorkers, r.down); r.attemptRate() > limit {
			t.Errorf("auditpg made %d connection attempts in %v down (%.0f/s): want at most %.0f/s (%d callers, %d attempts from %v)",
				r.attempts, r.down, r.attemptRate(), limit, restartWorkers, cfg.retryAttempts, cfg.retryDelay)
		}
	}
}

// BenchmarkRestartRecovery reports, for each driver, the median over its
// restarts (an op is one restart) of the time from the server's return to
// the load's first successful read (ms-to-first-read) and until every
// worker has read again (ms-to-all-read), and of the load's connection
// attempts a second while the server was down (attempts/s-down), both
// drivers restarting the same cluster:
//
//	go test -run '^$' -bench RestartRecovery -benchtime 5x .
func BenchmarkRestartRecovery(b *testing.B) {
	if testing.Short() {
		b.Skip("restarts a PostgreSQL of its own: not with -short")
	}
	c := startRestartCluster(b)
	for _, d := range []string{"pgx", DriverName} {
		b.Run("driver="+d, func(b *testing.B) {
			var got []restartRun
			for b.Loop() {
				got = append(got, restartOnce(b, c, d))
			}
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(medianRecovery(got)), "ms-to-first-read")
			b.ReportMetric(ms(medianAllRead(got)), "ms-to-all-read")
			b.ReportMetric(medianRate(got), "attempts/s-down")
		})
	}
}
