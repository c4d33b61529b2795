package monitor_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/auditpg/auditpg/monitor"
)

var db *sql.DB // opened with sql.Open("auditpg", dsn), or any PostgreSQL driver

func ExampleNew() {
	th := monitor.DefaultThresholds()
	th.SlowQueryMean = 200 * time.Millisecond
	m, err := monitor.New(db,
		monitor.WithThresholds(th),
		monitor.WithMemory(16<<30),             // the server's memory, for ConfigAdvice
		monitor.WithLockTimeout(2*time.Second), // fail a report rather than wait on a locked table
		monitor.WithLogger(slog.Default()),     // what the monitor skips, at debug level
	)
	if err != nil {
		log.Fatal(err) // an option was given a value it cannot use
	}
	_ = m
}

func ExampleMonitor_Summary() {
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.Summary(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Health.Overall)
	for _, c := range s.Health.Components {
		fmt.Println(c.Name, c.Status, c.Reasons)
	}
}

func ExampleMonitor_Health() {
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	h, err := m.Health(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	if h.Overall == monitor.Critical {
		fmt.Println("page someone")
	}
}

func ExampleMonitor_StatementsStatus() {
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	st, err := m.StatementsStatus(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range st.Advice { // empty when st.Ready
		fmt.Println(a)
	}
}

func ExampleMonitor_SlowQueries() {
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	qs, err := m.SlowQueries(context.Background(), monitor.SlowQueryOptions{MinCalls: 10, MinMean: 100 * time.Millisecond})
	if errors.Is(err, monitor.ErrStatementsUnavailable) {
		fmt.Println(err) // says what to change
		return
	}
	for _, q := range qs {
		fmt.Println(q.Calls, q.Mean, q.Query)
	}
}

func ExampleMonitor_ResetStatements() {
	// The only call that clears pg_stat_statements.
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.ResetStatements(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func ExampleMonitor_Explain() {
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	p, err := m.Explain(context.Background(),
		"SELECT * FROM audit_log WHERE organization_id = $1 ORDER BY created_at DESC LIMIT 50",
		monitor.ExplainOptions{Args: []any{"org-1"}, Timeout: 10 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.ExecutionTime)
	for _, r := range p.Recommendations {
		fmt.Println(r.Node, r.Message)
	}
}

func ExampleParsePlan() {
	p, err := monitor.ParsePlan([]byte(`[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "audit_log",
		"Plan Rows": 10, "Actual Rows": 12, "Actual Loops": 1, "Actual Total Time": 1.5}, "Execution Time": 1.75}]`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Root.Label(), p.ExecutionTime)
	p.Root.Walk(func(n, parent *monitor.PlanNode) { fmt.Println(n.NodeType, parent == nil) })
	// Output:
	// Seq Scan on audit_log 1.75ms
	// Seq Scan true
}

func ExampleMonitor_Indexes() {
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	r, err := m.Indexes(context.Background(), true, true)
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range r.Unused {
		fmt.Println(u.DropSQL) // a suggestion: never run by the package
	}
	for _, x := range r.Redundant {
		fmt.Println(x.Index, "covered by", x.CoveredBy)
	}
}

func ExampleMonitor_SuggestIndexes() {
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	s, err := m.SuggestIndexes(context.Background(), monitor.SuggestOptions{CheckHypothetical: true})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.HypoPG)
	for _, x := range s.Suggestions {
		fmt.Println(x.CreateSQL)
		for _, q := range x.Queries {
			fmt.Println(" ", q.CostBefore, "->", q.CostAfter, q.Query)
		}
	}
}

func ExampleMonitor_PlanMaintenance() {
	ctx := context.Background()
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	actions, err := m.PlanMaintenance(ctx) // the dry run
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range actions {
		fmt.Println(a.SQL, "--", a.Reason)
	}
	results, err := m.RunMaintenance(ctx, actions, nil)
	for _, r := range results {
		fmt.Println(r.Action.SQL, r.Duration, r.Err)
	}
	if err != nil {
		log.Print(err)
	}
}

func ExampleMonitor_ConfigAdvice() {
	m, err := monitor.New(db, monitor.WithMemory(32<<30))
	if err != nil {
		log.Fatal(err)
	}
	r, err := m.ConfigAdvice(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range r.Advice {
		if a.Change {
			fmt.Println(a.Name, a.Current, "->", a.Suggested, a.Why, a.SQL)
		}
	}
}

func ExampleMonitor_Tables() {
	ctx := context.Background()
	m, err := monitor.New(db)
	if err != nil {
		log.Fatal(err)
	}
	tables, err := m.Tables(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range tables {
		fmt.Println(t.Table, t.DeadRatio, t.LastAnalyzed()) // "public"."audit_log"
	}
	seqs, _ := m.Sequences(ctx)
	w, _ := m.Wraparound(ctx)
	a, _ := m.Activity(ctx)
	hit, _ := m.CacheHitRatio(ctx)
	parts, _ := m.Partitions(ctx)
	fmt.Println(len(seqs), w.Age, a.Connections, hit.Table, len(parts))
}

func ExampleParseSize() {
	n, err := monitor.ParseSize("16GB")
	fmt.Println(n, err)
	// Output: 17179869184 <nil>
}
