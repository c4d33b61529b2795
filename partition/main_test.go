package partition

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/pgtemp"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(pgtemp.RunTests(m, &testDSN)) }

var schemaSeq atomic.Int64

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
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if tz != "" {
		var got string
		if err := db.QueryRow(`SHOW TimeZone`).Scan(&got); err != nil || got != tz {
			tb.Fatalf("session TimeZone = %q, %v; want %q", got, err, tz)
		}
	}
	return db
}

// newSchema creates a fresh schema for one test, dropped at the end.
func newSchema(tb testing.TB, db *sql.DB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%s", schemaSeq.Add(1), strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "'", "", "=", "_", "\"", "").Replace(tb.Name())))
	if len(name) > 60 {
		name = name[:60]
	}
	exec(tb, db, `CREATE SCHEMA `+Table{Name: name}.String())
	tb.Cleanup(func() {
		db.Exec(`DROP SCHEMA ` + Table{Name: name}.String() + ` CASCADE`)
	})
	return name
}

func exec(tb testing.TB, db *sql.DB, query string, args ...any) {
	tb.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func newManager(tb testing.TB, db *sql.DB, opts ...Option) *Manager {
	tb.Helper()
	m, err := New(db, opts...)
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
