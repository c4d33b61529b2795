package resultcache

import "time"

// join registers the caller as the one filling hash, or returns the
// channel to wait on when another caller is already filling it. (The
// channel is made when a first caller waits: most fills have none.) It
// does neither when hash's result is remembered as one the cache cannot
// keep, and says so: one lock for both, since every miss asks both.
func (c *Cache) join(hash keyHash, now time.Time) (wait chan struct{}, leader, unfillable bool) {
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

func (c *Cache) leave(hash keyHash) {
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
func (c *Cache) rememberUnfillable(hash keyHash, until time.Time) {
	c.flightMu.Lock()
	if len(c.unfillable) >= maxUnfillable {
		clear(c.unfillable)
	}
	c.unfillable[hash] = until
	c.flightMu.Unlock()
}
