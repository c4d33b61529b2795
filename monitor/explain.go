package monitor

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/jackc/pgx/v5/pgconn"
)

// ExplainOptions control Explain.
type ExplainOptions struct {
	// AllowWrites lets a statement that may modify data (INSERT, UPDATE,
	// DELETE, MERGE, a data-modifying WITH, a call of a volatile
	// function...) be explained. EXPLAIN ANALYZE executes it; the transaction
	// is rolled back all the same, but what a volatile function did outside
	// it (a backend ended, a file written) stays. Without it the transaction
	// is also READ ONLY, so the server refuses any write the classifier
	// missed, and a statement calling a volatile function is refused.
	AllowWrites bool
	// Timeout is the statement_timeout set for the EXPLAIN (SET LOCAL);
	// 0 means the default, 30 s. A negative one is refused.
	Timeout time.Duration
	// Args are the values of the statement's $n parameters, one for each,
	// in order (else ErrArgCount). A string is sent as text and the server
	// converts it to the type it infers for the parameter, as it would a
	// quoted literal. Without Args a statement with parameters (a
	// pg_stat_statements fingerprint, say) is explained as its generic
	// plan: planned for any values and not executed (Plan.Generic).
	Args []any
	// Settings are set with SET LOCAL before the EXPLAIN, to see a plan
	// under another work_mem, say. Names and values are bound parameters.
	Settings map[string]string
}

// Plan is an EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) output, parsed.
type Plan struct {
	Root *PlanNode `json:"plan"`
	// Generic: the statement has parameters and no values were given, so
	// the plan is its generic plan, estimated without running the
	// statement: no actual rows, times or buffers, and no recommendations
	// from them.
	Generic       bool          `json:"generic"`
	PlanningTime  time.Duration `json:"planning_time_ns"`
	ExecutionTime time.Duration `json:"execution_time_ns"`
	// Recommendations come from the plan's nodes, worst first.
	Recommendations []Recommendation `json:"recommendations"`
	// Raw is the server's JSON, untouched (PostgreSQL's field names): not
	// part of the Plan's own JSON, whose tree carries the fields read.
	Raw json.RawMessage `json:"-"`
}

// PlanNode is one node of a plan: PostgreSQL's fields, under its JSON names
// in snake_case ("Node Type" is node_type). Times are milliseconds per
// loop, rows are per loop, as EXPLAIN prints them; the actual figures are 0
// in a generic plan, which is not executed.
type PlanNode struct {
	NodeType             string      `json:"node_type"`
	ParentRelationship   string      `json:"parent_relationship,omitempty"`
	ParallelAware        bool        `json:"parallel_aware,omitempty"`
	JoinType             string      `json:"join_type,omitempty"`
	RelationName         string      `json:"relation_name,omitempty"`
	Alias                string      `json:"alias,omitempty"`
	IndexName            string      `json:"index_name,omitempty"`
	StartupCost          float64     `json:"startup_cost"`
	TotalCost            float64     `json:"total_cost"`
	PlanRows             float64     `json:"plan_rows"`
	ActualStartupTime    float64     `json:"actual_startup_time"`
	ActualTotalTime      float64     `json:"actual_total_time"`
	ActualRows           float64     `json:"actual_rows"`
	ActualLoops          float64     `json:"actual_loops"`
	Filter               string      `json:"filter,omitempty"`
	RowsRemovedByFilter  float64     `json:"rows_removed_by_filter,omitempty"`
	IndexCond            string      `json:"index_cond,omitempty"`
	RecheckCond          string      `json:"recheck_cond,omitempty"`
	RowsRemovedByRecheck float64     `json:"rows_removed_by_index_recheck,omitempty"`
	ExactHeapBlocks      float64     `json:"exact_heap_blocks,omitempty"`
	LossyHeapBlocks      float64     `json:"lossy_heap_blocks,omitempty"`
	HashCond             string      `json:"hash_cond,omitempty"`
	JoinFilter           string      `json:"join_filter,omitempty"`
	SortKey              []string    `json:"sort_key,omitempty"`
	SortMethod           string      `json:"sort_method,omitempty"`
	SortSpaceUsed        float64     `json:"sort_space_used,omitempty"`
	SortSpaceType        string      `json:"sort_space_type,omitempty"`
	HashBatches          float64     `json:"hash_batches,omitempty"`
	OriginalHashBatches  float64     `json:"original_hash_batches,omitempty"`
	PeakMemoryUsage      float64     `json:"peak_memory_usage,omitempty"`
	SharedHitBlocks      float64     `json:"shared_hit_blocks"`
	SharedReadBlocks     float64     `json:"shared_read_blocks"`
	TempReadBlocks       float64     `json:"temp_read_blocks"`
	TempWrittenBlocks    float64     `json:"temp_written_blocks"`
	WorkersPlanned       float64     `json:"workers_planned,omitempty"`
	WorkersLaunched      float64     `json:"workers_launched,omitempty"`
	Plans                []*PlanNode `json:"plans,omitempty"`
}

