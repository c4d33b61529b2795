package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/jackc/pgx/v5"
)

// SuggestOptions control SuggestIndexes.
type SuggestOptions struct {
	// Statements is how many of the top statements by total time to read;
	// default 50.
	Statements int
	// MinCalls skips statements called fewer times; default 1.
	MinCalls int64
	// CheckHypothetical checks each suggestion with a HypoPG hypothetical
	// index when the extension is available: the planner's estimated cost
	// of the statement before and after. If HypoPG is not installed in the
	// database it is created inside a transaction that is rolled back.
	CheckHypothetical bool
}

// IndexSuggestions are the indexes suggested from the top statements.
type IndexSuggestions struct {
	// HypoPG says whether the suggestions were checked with hypothetical
	// indexes, and if not, why.
	HypoPG      string            `json:"hypopg"`
	Checked     bool              `json:"checked"`
	Suggestions []IndexSuggestion `json:"suggestions"`
}

// IndexSuggestion is one index that the WHERE and ORDER BY columns of one or
// more single-table statements call for: equality columns first, most
// selective first, then one range or the ORDER BY columns.
type IndexSuggestion struct {
	Table     Table           `json:"table"`
	Columns   []ColumnStats   `json:"columns"`
	CreateSQL string          `json:"create_sql"`
	Queries   []SuggestionFor `json:"queries"`
}

// ColumnStats is what pg_stats says of a column: its estimated distinct
// values (0: not analyzed) and the correlation of its order with the
// table's physical order.
type ColumnStats struct {
	Name        string  `json:"name"`
	Distinct    float64 `json:"distinct"`
	Correlation float64 `json:"correlation"`
	NullFrac    float64 `json:"null_frac"`
}

// SuggestionFor is a statement that would use a suggested index, with the
// HypoPG estimate when it was checked.
type SuggestionFor struct {
	QueryID    int64   `json:"query_id"`
	Query      string  `json:"query"`
	Calls      int64   `json:"calls"`
	TotalMS    float64 `json:"total_ms"`
	CostBefore float64 `json:"cost_before,omitempty"`
	CostAfter  float64 `json:"cost_after,omitempty"`
	// UsesIndex: the plan with the hypothetical index uses it.
	UsesIndex bool   `json:"uses_index"`
	CheckErr  string `json:"check_error,omitempty"`
}

type tableRef struct {
	oid           int64
	schema, table string
	rows          float64
	indexes       [][]string // key column names of each valid index
	columns       map[string]ColumnStats
}

// SuggestIndexes reads the top statements of pg_stat_statements and
// suggests indexes for the WHERE and ORDER BY columns of the single-table
// reads that no index serves yet. Statements are parsed, not searched as
// text; columns are checked against the table's.
func (m *Monitor) SuggestIndexes(ctx context.Context, o SuggestOptions) (*IndexSuggestions, error) {
	v, err := m.statementsView(ctx, nil)
	if err != nil {
		return nil, err
	}
	return m.suggestIndexes(ctx, v, o)
}

