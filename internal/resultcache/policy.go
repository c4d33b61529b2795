package resultcache

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/auditpg/auditpg/internal/sqlclass"
)

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
	bypassFeedDown    = "change feed down"
)

// selected says whether the policy wants st cached, and for how long.
func (c *Cache) selected(ctx context.Context, st *sqlclass.Statement) (ttl time.Duration, ok bool, bypass bool) {
	if req, has := ctx.Value(ctxKey{}).(request); has {
		if req.bypass {
			return 0, false, true
		}
		return c.ttl(req.ttl), true, false
	}
	if st.CacheHint {
		return c.ttl(st.CacheTTL), true, false
	}
	switch c.cfg.Mode {
	case All:
		return c.cfg.TTL, true, false
	case Tables:
		if len(st.Reads) == 0 {
			return 0, false, false
		}
		for _, t := range st.Reads {
			if !c.cfg.Tables[t] && !c.cfg.Tables[baseName(t)] {
				return 0, false, false
			}
		}
		return c.cfg.TTL, true, false
	}
	return 0, false, false
}

func (c *Cache) ttl(d time.Duration) time.Duration {
	if d <= 0 {
		d = c.cfg.TTL
	}
	return min(d, MaxTTL)
}

// maxBypassReasons bounds the reasons counted apart (they name tables and
// functions); the others are counted together.
const maxBypassReasons = 64

// countBypass counts under a read lock: the reasons seen are few, and
// every connection bypasses for the same ones.
func (c *Cache) countBypass(reason string) {
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
