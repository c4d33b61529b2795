package resultcache

import (
	"database/sql"
	"os"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// openPgx opens testDSN with pgx's own database/sql driver.
func openPgx(tb testing.TB) *sql.DB { return testdb.Open(tb, "pgx", testDSN) }

func exec(tb testing.TB, db *sql.DB, query string) { testdb.Exec(tb, db, query) }
