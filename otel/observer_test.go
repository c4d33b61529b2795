package otel

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/otelobs"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// telemetry is an SDK tracer and meter provider that keep what they get.
type telemetry struct {
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
	tp     *sdktrace.TracerProvider
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// options are the otel options that send to tel, followed by extra.
func (tel *telemetry) options(extra ...Option) []Option {
	return append([]Option{WithTracerProvider(tel.tp), WithMeterProvider(tel.mp)}, extra...)
}

// open opens testDSN through auditpg with the observer sending to tel.
func (tel *telemetry) open(t testing.TB, extra ...Option) *sql.DB {
	t.Helper()
	// Local invalidation: the package's parallel tests run DDL, which the
	// change feed would carry to this cache and cost the hits the tests
	// count.
	opts := append(Options(tel.options(extra...)...), auditpg.WithInvalidation(auditpg.InvalidateLocal))
	db, err := auditpg.Open(testDSN, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// named returns the ended spans called name.
func (tel *telemetry) named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range tel.spans.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func (tel *telemetry) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := tel.named(name)
	if len(spans) != 1 {
		var names []string
		for _, s := range tel.spans.Ended() {
			names = append(names, s.Name())
		}
		t.Fatalf("want one span %q, have %d; all spans: %q", name, len(spans), names)
	}
	return spans[0]
}

func (tel *telemetry) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

// checkAttrs fails unless attrs hold every key of want with its value; a
// want value of "<absent>" requires the key to be missing.
func checkAttrs(t *testing.T, what string, attrs map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, ok := attrs[k]
		switch {
		case v == "<absent>" && ok:
			t.Errorf("%s: attribute %s=%q: want it absent", what, k, got)
		case v != "<absent>" && got != v:
			t.Errorf("%s: attribute %s=%q (present %v), want %q", what, k, got, ok, v)
		}
	}
}

func target(t *testing.T) auditpg.Target {
	t.Helper()
	c, err := auditpg.NewConnector(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	return c.Target()
}

// mustExec runs a set-up statement or stops the test.
var mustExec = testdb.Exec

// createItems makes a fresh table named name with three rows.
func createItems(t testing.TB, db *sql.DB, name string) {
	t.Helper()
	table := pgx.Identifier{name}.Sanitize()
	mustExec(t, db, `DROP TABLE IF EXISTS `+table)
	mustExec(t, db, `CREATE TABLE `+table+` (id int PRIMARY KEY, name text NOT NULL)`)
	mustExec(t, db, `INSERT INTO `+table+` VALUES (1, 'one'), (2, 'two'), (3, 'three')`)
}

func TestQuerySpan(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t)
	createItems(t, db, "otel_item")
	tgt := target(t)

	ctx, app := tel.tp.Tracer("app").Start(context.Background(), "handle request")
	rows, err := db.QueryContext(ctx, `select id, name from otel_item where name <> 'secret-value' and id >= $1 order by id`, 2)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	app.End()
	if n != 2 {
		t.Fatalf("read %d rows, want 2", n)
	}

	s := tel.one(t, "SELECT otel_item")
	if s.SpanKind() != trace.SpanKindClient {
		t.Errorf("span kind %v, want client", s.SpanKind())
	}
	if s.Parent().SpanID() != app.SpanContext().SpanID() || s.SpanContext().TraceID() != app.SpanContext().TraceID() {
		t.Errorf("span's parent %v, want the application span %v", s.Parent().SpanID(), app.SpanContext().SpanID())
	}
	if s.Status().Code != codes.Unset {
		t.Errorf("status %v, want unset", s.Status())
	}
	attrs := attrMap(s.Attributes())
	checkAttrs(t, "query span", attrs, map[string]string{
		"db.system.name":            "postgresql",
		"db.namespace":              tgt.Database,
		"server.address":            tgt.Host,
		"server.port":               strconv.Itoa(int(tgt.Port)),
		"db.operation.name":         "SELECT",
		"db.collection.name":        "otel_item",
		"db.query.summary":          "SELECT otel_item",
		"db.response.returned_rows": "2",
		"db.response.status_code":   "<absent>",
		"error.type":                "<absent>",
		"auditpg.cache":             "<absent>",
	})
	text := attrs["db.query.text"]
	if strings.Contains(text, "secret-value") || !strings.Contains(text, "$1") || !strings.Contains(text, "otel_item") {
		t.Errorf("db.query.text %q: want the parameterized text, with no literal value", text)
	}
	if len(s.Events()) != 0 {
		t.Errorf("fast query has events %v, want none", s.Events())
	}
	// The application span is left alone: the observer ended only its own.
	if app := tel.one(t, "handle request"); app.EndTime().Before(s.EndTime()) {
		t.Errorf("application span ended before the query span")
	}
}

func TestErrorSpans(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t, WithErrorText())
	createItems(t, db, "otel_err")
	ctx := context.Background()

	if _, err := db.QueryContext(ctx, `SELECT * FROM otel_missing_table`); err == nil {
		t.Fatal("query of a missing table: want an error")
	}
	s := tel.one(t, "SELECT otel_missing_table")
	if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "otel_missing_table") {
		t.Errorf("status %+v, want an error naming the table", s.Status())
	}
	checkAttrs(t, "missing table", attrMap(s.Attributes()), map[string]string{
		"db.response.status_code":   "42P01",
		"error.type":                "42P01",
		"db.response.returned_rows": "<absent>",
	})

	if _, err := db.ExecContext(ctx, `INSERT INTO otel_err (id, name) VALUES ($1, $2)`, 1, "dup"); err == nil {
		t.Fatal("duplicate key: want an error")
	}
	inserts := tel.named("INSERT otel_err") // the set-up's, then the duplicate
	checkAttrs(t, "duplicate key", attrMap(inserts[len(inserts)-1].Attributes()), map[string]string{
		"db.response.status_code": "23505",
		"error.type":              "23505",
		"db.operation.name":       "INSERT",
		"db.collection.name":      "otel_err",
	})

	// A client-side failure has no SQLSTATE: error.type names its class.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := db.ExecContext(cctx, `SELECT pg_sleep(5)`); err == nil {
		t.Fatal("pg_sleep past the deadline: want an error")
	}
	s = tel.one(t, "SELECT")
	checkAttrs(t, "timeout", attrMap(s.Attributes()), map[string]string{
		"error.type": "timeout",
	})

	rm := tel.collect(t)
	m, ok := findMetric(rm, "db.client.operation.duration")
	if !ok {
		t.Fatal("no db.client.operation.duration")
	}
	var errPoints []map[string]string
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		if a := attrMap(dp.Attributes.ToSlice()); a["error.type"] != "" {
			errPoints = append(errPoints, a)
		}
	}
	types := []string{}
	for _, a := range errPoints {
		types = append(types, a["error.type"]+"/"+a["db.response.status_code"])
	}
	slices.Sort(types)
	if want := []string{"23505/23505", "42P01/42P01", "timeout/"}; !slices.Equal(types, want) {
		t.Errorf("error data points (error.type/db.response.status_code) %q, want %q", types, want)
	}
}

