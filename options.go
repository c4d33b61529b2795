package auditpg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/bytesize"
	"github.com/auditpg/auditpg/internal/resultcache"
	"github.com/redis/go-redis/v9"
)

// validated is an Option that applies set, or, when bad, fails with
// "auditpg: call: want want": what was given and what to give instead.
func validated(bad bool, call, want string, set func(*config)) Option {
	return func(c *config) error {
		if bad {
			return fmt.Errorf("auditpg: %s: want %s", call, want)
		}
		set(c)
		return nil
	}
}

// ConfigError is a DSN parameter or an option that auditpg cannot accept;
// its message says what was wrong and what to do. Open, NewConnector and
// sql.Open return it (test for it with errors.As).
type ConfigError struct {
	Param string // the auditpg_* DSN parameter; "" for an option given in code
	Value string // the parameter's value as the DSN gave it
	Err   error
}

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

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
	otel           bool // the default OpenTelemetry observer
	cache          resultcache.Config
	invalidation   Invalidation
	// cacheSizeDSN and cacheMaxEntryDSN hold the DSN's value of
	// auditpg_cache_size and auditpg_cache_max_entry while it is the one in
	// force (an option in code clears it), so that validate blames it.
	cacheSizeDSN, cacheMaxEntryDSN string
	// redis is the shared tier's Redis as a URL (the connector makes its
	// client), or the application's client in cache.Redis.Client.
	redis redisURL
}

type poolConfig struct {
	maxOpen, maxIdle         int
	maxIdleTime, maxLifetime time.Duration
}

// defaultConfig is the configuration before options and DSN parameters.
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
		retryDelay:     50 * time.Millisecond,
		connectTimeout: 10 * time.Second,
		classifierSize: 4096,
		cache:          resultcache.DefaultConfig(),
		invalidation:   InvalidateNotify,
		otel:           true,
	}
}

// Option configures a Connector. Options given in code win over DSN
// parameters.
type Option func(*config) error

// The upper bounds of the numeric settings, each past what production asks
// for and short of what would exhaust the process (memory) or the server
// (connections), or leave a caller waiting for nothing.
const (
	maxFingerprintsLimit  = 1_000_000
	maxSlowSamplesLimit   = 100_000
	maxRetryAttemptsLimit = 100
	maxRetryDelayLimit    = time.Minute
	maxConnsLimit         = 10_000
	maxDurationLimit      = 24 * time.Hour // the slow-query threshold, a connection's idle time and lifetime
)

// WithCacheMode selects which reads the result cache considers (default
// CacheExplicit). DSN: auditpg_cache=off|explicit|tables|all.
func WithCacheMode(m CacheMode) Option {
	return validated(m > CacheAll, fmt.Sprintf("WithCacheMode(%d)", m), "CacheOff, CacheExplicit, CacheTables or CacheAll",
		func(c *config) { c.cache.Mode = m })
}

// WithCacheTTL sets how long a cached result lives when the query does not
// say (default 300s, at most 24h). DSN: auditpg_cache_ttl.
func WithCacheTTL(d time.Duration) Option {
	return validated(d <= 0 || d > resultcache.MaxTTL, fmt.Sprintf("WithCacheTTL(%v)", d), fmt.Sprintf("more than 0 and at most %v", resultcache.MaxTTL),
		func(c *config) { c.cache.TTL = d })
}

// WithCacheSize sets the cache's hard limit in bytes (default 100 MB, at
// least 1 MB, at most 64 GB): BigCache holds the encoded entries in fifteen
// sixteenths of it, rounded down to whole megabytes, and the entries read
// back most recently are kept decoded in the rest. DSN:
// auditpg_cache_size=100MB.
func WithCacheSize(bytes int) Option {
	return validated(bytes < 1<<20 || bytes > resultcache.MaxBytes, fmt.Sprintf("WithCacheSize(%d)", bytes),
		fmt.Sprintf("at least 1MB (1048576 bytes) and at most %s (%d bytes)", sizeText(resultcache.MaxBytes), resultcache.MaxBytes),
		func(c *config) { c.cache.MaxBytes, c.cacheSizeDSN = bytes, "" })
}

