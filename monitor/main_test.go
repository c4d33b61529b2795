package monitor

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// openDB opens testDSN with pgx's database/sql driver.
func openDB(tb testing.TB) *sql.DB {
	tb.Helper()
	return testdb.Open(tb, "pgx", testDSN)
}

// fixture is one session that creates a situation. Statistics a session
// counts (scans, dead tuples) reach the shared statistics when it goes idle
// at most once a second; flush forces it.
type fixture struct {
	tb   testing.TB
	conn *sql.Conn
}

func newFixture(tb testing.TB, db *sql.DB) *fixture {
	tb.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &fixture{tb: tb, conn: c}
}

func (f *fixture) exec(query string, args ...any) {
	f.tb.Helper()
	testdb.Exec(f.tb, f.conn, query, args...)
}

// flush makes this session's pending statistics visible to others: the
// flag makes the report that precedes ReadyForQuery unconditional.
func (f *fixture) flush() {
	f.tb.Helper()
	f.exec(`SELECT pg_stat_force_next_flush()`)
}

// eventually polls cond until it holds or 20 seconds pass: statistics are
// asynchronous, so a check may need a few reads, never a blind sleep.
func eventually(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not true after 20s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openDBAt opens dsn with pgx's database/sql driver.
func openDBAt(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	return testdb.Open(tb, "pgx", dsn)
}
