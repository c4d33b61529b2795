package testdb_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
)

var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// TestSchema: the schema exists under the returned name, which stays within
// PostgreSQL's 63 bytes however long the test name, and a statement run in
// a transaction through Exec sees it.
func TestSchema(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	t.Run(strings.Repeat("a long subtest name/", 6), func(t *testing.T) {
		name := testdb.Schema(t, db)
		if len(name) > 63 || !strings.HasPrefix(name, "t") || strings.ContainsAny(name, "/ ") {
			t.Errorf("schema name %q: want at most 63 bytes of [a-z0-9_]", name)
		}
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		testdb.Exec(t, tx, `CREATE TABLE `+pgx.Identifier{name, "x"}.Sanitize()+` (id int)`)
	})
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't%a_long_subtest%'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d schemas left after the subtest (%v), want 0: Schema drops its schema at cleanup", left, err)
	}
}
