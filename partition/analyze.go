package partition

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Thresholds of Analyze's recommendations (ManyPartitions is the count).
const (
	tooLargeAverage = 1 << 30 // bytes
	tooManyEmpty    = 5
)

// Analysis is a table's partitioning at a glance, with recommendations.
type Analysis struct {
	Table Table `json:"table"` // the schema as the server resolved it
	// Interval is the table's (as List reads it), else the configured one.
	Interval        Interval `json:"interval"`
	TotalPartitions int      `json:"total_partitions"` // the default one excluded
	TotalSizeBytes  int64    `json:"total_size_bytes"`
	AverageBytes    int64    `json:"average_size_bytes"`
	// EstimatedRows sums the estimates of the analyzed partitions;
	// NotAnalyzed counts those never analyzed (left out of the sum), and
	// NotAnalyzedWithRows names those of them that hold rows: while it is
	// not empty, the table's row count is unknown (ANALYZE fixes it).
	EstimatedRows       int64    `json:"estimated_rows"`
	NotAnalyzed         int      `json:"not_analyzed"`
	NotAnalyzedWithRows []string `json:"not_analyzed_with_rows"`
	// Empty lists the partitions without a row that are not in the future
	// (premade partitions are empty by design).
	Empty []string `json:"empty"`
	// Future counts the partitions starting after the current one;
	// BeyondPremake those starting after the last one premake keeps ahead
	// (CleanupFuture removes them when empty).
	Future        int `json:"future_partitions"`
	BeyondPremake int `json:"beyond_premake"`
	// DefaultRows is the number of rows in the default partition (-1 when
	// there is no default partition).
	DefaultRows int64 `json:"default_rows"`
	// Expired lists partitions the retention should already have removed.
	Expired []string `json:"expired"`
	// MissingIndexes lists the indexes of the parent that a partition lacks.
	MissingIndexes  []MissingIndex `json:"missing_indexes"`
	Gaps            []Range        `json:"gaps"`
	Overlaps        [][2]string    `json:"overlaps"`
	Recommendations []string       `json:"recommendations"`
}

// MissingIndex is an index of the parent that a partition lacks.
type MissingIndex struct {
	Partition string `json:"partition"`
	Index     string `json:"index"`
}

