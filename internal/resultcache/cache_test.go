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
