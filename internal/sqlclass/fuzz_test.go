package sqlclass

import (
	"slices"
	"strings"
	"testing"
)

// FuzzClassify checks that classification never panics and never calls a
// text read-only when one of its statements may write. The oracle finds
// each statement's first keyword with its own small scanner, so a lexer
// bug that hides a statement shows up as a disagreement.
func FuzzClassify(f *testing.F) {
	for _, tt := range classifyTests {
		f.Add(tt.sql)
	}
	for _, tt := range classTests {
		f.Add(tt.sql)
	}
	for _, sql := range lexicalSeeds {
		f.Add(sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		st := classify(sql) // not Classify: a panic must fail the test, not be recovered
		stmts := oracleStatements(sql)
		if st.Cacheable && (!st.ReadOnly || st.MultiStatement || st.Uncacheable != "") {
			t.Fatalf("Cacheable with ReadOnly %v, MultiStatement %v, Uncacheable %q", st.ReadOnly, st.MultiStatement, st.Uncacheable)
		}
		if st.Cacheable && len(stmts) != 1 {
			t.Fatalf("Cacheable, but the oracle sees %d statements: %q", len(stmts), stmts)
		}
		if st.ReadOnly && len(stmts) == 0 {
			t.Fatalf("ReadOnly, but the oracle sees no statement")
		}
		for _, s := range stmts {
			verb, readOnly, cacheable := oracleVerb(s)
			if st.ReadOnly && !readOnly {
				t.Fatalf("ReadOnly, but a statement starts with %q: %q", verb, s)
			}
			if st.Cacheable && !cacheable {
				t.Fatalf("Cacheable, but a statement starts with %q: %q", verb, s)
			}
		}
		if st.FingerprintID != fnv64a(st.Fingerprint) || len(st.Summary) > maxSummary {
			t.Fatalf("FingerprintID or Summary (%d bytes) inconsistent", len(st.Summary))
		}
	})
}

// lexicalSeeds are texts whose statements a lexer that gets a quote,
// comment or dollar quote wrong would see otherwise.
var lexicalSeeds = []string{
	"SELECT 1 /* ; DELETE FROM t */",
	"SELECT '; DELETE FROM t; --'",
	"SELECT E'\\'; DELETE FROM t; --'",
	"SELECT e'\\\\'; DELETE FROM t",
	"SELECT $a$ $b$ ; DELETE $b$ $a$; SELECT 1",
	"SELECT $$;$$; UPDATE t SET x = 1",
	"SELECT \"a\"\"; DELETE\" FROM t",
	"SELECT 1 /* /* */ ; DELETE FROM t */ ; SELECT 2",
	"SELECT 1 */ ; DELETE FROM t",
	"SELECT a-- c\n; DELETE FROM t",
	"SELECT a+/* c */1; TRUNCATE t",
	"SELECT x$$; DELETE FROM t; $$",
	"SELECT 0x1$$; DELETE FROM t; $$",
	"SELECT 1$$; DELETE FROM t; $$",
	"SELECT $1$$; DELETE FROM t; $$",
	"SELECT U&'\\'; DELETE FROM t; --'",
	"SELECT B'1''; DELETE FROM t; --'",
	"(SELECT 1); (DELETE FROM t)",
	"((SELECT 1)) UNION (SELECT 2)",
	"EXPLAIN (ANALYZE false) DELETE FROM t",
	"EXPLAIN (COSTS off) ANALYZE VERBOSE UPDATE t SET a = 1",
	"EXPLAIN ANALYZE (DELETE FROM t)",
	"WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
	"WITH x AS (SELECT 1) DELETE FROM t",
	"SELECT * FROM t FOR UPDATE; GRANT ALL ON t TO u",
	"SHOW x; DROP TABLE t",
	"VALUES (1); COPY t FROM STDIN",
	"TABLE t; CALL p()",
	"select 1; do $$ begin end $$",
	"SELECT 1; MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
	"CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1; END; DELETE FROM t",
	"SELECT (1; DELETE FROM t)",
	"SELECT [1; DELETE FROM t]",
	"SELECT * FROM (SELECT 1",
}

