package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	otelapi "go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestSetupTelemetryOff(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	var errOut bytes.Buffer
	shutdown, opts, err := setupTelemetry(context.Background(), &globals{stderr: &errOut})
	if err != nil || len(opts) != 0 || errOut.Len() != 0 {
		t.Fatalf("without an endpoint: err %v, %d options, stderr %q; want nothing", err, len(opts), errOut.String())
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestSetupTelemetryExports(t *testing.T) {
	var (
		mu    sync.Mutex
		names []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &msg); err != nil {
			t.Errorf("OTLP request: %v", err)
		}
		mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					names = append(names, s.Name)
				}
			}
		}
		mu.Unlock()
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Cleanup(func() {
		otelapi.SetTracerProvider(tracenoop.NewTracerProvider())
		otelapi.SetMeterProvider(metricnoop.NewMeterProvider())
	})

	ctx := context.Background()
	var out, errOut bytes.Buffer
	g := &globals{dsn: testDSN, stdout: &out, stderr: &errOut}
	shutdown, opts, err := setupTelemetry(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), srv.URL) {
		t.Errorf("stderr %q: want it to say where traces go", errOut.String())
	}
	db, err := g.openDB(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_class WHERE relname = $1`, "pg_class").Scan(&n); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(names, "|"), "SELECT pg_class") {
		t.Errorf("spans exported %q, want SELECT pg_class among them", names)
	}
}
