package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/metrics"
	"github.com/auditpg/auditpg/otel"
	"github.com/prometheus/client_golang/prometheus"
)

// The handler serves the driver's OpenTelemetry metrics, with the
// SQLSTATE of a failed call, beside the server's and the driver's own.
func TestHandlerServesDriverAndServer(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	mp, err := metrics.NewMeterProvider(reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	db, err := auditpg.Open(testDSN, otel.Options(otel.WithMeterProvider(mp))...)
	db = testdb.Opened(t, db, err)
	unregister, err := otel.RegisterPoolMetrics(db, "main", otel.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unregister() })
	if _, err := db.ExecContext(ctx, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `SELECT * FROM no_such_table_metrics`); err == nil {
		t.Fatal("a query of a missing table succeeded")
	}
	h, err := metrics.Handler(db, metrics.WithGatherer(reg))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, body)
	}
	for _, want := range []string{
		`db_client_operation_duration_seconds_bucket{`,
		`db_response_status_code="42P01"`,
		`db_client_connection_count{`,
		`auditpg_pg_up 1`,
		`auditpg_driver_errors_total 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