func (m *Monitor) suggestIndexes(ctx context.Context, v *stmtView, o SuggestOptions) (*IndexSuggestions, error) {
	if o.Statements <= 0 {
		o.Statements = 50
	}
	if o.MinCalls <= 0 {
		o.MinCalls = 1
	}
	top, err := m.slowQueries(ctx, v, SlowQueryOptions{MinCalls: o.MinCalls, OrderByTotal: true, Limit: o.Statements})
	if err != nil {
		return nil, err
	}
	tables := map[string]*tableRef{}
	byKey := map[string]*IndexSuggestion{}
	var order []string
	for _, q := range top {
		st := sqlclass.Classify(q.Query)
		if st.Kind != sqlclass.KindSelect || !st.ReadOnly || st.MultiStatement || len(st.Reads) != 1 {
			continue
		}
		t, ok := tables[st.Reads[0]]
		if !ok {
			if t, err = m.tableRef(ctx, st.Reads[0]); err != nil {
				return nil, err
			}
			tables[st.Reads[0]] = t
		}
		if t == nil {
			continue // not a user table
		}
		cols := t.indexColumns(queryColumns(q.Query))
		if len(cols) == 0 || t.hasIndexOn(cols) {
			continue
		}
		key := t.schema + "." + t.table + "(" + strings.Join(cols, ",") + ")"
		s := byKey[key]
		if s == nil {
			s = &IndexSuggestion{Table: Table{Schema: t.schema, Name: t.table}, CreateSQL: createIndexSQL(t.schema, t.table, cols, true)}
			for _, c := range cols {
				s.Columns = append(s.Columns, t.columns[c])
			}
			byKey[key] = s
			order = append(order, key)
		}
		s.Queries = append(s.Queries, SuggestionFor{QueryID: q.QueryID, Query: q.Query, Calls: q.Calls, TotalMS: float64(q.Total.Microseconds()) / 1000})
	}
	out := &IndexSuggestions{Suggestions: []IndexSuggestion{}}
	for _, k := range order {
		out.Suggestions = append(out.Suggestions, *byKey[k])
	}
	out.HypoPG = "not requested"
	if o.CheckHypothetical {
		if out.HypoPG, out.Checked, err = m.checkHypothetical(ctx, out.Suggestions); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// createIndexSQL builds a CREATE INDEX statement for plain columns.
func createIndexSQL(schema, table string, cols []string, concurrently bool) string {
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	cc := ""
	if concurrently {
		cc = "CONCURRENTLY "
	}
	return "CREATE INDEX " + cc + "ON " + pgx.Identifier{schema, table}.Sanitize() + " (" + strings.Join(quoted, ", ") + ")"
}

// tableRef resolves a table name as the classifier wrote it (quoted parts
// kept, unquoted folded) and reads its columns' statistics and its indexes;
// nil when it is not a user table.
func (m *Monitor) tableRef(ctx context.Context, name string) (*tableRef, error) {
	t := &tableRef{columns: map[string]ColumnStats{}}
	err := m.q.QueryRowContext(ctx, `
SELECT c.oid::int8, n.nspname::text, c.relname::text, greatest(c.reltuples, 0)::float8
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p', 'm')
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`,
		pgx.Identifier(strings.Split(name, ".")).Sanitize()).Scan(&t.oid, &t.schema, &t.table, &t.rows)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("monitor: resolve table %q: %w", name, err)
	}
	err = m.queryRows(ctx, "column statistics", `
SELECT a.attname::text, coalesce(s.n_distinct, 0)::float8, coalesce(s.correlation, 0)::float8, coalesce(s.null_frac, 0)::float8
  FROM pg_attribute a
  LEFT JOIN pg_stats s ON s.schemaname = $2 AND s.tablename = $3 AND s.attname = a.attname
 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped`, func(r scanner) error {
		var c ColumnStats
		if err := r.Scan(&c.Name, &c.Distinct, &c.Correlation, &c.NullFrac); err != nil {
			return err
		}
		if c.Distinct < 0 { // a fraction of the rows
			c.Distinct = -c.Distinct * t.rows
		}
		t.columns[c.Name] = c
		return nil
	}, t.oid, t.schema, t.table)
	if err != nil {
		return nil, err
	}
	err = m.queryRows(ctx, "index columns", `
SELECT array_to_string(array(
         SELECT coalesce(a.attname::text, '') FROM unnest(i.indkey[0:i.indnkeyatts-1]) WITH ORDINALITY k(attnum, ord)
           LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          ORDER BY k.ord), ',')
  FROM pg_index i WHERE i.indrelid = $1 AND i.indisvalid AND i.indpred IS NULL`, func(r scanner) error {
		var cols string
		err := r.Scan(&cols)
		t.indexes = append(t.indexes, strings.Split(cols, ","))
		return err
	}, t.oid)
	return t, err
}

// indexColumns orders the statement's columns for an index: equality
// columns by selectivity (most distinct values first), then the most
// selective range column, or else the ORDER BY columns; at most 3.
func (t *tableRef) indexColumns(where []columnUse, orderBy []string) []string {
	var eq, rng []string
	for _, u := range where {
		if _, ok := t.columns[u.name]; !ok || slices.Contains(eq, u.name) || slices.Contains(rng, u.name) {
			continue
		}
		if u.equality {
			eq = append(eq, u.name)
		} else {
			rng = append(rng, u.name)
		}
	}
	bySelectivity := func(a, b string) int {
		da, db := t.columns[a].Distinct, t.columns[b].Distinct
		switch {
		case da > db:
			return -1
		case da < db:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(eq, bySelectivity)
	slices.SortStableFunc(rng, bySelectivity)
	cols := eq
	if len(rng) > 0 {
		cols = append(cols, rng[0])
	} else {
		for _, c := range orderBy {
			if _, ok := t.columns[c]; ok && !slices.Contains(cols, c) {
				cols = append(cols, c)
			}
		}
	}
	return firstN(cols, 3)
}

// hasIndexOn reports whether an index already starts with cols.
func (t *tableRef) hasIndexOn(cols []string) bool {
	for _, ix := range t.indexes {
		if len(ix) >= len(cols) && slices.Equal(ix[:len(cols)], cols) {
			return true
		}
	}
	return false
}

// checkHypothetical estimates each suggestion's effect with HypoPG, on one
// connection, inside a transaction that is rolled back.
func (m *Monitor) checkHypothetical(ctx context.Context, sugg []IndexSuggestion) (status string, checked bool, err error) {
	if len(sugg) == 0 {
		return "nothing to check", false, nil
	}
	var available bool
	if err := m.q.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')`).Scan(&available); err != nil {
		return "", false, fmt.Errorf("monitor: check hypopg: %w", err)
	}
	if !available {
		return "not available: suggestions are not checked (install the hypopg extension, e.g. Debian package postgresql-NN-hypopg, to estimate them)", false, nil
	}
	version, err := m.serverVersion(ctx)
	if err != nil {
		return "", false, err
	}
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return "", false, fmt.Errorf("monitor: hypopg: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // nothing here is kept
	var schema *string
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hypopg')`).Scan(&schema); err != nil {
		return "", false, fmt.Errorf("monitor: hypopg: %w", err)
	}
	if schema == nil {
		if _, err := tx.ExecContext(ctx, `CREATE EXTENSION hypopg`); err != nil {
			return "available but not installed, and CREATE EXTENSION hypopg failed (" + err.Error() + "): suggestions are not checked", false, nil
		}
		if err := tx.QueryRowContext(ctx, `SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hypopg'`).Scan(&schema); err != nil {
			return "", false, fmt.Errorf("monitor: hypopg: %w", err)
		}
	}
	fn := pgx.Identifier{*schema}.Sanitize() + "."
	for i := range sugg {
		s := &sugg[i]
		for j := range s.Queries {
			q := &s.Queries[j]
			if err := m.hypoCheck(ctx, tx, fn, version, s, q); err != nil {
				q.CheckErr = err.Error()
			}
		}
	}
	return "checked with hypothetical indexes (HypoPG)", true, nil
}

// hypoCheck estimates one statement's cost without and with one
// hypothetical index, inside a savepoint.
func (m *Monitor) hypoCheck(ctx context.Context, tx *sql.Tx, fn string, version int, s *IndexSuggestion, q *SuggestionFor) (err error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT auditpg_monitor_hypo`); err != nil {
		return err
	}
	defer func() {
		if _, e := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT auditpg_monitor_hypo`); e != nil && err == nil {
			err = e
		}
		if _, e := tx.ExecContext(ctx, `SELECT `+fn+`hypopg_reset()`); e != nil && err == nil {
			err = e
		}
	}()
	before, err := m.estimate(ctx, tx, version, q.Query)
	if err != nil {
		return err
	}
	var name string
	cols := make([]string, len(s.Columns))
	for i, c := range s.Columns {
		cols[i] = c.Name
	}
	if err := tx.QueryRowContext(ctx, `SELECT indexname FROM `+fn+`hypopg_create_index($1)`,
		createIndexSQL(s.Table.Schema, s.Table.Name, cols, false)).Scan(&name); err != nil {
		return fmt.Errorf("hypopg_create_index: %w", err)
	}
	after, err := m.estimate(ctx, tx, version, q.Query)
	if err != nil {
		return err
	}
	q.CostBefore, q.CostAfter = before.TotalCost, after.TotalCost
	after.Walk(func(n, _ *PlanNode) { q.UsesIndex = q.UsesIndex || n.IndexName == name })
	return nil
}

