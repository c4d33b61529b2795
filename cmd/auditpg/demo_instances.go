package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/auditpg/auditpg"
)

// demoProbes is how many times the demo changes a cached row to time the
// change feed between its instances.
const demoProbes = 20

// acrossInstances is what the demo saw between its instances.
type acrossInstances struct {
	Instances int `json:"instances"`
	Probes    int `json:"probes"`
	// WindowP50Ns and WindowMaxNs: from the write's commit in the first
	// instance to the moment another instance's read no longer hit the old
	// entry, over every probe and other instance.
	WindowP50Ns int64 `json:"window_p50_ns"`
	WindowMaxNs int64 `json:"window_max_ns"`
	// StaleAfterReceipt counts the reads that returned the old row once the
	// instance had dropped it: it must be 0.
	StaleAfterReceipt int `json:"stale_after_receipt"`
	// Caches is each instance's cache, as Stats reports it.
	Caches []*auditpg.CacheStats `json:"caches"`
}

// probeInstances changes a cached row through the first instance, again
// and again, and times how soon each other instance reads the new value,
// polling a read that its cache serves until the change feed drops it.
func probeInstances(ctx context.Context, dbs []*sql.DB) (*acrossInstances, error) {
	const read = `/* auditpg:cache ttl=1m */ SELECT retention_days FROM auditpg_demo.org_settings WHERE organization_id = 'org-acme'`
	a := &acrossInstances{Instances: len(dbs), Probes: demoProbes, Caches: []*auditpg.CacheStats{}}
	var windows []time.Duration
	for p := range demoProbes {
		want := 1000 + p
		for _, db := range dbs[1:] { // each other instance holds the row in its cache
			var v int
			if err := db.QueryRowContext(ctx, read).Scan(&v); err != nil {
				return nil, err
			}
		}
		if _, err := dbs[0].ExecContext(ctx, `UPDATE auditpg_demo.org_settings SET retention_days = $1 WHERE organization_id = 'org-acme'`, want); err != nil {
			return nil, err
		}
		committed := time.Now()
		// Each other instance polls at once, as its own process would.
		results := make(chan probeResult, len(dbs)-1)
		for _, db := range dbs[1:] {
			go func() { results <- pollNewRow(ctx, db, read, want, committed) }()
		}
		for range dbs[1:] {
			r := <-results
			if r.err != nil {
				return nil, r.err
			}
			windows = append(windows, r.window)
			a.StaleAfterReceipt += r.stale
		}
	}
	slices.Sort(windows)
	a.WindowP50Ns, a.WindowMaxNs = int64(windows[len(windows)/2]), int64(windows[len(windows)-1])
	for _, db := range dbs {
		s, err := auditpg.Stats(db)
		if err != nil {
			return nil, err
		}
		a.Caches = append(a.Caches, s.Cache)
	}
	return a, nil
}

func writeAcross(w io.Writer, a *acrossInstances) {
	fmt.Fprintf(w, "Across %d instances (a cache each, as processes)\n", a.Instances)
	fmt.Fprintf(w, "  the first instance changed a cached row %d times; the others read the new row\n", a.Probes)
	fmt.Fprintf(w, "  %v after the commit (median), %v at most\n", round(time.Duration(a.WindowP50Ns)), round(time.Duration(a.WindowMaxNs)))
	fmt.Fprintf(w, "  reads of the old row after that: %d\n", a.StaleAfterReceipt)
	for i, c := range a.Caches {
		if c == nil {
			continue
		}
		fmt.Fprintf(w, "  instance %d: change feed %s, %d received, %d published; hits %d, misses %d\n",
			i+1, c.Feed, c.FeedReceived, c.FeedPublished, c.Hits, c.Misses)
	}
}

type probeResult struct {
	window time.Duration
	stale  int
	err    error
}

// pollNewRow reads until the row holds want, then ten times more, counting
// the reads that return the old row again.
func pollNewRow(ctx context.Context, db *sql.DB, read string, want int, committed time.Time) probeResult {
	var r probeResult
	for {
		var v int
		if r.err = db.QueryRowContext(ctx, read).Scan(&v); r.err != nil {
			return r
		}
		if v == want {
			r.window = time.Since(committed)
			break
		}
		if time.Since(committed) > 5*time.Second {
			r.err = fmt.Errorf("an instance still reads %d 5s after the write of %d: its change feed did not deliver it (is the cache's feed up? auditpg_invalidate=local turns it off)", v, want)
			return r
		}
		time.Sleep(100 * time.Microsecond)
	}
	for range 10 { // once dropped, the old row never comes back
		var v int
		if r.err = db.QueryRowContext(ctx, read).Scan(&v); r.err != nil {
			return r
		}
		if v != want {
			r.stale++
		}
	}
	return r
}
