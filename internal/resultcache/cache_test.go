package resultcache

import (
	"fmt"
	"testing"
)

// TestScopeIDs: a scope keeps its number; two scopes never share one, even
// after the numbering starts over past maxScopes.
func TestScopeIDs(t *testing.T) {
	c := New(DefaultConfig(), nil)
	defer c.store.Close()
	a, b := c.scopeID("host\x00a"), c.scopeID("host\x00b")
	if a == b || c.scopeID("host\x00a") != a {
		t.Fatalf("scope numbers a=%d b=%d, a again=%d", a, b, c.scopeID("host\x00a"))
	}
	seen := map[uint64]string{a: "a", b: "b"}
	for i := range maxScopes + 10 {
		s := fmt.Sprintf("host\x00s%d", i)
		id := c.scopeID(s)
		if prev, ok := seen[id]; ok && prev != s {
			t.Fatalf("number %d given to %q and to %q", id, prev, s)
		}
		seen[id] = s
	}
	// Past maxScopes the numbering started over: a gets a fresh number,
	// never one given before.
	if again := c.scopeID("host\x00a"); seen[again] != "" {
		t.Fatalf("after the numbering started over, scope a got number %d, already given to %q", again, seen[again])
	}
}

// TestStoreShardsUnder4GB: BigCache indexes a shard's bytes with 32 bits;
// no size and largest entry within MaxBytes and MaxEntryBytes give a shard
// of 4 GB or more, and the largest such cache is made without allocating
// its size.
func TestStoreShardsUnder4GB(t *testing.T) {
	for _, size := range []uint64{1 << 20, 100 << 20, 1 << 30, 4 << 30, 8<<30 - 1, 8 << 30, 33 << 30, MaxBytes} {
		for _, entry := range []uint64{1, 1 << 10, 1 << 20, 16 << 20, 64<<20 + 1, 256 << 20, 300 << 20, MaxEntryBytes} {
			if size > MaxBytes || entry > size {
				continue
			}
			bc, _ := storeConfig(Config{MaxBytes: int(size), MaxEntryBytes: int(entry)})
			if shard := uint64(bc.HardMaxCacheSize) << 20 / uint64(bc.Shards); shard >= 1<<32 {
				t.Errorf("size %d, max entry %d: %d shards of %d bytes, want under 4 GB each", size, entry, bc.Shards, shard)
			}
		}
	}
	c := New(Config{Mode: All, TTL: MaxTTL, MaxBytes: MaxBytes, MaxEntryBytes: MaxEntryBytes}, nil)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestHeldBytesExact: the bytes held are those of the entries the store
// holds, through evictions and through entries stored twice under one key;
// every entry stored is held or counted as evicted.
func TestHeldBytesExact(t *testing.T) {
	c := New(Config{Mode: All, TTL: MaxTTL, MaxBytes: 1 << 20, MaxEntryBytes: 64 << 10}, nil)
	defer c.Close()
	held := func() (n int64) {
		it := c.store.Iterator()
		for it.SetNext() {
			e, err := it.Value()
			if err != nil {
				t.Fatal(err)
			}
			n += int64(len(e.Value()))
		}
		return n
	}
	stored := 0
	for i := range 200 {
		for range 1 + i%2 { // every other key is stored twice
			f := &Fill{buf: make([]byte, 3000+i*37+stored)}
			f.hash[0] = byte(i)
			copy(f.storeKey[:], fmt.Sprintf("key-%020d", i))
			if !c.storeEntry(f) {
				t.Fatalf("entry %d not stored", i)
			}
			stored++
			if got, want := c.Stats().HeldBytes, held(); got != want {
				t.Fatalf("after %d entries: %d bytes counted, the store holds %d", stored, got, want)
			}
		}
	}
	s := c.Stats()
	if s.Evictions == 0 {
		t.Fatalf("%d entries of about 5 kB in 1 MB: no eviction (%+v)", stored, s)
	}
	// Replaced entries are deleted, not evicted: held + evicted + replaced = stored.
	if int64(s.Entries)+s.Evictions+100 != int64(stored) {
		t.Fatalf("%d held and %d evicted of %d stored, 100 of them replaced", s.Entries, s.Evictions, stored)
	}
}
