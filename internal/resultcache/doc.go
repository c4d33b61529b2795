// Package resultcache is the driver's result cache: it decides which reads
// may be served from memory, keys them by everything that changes what the
// same SQL returns, stores them in BigCache, and invalidates them by table
// on every write. The interceptor of each connection talks to it through a
// Session (Lookup before a read; a Fill fed with the rows of a miss;
// AfterStatement and EndTransaction after a statement and a transaction).
//
// One concept a file:
//
//	config.go       Mode, Config, and the per-query context (WithCache, NoCache)
//	cache.go        Cache: the BigCache store, its hot set, and a read of both
//	policy.go       which reads the configuration selects, and bypass reasons
//	session.go      Session: one connection's lookups, writes and transaction
//	catalog.go      what only the server knows: scope, tables, functions
//	generations.go  per-table generations, bumped by writes, and whether anything was stored under them
//	key.go          the full key, its 128-bit hash and the store key
//	flight.go       one fill per key at a time; results known too large
//	fill.go         a miss captured as it is read, stored when closed
//	encoding.go     values, for the key and for entries
//	columns.go      an entry's column section and the connection's memo of it
//	entry.go        an entry's header, its checks, and its decoding
//	replay.go       an entry replayed as driver.Rows
//	hot.go          entries read back, kept decoded
//	types.go        the registry of column scan types
//	stats.go        the cache's counters and their snapshot
//	feed.go         other processes' changes: received, bypass while the feed is down, drop all when up
//	redis.go        the shared Redis tier: versions, lookups, writes, breaker, coverage, worth
//
// What it guarantees: no result is served inside a transaction or cached
// from one; once a write through the driver returns (or its transaction
// commits), no reader sees the older result, whether the write succeeded
// or failed (it may have committed part way); a relation it cannot name
// makes a read uncacheable and a write invalidate everything; nothing
// volatile, temporary, catalog, view or row-level-secured (unless allowed)
// is cached; the key holds the session's scope (server, database, user,
// role, search_path and the settings that change how values print). With
// a feed (UseFeed), no entry filled before a change another process
// committed is served once the change is received, and while the feed is
// down no read is served at all.
package resultcache
