package monitor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// execModes are pgx's query exec modes: a DSN may ask for any of them, the
// simple protocol included, which runs every statement of a text.
var execModes = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}

// dsnWith returns dsn (a URL or key=value pairs) with one more parameter.
func dsnWith(tb testing.TB, dsn, name, value string) string {
	tb.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " " + name + "=" + value
	}
	u, err := url.Parse(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set(name, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// victim is a session a statement under test would end: its pid, and a
// check that it still answers and is still in pg_stat_activity.
func victim(t *testing.T, db *sql.DB) (pid int, alive func() error) {
	t.Helper()
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid, func() error {
		// The victim's own query first: once it answers, its backend has
		// not been signalled, and pg_stat_activity cannot lag.
		if _, err := c.ExecContext(ctx, `SELECT 1`); err != nil {
			return fmt.Errorf("backend %d no longer answers: %w", pid, err)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n); err != nil || n != 1 {
			return fmt.Errorf("backend %d: %d rows in pg_stat_activity (%v), want 1", pid, n, err)
		}
		return nil
	}
}

// TestExplainGuard: without AllowWrites, no text makes Explain end another
// backend or run a program, whatever the classifier reads in it and whatever
// protocol the DSN asks for. The texts hide what they do from the
// classifier where they can: a -- comment ends at a carriage return in
// PostgreSQL, and EXPLAIN prints no LIMIT count or VALUES list.
func TestExplainGuard(t *testing.T) {
	ctx := context.Background()
	admin := openDB(t)
	schema := pgx.Identifier{testdb.Schema(t, admin)}.Sanitize()
	testdb.Exec(t, admin, `CREATE TABLE `+schema+`.guard (id int PRIMARY KEY, v int)`)
	testdb.Exec(t, admin, `INSERT INTO `+schema+`.guard SELECT g, g FROM generate_series(1, 10) g`)
	testdb.Exec(t, admin, `CREATE FUNCTION `+schema+`.kill(pid int) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN RETURN pg_terminate_backend(pid); END$$`)
	testdb.Exec(t, admin, `CREATE FUNCTION `+schema+`.twice(i int) RETURNS int LANGUAGE sql STABLE AS $$SELECT i * 2$$`)
	testdb.Exec(t, admin, `CREATE FUNCTION `+schema+`.kill_inlined(pid int) RETURNS boolean LANGUAGE sql AS $$SELECT pg_terminate_backend(pid)$$`)

	volatile := []string{ // %[1]d: the victim's pid; %[2]s: the schema
		"select 1 -- note\rwhere pg_terminate_backend(%[1]d)",
		"SELECT v FROM %[2]s.guard -- note\rWHERE id = 1 AND pg_terminate_backend(%[1]d)",
		"SELECT (SELECT 1 -- note\rWHERE pg_terminate_backend(%[1]d))",
		"SELECT * FROM (SELECT 1 AS x -- note\rWHERE pg_terminate_backend(%[1]d)) s",
		"SELECT 1 WHERE 1 IN (SELECT id FROM %[2]s.guard -- note\rWHERE pg_terminate_backend(%[1]d))",
		"WITH k AS MATERIALIZED (SELECT 1 AS x -- note\rWHERE pg_terminate_backend(%[1]d)) SELECT * FROM k",
		"WITH k AS (SELECT 1 AS x) SELECT * FROM k -- note\rWHERE pg_catalog.pg_terminate_backend(%[1]d)",
		"SELECT 1 -- note\rLIMIT pg_terminate_backend /* a */ (%[1]d)::int",
		"VALUES (1), (2 -- note\r+ pg_terminate_backend(%[1]d)::int)",
		`SELECT 1 -- note` + "\r" + `WHERE "pg_terminate_backend"(%[1]d)`,
		"SELECT %[2]s.kill(%[1]d)",
		"SELECT %[2]s.kill_inlined(%[1]d)",
		"SELECT id FROM %[2]s.guard WHERE %[2]s.kill(%[1]d)",
	}
	multi := []string{ // %s: the file the program would create
		"select 1 -- note\r; copy (select 1) to program 'touch %s'",
		"SELECT 1 -- note\r; COPY (SELECT 1) TO PROGRAM 'touch %s' -- the end",
		"SELECT 1 -- note\r\n; COPY (SELECT 1) TO PROGRAM 'touch %s'",
		"SELECT 1 /* a */; /* b */ COPY (SELECT 1) TO PROGRAM 'touch %s'",
		"SELECT 1;\rCOPY (SELECT 1) TO PROGRAM 'touch %s'",
	}
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			db := openDBAt(t, dsnWith(t, testDSN, "default_query_exec_mode", mode))
			m := newMonitor(t, db)

			// What the guard must let through still runs, arguments included.
			// A stable function the classifier does not know is pg_proc's to judge.
			for _, q := range []string{`SELECT v FROM ` + schema + `.guard WHERE id = $1`,
				`SELECT now(), lower(v::text) FROM ` + schema + `.guard WHERE id > $1`,
				`SELECT ` + schema + `.twice(v) FROM ` + schema + `.guard WHERE id > $1`} {
				if _, err := m.Explain(ctx, q, ExplainOptions{Args: []any{3}}); err != nil {
					t.Errorf("%s: %v", q, err)
				}
			}

			for i, f := range volatile {
				pid, alive := victim(t, db)
				q := fmt.Sprintf(f, pid, schema)
				_, err := m.Explain(ctx, q, ExplainOptions{})
				t.Logf("%q: %v", q, err)
				if !errors.Is(err, ErrWritesNotAllowed) {
					t.Errorf("volatile %d %q: err = %v, want ErrWritesNotAllowed", i, q, err)
				} else if !strings.Contains(err.Error(), "kill") && !strings.Contains(err.Error(), "pg_terminate_backend") ||
					!strings.Contains(err.Error(), "AllowWrites") {
					t.Errorf("volatile %d %q: error %q does not name the function and AllowWrites", i, q, err)
				}
				if err := alive(); err != nil {
					t.Errorf("volatile %d %q: %v", i, q, err)
				}
			}

			for i, f := range multi {
				for _, allow := range []bool{false, true} {
					file := filepath.Join(os.TempDir(), fmt.Sprintf("auditpg-explain-guard-%d-%s-%d-%t", os.Getpid(), mode, i, allow))
					os.Remove(file)
					t.Cleanup(func() { os.Remove(file) })
					q := fmt.Sprintf(f, file)
					_, err := m.Explain(ctx, q, ExplainOptions{AllowWrites: allow})
					t.Logf("%q (AllowWrites %t): %v", q, allow, err)
					if !errors.Is(err, ErrMultipleStatements) {
						t.Errorf("multi %d (AllowWrites %t) %q: err = %v, want ErrMultipleStatements", i, allow, q, err)
					}
					if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("multi %d (AllowWrites %t) %q: the program ran (stat %s: %v)", i, allow, q, file, err)
					}
				}
			}
		})
	}
}

