package monitor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// explainFixture creates the tables the plan tests read, once per test.
func explainFixture(t *testing.T) *Monitor {
	t.Helper()
	db := openDB(t)
	f := newFixture(t, db)
	f.exec(`CREATE TABLE IF NOT EXISTS mon_plan (id int PRIMARY KEY, a int, b int, pad text)`)
	f.exec(`TRUNCATE mon_plan`)
	f.exec(`INSERT INTO mon_plan SELECT g, g % 100, g % 100, repeat('x', 400) FROM generate_series(1, 50000) g`)
	f.exec(`CREATE INDEX IF NOT EXISTS mon_plan_a ON mon_plan (a)`)
	f.exec(`ANALYZE mon_plan`)
	return newMonitor(t, db)
}

func kinds(p *Plan) []string {
	var out []string
	for _, r := range p.Recommendations {
		out = append(out, r.Kind)
	}
	return out
}

func hasKind(p *Plan, kind string) bool {
	for _, r := range p.Recommendations {
		if r.Kind == kind {
			return true
		}
	}
	return false
}

func TestExplainFindings(t *testing.T) {
	ctx := context.Background()
	m := explainFixture(t)
	for _, tc := range []struct {
		name, query string
		settings    map[string]string
		want        string // recommendation kind
		fixed       string // the same need met: no such recommendation
		fixSettings map[string]string
	}{
		{name: "seq scan filter", query: `SELECT * FROM mon_plan WHERE pad = 'y'`, want: "seq_scan_filter",
			fixed: `SELECT * FROM mon_plan WHERE id = 5`},
		{name: "sort spill", query: `SELECT * FROM mon_plan ORDER BY pad, b`, settings: map[string]string{"work_mem": "64kB"}, want: "sort_spill",
			fixed: `SELECT * FROM mon_plan ORDER BY pad, b`, fixSettings: map[string]string{"work_mem": "64MB"}},
		{name: "misestimate", query: `SELECT * FROM mon_plan WHERE a = 1 AND b = 1`, want: "misestimate",
			fixed: `SELECT * FROM mon_plan WHERE a = 1`},
		{name: "nested loop", query: `SELECT count(*) FROM mon_plan x JOIN mon_plan y ON y.id = x.id WHERE x.a < 10`,
			settings: map[string]string{"enable_hashjoin": "off", "enable_mergejoin": "off"}, want: "nested_loop",
			fixed: `SELECT count(*) FROM mon_plan x JOIN mon_plan y ON y.id = x.id WHERE x.a < 10`},
		{name: "lossy bitmap", query: `SELECT count(pad) FROM mon_plan WHERE a < 50`,
			settings: map[string]string{"work_mem": "64kB", "enable_seqscan": "off", "enable_indexscan": "off"}, want: "lossy_bitmap",
			fixed:       `SELECT count(pad) FROM mon_plan WHERE a < 50`,
			fixSettings: map[string]string{"work_mem": "64MB", "enable_seqscan": "off", "enable_indexscan": "off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := m.Explain(ctx, tc.query, ExplainOptions{Settings: tc.settings})
			if err != nil {
				t.Fatal(err)
			}
			if p.Root == nil || p.ExecutionTime <= 0 || p.Root.ActualTotalTime <= 0 || p.Root.ActualLoops != 1 {
				t.Fatalf("plan not read from its fields: %+v", p.Root)
			}
			if !hasKind(p, tc.want) {
				t.Errorf("recommendations %v lack %s; plan %s", kinds(p), tc.want, p.Raw)
			}
			p, err = m.Explain(ctx, tc.fixed, ExplainOptions{Settings: tc.fixSettings})
			if err != nil {
				t.Fatal(err)
			}
			if hasKind(p, tc.want) {
				t.Errorf("fixed query still gets %s: %+v", tc.want, p.Recommendations)
			}
		})
	}
}

