package auditpg

import (
	"database/sql/driver"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// fill is a miss being captured for the cache: the entry is encoded as
// the reader reads its rows, and stored when they are closed.
type fill struct {
	hash     keyHash
	storeKey storeKey
	tables   []*atomic.Uint64
	gens     []uint64 // in gensBuf when they fit
	gensBuf  [8]uint64
	expiry   time.Time
	buf      []byte // header, columns, then rows
	complete bool   // the rows were read to the end
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
var fills = sync.Pool{New: func() any { return &fill{buf: make([]byte, 0, 512)} }}

// newFill starts capturing a miss, with the entry's header.
func (c *cache) newFill(hash keyHash, sk string, tables []*atomic.Uint64, gens []uint64, key []byte, expiry time.Time, leader, replaces bool) *fill {
	f := fills.Get().(*fill)
	f.hash, f.tables, f.expiry, f.leader, f.replaces = hash, tables, expiry, leader, replaces
	copy(f.storeKey[:], sk)
	f.gens = append(f.gensBuf[:0], gens...)
	f.buf = appendHeader(f.buf[:0], expiry, gens, key)
	return f
}

// release gives f back, keeping its buffer unless a large result grew it.
func (f *fill) release() {
	buf := f.buf[:0]
	if cap(buf) > 64<<10 {
		buf = nil
	}
	*f = fill{buf: buf}
	fills.Put(f)
}

// started records the columns of the rows a fill captures, read on the
// connection whose memo is given.
func (f *fill) started(c *cache, memo *columnMemo, r driver.Rows) {
	f.buf = memo.appendColumns(c, f.buf, r)
}

// row adds one row; false abandons the fill (too large, or a value the
// entry cannot hold).
func (f *fill) row(c *cache, dest []driver.Value) bool {
	b, ok := appendRow(f.buf, dest)
	f.buf = b
	if !ok || len(b) > c.cfg.maxEntryBytes {
		f.unfillable = true
		return false
	}
	return true
}

// finish stores a complete fill whose tables were not written while it ran,
// and releases whoever waits for it.
func (c *cache) finish(f *fill, ok bool) {
	if ok && f.complete {
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
