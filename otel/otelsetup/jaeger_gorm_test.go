package otelsetup

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/pgtemp"
	otelapi "go.opentelemetry.io/otel"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormAppEnv, set, makes TestJaegerGormGlobalProviders the application
// process: it names the file to write the trace's id to.
const gormAppEnv = "AUDITPG_TEST_GORM_APP_TRACE_FILE"

// TestJaegerGormGlobalProviders: an application that installs the global
// providers with Setup and nothing else (no otel.Options), and opens GORM
// with DriverName "auditpg", gets in Jaeger one trace holding its own span
// and the span of the query GORM made inside it, named from the query's
// summary. Setup's default exporter (OTLP over HTTP) sends it; shutdown
// flushes it.
//
// The application is this test binary run again (gormApp), so that it
// starts with OpenTelemetry's globals untouched, as a process does: the
// global providers hand a tracer made before the first Set*Provider on to
// that first provider only, and TestSetup relies on being first in its
// process. Skipped with -short, as TestJaegerEndToEnd is.
func TestJaegerGormGlobalProviders(t *testing.T) {
	if path := os.Getenv(gormAppEnv); path != "" {
		gormApp(t, path)
		return
	}
	if testing.Short() {
		t.Skip("builds and runs a real Jaeger: skipped with -short")
	}
	bin := jaegerBinary(t)
	j := startJaeger(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	db, err := auditpg.Open(testDSN, auditpg.WithOpenTelemetry(false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	createItems(t, db, "e2e_gorm_item")

	traceFile := filepath.Join(t.TempDir(), "trace-id")
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestJaegerGormGlobalProviders$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(),
		gormAppEnv+"="+traceFile,
		pgtemp.EnvDatabaseURL+"="+testDSN, // the application uses this test's server
		// Setup configured by the environment alone, as an application's is.
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://"+j.otlpHTTP,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
		"OTEL_TRACES_EXPORTER=",
		"OTEL_SERVICE_NAME=",
		"OTEL_RESOURCE_ATTRIBUTES=",
	)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the application process: %v\n%s", err, tail(out, 5000))
	}
	id, err := os.ReadFile(traceFile)
	if err != nil {
		t.Fatal(err)
	}

	trace := j.trace(t, strings.TrimSpace(string(id)), 2)
	var names []string
	for _, s := range trace.Spans {
		names = append(names, s.OperationName)
	}
	t.Logf("Jaeger returned trace %s with %d spans: %q", trace.TraceID, len(trace.Spans), names)
	root := trace.only(t, "gorm request")
	if len(root.References) != 0 {
		t.Errorf("application span has references %+v, want none", root.References)
	}
	q := trace.only(t, "SELECT e2e_gorm_item")
	if !q.childOf(root.SpanID) {
		t.Errorf("query span: references %+v, want CHILD_OF the application span %s", q.References, root.SpanID)
	}
	tags := q.tagMap()
	for k, want := range map[string]string{
		"span.kind": "client", "db.system.name": "postgresql", "db.operation.name": "SELECT",
		"db.collection.name": "e2e_gorm_item", "db.query.summary": "SELECT e2e_gorm_item",
		"db.response.returned_rows": "1", "db.namespace": target(t).Database,
	} {
		if got := tags[k]; got != want {
			t.Errorf("query span: tag %s=%q, want %q", k, got, want)
		}
	}
	if p := trace.Processes[q.ProcessID]; p.ServiceName != "auditpg-gorm-e2e" {
		t.Errorf("service %q, want auditpg-gorm-e2e (Setup's WithServiceName)", p.ServiceName)
	}
}

// gormApp is the application: Setup, GORM on auditpg, one read inside a
// span of its own, shutdown (which flushes the spans); it writes the trace's
// id to path.
func gormApp(t *testing.T, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shutdown, err := Setup(ctx, WithServiceName("auditpg-gorm-e2e"))
	if err != nil {
		t.Fatal(err)
	}
	defer shutdown(ctx) // when a step fails; after the flush below, a second call whose error does not matter

	gdb, err := gorm.Open(postgres.New(postgres.Config{DriverName: auditpg.DriverName, DSN: testDSN}),
		&gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, err := gdb.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()

	actx, app := otelapi.Tracer("app").Start(ctx, "gorm request")
	var item struct {
		ID   int
		Name string
	}
	if err := gdb.WithContext(actx).Table("e2e_gorm_item").Where("id = ?", 2).Take(&item).Error; err != nil || item.Name != "two" {
		t.Fatalf("GORM read %+v, %v; want id 2, two", item, err)
	}
	app.End()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(app.SpanContext().TraceID().String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
