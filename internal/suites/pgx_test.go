package suites

import (
	"context"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
)

// pgxExcluded are the tests of pgx's stdlib/sql_test.go that are not run
// through auditpg, and why. Every other test runs.
var pgxExcluded = map[string]string{
	"TestConnRaw": "asserts that (*sql.Conn).Raw hands its callback a *stdlib.Conn (driverConn.(*stdlib.Conn)); " +
		"auditpg's connection is its own type, and auditpg.PgxConn gives the *pgx.Conn " +
		"(the suite's other uses of Raw, in skipCockroachDB, skipPostgreSQLVersionLessThan and TestCheckIdleConn, are rewritten to it and run)",
	"TestSQLOpenFromPool": "stdlib.OpenDBFromPool makes a *sql.DB from a *pgxpool.Pool with no driver name: no wrapper can come between",
	"TestOptionBeforeAfterConnect": "stdlib.OptionBeforeConnect and OptionAfterConnect are Go functions given to stdlib.OpenDB; " +
		"no DSN given to sql.Open can carry them",
	"TestResetSessionHookCalled": "stdlib.OptionResetSession is a Go function given to stdlib.OpenDB; " +
		"no DSN given to sql.Open can carry it",
	"TestOptionShouldPing_HookCalledOnReuse": "stdlib.OptionShouldPing is a Go function given to stdlib.OpenDB (through openDB's options); " +
		"no DSN given to sql.Open can carry it",
}

// pgxHelpers is a file added to the suite: the DSN of each query exec mode
// and the *pgx.Conn of a Raw callback, through auditpg.
const pgxHelpers = `package stdlib_test

import (
	"net/url"
	"os"
	"strings"

	"github.com/auditpg/auditpg"
	"github.com/jackc/pgx/v5"
)

// auditpgDSN is PGX_TEST_DATABASE with pgx's default_query_exec_mode
// parameter set to mode: what config.DefaultQueryExecMode = mode does, in a
// form sql.Open("auditpg", dsn) takes.
func auditpgDSN(mode pgx.QueryExecMode) string {
	dsn := os.Getenv("PGX_TEST_DATABASE")
	value := strings.ReplaceAll(mode.String(), " ", "_") // "cache statement" -> cache_statement
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			panic(err)
		}
		q := u.Query()
		q.Set("default_query_exec_mode", value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " default_query_exec_mode=" + value
}

// auditpgPgxConn is what driverConn.(*stdlib.Conn).Conn() was: the *pgx.Conn
// under the connection Raw hands its callback, here an auditpg connection.
// It panics, as the type assertion did, when there is none.
func auditpgPgxConn(driverConn any) *pgx.Conn {
	c, err := auditpg.PgxConn(driverConn)
	if err != nil {
		panic(err)
	}
	return c
}
`

