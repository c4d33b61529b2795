package monitor

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Summary is the whole picture in one report.
type Summary struct {
	Taken  time.Time  `json:"taken"`
	Server ServerInfo `json:"server"`
	// Statements says whether pg_stat_statements can be read; SlowQueries
	// are those whose mean time is at least Thresholds.SlowQueryMean, and
	// TopQueries the ten with the highest total time.
	Statements  StatementsStatus    `json:"statements"`
	SlowQueries []SlowQuery         `json:"slow_queries"`
	TopQueries  []SlowQuery         `json:"top_queries"`
	Indexes     *IndexReport        `json:"indexes"`
	Tables      []TableStats        `json:"tables"`
	Maintenance []MaintenanceAction `json:"maintenance"`
	CacheHit    CacheHit            `json:"cache_hit"`
	Sequences   []SequenceUsage     `json:"sequences"`
	Wraparound  Wraparound          `json:"wraparound"`
	Activity    Activity            `json:"activity"`
	// Partitions lists the partitioned tables.
	Partitions []PartitionedTable `json:"partitions"`
	// ReplicationSlots lists the server's replication slots.
	ReplicationSlots []ReplicationSlot `json:"replication_slots"`
	// Driver holds the database driver's own statistics, when a
	// WithDriverStats option read them; it is marshalled as it is.
	Driver DriverStats `json:"driver,omitempty"`
	Health Health      `json:"health"`
}

// DriverStats are a database driver's own statistics, as a WithDriverStats
// option reads them for the summary. The summary's JSON carries the value as
// it marshals; the health status judges the figures DriverHealth returns.
type DriverStats interface {
	DriverHealth() DriverHealth
}

// DriverHealth are the figures of a driver's statistics that the "driver"
// component of the health status judges.
type DriverHealth struct {
	// Calls counts the calls of every kind (queries, execs, prepares,
	// begins, commits, rollbacks, pings); Errors those that failed; Slow
	// those at or above the driver's slow-query threshold.
	Calls, Errors, Slow int64
	// ConnectFailures counts the failed connection attempts.
	ConnectFailures int64
	// PoolWaits counts the waits for a free connection of the pool, and
	// PoolWaitDuration is their total.
	PoolWaits        int64
	PoolWaitDuration time.Duration
	// CacheHits and CacheMisses count the cacheable reads of a result cache
	// (0 without one), and CacheHitRatio is hits over both.
	CacheHits, CacheMisses int64
	CacheHitRatio          float64
}

// WithDriverStats makes Summary (and Health) read the driver's own
// statistics with read, given the Monitor's *sql.DB. read returns nil and
// no error when the *sql.DB keeps no statistics (another driver); an error
// fails the summary. For the auditpg driver, read wraps auditpg.Stats.
func WithDriverStats(read func(*sql.DB) (DriverStats, error)) Option {
	if read == nil {
		return failed("monitor: WithDriverStats(nil): want a function that reads the driver's statistics")
	}
	return func(m *Monitor) error { m.driverStats = read; return nil }
}

// ServerInfo identifies the server and database.
type ServerInfo struct {
	Version       string     `json:"version"`
	VersionNum    int        `json:"version_num"`
	Database      string     `json:"database"`
	DatabaseBytes int64      `json:"database_bytes"`
	StartedAt     time.Time  `json:"started_at"`
	StatsReset    *time.Time `json:"stats_reset,omitempty"`
}

// PartitionedTable is a partitioned table with its partitions.
type PartitionedTable struct {
	Table Table `json:"table"`
	// Strategy is range, list or hash.
	Strategy   string `json:"strategy"`
	Partitions int    `json:"partitions"`
	Bytes      int64  `json:"bytes"`
	// Default is the default partition, if any; DefaultRows its rows
	// (counted up to a million): rows there have no partition of their own.
	Default     *Table `json:"default,omitempty"`
	DefaultRows int64  `json:"default_rows"`
}

// Summary gathers every report and the health status. Index suggestions
// are included unchecked (Indexes with HypoPG is the thorough path).
func (m *Monitor) Summary(ctx context.Context) (*Summary, error) {
	return inReadTx(ctx, m, func(m *Monitor) (*Summary, error) { return m.summary(ctx) })
}

