package auditpg

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

var statsStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// statsTestConfig is the driver's default configuration.
func statsTestConfig() statsConfig {
	return statsConfig{slowThreshold: time.Second, maxFingerprints: defaultMaxFingerprints, maxSlowSamples: defaultMaxSlowSamples}
}

// statsStmt builds by hand the Statement the classifier would make.
func statsStmt(id uint64, table string) *Statement {
	return &Statement{
		Kind:          KindSelect,
		Operation:     "SELECT",
		Summary:       "SELECT " + table,
		Fingerprint:   "SELECT * FROM " + table + " WHERE id = $1",
		FingerprintID: id,
	}
}

func statsEvent(op Op, st *Statement, d time.Duration) *Event {
	ev := &Event{Op: op, Statement: st, Start: statsStart, Duration: d}
	if st != nil {
		ev.Query = st.Fingerprint
	}
	return ev
}

func statsFind(t *testing.T, s Snapshot, st *Statement) StatementStats {
	t.Helper()
	for _, ss := range s.Statements {
		if ss.Fingerprint == st.Fingerprint {
			return ss
		}
	}
	t.Fatalf("fingerprint %q not in snapshot", st.Fingerprint)
	return StatementStats{}
}

func statsFingerprints(s Snapshot) []string {
	var fps []string
	for _, ss := range s.Statements {
		fps = append(fps, ss.Fingerprint)
	}
	slices.Sort(fps)
	return fps
}

func TestOpString(t *testing.T) {
	for op, want := range map[Op]string{
		OpConnect: "connect", OpPing: "ping", OpPrepare: "prepare", OpExec: "exec",
		OpQuery: "query", OpBegin: "begin", OpCommit: "commit", OpRollback: "rollback",
		Op(99): "Op(99)",
	} {
		if got := op.String(); got != want {
			t.Errorf("Op(%d).String() = %q, want %q", op, got, want)
		}
	}
}

func TestTotals(t *testing.T) {
	c := newCollector(statsTestConfig())
	ctx := context.Background()
	st := statsStmt(1, "audit_log")
	for _, ev := range []*Event{
		{Op: OpQuery, Statement: st, Rows: 5},
		{Op: OpQuery, Statement: st, Rows: 7, Err: errors.New("boom")},
		{Op: OpQuery, Rows: 3}, // no Statement: counted, not fingerprinted
		{Op: OpExec, Statement: st, Rows: 2},
		{Op: OpExec, Statement: st, Rows: 9},
		{Op: OpPrepare, Statement: st},
		{Op: OpPrepare, Statement: st, Err: errors.New("bad")},
		{Op: OpBegin}, {Op: OpBegin}, {Op: OpCommit}, {Op: OpRollback},
		{Op: OpPing},
		{Op: OpConnect, Err: errors.New("refused")}, // connects are counted by connected
	} {
		endEvent(c, ctx, ev)
	}
	s := c.snapshot(sql.DBStats{})
	want := Totals{
		Queries: 3, Execs: 2, Prepares: 2, Begins: 2, Commits: 1, Rollbacks: 1, Pings: 1,
		Errors: 2, RowsReturned: 15, RowsAffected: 11,
	}
	if s.Totals != want {
		t.Errorf("Totals = %+v\nwant     %+v", s.Totals, want)
	}
	if len(s.Statements) != 1 || s.Statements[0].Calls != 4 {
		t.Errorf("Statements = %+v, want one fingerprint with the 4 queries and execs", s.Statements)
	}
	if s.Pool.Connects != 0 || s.Pool.ConnectFailures != 0 {
		t.Errorf("a connect Event was counted in Pool: %+v", s.Pool)
	}
}

func TestStatementStats(t *testing.T) {
	c := newCollector(statsTestConfig())
	st := statsStmt(42, "audit_preset")
	other := statsStmt(43, "audit_log")
	durs := []time.Duration{3 * time.Millisecond, 1 * time.Millisecond, 7 * time.Millisecond, 2500 * time.Microsecond, 11 * time.Millisecond}
	var wantRows, wantErrs int64
	for i, d := range durs {
		ev := statsEvent(OpQuery, st, d)
		ev.Start = statsStart.Add(time.Duration(i) * time.Second)
		ev.Rows = int64(i + 1)
		wantRows += ev.Rows
		if i%2 == 0 {
			ev.Err = errors.New("failed")
			wantErrs++
		}
		endEvent(c, context.Background(), ev)
		endEvent(c, context.Background(), statsEvent(OpExec, other, time.Millisecond))
	}

	var total time.Duration
	for _, d := range durs {
		total += d
	}
	mean := float64(total) / float64(len(durs))
	var sq float64
	for _, d := range durs {
		sq += (float64(d) - mean) * (float64(d) - mean)
	}
	wantStdDev := time.Duration(math.Sqrt(sq / float64(len(durs))))

	got := statsFind(t, c.snapshot(sql.DBStats{}), st)
	want := StatementStats{
		Fingerprint: st.Fingerprint, Summary: st.Summary, Operation: st.Operation,
		Calls: int64(len(durs)), Errors: wantErrs, Rows: wantRows,
		Total: total, Min: time.Millisecond, Max: 11 * time.Millisecond,
		Mean: total / time.Duration(len(durs)),
		// Percentiles are checked by TestPercentiles.
		P50: got.P50, P95: got.P95, P99: got.P99,
		StdDev:   got.StdDev,
		LastSeen: statsStart.Add(4*time.Second + 11*time.Millisecond),
	}
	if got != want {
		t.Errorf("stats = %+v\nwant    %+v", got, want)
	}
	if diff := got.StdDev - wantStdDev; diff < -1 || diff > 1 {
		t.Errorf("StdDev = %v, want %v", got.StdDev, wantStdDev)
	}
}

