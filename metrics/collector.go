package metrics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/partition"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
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
	retention  map[partition.Table]time.Duration
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

// WithRetention gives the retention of a table partitioned by time range
// (as given to its partition.Manager): auditpg_pg_partitions_expired
// counts its partitions past it. A table without one counts none. A table
// with no schema is in public. d must be 0 (keep everything) or more.
func WithRetention(table partition.Table, d time.Duration) Option {
	if table.Name == "" || d < 0 {
		return failed("metrics: WithRetention(%+v, %v): want a table name and a retention of 0 (keep everything) or more", table, d)
	}
	if table.Schema == "" {
		table.Schema = "public"
	}
	return func(c *config) error {
		if c.retention == nil {
			c.retention = map[partition.Table]time.Duration{}
		}
		c.retention[table] = d
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
	db  *sql.DB // the application's: the driver's statistics
	cfg config

	// server is what the server's statistics are read through: db itself
	// for another driver; for auditpg, a small pool of pgx's own with the
	// configuration of db's connections, opened at the first collection,
	// so that the reports' set_config (lock_timeout, TimeZone), which the
	// driver counts as a change of session, never makes the application's
	// connections bypass the result cache, and the collector's queries
	// stay out of the application's statistics.
	serverMu sync.Mutex
	server   *sql.DB
	own      bool // server was opened here: Close closes it
	mon      *monitor.Monitor

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
	return &Collector{db: db, cfg: cfg}, nil
}

// serverDB returns the *sql.DB the server's statistics are read through
// (see Collector.server), opening it the first time.
func (c *Collector) serverDB(ctx context.Context) (*reader, error) {
	c.serverMu.Lock()
	defer c.serverMu.Unlock()
	if c.server != nil {
		return &reader{db: c.server, mon: c.mon, cfg: &c.cfg}, nil
	}
	server, own := c.db, false
	if _, err := auditpg.Stats(c.db); err == nil {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		var cfg *pgx.ConnConfig
		err = conn.Raw(func(dc any) error {
			pc, err := auditpg.PgxConn(dc)
			if err == nil {
				cfg = pc.Config() // a copy
			}
			return err
		})
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("the configuration of the driver's connections: %w", err)
		}
		server, own = stdlib.OpenDB(*cfg), true
		server.SetMaxOpenConns(2)
		server.SetMaxIdleConns(1)
		server.SetConnMaxIdleTime(time.Minute)
	}
	mon, err := monitor.New(server, monitor.WithLockTimeout(c.cfg.timeout))
	if err != nil {
		if own {
			server.Close()
		}
		return nil, err
	}
	c.server, c.own, c.mon = server, own, mon
	return &reader{db: server, mon: mon, cfg: &c.cfg}, nil
}

// Close closes the pool the Collector opened to read the server's
// statistics of an auditpg *sql.DB (none for another driver). A
// collection after Close opens it again.
func (c *Collector) Close() error {
	c.serverMu.Lock()
	defer c.serverMu.Unlock()
	var err error
	if c.own {
		err = c.server.Close()
	}
	c.server, c.own, c.mon = nil, false, nil
	return err
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
	r, err := c.serverDB(ctx)
	if err == nil {
		err = r.db.PingContext(ctx)
	}
	if err != nil {
		up = 0
		c.cfg.log.Warn("metrics: the server cannot be reached", "err", err)
	}
	sections := []section{{"driver", c.driver}}
	if up == 1 {
		sections = append(sections, section{"activity", r.activity}, section{"cache_hit", r.cacheHit},
			section{"statements", r.statements}, section{"replication_slots", r.slots},
			section{"tables", r.tables}, section{"indexes", r.indexes}, section{"partitions", r.partitions})
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
