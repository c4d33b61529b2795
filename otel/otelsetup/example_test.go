package otelsetup_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/otel"
	"github.com/auditpg/auditpg/otel/otelsetup"
	otelapi "go.opentelemetry.io/otel"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
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

// GORM with nothing but the global providers: auditpg makes its spans and
// metrics through them by default, so no otel.Options are needed. A query
// made with a context carrying a span gets a span of its own under it, named
// from the query's summary ("SELECT audit_preset" here).
func ExampleSetup_gorm() {
	ctx := context.Background()
	shutdown, err := otelsetup.Setup(ctx, otelsetup.WithServiceName("audit-api"))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Print(err)
		}
	}()
	gdb, err := gorm.Open(postgres.New(postgres.Config{DriverName: auditpg.DriverName, DSN: os.Getenv("DATABASE_URL")}), &gorm.Config{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, span := otelapi.Tracer("audit-api").Start(ctx, "list presets")
	defer span.End()
	var names []string
	if err := gdb.WithContext(ctx).Table("audit_preset").Where("organization_id = ?", "org-1").Pluck("name", &names).Error; err != nil {
		log.Print(err)
	}
}
