package benchdb

import (
	"context"
	"testing"

	"github.com/XSAM/otelsql"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Providers returns the SDK providers the OpenTelemetry benchmarks record
// into, shut down when tb ends: a TracerProvider with a batch span
// processor and an exporter that discards, and a MeterProvider with a
// manual reader.
func Providers(tb testing.TB) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tb.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	return tp, mp
}

// Otelsql returns XSAM/otelsql's two configurations that auditpg is
// measured against, over the same providers: its defaults (query, rows and
// reset-session spans), and one span a query, as auditpg makes.
func Otelsql(tp *sdktrace.TracerProvider, mp *sdkmetric.MeterProvider) (defaults, oneSpan []otelsql.Option) {
	defaults = []otelsql.Option{otelsql.WithTracerProvider(tp), otelsql.WithMeterProvider(mp),
		otelsql.WithAttributes(semconv.DBSystemNamePostgreSQL)}
	oneSpan = append(defaults[:len(defaults):len(defaults)],
		otelsql.WithSpanOptions(otelsql.SpanOptions{OmitRows: true, OmitConnResetSession: true}))
	return defaults, oneSpan
}
