package otel

import (
	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/otelobs"
)

// ScopeName is the instrumentation scope of auditpg's tracer and meter.
const ScopeName = otelobs.ScopeName

// Attribute keys and the span event auditpg adds to the database
// conventions' own.
const (
	// CacheKey is how the result cache answered a query: hit, miss or bypass.
	CacheKey = otelobs.CacheKey
	// CacheReasonKey says why a query bypassed the cache.
	CacheReasonKey = otelobs.CacheReasonKey
	// SlowQueryEvent is the name of the span event a call the driver marks
	// slow (auditpg.Event.Slow) gets.
	SlowQueryEvent = otelobs.SlowQueryEvent
)

// Observer returns an auditpg.Observer that makes a CLIENT span per call and
// records the query metrics. Install it with auditpg.WithObserver, or use
// Options. Errors creating instruments (there should be none) go to the
// global OpenTelemetry error handler, and the instrument concerned does
// nothing.
//
// The span of a call is the one in the context Start returns; an observer
// added after this one must not replace it in the context.
func Observer(opts ...Option) auditpg.Observer {
	return otelobs.New(otelobs.NewConfig(opts...))
}

// Options returns the auditpg options that install OpenTelemetry on a
// connector: the Observer and, with WithSQLCommenter, the SQLCommenter
// rewriter. The one-liner:
//
//	db, err := auditpg.Open(dsn, otel.Options()...)
//
// A connector makes spans and metrics through the global providers by
// default (sql.Open("auditpg", dsn) included); the Observer these options
// install takes the default one's place.
func Options(opts ...Option) []auditpg.Option {
	cfg := otelobs.NewConfig(opts...)
	out := []auditpg.Option{auditpg.WithObserver(otelobs.New(cfg))}
	if cfg.Commenter {
		out = append(out, auditpg.WithQueryRewriter(SQLCommenter(cfg.CommentTags)))
	}
	return out
}
