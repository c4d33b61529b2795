package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/bytesize"
)

const (
	// reportWidth is the width the driver's report fits in: the statement
	// column is clipped to what the other columns leave of it.
	reportWidth = 100
	// minStatementWidth is the least the statement column keeps.
	minStatementWidth = 30
	// slowGroupsShown bounds the statements listed under the recent slow
	// queries.
	slowGroupsShown = 10
)

// writeReport prints the driver's statistics snapshot for people: the
// totals, the pool, the result cache, the fingerprints by total time and
// the recent slow queries, grouped by statement. The JSON of the snapshot
// keeps every sample; the grouping is the text's.
func writeReport(w io.Writer, s auditpg.Snapshot) error {
	t := s.Totals
	fmt.Fprintf(w, "Totals since %s (%v)\n", s.Since.Format(time.RFC3339), round(s.Taken.Sub(s.Since)))
	fmt.Fprintf(w, "  queries %d  execs %d  errors %d  slow %d  rows returned %d  rows affected %d\n",
		t.Queries, t.Execs, t.Errors, t.Slow, t.RowsReturned, t.RowsAffected)
	fmt.Fprintf(w, "  prepares %d  begins %d  commits %d  rollbacks %d  retries %d\n\n", t.Prepares, t.Begins, t.Commits, t.Rollbacks, t.Retries)

	p := s.Pool
	fmt.Fprintln(w, "Pool")
	fmt.Fprintf(w, "  open now %d (in use %d, idle %d) of at most %s\n", p.OpenConnections, p.InUse, p.Idle, maxOpenText(p.MaxOpenConnections))
	fmt.Fprintf(w, "  since then: %d open at the start, connects %d (failed %d, mean %v), closes %d (mean life %v)\n",
		p.OpenAtSince, p.Connects, p.ConnectFailures, round(p.MeanConnectTime), p.Closes, round(p.MeanConnLifetime))
	fmt.Fprintf(w, "  waits for a connection %d (%v in all); closed for the limits: idle %d, idle time %d, lifetime %d\n\n",
		p.WaitCount, round(p.WaitDuration), p.MaxIdleClosed, p.MaxIdleTimeClosed, p.MaxLifetimeClosed)

	if c := s.Cache; c != nil {
		fmt.Fprintf(w, "Result cache (mode %s)\n", c.Mode)
		fmt.Fprintf(w, "  hits %d  misses %d  hit ratio %.1f%%  fills %d (rejected %d)  evictions %d\n",
			c.Hits, c.Misses, 100*c.HitRatio, c.Fills, c.RejectedFills, c.Evictions)
		fmt.Fprintf(w, "  invalidations %d (made cached results stale); %d more of tables nothing was cached from\n",
			c.Invalidations, c.UncachedInvalidations)
		fmt.Fprintf(w, "  entries %d (stale ones included) holding %s; store allocated %s of at most %s\n",
			c.Entries, bytesize.Human(c.HeldBytes), bytesize.Human(int64(c.CapacityBytes)), bytesize.Human(int64(c.MaxBytes)))
		for _, r := range slices.Sorted(maps.Keys(c.Bypasses)) {
			fmt.Fprintf(w, "  bypass %6d  %s\n", c.Bypasses[r], r)
		}
		if r := c.Redis; r != nil {
			fmt.Fprintf(w, "  Redis %s (keys %s:*), %s; round trip %.0f µs\n", r.Addr, r.Prefix, r.State, r.RoundTripMicros)
			fmt.Fprintf(w, "    lookups: hits %d  misses %d  stale %d  unknown versions %d\n", r.Hits, r.Misses, r.Stale, r.Unknown)
			fmt.Fprintf(w, "    not asked: %d not worth the round trip (fingerprints: %d skipped, %d consulted), %d unavailable\n",
				r.Skipped, r.FingerprintsSkipped, r.FingerprintsConsulted, r.Unavailable)
			fmt.Fprintf(w, "    writes %d (dropped %d), versions moved %d, errors %d, breaker opened %d, resyncs %d\n",
				r.Writes, r.Dropped, r.VersionMoves, r.Errors, r.BreakerOpens, r.Resyncs)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "Statements by total time (%s", plural(len(s.Statements), "fingerprint"))
	if s.EvictedFingerprints > 0 {
		fmt.Fprintf(w, ", %d evicted", s.EvictedFingerprints)
	}
	fmt.Fprintln(w, ")")
	rows := make([][]string, 0, len(s.Statements))
	for _, st := range s.Statements {
		rows = append(rows, []string{fmt.Sprint(st.Calls), fmt.Sprint(st.Errors), fmt.Sprint(st.Rows), fmt.Sprint(st.CacheHits),
			durText(st.Total), durText(st.Mean), durText(st.P95), st.Fingerprint})
	}
	// p50, p99, min and max are in the JSON: the statement needs the room.
	writeColumns(w, []string{"calls", "errors", "rows", "hits", "total", "mean", "p95", "statement"}, rows)

	groups := groupSlow(s.SlowQueries)
	fmt.Fprintf(w, "\nRecent slow queries: %d kept of %s, %s\n", len(s.SlowQueries), plural(int(t.Slow), "slow call"), plural(len(groups), "statement"))
	if len(groups) == 0 {
		return nil
	}
	rows = rows[:0]
	for _, g := range groups[:min(len(groups), slowGroupsShown)] {
		result := "ok"
		if g.failed > 0 {
			result = fmt.Sprintf("%d failed, %s", g.failed, cmp.Or(g.lastState, "error"))
		}
		rows = append(rows, []string{fmt.Sprint(g.count), durText(g.worst), durText(g.last.Duration),
			g.last.Op, result, cmp.Or(g.last.Fingerprint, "("+g.last.Op+")")})
	}
	writeColumns(w, []string{"count", "worst", "last", "op", "result", "statement"}, rows)
	if n := len(groups) - slowGroupsShown; n > 0 {
		fmt.Fprintf(w, "  ... and %d more statements (--json lists every sample)\n", n)
	}
	return nil
}

// slowGroup is the recent slow samples of one statement (op and
// fingerprint).
type slowGroup struct {
	count, failed int
	worst         time.Duration
	last          auditpg.SlowQuery // the newest
	lastState     string            // the newest failure's SQLSTATE
}

// groupSlow groups samples (newest first) by op and fingerprint, the
// statements with the most samples first, then the worst.
func groupSlow(samples []auditpg.SlowQuery) []*slowGroup {
	byKey := map[[2]string]*slowGroup{}
	var groups []*slowGroup
	for _, q := range samples {
		k := [2]string{q.Op, q.Fingerprint}
		g := byKey[k]
		if g == nil {
			g = &slowGroup{last: q}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.count++
		g.worst = max(g.worst, q.Duration)
		if q.SQLState != "" || q.Err != "" {
			if g.failed == 0 {
				g.lastState = q.SQLState
			}
			g.failed++
		}
	}
	slices.SortStableFunc(groups, func(a, b *slowGroup) int {
		return cmp.Or(cmp.Compare(b.count, a.count), cmp.Compare(b.worst, a.worst))
	})
	return groups
}

// writeColumns prints a table of columns separated by two spaces: text
// left-aligned, numbers and durations right-aligned; the last column (the
// statement, with its white space folded) is clipped so that a line fits
// reportWidth.
func writeColumns(w io.Writer, header []string, rows [][]string) {
	last := len(header) - 1
	for _, r := range rows {
		r[last] = strings.Join(strings.Fields(r[last]), " ")
	}
	widths := make([]int, len(header))
	numeric := make([]bool, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
		numeric[i] = i != last
		for _, r := range rows {
			widths[i] = max(widths[i], utf8.RuneCountInString(r[i]))
			numeric[i] = numeric[i] && isNumeric(r[i])
		}
	}
	used := 2 // the indent
	for _, n := range widths[:last] {
		used += n + 2
	}
	widths[last] = max(minStatementWidth, reportWidth-used)
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("  ")
		for i, c := range cells {
			if i == last {
				b.WriteString(clip(c, widths[last]))
				break
			}
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if numeric[i] {
				b.WriteString(pad + c + "  ")
			} else {
				b.WriteString(c + pad + "  ")
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
}

// isNumeric says whether a cell is a number or a duration: it starts with
// a digit.
func isNumeric(s string) bool { return s != "" && s[0] >= '0' && s[0] <= '9' }

func maxOpenText(n int) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// durText prints d with three significant figures or so, in a unit that
// keeps it short: 950ns, 1.23µs, 45.6ms, 123ms, 3.61s, 16m40s.
func durText(d time.Duration) string {
	unit := func(v float64, name string) string {
		switch {
		case v >= 99.95:
			return fmt.Sprintf("%.0f%s", v, name)
		case v >= 9.995:
			return fmt.Sprintf("%.1f%s", v, name)
		default:
			return fmt.Sprintf("%.2f%s", v, name)
		}
	}
	switch {
	case d < time.Microsecond:
		return d.String()
	case d < 999500*time.Nanosecond:
		return unit(float64(d)/float64(time.Microsecond), "µs")
	case d < 999500*time.Microsecond:
		return unit(float64(d)/float64(time.Millisecond), "ms")
	case d < 100*time.Second:
		return unit(d.Seconds(), "s")
	default:
		return d.Round(time.Second).String()
	}
}

// plural is n and noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
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

// clip cuts s to at most n characters, marking the cut with "…".
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
