package auditpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/auditpg/auditpg/internal/otelobs"
	"github.com/auditpg/auditpg/internal/resultcache"
	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ngrok/sqlmw"
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
// parameters, or a name from stdlib.RegisterConnConfig) and returns a
// Connector. sql.Open calls it.
func (d *Driver) OpenConnector(dsn string) (driver.Connector, error) {
	return newConnector(dsn, false)
}

// Connector is a driver.Connector for sql.OpenDB. It owns the statistics,
// the statement classifier and the observers of every connection it opens.
type Connector struct {
	shared                  // what the interceptor of every connection reads
	inner  driver.Connector // pgx stdlib's connector
	drv    Driver

	stopFeed func()             // stops the change feed's goroutines, if the cache has one
	feedDone sync.WaitGroup     // the change feed's goroutines
	leader   *changefeed.Leader // the WAL decoder's candidate, with auditpg_invalidate=wal
}

// NewConnector returns a Connector for sql.OpenDB. The DSN takes every form
// pgx accepts (URL or key=value) plus auditpg_* parameters; options given in
// code win over the DSN.
//
// The DSN may instead be a name that stdlib.RegisterConnConfig returned
// ("registeredConnConfig0"), as with sql.Open("pgx", name): the registered
// *pgx.ConnConfig is used as it is (its Tracer, TLS, dialer, AfterConnect,
// ConnectTimeout), and auditpg's settings come from opts only. pgx looks the
// name up at each connect, so a name it does not have, or no longer has
// after stdlib.UnregisterConnConfig, fails the connection, not NewConnector.
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
	registered := err != nil && registeredName(dsn)
	if err != nil && !registered {
		return nil, fmt.Errorf("auditpg: %w", err) // pgx redacts the password
	}
	cfg := defaultConfig()
	if !registered {
		if err := cfg.applyDSN(pc.RuntimeParams, poolAllowed); err != nil {
			return nil, err
		}
	}
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, &ConfigError{Err: err}
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if registered {
		dc, ok := stdlib.GetDefaultDriver().(driver.DriverContext)
		if !ok { // pgx's driver has always been one: this guards an upgrade of it
			return nil, fmt.Errorf("auditpg: pgx's driver %T cannot open a connector for %s", stdlib.GetDefaultDriver(), dsn)
		}
		inner, err := dc.OpenConnector(dsn)
		if err != nil {
			return nil, fmt.Errorf("auditpg: %w", err)
		}
		c := wrapConnector(registeredConnector{Connector: inner, name: dsn}, cfg)
		c.targetFromConn = true
		return c, nil
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = cfg.connectTimeout
	}
	c := wrapConnector(stdlib.GetConnector(*pc), cfg)
	c.target.Store(&Target{Host: pc.Host, Port: pc.Port, Database: pc.Database, User: pc.User})
	return c, nil
}

// registeredName reports whether dsn has the form of the names
// stdlib.RegisterConnConfig returns, which no DSN parser accepts.
func registeredName(dsn string) bool {
	n, ok := strings.CutPrefix(dsn, "registeredConnConfig")
	return ok && n != "" && strings.Trim(n, "0123456789") == ""
}

// registeredConnector is pgx's connector for a registered config's name. It
// says plainly when pgx has no config by that name: pgx would report that it
// cannot parse the name as a DSN.
type registeredConnector struct {
	driver.Connector
	name string
}

func (r registeredConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := r.Connector.Connect(ctx)
	if pe := (*pgconn.ParseConfigError)(nil); errors.As(err, &pe) {
		return nil, fmt.Errorf("auditpg: no *pgx.ConnConfig is registered as %s (it never was, or stdlib.UnregisterConnConfig removed it); pass a name that stdlib.RegisterConnConfig returned", r.name)
	}
	return dc, err
}

// Target returns the server and database this connector connects to. For a
// config registered with pgx (see NewConnector) they are known only once
// connected: Target is the zero Target until the first connection is made,
// then that of the latest connection.
func (c *Connector) Target() Target {
	if t := c.target.Load(); t != nil {
		return *t
	}
	return Target{}
}

