package auditpg

import (
	"errors"
	"maps"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/resultcache"
	"github.com/jackc/pgx/v5"
)

// fuzzDSNBase is a DSN pgx parses without connecting anywhere.
const fuzzDSNBase = "postgres://u@127.0.0.1:5432/db"

// TestOptionBounds: every numeric option accepts its upper bound and
// refuses one past it, with an error naming the call and the range.
func TestOptionBounds(t *testing.T) {
	for _, tc := range []struct {
		at   []Option // at the bound: accepted
		past Option
		want []string // in the error of past
	}{
		{[]Option{WithMaxFingerprints(maxFingerprintsLimit)}, WithMaxFingerprints(maxFingerprintsLimit + 1), []string{"WithMaxFingerprints(1000001)", "at least 1 and at most 1000000"}},
		{[]Option{WithSlowSamples(maxSlowSamplesLimit)}, WithSlowSamples(1_000_000_000_000), []string{"WithSlowSamples(1000000000000)", "at most 100000"}},
		{[]Option{WithCacheSize(resultcache.MaxBytes)}, WithCacheSize(resultcache.MaxBytes + 1), []string{"WithCacheSize(68719476737)", "at most 64GB"}},
		{[]Option{WithCacheSize(resultcache.MaxBytes), WithCacheMaxEntry(resultcache.MaxEntryBytes)}, WithCacheMaxEntry(resultcache.MaxEntryBytes + 1), []string{"WithCacheMaxEntry(536870913)", "at most 512MB"}},
		{[]Option{WithCacheTTL(resultcache.MaxTTL)}, WithCacheTTL(resultcache.MaxTTL + 1), []string{"WithCacheTTL(24h0m0.000000001s)", "at most 24h0m0s"}},
		{[]Option{WithConnectRetry(maxRetryAttemptsLimit, maxRetryDelayLimit)}, WithConnectRetry(maxRetryAttemptsLimit+1, 0), []string{"WithConnectRetry(101, 0s)", "1 to 100 attempts"}},
		{nil, WithConnectRetry(1, maxRetryDelayLimit+time.Second), []string{"WithConnectRetry(1, 1m1s)", "a delay from 0 to 1m0s"}},
		{[]Option{WithMaxOpenConns(maxConnsLimit)}, WithMaxOpenConns(maxConnsLimit + 1), []string{"WithMaxOpenConns(10001)", "0 (unlimited) to 10000"}},
		{[]Option{WithMaxIdleConns(maxConnsLimit)}, WithMaxIdleConns(maxConnsLimit + 1), []string{"WithMaxIdleConns(10001)", "0 to 10000"}},
		{[]Option{WithConnMaxIdleTime(maxDurationLimit)}, WithConnMaxIdleTime(maxDurationLimit + time.Second), []string{"WithConnMaxIdleTime(24h0m1s)", "0 (no limit) to 24h0m0s"}},
		{[]Option{WithConnMaxLifetime(maxDurationLimit)}, WithConnMaxLifetime(maxDurationLimit + time.Second), []string{"WithConnMaxLifetime(24h0m1s)", "0 (no limit) to 24h0m0s"}},
		{[]Option{WithSlowQueryThreshold(maxDurationLimit)}, WithSlowQueryThreshold(maxDurationLimit + time.Second), []string{"WithSlowQueryThreshold(24h0m1s)", "at most 24h0m0s"}},
	} {
		if tc.at != nil {
			c, err := NewConnector(fuzzDSNBase, tc.at...)
			if err != nil {
				t.Errorf("%s at its bound: %v", tc.want[0], err)
			} else {
				c.Close()
			}
		}
		_, err := NewConnector(fuzzDSNBase, tc.past)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Param != "" {
			t.Errorf("%s: error %#v, want a *ConfigError for an option", tc.want[0], err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not say %q", err, w)
			}
		}
	}
}

// TestPoolParamBounds: the pool's DSN parameters, which sql.Open refuses
// whatever their value, are bounded on NewConnector's path.
func TestPoolParamBounds(t *testing.T) {
	for _, tc := range []struct{ param, value, want string }{
		{"auditpg_max_open_conns", "10001", "an integer from 0 (unlimited) to 10000"},
		{"auditpg_max_idle_conns", "10001", "an integer from 0 to 10000"},
		{"auditpg_conn_max_idle_time", "25h", "at most 24h"},
		{"auditpg_conn_max_lifetime", "25h", "at most 24h"},
	} {
		_, err := NewConnector(fuzzDSNBase + "?" + tc.param + "=" + queryEscape(tc.value))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Param != tc.param || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%s: error %v, want a *ConfigError naming it and saying %q", tc.param, tc.value, err, tc.want)
		}
	}
}

