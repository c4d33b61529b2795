package sqlclass

import (
	"sync"
)

const (
	memoMaxText  = 64 << 10 // longer texts are classified each time, not kept
	memoMaxBytes = 32 << 20 // SQL bytes kept, both generations together
)

// Memo memoizes Classify per SQL text. It keeps two generations of
// at most max/2 texts each: when the current one fills up it becomes the
// old one, and a hit in the old one moves back to the current one. Texts
// used often stay; the rest age out without any bookkeeping per hit.
type Memo struct {
	half     int
	mu       sync.RWMutex
	cur, old map[string]*Statement
	curBytes int
}

// NewMemo returns a Memo that remembers about max texts (at least 2).
func NewMemo(max int) *Memo {
	half := max / 2
	if half < 1 {
		half = 1
	}
	return &Memo{half: half, cur: make(map[string]*Statement, half)}
}

// Classify returns Classify(sql), from memory when it can. The result is
// shared: callers must not modify it.
func (c *Memo) Classify(sql string) *Statement {
	c.mu.RLock()
	st, hit := c.cur[sql]
	if !hit {
		st = c.old[sql]
	}
	c.mu.RUnlock()
	switch {
	case hit:
		return st
	case st == nil && len(sql) > memoMaxText:
		return Classify(sql)
	case st == nil:
		st = Classify(sql)
	}
	c.mu.Lock()
	if _, ok := c.cur[sql]; !ok {
		if len(c.cur) >= c.half || c.curBytes+len(sql) > memoMaxBytes/2 {
			c.old, c.cur, c.curBytes = c.cur, make(map[string]*Statement, c.half), 0
		}
		c.cur[sql] = st
		c.curBytes += len(sql)
	}
	c.mu.Unlock()
	return st
}
