package auditpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/allegro/bigcache/v3"
	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/jackc/pgx/v5"
)

// This file is the result cache: the policy that selects a query, the
// checks that make serving it safe, its key, the BigCache store with each
// entry's expiry and table generations, the row encoding and replay, and the
// invalidation of tables on writes. The interceptor calls it; DESIGN.md's
// invariants are what it guarantees.

// CacheMode says which reads the result cache considers.
type CacheMode uint8

const (
	// CacheOff turns the cache off: no lookups, no invalidation work.
	CacheOff CacheMode = iota
	// CacheExplicit, the default, caches a read when its context says so
	// (WithCache) or its SQL carries a /* auditpg:cache */ hint.
	CacheExplicit
	// CacheTables caches every cacheable read of the tables listed with
	// WithCacheTables (and, as in CacheExplicit, reads that ask).
	CacheTables
	// CacheAll caches every cacheable read.
	CacheAll
)

var cacheModeNames = [...]string{CacheOff: "off", CacheExplicit: "explicit", CacheTables: "tables", CacheAll: "all"}

func (m CacheMode) String() string {
	if int(m) < len(cacheModeNames) {
		return cacheModeNames[m]
	}
	return fmt.Sprintf("CacheMode(%d)", m)
}

func parseCacheMode(s string) (CacheMode, error) {
	for m, name := range cacheModeNames {
		if s == name {
			return CacheMode(m), nil
		}
	}
	return 0, fmt.Errorf("want off, explicit, tables or all")
}

// maxCacheTTL bounds every entry's life: BigCache drops entries older than
// its one life window, which is set to this.
const maxCacheTTL = 24 * time.Hour

type cacheConfig struct {
	mode          CacheMode
	ttl           time.Duration   // default per-entry time to live
	maxBytes      int             // hard limit of the store
	maxEntryBytes int             // a larger result is not cached
	tables        map[string]bool // CacheTables: table names, as written and unqualified
	rlsAllowed    map[string]bool // tables with row-level security that may be cached
}

func defaultCacheConfig() cacheConfig {
	return cacheConfig{mode: CacheExplicit, ttl: 300 * time.Second, maxBytes: 100 << 20, maxEntryBytes: 1 << 20}
}

// ---- options ----

// WithCacheMode selects which reads the result cache considers (default
// CacheExplicit). DSN: auditpg_cache=off|explicit|tables|all.
func WithCacheMode(m CacheMode) Option {
	return func(c *config) error {
		if m > CacheAll {
			return fmt.Errorf("auditpg: WithCacheMode(%d): want CacheOff, CacheExplicit, CacheTables or CacheAll", m)
		}
		c.cache.mode = m
		return nil
	}
}

// WithCacheTTL sets how long a cached result lives when the query does not
// say (default 300s, at most 24h). DSN: auditpg_cache_ttl.
func WithCacheTTL(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 || d > maxCacheTTL {
			return fmt.Errorf("auditpg: WithCacheTTL(%v): want more than 0 and at most %v", d, maxCacheTTL)
		}
		c.cache.ttl = d
		return nil
	}
}

// WithCacheSize sets the cache's hard limit in bytes (default 100 MB):
// BigCache holds the encoded entries in fifteen sixteenths of it, rounded
// down to whole megabytes, and the entries read back most recently are
// kept decoded in the rest. DSN: auditpg_cache_size=100MB.
func WithCacheSize(bytes int) Option {
	return func(c *config) error {
		if bytes < 1<<20 {
			return fmt.Errorf("auditpg: WithCacheSize(%d): want at least 1 MB (1048576 bytes)", bytes)
		}
		c.cache.maxBytes = bytes
		return nil
	}
}

// WithCacheMaxEntry sets the largest result cached, encoded, in bytes
// (default 1 MB); a larger one is read from the server every time. DSN:
// auditpg_cache_max_entry.
func WithCacheMaxEntry(bytes int) Option {
	return func(c *config) error {
		if bytes < 1 {
			return fmt.Errorf("auditpg: WithCacheMaxEntry(%d): want at least 1 byte", bytes)
		}
		c.cache.maxEntryBytes = bytes
		return nil
	}
}

// WithCacheTables selects CacheTables mode with the tables whose cacheable
// reads are cached (names as in the SQL, or unqualified). DSN:
// auditpg_cache_tables=audit_preset,settings.
func WithCacheTables(tables ...string) Option {
	return func(c *config) error {
		if len(tables) == 0 {
			return errors.New("auditpg: WithCacheTables(): name at least one table")
		}
		c.cache.mode, c.cache.tables = CacheTables, setOf(tables)
		return nil
	}
}

// WithCacheRLSTables allows caching reads of these tables although they
// have row-level security: only when their policies depend on nothing but
// the user and role, which are part of the key. DSN: auditpg_cache_rls_tables.
func WithCacheRLSTables(tables ...string) Option {
	return func(c *config) error {
		c.cache.rlsAllowed = setOf(tables)
		return nil
	}
}

