package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/auditpg/auditpg/internal/pgident"
)

// Table names a table (or another relation: a sequence, an index's table):
// in JSON {"schema": ..., "name": ...}, the one form every auditpg package
// uses.
type Table = pgident.Table

// Errors callers can test with errors.Is.
var (
	// ErrStatementsUnavailable: pg_stat_statements cannot be read; the
	// wrapping error says what to change (StatementsStatus.Advice).
	ErrStatementsUnavailable = errors.New("monitor: pg_stat_statements is not available")
	// ErrMultipleStatements: Explain was given more than one statement.
	ErrMultipleStatements = errors.New("monitor: explain takes exactly one statement")
	// ErrWritesNotAllowed: Explain was given a statement that may write, or
	// that calls a volatile function, without ExplainOptions.AllowWrites.
	// The error is a *WriteError, which says why.
	ErrWritesNotAllowed = errors.New("monitor: the statement may modify data")
	// ErrSyntax: the server cannot parse the statement given to Explain; the
	// error carries the server's message and the position it points at.
	ErrSyntax = errors.New("monitor: the statement does not parse")
	// ErrArgCount: Explain was given values (ExplainOptions.Args), but not
	// one for each of the statement's parameters.
	ErrArgCount = errors.New("monitor: explain: the values given do not match the statement's parameters")
	// ErrLocked: a report waited for a lock longer than the lock timeout
	// (WithLockTimeout).
	ErrLocked = errors.New("monitor: a relation the report reads is locked by another session")
)

// Monitor reads diagnostics from one database. It holds no state besides its
// configuration and is safe for concurrent use.
type Monitor struct {
	db          *sql.DB
	q           querier // db, or the read transaction of a report
	tx          *sql.Tx // the read transaction, when in one
	log         *slog.Logger
	th          Thresholds
	memory      int64 // machine memory in bytes; 0: read /proc/meminfo
	lockTimeout time.Duration
	driverStats func(*sql.DB) (DriverStats, error) // nil: the summary has no driver statistics
}

// querier is what the reading queries run on: the *sql.DB or a read-only
// transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Option configures a Monitor. An option given a value it cannot use
// returns an error saying so, which New returns.
type Option func(*Monitor) error

// failed is the Option for a value an option cannot use: New returns the
// error, formatted as by fmt.Errorf.
func failed(format string, args ...any) Option {
	err := fmt.Errorf(format, args...)
	return func(*Monitor) error { return err }
}

// WithLogger sets the logger for what the monitor skips or cannot read
// (debug and warning levels). The default, and nil, discard.
func WithLogger(l *slog.Logger) Option {
	return func(m *Monitor) error {
		if l != nil {
			m.log = l
		}
		return nil
	}
}

// WithThresholds replaces the thresholds; start from DefaultThresholds.
func WithThresholds(t Thresholds) Option {
	return func(m *Monitor) error { m.th = t; return nil }
}

// WithMemory sets the database machine's memory in bytes, for configuration
// advice; by default, and with 0, it is read from /proc/meminfo, which is
// only right when the server runs on the machine running the monitor.
func WithMemory(bytes int64) Option {
	if bytes < 0 {
		return failed("monitor: WithMemory(%d): want the server's memory in bytes, or 0 to read /proc/meminfo", bytes)
	}
	return func(m *Monitor) error { m.memory = bytes; return nil }
}

// WithLockTimeout bounds how long a report waits for a lock: reading a
// relation's size takes a lock that an ALTER TABLE or VACUUM FULL holds
// exclusively. Default 5 s; past it the report fails with a message saying
// so, rather than hanging. 0 waits as long as the lock is held.
func WithLockTimeout(d time.Duration) Option {
	if d < 0 {
		return failed("monitor: WithLockTimeout(%v): want a positive duration, or 0 to wait without limit", d)
	}
	return func(m *Monitor) error { m.lockTimeout = d; return nil }
}

