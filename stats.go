package auditpg

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/auditpg/auditpg/internal/resultcache"
	"go.opentelemetry.io/otel/trace"
)

// Statistics and the slow-query tracker. The interceptor hands every finished
// call to collector.End, so recording must stay cheap: per-fingerprint state
// lives in fixed-size entries under one mutex, recording a fingerprint already
// tracked allocates nothing, and every derived figure (mean, standard
// deviation, percentiles) is computed only when a snapshot is taken.

// statsConfig is the part of the driver options that the collector reads.
type statsConfig struct {
	// slowThreshold makes every call that lasts at least this long a slow
	// sample; zero or negative disables slow-query tracking.
	slowThreshold time.Duration
	// onSlow, when set, is called with each slow sample, synchronously on the
	// goroutine that made the call, after the sample is recorded and outside
	// the collector's lock. It delays the caller: keep it fast. It must not
	// modify the sample's Args, which the ring of samples shares.
	onSlow func(SlowQuery)
	// logger, when set, receives a Warn record per slow sample. Argument
	// values and error messages appear in it only when logArgs is set.
	logger *slog.Logger
	// logArgs keeps argument values and full error messages in slow samples
	// and their log records. Off by default: values are sensitive.
	logArgs bool
	// maxFingerprints bounds the fingerprints tracked; the least recently
	// seen is evicted (and counted) to make room. Zero or less: the default.
	maxFingerprints int
	// maxSlowSamples bounds the ring of recent slow samples. Zero or less:
	// the default.
	maxSlowSamples int
}

// isSlow is the slow-query rule: a call lasting at least the threshold,
// when there is one.
func (s *statsConfig) isSlow(d time.Duration) bool {
	return s.slowThreshold > 0 && d >= s.slowThreshold
}

const (
	defaultMaxFingerprints = 1000
	defaultMaxSlowSamples  = 100

	// slowestLen is how many fingerprints Snapshot.Slowest lists.
	slowestLen = 10

	// Bounds on what one slow sample keeps of the call's arguments and error
	// when logArgs is set, so that the sample ring stays bounded in memory.
	maxSlowArgs   = 32
	maxSlowArgLen = 256
	maxSlowErrLen = 1024
)

// CacheStats are the result cache's figures in a Snapshot.
type CacheStats = resultcache.Stats

// RedisStats are the shared Redis tier's figures, in CacheStats.Redis.
type RedisStats = resultcache.RedisStats

// Snapshot is a consistent copy of the statistics of one connector (one
// *sql.DB).
//
// Its JSON (StatsHandler serves it, WriteJSON writes it) is stable: keys in
// snake_case; durations as integer nanoseconds, in keys ending in _ns;
// times in RFC 3339, UTC; lists as [] when empty, never null; Cache omitted
// when the cache is off. It decodes back into a Snapshot equal to the one
// encoded (times are in UTC and carry no monotonic clock reading for that).
type Snapshot struct {
	// Since is when collection started, or when it was last reset: every
	// count in the snapshot is since then.
	Since time.Time `json:"since"`
	// Taken is when the snapshot was taken.
	Taken  time.Time `json:"taken"`
	Totals Totals    `json:"totals"`
	// Statements lists every fingerprint tracked, by total time, descending.
	Statements []StatementStats `json:"statements"`
	// Slowest lists the 10 fingerprints with the highest mean duration.
	Slowest []StatementStats `json:"slowest"`
	// SlowQueries holds the most recent slow samples, newest first: a ring
	// of WithSlowSamples (Totals.Slow counts them all).
	SlowQueries []SlowQuery `json:"slow_queries"`
	// EvictedFingerprints counts the fingerprints dropped, least recently
	// seen first, to keep the number tracked bounded; their calls still
	// count in Totals.
	EvictedFingerprints int64     `json:"evicted_fingerprints"`
	Pool                PoolStats `json:"pool"`
	// Cache holds the result cache's figures; nil when the cache is off.
	Cache *CacheStats `json:"cache,omitempty"`
}

