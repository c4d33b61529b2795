package testdb_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/auditpg/auditpg/internal/sysdeps"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib"
)

var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// TestSchema: the schema exists under the returned name, which stays within
// PostgreSQL's 63 bytes however long the test name, and a statement run in
// a transaction through Exec sees it.
func TestSchema(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	t.Run(strings.Repeat("a long subtest name/", 6), func(t *testing.T) {
		name := testdb.Schema(t, db)
		if len(name) > 63 || !strings.HasPrefix(name, "t") || strings.ContainsAny(name, "/ ") {
			t.Errorf("schema name %q: want at most 63 bytes of [a-z0-9_]", name)
		}
		tx, err := db.BeginTx(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		testdb.Exec(t, tx, `CREATE TABLE `+pgx.Identifier{name, "x"}.Sanitize()+` (id int)`)
	})
	var left int
	if err := db.QueryRow(`SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't%a_long_subtest%'`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d schemas left after the subtest (%v), want 0: Schema drops its schema at cleanup", left, err)
	}
}

// stopper records how a helper stopped a test: Fatal and Skip end the
// goroutine, as the testing package's do.
type stopper struct {
	testing.TB
	failed, skipped string
}

func (s *stopper) Helper()                  {}
func (s *stopper) Fatal(args ...any)        { s.failed = fmt.Sprint(args...); runtime.Goexit() }
func (s *stopper) Skipf(f string, a ...any) { s.skipped = fmt.Sprintf(f, a...); runtime.Goexit() }

// stop runs f with a stopper and returns it once f returned or stopped.
func stop(t *testing.T, f func(tb testing.TB)) *stopper {
	s := &stopper{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(s)
	}()
	<-done
	return s
}

// TestNeed: a program that is there is returned; a missing one fails the
// test with the command to run, or, with AUDITPG_NO_INSTALL, skips it,
// saying so. Any other error fails the test either way.
func TestNeed(t *testing.T) {
	here := sysdeps.Dep{Name: "sh", Package: "dash", Find: func() (string, bool) { return "/bin/sh", true }}
	if s := stop(t, func(tb testing.TB) {
		if p := testdb.Need(tb, here); p != "/bin/sh" {
			tb.Errorf("Need = %q", p)
		}
	}); s.failed != "" || s.skipped != "" {
		t.Errorf("Need of a program that is there stopped the test: %+v", s)
	}

	t.Setenv(sysdeps.EnvNoInstall, "1")
	gone := sysdeps.Dep{Name: "nothing", Package: "auditpg-no-such-package", Find: func() (string, bool) { return "", false }}
	s := stop(t, func(tb testing.TB) { testdb.Need(tb, gone); tb.Error("Need returned") })
	if !strings.HasPrefix(s.skipped, "SKIP (missing program): ") || !strings.Contains(s.skipped, "AUDITPG_NO_INSTALL is set") ||
		!strings.Contains(s.skipped, "apt-get install -y auditpg-no-such-package") || s.failed != "" {
		t.Errorf("with AUDITPG_NO_INSTALL: %+v, want a skip that says what is missing", s)
	}
	if s := stop(t, func(tb testing.TB) { testdb.Missing(tb, errors.New("boom")) }); s.failed != "boom" || s.skipped != "" {
		t.Errorf("Missing of another error: %+v, want a failure", s)
	}

	t.Setenv(sysdeps.EnvNoInstall, "")
	_, err := sysdeps.Find(gone)
	if s := stop(t, func(tb testing.TB) { testdb.Missing(tb, err) }); !strings.Contains(s.failed, "apt-get install -y auditpg-no-such-package") || s.skipped != "" {
		t.Errorf("without AUDITPG_NO_INSTALL: %+v, want a failure with the command", s)
	}
}
