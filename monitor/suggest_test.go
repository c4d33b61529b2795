package monitor

import (
	"context"
	"slices"
	"testing"

	"github.com/auditpg/auditpg/internal/sysdeps"
	"github.com/auditpg/auditpg/internal/testdb"
)

func TestQueryColumns(t *testing.T) {
	for _, tc := range []struct {
		query   string
		where   []columnUse
		orderBy []string
	}{
		{`SELECT * FROM t WHERE org = $1 AND status = $2 ORDER BY created_at DESC LIMIT $3`,
			[]columnUse{{"org", true}, {"status", true}}, []string{"created_at"}},
		{`SELECT id FROM t WHERE t.at >= $1 AND t.at < $2 AND "Kind" IN ($3, $4)`,
			[]columnUse{{"at", false}, {"at", false}, {"Kind", true}}, nil},
		{`SELECT * FROM t WHERE $1 = org AND lower(name) = $2 ORDER BY a, b ASC NULLS LAST, lower(c)`,
			[]columnUse{{"org", true}}, []string{"a", "b"}},
		{`SELECT * FROM t WHERE x = 'WHERE y = 1' -- ORDER BY z
		   GROUP BY w`, []columnUse{{"x", true}}, nil},
		{`SELECT * FROM t`, nil, nil},
		// Non-reserved keywords name columns; strings of any quoting are values.
		{`SELECT * FROM t WHERE range = $1 AND x = E'it\'s WHERE y = 1' AND z LIKE $$WHERE w = 1$$ ORDER BY a NULLS FIRST, b`,
			[]columnUse{{"range", true}, {"x", true}, {"z", false}}, []string{"a", "b"}},
	} {
		where, orderBy := queryColumns(tc.query)
		if !slices.Equal(where, tc.where) || !slices.Equal(orderBy, tc.orderBy) {
			t.Errorf("queryColumns(%q) = %v, %v; want %v, %v", tc.query, where, orderBy, tc.where, tc.orderBy)
		}
	}
	if n := paramCount(`SELECT $1, $12, '$3'`); n != 12 {
		t.Errorf("paramCount = %d, want 12", n)
	}
}

// suggestFixture makes a table read by a frequent statement that no index
// serves: org (1000 values) is more selective than status (5 values).
func suggestFixture(t *testing.T, table string) (*Monitor, *fixture) {
	t.Helper()
	db := openDB(t)
	f := newFixture(t, db)
	f.exec(`CREATE TABLE ` + table + ` (id int PRIMARY KEY, org int, status int, created_at timestamptz)`)
	f.exec(`INSERT INTO ` + table + ` SELECT g, g % 1000, g % 5, now() - g * interval '1 minute' FROM generate_series(1, 30000) g`)
	f.exec(`ANALYZE ` + table)
	for i := range 5 {
		f.exec(`SELECT id FROM `+table+` WHERE status = $1 AND org = $2 ORDER BY created_at`, i, i*7)
	}
	return newMonitor(t, db), f
}

func findSuggestion(s *IndexSuggestions, table string) *IndexSuggestion {
	for i := range s.Suggestions {
		if s.Suggestions[i].Table.Name == table {
			return &s.Suggestions[i]
		}
	}
	return nil
}

func TestSuggestIndexes(t *testing.T) {
	ctx := context.Background()
	m, f := suggestFixture(t, "mon_sug")
	s, err := m.SuggestIndexes(ctx, SuggestOptions{Statements: 500})
	if err != nil {
		t.Fatal(err)
	}
	g := findSuggestion(s, "mon_sug")
	if g == nil {
		t.Fatalf("no suggestion for mon_sug in %+v", s.Suggestions)
	}
	if len(g.Columns) != 3 || g.Columns[0].Name != "org" || g.Columns[1].Name != "status" || g.Columns[2].Name != "created_at" || g.Columns[0].Distinct < 500 ||
		g.CreateSQL != `CREATE INDEX CONCURRENTLY ON "public"."mon_sug" ("org", "status", "created_at")` || len(g.Queries) != 1 || g.Queries[0].Calls != 5 {
		t.Errorf("suggestion = %+v, want (org, status, created_at): equalities, the more selective first, then the order", g)
	}
	if s.Checked || s.HypoPG != "not requested" {
		t.Errorf("HypoPG = %q, checked %v; want not requested", s.HypoPG, s.Checked)
	}
	f.exec(`CREATE INDEX mon_sug_org_status ON mon_sug (org, status, created_at)`)
	if s, err = m.SuggestIndexes(ctx, SuggestOptions{Statements: 500}); err != nil {
		t.Fatal(err)
	}
	if g := findSuggestion(s, "mon_sug"); g != nil {
		t.Errorf("suggested again once the index exists: %+v", g)
	}
}

func TestSuggestIndexesHypoPG(t *testing.T) {
	ctx := context.Background()
	m, _ := suggestFixture(t, "mon_sug_hypo")
	available := func() bool {
		var ok bool
		if err := m.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')`).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !available() {
		s, err := m.SuggestIndexes(ctx, SuggestOptions{Statements: 500, CheckHypothetical: true})
		if err != nil {
			t.Fatal(err)
		}
		if s.Checked || findSuggestion(s, "mon_sug_hypo") == nil {
			t.Errorf("without HypoPG: %+v, want the suggestion, unchecked, saying so", s)
		}
		var major int
		if err := m.db.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int / 10000`).Scan(&major); err != nil {
			t.Fatal(err)
		}
		testdb.Need(t, sysdeps.HypoPG(major))
		if !available() {
			t.Fatalf("postgresql-%d-hypopg is installed here, but the server does not offer hypopg: "+
				"with AUDITPG_TEST_DATABASE_URL set, install it where that server runs", major)
		}
	}
	s, err := m.SuggestIndexes(ctx, SuggestOptions{Statements: 500, CheckHypothetical: true})
	if err != nil {
		t.Fatal(err)
	}
	g := findSuggestion(s, "mon_sug_hypo")
	if !s.Checked || g == nil {
		t.Fatalf("HypoPG available but: %q, %+v", s.HypoPG, s.Suggestions)
	}
	q := g.Queries[0]
	if q.CheckErr != "" || !q.UsesIndex || q.CostAfter <= 0 || q.CostAfter >= q.CostBefore {
		t.Errorf("hypothetical check = %+v, want the index used and the cost lower", q)
	}
	// Nothing is left behind: the extension was created in a rolled-back
	// transaction, and the prepared statement (PostgreSQL < 16) deallocated,
	// on the one connection of this pool.
	one := openDB(t)
	one.SetMaxOpenConns(1)
	if s, err = newMonitor(t, one).SuggestIndexes(ctx, SuggestOptions{Statements: 500, CheckHypothetical: true}); err != nil || !s.Checked {
		t.Fatalf("check on a one-connection pool: %v, %+v", err, s)
	}
	var installed bool
	var prepared int
	if err := one.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg'),
	       (SELECT count(*) FROM pg_prepared_statements WHERE name = 'auditpg_monitor_estimate')`).Scan(&installed, &prepared); err != nil || installed || prepared != 0 {
		t.Errorf("left behind: hypopg installed %v, prepared statements %d (%v)", installed, prepared, err)
	}

}
