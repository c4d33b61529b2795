package otelsetup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelapi "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// SetupOption configures Setup; a bad value makes Setup fail with an error
// that says what was wrong.
type SetupOption func(*setupConfig) error

type setupConfig struct {
	serviceName string
	protocol    string
	metricsAddr string
	registerer  prometheus.Registerer
}

// WithServiceName sets service.name when OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) does not.
func WithServiceName(name string) SetupOption {
	return func(c *setupConfig) error { c.serviceName = name; return nil }
}

// WithTraceProtocol chooses the OTLP transport, "grpc" or "http/protobuf",
// over OTEL_EXPORTER_OTLP_TRACES_PROTOCOL and OTEL_EXPORTER_OTLP_PROTOCOL
// (default: http/protobuf, as the specification says).
func WithTraceProtocol(protocol string) SetupOption {
	return func(c *setupConfig) error {
		if protocol != "grpc" && protocol != "http/protobuf" {
			return fmt.Errorf("otel: Setup: WithTraceProtocol(%q): want grpc or http/protobuf", protocol)
		}
		c.protocol = protocol
		return nil
	}
}

// WithMetricsAddr serves the Prometheus exposition at http://addr/metrics
// until shutdown. Without it, metrics are only registered (see
// WithPrometheusRegisterer) and the application serves them.
func WithMetricsAddr(addr string) SetupOption {
	return func(c *setupConfig) error { c.metricsAddr = addr; return nil }
}

// WithPrometheusRegisterer registers the metrics with reg (for instance
// prometheus.DefaultRegisterer, when the application already serves it)
// instead of a registry of their own.
func WithPrometheusRegisterer(reg prometheus.Registerer) SetupOption {
	return func(c *setupConfig) error {
		if reg == nil {
			return errors.New("otel: Setup: WithPrometheusRegisterer(nil): want a Registerer (leave the option out for a registry of Setup's own)")
		}
		c.registerer = reg
		return nil
	}
}

// Setup installs global OpenTelemetry providers for an application or a
// command: a TracerProvider exporting over OTLP in batches (gRPC or HTTP,
// per OTEL_EXPORTER_OTLP_PROTOCOL; the exporter reads
// OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS, _TIMEOUT and the rest itself;
// OTEL_TRACES_EXPORTER=none turns tracing off), a MeterProvider read by a
// Prometheus exporter, and the W3C trace-context propagator. The resource
// comes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// shutdown flushes the spans not yet exported, stops the metrics server
// and uninstalls nothing: call it once, when the application ends.
func Setup(ctx context.Context, opts ...SetupOption) (shutdown func(context.Context) error, err error) {
	var cfg setupConfig
	for _, opt := range opts {
		if err := opt(&cfg); err != nil {
			return nil, err
		}
	}
	detectors := []resource.Option{resource.WithFromEnv(), resource.WithTelemetrySDK()}
	if cfg.serviceName != "" { // first: the environment wins
		detectors = append([]resource.Option{resource.WithAttributes(semconv.ServiceName(cfg.serviceName))}, detectors...)
	}
	res, err := resource.New(ctx, detectors...)
	if err != nil {
		return nil, fmt.Errorf("otel: Setup: resource: %w", err)
	}

	var closers []func(context.Context) error
	shutdown = func(ctx context.Context) error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i](ctx))
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (func(context.Context) error, error) {
		return nil, errors.Join(err, shutdown(ctx))
	}

	var tp *sdktrace.TracerProvider
	if !strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "none") {
		exporter, err := newTraceExporter(ctx, cfg.protocol)
		if err != nil {
			return fail(err)
		}
		tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
		closers = append(closers, tp.Shutdown)
	}

	reg := cfg.registerer
	var registry *prometheus.Registry
	if reg == nil {
		registry = prometheus.NewRegistry()
		reg = registry
	}
	reader, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return fail(fmt.Errorf("otel: Setup: Prometheus exporter: %w", err))
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithResource(res))
	closers = append(closers, mp.Shutdown)

	if cfg.metricsAddr != "" {
		gatherer := prometheus.Gatherer(prometheus.DefaultGatherer)
		if registry != nil {
			gatherer = registry
		} else if g, ok := reg.(prometheus.Gatherer); ok {
			gatherer = g
		}
		ln, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fail(fmt.Errorf("otel: Setup: metrics address %s: %w", cfg.metricsAddr, err))
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }() // Serve returns ErrServerClosed at shutdown
		closers = append(closers, srv.Shutdown)
	}

	// Installed only once everything is made: a failed Setup leaves the
	// globals as they were.
	if tp != nil {
		otelapi.SetTracerProvider(tp)
	}
	otelapi.SetMeterProvider(mp)
	otelapi.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return shutdown, nil
}

// newTraceExporter makes the OTLP exporter for the chosen protocol.
func newTraceExporter(ctx context.Context, protocol string) (sdktrace.SpanExporter, error) {
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	}
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exporter sdktrace.SpanExporter
		err      error
	)
	switch protocol {
	case "grpc":
		exporter, err = otlptracegrpc.New(ctx)
	case "", "http/protobuf":
		exporter, err = otlptracehttp.New(ctx)
	default:
		return nil, fmt.Errorf("otel: Setup: OTLP protocol %q: want grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("otel: Setup: OTLP %s exporter: %w", protocol, err)
	}
	return exporter, nil
}
