package sqlclass

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestLex(t *testing.T) {
	type tok struct {
		kind tokKind
		text string
	}
	tests := []struct {
		sql  string
		want []tok
	}{
		{`SELECT "Foo ""bar""", a.b`, []tok{{tkWord, "SELECT"}, {tkQIdent, `"Foo ""bar"""`}, {tkPunct, ","}, {tkWord, "a"}, {tkPunct, "."}, {tkWord, "b"}}},
		{`-- c
		x /* a /* nested */ still */ y`, []tok{{tkWord, "x"}, {tkWord, "y"}}},
		{`'it''s' E'a\'b' U&'d\0061' B'101' X'1F' N'n' e'\\'`, []tok{{tkString, `'it''s'`}, {tkString, `E'a\'b'`}, {tkString, `U&'d\0061'`}, {tkString, `B'101'`}, {tkString, `X'1F'`}, {tkString, `N'n'`}, {tkString, `e'\\'`}}},
		{`$$a;b$$ $fn$ $$ DELETE $x$ $fn$ $1 a$b$ $`, []tok{{tkString, `$$a;b$$`}, {tkString, `$fn$ $$ DELETE $x$ $fn$`}, {tkParam, "$1"}, {tkWord, "a$b$"}, {tkOp, "$"}}},
		{`1 1.5 .5 1e10 1.5E-3 0x1F 0o17 0b101 1_000 1..2`, []tok{{tkNumber, "1"}, {tkNumber, "1.5"}, {tkNumber, ".5"}, {tkNumber, "1e10"}, {tkNumber, "1.5E-3"}, {tkNumber, "0x1F"}, {tkNumber, "0o17"}, {tkNumber, "0b101"}, {tkNumber, "1_000"}, {tkNumber, "1"}, {tkPunct, "."}, {tkNumber, ".2"}}},
		{`a::int[] b=-1 c<>d e->>'k' f*/*x*/g h--x`, []tok{{tkWord, "a"}, {tkPunct, "::"}, {tkWord, "int"}, {tkPunct, "["}, {tkPunct, "]"}, {tkWord, "b"}, {tkOp, "="}, {tkOp, "-"}, {tkNumber, "1"}, {tkWord, "c"}, {tkOp, "<>"}, {tkWord, "d"}, {tkWord, "e"}, {tkOp, "->>"}, {tkString, "'k'"}, {tkWord, "f"}, {tkOp, "*"}, {tkWord, "g"}, {tkWord, "h"}}},
		{`U&"d\0061t" "unterminated`, []tok{{tkQIdent, `U&"d\0061t"`}, {tkQIdent, `"unterminated`}}},
		{`'unterminated; DELETE`, []tok{{tkString, `'unterminated; DELETE`}}},
		// Continued strings are one token, in their mode; B'' and X'' have
		// no doubled quote; a -- comment ends at \r; UESCAPE belongs to U&.
		{"E'a'\n'\\'' \n'b'\r\n -- c\r'c' 'd'", []tok{{tkString, "E'a'\n'\\'' \n'b'\r\n -- c\r'c'"}, {tkString, "'d'"}}},
		{"B'1''0' X'f'\n'0'", []tok{{tkString, "B'1'"}, {tkString, "'0'"}, {tkString, "X'f'\n'0'"}}},
		{"a -- c\rb /* x */\n'c' /* x */ 'd'", []tok{{tkWord, "a"}, {tkWord, "b"}, {tkString, "'c'"}, {tkString, "'d'"}}},
		{`U&"a!0061" /* c */ uescape '!' U&'x' UESCAPE E'!' uescape`, []tok{{tkQIdent, `U&"a!0061" /* c */ uescape '!'`}, {tkString, `U&'x' UESCAPE E'!'`}, {tkWord, "uescape"}}},
	}
	for _, tt := range tests {
		toks, _, _ := lex(tt.sql)
		var got []tok
		for _, tk := range toks {
			got = append(got, tok{tk.kind, tk.text})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("lex(%q)\n got %v\nwant %v", tt.sql, got, tt.want)
		}
	}
}

func TestLexNamesAndGroups(t *testing.T) {
	toks, maxParam, doubt := lex(`SELECT "A""b", Foo FROM (x[1]) WHERE $12 = $3; (`)
	if maxParam != 12 || doubt != "" {
		t.Errorf("maxParam, doubt = %d, %q; want 12, none", maxParam, doubt)
	}
	if toks[1].name != `A"b` || toks[3].name != "foo" || toks[0].word == nil || toks[3].word != nil {
		t.Errorf("names: %q %q", toks[1].name, toks[3].name)
	}
	// ( at 5 closes at 10, [ at 7 at 9; the ( after ";" is closed by the end.
	if toks[5].end != 10 || toks[7].end != 9 || toks[len(toks)-1].end != int32(len(toks)) {
		t.Errorf("ends: %d %d %d", toks[5].end, toks[7].end, toks[len(toks)-1].end)
	}
	for _, sql := range []string{"SELECT 123abc", "SELECT 0x1F$$", "SELECT 1e", "SELECT 1_"} {
		if _, _, doubt := lex(sql); doubt != "malformed number" {
			t.Errorf("lex(%q): doubt %q, want malformed number", sql, doubt)
		}
	}
}