func TestTransactionAndPrepareSpans(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t)
	createItems(t, db, "otel_tx")
	ctx, app := tel.tp.Tracer("app").Start(context.Background(), "job")
	defer app.End()

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE otel_tx SET name = $1 WHERE id = $2`, "uno", 1); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	stmt, err := db.PrepareContext(ctx, `SELECT name FROM otel_tx WHERE id = $1`)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	if err := stmt.QueryRowContext(ctx, 1).Scan(&name); err != nil {
		t.Fatal(err)
	}
	stmt.Close()

	for _, c := range []struct{ name, op string }{
		{"BEGIN", "BEGIN"}, {"COMMIT", "COMMIT"}, {"ROLLBACK", "ROLLBACK"},
		{"UPDATE otel_tx", "UPDATE"}, {"PREPARE SELECT otel_tx", "SELECT"}, {"SELECT otel_tx", "SELECT"},
	} {
		spans := tel.named(c.name)
		if c.name == "BEGIN" && len(spans) == 2 {
			spans = spans[:1]
		}
		if len(spans) != 1 {
			t.Errorf("%d spans %q, want 1", len(spans), c.name)
			continue
		}
		s := spans[0]
		if s.Parent().SpanID() != app.SpanContext().SpanID() {
			t.Errorf("%s: parent %v, want the application span", c.name, s.Parent().SpanID())
		}
		checkAttrs(t, c.name, attrMap(s.Attributes()), map[string]string{"db.operation.name": c.op, "db.system.name": "postgresql"})
	}
	if got := attrMap(tel.one(t, "UPDATE otel_tx").Attributes())["db.response.returned_rows"]; got != "" {
		t.Errorf("exec span has db.response.returned_rows=%s: want it only on queries", got)
	}
}

func TestOmitSpansAndFilter(t *testing.T) {
	ctx := context.Background()
	t.Run("default omits ping", func(t *testing.T) {
		tel := newTelemetry(t)
		db := tel.open(t)
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(tel.named("ping")); n != 0 {
			t.Errorf("%d ping spans, want none by default", n)
		}
		tel.one(t, "connect") // the ping's connection
	})
	t.Run("WithOmitSpans", func(t *testing.T) {
		tel := newTelemetry(t)
		db := tel.open(t, WithOmitSpans(auditpg.OpConnect, auditpg.OpPrepare))
		if err := db.PingContext(ctx); err != nil {
			t.Fatal(err)
		}
		stmt, err := db.PrepareContext(ctx, `SELECT 1`)
		if err != nil {
			t.Fatal(err)
		}
		stmt.Close()
		tel.one(t, "ping")
		if n := len(tel.named("connect")) + len(tel.named("PREPARE SELECT")); n != 0 {
			t.Errorf("%d connect or prepare spans, want none", n)
		}
	})
	t.Run("WithSpanFilter", func(t *testing.T) {
		tel := newTelemetry(t)
		db := tel.open(t, WithSpanFilter(func(ctx context.Context, _ *auditpg.Event) bool {
			return trace.SpanContextFromContext(ctx).IsValid()
		}))
		var one int
		if err := db.QueryRowContext(ctx, `SELECT 1 AS orphan`).Scan(&one); err != nil {
			t.Fatal(err)
		}
		actx, app := tel.tp.Tracer("app").Start(ctx, "app")
		if err := db.QueryRowContext(actx, `SELECT 2 AS child`).Scan(&one); err != nil {
			t.Fatal(err)
		}
		if !app.IsRecording() {
			t.Fatal("the observer ended the application's span")
		}
		app.End()
		spans := tel.named("SELECT")
		if len(spans) != 1 || spans[0].Parent().SpanID() != app.SpanContext().SpanID() {
			t.Fatalf("%d SELECT spans, want only the one inside the application span", len(spans))
		}
		if n := len(tel.named("connect")); n != 0 {
			t.Errorf("connect outside a trace made %d spans, want none", n)
		}
		rm := tel.collect(t)
		m, _ := findMetric(rm, "db.client.operation.duration")
		var count uint64
		for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
			if attrMap(dp.Attributes.ToSlice())["db.operation.name"] == "SELECT" {
				count += dp.Count
			}
		}
		if count != 2 {
			t.Errorf("duration metric counted %d SELECTs, want 2: the filter is for spans only", count)
		}
	})
}

// TestErrorText: a failed span's status says the SQLSTATE alone unless
// WithErrorText, since the server's message quotes the argument here.
func TestErrorText(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		want string // in the status description; "" for exactly the SQLSTATE
	}{
		{name: "default"},
		{name: "WithErrorText", opts: []Option{WithErrorText()}, want: "secret-abc"},
		{name: "WithoutErrorText after WithErrorText", opts: []Option{WithErrorText(), WithoutErrorText()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			db := tel.open(t, tc.opts...)
			var n int
			if err := db.QueryRowContext(context.Background(), `SELECT $1::text::int AS n`, "secret-abc").Scan(&n); err == nil {
				t.Fatal("invalid integer: want an error")
			}
			s := tel.one(t, "SELECT")
			switch d := s.Status().Description; {
			case s.Status().Code != codes.Error:
				t.Errorf("status %+v, want an error", s.Status())
			case tc.want == "" && d != "22P02":
				t.Errorf("status %+v, want an error described only by its SQLSTATE 22P02", s.Status())
			case tc.want != "" && !strings.Contains(d, tc.want):
				t.Errorf("status %+v, want the error's text, with %q", s.Status(), tc.want)
			}
		})
	}
}

func TestWithoutQueryText(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t, WithoutQueryText())
	var one int
	if err := db.QueryRowContext(context.Background(), `SELECT 1`).Scan(&one); err != nil {
		t.Fatal(err)
	}
	checkAttrs(t, "WithoutQueryText", attrMap(tel.one(t, "SELECT").Attributes()), map[string]string{
		"db.query.text": "<absent>", "db.operation.name": "SELECT",
	})
}

// TestSlowQueryEvent: the span event follows the driver's threshold
// (Event.Slow) alone; the deprecated observer option can only turn it off.
func TestSlowQueryEvent(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []Option
		wantEvent bool
	}{
		{"driver threshold", nil, true},
		{"observer threshold ignored", []Option{WithSlowQueryThreshold(time.Hour)}, true},
		{"event off", []Option{WithSlowQueryThreshold(0)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel := newTelemetry(t)
			db, err := auditpg.Open(testDSN, append(Options(tel.options(tc.opts...)...),
				auditpg.WithSlowQueryThreshold(30*time.Millisecond))...)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			if _, err := db.ExecContext(ctx, `SELECT pg_sleep(0.06)`); err != nil {
				t.Fatal(err)
			}
			var one int
			if err := db.QueryRowContext(ctx, `SELECT 1 AS fast`).Scan(&one); err != nil {
				t.Fatal(err)
			}
			var slow, fast sdktrace.ReadOnlySpan
			for _, s := range tel.named("SELECT") {
				if strings.Contains(strings.ToLower(attrMap(s.Attributes())["db.query.text"]), "pg_sleep") {
					slow = s
				} else {
					fast = s
				}
			}
			if slow == nil || fast == nil {
				t.Fatalf("want a slow and a fast SELECT span, have %d SELECT spans", len(tel.named("SELECT")))
			}
			ev := slow.Events()
			switch {
			case tc.wantEvent && (len(ev) != 1 || ev[0].Name != SlowQueryEvent):
				t.Errorf("slow span events %+v, want one %s", ev, SlowQueryEvent)
			case tc.wantEvent && len(ev[0].Attributes) != 0:
				t.Errorf("slow query event attributes %v, want none", ev[0].Attributes)
			case !tc.wantEvent && len(ev) != 0:
				t.Errorf("slow span events %+v, want none", ev)
			}
			if len(fast.Events()) != 0 {
				t.Errorf("fast span events %+v, want none", fast.Events())
			}
			// The statistics' slow sample leads to the trace, event or not.
			snap, err := auditpg.Stats(db)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, sq := range snap.SlowQueries {
				if strings.Contains(strings.ToLower(sq.Fingerprint), "pg_sleep") {
					found = true
					if sq.TraceID != slow.SpanContext().TraceID().String() {
						t.Errorf("slow sample's trace id %q, want the span's %s", sq.TraceID, slow.SpanContext().TraceID())
					}
				}
			}
			if !found {
				t.Errorf("no slow sample for pg_sleep among %d", len(snap.SlowQueries))
			}
		})
	}
}

// TestSlowQueryEventFollowsEvent: the observer reads Event.Slow and no
// duration of its own, whatever the call lasted.
func TestSlowQueryEventFollowsEvent(t *testing.T) {
	for _, tc := range []struct {
		slow      bool
		duration  time.Duration
		wantEvent bool
	}{
		{slow: true, duration: time.Millisecond, wantEvent: true},
		{slow: false, duration: time.Hour, wantEvent: false},
	} {
		tel := newTelemetry(t)
		o := Observer(tel.options()...)
		ev := &auditpg.Event{Op: auditpg.OpExec, Statement: auditpg.Classify(`SELECT pg_sleep(1)`)}
		ctx := o.Start(context.Background(), ev)
		ev.Duration, ev.Slow = tc.duration, tc.slow
		o.End(ctx, ev)
		spans := tel.spans.Ended()
		if len(spans) != 1 {
			t.Fatalf("Slow=%v: %d spans, want 1", tc.slow, len(spans))
		}
		if got := len(spans[0].Events()) == 1 && spans[0].Events()[0].Name == SlowQueryEvent; got != tc.wantEvent {
			t.Errorf("Slow=%v, %v: events %+v, want the slow query event %v", tc.slow, tc.duration, spans[0].Events(), tc.wantEvent)
		}
	}
}

func TestMetrics(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t)
	createItems(t, db, "otel_metric")
	ctx := context.Background()
	for i := 1; i <= 3; i++ {
		rows, err := db.QueryContext(ctx, `SELECT id FROM otel_metric WHERE id <= $1`, i)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
	}
	rm := tel.collect(t)

	m, ok := findMetric(rm, "db.client.operation.duration")
	if !ok {
		t.Fatal("no db.client.operation.duration")
	}
	if m.Unit != "s" {
		t.Errorf("duration unit %q, want s", m.Unit)
	}
	var sel *metricdata.HistogramDataPoint[float64]
	h := m.Data.(metricdata.Histogram[float64])
	for i, dp := range h.DataPoints {
		a := attrMap(dp.Attributes.ToSlice())
		if _, ok := a["db.query.text"]; ok {
			t.Errorf("metric attributes %v hold db.query.text", a)
		}
		if a["db.query.summary"] == "SELECT otel_metric" {
			sel = &h.DataPoints[i]
		}
	}
	if sel == nil {
		t.Fatal("no duration data point for SELECT otel_metric")
	}
	if !slices.Equal(sel.Bounds, otelobs.DurationBuckets) {
		t.Errorf("bucket bounds %v, want %v", sel.Bounds, otelobs.DurationBuckets)
	}
	if sel.Count != 3 || sel.Sum <= 0 {
		t.Errorf("SELECT duration count %d sum %v, want 3 and more than 0", sel.Count, sel.Sum)
	}
	checkAttrs(t, "duration point", attrMap(sel.Attributes.ToSlice()), map[string]string{
		"db.system.name": "postgresql", "db.operation.name": "SELECT", "db.collection.name": "otel_metric",
		"db.namespace": target(t).Database, "error.type": "<absent>",
	})

	m, ok = findMetric(rm, "db.client.response.returned_rows")
	if !ok {
		t.Fatal("no db.client.response.returned_rows")
	}
	for _, dp := range m.Data.(metricdata.Histogram[int64]).DataPoints {
		if attrMap(dp.Attributes.ToSlice())["db.query.summary"] == "SELECT otel_metric" {
			if dp.Count != 3 || dp.Sum != 1+2+3 {
				t.Errorf("returned rows count %d sum %d, want 3 and 6", dp.Count, dp.Sum)
			}
			return
		}
	}
	t.Error("no returned_rows data point for SELECT otel_metric")
}

// TestCacheOutcomes drives the observer with the events the result cache
// makes: a hit (no network call), a bypass with its reason, a miss, and
// invalidations.
func TestCacheOutcomes(t *testing.T) {
	tel := newTelemetry(t)
	o := Observer(tel.options()...)
	st := &auditpg.Statement{Operation: "SELECT", Summary: "SELECT audit_preset", Fingerprint: "SELECT * FROM audit_preset WHERE org = $1",
		FingerprintID: 42, Reads: []string{"audit_preset"}}
	tgt := &auditpg.Target{Host: "db.example", Port: 5432, Database: "audit", User: "app"}
	run := func(cache auditpg.CacheOutcome, reason string) {
		ev := &auditpg.Event{Op: auditpg.OpQuery, Query: "SELECT * FROM audit_preset WHERE org = $1", Statement: st,
			Start: time.Now(), Target: tgt, Cache: cache, CacheReason: reason}
		ctx := o.Start(context.Background(), ev)
		ev.Duration, ev.Rows = time.Microsecond, 4
		o.End(ctx, ev)
	}
	run(auditpg.CacheHit, "")
	run(auditpg.CacheHit, "")
	run(auditpg.CacheMiss, "")
	run(auditpg.CacheBypass, "in a transaction")
	o.(auditpg.InvalidationObserver).Invalidated(context.Background(), []string{"audit_preset", "audit_log"})
	o.(auditpg.InvalidationObserver).Invalidated(context.Background(), nil)

	spans := tel.named("SELECT audit_preset")
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	checkAttrs(t, "hit", attrMap(spans[0].Attributes()), map[string]string{
		"auditpg.cache": "hit", "auditpg.cache.reason": "<absent>", "db.response.returned_rows": "4",
		"server.address": "db.example", "server.port": "5432", "db.namespace": "audit",
	})
	checkAttrs(t, "miss", attrMap(spans[2].Attributes()), map[string]string{"auditpg.cache": "miss"})
	checkAttrs(t, "bypass", attrMap(spans[3].Attributes()), map[string]string{
		"auditpg.cache": "bypass", "auditpg.cache.reason": "in a transaction",
	})

	rm := tel.collect(t)
	sum := func(name string, match func(map[string]string) bool) int64 {
		m, ok := findMetric(rm, name)
		if !ok {
			t.Errorf("no metric %s", name)
			return -1
		}
		var n int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if match(attrMap(dp.Attributes.ToSlice())) {
				n += dp.Value
			}
		}
		return n
	}
	all := func(map[string]string) bool { return true }
	if n := sum("auditpg.cache.hits", all); n != 2 {
		t.Errorf("cache hits %d, want 2", n)
	}
	if n := sum("auditpg.cache.misses", all); n != 1 {
		t.Errorf("cache misses %d, want 1", n)
	}
	if n := sum("auditpg.cache.bypasses", all); n != 1 {
		t.Errorf("cache bypasses %d, want 1", n)
	}
	if n := sum("auditpg.cache.invalidations", func(a map[string]string) bool { return a["db.collection.name"] == "audit_preset" }); n != 1 {
		t.Errorf("invalidations of audit_preset %d, want 1", n)
	}
	if n := sum("auditpg.cache.invalidations", func(a map[string]string) bool { return a["db.collection.name"] == "" }); n != 1 {
		t.Errorf("whole-cache invalidations %d, want 1", n)
	}
	m, _ := findMetric(rm, "db.client.operation.duration")
	outcomes := map[string]uint64{}
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		outcomes[attrMap(dp.Attributes.ToSlice())["auditpg.cache"]] += dp.Count
	}
	if outcomes["hit"] != 2 || outcomes["miss"] != 1 || outcomes["bypass"] != 1 {
		t.Errorf("duration counts by auditpg.cache %v, want hit 2, miss 1, bypass 1", outcomes)
	}
}

// TestCacheThroughDriver checks the result cache's outcomes as the driver
// reports them: a miss that fills, a hit with no network call, a bypass
// with its reason, and the invalidation a write makes.
func TestCacheThroughDriver(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t)
	createItems(t, db, "otel_cached")
	ctx := auditpg.WithCache(context.Background(), time.Minute)
	read := func(ctx context.Context) {
		t.Helper()
		var name string
		if err := db.QueryRowContext(ctx, `SELECT name FROM otel_cached WHERE id = $1`, 3).Scan(&name); err != nil {
			t.Fatal(err)
		}
	}
	read(ctx)
	read(ctx)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	if err := tx.QueryRowContext(ctx, `SELECT name FROM otel_cached WHERE id = $1`, 3).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `UPDATE otel_cached SET name = 'changed' WHERE id = 3`)

	spans := tel.named("SELECT otel_cached")
	var outcomes []string
	for _, s := range spans {
		a := attrMap(s.Attributes())
		outcomes = append(outcomes, a["auditpg.cache"])
		if a["auditpg.cache"] == "bypass" && a["auditpg.cache.reason"] == "" {
			t.Errorf("bypass span without auditpg.cache.reason: %v", a)
		}
		if a["auditpg.cache"] == "hit" && a["db.response.returned_rows"] != "1" {
			t.Errorf("hit span: db.response.returned_rows=%q, want 1", a["db.response.returned_rows"])
		}
	}
	if want := []string{"miss", "hit", "bypass"}; !slices.Equal(outcomes, want) {
		t.Fatalf("auditpg.cache of the reads %q, want %q", outcomes, want)
	}

	rm := tel.collect(t)
	for name, want := range map[string]int64{"auditpg.cache.hits": 1, "auditpg.cache.misses": 1, "auditpg.cache.bypasses": 1} {
		m, ok := findMetric(rm, name)
		if !ok {
			t.Errorf("no metric %s", name)
			continue
		}
		var n int64
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			if attrMap(dp.Attributes.ToSlice())["db.collection.name"] == "otel_cached" {
				n += dp.Value
			}
		}
		if n != want {
			t.Errorf("%s for otel_cached: %d, want %d", name, n, want)
		}
	}
	m, ok := findMetric(rm, "auditpg.cache.invalidations")
	if !ok {
		t.Fatal("no auditpg.cache.invalidations")
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if attrMap(dp.Attributes.ToSlice())["db.collection.name"] == "otel_cached" {
			n += dp.Value
		}
	}
	if n < 1 {
		t.Errorf("invalidations of otel_cached %d after an UPDATE, want at least 1", n)
	}
}