// Label names a node for messages: "Seq Scan on audit_log".
func (n *PlanNode) Label() string {
	switch {
	case n.IndexName != "" && n.RelationName != "":
		return n.NodeType + " using " + n.IndexName + " on " + n.RelationName
	case n.IndexName != "":
		return n.NodeType + " on " + n.IndexName
	case n.RelationName != "":
		return n.NodeType + " on " + n.RelationName
	}
	return n.NodeType
}

// Walk calls fn for n and every node under it, parents first.
func (n *PlanNode) Walk(fn func(node, parent *PlanNode)) {
	var walk func(node, parent *PlanNode)
	walk = func(node, parent *PlanNode) {
		fn(node, parent)
		for _, c := range node.Plans {
			walk(c, node)
		}
	}
	walk(n, nil)
}

// Recommendation is one finding of the plan analysis.
type Recommendation struct {
	// Kind is one of seq_scan_filter, sort_spill, hash_spill,
	// misestimate, nested_loop, lossy_bitmap.
	Kind    string `json:"kind"`
	Node    string `json:"node"`
	Message string `json:"message"`
	// Weight orders the recommendations: the node's time in milliseconds,
	// all loops included.
	Weight float64 `json:"weight_ms"`
}

// Explain runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) on one statement in
// a transaction that is always rolled back, under a statement_timeout, and
// analyzes the plan. More than one statement is refused
// (ErrMultipleStatements); a statement the server cannot parse is
// ErrSyntax, with the server's message and position; a statement that may
// modify data, or that calls a volatile function, needs AllowWrites
// (ErrWritesNotAllowed, as a *WriteError). A statement with $n parameters
// takes one value for each in Args, or, without Args, is explained as its
// generic plan without being run: a PREPARE with the parameter types the
// server infers, then EXPLAIN EXECUTE with NULLs under plan_cache_mode =
// force_generic_plan, which plans for any values (EXPLAIN (GENERIC_PLAN) of
// PostgreSQL 16 accepts parameters only in a text sent without a Parse, and
// every text here is prepared, so that the server checks it is one
// statement).
//
// The classifier's verdict is only the first of these guards, since a lexer
// that reads the text differently from the server could let a second
// statement or a side effect through. The server itself then decides:
//
//   - One statement: every text holding the statement is prepared through
//     database/sql (the extended protocol's Parse, which accepts one statement
//     only, whatever protocol the DSN asks for) and checked to be among the
//     session's protocol-level prepared statements before it runs; a driver
//     that prepares on the client is refused.
//   - Without AllowWrites: the transaction is READ ONLY (checked with
//     transaction_read_only), and the functions the statement calls are read
//     from the plan of EXPLAIN (VERBOSE, FORMAT JSON), which executes nothing,
//     and from the text; any of them that pg_proc says is volatile, or that
//     backs an operator used, refuses the statement, naming it.
//
// The statement text is sent as it is given, after "EXPLAIN (...)": that is
// the point of the call, so never pass text from an untrusted user.
func (m *Monitor) Explain(ctx context.Context, query string, o ExplainOptions) (*Plan, error) {
	query = strings.TrimRight(strings.TrimSpace(query), "; \t\r\n")
	st := sqlclass.Classify(query)
	if st.MultiStatement {
		return nil, ErrMultipleStatements
	}
	if strings.TrimSpace(query) == "" {
		return nil, errors.New("monitor: explain: empty statement")
	}
	if strings.ContainsRune(query, 0) {
		// The protocol ends a query string at a NUL byte: the server would
		// read less than was checked.
		return nil, errors.New("monitor: explain: the statement holds a NUL byte")
	}
	if o.Timeout < 0 {
		return nil, fmt.Errorf("monitor: explain: ExplainOptions.Timeout %v: want a positive duration, or 0 for the default 30s", o.Timeout)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	tx, err := m.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: !o.AllowWrites})
	if err != nil {
		return nil, fmt.Errorf("monitor: explain: begin: %w", err)
	}
	defer func() {
		if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
			m.log.WarnContext(ctx, "monitor: explain: rollback failed", "err", err)
		}
	}()
	settings := map[string]string{"statement_timeout": strconv.FormatInt(timeout.Milliseconds(), 10)}
	for k, v := range o.Settings {
		settings[k] = v
	}
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		if _, err := tx.ExecContext(ctx, `SELECT pg_catalog.set_config($1, $2, true)`, k, settings[k]); err != nil {
			return nil, fmt.Errorf("monitor: explain: SET LOCAL %s: %w", k, err)
		}
	}
	if !o.AllowWrites {
		// After the settings, which could otherwise have turned it off.
		var ro string
		if err := tx.QueryRowContext(ctx, `SELECT pg_catalog.current_setting('transaction_read_only')`).Scan(&ro); err != nil {
			return nil, fmt.Errorf("monitor: explain: read transaction_read_only: %w", err)
		}
		if ro != "on" {
			return nil, &WriteError{Reason: "the transaction is not READ ONLY (a setting turned it off, or the driver ignored the read-only option)"}
		}
	}
	// The server parses the text before the classifier's verdict refuses
	// it: a text that does not parse is said to be so, not a write.
	params, err := parseOne(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	// A read whose only doubt is functions the classifier does not know
	// goes on: pg_proc decides below.
	if !st.ReadOnly && !st.UserFunctionsOnly && !o.AllowWrites {
		reason := "the statement may modify data (" + st.Operation
		if len(st.Functions) > 0 {
			reason += "; functions called: " + strings.Join(st.Functions, ", ")
		}
		return nil, &WriteError{Reason: reason + ")"}
	}
	if len(o.Args) > 0 && len(o.Args) != len(params) {
		return nil, fmt.Errorf("%w: the statement has %d parameter(s) and %d value(s) were given", ErrArgCount, len(params), len(o.Args))
	}
	e := &explainer{tx: tx, query: query, args: o.Args, params: params, generic: len(params) > 0 && len(o.Args) == 0}
	if e.generic {
		done, err := e.prepareGeneric(ctx)
		if err != nil {
			return nil, err
		}
		defer done()
	}
	if !o.AllowWrites {
		if err := refuseVolatile(ctx, tx, e); err != nil {
			return nil, err
		}
	}
	options := "ANALYZE, BUFFERS, FORMAT JSON"
	if e.generic {
		options = "FORMAT JSON" // never run with the NULLs bound for the plan
	}
	raw, err := e.explain(ctx, options)
	if err != nil {
		return nil, err
	}
	p, err := ParsePlan(raw)
	if err != nil {
		return nil, err
	}
	p.Generic = e.generic
	p.Recommendations = analyzePlan(p.Root, m.th)
	return p, nil
}

