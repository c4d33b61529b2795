package metrics

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Handler serves the Prometheus exposition of db: the server's statistics
// and the driver's own (a Collector, configured by opts), and the metrics
// of every WithGatherer, such as the registry of NewMeterProvider where
// the driver's OpenTelemetry metrics are. Mount it at /metrics, behind
// the application's own access control if it has one: table and index
// names are in the labels. For an auditpg *sql.DB the collector reads the
// server through a pool of its own (at most 2 connections, closed after a
// minute idle), which lives as long as the program; NewCollector and
// Collector.Close give control over it.
func Handler(db *sql.DB, opts ...Option) (http.Handler, error) {
	c, err := NewCollector(db, opts...)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("metrics: register the collector: %w", err)
	}
	gatherers := append(prometheus.Gatherers{reg}, c.cfg.gatherers...)
	return promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}), nil
}

// NewMeterProvider returns an OpenTelemetry MeterProvider whose metrics
// reg serves in the Prometheus format: give it to the driver
// (otel.WithMeterProvider in otel.Options) and to otel.RegisterPoolMetrics,
// and reg to Handler with WithGatherer. The names follow the database
// conventions translated by the OpenTelemetry Prometheus exporter:
// db_client_operation_duration_seconds (a histogram),
// db_client_response_returned_rows, db_client_connection_count,
// auditpg_cache_hits_total... Call Shutdown on it when the application
// ends.
func NewMeterProvider(reg prometheus.Registerer) (*sdkmetric.MeterProvider, error) {
	if reg == nil {
		return nil, errors.New("metrics: NewMeterProvider(nil): want the prometheus.Registerer to record into, such as prometheus.NewRegistry()")
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: OpenTelemetry Prometheus exporter: %w", err)
	}
	return sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)), nil
}
