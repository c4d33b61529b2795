package otel

import (
	"context"
	"encoding/hex"
	"maps"
	"net/url"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// SQLCommenter returns a query rewriter for auditpg.WithQueryRewriter that
// appends a comment per the sqlcommenter specification
// (https://google.github.io/sqlcommenter/spec/): the traceparent of the
// call's span, when there is one, and the static tags given (may be nil),
// keys sorted, keys and values URL-encoded then meta-escaped:
//
//	SELECT * FROM audit_log WHERE id = $1 /*application='billing',traceparent='00-0af7...-b7ad...-01'*/
//
// A statement that already holds a comment ("--" or "/*") is left alone, as
// the specification requires; a trailing semicolon stays last.
//
// The rewriter sees only the text sent to the server: classification,
// fingerprints, statistics and cache keys keep the original text.
//
// Cost: pgx prepares and caches each distinct statement text (its default
// query mode), and the traceparent makes every call's text distinct. With
// the comment on, every query is prepared anew (an extra round trip and a
// server-side plan) and pushes older statements out of pgx's statement
// cache. That is why it is off by default; turn it on when server-side
// correlation (pg_stat_activity, the server log) is worth that price, or
// use pgx's exec or simple-protocol modes, which do not prepare.
func SQLCommenter(tags map[string]string) func(ctx context.Context, query string) string {
	const tpKey = "traceparent"
	var before, after []string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		if k == tpKey {
			continue // the span's own traceparent wins
		}
		pair := escapeComment(k) + "='" + escapeComment(tags[k]) + "'"
		if k < tpKey {
			before = append(before, pair)
		} else {
			after = append(after, pair)
		}
	}
	prefix, suffix := strings.Join(before, ","), strings.Join(after, ",")
	static := strings.Join(append(slices.Clip(before), after...), ",")

	return func(ctx context.Context, query string) string {
		if strings.Contains(query, "/*") || strings.Contains(query, "--") {
			return query
		}
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() && static == "" {
			return query
		}
		body, end := strings.TrimRight(query, " \t\r\n;"), ""
		if len(body) < len(query) && strings.Contains(query[len(body):], ";") {
			end = ";"
		}
		var b strings.Builder
		b.Grow(len(body) + len(static) + 80)
		b.WriteString(body)
		b.WriteString(" /*")
		if !sc.IsValid() {
			b.WriteString(static)
		} else {
			if prefix != "" {
				b.WriteString(prefix)
				b.WriteByte(',')
			}
			writeTraceparent(&b, sc)
			if suffix != "" {
				b.WriteByte(',')
				b.WriteString(suffix)
			}
		}
		b.WriteString("*/")
		b.WriteString(end)
		return b.String()
	}
}

// writeTraceparent writes traceparent='00-<trace id>-<span id>-<flags>';
// its characters need no escaping.
func writeTraceparent(b *strings.Builder, sc trace.SpanContext) {
	var buf [55]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	copy(buf[:], "00-")
	hex.Encode(buf[3:35], tid[:])
	buf[35] = '-'
	hex.Encode(buf[36:52], sid[:])
	copy(buf[52:], "-0")
	buf[54] = '0'
	if sc.IsSampled() {
		buf[54] = '1'
	}
	b.WriteString("traceparent='")
	b.Write(buf[:])
	b.WriteByte('\'')
}

// escapeComment URL-encodes s (spaces as %20) and then escapes the
// quote, as the specification orders for both keys and values.
func escapeComment(s string) string {
	s = strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
	return strings.ReplaceAll(s, "'", `\'`) // QueryEscape already encodes ', kept for the specification's sake
}
