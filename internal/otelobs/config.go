package otelobs

import (
	"context"

	"github.com/auditpg/auditpg/internal/event"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config is what package otel's options set; the zero value of a field is
// its default, but for the spans omitted (NewConfig sets ping's).
type Config struct {
	TracerProvider trace.TracerProvider // nil: the global one
	MeterProvider  metric.MeterProvider // nil: the global one
	SpanFilter     func(ctx context.Context, ev *event.Event) bool
	OmitSpans      [event.OpRollback + 1]bool
	NoQueryText    bool
	ErrorText      bool // the error's text in a failed span's status; it may quote values
	NoSlowEvent    bool
	Commenter      bool // install SQLCommenter's rewriter (package otel)
	CommentTags    map[string]string
	PoolMaxIdle    int // reported by the pool metrics when 0 or more
}

// Option sets part of a Config.
type Option func(*Config)

// NewConfig returns the defaults with opts applied.
func NewConfig(opts ...Option) Config {
	c := Config{PoolMaxIdle: -1}
	c.OmitSpans[event.OpPing] = true // health checks would make a root span each
	for _, opt := range opts {
		opt(&c)
	}
	return c
}