func (m *Monitor) summary(ctx context.Context) (*Summary, error) {
	s := &Summary{Taken: time.Now(), SlowQueries: []SlowQuery{}, TopQueries: []SlowQuery{}}
	err := m.q.QueryRowContext(ctx, `
SELECT current_setting('server_version'), current_setting('server_version_num')::int, current_database()::text,
       pg_database_size(current_database()), pg_postmaster_start_time(),
       (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())`).
		Scan(&s.Server.Version, &s.Server.VersionNum, &s.Server.Database, &s.Server.DatabaseBytes, &s.Server.StartedAt, &s.Server.StatsReset)
	if err != nil {
		return nil, fmt.Errorf("monitor: server: %w", err)
	}
	if s.Statements, err = m.StatementsStatus(ctx); err != nil {
		return nil, err
	}
	var view *stmtView
	if s.Statements.Ready {
		if view, err = m.statementsView(ctx, &s.Statements); err != nil {
			return nil, err
		}
		if s.SlowQueries, err = m.slowQueries(ctx, view, SlowQueryOptions{MinCalls: m.th.SlowQueryMinCalls, MinMean: m.th.SlowQueryMean}); err != nil {
			return nil, err
		}
		if s.TopQueries, err = m.slowQueries(ctx, view, SlowQueryOptions{OrderByTotal: true, Limit: 10}); err != nil {
			return nil, err
		}
	}
	if s.Indexes, err = m.indexes(ctx, view); err != nil {
		return nil, err
	}
	if s.Tables, err = m.Tables(ctx); err != nil {
		return nil, err
	}
	s.Maintenance = m.planMaintenance(s.Tables, s.Indexes.Invalid)
	if s.CacheHit, err = m.CacheHitRatio(ctx); err != nil {
		return nil, err
	}
	if s.Sequences, err = m.Sequences(ctx); err != nil {
		return nil, err
	}
	if s.Wraparound, err = m.Wraparound(ctx); err != nil {
		return nil, err
	}
	if s.Activity, err = m.Activity(ctx); err != nil {
		return nil, err
	}
	if s.Partitions, err = m.Partitions(ctx); err != nil {
		return nil, err
	}
	if s.ReplicationSlots, err = m.ReplicationSlots(ctx); err != nil {
		return nil, err
	}
	if m.driverStats != nil {
		if s.Driver, err = m.driverStats(m.db); err != nil {
			return nil, fmt.Errorf("monitor: driver statistics: %w", err)
		}
	}
	s.Health = m.health(s)
	return s, nil
}

// Partitions lists the top-level partitioned tables with their leaf
// partitions, read from the catalog (pg_partitioned_table, pg_inherits).
func (m *Monitor) Partitions(ctx context.Context) ([]PartitionedTable, error) {
	return inReadTx(ctx, m, func(m *Monitor) ([]PartitionedTable, error) { return m.partitions(ctx) })
}

func (m *Monitor) partitions(ctx context.Context) ([]PartitionedTable, error) {
	out := []PartitionedTable{}
	err := m.queryRows(ctx, "partitioned tables", `
SELECT n.nspname::text, c.relname::text,
       CASE p.partstrat WHEN 'r' THEN 'range' WHEN 'l' THEN 'list' WHEN 'h' THEN 'hash' ELSE p.partstrat::text END,
       (SELECT count(*) FROM pg_partition_tree(c.oid) t WHERE t.isleaf)::int,
       (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t WHERE t.isleaf)::int8,
       coalesce(dn.nspname::text, ''), coalesce(d.relname::text, '')
  FROM pg_partitioned_table p
  JOIN pg_class c ON c.oid = p.partrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class d ON d.oid = p.partdefid
  LEFT JOIN pg_namespace dn ON dn.oid = d.relnamespace
 WHERE NOT c.relispartition
 ORDER BY 1, 2`, func(r scanner) error {
		var p PartitionedTable
		var defSchema, defName string
		if err := r.Scan(&p.Table.Schema, &p.Table.Name, &p.Strategy, &p.Partitions, &p.Bytes, &defSchema, &defName); err != nil {
			return err
		}
		if defName != "" {
			p.Default = &Table{Schema: defSchema, Name: defName}
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		def := out[i].Default
		if def == nil {
			continue
		}
		// Bounded: a million rows in a default partition is news enough.
		err := m.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+def.String()+` LIMIT 1000000) d`).Scan(&out[i].DefaultRows)
		if err != nil {
			return nil, fmt.Errorf("monitor: count rows of default partition %s: %w", def, err)
		}
	}
	return out, nil
}
