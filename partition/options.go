package partition

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Sentinel errors, for errors.Is.
var (
	// ErrInvalidInterval: the interval name is not one of the five.
	ErrInvalidInterval = errors.New("partition: invalid interval")
	// ErrNoTable: the table does not exist.
	ErrNoTable = errors.New("partition: table does not exist")
	// ErrNotPartitioned: the table exists but is not partitioned; Convert
	// turns it into a partitioned one.
	ErrNotPartitioned = errors.New("partition: table is not partitioned")
	// ErrAlreadyPartitioned: Convert was asked to convert a partitioned table.
	ErrAlreadyPartitioned = errors.New("partition: table is already partitioned")
	// ErrUnsupportedKey: the table is not partitioned by RANGE on a single
	// timestamptz or timestamp column.
	ErrUnsupportedKey = errors.New("partition: unsupported partition key")
	// ErrLockTimeout: a lock could not be taken within the lock timeout, after
	// every retry. Nothing was changed by the step that failed.
	ErrLockTimeout = errors.New("partition: lock not acquired within lock_timeout")
	// ErrCountMismatch: Convert found different row counts in the old and the
	// new table, and swapped nothing.
	ErrCountMismatch = errors.New("partition: row counts differ")
	// ErrBusy: another session holds the table's maintenance lock (a
	// Scheduler elsewhere, say).
	ErrBusy = errors.New("partition: maintenance already running in another session")
)

// RetentionMode says what happens to a partition past the retention.
type RetentionMode int

const (
	// Drop detaches the partition and drops it.
	Drop RetentionMode = iota
	// Detach detaches the partition and keeps it as a plain table.
	Detach
	// Archive detaches the partition and moves it into the archive schema.
	Archive
)

var retentionModeNames = map[RetentionMode]string{Drop: "drop", Detach: "detach", Archive: "archive"}

func (r RetentionMode) String() string { return retentionModeNames[r] }

// MarshalText makes a RetentionMode print by name in JSON.
func (r RetentionMode) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a RetentionMode's name.
func (r *RetentionMode) UnmarshalText(b []byte) error {
	v, err := ParseRetentionMode(string(b))
	if err == nil {
		*r = v
	}
	return err
}

// ParseRetentionMode parses drop, detach or archive.
func ParseRetentionMode(s string) (RetentionMode, error) {
	for m, name := range retentionModeNames {
		if s == name {
			return m, nil
		}
	}
	return 0, fmt.Errorf("partition: invalid retention mode %q (want drop, detach or archive)", s)
}

// Progress reports long work: Step names it, Done counts what is done of
// Total (Total is 0 when unknown).
type Progress struct {
	Step  string
	Done  int64
	Total int64
}

// Option configures a Manager. An option given a value it cannot use
// returns an error saying what it wants, and New returns that error.
type Option func(*config) error

// failed is the Option for a value an option cannot use: New returns the
// error, formatted as by fmt.Errorf.
func failed(format string, args ...any) Option {
	err := fmt.Errorf(format, args...)
	return func(*config) error { return err }
}

type config struct {
	table            Table
	column           string
	interval         Interval
	intervalSet      bool // WithInterval given: the table's partitions must have it
	createTable      bool
	premake          int
	retention        time.Duration
	retentionMode    RetentionMode
	archiveSchema    string
	defaultPartition bool
	lockTimeout      time.Duration
	retries          int
	batchSize        int
	now              func() time.Time
	logger           *slog.Logger
	progress         func(Progress)
}

func defaultConfig() config {
	return config{
		table:            DefaultTable,
		column:           "timestamp",
		interval:         Monthly,
		premake:          4,
		archiveSchema:    "archive",
		defaultPartition: true,
		lockTimeout:      2 * time.Second,
		retries:          5,
		batchSize:        10000,
		now:              time.Now,
		logger:           slog.New(slog.DiscardHandler),
		progress:         func(Progress) {},
	}
}

// WithTable sets the partitioned table (default audit_log). Its name must
// not be empty.
func WithTable(t Table) Option {
	if t.Name == "" {
		return failed("partition: WithTable(%+v): want a table name (audit_log by default)", t)
	}
	return func(c *config) error { c.table = t; return nil }
}

// WithColumn sets the time column a table is partitioned on, used when the
// Manager creates or converts a table (default "timestamp"). An existing
// partitioned table's own key always wins.
func WithColumn(name string) Option { return func(c *config) error { c.column = name; return nil } }

