package metrics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/partition"
	"github.com/prometheus/client_golang/prometheus"
)

// Bounds of the options: every number a user gives has an upper bound.
const (
	maxTimeout = 5 * time.Minute
	maxMemo    = time.Hour
	maxTop     = 10000
)

// Option configures a Collector (and Handler). An option given a value it
// cannot use makes NewCollector fail with an error that says what it
// wants.
type Option func(*config) error

type config struct {
	timeout    time.Duration
	memo       time.Duration
	statements int
	tables     int
	indexes    int
	managers   []*partition.Manager
	gatherers  []prometheus.Gatherer
	log        *slog.Logger
	now        func() time.Time
}

func defaultConfig() config {
	return config{timeout: 5 * time.Second, memo: 10 * time.Second, statements: 20, tables: 100, indexes: 100,
		log: slog.New(slog.DiscardHandler), now: time.Now}
}

// WithTimeout bounds one collection (default 5 s, at most 5 min): a
// section still running when it ends is abandoned, its metrics are left
// out and auditpg_pg_scrape_error{section} is 1. It also bounds how long a
// section waits for a lock (lock_timeout). Keep it below Prometheus's
// scrape_timeout.
func WithTimeout(d time.Duration) Option {
	if d <= 0 || d > maxTimeout {
		return failed("metrics: WithTimeout(%v): want a duration above 0 and at most %v (5s by default)", d, maxTimeout)
	}
	return func(c *config) error { c.timeout = d; return nil }
}

// WithMemo sets how long a collection is served again before the next
// scrape collects anew (default 10 s, at most 1 h; 0 collects at every
// scrape). Concurrent scrapes always share one collection.
func WithMemo(d time.Duration) Option {
	if d < 0 || d > maxMemo {
		return failed("metrics: WithMemo(%v): want 0 (collect at every scrape) to %v (10s by default)", d, maxMemo)
	}
	return func(c *config) error { c.memo = d; return nil }
}

// WithTopStatements sets how many statements of pg_stat_statements are
// exported, those with the highest total time (default 20, 1 to 10000).
func WithTopStatements(n int) Option {
	return bounded("WithTopStatements", "statements", n, 20, func(c *config) { c.statements = n })
}

// WithMaxTables sets how many tables (partitions count as tables) and
// partitioned tables are exported, the largest first (default 100, 1 to
// 10000).
func WithMaxTables(n int) Option {
	return bounded("WithMaxTables", "tables", n, 100, func(c *config) { c.tables = n })
}

// WithMaxIndexes sets how many indexes are exported, the largest first
// (default 100, 1 to 10000). Invalid indexes are always counted in
// auditpg_pg_invalid_indexes.
func WithMaxIndexes(n int) Option {
	return bounded("WithMaxIndexes", "indexes", n, 100, func(c *config) { c.indexes = n })
}

// WithPartitions gives the partition managers of the tables whose
// retention is known: auditpg_pg_partitions_expired counts the partitions
// past each one's retention. Other time-range partitioned tables are
// judged by a Manager with the defaults (no retention).
func WithPartitions(managers ...*partition.Manager) Option {
	return func(c *config) error {
		for i, m := range managers {
			if m == nil {
				return fmt.Errorf("metrics: WithPartitions: manager %d is nil: want the *partition.Manager of a table", i)
			}
		}
		c.managers = append(c.managers, managers...)
		return nil
	}
}

// WithGatherer makes Handler serve g's metrics too: the registry that
// NewMeterProvider (or otelsetup.Setup with WithPrometheusRegisterer)
// records the driver's OpenTelemetry metrics into.
func WithGatherer(g prometheus.Gatherer) Option {
	if g == nil {
		return failed("metrics: WithGatherer(nil): want a prometheus.Gatherer, such as the *prometheus.Registry given to NewMeterProvider")
	}
	return func(c *config) error { c.gatherers = append(c.gatherers, g); return nil }
}

// WithLogger logs each section that fails, at warning level, with the
// error (the default, and nil, discard).
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.log = l
		}
		return nil
	}
}

func failed(format string, args ...any) Option {
	err := fmt.Errorf(format, args...)
	return func(*config) error { return err }
}

func bounded(name, what string, n, def int, set func(*config)) Option {
	if n < 1 || n > maxTop {
		return failed("metrics: %s(%d): want 1 to %d %s (%d by default)", name, n, maxTop, what, def)
	}
	return func(c *config) error { set(c); return nil }
}

