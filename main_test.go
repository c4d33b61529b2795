package auditpg

import (
	"database/sql"
	"os"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) {
	if dsn := os.Getenv(envCoherenceChild); dsn != "" {
		os.Exit(coherenceChild(dsn)) // the second process of TestCoherenceAcrossProcesses
	}
	os.Exit(testdb.Run(m, &testDSN))
}

// openDB opens testDSN with the named driver ("pgx" or "auditpg"), through
// Open when options are given, and closes it when the test ends.
func openDB(tb testing.TB, driverName string, opts ...Option) *sql.DB {
	tb.Helper()
	if driverName == DriverName && len(opts) > 0 {
		db, err := Open(testDSN, opts...)
		return testdb.Opened(tb, db, err)
	}
	return testdb.Open(tb, driverName, testDSN)
}

// mustExec runs a set-up statement or stops the test.
var mustExec = testdb.Exec