func TestSnapshotOrder(t *testing.T) {
	c := newCollector(statsTestConfig())
	type fp struct {
		name        string
		total, mean time.Duration
	}
	var fps []fp
	// Fingerprint i: i+1 calls of (20-i) ms and one of 3i ms, so that the
	// orders by total, by mean and by max all differ, with ties in total.
	for i := range 15 {
		st := statsStmt(uint64(i+1), fmt.Sprintf("t%02d", i))
		durs := []time.Duration{time.Duration(3*i) * time.Millisecond}
		for range i + 1 {
			durs = append(durs, time.Duration(20-i)*time.Millisecond)
		}
		var total time.Duration
		for _, d := range durs {
			endEvent(c, context.Background(), statsEvent(OpQuery, st, d))
			total += d
		}
		fps = append(fps, fp{st.Fingerprint, total, total / time.Duration(len(durs))})
	}
	s := c.snapshot(sql.DBStats{})

	check := func(list string, got []StatementStats, key func(fp) time.Duration, n int) {
		t.Helper()
		want := slices.Clone(fps)
		slices.SortFunc(want, func(a, b fp) int {
			if key(a) != key(b) {
				return int(key(b) - key(a))
			}
			return strings.Compare(a.name, b.name)
		})
		want = want[:n]
		if len(got) != n {
			t.Fatalf("len(%s) = %d, want %d", list, len(got), n)
		}
		for i, w := range want {
			if g := got[i]; g.Fingerprint != w.name || g.Total != w.total || g.Mean != w.mean {
				t.Errorf("%s[%d] = %q total %v mean %v, want %q total %v mean %v", list, i, g.Fingerprint, g.Total, g.Mean, w.name, w.total, w.mean)
			}
		}
	}
	check("Statements", s.Statements, func(f fp) time.Duration { return f.total }, len(fps))
	check("Slowest", s.Slowest, func(f fp) time.Duration { return f.mean }, slowestLen)
}