// WriteError refuses a statement that may modify data, or that calls a
// volatile function, for want of ExplainOptions.AllowWrites; it is
// ErrWritesNotAllowed for errors.Is.
type WriteError struct {
	// Reason says what may write: the classifier's reading of the
	// statement, or the volatile functions pg_proc names.
	Reason string
}

func (e *WriteError) Error() string {
	return "monitor: " + e.Reason + "; set ExplainOptions.AllowWrites to explain it (the transaction is rolled back all the same)"
}

func (e *WriteError) Is(target error) bool { return target == ErrWritesNotAllowed }

// genericName is the SQL-level prepared statement of a generic plan.
const genericName = "auditpg_monitor_explain"

// explainer runs the EXPLAINs of one statement: with its values, or, when
// it has parameters and no values were given, for its generic plan.
type explainer struct {
	tx      *sql.Tx
	query   string
	args    []any
	params  []string // the types the server infers for $1, $2...
	generic bool
}

// prepareGeneric readies a generic plan: the statement is prepared with the
// parameter types the server inferred (the PREPARE itself prepared through
// the protocol, so that it is one statement), and plan_cache_mode makes
// EXECUTE plan it for any values, not for the NULLs it is given. done
// deallocates it: a prepared statement outlives the transaction, and would
// stay on the pooled connection.
func (e *explainer) prepareGeneric(ctx context.Context) (done func(), err error) {
	if _, err := e.tx.ExecContext(ctx, `SELECT pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true)`); err != nil {
		return nil, fmt.Errorf("monitor: explain: SET LOCAL plan_cache_mode: %w", err)
	}
	// One left by an earlier call whose clean-up failed (a lost connection).
	var left bool
	if err := e.tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_prepared_statements WHERE name = $1)`, genericName).Scan(&left); err != nil {
		return nil, fmt.Errorf("monitor: explain: read pg_prepared_statements: %w", err)
	}
	if left {
		if _, err := e.tx.ExecContext(ctx, `DEALLOCATE `+genericName); err != nil {
			return nil, fmt.Errorf("monitor: explain: DEALLOCATE: %w", err)
		}
	}
	if _, err := e.tx.ExecContext(ctx, `SAVEPOINT auditpg_monitor_generic`); err != nil {
		return nil, fmt.Errorf("monitor: explain: %w", err)
	}
	stmt, err := prepareOne(ctx, e.tx, "PREPARE "+genericName+"("+strings.Join(e.params, ", ")+") AS "+e.query)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	if _, err := stmt.ExecContext(ctx); err != nil {
		return nil, fmt.Errorf("monitor: explain: PREPARE: %w", err)
	}
	return func() {
		// Back to the savepoint first: an EXPLAIN that failed left the
		// transaction aborted, where DEALLOCATE would fail too.
		_, _ = e.tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT auditpg_monitor_generic`)
		_, _ = e.tx.ExecContext(ctx, `DEALLOCATE `+genericName)
	}, nil
}

