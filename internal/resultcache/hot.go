package resultcache

import "sync"

// hotSet keeps entries that were read back from BigCache decoded, so that
// the hits that follow cost a map lookup instead of BigCache's copy of the
// entry and a decode. It holds a sixteenth of the configured size (BigCache
// the rest); its entries are checked exactly as BigCache's are (expiry,
// generations, full key), so it can only be less complete than BigCache,
// never wronger. Past its share it drops entries at random.
type hotSet struct {
	shards [16]hotShard
	max    int // bytes per shard
}

type hotShard struct {
	mu    sync.RWMutex
	m     map[keyHash]*decoded
	bytes int
}

// hotShare is the part of the configured cache size the hot set takes.
const hotShare = 16

func newHotSet(maxBytes int) *hotSet {
	h := &hotSet{max: maxBytes / len(hotSet{}.shards)}
	for i := range h.shards {
		h.shards[i].m = map[keyHash]*decoded{}
	}
	return h
}

// The hash is 16 bytes of a good hash: its first byte picks the shard.
func (h *hotSet) shard(hash *keyHash) *hotShard { return &h.shards[hash[0]%16] }

func (h *hotSet) get(hash *keyHash) *decoded {
	if h.max == 0 { // a cache too small to spare the hot set any room
		return nil
	}
	s := h.shard(hash)
	s.mu.RLock()
	d := s.m[*hash]
	s.mu.RUnlock()
	return d
}

// put keeps d under hash unless it would take more than a quarter of its
// shard.
func (h *hotSet) put(hash *keyHash, d *decoded) {
	if d.size > h.max/4 {
		return
	}
	s, k := h.shard(hash), *hash
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[k]; ok {
		delete(s.m, k)
		s.bytes -= old.size
	}
	for k, v := range s.m { // map order: a random victim
		if s.bytes+d.size <= h.max {
			break
		}
		delete(s.m, k)
		s.bytes -= v.size
	}
	s.m[k] = d
	s.bytes += d.size
}

// drop forgets d, found stale, unless another entry has replaced it.
func (h *hotSet) drop(hash *keyHash, d *decoded) {
	s, k := h.shard(hash), *hash
	s.mu.Lock()
	if s.m[k] == d {
		delete(s.m, k)
		s.bytes -= d.size
	}
	s.mu.Unlock()
}

// clear forgets every entry.
func (h *hotSet) clear() {
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.bytes = 0
		s.mu.Unlock()
	}
}

// len counts the entries held.
func (h *hotSet) len() int {
	n := 0
	for i := range h.shards {
		h.shards[i].mu.Lock()
		n += len(h.shards[i].m)
		h.shards[i].mu.Unlock()
	}
	return n
}
