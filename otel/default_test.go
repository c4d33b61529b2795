package otel

import (
	"context"
	"strings"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
	otelapi "go.opentelemetry.io/otel"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// useGlobal installs tel as the global providers, as an application does,
// and puts no-op providers back when the test ends.
func useGlobal(t *testing.T, tel *telemetry) {
	otelapi.SetTracerProvider(tel.tp)
	otelapi.SetMeterProvider(tel.mp)
	t.Cleanup(func() {
		otelapi.SetTracerProvider(tracenoop.NewTracerProvider())
		otelapi.SetMeterProvider(metricnoop.NewMeterProvider())
	})
}

// TestDefaultThroughGlobalProviders: with nothing but the global providers
// installed, sql.Open("auditpg", dsn) makes the conventions' spans (named
// from the summary, the caller's span as parent, SQLSTATE on failure) and
// the operation duration histogram; auditpg_otel=off makes none; otel's own
// options replace the default observer rather than add a second span.
func TestDefaultThroughGlobalProviders(t *testing.T) {
	ctx := context.Background()
	tel := newTelemetry(t)
	useGlobal(t, tel)
	db := testdb.Open(t, "auditpg", testDSN)
	testdb.Exec(t, db, `CREATE TABLE IF NOT EXISTS otel_default (id int PRIMARY KEY)`)

	appCtx, parent := otelapi.Tracer("app").Start(ctx, "request")
	var n int
	if err := db.QueryRowContext(appCtx, `SELECT count(*) FROM otel_default WHERE id > $1`, 0).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(appCtx, `INSERT INTO otel_default_missing VALUES (1)`); err == nil {
		t.Fatal("insert into a missing table succeeded")
	}
	parent.End()

	read := tel.one(t, "SELECT otel_default")
	if read.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("query span's parent %v, want the application's span %v", read.Parent().SpanID(), parent.SpanContext().SpanID())
	}
	checkAttrs(t, "query span", attrMap(read.Attributes()), map[string]string{
		"db.system.name":    "postgresql",
		"db.operation.name": "SELECT",
		"server.address":    target(t).Host,
	})
	failed := tel.one(t, "INSERT otel_default_missing")
	checkAttrs(t, "failed span", attrMap(failed.Attributes()), map[string]string{
		"db.response.status_code": "42P01",
		"error.type":              "42P01",
	})
	if _, ok := findMetric(tel.collect(t), "db.client.operation.duration"); !ok {
		t.Error("no db.client.operation.duration histogram through the global meter provider")
	}

	before := len(tel.spans.Ended())
	off := testdb.Open(t, "auditpg", withParam(testDSN, "auditpg_otel", "off"))
	if err := off.QueryRowContext(ctx, `SELECT count(*) FROM otel_default`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if got := len(tel.spans.Ended()); got != before {
		t.Errorf("auditpg_otel=off: %d new spans, want none", got-before)
	}

	own := newTelemetry(t)
	db2 := own.open(t)
	if err := db2.QueryRowContext(ctx, `SELECT count(*) FROM otel_default WHERE id < $1`, 10).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if len(own.named("SELECT otel_default")) != 1 || len(tel.spans.Ended()) != before {
		t.Errorf("otel.Options: %d spans to its provider (want 1), %d new to the global one (want 0)",
			len(own.named("SELECT otel_default")), len(tel.spans.Ended())-before)
	}
}

// withParam returns dsn with one more parameter, for URL and key=value DSNs.
func withParam(dsn, key, value string) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return dsn + " " + key + "=" + value
	case strings.Contains(dsn, "?"):
		return dsn + "&" + key + "=" + value
	}
	return dsn + "?" + key + "=" + value
}
