package resultcache

import (
	"context"
	"strings"
	"sync/atomic"

	"github.com/auditpg/auditpg/internal/changefeed"
)

// baseName is a table name without its schema: generations are kept per
// unqualified name, so that audit_log and public.audit_log meet (a write
// to s1.t also invalidates reads of s2.t: safe, rarely costly).
func baseName(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// generation is the generation of a table (or the global one), and whether
// an entry was stored under it: so that an invalidation that makes nothing
// stale (a write to a table nothing cached was read from) is told apart.
type generation struct {
	n atomic.Uint64
	// filled is 1 + the global generation under which an entry that reads
	// this table was last stored, since n last moved; 0 when none was. (For
	// the global generation: 1 + itself, when any entry was stored since
	// it moved.)
	filled atomic.Uint64
	// name is the table's (unqualified), "" for the global generation;
	// rsynced is the highest n whose version the shared tier moved in Redis
	// (see redisTier.synced).
	name    string
	rsynced atomic.Uint64
	// payload names the table on the change feed, made once.
	payload string
}

// markFilled records that an entry filled under the global generation
// global is about to be stored. A fill marks before it checks its
// generations, so that no invalidation that made a stored entry stale goes
// uncounted; one that races a fill may be counted though the fill was then
// not stored.
func (g *generation) markFilled(global uint64) {
	for {
		cur := g.filled.Load()
		if cur > global || g.filled.CompareAndSwap(cur, global+1) {
			return
		}
	}
}

func (c *Cache) gen(table string) *generation {
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
		g = &generation{name: name, payload: changefeed.Payload("", name)}
		c.gens[name] = g
	}
	return g
}

// generations appends the current global generation, then each table's.
func (c *Cache) generations(dst []uint64, gens []*generation) []uint64 {
	dst = append(dst, c.global.n.Load())
	for _, g := range gens {
		dst = append(dst, g.n.Load())
	}
	return dst
}

// genCounters returns the generation counters of tables, for a verdict to
// keep: a counter, once made, lives as long as the cache.
func (c *Cache) genCounters(tables []string) []*generation {
	gens := make([]*generation, len(tables))
	for i, t := range tables {
		gens[i] = c.gen(t)
	}
	return gens
}

// invalidate is invalidateLocal for a write of this process, which the
// other processes are then told of (see UseFeed).
func (c *Cache) invalidate(ctx context.Context, tables []string, all bool) {
	c.invalidateLocal(ctx, tables, all)
	c.publishInvalidation(tables, all)
}

// invalidateLocal bumps the generations of tables (and of the partitioned
// tables above them), or the global one when all is set. Entries filled
// under older generations are then misses. It counts as an invalidation
// when an entry had been stored under a generation it moved (and the global
// one has not moved since), else as an invalidation of nothing cached.
func (c *Cache) invalidateLocal(ctx context.Context, tables []string, all bool) {
	c.invalidateLocalThen(ctx, tables, all, true)
}

// invalidateLocalThen is invalidateLocal; with shared unset, the versions
// in Redis are left to the caller (see redisTier.feedUp).
func (c *Cache) invalidateLocalThen(ctx context.Context, tables []string, all, shared bool) {
	staled := false
	if all {
		old := c.global.n.Add(1) - 1
		staled = c.global.filled.Swap(0) == old+1
		if c.redis != nil && shared {
			c.redis.invalidated(&c.global)
		}
	} else {
		for _, t := range tables {
			g := c.gen(t)
			g.n.Add(1)
			if g.filled.Swap(0) == c.global.n.Load()+1 {
				staled = true
			}
			if c.redis != nil {
				c.redis.invalidated(g)
			}
		}
	}
	if staled {
		c.stats.invalidations.Add(1)
	} else {
		c.stats.uncachedInvalidations.Add(1)
	}
	for _, o := range c.listeners {
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
func (c *Cache) forgetCatalog() {
	c.metaMu.Lock()
	clear(c.rels)
	clear(c.funcs)
	c.epoch.Add(1) // and every connection's verdicts
	c.metaMu.Unlock()
}
