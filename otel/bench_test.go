package otel

import (
	"database/sql"
	"testing"

	"github.com/XSAM/otelsql"
	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/benchdb"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// BenchmarkPointSelect compares what instrumentation costs: a select by
// primary key on loopback PostgreSQL through bare pgx stdlib, auditpg
// without OpenTelemetry (WithOpenTelemetry(false)), auditpg as it comes
// (OpenTelemetry on, no provider installed: the global no-op), auditpg with
// an SDK TracerProvider (batch
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
	benchdb.Create(b, testDSN)
	tp, mp := benchdb.Providers(b)
	otelsqlDefaults, otelsqlOneSpan := benchdb.Otelsql(tp, mp)
	for _, c := range []struct {
		name string
		open func() (*sql.DB, error)
	}{
		{"pgx", func() (*sql.DB, error) { return sql.Open("pgx", testDSN) }},
		{"auditpg", func() (*sql.DB, error) { return auditpg.Open(testDSN, auditpg.WithOpenTelemetry(false)) }},
		{"auditpg-otel-noprovider", func() (*sql.DB, error) { return auditpg.Open(testDSN) }},
		{"auditpg-otel-sdk", func() (*sql.DB, error) {
			return auditpg.Open(testDSN, Options(WithTracerProvider(tp), WithMeterProvider(mp))...)
		}},
		{"otelsql-sdk", func() (*sql.DB, error) { return otelsql.Open("pgx", testDSN, otelsqlDefaults...) }},
		{"otelsql-sdk-1span", func() (*sql.DB, error) { return otelsql.Open("pgx", testDSN, otelsqlOneSpan...) }},
	} {
		b.Run("driver="+c.name, func(b *testing.B) { benchdb.PointSelectsOpening(b, c.open) })
	}
}