// Totals counts every call made through the connector since Snapshot.Since.
type Totals struct {
	Queries   int64 `json:"queries"`
	Execs     int64 `json:"execs"`
	Prepares  int64 `json:"prepares"`
	Begins    int64 `json:"begins"`
	Commits   int64 `json:"commits"`
	Rollbacks int64 `json:"rollbacks"`
	Pings     int64 `json:"pings"`
	// Errors counts the calls of any kind above that failed.
	Errors int64 `json:"errors"`
	// Slow counts the slow calls, including those whose samples were since
	// pushed out of the ring.
	Slow         int64 `json:"slow"`
	RowsReturned int64 `json:"rows_returned"`
	RowsAffected int64 `json:"rows_affected"`
	// Retries counts the queries and execs made a second time because the
	// server refused, before executing it, a statement pgx had prepared or
	// described before DDL changed its result ("cached plan must not change
	// result type", SQLSTATE 0A000; or 08P01 at bind in cache_describe
	// mode), outside a transaction (Event.Retried). Each counts once in
	// Queries or Execs.
	Retries int64 `json:"retries"`
}

// Calls counts the calls of every kind: the figure Errors and Slow are
// parts of.
func (t Totals) Calls() int64 {
	return t.Queries + t.Execs + t.Prepares + t.Begins + t.Commits + t.Rollbacks + t.Pings
}

// StatementStats are the statistics of the queries and execs that share one
// fingerprint. Failed calls count in every figure, since they took time too.
// Percentiles come from a log-linear histogram: they are within 6.25% of the
// exact value (nearest rank), up to about 73 minutes.
type StatementStats struct {
	Fingerprint string `json:"fingerprint"`
	Summary     string `json:"summary"`
	Operation   string `json:"operation"`
	Calls       int64  `json:"calls"`
	Errors      int64  `json:"errors"`
	// Rows is the sum of the rows returned (queries) and affected (execs).
	Rows int64 `json:"rows"`
	// CacheHits, CacheMisses and CacheBypasses count the result cache's
	// answers to this fingerprint's reads (hits are calls too).
	CacheHits     int64         `json:"cache_hits"`
	CacheMisses   int64         `json:"cache_misses"`
	CacheBypasses int64         `json:"cache_bypasses"`
	Total         time.Duration `json:"total_ns"`
	Min           time.Duration `json:"min_ns"`
	Max           time.Duration `json:"max_ns"`
	Mean          time.Duration `json:"mean_ns"`
	// StdDev is the population standard deviation, as in pg_stat_statements.
	StdDev time.Duration `json:"stddev_ns"`
	P50    time.Duration `json:"p50_ns"`
	P95    time.Duration `json:"p95_ns"`
	P99    time.Duration `json:"p99_ns"`
	// LastSeen is when the most recent call ended.
	LastSeen time.Time `json:"last_seen"`
}

// SlowQuery is one call that lasted at least the slow-query threshold.
// Neither the SQL text (its literals are values) nor, unless argument logging
// is enabled, the argument values and error message are kept.
type SlowQuery struct {
	// Time is when the call started.
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration_ns"`
	Op       string        `json:"op"`
	// Fingerprint and Summary are empty for calls without SQL (begin, commit...).
	Fingerprint string `json:"fingerprint,omitempty"`
	Summary     string `json:"summary,omitempty"`
	Rows        int64  `json:"rows"`
	SQLState    string `json:"sql_state,omitempty"`
	// Err is empty on success. Error messages may quote values, so unless
	// argument logging is enabled it is only the SQLSTATE, the context error,
	// or a generic message.
	Err string `json:"error,omitempty"`
	// Args holds the argument values as text, each cut to 256 bytes, at most
	// 32 of them; nil unless argument logging is enabled.
	Args []string `json:"args,omitempty"`
	// TraceID is the OpenTelemetry trace the call ran in, when it ran in
	// one (hex), so that a report leads to the trace.
	TraceID string `json:"trace_id,omitempty"`
}

