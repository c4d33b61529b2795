package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/monitor"
	"go.opentelemetry.io/otel/trace"
)

// appWorkload opens the test database as an application would, with the
// result cache, a slow-query threshold every call passes and argument
// logging, and makes calls that fill every figure of its statistics: cache
// hits and bypasses, a write that invalidates and one that finds nothing
// cached, a failed call, slow samples in a trace, several of one statement.
func appWorkload(t *testing.T) *auditpg.Snapshot {
	t.Helper()
	ctx := context.Background()
	// Local invalidation: the other tests' writes and DDL, heard through
	// the change feed, would change the figures this test checks.
	db, err := auditpg.Open(testDSN, auditpg.WithCacheMode(auditpg.CacheAll), auditpg.WithSlowQueryThreshold(time.Nanosecond),
		auditpg.WithLogArgs(true), auditpg.WithMaxOpenConns(2), auditpg.WithInvalidation(auditpg.InvalidateLocal))
	db = testdb.Opened(t, db, err)
	for _, q := range []string{
		`DROP TABLE IF EXISTS cli_app, cli_app_log`,
		`CREATE TABLE cli_app (id int PRIMARY KEY, v text)`,
		`CREATE TABLE cli_app_log (id int, v text)`,
		`INSERT INTO cli_app VALUES (1, 'one'), (2, 'two')`,
	} {
		testdb.Exec(t, db, q)
	}
	if err := auditpg.ResetStats(db); err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	tctx := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	var v string
	for range 3 {
		if err := db.QueryRowContext(tctx, `SELECT v FROM cli_app WHERE id = $1`, 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT v FROM cli_app WHERE id = $1`, 2).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, db, `INSERT INTO cli_app_log VALUES (1, 'x')`)
	testdb.Exec(t, db, `UPDATE cli_app SET v = 'uno' WHERE id = 1`)
	if _, err := db.ExecContext(tctx, `INSERT INTO cli_app VALUES ($1, 'dup')`, 1); err == nil {
		t.Fatal("a duplicate key was inserted")
	}
	s, err := auditpg.Stats(db)
	if err != nil {
		t.Fatal(err)
	}
	return &s
}

// serveStats serves s as an application's StatsHandler would, behind a
// bearer token, and returns its URL.
func serveStats(t *testing.T, s *auditpg.Snapshot) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		s.WriteJSON(w)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/debug/auditpg"
}

func writeSnapshot(t *testing.T, s *auditpg.Snapshot) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stats.json")
	var buf bytes.Buffer
	if err := s.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkWidth fails t for a line of out wider than the report's width.
func checkWidth(t *testing.T, what, out string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if n := utf8.RuneCountInString(line); n > reportWidth {
			t.Errorf("%s: a line of %d columns, wider than %d:\n%s", what, n, reportWidth, line)
		}
	}
}

// TestClientReport: client report reads the application's statistics from
// its endpoint or from a file it wrote, never from the command's own pool,
// and says how to give them when neither is given.
func TestClientReport(t *testing.T) {
	snap := appWorkload(t)
	url := serveStats(t, snap)
	file := writeSnapshot(t, snap)

	for _, tc := range []struct {
		args []string
		want []string // in the error
	}{
		{[]string{"client", "report"}, []string{"--url", "--file", "auditpg.StatsHandler"}},
		{[]string{"client", "report", "--url", url, "--file", file}, []string{"--url or --file, not both"}},
		{[]string{"client", "report", "--url", url}, []string{"401 Unauthorized", "--header"}},
		{[]string{"client", "report", "--url", "ftp://host/x"}, []string{`--url "ftp://host/x"`, "http or https"}},
		{[]string{"client", "report", "--url", url, "--header", "no colon"}, []string{`--header "no colon"`, "Name: value"}},
		{[]string{"client", "report", "--file", file, "--header", "A: b"}, []string{"--header applies to --url only"}},
		{[]string{"client", "report", "--url", url, "--timeout", "-5s"}, []string{"--timeout -5s", "positive"}},
		{[]string{"client", "report", "--file", file, "--timeout", "5s"}, []string{"--timeout applies to --url only"}},
		{[]string{"client", "health", "--file", file, "--header", "A: b"}, []string{"--header applies to --url only"}},
		{[]string{"client", "health", "--url", url, "--file", file}, []string{"--url or --file, not both"}},
		{[]string{"client", "report", "--file", filepath.Join(t.TempDir(), "none.json")}, []string{"--file", "no such file"}},
	} {
		if _, err := runCLI(t, tc.args...); err == nil {
			t.Errorf("%v: no error", tc.args)
		} else {
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v: error %q lacks %q", tc.args, err, w)
				}
			}
		}
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	if _, err := runCLI(t, "client", "report", "--url", slow.URL, "--timeout", "100ms"); err == nil || !strings.Contains(err.Error(), "no answer within --timeout 100ms") {
		t.Errorf("client report --url of a server that does not answer: err = %v", err)
	}
	for name, content := range map[string]string{"not JSON": "<html>", "other JSON": `{"overall": "healthy"}`} {
		path := filepath.Join(t.TempDir(), "x.json")
		os.WriteFile(path, []byte(content), 0o600)
		if _, err := runCLI(t, "client", "report", "--file", path); err == nil || !strings.Contains(err.Error(), "not the JSON of auditpg statistics") {
			t.Errorf("--file of %s: err = %v, want one that says it is not auditpg's statistics", name, err)
		}
	}

	out, err := runCLI(t, "client", "report", "--url", url, "--header", "Authorization: Bearer s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Totals since", "open now", "open at the start", "Result cache (mode all)",
		"invalidations 1 (made cached results stale); 2 more of tables nothing was cached from",
		"entries 1 (stale ones included) holding", "of at most 100.0 MiB", "bypass", "Statements by total time",
		"Recent slow queries", "SELECT v FROM cli_app WHERE id = $1", "1 failed, 23505"} {
		if !strings.Contains(out, w) {
			t.Errorf("client report --url: output lacks %q:\n%s", w, out)
		}
	}
	checkWidth(t, "client report", out)
	// The four slow reads of one statement are one line, counted.
	var slowLines []string
	for _, line := range strings.Split(out[strings.Index(out, "Recent slow queries"):], "\n") {
		if strings.Contains(line, "SELECT v FROM cli_app WHERE id = $1") {
			slowLines = append(slowLines, line)
		}
	}
	if len(slowLines) != 1 || !strings.HasPrefix(strings.TrimSpace(slowLines[0]), "4 ") {
		t.Errorf("slow samples of the read: %q; want one line counting its 4 calls:\n%s", slowLines, out)
	}

	// --json: the snapshot as the application wrote it, byte for byte.
	out, err = runCLI(t, "--json", "client", "report", "--file", file)
	if err != nil {
		t.Fatal(err)
	}
	written, _ := os.ReadFile(file)
	if out != string(written) {
		t.Errorf("client report --json --file: the snapshot changed on the way:\n%s\nwant\n%s", out, written)
	}
	checkJSON(t, "client-report", out, "cache.bypasses")

	// --file - reads stdin.
	var stdout, stderr bytes.Buffer
	root := newRootCmd(&globals{stdout: &stdout, stderr: &stderr})
	root.SetArgs([]string{"client", "report", "--file", "-"})
	root.SetIn(bytes.NewReader(written))
	if err := root.ExecuteContext(context.Background()); err != nil || !strings.Contains(stdout.String(), "Totals since") {
		t.Errorf("client report --file -: %v\n%s", err, stdout.String())
	}
}

// TestClientHealth: without --url or --file, health judges the server only
// (the command's own pool is not the application's); with them, the
// application's driver figures too.
func TestClientHealth(t *testing.T) {
	snap := appWorkload(t)
	file := writeSnapshot(t, snap)

	out, err := runCLI(t, "--json", "client", "health")
	if err != nil {
		t.Fatal(err)
	}
	var h monitor.Health
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatal(err)
	}
	for _, c := range h.Components {
		if c.Name == "driver" {
			t.Errorf("client health without --url or --file judges a driver: %+v", c)
		}
	}

	out, err = runCLI(t, "--json", "client", "health", "--file", file)
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, "client-health", out)
	h = monitor.Health{}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatal(err)
	}
	var driver *monitor.Component
	for i := range h.Components {
		if h.Components[i].Name == "driver" {
			driver = &h.Components[i]
		}
	}
	if driver == nil || driver.Status != monitor.Warning || !strings.Contains(strings.Join(driver.Reasons, "; "), "calls failed") {
		t.Fatalf("client health --file with a failed call: driver component %+v, want a warning naming it", driver)
	}
	if _, err := runCLI(t, "client", "health", "--file", file, "--fail-on", "warning"); err == nil || !strings.Contains(err.Error(), "health is warning") {
		t.Errorf("client health --file --fail-on warning: err = %v, want the warning as the exit status", err)
	}

	url := serveStats(t, snap)
	out, err = runCLI(t, "client", "health", "--url", url, "--header", "Authorization: Bearer s3cret")
	if err != nil || !strings.Contains(out, "driver") || !strings.Contains(out, "calls failed") {
		t.Errorf("client health --url: %v\n%s", err, out)
	}
}

// TestMonitorSummaryServerOnly: monitor summary no longer shows the
// command's own connection pool as if it were the application's driver.
func TestMonitorSummaryServerOnly(t *testing.T) {
	out, err := runCLI(t, "monitor", "summary")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"auditpg driver", "this connection pool", "Totals since"} {
		if strings.Contains(out, w) {
			t.Errorf("monitor summary shows %q:\n%s", w, out)
		}
	}
}

func TestDurText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 950: "950ns", 1234: "1.23µs", 45_678: "45.7µs", 999_499: "999µs", 999_500: "1.00ms",
		45_600_000: "45.6ms", 123_456_789: "123ms", 3_614_000_000: "3.61s", 99_990_000_000: "100s",
		1000 * time.Second: "16m40s",
	} {
		if got := durText(d); got != want {
			t.Errorf("durText(%d) = %q, want %q", int64(d), got, want)
		}
	}
}
