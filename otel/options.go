package otel

import (
	"context"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/otelobs"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures Observer, Options, RegisterPoolMetrics and
// SQLCommenter. Each function takes the options that concern it and ignores
// the rest, so one list can configure them all. Unlike the other packages'
// options these cannot fail, so they return no error: every value has a
// meaning (a nil provider is the global one, a nil filter keeps every span,
// a negative pool maximum is not reported), and Observer and Options keep
// their error-free signatures.
type Option = otelobs.Option

// WithTracerProvider sets the TracerProvider spans come from. By default it
// is the global one (otel.GetTracerProvider), looked up when the Observer is
// made; the global provider forwards to one installed later, so the order of
// set-up does not matter.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *otelobs.Config) { c.TracerProvider = tp }
}

// WithMeterProvider sets the MeterProvider of the query and pool metrics
// (default: the global one, with the same forwarding as the tracer's).
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *otelobs.Config) { c.MeterProvider = mp }
}

// WithSpanFilter makes a span only for the calls for which keep returns
// true; metrics count every call. It runs on the query path, before the
// call: keep it cheap. For instance, to trace only calls made inside a
// trace the application started:
//
//	otel.WithSpanFilter(func(ctx context.Context, _ *auditpg.Event) bool {
//		return trace.SpanContextFromContext(ctx).IsValid()
//	})
func WithSpanFilter(keep func(ctx context.Context, ev *auditpg.Event) bool) Option {
	return func(c *otelobs.Config) { c.SpanFilter = keep }
}

// WithOmitSpans lists the kinds of call that make no span, replacing the
// default, which omits auditpg.OpPing only (a health check every few seconds
// would otherwise start a trace each). Typical: WithOmitSpans(auditpg.OpPing,
// auditpg.OpPrepare, auditpg.OpConnect). Metrics still count these calls.
// (Session resets make no call through auditpg's observers, so there is no
// reset-session span to omit.)
func WithOmitSpans(ops ...auditpg.Op) Option {
	return func(c *otelobs.Config) {
		c.OmitSpans = [auditpg.OpRollback + 1]bool{}
		for _, op := range ops {
			if int(op) < len(c.OmitSpans) {
				c.OmitSpans[op] = true
			}
		}
	}
}

// WithoutQueryText leaves db.query.text off the spans. The text recorded
// otherwise is the statement's fingerprint, which never holds literal values
// (see the package documentation).
func WithoutQueryText() Option {
	return func(c *otelobs.Config) { c.NoQueryText = true }
}

// WithErrorText puts the error's text in a failed call's span status, which
// by default says only the error.type (the SQLSTATE). Server messages may
// quote a literal or an argument value ("invalid input syntax for type
// integer: \"abc\""), which then reaches the traces: that is why it is off
// by default.
func WithErrorText() Option {
	return func(c *otelobs.Config) { c.ErrorText = true }
}

// WithoutErrorText leaves the error's text out of a failed call's span
// status, which then says only the error.type (the SQLSTATE). It is the
// default; it undoes a WithErrorText given before it.
func WithoutErrorText() Option {
	return func(c *otelobs.Config) { c.ErrorText = false }
}

// WithSlowQueryThreshold with 0 (or less) leaves the auditpg.slow_query span
// event off; any other duration is ignored. A call's span gets the event
// when the driver marks the call slow (auditpg.Event.Slow) by the
// connector's auditpg.WithSlowQueryThreshold, the threshold that also takes
// the slow sample in the statistics, so the two agree.
//
// Deprecated: set the threshold on the driver with
// auditpg.WithSlowQueryThreshold. Pass 0 here only to keep the span event
// off.
func WithSlowQueryThreshold(d time.Duration) Option {
	return func(c *otelobs.Config) {
		if d <= 0 {
			c.NoSlowEvent = true
		}
	}
}

// WithSQLCommenter makes Options install SQLCommenter's rewriter, which
// appends a sqlcommenter comment with the traceparent and the given static
// tags (may be nil) to every statement sent. Off by default: see
// SQLCommenter for its cost.
func WithSQLCommenter(tags map[string]string) Option {
	return func(c *otelobs.Config) { c.Commenter, c.CommentTags = true, tags }
}

// WithPoolMaxIdleConns tells RegisterPoolMetrics the pool's maximum of idle
// connections, reported as db.client.connection.idle.max: database/sql has
// no getter for what SetMaxIdleConns set. Without it the metric is not
// reported.
func WithPoolMaxIdleConns(n int) Option {
	return func(c *otelobs.Config) { c.PoolMaxIdle = n }
}
