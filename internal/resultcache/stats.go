package resultcache

import (
	"errors"
	"sync/atomic"
)

// Stats are the result cache's figures in a Snapshot. The counters count
// since the last reset; Entries, HeldBytes, CapacityBytes and MaxBytes are
// the cache as it is.
type Stats struct {
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
	// Evictions counts the entries the store dropped for room or age,
	// stale ones too: an entry a write made stale stays until its space is
	// needed.
	Evictions int64 `json:"evictions"`
	// Invalidations counts the writes (or Invalidate calls) that made at
	// least one stored entry stale; UncachedInvalidations those that found
	// nothing cached from their tables. A write that races a fill may count
	// as an invalidation though the fill was then not stored.
	Invalidations         int64 `json:"invalidations"`
	UncachedInvalidations int64 `json:"uncached_invalidations"`
	// Entries counts the entries in the store, stale ones included until
	// their space is needed, and HeldBytes their bytes.
	Entries   int   `json:"entries"`
	HeldBytes int64 `json:"held_bytes"`
	// CapacityBytes is what the store has allocated for entries (it grows,
	// up to its share of MaxBytes, the configured size of the cache).
	CapacityBytes int     `json:"capacity_bytes"`
	MaxBytes      int     `json:"max_bytes"`
	HitRatio      float64 `json:"hit_ratio"`
	// Feed is the state of the feed of other processes' changes: off,
	// up, or down (reads then bypass, counted under "change feed down").
	// FeedReceived counts the changes it delivered, FeedPublished the
	// invalidations of this process handed to the others (FeedPending of
	// them are not sent yet), FeedResyncs the
	// times it came up (each drops every entry: changes may have been
	// missed before) and FeedDowns the times it was lost.
	Feed          FeedState `json:"feed"`
	FeedReceived  int64     `json:"feed_received"`
	FeedPublished int64     `json:"feed_published"`
	FeedPending   int       `json:"feed_pending"`
	FeedResyncs   int64     `json:"feed_resyncs"`
	FeedDowns     int64     `json:"feed_downs"`
	// Redis is the shared tier's figures; nil when there is none. Its hits
	// count in Hits too (a Redis hit is a hit: no call to the server).
	Redis *RedisStats `json:"redis,omitempty"`
}

// Stats returns the cache's figures.
func (c *Cache) Stats() *Stats {
	s := &Stats{
		Mode:                  c.cfg.Mode.String(),
		Hits:                  c.stats.hits.Load(),
		Misses:                c.stats.misses.Load(),
		Fills:                 c.stats.fills.Load(),
		RejectedFills:         c.stats.rejected.Load(),
		Evictions:             c.stats.evictions.Load(),
		Invalidations:         c.stats.invalidations.Load(),
		UncachedInvalidations: c.stats.uncachedInvalidations.Load(),
		Entries:               c.store.Len(),
		HeldBytes:             c.stats.heldBytes.Load(),
		CapacityBytes:         c.store.Capacity(),
		MaxBytes:              c.cfg.MaxBytes,
		Bypasses:              map[string]int64{},
		Feed:                  c.feedState(),
		FeedReceived:          c.feed.received.Load(),
		FeedPublished:         c.feed.published.Load(),
		FeedResyncs:           c.feed.resyncs.Load(),
		FeedDowns:             c.feed.downs.Load(),
	}
	if c.feed.pending != nil {
		s.FeedPending = c.feed.pending()
	}
	if c.redis != nil {
		s.Redis = c.redis.snapshot()
	}
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

// ResetStats sets the counters to zero; entries held are kept.
func (c *Cache) ResetStats() {
	for _, n := range []*atomic.Int64{&c.stats.hits, &c.stats.misses, &c.stats.fills, &c.stats.rejected,
		&c.stats.evictions, &c.stats.invalidations, &c.stats.uncachedInvalidations,
		&c.feed.received, &c.feed.published, &c.feed.resyncs, &c.feed.downs} {
		n.Store(0)
	}
	if c.redis != nil {
		c.redis.resetStats()
	}
	c.stats.mu.Lock()
	clear(c.stats.bypasses)
	c.stats.mu.Unlock()
}

var errNotCached = errors.New("auditpg: not cached")

// HotLen counts the entries kept decoded, read back recently.
func (c *Cache) HotLen() int { return c.hot.len() }
