package auditpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// DriverName is the name under which auditpg registers with database/sql.
const DriverName = "auditpg"

func init() {
	sql.Register(DriverName, &Driver{})
}

// ErrNotAuditpg is returned by the functions that take a *sql.DB (Stats,
// ResetStats) when that DB was not opened with the auditpg driver.
var ErrNotAuditpg = errors.New(`auditpg: this *sql.DB was not opened with the auditpg driver; open it with sql.Open("auditpg", dsn), auditpg.Open or sql.OpenDB(auditpg.NewConnector(...))`)

// Driver is the database/sql driver registered as "auditpg". The registered
// value opens a new Connector per DSN; each Connector has a Driver of its own
// (returned by db.Driver()), so that Stats(db) reaches that DB's state.
type Driver struct {
	c *Connector // nil for the registered driver
}

// Open opens one connection without a pool. database/sql does not call it:
// it uses OpenConnector.
func (d *Driver) Open(dsn string) (driver.Conn, error) {
	c := d.c
	if c == nil {
		var err error
		if c, err = newConnector(dsn, false); err != nil {
			return nil, err
		}
	}
	return c.Connect(context.Background())
}

// OpenConnector parses dsn (any form pgx accepts, with optional auditpg_*
// parameters) and returns a Connector. sql.Open calls it.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	return newConnector(dsn, false)
}

// Connector is a driver.Connector for sql.OpenDB. It owns the statistics,
// the statement classifier and the observers of every connection it opens.
type Connector struct {
	cfg        config
	inner      driver.Connector // pgx stdlib's connector
	drv        Driver
	stats      *collector
	classifier *sqlclass.Memo
	observers  []Observer // stats first, then the user's
	target     *Target    // nil for a non-pgx inner connector
	cache      *cache     // nil when the cache mode is off
}

// NewConnector returns a Connector for sql.OpenDB. The DSN takes every form
// pgx accepts (URL or key=value) plus auditpg_* parameters; options given in
// code win over the DSN.
func NewConnector(dsn string, opts ...Option) (*Connector, error) {
	return newConnector(dsn, true, opts...)
}

// Open opens a *sql.DB through a new Connector and applies the pool settings
// (WithMaxOpenConns, WithMaxIdleConns, WithConnMaxIdleTime,
// WithConnMaxLifetime, or their auditpg_* DSN parameters) to it. Like
// sql.Open, it does not connect: call PingContext to check the server.
func Open(dsn string, opts ...Option) (*sql.DB, error) {
	c, err := NewConnector(dsn, opts...)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	p := c.cfg.pool
	db.SetMaxOpenConns(p.maxOpen)
	db.SetMaxIdleConns(p.maxIdle)
	db.SetConnMaxIdleTime(p.maxIdleTime)
	db.SetConnMaxLifetime(p.maxLifetime)
	return db, nil
}

// newConnector builds a connector; poolAllowed is false on the sql.Open
// path, which cannot apply pool settings to the *sql.DB it makes.
func newConnector(dsn string, poolAllowed bool, opts ...Option) (*Connector, error) {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("auditpg: %w", err) // pgx redacts the password
	}
	cfg := defaultConfig()
	if err := cfg.applyDSN(pc.RuntimeParams, poolAllowed); err != nil {
		return nil, err
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = cfg.connectTimeout
	}
	c := wrapConnector(stdlib.GetConnector(*pc), cfg)
	c.target = &Target{Host: pc.Host, Port: pc.Port, Database: pc.Database, User: pc.User}
	return c, nil
}

// Target returns the server and database this connector connects to.
func (c *Connector) Target() Target {
	if c.target == nil {
		return Target{}
	}
	return *c.target
}

// wrapConnector builds a Connector around a driver.Connector: pgx stdlib's
// in production, a fake one in the tests that measure the wrapper alone.
func wrapConnector(inner driver.Connector, cfg config) *Connector {
	c := &Connector{
		cfg:        cfg,
		inner:      inner,
		stats:      newCollector(cfg.stats),
		classifier: sqlclass.NewMemo(cfg.classifierSize),
	}
	c.drv.c = c
	c.observers = append([]Observer{c.stats}, cfg.observers...)
	if cfg.cache.mode != CacheOff {
		c.cache = newCache(cfg.cache, c.observers)
	}
	return c
}

