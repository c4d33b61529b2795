package otelobs

import (
	"context"
	"errors"
	"testing"

	"github.com/auditpg/auditpg/internal/event"
	"github.com/auditpg/auditpg/internal/sqlclass"
	otelapi "go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

func TestErrorType(t *testing.T) {
	for _, c := range []struct {
		ev   event.Event
		want string
	}{
		{event.Event{Err: errors.New("x"), SQLState: "40001"}, "40001"},
		{event.Event{Err: context.DeadlineExceeded}, "timeout"},
		{event.Event{Err: context.Canceled}, "canceled"},
		{event.Event{Err: errors.New("conn closed")}, "_OTHER"},
	} {
		if got := errorType(&c.ev); got != c.want {
			t.Errorf("errorType(%v) = %q, want %q", c.ev.Err, got, c.want)
		}
	}
}

func TestSingleTable(t *testing.T) {
	for _, c := range []struct {
		reads, writes []string
		want          string
	}{
		{nil, nil, ""},
		{[]string{"a"}, nil, "a"},
		{[]string{"a"}, []string{"a"}, "a"},
		{[]string{"a", "b"}, nil, ""},
		{[]string{"a"}, []string{"b"}, ""},
	} {
		if got := singleTable(&sqlclass.Statement{Reads: c.reads, Writes: c.writes}); got != c.want {
			t.Errorf("singleTable(%v, %v) = %q, want %q", c.reads, c.writes, got, c.want)
		}
	}
}

// TestNoSpanWorkBeforeAProvider: made before the application installs a
// TracerProvider, the observer makes no span (the API's stand-in could not
// record one) and costs one allocation a call; once a provider is
// installed, the same observer's spans reach it. It must run before any
// other test of the package installs a global provider.
func TestNoSpanWorkBeforeAProvider(t *testing.T) {
	if !isGlobalDelegate(otelapi.GetTracerProvider()) {
		t.Fatalf("the global TracerProvider %T is not recognized as the API's stand-in: an OpenTelemetry upgrade changed it, and the observer now makes spans that cannot be recorded", otelapi.GetTracerProvider())
	}
	o := New(NewConfig())
	ev := &event.Event{Op: event.OpQuery, Query: "SELECT 1", Statement: sqlclass.Classify("SELECT 1")}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { o.End(o.Start(ctx, ev), ev) }); n > 1 {
		t.Errorf("a call before any provider: %v allocations, want at most 1", n)
	}

	spans := tracetest.NewSpanRecorder()
	otelapi.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	t.Cleanup(func() { otelapi.SetTracerProvider(tracenoop.NewTracerProvider()) })
	o.End(o.Start(ctx, ev), ev)
	if got := len(spans.Ended()); got != 1 {
		t.Fatalf("after a provider was installed: %d spans, want 1", got)
	}
}
