package metrics

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/partition"
)

// reader reads the server's statistics during one collection.
type reader struct {
	db  *sql.DB
	mon *monitor.Monitor
	cfg *config
}

// activity: connections by state, and max_connections.
func (c *reader) activity(ctx context.Context, s *sink) error {
	a, err := c.mon.Activity(ctx)
	if err != nil {
		return err
	}
	for state, n := range a.Connections {
		s.add(famConnections, float64(n), state)
	}
	s.add(famMaxConnections, float64(a.MaxConnections))
	return nil
}

// cacheHit: the database's buffer cache hit ratio.
func (c *reader) cacheHit(ctx context.Context, s *sink) error {
	h, err := c.mon.CacheHitRatio(ctx)
	if err != nil {
		return err
	}
	s.add(famCacheHitRatio, h.Table, "table")
	s.add(famCacheHitRatio, h.Index, "index")
	// monitor gives the ratio and the blocks: hits are their product.
	for _, k := range []struct {
		kind   string
		ratio  float64
		blocks int64
	}{{"table", h.Table, h.TableBlocks}, {"index", h.Index, h.IndexBlocks}} {
		hits := math.Round(k.ratio * float64(k.blocks))
		s.add(famBlocksHit, hits, k.kind)
		s.add(famBlocksRead, float64(k.blocks)-hits, k.kind)
	}
	return nil
}