func TestWordsFitLookup(t *testing.T) {
	for n, w := range words {
		if len(n) > maxWordLen || n != strings.ToLower(n) || w.name != n {
			t.Errorf("word %q: too long or not lower case", n)
		}
	}
}

// want is what a classification must say; nil funcs and empty reason and
// summary are not checked.
type want struct {
	kind                                               Kind
	op                                                 string
	reads, writes                                      []string
	readOnly, cacheable, writesUnknown, multi, session bool
	reason                                             string
	summary                                            string
	funcs                                              []string
}

func l(names ...string) []string { return names }

// classifyTests also seed FuzzClassify.
var classifyTests = []struct {
	sql string
	want
}{
	// reads
	{"SELECT id FROM audit_log WHERE id = 1", want{kind: KindSelect, op: "SELECT", reads: l("audit_log"), readOnly: true, cacheable: true, summary: "SELECT audit_log"}},
	{"select * from Users u join orders o on o.user_id = u.id", want{kind: KindSelect, op: "SELECT", reads: l("users", "orders"), readOnly: true, cacheable: true, summary: "SELECT users orders"}},
	{"SELECT * FROM a LEFT OUTER JOIN b USING (id) NATURAL FULL JOIN c CROSS JOIN d, e AS x (p, q) INNER JOIN f ON true", want{kind: KindSelect, op: "SELECT", reads: l("a", "b", "c", "d", "e", "f"), readOnly: true, cacheable: true}},
	{"SELECT * FROM ONLY a, LATERAL (SELECT * FROM b WHERE b.id = a.id) s, c", want{kind: KindSelect, op: "SELECT", reads: l("a", "b", "c"), readOnly: true, cacheable: true}},
	{"SELECT * FROM (a JOIN b ON a.x = b.x) JOIN (SELECT * FROM (SELECT 1 FROM c) z) y ON true", want{kind: KindSelect, op: "SELECT", reads: l("a", "b", "c"), readOnly: true, cacheable: true}},
	{"SELECT (SELECT max(id) FROM a), EXISTS (SELECT 1 FROM b) FROM c WHERE x IN (SELECT x FROM d) AND y = ANY (ARRAY(SELECT y FROM e))", want{kind: KindSelect, op: "SELECT", reads: l("a", "b", "c", "d", "e"), readOnly: true, cacheable: true, funcs: l("max")}},
	{"SELECT public.audit_log.id FROM public.audit_log, \"My Schema\".\"T\", \"a.b\".c", want{kind: KindSelect, op: "SELECT", reads: l("public.audit_log", "My Schema.T", "a.b.c"), readOnly: true, cacheable: true}},
	{"SELECT * FROM generate_series(1, 10) WITH ORDINALITY AS g(n, i), unnest($1::int[]) u(x)", want{kind: KindSelect, op: "SELECT", readOnly: true, cacheable: true, funcs: l("generate_series", "unnest"), summary: "SELECT"}},
	{"SELECT * FROM t TABLESAMPLE bernoulli (10) REPEATABLE (42)", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true, funcs: []string{}}},
	{"SELECT extract(year FROM ts), substring(s FROM 2 FOR 3), trim(both 'x' from s), a IS DISTINCT FROM b, c IS NOT DISTINCT FROM d FROM t", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true, funcs: l("extract", "substring", "trim")}},
	{"SELECT count(*) FILTER (WHERE x > 1) OVER (PARTITION BY y ORDER BY z ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), percentile_cont(0.5) WITHIN GROUP (ORDER BY v) FROM t GROUP BY ROLLUP (a, b)", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true, funcs: l("count", "percentile_cont", "rollup")}},
	{"SELECT CAST(x AS numeric(10, 2)), y::character varying(20), z::timestamp(3) with time zone, '1'::int, $1::timestamptz FROM t", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true, funcs: []string{}}},
	{"TABLE audit_preset", want{kind: KindSelect, op: "TABLE", reads: l("audit_preset"), readOnly: true, cacheable: true, summary: "TABLE audit_preset"}},
	{"VALUES (1, 'a'), (2, 'b')", want{kind: KindSelect, op: "VALUES", readOnly: true, cacheable: true, summary: "VALUES"}},
	{"(SELECT a FROM t) UNION ALL (SELECT a FROM u) EXCEPT TABLE v", want{kind: KindSelect, op: "SELECT", reads: l("t", "u", "v"), readOnly: true, cacheable: true}},
	{"SELECT jsonb_build_object('a', lower(x)), coalesce(y, 0), date_trunc('day', ts) FROM t ORDER BY 1 LIMIT 10 OFFSET 5", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true, funcs: l("jsonb_build_object", "lower", "coalesce", "date_trunc")}},
	{`SELECT * FROM "users" WHERE "users"."id" = $1 AND "users"."deleted_at" IS NULL ORDER BY "users"."id" LIMIT $2`, want{kind: KindSelect, op: "SELECT", reads: l("users"), readOnly: true, cacheable: true, summary: "SELECT users"}},
	{`INSERT INTO "users" ("name","created_at") VALUES ($1,$2) RETURNING "id"`, want{kind: KindInsert, op: "INSERT", writes: l("users"), summary: "INSERT users"}},
	// CTEs
	{"WITH recent AS (SELECT * FROM audit_log) SELECT * FROM recent JOIN users ON true", want{kind: KindSelect, op: "SELECT", reads: l("audit_log", "users"), readOnly: true, cacheable: true, summary: "SELECT audit_log users"}},
	{"WITH t AS (SELECT * FROM t) SELECT * FROM t", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true}},
	{"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", want{kind: KindSelect, op: "SELECT", readOnly: true, cacheable: true}},
	{"WITH a AS MATERIALIZED (SELECT 1), b AS NOT MATERIALIZED (SELECT * FROM a, x) SELECT * FROM b, a", want{kind: KindSelect, op: "SELECT", reads: l("x"), readOnly: true, cacheable: true}},
	{"SELECT * FROM x, (WITH x AS (SELECT 1) SELECT * FROM x) s, (SELECT * FROM x) z", want{kind: KindSelect, op: "SELECT", reads: l("x"), readOnly: true, cacheable: true}},
	{"(WITH c AS (SELECT 1) SELECT * FROM c) UNION SELECT * FROM c", want{kind: KindSelect, op: "SELECT", reads: l("c"), readOnly: true, cacheable: true}},
	{`WITH "Q" AS (SELECT 1) SELECT * FROM "Q", q`, want{kind: KindSelect, op: "SELECT", reads: l("q"), readOnly: true, cacheable: true}},
	{"WITH d AS (DELETE FROM t WHERE old RETURNING *) SELECT count(*) FROM d", want{kind: KindSelect, op: "SELECT", writes: l("t"), reason: "data-modifying WITH"}},
	{"WITH d AS (DELETE FROM t RETURNING *) INSERT INTO archive SELECT * FROM d", want{kind: KindInsert, op: "INSERT", writes: l("t", "archive"), reason: "not a read"}},
	{"WITH u AS (UPDATE a SET x = 1 RETURNING id) , i AS (INSERT INTO b SELECT id FROM u RETURNING id) SELECT * FROM i", want{kind: KindSelect, op: "SELECT", writes: l("a", "b"), reason: "data-modifying WITH"}},
	// writes
	{"INSERT INTO audit_log (id, msg) VALUES ($1, $2)", want{kind: KindInsert, op: "INSERT", writes: l("audit_log"), reason: "not a read", summary: "INSERT audit_log"}},
	{"INSERT INTO shipping_details (a) SELECT a FROM orders", want{kind: KindInsert, op: "INSERT", reads: l("orders"), writes: l("shipping_details"), summary: "INSERT shipping_details SELECT orders"}},
	{"INSERT INTO t AS x (a, b) VALUES (1, 2) ON CONFLICT (a) DO UPDATE SET b = excluded.b, c = (SELECT max(c) FROM u) WHERE x.a > 0 RETURNING *", want{kind: KindInsert, op: "INSERT", reads: l("u"), writes: l("t")}},
	{"INSERT INTO t SELECT * FROM s ON CONFLICT ON CONSTRAINT t_pkey DO UPDATE SET a = 1, b = 2", want{kind: KindInsert, op: "INSERT", reads: l("s"), writes: l("t")}},
	{"INSERT INTO t DEFAULT VALUES", want{kind: KindInsert, op: "INSERT", writes: l("t")}},
	{"UPDATE ONLY accounts a SET balance = a.balance - o.amount FROM orders o, customers c WHERE o.id = a.id", want{kind: KindUpdate, op: "UPDATE", reads: l("orders", "customers"), writes: l("accounts"), summary: "UPDATE accounts orders customers"}},
	{"DELETE FROM ONLY s.t AS x USING u, v WHERE x.id = u.id", want{kind: KindDelete, op: "DELETE", reads: l("u", "v"), writes: l("s.t")}},
	{"DELETE FROM t WHERE id IN (SELECT id FROM u)", want{kind: KindDelete, op: "DELETE", reads: l("u"), writes: l("t")}},
	{"MERGE INTO stock s USING (SELECT * FROM delivery) d ON s.id = d.id WHEN MATCHED THEN UPDATE SET qty = s.qty + d.qty WHEN NOT MATCHED THEN INSERT (id, qty) VALUES (d.id, d.qty)", want{kind: KindMerge, op: "MERGE", reads: l("delivery"), writes: l("stock"), funcs: []string{}}},
	{"MERGE INTO stock USING delivery ON true WHEN MATCHED THEN DELETE", want{kind: KindMerge, op: "MERGE", reads: l("delivery"), writes: l("stock")}},
	{"TRUNCATE TABLE ONLY a, b *", want{kind: KindTruncate, op: "TRUNCATE", writes: l("a", "b"), summary: "TRUNCATE a b"}},
	{"TRUNCATE a CASCADE", want{kind: KindTruncate, op: "TRUNCATE", writes: l("a"), writesUnknown: true}},
	{"COPY audit_log (id, msg) FROM STDIN WITH (FORMAT csv)", want{kind: KindCopy, op: "COPY", writes: l("audit_log")}},
	{"COPY audit_log TO STDOUT", want{kind: KindCopy, op: "COPY", reads: l("audit_log")}},
	{"COPY (SELECT * FROM audit_log WHERE x) TO STDOUT", want{kind: KindCopy, op: "COPY", reads: l("audit_log")}},
	{"SELECT * INTO TEMP new_t FROM t", want{kind: KindSelect, op: "SELECT", reads: l("t"), writes: l("new_t"), reason: "SELECT INTO"}},
	{"SELECT * FROM t WHERE id = 1 FOR UPDATE", want{kind: KindSelect, op: "SELECT", reads: l("t"), reason: "FOR UPDATE"}},
	{"SELECT * FROM t FOR NO KEY UPDATE OF t SKIP LOCKED", want{kind: KindSelect, op: "SELECT", reads: l("t"), reason: "FOR NO KEY UPDATE"}},
	{"SELECT * FROM t FOR KEY SHARE", want{kind: KindSelect, op: "SELECT", reads: l("t"), reason: "FOR KEY SHARE"}},
	// DDL
	{"CREATE TABLE IF NOT EXISTS public.audit_log (id bigint PRIMARY KEY, ts timestamptz DEFAULT now(), u int REFERENCES users(id))", want{kind: KindDDL, op: "CREATE TABLE", writes: l("public.audit_log"), summary: "CREATE TABLE public.audit_log"}},
	{"CREATE UNLOGGED TABLE t2 AS SELECT * FROM t1", want{kind: KindDDL, op: "CREATE TABLE", reads: l("t1"), writes: l("t2"), summary: "CREATE TABLE t2 SELECT t1"}},
	{"CREATE TABLE audit_log_2024 PARTITION OF audit_log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')", want{kind: KindDDL, op: "CREATE TABLE", writes: l("audit_log_2024", "audit_log")}},
	{"CREATE OR REPLACE VIEW v AS SELECT * FROM t", want{kind: KindDDL, op: "CREATE VIEW", writes: l("v")}},
	{"CREATE MATERIALIZED VIEW mv AS SELECT * FROM t WITH NO DATA", want{kind: KindDDL, op: "CREATE MATERIALIZED VIEW", reads: l("t"), writes: l("mv")}},
	{"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY audit_log USING btree (lower(x))", want{kind: KindDDL, op: "CREATE INDEX", writes: l("audit_log")}},
	{"ALTER TABLE IF EXISTS ONLY audit_log ATTACH PARTITION p2024 FOR VALUES IN (1)", want{kind: KindDDL, op: "ALTER TABLE", writes: l("audit_log", "p2024")}},
	{"ALTER TABLE a RENAME TO b", want{kind: KindDDL, op: "ALTER TABLE", writes: l("a", "b")}},
	{"ALTER TABLE a RENAME COLUMN x TO y", want{kind: KindDDL, op: "ALTER TABLE", writes: l("a")}},
	{"DROP TABLE IF EXISTS a, s.b RESTRICT", want{kind: KindDDL, op: "DROP TABLE", writes: l("a", "s.b"), summary: "DROP TABLE a s.b"}},
	{"DROP TABLE a CASCADE", want{kind: KindDDL, op: "DROP TABLE", writes: l("a"), writesUnknown: true}},
	{"DROP INDEX i", want{kind: KindDDL, op: "DROP INDEX"}},
	{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ DELETE FROM t; SELECT 1 $$", want{kind: KindDDL, op: "CREATE FUNCTION"}},
	{"CREATE OR REPLACE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", want{kind: KindDDL, op: "CREATE FUNCTION", writesUnknown: true}},
	{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END", want{kind: KindDDL, op: "CREATE FUNCTION"}},
	{"DROP SCHEMA s", want{kind: KindDDL, op: "DROP SCHEMA", writesUnknown: true}},
	{"CREATE POLICY p ON accounts USING (owner = current_user)", want{kind: KindDDL, op: "CREATE POLICY", writes: l("accounts")}},
	{"GRANT SELECT ON t TO bob", want{kind: KindDDL, op: "GRANT", writesUnknown: true}},
	{"REFRESH MATERIALIZED VIEW CONCURRENTLY mv", want{kind: KindDDL, op: "REFRESH MATERIALIZED VIEW", writes: l("mv")}},
	{"COMMENT ON TABLE t IS 'x'", want{kind: KindDDL, op: "COMMENT"}},
	// other statements
	{"CALL archive_old($1)", want{kind: KindCall, op: "CALL", writesUnknown: true, funcs: l("archive_old")}},
	{"DO $$ BEGIN DELETE FROM t; END $$", want{kind: KindDo, op: "DO", writesUnknown: true}},
	{"BEGIN", want{kind: KindTx, op: "BEGIN", summary: "BEGIN"}},
	{"start transaction isolation level serializable", want{kind: KindTx, op: "START TRANSACTION"}},
	{"COMMIT", want{kind: KindTx, op: "COMMIT"}},
	{"SET search_path TO audit, public", want{kind: KindSession, op: "SET", session: true, summary: "SET"}},
	{"SET ROLE admin", want{kind: KindSession, op: "SET", session: true}},
	{"SET SESSION AUTHORIZATION bob", want{kind: KindSession, op: "SET", session: true}},
	{"RESET ALL", want{kind: KindSession, op: "RESET", session: true}},
	{"DISCARD ALL", want{kind: KindSession, op: "DISCARD", session: true}},
	{"SELECT set_config('app.user', $1, false)", want{kind: KindSelect, op: "SELECT", session: true, reason: "changes session state (set_config)"}},
	{"SELECT set_config('app.user', 'x', $1)", want{kind: KindSelect, op: "SELECT", session: true, reason: "changes session state (set_config)"}},
	{"SELECT pg_catalog.set_config('lock_timeout', $1, true)", want{kind: KindSelect, op: "SELECT", reason: "calls set_config(), which has side effects"}},
	{"SHOW search_path", want{kind: KindUtility, op: "SHOW", readOnly: true, reason: "utility statement"}},
	{"EXPLAIN SELECT * FROM t", want{kind: KindUtility, op: "EXPLAIN", reads: l("t"), readOnly: true, reason: "EXPLAIN", summary: "EXPLAIN SELECT t"}},
	{"EXPLAIN DELETE FROM t", want{kind: KindUtility, op: "EXPLAIN", readOnly: true, reason: "EXPLAIN"}},
	{"EXPLAIN ANALYZE DELETE FROM t", want{kind: KindDelete, op: "EXPLAIN", writes: l("t"), reason: "EXPLAIN", summary: "EXPLAIN DELETE t"}},
	{"EXPLAIN (ANALYZE, BUFFERS) INSERT INTO t VALUES (1)", want{kind: KindInsert, op: "EXPLAIN", writes: l("t")}},
	{"EXPLAIN ANALYZE VERBOSE SELECT * FROM t", want{kind: KindUtility, op: "EXPLAIN", reads: l("t"), readOnly: true}},
	{"VACUUM ANALYZE audit_log", want{kind: KindUtility, op: "VACUUM"}},
	{"LOCK TABLE t IN EXCLUSIVE MODE", want{kind: KindUtility, op: "LOCK"}},
	{"NOTIFY audit, 'x'", want{kind: KindUtility, op: "NOTIFY"}},
	{"FROB the database", want{kind: KindUnknown, op: "FROB", writesUnknown: true}},
	{"42", want{kind: KindUnknown, writesUnknown: true}},
	// functions
	{"SELECT now(), id FROM t", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, reason: "volatile function now()", funcs: l("now")}},
	{"SELECT CURRENT_TIMESTAMP, current_date", want{kind: KindSelect, op: "SELECT", readOnly: true, reason: "volatile function current_timestamp", funcs: []string{}}},
	{"SELECT * FROM t WHERE owner = current_user", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, reason: "volatile function current_user"}},
	{"SELECT pg_catalog.random()", want{kind: KindSelect, op: "SELECT", readOnly: true, reason: "volatile function random()", funcs: l("pg_catalog.random")}},
	{"SELECT count(*) FROM t TABLESAMPLE BERNOULLI (10)", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, reason: "volatile function TABLESAMPLE", funcs: l("count")}},
	{"SELECT count(*) FROM t TABLESAMPLE BERNOULLI (10) REPEATABLE (7)", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true, funcs: l("count")}},
	{"SELECT gen_random_uuid()", want{kind: KindSelect, op: "SELECT", readOnly: true, reason: "volatile function gen_random_uuid()"}},
	{"SELECT nextval('audit_log_id_seq')", want{kind: KindSelect, op: "SELECT", writesUnknown: true, reason: "calls nextval(), which writes a sequence"}},
	{"SELECT archive_old(30)", want{kind: KindSelect, op: "SELECT", writesUnknown: true, reason: "calls function archive_old, which may write", funcs: l("archive_old")}},
	{"SELECT count(*) FROM t WHERE util.is_active(t.x)", want{kind: KindSelect, op: "SELECT", reads: l("t"), writesUnknown: true, reason: "calls function util.is_active, which may write", funcs: l("count", "util.is_active")}},
	{"SELECT \"now\"(), \"Now\"()", want{kind: KindSelect, op: "SELECT", writesUnknown: true, reason: "calls function Now, which may write", funcs: l("now", "Now")}},
	{"SELECT pg_advisory_lock(1)", want{kind: KindSelect, op: "SELECT", reason: "calls pg_advisory_lock(), which has side effects"}},
	{"SELECT pg_size_pretty(pg_total_relation_size('t'))", want{kind: KindSelect, op: "SELECT", readOnly: true, reason: "volatile function pg_size_pretty()"}},
	{"SELECT * FROM pg_catalog.pg_class", want{kind: KindSelect, op: "SELECT", reads: l("pg_catalog.pg_class"), readOnly: true, reason: "system catalog pg_catalog.pg_class"}},
	{"SELECT * FROM information_schema.tables", want{kind: KindSelect, op: "SELECT", reads: l("information_schema.tables"), readOnly: true, reason: "system catalog information_schema.tables"}},
	{"SELECT * FROM pg_stat_statements", want{kind: KindSelect, op: "SELECT", reads: l("pg_stat_statements"), readOnly: true, reason: "system catalog pg_stat_statements"}},
	// lexical traps
	{"SELECT 1 /* ; DELETE FROM t */", want{kind: KindSelect, op: "SELECT", readOnly: true, cacheable: true}},
	{"SELECT 1 -- ; DELETE FROM t", want{kind: KindSelect, op: "SELECT", readOnly: true, cacheable: true}},
	{"SELECT 1 /* /* ; */ DELETE FROM t */ FROM a", want{kind: KindSelect, op: "SELECT", reads: l("a"), readOnly: true, cacheable: true}},
	{"SELECT ';DELETE FROM t', '--', E'\\'; DELETE FROM u' FROM a", want{kind: KindSelect, op: "SELECT", reads: l("a"), readOnly: true, cacheable: true}},
	{"SELECT $fn$ DROP TABLE x; $$ $fn$, $$;$$ FROM a", want{kind: KindSelect, op: "SELECT", reads: l("a"), readOnly: true, cacheable: true}},
	{"SELECT \"DELETE FROM t; x\" FROM a", want{kind: KindSelect, op: "SELECT", reads: l("a"), readOnly: true, cacheable: true}},
	{"SELECT 123abc FROM t", want{kind: KindUnknown, op: "SELECT", reads: l("t"), writesUnknown: true, reason: "malformed number"}},
	// several statements
	{"SELECT 1;", want{kind: KindSelect, op: "SELECT", readOnly: true, cacheable: true}},
	{";; SELECT 1 ;;", want{kind: KindSelect, op: "SELECT", readOnly: true, cacheable: true}},
	{"SELECT * FROM a; SELECT * FROM b", want{kind: KindSelect, op: "SELECT", reads: l("a", "b"), readOnly: true, multi: true, reason: "multiple statements", summary: "SELECT a; SELECT b"}},
	{"BEGIN; INSERT INTO t VALUES (1); UPDATE u SET x = 1; COMMIT", want{kind: KindInsert, op: "INSERT", writes: l("t", "u"), multi: true, reason: "multiple statements"}},
	{"SELECT 1; DELETE FROM t", want{kind: KindDelete, op: "DELETE", writes: l("t"), multi: true}},
	{"SET x = 1; SELECT 1", want{kind: KindSession, op: "SET", session: true, multi: true}},
	{"", want{kind: KindUnknown, reason: "empty statement"}},
	{" -- nothing\n/* at all */ ;", want{kind: KindUnknown, reason: "empty statement"}},
}

