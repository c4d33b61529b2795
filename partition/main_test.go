package partition

import (
	"database/sql"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// openDB opens the test database through pgx's stdlib driver with the
// session TimeZone tz ("" for the server's), and closes it at the end.
func openDB(tb testing.TB, tz string) *sql.DB {
	tb.Helper()
	dsn := testDSN
	if tz != "" {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatal(err)
		}
		q := u.Query()
		q.Set("timezone", tz)
		u.RawQuery = q.Encode()
		dsn = u.String()
	}
	db := testdb.Open(tb, "pgx", dsn)
	if tz != "" {
		var got string
		if err := db.QueryRow(`SHOW TimeZone`).Scan(&got); err != nil || got != tz {
			tb.Fatalf("session TimeZone = %q, %v; want %q", got, err, tz)
		}
	}
	return db
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// newManager returns a Manager that creates its table when missing (the
// tests make their tables through Create); TestCreateTable checks the
// default, which refuses.
func newManager(tb testing.TB, db *sql.DB, opts ...Option) *Manager {
	tb.Helper()
	m, err := New(db, append([]Option{WithCreateTable(true)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

func names(parts []Partition) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p.Name)
	}
	return out
}

// testLogger logs to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
