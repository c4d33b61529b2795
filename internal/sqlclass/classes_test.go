package sqlclass

import (
	"fmt"
	"strings"
	"testing"
)

// classTests are the lexical and naming classes the server reads otherwise
// than a naive lexer would; each also seeds FuzzClassify and
// FuzzAgainstParser. They use only Classify.
var classTests = []struct {
	sql string
	want
}{
	// A -- comment ends at \r as at \n (scan.l: newline is [\n\r]).
	{"-- note\rUPDATE cls SET v = 1 WHERE k = 1", want{kind: KindUpdate, op: "UPDATE", writes: l("cls")}},
	{"-- note\rSET ROLE x", want{kind: KindSession, op: "SET", session: true}},
	{"SELECT 1 -- c\r; DELETE FROM t", want{kind: KindDelete, op: "DELETE", writes: l("t"), multi: true}},
	{"SELECT *\r\nFROM t -- c\r\nWHERE x = 1\r\n", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true}},
	{"SELECT E'a'\r'\\'' ; UPDATE cls SET v = 1 WHERE k = 1 --'", want{kind: KindUpdate, op: "UPDATE", writes: l("cls"), multi: true}},
	// A string continued after whitespace with a newline keeps its mode.
	{"SELECT E'a'\n'\\'' ; UPDATE cls SET v = 1 WHERE k = 1 --'", want{kind: KindUpdate, op: "UPDATE", writes: l("cls"), multi: true}},
	{"SELECT E'a' -- c\n  '\\'; DELETE FROM t; --' FROM u", want{kind: KindSelect, op: "SELECT", reads: l("u"), readOnly: true, cacheable: true}},
	{"SELECT E'a'\n\n-- c\r\t'\\'; DELETE FROM t; --' FROM u", want{kind: KindSelect, op: "SELECT", reads: l("u"), readOnly: true, cacheable: true}},
	{"SELECT E'a' /* c */\n, '\\'' ; DELETE FROM t --'", want{kind: KindUnknown, op: "SELECT", writesUnknown: true}}, // no continuation; but see standard_conforming_strings below
	{"SELECT U&'a'\n'\\'; DELETE FROM t; --'", want{kind: KindDelete, op: "DELETE", writes: l("t"), multi: true}},
	// Identifiers are truncated to 63 bytes, at a character boundary.
	{"SELECT * FROM " + strings.Repeat("a", 66) + " JOIN s" + strings.Repeat("b", 70) + ".\"" + strings.Repeat("C", 64) + "\" ON true",
		want{kind: KindSelect, op: "SELECT", reads: l(strings.Repeat("a", 63), "s"+strings.Repeat("b", 62)+"."+strings.Repeat("C", 63)), readOnly: true, cacheable: true}},
	{"UPDATE \"" + strings.Repeat("a", 62) + "é\" SET x = " + strings.Repeat("f", 64) + "(1)",
		want{kind: KindUpdate, op: "UPDATE", writes: l(strings.Repeat("a", 62)), writesUnknown: true, funcs: l(strings.Repeat("f", 63))}},
	// Non-reserved keywords name relations and aliases.
	{"SELECT * FROM transaction", want{kind: KindSelect, op: "SELECT", reads: l("transaction"), readOnly: true, cacheable: true}},
	{"SELECT * FROM partition p JOIN range r ON true, filter, schema AS values, sequence set, view", want{kind: KindSelect, op: "SELECT", reads: l("partition", "range", "filter", "schema", "sequence", "view"), readOnly: true, cacheable: true}},
	{"SELECT * FROM (values JOIN database ON true) x, update", want{kind: KindSelect, op: "SELECT", reads: l("values", "database", "update"), readOnly: true, cacheable: true}},
	{"UPDATE schema SET v = 1", want{kind: KindUpdate, op: "UPDATE", writes: l("schema")}},
	{"UPDATE schema AS set SET v = 1", want{kind: KindUpdate, op: "UPDATE", writes: l("schema")}},
	{"INSERT INTO sequence VALUES (1)", want{kind: KindInsert, op: "INSERT", writes: l("sequence")}},
	{"DELETE FROM view USING transaction WHERE true", want{kind: KindDelete, op: "DELETE", reads: l("transaction"), writes: l("view")}},
	{"MERGE INTO range r USING partition p ON true WHEN MATCHED THEN DELETE", want{kind: KindMerge, op: "MERGE", reads: l("partition"), writes: l("range")}},
	{"TABLE database", want{kind: KindSelect, op: "TABLE", reads: l("database"), readOnly: true, cacheable: true}},
	{"COPY filter FROM STDIN", want{kind: KindCopy, op: "COPY", writes: l("filter")}},
	{"TRUNCATE database", want{kind: KindTruncate, op: "TRUNCATE", writes: l("database")}},
	{"SELECT * INTO temp FROM t", want{kind: KindSelect, op: "SELECT", reads: l("t"), writes: l("temp")}},
	{"WITH transaction AS (SELECT 1) SELECT * FROM transaction", want{kind: KindSelect, op: "SELECT", readOnly: true, cacheable: true}},
	// Unicode escapes in identifiers, with UESCAPE.
	{`SELECT * FROM U&"d\0061t", U&"e!0061t" UESCAPE '!', U&"f\+000061t"`, want{kind: KindSelect, op: "SELECT", reads: l("dat", "eat", "fat"), readOnly: true, cacheable: true}},
	{`SELECT * FROM U&"d\00"`, want{kind: KindUnknown, writesUnknown: true, reason: "invalid Unicode escape"}},
	{`SELECT U&'d!0061t' UESCAPE '!' FROM t`, want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true}},
	// Dollar quotes and $ in identifiers; quoted identifiers.
	{"SELECT $a$ ; DELETE $a$ FROM t", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true}},
	{"SELECT 1 FROM a$x$; DELETE FROM t; --$x$", want{kind: KindDelete, op: "DELETE", reads: l("a$x$"), writes: l("t"), multi: true}},
	{`SELECT * FROM "a""b", "x;y"`, want{kind: KindSelect, op: "SELECT", reads: l(`a"b`, "x;y"), readOnly: true, cacheable: true}},
	// A word of syntax may name a function where no operand precedes it.
	{"SELECT like('a', 'b'), set(1) FROM t WHERE x NOT LIKE ('y') AND NOT like(x, 'z')", want{kind: KindSelect, op: "SELECT", reads: l("t"), writesUnknown: true, funcs: l("like", "set")}},
	{"UPDATE t * SET (a, b) = (1, 2) WHERE a LIKE ('x') OR (a, b) OVERLAPS (c, d)", want{kind: KindUpdate, op: "UPDATE", writes: l("t"), funcs: []string{}}},
	{"INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET (b) = (2)", want{kind: KindInsert, op: "INSERT", writes: l("t"), funcs: []string{}}},
	// A time word is one in any literal form: its value changes.
	{"SELECT * FROM t WHERE ts > E'no\\x77'::timestamp", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, reason: "volatile function E'no\\x77'"}},
	{"SELECT * FROM t WHERE d = 'to'\n'day'::date", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true}},
	{"SELECT * FROM t WHERE d = $x$ Tomorrow $x$::date OR d = U&'yesterday' OR d = N'today'", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true}},
	{"SELECT * FROM t WHERE d = E'\\x6e\\157w' OR d = U&'!006Eow' UESCAPE '!'", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true}},
	{"SELECT * FROM t WHERE d = U&'!006Eo' UESCAPE '!' OR d = U&'\\0077'", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true}},
	{"SELECT * FROM t WHERE d = E'not now' OR x = $$ know $$", want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true}},
	// standard_conforming_strings=off would end a string elsewhere: doubt.
	{`SELECT 'a\' ; --'; DELETE FROM t`, want{kind: KindUnknown, op: "SELECT", writesUnknown: true}},
	{`SELECT x FROM t WHERE p ~ '^\d+$' AND q = 'C:\dir\'`, want{kind: KindSelect, op: "SELECT", reads: l("t"), readOnly: true, cacheable: true}},
}