func TestClassify(t *testing.T) {
	for _, tt := range classifyTests {
		checkClassify(t, tt.sql, tt.want)
	}
}

// checkClassify fails unless Classify(sql) is as w says; the operation,
// summary and functions are checked where w gives them.
func checkClassify(t *testing.T, sql string, w want) {
	t.Helper()
	st := Classify(sql)
	var errs []string
	check := func(name string, got, want any) {
		if fmt.Sprint(got) != fmt.Sprint(want) {
			errs = append(errs, fmt.Sprintf("%s = %v, want %v", name, got, want))
		}
	}
	check("Kind", st.Kind, w.kind)
	if w.op != "" {
		check("Operation", st.Operation, w.op)
	}
	check("Reads", st.Reads, w.reads)
	check("Writes", st.Writes, w.writes)
	check("ReadOnly", st.ReadOnly, w.readOnly)
	check("Cacheable", st.Cacheable, w.cacheable)
	check("WritesUnknown", st.WritesUnknown, w.writesUnknown)
	check("MultiStatement", st.MultiStatement, w.multi)
	check("ChangesSession", st.ChangesSession, w.session)
	if w.reason != "" {
		check("Uncacheable", st.Uncacheable, w.reason)
	}
	if w.summary != "" {
		check("Summary", st.Summary, w.summary)
	}
	if w.funcs != nil {
		check("Functions", st.Functions, w.funcs)
	}
	if st.Cacheable == (st.Uncacheable != "") {
		errs = append(errs, fmt.Sprintf("Cacheable %v with Uncacheable %q", st.Cacheable, st.Uncacheable))
	}
	if len(errs) > 0 {
		t.Errorf("Classify(%q):\n\t%s", sql, strings.Join(errs, "\n\t"))
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct{ sql, want string }{
		{"select ID, Name from Users where id = 1 and name = 'x'", "SELECT id, name FROM users WHERE id = $1 AND name = $2"},
		{"SELECT * FROM t WHERE a = $2 AND b = 'x' AND c = -5 AND d - 5 > 0", "SELECT * FROM t WHERE a = $2 AND b = $3 AND c = $4 AND d - $5 > $6"},
		{"SELECT * FROM t WHERE id IN (1, 2, 3) AND x NOT IN ('a'::text, -1, $1)", "SELECT * FROM t WHERE id IN ($2 /*, ... */) AND x NOT IN ($3 /*, ... */)"},
		{"SELECT * FROM t WHERE id IN ($1, $2) AND y = ANY(ARRAY[1, 2])", "SELECT * FROM t WHERE id IN ($1 /*, ... */) AND y = ANY (ARRAY[$3 /*, ... */])"},
		{"SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE v > 1)", "SELECT * FROM t WHERE id IN (SELECT id FROM u WHERE v > $1)"},
		{"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y'), (3, 'z') RETURNING id", "INSERT INTO t(a, b) VALUES ($1, $2) /*, ... */ RETURNING id"},
		{"SELECT * FROM (VALUES (1), (2)) AS v(n)", "SELECT * FROM (VALUES ($1) /*, ... */) AS v(n)"},
		{"SELECT a.b, c::int, \"Quoted\"\"Id\", count( * ) FROM s . t", "SELECT a.b, c::int, \"Quoted\"\"Id\", count(*) FROM s.t"},
		{"SELECT E'x', U&'y', B'1', X'F', $$z$$, $t$w$t$, 1.5e3, 0x1F, .5 ; ", "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9"},
		{"select true, false, null, NULL", "SELECT TRUE, FALSE, NULL, NULL"},
		{"BEGIN; select 1 ; COMMIT;", "BEGIN; SELECT $1; COMMIT"},
		{"show search_path", "SHOW search_path"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Classify(tt.sql).Fingerprint; got != tt.want {
			t.Errorf("Fingerprint(%q)\n got %q\nwant %q", tt.sql, got, tt.want)
		}
	}
}

func TestFingerprintEquality(t *testing.T) {
	same := [][]string{
		{
			"SELECT id FROM audit_log WHERE org = 1 AND kind IN (1, 2) LIMIT 10",
			"select ID\n\tfrom AUDIT_LOG -- by org\n where org=42 and kind in (3) limit 20",
			"/* lead */ SELECT id FROM audit_log WHERE org = 'x' AND kind IN ('a','b','c',-4) LIMIT 0",
			"SELECT id FROM audit_log WHERE org = -7 AND kind IN (1, 2) LIMIT 10;",
		},
		{
			"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
			"insert into T(A,B) values (3,E'z'), (4, $$w$$), (5, 'v')",
		},
		{
			"SELECT count(*) FROM t WHERE ts > now() - interval '1 day'",
			"SELECT COUNT (*) FROM t WHERE ts>NOW()-INTERVAL '2 days'",
		},
	}
	for _, group := range same {
		want := Classify(group[0])
		for _, sql := range group[1:] {
			got := Classify(sql)
			if got.Fingerprint != want.Fingerprint || got.FingerprintID != want.FingerprintID {
				t.Errorf("fingerprints differ:\n%q -> %q\n%q -> %q", group[0], want.Fingerprint, sql, got.Fingerprint)
			}
		}
	}
	differ := [][2]string{
		{"SELECT a FROM t", "SELECT b FROM t"},
		{"SELECT a FROM t", `SELECT "A" FROM t`},
		{"SELECT a FROM t WHERE x = 1", "SELECT a FROM t WHERE x = $2"},
		{"SELECT a - 1 FROM t", "SELECT a, -1 FROM t"},
	}
	for _, d := range differ {
		if a, b := Classify(d[0]), Classify(d[1]); a.FingerprintID == b.FingerprintID {
			t.Errorf("same fingerprint %q for %q and %q", a.Fingerprint, d[0], d[1])
		}
	}
	if got, want := Classify("SELECT 1").FingerprintID, fnv64a("SELECT $1"); got != want {
		t.Errorf("FingerprintID = %d, want FNV-1a of the fingerprint %d", got, want)
	}
}

func TestSummaryTruncated(t *testing.T) {
	var b strings.Builder
	b.WriteString("SELECT * FROM ")
	for i := range 60 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "table_%02d", i)
	}
	s := Classify(b.String()).Summary
	if len(s) > maxSummary || !strings.HasPrefix(s, "SELECT table_00 table_01") || strings.HasSuffix(s, "_") {
		t.Errorf("Summary = %q (%d bytes)", s, len(s))
	}
	if got := truncateSummary(strings.Repeat("é", 200)); len(got) > maxSummary || !strings.HasPrefix(strings.Repeat("é", 200), got) || len(got)%2 != 0 {
		t.Errorf("truncateSummary cut a rune: %d bytes", len(got))
	}
}

