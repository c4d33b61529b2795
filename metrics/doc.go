// Package metrics exposes an application's database for Prometheus: what
// the auditpg driver sees (its OpenTelemetry metrics, through
// NewMeterProvider, and its own statistics) and what the PostgreSQL server
// says about itself, read at scrape time with packages monitor and
// partition (tables, indexes, pg_stat_statements, connections, the buffer
// cache, replication slots, partitions).
//
//	reg := prometheus.NewRegistry()
//	mp, _ := metrics.NewMeterProvider(reg)
//	db, _ := auditpg.Open(dsn, otel.Options(otel.WithMeterProvider(mp))...)
//	h, _ := metrics.Handler(db, metrics.WithGatherer(reg))
//	mux.Handle("GET /metrics", h)
//
// A collection runs under a timeout (WithTimeout), section by section, the
// sections that take no relation lock first: one that fails or runs out of
// time is left out and marked in auditpg_pg_scrape_error{section}. Scrapes
// within the memo window (WithMemo) reuse the last collection and scrapes
// during one wait for it, so a scrape storm costs one collection. Labels
// are bounded: catalog names of the largest tables and indexes, fixed sets,
// and for pg_stat_statements the queryid and auditpg's summary of the text,
// never the text. Families lists every metric the Collector may export.
//
// The directory deploy/ of the module holds a Grafana dashboard and
// Prometheus alerting rules built on these metrics, tested against them.
package metrics
