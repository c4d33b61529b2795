package otel_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/otel"
	"go.opentelemetry.io/otel/trace"
)

// The one-liner: spans and metrics through the global providers.
func ExampleOptions() {
	db, err := auditpg.Open(os.Getenv("DATABASE_URL"), otel.Options()...)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}

// Options may add the sqlcommenter rewriter, and the observer's options
// are applied alike. The driver's slow-query threshold also decides which
// spans get the auditpg.slow_query event.
func ExampleOptions_sqlcommenter() {
	opts := append(otel.Options(
		otel.WithSQLCommenter(map[string]string{"application": "billing"}),
	), auditpg.WithSlowQueryThreshold(200*time.Millisecond))
	db, err := auditpg.Open(os.Getenv("DATABASE_URL"), opts...)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}

// The observer alone, for a connector built with sql.OpenDB, tracing only
// calls made inside a trace the application started.
func ExampleObserver() {
	observer := otel.Observer(
		otel.WithSpanFilter(func(ctx context.Context, _ *auditpg.Event) bool {
			return trace.SpanContextFromContext(ctx).IsValid()
		}),
		otel.WithOmitSpans(auditpg.OpPing, auditpg.OpPrepare),
	)
	connector, err := auditpg.NewConnector(os.Getenv("DATABASE_URL"), auditpg.WithObserver(observer))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
}

func ExampleRegisterPoolMetrics() {
	db, err := auditpg.Open(os.Getenv("DATABASE_URL"), auditpg.WithMaxIdleConns(10))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	unregister, err := otel.RegisterPoolMetrics(db, "audit", otel.WithPoolMaxIdleConns(10))
	if err != nil {
		log.Fatal(err)
	}
	defer unregister()
}

func ExampleSQLCommenter() {
	comment := otel.SQLCommenter(map[string]string{"application": "billing", "route": "/audit/{id}"})
	// Without a span in the context, only the static tags are written.
	fmt.Println(comment(context.Background(), "SELECT * FROM audit_log WHERE id = $1"))
	// Output: SELECT * FROM audit_log WHERE id = $1 /*application='billing',route='%2Faudit%2F%7Bid%7D'*/
}