// Analyze inspects the table's partitions and recommends, naming the
// command that does it: removing the empty partitions beyond premake when
// there are more than ManyPartitions or more than MaxPremake ahead, a
// coarser interval when more than ManyPartitions are past or present, a
// finer one past 1 GiB on average, a shorter retention past 5 empty past
// partitions, ANALYZE when partitions holding rows were never analyzed,
// moving rows out of the default partition, premaking more partitions,
// applying the retention, repairing missing indexes and filling gaps.
func (m *Manager) Analyze(ctx context.Context) (*Analysis, error) {
	l, err := m.List(ctx, false)
	if err != nil {
		return nil, err
	}
	p, err := m.resolve(ctx, m.q)
	if err != nil {
		return nil, err
	}
	now := m.cfg.now()
	iv := l.Interval
	if iv == 0 {
		iv = m.cfg.interval
	}
	a := &Analysis{Table: l.Table, Interval: iv, DefaultRows: -1, NotAnalyzedWithRows: []string{}, Empty: []string{}, Expired: []string{},
		MissingIndexes: []MissingIndex{}, Gaps: l.Gaps, Overlaps: l.Overlaps, Recommendations: []string{}}
	_, beyond := beyondPremake(l.Partitions, iv, now, m.cfg.premake)
	a.BeyondPremake = len(beyond)
	for _, q := range l.Partitions {
		if q.Default {
			if err := m.q.QueryRowContext(ctx, `SELECT count(*) FROM ONLY `+q.Table().String()).Scan(&a.DefaultRows); err != nil {
				return nil, fmt.Errorf("partition: count %s: %w", q.Name, err)
			}
			continue
		}
		a.TotalPartitions++
		a.TotalSizeBytes += q.SizeBytes
		if q.EstimatedRows != nil {
			a.EstimatedRows += *q.EstimatedRows
		} else {
			a.NotAnalyzed++
		}
		future := !q.From.IsZero() && q.From.After(now)
		if future {
			a.Future++
		}
		if future && q.Analyzed {
			continue
		}
		// An existence probe rather than the estimate: exact, cheap, and
		// right for partitions never analyzed.
		var hasRows bool
		if err := m.q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM ONLY `+q.Table().String()+`)`).Scan(&hasRows); err != nil {
			return nil, fmt.Errorf("partition: probe %s: %w", q.Name, err)
		}
		if hasRows && !q.Analyzed {
			a.NotAnalyzedWithRows = append(a.NotAnalyzedWithRows, q.Name)
		}
		if !hasRows && !future {
			a.Empty = append(a.Empty, q.Name)
		}
	}
	for _, q := range expired(l.Partitions, now, m.cfg.retention) {
		a.Expired = append(a.Expired, q.Name)
	}
	if a.MissingIndexes, err = m.missingIndexes(ctx, p); err != nil {
		return nil, err
	}
	if a.TotalPartitions > 0 {
		a.AverageBytes = a.TotalSizeBytes / int64(a.TotalPartitions)
	}
	a.Recommendations = a.recommend(m.cfg)
	return a, nil
}

func (a *Analysis) recommend(cfg config) []string {
	rec := []string{}
	add := func(format string, args ...any) { rec = append(rec, fmt.Sprintf(format, args...)) }
	current := a.TotalPartitions - a.Future
	if a.BeyondPremake > 0 && (a.TotalPartitions > ManyPartitions || a.Future > MaxPremake(a.Interval)) {
		add("%d partitions, %d of them in the future, %d beyond the %d premade: planning slows with many partitions; "+
			"`auditpg partition cleanup --future --premake %d` removes the empty ones beyond premake (with --dry-run it lists them first)",
			a.TotalPartitions, a.Future, a.BeyondPremake, cfg.premake, cfg.premake)
	}
	if current > ManyPartitions {
		add("%d past and current partitions (more than %d): planning slows with many partitions; consider a coarser interval for a new table, "+
			"or a shorter retention (`auditpg partition cleanup --retention DAYS`)", current, ManyPartitions)
	}
	if a.AverageBytes > tooLargeAverage {
		add("partitions average %.1f GiB (more than 1 GiB): consider a finer interval, so retention and vacuum work on smaller pieces", float64(a.AverageBytes)/(1<<30))
	}
	if len(a.Empty) > tooManyEmpty {
		add("%d past or current partitions are empty (more than %d): consider a coarser interval, or a shorter retention (`auditpg partition cleanup --retention DAYS`)",
			len(a.Empty), tooManyEmpty)
	}
	if len(a.NotAnalyzedWithRows) > 0 {
		add("%d partitions holding rows were never analyzed, so the row count is unknown and the planner guesses: run `ANALYZE %s`",
			len(a.NotAnalyzedWithRows), a.Table)
	}
	if a.DefaultRows > 0 {
		add("%d rows are in the default partition: run `auditpg partition create` to move them into partitions of their own; until then they slow every ATTACH", a.DefaultRows)
	}
	if a.Future < cfg.premake {
		add("only %d future partitions (premake is %d): run `auditpg partition create`, or inserts will soon land in the default partition", a.Future, cfg.premake)
	}
	if len(a.Expired) > 0 {
		add("%d partitions are past the retention of %v: run `auditpg partition cleanup --retention %g`", len(a.Expired), roundDays(cfg.retention), cfg.retention.Hours()/24)
	}
	var indexes []string
	lacking := make(map[string][]string)
	for _, mi := range a.MissingIndexes {
		if lacking[mi.Index] == nil {
			indexes = append(indexes, mi.Index)
		}
		lacking[mi.Index] = append(lacking[mi.Index], mi.Partition)
	}
	for _, ix := range indexes {
		parts := lacking[ix]
		named := strings.Join(parts, ", ")
		if len(parts) > 5 {
			named = fmt.Sprintf("%s and %d more", strings.Join(parts[:5], ", "), len(parts)-5)
		}
		add("%d partitions lack the index %s of the parent (%s): create it on each and ALTER INDEX %s ATTACH PARTITION it, "+
			"or drop %[2]s and create it on the parent again, which makes it on every partition", len(parts), ix, named, ix)
	}
	if len(a.Gaps) > 0 {
		add("%d gaps between partitions: rows there go to the default partition; run `auditpg partition create`, which fills them", len(a.Gaps))
	}
	if len(a.Overlaps) > 0 {
		add("%d overlapping partition pairs: check the catalog", len(a.Overlaps))
	}
	return rec
}

func roundDays(d time.Duration) string { return fmt.Sprintf("%gd", d.Hours()/24) }

// missingIndexes finds, for each index of the parent, the partitions that
// have no index attached to it (as after CREATE INDEX ... ON ONLY, or a
// failed attach).
func (m *Manager) missingIndexes(ctx context.Context, p *parent) ([]MissingIndex, error) {
	rows, err := m.q.QueryContext(ctx, `SELECT part.relname::text, pidx.relname::text
		FROM pg_index pi
		JOIN pg_class pidx ON pidx.oid = pi.indexrelid
		JOIN pg_inherits pinh ON pinh.inhparent = pi.indrelid
		JOIN pg_class part ON part.oid = pinh.inhrelid
		WHERE pi.indrelid = $1
		  AND NOT EXISTS (
			SELECT 1 FROM pg_inherits iinh JOIN pg_index ci ON ci.indexrelid = iinh.inhrelid
			WHERE iinh.inhparent = pi.indexrelid AND ci.indrelid = part.oid)
		ORDER BY 1, 2`, p.oid)
	if err != nil {
		return nil, fmt.Errorf("partition: indexes of %s: %w", p.table, err)
	}
	defer rows.Close()
	out := []MissingIndex{}
	for rows.Next() {
		var mi MissingIndex
		if err := rows.Scan(&mi.Partition, &mi.Index); err != nil {
			return nil, err
		}
		out = append(out, mi)
	}
	return out, rows.Err()
}
