package resultcache

import (
	"fmt"
	"testing"
)

// hotHash makes a key hash that lands in shard 0.
func hotHash(i int) *keyHash {
	var h keyHash
	copy(h[:], fmt.Sprintf("\x00%015d", i))
	return &h
}

func TestHotSetStaysWithinItsShare(t *testing.T) {
	h := newHotSet(16 * 1000) // 1000 bytes a shard
	for i := range 100 {
		h.put(hotHash(i), &decoded{size: 100 + i%50})
		s := &h.shards[0]
		sum := 0
		for _, d := range s.m {
			sum += d.size
		}
		if s.bytes != sum || s.bytes > h.max {
			t.Fatalf("after %d puts: %d bytes counted, %d held, limit %d", i+1, s.bytes, sum, h.max)
		}
	}
	if n := len(h.shards[0].m); n < 5 {
		t.Fatalf("%d entries kept in 1000 bytes of entries under 150 bytes: eviction dropped too many", n)
	}
	h.put(hotHash(1000), &decoded{size: h.max/4 + 1})
	if h.get(hotHash(1000)) != nil {
		t.Fatal("an entry over a quarter of its shard was kept")
	}
}

func TestHotSetReplaceAndDrop(t *testing.T) {
	h := newHotSet(16 * 1000)
	a, b := &decoded{size: 100}, &decoded{size: 200}
	h.put(hotHash(1), a)
	h.put(hotHash(1), b) // a fresher entry for the same key
	if got, n := h.get(hotHash(1)), h.shards[0].bytes; got != b || n != 200 {
		t.Fatalf("after replacing: %p (want %p), %d bytes (want 200)", got, b, n)
	}
	h.drop(hotHash(1), a) // a reader that found a stale: must not drop the fresher one
	if h.get(hotHash(1)) != b {
		t.Fatal("dropping a replaced entry dropped its replacement")
	}
	h.drop(hotHash(1), b)
	if h.get(hotHash(1)) != nil || h.shards[0].bytes != 0 {
		t.Fatalf("after drop: still held, %d bytes", h.shards[0].bytes)
	}
}
