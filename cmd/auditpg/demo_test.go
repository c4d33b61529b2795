package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/auditpg/auditpg"
)

// TestDemo: the demo's report fits the width, groups the slow queries by
// statement, and its figures add up: the pool's open connections are those
// open at the reset plus those connected since, less those closed; the
// writes to the audit log, which nothing cached, are not counted as
// invalidations of cached results.
func TestDemo(t *testing.T) {
	out, err := runCLI(t, "demo", "--events", "300", "--workers", "3", "--slow", "2ms")
	if err != nil {
		t.Fatal(err)
	}
	checkWidth(t, "demo", out)
	for _, w := range []string{"auditpg demo: 300 events, 3 workers, 1 instance, in", "open now", "open at the start", "Result cache",
		"of tables nothing was cached from", "holding", "Statements by total time", "Recent slow queries",
		"SELECT pg_sleep($1::float8), count(*) FROM"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo: output lacks %q:\n%s", w, out)
		}
	}
	slow := out[strings.Index(out, "Recent slow queries"):]
	if n := strings.Count(slow, "SELECT pg_sleep"); n != 1 {
		t.Errorf("demo: the slow report is listed %d times under the slow queries, want once, counted:\n%s", n, slow)
	}
	if n := strings.Count(strings.TrimSpace(slow), "\n"); n > slowGroupsShown+2 {
		t.Errorf("demo: %d lines of slow queries, want at most %d statements:\n%s", n, slowGroupsShown, slow)
	}

	out, err = runCLI(t, "--json", "demo", "--events", "300", "--workers", "3", "--slow", "2ms")
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, "demo", out, "cache.bypasses")
	var s auditpg.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	p := s.Pool
	if p.OpenAtSince+p.Connects-p.Closes != int64(p.OpenConnections) || p.OpenAtSince < 1 {
		t.Errorf("demo pool: %d open at the start + %d connects - %d closes != %d open now", p.OpenAtSince, p.Connects, p.Closes, p.OpenConnections)
	}
	c := s.Cache
	if c == nil || c.UncachedInvalidations < s.Totals.Execs/2 || c.Invalidations >= c.UncachedInvalidations || c.HeldBytes <= 0 || c.HeldBytes > int64(c.CapacityBytes) {
		t.Errorf("demo cache: %+v (%d execs); want the audit log's inserts as invalidations of nothing cached, some bytes held", c, s.Totals.Execs)
	}

	for _, tc := range []struct{ args, want []string }{
		{[]string{"demo", "--events", "0"}, []string{"--events 0", "want 1 to"}},
		{[]string{"demo", "--workers", "1000"}, []string{"--workers 1000", "want 1 to 64"}},
		{[]string{"demo", "--slow", "-5ms"}, []string{"--slow -5ms", "positive"}},
	} {
		_, err := runCLI(t, tc.args...)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: err = %v, want one with %q", tc.args, err, w)
			}
		}
	}
}

// TestDemoInstances: with --instances, the demo's instances hear of each
// other's writes through the change feed, and say how soon.
func TestDemoInstances(t *testing.T) {
	out, err := runCLI(t, "demo", "--instances", "2", "--events", "200", "--workers", "2", "--slow", "5ms")
	if err != nil {
		t.Fatal(err)
	}
	checkWidth(t, "demo --instances", out)
	for _, w := range []string{"2 instances", "Across 2 instances", "the others read the new row", "reads of the old row after that: 0",
		"instance 2: change feed up", "The first instance's report:"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo --instances 2: output lacks %q:\n%s", w, out)
		}
	}
	out, err = runCLI(t, "--json", "demo", "--instances", "2", "--events", "200", "--workers", "2", "--slow", "5ms")
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, "demo-instances", out, "first_instance.cache.bypasses", "across_instances.caches[].bypasses")
	var d struct {
		Across struct {
			Probes      int
			Stale       int   `json:"stale_after_receipt"`
			WindowMaxNs int64 `json:"window_max_ns"`
			Caches      []struct {
				Feed         string
				FeedReceived int64 `json:"feed_received"`
			}
		} `json:"across_instances"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	a := d.Across
	if a.Probes != demoProbes || a.Stale != 0 || a.WindowMaxNs <= 0 || len(a.Caches) != 2 || a.Caches[1].Feed != "up" || a.Caches[1].FeedReceived < demoProbes {
		t.Errorf("demo --instances 2 --json: %+v; want every probe received by the second instance", a)
	}
	if _, err := runCLI(t, "demo", "--instances", "9"); err == nil || !strings.Contains(err.Error(), "--instances 9: want 1 to 8") {
		t.Errorf("demo --instances 9: %v; want the bound named", err)
	}
}
