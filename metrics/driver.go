package metrics

import (
	"context"

	"github.com/auditpg/auditpg"
)

// driver: the auditpg driver's own statistics (auditpg.Stats), nothing
// when db was opened with another driver.
func (c *Collector) driver(_ context.Context, s *sink) error {
	st, err := auditpg.Stats(c.db)
	if err != nil {
		return nil // another driver: it keeps no statistics of ours
	}
	t := st.Totals
	for _, op := range []struct {
		name string
		n    int64
	}{{"query", t.Queries}, {"exec", t.Execs}, {"prepare", t.Prepares}, {"begin", t.Begins},
		{"commit", t.Commits}, {"rollback", t.Rollbacks}, {"ping", t.Pings}} {
		s.add(famCalls, float64(op.n), op.name)
	}
	s.add(famErrors, float64(t.Errors))
	s.add(famSlow, float64(t.Slow))
	s.add(famRetries, float64(t.Retries))
	p := st.Pool
	s.add(famPoolConns, float64(p.Idle), "idle")
	s.add(famPoolConns, float64(p.InUse), "in_use")
	s.add(famPoolMax, float64(p.MaxOpenConnections))
	s.add(famPoolWaits, float64(p.WaitCount))
	s.add(famPoolWaitSeconds, p.WaitDuration.Seconds())
	s.add(famConnects, float64(p.Connects))
	s.add(famConnectFailures, float64(p.ConnectFailures))

	cs := st.Cache
	if cs == nil {
		return nil
	}
	s.add(famCacheHits, float64(cs.Hits))
	s.add(famCacheMisses, float64(cs.Misses))
	for reason, n := range cs.Bypasses {
		s.add(famCacheBypasses, float64(n), reason)
	}
	s.add(famCacheFills, float64(cs.Fills))
	s.add(famCacheRejected, float64(cs.RejectedFills))
	s.add(famCacheEvictions, float64(cs.Evictions))
	s.add(famCacheInval, float64(cs.Invalidations))
	s.add(famCacheEntries, float64(cs.Entries))
	s.add(famCacheHeld, float64(cs.HeldBytes))
	s.add(famCacheMax, float64(cs.MaxBytes))
	for _, state := range []string{"off", "up", "down"} {
		s.add(famFeedState, b2f(string(cs.Feed) == state), state)
	}
	s.add(famFeedReceived, float64(cs.FeedReceived))
	s.add(famFeedPublished, float64(cs.FeedPublished))
	s.add(famFeedPending, float64(cs.FeedPending))
	s.add(famFeedResyncs, float64(cs.FeedResyncs))
	s.add(famFeedDowns, float64(cs.FeedDowns))
	return nil
}
