package main

import (
	"context"
	"fmt"
	"os"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/otel"
	"github.com/auditpg/auditpg/otel/otelsetup"
)

// setupTelemetry installs OpenTelemetry for a command when
// OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is
// set: traces go over OTLP to that endpoint (Jaeger, a collector), the
// other OTEL_* variables apply, and opts install the observer on the
// command's database. Otherwise it does nothing, at no cost. Call shutdown
// before exiting: it flushes the spans not yet sent.
func setupTelemetry(ctx context.Context, g *globals) (shutdown func(context.Context) error, opts []auditpg.Option, err error) {
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	}
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil, nil
	}
	shutdown, err = otelsetup.Setup(ctx, otelsetup.WithServiceName("auditpg"))
	if err != nil {
		return nil, nil, fmt.Errorf("telemetry for OTEL_EXPORTER_OTLP_ENDPOINT=%s: %w", endpoint, err)
	}
	fmt.Fprintf(g.stderr, "auditpg: exporting traces to %s\n", endpoint)
	return shutdown, otel.Options(), nil
}
