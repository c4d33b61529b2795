// Package otelobs is the OpenTelemetry observer: a CLIENT span per call
// and the database client metrics, following the stable database semantic
// conventions, on the OpenTelemetry API only. The driver installs one by
// default, through the global providers; package otel configures others.
package otelobs

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/auditpg/auditpg/internal/event"
	"github.com/auditpg/auditpg/internal/sqlclass"
	otelapi "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of auditpg's tracer and meter.
const ScopeName = "github.com/auditpg/auditpg/otel"

// Attribute keys auditpg adds to the database conventions' own.
const (
	// CacheKey is how the result cache answered a query: hit, miss or bypass.
	CacheKey = attribute.Key("auditpg.cache")
	// CacheReasonKey says why a query bypassed the cache.
	CacheReasonKey = attribute.Key("auditpg.cache.reason")
	// SlowQueryEvent is the name of the span event a call the driver marks
	// slow (auditpg.Event.Slow) gets.
	SlowQueryEvent = "auditpg.slow_query"
)

// DurationBuckets are the database conventions' advice for
// db.client.operation.duration, in seconds.
var DurationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10}

// maxCachedAttrs bounds the attribute sets kept per (connector, statement
// fingerprint, kind of call); past it the cache starts over.
const maxCachedAttrs = 4096

// Observer makes the spans and records the metrics of every call.
type Observer struct {
	cfg           Config
	tracer        trace.Tracer
	duration      metric.Float64Histogram
	returnedRows  metric.Int64Histogram
	cacheHits     metric.Int64Counter
	cacheMisses   metric.Int64Counter
	cacheBypasses metric.Int64Counter
	invalidations metric.Int64Counter

	attrs      sync.Map     // attrKey -> *callAttrs, read without a lock
	attrsCount atomic.Int64 // entries in attrs

	// The invalidation counter's options: for every table (everything
	// invalidated), and per table name, made once (bounded as attrs).
	// unset is the global TracerProvider's stand-in (the delegate that
	// forwards to a provider installed later), when the observer was made
	// before any: while the global provider is still it, no span can be
	// recorded, and Start makes none.
	unset trace.TracerProvider

	invalidatedAll []metric.AddOption
	tableOpts      sync.Map // table name -> []metric.AddOption
	tableOptsCount atomic.Int64
}

// New returns an Observer configured by cfg. Errors creating instruments
// (there should be none) go to the global OpenTelemetry error handler, and
// the instrument concerned does nothing.
//
// The span of a call is the one in the context Start returns; an observer
// added after this one must not replace it in the context.
func New(cfg Config) *Observer {
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	var unset trace.TracerProvider
	if tp == nil {
		tp = otelapi.GetTracerProvider()
		if isGlobalDelegate(tp) {
			unset = tp
		}
	}
	if mp == nil {
		mp = otelapi.GetMeterProvider()
	}
	meter := mp.Meter(ScopeName)
	o := &Observer{
		cfg:            cfg,
		tracer:         tp.Tracer(ScopeName),
		unset:          unset,
		invalidatedAll: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(semconv.DBSystemNamePostgreSQL))},
	}
	duration, err1 := dbconv.NewClientOperationDuration(meter, metric.WithExplicitBucketBoundaries(DurationBuckets...))
	rows, err2 := dbconv.NewClientResponseReturnedRows(meter)
	o.duration, o.returnedRows = duration.Inst(), rows.Inst()
	var err3, err4, err5, err6 error
	o.cacheHits, err3 = meter.Int64Counter("auditpg.cache.hits", metric.WithUnit("{query}"),
		metric.WithDescription("Queries answered from auditpg's result cache, with no network call."))
	o.cacheMisses, err4 = meter.Int64Counter("auditpg.cache.misses", metric.WithUnit("{query}"),
		metric.WithDescription("Cacheable queries that the result cache could not answer and sent to the server."))
	o.cacheBypasses, err5 = meter.Int64Counter("auditpg.cache.bypasses", metric.WithUnit("{query}"),
		metric.WithDescription("Queries that bypassed auditpg's result cache (not cacheable, in a transaction, unknown session state...)."))
	o.invalidations, err6 = meter.Int64Counter("auditpg.cache.invalidations", metric.WithUnit("{invalidation}"),
		metric.WithDescription("Tables whose cached results a write invalidated; without db.collection.name, the whole cache."))
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		otelapi.Handle(err)
	}
	return o
}

// attrKey names what a call's precomputed attributes depend on.
type attrKey struct {
	target      *event.Target
	fingerprint uint64
	op          event.Op
}

// callAttrs are the attributes and options of one kind of call, computed
// once: the query path then allocates for none of them.
type callAttrs struct {
	name   string
	start  []trace.SpanStartOption
	metric []attribute.KeyValue // metric attributes, without cache or error
	// record and add hold the metric attributes with each cache outcome,
	// as the option slices the instruments take (passed on with no copy).
	record [4][]metric.RecordOption
	add    [4][]metric.AddOption
}

