package resultcache

import (
	"context"
	"strings"
	"sync/atomic"
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

func (c *Cache) gen(table string) *atomic.Uint64 {
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
func (c *Cache) generations(dst []uint64, gens []*atomic.Uint64) []uint64 {
	dst = append(dst, c.global.Load())
	for _, g := range gens {
		dst = append(dst, g.Load())
	}
	return dst
}

// genCounters returns the generation counters of tables, for a verdict to
// keep: a counter, once made, lives as long as the cache.
func (c *Cache) genCounters(tables []string) []*atomic.Uint64 {
	gens := make([]*atomic.Uint64, len(tables))
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
// under older generations are then misses.
func (c *Cache) invalidateLocal(ctx context.Context, tables []string, all bool) {
	if all {
		c.global.Add(1)
	} else {
		for _, t := range tables {
			c.gen(t).Add(1)
		}
	}
	c.stats.invalidations.Add(1)
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
