package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// TableStats are the size, rows and maintenance history of one table.
// Partitions appear one by one, as PostgreSQL keeps their statistics.
type TableStats struct {
	Table Table `json:"table"`
	// Bytes is the total size: heap, indexes and TOAST.
	Bytes      int64 `json:"bytes"`
	IndexBytes int64 `json:"index_bytes"`
	LiveRows   int64 `json:"live_rows"`
	DeadRows   int64 `json:"dead_rows"`
	// DeadRatio is dead/(live+dead).
	DeadRatio         float64    `json:"dead_ratio"`
	ModifiedSinceAnal int64      `json:"modified_since_analyze"`
	SeqScans          int64      `json:"seq_scans"`
	IdxScans          int64      `json:"idx_scans"`
	LastVacuum        *time.Time `json:"last_vacuum,omitempty"`
	LastAutovacuum    *time.Time `json:"last_autovacuum,omitempty"`
	LastAnalyze       *time.Time `json:"last_analyze,omitempty"`
	LastAutoanalyze   *time.Time `json:"last_autoanalyze,omitempty"`
	// HitRatio and IndexHitRatio are the buffer cache hit ratios of the
	// heap and of the indexes (0 when never read).
	HitRatio      float64 `json:"hit_ratio"`
	IndexHitRatio float64 `json:"index_hit_ratio"`
	// Autovacuum: autovacuum processes this table (the server's autovacuum
	// setting and the table's autovacuum_enabled are both on).
	Autovacuum bool `json:"autovacuum"`
	// VacuumThreshold and AnalyzeThreshold are autovacuum's thresholds for
	// the table, from the server's settings and the table's storage
	// parameters: threshold + scale_factor x the rows pg_class estimates.
	// VACUUM is due past VacuumThreshold dead tuples, ANALYZE past
	// AnalyzeThreshold rows modified since the last analyze.
	VacuumThreshold  int64 `json:"vacuum_threshold"`
	AnalyzeThreshold int64 `json:"analyze_threshold"`
}

// LastAnalyzed is the later of the manual and automatic analyze, or nil.
func (t *TableStats) LastAnalyzed() *time.Time { return later(t.LastAnalyze, t.LastAutoanalyze) }

// LastVacuumed is the later of the manual and automatic vacuum, or nil.
func (t *TableStats) LastVacuumed() *time.Time { return later(t.LastVacuum, t.LastAutovacuum) }

func later(a, b *time.Time) *time.Time {
	if a == nil || b != nil && b.After(*a) {
		return b
	}
	return a
}

// Tables lists the user tables, largest first.
func (m *Monitor) Tables(ctx context.Context) ([]TableStats, error) {
	// A storage parameter overrides the server's setting; reltuples is -1
	// before the first VACUUM or ANALYZE, which autovacuum counts as 0.
	return list(ctx, m, "table statistics", `
SELECT s.schemaname::text, s.relname::text, pg_total_relation_size(s.relid), pg_indexes_size(s.relid),
       s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, s.seq_scan, coalesce(s.idx_scan, 0),
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       coalesce(io.heap_blks_hit::float8 / nullif(io.heap_blks_hit + io.heap_blks_read, 0), 0),
       coalesce(io.idx_blks_hit::float8 / nullif(io.idx_blks_hit + io.idx_blks_read, 0), 0),
       current_setting('autovacuum')::bool AND coalesce(o.enabled, 'on')::bool,
       (coalesce(o.vt, current_setting('autovacuum_vacuum_threshold'))::float8
          + coalesce(o.vs, current_setting('autovacuum_vacuum_scale_factor'))::float8 * greatest(c.reltuples, 0))::int8,
       (coalesce(o.at, current_setting('autovacuum_analyze_threshold'))::float8
          + coalesce(o.as_, current_setting('autovacuum_analyze_scale_factor'))::float8 * greatest(c.reltuples, 0))::int8
  FROM pg_stat_user_tables s
  JOIN pg_statio_user_tables io ON io.relid = s.relid
  JOIN pg_class c ON c.oid = s.relid
  LEFT JOIN LATERAL (
    SELECT max(option_value) FILTER (WHERE option_name = 'autovacuum_enabled') AS enabled,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_threshold') AS vt,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_vacuum_scale_factor') AS vs,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_threshold') AS at,
           max(option_value) FILTER (WHERE option_name = 'autovacuum_analyze_scale_factor') AS as_
      FROM pg_options_to_table(c.reloptions)) o ON true
 ORDER BY 3 DESC, 1, 2`, func(r scanner, t *TableStats) error {
		if err := r.Scan(&t.Table.Schema, &t.Table.Name, &t.Bytes, &t.IndexBytes, &t.LiveRows, &t.DeadRows, &t.ModifiedSinceAnal,
			&t.SeqScans, &t.IdxScans, &t.LastVacuum, &t.LastAutovacuum, &t.LastAnalyze, &t.LastAutoanalyze, &t.HitRatio, &t.IndexHitRatio,
			&t.Autovacuum, &t.VacuumThreshold, &t.AnalyzeThreshold); err != nil {
			return err
		}
		t.DeadRatio = ratio(float64(t.DeadRows), float64(t.LiveRows+t.DeadRows))
		return nil
	})
}