// PoolStats are the pool's figures: database/sql's (sql.DBStats) and the
// connector's own counts of connection attempts and lifetimes.
//
// MaxOpenConnections, OpenConnections, InUse and Idle are the pool as the
// snapshot was taken. Every other figure counts since Snapshot.Since, reset
// included, so that OpenAtSince + Connects - Closes = OpenConnections, but
// for connections being opened or closed as the snapshot is taken.
type PoolStats struct {
	MaxOpenConnections int `json:"max_open_connections"`
	// OpenConnections are the connections open now, in use or idle.
	OpenConnections int `json:"open_connections"`
	InUse           int `json:"in_use"`
	Idle            int `json:"idle"`
	// OpenAtSince are the connections that were open at Since.
	OpenAtSince int64 `json:"open_at_since"`

	WaitCount         int64         `json:"wait_count"`
	WaitDuration      time.Duration `json:"wait_duration_ns"`
	MaxIdleClosed     int64         `json:"max_idle_closed"`
	MaxIdleTimeClosed int64         `json:"max_idle_time_closed"`
	MaxLifetimeClosed int64         `json:"max_lifetime_closed"`

	Connects        int64 `json:"connects"`
	ConnectFailures int64 `json:"connect_failures"`
	// MeanConnectTime is over successful connects only.
	MeanConnectTime time.Duration `json:"mean_connect_time_ns"`
	// Closes counts the connections closed; MeanConnLifetime is over them.
	Closes           int64         `json:"closes"`
	MeanConnLifetime time.Duration `json:"mean_conn_lifetime_ns"`
}

// The histogram is log-linear: each power of two of nanoseconds is split into
// histSub linear sub-buckets, so a bucket's midpoint is within 1/(2*histSub)
// = 6.25% of any value in it. Values below 2*histSub ns get a bucket each;
// values of 2^(histMaxExp+1) ns (about 73 minutes) and more share the last.
const (
	histSubBits = 3
	histSub     = 1 << histSubBits
	histMaxExp  = 41
	histBuckets = (histMaxExp - histSubBits + 2) * histSub
)

func histIndex(d time.Duration) int {
	v := uint64(max(d, 0))
	e := bits.Len64(v) - 1
	if e < histSubBits {
		return int(v)
	}
	if e > histMaxExp {
		return histBuckets - 1
	}
	return (e-histSubBits+1)<<histSubBits + int(v>>(e-histSubBits)&(histSub-1))
}

// histMid is the midpoint of bucket i, the value reported for it.
func histMid(i int) time.Duration {
	if i < histSub {
		return time.Duration(i)
	}
	shift := i>>histSubBits - 1
	lower := uint64(histSub+i&(histSub-1)) << shift
	return time.Duration(lower + (uint64(1)<<shift)/2)
}

// statEntry is the state of one fingerprint, in the collector's LRU list.
type statEntry struct {
	prev, next *statEntry
	id         uint64
	// The strings are shared with the Statement, not copied.
	fingerprint, summary, operation string

	calls, errors, rows    int64
	hits, misses, bypasses int64 // the result cache's answers
	total, min, max        time.Duration
	// Welford's running mean and sum of squared deviations (in ns), which
	// stay accurate where a plain sum of squares would cancel out.
	mean, m2 float64
	lastSeen time.Time
	hist     [histBuckets]uint64
}

func (e *statEntry) add(ev *Event) {
	d := ev.Duration
	if e.calls == 0 || d < e.min {
		e.min = d
	}
	e.max = max(e.max, d)
	e.calls++
	e.total += d
	x := float64(d)
	delta := x - e.mean
	e.mean += delta / float64(e.calls)
	e.m2 += delta * (x - e.mean)
	e.hist[histIndex(d)]++
	e.rows += ev.Rows
	if ev.Err != nil {
		e.errors++
	}
	switch ev.Cache {
	case CacheHit:
		e.hits++
	case CacheMiss:
		e.misses++
	case CacheBypass:
		e.bypasses++
	}
	// The interceptor sets Start; deriving the end from it saves a clock read.
	e.lastSeen = ev.Start.Add(d)
}