// WithCacheMaxEntry sets the largest result cached, encoded, in bytes
// (default 1 MB, at least 1 byte, at most 512 MB); a larger one is read
// from the server every time. It must not exceed the cache size
// (WithCacheSize). DSN: auditpg_cache_max_entry.
func WithCacheMaxEntry(bytes int) Option {
	return validated(bytes < 1 || bytes > resultcache.MaxEntryBytes, fmt.Sprintf("WithCacheMaxEntry(%d)", bytes),
		fmt.Sprintf("at least 1 byte and at most %s (%d bytes)", sizeText(resultcache.MaxEntryBytes), resultcache.MaxEntryBytes),
		func(c *config) { c.cache.MaxEntryBytes, c.cacheMaxEntryDSN = bytes, "" })
}

// WithCacheTables selects CacheTables mode with the tables whose cacheable
// reads are cached (names as in the SQL, or unqualified). DSN:
// auditpg_cache_tables=audit_preset,settings.
func WithCacheTables(tables ...string) Option {
	return func(c *config) error {
		if len(tables) == 0 {
			return errors.New("auditpg: WithCacheTables(): name at least one table")
		}
		if slices.Contains(tables, "") {
			return fmt.Errorf("auditpg: WithCacheTables(%q): a table name is empty; want table names", tables)
		}
		c.cache.Mode, c.cache.Tables = CacheTables, setOf(tables)
		return nil
	}
}

// WithCacheRLSTables allows caching reads of these tables although they
// have row-level security: only when their policies depend on nothing but
// the user and role, which are part of the key. DSN: auditpg_cache_rls_tables.
func WithCacheRLSTables(tables ...string) Option {
	return func(c *config) error {
		if slices.Contains(tables, "") {
			return fmt.Errorf("auditpg: WithCacheRLSTables(%q): a table name is empty; want table names", tables)
		}
		c.cache.RLSAllowed = setOf(tables)
		return nil
	}
}

// WithRedis adds the shared Redis tier of the result cache, at url:
// redis://[user:password@]host:port/db, or rediss:// for TLS (the ACL user
// and password in the URL; go-redis's own URL parameters such as
// pool_size apply). Several addr=host:port parameters make it a Redis
// Cluster client, the URL's host and port one of its nodes. The password
// never appears in an error, a log or Stats. The connector makes the
// client and closes it; its calls get the budget of WithRedisTimeout, with
// no retry. DSN: auditpg_redis (written with %-escapes inside a URL DSN).
func WithRedis(url string) Option {
	return func(c *config) error {
		u, err := parseRedisURL(url)
		if err != nil {
			return err
		}
		c.redis, c.cache.Redis.Client, c.cache.Redis.Owned = u, nil, false
		return nil
	}
}

// WithRedisClient adds the shared Redis tier of the result cache with the
// application's own client (a single node, Sentinel's failover client, or
// a Redis Cluster client: any redis.UniversalClient). The connector uses
// it with a context deadline of WithRedisTimeout on every call and never
// closes it. For that budget to hold, go-redis must honour the deadline: a
// *redis.Client (a single node's, or Sentinel's failover client) or a
// *redis.ClusterClient made without ContextTimeoutEnabled is refused. Few
// retries (MaxRetries: -1) keep a failing Redis from costing more.
func WithRedisClient(client redis.UniversalClient) Option {
	return func(c *config) error {
		if client == nil {
			return errors.New("auditpg: WithRedisClient(nil): want a redis.UniversalClient (or use WithRedis with a URL)")
		}
		honours := true
		switch cl := client.(type) {
		case *redis.Client:
			honours = cl.Options().ContextTimeoutEnabled
		case *redis.ClusterClient:
			honours = cl.Options().ContextTimeoutEnabled
		}
		if !honours {
			return errors.New("auditpg: WithRedisClient: the client was made without ContextTimeoutEnabled, so its calls would outlast the tier's budget (WithRedisTimeout) while Redis hangs; want a client made with ContextTimeoutEnabled: true")
		}
		c.redis, c.cache.Redis.Client, c.cache.Redis.Owned, c.cache.Redis.Addr = redisURL{}, client, false, "client"
		return nil
	}
}