// New returns a Monitor for db, which may be opened with any PostgreSQL
// driver (auditpg, pgx, lib/pq...). It fails only when an option does.
func New(db *sql.DB, opts ...Option) (*Monitor, error) {
	m := &Monitor{db: db, q: db, log: slog.New(slog.DiscardHandler), th: DefaultThresholds(), lockTimeout: 5 * time.Second}
	for _, o := range opts {
		if err := o(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// inReadTx runs fn with a Monitor whose queries run in one read-only
// transaction under SET LOCAL lock_timeout, so that a locked table makes the
// report fail instead of hang, and the report reads one snapshot of the
// statistics. Inside such a transaction already, it just calls fn.
func inReadTx[T any](ctx context.Context, m *Monitor, fn func(*Monitor) (T, error)) (T, error) {
	var zero T
	if m.tx != nil {
		return fn(m)
	}
	tx, err := m.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return zero, fmt.Errorf("monitor: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	if _, err := tx.ExecContext(ctx, `SELECT set_config('lock_timeout', $1, true)`, strconv.FormatInt(m.lockTimeout.Milliseconds(), 10)); err != nil {
		return zero, fmt.Errorf("monitor: set lock_timeout: %w", err)
	}
	mt := *m
	mt.q, mt.tx = tx, tx
	v, err := fn(&mt)
	if pgerr.SQLState(err) == "55P03" { // lock_not_available
		err = fmt.Errorf("%w for longer than the lock timeout (%s; pg_stat_activity shows the blocker): %w", ErrLocked, m.lockTimeout, err)
	}
	return v, err
}

// Thresholds decide what the reports call a finding and what the health
// status calls a warning or critical. The defaults (DefaultThresholds) are
// a slow query at 1 s, fewer than 5 slow queries healthy, a result cache hit
// ratio above 50% healthy, and PgHero's for the rest.
type Thresholds struct {
	// SlowQueryMean: a statement whose mean time (planning plus execution)
	// is at least this is slow. Default: 1 s.
	SlowQueryMean time.Duration `json:"slow_query_mean_ns"`
	// SlowQueryMinCalls: statements with fewer calls are not reported slow.
	SlowQueryMinCalls int64 `json:"slow_query_min_calls"`
	// SlowQueriesWarning: this many slow statements make the statements
	// component a warning (default 5: fewer is healthy).
	SlowQueriesWarning int `json:"slow_queries_warning"`

	// UnusedIndexMinBytes: smaller indexes are never reported unused.
	UnusedIndexMinBytes int64 `json:"unused_index_min_bytes"`
	// UnusedIndexMaxScans: an index scanned at most this often since the
	// statistics were reset (summed over the partitions of a partitioned
	// index) is unused. Default 0: an index scanned at all is used, however
	// rarely; a low count means only that the statistics are young, and
	// the report says since when they count.
	UnusedIndexMaxScans int64 `json:"unused_index_max_scans"`
	// SeqScanMinRows: a table with fewer live rows is never a missing-index
	// candidate. PgHero: 10000.
	SeqScanMinRows int64 `json:"seq_scan_min_rows"`
	// SeqScanMaxIndexShare: a large table whose share of index scans is
	// below this is read mostly by sequential scans. PgHero: 0.95.
	SeqScanMaxIndexShare float64 `json:"seq_scan_max_index_share"`

	// AutovacuumLag: VACUUM and ANALYZE are called for by autovacuum's own
	// rule, with the server's settings and the table's storage parameters
	// (dead tuples above autovacuum_vacuum_threshold +
	// autovacuum_vacuum_scale_factor x rows; rows modified since the last
	// analyze above autovacuum_analyze_threshold +
	// autovacuum_analyze_scale_factor x rows), so that the thresholds
	// scale with the table. Where autovacuum is off (for the server or the
	// table) past the threshold is enough; where it is on, autovacuum takes
	// the table on its next round, and the report calls for it only past
	// AutovacuumLag times the threshold: autovacuum is behind. Default 2.
	AutovacuumLag float64 `json:"autovacuum_lag"`

	// CacheHitWarning and CacheHitCritical bound the buffer cache hit ratio
	// (tables and indexes). PgHero: 0.99.
	CacheHitWarning  float64 `json:"cache_hit_warning"`
	CacheHitCritical float64 `json:"cache_hit_critical"`
	// ResultCacheHitWarning bounds the auditpg driver's result cache hit
	// ratio, once it served at least 100 cacheable reads. Default: 0.5.
	ResultCacheHitWarning float64 `json:"result_cache_hit_warning"`

	// SequenceWarning and SequenceCritical bound the share of a sequence's
	// range used (limited by its column's type). PgHero: 0.9.
	SequenceWarning  float64 `json:"sequence_warning"`
	SequenceCritical float64 `json:"sequence_critical"`
	// WraparoundWarning and WraparoundCritical bound the transaction ID age
	// of a database (wraparound at 2^31, failsafe at 1.6 billion).
	WraparoundWarning  int64 `json:"wraparound_warning"`
	WraparoundCritical int64 `json:"wraparound_critical"`

	// LongQueryWarning and LongQueryCritical bound the duration of running
	// queries and open transactions. PgHero: 60 s.
	LongQueryWarning  time.Duration `json:"long_query_warning_ns"`
	LongQueryCritical time.Duration `json:"long_query_critical_ns"`
	// ConnectionsWarning and ConnectionsCritical bound the share of
	// max_connections in use.
	ConnectionsWarning  float64 `json:"connections_warning"`
	ConnectionsCritical float64 `json:"connections_critical"`

	// Plan analysis (Explain).
	PlanSeqScanMinRows  float64 `json:"plan_seq_scan_min_rows"` // rows a sequential scan reads before it counts as large
	PlanFilterShare     float64 `json:"plan_filter_share"`      // share of the rows read that a filter must remove
	PlanMisestimate     float64 `json:"plan_misestimate"`       // factor between estimated and actual rows
	PlanMisestimateMin  float64 `json:"plan_misestimate_min"`   // ignore misestimates where both counts are below this
	PlanNestedLoopLoops float64 `json:"plan_nested_loop_loops"` // inner loops of a nested loop that count as many
}

// DefaultThresholds returns the documented defaults.
func DefaultThresholds() Thresholds {
	return Thresholds{
		SlowQueryMean:         time.Second,
		SlowQueryMinCalls:     1,
		SlowQueriesWarning:    5,
		UnusedIndexMinBytes:   1 << 20,
		UnusedIndexMaxScans:   0,
		SeqScanMinRows:        10000,
		SeqScanMaxIndexShare:  0.95,
		AutovacuumLag:         2,
		CacheHitWarning:       0.99,
		CacheHitCritical:      0.90,
		ResultCacheHitWarning: 0.5,
		SequenceWarning:       0.75,
		SequenceCritical:      0.9,
		WraparoundWarning:     1_000_000_000,
		WraparoundCritical:    1_600_000_000,
		LongQueryWarning:      time.Minute,
		LongQueryCritical:     time.Hour,
		ConnectionsWarning:    0.7,
		ConnectionsCritical:   0.9,
		PlanSeqScanMinRows:    10000,
		PlanFilterShare:       0.5,
		PlanMisestimate:       10,
		PlanMisestimateMin:    100,
		PlanNestedLoopLoops:   1000,
	}
}

// scanner is what queryRows hands its callback: one row.
type scanner interface{ Scan(dest ...any) error }

// queryRows runs query and calls scan for each row.
func (m *Monitor) queryRows(ctx context.Context, what, query string, scan func(scanner) error, args ...any) error {
	rows, err := m.q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("monitor: read %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("monitor: read %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("monitor: read %s: %w", what, err)
	}
	return nil
}

// list runs query in a read transaction (inReadTx) and returns one T per
// row, each filled in by scan.
func list[T any](ctx context.Context, m *Monitor, what, query string, scan func(r scanner, v *T) error, args ...any) ([]T, error) {
	return inReadTx(ctx, m, func(m *Monitor) ([]T, error) {
		out := []T{} // JSON [], not null
		err := m.queryRows(ctx, what, query, func(r scanner) error {
			var v T
			if err := scan(r, &v); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		}, args...)
		if err != nil {
			return nil, err
		}
		return out, nil
	})
}

// serverVersion returns server_version_num (150004 for 15.4).
func (m *Monitor) serverVersion(ctx context.Context) (int, error) {
	var v int
	if err := m.q.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&v); err != nil {
		return 0, fmt.Errorf("monitor: read server_version_num: %w", err)
	}
	return v, nil
}

// ratio returns a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