func TestClasses(t *testing.T) {
	for _, tt := range classTests {
		checkClassify(t, tt.sql, tt.want)
	}
}

// TestTruncatedNamesAgree: the server reads a 66-byte name as its first 63
// bytes, so both spellings must name the same relation and function.
func TestTruncatedNamesAgree(t *testing.T) {
	long, short := strings.Repeat("x", 66), strings.Repeat("x", 63)
	for _, f := range []string{"SELECT * FROM s.%s", "UPDATE \"%s\" SET a = 1", "SELECT %s(1)", "INSERT INTO %s SELECT * FROM %[1]s"} {
		a, b := Classify(fmt.Sprintf(f, long)), Classify(fmt.Sprintf(f, short))
		if fmt.Sprint(a.Reads, a.Writes, a.Functions) != fmt.Sprint(b.Reads, b.Writes, b.Functions) {
			t.Errorf("%q: 66 bytes: %v %v %v; 63 bytes: %v %v %v", f, a.Reads, a.Writes, a.Functions, b.Reads, b.Writes, b.Functions)
		}
	}
}

// TestFingerprintHasNoLiteral: what the server reads as a literal never
// reaches the fingerprint, however the string is continued or escaped, nor
// what it might read as one with standard_conforming_strings off.
func TestFingerprintHasNoLiteral(t *testing.T) {
	for _, sql := range []string{
		"SELECT E'a'\n'\\' secret '",
		"SELECT E'a'\r\n'\\' secret '",
		"SELECT E'a' -- c\n'\\' secret ' FROM t",
		"SELECT U&'a'\n' secret '",
		"SELECT 'a'\n' secret ' || E'b'\n'\\' secret '",
		"SELECT 'a\\' ; --' secret ';",
		"SELECT 'a\\' , ' secret '",
		"SELECT N'a\\' , ' secret '",
		"SELECT B'1'\n'0 secret '",
	} {
		if fp := Classify(sql).Fingerprint; strings.Contains(fp, "secret") {
			t.Errorf("Fingerprint(%q) = %q", sql, fp)
		}
	}
	for sql, want := range map[string]string{
		"SELECT E'a'\n'\\' secret '":       "SELECT $1",
		"SELECT 'a'\n'b' FROM t":           "SELECT $1 FROM t",
		"SELECT 'a\\' ; --' secret '; x":   "SELECT $1",
		"SELECT 1, 'a\\' , ' secret ' + 1": "SELECT $1, $2",
	} {
		if got := Classify(sql).Fingerprint; got != want {
			t.Errorf("Fingerprint(%q) = %q, want %q", sql, got, want)
		}
	}
}