// maxRedisPrefix bounds a key prefix's length.
const maxRedisPrefix = 64

// WithRedisPrefix sets the prefix of the shared tier's keys (default
// "auditpg"): one per application, so that an ACL can confine each to its
// own keys (~prefix:*). Letters, digits and - _ . only, at most 64 bytes.
// DSN: auditpg_redis_prefix.
func WithRedisPrefix(prefix string) Option {
	bad := prefix == "" || len(prefix) > maxRedisPrefix || strings.TrimLeft(prefix,
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != ""
	return validated(bad, fmt.Sprintf("WithRedisPrefix(%q)", prefix),
		fmt.Sprintf("1 to %d letters, digits, '-', '_' or '.'", maxRedisPrefix),
		func(c *config) { c.cache.Redis.Prefix = prefix })
}

// WithRedisTimeout sets the budget of each call to Redis on the query path
// (default 5ms, at most 1s): past it the read goes to the server, and
// failures in a row stop the calls for a while (a circuit breaker).
// DSN: auditpg_redis_timeout.
func WithRedisTimeout(d time.Duration) Option {
	return validated(d <= 0 || d > resultcache.MaxRedisTimeout, fmt.Sprintf("WithRedisTimeout(%v)", d),
		fmt.Sprintf("more than 0 and at most %v", resultcache.MaxRedisTimeout),
		func(c *config) { c.cache.Redis.Timeout = d })
}

// redisURL is a Redis URL, parsed: a single node's options or a
// cluster's; both nil when none was given.
type redisURL struct {
	node    *redis.Options
	cluster *redis.ClusterOptions
	addr    string // for the statistics: no user, no password
}

// parseRedisURL checks url as go-redis reads it. Its errors never quote
// the URL: it may hold a password.
func parseRedisURL(raw string) (redisURL, error) {
	want := "want redis://[user:password@]host:port/db or rediss://..., with go-redis's URL parameters (and addr=host:port for the other nodes of a Redis Cluster)"
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return redisURL{}, fmt.Errorf("auditpg: WithRedis(<url>): the URL is not a Redis URL; %s", want)
	}
	var r redisURL
	if u.Query().Has("addr") {
		r.cluster, err = redis.ParseClusterURL(raw)
		if err == nil {
			r.addr = resultcache.RedisAddr(r.cluster.Addrs)
		}
	} else {
		r.node, err = redis.ParseURL(raw)
		if err == nil {
			r.addr = r.node.Addr
		}
	}
	if err != nil {
		// go-redis's messages name a parameter or a part, never the URL;
		// a password is redacted all the same.
		msg := err.Error()
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return redisURL{}, fmt.Errorf("auditpg: WithRedis(<url>): %s; %s", msg, want)
	}
	return r, nil
}

// client makes the client of a parsed URL, with the tier's budget on
// every call and no retry.
func (r redisURL) client(timeout time.Duration) redis.UniversalClient {
	if timeout <= 0 {
		timeout = resultcache.DefaultRedisTimeout
	}
	if r.cluster != nil {
		o := *r.cluster
		o.ContextTimeoutEnabled, o.MaxRetries = true, -1
		o.DialTimeout = max(o.DialTimeout, 20*timeout)
		o.PoolTimeout = timeout
		return redis.NewClusterClient(&o)
	}
	o := *r.node
	o.ContextTimeoutEnabled, o.MaxRetries = true, -1
	o.DialTimeout = max(o.DialTimeout, 20*timeout)
	o.PoolTimeout = timeout
	return redis.NewClient(&o)
}

// Invalidation is where the result cache hears of the writes of other
// processes (see WithInvalidation).
type Invalidation string