// CacheHit is the buffer cache hit ratio of the user tables and indexes of
// this database since the statistics were reset (0 when nothing was read).
type CacheHit struct {
	Table float64 `json:"table"`
	Index float64 `json:"index"`
	// TableBlocks and IndexBlocks are the blocks read (hits and misses).
	TableBlocks int64 `json:"table_blocks"`
	IndexBlocks int64 `json:"index_blocks"`
}

// CacheHitRatio returns the table and index buffer cache hit ratios.
func (m *Monitor) CacheHitRatio(ctx context.Context) (CacheHit, error) {
	var c CacheHit
	err := m.queryRows(ctx, "cache hit ratio", `
SELECT coalesce((SELECT sum(heap_blks_hit)::float8 / nullif(sum(heap_blks_hit) + sum(heap_blks_read), 0) FROM pg_statio_user_tables), 0),
       coalesce((SELECT sum(idx_blks_hit)::float8 / nullif(sum(idx_blks_hit) + sum(idx_blks_read), 0) FROM pg_statio_user_indexes), 0),
       coalesce((SELECT sum(heap_blks_hit + heap_blks_read) FROM pg_statio_user_tables), 0)::int8,
       coalesce((SELECT sum(idx_blks_hit + idx_blks_read) FROM pg_statio_user_indexes), 0)::int8`,
		func(r scanner) error { return r.Scan(&c.Table, &c.Index, &c.TableBlocks, &c.IndexBlocks) })
	return c, err
}

// SequenceUsage is how much of its range a sequence has used. The limit is
// the sequence's maximum or, for a sequence owned by a column (serial,
// identity), the largest value of the column's type when that is smaller: a
// bigint sequence feeding an integer column overflows at 2^31-1.
type SequenceUsage struct {
	Sequence Table `json:"sequence"`
	// Table and Column are the column that owns the sequence, if any.
	Table     *Table  `json:"table,omitempty"`
	Column    string  `json:"column,omitempty"`
	LastValue int64   `json:"last_value"`
	Limit     int64   `json:"limit"`
	Used      float64 `json:"used"`
}

// Sequences lists the sequences that were used, most used share first.
func (m *Monitor) Sequences(ctx context.Context) ([]SequenceUsage, error) {
	return list(ctx, m, "sequences", `
WITH seq AS (
  SELECT s.schemaname::text AS schema, s.sequencename::text AS name, s.last_value, s.min_value, s.max_value, s.increment_by,
         (SELECT json_build_array(tn.nspname::text, t.relname::text, a.attname::text, format_type(a.atttypid, NULL))::text
            FROM pg_depend d
            JOIN pg_class t ON t.oid = d.refobjid
            JOIN pg_namespace tn ON tn.oid = t.relnamespace
            JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
           WHERE d.objid = format('%I.%I', s.schemaname, s.sequencename)::regclass
             AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
             AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
           LIMIT 1) AS owner
    FROM pg_sequences s
   WHERE s.last_value IS NOT NULL
), lim AS (
  SELECT schema, name, owner, last_value, min_value, increment_by,
         CASE WHEN increment_by > 0 THEN least(max_value, CASE owner::json->>3
                WHEN 'smallint' THEN 32767 WHEN 'integer' THEN 2147483647 ELSE max_value END)
              ELSE greatest(min_value, CASE owner::json->>3
                WHEN 'smallint' THEN -32768 WHEN 'integer' THEN -2147483648 ELSE min_value END) END AS lim,
         CASE WHEN increment_by > 0 THEN min_value ELSE max_value END AS start
    FROM seq
)
SELECT schema, name, coalesce(owner, ''), last_value, lim,
       (last_value - start)::float8 / nullif(lim - start, 0)::float8
  FROM lim
 ORDER BY 6 DESC NULLS LAST, 1, 2`, func(r scanner, s *SequenceUsage) error {
		var used *float64
		var owner string
		if err := r.Scan(&s.Sequence.Schema, &s.Sequence.Name, &owner, &s.LastValue, &s.Limit, &used); err != nil {
			return err
		}
		if owner != "" {
			var o []string // schema, table, column, type
			if err := json.Unmarshal([]byte(owner), &o); err != nil || len(o) != 4 {
				return fmt.Errorf("sequence owner %q: %v", owner, err)
			}
			s.Table, s.Column = &Table{Schema: o[0], Name: o[1]}, o[2]
		}
		if used != nil {
			s.Used = *used
		}
		return nil
	})
}

// Wraparound is the transaction ID age of this database and of its oldest
// tables: at 2^31 the server stops accepting writes.
type Wraparound struct {
	Database string `json:"database"`
	Age      int64  `json:"age"`
	// FreezeMaxAge is autovacuum_freeze_max_age: past it autovacuum freezes
	// tables on its own.
	FreezeMaxAge int64 `json:"freeze_max_age"`
	// Tables are the five oldest tables.
	Tables []TableAge `json:"tables"`
}