// rewritePgxSuite turns pgx's stdlib/sql_test.go into the same suite through
// sql.Open("auditpg", ...). Each edit must match exactly, and afterwards no
// test that runs may reach pgx's driver other than through auditpg.
func rewritePgxSuite(t *testing.T, src string) string {
	const file = "stdlib/sql_test.go"
	// openDB: stdlib.OpenDB(*config, opts...) becomes sql.Open of the same
	// DSN. The only caller with options is excluded.
	src = editFunc(t, file, src, "openDB", func(string) string {
		return `func openDB(t testing.TB, opts ...stdlib.OptionOpenDB) *sql.DB {
	t.Helper()
	if len(opts) > 0 {
		t.Fatal("stdlib.OptionOpenDB options cannot pass through sql.Open(\"auditpg\", dsn): exclude this test")
	}
	db, err := sql.Open("auditpg", os.Getenv("PGX_TEST_DATABASE"))
	require.NoError(t, err)
	return db
}`
	})
	// Each query exec mode through the DSN's default_query_exec_mode.
	src = editFunc(t, file, src, "testWithAllQueryExecModes", func(f string) string {
		return replaceN(t, file, f, `config, err := pgx.ParseConfig(os.Getenv("PGX_TEST_DATABASE"))
				require.NoError(t, err)

				config.DefaultQueryExecMode = mode
				db := stdlib.OpenDB(*config)`, `db, err := sql.Open("auditpg", auditpgDSN(mode))
				require.NoError(t, err)`, 1)
	})
	// Raw's connection: the *pgx.Conn through auditpg.PgxConn.
	for _, name := range []string{"skipCockroachDB", "skipPostgreSQLVersionLessThan", "TestCheckIdleConn"} {
		src = editFunc(t, file, src, name, func(f string) string {
			return strings.ReplaceAll(f, "driverConn.(*stdlib.Conn).Conn()", "auditpgPgxConn(driverConn)")
		})
	}
	// The driver names: TestSQLOpen's list, TestRegisterConnConfig and TestCheckIdleConn.
	src = editFunc(t, file, src, "TestSQLOpen", func(f string) string {
		return replaceN(t, file, f, `{driverName: "pgx"},
		{driverName: "pgx/v5"},`, `{driverName: "auditpg"},`, 1)
	})
	src = replaceN(t, file, src, `sql.Open("pgx", `, `sql.Open("auditpg", `, 3)

	// What runs must go through auditpg: no test left reaches pgx's
	// driver by its name, a connector or a type assertion.
	bypass := regexp.MustCompile(`stdlib\.OpenDB|stdlib\.GetConnector|sql\.Open\("pgx|\(\*stdlib\.Conn\)`)
	for name, body := range funcs(t, file, src) {
		if _, excluded := pgxExcluded[name]; excluded {
			continue
		}
		if m := bypass.FindString(body); m != "" {
			t.Fatalf("rewriting %s: %s still uses %s, bypassing auditpg: rewrite it or exclude it with a reason", file, name, m)
		}
	}
	return src
}

// TestPgxStdlibSuite runs pgx v5's own database/sql test suite
// (stdlib/sql_test.go of the pgx version in go.mod) through
// sql.Open("auditpg", ...), in every query exec mode the suite tries. The
// file is copied from the module cache into a temporary module, rewritten
// (see rewritePgxSuite; pgxExcluded lists what is left out) and run with
// `go test` against the test database, in a schema of its own. The test
// fails if the suite does.
//
// stdlib's other test files are not needed: sql_go1.27_test.go builds only
// with Go 1.27 and tests pgx's go1.27 scanning, and bench_test.go holds
// benchmarks.
func TestPgxStdlibSuite(t *testing.T) {
	skipShort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	pgx := requiredModule(ctx, t, "github.com/jackc/pgx/v5")
	src := rewritePgxSuite(t, readFile(t, filepath.Join(pgx.Dir, "stdlib", "sql_test.go")))

	dir := t.TempDir()
	writeModule(t, dir, "module auditpg.test/pgxsuite\n\ngo 1.26.0\n\nrequire (\n"+
		"\tgithub.com/auditpg/auditpg v0.0.0\n\t"+pgx.Path+" "+pgx.Version+"\n)\n")
	writeFile(t, filepath.Join(dir, "sql_test.go"), src)
	writeFile(t, filepath.Join(dir, "auditpg_test.go"), pgxHelpers)
	env := goEnv("mod")
	if out, err := runGo(ctx, dir, env, "mod", "tidy"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	db := testdb.Open(t, "pgx", testDSN)
	dsn := withParams(t, testDSN, "search_path", testdb.Schema(t, db))
	var skip []string
	for _, name := range slices.Sorted(maps.Keys(pgxExcluded)) {
		t.Logf("excluded %s: %s", name, pgxExcluded[name])
		skip = append(skip, regexp.QuoteMeta(name))
	}
	r, err := runSuite(ctx, dir, append(env, "PGX_TEST_DATABASE="+dsn),
		"-timeout", "8m", "-skip", "^("+strings.Join(skip, "|")+")$", ".")
	failures := r.report(t, 4000)
	if err != nil {
		if len(r.failed) == 0 {
			t.Fatalf("%v\n%s", err, tail(r.all, 6000))
		}
		t.Fatalf("pgx %s's stdlib suite through auditpg: %v\n%s", pgx.Version, err, failures)
	}
	if len(r.passed) == 0 {
		t.Fatalf("pgx's stdlib suite ran no test:\n%s", tail(r.all, 6000))
	}
}