const (
	// InvalidateNotify, the default, listens on the auditpg_invalidate
	// channel, which every auditpg process with the cache on publishes its
	// own writes to and which the statement triggers of
	// `auditpg cache install-triggers` publish every writer's changes to.
	InvalidateNotify Invalidation = "notify"
	// InvalidateWAL hears of every writer's changes from the server's
	// logical decoding: one process of the database (elected with an
	// advisory lock) streams them from a temporary replication slot and
	// publishes them on the auditpg_invalidate channel, where every process
	// listens. Needs wal_level = logical and a user with REPLICATION; while
	// no decoder's heartbeat arrives, reads bypass the cache.
	InvalidateWAL Invalidation = "wal"
	// InvalidateLocal hears only of the writes through this connector:
	// safe with one writer only.
	InvalidateLocal Invalidation = "local"
)

// WithInvalidation sets where the result cache hears of the writes other
// processes commit: InvalidateNotify (the default), InvalidateWAL or
// InvalidateLocal. DSN: auditpg_invalidate=notify, wal or local.
func WithInvalidation(src Invalidation) Option {
	return validated(src != InvalidateNotify && src != InvalidateWAL && src != InvalidateLocal, fmt.Sprintf("WithInvalidation(%q)", string(src)),
		"InvalidateNotify, InvalidateWAL or InvalidateLocal",
		func(c *config) { c.invalidation = src })
}