func TestClassifyDeepNesting(t *testing.T) {
	sql := "SELECT " + strings.Repeat("(", 5000) + "1" + strings.Repeat(")", 5000)
	st := Classify(sql)
	if st.ReadOnly || !st.WritesUnknown || st.Uncacheable != "nested too deeply" {
		t.Errorf("deep nesting: ReadOnly %v WritesUnknown %v Uncacheable %q", st.ReadOnly, st.WritesUnknown, st.Uncacheable)
	}
	many := strings.Repeat("INSERT INTO t VALUES (1);", 20000)
	if st := Classify(many); len(st.Writes) != 1 || !st.MultiStatement || len(st.Summary) > maxSummary {
		t.Errorf("many statements: Writes %v Summary %d bytes", st.Writes, len(st.Summary))
	}
}

func TestClassifier(t *testing.T) {
	c := NewMemo(4)
	a := c.Classify("SELECT 1")
	if b := c.Classify("SELECT 1"); a != b {
		t.Error("a hit returned another Statement")
	}
	// Two more texts fill the current generation (max/2 = 2) and retire it.
	c.Classify("SELECT 2")
	c.Classify("SELECT 3")
	if _, ok := c.old["SELECT 1"]; !ok {
		t.Fatal(`"SELECT 1" not in the old generation`)
	}
	if b := c.Classify("SELECT 1"); a != b {
		t.Error("a hit in the old generation returned another Statement")
	}
	if _, ok := c.cur["SELECT 1"]; !ok {
		t.Error("a hit in the old generation was not promoted")
	}
	for i := range 100 {
		c.Classify(fmt.Sprintf("SELECT %d", i))
		if n := len(c.cur) + len(c.old); n > 4 {
			t.Fatalf("%d texts remembered, max 4", n)
		}
	}
	long := "SELECT '" + strings.Repeat("x", memoMaxText) + "'"
	if st := c.Classify(long); st.Kind != KindSelect {
		t.Errorf("long text: Kind %v", st.Kind)
	}
	if _, ok := c.cur[long]; ok {
		t.Error("a text over memoMaxText was remembered")
	}
}

