package otelsetup

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/otel"
	otelapi "go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace endpoint that keeps what it receives.
type otlpReceiver struct {
	mu    sync.Mutex
	spans map[string]string // span name -> service.name
}

func newOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	r := &otlpReceiver{spans: map[string]string{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var msg collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &msg)
		}
		if req.URL.Path != "/v1/traces" || err != nil {
			t.Errorf("OTLP receiver: %s %s: %v", req.Method, req.URL.Path, err)
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, rs := range msg.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans[s.Name] = service
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return r, srv.URL
}

func (r *otlpReceiver) service(span string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.spans[span]
	return s, ok
}

// restoreGlobals puts no-op global providers back when the test ends.
func restoreGlobals(t *testing.T) {
	t.Cleanup(func() {
		otelapi.SetTracerProvider(tracenoop.NewTracerProvider())
		otelapi.SetMeterProvider(metricnoop.NewMeterProvider())
	})
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestSetup(t *testing.T) {
	receiver, endpoint := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_SERVICE_NAME", "setup-test")
	restoreGlobals(t)
	ctx := context.Background()
	// The observer is made before the providers are installed: the global
	// providers forward to the ones installed later.
	db, err := auditpg.Open(testDSN, otel.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	addr := freeAddr(t)
	shutdown, err := Setup(ctx, WithServiceName("overridden-by-env"), WithMetricsAddr(addr))
	if err != nil {
		t.Fatal(err)
	}

	actx, app := otelapi.Tracer("app").Start(ctx, "setup request")
	var one int
	if err := db.QueryRowContext(actx, `SELECT 1 AS setup`).Scan(&one); err != nil {
		t.Fatal(err)
	}
	app.End()

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"db_client_operation_duration_seconds_bucket{", `db_operation_name="SELECT"`, `le="0.005"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%.2000s", want, body)
		}
	}

	if err := shutdown(ctx); err != nil { // flushes the batch
		t.Fatal(err)
	}
	for _, name := range []string{"setup request", "SELECT"} {
		if service, ok := receiver.service(name); !ok || service != "setup-test" {
			t.Errorf("span %q at the OTLP endpoint: received %v, service.name %q; want it received from setup-test", name, ok, service)
		}
	}
	if _, err := http.Get("http://" + addr + "/metrics"); err == nil {
		t.Error("metrics server still answers after shutdown")
	}
}

func TestSetupErrors(t *testing.T) {
	restoreGlobals(t)
	if _, err := Setup(context.Background(), WithTraceProtocol("carrier-pigeon")); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Errorf("unknown protocol: error %v, want one naming it", err)
	}
	if _, err := Setup(context.Background(), WithPrometheusRegisterer(nil)); err == nil || !strings.Contains(err.Error(), "WithPrometheusRegisterer(nil)") {
		t.Errorf("nil registerer: error %v, want one naming the option", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	before := otelapi.GetMeterProvider()
	if _, err := Setup(context.Background(), WithMetricsAddr(ln.Addr().String())); err == nil {
		t.Error("metrics address in use: want an error")
	}
	if otelapi.GetMeterProvider() != before {
		t.Error("a failed Setup replaced the global MeterProvider")
	}
	shutdown, err := Setup(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}
