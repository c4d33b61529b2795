package monitor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// StatementsStatus says whether pg_stat_statements can be read, and if not,
// exactly what to change.
type StatementsStatus struct {
	// Available: the extension's library can be installed in this database.
	Available bool `json:"available"`
	// Preloaded: shared_preload_libraries names pg_stat_statements (needs a
	// server restart to change).
	Preloaded bool `json:"preloaded"`
	// Installed: CREATE EXTENSION pg_stat_statements was run in this
	// database; Schema is where its view lives.
	Installed bool   `json:"installed"`
	Schema    string `json:"schema,omitempty"`
	// QueryIDComputed: compute_query_id is on or auto (PostgreSQL 14+; the
	// module turns auto on), without which no statement is tracked.
	QueryIDComputed bool `json:"query_id_computed"`
	// SharedPreloadLibraries is the current setting, as the server reports it.
	SharedPreloadLibraries string `json:"shared_preload_libraries"`
	// Ready: statistics can be read.
	Ready bool `json:"ready"`
	// Advice lists the changes to make, in order, when not Ready (empty
	// when Ready).
	Advice []string `json:"advice"`
}

// StatementsStatus checks pg_stat_statements without touching its statistics.
func (m *Monitor) StatementsStatus(ctx context.Context) (StatementsStatus, error) {
	var st StatementsStatus
	var schema *string
	var queryID string
	err := m.q.QueryRowContext(ctx, `
SELECT current_setting('shared_preload_libraries'),
       CASE WHEN EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') THEN true -- pg_available_extensions reads files: only when needed
            ELSE EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements') END,
       (SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'pg_stat_statements'),
       coalesce(current_setting('compute_query_id', true), 'on')`).
		Scan(&st.SharedPreloadLibraries, &st.Available, &schema, &queryID)
	if err != nil {
		return st, fmt.Errorf("monitor: check pg_stat_statements: %w", err)
	}
	st.Preloaded = slices.Contains(splitLibraries(st.SharedPreloadLibraries), "pg_stat_statements")
	if schema != nil {
		st.Installed, st.Schema = true, *schema
	}
	st.QueryIDComputed = queryID != "off"
	st.advise()
	return st, nil
}

// advise fills Advice and Ready from what was found.
func (st *StatementsStatus) advise() {
	st.Advice = []string{}
	if !st.Available {
		st.Advice = append(st.Advice, "install the server's contrib modules (Debian: postgresql-contrib or postgresql-NN; RPM: postgresqlNN-contrib), which provide pg_stat_statements")
	}
	if !st.Preloaded {
		libs := append(splitLibraries(st.SharedPreloadLibraries), "pg_stat_statements")
		st.Advice = append(st.Advice,
			fmt.Sprintf("set shared_preload_libraries = '%s' in postgresql.conf (or ALTER SYSTEM SET shared_preload_libraries = '%s'), then restart the server: a reload is not enough",
				strings.Join(libs, ","), strings.Join(libs, ",")))
	}
	if !st.QueryIDComputed {
		st.Advice = append(st.Advice, "set compute_query_id = auto (or on) in postgresql.conf and reload: with it off pg_stat_statements tracks nothing")
	}
	if !st.Installed {
		st.Advice = append(st.Advice, "run CREATE EXTENSION pg_stat_statements; in this database (as a superuser or the database owner)")
	}
	st.Ready = st.Available && st.Preloaded && st.Installed && st.QueryIDComputed
}