// explain runs EXPLAIN (options) on the statement and returns its JSON.
func (e *explainer) explain(ctx context.Context, options string) ([]byte, error) {
	if !e.generic {
		return explainOne(ctx, e.tx, "EXPLAIN ("+options+") "+e.query, e.args)
	}
	nulls := strings.TrimSuffix(strings.Repeat("NULL, ", len(e.params)), ", ")
	return explainOne(ctx, e.tx, "EXPLAIN ("+options+") EXECUTE "+genericName+"("+nulls+")", nil)
}

// prepareOne prepares text on the server through database/sql, so that the
// server's parser, not the classifier, says it is one statement (the
// extended protocol's Parse refuses more), and checks that the prepared
// statement is in pg_prepared_statements: a driver that prepares on the
// client, and would send the text unchecked, is refused.
func prepareOne(ctx context.Context, tx *sql.Tx, text string) (*sql.Stmt, error) {
	stmt, err := tx.PrepareContext(ctx, text)
	if err != nil {
		if strings.Contains(err.Error(), "multiple commands") { // cannot insert multiple commands into a prepared statement
			return nil, fmt.Errorf("%w: the server read more than one: %w", ErrMultipleStatements, err)
		}
		return nil, err
	}
	// starts_with: a driver's query rewriter (sqlcommenter) may append a
	// comment, which does not make one statement more.
	var prepared bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_prepared_statements
		WHERE NOT from_sql AND pg_catalog.starts_with(statement, $1))`, text).Scan(&prepared); err != nil {
		stmt.Close()
		return nil, fmt.Errorf("monitor: explain: read pg_prepared_statements: %w", err)
	}
	if !prepared {
		stmt.Close()
		return nil, errors.New("monitor: explain: the driver did not prepare the statement on the server, so the server cannot check it is one statement: refused")
	}
	return stmt, nil
}

// parseOne has the server parse and analyze the statement (prepare it:
// nothing runs) and returns the types it infers for its parameters. A text
// it cannot parse is ErrSyntax, saying where.
func parseOne(ctx context.Context, tx *sql.Tx, query string) ([]string, error) {
	stmt, err := prepareOne(ctx, tx, query)
	if err != nil {
		return nil, statementError(query, err)
	}
	defer stmt.Close()
	var types string
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(pg_catalog.array_to_json(parameter_types::text[])::text, '[]')
		  FROM pg_catalog.pg_prepared_statements
		 WHERE NOT from_sql AND pg_catalog.starts_with(statement, $1)
		 ORDER BY statement = $1 DESC, prepare_time DESC LIMIT 1`, query).Scan(&types); err != nil {
		return nil, fmt.Errorf("monitor: explain: read the parameter types: %w", err)
	}
	params := []string{}
	if err := json.Unmarshal([]byte(types), &params); err != nil {
		return nil, fmt.Errorf("monitor: explain: parameter types %s: %w", types, err)
	}
	return params, nil
}

