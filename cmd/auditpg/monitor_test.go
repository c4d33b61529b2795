package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/monitor"
)

func TestMonitorCommands(t *testing.T) {
	ctx := context.Background()
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(t, db, err)
	for _, q := range []string{
		`CREATE TABLE cli_mon (id int PRIMARY KEY, v int) WITH (autovacuum_enabled = false)`,
		`INSERT INTO cli_mon SELECT g, g % 10 FROM generate_series(1, 3000) g`,
		`DELETE FROM cli_mon WHERE id > 1000`,
		`CREATE INDEX cli_mon_v ON cli_mon (v)`,
		`CREATE INDEX cli_mon_v_again ON cli_mon (v)`,
		`SELECT pg_stat_force_next_flush()`,
	} {
		testdb.Exec(t, db, q)
	}

	// Text output: readable tables naming the findings.
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"monitor", "indexes", "--no-hypopg"}, []string{"Redundant indexes (1)", "cli_mon_v_again", "duplicate of cli_mon_v"}},
		{[]string{"monitor", "tables"}, []string{"public.cli_mon", "last vacuum"}},
		{[]string{"monitor", "slow-queries", "--by-total", "--limit", "50"}, []string{"calls", "cli_mon"}},
		{[]string{"monitor", "explain", "SELECT * FROM cli_mon WHERE v = 3"}, []string{"rolled back", "cli_mon"}},
		{[]string{"monitor", "summary"}, []string{"Overall:", "Top statements by total time"}},
		{[]string{"optimize", "config", "--memory", "8GB"}, []string{"effective_cache_size", "6GB", "Nothing is applied"}},
		{[]string{"client", "health"}, []string{"Overall:", "indexes", "cli_mon_v_again"}},
	} {
		out, err := runCLI(t, tc.args...)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}

	// The duplicate index makes the health a warning: --fail-on warning exits non-zero.
	if _, err := runCLI(t, "client", "health", "--fail-on", "warning"); err == nil || !strings.Contains(err.Error(), "health is") {
		t.Errorf("client health --fail-on warning with a duplicate index: err = %v, want a failure", err)
	}
	if _, err := runCLI(t, "client", "health", "--fail-on", "bad"); err == nil {
		t.Error("--fail-on bad accepted")
	}

	// --json: one document of the package's types.
	out, err := runCLI(t, "--json", "client", "health")
	if err != nil {
		t.Fatal(err)
	}
	var h monitor.Health
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.Overall == "" || len(h.Components) == 0 {
		t.Fatalf("client health --json: %v\n%s", err, out)
	}
	out, err = runCLI(t, "--json", "monitor", "explain", "SELECT count(*) FROM cli_mon")
	var p monitor.Plan
	if err != nil || json.Unmarshal([]byte(out), &p) != nil || p.Root == nil || p.Root.ActualLoops != 1 {
		t.Fatalf("monitor explain --json: %v\n%s", err, out)
	}

	// Writes are refused without --allow-writes, and rolled back with it.
	if _, err := runCLI(t, "monitor", "explain", "DELETE FROM cli_mon"); err == nil || !strings.Contains(err.Error(), "AllowWrites") {
		t.Errorf("explain DELETE without --allow-writes: %v", err)
	}
	if _, err := runCLI(t, "monitor", "explain", "--allow-writes", "DELETE FROM cli_mon"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM cli_mon`).Scan(&n); err != nil || n != 1000 {
		t.Fatalf("rows after explain --allow-writes DELETE: %d (%v), want 1000", n, err)
	}

	// Maintenance: the dry run lists, --apply runs, then nothing is left.
	out, err = runCLI(t, "--json", "optimize", "maintenance")
	if err != nil {
		t.Fatal(err)
	}
	var dry struct {
		DryRun  bool                        `json:"dry_run"`
		Actions []monitor.MaintenanceAction `json:"actions"`
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil || !dry.DryRun || !strings.Contains(out, `VACUUM (ANALYZE) \"public\".\"cli_mon\"`) {
		t.Fatalf("optimize maintenance --json: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "optimize", "maintenance", "--apply"); err != nil || !strings.Contains(out, `VACUUM (ANALYZE) "public"."cli_mon"`) {
		t.Fatalf("optimize maintenance --apply: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "optimize", "maintenance"); err != nil || strings.Contains(out, "cli_mon") {
		t.Errorf("after --apply the dry run still lists cli_mon: %v\n%s", err, out)
	}
}

// TestMonitorExplainGuard: through the auditpg driver and a DSN that asks
// for the simple protocol, the two texts whose side effects once ran past the
// classifier (a -- comment ends at a carriage return in PostgreSQL) are
// refused, the refusals say why and what to give, and nothing ran: the
// backend still answers, the program made no file.
func TestMonitorExplainGuard(t *testing.T) {
	ctx := context.Background()
	u, err := url.Parse(testDSN)
	if err != nil || u.Scheme == "" {
		t.Fatalf("testDSN is not a URL (%v)", err)
	}
	q := u.Query()
	q.Set("default_query_exec_mode", "simple_protocol")
	u.RawQuery = q.Encode()
	dsn := u.String()
	db, err := auditpg.Open(dsn)
	db = testdb.Opened(t, db, err)
	victim, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	var pid int
	if err := victim.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}

	_, err = runCLI(t, "--dsn", dsn, "monitor", "explain", fmt.Sprintf("select 1 -- note\rwhere pg_terminate_backend(%d)", pid))
	if err == nil || !strings.Contains(err.Error(), "pg_terminate_backend") || !strings.Contains(err.Error(), "--allow-writes") {
		t.Errorf("explain of a hidden pg_terminate_backend: err = %v, want a refusal naming it and --allow-writes", err)
	}
	if _, err := victim.ExecContext(ctx, `SELECT 1`); err != nil {
		t.Errorf("backend %d ended: %v", pid, err)
	}

	file := filepath.Join(os.TempDir(), fmt.Sprintf("auditpg-cli-explain-guard-%d", os.Getpid()))
	os.Remove(file)
	defer os.Remove(file)
	_, err = runCLI(t, "--dsn", dsn, "monitor", "explain", fmt.Sprintf("select 1 -- note\r; copy (select 1) to program 'touch %s'", file))
	if !errors.Is(err, monitor.ErrMultipleStatements) {
		t.Errorf("explain of a hidden second statement: err = %v, want ErrMultipleStatements", err)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the program ran: stat %s: %v", file, err)
	}
}
