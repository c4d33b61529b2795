package otelsetup_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/otel"
	"github.com/auditpg/auditpg/otel/otelsetup"
)

// Setup for an application: OTLP traces to OTEL_EXPORTER_OTLP_ENDPOINT
// (Jaeger: http://localhost:4318) and Prometheus metrics on :9464/metrics.
func ExampleSetup() {
	ctx := context.Background()
	shutdown, err := otelsetup.Setup(ctx, otelsetup.WithServiceName("audit-api"), otelsetup.WithMetricsAddr(":9464"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil { // flushes the spans not yet sent
			log.Print(err)
		}
	}()
	db, err := auditpg.Open(os.Getenv("DATABASE_URL"), otel.Options()...)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}