// wrapConnector builds a Connector around a driver.Connector: pgx stdlib's
// in production, a fake one in the tests that measure the wrapper alone.
func wrapConnector(inner driver.Connector, cfg config) *Connector {
	c := &Connector{inner: inner}
	c.shared = shared{
		cfg:        cfg,
		stats:      newCollector(cfg.stats),
		classifier: sqlclass.NewMemo(cfg.classifierSize),
	}
	c.drv.c = c
	c.observers = append([]Observer{c.stats}, cfg.observers...)
	if cfg.otel && !slices.ContainsFunc(cfg.observers, isOTel) {
		// Spans and metrics through the global providers, a no-op until the
		// application installs one; otel.Options' observer takes its place.
		c.observers = slices.Insert(c.observers, 1, Observer(otelobs.New(otelobs.NewConfig())))
	}
	if cfg.cache.Mode != CacheOff {
		if cfg.redis.addr != "" {
			cfg.cache.Redis.Client, cfg.cache.Redis.Owned, cfg.cache.Redis.Addr = cfg.redis.client(cfg.cache.Redis.Timeout), true, cfg.redis.addr
		}
		var listeners []resultcache.Listener
		for _, o := range c.observers {
			if l, ok := o.(InvalidationObserver); ok {
				listeners = append(listeners, l)
			}
		}
		c.cache = resultcache.New(cfg.cache, listeners)
		if cfg.invalidation == InvalidateNotify || cfg.invalidation == InvalidateWAL {
			c.useChangeFeed(cfg.invalidation == InvalidateWAL)
		}
	}
	return c
}

// useChangeFeed makes the cache hear of the writes of other processes on
// the changefeed channel. With notify, this process publishes its own
// writes there (a Publisher). With wal, it is a candidate to decode the
// database's WAL for every process (a Leader), which publishes every
// writer's changes, its own included, and its listener is up only while
// the decoder's heartbeats arrive. Each part gets a connection of its own,
// made with the configuration of the first connection that needs it (see
// resultcache.Cache.UseFeed), and lives until Close.
func (c *Connector) useChangeFeed(wal bool) {
	ctx, cancel := context.WithCancel(context.Background())
	c.stopFeed = cancel
	logger := c.cfg.stats.logger
	var pub *changefeed.Publisher
	publish, pending := (func(...string))(nil), (func() int)(nil)
	if !wal {
		pub = &changefeed.Publisher{}
		publish, pending = pub.Publish, pub.Pending
	} else {
		// The leader retries every few seconds: the same failure is logged
		// again once a minute.
		var last string
		var logged time.Time
		c.leader = &changefeed.Leader{
			Failed: func(err error) {
				if logger == nil || err.Error() == last && time.Since(logged) < time.Minute {
					return
				}
				last, logged = err.Error(), time.Now()
				logger.Error("auditpg: the WAL decoder cannot stream: every process with auditpg_invalidate=wal bypasses the result cache until one can", "error", err)
			},
		}
	}
	c.cache.UseFeed(func(cfg *pgconn.Config) {
		l := &changefeed.Listener{
			Config:  cfg,
			Changed: func(payload string) { c.cache.Received(ctx, payload) },
			Up:      c.cache.FeedUp,
			Failed:  func(error) { c.cache.FeedFailed() },
			Down: func(err error) {
				c.cache.FeedDown()
				if logger == nil {
					return
				}
				if errors.Is(err, changefeed.ErrNoHeartbeat) {
					logger.Warn("auditpg: no heartbeat from the WAL decoder: reads bypass the result cache until it is back", "error", err)
				} else {
					logger.Warn("auditpg: the change feed's connection failed: reads bypass the result cache until it is back", "error", err)
				}
			},
		}
		runs := []func(context.Context) error{l.Run}
		if pub != nil {
			pub.Config = cfg
			runs = append(runs, pub.Run)
		}
		if c.leader != nil {
			l.Heartbeat = changefeed.HeartbeatTimeout
			c.leader.Config = cfg
			runs = append(runs, c.leader.Run)
		}
		c.feedDone.Add(len(runs))
		for _, run := range runs {
			go func() { defer c.feedDone.Done(); _ = run(ctx) }()
		}
	}, publish, pending)
}

func isOTel(o Observer) bool {
	_, ok := o.(*otelobs.Observer)
	return ok
}

// Connect opens one connection: pgx stdlib's, wrapped by sqlmw with an
// interceptor of its own, so that per-connection state (the open
// transaction, the cache session) needs no lookup and no lock on the query
// path.
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	ic := &interceptor{c: &c.shared}
	wrapped, err := sqlmw.Driver(connectorDriver{c.inner}, ic).(driver.DriverContext).OpenConnector("")
	if err != nil {
		return nil, err
	}
	inner, err := wrapped.Connect(ctx) // runs ic.ConnectorConnect
	if err != nil {
		return nil, err
	}
	full, ok := inner.(fullConn)
	if !ok { // sqlmw's connection implements all of fullConn: this guards an upgrade of it
		_ = inner.Close()
		return nil, fmt.Errorf("auditpg: sqlmw connection %T lacks a database/sql interface auditpg needs", inner)
	}
	return &pooledConn{fullConn: full, ic: ic, opened: time.Now()}, nil
}

