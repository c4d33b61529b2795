package partition

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Partition describes one partition. From and To are its bounds in UTC; a
// zero From or To is MINVALUE or MAXVALUE (left out of the JSON), and both
// are zero for the default partition.
type Partition struct {
	Schema  string    `json:"schema"`
	Name    string    `json:"name"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Default bool      `json:"default,omitempty"`
	// EstimatedRows is the planner's estimate (pg_class.reltuples), nil
	// (left out of the JSON) when the partition has never been analyzed or
	// vacuumed: Analyzed says so.
	EstimatedRows *int64 `json:"estimated_rows,omitempty"`
	Analyzed      bool   `json:"analyzed"`
	// ExactRows is count(*), filled only when asked for.
	ExactRows *int64 `json:"exact_rows,omitempty"`
	// SizeBytes is the total size: table, indexes and TOAST.
	SizeBytes int64 `json:"size_bytes"`
	// DetachPending is true while a DETACH CONCURRENTLY was interrupted;
	// Cleanup finalizes it.
	DetachPending bool `json:"detach_pending,omitempty"`
	// Bound is the bound as PostgreSQL prints it (in UTC).
	Bound string `json:"bound"`
}

// MarshalJSON leaves out the bounds that are zero (MINVALUE, MAXVALUE, the
// default partition's).
func (p Partition) MarshalJSON() ([]byte, error) {
	type plain Partition
	var v struct {
		plain
		From *time.Time `json:"from,omitempty"`
		To   *time.Time `json:"to,omitempty"`
	}
	v.plain = plain(p)
	if !p.From.IsZero() {
		v.From = &p.From
	}
	if !p.To.IsZero() {
		v.To = &p.To
	}
	return json.Marshal(v)
}

// Table returns the partition as a Table.
func (p Partition) Table() Table { return Table{Schema: p.Schema, Name: p.Name} }

// Contains says whether t falls in the partition's range.
func (p Partition) Contains(t time.Time) bool {
	return !p.Default && (p.From.IsZero() || !t.Before(p.From)) && (p.To.IsZero() || t.Before(p.To))
}

func defaultOf(parts []Partition) *Partition {
	for i := range parts {
		if parts[i].Default {
			return &parts[i]
		}
	}
	return nil
}

func fmtBound(t time.Time) string {
	if t.IsZero() {
		return "unbounded"
	}
	return t.Format(time.RFC3339)
}

var boundRE = regexp.MustCompile(`^FOR VALUES FROM \((MINVALUE|'[^']*')\) TO \((MAXVALUE|'[^']*')\)$`)

// parseBound parses pg_get_expr(relpartbound) read with TimeZone UTC and
// DateStyle ISO.
func parseBound(s string) (from, to time.Time, isDefault bool, err error) {
	if s == "DEFAULT" {
		return from, to, true, nil
	}
	m := boundRE.FindStringSubmatch(s)
	if m == nil {
		return from, to, false, fmt.Errorf("partition: unexpected bound %q", s)
	}
	if from, err = parseBoundValue(m[1]); err == nil {
		to, err = parseBoundValue(m[2])
	}
	return from, to, false, err
}

func parseBoundValue(v string) (time.Time, error) {
	if v == "MINVALUE" || v == "MAXVALUE" {
		return time.Time{}, nil
	}
	v = strings.Trim(v, "'")
	for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("partition: unexpected bound value %q", v)
}

// partitions reads p's partitions, bounds in UTC. pg_get_expr prints bounds
// in the session TimeZone, so the reading transaction sets TimeZone to UTC
// (and DateStyle to ISO) for itself only.
func (m *Manager) partitions(ctx context.Context, p *parent) ([]Partition, error) {
	var parts []Partition
	err := m.retryLocks(ctx, "list partitions of "+p.table.String(), func() error {
		var err error
		parts, err = m.readPartitions(ctx, p)
		return err
	})
	return parts, err
}

// readPartitions reads under the lock timeout: the sizes need a lock on
// each partition, which a maintenance step elsewhere may hold.
func (m *Manager) readPartitions(ctx context.Context, p *parent) ([]Partition, error) {
	tx, err := m.q.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true),
			set_config('lock_timeout', $1, true)`, durationSetting(m.cfg.lockTimeout)); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT n.nspname, c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples::float8,
			pg_total_relation_size(c.oid), i.inhdetachpending
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.inhparent = $1`, p.oid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var parts []Partition
	for rows.Next() {
		var q Partition
		var reltuples float64
		if err := rows.Scan(&q.Schema, &q.Name, &q.Bound, &reltuples, &q.SizeBytes, &q.DetachPending); err != nil {
			return nil, err
		}
		if q.From, q.To, q.Default, err = parseBound(q.Bound); err != nil {
			return nil, fmt.Errorf("%s: %w", q.Name, err)
		}
		if reltuples >= 0 { // -1: never analyzed nor vacuumed
			n := int64(reltuples)
			q.EstimatedRows, q.Analyzed = &n, true
		}
		parts = append(parts, q)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(parts, func(a, b Partition) int {
		if a.Default != b.Default {
			if a.Default {
				return 1
			}
			return -1
		}
		return a.From.Compare(b.From)
	})
	return parts, tx.Commit()
}

// Listing is a table's partitions, in order of range, the default last.
type Listing struct {
	Table  Table  `json:"table"` // the schema as the server resolved it
	Column string `json:"column"`
	// Interval is the one of the newest partition whose range is one
	// interval (what Create keeps using); zero, left out of the JSON, when
	// no partition's range is.
	Interval   Interval    `json:"interval,omitempty"`
	Partitions []Partition `json:"partitions"`
	// Gaps are ranges between partitions that no partition covers (rows
	// there go to the default partition, or fail without one).
	Gaps []Range `json:"gaps"`
	// Overlaps name pairs of partitions whose ranges overlap (impossible
	// between attached partitions; reported if the catalog ever disagrees).
	Overlaps [][2]string `json:"overlaps"`
}

// Range is a time range [From, To).
type Range struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// List returns the table's partitions; with exact, each one's count(*) too
// (a full scan of each partition).
func (m *Manager) List(ctx context.Context, exact bool) (*Listing, error) {
	p, err := m.resolve(ctx, m.q)
	if err != nil {
		return nil, err
	}
	parts, err := m.partitions(ctx, p)
	if err != nil {
		return nil, err
	}
	if parts == nil {
		parts = []Partition{}
	}
	l := &Listing{Table: p.table, Column: p.column, Partitions: parts, Gaps: []Range{}, Overlaps: [][2]string{}}
	if iv, _, ok := detectInterval(parts); ok {
		l.Interval = iv
	}
	if exact {
		for i := range parts {
			var n int64
			if err := m.q.QueryRowContext(ctx, `SELECT count(*) FROM ONLY `+parts[i].Table().String()).Scan(&n); err != nil {
				return nil, fmt.Errorf("partition: count %s: %w", parts[i].Name, err)
			}
			parts[i].ExactRows = &n
		}
	}
	var prev *Partition
	for i := range parts {
		q := &parts[i]
		if q.Default {
			continue
		}
		if prev != nil {
			switch {
			case prev.To.IsZero() || q.From.IsZero() || q.From.Before(prev.To):
				l.Overlaps = append(l.Overlaps, [2]string{prev.Name, q.Name})
			case q.From.After(prev.To):
				l.Gaps = append(l.Gaps, Range{prev.To, q.From})
			}
		}
		if prev == nil || q.To.IsZero() || (!prev.To.IsZero() && q.To.After(prev.To)) {
			prev = q
		}
	}
	return l, nil
}
