package otelsetup

import (
	"database/sql"
	"os"
	"testing"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// createItems makes a fresh table named name with three rows.
func createItems(t testing.TB, db *sql.DB, name string) {
	t.Helper()
	table := pgx.Identifier{name}.Sanitize()
	for _, q := range []string{
		`DROP TABLE IF EXISTS ` + table,
		`CREATE TABLE ` + table + ` (id int PRIMARY KEY, name text NOT NULL)`,
		`INSERT INTO ` + table + ` VALUES (1, 'one'), (2, 'two'), (3, 'three')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// target is the server and database testDSN names, as auditpg parses it.
func target(t *testing.T) auditpg.Target {
	t.Helper()
	c, err := auditpg.NewConnector(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	return c.Target()
}