// Collector is a prometheus.Collector of a PostgreSQL database's
// statistics, read with package monitor and package partition at scrape
// time, and of the auditpg driver's own (auditpg.Stats) when the *sql.DB
// was opened with auditpg. One collection runs at a time; scrapes while it
// runs wait for it, and scrapes within the memo window after it reuse it,
// so a scrape storm costs one collection.
type Collector struct {
	db  *sql.DB
	mon *monitor.Monitor
	cfg config

	mu          sync.Mutex
	last        []prometheus.Metric
	lastAt      time.Time
	flight      *flight
	collections int64
}

type flight struct {
	done    chan struct{}
	metrics []prometheus.Metric
}

// NewCollector returns a Collector for db (any PostgreSQL driver; the
// driver's own metrics only with auditpg). It fails only when an option
// does.
func NewCollector(db *sql.DB, opts ...Option) (*Collector, error) {
	if db == nil {
		return nil, errors.New("metrics: NewCollector(nil): want the *sql.DB of the database to report")
	}
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	mon, err := monitor.New(db, monitor.WithLockTimeout(cfg.timeout))
	if err != nil {
		return nil, err
	}
	return &Collector{db: db, mon: mon, cfg: cfg}, nil
}

// Describe sends nothing: the Collector is unchecked, since which tables,
// indexes and statements it reports changes from one scrape to the next.
// Families lists what it may export.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the metrics of the last collection, collecting anew when
// it is older than the memo window.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.snapshot() {
		ch <- m
	}
}

// snapshot returns the memoized collection, or joins the one under way,
// or runs one.
func (c *Collector) snapshot() []prometheus.Metric {
	c.mu.Lock()
	if c.last != nil && c.cfg.now().Sub(c.lastAt) < c.cfg.memo {
		m := c.last
		c.mu.Unlock()
		return m
	}
	if f := c.flight; f != nil {
		c.mu.Unlock()
		<-f.done
		return f.metrics
	}
	f := &flight{done: make(chan struct{})}
	c.flight = f
	c.collections++
	n := c.collections
	c.mu.Unlock()

	f.metrics = c.collect(n)

	c.mu.Lock()
	c.last, c.lastAt, c.flight = f.metrics, c.cfg.now(), nil
	c.mu.Unlock()
	close(f.done)
	return f.metrics
}

// section is one part of a collection: it emits what it read into s.
type section struct {
	name string
	run  func(ctx context.Context, s *sink) error
}

// collect runs every section under one deadline, in an order that puts
// those that take no relation lock first, so that a locked table costs
// the sections after it only. A section that fails is logged and marked
// in auditpg_pg_scrape_error; the others are still reported.
func (c *Collector) collect(n int64) []prometheus.Metric {
	start := c.cfg.now()
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.timeout)
	defer cancel()
	s := &sink{}
	up := 1.0
	if err := c.db.PingContext(ctx); err != nil {
		up = 0
		c.cfg.log.Warn("metrics: the server cannot be reached", "err", err)
	}
	sections := []section{{"driver", c.driver}}
	if up == 1 {
		sections = append(sections, section{"activity", c.activity}, section{"cache_hit", c.cacheHit},
			section{"statements", c.statements}, section{"replication_slots", c.slots},
			section{"tables", c.tables}, section{"indexes", c.indexes}, section{"partitions", c.partitions})
	}
	for _, sec := range sections {
		part := &sink{}
		err := ctx.Err()
		if err == nil {
			err = sec.run(ctx, part)
		}
		failedSec := 0.0
		if err != nil {
			failedSec = 1
			c.cfg.log.Warn("metrics: section failed", "section", sec.name, "err", err)
		} else {
			s.out = append(s.out, part.out...)
		}
		if sec.name != "driver" {
			s.add(famScrapeError, failedSec, sec.name)
		}
	}
	s.add(famUp, up)
	s.add(famCollections, float64(n))
	s.add(famScrapeDuration, c.cfg.now().Sub(start).Seconds())
	s.add(famCollectedAt, float64(start.UnixNano())/1e9)
	return s.out
}

// sink collects the metrics of a section.
type sink struct{ out []prometheus.Metric }

// add appends one sample of f with the given label values, in the order
// of f.Labels.
func (s *sink) add(f *Family, v float64, labels ...string) {
	desc := prometheus.NewDesc(f.Name, f.Help, f.Labels, nil)
	s.out = append(s.out, prometheus.MustNewConstMetric(desc, f.Type, v, labels...))
}
