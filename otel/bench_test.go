package otel

import (
	"context"
	"database/sql"
	"testing"

	"github.com/XSAM/otelsql"
	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/benchdb"
	_ "github.com/jackc/pgx/v5/stdlib"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// BenchmarkPointSelect is the overhead comparison: a select by
// primary key on loopback PostgreSQL through bare pgx stdlib, auditpg
// without OpenTelemetry, auditpg with the observer and no provider
// installed (the global no-op), auditpg with an SDK TracerProvider (batch
// span processor, discarding exporter) and SDK MeterProvider, and
// XSAM/otelsql over pgx with the same providers, with its default spans
// (query, rows, reset session) and with one span a query. Run
//
//	go test -c -o otel.test ./otel/
//	for i in $(seq 10); do ./otel.test -test.run '^$' -test.bench PointSelect -test.benchtime 20000x; done | tee bench.txt
//	go tool benchstat -col /driver bench.txt
//
// (rounds of one run each, so that the load of a shared machine spreads
// over all the variants alike).
func BenchmarkPointSelect(b *testing.B) {
	ctx := context.Background()
	benchdb.Create(b, testDSN)

	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer tp.Shutdown(ctx)
	defer mp.Shutdown(ctx)

	for _, c := range []struct {
		name string
		open func() (*sql.DB, error)
	}{
		{"pgx", func() (*sql.DB, error) { return sql.Open("pgx", testDSN) }},
		{"auditpg", func() (*sql.DB, error) { return auditpg.Open(testDSN) }},
		{"auditpg-otel-noprovider", func() (*sql.DB, error) { return auditpg.Open(testDSN, Options()...) }},
		{"auditpg-otel-sdk", func() (*sql.DB, error) {
			return auditpg.Open(testDSN, Options(WithTracerProvider(tp), WithMeterProvider(mp))...)
		}},
		{"otelsql-sdk", func() (*sql.DB, error) { // its defaults: query, rows and reset-session spans
			return otelsql.Open("pgx", testDSN, otelsql.WithTracerProvider(tp), otelsql.WithMeterProvider(mp),
				otelsql.WithAttributes(semconv.DBSystemNamePostgreSQL))
		}},
		{"otelsql-sdk-1span", func() (*sql.DB, error) { // one span a query, as auditpg makes
			return otelsql.Open("pgx", testDSN, otelsql.WithTracerProvider(tp), otelsql.WithMeterProvider(mp),
				otelsql.WithAttributes(semconv.DBSystemNamePostgreSQL),
				otelsql.WithSpanOptions(otelsql.SpanOptions{OmitRows: true, OmitConnResetSession: true}))
		}},
	} {
		b.Run("driver="+c.name, func(b *testing.B) {
			db, err := c.open()
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			benchdb.PointSelects(b, db)
		})
	}
}
