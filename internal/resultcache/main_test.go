package resultcache

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/auditpg/auditpg/internal/pgtemp"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(pgtemp.RunTests(m, &testDSN)) }

// openPgx opens testDSN with pgx's own database/sql driver.
func openPgx(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("pgx", testDSN)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func exec(tb testing.TB, db *sql.DB, query string) {
	tb.Helper()
	if _, err := db.ExecContext(context.Background(), query); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}