// Driver returns this connector's own Driver value.
func (c *Connector) Driver() driver.Driver { return &c.drv }

// Stats returns a snapshot of this connector's statistics. pool is
// database/sql's view of the pool (db.Stats()); pass the zero value when
// there is no *sql.DB.
func (c *Connector) Stats(pool sql.DBStats) Snapshot {
	s := c.stats.snapshot(pool)
	if c.cache != nil {
		s.Cache = c.cache.snapshot()
	}
	return s
}

// Stats returns a snapshot of the statistics of a *sql.DB opened with
// auditpg (by sql.Open, Open or sql.OpenDB): totals, per-fingerprint
// statistics, recent slow queries and the pool.
func Stats(db *sql.DB) (Snapshot, error) {
	c, err := connectorOf(db)
	if err != nil {
		return Snapshot{}, err
	}
	return c.Stats(db.Stats()), nil
}

// ResetStats clears the statistics of a *sql.DB opened with auditpg.
func ResetStats(db *sql.DB) error {
	c, err := connectorOf(db)
	if err != nil {
		return err
	}
	c.stats.reset()
	if c.cache != nil {
		c.cache.resetStats()
	}
	return nil
}

func connectorOf(db *sql.DB) (*Connector, error) {
	if d, ok := db.Driver().(*Driver); ok && d.c != nil {
		return d.c, nil
	}
	return nil, ErrNotAuditpg
}

// config is everything an Option or a DSN parameter can set.
type config struct {
	stats          statsConfig
	pool           poolConfig
	retryAttempts  int
	retryDelay     time.Duration
	connectTimeout time.Duration
	classifierSize int
	observers      []Observer
	rewriter       func(ctx context.Context, query string) string
	cache          cacheConfig
}

type poolConfig struct {
	maxOpen, maxIdle         int
	maxIdleTime, maxLifetime time.Duration
}

// Defaults follow the seed's configuration where it had one.
func defaultConfig() config {
	return config{
		stats: statsConfig{
			slowThreshold:   time.Second,
			maxFingerprints: defaultMaxFingerprints,
			maxSlowSamples:  defaultMaxSlowSamples,
		},
		pool: poolConfig{
			maxOpen:     20,
			maxIdle:     20, // idle connections are trimmed by maxIdleTime, not churned
			maxIdleTime: 30 * time.Second,
		},
		retryAttempts:  3,
		retryDelay:     time.Second,
		connectTimeout: 10 * time.Second,
		classifierSize: 4096,
		cache:          defaultCacheConfig(),
	}
}

// Option configures a Connector. Options given in code win over DSN
// parameters.
type Option func(*config) error

// WithSlowQueryThreshold sets the duration from which a call counts as slow
// (default 1s; 0 turns slow-query tracking off). DSN: auditpg_slow_query.
func WithSlowQueryThreshold(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("auditpg: WithSlowQueryThreshold(%v): want 0 (off) or a positive duration", d)
		}
		c.stats.slowThreshold = d
		return nil
	}
}

// WithSlowQueryCallback calls fn, synchronously, for every slow call. Keep it
// fast: it runs on the query path.
func WithSlowQueryCallback(fn func(SlowQuery)) Option {
	return func(c *config) error { c.stats.onSlow = fn; return nil }
}

// WithLogger sets the logger for slow-query warnings and connection retries.
// There is none by default: the library never prints on its own.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error { c.stats.logger = l; return nil }
}

// WithLogArgs keeps argument values in slow-query samples and logs. Off by
// default: values are often personal data. DSN: auditpg_log_args.
func WithLogArgs(on bool) Option {
	return func(c *config) error { c.stats.logArgs = on; return nil }
}

// WithMaxFingerprints bounds the per-fingerprint statistics (default 1000);
// the least recently seen fingerprint is evicted and counted. DSN:
// auditpg_max_fingerprints.
func WithMaxFingerprints(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("auditpg: WithMaxFingerprints(%d): want at least 1", n)
		}
		c.stats.maxFingerprints = n
		return nil
	}
}