// statements: the top statements of pg_stat_statements by total time. The
// label is the classifier's summary of the text ("SELECT audit_log"),
// which never holds a literal: pg_stat_statements keeps the literals of
// utility statements (a password in CREATE ROLE) as they were written.
func (c *reader) statements(ctx context.Context, s *sink) error {
	st, err := c.mon.StatementsStatus(ctx)
	if err != nil {
		return err
	}
	if !st.Ready {
		s.add(famStatementsReady, 0)
		return nil
	}
	qs, err := c.mon.SlowQueries(ctx, monitor.SlowQueryOptions{OrderByTotal: true, Limit: c.cfg.statements})
	if err != nil {
		return err
	}
	s.add(famStatementsReady, 1)
	seen := map[string]bool{}
	for _, q := range qs {
		id := strconv.FormatInt(q.QueryID, 10)
		if !q.TopLevel { // the same queryid may appear nested too: keep one series
			id += "/nested"
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		summary := sqlclass.Classify(q.Query).Summary
		s.add(famStmtCalls, float64(q.Calls), id, summary)
		s.add(famStmtSeconds, q.Total.Seconds(), id, summary)
		s.add(famStmtRows, float64(q.Rows), id, summary)
	}
	return nil
}

// slots: replication slots and the WAL each keeps. package monitor has no
// query for them, so this is the one query of its own.
func (c *reader) slots(ctx context.Context, s *sink) error {
	rows, err := c.db.QueryContext(ctx, `
SELECT slot_name::text, slot_type, active,
       coalesce(pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END,
                                restart_lsn), 0)::float8
  FROM pg_replication_slots
 ORDER BY 4 DESC, 1
 LIMIT $1`, c.cfg.tables)
	if err != nil {
		return fmt.Errorf("replication slots: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, kind string
		var active bool
		var retained float64
		if err := rows.Scan(&name, &kind, &active, &retained); err != nil {
			return fmt.Errorf("replication slots: %w", err)
		}
		s.add(famSlotRetained, retained, name, kind)
		s.add(famSlotActive, b2f(active), name, kind)
	}
	return rows.Err()
}

// tables: sizes, rows, dead rows, maintenance times, scans of the largest
// tables.
func (c *reader) tables(ctx context.Context, s *sink) error {
	ts, err := c.mon.Tables(ctx) // largest first
	if err != nil {
		return err
	}
	for _, t := range ts[:min(len(ts), c.cfg.tables)] {
		l := []string{t.Table.Schema, t.Table.Name}
		s.add(famTableSize, float64(t.Bytes), l...)
		s.add(famTableIdxSize, float64(t.IndexBytes), l...)
		s.add(famTableLive, float64(t.LiveRows), l...)
		s.add(famTableDead, float64(t.DeadRows), l...)
		s.add(famTableSeqScans, float64(t.SeqScans), l...)
		s.add(famTableIdxScans, float64(t.IdxScans), l...)
		if v := t.LastVacuumed(); v != nil {
			s.add(famTableVacuumAt, unix(*v), l...)
		}
		if a := t.LastAnalyzed(); a != nil {
			s.add(famTableAnalyzeAt, unix(*a), l...)
		}
	}
	return nil
}

// indexes: scans and size of the largest indexes, and the invalid ones.
func (c *reader) indexes(ctx context.Context, s *sink) error {
	usage, err := c.mon.IndexUsage(ctx)
	if err != nil {
		return err
	}
	slices.SortStableFunc(usage, func(a, b monitor.IndexUsage) int { return cmp.Compare(b.Bytes, a.Bytes) })
	for _, u := range usage[:min(len(usage), c.cfg.indexes)] {
		l := []string{u.Table.Schema, u.Table.Name, u.Index}
		s.add(famIndexScans, float64(u.Scans), l...)
		s.add(famIndexSize, float64(u.Bytes), l...)
	}
	invalid, err := c.mon.InvalidIndexes(ctx)
	if err != nil {
		return err
	}
	s.add(famInvalidCount, float64(len(invalid)))
	for _, v := range invalid[:min(len(invalid), c.cfg.indexes)] {
		s.add(famIndexInvalid, 1, v.Table.Schema, v.Table.Name, v.Index)
	}
	return nil
}

// partitions: every partitioned table's partitions, size and default rows
// (monitor); for those partitioned by time range, how far ahead they
// cover, the future ones and those past the retention (partition).
func (c *reader) partitions(ctx context.Context, s *sink) error {
	pts, err := c.mon.Partitions(ctx)
	if err != nil {
		return err
	}
	slices.SortStableFunc(pts, func(a, b monitor.PartitionedTable) int { return cmp.Compare(b.Bytes, a.Bytes) })
	pts = pts[:min(len(pts), c.cfg.tables)]
	for _, p := range pts {
		l := []string{p.Table.Schema, p.Table.Name}
		s.add(famPartitions, float64(p.Partitions), l...)
		s.add(famPartitionsBytes, float64(p.Bytes), l...)
		if p.Default != nil {
			s.add(famDefaultRows, float64(p.DefaultRows), l...)
		}
		if p.Strategy != "range" {
			continue
		}
		m, err := partition.New(c.db, partition.WithTable(p.Table), partition.WithRetention(c.cfg.retention[p.Table]),
			partition.WithLockTimeout(c.cfg.timeout), partition.WithRetries(0))
		if err != nil {
			return err
		}
		if err := c.timeRange(ctx, s, m, l); err != nil {
			if errors.Is(err, partition.ErrUnsupportedKey) { // not by time: nothing more to say
				continue
			}
			return err
		}
	}
	return nil
}

// timeRange reports one time-range partitioned table through its Manager:
// its analysis (future and expired partitions) and its listing (coverage).
func (c *reader) timeRange(ctx context.Context, s *sink, m *partition.Manager, l []string) error {
	a, err := m.Analyze(ctx)
	if err != nil {
		return err
	}
	list, err := m.List(ctx, false)
	if err != nil {
		return err
	}
	s.add(famAheadSeconds, ahead(list.Partitions, c.cfg.now()).Seconds(), l...)
	s.add(famFuture, float64(a.Future), l...)
	s.add(famExpired, float64(len(a.Expired)), l...)
	return nil
}

// ahead is how far past now the partitions cover without a gap: from now
// to the end of the partition holding now and of each one that follows it
// with no gap. 0 when no partition holds now; the largest duration when
// one runs to MAXVALUE.
func ahead(parts []partition.Partition, now time.Time) time.Duration {
	var end time.Time
	found := false
	for _, p := range parts { // in order of range, the default last
		switch {
		case p.Default:
		case !found && p.Contains(now):
			end, found = p.To, true
		case found && !end.IsZero() && p.From.Equal(end):
			end = p.To
		}
		if found && end.IsZero() {
			return math.MaxInt64
		}
	}
	if !found {
		return 0
	}
	return end.Sub(now)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
