package preset

import (
	"context"
	"database/sql"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the plain-driver tests

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// openDB opens testDSN with the "pgx" driver, or through auditpg.Open when
// driverName is auditpg.DriverName, and closes it when the test ends.
func openDB(tb testing.TB, driverName string) *sql.DB {
	tb.Helper()
	if driverName == auditpg.DriverName {
		// Local invalidation: the parallel tests' tables share one name
		// (in schemas of their own), and the change feed would tell each
		// test's cache of the others' writes, costing hits the tests count.
		db, err := auditpg.Open(testDSN, auditpg.WithInvalidation(auditpg.InvalidateLocal))
		return testdb.Opened(tb, db, err)
	}
	return testdb.Open(tb, driverName, testDSN)
}

// newStore creates a schema of the test's own, a store whose table lives in
// it, and the table; the schema is dropped when the test ends. Tests that
// use it can run in parallel.
func newStore(tb testing.TB, db *sql.DB, opts ...Option) *Store {
	tb.Helper()
	schema := testdb.Schema(tb, db)
	s, err := New(db, append([]Option{WithTable(schema, "audit_preset")}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.EnsureSchema(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// sample returns a valid preset for org.
func sample(name, org string) Preset {
	return Preset{
		Name: name, OrganizationID: org, Action: "test." + name,
		DataClassification: Internal, RequiredFields: []string{"principalId"},
		DefaultValues: map[string]any{"retentionPolicy": "1y"}, CreatedBy: "tester",
	}
}