// fullConn is every interface database/sql looks for on a connection; sqlmw's
// connection implements them all and forwards them to pgx.
type fullConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// pooledConn is the connection database/sql holds in its pool. It adds what sqlmw does not
// intercept: Close (for connection lifetimes) and access to the pgx
// connection for (*sql.Conn).Raw users (see PgxConn).
type pooledConn struct {
	fullConn
	ic     *interceptor
	opened time.Time
}

func (c *pooledConn) Close() error {
	c.ic.c.stats.closed(time.Since(c.opened))
	return c.fullConn.Close()
}

// PgxConn returns the *pgx.Conn under a connection that (*sql.Conn).Raw hands
// to its callback, so pgx-only features (CopyFrom, SendBatch, LISTEN) work on
// a *sql.DB opened with auditpg:
//
//	err := sqlConn.Raw(func(driverConn any) error {
//		pc, err := auditpg.PgxConn(driverConn)
//		if err != nil {
//			return err
//		}
//		_, err = pc.CopyFrom(ctx, pgx.Identifier{"audit_log"}, cols, src)
//		return err
//	})
//
// The *pgx.Conn must not be used after the callback returns. Work done on it
// directly bypasses auditpg's timing and statistics.
func PgxConn(driverConn any) (*pgx.Conn, error) {
	switch c := driverConn.(type) {
	case *pooledConn:
		if c.ic.pgx != nil {
			return c.ic.pgx.Conn(), nil
		}
	case *stdlib.Conn:
		return c.Conn(), nil
	}
	return nil, fmt.Errorf("auditpg: PgxConn: %T is not an auditpg or pgx connection; pass the value that (*sql.Conn).Raw gives its callback, on a *sql.DB opened with auditpg", driverConn)
}

// connectorDriver lets sqlmw wrap a connector that was built from a parsed
// config rather than a DSN string.
type connectorDriver struct{ connector driver.Connector }

func (d connectorDriver) Open(string) (driver.Conn, error) {
	return d.connector.Connect(context.Background())
}

func (d connectorDriver) OpenConnector(string) (driver.Connector, error) { return d.connector, nil }

// Driver returns this connector's own Driver value.
func (c *Connector) Driver() driver.Driver { return &c.drv }

// Stats returns a snapshot of this connector's statistics. pool is
// database/sql's view of the pool (db.Stats()); pass the zero value when
// there is no *sql.DB.
func (c *Connector) Stats(pool sql.DBStats) Snapshot {
	s := c.stats.snapshot(pool)
	if c.cache != nil {
		s.Cache = c.cache.Stats()
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

// ResetStats clears the statistics of a *sql.DB opened with auditpg. The
// pool's counters count again too; the connections open at the reset are
// reported as PoolStats.OpenAtSince.
func ResetStats(db *sql.DB) error {
	c, err := connectorOf(db)
	if err != nil {
		return err
	}
	c.stats.reset(db.Stats())
	if c.cache != nil {
		c.cache.ResetStats()
	}
	return nil
}

// Invalidate drops the cached results that read the named tables (by
// unqualified name; name a partitioned table's parent to refresh reads of
// the parent), or every cached result when no table is named. Use it after
// writes the driver cannot see: triggers, foreign-key cascades, rules,
// pgx's CopyFrom through PgxConn, other processes.
func Invalidate(db *sql.DB, tables ...string) error {
	c, err := connectorOf(db)
	if err != nil {
		return err
	}
	if c.cache == nil {
		return nil
	}
	c.cache.Invalidate(context.Background(), tables, len(tables) == 0)
	return nil
}

// Close stops the change feed and releases the connector's result cache;
// sql.DB.Close calls it.
func (c *Connector) Close() error {
	if c.stopFeed != nil {
		c.stopFeed()
		c.feedDone.Wait()
	}
	if c.cache == nil {
		return nil
	}
	return c.cache.Close()
}

func connectorOf(db *sql.DB) (*Connector, error) {
	if d, ok := db.Driver().(*Driver); ok && d.c != nil {
		return d.c, nil
	}
	return nil, ErrNotAuditpg
}
