package resultcache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/jackc/pgx/v5/pgconn"
)

// feed is what the cache knows of the changes other processes commit:
// whether it hears of them now, and where its own writes are published.
type feed struct {
	on         bool                 // a feed is configured: reads bypass until it is up
	up         atomic.Bool          // the feed hears every change committed from now on
	start      func(*pgconn.Config) // starts the feed, with the configuration of a connection
	started    sync.Once
	settled    chan struct{} // closed at the first FeedUp or FeedFailed
	settleOnce sync.Once
	publish    func(...string) // this process's writes, for the others; may be nil
	pending    func() int      // payloads published and not yet sent; may be nil

	received, published, resyncs, downs atomic.Int64
}

// FeedState is the state of the feed of other processes' changes.
type FeedState string

const (
	FeedOff  FeedState = "off"  // none configured: writes of other processes are not seen
	FeedUp   FeedState = "up"   // every change committed since it came up is received
	FeedDown FeedState = "down" // starting, or lost: reads bypass the cache
)

// UseFeed makes the cache depend on a feed of the changes other processes
// commit. start is called once, with a copy of the configuration of the
// first connection to read through the cache or to write, and must start
// the feed, which then reports with FeedUp, FeedDown and Received; until
// FeedUp, reads bypass the cache. publish, if not nil, is handed the
// payloads (changefeed.Payload, changefeed.All) of every invalidation this
// process makes, from its first; pending, if not nil, counts those not
// sent yet. Call UseFeed before the cache is used.
func (c *Cache) UseFeed(start func(*pgconn.Config), publish func(payloads ...string), pending func() int) {
	c.feed.on, c.feed.start, c.feed.publish, c.feed.pending = true, start, publish, pending
	c.feed.settled = make(chan struct{})
}

// feedStartWait bounds how long the read that starts the feed waits for it
// to come up, rather than bypass the cache.
const feedStartWait = 2 * time.Second

// FeedUp reports that the feed hears every change from now on. What the
// cache holds may predate a change it missed while it was down, so it is
// all dropped, with what the catalog said; then reads are served again.
func (c *Cache) FeedUp() {
	c.forgetCatalog()
	c.invalidateLocalThen(context.Background(), nil, true, c.redis == nil)
	if c.redis != nil {
		c.redis.feedUp() // before the reads resume: Redis's entries too
	}
	c.feed.resyncs.Add(1)
	c.feed.up.Store(true)
	c.feed.settle()
}

// FeedFailed reports that the feed could not come up (it keeps trying):
// reads stop waiting for it and bypass the cache until FeedUp.
func (c *Cache) FeedFailed() { c.feed.settle() }

func (f *feed) settle() { f.settleOnce.Do(func() { close(f.settled) }) }

// FeedDown reports that the feed may miss changes: reads bypass the cache
// until FeedUp.
func (c *Cache) FeedDown() {
	if c.feed.up.Swap(false) {
		c.feed.downs.Add(1)
	}
	if c.redis != nil {
		c.redis.feedDown()
	}
}

// Received invalidates what another process's change, named by a payload
// of the feed, made stale. A payload that cannot be read invalidates
// everything.
func (c *Cache) Received(ctx context.Context, payload string) {
	c.feed.received.Add(1)
	_, table, all, err := changefeed.ParsePayload(payload)
	if err == nil && !all && c.redis != nil && c.redis.barrier(table) {
		return // another process's question, not a change
	}
	if all || err != nil {
		c.forgetCatalog() // DDL elsewhere: a table's security, a function's volatility
		c.invalidateLocal(ctx, nil, true)
		return
	}
	c.invalidateLocal(ctx, []string{table}, false)
}

// feedReady reports whether reads may use the cache as far as the feed is
// concerned. Until the feed's first attempt to come up has succeeded or
// failed, a read waits for it, within ctx and feedStartWait; after that, a
// read never waits: while the feed is down, reads bypass.
func (c *Cache) feedReady(ctx context.Context, s *Session) bool {
	if !c.feed.on {
		return true
	}
	if c.feed.up.Load() {
		return true
	}
	c.startFeed(s)
	select {
	case <-c.feed.settled:
	default:
		t := time.NewTimer(feedStartWait)
		select {
		case <-c.feed.settled:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	return c.feed.up.Load()
}

// startFeed starts the feed, once, with the configuration of s's
// connection.
func (c *Cache) startFeed(s *Session) {
	if c.feed.on && s.pgx != nil {
		c.feed.started.Do(func() { c.feed.start(s.pgx.Conn().Config().Config.Copy()) })
	}
}

// publishInvalidation hands the others what this process invalidated.
func (c *Cache) publishInvalidation(tables []string, all bool) {
	if c.feed.publish == nil {
		return
	}
	c.feed.published.Add(1)
	if all || len(tables) == 0 {
		c.feed.publish(changefeed.All)
		return
	}
	payloads := make([]string, len(tables))
	for i, t := range tables {
		payloads[i] = c.gen(t).payload
	}
	c.feed.publish(payloads...)
}

// feedState is the feed's state for the statistics.
func (c *Cache) feedState() FeedState {
	switch {
	case !c.feed.on:
		return FeedOff
	case c.feed.up.Load():
		return FeedUp
	}
	return FeedDown
}
