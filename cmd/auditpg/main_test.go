package main

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// runCLI runs the command line with args against the test database and
// returns what it printed on stdout; what it printed on stderr goes to the
// test log.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd(&globals{stdout: &out, stderr: &errOut})
	root.SetArgs(append([]string{"--dsn", testDSN}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := root.ExecuteContext(context.Background())
	if errOut.Len() > 0 {
		t.Log(errOut.String())
	}
	return out.String(), err
}

func TestNoDSN(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	var out bytes.Buffer
	g := &globals{stdout: &out, stderr: &out}
	if _, err := g.openDB(context.Background()); err == nil {
		t.Fatal("openDB without --dsn or DATABASE_URL: want an error that says so")
	}
}