func TestClassifierHitAllocs(t *testing.T) {
	c := NewMemo(4096)
	sql := "SELECT id, payload FROM audit_log WHERE org_id = $1 AND created_at >= $2 ORDER BY created_at DESC LIMIT 100"
	c.Classify(sql)
	if n := testing.AllocsPerRun(100, func() { c.Classify(sql) }); n != 0 {
		t.Errorf("a hit allocates %v times", n)
	}
}

func TestClassifierConcurrent(t *testing.T) {
	c := NewMemo(64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				sql := fmt.Sprintf("SELECT * FROM t%d WHERE x = %d", (g*7+i)%100, i%3)
				if st := c.Classify(sql); len(st.Reads) != 1 {
					t.Errorf("%q: Reads %v", sql, st.Reads)
					return
				}
			}
		}()
	}
	wg.Wait()
}

var benchSQL = `SELECT a.id, a.action, a.payload, u.email FROM audit_log a
	JOIN users u ON u.id = a.user_id
	WHERE a.org_id = $1 AND a.created_at >= now() - interval '7 days' AND a.kind IN (1, 2, 3)
	ORDER BY a.created_at DESC LIMIT 50`

func BenchmarkClassify(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchSQL)))
	for b.Loop() {
		Classify(benchSQL)
	}
}

func BenchmarkClassifierHit(b *testing.B) {
	c := NewMemo(4096)
	c.Classify(benchSQL)
	b.ReportAllocs()
	for b.Loop() {
		c.Classify(benchSQL)
	}
}

func BenchmarkClassifierHitParallel(b *testing.B) {
	c := NewMemo(4096)
	c.Classify(benchSQL)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Classify(benchSQL)
		}
	})
}
