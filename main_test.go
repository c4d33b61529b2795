package auditpg

import (
	"context"
	"database/sql"
	"os"
	"testing"

	"github.com/auditpg/auditpg/internal/pgtemp"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(pgtemp.RunTests(m, &testDSN)) }

// openDB opens testDSN with the named driver ("pgx" or "auditpg") and closes
// it when the test ends.
func openDB(tb testing.TB, driverName string, opts ...Option) *sql.DB {
	tb.Helper()
	var db *sql.DB
	var err error
	if driverName == DriverName && len(opts) > 0 {
		db, err = Open(testDSN, opts...)
	} else {
		db, err = sql.Open(driverName, testDSN)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return db
}

func mustExec(tb testing.TB, db *sql.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}