func (e *statEntry) stats() StatementStats {
	s := StatementStats{
		Fingerprint:   e.fingerprint,
		Summary:       e.summary,
		Operation:     e.operation,
		Calls:         e.calls,
		Errors:        e.errors,
		Rows:          e.rows,
		CacheHits:     e.hits,
		CacheMisses:   e.misses,
		CacheBypasses: e.bypasses,
		Total:         e.total,
		Min:           e.min,
		Max:           e.max,
		Mean:          e.total / time.Duration(e.calls),
		StdDev:        time.Duration(math.Sqrt(e.m2 / float64(e.calls))),
		LastSeen:      e.lastSeen.UTC(),
	}
	// Nearest-rank percentiles in one pass; nothing lies below min's bucket.
	ranks := [3]int64{(e.calls*50 + 99) / 100, (e.calls*95 + 99) / 100, (e.calls*99 + 99) / 100}
	var p [3]time.Duration
	var seen int64
	k := 0
	for i := histIndex(e.min); k < len(ranks); i++ {
		seen += int64(e.hist[i])
		for ; k < len(ranks) && seen >= ranks[k]; k++ {
			p[k] = min(max(histMid(i), e.min), e.max)
		}
	}
	s.P50, s.P95, s.P99 = p[0], p[1], p[2]
	return s
}

// collector records the calls of one connector. It is an Observer.
type collector struct {
	cfg statsConfig

	mu      sync.Mutex
	since   time.Time
	totals  Totals
	entries map[uint64]*statEntry
	lru     statEntry // sentinel: lru.next is the most recently seen entry
	evicted int64
	// slow is a ring of at most cfg.maxSlowSamples samples (its capacity
	// may exceed that as append grows it); slowNext is where the next one
	// goes.
	slow     []SlowQuery
	slowNext int

	connects, connectFailures int64
	connectTime               time.Duration
	closes                    int64
	lifetime                  time.Duration
	// open counts the connections open (connects less closes) over the
	// connector's life; openAtSince is what it was at the last reset.
	open, openAtSince int64
	// base is database/sql's pool figures at the last reset, whose
	// counters (waits, closes by limit) it keeps from the pool's opening.
	base sql.DBStats
}

var _ Observer = (*collector)(nil)