// WithSlowSamples bounds the recent slow-query samples kept (default 100).
// DSN: auditpg_slow_samples.
func WithSlowSamples(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("auditpg: WithSlowSamples(%d): want at least 1", n)
		}
		c.stats.maxSlowSamples = n
		return nil
	}
}

// WithConnectRetry sets how many times a connection is attempted (default 3)
// and the first delay between attempts (default 1s, then growing with
// jitter). Only transient failures are retried, and never past the
// context's deadline. DSN: auditpg_retry_attempts, auditpg_retry_delay.
func WithConnectRetry(attempts int, delay time.Duration) Option {
	return func(c *config) error {
		if attempts < 1 || delay < 0 {
			return fmt.Errorf("auditpg: WithConnectRetry(%d, %v): want at least 1 attempt and a delay of 0 or more", attempts, delay)
		}
		c.retryAttempts, c.retryDelay = attempts, delay
		return nil
	}
}

// WithQueryRewriter sets a function that rewrites each SQL text just before
// it is sent to the server, with the context of the call (its span, once
// the observers' Start has run): for sqlcommenter-style comments. The
// classification, fingerprint, statistics, cache key and every Event keep
// the original text. A prepared statement is rewritten once, when prepared.
func WithQueryRewriter(fn func(ctx context.Context, query string) string) Option {
	return func(c *config) error {
		c.rewriter = fn
		return nil
	}
}

// WithObserver adds an Observer that sees every call (after the statistics).
func WithObserver(o Observer) Option {
	return func(c *config) error {
		if o == nil {
			return errors.New("auditpg: WithObserver(nil): want an Observer")
		}
		c.observers = append(c.observers, o)
		return nil
	}
}

// WithMaxOpenConns sets the pool's maximum open connections (default 20;
// applied by Open). DSN: auditpg_max_open_conns.
func WithMaxOpenConns(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("auditpg: WithMaxOpenConns(%d): want 0 (unlimited) or more", n)
		}
		c.pool.maxOpen = n
		return nil
	}
}

// WithMaxIdleConns sets the pool's maximum idle connections (default 20;
// applied by Open). DSN: auditpg_max_idle_conns.
func WithMaxIdleConns(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return fmt.Errorf("auditpg: WithMaxIdleConns(%d): want 0 or more", n)
		}
		c.pool.maxIdle = n
		return nil
	}
}

// WithConnMaxIdleTime closes connections idle for longer than d (default
// 30s, the seed's; 0 keeps them; applied by Open). DSN:
// auditpg_conn_max_idle_time.
func WithConnMaxIdleTime(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("auditpg: WithConnMaxIdleTime(%v): want 0 (no limit) or more", d)
		}
		c.pool.maxIdleTime = d
		return nil
	}
}

// WithConnMaxLifetime closes connections older than d (default 0: no
// limit; applied by Open). DSN: auditpg_conn_max_lifetime.
func WithConnMaxLifetime(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return fmt.Errorf("auditpg: WithConnMaxLifetime(%v): want 0 (no limit) or more", d)
		}
		c.pool.maxLifetime = d
		return nil
	}
}

// dsnParam is one auditpg_* DSN parameter: the form it accepts and how it
// becomes an Option, so a DSN and code configure through the same checks.
type dsnParam struct {
	form   string
	pool   bool // applies to the *sql.DB: only Open can honour it
	option func(v string) (Option, error)
}