// TestExplainCalls: the function names read from deparsed plan expressions
// and from a statement's text.
func TestExplainCalls(t *testing.T) {
	names := map[string]bool{}
	deparsedCalls(`(pg_catalog.nextval('s'::regclass) + "Odd""Name"(x)) AND ('f(1)'::text = E'g(\'h(2)'::text) AND (y = ANY (z))`, names)
	for _, want := range []string{"nextval", `Odd"Name`, "any"} {
		if !names[want] {
			t.Errorf("deparsed: %q not found in %v", want, names)
		}
	}
	for _, not := range []string{"f", "g", "h", "regclass", "text"} {
		if names[not] {
			t.Errorf("deparsed: %q (in a literal or a cast) found in %v", not, names)
		}
	}
	names = map[string]bool{}
	textCalls("SELECT 'a(' || Upper -- x\r(b) || c.Lower /* /* */ */ (d) || t.col || \"Q\"\"R\" (1) || a$b(2) FROM t", names)
	for _, want := range []string{"upper", "lower", "col", `Q"R`, "a$b"} {
		if !names[want] {
			t.Errorf("text: %q not found in %v", want, names)
		}
	}
	for _, not := range []string{"b", "select", "from", "t"} {
		if names[not] {
			t.Errorf("text: %q found in %v", not, names)
		}
	}
}