// FuzzDSN: whatever two auditpg_* parameters say, NewConnector (or
// sql.Open's path, which refuses the pool parameters) never panics; it
// either fails with a *ConfigError naming one of them, or makes a connector
// whose every setting is within its bounds and which allocated about what
// one with the defaults does.
func FuzzDSN(f *testing.F) {
	values := []string{"", "0", "1", "-1", "+1", " 1 ", "100", "10000", "10001", "100000", "100001",
		"1000000", "1000001", "1000000000000", "9223372036854775807", "99999999999999999999", "1e3", "0x10", "NaN",
		"0s", "1ns", "-1s", "1s", "1m", "61s", "24h", "24h0m0.000000001s", "2562047h", "9999999999h",
		"1B", "1kB", "1MB", "1.5MB", "512MB", "513MB", "64GB", "65GB", "1TB", "8388607TB", "1mb",
		"on", "off", "TRUE", "all", "tables", "a,b", " a , b ", ",", "a,,b", "\x01", "é"}
	names := slices.Sorted(maps.Keys(dsnParams))
	for _, name := range names {
		for _, v := range values {
			f.Add(name, v, "", "", false)
		}
	}
	f.Add("auditpg_slow_samples", "1000000000000", "", "", true)
	f.Add("auditpg_cache_size", "1MB", "auditpg_cache_max_entry", "2MB", false)
	f.Add("auditpg_cache_size", "64GB", "auditpg_cache_max_entry", "512MB", false)
	f.Add("auditpg_cache_size", "2GB", "auditpg_cache_max_entry", "1GB", true)
	f.Add("auditpg_retry_attempts", "100", "auditpg_retry_delay", "1m", false)
	f.Add("auditpg_max_open_conns", "10000", "auditpg_conn_max_lifetime", "24h", true)
	f.Add("auditpg_bogus", "1", "auditpg_cache", "all", false)
	f.Add("auditpg_redis", "redis://u:pw@127.0.0.1:1/0", "auditpg_redis_timeout", "1s", false)
	f.Add("auditpg_redis", "redis://u:pw@h:1/x", "auditpg_redis_prefix", "a:b", false)

	f.Fuzz(func(t *testing.T, name1, value1, name2, value2 string, sqlOpen bool) {
		var query []string
		var keys []string
		for _, p := range [][2]string{{name1, value1}, {name2, value2}} {
			if p[0] != "" {
				k := "auditpg_" + strings.TrimPrefix(p[0], "auditpg_")
				query = append(query, queryEscape(k)+"="+queryEscape(p[1]))
				keys = append(keys, k)
			}
		}
		dsn := fuzzDSNBase + "?" + strings.Join(query, "&")
		pc, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Skip("pgx refuses the DSN itself:", err)
		}
		params := pc.RuntimeParams // the values as pgx read them, which auditpg takes

		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var c *Connector
		if sqlOpen {
			c, err = newConnector(dsn, false)
		} else {
			c, err = NewConnector(dsn)
		}
		runtime.ReadMemStats(&after)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("%s: error %#v, want a *ConfigError", dsn, err)
			}
			want := params[ce.Param]
			if dsnParams[ce.Param].secret {
				want = redactURL(want) // a password is never shown
			}
			if !slices.Contains(keys, ce.Param) || ce.Value != want {
				t.Fatalf("%s: error %#v, want a *ConfigError naming one of %q and its value", dsn, err, keys)
			}
			return
		}
		defer c.Close()
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
			t.Errorf("%s: the connector took %d MB to make", dsn, grew>>20)
		}
		cfg := c.cfg
		for _, b := range []struct {
			name      string
			v, lo, hi int64
		}{
			{"max fingerprints", int64(cfg.stats.maxFingerprints), 1, maxFingerprintsLimit},
			{"slow samples", int64(cfg.stats.maxSlowSamples), 1, maxSlowSamplesLimit},
			{"slow sample ring", int64(cap(c.stats.slow)), 1, defaultMaxSlowSamples},
			{"slow threshold", int64(cfg.stats.slowThreshold), 0, int64(maxDurationLimit)},
			{"retry attempts", int64(cfg.retryAttempts), 1, maxRetryAttemptsLimit},
			{"retry delay", int64(cfg.retryDelay), 0, int64(maxRetryDelayLimit)},
			{"max open conns", int64(cfg.pool.maxOpen), 0, maxConnsLimit},
			{"max idle conns", int64(cfg.pool.maxIdle), 0, maxConnsLimit},
			{"conn max idle time", int64(cfg.pool.maxIdleTime), 0, int64(maxDurationLimit)},
			{"conn max lifetime", int64(cfg.pool.maxLifetime), 0, int64(maxDurationLimit)},
			{"cache size", int64(cfg.cache.MaxBytes), 1 << 20, resultcache.MaxBytes},
			{"cache max entry", int64(cfg.cache.MaxEntryBytes), 1, min(int64(cfg.cache.MaxBytes), resultcache.MaxEntryBytes)},
			{"cache ttl", int64(cfg.cache.TTL), 1, int64(resultcache.MaxTTL)},
			{"redis timeout", int64(cfg.cache.Redis.Timeout), 0, int64(resultcache.MaxRedisTimeout)},
		} {
			if b.v < b.lo || b.v > b.hi {
				t.Errorf("%s: %s %d, want %d to %d", dsn, b.name, b.v, b.lo, b.hi)
			}
		}
	})
}

// queryEscape escapes s for a DSN's query, a space as %20: pgx reads a + as
// itself.
func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
