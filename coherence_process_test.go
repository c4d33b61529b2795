package auditpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// The test binary, run with envCoherenceChild set to a DSN, is the second
// process of TestCoherenceAcrossProcesses: a reader with a cache of its
// own, driven by the parent through standard input and answering on
// standard output, one line each:
//
//	                          child: up        (its change feed listens)
//	parent: barrier NAME      child: ready     (NAME received: all earlier notifications are in)
//	parent: expect VALUE      child: received UNIXNANO   (the write of VALUE reached the cache then)
//	parent: check             child: reads N hits H stale S
const envCoherenceChild = "AUDITPG_COHERENCE_CHILD"

// coherenceChild runs the child's side and returns its exit code.
func coherenceChild(dsn string) int {
	err := runCoherenceChild(dsn, os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "coherence child:", err)
		return 1
	}
	return 0
}

func runCoherenceChild(dsn string, in io.Reader, out io.Writer) error {
	ctx := context.Background()
	rec := newReceipts()
	db, err := Open(dsn, WithCacheMode(CacheAll), WithInvalidation(InvalidateNotify), WithObserver(rec))
	if err != nil {
		return err
	}
	defer db.Close()

	type read struct {
		started time.Time
		value   int64
	}
	var mu sync.Mutex
	var reads []read
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				started := time.Now()
				var v int64
				if err := db.QueryRowContext(ctx, cohVersion.query).Scan(&v); err == nil {
					mu.Lock()
					reads = append(reads, read{started, v})
					mu.Unlock()
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	defer func() { close(stop); readers.Wait() }()
	// The readers' first read starts the change feed: say when it is up.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s, err := Stats(db)
		if err != nil {
			return err
		}
		if s.Cache.Feed == "up" {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the change feed is not up after 10s")
		}
	}
	fmt.Fprintln(out, "up")

	type receipt struct {
		at    time.Time
		value int64
	}
	var got []receipt
	var since time.Time
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		cmd, arg, _ := strings.Cut(lines.Text(), " ")
		switch cmd {
		case "barrier":
			if _, ok := rec.awaitNamed(arg, time.Time{}); !ok {
				return fmt.Errorf("barrier %s not received", arg)
			}
			since = time.Now()
			fmt.Fprintln(out, "ready")
		case "expect":
			value, err := strconv.ParseInt(arg, 10, 64)
			if err != nil {
				return err
			}
			at, ok := rec.await(cohVersion.table, since)
			if !ok {
				return fmt.Errorf("the write of %d was not received", value)
			}
			got = append(got, receipt{at, value})
			fmt.Fprintln(out, "received", at.UnixNano())
		case "check":
			close(stop)
			readers.Wait()
			stop = make(chan struct{}) // for the deferred close
			stale := 0
			for _, r := range reads {
				for _, g := range got {
					if r.started.After(g.at) && r.value < g.value {
						if stale++; stale <= 5 {
							fmt.Fprintf(os.Stderr, "coherence child: stale read of %d, started %v after the receipt of %d\n", r.value, r.started.Sub(g.at), g.value)
						}
					}
				}
			}
			s, err := Stats(db)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, "reads", len(reads), "hits", s.Cache.Hits, "stale", stale)
			return nil
		default:
			return fmt.Errorf("unknown command %q", lines.Text())
		}
	}
	return lines.Err()
}