func TestHistogramBuckets(t *testing.T) {
	check := func(v time.Duration) {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, out of [0,%d)", v, i, histBuckets)
		}
		mid := histMid(i)
		if diff := (mid - v).Abs(); diff*16 > v {
			t.Fatalf("histMid(histIndex(%d)) = %d: %.2f%% off, more than 6.25%%", v, mid, 100*float64(diff)/float64(v))
		}
	}
	prev := 0
	for v := range time.Duration(100000) {
		check(v)
		if i := histIndex(v); i < prev {
			t.Fatalf("histIndex(%d) = %d < histIndex(%d) = %d", v, i, v-1, prev)
		} else {
			prev = i
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	const limit = time.Duration(1) << (histMaxExp + 1)
	for range 100000 {
		check(time.Duration(r.Int64N(int64(limit))))
	}
	check(limit - 1)
	if got := histIndex(limit - 1); got != histBuckets-1 {
		t.Errorf("histIndex(2^%d-1) = %d, want the last bucket %d", histMaxExp+1, got, histBuckets-1)
	}
	if got := histIndex(100 * time.Hour); got != histBuckets-1 {
		t.Errorf("histIndex(100h) = %d, want the last bucket", got)
	}
	if got := histIndex(-time.Second); got != 0 {
		t.Errorf("histIndex(-1s) = %d, want 0", got)
	}
}

func TestPercentiles(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	dists := map[string]func() time.Duration{
		"exponential": func() time.Duration {
			return 200*time.Microsecond + time.Duration(r.ExpFloat64()*float64(5*time.Millisecond))
		},
		"uniform": func() time.Duration { return time.Duration(r.Int64N(int64(time.Second))) + 1 },
		"bimodal": func() time.Duration {
			if r.IntN(100) < 97 { // 97% fast, 3% slow: p95 fast, p99 slow
				return time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
			}
			return 2*time.Second + time.Duration(r.Int64N(int64(time.Second)))
		},
	}
	for name, next := range dists {
		t.Run(name, func(t *testing.T) {
			c := newCollector(statsTestConfig())
			st := statsStmt(7, name)
			durs := make([]time.Duration, 10007)
			for i := range durs {
				durs[i] = next()
				endEvent(c, context.Background(), statsEvent(OpQuery, st, durs[i]))
			}
			slices.Sort(durs)
			got := statsFind(t, c.snapshot(sql.DBStats{}), st)
			for _, p := range []struct {
				pct int
				got time.Duration
			}{{50, got.P50}, {95, got.P95}, {99, got.P99}} {
				rank := (len(durs)*p.pct + 99) / 100 // nearest rank, 1-based
				want := durs[rank-1]
				if diff := (p.got - want).Abs(); float64(diff) > 0.0625*float64(want) {
					t.Errorf("p%d = %v, want %v within 6.25%% (off by %.2f%%)", p.pct, p.got, want, 100*float64(diff)/float64(want))
				}
			}
		})
	}

	t.Run("clamped", func(t *testing.T) {
		c := newCollector(statsTestConfig())
		st := statsStmt(8, "one")
		const d = 1234567 * time.Nanosecond
		endEvent(c, context.Background(), statsEvent(OpQuery, st, d))
		got := statsFind(t, c.snapshot(sql.DBStats{}), st)
		if got.P50 != d || got.P95 != d || got.P99 != d {
			t.Errorf("single call of %v: p50 %v p95 %v p99 %v, want all exact", d, got.P50, got.P95, got.P99)
		}
	})
}

func TestLRUEviction(t *testing.T) {
	cfg := statsTestConfig()
	cfg.maxFingerprints = 3
	c := newCollector(cfg)
	a, b, cc, d, e := statsStmt(1, "a"), statsStmt(2, "b"), statsStmt(3, "c"), statsStmt(4, "d"), statsStmt(5, "e")
	record := func(st *Statement, dur time.Duration, rows int64) {
		ev := statsEvent(OpQuery, st, dur)
		ev.Rows = rows
		endEvent(c, context.Background(), ev)
	}
	record(a, time.Millisecond, 1)
	for range 5 {
		record(b, time.Microsecond, 100) // b's state must not leak into d, which reuses its entry
	}
	record(cc, time.Millisecond, 1)
	record(a, time.Millisecond, 1) // a is now the most recent; b the least
	record(d, 9*time.Millisecond, 2)

	s := c.snapshot(sql.DBStats{})
	if got, want := statsFingerprints(s), []string{a.Fingerprint, cc.Fingerprint, d.Fingerprint}; !slices.Equal(got, want) {
		t.Errorf("after d: tracked %q, want %q", got, want)
	}
	if s.EvictedFingerprints != 1 {
		t.Errorf("EvictedFingerprints = %d, want 1", s.EvictedFingerprints)
	}
	got := statsFind(t, s, d)
	if got.Calls != 1 || got.Rows != 2 || got.Min != 9*time.Millisecond || got.P50 != 9*time.Millisecond || got.Errors != 0 {
		t.Errorf("d reused b's entry without clearing it: %+v", got)
	}

	record(cc, time.Millisecond, 1) // order now c, d, a: a goes next
	record(e, time.Millisecond, 1)
	s = c.snapshot(sql.DBStats{})
	if got, want := statsFingerprints(s), []string{cc.Fingerprint, d.Fingerprint, e.Fingerprint}; !slices.Equal(got, want) {
		t.Errorf("after e: tracked %q, want %q", got, want)
	}
	if s.EvictedFingerprints != 2 {
		t.Errorf("EvictedFingerprints = %d, want 2", s.EvictedFingerprints)
	}
	if s.Totals.Queries != 11 {
		t.Errorf("Totals.Queries = %d, want 11: evicted calls still count", s.Totals.Queries)
	}
}

func TestSlowQueries(t *testing.T) {
	const secret, email = "secret-value-123", "bob@example.com"
	dupErr := fmt.Errorf("ERROR: duplicate key value violates unique constraint: Key (email)=(%s) already exists", email)

	for _, logArgs := range []bool{false, true} {
		t.Run(fmt.Sprintf("logArgs=%v", logArgs), func(t *testing.T) {
			var logBuf bytes.Buffer
			var c *collector
			var calls []SlowQuery
			cfg := statsTestConfig()
			cfg.slowThreshold = 10 * time.Millisecond
			cfg.maxSlowSamples = 3
			cfg.logArgs = logArgs
			cfg.logger = slog.New(slog.NewJSONHandler(&logBuf, nil))
			cfg.onSlow = func(sq SlowQuery) {
				// Called after recording, outside the lock: a snapshot works
				// and already counts this sample.
				if got := c.snapshot(sql.DBStats{}).Totals.Slow; got != int64(len(calls)+1) {
					t.Errorf("callback %d sees Totals.Slow = %d", len(calls)+1, got)
				}
				calls = append(calls, sq)
			}
			c = newCollector(cfg)

			st := statsStmt(1, "users")
			args := []driver.NamedValue{{Ordinal: 1, Value: secret}, {Ordinal: 2, Value: int64(42)}}
			var wantSlow []time.Duration
			for i, d := range []time.Duration{5, 10, 20, 9, 30, 40, 50} {
				d *= time.Millisecond
				ev := statsEvent(OpExec, st, d)
				ev.Start = statsStart.Add(time.Duration(i) * time.Minute)
				ev.Args = args
				ev.Rows = int64(i)
				if d == 30*time.Millisecond {
					ev.Err, ev.SQLState = dupErr, "23505"
				}
				if d == 50*time.Millisecond {
					ev.Op, ev.Statement, ev.Query, ev.Args = OpCommit, nil, "", nil
				}
				endEvent(c, context.Background(), ev)
				if d >= cfg.slowThreshold {
					wantSlow = append(wantSlow, d)
				}
			}

			s := c.snapshot(sql.DBStats{})
			if s.Totals.Slow != int64(len(wantSlow)) {
				t.Errorf("Totals.Slow = %d, want %d", s.Totals.Slow, len(wantSlow))
			}
			var gotCalls []time.Duration
			for _, sq := range calls {
				gotCalls = append(gotCalls, sq.Duration)
			}
			if !slices.Equal(gotCalls, wantSlow) {
				t.Errorf("callback got %v, want %v", gotCalls, wantSlow)
			}
			var gotRing []time.Duration
			for _, sq := range s.SlowQueries {
				gotRing = append(gotRing, sq.Duration)
			}
			if want := []time.Duration{50 * time.Millisecond, 40 * time.Millisecond, 30 * time.Millisecond}; !slices.Equal(gotRing, want) {
				t.Fatalf("SlowQueries = %v, want the newest 3 newest first, %v", gotRing, want)
			}

			commit, exec40, failed := s.SlowQueries[0], s.SlowQueries[1], s.SlowQueries[2]
			if commit.Op != "commit" || commit.Fingerprint != "" || commit.Args != nil {
				t.Errorf("slow commit sample = %+v", commit)
			}
			if exec40.Op != "exec" || exec40.Fingerprint != st.Fingerprint || exec40.Summary != st.Summary ||
				exec40.Rows != 5 || !exec40.Time.Equal(statsStart.Add(5*time.Minute)) || exec40.Err != "" {
				t.Errorf("slow exec sample = %+v", exec40)
			}
			if failed.SQLState != "23505" {
				t.Errorf("SQLState = %q, want 23505", failed.SQLState)
			}

			logs := logBuf.String()
			if n := strings.Count(logs, `"msg":"auditpg: slow query"`); n != len(wantSlow) {
				t.Errorf("%d slow-query log records, want %d:\n%s", n, len(wantSlow), logs)
			}
			for _, want := range []string{`"level":"WARN"`, `"fingerprint":"` + st.Fingerprint, `"op":"exec"`, `"sqlstate":"23505"`, `"duration":`} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %s:\n%s", want, logs)
				}
			}

			if logArgs {
				if !slices.Equal(exec40.Args, []string{secret, "42"}) {
					t.Errorf("Args = %q, want [%s 42]", exec40.Args, secret)
				}
				if failed.Err != dupErr.Error() {
					t.Errorf("Err = %q, want the full message", failed.Err)
				}
				if !strings.Contains(logs, secret) || !strings.Contains(logs, email) {
					t.Errorf("logArgs: log lacks the values:\n%s", logs)
				}
				// Snapshots get their own Args.
				s.SlowQueries[1].Args[0] = "changed"
				if got := c.snapshot(sql.DBStats{}).SlowQueries[1].Args[0]; got != secret {
					t.Errorf("changing a snapshot's Args changed the ring: %q", got)
				}
				return
			}
			for _, sq := range append(calls, s.SlowQueries...) {
				if sq.Args != nil {
					t.Errorf("Args = %q without logArgs", sq.Args)
				}
			}
			if failed.Err != "SQLSTATE 23505" {
				t.Errorf("Err = %q, want only the SQLSTATE", failed.Err)
			}
			if strings.Contains(logs, secret) || strings.Contains(logs, email) {
				t.Errorf("log holds values without logArgs:\n%s", logs)
			}
		})
	}
}

