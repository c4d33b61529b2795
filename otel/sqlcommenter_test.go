package otel

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"go.opentelemetry.io/otel/trace"
)

func TestSQLCommenter(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	unsampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: tid, SpanID: sid}))
	none := context.Background()
	tags := map[string]string{"application": "billing svc", "route": "/audit/{id}", "zone": "it's"}

	for _, c := range []struct {
		name  string
		tags  map[string]string
		ctx   context.Context
		query string
		want  string
	}{
		{"traceparent", nil, sampled, "SELECT 1",
			"SELECT 1 /*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/"},
		{"not sampled", nil, unsampled, "SELECT 1",
			"SELECT 1 /*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'*/"},
		{"tags sorted around traceparent, escaped", tags, sampled, "SELECT 1",
			"SELECT 1 /*application='billing%20svc',route='%2Faudit%2F%7Bid%7D',traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',zone='it%27s'*/"},
		{"tags without a span", tags, none, "SELECT 1",
			"SELECT 1 /*application='billing%20svc',route='%2Faudit%2F%7Bid%7D',zone='it%27s'*/"},
		{"nothing to say", nil, none, "SELECT 1", "SELECT 1"},
		{"trailing semicolon", nil, sampled, "SELECT 1;  \n",
			"SELECT 1 /*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/;"},
		{"block comment left alone", tags, sampled, "SELECT 1 /* mine */", "SELECT 1 /* mine */"},
		{"line comment left alone", tags, sampled, "SELECT 1 -- mine", "SELECT 1 -- mine"},
		{"tag named traceparent ignored", map[string]string{"traceparent": "forged"}, sampled, "SELECT 1",
			"SELECT 1 /*traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := SQLCommenter(c.tags)(c.ctx, c.query); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// TestSQLCommenterReachesServer checks, through the real server, that the
// comment carries the query's own CLIENT span and that the span and the
// statistics keep the original text.
func TestSQLCommenterReachesServer(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t, WithSQLCommenter(map[string]string{"application": "otel test"}))
	ctx, app := tel.tp.Tracer("app").Start(context.Background(), "app")
	var sent string
	if err := db.QueryRowContext(ctx, `SELECT current_query() AS sent`).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	app.End()
	span := tel.one(t, "SELECT")
	want := "/*application='otel%20test',traceparent='00-" + span.SpanContext().TraceID().String() + "-" + span.SpanContext().SpanID().String() + "-01'*/"
	if !strings.HasSuffix(sent, want) {
		t.Errorf("server saw %q, want it to end with %q", sent, want)
	}
	if text := attrMap(span.Attributes())["db.query.text"]; strings.Contains(text, "traceparent") {
		t.Errorf("db.query.text %q holds the comment: want the original text's fingerprint", text)
	}

	// The comment differs in every trace, but the cache key does not see it.
	createItems(t, db, "otel_commented")
	for i := range 2 {
		ctx, app := tel.tp.Tracer("app").Start(auditpg.WithCache(context.Background(), time.Minute), "read")
		if err := db.QueryRowContext(ctx, `SELECT name FROM otel_commented WHERE id = $1`, 1).Scan(&sent); err != nil {
			t.Fatal(err)
		}
		app.End()
		reads := tel.named("SELECT otel_commented")
		if got, want := attrMap(reads[len(reads)-1].Attributes())["auditpg.cache"], []string{"miss", "hit"}[i]; got != want {
			t.Errorf("read %d in its own trace: auditpg.cache=%q, want %q", i+1, got, want)
		}
	}
}

func TestOptionsWithoutCommenter(t *testing.T) {
	tel := newTelemetry(t)
	db := tel.open(t)
	var sent string
	ctx, app := tel.tp.Tracer("app").Start(context.Background(), "app")
	defer app.End()
	if err := db.QueryRowContext(ctx, `SELECT current_query() AS sent`).Scan(&sent); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sent, "/*") {
		t.Errorf("server saw %q: the commenter must be off by default", sent)
	}
}
