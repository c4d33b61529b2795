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
	// DELETE, MERGE, a data-modifying WITH, a call of a function that may
	// write...) be explained. EXPLAIN ANALYZE executes it; the transaction
	// is rolled back all the same. Without it the transaction is also READ
	// ONLY, so the server refuses any write the classifier missed.
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
// (ErrMultipleStatements); a statement that may modify data needs
// AllowWrites (ErrWritesNotAllowed).
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
	if !st.ReadOnly && !o.AllowWrites {
		return nil, fmt.Errorf("%w (%s)", ErrWritesNotAllowed, st.Operation)
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
		if _, err := tx.ExecContext(ctx, `SELECT set_config($1, $2, true)`, k, settings[k]); err != nil {
			return nil, fmt.Errorf("monitor: explain: SET LOCAL %s: %w", k, err)
		}
	}
	var raw []byte
	if err := tx.QueryRowContext(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+query, o.Args...).Scan(&raw); err != nil {
		return nil, fmt.Errorf("monitor: explain: %w", err)
	}
	p, err := ParsePlan(raw)
	if err != nil {
		return nil, err
	}
	p.Recommendations = analyzePlan(p.Root, m.th)
	return p, nil
}

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
