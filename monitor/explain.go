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

	"github.com/auditpg/auditpg/internal/sqlclass"
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
	// default 30 s.
	Timeout time.Duration
	// Args are the values of the statement's $n parameters.
	Args []any
	// Settings are set with SET LOCAL before the EXPLAIN, to see a plan
	// under another work_mem, say. Names and values are bound parameters.
	Settings map[string]string
}

// Plan is an EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) output, parsed.
type Plan struct {
	Root          *PlanNode     `json:"plan"`
	PlanningTime  time.Duration `json:"planning_time_ns"`
	ExecutionTime time.Duration `json:"execution_time_ns"`
	// Recommendations come from the plan's nodes, worst first.
	Recommendations []Recommendation `json:"recommendations"`
	// Raw is the server's JSON, untouched.
	Raw json.RawMessage `json:"raw"`
}

// PlanNode is one node of a plan, with PostgreSQL's JSON field names. Times
// are milliseconds per loop, rows are per loop, as EXPLAIN prints them.
type PlanNode struct {
	NodeType             string      `json:"Node Type"`
	ParentRelationship   string      `json:"Parent Relationship,omitempty"`
	ParallelAware        bool        `json:"Parallel Aware,omitempty"`
	JoinType             string      `json:"Join Type,omitempty"`
	RelationName         string      `json:"Relation Name,omitempty"`
	Alias                string      `json:"Alias,omitempty"`
	IndexName            string      `json:"Index Name,omitempty"`
	StartupCost          float64     `json:"Startup Cost"`
	TotalCost            float64     `json:"Total Cost"`
	PlanRows             float64     `json:"Plan Rows"`
	ActualStartupTime    float64     `json:"Actual Startup Time"`
	ActualTotalTime      float64     `json:"Actual Total Time"`
	ActualRows           float64     `json:"Actual Rows"`
	ActualLoops          float64     `json:"Actual Loops"`
	Filter               string      `json:"Filter,omitempty"`
	RowsRemovedByFilter  float64     `json:"Rows Removed by Filter,omitempty"`
	IndexCond            string      `json:"Index Cond,omitempty"`
	RecheckCond          string      `json:"Recheck Cond,omitempty"`
	RowsRemovedByRecheck float64     `json:"Rows Removed by Index Recheck,omitempty"`
	ExactHeapBlocks      float64     `json:"Exact Heap Blocks,omitempty"`
	LossyHeapBlocks      float64     `json:"Lossy Heap Blocks,omitempty"`
	HashCond             string      `json:"Hash Cond,omitempty"`
	JoinFilter           string      `json:"Join Filter,omitempty"`
	SortKey              []string    `json:"Sort Key,omitempty"`
	SortMethod           string      `json:"Sort Method,omitempty"`
	SortSpaceUsed        float64     `json:"Sort Space Used,omitempty"`
	SortSpaceType        string      `json:"Sort Space Type,omitempty"`
	HashBatches          float64     `json:"Hash Batches,omitempty"`
	OriginalHashBatches  float64     `json:"Original Hash Batches,omitempty"`
	PeakMemoryUsage      float64     `json:"Peak Memory Usage,omitempty"`
	SharedHitBlocks      float64     `json:"Shared Hit Blocks"`
	SharedReadBlocks     float64     `json:"Shared Read Blocks"`
	TempReadBlocks       float64     `json:"Temp Read Blocks"`
	TempWrittenBlocks    float64     `json:"Temp Written Blocks"`
	WorkersPlanned       float64     `json:"Workers Planned,omitempty"`
	WorkersLaunched      float64     `json:"Workers Launched,omitempty"`
	Plans                []*PlanNode `json:"Plans,omitempty"`
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
// (ErrMultipleStatements); a statement that may modify data, or that calls
// a volatile function, needs AllowWrites (ErrWritesNotAllowed).
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
	// A read whose only doubt is functions the classifier does not know
	// goes on: pg_proc decides below.
	if !st.ReadOnly && !st.UserFunctionsOnly && !o.AllowWrites {
		what := st.Operation
		if len(st.Functions) > 0 {
			what += "; functions called: " + strings.Join(st.Functions, ", ")
		}
		return nil, fmt.Errorf("%w (%s)", ErrWritesNotAllowed, what)
	}
	timeout := o.Timeout
	if timeout <= 0 {
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
			return nil, errors.New("monitor: explain: the transaction is not READ ONLY (the driver ignored sql.TxOptions.ReadOnly, or a setting changed it): refused without AllowWrites")
		}
		if err := refuseVolatile(ctx, tx, query, o.Args); err != nil {
			return nil, err
		}
	}
	raw, err := explainOne(ctx, tx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+query, o.Args)
	if err != nil {
		return nil, err
	}
	p, err := ParsePlan(raw)
	if err != nil {
		return nil, err
	}
	p.Recommendations = analyzePlan(p.Root, m.th)
	return p, nil
}