func TestSlowDisabled(t *testing.T) {
	cfg := statsTestConfig()
	cfg.slowThreshold = 0
	called := false
	cfg.onSlow = func(SlowQuery) { called = true }
	c := newCollector(cfg)
	endEvent(c, context.Background(), statsEvent(OpQuery, statsStmt(1, "t"), time.Hour))
	s := c.snapshot(sql.DBStats{})
	if called || s.Totals.Slow != 0 || len(s.SlowQueries) != 0 {
		t.Errorf("threshold 0: called %v, Slow %d, samples %d; want none", called, s.Totals.Slow, len(s.SlowQueries))
	}
	if s.Totals.Queries != 1 {
		t.Errorf("Totals.Queries = %d, want 1", s.Totals.Queries)
	}
}

func TestSlowErrText(t *testing.T) {
	leaky := errors.New(`invalid input syntax for type integer: "hunter2"`)
	for _, tc := range []struct {
		name     string
		err      error
		sqlState string
		full     bool
		want     string
	}{
		{"nil", nil, "", false, ""},
		{"sqlstate", leaky, "22P02", false, "SQLSTATE 22P02"},
		{"deadline", fmt.Errorf("timeout: %w", context.DeadlineExceeded), "", false, "context deadline exceeded"},
		{"canceled", fmt.Errorf("query %q: %w", "hunter2", context.Canceled), "57014", false, "context canceled"},
		{"unknown", leaky, "", false, "call failed (message withheld: it may contain values)"},
		{"full", leaky, "22P02", true, leaky.Error()},
	} {
		if got := slowErrText(tc.err, tc.sqlState, tc.full); got != tc.want {
			t.Errorf("%s: slowErrText = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSlowArgs(t *testing.T) {
	long := strings.Repeat("é", 1000) // two bytes a rune: the cut must not split one
	args := []driver.NamedValue{
		{Value: nil}, {Value: "text"}, {Value: []byte{0xde, 0xad}}, {Value: int64(-3)},
		{Value: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}, {Value: long},
	}
	got := slowArgs(args)
	want := []string{"NULL", "text", `\xdead`, "-3", "2026-01-02T03:04:05.000000006Z"}
	if !slices.Equal(got[:5], want) {
		t.Errorf("formatArgs = %q, want %q", got[:5], want)
	}
	if cut := got[5]; len(cut) > maxSlowArgLen+len("…") || !utf8.ValidString(cut) || !strings.HasSuffix(cut, "…") {
		t.Errorf("long argument kept as %d bytes %q, want at most %d valid bytes ending in …", len(cut), cut, maxSlowArgLen)
	}

	many := make([]driver.NamedValue, maxSlowArgs+8)
	for i := range many {
		many[i].Value = int64(i)
	}
	got = slowArgs(many)
	if len(got) != maxSlowArgs+1 || got[maxSlowArgs] != "(8 more)" {
		t.Errorf("%d arguments kept as %d: last %q", len(many), len(got), got[len(got)-1])
	}
	if slowArgs(nil) != nil {
		t.Errorf("slowArgs(nil) != nil")
	}
}

func TestConnectAndLifetime(t *testing.T) {
	c := newCollector(statsTestConfig())
	c.connected(10*time.Millisecond, nil)
	c.connected(30*time.Millisecond, nil)
	c.connected(5*time.Second, errors.New("connection refused"))
	c.closed(time.Minute)
	c.closed(3 * time.Minute)
	pool := sql.DBStats{
		MaxOpenConnections: 10, OpenConnections: 4, InUse: 3, Idle: 1,
		WaitCount: 7, WaitDuration: time.Second, MaxIdleClosed: 2, MaxIdleTimeClosed: 5, MaxLifetimeClosed: 6,
	}
	got := c.snapshot(pool).Pool
	want := PoolStats{
		MaxOpenConnections: 10, OpenConnections: 4, InUse: 3, Idle: 1,
		WaitCount: 7, WaitDuration: time.Second, MaxIdleClosed: 2, MaxIdleTimeClosed: 5, MaxLifetimeClosed: 6,
		Connects: 2, ConnectFailures: 1, MeanConnectTime: 20 * time.Millisecond,
		Closes: 2, MeanConnLifetime: 2 * time.Minute,
	}
	if got != want {
		t.Errorf("Pool = %+v\nwant   %+v", got, want)
	}
}

func TestReset(t *testing.T) {
	cfg := statsTestConfig()
	cfg.slowThreshold = time.Millisecond
	cfg.maxFingerprints = 2
	c := newCollector(cfg)
	for i := range 3 {
		endEvent(c, context.Background(), statsEvent(OpQuery, statsStmt(uint64(i), fmt.Sprint(i)), time.Second))
	}
	c.connected(time.Millisecond, nil)
	c.closed(time.Hour)

	before := time.Now()
	c.reset(sql.DBStats{})
	s := c.snapshot(sql.DBStats{})
	if s.Since.Before(before) {
		t.Errorf("Since = %v, before the reset at %v", s.Since, before)
	}
	if s.Totals != (Totals{}) || len(s.Statements) != 0 || len(s.Slowest) != 0 || len(s.SlowQueries) != 0 ||
		s.EvictedFingerprints != 0 || s.Pool != (PoolStats{}) {
		t.Errorf("after reset: %+v", s)
	}

	// The configuration survives: still 2 fingerprints, 1ms threshold.
	for i := range 3 {
		endEvent(c, context.Background(), statsEvent(OpQuery, statsStmt(uint64(10+i), fmt.Sprint(10+i)), 2*time.Millisecond))
	}
	s = c.snapshot(sql.DBStats{})
	if len(s.Statements) != 2 || s.EvictedFingerprints != 1 || len(s.SlowQueries) != 3 || s.Totals.Queries != 3 {
		t.Errorf("after reset and 3 slow queries: %d statements, %d evicted, %d samples, %d queries; want 2, 1, 3, 3",
			len(s.Statements), s.EvictedFingerprints, len(s.SlowQueries), s.Totals.Queries)
	}
}

func TestNewCollectorDefaults(t *testing.T) {
	c := newCollector(statsConfig{slowThreshold: time.Millisecond})
	if c.cfg.maxFingerprints != defaultMaxFingerprints || cap(c.slow) != defaultMaxSlowSamples {
		t.Errorf("newCollector(zero maxima): maxFingerprints %d, ring %d; want the defaults", c.cfg.maxFingerprints, cap(c.slow))
	}
	endEvent(c, context.Background(), statsEvent(OpQuery, statsStmt(1, "t"), time.Second))
	if s := c.snapshot(sql.DBStats{}); len(s.Statements) != 1 || len(s.SlowQueries) != 1 {
		t.Errorf("after one slow query: %d statements, %d samples; want 1, 1", len(s.Statements), len(s.SlowQueries))
	}
}

// TestSlowRingGrows: at the largest bounds a collector allocates no more
// than at the defaults, and a ring larger than what it starts with still
// keeps the newest samples, newest first.
func TestSlowRingGrows(t *testing.T) {
	cfg := statsTestConfig()
	cfg.slowThreshold = time.Millisecond
	cfg.maxFingerprints, cfg.maxSlowSamples = maxFingerprintsLimit, maxSlowSamplesLimit
	if c := newCollector(cfg); cap(c.slow) > defaultMaxSlowSamples {
		t.Errorf("a ring of at most %d samples starts with room for %d", cfg.maxSlowSamples, cap(c.slow))
	}
	cfg.maxSlowSamples = 3 * defaultMaxSlowSamples / 2
	c := newCollector(cfg)
	const n = 2 * defaultMaxSlowSamples
	for i := range n {
		ev := statsEvent(OpQuery, statsStmt(1, "t"), time.Second)
		ev.Rows = int64(i)
		endEvent(c, context.Background(), ev)
		if want := min(i+1, cfg.maxSlowSamples); len(c.slow) != want {
			t.Fatalf("after %d slow calls the ring holds %d, want %d", i+1, len(c.slow), want)
		}
	}
	s := c.snapshot(sql.DBStats{})
	for i, sq := range s.SlowQueries {
		if want := int64(n - 1 - i); sq.Rows != want {
			t.Fatalf("sample %d is of call %d, want %d (newest first)", i, sq.Rows, want)
		}
	}
}

func TestConcurrentRecording(t *testing.T) {
	const goroutines, iterations, nfp = 4, 2000, 5
	cfg := statsTestConfig()
	cfg.slowThreshold = 10 * time.Millisecond
	cfg.maxSlowSamples = 7
	var slowCalls atomic.Int64
	cfg.onSlow = func(SlowQuery) { slowCalls.Add(1) }
	c := newCollector(cfg)
	stmts := make([]*Statement, nfp)
	for i := range stmts {
		stmts[i] = statsStmt(uint64(i+1), fmt.Sprint(i))
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() { // snapshots race with the writers
		for {
			select {
			case <-done:
				return
			default:
				c.snapshot(sql.DBStats{})
			}
		}
	})
	var writers sync.WaitGroup
	for g := range goroutines {
		writers.Go(func() {
			ev := &Event{}
			for i := range iterations {
				*ev = Event{Op: OpQuery, Statement: stmts[i%nfp], Start: statsStart, Duration: time.Duration(i%20) * time.Millisecond, Rows: 2}
				if (i+g)%10 == 0 {
					ev.Err = errors.New("x")
				}
				endEvent(c, context.Background(), ev)
				*ev = Event{Op: OpBegin, Duration: time.Microsecond}
				endEvent(c, context.Background(), ev)
				if i%100 == 0 {
					c.connected(time.Millisecond, nil)
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()

	s := c.snapshot(sql.DBStats{})
	// Durations 10..19 ms of every 20 are slow.
	want := Totals{Queries: goroutines * iterations, Begins: goroutines * iterations, Errors: goroutines * iterations / 10,
		RowsReturned: 2 * goroutines * iterations, Slow: goroutines * iterations / 2}
	if s.Totals != want {
		t.Errorf("Totals = %+v\nwant     %+v", s.Totals, want)
	}
	if slowCalls.Load() != want.Slow || len(s.SlowQueries) != cfg.maxSlowSamples {
		t.Errorf("%d slow callbacks, %d samples; want %d, %d", slowCalls.Load(), len(s.SlowQueries), want.Slow, cfg.maxSlowSamples)
	}
	for _, ss := range s.Statements {
		if ss.Calls != goroutines*iterations/nfp {
			t.Errorf("%s: %d calls, want %d", ss.Fingerprint, ss.Calls, goroutines*iterations/nfp)
		}
	}
	if s.Pool.Connects != goroutines*iterations/100 {
		t.Errorf("Connects = %d, want %d", s.Pool.Connects, goroutines*iterations/100)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	c := newCollector(statsTestConfig())
	st := statsStmt(1, "audit_log")
	query := statsEvent(OpQuery, st, time.Millisecond)
	commit := statsEvent(OpCommit, nil, time.Millisecond)
	endEvent(c, context.Background(), query) // the first call of a fingerprint may allocate
	allocs := testing.AllocsPerRun(1000, func() {
		query.Duration += time.Microsecond
		endEvent(c, context.Background(), query)
		endEvent(c, context.Background(), commit)
	})
	if allocs != 0 {
		t.Errorf("recording allocates %.1f times a call, want 0", allocs)
	}
}

// TestSnapshotJSON checks that every key the CLI prints is snake_case.
func TestSnapshotJSON(t *testing.T) {
	cfg := statsTestConfig()
	cfg.slowThreshold = time.Millisecond
	cfg.logArgs = true
	c := newCollector(cfg)
	ev := statsEvent(OpQuery, statsStmt(1, "t"), time.Second)
	ev.Args, ev.Err, ev.SQLState = []driver.NamedValue{{Value: int64(1)}}, errors.New("e"), "XX000"
	endEvent(c, context.Background(), ev)
	b, err := json.Marshal(c.snapshot(sql.DBStats{}))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)
	keys := 0
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				keys++
				if !snake.MatchString(k) {
					t.Errorf("JSON key %q is not snake_case", k)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	for _, k := range []string{`"slow_queries":[{`, `"p99_ns":`, `"mean_connect_time_ns":`, `"rows_returned":`, `"sql_state":"XX000"`, `"args":["1"]`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("JSON lacks %s: %s", k, b)
		}
	}
	if keys < 60 {
		t.Errorf("only %d JSON keys walked", keys)
	}
}

func BenchmarkRecord(b *testing.B) {
	// Durations spread over several histogram buckets, below the threshold.
	durs := make([]time.Duration, 64)
	for i := range durs {
		durs[i] = time.Duration(i+1) * 37 * time.Microsecond
	}
	setup := func() (*collector, *Statement) {
		c := newCollector(statsTestConfig())
		for i := range 100 { // a realistic map and LRU list
			endEvent(c, context.Background(), statsEvent(OpQuery, statsStmt(uint64(i+1), fmt.Sprint(i)), time.Millisecond))
		}
		return c, statsStmt(1, "0")
	}
	b.Run("serial", func(b *testing.B) {
		c, st := setup()
		ev := statsEvent(OpQuery, st, 0)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ev.Duration = durs[i&63]
			i++
			endEvent(c, context.Background(), ev)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c, st := setup()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			ev := statsEvent(OpQuery, st, 0)
			i := 0
			for pb.Next() {
				ev.Duration = durs[i&63]
				i++
				endEvent(c, context.Background(), ev)
			}
		})
	})
}

func BenchmarkSnapshot(b *testing.B) {
	c := newCollector(statsTestConfig())
	r := rand.New(rand.NewPCG(5, 6))
	for i := range defaultMaxFingerprints {
		st := statsStmt(uint64(i+1), fmt.Sprint(i))
		for range 100 {
			endEvent(c, context.Background(), statsEvent(OpQuery, st, time.Duration(r.ExpFloat64()*float64(time.Millisecond))))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		c.snapshot(sql.DBStats{})
	}
}

// A slow sample keeps the trace it ran in, so a report leads to the trace.
func TestSlowQueryTraceID(t *testing.T) {
	cfg := statsTestConfig()
	cfg.slowThreshold = time.Millisecond
	c := newCollector(cfg)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	st := statsStmt(1, "users")
	endEvent(c, ctx, statsEvent(OpQuery, st, 5*time.Millisecond))
	endEvent(c, context.Background(), statsEvent(OpQuery, st, 6*time.Millisecond))
	slow := c.snapshot(sql.DBStats{}).SlowQueries // newest first
	if len(slow) != 2 {
		t.Fatalf("%d slow samples, want 2", len(slow))
	}
	if slow[1].TraceID != tid.String() || slow[0].TraceID != "" {
		t.Errorf("trace ids %q, %q; want %q, then none", slow[1].TraceID, slow[0].TraceID, tid)
	}
}

// endEvent hands ev to c as the connector does: marked slow by the
// connector's rule first.
func endEvent(c *collector, ctx context.Context, ev *Event) {
	ev.Slow = c.cfg.isSlow(ev.Duration)
	c.End(ctx, ev)
}

// TestResetPool: after a reset the pool's counters count again, its gauges
// stay, and the connections open at the reset are reported apart, so that
// those open now are the sum.
func TestResetPool(t *testing.T) {
	c := newCollector(statsTestConfig())
	for range 3 {
		c.connected(time.Millisecond, nil)
	}
	c.closed(time.Minute)
	c.reset(sql.DBStats{WaitCount: 5, WaitDuration: time.Second, MaxIdleClosed: 2, MaxLifetimeClosed: 1})
	c.connected(3*time.Millisecond, nil)
	c.connected(time.Second, errors.New("refused"))
	got := c.snapshot(sql.DBStats{MaxOpenConnections: 4, OpenConnections: 3, InUse: 1, Idle: 2,
		WaitCount: 7, WaitDuration: 3 * time.Second, MaxIdleClosed: 2, MaxLifetimeClosed: 4}).Pool
	want := PoolStats{MaxOpenConnections: 4, OpenConnections: 3, InUse: 1, Idle: 2, OpenAtSince: 2,
		WaitCount: 2, WaitDuration: 2 * time.Second, MaxLifetimeClosed: 3,
		Connects: 1, ConnectFailures: 1, MeanConnectTime: 3 * time.Millisecond}
	if got != want {
		t.Errorf("Pool = %+v\nwant   %+v", got, want)
	}
	if int64(got.OpenConnections) != got.OpenAtSince+got.Connects-got.Closes {
		t.Errorf("open now %d != open at the reset %d + connects %d - closes %d", got.OpenConnections, got.OpenAtSince, got.Connects, got.Closes)
	}
}

// TestResetPoolReal: on a real pool, the figures after ResetStats add up:
// the connections open at the reset plus those connected since, less those
// closed, are those open now; and a wait before the reset is not counted.
func TestResetPoolReal(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, DriverName, WithMaxOpenConns(1))
	c1, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error)
	go func() {
		c, err := db.Conn(ctx) // waits for c1
		if err == nil {
			err = c.Close()
		}
		waited <- err
	}()
	for db.Stats().WaitCount == 0 {
		time.Sleep(time.Millisecond)
	}
	c1.Close()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if err := ResetStats(db); err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(4)
	var conns []*sql.Conn
	for range 3 { // one idle connection is reused, two are made
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	s, err := Stats(db)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Pool
	if p.OpenAtSince != 1 || p.Connects != 2 || p.Closes != 0 || p.OpenConnections != 3 || p.InUse != 3 || p.WaitCount != 0 || p.WaitDuration != 0 {
		t.Errorf("pool after the reset: %+v; want 1 open at the reset, 2 connects, 3 open and in use, no wait", p)
	}
	for _, c := range conns {
		c.Close()
	}
}

// fullSnapshot is a snapshot with every field set (a cache's figures
// included), from a collector fed by hand.
func fullSnapshot(t *testing.T) Snapshot {
	t.Helper()
	cfg := statsTestConfig()
	cfg.slowThreshold = time.Millisecond
	cfg.logArgs = true
	c := newCollector(cfg)
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	ev := statsEvent(OpQuery, statsStmt(1, "t"), time.Second)
	ev.Start = time.Now() // a monotonic reading, in the local zone
	ev.Args, ev.Err, ev.SQLState, ev.Rows, ev.Cache = []driver.NamedValue{{Value: int64(1)}}, errors.New("e"), "XX000", 3, CacheMiss
	endEvent(c, ctx, ev)
	c.connected(time.Millisecond, nil)
	c.closed(time.Minute)
	s := c.snapshot(sql.DBStats{MaxOpenConnections: 4, OpenConnections: 1, Idle: 1, WaitCount: 1, WaitDuration: time.Millisecond})
	s.Cache = &CacheStats{Mode: "all", Hits: 3, Misses: 1, Bypasses: map[string]int64{"in a transaction": 2}, Fills: 1,
		RejectedFills: 1, Evictions: 1, Invalidations: 1, UncachedInvalidations: 4, Entries: 1, HeldBytes: 120,
		CapacityBytes: 1 << 19, MaxBytes: 100 << 20, HitRatio: 0.75}
	return s
}

// TestSnapshotJSONRoundTrip: the JSON of a Snapshot decodes into an equal
// Snapshot, durations are integer nanoseconds in keys ending in _ns, and an
// empty snapshot has [] for its lists, never null.
func TestSnapshotJSONRoundTrip(t *testing.T) {
	s := fullSnapshot(t)
	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, back) {
		t.Errorf("round trip changed the snapshot:\n%+v\n%+v\n%s", s, back, buf.String())
	}
	if !strings.Contains(buf.String(), `"duration_ns": 1000000000`) {
		t.Errorf("a duration of 1s is not 1000000000 under duration_ns:\n%s", buf.String())
	}

	// Every duration's key says its unit.
	var check func(reflect.Type, string)
	check = func(ty reflect.Type, path string) {
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice:
			check(ty.Elem(), path)
		case reflect.Struct:
			if ty == reflect.TypeFor[time.Time]() {
				return
			}
			for f := range ty.Fields() {
				tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				if f.Type == reflect.TypeFor[time.Duration]() && !strings.HasSuffix(tag, "_ns") {
					t.Errorf("%s.%s is a duration under the key %q, without _ns", path, f.Name, tag)
				}
				check(f.Type, path+"."+f.Name)
			}
		}
	}
	check(reflect.TypeFor[Snapshot](), "Snapshot")

	empty, err := json.Marshal(newCollector(statsTestConfig()).snapshot(sql.DBStats{}))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(empty, []byte("null")) || !bytes.Contains(empty, []byte(`"statements":[]`)) || !bytes.Contains(empty, []byte(`"slowest":[]`)) {
		t.Errorf("empty snapshot: %s", empty)
	}
}

// TestCacheStatsCount: on a real server, a write to a table nothing was
// cached from is not an invalidation; a write that makes a cached result
// stale is, once; the bytes held are the entries', apart from the store's
// allocation and the configured size.
func TestCacheStatsCount(t *testing.T) {
	ctx := context.Background()
	db := cacheDB(t, "cstats_cached", WithCacheSize(8<<20))
	mustExec(t, db, `DROP TABLE IF EXISTS cstats_other`)
	mustExec(t, db, `CREATE TABLE cstats_other (id int PRIMARY KEY, v text)`)
	if err := ResetStats(db); err != nil {
		t.Fatal(err)
	}
	if s := cacheStats(t, db); s.Entries != 0 || s.HeldBytes != 0 || s.MaxBytes != 8<<20 || s.CapacityBytes <= 0 {
		t.Fatalf("before any read: %+v; want nothing held, 8 MB at most, some allocated", s)
	}
	readV(t, db, ctx, "cstats_cached", 1)
	s := cacheStats(t, db)
	if s.Fills != 1 || s.Entries != 1 || s.HeldBytes <= 0 || s.HeldBytes > int64(s.CapacityBytes) {
		t.Fatalf("after one read: %+v; want one entry and its bytes, within the allocation", s)
	}
	held := s.HeldBytes

	for i := range 5 {
		mustExec(t, db, fmt.Sprintf(`INSERT INTO cstats_other VALUES (%d, 'x')`, i))
	}
	if s := cacheStats(t, db); s.Invalidations != 0 || s.UncachedInvalidations != 5 {
		t.Fatalf("after 5 writes to a table nothing was cached from: %d invalidations, %d of nothing cached; want 0, 5",
			s.Invalidations, s.UncachedInvalidations)
	}
	mustExec(t, db, `UPDATE cstats_cached SET v = 'uno' WHERE id = 1`)
	mustExec(t, db, `UPDATE cstats_cached SET v = 'eins' WHERE id = 1`) // the entry is stale already
	if s := cacheStats(t, db); s.Invalidations != 1 || s.UncachedInvalidations != 6 {
		t.Fatalf("after 2 writes to the cached table: %d invalidations, %d of nothing cached; want 1, 6",
			s.Invalidations, s.UncachedInvalidations)
	}
	// The stale entry stays until its space is needed; one of the same
	// size is stored beside it.
	readV(t, db, ctx, "cstats_cached", 2)
	if s := cacheStats(t, db); s.Entries != 2 || s.HeldBytes != 2*held {
		t.Fatalf("after a second fill: %d entries, %d bytes; want 2, %d", s.Entries, s.HeldBytes, 2*held)
	}

	// Invalidating everything counts once while something is cached.
	for range 2 {
		if err := Invalidate(db); err != nil {
			t.Fatal(err)
		}
	}
	if s := cacheStats(t, db); s.Invalidations != 2 || s.UncachedInvalidations != 7 {
		t.Fatalf("after 2 invalidations of everything: %d invalidations, %d of nothing cached; want 2, 7",
			s.Invalidations, s.UncachedInvalidations)
	}
	// A reset keeps what is held.
	if err := ResetStats(db); err != nil {
		t.Fatal(err)
	}
	if s := cacheStats(t, db); s.Invalidations != 0 || s.UncachedInvalidations != 0 || s.Entries != 2 || s.HeldBytes != 2*held {
		t.Fatalf("after a reset: %+v; want the counters at 0 and the 2 entries still held", s)
	}
}