// WithInterval sets the interval of new partitions. Without it, a table
// that has partitions keeps the interval of its newest one, and a new table
// gets Monthly. With it, a table whose partitions have another interval is
// refused (an *IntervalConflictError). It must be one of the five;
// ParseInterval turns a name into one. The error for another value wraps
// ErrInvalidInterval.
func WithInterval(iv Interval) Option {
	if !iv.valid() {
		return failed("%w: WithInterval(%v): want Daily, Weekly, Monthly, Quarterly or Yearly", ErrInvalidInterval, iv)
	}
	return func(c *config) error { c.interval, c.intervalSet = iv, true; return nil }
}

// WithPremake sets how many partitions after the current one are kept ready
// (default 4), created even when no data arrives, and beyond which
// CleanupFuture removes empty ones. It must be 0 or more, and at most
// MaxPremake of the interval (two years ahead): Create returns a
// *PremakeError otherwise.
func WithPremake(n int) Option {
	if n < 0 {
		return failed("partition: WithPremake(%d): want 0 (the current partition only) or more", n)
	}
	return func(c *config) error { c.premake = n; return nil }
}

// WithCreateTable lets Create (and Maintain) create a missing table from
// AuditLogSchema (off by default: a missing table is ErrNoTable, so that a
// misspelt name does not make a new table).
func WithCreateTable(on bool) Option {
	return func(c *config) error { c.createTable = on; return nil }
}

// WithRetention sets how long data is kept: a partition whose whole range is
// older than now-d is removed by Cleanup. Zero (the default) keeps all; a
// negative d is an error.
func WithRetention(d time.Duration) Option {
	if d < 0 {
		return failed("partition: WithRetention(%v): want 0 (keep everything) or a positive duration", d)
	}
	return func(c *config) error { c.retention = d; return nil }
}

// WithRetentionMode sets what Cleanup does with expired partitions (default
// Drop): Drop, Detach or Archive; ParseRetentionMode turns a name into one.
func WithRetentionMode(m RetentionMode) Option {
	if _, ok := retentionModeNames[m]; !ok {
		return failed("partition: WithRetentionMode(%d): want Drop, Detach or Archive", int(m))
	}
	return func(c *config) error { c.retentionMode = m; return nil }
}

// WithArchiveSchema sets the schema Archive moves partitions into (default
// "archive"); it is created if missing.
func WithArchiveSchema(s string) Option {
	return func(c *config) error { c.archiveSchema = s; return nil }
}

// WithDefaultPartition turns the default partition on (the default) or off.
// Rows outside every partition's range land in it instead of failing.
func WithDefaultPartition(on bool) Option {
	return func(c *config) error { c.defaultPartition = on; return nil }
}

// WithLockTimeout sets the lock_timeout of every DDL step (default 2s): no
// concurrent insert waits on a maintenance lock longer than that. It must be
// positive.
func WithLockTimeout(d time.Duration) Option {
	if d <= 0 {
		return failed("partition: WithLockTimeout(%v): want a positive duration (2s by default)", d)
	}
	return func(c *config) error { c.lockTimeout = d; return nil }
}

// WithRetries sets how many times a step that hit the lock timeout is
// retried, with exponential backoff (default 5). It must be 0 or more.
func WithRetries(n int) Option {
	if n < 0 {
		return failed("partition: WithRetries(%d): want 0 (no retry) or more", n)
	}
	return func(c *config) error { c.retries = n; return nil }
}

// WithBatchSize sets the rows moved or copied per committed transaction
// (default 10000). It must be at least 1.
func WithBatchSize(n int) Option {
	if n < 1 {
		return failed("partition: WithBatchSize(%d): want at least 1 row per batch (10000 by default)", n)
	}
	return func(c *config) error { c.batchSize = n; return nil }
}

// WithClock sets the clock (default time.Now), for tests and dry runs "as of".
func WithClock(now func() time.Time) Option {
	if now == nil {
		return failed("partition: WithClock(nil): want a clock function, such as time.Now")
	}
	return func(c *config) error { c.now = now; return nil }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	if l == nil {
		return failed("partition: WithLogger(nil): want a logger (leave the option out to discard the log)")
	}
	return func(c *config) error { c.logger = l; return nil }
}

// WithProgress sets a callback for long work (moving rows, converting).
func WithProgress(f func(Progress)) Option {
	if f == nil {
		return failed("partition: WithProgress(nil): want a function (leave the option out for no progress reports)")
	}
	return func(c *config) error { c.progress = f; return nil }
}