// splitLibraries splits a shared_preload_libraries value into its names.
func splitLibraries(s string) []string {
	var out []string
	for _, l := range strings.Split(s, ",") {
		if l = strings.Trim(strings.TrimSpace(l), `"`); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// stmtView is the pg_stat_statements view of this database: its quoted
// name and its columns, which differ between PostgreSQL versions.
type stmtView struct {
	name string
	cols map[string]bool
}

// statementsView returns the pg_stat_statements view, or
// ErrStatementsUnavailable with the advice. st, when not nil, is a status
// just read (to save reading it again).
func (m *Monitor) statementsView(ctx context.Context, st *StatementsStatus) (*stmtView, error) {
	if st == nil {
		s, err := m.StatementsStatus(ctx)
		if err != nil {
			return nil, err
		}
		st = &s
	}
	if !st.Ready {
		return nil, fmt.Errorf("%w: %s", ErrStatementsUnavailable, strings.Join(st.Advice, "; "))
	}
	v := &stmtView{name: pgx.Identifier{st.Schema, "pg_stat_statements"}.Sanitize(), cols: map[string]bool{}}
	err := m.queryRows(ctx, "pg_stat_statements columns", `
SELECT a.attname::text FROM pg_attribute a
 WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
		func(r scanner) error {
			var c string
			err := r.Scan(&c)
			v.cols[c] = true
			return err
		}, v.name)
	return v, err
}

// SlowQuery is one row of pg_stat_statements for this database. Times are
// planning plus execution where the server tracks planning
// (pg_stat_statements.track_planning).
type SlowQuery struct {
	QueryID  int64  `json:"query_id"`
	Query    string `json:"query"`
	TopLevel bool   `json:"top_level"`
	Calls    int64  `json:"calls"`
	Rows     int64  `json:"rows"`
	// Total and Mean include planning time when it is tracked.
	Total time.Duration `json:"total_ns"`
	Mean  time.Duration `json:"mean_ns"`
	// Plan is the planning share of Total (0 unless track_planning).
	Plan time.Duration `json:"plan_ns"`
	// SharedHit and SharedRead are shared buffer hits and reads (blocks);
	// HitRatio is SharedHit/(SharedHit+SharedRead).
	SharedHit  int64   `json:"shared_blks_hit"`
	SharedRead int64   `json:"shared_blks_read"`
	HitRatio   float64 `json:"hit_ratio"`
	// ReadTime is the time spent reading blocks (track_io_timing).
	ReadTime time.Duration `json:"read_time_ns"`
	// PercentOfTotal is this statement's share of the time of all statements.
	PercentOfTotal float64 `json:"percent_of_total"`
}

// SlowQueryOptions filter SlowQueries. Zero values mean: no filter, 20 rows.
type SlowQueryOptions struct {
	MinCalls int64
	MinMean  time.Duration
	MinTotal time.Duration
	// OrderByTotal sorts by total time instead of mean time.
	OrderByTotal bool
	Limit        int
}

// SlowQueries returns the statements of this database from
// pg_stat_statements, slowest first. It works on PostgreSQL 13 to 17, whose
// column names differ, by reading the view's columns first. It never resets
// the statistics (see ResetStatements).
func (m *Monitor) SlowQueries(ctx context.Context, o SlowQueryOptions) ([]SlowQuery, error) {
	v, err := m.statementsView(ctx, nil)
	if err != nil {
		return nil, err
	}
	return m.slowQueries(ctx, v, o)
}

func (m *Monitor) slowQueries(ctx context.Context, v *stmtView, o SlowQueryOptions) ([]SlowQuery, error) {
	e := statementsExprs(v.cols)
	order := "mean_ms"
	if o.OrderByTotal {
		order = "total_ms"
	}
	limit := o.Limit
	if limit <= 0 {
		limit = 20
	}
	// Every fragment above is one of our constants: no user text in the SQL.
	q := `
WITH s AS (
  SELECT coalesce(queryid, 0) AS queryid, query, ` + e.topLevel + ` AS toplevel, calls, rows,
         (` + e.total + `)::float8 AS total_ms, (` + e.plan + `)::float8 AS plan_ms,
         shared_blks_hit, shared_blks_read, (` + e.readTime + `)::float8 AS read_ms,
         sum((` + e.total + `)::float8) OVER () AS all_ms
    FROM ` + v.name + `
   WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND calls > 0
)
SELECT queryid, query, toplevel, calls, rows, total_ms, plan_ms, total_ms / calls AS mean_ms,
       shared_blks_hit, shared_blks_read, read_ms, coalesce(100 * total_ms / nullif(all_ms, 0), 0)
  FROM s
 WHERE calls >= $1 AND total_ms / calls >= $2 AND total_ms >= $3
 ORDER BY ` + order + ` DESC
 LIMIT $4`
	out := []SlowQuery{}
	err := m.queryRows(ctx, "pg_stat_statements", q, func(r scanner) error {
		var s SlowQuery
		var totalMS, planMS, meanMS, readMS float64
		if err := r.Scan(&s.QueryID, &s.Query, &s.TopLevel, &s.Calls, &s.Rows, &totalMS, &planMS, &meanMS,
			&s.SharedHit, &s.SharedRead, &readMS, &s.PercentOfTotal); err != nil {
			return err
		}
		s.Total, s.Plan, s.Mean, s.ReadTime = ms(totalMS), ms(planMS), ms(meanMS), ms(readMS)
		s.HitRatio = ratio(float64(s.SharedHit), float64(s.SharedHit+s.SharedRead))
		out = append(out, s)
		return nil
	}, o.MinCalls, float64(o.MinMean)/float64(time.Millisecond), float64(o.MinTotal)/float64(time.Millisecond), limit)
	return out, err
}

// stmtExprs are the SQL expressions for the figures whose columns differ
// between PostgreSQL versions.
type stmtExprs struct{ total, plan, readTime, topLevel string }

// statementsExprs picks the expressions from the view's columns:
// total_time before 13; total_exec_time, plus total_plan_time, from 13;
// blk_read_time before 17, shared_blk_read_time from 17; toplevel from 14.
func statementsExprs(cols map[string]bool) stmtExprs {
	e := stmtExprs{total: "total_time", plan: "0", readTime: "0", topLevel: "true"}
	if cols["total_exec_time"] {
		e.total = "total_exec_time"
		if cols["total_plan_time"] {
			e.total, e.plan = "total_exec_time + total_plan_time", "total_plan_time"
		}
	}
	switch {
	case cols["shared_blk_read_time"]:
		e.readTime = "shared_blk_read_time"
	case cols["blk_read_time"]:
		e.readTime = "blk_read_time"
	}
	if cols["toplevel"] {
		e.topLevel = "toplevel"
	}
	return e
}

// ResetStatements clears pg_stat_statements, for all databases: the only
// call in this package that does.
func (m *Monitor) ResetStatements(ctx context.Context) error {
	v, err := m.statementsView(ctx, nil)
	if err != nil {
		return err
	}
	schema := strings.TrimSuffix(v.name, `."pg_stat_statements"`)
	if _, err := m.db.ExecContext(ctx, `SELECT `+schema+`.pg_stat_statements_reset()`); err != nil {
		return fmt.Errorf("monitor: reset pg_stat_statements (needs superuser or a GRANT EXECUTE on pg_stat_statements_reset): %w", err)
	}
	return nil
}

// ms converts milliseconds to a Duration.
func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
