package metrics_test

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/metrics"
	"github.com/auditpg/auditpg/otel"
	"github.com/auditpg/auditpg/partition"
	"github.com/prometheus/client_golang/prometheus"
)

// An application serves its database's metrics at /metrics: the driver's
// OpenTelemetry metrics (latency by statement, errors by SQLSTATE, the
// cache, the pool) through a MeterProvider of this package, and the
// server's statistics and the driver's own, collected at each scrape.
func ExampleHandler() {
	reg := prometheus.NewRegistry()
	mp, err := metrics.NewMeterProvider(reg)
	if err != nil {
		log.Fatal(err)
	}
	db, err := auditpg.Open(os.Getenv("DATABASE_URL"), otel.Options(otel.WithMeterProvider(mp))...)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	unregister, err := otel.RegisterPoolMetrics(db, "main", otel.WithMeterProvider(mp))
	if err != nil {
		log.Fatal(err)
	}
	defer unregister() //nolint:errcheck // at exit

	h, err := metrics.Handler(db, metrics.WithGatherer(reg))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/metrics", h)
	log.Fatal(http.ListenAndServe("127.0.0.1:9187", nil))
}

// The collector alone, in a registry the application already serves: the
// retention of its audit_log for auditpg_pg_partitions_expired, at most 10
// statements of pg_stat_statements.
func ExampleNewCollector() {
	db, err := auditpg.Open(os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	c, err := metrics.NewCollector(db,
		metrics.WithRetention(partition.Table{Schema: "public", Name: "audit_log"}, 365*24*time.Hour),
		metrics.WithTopStatements(10), metrics.WithTimeout(3*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	prometheus.MustRegister(c) // served by promhttp.Handler()
}