// estimate returns the generic plan of a normalized statement ($n
// parameters), without executing it: EXPLAIN (GENERIC_PLAN) on 16+, before
// that a PREPARE under plan_cache_mode=force_generic_plan, EXPLAIN EXECUTE
// with NULLs (a generic plan does not look at them), and DEALLOCATE.
func (m *Monitor) estimate(ctx context.Context, tx *sql.Tx, version int, query string) (*PlanNode, error) {
	params := paramCount(query)
	var raw []byte
	switch {
	case params == 0:
		if err := tx.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) `+query).Scan(&raw); err != nil {
			return nil, err
		}
	case version >= 160000:
		if err := tx.QueryRowContext(ctx, `EXPLAIN (GENERIC_PLAN, FORMAT JSON) `+query).Scan(&raw); err != nil {
			return nil, err
		}
	default:
		if _, err := tx.ExecContext(ctx, `SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
			return nil, err
		}
		// A prepared statement outlives a rollback: always deallocate it.
		if _, err := tx.ExecContext(ctx, `PREPARE auditpg_monitor_estimate AS `+query); err != nil {
			return nil, err
		}
		nulls := strings.TrimSuffix(strings.Repeat("NULL, ", params), ", ")
		err := tx.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) EXECUTE auditpg_monitor_estimate(`+nulls+`)`).Scan(&raw)
		if err != nil {
			_, _ = tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT auditpg_monitor_hypo`)
		}
		if _, e := tx.ExecContext(ctx, `DEALLOCATE auditpg_monitor_estimate`); e != nil && err == nil {
			err = e
		}
		if err != nil {
			return nil, err
		}
	}
	p, err := ParsePlan(raw)
	if err != nil {
		return nil, err
	}
	return p.Root, nil
}

