package otelsetup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/otel"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// jaegerModule is the Jaeger release the end-to-end test runs.
const (
	jaegerModule  = "github.com/jaegertracing/jaeger"
	jaegerVersion = "v1.76.0"
)

// TestJaegerEndToEnd runs queries (a read, a failing insert, a
// transaction, a cached read twice) through auditpg inside an application
// span, exports the spans over OTLP/gRPC to a real Jaeger, and reads the
// trace back through Jaeger's query API.
//
// Jaeger is built from the Go module proxy on the first run (several
// minutes), in a module of its own under the user cache directory, so that
// this module's go.mod is untouched; later runs reuse the binary.
// AUDITPG_JAEGER_BIN names a prebuilt binary instead. Skipped with -short;
// a build that cannot work (no network, no module cache) fails the test.
func TestJaegerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real Jaeger: skipped with -short")
	}
	bin := jaegerBinary(t)
	j := startJaeger(t, bin)
	ctx := context.Background()

	// Export with Setup's exporter choice, configured by the environment.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+j.otlpGRPC)
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	exporter, err := newTraceExporter(ctx, "grpc")
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter, sdktrace.WithBatchTimeout(100*time.Millisecond)),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName("auditpg-e2e"))))
	defer tp.Shutdown(ctx)

	db, err := auditpg.Open(testDSN, otel.Options(otel.WithTracerProvider(tp))...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	createItems(t, db, "e2e_item")
	createItems(t, db, "e2e_preset")

	actx, app := tp.Tracer("app").Start(ctx, "e2e request")
	var name string
	if err := db.QueryRowContext(actx, `SELECT name FROM e2e_item WHERE id = $1`, 2).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(actx, `INSERT INTO e2e_item (id, name) VALUES ($1, $2)`, 1, "duplicate"); err == nil {
		t.Fatal("duplicate key: want an error")
	}
	tx, err := db.BeginTx(actx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(actx, `UPDATE e2e_item SET name = $1 WHERE id = $2`, "deux", 2); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	cached := auditpg.WithCache(actx, time.Minute) // a miss that fills, then a hit
	for range 2 {
		if err := db.QueryRowContext(cached, `SELECT name FROM e2e_preset WHERE id = $1`, 1).Scan(&name); err != nil {
			t.Fatal(err)
		}
	}
	app.End()
	if err := tp.ForceFlush(ctx); err != nil {
		t.Fatal(err)
	}

	trace := j.trace(t, app.SpanContext().TraceID().String(), 8)
	var names []string
	for _, s := range trace.Spans {
		names = append(names, s.OperationName)
	}
	t.Logf("Jaeger returned trace %s with %d spans: %q", trace.TraceID, len(trace.Spans), names)
	root := trace.only(t, "e2e request")
	if len(root.References) != 0 {
		t.Errorf("application span has references %+v, want none", root.References)
	}
	for _, c := range []struct {
		name string
		tags map[string]string
	}{
		{"SELECT e2e_item", map[string]string{
			"span.kind": "client", "db.system.name": "postgresql", "db.operation.name": "SELECT",
			"db.collection.name": "e2e_item", "db.query.summary": "SELECT e2e_item", "db.response.returned_rows": "1",
			"db.query.text": "SELECT name FROM e2e_item WHERE id = $1", "db.namespace": target(t).Database,
		}},
		{"INSERT e2e_item", map[string]string{
			"span.kind": "client", "otel.status_code": "ERROR", "error": "true",
			"db.response.status_code": "23505", "error.type": "23505",
		}},
		{"BEGIN", map[string]string{"db.operation.name": "BEGIN"}},
		{"UPDATE e2e_item", map[string]string{"db.operation.name": "UPDATE", "db.collection.name": "e2e_item"}},
		{"COMMIT", map[string]string{"db.operation.name": "COMMIT"}},
	} {
		s := trace.only(t, c.name)
		if !s.childOf(root.SpanID) {
			t.Errorf("%s: references %+v, want CHILD_OF the application span %s", c.name, s.References, root.SpanID)
		}
		tags := s.tagMap()
		for k, want := range c.tags {
			if got := tags[k]; got != want {
				t.Errorf("%s: tag %s=%q, want %q", c.name, k, got, want)
			}
		}
	}
	presets := trace.named("SELECT e2e_preset")
	if len(presets) != 2 {
		t.Fatalf("%d cached-read spans, want 2", len(presets))
	}
	outcomes := map[string]bool{}
	for _, s := range presets {
		tags := s.tagMap()
		outcomes[tags["auditpg.cache"]] = true
		if !s.childOf(root.SpanID) || tags["db.response.returned_rows"] != "1" {
			t.Errorf("cached read (%s): parent %+v, returned rows %q; want the application span and 1", tags["auditpg.cache"], s.References, tags["db.response.returned_rows"])
		}
	}
	if !outcomes["miss"] || !outcomes["hit"] {
		t.Errorf("cached reads' auditpg.cache %v, want a miss and a hit", outcomes)
	}
	if p := trace.Processes[trace.only(t, "SELECT e2e_item").ProcessID]; p.ServiceName != "auditpg-e2e" {
		t.Errorf("service %q, want auditpg-e2e", p.ServiceName)
	}
}

// jaegerBinary returns the path of a Jaeger binary, building it if needed.
func jaegerBinary(t *testing.T) string {
	if bin := os.Getenv("AUDITPG_JAEGER_BIN"); bin != "" {
		return bin
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "auditpg", "jaeger-"+jaegerVersion)
	bin := filepath.Join(dir, "jaeger")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("building Jaeger %s in %s (minutes the first time)", jaegerVersion, dir)
	// Stop short of go test's own timeout (10 minutes by default), so that
	// a slow first build fails with its reason instead of a panic; what it
	// compiled stays in Go's build cache for the next run.
	deadline := time.Now().Add(40 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-time.Minute).Before(deadline) {
		deadline = d.Add(-time.Minute)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	// A module of its own: jaeger's go.mod has replace directives, which
	// `go install pkg@version` refuses, and ours must not change.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	steps := [][]string{
		{"go", "get", "-tool", jaegerModule + "/cmd/jaeger@" + jaegerVersion},
		{"go", "build", "-o", tmp, jaegerModule + "/cmd/jaeger"},
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		steps = append([][]string{{"go", "mod", "init", "auditpg-jaeger-build"}}, steps...)
	}
	for _, step := range steps {
		cmd := exec.CommandContext(ctx, step[0], step[1:]...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("building Jaeger %s did not finish before the test's deadline (%q was running); what it compiled is in Go's build cache, so run again, with a longer -timeout (say 60m), or set AUDITPG_JAEGER_BIN to a Jaeger binary",
				jaegerVersion, strings.Join(step, " "))
		}
		if err != nil {
			t.Fatalf("building Jaeger failed at %q: %v\n%s\nThe end-to-end test needs Jaeger %s: give it the Go module proxy (or a module cache holding Jaeger's modules), or set AUDITPG_JAEGER_BIN to a Jaeger binary; `go test -short` skips it.",
				strings.Join(step, " "), err, tail(out, 3000), jaegerVersion)
		}
	}
	if err := os.Rename(tmp, bin); err != nil { // atomic: a concurrent build may have won, same binary
		t.Fatal(err)
	}
	return bin
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

type jaeger struct {
	otlpGRPC, otlpHTTP, query string // host:port
}

// lockedBuffer collects a process's output for the test log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startJaeger runs bin with in-memory storage, OTLP receivers and the query
// API on free loopback ports, and waits until the query API answers.
func startJaeger(t *testing.T, bin string) *jaeger {
	j := &jaeger{otlpGRPC: freeAddr(t), otlpHTTP: freeAddr(t), query: freeAddr(t)}
	queryGRPC := freeAddr(t)
	config := fmt.Sprintf(`service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 1000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: %s
    grpc:
      endpoint: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`, j.query, queryGRPC, j.otlpGRPC, j.otlpHTTP)
	path := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config", path)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting Jaeger: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("Jaeger's output:\n%s", tail([]byte(out.String()), 5000))
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("Jaeger exited at start-up: %v\n%s", err, tail([]byte(out.String()), 5000))
		default:
		}
		resp, err := http.Get("http://" + j.query + "/api/services")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Jaeger's query API on %s did not answer within 2 minutes: %v", j.query, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// jaegerTrace is a trace as Jaeger's query API returns it.
type jaegerTrace struct {
	TraceID   string       `json:"traceID"`
	Spans     []jaegerSpan `json:"spans"`
	Processes map[string]struct {
		ServiceName string `json:"serviceName"`
	} `json:"processes"`
}

type jaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	ProcessID     string `json:"processID"`
	References    []struct {
		RefType string `json:"refType"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	Tags []struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	} `json:"tags"`
}

func (s jaegerSpan) tagMap() map[string]string {
	m := make(map[string]string, len(s.Tags))
	for _, tag := range s.Tags {
		m[tag.Key] = fmt.Sprint(tag.Value)
	}
	return m
}

func (s jaegerSpan) childOf(parent string) bool {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" && r.SpanID == parent {
			return true
		}
	}
	return false
}

func (tr *jaegerTrace) named(name string) []jaegerSpan {
	var found []jaegerSpan
	for _, s := range tr.Spans {
		if s.OperationName == name {
			found = append(found, s)
		}
	}
	return found
}

func (tr *jaegerTrace) only(t *testing.T, name string) jaegerSpan {
	t.Helper()
	found := tr.named(name)
	if len(found) != 1 {
		var names []string
		for _, s := range tr.Spans {
			names = append(names, s.OperationName)
		}
		t.Fatalf("Jaeger has %d spans %q in the trace, want 1; spans: %q", len(found), name, names)
	}
	return found[0]
}

// trace reads a trace back from Jaeger, waiting until it has at least
// minSpans spans (ingestion is asynchronous).
func (j *jaeger) trace(t *testing.T, traceID string, minSpans int) *jaegerTrace {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		tr, err := j.fetch(traceID)
		if err == nil && len(tr.Spans) >= minSpans {
			return tr
		}
		if err == nil {
			err = fmt.Errorf("%d spans so far", len(tr.Spans))
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("trace %s from Jaeger: %v", traceID, last)
	return nil
}

func (j *jaeger) fetch(traceID string) (*jaegerTrace, error) {
	resp, err := http.Get("http://" + j.query + "/api/traces/" + traceID)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /api/traces/%s: %s", traceID, resp.Status)
	}
	var body struct {
		Data []jaegerTrace `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	if len(body.Data) != 1 {
		return nil, errors.New("no trace yet")
	}
	return &body.Data[0], nil
}
