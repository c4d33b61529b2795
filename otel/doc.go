// Package otel gives auditpg OpenTelemetry spans and metrics that follow the
// stable database semantic conventions (v1.33 and later), pool metrics for
// any *sql.DB and an optional sqlcommenter. It depends on the OpenTelemetry
// API only: the providers, and the exporters behind them, are the
// application's choice (package otelsetup installs OTLP and Prometheus
// ones).
//
//	db, err := auditpg.Open(dsn, otel.Options()...)
//
// (sql.Open("auditpg", dsn) cannot install it: a DSN carries no code; use
// auditpg.Open or sql.OpenDB(auditpg.NewConnector(dsn, otel.Options()...)).)
//
// # Spans
//
// Every call makes one CLIENT span, a child of the span in the call's
// context: a query from its start to Rows.Close (iteration included), an
// exec, a prepare, begin, commit, rollback and connect; ping spans are
// omitted by default (WithOmitSpans). The span is named by db.query.summary
// ("SELECT audit_log"; "PREPARE SELECT audit_log" for a prepare; "BEGIN",
// "COMMIT", "ROLLBACK", "connect", "ping" for calls without SQL) and carries
// db.system.name=postgresql, db.namespace, db.operation.name,
// db.collection.name (when the statement names exactly one table),
// db.query.summary, db.query.text, server.address, server.port,
// db.response.returned_rows (queries), and on failure
// db.response.status_code (the SQLSTATE), error.type and an error status.
// A call answered or skipped by the result cache carries auditpg.cache
// (hit, miss, bypass) and auditpg.cache.reason; a hit is a span like any
// other, with no network time in it. A call the driver marks slow
// (auditpg.Event.Slow, by auditpg.WithSlowQueryThreshold) gets an
// auditpg.slow_query event.
//
// db.query.text is always the statement's fingerprint: literals replaced by
// $n placeholders, IN and VALUES lists collapsed, keywords upper-cased,
// comments dropped. It never holds a value (a password in an inline literal
// stays out of the trace), it is the same text the statistics report shows
// (so a slow entry in the report and its traces match), and it is computed
// once per statement, not per call. The price: the text differs from the
// one written in the code by case and spacing. WithoutQueryText leaves it
// out.
//
// error.type is the SQLSTATE when the server sent one, "timeout" or
// "canceled" when the context ended the call, and "_OTHER" otherwise: never
// a Go type name. The span's error status says the error.type too; with
// WithErrorText it carries the error's text, which may quote a literal or an
// argument value ("invalid input syntax for type integer: ...").
//
// # Metrics
//
// db.client.operation.duration (seconds, with the conventions' buckets
// 0.001 to 10), db.client.response.returned_rows, auditpg.cache.hits,
// .misses, .bypasses and .invalidations (per table), with the span's
// attributes minus the query text. Connects have no operation metric.
// RegisterPoolMetrics adds the db.client.connection.* pool metrics.
//
// # Providers
//
// The global TracerProvider and MeterProvider by default (no-ops until the
// application installs one: the observer then costs a few allocations a
// call), looked up when the observer is made; the global providers forward
// to providers installed later, so the order of set-up does not matter.
// WithTracerProvider and WithMeterProvider set others.
// github.com/auditpg/auditpg/otel/otelsetup.Setup installs an OTLP trace
// exporter and a Prometheus metrics exporter as the global providers.
package otel
