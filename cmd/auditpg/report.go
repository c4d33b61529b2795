package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/auditpg/auditpg"
)

// writeReport prints a statistics snapshot for people: the totals, the pool,
// the fingerprints by total time and the recent slow queries.
func writeReport(w io.Writer, s auditpg.Snapshot) error {
	t := s.Totals
	fmt.Fprintf(w, "Totals since %s\n", s.Since.Format(time.RFC3339))
	fmt.Fprintf(w, "  queries %d  execs %d  errors %d  slow %d  rows returned %d  rows affected %d\n",
		t.Queries, t.Execs, t.Errors, t.Slow, t.RowsReturned, t.RowsAffected)
	fmt.Fprintf(w, "  prepares %d  begins %d  commits %d  rollbacks %d  retries %d\n\n", t.Prepares, t.Begins, t.Commits, t.Rollbacks, t.Retries)

	p := s.Pool
	fmt.Fprintln(w, "Pool")
	fmt.Fprintf(w, "  open %d (in use %d, idle %d) of max %d; waited %d times, %v in all\n",
		p.OpenConnections, p.InUse, p.Idle, p.MaxOpenConnections, p.WaitCount, round(p.WaitDuration))
	fmt.Fprintf(w, "  connects %d (failed %d, mean %v); closed %d (mean lifetime %v)\n\n",
		p.Connects, p.ConnectFailures, round(p.MeanConnectTime), p.Closes, round(p.MeanConnLifetime))

	if c := s.Cache; c != nil {
		fmt.Fprintf(w, "Result cache (mode %s)\n", c.Mode)
		fmt.Fprintf(w, "  hits %d  misses %d  hit ratio %.1f%%  fills %d (rejected %d)  invalidations %d\n",
			c.Hits, c.Misses, 100*c.HitRatio, c.Fills, c.RejectedFills, c.Invalidations)
		fmt.Fprintf(w, "  entries %d  bytes %d  evictions %d\n", c.Entries, c.Bytes, c.Evictions)
		reasons := slices.Sorted(maps.Keys(c.Bypasses))
		for _, r := range reasons {
			fmt.Fprintf(w, "  bypass %6d  %s\n", c.Bypasses[r], r)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "Statements by total time (%d fingerprints", len(s.Statements))
	if s.EvictedFingerprints > 0 {
		fmt.Fprintf(w, ", %d evicted", s.EvictedFingerprints)
	}
	fmt.Fprintln(w, ")")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "calls\terrors\trows\thits\ttotal\tmean\tp50\tp95\tp99\tmax\t  statement\t")
	for _, st := range s.Statements {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%v\t%v\t%v\t%v\t%v\t%v\t  %s\t\n", st.Calls, st.Errors, st.Rows, st.CacheHits,
			round(st.Total), round(st.Mean), round(st.P50), round(st.P95), round(st.P99), round(st.Max), clip(st.Fingerprint, 90))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nRecent slow queries (%d)\n", len(s.SlowQueries))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, q := range s.SlowQueries {
		state := q.SQLState
		if state == "" {
			state = "ok"
		}
		fmt.Fprintf(tw, "  %s\t%v\t%s\t%s\t%s\n", q.Time.Format("15:04:05.000"), round(q.Duration), q.Op, state, clip(q.Fingerprint, 90))
	}
	return tw.Flush()
}

// round keeps durations readable: three significant figures or so.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
