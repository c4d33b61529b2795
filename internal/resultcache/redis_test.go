package resultcache

import (
	"bytes"
	"testing"
	"time"
)

// TestBreaker: it opens after breakerThreshold failures in a row (not
// fewer, and a success starts the count over), stays open for its wait,
// doubling while probes fail, and closes on a success.
func TestBreaker(t *testing.T) {
	var b breaker
	now := time.Unix(0, 0)
	for i := range breakerThreshold - 1 {
		if b.fail(now) || !b.closed() {
			t.Fatalf("opened after %d failures", i+1)
		}
	}
	b.succeed()
	for i := range breakerThreshold - 1 {
		if b.fail(now) {
			t.Fatalf("opened after a success and %d failures", i+1)
		}
	}
	if !b.fail(now) || b.closed() {
		t.Fatal("not open after the threshold")
	}
	if w := b.wait(now); w != breakerMinWait {
		t.Fatalf("wait %v, want %v", w, breakerMinWait)
	}
	if b.wait(now.Add(breakerMinWait)) != 0 {
		t.Fatal("no probe once the wait is over")
	}
	b.fail(now) // a failed probe
	if w := b.wait(now); w != 2*breakerMinWait {
		t.Fatalf("after a failed probe, wait %v; want %v", w, 2*breakerMinWait)
	}
	for range 20 {
		b.fail(now)
	}
	if w := b.wait(now); w != breakerMaxWait {
		t.Fatalf("wait %v, want at most %v", w, breakerMaxWait)
	}
	b.succeed()
	if !b.closed() || b.wait(now) != 0 {
		t.Fatal("a success does not close it")
	}
}

// TestPortableKey: the key in Redis holds the scope's text, not the
// process's number for it: two caches that number a scope differently
// build the same key, and two scopes never share one.
func TestPortableKey(t *testing.T) {
	c1, c2 := New(DefaultConfig(), nil), New(DefaultConfig(), nil)
	defer c1.Close()
	defer c2.Close()
	c2.scopeID("host\x00other") // c2 numbers the next scope differently
	scope := "host\x005432\x00alice"
	k1, _ := appendKey(nil, c1.scopeID(scope), "SELECT 1", nil)
	k2, _ := appendKey(nil, c2.scopeID(scope), "SELECT 1", nil)
	if bytes.Equal(k1, k2) {
		t.Fatal("the test needs two numbers for the scope")
	}
	if !bytes.Equal(portableKey(scope, k1), portableKey(scope, k2)) {
		t.Fatal("one scope, two portable keys")
	}
	if bytes.Equal(portableKey(scope, k1), portableKey(scope+"x", k1)) {
		t.Fatal("two scopes, one portable key")
	}
	// The scan types every cache registers first, in the same order.
	for i, typ := range portableTypes {
		if c1.typeAt(uint32(i)) != typ || c2.typeAt(uint32(i)) != typ {
			t.Fatalf("scan type %d: %v and %v, want %v", i, c1.typeAt(uint32(i)), c2.typeAt(uint32(i)), typ)
		}
	}
}

// TestRandomVersion: a version starts at least 2^32 (far from what INCR of
// an absent key gives) and below 2^53.
func TestRandomVersion(t *testing.T) {
	seen := map[uint64]bool{}
	for range 1000 {
		v := randomVersion()
		if v < 1<<32 || v >= 1<<53 || seen[v] {
			t.Fatalf("version %d", v)
		}
		seen[v] = true
	}
}
