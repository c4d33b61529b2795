package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
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

// TestErrorText: an error is printed with one "auditpg:" prefix, pgx's
// repeated attempt lines once, and Ctrl-C as an interruption.
func TestErrorText(t *testing.T) {
	// A real connection failure: pgx tries TLS, then plain, and says both.
	_, err := runCLI(t, "--dsn", "postgres://nobody@127.0.0.1:1/x?connect_timeout=2", "monitor", "tables")
	if err == nil {
		t.Fatal("a connection to port 1 succeeded")
	}
	text := errorText(err, false)
	if strings.Count(text, "auditpg:") != 1 || !strings.HasPrefix(text, "auditpg: ") {
		t.Errorf("error printed as %q; want one auditpg: prefix", text)
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if slices.Contains(lines[:i], l) {
			t.Errorf("line %q printed twice in %q", l, text)
		}
	}
	_, err = runCLI(t, "--dsn", "postgres://x@127.0.0.1:1/x?auditpg_cache=bogus", "monitor", "tables")
	if text := errorText(err, false); strings.Count(text, "auditpg:") != 1 || !strings.Contains(text, "auditpg_cache") {
		t.Errorf("a DSN parameter error printed as %q; want one prefix, naming the parameter", text)
	}
	if text := errorText(fmt.Errorf("reading: %w", context.Canceled), true); text != "auditpg: interrupted (Ctrl-C) before the command finished" {
		t.Errorf("an interruption printed as %q", text)
	}
	if text := errorText(context.Canceled, false); !strings.Contains(text, "context canceled") {
		t.Errorf("a cancellation without Ctrl-C printed as %q; want the error itself", text)
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	root := newRootCmd(&globals{stdout: &out, stderr: &out})
	root.SetArgs([]string{"--version"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil || !strings.HasPrefix(out.String(), "auditpg version ") || len(strings.TrimSpace(out.String())) <= len("auditpg version") {
		t.Errorf("--version printed %q, %v; want the version", out.String(), err)
	}
}