// oracleVerb returns the first keyword of a statement's words, and whether
// the statement may be read-only and cacheable by that keyword alone.
func oracleVerb(words []string) (verb string, readOnly, cacheable bool) {
	first := func(k int) (string, int) {
		for k < len(words) && words[k] == "(" {
			k++
		}
		if k < len(words) {
			return words[k], k
		}
		return "", k
	}
	reads := []string{"select", "values", "table", "with"}
	verb, k := first(0)
	switch {
	case slices.Contains(reads, verb):
		return verb, true, true
	case verb == "show":
		return verb, true, false
	case verb != "explain":
		return verb, false, false
	}
	// EXPLAIN [(options)] [ANALYZE] [VERBOSE] runs its statement if ANALYZE
	// appears among the options, whatever the option's value.
	analyze := false
	k++
	if k < len(words) && words[k] == "(" {
		for depth := 0; k < len(words); k++ {
			switch words[k] {
			case "(":
				depth++
			case ")":
				depth--
			case "analyze", "analyse":
				analyze = true
			}
			if depth == 0 {
				k++
				break
			}
		}
	}
	for ; k < len(words) && slices.Contains([]string{"analyze", "analyse", "verbose"}, words[k]); k++ {
		analyze = analyze || words[k] != "verbose"
	}
	inner, _ := first(k)
	return "explain " + inner, !analyze || slices.Contains(reads, inner), false
}

// oracleStatements splits sql at each ";" outside strings, quoted names,
// comments and dollar quotes, and returns the non-empty statements as
// lists of words in lower case, "(" and ")", and "?" for anything else.
func oracleStatements(sql string) [][]string {
	var stmts [][]string
	var cur []string
	isLetter := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c >= 0x80 }
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	// lineEnd returns the end of the -- comment at i: \n and \r end it.
	lineEnd := func(i int) int {
		if n := strings.IndexAny(sql[i:], "\r\n"); n >= 0 {
			return i + n
		}
		return len(sql)
	}
	// quoted returns the end of the quoted text opening at sql[i]; a string
	// goes on, in the same mode, after whitespace with a newline and a quote.
	var quoted func(i int, q byte, backslash bool) int
	quoted = func(i int, q byte, backslash bool) int {
		for i++; i < len(sql); i++ {
			if backslash && sql[i] == '\\' {
				i++
			} else if sql[i] == q {
				if i+1 < len(sql) && sql[i+1] == q {
					i++
					continue
				}
				newline := false
				for j := i + 1; q == '\'' && j < len(sql); j++ {
					switch c := sql[j]; {
					case c == '\n' || c == '\r':
						newline = true
					case c == ' ' || c == '\t' || c == '\f' || c == '\v':
					case strings.HasPrefix(sql[j:], "--"):
						j = lineEnd(j) - 1
					case c == '\'' && newline:
						return quoted(j, q, backslash)
					default:
						return i + 1
					}
				}
				return i + 1
			}
		}
		return len(sql)
	}
	for i := 0; i < len(sql); {
		c := sql[i]
		rest := sql[i:]
		switch {
		case c == ';':
			if len(cur) > 0 {
				stmts = append(stmts, cur)
			}
			cur = nil
			i++
		case strings.HasPrefix(rest, "--"):
			i = lineEnd(i)
		case strings.HasPrefix(rest, "/*"):
			depth := 0
			for i < len(sql) {
				if strings.HasPrefix(sql[i:], "/*") {
					depth++
					i += 2
				} else if strings.HasPrefix(sql[i:], "*/") {
					depth--
					i += 2
					if depth == 0 {
						break
					}
				} else {
					i++
				}
			}
		case c == '\'':
			i = quoted(i, '\'', false)
			cur = append(cur, "?")
		case c == '"':
			i = quoted(i, '"', false)
			cur = append(cur, "?")
		case c == '$' && i+1 < len(sql) && isDigit(sql[i+1]):
			for i++; i < len(sql) && isDigit(sql[i]); i++ {
			}
			cur = append(cur, "?")
		case c == '$':
			j := i + 1
			for j < len(sql) && (isLetter(sql[j]) || j > i+1 && isDigit(sql[j])) {
				j++
			}
			if j < len(sql) && sql[j] == '$' {
				tag := sql[i : j+1]
				if n := strings.Index(sql[j+1:], tag); n >= 0 {
					i = j + 1 + n + len(tag)
				} else {
					i = len(sql)
				}
			} else {
				i++
			}
			cur = append(cur, "?")
		case isLetter(c):
			j := i + 1
			for j < len(sql) && (isLetter(sql[j]) || isDigit(sql[j]) || sql[j] == '$') {
				j++
			}
			w := strings.ToLower(sql[i:j])
			if (w == "e") && j < len(sql) && sql[j] == '\'' {
				i = quoted(j, '\'', true)
				cur = append(cur, "?")
				continue
			}
			cur = append(cur, w)
			i = j
		case c == '(' || c == ')':
			cur = append(cur, string(c))
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		default:
			cur = append(cur, "?")
			i++
		}
	}
	if len(cur) > 0 {
		stmts = append(stmts, cur)
	}
	return stmts
}