// explainOne runs text, an EXPLAIN of one statement, with args and returns
// its one value. The text is prepared first, so that the server's parser,
// not the classifier, says it is one statement (the extended protocol's Parse
// refuses more), and the prepared statement is looked for in
// pg_prepared_statements: a driver that prepares on the client, and would
// send the text unchecked, is refused.
func explainOne(ctx context.Context, tx *sql.Tx, text string, args []any) ([]byte, error) {
	stmt, err := tx.PrepareContext(ctx, text)
	if err != nil {
		if strings.Contains(err.Error(), "multiple commands") { // cannot insert multiple commands into a prepared statement
			return nil, fmt.Errorf("%w: the server read more than one: %w", ErrMultipleStatements, err)
		}
		return nil, fmt.Errorf("monitor: explain: %w", err)
	}
	defer stmt.Close()
	// starts_with: a driver's query rewriter (sqlcommenter) may append a
	// comment, which does not make one statement more.
	var prepared bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_prepared_statements
		WHERE NOT from_sql AND pg_catalog.starts_with(statement, $1))`, text).Scan(&prepared); err != nil {
		return nil, fmt.Errorf("monitor: explain: read pg_prepared_statements: %w", err)
	}
	if !prepared {
		return nil, errors.New("monitor: explain: the driver did not prepare the statement on the server, so the server cannot check it is one statement: refused")
	}
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
func refuseVolatile(ctx context.Context, tx *sql.Tx, query string, args []any) error {
	if strings.Contains(strings.ToUpper(query), `U&"`) {
		return fmt.Errorf(`%w: its text holds a Unicode-escaped identifier (U&"..."), which hides the functions it calls`, ErrWritesNotAllowed)
	}
	raw, err := explainOne(ctx, tx, "EXPLAIN (VERBOSE, FORMAT JSON) "+query, args)
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
		return &volatileError{funcs: slices.Compact(found)}
	}
	return nil
}

// volatileError refuses a statement that calls volatile functions; it is
// ErrWritesNotAllowed for errors.Is.
type volatileError struct{ funcs []string }

func (e *volatileError) Error() string {
	return "monitor: the statement calls the volatile function(s) " + strings.Join(e.funcs, ", ") +
		", which may act outside the transaction (end a backend, write a file, run a program), where the rollback undoes nothing; set AllowWrites to explain it"
}

func (e *volatileError) Is(target error) bool { return target == ErrWritesNotAllowed }

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
	var doc []struct {
		Plan          *PlanNode `json:"Plan"`
		PlanningTime  float64   `json:"Planning Time"`
		ExecutionTime float64   `json:"Execution Time"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("monitor: parse EXPLAIN JSON: %w", err)
	}
	if len(doc) != 1 || doc[0].Plan == nil {
		return nil, fmt.Errorf("monitor: parse EXPLAIN JSON: want one plan, got %d", len(doc))
	}
	return &Plan{Root: doc[0].Plan, PlanningTime: ms(doc[0].PlanningTime), ExecutionTime: ms(doc[0].ExecutionTime),
		Raw: json.RawMessage(raw)}, nil
}

// analyzePlan walks the plan and returns its recommendations, heaviest first.
func analyzePlan(root *PlanNode, th Thresholds) []Recommendation {
	var out []Recommendation
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
