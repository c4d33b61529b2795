package suites

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
)

// sqlxDriverEnv names the driver the sqlx suite runs through: auditpg
// unless set to pgx, for a comparison by hand (the test then logs what
// fails instead of failing).
const sqlxDriverEnv = "AUDITPG_SUITES_DRIVER"

// sqlxDriver is a file added to sqlx's tests: the driver under test,
// registered, and told to sqlx as a $1 driver.
const sqlxDriver = `package sqlx

import (
	_ "github.com/auditpg/auditpg"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// sqlx knows "pgx" as a $1 driver; auditpg is told, as its README says.
func init() { BindDriver("auditpg", DOLLAR) }
`

// rewriteSqlxTests points one of sqlx's test files at the driver under
// test: the MySQL, SQLite and lib/pq drivers' imports go (their tests are
// turned off by the environment), "postgres" becomes driver, and a failure
// to connect panics instead of silently turning the PostgreSQL tests off.
func rewriteSqlxTests(t *testing.T, file, src, driver string) string {
	for _, imp := range []string{`"github.com/go-sql-driver/mysql"`, `"github.com/lib/pq"`, `"github.com/mattn/go-sqlite3"`} {
		src = replaceN(t, file, src, "\t_ "+imp+"\n", "", 1)
	}
	if file == "sqlx_test.go" {
		src = replaceN(t, file, src, `Connect("postgres", pgdsn)`, `Connect("`+driver+`", pgdsn)`, 1)
		src = replaceN(t, file, src, `fmt.Printf("Disabling PG tests:\n    %v\n", err)`,
			`panic(fmt.Sprintf("sqlx suite: cannot connect to PostgreSQL through `+driver+`: %v", err))`, 1)
	}
	return src
}

// TestSqlxSuite runs sqlx's own tests (the version in go.mod) against
// PostgreSQL through auditpg, in pgx's default query exec mode (the
// statement cache): sqlx's package is copied from the module cache into a
// temporary module of the same path, its test files rewritten
// (rewriteSqlxTests) and run with `go test` against the test database, in a
// schema of its own, with SQLX_MYSQL_DSN and SQLX_SQLITE_DSN set to skip.
// Only the root package's tests run (reflectx's and types' use no database).
//
// sqlx's tests drop and create their tables around each test with other
// column types under the same names, and run the same SQL against them, so a
// connection's cached statement meets a table whose result type changed: the
// server answers SQLSTATE 0A000 "cached plan must not change result type",
// which bare pgx returns (TestUsage, TestUsageContext) and auditpg must not.
func TestSqlxSuite(t *testing.T) {
	skipShort(t)
	driver := "auditpg"
	if d := os.Getenv(sqlxDriverEnv); d != "" {
		if d != "auditpg" && d != "pgx" {
			t.Fatalf("%s=%q: want auditpg or pgx", sqlxDriverEnv, d)
		}
		driver = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pgx := requiredModule(ctx, t, "github.com/jackc/pgx/v5")
	sqlx := requiredModule(ctx, t, "github.com/jmoiron/sqlx")

	dir := t.TempDir()
	writeModule(t, dir, "module "+sqlx.Path+"\n\ngo 1.26.0\n\nrequire (\n"+
		"\tgithub.com/auditpg/auditpg v0.0.0\n\t"+pgx.Path+" "+pgx.Version+"\n)\n")
	for _, sub := range []string{".", "reflectx"} {
		files, err := filepath.Glob(filepath.Join(sqlx.Dir, sub, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			src, name := readFile(t, f), filepath.Base(f)
			if sub == "." && (name == "sqlx_test.go" || name == "sqlx_context_test.go") {
				src = rewriteSqlxTests(t, name, src, driver)
			}
			writeFile(t, filepath.Join(dir, sub, name), src)
		}
	}
	writeFile(t, filepath.Join(dir, "auditpg_driver_test.go"), sqlxDriver)
	env := goEnv("mod")
	if out, err := runGo(ctx, dir, env, "mod", "tidy"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	db := testdb.Open(t, "pgx", testDSN)
	dsn := withParams(t, testDSN, "search_path", testdb.Schema(t, db))
	r, err := runSuite(ctx, dir, append(env, "SQLX_POSTGRES_DSN="+dsn, "SQLX_MYSQL_DSN=skip", "SQLX_SQLITE_DSN=skip"),
		"-timeout", "8m", ".")
	failures := r.report(t, 4000)
	if len(r.passed)+len(r.failed) == 0 {
		t.Fatalf("sqlx's suite ran no test: %v\n%s", err, tail(r.all, 6000))
	}
	if !strings.Contains(strings.Join(r.passed, " ")+" "+strings.Join(r.failed, " "), "TestUsage") {
		t.Fatalf("sqlx's suite did not run TestUsage:\n%s", tail(r.all, 6000))
	}
	if err == nil {
		return
	}
	if driver != "auditpg" {
		t.Logf("sqlx %s's suite through bare %s (reported, not asserted): %v\n%s", sqlx.Version, driver, err, failures)
		return
	}
	if len(r.failed) == 0 {
		t.Fatalf("%v\n%s", err, tail(r.all, 6000))
	}
	t.Fatalf("sqlx %s's suite through auditpg: %v\n%s", sqlx.Version, err, failures)
}