func newCollector(cfg statsConfig) *collector {
	if cfg.maxFingerprints <= 0 {
		cfg.maxFingerprints = defaultMaxFingerprints
	}
	if cfg.maxSlowSamples <= 0 {
		cfg.maxSlowSamples = defaultMaxSlowSamples
	}
	// The map and the ring grow as calls come: a bound is a most, not what
	// every connector pays for from the start.
	c := &collector{
		cfg:     cfg,
		since:   time.Now().UTC(),
		entries: make(map[uint64]*statEntry, min(cfg.maxFingerprints, defaultMaxFingerprints)),
		slow:    make([]SlowQuery, 0, min(cfg.maxSlowSamples, defaultMaxSlowSamples)),
	}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// Start does nothing: the collector needs only the finished call.
func (c *collector) Start(ctx context.Context, _ *Event) context.Context { return ctx }

// End records one finished call. Queries and execs with a Statement are
// recorded under its fingerprint; every call but a connect counts in the
// totals (connects are counted by connected, which also sees the failures);
// any call, connects included, can be a slow sample.
func (c *collector) End(ctx context.Context, ev *Event) {
	if ev.Slow {
		c.endSlow(ctx, ev)
		return
	}
	c.mu.Lock()
	c.record(ev)
	c.mu.Unlock()
}

// record counts ev; c.mu must be held.
func (c *collector) record(ev *Event) {
	t := &c.totals
	switch ev.Op {
	case OpConnect:
		return
	case OpQuery:
		t.Queries++
		t.RowsReturned += ev.Rows
	case OpExec:
		t.Execs++
		t.RowsAffected += ev.Rows
	case OpPrepare:
		t.Prepares++
	case OpBegin:
		t.Begins++
	case OpCommit:
		t.Commits++
	case OpRollback:
		t.Rollbacks++
	case OpPing:
		t.Pings++
	}
	if ev.Err != nil {
		t.Errors++
	}
	if ev.Retried {
		t.Retries++
	}
	if ev.Statement != nil && (ev.Op == OpQuery || ev.Op == OpExec) {
		c.entryFor(ev.Statement).add(ev)
	}
}

// entryFor returns the entry of st's fingerprint, most recently seen first,
// making room by evicting the least recently seen; c.mu must be held.
func (c *collector) entryFor(st *Statement) *statEntry {
	e := c.entries[st.FingerprintID]
	if e != nil {
		if c.lru.next != e {
			e.unlink()
			c.pushFront(e)
		}
		return e
	}
	if len(c.entries) >= c.cfg.maxFingerprints {
		e = c.lru.prev
		e.unlink()
		delete(c.entries, e.id)
		c.evicted++
		*e = statEntry{} // reused rather than left to the garbage collector
	} else {
		e = new(statEntry)
	}
	e.id = st.FingerprintID
	e.fingerprint, e.summary, e.operation = st.Fingerprint, st.Summary, st.Operation
	c.entries[e.id] = e
	c.pushFront(e)
	return e
}

func (e *statEntry) unlink() {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (c *collector) pushFront(e *statEntry) {
	e.prev, e.next = &c.lru, c.lru.next
	c.lru.next.prev = e
	c.lru.next = e
}

// endSlow records a slow call: the sample is built before taking the lock,
// and the callback and logger run after releasing it, so that they may take
// a snapshot themselves.
func (c *collector) endSlow(ctx context.Context, ev *Event) {
	sq := c.slowQuery(ev)
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		sq.TraceID = sc.TraceID().String()
	}
	c.mu.Lock()
	c.record(ev)
	c.totals.Slow++
	if len(c.slow) < c.cfg.maxSlowSamples {
		c.slow = append(c.slow, sq)
	} else {
		c.slow[c.slowNext] = sq
	}
	c.slowNext = (c.slowNext + 1) % c.cfg.maxSlowSamples
	c.mu.Unlock()
	if c.cfg.onSlow != nil {
		c.cfg.onSlow(sq)
	}
	if c.cfg.logger != nil {
		c.logSlow(ctx, &sq)
	}
}

func (c *collector) slowQuery(ev *Event) SlowQuery {
	sq := SlowQuery{
		Time:     ev.Start.UTC(),
		Duration: ev.Duration,
		Op:       ev.Op.String(),
		Rows:     ev.Rows,
		SQLState: ev.SQLState,
		Err:      slowErrText(ev.Err, ev.SQLState, c.cfg.logArgs),
	}
	if st := ev.Statement; st != nil {
		sq.Fingerprint, sq.Summary = st.Fingerprint, st.Summary
	}
	if c.cfg.logArgs {
		sq.Args = slowArgs(ev.Args)
	}
	return sq
}

func (c *collector) logSlow(ctx context.Context, sq *SlowQuery) {
	attrs := []slog.Attr{
		slog.String("fingerprint", sq.Fingerprint),
		slog.Duration("duration", sq.Duration),
		slog.String("op", sq.Op),
		slog.String("sqlstate", sq.SQLState),
		slog.Int64("rows", sq.Rows),
	}
	if sq.Err != "" {
		attrs = append(attrs, slog.String("error", sq.Err))
	}
	if sq.Args != nil {
		attrs = append(attrs, slog.Any("args", sq.Args))
	}
	c.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "auditpg: slow query", attrs...)
}

// slowErrText describes err for a slow sample. Server messages quote values
// ("Key (email)=(...) already exists"), so unless full is set only texts known
// to be free of them are kept.
func slowErrText(err error, code string, full bool) string {
	switch {
	case err == nil:
		return ""
	case full:
		return clipText(err.Error(), maxSlowErrLen)
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded.Error()
	case errors.Is(err, context.Canceled):
		return context.Canceled.Error()
	case code != "":
		return "SQLSTATE " + code
	default:
		return "call failed (message withheld: it may contain values)"
	}
}

func slowArgs(args []driver.NamedValue) []string {
	if len(args) == 0 {
		return nil
	}
	n := min(len(args), maxSlowArgs)
	out := make([]string, n, n+1)
	for i, a := range args[:n] {
		out[i] = clipText(argText(a.Value), maxSlowArgLen)
	}
	if len(args) > n {
		out = append(out, fmt.Sprintf("(%d more)", len(args)-n))
	}
	return out
}

func argText(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return v
	case []byte:
		return `\x` + hex.EncodeToString(v[:min(len(v), maxSlowArgLen/2)])
	case time.Time:
		return v.Format(time.RFC3339Nano)
	default:
		return fmt.Sprint(v)
	}
}

