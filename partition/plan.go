package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// ManyPartitions is the partition count past which Analyze warns: every
// partition adds to planning, to locking at the start of each query and to
// the catalog, and past a thousand it shows. monitor's summary warns at the
// same count.
const ManyPartitions = 1000

// MaxPremake returns the largest premake for iv: two years ahead (731
// daily, 105 weekly, 24 monthly, 8 quarterly, 2 yearly partitions). More
// only makes empty partitions that every query plan and every maintenance
// run has to go through; a premake is a margin against a missed run, not a
// calendar.
func MaxPremake(iv Interval) int {
	switch iv {
	case Daily:
		return 731
	case Weekly:
		return 105
	case Monthly:
		return 24
	case Quarterly:
		return 8
	case Yearly:
		return 2
	}
	return 0
}

// PremakeError is the error of a premake larger than MaxPremake of the
// interval in use.
type PremakeError struct {
	Premake  int
	Max      int
	Interval Interval
}

func (e *PremakeError) Error() string {
	return fmt.Sprintf("partition: premake %d: at most %d %s partitions ahead (two years; WithPremake)", e.Premake, e.Max, e.Interval)
}

// ErrIntervalConflict: the interval asked for is not the one of the
// table's partitions. The error is an *IntervalConflictError.
var ErrIntervalConflict = errors.New("partition: interval differs from the table's")

// IntervalConflictError says which interval the table's partitions have
// (Have, read from its newest regular partition, Partition) and which one
// was asked for (Want).
type IntervalConflictError struct {
	Table     Table
	Have      Interval
	Want      Interval
	Partition string
}

func (e *IntervalConflictError) Error() string {
	return fmt.Sprintf("partition: %s has %s partitions (%s is the newest), not %s: leave WithInterval out to use %s; "+
		"an existing table's interval cannot be changed in place", e.Table, e.Have, e.Partition, e.Want, e.Have)
}

func (e *IntervalConflictError) Is(target error) bool { return target == ErrIntervalConflict }

// PartialError is the error of a call that stopped part way through the
// partitions it had planned: Done of Total were made, each complete and
// attached; the one in progress was rolled back. Running the call again
// finishes the work. It wraps the cause (context.Canceled after Ctrl-C).
type PartialError struct {
	Table Table
	Done  int
	Total int
	Err   error
}