// syntaxError is a statement the server could not parse: ErrSyntax and the
// server's error for errors.Is and As.
type syntaxError struct {
	msg string
	err error
}

func (e *syntaxError) Error() string   { return e.msg }
func (e *syntaxError) Unwrap() []error { return []error{ErrSyntax, e.err} }

// statementError words what the server said of the statement it was asked
// to prepare: a syntax error as ErrSyntax, any other with the place in the
// statement it points at.
func statementError(query string, err error) error {
	var pe *pgconn.PgError
	if errors.Is(err, ErrMultipleStatements) || !errors.As(err, &pe) {
		return fmt.Errorf("monitor: explain: %w", err)
	}
	where := ""
	if pe.Position > 0 {
		r := []rune(query)
		at := min(int(pe.Position)-1, len(r))
		near := strings.Join(strings.Fields(string(r[at:min(at+30, len(r))])), " ")
		where = fmt.Sprintf(" at character %d", pe.Position)
		if near != "" {
			where += fmt.Sprintf(" (%q)", near)
		}
	}
	if pe.Code == "42601" { // syntax_error
		return &syntaxError{msg: fmt.Sprintf("%s: %s%s", ErrSyntax, pe.Message, where), err: err}
	}
	return fmt.Errorf("monitor: explain: %w%s", err, where)
}

// explainOne runs text, an EXPLAIN of one statement, with args and returns
// its one value, the text prepared by prepareOne first. The statement parsed
// already: a syntax error here is EXPLAIN's, which takes only some kinds of
// statement.
func explainOne(ctx context.Context, tx *sql.Tx, text string, args []any) ([]byte, error) {
	stmt, err := prepareOne(ctx, tx, text)
	if err != nil {
		if errors.Is(err, ErrMultipleStatements) {
			return nil, err
		}
		if pgerr.SQLState(err) == "42601" {
			return nil, fmt.Errorf("monitor: explain: EXPLAIN takes only SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, EXECUTE, DECLARE, CREATE TABLE AS and CREATE MATERIALIZED VIEW statements: %w", err)
		}
		return nil, fmt.Errorf("monitor: explain: %w", err)
	}
	defer stmt.Close()
	var raw []byte
	if err := stmt.QueryRowContext(ctx, args...).Scan(&raw); err != nil {
		return nil, fmt.Errorf("monitor: explain: %w", err)
	}
	return raw, nil
}

