package partition

import (
	"context"
	"fmt"
	"time"
)

// Thresholds of Analyze's recommendations.
const (
	tooManyPartitions = 50
	tooLargeAverage   = 1 << 30 // bytes
	tooManyEmpty      = 5
)

// Analysis is a table's partitioning at a glance, with recommendations.
type Analysis struct {
	Table           string `json:"table"`
	TotalPartitions int    `json:"total_partitions"` // the default one excluded
	TotalSizeBytes  int64  `json:"total_size_bytes"`
	AverageBytes    int64  `json:"average_size_bytes"`
	// EstimatedRows sums the estimates of the analyzed partitions;
	// NotAnalyzed counts those never analyzed (left out of the sum).
	EstimatedRows int64 `json:"estimated_rows"`
	NotAnalyzed   int   `json:"not_analyzed"`
	// Empty lists the partitions without a row that are not in the future
	// (premade partitions are empty by design).
	Empty []string `json:"empty"`
	// Future counts the partitions starting after the current one.
	Future int `json:"future_partitions"`
	// DefaultRows is the number of rows in the default partition (-1 when
	// there is no default partition).
	DefaultRows int64 `json:"default_rows"`
	// Expired lists partitions the retention should already have removed.
	Expired []string `json:"expired"`
	// MissingIndexes lists "partition: index" pairs: an index of the parent
	// that the partition lacks.
	MissingIndexes  []string    `json:"missing_indexes"`
	Gaps            []Range     `json:"gaps"`
	Overlaps        [][2]string `json:"overlaps"`
	Recommendations []string    `json:"recommendations"`
}

// Analyze inspects the table's partitions and recommends: a coarser
// interval past 50 partitions, a finer one past 1 GiB on average, dropping
// empty partitions past 5, and moving rows out of the
// default partition, premaking more partitions, applying the retention,
// repairing missing indexes and filling gaps.
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
	a := &Analysis{Table: l.Table, DefaultRows: -1, Empty: []string{}, Expired: []string{}, MissingIndexes: []string{},
		Gaps: l.Gaps, Overlaps: l.Overlaps, Recommendations: []string{}}
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
		if !q.From.IsZero() && q.From.After(now) {
			a.Future++
			continue
		}
		// An existence probe rather than the estimate: exact, cheap, and
		// right for partitions never analyzed.
		var hasRows bool
		if err := m.q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM ONLY `+q.Table().String()+`)`).Scan(&hasRows); err != nil {
			return nil, fmt.Errorf("partition: probe %s: %w", q.Name, err)
		}
		if !hasRows {
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
	var rec []string
	add := func(format string, args ...any) { rec = append(rec, fmt.Sprintf(format, args...)) }
	if a.TotalPartitions > tooManyPartitions {
		add("%d partitions (more than %d): planning slows with many partitions; consider a coarser interval or a shorter retention", a.TotalPartitions, tooManyPartitions)
	}
	if a.AverageBytes > tooLargeAverage {
		add("partitions average %.1f GiB (more than 1 GiB): consider a finer interval, so retention and vacuum work on smaller pieces", float64(a.AverageBytes)/(1<<30))
	}
	if len(a.Empty) > tooManyEmpty {
		add("%d past or current partitions are empty (more than %d): consider dropping them or a coarser interval", len(a.Empty), tooManyEmpty)
	}
	if a.DefaultRows > 0 {
		add("%d rows are in the default partition: run maintenance (`auditpg partition create`) to move them into partitions of their own; until then they slow every ATTACH", a.DefaultRows)
	}
	if a.Future < cfg.premake {
		add("only %d future partitions (premake is %d): run maintenance, or inserts will soon land in the default partition", a.Future, cfg.premake)
	}
	if len(a.Expired) > 0 {
		add("%d partitions are past the retention of %v: run `auditpg partition cleanup`", len(a.Expired), roundDays(cfg.retention))
	}
	for _, mi := range a.MissingIndexes {
		add("partition %s lacks an index of the parent: create it on the partition and ALTER INDEX ... ATTACH PARTITION", mi)
	}
	if len(a.Gaps) > 0 {
		add("%d gaps between partitions: rows there go to the default partition; run maintenance to create partitions", len(a.Gaps))
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
func (m *Manager) missingIndexes(ctx context.Context, p *parent) ([]string, error) {
	out, err := queryStrings(ctx, m.q, `SELECT part.relname || ': ' || pidx.relname
		FROM pg_index pi
		JOIN pg_class pidx ON pidx.oid = pi.indexrelid
		JOIN pg_inherits pinh ON pinh.inhparent = pi.indrelid
		JOIN pg_class part ON part.oid = pinh.inhrelid
		WHERE pi.indrelid = $1
		  AND NOT EXISTS (
			SELECT 1 FROM pg_inherits iinh JOIN pg_index ci ON ci.indexrelid = iinh.inhrelid
			WHERE iinh.inhparent = pi.indexrelid AND ci.indrelid = part.oid)
		ORDER BY 1`, p.oid)
	if err != nil {
		return nil, fmt.Errorf("partition: indexes of %s: %w", p.table, err)
	}
	return out, nil
}
