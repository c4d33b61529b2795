package resultcache

import (
	"database/sql/driver"
	"slices"
	"sync"
	"sync/atomic"
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
	tables   []*atomic.Uint64
	gens     []uint64 // in gensBuf when they fit
	gensBuf  [8]uint64
	expiry   time.Time
	buf      []byte // header, columns, then rows
	// replaces: BigCache held an entry under the same store key (expired),
	// which storing this one replaces rather than adds to (evictions are
	// counted as the entries added that are no longer there).
	replaces bool
	// unfillable: the result cannot be kept (too large, or a value the
	// encoding does not hold); identical reads skip the cache for a while.
	unfillable bool
	leader     bool // others wait for this fill
}

// fills are recycled: a miss takes one and gives it back once stored.
var fills = sync.Pool{New: func() any { return &Fill{buf: make([]byte, 0, 512)} }}

// newFill starts capturing a miss, with the entry's header.
func (c *Cache) newFill(s *Session, hash keyHash, sk string, tables []*atomic.Uint64, gens []uint64, key []byte, expiry time.Time, leader, replaces bool) *Fill {
	f := fills.Get().(*Fill)
	f.s, f.hash, f.tables, f.expiry, f.leader, f.replaces = s, hash, tables, expiry, leader, replaces
	copy(f.storeKey[:], sk)
	f.gens = append(f.gensBuf[:0], gens...)
	f.buf = appendHeader(f.buf[:0], expiry, gens, key)
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
		var now [8]uint64
		ok = slices.Equal(c.generations(now[:0], f.tables), f.gens)
	} else {
		ok = false
	}
	if f.unfillable {
		c.rememberUnfillable(f.hash, f.expiry)
	}
	if ok && c.store.Set(f.storeKey.str(), f.buf) == nil {
		c.stats.fills.Add(1)
		if !f.replaces {
			c.stats.added.Add(1)
		}
	} else {
		c.stats.rejected.Add(1)
	}
	if f.leader {
		c.leave(f.hash)
	}
	f.release()
}