// TestCoherenceAcrossProcesses: a second OS process reads through a cache
// of its own while this one writes through auditpg, bare pgx and psql: the
// child never serves the old row after its change feed received a write.
func TestCoherenceAcrossProcesses(t *testing.T) {
	run := 10 * time.Second
	if testing.Short() {
		run = 2 * time.Second
	}
	ctx := context.Background()
	admin := testdb.Open(t, "pgx", testDSN)
	for _, stmt := range []string{
		`DROP TABLE IF EXISTS coh_item`,
		`CREATE TABLE coh_item (id int PRIMARY KEY, v bigint NOT NULL)`,
		`INSERT INTO coh_item VALUES (1, 0)`,
		changefeed.InstallFunctionSQL("public"),
		changefeed.InstallTriggerSQL(pgx.Identifier{"coh_item"}, "public"),
	} {
		testdb.Exec(t, admin, stmt)
	}
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS coh_item`) })

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(self, "-test.run", "^$")
	child.Env = append(os.Environ(), envCoherenceChild+"="+testDSN)
	child.Stderr = os.Stderr
	toChild, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	fromChildPipe, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer toChild.Close()
	fromChild := bufio.NewScanner(fromChildPipe)
	if !fromChild.Scan() || fromChild.Text() != "up" {
		t.Fatalf("the child process did not say its change feed was up: %q, %v", fromChild.Text(), fromChild.Err())
	}
	ask := func(line string) string {
		t.Helper()
		fmt.Fprintln(toChild, line)
		if !fromChild.Scan() {
			t.Fatalf("the child process said nothing to %q: %v", line, fromChild.Err())
		}
		return fromChild.Text()
	}

	a := ciOpenDSN(t, testDSN, WithCacheMode(CacheAll), WithInvalidation(InvalidateNotify))
	bare, err := pgx.Connect(ctx, testDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close(ctx)
	psql, err := exec.LookPath("psql") // installed with the server (postgresql-client)
	if err != nil {
		t.Fatalf("psql, one of the writers, is not installed: %v", err)
	}
	var version int64
	writers := []struct {
		via string
		do  func() error
	}{
		{"auditpg", func() error {
			_, err := a.ExecContext(ctx, `UPDATE coh_item SET v = $1 WHERE id = 1`, version)
			return err
		}},
		{"bare pgx", func() error {
			_, err := bare.Exec(ctx, `UPDATE coh_item SET v = $1 WHERE id = 1`, version)
			return err
		}},
		{"psql", func() error {
			out, err := exec.CommandContext(ctx, psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", testDSN,
				"-c", fmt.Sprintf(`UPDATE coh_item SET v = %d WHERE id = 1`, version)).CombinedOutput()
			if err != nil {
				err = fmt.Errorf("%w: %s", err, out)
			}
			return err
		}},
	}
	var windows []time.Duration
	byVia := map[string]int{}
	for deadline, n := time.Now().Add(run), 0; time.Now().Before(deadline); n++ {
		// Every earlier notification is in before the write, so that the
		// child's next receipt of coh_item is this write's.
		for deadline := time.Now().Add(5 * time.Second); cacheStats(t, a).FeedPending > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("this process still has invalidations to publish after 5s")
			}
		}
		barrier := fmt.Sprint("coh_process_barrier_", n)
		if _, err := bare.Exec(ctx, `SELECT pg_notify($1, $2)`, changefeed.Channel, changefeed.Payload("public", barrier)); err != nil {
			t.Fatal(err)
		}
		if got := ask("barrier " + barrier); got != "ready" {
			t.Fatalf("child: %q", got)
		}
		w := writers[n%len(writers)]
		version++
		if err := w.do(); err != nil {
			t.Fatalf("write through %s: %v", w.via, err)
		}
		committed := time.Now()
		byVia[w.via]++
		got := ask(fmt.Sprint("expect ", version))
		nanos, err := strconv.ParseInt(strings.TrimPrefix(got, "received "), 10, 64)
		if err != nil {
			t.Fatalf("child: %q", got)
		}
		windows = append(windows, max(0, time.Unix(0, nanos).Sub(committed)))
	}
	var reads, hits, stale int
	if _, err := fmt.Sscanf(ask("check"), "reads %d hits %d stale %d", &reads, &hits, &stale); err != nil {
		t.Fatal(err)
	}
	slices.Sort(windows)
	t.Logf("%d writes %v; the child: %d reads, %d cache hits, %d stale; window p50 %v, p99 %v, max %v", len(windows), byVia,
		reads, hits, stale, windows[len(windows)/2], windows[len(windows)*99/100], windows[len(windows)-1])
	if stale > 0 {
		t.Errorf("%d reads in the child process returned the old row after it received the write", stale)
	}
	if hits == 0 {
		t.Error("the child served nothing from its cache: the test proved nothing")
	}
}