func setOf(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// ---- what the caller asks: context and hint ----

type cacheCtxKey struct{}

type cacheRequest struct {
	ttl    time.Duration
	bypass bool
}

// WithCache returns a context whose reads the cache may serve and fill,
// with entries living ttl (0: the configured default), whatever the cache
// mode other than off. Every safety rule still applies: a read that is not
// cacheable is run as usual.
func WithCache(ctx context.Context, ttl time.Duration) context.Context {
	return context.WithValue(ctx, cacheCtxKey{}, cacheRequest{ttl: ttl})
}

// NoCache returns a context whose reads always go to the server.
func NoCache(ctx context.Context) context.Context {
	return context.WithValue(ctx, cacheCtxKey{}, cacheRequest{bypass: true})
}

// ---- the cache ----

// cache is one connector's result cache.
type cache struct {
	cfg   cacheConfig
	store *bigcache.BigCache
	hot   *hotSet // entries read back, decoded
	seeds [2]maphash.Seed

	global atomic.Uint64 // bumped by a write whose tables are unknown
	gensMu sync.RWMutex
	gens   map[string]*atomic.Uint64 // per unqualified table name

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

	observers []InvalidationObserver
	stats     cacheCounters
}

type cacheCounters struct {
	hits, misses, fills, rejected, invalidations atomic.Int64
	// added counts the entries stored that replaced none, from the entries
	// the store held at the last reset: those no longer there were evicted
	// (for room or age). BigCache's eviction callback would copy out every
	// entry it drops, as large as the one being stored, to count it.
	added    atomic.Int64
	mu       sync.RWMutex
	bypasses map[string]*atomic.Int64 // by reason
}

// relInfo is what the catalog says of one table name.
type relInfo struct {
	found     bool
	unsafe    string   // why reads of it are not cached, "" when they may be
	ancestors []string // the tables it inherits from (partitioned or not), unqualified
}

func newCache(cfg cacheConfig, observers []Observer) *cache {
	shards := 16
	for shards > 1 && cfg.maxBytes/shards < 4*cfg.maxEntryBytes {
		shards /= 2 // each shard must hold several of the largest entries
	}
	bc := bigcache.DefaultConfig(maxCacheTTL)
	bc.Shards = shards
	bc.CleanWindow = 0 // no goroutine: expired entries go when space is needed
	// BigCache counts whole megabytes: it gets what the hot set leaves,
	// rounded down, and the hot set at most its share.
	bc.HardMaxCacheSize = max(1, (cfg.maxBytes-cfg.maxBytes/hotShare)>>20)
	hotBytes := max(0, min(cfg.maxBytes/hotShare, cfg.maxBytes-bc.HardMaxCacheSize<<20))
	bc.MaxEntrySize = 512
	bc.MaxEntriesInWindow = 64 * shards
	bc.Verbose = false
	bc.Hasher = storeHasher{}
	c := &cache{
		cfg:        cfg,
		hot:        newHotSet(hotBytes),
		seeds:      [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		gens:       map[string]*atomic.Uint64{},
		rels:       map[string]relInfo{},
		funcs:      map[string]byte{},
		scopes:     map[string]uint64{},
		flights:    map[keyHash]chan struct{}{},
		unfillable: map[keyHash]time.Time{},
	}
	c.stats.bypasses = map[string]*atomic.Int64{}
	store, err := bigcache.New(context.Background(), bc)
	if err != nil {
		// BigCache refuses only shard counts that are not powers of two
		// and the like, which the lines above never build.
		panic("auditpg: result cache: " + err.Error())
	}
	c.store = store
	for _, o := range observers {
		if io, ok := o.(InvalidationObserver); ok {
			c.observers = append(c.observers, io)
		}
	}
	return c
}

// ---- policy ----

// bypass reasons: a small fixed set, for statistics and spans; the
// classifier's own reasons (FOR UPDATE, volatile function now()...) come
// under "not cacheable".
const (
	bypassContext     = "NoCache context"
	bypassTx          = "in a transaction"
	bypassSession     = "session state changed"
	bypassStatement   = sqlclass.NotCacheable
	bypassFunction    = "function not immutable"
	bypassTable       = "table not cacheable"
	bypassArgs        = "argument type"
	bypassLookupError = "catalog lookup failed"
	bypassUnfillable  = "result too large to cache"
)

// selected says whether the policy wants st cached, and for how long.
func (c *cache) selected(ctx context.Context, st *Statement) (ttl time.Duration, ok bool, bypass bool) {
	if req, has := ctx.Value(cacheCtxKey{}).(cacheRequest); has {
		if req.bypass {
			return 0, false, true
		}
		return c.ttl(req.ttl), true, false
	}
	if st.CacheHint {
		return c.ttl(st.CacheTTL), true, false
	}
	switch c.cfg.mode {
	case CacheAll:
		return c.cfg.ttl, true, false
	case CacheTables:
		if len(st.Reads) == 0 {
			return 0, false, false
		}
		for _, t := range st.Reads {
			if !c.cfg.tables[t] && !c.cfg.tables[baseName(t)] {
				return 0, false, false
			}
		}
		return c.cfg.ttl, true, false
	}
	return 0, false, false
}

func (c *cache) ttl(d time.Duration) time.Duration {
	if d <= 0 {
		d = c.cfg.ttl
	}
	return min(d, maxCacheTTL)
}

// maxBypassReasons bounds the reasons counted apart (they name tables and
// functions); the others are counted together.
const maxBypassReasons = 64

// countBypass counts under a read lock: the reasons seen are few, and
// every connection bypasses for the same ones.
func (c *cache) countBypass(reason string) {
	st := &c.stats
	st.mu.RLock()
	n := st.bypasses[reason]
	st.mu.RUnlock()
	if n == nil {
		st.mu.Lock()
		if n = st.bypasses[reason]; n == nil {
			if len(st.bypasses) >= maxBypassReasons {
				reason = "other"
			}
			if n = st.bypasses[reason]; n == nil {
				n = new(atomic.Int64)
				st.bypasses[reason] = n
			}
		}
		st.mu.Unlock()
	}
	n.Add(1)
}

// ---- generations ----

// baseName is a table name without its schema: generations are kept per
// unqualified name, so that audit_log and public.audit_log meet (a write
// to s1.t also invalidates reads of s2.t: safe, rarely costly).
func baseName(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

func (c *cache) gen(table string) *atomic.Uint64 {
	name := baseName(table)
	c.gensMu.RLock()
	g := c.gens[name]
	c.gensMu.RUnlock()
	if g != nil {
		return g
	}
	c.gensMu.Lock()
	defer c.gensMu.Unlock()
	if g = c.gens[name]; g == nil {
		g = new(atomic.Uint64)
		c.gens[name] = g
	}
	return g
}

// generations appends the current global generation, then each table's.
func (c *cache) generations(dst []uint64, gens []*atomic.Uint64) []uint64 {
	dst = append(dst, c.global.Load())
	for _, g := range gens {
		dst = append(dst, g.Load())
	}
	return dst
}

// genCounters returns the generation counters of tables, for a verdict to
// keep: a counter, once made, lives as long as the cache.
func (c *cache) genCounters(tables []string) []*atomic.Uint64 {
	gens := make([]*atomic.Uint64, len(tables))
	for i, t := range tables {
		gens[i] = c.gen(t)
	}
	return gens
}

// invalidate bumps the generations of tables (and of the partitioned
// tables above them), or the global one when all is set. Entries filled
// under older generations are then misses.
func (c *cache) invalidate(ctx context.Context, tables []string, all bool) {
	if all {
		c.global.Add(1)
	} else {
		for _, t := range tables {
			c.gen(t).Add(1)
		}
	}
	c.stats.invalidations.Add(1)
	for _, o := range c.observers {
		if all {
			o.Invalidated(ctx, nil)
		} else {
			o.Invalidated(ctx, tables)
		}
	}
}

// forgetCatalog drops what the catalog said of tables and functions, after
// DDL through the driver: a table may have gained row-level security, a
// partition a parent, a function another volatility.
func (c *cache) forgetCatalog() {
	c.metaMu.Lock()
	clear(c.rels)
	clear(c.funcs)
	c.epoch.Add(1) // and every connection's verdicts
	c.metaMu.Unlock()
}

// ---- the key ----

// appendKey appends the full key: the session scope's number, the SQL text
// and the typed arguments. It returns false when an argument's type has no
// exact encoding, and the read is then not cached.
func appendKey(b []byte, scopeID uint64, query string, args []driver.NamedValue) ([]byte, bool) {
	b = binary.AppendUvarint(b, scopeID)
	b = appendString(b, query)
	b = binary.AppendUvarint(b, uint64(len(args)))
	for i := range args {
		if s, ok := args[i].Value.(string); ok && sqlclass.IsTimeWord(s) {
			return b, false // 'now' read as a timestamp: a new value each time
		}
		b = appendString(b, args[i].Name)
		var ok bool
		if b, ok = appendValue(b, args[i].Value); !ok {
			return b, false
		}
	}
	return b, true
}

// keyHash is a key's 128-bit hash: what the hot set and the single flight
// know an entry by.
type keyHash [16]byte

// storeKey is what BigCache knows an entry by: the key's hash, then a hash
// of the generations it was filled under. A read after a write asks for a
// key that is not there (a map lookup) instead of having BigCache copy out
// the entry the write made stale, only to throw it away; the stale entry
// waits for its space to be needed, as an overwritten one would.
type storeKey [len(keyHash{}) + 8]byte

// str is k as BigCache takes it, valid while k is.
func (k *storeKey) str() string { return unsafe.String(&k[0], len(k)) }

// storeHasher gives BigCache a store key's own bits as its 64-bit hash:
// the key is made of hashes already, which BigCache's FNV would hash again
// on every lookup and store. (BigCache keeps the key beside its entry and
// compares it on a read, so two keys alike in these bits never mix up.)
type storeHasher struct{}

func (storeHasher) Sum64(k string) uint64 {
	if len(k) != len(storeKey{}) {
		return maphash.String(storeHasherSeed, k) // no key of ours
	}
	b := unsafe.Slice(unsafe.StringData(k), len(k))
	return binary.LittleEndian.Uint64(b) ^ binary.LittleEndian.Uint64(b[len(keyHash{}):])
}

var storeHasherSeed = maphash.MakeSeed()

// appendGensHash appends the generations' hash that completes a storeKey.
// Two vectors that hash alike only cost a copy: the entry's own
// generations are compared on every read.
func appendGensHash(b []byte, gens []uint64) []byte {
	h := uint64(14695981039346656037) // FNV-1a's offset and prime, a word at a time
	for _, g := range gens {
		h = (h ^ g) * 1099511628211
	}
	return binary.LittleEndian.AppendUint64(b, h)
}

// appendHash appends the key's 128-bit hash to it (in the same buffer, so
// that a lookup allocates nothing for it).
func (c *cache) appendHash(key []byte) []byte {
	b := binary.LittleEndian.AppendUint64(key, maphash.Bytes(c.seeds[0], key))
	return binary.LittleEndian.AppendUint64(b, maphash.Bytes(c.seeds[1], key))
}

// ---- column types ----

func (c *cache) typeIndex(t reflect.Type) uint32 {
	if i, ok := c.findType(t); ok {
		return i
	}
	c.typesMu.Lock()
	defer c.typesMu.Unlock()
	if i, ok := c.findType(t); ok {
		return i
	}
	var types []reflect.Type
	if p := c.types.Load(); p != nil {
		types = *p
	}
	types = append(slices.Clip(types), t)
	c.types.Store(&types)
	return uint32(len(types) - 1)
}

func (c *cache) findType(t reflect.Type) (uint32, bool) {
	if p := c.types.Load(); p != nil {
		for i, u := range *p {
			if u == t {
				return uint32(i), true
			}
		}
	}
	return 0, false
}

func (c *cache) typeAt(i uint32) reflect.Type {
	if p := c.types.Load(); p != nil && int(i) < len(*p) {
		return (*p)[i]
	}
	return reflect.TypeFor[any]()
}

// ---- single flight ----

// join registers the caller as the one filling hash, or returns the
// channel to wait on when another caller is already filling it. (The
// channel is made when a first caller waits: most fills have none.) It
// does neither when hash's result is remembered as one the cache cannot
// keep, and says so: one lock for both, since every miss asks both.
func (c *cache) join(hash keyHash, now time.Time) (wait chan struct{}, leader, unfillable bool) {
	c.flightMu.Lock()
	defer c.flightMu.Unlock()
	if until, ok := c.unfillable[hash]; ok {
		if now.Before(until) {
			return nil, false, true
		}
		delete(c.unfillable, hash)
	}
	ch, ok := c.flights[hash]
	if !ok {
		c.flights[hash] = nil
		return nil, true, false
	}
	if ch == nil {
		ch = make(chan struct{})
		c.flights[hash] = ch
	}
	return ch, false, false
}

func (c *cache) leave(hash keyHash) {
	c.flightMu.Lock()
	ch := c.flights[hash]
	delete(c.flights, hash)
	c.flightMu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// maxUnfillable bounds the keys remembered as too large to cache.
const maxUnfillable = 1024

// rememberUnfillable notes, until the entry would have expired, that the
// result of hash cannot be cached: identical reads then neither capture it
// nor wait for one another.
func (c *cache) rememberUnfillable(hash keyHash, until time.Time) {
	c.flightMu.Lock()
	if len(c.unfillable) >= maxUnfillable {
		clear(c.unfillable)
	}
	c.unfillable[hash] = until
	c.flightMu.Unlock()
}

// ---- statistics ----

// CacheStats are the result cache's figures in a Snapshot.
type CacheStats struct {
	Mode   string `json:"mode"`
	Hits   int64  `json:"hits"`
	Misses int64  `json:"misses"`
	// Bypasses counts the reads the policy selected that were run without
	// the cache, by reason.
	Bypasses map[string]int64 `json:"bypasses"`
	// Fills counts the results stored; RejectedFills the misses whose
	// result was not stored (too large, not read to the end, an error, or
	// a write to one of its tables between its start and its storing).
	Fills         int64 `json:"fills"`
	RejectedFills int64 `json:"rejected_fills"`
	// Evictions counts entries dropped for room or age, stale ones too:
	// an entry a write made stale stays until its space is needed. (It is
	// derived, entries stored less entries held: when two identical fills
	// race, or an entry goes as its replacement is filled, it may be off
	// by one.)
	Evictions     int64 `json:"evictions"`
	Invalidations int64 `json:"invalidations"`
	// Entries counts the entries in the store, stale ones included until
	// their space is needed.
	Entries  int     `json:"entries"`
	Bytes    int     `json:"bytes"`
	HitRatio float64 `json:"hit_ratio"`
}

func (c *cache) snapshot() *CacheStats {
	s := &CacheStats{
		Mode:          c.cfg.mode.String(),
		Hits:          c.stats.hits.Load(),
		Misses:        c.stats.misses.Load(),
		Fills:         c.stats.fills.Load(),
		RejectedFills: c.stats.rejected.Load(),
		Invalidations: c.stats.invalidations.Load(),
		Entries:       c.store.Len(),
		Bytes:         c.store.Capacity(),
		Bypasses:      map[string]int64{},
	}
	s.Evictions = max(0, c.stats.added.Load()-int64(s.Entries))
	c.stats.mu.RLock()
	for k, v := range c.stats.bypasses {
		s.Bypasses[k] = v.Load()
	}
	c.stats.mu.RUnlock()
	if n := s.Hits + s.Misses; n > 0 {
		s.HitRatio = float64(s.Hits) / float64(n)
	}
	return s
}

func (c *cache) resetStats() {
	for _, n := range []*atomic.Int64{&c.stats.hits, &c.stats.misses, &c.stats.fills, &c.stats.rejected, &c.stats.invalidations} {
		n.Store(0)
	}
	c.stats.added.Store(int64(c.store.Len()))
	c.stats.mu.Lock()
	clear(c.stats.bypasses)
	c.stats.mu.Unlock()
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
	c.cache.invalidate(context.Background(), tables, len(tables) == 0)
	return nil
}

// Close releases the connector's result cache; sql.DB.Close calls it.
func (c *Connector) Close() error {
	if c.cache == nil {
		return nil
	}
	c.cache.hot.clear()
	return c.cache.store.Close()
}

var errNotCached = errors.New("auditpg: not cached")

// ---- encoding helpers ----

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errNotCached
	}
	return v, b[n:], nil
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, b, err := readUvarint(b)
	if err != nil || uint64(len(b)) < n {
		return nil, nil, errNotCached
	}
	return b[:n:n], b[n:], nil
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

// ---- one connection's side: eligibility, lookup, fill, invalidation ----

// connCache is the cache state of one connection.
type connCache struct {
	// verdicts remembers, per classified statement, whether its reads may
	// be cached on this connection and the tables whose generations guard
	// them (those read and the partitioned tables above them), until DDL
	// makes the cache forget the catalog (epoch).
	verdicts map[*Statement]verdict
	epoch    uint64
	// rels remembers relation's answers on this connection, as verdicts.
	rels      map[string]relInfo
	relsEpoch uint64

	scope          string     // database, server, user, role, search_path; "" until asked
	scopeID        uint64     // the scope's number in the cache: what keys hold
	keyBuf         []byte     // where lookups build their key and its hash
	columns        columnMemo // the column sections of results read here
	sessionChanged bool       // SET, SET ROLE, set_config, a temporary table...: bypass for good
	pending        []string
	pendingAll     bool // a write in the open transaction could not name its tables
	pendingAny     bool
	pendingDDL     bool // the open transaction ran DDL
}

// inTransaction tells from the server's own status when there is one, so
// that a BEGIN sent as SQL counts too.
func (ic *interceptor) inTransaction() bool {
	if ic.pgx != nil {
		return ic.pgx.Conn().PgConn().TxStatus() != 'I'
	}
	return ic.inTx
}

// lookup decides how the cache answers a read: a hit (replay rows), a miss
// to fill, a bypass, or no part at all. It sets ev.Cache and ev.CacheReason.
func (ic *interceptor) lookup(ctx context.Context, r *rows) (hit bool, f *fill, err error) {
	c, ev := ic.c.cache, &r.ev
	st := ev.Statement
	ttl, selected, noCache := c.selected(ctx, st)
	reason := ""
	var tables []*atomic.Uint64
	switch {
	case noCache:
		reason = bypassContext
	case !selected:
		return false, nil, nil
	case !st.Cacheable && !st.UserFunctionsOnly:
		reason = st.BypassReason()
	case ic.inTransaction():
		reason = bypassTx
	case ic.cc.sessionChanged:
		reason = bypassSession
	case ic.pgx == nil:
		reason = bypassLookupError
	default:
		var v verdict
		v, reason = ic.verdict(ctx, st)
		tables = v.gens
	}
	if reason != "" {
		ev.Cache, ev.CacheReason = CacheBypass, reason
		c.countBypass(reason)
		return false, nil, nil
	}

	// The key is built in the connection's own buffer: database/sql makes
	// one call at a time on a connection, and nothing keeps the buffer past
	// this call (a fill copies the key into its entry). One that a large
	// argument grew is not kept for the connection's life.
	if cap(ic.cc.keyBuf) > 64<<10 {
		ic.cc.keyBuf = nil
	}
	key, ok := appendKey(ic.cc.keyBuf[:0], ic.cc.scopeID, ev.Query, ev.Args)
	if !ok {
		ic.cc.keyBuf = key
		ev.Cache, ev.CacheReason = CacheBypass, bypassArgs
		c.countBypass(bypassArgs)
		return false, nil, nil
	}
	var gensArr [8]uint64
	gens := c.generations(gensArr[:0], tables)
	buf := c.appendHash(key)
	var hash keyHash
	copy(hash[:], buf[len(key):])
	sk := ic.storeKeyAfter(buf, len(key), gens)
	hit, inStore := c.get(&r.replay, &hash, sk, ev.Start, gens, key)
	if hit {
		ev.Cache = CacheHit
		c.stats.hits.Add(1)
		return true, nil, nil
	}
	wait, leader, unfillable := c.join(hash, ev.Start)
	if unfillable {
		ev.Cache, ev.CacheReason = CacheBypass, bypassUnfillable
		c.countBypass(bypassUnfillable)
		return false, nil, nil
	}
	if !leader {
		// Another caller is running this very query: wait for its fill,
		// within our own deadline, then look again.
		select {
		case <-wait:
		case <-ctx.Done():
			return false, nil, ctx.Err()
		}
		gens = c.generations(gens[:0], tables)
		sk = ic.storeKeyAfter(buf, len(key), gens)
		if hit, inStore = c.get(&r.replay, &hash, sk, time.Now(), gens, key); hit {
			ev.Cache = CacheHit
			c.stats.hits.Add(1)
			return true, nil, nil
		}
	}
	ev.Cache = CacheMiss
	c.stats.misses.Add(1)
	return false, c.newFill(hash, sk, tables, gens, key, ev.Start.Add(ttl), leader, inStore), nil
}

// storeKeyAfter completes, after the key and its hash in buf, the store key
// for the generations gens, keeps the buffer as the connection's, and
// returns the store key as a string over it, for BigCache (a string over
// an array of ours would move it to the heap).
func (ic *interceptor) storeKeyAfter(buf []byte, keyLen int, gens []uint64) string {
	buf = appendGensHash(buf[:keyLen+len(keyHash{})], gens)
	ic.cc.keyBuf = buf
	return unsafe.String(&buf[keyLen], len(storeKey{}))
}

// get sets dst to replay a valid entry, from the hot set (by the key's
// hash) or else from BigCache (by sk, the store key as a string; the entry is
// then kept hot), and reports a hit; inStore says whether BigCache held an
// entry under the store key, valid or not (a fill then replaces it). (The
// replay is the query's rows object's own field: a hit allocates no rows
// of its own.)
func (c *cache) get(dst *cachedRows, hash *keyHash, sk string, now time.Time, gens []uint64, key []byte) (hit, inStore bool) {
	t := now.UnixNano()
	if d := c.hot.get(hash); d != nil {
		if d.valid(t, gens, key) {
			dst.replay(c, d)
			return true, true
		}
		c.hot.drop(hash, d) // written since, or too old
	}
	e, err := c.store.Get(sk)
	if err != nil {
		return false, false
	}
	stored, body, ok := validEntry(e, t, gens, key)
	if !ok {
		return false, true
	}
	d, err := c.decode(e, stored, body, gens)
	if err != nil {
		return false, true
	}
	c.hot.put(hash, d)
	dst.replay(c, d)
	return true, true
}

// verdict is what the server said of one statement's reads.
type verdict struct {
	reason string           // why it bypasses the cache; "" when it may be cached
	gens   []*atomic.Uint64 // the generations that guard its entries: of the tables read and their parents
}

// maxVerdicts bounds a connection's verdicts; past it they start over.
const maxVerdicts = 1024

// verdict returns the remembered verdict for st, or asks the server.
func (ic *interceptor) verdict(ctx context.Context, st *Statement) (verdict, string) {
	cc, epoch := &ic.cc, ic.c.cache.epoch.Load()
	if cc.epoch != epoch || len(cc.verdicts) >= maxVerdicts {
		cc.verdicts, cc.epoch = nil, epoch
	}
	if v, ok := cc.verdicts[st]; ok {
		return v, v.reason
	}
	v, err := ic.eligible(ctx, st)
	if err != nil {
		return v, bypassLookupError // not remembered: the next call asks again
	}
	if ic.c.cache.epoch.Load() != epoch {
		return v, v.reason // DDL ran meanwhile: use it once, do not remember it
	}
	if cc.verdicts == nil {
		cc.verdicts = make(map[*Statement]verdict)
	}
	cc.verdicts[st] = v
	return v, v.reason
}

// eligible checks what only the server knows: the session's scope, the
// volatility of the functions called, and the tables read (temporary,
// system, views and foreign tables, row-level security, the partitioned
// tables above them).
func (ic *interceptor) eligible(ctx context.Context, st *Statement) (verdict, error) {
	c := ic.c.cache
	if ic.cc.scope == "" {
		if err := ic.askScope(ctx); err != nil {
			return verdict{}, err
		}
	}
	for _, fn := range st.Functions {
		if syntaxFunctions[fn] {
			continue
		}
		v, err := ic.volatility(ctx, fn)
		if err != nil {
			return verdict{}, err
		}
		if v != 'i' {
			return verdict{reason: bypassFunction + ": " + fn}, nil
		}
	}
	tables := slices.Clone(st.Reads)
	for _, t := range st.Reads {
		rel, err := ic.relation(ctx, t)
		if err != nil {
			return verdict{}, err
		}
		if rel.unsafe != "" && !(rel.unsafe == unsafeRLS && (c.cfg.rlsAllowed[t] || c.cfg.rlsAllowed[baseName(t)])) {
			return verdict{reason: bypassTable + ": " + t + " (" + rel.unsafe + ")"}, nil
		}
		tables = append(tables, rel.ancestors...)
	}
	return verdict{gens: c.genCounters(tables)}, nil
}

// syntaxFunctions look like calls but are SQL syntax, absent from pg_proc,
// and depend on their arguments only.
var syntaxFunctions = map[string]bool{"coalesce": true, "nullif": true, "greatest": true, "least": true, "trim": true}

// askScope reads what, beside the SQL and its arguments, decides what a
// read returns on this connection. The connector fixes the server and the
// database; the user, role and search_path come from the session.
func (ic *interceptor) askScope(ctx context.Context) error {
	// The settings that change how values print as text are part of it
	// too: SELECT ts::text differs by TimeZone.
	var scope string
	err := ic.pgx.Conn().QueryRow(ctx, `SELECT concat_ws(E'\x01', session_user, current_user, current_database(),
		current_setting('search_path'), current_setting('TimeZone'), current_setting('DateStyle'),
		current_setting('IntervalStyle'), current_setting('extra_float_digits'), current_setting('lc_monetary'),
		current_setting('bytea_output'))`).Scan(&scope)
	if err != nil {
		return err
	}
	t := ic.c.Target()
	ic.cc.scope = t.Host + "\x00" + strconv.Itoa(int(t.Port)) + "\x00" + scope
	ic.cc.scopeID = ic.c.cache.scopeID(ic.cc.scope)
	return nil
}

// maxScopes bounds the scopes numbered; past it the numbering starts over
// with new numbers, and the entries under the old ones are no longer found.
const maxScopes = 4096

// scopeID numbers a scope, so that keys hold a number instead of its text.
// A number is never given to two scopes.
func (c *cache) scopeID(scope string) uint64 {
	c.scopesMu.Lock()
	defer c.scopesMu.Unlock()
	if id, ok := c.scopes[scope]; ok {
		return id
	}
	if len(c.scopes) >= maxScopes {
		clear(c.scopes)
	}
	c.lastScope++
	c.scopes[scope] = c.lastScope
	return c.lastScope
}

const (
	unsafeRLS     = "row-level security"
	unsafeTemp    = "temporary"
	unsafeCatalog = "system catalog"
	unsafeKind    = "view or foreign table"
	unsafeMissing = "not found"
)

// memoGet and memoPut read and fill a catalog memo (tables, functions)
// shared by the connections of one scope. A session that changed (SET
// search_path, a temporary table) may see other objects under the same
// names: it neither uses nor fills the memo. An answer read before DDL was
// forgotten (epoch) is not remembered past it: it may predate the DDL's
// commit.
func memoGet[V any](ic *interceptor, m map[string]V, key string) (V, bool) {
	var v V
	if ic.cc.sessionChanged {
		return v, false
	}
	c := ic.c.cache
	c.metaMu.Lock()
	v, ok := m[key]
	c.metaMu.Unlock()
	return v, ok
}

func memoPut[V any](ic *interceptor, m map[string]V, key string, v V, epoch uint64) {
	if ic.cc.sessionChanged {
		return
	}
	c := ic.c.cache
	c.metaMu.Lock()
	if c.epoch.Load() == epoch {
		m[key] = v
	}
	c.metaMu.Unlock()
}

// relation returns what the catalog says of the table named t, as the
// session's search_path resolves it.
func (ic *interceptor) relation(ctx context.Context, t string) (relInfo, error) {
	c, cc := ic.c.cache, &ic.cc
	epoch := c.epoch.Load()
	// The connection's own memo first: a write's lookup then allocates
	// nothing (the shared memo's key is built from the scope).
	if cc.relsEpoch != epoch || len(cc.rels) >= maxVerdicts {
		cc.rels, cc.relsEpoch = nil, epoch
	}
	if rel, ok := cc.rels[t]; ok && !cc.sessionChanged {
		return rel, nil
	}
	rel, err := ic.lookupRelation(ctx, t, epoch)
	if err == nil && !cc.sessionChanged && c.epoch.Load() == epoch {
		if cc.rels == nil {
			cc.rels = make(map[string]relInfo)
		}
		cc.rels[t] = rel
	}
	return rel, err
}

// lookupRelation answers relation from the memo shared by the scope's
// connections, or from the server.
func (ic *interceptor) lookupRelation(ctx context.Context, t string, epoch uint64) (relInfo, error) {
	c := ic.c.cache
	memo := ic.cc.scope + "\x00" + t
	if rel, ok := memoGet(ic, c.rels, memo); ok {
		return rel, nil
	}
	var rel relInfo
	var kind, persistence string
	var rls bool
	var schema string
	err := ic.pgx.Conn().QueryRow(ctx, `
		SELECT c.relkind::text, c.relpersistence::text, c.relrowsecurity, n.nspname,
		       ARRAY(WITH RECURSIVE up(oid) AS (
		                 SELECT inhparent FROM pg_inherits WHERE inhrelid = c.oid
		                 UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.oid)
		             SELECT p.relname::text FROM up JOIN pg_class p ON p.oid = up.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, pgx.Identifier(strings.Split(t, ".")).Sanitize(),
	).Scan(&kind, &persistence, &rls, &schema, &rel.ancestors)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		rel.unsafe = unsafeMissing
	case err != nil:
		return relInfo{}, err
	default:
		rel.found = true
		switch {
		case persistence == "t":
			rel.unsafe = unsafeTemp
		case schema == "pg_catalog" || schema == "information_schema" || strings.HasPrefix(schema, "pg_"):
			rel.unsafe = unsafeCatalog
		case kind != "r" && kind != "p" && kind != "m":
			rel.unsafe = unsafeKind // a view hides the tables it reads from invalidation
		case rls:
			rel.unsafe = unsafeRLS
		}
	}
	memoPut(ic, c.rels, memo, rel, epoch)
	return rel, nil
}

// volatility returns the worst provolatile ('i' < 's' < 'v') of the
// functions named fn that the session can call; 'v' when there is none.
func (ic *interceptor) volatility(ctx context.Context, fn string) (byte, error) {
	c := ic.c.cache
	memo, epoch := ic.cc.scope+"\x00"+fn, c.epoch.Load()
	if v, ok := memoGet(ic, c.funcs, memo); ok {
		return v, nil
	}
	schema, name := "", fn
	if i := strings.LastIndexByte(fn, '.'); i >= 0 {
		schema, name = fn[:i], fn[i+1:]
	}
	var worst string
	err := ic.pgx.Conn().QueryRow(ctx, `
		SELECT coalesce(max(p.provolatile::text COLLATE "C"), 'v')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE p.proname = $1
		  AND CASE WHEN $2 = '' THEN n.nspname = ANY (current_schemas(true)) ELSE n.nspname = $2 END`,
		name, schema).Scan(&worst)
	if err != nil {
		return 0, err
	}
	v := worst[0] // 'i' < 's' < 'v' in byte order, so max is the worst
	memoPut(ic, c.funcs, memo, v, epoch)
	return v, nil
}

// afterStatement runs once a statement is over (an exec, or a query when
// its rows close): it notes session changes and invalidates what the
// statement wrote, at once outside a transaction, at commit inside one.
func (ic *interceptor) afterStatement(ctx context.Context, st *Statement, err error) {
	c := ic.c.cache
	if c == nil || st == nil {
		return
	}
	if err != nil && sqlState(err) != "" {
		return // the server refused the statement: it changed nothing
	}
	if st.ChangesSession || st.CreatesTemp {
		ic.cc.sessionChanged = true
	}
	if st.Kind == KindTx {
		ic.txStatement(ctx, st)
		return
	}
	if st.ReadOnly {
		return
	}
	tables, all := st.Writes, st.WritesUnknown
	if st.Kind == KindDDL {
		// DDL may drop or detach a partition, or change what the catalog
		// said of a table: forget it all, now and again at commit.
		c.forgetCatalog()
		all = true
		ic.cc.pendingDDL = ic.cc.pendingDDL || ic.inTransaction()
	}
	if all && st.UserFunctionsOnly && ic.pgx != nil && !ic.inTransaction() && ic.cc.scope != "" {
		all = !ic.functionsCannotWrite(ctx, st.Functions)
	}
	if !all && len(tables) == 0 {
		return // a read that only looked like it might write
	}
	if all && !ic.cc.sessionChanged {
		// DO, CALL, a volatile function or an unknown statement may have
		// changed the session unseen (set_config, SET in a function): ask.
		ic.recheckScope(ctx)
	}
	if ic.inTransaction() {
		ic.cc.pending = append(ic.cc.pending, tables...)
		ic.cc.pendingAll = ic.cc.pendingAll || all
		ic.cc.pendingAny = true
		return
	}
	ic.invalidate(ctx, tables, all)
}

// recheckScope asks the session's scope again, after a statement that may
// have changed it unseen; a change, or no answer, ends caching on this
// connection.
func (ic *interceptor) recheckScope(ctx context.Context) {
	before := ic.cc.scope
	if before == "" || ic.pgx == nil {
		return // not asked yet: it will be asked as it is then
	}
	if err := ic.askScope(ctx); err != nil || ic.cc.scope != before {
		ic.cc.sessionChanged = true
	}
}

// txStatement handles BEGIN, COMMIT, ROLLBACK and the like sent as SQL.
func (ic *interceptor) txStatement(ctx context.Context, st *Statement) {
	fp := strings.ToUpper(st.Fingerprint)
	switch {
	case st.Operation == "COMMIT" && strings.Contains(fp, " PREPARED"):
		// A prepared transaction, of this session or another, committed:
		// what it wrote is unknown here.
		ic.c.cache.forgetCatalog()
		ic.c.cache.invalidate(ctx, nil, true)
	case st.Operation == "PREPARE TRANSACTION":
		ic.endTransaction(ctx, false) // its writes land at COMMIT PREPARED
	case strings.HasSuffix(fp, " AND CHAIN"):
		// The transaction ended and a new one began at once.
		ic.endTransaction(ctx, st.Operation == "COMMIT" || st.Operation == "END")
	case !ic.inTransaction():
		ic.endTransaction(ctx, st.Operation != "ROLLBACK" && st.Operation != "ABORT")
	}
}

// functionsCannotWrite is true when every function is STABLE or IMMUTABLE,
// which PostgreSQL forbids to modify the database.
func (ic *interceptor) functionsCannotWrite(ctx context.Context, fns []string) bool {
	for _, fn := range fns {
		if v, err := ic.volatility(ctx, fn); err != nil || v == 'v' {
			return false
		}
	}
	return true
}

// endTransaction invalidates what the transaction wrote when it committed
// (or may have), and forgets it when it rolled back.
func (ic *interceptor) endTransaction(ctx context.Context, committed bool) {
	cc := &ic.cc
	if committed && cc.pendingDDL {
		ic.c.cache.forgetCatalog() // lookups made while the DDL was uncommitted saw the old catalog
	}
	if committed && cc.pendingAny {
		ic.invalidate(ctx, cc.pending, cc.pendingAll)
	}
	cc.pending, cc.pendingAll, cc.pendingAny, cc.pendingDDL = cc.pending[:0], false, false, false
}

// invalidate bumps the tables written and the partitioned tables above
// them. When a table cannot be looked up, everything is invalidated.
func (ic *interceptor) invalidate(ctx context.Context, tables []string, all bool) {
	c := ic.c.cache
	if all || len(tables) == 0 {
		c.invalidate(ctx, nil, true)
		return
	}
	names := tables
	if ic.pgx != nil {
		if ic.cc.scope == "" && ic.askScope(ctx) != nil {
			c.invalidate(ctx, nil, true)
			return
		}
		for _, t := range tables {
			rel, err := ic.relation(ctx, t)
			if err != nil || !rel.found || rel.unsafe == unsafeKind {
				// Unknown, or a view (its base tables are not named) or a
				// foreign table: invalidate everything.
				c.invalidate(ctx, nil, true)
				return
			}
			if len(rel.ancestors) > 0 {
				names = append(slices.Clip(names), rel.ancestors...) // a copy: never the Statement's
			}
		}
	}
	c.invalidate(ctx, names, false)
}
