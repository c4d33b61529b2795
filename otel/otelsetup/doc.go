// Package otelsetup installs OpenTelemetry export for an application or a
// command: Setup makes an OTLP trace exporter (gRPC or HTTP/protobuf) and a
// Prometheus metrics exporter the global providers, which the observer of
// package github.com/auditpg/auditpg/otel then records into.
//
//	shutdown, err := otelsetup.Setup(ctx, otelsetup.WithServiceName("audit-api"))
//	...
//	db, err := auditpg.Open(dsn, otel.Options()...)
//
// It is a package of its own so that instrumenting a database, with package
// otel on the OpenTelemetry API alone, does not link the exporters, gRPC
// and the Prometheus client into programs that install providers some
// other way.
package otelsetup