func TestExplainRefusesAndRollsBack(t *testing.T) {
	ctx := context.Background()
	m := explainFixture(t)
	if _, err := m.Explain(ctx, `SELECT 1; SELECT 2`, ExplainOptions{}); !errors.Is(err, ErrMultipleStatements) {
		t.Errorf("two statements: err = %v, want ErrMultipleStatements", err)
	}
	for _, q := range []string{
		`DELETE FROM mon_plan WHERE id <= 10`,
		`WITH d AS (DELETE FROM mon_plan WHERE id <= 10 RETURNING *) SELECT count(*) FROM d`,
		`UPDATE mon_plan SET a = 0 WHERE id <= 10`,
		`INSERT INTO mon_plan VALUES (0, 0, 0, '')`,
	} {
		if _, err := m.Explain(ctx, q, ExplainOptions{}); !errors.Is(err, ErrWritesNotAllowed) {
			t.Errorf("%s without AllowWrites: err = %v, want ErrWritesNotAllowed", q, err)
		}
	}
	p, err := m.Explain(ctx, `DELETE FROM mon_plan WHERE id <= $1`, ExplainOptions{AllowWrites: true, Args: []any{10}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Root.NodeType != "ModifyTable" {
		t.Errorf("DELETE plan root = %s, want ModifyTable", p.Root.NodeType)
	}
	var n int
	if err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM mon_plan WHERE id <= 10`).Scan(&n); err != nil || n != 10 {
		t.Errorf("after EXPLAIN ANALYZE DELETE: %d rows (err %v), want 10: it must be rolled back", n, err)
	}
	start := time.Now()
	_, err = m.Explain(ctx, `SELECT pg_sleep(5)`, ExplainOptions{AllowWrites: true, Timeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "statement timeout") || time.Since(start) > 3*time.Second {
		t.Errorf("EXPLAIN of a 5 s sleep with a 100 ms timeout: err = %v after %s, want the statement timeout", err, time.Since(start))
	}
}

func TestParsePlan(t *testing.T) {
	raw := `[{"Plan": {"Node Type": "Nested Loop", "Total Cost": 10, "Plan Rows": 1, "Actual Total Time": 12.5, "Actual Rows": 5000, "Actual Loops": 1,
	  "Plans": [
	    {"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Relation Name": "t", "Plan Rows": 5000, "Actual Rows": 5000, "Actual Loops": 1, "Actual Total Time": 2},
	    {"Node Type": "Index Scan", "Parent Relationship": "Inner", "Relation Name": "u", "Index Name": "u_pkey", "Plan Rows": 1, "Actual Rows": 1, "Actual Loops": 5000, "Actual Total Time": 0.002}
	  ]},
	  "Planning Time": 0.5, "Execution Time": 13.25}]`
	p, err := ParsePlan([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if p.ExecutionTime != 13250*time.Microsecond || p.PlanningTime != 500*time.Microsecond || len(p.Root.Plans) != 2 ||
		p.Root.Plans[1].Label() != "Index Scan using u_pkey on u" {
		t.Fatalf("parsed %+v", p)
	}
	recs := analyzePlan(p.Root, DefaultThresholds())
	got := map[string]bool{}
	for _, r := range recs {
		got[r.Kind] = true
	}
	if !got["nested_loop"] || !got["misestimate"] || len(recs) != 2 {
		t.Errorf("recommendations %+v, want nested_loop (5000 inner loops) and misestimate (1 vs 5000)", recs)
	}
	if _, err := ParsePlan([]byte(`{"Plan": 1}`)); err == nil {
		t.Error("ParsePlan accepted an object instead of an array")
	}
}

// TestExplainSyntaxAndParameters: a text the server cannot parse is said to
// be so (not a write), with the server's message and position; a statement
// with parameters takes one value for each, as text, or is explained as its
// generic plan without running.
func TestExplainSyntaxAndParameters(t *testing.T) {
	ctx := context.Background()
	m := explainFixture(t)

	for _, q := range []string{`selec 1`, `SELECT * FROM mon_plan WHERE`, `DELETE FRM mon_plan`} {
		_, err := m.Explain(ctx, q, ExplainOptions{})
		if !errors.Is(err, ErrSyntax) || errors.Is(err, ErrWritesNotAllowed) || !strings.Contains(err.Error(), "syntax error") ||
			!strings.Contains(err.Error(), "at character") {
			t.Errorf("%q: err = %v, want ErrSyntax with the server's message and position", q, err)
		}
	}
	if _, err := m.Explain(ctx, `selec 1`, ExplainOptions{}); err == nil || !strings.Contains(err.Error(), `at character 1 ("selec 1")`) {
		t.Errorf("selec 1: err = %v, want the position and the text there", err)
	}
	// Parsed but refused by the server's analysis: its own words, not a write.
	if _, err := m.Explain(ctx, `SELECT * FROM mon_no_such_table`, ExplainOptions{}); err == nil || errors.Is(err, ErrWritesNotAllowed) ||
		!strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "at character 15") {
		t.Errorf("unknown table: err = %v, want the server's error and position", err)
	}
	// A parsed write is still refused as one.
	if _, err := m.Explain(ctx, `DELETE FROM mon_plan`, ExplainOptions{}); !errors.Is(err, ErrWritesNotAllowed) {
		t.Errorf("DELETE: err = %v, want ErrWritesNotAllowed", err)
	}
	var we *WriteError
	if _, err := m.Explain(ctx, `DELETE FROM mon_plan`, ExplainOptions{}); !errors.As(err, &we) || !strings.Contains(we.Reason, "DELETE") {
		t.Errorf("DELETE: err = %#v, want a *WriteError saying DELETE", err)
	}

	// Values as text: the server converts them to the types it infers.
	p, err := m.Explain(ctx, `SELECT * FROM mon_plan WHERE id = $1 AND pad <> $2`, ExplainOptions{Args: []any{"7", "y"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Generic || p.Root.ActualLoops != 1 || p.Root.ActualRows != 1 {
		t.Errorf("with values: generic %v, root %+v; want an executed plan finding 1 row", p.Generic, p.Root)
	}
	for _, args := range [][]any{{"7"}, {"7", "y", "z"}} {
		if _, err := m.Explain(ctx, `SELECT * FROM mon_plan WHERE id = $1 AND pad <> $2`, ExplainOptions{Args: args}); !errors.Is(err, ErrArgCount) ||
			!strings.Contains(err.Error(), "2 parameter(s)") {
			t.Errorf("%d values for 2 parameters: err = %v, want ErrArgCount", len(args), err)
		}
	}
	if _, err := m.Explain(ctx, `SELECT * FROM mon_plan WHERE id = $1`, ExplainOptions{Args: []any{"seven"}}); err == nil || !strings.Contains(err.Error(), "invalid input syntax for type integer") {
		t.Errorf("a value the parameter's type refuses: err = %v, want the server's conversion error", err)
	}

	// No values: the generic plan, planned for any value, not executed.
	// A fingerprint as pg_stat_statements writes it, a text parameter included.
	q := `SELECT count(*) FROM mon_plan WHERE a = $1 AND pad LIKE $2`
	one := openDB(t)
	one.SetMaxOpenConns(1)
	m1 := newMonitor(t, one)
	for range 2 { // twice on a one-connection pool: nothing is left prepared
		p, err = m1.Explain(ctx, q, ExplainOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Generic || p.ExecutionTime != 0 || p.Root.ActualLoops != 0 || p.Root.TotalCost <= 0 || len(p.Recommendations) != 0 {
			t.Errorf("generic plan = %+v (root %+v), want estimates only", p, p.Root)
		}
	}
	if !strings.Contains(string(p.Raw), "$1") {
		t.Errorf("generic plan does not show the parameter $1 (planned for NULL?): %s", p.Raw)
	}
	var prepared int
	if err := one.QueryRowContext(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE name = 'auditpg_monitor_explain'`).Scan(&prepared); err != nil || prepared != 0 {
		t.Errorf("prepared statements left: %d (%v)", prepared, err)
	}
	// The guard holds for a generic plan: writes and volatile functions.
	if _, err := m.Explain(ctx, `DELETE FROM mon_plan WHERE id = $1`, ExplainOptions{}); !errors.Is(err, ErrWritesNotAllowed) {
		t.Errorf("generic DELETE: err = %v, want ErrWritesNotAllowed", err)
	}
	if _, err := m.Explain(ctx, `SELECT pg_terminate_backend($1)`, ExplainOptions{}); !errors.Is(err, ErrWritesNotAllowed) ||
		!strings.Contains(err.Error(), "pg_terminate_backend") {
		t.Errorf("generic volatile call: err = %v, want ErrWritesNotAllowed naming it", err)
	}
	// With AllowWrites a generic plan is still not run: the rows stay.
	if p, err = m.Explain(ctx, `DELETE FROM mon_plan WHERE id > $1`, ExplainOptions{AllowWrites: true}); err != nil || !p.Generic {
		t.Fatalf("generic DELETE with AllowWrites: %+v, %v", p, err)
	}
	var n int
	if err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM mon_plan`).Scan(&n); err != nil || n != 50000 {
		t.Errorf("rows after a generic DELETE plan: %d (%v), want 50000", n, err)
	}
	// An unusable timeout is refused, not replaced.
	if _, err := m.Explain(ctx, `SELECT 1`, ExplainOptions{Timeout: -time.Second}); err == nil || !strings.Contains(err.Error(), "-1s") {
		t.Errorf("negative timeout: err = %v, want it refused", err)
	}
}
