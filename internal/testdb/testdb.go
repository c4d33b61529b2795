// Package testdb is what the module's test packages share: a TestMain that
// runs the tests against a temporary PostgreSQL cluster, the helpers tests
// open the database, run set-up statements and make a schema of their own
// with, and Need, which gives a test a program outside Go (HypoPG,
// redis-server, chromium: see internal/sysdeps) or stops it. It is imported
// by tests only, so that no binary built from the module links the testing
// package.
package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/pgtemp"
	"github.com/auditpg/auditpg/internal/sysdeps"
	"github.com/jackc/pgx/v5"
)

// installTimeout bounds the install of the PostgreSQL server by Run, the
// wait for another test binary's install included.
const installTimeout = 20 * time.Minute

// Run runs a package's tests against a PostgreSQL server, for TestMain:
//
//	var testDSN string
//
//	func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }
//
// When AUDITPG_TEST_DATABASE_URL is set, *dsn is set to it and no cluster is
// started. Otherwise Run starts a cluster, stores its DSN in *dsn, runs
// m.Run, stops the cluster and returns the exit code. A missing PostgreSQL
// server is installed first when the tests run as root on Debian or Ubuntu
// (pgtemp.Install). When the cluster cannot start (no server, and no way to
// install it, say) Run prints why and the command to run on standard error
// and returns 1 without running the tests: they fail rather than skip.
func Run(m *testing.M, dsn *string) int {
	if url := os.Getenv(pgtemp.EnvDatabaseURL); url != "" {
		*dsn = url
		return m.Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	err := pgtemp.Install(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start a temporary PostgreSQL for the tests: %v; "+
			"or set %s to the URL of a server started with shared_preload_libraries=pg_stat_statements\n", err, pgtemp.EnvDatabaseURL)
		return 1
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgtemp.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: cannot start a temporary PostgreSQL for the tests: %v\n", err)
		return 1
	}
	*dsn = c.DSN()
	code := m.Run()
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
	return code
}

// Need returns where d is (see sysdeps.Dep.Find), for a test that cannot do
// its work without it. A missing d is installed when the tests run as root
// on Debian or Ubuntu (sysdeps.Ensure, which says so on standard error).
// Otherwise the test fails with the command to run, unless
// AUDITPG_NO_INSTALL is set: then nothing is installed and the test skips,
// saying "SKIP (missing program)", why and what to install. .ci/run
// refuses to run with AUDITPG_NO_INSTALL set, so that CI never skips for
// that reason.
func Need(tb testing.TB, d sysdeps.Dep) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	path, err := sysdeps.Ensure(ctx, d)
	if err != nil {
		Missing(tb, err)
	}
	return path
}

// Missing stops tb for err, a needed program that is missing and was not
// installed: tb skips, saying so, when AUDITPG_NO_INSTALL is set, and fails
// otherwise. For an err that is not about a missing program (see
// sysdeps.ErrMissing and pgtemp.ErrNoBinaries) it fails.
func Missing(tb testing.TB, err error) {
	tb.Helper()
	missing := errors.Is(err, sysdeps.ErrMissing) || errors.Is(err, pgtemp.ErrNoBinaries) || errors.Is(err, pgtemp.ErrNoPostgresUser)
	if missing && os.Getenv(sysdeps.EnvNoInstall) != "" {
		tb.Skipf("SKIP (missing program): %v", err)
	}
	tb.Fatal(err)
}

// Open opens dsn with the database/sql driver registered as driverName,
// closes it when tb ends and pings it: a test gets a database it can use, or
// stops there.
func Open(tb testing.TB, driverName, dsn string) *sql.DB {
	tb.Helper()
	db, err := sql.Open(driverName, dsn)
	return Opened(tb, db, err)
}

// Opened is Open for a database opened some other way (auditpg.Open with
// options, say): it stops the test on err, closes db when tb ends and pings
// it.
func Opened(tb testing.TB, db *sql.DB, err error) *sql.DB {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return db
}

// Execer is what *sql.DB, *sql.Conn and *sql.Tx share, for Exec and Schema.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Exec runs a statement a test cannot go on without, and stops the test,
// naming the statement, if it fails.
func Exec(tb testing.TB, db Execer, query string, args ...any) {
	tb.Helper()
	if _, err := db.ExecContext(context.Background(), query, args...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

var (
	schemaSeq    atomic.Int64
	notNameChars = regexp.MustCompile(`[^a-z0-9]+`)
)

// maxIdentLen is PostgreSQL's longest identifier (NAMEDATALEN-1 bytes): the
// server would truncate a longer name, and two tests could then share one.
const maxIdentLen = 63

// Schema creates a schema of the test's own and returns its name, unquoted
// (quote it with pgx.Identifier when building SQL). The name is made of the
// process id, a counter and tb.Name(), so tests that run in parallel, and
// packages that share one server through AUDITPG_TEST_DATABASE_URL, never
// share a schema; it is at most 63 bytes. The schema is dropped, with
// everything in it, when tb ends.
func Schema(tb testing.TB, db Execer) string {
	tb.Helper()
	name := fmt.Sprintf("t%d_%d_%s", os.Getpid(), schemaSeq.Add(1),
		strings.Trim(notNameChars.ReplaceAllString(strings.ToLower(tb.Name()), "_"), "_"))
	if len(name) > maxIdentLen {
		name = name[:maxIdentLen] // ASCII only: every byte is a character
	}
	quoted := pgx.Identifier{name}.Sanitize()
	Exec(tb, db, `CREATE SCHEMA `+quoted)
	tb.Cleanup(func() {
		if _, err := db.ExecContext(context.Background(), `DROP SCHEMA `+quoted+` CASCADE`); err != nil {
			tb.Logf("drop schema %s: %v", quoted, err)
		}
	})
	return name
}

// LogicalCluster starts a cluster of tb's own for the WAL's change stream:
// wal_level = logical, room for replication slots and WAL senders, and
// synchronous commits (a walsender sends only flushed WAL: with the
// temporary clusters' asynchronous commits, every change would wait for
// the WAL writer, wal_writer_delay). It is stopped when tb ends.
func LogicalCluster(tb testing.TB) *pgtemp.Cluster {
	tb.Helper()
	c, err := pgtemp.Start(context.Background(), pgtemp.WithSetting("wal_level", "logical"),
		pgtemp.WithSetting("max_replication_slots", "10"), pgtemp.WithSetting("max_wal_senders", "10"),
		pgtemp.WithSetting("synchronous_commit", "on"))
	if err != nil {
		Missing(tb, err) // stops the test
	}
	tb.Cleanup(func() { c.Stop() })
	return c
}