var dsnParams = map[string]dsnParam{
	"auditpg_slow_query": {form: "a duration such as 500ms or 2s (0 turns it off)",
		option: durationParam(WithSlowQueryThreshold)},
	"auditpg_log_args": {form: "true or false", option: func(v string) (Option, error) {
		b, err := strconv.ParseBool(v)
		return WithLogArgs(b), err
	}},
	"auditpg_max_fingerprints": {form: "a positive integer", option: intParam(WithMaxFingerprints)},
	"auditpg_slow_samples":     {form: "a positive integer", option: intParam(WithSlowSamples)},
	"auditpg_retry_attempts": {form: "a positive integer", option: func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		return func(c *config) error { return WithConnectRetry(n, c.retryDelay)(c) }, err
	}},
	"auditpg_retry_delay": {form: "a duration such as 500ms or 1s", option: func(v string) (Option, error) {
		d, err := time.ParseDuration(v)
		return func(c *config) error { return WithConnectRetry(c.retryAttempts, d)(c) }, err
	}},
	"auditpg_max_open_conns":     {form: "an integer, 0 for unlimited", pool: true, option: intParam(WithMaxOpenConns)},
	"auditpg_max_idle_conns":     {form: "an integer", pool: true, option: intParam(WithMaxIdleConns)},
	"auditpg_conn_max_idle_time": {form: "a duration such as 30s", pool: true, option: durationParam(WithConnMaxIdleTime)},
	"auditpg_conn_max_lifetime":  {form: "a duration such as 30m", pool: true, option: durationParam(WithConnMaxLifetime)},
	"auditpg_cache": {form: "off, explicit, tables or all", option: func(v string) (Option, error) {
		m, err := parseCacheMode(v)
		return WithCacheMode(m), err
	}},
	"auditpg_cache_ttl":       {form: "a duration above 0 and at most 24h, such as 30s or 5m", option: durationParam(WithCacheTTL)},
	"auditpg_cache_size":      {form: "a size of at least 1MB, in bytes or with kB, MB or GB, such as 100MB", option: sizeParam(WithCacheSize)},
	"auditpg_cache_max_entry": {form: "a size in bytes, or with kB, MB or GB, such as 1MB", option: sizeParam(WithCacheMaxEntry)},
	"auditpg_cache_tables": {form: "table names separated by commas", option: func(v string) (Option, error) {
		return WithCacheTables(splitList(v)...), nil
	}},
	"auditpg_cache_rls_tables": {form: "table names separated by commas", option: func(v string) (Option, error) {
		return WithCacheRLSTables(splitList(v)...), nil
	}},
}

func sizeParam(opt func(int) Option) func(string) (Option, error) {
	return func(v string) (Option, error) {
		n, err := parseSize(v)
		return opt(n), err
	}
}

// parseSize reads 1048576, 1024kB, 1MB or 1GB (PostgreSQL's units).
func parseSize(v string) (int, error) {
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"kB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}} {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > math.MaxInt/mult {
		return 0, fmt.Errorf("not a size")
	}
	return n * mult, nil
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func durationParam(opt func(time.Duration) Option) func(string) (Option, error) {
	return func(v string) (Option, error) {
		d, err := time.ParseDuration(v)
		return opt(d), err
	}
}

func intParam(opt func(int) Option) func(string) (Option, error) {
	return func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		return opt(n), err
	}
}

// applyDSN takes the auditpg_* parameters out of the runtime parameters pgx
// parsed (so they never reach the server) and applies them.
func (c *config) applyDSN(params map[string]string, poolAllowed bool) error {
	names := make([]string, 0, 4)
	for k := range params {
		if strings.HasPrefix(k, "auditpg_") {
			names = append(names, k)
		}
	}
	slices.Sort(names) // deterministic: the first bad parameter is always the same one
	for _, name := range names {
		v := params[name]
		delete(params, name)
		p, ok := dsnParams[name]
		if !ok {
			known := make([]string, 0, len(dsnParams))
			for k := range dsnParams {
				known = append(known, k)
			}
			slices.Sort(known)
			return fmt.Errorf("auditpg: unknown DSN parameter %s; the auditpg_* parameters are: %s", name, strings.Join(known, ", "))
		}
		if p.pool && !poolAllowed {
			return fmt.Errorf("auditpg: DSN parameter %s sets the pool, which sql.Open cannot apply; open with auditpg.Open(dsn) instead, or call db.SetMaxOpenConns and friends", name)
		}
		opt, err := p.option(v)
		if err == nil {
			err = opt(c)
		}
		if err != nil {
			return fmt.Errorf("auditpg: DSN parameter %s=%q: want %s", name, v, p.form)
		}
	}
	return nil
}
