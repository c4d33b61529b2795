package resultcache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Mode says which reads the result cache considers.
type Mode uint8

const (
	// Off turns the cache off: no lookups, no invalidation work.
	Off Mode = iota
	// Explicit, the default, caches a read when its context says so
	// (WithCache) or its SQL carries a /* auditpg:cache */ hint.
	Explicit
	// Tables caches every cacheable read of the tables listed with
	// WithCacheTables (and, as in Explicit, reads that ask).
	Tables
	// All caches every cacheable read.
	All
)

var modeNames = [...]string{Off: "off", Explicit: "explicit", Tables: "tables", All: "all"}

func (m Mode) String() string {
	if int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// ParseMode reads a mode by its name, in any case, as the DSN gives it.
func ParseMode(s string) (Mode, error) {
	for m, name := range modeNames {
		if strings.EqualFold(s, name) {
			return Mode(m), nil
		}
	}
	return 0, errors.New("want off, explicit, tables or all")
}

// MaxTTL bounds every entry's life: BigCache drops entries older than
// its one life window, which is set to this.
const MaxTTL = 24 * time.Hour

// MaxBytes and MaxEntryBytes bound a cache's size and its largest entry.
// BigCache indexes the bytes of a shard with 32 bits: New gives each shard
// at most a sixteenth of the store, or, for entries larger than a
// sixty-fourth of it, fewer shards of under eight entries each; both bounds
// keep a shard under 4 GB.
const (
	MaxBytes      = min(64<<30, math.MaxInt)
	MaxEntryBytes = 512 << 20
)

// Config is a cache's configuration; the driver's options fill it in.
type Config struct {
	Mode          Mode
	TTL           time.Duration   // default per-entry time to live
	MaxBytes      int             // hard limit of the store
	MaxEntryBytes int             // a larger result is not cached
	Tables        map[string]bool // mode Tables: table names, as written and unqualified
	RLSAllowed    map[string]bool // tables with row-level security that may be cached
	Redis         RedisConfig     // the shared tier; off while its Client is nil
}

// DefaultConfig is the configuration the driver starts from.
func DefaultConfig() Config {
	return Config{Mode: Explicit, TTL: 300 * time.Second, MaxBytes: 100 << 20, MaxEntryBytes: 1 << 20}
}

type ctxKey struct{}

type request struct {
	ttl    time.Duration
	bypass bool
}

// WithCache returns a context whose reads the cache may serve and fill,
// with entries living ttl (0: the configured default), whatever the cache
// mode other than off. Every safety rule still applies: a read that is not
// cacheable is run as usual.
func WithCache(ctx context.Context, ttl time.Duration) context.Context {
	return context.WithValue(ctx, ctxKey{}, request{ttl: ttl})
}

// NoCache returns a context whose reads always go to the server.
func NoCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, ctxKey{}, request{bypass: true})
}