// sqlToken is a token of a statement as queryColumns reads it.
type sqlToken struct {
	text  string // the name of a word or quoted identifier (words lower-cased); "?" for a value; as written otherwise
	ident bool   // a column-like name: an unquoted non-keyword word or a quoted identifier
}

// statementTokens lexes a statement with the classifier's lexer: strings,
// numbers and $n parameters all read as the value "?".
func statementTokens(query string) []sqlToken {
	toks := sqlclass.Tokens(query)
	out := make([]sqlToken, len(toks))
	for i, t := range toks {
		switch t.Kind {
		case sqlclass.TokenWord:
			out[i] = sqlToken{text: t.Name, ident: !t.Keyword}
		case sqlclass.TokenQuotedIdent:
			out[i] = sqlToken{text: t.Name, ident: true}
		case sqlclass.TokenString, sqlclass.TokenNumber, sqlclass.TokenParam:
			out[i] = sqlToken{text: "?"}
		default:
			out[i] = sqlToken{text: t.Text}
		}
	}
	return out
}

// columnUse is a column compared in a WHERE clause.
type columnUse struct {
	name     string
	equality bool // =, IN, IS: an index's leading column
}

// queryColumns returns the columns compared in the top-level WHERE clause
// and the plain columns of the ORDER BY of a single-table statement.
func queryColumns(query string) (where []columnUse, orderBy []string) {
	toks := statementTokens(query)
	depth := 0
	whereAt, orderAt := -1, -1
	for i, t := range toks {
		switch t.text {
		case "(":
			depth++
		case ")":
			depth--
		case "where":
			if depth == 0 && whereAt < 0 {
				whereAt = i + 1
			}
		case "order":
			if depth == 0 && i+1 < len(toks) && toks[i+1].text == "by" {
				orderAt = i + 2
			}
		}
	}
	stop := func(t sqlToken) bool {
		switch t.text {
		case "group", "order", "limit", "offset", "fetch", "for", "window", "having", "union", "intersect", "except", "returning":
			return true
		}
		return false
	}
	if whereAt >= 0 {
		depth := 0
		for i := whereAt; i < len(toks); i++ {
			t := toks[i]
			if t.text == "(" {
				depth++
			} else if t.text == ")" {
				depth--
			}
			if depth == 0 && stop(t) || depth < 0 {
				break
			}
			if !t.ident || i > 0 && toks[i-1].text == "." {
				continue
			}
			name := t.text
			for i+2 < len(toks) && toks[i+1].text == "." && toks[i+2].ident { // alias.column
				i += 2
				name = toks[i].text
			}
			if i+1 >= len(toks) {
				continue
			}
			switch next := toks[i+1].text; next {
			case "=", "in", "is":
				where = append(where, columnUse{name: name, equality: true})
			case "<", ">", "<=", ">=", "between", "like", "ilike":
				where = append(where, columnUse{name: name})
			default:
				if i >= 2 && toks[i-2].text == "?" { // $1 = col
					switch toks[i-1].text {
					case "=":
						where = append(where, columnUse{name: name, equality: true})
					case "<", ">", "<=", ">=":
						where = append(where, columnUse{name: name})
					}
				}
			}
		}
	}
	if orderAt >= 0 {
		item := true // at the start of an ORDER BY item
		for i := orderAt; i < len(toks); i++ {
			t := toks[i]
			if stop(t) {
				break
			}
			if item && t.ident {
				name := t.text
				if i+2 < len(toks) && toks[i+1].text == "." && toks[i+2].ident {
					i += 2
					name = toks[i].text
				}
				if i+1 == len(toks) || slices.Contains([]string{",", "asc", "desc", "nulls"}, toks[i+1].text) {
					orderBy = append(orderBy, name)
				}
			}
			item = t.text == ","
		}
	}
	return where, orderBy
}

// paramCount returns the highest $n in the statement.
func paramCount(query string) int {
	n := 0
	for _, t := range sqlclass.Tokens(query) {
		n = max(n, t.Param)
	}
	return n
}