// cacheIndex maps a cache outcome to its slot in callAttrs.record and add.
func cacheIndex(c event.CacheOutcome) int {
	switch c {
	case event.CacheHit:
		return 1
	case event.CacheMiss:
		return 2
	case event.CacheBypass:
		return 3
	}
	return 0
}

var cacheOutcomes = [4]event.CacheOutcome{"", event.CacheHit, event.CacheMiss, event.CacheBypass}

// callAttrsFor returns the precomputed attributes for ev's kind of call.
func (o *Observer) callAttrsFor(ev *event.Event) *callAttrs {
	key := attrKey{target: ev.Target, op: ev.Op}
	if ev.Statement != nil {
		key.fingerprint = ev.Statement.FingerprintID
	}
	if a, ok := o.attrs.Load(key); ok {
		return a.(*callAttrs)
	}
	a := o.newCallAttrs(ev)
	if o.attrsCount.Add(1) > maxCachedAttrs {
		o.attrs.Clear()
		o.attrsCount.Store(1)
	}
	o.attrs.Store(key, a)
	return a
}

// opNames name the calls that carry no SQL text.
var opNames = [...]string{
	event.OpConnect:  "connect",
	event.OpPing:     "ping",
	event.OpPrepare:  "PREPARE",
	event.OpExec:     "EXEC",
	event.OpQuery:    "QUERY",
	event.OpBegin:    "BEGIN",
	event.OpCommit:   "COMMIT",
	event.OpRollback: "ROLLBACK",
}

func (o *Observer) newCallAttrs(ev *event.Event) *callAttrs {
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, semconv.DBSystemNamePostgreSQL)
	if t := ev.Target; t != nil {
		if t.Database != "" {
			attrs = append(attrs, semconv.DBNamespace(t.Database))
		}
		if t.Host != "" {
			attrs = append(attrs, semconv.ServerAddress(t.Host))
		}
		if t.Port != 0 {
			attrs = append(attrs, semconv.ServerPort(int(t.Port)))
		}
	}
	name := "postgresql"
	if int(ev.Op) < len(opNames) {
		name = opNames[ev.Op]
	}
	st := ev.Statement
	switch {
	case st != nil:
		if st.Operation != "" {
			attrs = append(attrs, semconv.DBOperationName(st.Operation))
		}
		if table := singleTable(st); table != "" {
			attrs = append(attrs, semconv.DBCollectionName(table))
		}
		if st.Summary != "" {
			attrs = append(attrs, semconv.DBQuerySummary(st.Summary))
		}
		switch {
		case ev.Op == event.OpPrepare && st.Summary != "":
			name = "PREPARE " + st.Summary
		case st.Summary != "":
			name = st.Summary
		case st.Operation != "":
			name = st.Operation
		}
	case ev.Op == event.OpBegin || ev.Op == event.OpCommit || ev.Op == event.OpRollback:
		attrs = append(attrs, semconv.DBOperationName(name))
	}
	a := &callAttrs{name: name, metric: attrs}
	spanAttrs := attrs
	if st != nil && !o.cfg.NoQueryText && st.Fingerprint != "" {
		spanAttrs = append(attrs[:len(attrs):len(attrs)], semconv.DBQueryText(st.Fingerprint))
	}
	a.start = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(spanAttrs...)}
	for i, outcome := range cacheOutcomes {
		set := attribute.NewSet(attrs...)
		if outcome != "" {
			set = attribute.NewSet(append(attrs[:len(attrs):len(attrs)], CacheKey.String(string(outcome)))...)
		}
		opt := metric.WithAttributeSet(set)
		a.record[i], a.add[i] = []metric.RecordOption{opt}, []metric.AddOption{opt}
	}
	return a
}

// singleTable returns the one table a statement reads or writes, or "".
func singleTable(st *sqlclass.Statement) string {
	table := ""
	for _, list := range [2][]string{st.Reads, st.Writes} {
		for _, t := range list {
			if table != "" && t != table {
				return ""
			}
			table = t
		}
	}
	return table
}

// Start opens the call's CLIENT span, unless the call's kind is omitted or
// the span filter declines it; the context returned then carries a
// non-recording span around the caller's span context, so that End has
// nothing to end and the trace context still reaches the server comment.
func (o *Observer) Start(ctx context.Context, ev *event.Event) context.Context {
	if (int(ev.Op) < len(o.cfg.OmitSpans) && o.cfg.OmitSpans[ev.Op]) ||
		(o.unset != nil && otelapi.GetTracerProvider() == o.unset) ||
		(o.cfg.SpanFilter != nil && !o.cfg.SpanFilter(ctx, ev)) {
		// No span: the context says so, for End not to take the caller's
		// span for this call's (one small allocation, where a span makes
		// three).
		return context.WithValue(ctx, noSpan{}, noSpan{})
	}
	a := o.callAttrsFor(ev)
	ctx, _ = o.tracer.Start(ctx, a.name, a.start...)
	return ctx
}

