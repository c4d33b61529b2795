package resultcache

import (
	"database/sql/driver"
	"slices"
	"sync"
	"time"
)

// Fill is a miss being captured for the cache: the entry is encoded as
// the reader reads its rows (Start, Row), and stored when they are closed
// (Finish). Complete is set when the rows were read to the end.
type Fill struct {
	Complete bool

	s        *Session // the connection whose column memo it uses
	hash     keyHash
	storeKey storeKey
	tables   []*generation
	gens     []uint64 // in gensBuf when they fit
	gensBuf  [8]uint64
	expiry   time.Time
	buf      []byte // header, columns, then rows
	// unfillable: the result cannot be kept (too large, or a value the
	// encoding does not hold); identical reads skip the cache for a while.
	unfillable bool
	leader     bool // others wait for this fill

	// For the shared tier: where the entry's body starts in buf, the
	// statement's fingerprint and the fill's start (what a miss costs), and
	// what writing it to Redis needs (nil: it is not written).
	body    int
	fp      string
	started time.Time
	redis   *redisFill
}

// fills are recycled: a miss takes one and gives it back once stored.
var fills = sync.Pool{New: func() any { return &Fill{buf: make([]byte, 0, 512)} }}

// newFill starts capturing a miss, with the entry's header.
func (c *Cache) newFill(s *Session, hash keyHash, sk string, tables []*generation, gens []uint64, key []byte, expiry time.Time, leader bool) *Fill {
	f := fills.Get().(*Fill)
	f.s, f.hash, f.tables, f.expiry, f.leader = s, hash, tables, expiry, leader
	copy(f.storeKey[:], sk)
	f.gens = append(f.gensBuf[:0], gens...)
	f.buf = appendHeader(f.buf[:0], expiry, gens, key)
	f.body = len(f.buf)
	return f
}

// release gives f back, keeping its buffer unless a large result grew it.
func (f *Fill) release() {
	buf := f.buf[:0]
	if cap(buf) > 64<<10 {
		buf = nil
	}
	*f = Fill{buf: buf}
	fills.Put(f)
}

// Start records the columns of the rows the fill captures.
func (f *Fill) Start(r driver.Rows) {
	f.buf = f.s.columns.appendColumns(f.s.c, f.buf, r)
}

// Row adds one row; false means the fill is abandoned (too large, or a
// value the entry cannot hold): Finish it, and read on uncached.
func (f *Fill) Row(dest []driver.Value) bool {
	b, ok := appendRow(f.buf, dest)
	f.buf = b
	if !ok || len(b) > f.s.c.cfg.MaxEntryBytes {
		f.unfillable = true
		return false
	}
	return true
}

// Finish stores a Complete fill whose tables were not written while it ran
// when ok (the read ended without error), and releases whoever waits for
// it. f must not be used afterwards.
func (f *Fill) Finish(ok bool) {
	c := f.s.c
	if ok && f.Complete {
		// Marked before the check: see markFilled.
		c.global.markFilled(f.gens[0])
		for _, g := range f.tables {
			g.markFilled(f.gens[0])
		}
		var now [8]uint64
		ok = slices.Equal(c.generations(now[:0], f.tables), f.gens)
	} else {
		ok = false
	}
	if f.unfillable {
		c.rememberUnfillable(f.hash, f.expiry)
	}
	if ok && c.storeEntry(f) {
		c.stats.fills.Add(1)
		if c.redis != nil {
			c.redis.observeMiss(f.fp, time.Since(f.started))
			if f.redis != nil {
				c.redis.written(f.redis, f.expiry, f.buf[f.body:])
			}
		}
	} else {
		c.stats.rejected.Add(1)
	}
	if f.leader {
		c.leave(f.hash)
	}
	f.release()
}

// storeEntry stores f's entry. An entry already under its store key (expired,
// or stored by an identical fill) is deleted first, under the key's lock,
// so that BigCache tells removed of it: its Set would replace it silently.
func (c *Cache) storeEntry(f *Fill) bool { return c.storeBytes(f.hash, f.storeKey.str(), f.buf) }

// storeBytes stores the entry e under the store key sk of hash.
func (c *Cache) storeBytes(hash keyHash, sk string, e []byte) bool {
	mu := &c.setMu[hash[0]%uint8(len(c.setMu))]
	mu.Lock()
	defer mu.Unlock()
	c.store.Delete(sk) // ErrEntryNotFound, mostly
	if c.store.Set(sk, e) != nil {
		return false
	}
	c.stats.heldBytes.Add(int64(len(e)))
	return true
}
