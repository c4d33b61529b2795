package resultcache

import (
	"context"
	"errors"
	"hash/maphash"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allegro/bigcache/v3"
)

// Cache is one connector's result cache: the BigCache store and its hot
// set, the generations of tables, the single flight, the catalog memo and
// the statistics. Connections reach it through a Session.
type Cache struct {
	cfg   Config
	store *bigcache.BigCache
	hot   *hotSet // entries read back, decoded
	seeds [2]maphash.Seed

	global generation // bumped by a write whose tables are unknown
	gensMu sync.RWMutex
	gens   map[string]*generation // per unqualified table name

	// setMu serialises the storing of entries by the first byte of their
	// key's hash, so that an entry is never replaced without BigCache
	// calling back (held bytes would drift): see Fill.Finish.
	setMu [16]sync.Mutex

	metaMu sync.Mutex
	epoch  atomic.Uint64      // bumped when the catalog is forgotten
	rels   map[string]relInfo // scope + table name -> what the catalog says
	funcs  map[string]byte    // scope + function name -> worst provolatile

	scopesMu  sync.Mutex
	scopes    map[string]uint64 // a session scope -> its number
	lastScope uint64

	flightMu   sync.Mutex
	flights    map[keyHash]chan struct{} // closed when the key's fill ends (nil until someone waits)
	unfillable map[keyHash]time.Time     // until when the key's result is known too large

	colSets     sync.Map     // column section bytes -> *columnSet
	colSetCount atomic.Int64 // entries in colSets

	// types is the ScanType registry (entries store an index), copied on
	// write and read without a lock. pgx answers with a dozen types or so,
	// which a scan finds sooner than a map's hash.
	typesMu sync.Mutex
	types   atomic.Pointer[[]reflect.Type]

	listeners []Listener
	stats     cacheCounters
	feed      feed
	redis     *redisTier // the shared tier; nil when off
}

type cacheCounters struct {
	hits, misses, fills, rejected, evictions atomic.Int64
	// invalidations made at least one stored entry stale;
	// uncachedInvalidations made none (tables nothing was cached from).
	invalidations, uncachedInvalidations atomic.Int64
	// heldBytes is the bytes of the entries BigCache holds: added on
	// storing, taken off when BigCache drops one (evicted or deleted). It
	// is state, not a counter: a reset keeps it.
	heldBytes atomic.Int64
	mu        sync.RWMutex
	bypasses  map[string]*atomic.Int64 // by reason
}

// Listener is told of every invalidation: the tables a write invalidated,
// or none when everything was.
type Listener interface {
	Invalidated(ctx context.Context, tables []string)
}

// New returns a cache configured by cfg that tells listeners of every
// invalidation.
func New(cfg Config, listeners []Listener) *Cache {
	bc, hotBytes := storeConfig(cfg)
	c := &Cache{
		cfg:        cfg,
		hot:        newHotSet(hotBytes),
		seeds:      [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		gens:       map[string]*generation{},
		rels:       map[string]relInfo{},
		funcs:      map[string]byte{},
		scopes:     map[string]uint64{},
		flights:    map[keyHash]chan struct{}{},
		unfillable: map[keyHash]time.Time{},
	}
	c.stats.bypasses = map[string]*atomic.Int64{}
	bc.OnRemoveWithReason = c.removed
	store, err := bigcache.New(context.Background(), bc)
	if err != nil {
		// BigCache refuses only shard counts that are not powers of two
		// and the like, which the lines above never build.
		panic("auditpg: result cache: " + err.Error())
	}
	c.store = store
	c.listeners = listeners
	types := slices.Clone(portableTypes)
	c.types.Store(&types)
	if cfg.Redis.Client != nil {
		c.redis = newRedisTier(c, cfg.Redis)
	}
	return c
}

// storeConfig is BigCache's configuration for cfg, and the bytes left to
// the hot set.
func storeConfig(cfg Config) (bc bigcache.Config, hotBytes int) {
	shards := 16
	for shards > 1 && cfg.MaxBytes/shards < 4*cfg.MaxEntryBytes {
		shards /= 2 // each shard must hold several of the largest entries
	}
	bc = bigcache.DefaultConfig(MaxTTL)
	bc.Shards = shards
	bc.CleanWindow = 0 // no goroutine: expired entries go when space is needed
	// BigCache counts whole megabytes: it gets what the hot set leaves,
	// rounded down, and the hot set at most its share.
	bc.HardMaxCacheSize = max(1, (cfg.MaxBytes-cfg.MaxBytes/hotShare)>>20)
	hotBytes = max(0, min(cfg.MaxBytes/hotShare, cfg.MaxBytes-bc.HardMaxCacheSize<<20))
	bc.MaxEntrySize = 512
	bc.MaxEntriesInWindow = 64 * shards
	bc.Verbose = false
	bc.Hasher = storeHasher{}
	return bc, hotBytes
}

// removed is BigCache's callback for every entry it drops: for room or age
// (an eviction), or deleted by Fill.Finish before its replacement is stored.
// BigCache hands it copies of the key and the entry, which costs a copy of
// each entry dropped, on the path of a fill (after a round trip to the
// server); in exchange the bytes held and the evictions are exact.
func (c *Cache) removed(_ string, entry []byte, reason bigcache.RemoveReason) {
	c.stats.heldBytes.Add(-int64(len(entry)))
	if reason != bigcache.Deleted {
		c.stats.evictions.Add(1)
	}
}

// Invalidate drops the results that read tables (by unqualified name), or
// every result when all is set.
func (c *Cache) Invalidate(ctx context.Context, tables []string, all bool) {
	c.invalidate(ctx, tables, all)
}

// Close releases the store, and stops the shared tier's work (closing
// its client when the driver made it).
func (c *Cache) Close() error {
	c.hot.clear()
	var err error
	if c.redis != nil {
		err = c.redis.close()
	}
	return errors.Join(c.store.Close(), err)
}

// get sets dst to replay a valid entry, from the hot set (by the key's
// hash) or else from BigCache (by sk, the store key as a string; the entry is
// then kept hot), and reports a hit. (The replay is the query's rows
// object's own field: a hit allocates no rows of its own.)
func (c *Cache) get(dst *Rows, hash *keyHash, sk string, now time.Time, gens []uint64, key []byte) bool {
	t := now.UnixNano()
	if d := c.hot.get(hash); d != nil {
		if d.valid(t, gens, key) {
			dst.replay(c, d)
			return true
		}
		c.hot.drop(hash, d) // written since, or too old
	}
	e, err := c.store.Get(sk)
	if err != nil {
		return false
	}
	stored, body, ok := validEntry(e, t, gens, key)
	if !ok {
		return false
	}
	d, err := c.decode(e, stored, body, gens)
	if err != nil {
		return false
	}
	c.hot.put(hash, d)
	dst.replay(c, d)
	return true
}