// End records the call's metrics, completes its span and ends it.
func (o *Observer) End(ctx context.Context, ev *event.Event) {
	a := o.callAttrsFor(ev)
	errType := ""
	if ev.Err != nil {
		errType = errorType(ev)
	}
	o.record(ctx, ev, a, errType)

	if ctx.Value(noSpan{}) != nil {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	// Built in a local array, handed over as a slice of exactly their
	// number (the array itself would escape to the heap: 320 bytes).
	var kv [5]attribute.KeyValue
	n := 0
	if ev.Op == event.OpQuery && ev.Err == nil {
		kv[n] = semconv.DBResponseReturnedRows(int(ev.Rows))
		n++
	}
	if ev.Cache != "" {
		kv[n] = CacheKey.String(string(ev.Cache))
		n++
		if ev.CacheReason != "" {
			kv[n] = CacheReasonKey.String(ev.CacheReason)
			n++
		}
	}
	if ev.Err != nil {
		if ev.SQLState != "" {
			kv[n] = semconv.DBResponseStatusCode(ev.SQLState)
			n++
		}
		kv[n] = semconv.ErrorTypeKey.String(errType)
		n++
		if o.cfg.ErrorText {
			span.SetStatus(codes.Error, ev.Err.Error())
		} else {
			span.SetStatus(codes.Error, errType)
		}
	}
	if n > 0 {
		span.SetAttributes(slices.Clone(kv[:n])...)
	}
	if ev.Slow && !o.cfg.NoSlowEvent {
		span.AddEvent(SlowQueryEvent)
	}
	span.End()
}

// record records the call's metrics. A connection is not a database
// operation: connect calls have a span but no operation metric.
func (o *Observer) record(ctx context.Context, ev *event.Event, a *callAttrs, errType string) {
	if ev.Op == event.OpConnect {
		return
	}
	i := cacheIndex(ev.Cache)
	switch ev.Cache {
	case event.CacheHit:
		o.cacheHits.Add(ctx, 1, a.add[i]...)
	case event.CacheMiss:
		o.cacheMisses.Add(ctx, 1, a.add[i]...)
	case event.CacheBypass:
		o.cacheBypasses.Add(ctx, 1, a.add[i]...)
	}
	attrs := a.record[i]
	if ev.Err != nil { // rare: build the set with the error's attributes
		kv := append(a.metric[:len(a.metric):len(a.metric)], semconv.ErrorTypeKey.String(errType))
		if ev.SQLState != "" {
			kv = append(kv, semconv.DBResponseStatusCode(ev.SQLState))
		}
		if ev.Cache != "" {
			kv = append(kv, CacheKey.String(string(ev.Cache)))
		}
		attrs = []metric.RecordOption{metric.WithAttributes(kv...)}
	}
	o.duration.Record(ctx, ev.Duration.Seconds(), attrs...)
	if ev.Op == event.OpQuery && ev.Err == nil {
		o.returnedRows.Record(ctx, ev.Rows, attrs...)
	}
}

// errorType is error.type: the SQLSTATE when the server sent one, else a
// low-cardinality class that does not depend on Go type names.
func errorType(ev *event.Event) string {
	switch {
	case ev.SQLState != "":
		return ev.SQLState
	case errors.Is(ev.Err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(ev.Err, context.Canceled):
		return "canceled"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// Invalidated counts the tables a write invalidated in the result cache.
func (o *Observer) Invalidated(ctx context.Context, tables []string) {
	if len(tables) == 0 {
		o.invalidations.Add(ctx, 1, o.invalidatedAll...)
		return
	}
	for _, t := range tables {
		o.invalidations.Add(ctx, 1, o.tableOptions(t)...)
	}
}

// tableOptions are the invalidation counter's options for table t: its
// attribute set, and the slice that passes it, are made once per name, not
// on every write.
func (o *Observer) tableOptions(t string) []metric.AddOption {
	if opt, ok := o.tableOpts.Load(t); ok {
		return opt.([]metric.AddOption)
	}
	opt := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(semconv.DBSystemNamePostgreSQL, semconv.DBCollectionName(t)))}
	if o.tableOptsCount.Add(1) > maxCachedAttrs {
		o.tableOpts.Clear()
		o.tableOptsCount.Store(1)
	}
	o.tableOpts.Store(t, opt)
	return opt
}

var _ event.InvalidationObserver = (*Observer)(nil)

// noSpan marks the context of a call Start made no span for.
type noSpan struct{}

// isGlobalDelegate reports whether tp is the stand-in that
// otel.GetTracerProvider returns before any provider is installed. It is
// known by its type, which the OpenTelemetry API keeps internal; should
// that type change, the observer makes spans through it as through any
// provider (TestNoSpanWorkBeforeAProvider notices).
func isGlobalDelegate(tp trace.TracerProvider) bool {
	t := reflect.TypeOf(tp)
	return t != nil && t.Kind() == reflect.Pointer &&
		t.Elem().PkgPath() == "go.opentelemetry.io/otel/internal/global" && t.Elem().Name() == "tracerProvider"
}
