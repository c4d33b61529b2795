package auditpg_test

import (
	"database/sql"
	"testing"

	"github.com/XSAM/otelsql"
	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/benchdb"
	auditpgotel "github.com/auditpg/auditpg/otel"
)

// BenchmarkOTelOverhead measures what instrumentation alone costs a query,
// over a driver that answers at once with one row (no network, so that the
// few microseconds of a span are not lost in a round trip's noise): the
// bare fake driver; auditpg over it; auditpg with OpenTelemetry and no
// provider installed (the global no-op); auditpg with an SDK
// TracerProvider (batch span processor, discarding exporter) and SDK
// MeterProvider; XSAM/otelsql over it with the same providers, with its
// default spans and with one span a query, as auditpg makes. The round
// trip version is otel.BenchmarkPointSelect.
//
//	go test -run '^$' -bench OTelOverhead -count 8 . | tee otel.txt
//	go tool benchstat -col /driver otel.txt
func BenchmarkOTelOverhead(b *testing.B) {
	tp, mp := benchdb.Providers(b)
	otelsqlDefaults, otelsqlOneSpan := benchdb.Otelsql(tp, mp)
	wrap := func(opts ...auditpg.Option) func() (*sql.DB, error) {
		return func() (*sql.DB, error) {
			c, err := auditpg.WrapConnectorForTest(auditpg.FakeConnector{}, opts...)
			return sql.OpenDB(c), err
		}
	}
	for _, c := range []struct {
		name string
		open func() (*sql.DB, error)
	}{
		{"fake", func() (*sql.DB, error) { return sql.OpenDB(auditpg.FakeConnector{}), nil }},
		{"auditpg", wrap(auditpg.WithOpenTelemetry(false))},
		{"auditpg-otel-noprovider", wrap()}, // as it comes: the default observer, the global no-op providers
		{"auditpg-otel-sdk", wrap(auditpgotel.Options(auditpgotel.WithTracerProvider(tp), auditpgotel.WithMeterProvider(mp))...)},
		{"otelsql-sdk", func() (*sql.DB, error) { return otelsql.OpenDB(auditpg.FakeConnector{}, otelsqlDefaults...), nil }},
		{"otelsql-sdk-1span", func() (*sql.DB, error) { return otelsql.OpenDB(auditpg.FakeConnector{}, otelsqlOneSpan...), nil }},
	} {
		b.Run("driver="+c.name, func(b *testing.B) { benchdb.PointSelectsOpening(b, c.open) })
	}
}