func (e *PartialError) Error() string {
	if e.Interrupted() {
		return fmt.Sprintf("partition: %s: created %d of %d partitions before the interruption; run it again to finish: %v", e.Table, e.Done, e.Total, e.Err)
	}
	return fmt.Sprintf("partition: %s: created %d of %d partitions, then: %v", e.Table, e.Done, e.Total, e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// Interrupted says whether the cause was a cancelled or expired context.
func (e *PartialError) Interrupted() bool {
	return errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)
}

// regularInterval returns the interval whose range q spans exactly.
func regularInterval(q Partition) (Interval, bool) {
	if q.Default || q.From.IsZero() || q.To.IsZero() {
		return 0, false
	}
	for _, iv := range []Interval{Daily, Weekly, Monthly, Quarterly, Yearly} {
		if iv.Floor(q.From).Equal(q.From) && iv.Add(q.From, 1).Equal(q.To) {
			return iv, true
		}
	}
	return 0, false
}

// detectInterval returns the interval of the newest partition whose range
// is exactly one interval (a partition filling a gap seldom is), with that
// partition; ok is false when there is none.
func detectInterval(parts []Partition) (iv Interval, newest *Partition, ok bool) {
	for i := len(parts) - 1; i >= 0; i-- {
		if iv, ok := regularInterval(parts[i]); ok {
			return iv, &parts[i], true
		}
	}
	return 0, nil, false
}

// interval returns the interval to use with the table whose partitions are
// parts: the configured one when it was set (refused if the table's
// partitions have another), else the table's, else the default.
func (m *Manager) interval(p *parent, parts []Partition) (Interval, error) {
	have, newest, ok := detectInterval(parts)
	switch {
	case !ok:
		return m.cfg.interval, nil
	case m.cfg.intervalSet && have != m.cfg.interval:
		return 0, &IntervalConflictError{Table: p.table, Have: have, Want: m.cfg.interval, Partition: newest.Name}
	}
	return have, nil
}

// holes returns the parts of [from, to) that no range of taken (sorted by
// From, not overlapping; a zero bound is unbounded) covers.
func holes(taken []Range, from, to time.Time) []Range {
	var out []Range
	cursor := from
	for _, r := range taken {
		if !cursor.Before(to) {
			break
		}
		if !r.To.IsZero() && !r.To.After(cursor) {
			continue // ends before the cursor
		}
		if !r.From.IsZero() && !r.From.Before(to) {
			break // starts after the range
		}
		if !r.From.IsZero() && r.From.After(cursor) {
			out = append(out, Range{From: cursor, To: r.From})
		}
		if r.To.IsZero() {
			return out
		}
		cursor = r.To
	}
	if cursor.Before(to) {
		out = append(out, Range{From: cursor, To: to})
	}
	return out
}

// rangesOf returns the ranges of the dated partitions, in order.
func rangesOf(parts []Partition) []Range {
	out := []Range{}
	for _, q := range parts {
		if !q.Default {
			out = append(out, Range{From: q.From, To: q.To})
		}
	}
	return out
}

// planner collects the ranges to create: each new one covers only what
// neither a partition nor an earlier planned range covers.
type planner struct {
	taken []Range // sorted by From
	todo  []Range
	// rows holds the starts (Unix nanoseconds) of the planned ranges that
	// the default partition has rows of, to move in batches.
	rows map[int64]bool
}

func newPlanner(parts []Partition) *planner {
	return &planner{taken: rangesOf(parts), rows: make(map[int64]bool)}
}

// addRows plans the uncovered parts of [from, to), a range the default
// partition has rows of.
func (pl *planner) addRows(from, to time.Time) {
	for _, h := range pl.add(from, to) {
		pl.rows[h.From.UnixNano()] = true
	}
}

// add plans the uncovered parts of [from, to) and returns them.
func (pl *planner) add(from, to time.Time) []Range {
	hs := holes(pl.taken, from, to)
	for _, h := range hs {
		pl.todo = append(pl.todo, h)
		i, _ := slices.BinarySearchFunc(pl.taken, h.From, func(r Range, t time.Time) int {
			if r.From.IsZero() {
				return -1
			}
			return r.From.Compare(t)
		})
		pl.taken = slices.Insert(pl.taken, i, h)
	}
	return hs
}

// fillGaps plans, for every gap between two ranges taken (partitions and
// planned ranges), one partition that spans it exactly. Gaps are left by
// partitions of another interval, by partitions removed by hand, or by
// old rows moved out of the default partition far from the others: their
// rows, if any, are planned first (ranges of the interval), so what is
// left is empty, and one partition costs less than many. A gap that ends
// at or before cutoff (now minus the retention; zero: none) is left alone:
// the retention would remove its partition at once.
func (pl *planner) fillGaps(cutoff time.Time) {
	taken := slices.Clone(pl.taken)
	for i := 1; i < len(taken); i++ {
		from, to := taken[i-1].To, taken[i].From
		if !from.IsZero() && !to.IsZero() && from.Before(to) && to.After(cutoff) {
			pl.add(from, to)
		}
	}
}

// premade plans the current range and premake ranges after it.
func (pl *planner) premade(iv Interval, now time.Time, premake int) {
	start := iv.Floor(now)
	for i := 0; i <= premake; i++ {
		from := iv.Add(start, i)
		pl.add(from, iv.Add(from, 1))
	}
}

// ranges returns the planned ranges in order.
func (pl *planner) ranges() []Range {
	slices.SortFunc(pl.todo, func(a, b Range) int { return a.From.Compare(b.From) })
	return pl.todo
}