// TableAge is the transaction ID age of one table (its TOAST included).
type TableAge struct {
	Table Table `json:"table"`
	Age   int64 `json:"age"`
}

// Wraparound returns the transaction ID age of this database.
func (m *Monitor) Wraparound(ctx context.Context) (Wraparound, error) {
	w := Wraparound{Tables: []TableAge{}}
	err := m.q.QueryRowContext(ctx, `
SELECT datname::text, age(datfrozenxid)::int8, current_setting('autovacuum_freeze_max_age')::int8
  FROM pg_database WHERE datname = current_database()`).Scan(&w.Database, &w.Age, &w.FreezeMaxAge)
	if err != nil {
		return w, err
	}
	err = m.queryRows(ctx, "table ages", `
SELECT n.nspname::text, c.relname::text, greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0))::int8
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
 WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
 ORDER BY 3 DESC, 1, 2 LIMIT 5`, func(r scanner) error {
		var t TableAge
		err := r.Scan(&t.Table.Schema, &t.Table.Name, &t.Age)
		w.Tables = append(w.Tables, t)
		return err
	})
	return w, err
}

// Activity is what the server is doing now.
type Activity struct {
	MaxConnections int `json:"max_connections"`
	// Connections counts the client backends of all databases by state
	// (active, idle, idle in transaction...).
	Connections map[string]int `json:"connections"`
	Total       int            `json:"total"`
	// LongRunning are the queries running, and the transactions open, for
	// at least Thresholds.LongQueryWarning, longest first.
	LongRunning []Backend `json:"long_running"`
	// Blocked are the backends waiting for a lock another holds.
	Blocked []Backend `json:"blocked"`
}

// Backend is one server process of interest. Query is the text as
// pg_stat_activity shows it (it may hold literals: do not log it).
type Backend struct {
	PID       int           `json:"pid"`
	User      string        `json:"user"`
	Database  string        `json:"database"`
	State     string        `json:"state"`
	WaitEvent string        `json:"wait_event,omitempty"`
	QueryAge  time.Duration `json:"query_age_ns"`
	XactAge   time.Duration `json:"xact_age_ns"`
	Query     string        `json:"query"`
	BlockedBy []int         `json:"blocked_by,omitempty"`
}

// Activity reads pg_stat_activity.
func (m *Monitor) Activity(ctx context.Context) (Activity, error) {
	a := Activity{Connections: map[string]int{}}
	if err := m.q.QueryRowContext(ctx, `SELECT current_setting('max_connections')::int`).Scan(&a.MaxConnections); err != nil {
		return a, err
	}
	err := m.queryRows(ctx, "connections", `
SELECT coalesce(state, 'unknown'), count(*)::int FROM pg_stat_activity
 WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 1`, func(r scanner) error {
		var state string
		var n int
		err := r.Scan(&state, &n)
		a.Connections[state] += n
		a.Total += n
		return err
	})
	if err != nil {
		return a, err
	}
	backends := func(what, where string, args ...any) ([]Backend, error) {
		out := []Backend{}
		err := m.queryRows(ctx, what, `
SELECT pid, coalesce(usename::text, ''), coalesce(datname::text, ''), coalesce(state, ''),
       coalesce(wait_event_type || ':' || wait_event, ''),
       coalesce(extract(epoch FROM clock_timestamp() - query_start), 0)::float8,
       coalesce(extract(epoch FROM clock_timestamp() - xact_start), 0)::float8,
       query, coalesce(pg_blocking_pids(pid), '{}')::text
  FROM pg_stat_activity
 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND `+where+`
 ORDER BY greatest(clock_timestamp() - query_start, clock_timestamp() - xact_start) DESC NULLS LAST`, func(r scanner) error {
			var b Backend
			var qAge, xAge float64
			var blockers string
			if err := r.Scan(&b.PID, &b.User, &b.Database, &b.State, &b.WaitEvent, &qAge, &xAge, &b.Query, &blockers); err != nil {
				return err
			}
			b.QueryAge, b.XactAge = time.Duration(qAge*float64(time.Second)), time.Duration(xAge*float64(time.Second))
			b.BlockedBy = parseIntArray(blockers)
			out = append(out, b)
			return nil
		}, args...)
		return out, err
	}
	secs := m.th.LongQueryWarning.Seconds()
	if a.LongRunning, err = backends("long-running queries",
		`(state = 'active' AND query_start < clock_timestamp() - make_interval(secs => $1)
		  OR xact_start < clock_timestamp() - make_interval(secs => $1))`, secs); err != nil {
		return a, err
	}
	a.Blocked, err = backends("blocked queries", `cardinality(pg_blocking_pids(pid)) > 0`)
	return a, err
}

// parseIntArray parses a PostgreSQL int[] text: "{1,2}".
func parseIntArray(s string) []int {
	var out []int
	n, in := 0, false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			n, in = n*10+int(c-'0'), true
		case in:
			out, n, in = append(out, n), 0, false
		}
	}
	return out
}