// refuseVolatile returns ErrWritesNotAllowed, naming them, when the
// statement calls a volatile function: one may act outside the transaction
// (end a backend, write a file, run a program), and neither READ ONLY nor
// the rollback stops it. The calls are read from the plan of EXPLAIN
// (VERBOSE), which deparses every expression it evaluates with function-call
// syntax, inlined SQL functions included; EXPLAIN does not print a LIMIT or
// OFFSET count, a VALUES list or a window frame's offsets, so the names
// before a "(" anywhere in the text, comments and strings included, are
// added. A volatile function behind an operator is found by the operator's
// name in either. Names are matched in every schema: a false refusal costs
// an AllowWrites, a miss a side effect.
func refuseVolatile(ctx context.Context, tx *sql.Tx, e *explainer) error {
	query := e.query
	if strings.Contains(strings.ToUpper(query), `U&"`) {
		return &WriteError{Reason: `the statement's text holds a Unicode-escaped identifier (U&"..."), which hides the functions it calls`}
	}
	raw, err := e.explain(ctx, "VERBOSE, FORMAT JSON")
	if err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("monitor: parse EXPLAIN JSON: %w", err)
	}
	names := map[string]bool{}
	texts := []string{query}
	walkStrings(doc, func(s string) {
		texts = append(texts, s)
		deparsedCalls(s, names)
	})
	textCalls(query, names)
	list, err := json.Marshal(append([]string{}, slices.Sorted(maps.Keys(names))...)) // [], not null
	if err != nil {
		return err
	}
	var found []string
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT p.oid::pg_catalog.regprocedure::text, ''
		FROM pg_catalog.pg_proc p
		WHERE p.provolatile = 'v' AND p.proname::text IN (SELECT pg_catalog.jsonb_array_elements_text($1::text::jsonb))
		UNION
		SELECT DISTINCT p.oid::pg_catalog.regprocedure::text, o.oprname::text
		FROM pg_catalog.pg_operator o JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode
		WHERE p.provolatile = 'v'`, string(list))
	if err != nil {
		return fmt.Errorf("monitor: explain: read function volatility: %w", err)
	}
	defer rows.Close()
	all := strings.Join(texts, "\n")
	for rows.Next() {
		var fn, op string
		if err := rows.Scan(&fn, &op); err != nil {
			return fmt.Errorf("monitor: explain: read function volatility: %w", err)
		}
		switch {
		case op == "":
			found = append(found, fn)
		case strings.Contains(all, op):
			found = append(found, fn+" (operator "+op+")")
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("monitor: explain: read function volatility: %w", err)
	}
	if len(found) > 0 {
		slices.Sort(found)
		return &WriteError{Reason: "the statement calls the volatile function(s) " + strings.Join(slices.Compact(found), ", ") +
			", which may act outside the transaction (end a backend, write a file, run a program), where the rollback undoes nothing"}
	}
	return nil
}

// walkStrings calls fn with every string value in a decoded JSON document.
func walkStrings(v any, fn func(string)) {
	switch v := v.(type) {
	case string:
		fn(v)
	case []any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	case map[string]any:
		for _, e := range v {
			walkStrings(e, fn)
		}
	}
}

// deparsedCalls adds to names the function names in an expression as the
// server deparses it: identifiers (plain, which the server prints in lower
// case, or double-quoted) followed by "(", outside string literals.
func deparsedCalls(s string, names map[string]bool) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\'':
			// 'x' with '' for a quote; E'x' (a backslash escapes) when the
			// server prints with standard_conforming_strings off.
			escapes := i > 0 && (s[i-1] == 'E' || s[i-1] == 'e') && (i == 1 || !isIdentChar(s[i-2]))
			for i++; i < len(s); i++ {
				if escapes && s[i] == '\\' {
					i++
				} else if s[i] == '\'' {
					if i+1 < len(s) && s[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
			i++
		case c == '"':
			name, end := quotedIdent(s, i)
			if callFollows(s, end) {
				names[name] = true
			}
			i = end
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			if callFollows(s, j) {
				names[strings.ToLower(s[i:j])] = true
			}
			i = j
		default:
			i++
		}
	}
}

// textCalls adds to names every identifier of the statement's text that
// follows a "." (f(x) written x.f) or precedes a "(" (with white space and
// comments between), read without regard to strings and comments, so that no
// difference between this reading and the server's hides one. Quoted
// identifiers are tried from every double quote.
func textCalls(s string, names map[string]bool) {
	for i := 0; i < len(s); i++ {
		var name string
		end := i
		switch c := s[i]; {
		case c == '"':
			name, end = quotedIdent(s, i)
		case isIdentStart(c) && (i == 0 || !isIdentChar(s[i-1])):
			for end < len(s) && isIdentChar(s[end]) {
				end++
			}
			name = strings.ToLower(s[i:end])
		default:
			continue
		}
		if name != "" && (callFollows(s, end) || i > 0 && s[i-1] == '.') {
			names[name] = true
		}
	}
}

// quotedIdent reads the double-quoted identifier at s[i] and returns it with
// the index after it; an unterminated one runs to the end.
func quotedIdent(s string, i int) (string, int) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		if s[j] == '"' {
			if j+1 < len(s) && s[j+1] == '"' {
				b.WriteByte('"')
				j++
				continue
			}
			return b.String(), j + 1
		}
		b.WriteByte(s[j])
	}
	return b.String(), len(s)
}

// callFollows reports whether s[i:] is "(" after white space and comments,
// as PostgreSQL reads them.
func callFollows(s string, i int) bool {
	j := sqlclass.SkipSpace(s, i)
	return j < len(s) && s[j] == '('
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' || c == '$' }

// ParsePlan parses the output of EXPLAIN (FORMAT JSON), with or without
// ANALYZE, into a tree.
func ParsePlan(raw []byte) (*Plan, error) {
	var server any
	if err := json.Unmarshal(raw, &server); err != nil {
		return nil, fmt.Errorf("monitor: parse EXPLAIN JSON: %w", err)
	}
	snake, err := json.Marshal(snakeKeys(server))
	if err != nil {
		return nil, fmt.Errorf("monitor: parse EXPLAIN JSON: %w", err)
	}
	var doc []struct {
		Plan          *PlanNode `json:"plan"`
		PlanningTime  float64   `json:"planning_time"`
		ExecutionTime float64   `json:"execution_time"`
	}
	if err := json.Unmarshal(snake, &doc); err != nil {
		return nil, fmt.Errorf("monitor: parse EXPLAIN JSON: %w", err)
	}
	if len(doc) != 1 || doc[0].Plan == nil {
		return nil, fmt.Errorf("monitor: parse EXPLAIN JSON: want one plan, got %d", len(doc))
	}
	return &Plan{Root: doc[0].Plan, PlanningTime: ms(doc[0].PlanningTime), ExecutionTime: ms(doc[0].ExecutionTime),
		Raw: json.RawMessage(raw)}, nil
}

// snakeKeys returns v, decoded JSON, with the keys of its objects as
// PlanNode's tags write them: "Rows Removed by Filter" is
// rows_removed_by_filter.
func snakeKeys(v any) any {
	switch v := v.(type) {
	case []any:
		for i, e := range v {
			v[i] = snakeKeys(e)
		}
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[strings.ReplaceAll(strings.ToLower(k), " ", "_")] = snakeKeys(e)
		}
		return out
	}
	return v
}

// analyzePlan walks the plan and returns its recommendations, heaviest first.
func analyzePlan(root *PlanNode, th Thresholds) []Recommendation {
	out := []Recommendation{}
	add := func(kind string, n *PlanNode, format string, args ...any) {
		out = append(out, Recommendation{Kind: kind, Node: n.Label(), Message: fmt.Sprintf(format, args...),
			Weight: n.ActualTotalTime * n.ActualLoops})
	}
	root.Walk(func(n, parent *PlanNode) {
		if n.ActualLoops == 0 {
			return // never executed
		}
		loops := n.ActualLoops
		if strings.HasSuffix(n.NodeType, "Seq Scan") && n.Filter != "" {
			read := (n.ActualRows + n.RowsRemovedByFilter) * loops
			removed := n.RowsRemovedByFilter * loops
			if read >= th.PlanSeqScanMinRows && removed/read >= th.PlanFilterShare {
				add("seq_scan_filter", n, "reads %.0f rows and its filter (%s) discards %.0f%% of them: an index on the filtered columns would read only the %.0f rows kept",
					read, n.Filter, 100*removed/read, n.ActualRows*loops)
			}
		}
		if n.SortSpaceType == "Disk" {
			add("sort_spill", n, "sort on %s spilled %.0f kB to disk (%s): raise work_mem above %.0f kB for this query, or read the rows in order from an index on those columns",
				strings.Join(n.SortKey, ", "), n.SortSpaceUsed, n.SortMethod, 2*n.SortSpaceUsed)
		}
		if n.NodeType == "Hash" && n.HashBatches > 1 {
			add("hash_spill", n, "hash table split into %.0f batches written to disk (peak %.0f kB in memory): raise work_mem (or hash_mem_multiplier) so it fits in one",
				n.HashBatches, n.PeakMemoryUsage)
		}
		if est, act := n.PlanRows, n.ActualRows; max(est, act) >= th.PlanMisestimateMin &&
			max(est, act) >= th.PlanMisestimate*max(min(est, act), 1) {
			add("misestimate", n, "estimated %.0f rows, got %.0f (%.0fx off): run ANALYZE on the table; for correlated columns CREATE STATISTICS, for skewed ones a higher statistics target",
				est, act, max(est, act)/max(min(est, act), 1))
		}
		if parent != nil && parent.NodeType == "Nested Loop" && n.ParentRelationship == "Inner" && loops >= th.PlanNestedLoopLoops {
			add("nested_loop", n, "inner side of a nested loop ran %.0f times (%.3f ms each): index the join column it looks up, or check the outer row estimate so a hash join is chosen",
				loops, n.ActualTotalTime)
		}
		if n.LossyHeapBlocks > 0 {
			add("lossy_bitmap", n, "bitmap went lossy on %.0f of %.0f heap blocks, rechecking every row in them (%.0f removed): raise work_mem so the bitmap stays exact",
				n.LossyHeapBlocks, n.LossyHeapBlocks+n.ExactHeapBlocks, n.RowsRemovedByRecheck*loops)
		}
	})
	slices.SortStableFunc(out, func(a, b Recommendation) int {
		switch {
		case a.Weight > b.Weight:
			return -1
		case a.Weight < b.Weight:
			return 1
		}
		return 0
	})
	return out
}