// WithSlowQueryThreshold sets the duration from which a call counts as slow
// (default 1s, at most 24h; 0 turns slow-query tracking off). DSN:
// auditpg_slow_query.
func WithSlowQueryThreshold(d time.Duration) Option {
	return validated(d < 0 || d > maxDurationLimit, fmt.Sprintf("WithSlowQueryThreshold(%v)", d),
		fmt.Sprintf("0 (off) or a positive duration of at most %v", maxDurationLimit),
		func(c *config) { c.stats.slowThreshold = d })
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

// WithMaxFingerprints bounds the per-fingerprint statistics (default 1000,
// at least 1, at most 1000000); the least recently seen fingerprint is
// evicted and counted. DSN: auditpg_max_fingerprints.
func WithMaxFingerprints(n int) Option {
	return validated(n < 1 || n > maxFingerprintsLimit, fmt.Sprintf("WithMaxFingerprints(%d)", n),
		fmt.Sprintf("at least 1 and at most %d", maxFingerprintsLimit),
		func(c *config) { c.stats.maxFingerprints = n })
}

// WithSlowSamples bounds the recent slow-query samples kept (default 100, at
// least 1, at most 100000). DSN: auditpg_slow_samples.
func WithSlowSamples(n int) Option {
	return validated(n < 1 || n > maxSlowSamplesLimit, fmt.Sprintf("WithSlowSamples(%d)", n),
		fmt.Sprintf("at least 1 and at most %d", maxSlowSamplesLimit),
		func(c *config) { c.stats.maxSlowSamples = n })
}

// WithConnectRetry sets how many times a connection is attempted (default 3,
// at least 1, at most 100) and the first delay between attempts (default
// 50ms, at most 1m). Each later delay doubles, up to 1s (or the first delay,
// if longer), and each is drawn within ±50% of its value, so that callers
// that lost the server together spread out. Only transient failures are retried, and never past the
// context's deadline.
//
// The defaults make a connection within tens of milliseconds of a restarted
// server's return, as bare pgx does, and give up after about 150ms of
// refusals (the caller's next connect starts over), keeping a caller to
// about 20 attempts a second while the server is down. More attempts ride
// through a longer outage, at up to a second's delay between the last ones:
// 8 attempts span about 3.5s. DSN: auditpg_retry_attempts,
// auditpg_retry_delay.
func WithConnectRetry(attempts int, delay time.Duration) Option {
	return validated(attempts < 1 || attempts > maxRetryAttemptsLimit || delay < 0 || delay > maxRetryDelayLimit,
		fmt.Sprintf("WithConnectRetry(%d, %v)", attempts, delay),
		fmt.Sprintf("1 to %d attempts and a delay from 0 to %v", maxRetryAttemptsLimit, maxRetryDelayLimit),
		func(c *config) { c.retryAttempts, c.retryDelay = attempts, delay })
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

// WithOpenTelemetry turns the default OpenTelemetry instrumentation on or
// off (default on): a span per call and the database client metrics,
// through the global TracerProvider and MeterProvider, which do nothing
// until the application installs providers. An observer from package otel
// (otel.Options, otel.Observer) replaces the default one. DSN:
// auditpg_otel=on|off.
func WithOpenTelemetry(on bool) Option {
	return func(c *config) error { c.otel = on; return nil }
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

// WithMaxOpenConns sets the pool's maximum open connections (default 20,
// at most 10000; 0: unlimited; applied by Open). DSN:
// auditpg_max_open_conns.
func WithMaxOpenConns(n int) Option {
	return validated(n < 0 || n > maxConnsLimit, fmt.Sprintf("WithMaxOpenConns(%d)", n),
		fmt.Sprintf("0 (unlimited) to %d", maxConnsLimit),
		func(c *config) { c.pool.maxOpen = n })
}

// WithMaxIdleConns sets the pool's maximum idle connections (default 20,
// at most 10000; applied by Open). DSN: auditpg_max_idle_conns.
func WithMaxIdleConns(n int) Option {
	return validated(n < 0 || n > maxConnsLimit, fmt.Sprintf("WithMaxIdleConns(%d)", n),
		fmt.Sprintf("0 to %d", maxConnsLimit),
		func(c *config) { c.pool.maxIdle = n })
}

// WithConnMaxIdleTime closes connections idle for longer than d (default
// 30s, at most 24h; 0 keeps them; applied by Open). DSN:
// auditpg_conn_max_idle_time.
func WithConnMaxIdleTime(d time.Duration) Option {
	return validated(d < 0 || d > maxDurationLimit, fmt.Sprintf("WithConnMaxIdleTime(%v)", d),
		fmt.Sprintf("0 (no limit) to %v", maxDurationLimit),
		func(c *config) { c.pool.maxIdleTime = d })
}

// WithConnMaxLifetime closes connections older than d (default 0: no
// limit; at most 24h; applied by Open). DSN: auditpg_conn_max_lifetime.
func WithConnMaxLifetime(d time.Duration) Option {
	return validated(d < 0 || d > maxDurationLimit, fmt.Sprintf("WithConnMaxLifetime(%v)", d),
		fmt.Sprintf("0 (no limit) to %v", maxDurationLimit),
		func(c *config) { c.pool.maxLifetime = d })
}

// dsnParam is one auditpg_* DSN parameter: the form it accepts and how it
// becomes an Option, so a DSN and code configure through the same checks.
type dsnParam struct {
	form   string
	pool   bool // applies to the *sql.DB: only Open can honour it
	secret bool // its value may hold a password: errors show it redacted
	option func(v string) (Option, error)
}

var dsnParams = map[string]dsnParam{
	"auditpg_slow_query": {form: "a duration such as 500ms or 2s, at most 24h (0 turns it off)",
		option: durationParam(WithSlowQueryThreshold)},
	"auditpg_log_args": {form: "true or false", option: func(v string) (Option, error) {
		b, err := strconv.ParseBool(strings.ToLower(v))
		return WithLogArgs(b), err
	}},
	"auditpg_max_fingerprints": {form: "a positive integer, at most 1000000", option: intParam(WithMaxFingerprints)},
	"auditpg_slow_samples":     {form: "a positive integer, at most 100000", option: intParam(WithSlowSamples)},
	"auditpg_retry_attempts": {form: "a positive integer, at most 100", option: func(v string) (Option, error) {
		n, err := strconv.Atoi(v)
		return func(c *config) error { return WithConnectRetry(n, c.retryDelay)(c) }, err
	}},
	"auditpg_retry_delay": {form: "a duration such as 50ms or 1s, at most 1m", option: func(v string) (Option, error) {
		d, err := time.ParseDuration(v)
		return func(c *config) error { return WithConnectRetry(c.retryAttempts, d)(c) }, err
	}},
	"auditpg_max_open_conns":     {form: "an integer from 0 (unlimited) to 10000", pool: true, option: intParam(WithMaxOpenConns)},
	"auditpg_max_idle_conns":     {form: "an integer from 0 to 10000", pool: true, option: intParam(WithMaxIdleConns)},
	"auditpg_conn_max_idle_time": {form: "a duration such as 30s, at most 24h (0: no limit)", pool: true, option: durationParam(WithConnMaxIdleTime)},
	"auditpg_conn_max_lifetime":  {form: "a duration such as 30m, at most 24h (0: no limit)", pool: true, option: durationParam(WithConnMaxLifetime)},
	"auditpg_otel": {form: "on or off", option: func(v string) (Option, error) {
		on, err := parseSwitch(v)
		return WithOpenTelemetry(on), err
	}},
	"auditpg_cache": {form: "off, explicit, tables or all", option: func(v string) (Option, error) {
		m, err := resultcache.ParseMode(v)
		return WithCacheMode(m), err
	}},
	"auditpg_cache_ttl": {form: "a duration above 0 and at most 24h, such as 30s or 5m", option: durationParam(WithCacheTTL)},
	"auditpg_cache_size": {form: "a size of at least 1MB and at most " + sizeText(resultcache.MaxBytes) + ", in bytes or with B, kB, MB, GB or TB, such as 100MB",
		option: sizeParam(WithCacheSize, func(c *config, v string) { c.cacheSizeDSN = v })},
	"auditpg_cache_max_entry": {form: "a size in bytes, or with B, kB, MB, GB or TB, such as 1MB, at most " + sizeText(resultcache.MaxEntryBytes) + " and at most auditpg_cache_size",
		option: sizeParam(WithCacheMaxEntry, func(c *config, v string) { c.cacheMaxEntryDSN = v })},
	"auditpg_cache_tables": {form: "table names separated by commas", option: func(v string) (Option, error) {
		names, err := splitList(v)
		return WithCacheTables(names...), err
	}},
	"auditpg_invalidate": {form: "notify, wal or local", option: func(v string) (Option, error) {
		return WithInvalidation(Invalidation(strings.ToLower(v))), nil
	}},
	"auditpg_redis": {form: "a Redis URL, redis://[user:password@]host:port/db or rediss://... (with addr=host:port for each other node of a Redis Cluster)",
		secret: true, option: func(v string) (Option, error) { return WithRedis(v), nil }},
	"auditpg_redis_prefix": {form: "1 to 64 letters, digits, '-', '_' or '.'", option: func(v string) (Option, error) {
		return WithRedisPrefix(v), nil
	}},
	"auditpg_redis_timeout": {form: "a duration above 0 and at most 1s, such as 5ms", option: durationParam(WithRedisTimeout)},
	"auditpg_cache_rls_tables": {form: "table names separated by commas", option: func(v string) (Option, error) {
		names, err := splitList(v)
		return WithCacheRLSTables(names...), err
	}},
}

// sizeParam parses a size for opt and, once opt has applied it, lets note
// record the DSN's value.
func sizeParam(opt func(int) Option, note func(c *config, v string)) func(string) (Option, error) {
	return func(v string) (Option, error) {
		n, err := bytesize.Parse(v)
		if err == nil && n > math.MaxInt {
			err = errors.New("too large")
		}
		set := opt(int(n))
		return func(c *config) error {
			if err := set(c); err != nil {
				return err
			}
			note(c, v)
			return nil
		}, err
	}
}

// sizeText writes n bytes as the DSN may give it, in the largest unit that
// keeps it exact.
func sizeText(n int) string {
	s := bytesize.Format(int64(n))
	if p, err := bytesize.Parse(s); err != nil || p != int64(n) {
		return strconv.Itoa(n) + "B"
	}
	return s
}

// paramDetail is a DSN value's fault that the generic "want <form>" does not
// make plain; applyDSN puts it in the error.
type paramDetail string

func (d paramDetail) Error() string { return string(d) }

// parseSwitch reads on/off, true/false, 1/0, any case.
func parseSwitch(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return strconv.ParseBool(v)
}

// splitList reads comma-separated names, trimming spaces around each. An
// empty value is no name; an empty item (",,", or a comma at an end) is a
// mistake rather than a name to skip.
func splitList(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	out := strings.Split(v, ",")
	for i, f := range out {
		if out[i] = strings.TrimSpace(f); out[i] == "" {
			return nil, paramDetail(fmt.Sprintf("item %d of %d is empty (two commas in a row, or a comma at an end)", i+1, len(out)))
		}
	}
	return out, nil
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
		shown := v
		if p.secret {
			shown = redactURL(v)
		}
		if !ok {
			known := make([]string, 0, len(dsnParams))
			for k := range dsnParams {
				known = append(known, k)
			}
			slices.Sort(known)
			return &ConfigError{Param: name, Value: shown, Err: fmt.Errorf("auditpg: unknown DSN parameter %s; the auditpg_* parameters are: %s", name, strings.Join(known, ", "))}
		}
		if p.pool && !poolAllowed {
			return &ConfigError{Param: name, Value: shown, Err: fmt.Errorf("auditpg: DSN parameter %s sets the pool, which sql.Open cannot apply; open with auditpg.Open(dsn) instead, or call db.SetMaxOpenConns and friends", name)}
		}
		opt, err := p.option(v)
		if err == nil {
			err = opt(c)
		}
		if err != nil {
			var d paramDetail
			if errors.As(err, &d) {
				return &ConfigError{Param: name, Value: shown, Err: fmt.Errorf("auditpg: DSN parameter %s=%q: %s; want %s", name, shown, d, p.form)}
			}
			return &ConfigError{Param: name, Value: shown, Err: fmt.Errorf("auditpg: DSN parameter %s=%q: want %s", name, shown, p.form)}
		}
	}
	return nil
}

// redactURL is a URL with its password replaced by xxxxx; a value that
// does not parse as a URL is not shown at all.
func redactURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "<not a URL>"
	}
	return u.Redacted()
}

