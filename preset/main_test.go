package preset

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/pgtemp"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, for the plain-driver tests
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(pgtemp.RunTests(m, &testDSN)) }

// openDB opens testDSN with the "pgx" driver, or through auditpg.Open when
// driverName is auditpg.DriverName, and closes it when the test ends.
func openDB(tb testing.TB, driverName string) *sql.DB {
	tb.Helper()
	var db *sql.DB
	var err error
	if driverName == auditpg.DriverName {
		db, err = auditpg.Open(testDSN)
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

var schemaSeq atomic.Int64

// newStore creates a schema of the test's own, a store whose table lives in
// it, and the table; the schema is dropped when the test ends. Tests that
// use it can run in parallel.
func newStore(tb testing.TB, db *sql.DB, opts ...Option) *Store {
	tb.Helper()
	ctx := context.Background()
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(tb.Name(), "_"))
	schema := fmt.Sprintf("t%d_%s", schemaSeq.Add(1), name)
	if len(schema) > 60 {
		schema = schema[:60]
	}
	quoted := pgx.Identifier{schema}.Sanitize()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+quoted); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.ExecContext(context.Background(), "DROP SCHEMA "+quoted+" CASCADE") })
	s, err := New(db, append([]Option{WithTable(schema, "audit_preset")}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.EnsureSchema(ctx); err != nil {
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