// clipText cuts s to at most n bytes on a rune boundary, marking the cut. The
// result is a copy so that a sample does not pin a large argument in memory.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.Clone(s[:n]) + "…"
}

// connected records a connection attempt that took d and failed with err.
func (c *collector) connected(d time.Duration, err error) {
	c.mu.Lock()
	if err != nil {
		c.connectFailures++
	} else {
		c.connects++
		c.connectTime += d
		c.open++
	}
	c.mu.Unlock()
}

// closed records a connection closed after living lifetime.
func (c *collector) closed(lifetime time.Duration) {
	c.mu.Lock()
	c.closes++
	c.lifetime += lifetime
	c.open--
	c.mu.Unlock()
}

// snapshot copies the statistics out under the lock and sorts them outside
// it; pool is the *sql.DB's Stats().
func (c *collector) snapshot(pool sql.DBStats) Snapshot {
	c.mu.Lock()
	b := c.base
	s := Snapshot{
		Since:               c.since,
		Taken:               time.Now().UTC(),
		Totals:              c.totals,
		Statements:          make([]StatementStats, 0, len(c.entries)),
		SlowQueries:         make([]SlowQuery, len(c.slow)),
		EvictedFingerprints: c.evicted,
		Pool: PoolStats{
			MaxOpenConnections: pool.MaxOpenConnections,
			OpenConnections:    pool.OpenConnections,
			InUse:              pool.InUse,
			Idle:               pool.Idle,
			OpenAtSince:        c.openAtSince,
			// A reset with the figures of another pool (or none) must not
			// make a count negative.
			WaitCount:         max(0, pool.WaitCount-b.WaitCount),
			WaitDuration:      max(0, pool.WaitDuration-b.WaitDuration),
			MaxIdleClosed:     max(0, pool.MaxIdleClosed-b.MaxIdleClosed),
			MaxIdleTimeClosed: max(0, pool.MaxIdleTimeClosed-b.MaxIdleTimeClosed),
			MaxLifetimeClosed: max(0, pool.MaxLifetimeClosed-b.MaxLifetimeClosed),
			Connects:          c.connects,
			ConnectFailures:   c.connectFailures,
			Closes:            c.closes,
		},
	}
	if c.connects > 0 {
		s.Pool.MeanConnectTime = c.connectTime / time.Duration(c.connects)
	}
	if c.closes > 0 {
		s.Pool.MeanConnLifetime = c.lifetime / time.Duration(c.closes)
	}
	for e := c.lru.next; e != &c.lru; e = e.next {
		s.Statements = append(s.Statements, e.stats())
	}
	// Newest first: walk the ring backwards from the last sample written.
	for i := range s.SlowQueries {
		s.SlowQueries[i] = c.slow[(c.slowNext-1-i+len(c.slow))%len(c.slow)]
	}
	c.mu.Unlock()

	// The ring shares Args with the samples handed out; callers get their own.
	for i := range s.SlowQueries {
		s.SlowQueries[i].Args = slices.Clone(s.SlowQueries[i].Args)
	}
	// Ties are broken by fingerprint so that the order is stable.
	slices.SortFunc(s.Statements, func(a, b StatementStats) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), strings.Compare(a.Fingerprint, b.Fingerprint))
	})
	byMean := slices.Clone(s.Statements)
	slices.SortFunc(byMean, func(a, b StatementStats) int {
		return cmp.Or(cmp.Compare(b.Mean, a.Mean), strings.Compare(a.Fingerprint, b.Fingerprint))
	})
	s.Slowest = slices.Clone(byMean[:min(len(byMean), slowestLen)])
	return s
}

// reset clears every statistic and sample, keeping the configuration; pool
// is the *sql.DB's Stats() now, from which the pool's counters count again.
func (c *collector) reset(pool sql.DBStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.since = time.Now().UTC()
	c.base = pool
	c.openAtSince = c.open
	c.totals = Totals{}
	clear(c.entries)
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	c.evicted = 0
	clear(c.slow) // drop the samples' references before reusing the array
	c.slow = c.slow[:0]
	c.slowNext = 0
	c.connects, c.connectFailures, c.connectTime = 0, 0, 0
	c.closes, c.lifetime = 0, 0
}