// validate checks what no single parameter or option can: it runs once,
// after the DSN and every option in code are applied.
func (c *config) validate() error {
	if (c.redis.addr != "" || c.cache.Redis.Client != nil) && c.cache.Mode == CacheOff {
		return &ConfigError{Err: errors.New("auditpg: a Redis tier (auditpg_redis, WithRedis, WithRedisClient) is given with the result cache off (auditpg_cache=off, WithCacheMode(CacheOff)); want the cache on, or no Redis")}
	}
	if c.cache.MaxEntryBytes > c.cache.MaxBytes {
		e := &ConfigError{Err: fmt.Errorf("auditpg: the largest cached entry, %s (auditpg_cache_max_entry, WithCacheMaxEntry), is larger than the whole cache, %s (auditpg_cache_size, WithCacheSize); want a max entry of at most the cache size: lower the max entry or raise the size",
			sizeText(c.cache.MaxEntryBytes), sizeText(c.cache.MaxBytes))}
		switch {
		case c.cacheMaxEntryDSN != "":
			e.Param, e.Value = "auditpg_cache_max_entry", c.cacheMaxEntryDSN
		case c.cacheSizeDSN != "":
			e.Param, e.Value = "auditpg_cache_size", c.cacheSizeDSN
		}
		return e
	}
	return nil
}

// CacheMode says which reads the result cache considers.
type CacheMode = resultcache.Mode

const (
	// CacheOff turns the cache off: no lookups, no invalidation work.
	CacheOff = resultcache.Off
	// CacheExplicit, the default, caches a read when its context says so
	// (WithCache) or its SQL carries a /* auditpg:cache */ hint.
	CacheExplicit = resultcache.Explicit
	// CacheTables caches every cacheable read of the tables listed with
	// WithCacheTables (and, as in CacheExplicit, reads that ask).
	CacheTables = resultcache.Tables
	// CacheAll caches every cacheable read.
	CacheAll = resultcache.All
)

// WithCache returns a context whose reads the cache may serve and fill,
// with entries living ttl (0: the configured default), whatever the cache
// mode other than off. Every safety rule still applies: a read that is not
// cacheable is run as usual.
func WithCache(ctx context.Context, ttl time.Duration) context.Context {
	return resultcache.WithCache(ctx, ttl)
}

// NoCache returns a context whose reads always go to the server.
func NoCache(ctx context.Context) context.Context { return resultcache.NoCache(ctx) }

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}
