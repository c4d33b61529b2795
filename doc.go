// Package auditpg is a database/sql driver for PostgreSQL, registered as
// "auditpg", that wraps pgx v5's stdlib driver with sqlmw interceptors so
// that every call is timed, classified and observed, with nothing else to
// change in the application:
//
//	db, err := sql.Open("auditpg", dsn) // was: sql.Open("pgx", dsn)
//
// GORM (postgres.New(postgres.Config{DriverName: "auditpg", DSN: dsn})) and
// sqlx (sqlx.Open("auditpg", dsn), after sqlx.BindDriver("auditpg",
// sqlx.DOLLAR)) keep working unchanged.
//
// # What every call gets
//
//   - Timing of connect, ping, prepare, exec, query (from the query to
//     Rows.Close, iteration included), begin, commit and rollback, with rows
//     returned or affected and the SQLSTATE of errors.
//   - Classification of the SQL by a lexer (see Classify): kind, tables read
//     and written, volatility, a pg_stat_statements-style fingerprint and an
//     OpenTelemetry-style summary, memoized per SQL text.
//   - Statistics per fingerprint and a slow-query tracker (see Stats), with
//     bounded memory.
//   - A result cache (see WithCache, NoCache, WithCacheMode, Invalidate):
//     cacheable reads served from BigCache in process, keyed by the session's
//     scope, the SQL and its typed arguments, and invalidated by table on
//     every write through the driver (at once, or at commit). In the default
//     mode only reads that ask are cached: WithCache(ctx, ttl) or a
//     /* auditpg:cache ttl=30s */ hint in the SQL.
//   - OpenTelemetry spans and metrics (the stable database semantic
//     conventions) through the global TracerProvider and MeterProvider, on
//     by default and a no-op until the application installs providers;
//     package otel configures them (see WithOpenTelemetry).
//   - Observers (see Observer and WithObserver): the seam through which
//     statistics and tracing see every call.
//
// # Configuration
//
// Options can be given in code (NewConnector, Open) or as DSN parameters
// prefixed auditpg_, which are removed before pgx sees the DSN; options in
// code win. Words (all, off, true...) may be written in any case; a list
// is names separated by commas, with no empty item. Every number has an
// upper bound, given below. An unknown auditpg_ parameter or a bad value
// fails Open with a *ConfigError that names it and the accepted form:
//
//	auditpg_slow_query=500ms        WithSlowQueryThreshold (default 1s; 0 = off; at most 24h)
//	auditpg_log_args=true           WithLogArgs (default false: values are sensitive)
//	auditpg_otel=off                WithOpenTelemetry (default on: the global providers)
//	auditpg_max_fingerprints=1000   WithMaxFingerprints (1 to 1000000)
//	auditpg_slow_samples=100        WithSlowSamples (1 to 100000)
//	auditpg_retry_attempts=3        WithConnectRetry (attempts: 1 to 100)
//	auditpg_retry_delay=50ms        WithConnectRetry (first delay: 0 to 1m; doubling, ±50%, up to 1s)
//	auditpg_max_open_conns=20       WithMaxOpenConns     (Open only; 0 = unlimited; at most 10000)
//	auditpg_max_idle_conns=20       WithMaxIdleConns     (Open only; 0 to 10000)
//	auditpg_conn_max_idle_time=30s  WithConnMaxIdleTime  (Open only; 0 = no limit; at most 24h)
//	auditpg_conn_max_lifetime=0     WithConnMaxLifetime  (Open only; 0 = no limit; at most 24h)
//	auditpg_cache=explicit          WithCacheMode (off, explicit, tables, all)
//	auditpg_cache_tables=a,b        WithCacheTables (selects mode tables)
//	auditpg_cache_ttl=300s          WithCacheTTL (above 0, at most 24h)
//	auditpg_cache_size=100MB        WithCacheSize (a hard limit: 1MB to 64GB)
//	auditpg_cache_max_entry=1MB     WithCacheMaxEntry (1B to 512MB, at most the cache size)
//	auditpg_cache_rls_tables=a,b    WithCacheRLSTables
//	auditpg_invalidate=notify       WithInvalidation (notify: other processes' writes too; wal: every writer's, from logical decoding; local)
//	auditpg_redis=redis://h:6379/0  WithRedis (the shared Redis tier; rediss:// for TLS; WithRedisClient for your own client)
//	auditpg_redis_prefix=auditpg    WithRedisPrefix (1 to 64 letters, digits, - _ .)
//	auditpg_redis_timeout=5ms       WithRedisTimeout (above 0, at most 1s)
//
// The pool parameters need Open, which applies them to the *sql.DB it
// returns; sql.Open cannot, and so refuses them rather than ignore them.
//
// A *pgx.ConnConfig (with a tracer, TLS, a dialer or AfterConnect of its
// own) is opened by the name stdlib.RegisterConnConfig gives it, as with
// pgx: sql.Open("auditpg", name), or Open(name, opts...) and NewConnector,
// where the options give auditpg's settings. See NewConnector.
//
// # Guarantees
//
// Argument values and passwords never reach logs, errors or statistics
// unless WithLogArgs is set. The library never prints: it logs only through
// the *slog.Logger given to WithLogger (with a Redis tier, go-redis logs its
// pool's dial failures through its own logger, which redis.SetLogger sets). Memory is bounded everywhere.
package auditpg
