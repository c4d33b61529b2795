package auditpg

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// This file classifies SQL text for the cache, the statistics and the spans:
// a lexer that follows PostgreSQL's lexical rules (src/backend/parser/scan.l),
// then a walk over its tokens that finds the statement kind, the tables read
// and written, the functions called and a normalized fingerprint. It parses
// no grammar; where it cannot tell, it says the statement may write anything.
//
// It assumes standard_conforming_strings=on, which pgx requires: with it off
// a backslash escapes a quote in '...', and statements would end elsewhere.

// Kind is what a statement does, as far as caching and invalidation care.
type Kind uint8

const (
	KindUnknown  Kind = iota // not recognized: treated as "may write anything"
	KindSelect               // SELECT, VALUES, TABLE, WITH ... SELECT (read-only CTEs)
	KindInsert               // INSERT
	KindUpdate               // UPDATE
	KindDelete               // DELETE
	KindMerge                // MERGE
	KindCopy                 // COPY (FROM writes its table; TO reads it)
	KindTruncate             // TRUNCATE
	KindDDL                  // CREATE, ALTER, DROP, COMMENT, GRANT, REVOKE, REINDEX, CLUSTER, REFRESH ...
	KindCall                 // CALL
	KindDo                   // DO
	KindTx                   // BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE, PREPARE TRANSACTION
	KindSession              // SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, DISCARD
	KindUtility              // SHOW, EXPLAIN (without ANALYZE), LISTEN, NOTIFY, VACUUM, ANALYZE, LOCK, ...
)

// Statement is the classification of one SQL text. It is immutable once made
// and shared between every query with the same text.
type Statement struct {
	Kind Kind
	// Operation is the upper-case leading keyword(s): "SELECT", "INSERT",
	// "CREATE TABLE", ...; db.operation.name in OpenTelemetry terms. For a
	// WITH query it is the operation of the main statement.
	Operation string
	// Summary is a short low-cardinality description in the style of
	// OpenTelemetry's db.query.summary: "SELECT audit_log".
	Summary string
	// Fingerprint is the normalized text: literals replaced by $n
	// placeholders, IN and VALUES lists collapsed, comments dropped,
	// whitespace collapsed, keywords upper-cased.
	Fingerprint string
	// FingerprintID is a 64-bit hash of Fingerprint (for maps).
	FingerprintID uint64
	// Reads and Writes name the tables read and written, schema-qualified
	// where the SQL qualifies them; unquoted identifiers are folded to lower
	// case, quoted ones kept as written. CTE names are not tables.
	Reads  []string
	Writes []string
	// WritesUnknown is true when the statement may write tables it cannot
	// name (DO, CALL, unknown statements, volatile user functions...): a
	// cache must then invalidate everything.
	WritesUnknown bool
	// ReadOnly is true only when the statement certainly writes nothing.
	ReadOnly bool
	// Cacheable is true for a single read-only statement with nothing
	// volatile in it; Uncacheable says why not when it is false.
	Cacheable   bool
	Uncacheable string
	// Functions are the function names called (lower case, qualified as
	// written), for a later volatility lookup in pg_proc.
	Functions []string
	// MultiStatement is true when the text holds more than one statement.
	MultiStatement bool
	// ChangesSession is true for statements that change session state
	// (SET, RESET, SET ROLE, SET SESSION AUTHORIZATION, DISCARD, a call of
	// set_config).
	ChangesSession bool
	// CreatesTemp is true for statements that create a temporary table or
	// view: the same names may then mean other tables in this session.
	CreatesTemp bool
	// UserFunctionsOnly is true for a single read whose only doubt is that
	// it calls functions the classifier does not know: their volatility in
	// pg_proc decides whether it may write, and whether it may be cached.
	UserFunctionsOnly bool
	// CacheHint is true when the text carries a /* auditpg:cache */
	// comment; CacheTTL is its ttl=, or 0 for the configured default.
	CacheHint bool
	CacheTTL  time.Duration

	// bypass is the cache's bypass reason for a statement that is not
	// Cacheable, made once here rather than on every query.
	bypass string
}

// ---- words ----

// wflag says what a word is to the classifier.
type wflag uint16

const (
	fKeyword    wflag = 1 << iota // upper-cased in fingerprints; never a bare alias
	fNoFunc                       // followed by "(" it is syntax, not a function call: IN (...)
	fAfterCall                    // syntax, not a call, right after ")": count(*) FILTER (...)
	fEndFrom                      // ends a FROM list
	fQueryStart                   // starts a query, in parentheses a subquery
	fVolatileKw                   // a volatile value written without parentheses: CURRENT_DATE
	fSafe                         // read-only function whose result depends only on its input
	fVolatile                     // read-only function whose result may change between calls
	fSideEffect                   // writes no table, but is not read-only (locks, notifications)
	fSequence                     // advances or sets a sequence
	fSession                      // changes session settings
)

// fnFlags are the flags that also hold for a quoted name: "now"() is now().
const fnFlags = fSafe | fVolatile | fSideEffect | fSequence | fSession

type word struct {
	name, upper string
	flags       wflag
}

// maxWordLen bounds the entries of words, so a lookup can fold case in a
// small stack buffer.
const maxWordLen = 32

// words interns the words the classifier knows: folding "SELECT" to its
// entry allocates nothing.
var words = func() map[string]*word {
	m := make(map[string]*word, 640)
	add := func(f wflag, list string) {
		for _, n := range strings.Fields(list) {
			w := m[n]
			if w == nil {
				w = &word{name: n, upper: strings.ToUpper(n)}
				m[n] = w
			}
			w.flags |= f
		}
	}
	add(fKeyword, `all analyse analyze and any array as asc asymmetric at
		authorization between binary both by cascade case cast check collate
		collation column concurrently conflict constraint create cross
		current_catalog current_date current_role current_schema current_time
		current_timestamp current_user database default deferrable delete desc
		distinct do else end escape except exists extension false fetch filter
		first for foreign freeze from full function grant group groups having if
		ilike in index initially inner insert intersect into is isnull join
		last lateral leading left like limit localtime localtimestamp locked
		materialized matched merge natural no not nothing notnull nowait null
		nulls of offset on only or order ordinality outer over overlaps
		overriding partition placing primary procedure range recursive
		references replace restrict returning right rows schema select sequence
		session_user set share similar skip some symmetric system_user table
		tablesample temp temporary then ties to trailing transaction trigger
		true union unique unlogged update user using values variadic verbose
		view when where window with within`)
	// Reserved words, and words of syntax that a function cannot be named.
	add(fNoFunc, `all and any array as asc asymmetric authorization between
		binary both by case cast check collate collation column concurrently
		conflict constraint create cross current_catalog current_date
		current_role current_time current_timestamp current_user default
		deferrable delete desc distinct do else end except exists false fetch
		for foreign freeze from full grant group having ilike in initially
		inner insert intersect into is isnull join lateral leading like limit
		localtime localtimestamp merge natural not notnull null offset on only
		or order outer overlaps placing precision primary references returning
		row select session_user set sets similar some symmetric system_user
		table tablesample then to trailing true union unique update user using
		values variadic varying verbose when where window with`)
	add(fAfterCall, `filter over repeatable`)
	add(fEndFrom, `conflict do except fetch for group having intersect into
		limit offset order overriding returning select set union values when
		where window`)
	add(fQueryStart, `select values table with insert update delete merge`)
	add(fVolatileKw, `current_catalog current_date current_role current_schema
		current_time current_timestamp current_user localtime localtimestamp
		session_user system_user user`)
	add(fSafe, `count sum avg min max array_agg string_agg json_agg jsonb_agg
		json_object_agg jsonb_object_agg bool_and bool_or every bit_and bit_or
		stddev stddev_pop stddev_samp variance var_pop var_samp percentile_cont
		percentile_disc mode corr covar_pop covar_samp grouping cube rollup
		row_number rank dense_rank percent_rank cume_dist ntile lag lead
		first_value last_value nth_value coalesce nullif greatest least lower
		upper initcap length char_length character_length octet_length
		bit_length substr substring trim btrim ltrim rtrim lpad rpad concat
		concat_ws replace split_part strpos position left right reverse repeat
		format md5 encode decode translate overlay starts_with ascii chr to_hex
		quote_ident quote_literal quote_nullable regexp_replace regexp_match
		regexp_matches regexp_split_to_array regexp_split_to_table regexp_like
		abs round floor ceil ceiling trunc mod power sqrt exp ln log sign div
		width_bucket to_json to_jsonb json_build_object jsonb_build_object
		json_build_array jsonb_build_array json_object jsonb_object row_to_json
		array_to_json json_array_length jsonb_array_length json_extract_path
		json_extract_path_text jsonb_extract_path jsonb_extract_path_text
		json_each jsonb_each json_each_text jsonb_each_text json_array_elements
		jsonb_array_elements json_array_elements_text jsonb_array_elements_text
		json_typeof jsonb_typeof json_object_keys jsonb_object_keys jsonb_set
		jsonb_insert jsonb_strip_nulls json_strip_nulls jsonb_pretty
		jsonb_path_query jsonb_path_exists jsonb_path_match
		jsonb_path_query_array jsonb_path_query_first array_length
		array_position array_positions array_remove array_append array_prepend
		array_cat array_to_string string_to_array cardinality unnest
		array_lower array_upper array_dims generate_series generate_subscripts
		date_trunc date_part date_bin extract to_char to_date to_timestamp
		to_number make_date make_time make_timestamp make_timestamptz
		make_interval justify_days justify_hours justify_interval isfinite
		num_nulls num_nonnulls int int2 int4 int8 integer bigint smallint text
		varchar char numeric decimal float4 float8 real bool boolean date time
		timestamp timestamptz interval uuid json jsonb bytea inet cidr`)
	add(fVolatile, `now clock_timestamp statement_timestamp
		transaction_timestamp timeofday random random_normal setseed
		gen_random_uuid gen_random_bytes uuid_generate_v1 uuid_generate_v1mc
		uuid_generate_v4 uuidv4 uuidv7 currval lastval current_setting
		current_schema current_schemas current_database current_query
		txid_current txid_current_if_assigned txid_current_snapshot
		inet_client_addr inet_client_port inet_server_addr inet_server_port
		version age to_regclass to_regtype`)
	add(fSideEffect|fSession, `set_config`)
	add(fSideEffect, `pg_advisory_lock pg_advisory_lock_shared
		pg_advisory_xact_lock pg_advisory_xact_lock_shared pg_try_advisory_lock
		pg_try_advisory_lock_shared pg_try_advisory_xact_lock
		pg_try_advisory_xact_lock_shared pg_advisory_unlock
		pg_advisory_unlock_shared pg_advisory_unlock_all pg_notify
		pg_cancel_backend pg_terminate_backend pg_reload_conf pg_stat_reset
		pg_stat_statements_reset`)
	add(fSequence, `nextval setval`)
	// Statement verbs and other words the classifier compares, interned so
	// that folding them allocates nothing.
	add(0, `abort alter attach begin call checkpoint close cluster comment
		commit copy deallocate declare detach discard drop execute explain
		import key listen load lock move notify policy prepare reassign refresh
		reindex release rename reset revoke rollback rule savepoint security
		share show start statistics system truncate unlisten vacuum`)
	return m
}()

// lookup folds an unquoted word to lower case (ASCII only, as PostgreSQL
// does) and finds it in words.
func lookup(s string) (string, *word) {
	if len(s) <= maxWordLen {
		var buf [maxWordLen]byte
		for i := 0; i < len(s); i++ {
			buf[i] = lowerASCII(s[i])
		}
		if w, ok := words[string(buf[:len(s)])]; ok {
			return w.name, w
		}
	}
	return asciiLower(s), nil
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerASCII(b[j])
			}
			return string(b)
		}
	}
	return s
}

func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// ---- lexer ----

type tokKind uint8

const (
	tkWord   tokKind = iota // unquoted identifier or keyword
	tkQIdent                // "quoted identifier", U&"..." too
	tkString                // '...', E'...', U&'...', B'...', X'...', N'...', $tag$...$tag$
	tkNumber
	tkParam // $1
	tkOp    // operators, and bytes SQL has no use for
	tkPunct // ( ) [ ] , ; . ::
)

type token struct {
	kind tokKind
	end  int32  // "(" and "[": index of the matching closer, or of the statement's end if unclosed
	text string // as written
	name string // tkWord: folded to lower case; tkQIdent: without quotes
	word *word  // the entry in words, if any
}

func (t *token) flags() wflag {
	switch {
	case t.word == nil:
		return 0
	case t.kind == tkQIdent:
		return t.word.flags & fnFlags
	}
	return t.word.flags
}

func (t *token) isWord(w string) bool  { return t.kind == tkWord && t.name == w }
func (t *token) isPunct(p string) bool { return t.kind == tkPunct && t.text == p }

// lex splits sql into tokens, dropping whitespace and comments. maxParam is
// the highest $n in the text; junk reports a number run into a word (123abc,
// 0x1F$$), which PostgreSQL 16 rejects and older servers lex differently.
func lex(sql string) (toks []token, maxParam int, junk bool) {
	toks = make([]token, 0, 8+len(sql)/3) // SQL averages a token per 3 to 4 bytes
	var opens [16]int32
	stack := opens[:0] // indexes of the unclosed ( and [
	for i := 0; i < len(sql); {
		c := sql[i]
		start, kind := i, tkOp
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			if k := strings.IndexByte(sql[i:], '\n'); k >= 0 {
				i += k + 1
			} else {
				i = len(sql)
			}
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipComment(sql, i)
			continue
		case c == '\'':
			kind, i = tkString, scanQuoted(sql, i, '\'', false)
		case c == '"':
			kind, i = tkQIdent, scanQuoted(sql, i, '"', false)
		case isIdentStart(c):
			kind, i = scanWord(sql, i)
		case c == '$':
			kind, i = scanDollar(sql, i)
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
			kind, i = tkNumber, scanNumber(sql, i)
			junk = junk || i < len(sql) && isIdentCont(sql[i])
		case c == ':' && i+1 < len(sql) && sql[i+1] == ':':
			kind, i = tkPunct, i+2
		case strings.IndexByte("(),;[].", c) >= 0:
			kind, i = tkPunct, i+1
		case isOpChar(c):
			i = scanOperator(sql, i)
		default:
			i++
		}
		toks = append(toks, token{kind: kind, text: sql[start:i]})
		t := &toks[len(toks)-1]
		switch kind {
		case tkWord:
			t.name, t.word = lookup(t.text)
		case tkQIdent:
			t.name = unquote(t.text)
			t.word = words[t.name]
		case tkParam:
			n := 0
			for k := 1; k < len(t.text) && n < 1e8; k++ { // PostgreSQL allows 65535
				n = n*10 + int(t.text[k]-'0')
			}
			maxParam = max(maxParam, n)
		case tkPunct:
			switch c {
			case '(', '[':
				stack = append(stack, int32(len(toks)-1))
			case ')', ']':
				opener := "("
				if c == ']' {
					opener = "["
				}
				if n := len(stack); n > 0 && toks[stack[n-1]].text == opener {
					toks[stack[n-1]].end = int32(len(toks) - 1)
					stack = stack[:n-1]
				}
			case ';':
				// No parenthesis spans statements: unclosed ones end here.
				for _, o := range stack {
					toks[o].end = int32(len(toks) - 1)
				}
				stack = stack[:0]
			}
		}
	}
	for _, o := range stack {
		toks[o].end = int32(len(toks))
	}
	return toks, maxParam, junk
}

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' || c == '_' || c >= 0x80 }
func isIdentCont(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '$' }
func isOpChar(c byte) bool     { return strings.IndexByte("~!@#^&|`?+-*/%<>=", c) >= 0 }

// skipComment returns the end of the /* comment */ at i; they nest.
func skipComment(s string, i int) int {
	depth := 0
	for i+1 < len(s) {
		switch {
		case s[i] == '/' && s[i+1] == '*':
			depth++
			i += 2
		case s[i] == '*' && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(s)
}

// scanQuoted returns the end of the quoted text opening at s[i]; a doubled
// quote stands for itself, and with backslash (E'...') a backslash escapes
// the next byte. Unterminated text runs to the end, as the server would
// reject it whole.
func scanQuoted(s string, i int, q byte, backslash bool) int {
	for i++; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if backslash {
				i++
			}
		case q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(s)
}

// scanWord scans an identifier or keyword, or a string or quoted identifier
// that a prefix introduces: E'...', B'...', X'...', N'...', U&'...', U&"...".
func scanWord(s string, i int) (tokKind, int) {
	if i+1 < len(s) {
		switch s[i] | 0x20 {
		case 'e':
			if s[i+1] == '\'' {
				return tkString, scanQuoted(s, i+1, '\'', true)
			}
		case 'b', 'x', 'n':
			if s[i+1] == '\'' {
				return tkString, scanQuoted(s, i+1, '\'', false)
			}
		case 'u':
			if s[i+1] == '&' && i+2 < len(s) {
				switch s[i+2] {
				case '\'':
					return tkString, scanQuoted(s, i+2, '\'', false)
				case '"':
					return tkQIdent, scanQuoted(s, i+2, '"', false)
				}
			}
		}
	}
	j := i + 1
	for j < len(s) && isIdentCont(s[j]) {
		j++
	}
	return tkWord, j
}

// scanDollar scans a parameter $1, a dollar-quoted string $tag$...$tag$,
// or a lone $.
func scanDollar(s string, i int) (tokKind, int) {
	j := i + 1
	if j < len(s) && isDigit(s[j]) {
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		return tkParam, j
	}
	for j < len(s) && (isIdentStart(s[j]) || j > i+1 && isDigit(s[j])) {
		j++
	}
	if j < len(s) && s[j] == '$' {
		tag := s[i : j+1]
		if k := strings.Index(s[j+1:], tag); k >= 0 {
			return tkString, j + 1 + k + len(tag)
		}
		return tkString, len(s)
	}
	return tkOp, i + 1
}

// scanNumber scans 1, 1.5, .5, 1e10, 1_000, 0x1F, 0o17 and 0b101.
func scanNumber(s string, i int) int {
	if s[i] == '0' && i+2 < len(s) {
		base := 0
		switch s[i+1] | 0x20 {
		case 'x':
			base = 16
		case 'o':
			base = 8
		case 'b':
			base = 2
		}
		if j := digits(s, i+2, base); base > 0 && j > i+2 {
			return j
		}
	}
	j := digits(s, i, 10)
	if j < len(s) && s[j] == '.' && !(j+1 < len(s) && s[j+1] == '.') {
		j = digits(s, j+1, 10)
	}
	if j < len(s) && s[j]|0x20 == 'e' {
		k := j + 1
		if k < len(s) && (s[k] == '+' || s[k] == '-') {
			k++
		}
		if k < len(s) && isDigit(s[k]) {
			j = digits(s, k, 10)
		}
	}
	return j
}

// digits returns the end of a run of digits of base, with single
// underscores between them.
func digits(s string, i, base int) int {
	for i < len(s) {
		switch {
		case isDigitOf(s[i], base):
			i++
		case s[i] == '_' && i+1 < len(s) && isDigitOf(s[i+1], base):
			i += 2
		default:
			return i
		}
	}
	return i
}

func isDigitOf(c byte, base int) bool {
	switch {
	case isDigit(c):
		return int(c-'0') < base
	case 'a' <= c|0x20 && c|0x20 <= 'f':
		return base == 16
	}
	return false
}

// scanOperator scans an operator the way PostgreSQL does: it stops at a
// comment, and a multi-character operator ends in + or - only if it holds
// one of ~!@#^&|`?% (so a=-1 is a = -1).
func scanOperator(s string, i int) int {
	j := i
	for j < len(s) && isOpChar(s[j]) {
		if j > i && j+1 < len(s) && (s[j] == '-' && s[j+1] == '-' || s[j] == '/' && s[j+1] == '*') {
			break
		}
		j++
	}
	if j-i > 1 && (s[j-1] == '+' || s[j-1] == '-') && !strings.ContainsAny(s[i:j-1], "~!@#^&|`?%") {
		for j-i > 1 && (s[j-1] == '+' || s[j-1] == '-') {
			j--
		}
	}
	return j
}

// unquote returns the name a quoted identifier stands for.
func unquote(text string) string {
	if k := strings.IndexByte(text, '"'); k >= 0 {
		text = text[k+1:] // drops U& and the opening quote
	}
	text = strings.TrimSuffix(text, `"`)
	if strings.Contains(text, `""`) {
		text = strings.ReplaceAll(text, `""`, `"`)
	}
	return text
}

// nextStatement returns the bounds of the next non-empty statement at or
// after from; lo == hi when there is none. A ";" ends a statement, except
// inside the BEGIN ATOMIC ... END body of CREATE FUNCTION or PROCEDURE.
func nextStatement(toks []token, from int) (lo, hi int) {
	for from < len(toks) && toks[from].isPunct(";") {
		from++
	}
	routine := from+1 < len(toks) && toks[from].isWord("create")
	if routine {
		k := from + 1
		for k < len(toks) && (toks[k].isWord("or") || toks[k].isWord("replace")) {
			k++
		}
		routine = k < len(toks) && (toks[k].isWord("function") || toks[k].isWord("procedure"))
	}
	atomic, cases := false, 0
	for i := from; i < len(toks); i++ {
		t := &toks[i]
		switch {
		case t.isPunct(";"):
			if !atomic {
				return from, i
			}
		case !routine || t.kind != tkWord:
		case t.name == "atomic" && i > from && toks[i-1].isWord("begin"):
			atomic = true
		case atomic && t.name == "case":
			cases++
		case atomic && t.name == "end":
			if cases > 0 {
				cases--
			} else {
				atomic = false
			}
		}
	}
	return from, len(toks)
}

// ---- classification ----

// Classify lexes sql and reports what it does. It never panics: text the
// classifier fails on is reported as an unknown statement that may write
// anything.
func Classify(sql string) (st *Statement) {
	defer func() {
		if recover() != nil {
			st = &Statement{Kind: KindUnknown, WritesUnknown: true, Uncacheable: "unclassifiable",
				bypass: bypassStatement + ": unclassifiable"}
		}
	}()
	st = classify(sql)
	st.CacheHint, st.CacheTTL = cacheHint(sql)
	if !st.Cacheable {
		st.bypass = bypassStatement + ": " + st.Uncacheable
	}
	return st
}

func classify(sql string) *Statement {
	toks, maxParam, junk := lex(sql)
	st := &Statement{}
	var reads, writes, funcs nameList
	fp := fingerprinter{next: maxParam + 1}
	fp.b.Grow(len(sql) + len(sql)/4)
	n := 0
	for lo, hi := nextStatement(toks, 0); lo < hi; lo, hi = nextStatement(toks, hi) {
		w := walker{toks: toks}
		s := w.statement(lo, hi)
		fp.statement(toks, lo, hi)
		if n == 0 {
			*st = s
			reads, writes, funcs = nameList{names: s.Reads}, nameList{names: s.Writes}, nameList{names: s.Functions}
		} else {
			if len(writes.names) == 0 && !st.WritesUnknown && (len(s.Writes) > 0 || s.WritesUnknown) {
				// Kind and Operation name the first statement that writes.
				st.Kind, st.Operation = s.Kind, s.Operation
			}
			if len(st.Summary) <= maxSummary {
				st.Summary += "; " + s.Summary
			}
			reads.addAll(s.Reads)
			writes.addAll(s.Writes)
			funcs.addAll(s.Functions)
			st.WritesUnknown = st.WritesUnknown || s.WritesUnknown
			st.ReadOnly = st.ReadOnly && s.ReadOnly
			st.ChangesSession = st.ChangesSession || s.ChangesSession
			st.CreatesTemp = st.CreatesTemp || s.CreatesTemp
			st.UserFunctionsOnly = false
			st.MultiStatement, st.Cacheable, st.Uncacheable = true, false, "multiple statements"
		}
		n++
	}
	st.Reads, st.Writes, st.Functions = reads.names, writes.names, funcs.names
	if n == 0 { // nothing to run: it writes nothing, but there is nothing to cache either
		st.Uncacheable = "empty statement"
	}
	if junk {
		// Older servers read 123abc as 123 AS abc, and a quote after it may
		// then open a string where we saw none: trust nothing we found.
		st.ReadOnly, st.Cacheable, st.WritesUnknown = false, false, true
		st.Uncacheable = "malformed number"
	}
	st.Fingerprint = fp.b.String()
	st.FingerprintID = fnv64a(st.Fingerprint)
	st.Summary = truncateSummary(st.Summary)
	return st
}

// nameList keeps names in order of first appearance; past a few names an
// index keeps adding them linear.
type nameList struct {
	names []string
	index map[string]struct{}
}

func (l *nameList) has(n string) bool {
	if l.index != nil {
		_, ok := l.index[n]
		return ok
	}
	return slices.Contains(l.names, n)
}

func (l *nameList) add(n string) {
	if l.has(n) {
		return
	}
	l.names = append(l.names, n)
	switch {
	case l.index != nil:
		l.index[n] = struct{}{}
	case len(l.names) > 16:
		l.index = make(map[string]struct{}, 2*len(l.names))
		for _, m := range l.names {
			l.index[m] = struct{}{}
		}
	}
}

func (l *nameList) addAll(names []string) {
	for _, n := range names {
		l.add(n)
	}
}

// mode says how a group of tokens between parentheses is read.
type mode uint8

const (
	modeQuery mode = iota // a query, or an expression that may hold one
	modeFrom              // a join tree in FROM: (a JOIN b ON ...)
	modeExpr              // function arguments: FROM, INTO... are not clauses here
)

// maxDepth bounds the nesting the walker follows; deeper text is taken to
// write anything rather than to exhaust the stack.
const maxDepth = 200

// walker walks the tokens of one statement and collects what it does.
type walker struct {
	toks      []token
	depth     int      // parenthesis nesting of the query being walked
	ctes      []string // CTE names in scope, innermost last
	verb      string   // verb of the outermost query: "SELECT", "INSERT"...
	verbDepth int

	reads, writes, funcs nameList
	sum                  strings.Builder // summary: verbs and tables in order of appearance
	pending, last        string          // verb waiting for its first table; verb last written

	into, dataMod, session, unnamed, tooDeep, temp           bool
	lock, volatile, catalog, sideEffect, sequence, unknownFn string
}

func (w *walker) wordAt(j, hi int) string {
	if j < hi && w.toks[j].kind == tkWord {
		return w.toks[j].name
	}
	return ""
}

// closing returns the index of the token closing the group opened at i.
func (w *walker) closing(i, hi int) int {
	if e := int(w.toks[i].end); e > i && e < hi {
		return e
	}
	return hi
}

// isNameStart reports whether a table or alias name starts at j.
func (w *walker) isNameStart(j, hi int) bool {
	if j >= hi {
		return false
	}
	t := &w.toks[j]
	return t.kind == tkQIdent || t.kind == tkWord && t.flags()&fKeyword == 0
}

// skipName returns the end of the name at i, qualified or not: a."B".c.
func (w *walker) skipName(i, hi int) int {
	j := i + 1
	for j+1 < hi && w.toks[j].isPunct(".") && (w.toks[j+1].kind == tkWord || w.toks[j+1].kind == tkQIdent) {
		j += 2
	}
	return j
}

// nameOf returns the name in toks[i:j] as Reads and Writes report it.
func (w *walker) nameOf(i, j int) string {
	if j == i+1 {
		return w.toks[i].name
	}
	var b strings.Builder
	for k := i; k < j; k += 2 {
		if k > i {
			b.WriteByte('.')
		}
		b.WriteString(w.toks[k].name)
	}
	return b.String()
}

// isQuery reports whether the group toks[lo:hi] holds a query.
func (w *walker) isQuery(lo, hi int) bool {
	for k := 0; lo < hi && k < 16 && w.toks[lo].isPunct("("); k++ {
		lo++
	}
	return lo < hi && w.toks[lo].kind == tkWord && w.toks[lo].flags()&fQueryStart != 0
}

// find returns the index of word in toks[j:hi] outside parentheses, or hi.
func (w *walker) find(j, hi int, word string) int {
	for ; j < hi; j++ {
		if t := &w.toks[j]; t.isPunct("(") || t.isPunct("[") {
			j = w.closing(j, hi)
		} else if t.isWord(word) {
			return j
		}
	}
	return hi
}

func (w *walker) group(lo, hi int, m mode) {
	if w.depth >= maxDepth {
		w.tooDeep = true
		return
	}
	if w.isQuery(lo, hi) {
		m = modeQuery
	}
	w.depth++
	w.walk(lo, hi, m)
	w.depth--
}

// walk walks toks[lo:hi], one level of parentheses, recursing into groups.
func (w *walker) walk(lo, hi int, m mode) {
	scope := len(w.ctes)
	inFrom := m == modeFrom
	expect := inFrom         // a table reference may come next
	atStmt := m == modeQuery // a verb here starts a (sub)statement
	for i := lo; i < hi; i++ {
		t := &w.toks[i]
		stmtStart := atStmt
		atStmt = false
		switch t.kind {
		case tkPunct:
			switch t.text {
			case "(":
				end := w.closing(i, hi)
				if expect {
					w.group(i+1, end, modeFrom)
					i = w.alias(end+1, hi) - 1
				} else {
					w.group(i+1, end, modeQuery)
					i = end
				}
				expect = false
			case ",":
				expect = inFrom
			case "::":
				i = w.skipType(i+1, hi) - 1
			}
			continue
		case tkWord, tkQIdent:
		case tkString:
			// 'now', 'today'... read as a date or time are the time of
			// the execution: the text is constant, its value is not.
			if isTimeWord(t.text) && w.volatile == "" {
				w.volatile = t.text
			}
			expect = false
			continue
		default:
			expect = false
			continue
		}
		f := t.flags()
		if t.isWord("as") {
			i = w.skipAs(i+1, hi) - 1
			continue
		}
		if f&fKeyword != 0 && m != modeExpr {
			switch t.name {
			case "with":
				if j, ok := w.with(i+1, hi); ok {
					i, atStmt = j-1, true
					continue
				}
			case "select", "values":
				w.verbAt(t.word.upper, stmtStart)
				inFrom, expect = false, false
				continue
			case "table":
				w.verbAt("TABLE", stmtStart)
				j := i + 1
				if w.wordAt(j, hi) == "only" {
					j++
				}
				if w.isNameStart(j, hi) {
					k := w.skipName(j, hi)
					w.read(j, k)
					i = k - 1
				}
				inFrom, expect = false, false
				continue
			case "insert", "update", "delete", "merge":
				if stmtStart {
					i = w.target(i, hi) - 1
					inFrom, expect = false, false
					continue
				}
			case "from":
				if i > lo && w.toks[i-1].isWord("distinct") {
					break // IS [NOT] DISTINCT FROM
				}
				inFrom, expect = true, true
				continue
			case "join":
				inFrom, expect = true, true
				continue
			case "using":
				// USING (cols) of a join, or the source of DELETE and MERGE.
				expect = i+1 >= hi || !w.toks[i+1].isPunct("(")
				inFrom = inFrom || expect
				continue
			case "only", "lateral":
				continue
			case "rows":
				if expect && w.wordAt(i+1, hi) == "from" {
					i++ // ROWS FROM (f(), g())
					continue
				}
			case "into":
				i = w.selectInto(i+1, hi) - 1
				inFrom, expect = false, false
				continue
			case "for":
				if l := w.lockClause(i+1, hi); l != "" && w.lock == "" {
					w.lock = l
				}
				inFrom, expect = false, false
				continue
			case "on":
				expect = false
				continue
			case "tablesample":
				// A sample differs from call to call unless REPEATABLE
				// follows the method's arguments.
				if m := i + 2; m < hi && w.toks[m].isPunct("(") {
					if w.wordAt(w.closing(m, hi)+1, hi) != "repeatable" && w.volatile == "" {
						w.volatile = "TABLESAMPLE"
					}
				}
				i++ // the sampling method is no function call
				expect = false
				continue
			}
			if f&fEndFrom != 0 {
				inFrom = false
			}
		}
		j := w.skipName(i, hi)
		syntax := j == i+1 && (f&fNoFunc != 0 || f&fAfterCall != 0 && i > lo && w.toks[i-1].isPunct(")"))
		if j < hi && w.toks[j].isPunct("(") && !syntax {
			w.call(i, j)
			end := w.closing(j, hi)
			w.group(j+1, end, modeExpr)
			i = end
			if expect { // a table function
				k := end + 1
				if w.wordAt(k, hi) == "with" && w.wordAt(k+1, hi) == "ordinality" {
					k += 2
				}
				i = w.alias(k, hi) - 1
			}
			expect = false
			continue
		}
		if expect && f&fKeyword == 0 {
			w.read(i, j)
			if j < hi && w.toks[j].kind == tkOp && w.toks[j].text == "*" {
				j++ // t* names t and its children, as t does
			}
			i = w.alias(j, hi) - 1
			expect = false
			continue
		}
		if f&fVolatileKw != 0 && j == i+1 && w.volatile == "" {
			w.volatile = t.name
		}
		expect = false
		i = j - 1
	}
	w.ctes = w.ctes[:scope]
}

// verbAt notes the verb of a query for the summary, and as the statement's
// verb when it starts the outermost query seen so far.
func (w *walker) verbAt(verb string, stmtStart bool) {
	w.pending = verb
	if stmtStart && (w.verb == "" || w.depth < w.verbDepth) {
		w.verb, w.verbDepth = verb, w.depth
	}
}

// table records a table read or written.
func (w *walker) table(name string, write bool) {
	if w.catalog == "" && isCatalog(name) {
		w.catalog = name
	}
	seen := w.reads.has(name) || w.writes.has(name)
	if write {
		w.writes.add(name)
	} else {
		w.reads.add(name)
	}
	if seen {
		return
	}
	if w.sum.Len() == 0 {
		w.sum.Grow(64)
	}
	if w.pending != w.last {
		if w.sum.Len() > 0 {
			w.sum.WriteByte(' ')
		}
		w.sum.WriteString(w.pending)
		w.last = w.pending
	}
	if w.sum.Len() > 0 {
		w.sum.WriteByte(' ')
	}
	w.sum.WriteString(name)
}

// read records the table named by toks[i:j], unless it names a CTE.
func (w *walker) read(i, j int) {
	name := w.nameOf(i, j)
	if j == i+1 && slices.Contains(w.ctes, name) {
		return
	}
	w.table(name, false)
}

// isTimeWord reports whether a string literal (quotes included) or an
// argument is one of the special date/time inputs whose value is the time
// it is read: now, today, tomorrow, yesterday.
func isTimeWord(s string) bool {
	if len(s) < 3 || len(s) > 16 {
		return false
	}
	s = strings.Trim(s, "' \t\r\n")
	for _, w := range [...]string{"now", "today", "tomorrow", "yesterday"} {
		if strings.EqualFold(s, w) {
			return true
		}
	}
	return false
}

func isCatalog(name string) bool {
	return strings.HasPrefix(name, "pg_") || strings.HasPrefix(name, "information_schema.") || strings.Contains(name, ".pg_")
}

// call records a call of the function named by toks[i:j].
func (w *walker) call(i, j int) {
	name := w.nameOf(i, j)
	w.funcs.add(name)
	last := &w.toks[j-1]
	builtin := j == i+1 || j == i+3 && w.toks[i].name == "pg_catalog"
	f := last.flags()
	if !builtin {
		f = 0 // a function of another schema is the user's
	}
	switch {
	case f&fSafe != 0:
	case f&fVolatile != 0 || builtin && f == 0 && strings.HasPrefix(last.name, "pg_"):
		// Built-in pg_* functions read the catalogs or server state.
		if w.volatile == "" {
			w.volatile = last.name + "()"
		}
	case f&fSession != 0:
		w.session = true
	case f&fSideEffect != 0:
		if w.sideEffect == "" {
			w.sideEffect = last.name
		}
	case f&fSequence != 0:
		if w.sequence == "" {
			w.sequence = last.name
		}
	default:
		if w.unknownFn == "" {
			w.unknownFn = name
		}
	}
}

// alias skips an alias and its column list after a table reference.
func (w *walker) alias(j, hi int) int {
	named := false
	if w.wordAt(j, hi) == "as" {
		j++
		named = true
	}
	if w.isNameStart(j, hi) {
		j++
		named = true
	}
	if named && j < hi && w.toks[j].isPunct("(") {
		if end := w.closing(j, hi); !w.isQuery(j+1, end) {
			j = end + 1
		}
	}
	return j
}

// skipAs skips what follows AS: an alias, or in CAST a type.
func (w *walker) skipAs(j, hi int) int {
	if j < hi && (w.toks[j].kind == tkQIdent || w.toks[j].kind == tkWord && w.toks[j].flags()&fQueryStart == 0) {
		return w.skipType(j, hi)
	}
	return j
}

// skipType skips a type name after :: or AS: numeric(10, 2), int[],
// character varying, timestamp with time zone. Its words are no calls.
func (w *walker) skipType(j, hi int) int {
	if j >= hi || w.toks[j].kind != tkWord && w.toks[j].kind != tkQIdent {
		return j
	}
	j = w.skipName(j, hi)
	for j < hi {
		t := &w.toks[j]
		switch {
		case t.isWord("varying"), t.isWord("precision"):
			j++
		case (t.isWord("with") || t.isWord("without")) && w.wordAt(j+1, hi) == "time" && w.wordAt(j+2, hi) == "zone":
			j += 3
		case t.isPunct("[") || t.isPunct("(") && !w.isQuery(j+1, w.closing(j, hi)):
			j = w.closing(j, hi) + 1
		default:
			return j
		}
	}
	return j
}

// with walks the CTE list after WITH and returns where the main statement
// starts; ok is false when no CTE follows (WITH ORDINALITY, WITH TIES).
func (w *walker) with(j, hi int) (next int, ok bool) {
	recursive := w.wordAt(j, hi) == "recursive"
	if recursive {
		j++
	}
	for j < hi && (w.toks[j].kind == tkWord || w.toks[j].kind == tkQIdent) {
		name := w.toks[j].name
		k := j + 1
		if k < hi && w.toks[k].isPunct("(") {
			k = w.closing(k, hi) + 1
		}
		if w.wordAt(k, hi) != "as" {
			break
		}
		k++
		if w.wordAt(k, hi) == "not" {
			k++
		}
		if w.wordAt(k, hi) == "materialized" {
			k++
		}
		if k >= hi || !w.toks[k].isPunct("(") {
			break
		}
		end := w.closing(k, hi)
		// A CTE is in scope in the ones after it, in its own body only if
		// RECURSIVE: WITH t AS (SELECT * FROM t) reads the table t.
		if recursive {
			w.ctes = append(w.ctes, name)
		}
		w.group(k+1, end, modeQuery)
		if !recursive {
			w.ctes = append(w.ctes, name)
		}
		ok, j = true, end+1
		// SEARCH and CYCLE clauses name columns only.
		for j < hi && !w.toks[j].isPunct(",") && !w.toks[j].isPunct("(") && w.toks[j].flags()&fQueryStart == 0 {
			j++
		}
		if j >= hi || !w.toks[j].isPunct(",") {
			break
		}
		j++
	}
	return j, ok
}

// target walks the head of INSERT INTO t, UPDATE t, DELETE FROM t or MERGE
// INTO t at i and records t as written.
func (w *walker) target(i, hi int) int {
	verb := w.toks[i].name
	w.verbAt(w.toks[i].word.upper, true)
	if w.depth > 0 {
		w.dataMod = true
	}
	j := i + 1
	if next := w.wordAt(j, hi); next == "into" && verb != "update" && verb != "delete" || next == "from" && verb == "delete" {
		j++
	}
	if w.wordAt(j, hi) == "only" {
		j++
	}
	if !w.isNameStart(j, hi) {
		w.unnamed = true
		return j
	}
	k := w.skipName(j, hi)
	w.table(w.nameOf(j, k), true)
	if k < hi && w.toks[k].kind == tkOp && w.toks[k].text == "*" {
		k++
	}
	return w.alias(k, hi)
}

// selectInto records the table that SELECT ... INTO [TEMP] [TABLE] t creates.
func (w *walker) selectInto(j, hi int) int {
	w.into = true
	for {
		switch w.wordAt(j, hi) {
		case "temp", "temporary":
			w.temp = true
			j++
			continue
		case "unlogged", "table":
			j++
			continue
		}
		break
	}
	if !w.isNameStart(j, hi) {
		w.unnamed = true
		return j
	}
	k := w.skipName(j, hi)
	w.table(w.nameOf(j, k), true)
	return k
}

// lockClause returns the row-locking clause after FOR at j, or "".
func (w *walker) lockClause(j, hi int) string {
	switch w.wordAt(j, hi) {
	case "update":
		return "FOR UPDATE"
	case "share":
		return "FOR SHARE"
	case "no":
		if w.wordAt(j+1, hi) == "key" && w.wordAt(j+2, hi) == "update" {
			return "FOR NO KEY UPDATE"
		}
	case "key":
		if w.wordAt(j+1, hi) == "share" {
			return "FOR KEY SHARE"
		}
	}
	return ""
}

// statement classifies toks[lo:hi], a non-empty statement.
func (w *walker) statement(lo, hi int) Statement {
	t := &w.toks[lo]
	k := lo
	for k < hi && w.toks[k].isPunct("(") {
		k++
	}
	if k < hi && w.toks[k].kind == tkWord && w.toks[k].flags()&fQueryStart != 0 {
		w.walk(lo, hi, modeQuery)
		return w.query()
	}
	st := Statement{Kind: KindUtility}
	if t.kind == tkWord {
		switch {
		case t.word != nil:
			st.Operation = t.word.upper
		case len(t.text) <= maxWordLen:
			st.Operation = asciiUpper(t.text)
		}
	}
	readish := false
	switch w.wordAt(lo, hi) {
	case "explain":
		return w.explain(lo, hi)
	case "create", "alter", "drop":
		return w.ddl(lo, hi)
	case "copy":
		st.Kind = KindCopy
		w.pending = st.Operation
		w.copy(lo+1, hi)
	case "truncate":
		st.Kind = KindTruncate
		w.pending = st.Operation
		w.truncate(lo+1, hi)
	case "grant", "revoke", "import", "reassign", "security":
		// Privileges, labels and new or reassigned objects change what
		// other statements may read, for tables it cannot name.
		st.Kind, st.WritesUnknown = KindDDL, true
	case "comment", "reindex":
		st.Kind = KindDDL
	case "cluster", "refresh":
		st.Kind = KindDDL
		if t.name == "refresh" {
			st.Operation = "REFRESH MATERIALIZED VIEW"
		}
		w.pending = st.Operation
		w.relation(lo+1, hi)
	case "call":
		st.Kind, st.WritesUnknown = KindCall, true
		w.walk(lo+1, hi, modeExpr)
	case "do":
		st.Kind, st.WritesUnknown = KindDo, true
	case "begin", "commit", "end", "rollback", "abort", "savepoint", "release":
		st.Kind = KindTx
	case "start":
		st.Kind, st.Operation = KindTx, "START TRANSACTION"
	case "prepare":
		if w.wordAt(lo+1, hi) == "transaction" {
			st.Kind, st.Operation = KindTx, "PREPARE TRANSACTION"
		}
	case "set", "reset", "discard":
		st.Kind, st.ChangesSession = KindSession, true
	case "show":
		readish = true
	case "declare":
		if k := w.find(lo+1, hi, "for"); k < hi {
			w.walk(k+1, hi, modeQuery)
		}
	case "execute":
		st.WritesUnknown = true
	case "listen", "unlisten", "notify", "vacuum", "analyze", "analyse", "lock",
		"checkpoint", "load", "fetch", "move", "close", "deallocate":
	default:
		st.Kind, st.WritesUnknown = KindUnknown, true
	}
	w.finish(&st, readish)
	return st
}

// query classifies a statement walked as a query: SELECT, INSERT, WITH...
func (w *walker) query() Statement {
	st := Statement{Operation: w.verb}
	readish := false
	switch w.verb {
	case "SELECT", "VALUES", "TABLE":
		st.Kind, readish = KindSelect, true
	case "INSERT":
		st.Kind = KindInsert
	case "UPDATE":
		st.Kind = KindUpdate
	case "DELETE":
		st.Kind = KindDelete
	case "MERGE":
		st.Kind = KindMerge
	default:
		st.Kind, st.WritesUnknown = KindUnknown, true
	}
	w.finish(&st, readish)
	return st
}

// explain classifies EXPLAIN: a plan runs nothing, but EXPLAIN ANALYZE runs
// its statement. An ANALYZE option counts whatever its value.
func (w *walker) explain(lo, hi int) Statement {
	j, analyze := lo+1, false
	if j < hi && w.toks[j].isPunct("(") {
		end := w.closing(j, hi)
		for k := j + 1; k < end; k++ {
			if n := w.wordAt(k, hi); n == "analyze" || n == "analyse" {
				analyze = true
			}
		}
		j = end + 1
	}
	for ; j < hi; j++ {
		if n := w.wordAt(j, hi); n == "analyze" || n == "analyse" {
			analyze = true
		} else if n != "verbose" {
			break
		}
	}
	var st Statement
	if j >= hi || w.wordAt(j, hi) == "explain" {
		st = Statement{Kind: KindUnknown, WritesUnknown: true}
		w.finish(&st, false)
	} else {
		st = w.statement(j, hi)
	}
	st.Operation, st.Summary = "EXPLAIN", strings.TrimSpace("EXPLAIN "+st.Summary)
	st.Cacheable, st.Uncacheable = false, "EXPLAIN"
	switch {
	case !analyze:
		st.Kind, st.ReadOnly, st.Writes, st.WritesUnknown, st.ChangesSession = KindUtility, true, nil, false, false
	case st.ReadOnly:
		st.Kind = KindUtility
	}
	return st
}

// ddl classifies CREATE, ALTER and DROP.
func (w *walker) ddl(lo, hi int) Statement {
	verb := w.toks[lo].name
	j, replace := lo+1, false
	for {
		switch w.wordAt(j, hi) {
		case "or", "replace":
			replace = true
			j++
			continue
		case "temp", "temporary":
			w.temp = true
			j++
			continue
		case "unlogged", "global", "local", "unique":
			j++
			continue
		}
		break
	}
	obj := w.wordAt(j, hi)
	if obj != "" {
		j++
		if n := w.wordAt(j, hi); (obj == "materialized" || obj == "foreign") && n != "" {
			obj += " " + n
			j++
		}
	}
	st := Statement{Kind: KindDDL, Operation: asciiUpper(strings.TrimSpace(verb + " " + obj))}
	w.pending = st.Operation
	switch obj {
	case "table", "view", "materialized view", "foreign table":
		for w.wordAt(j, hi) == "if" || w.wordAt(j, hi) == "not" || w.wordAt(j, hi) == "exists" || w.wordAt(j, hi) == "only" {
			j++
		}
		for {
			if !w.isNameStart(j, hi) {
				w.unnamed = true
				break
			}
			k := w.skipName(j, hi)
			w.table(w.nameOf(j, k), true)
			j = k
			if verb != "drop" || j >= hi || !w.toks[j].isPunct(",") {
				break
			}
			j++
		}
		switch {
		case verb == "create":
			if k := w.find(j, hi, "partition"); w.wordAt(k+1, hi) == "of" {
				w.writeName(k+2, hi)
			}
			// A view's query does not run now; CREATE TABLE AS runs its.
			if k := w.find(j, hi, "as"); k < hi && obj != "view" {
				w.walk(k+1, hi, modeQuery)
			}
		case verb == "alter":
			for k := j; k < hi; k++ {
				if w.toks[k].isWord("to") && w.toks[k-1].isWord("rename") ||
					w.toks[k].isWord("partition") && (w.toks[k-1].isWord("attach") || w.toks[k-1].isWord("detach")) {
					w.writeName(k+1, hi)
				}
			}
		}
	case "index":
		if verb == "create" {
			k := w.find(j, hi, "on") + 1
			if w.wordAt(k, hi) == "only" {
				k++
			}
			w.writeName(k, hi)
		}
	case "policy", "rule", "trigger":
		w.writeName(w.find(j, hi, "on")+1, hi)
	case "sequence", "statistics", "system":
		// They change no data any query reads.
	default:
		// New functions, types, schemas... change no result, unless they
		// replace one; altering or dropping them may (ALTER FUNCTION,
		// DROP SCHEMA, ALTER ROLE).
		w.unnamed = verb != "create" || replace
	}
	if verb == "drop" && w.find(j, hi, "cascade") < hi {
		w.unnamed = true // dependent objects go too
	}
	w.finish(&st, false)
	return st
}

// writeName records the table named at j as written, if one is.
func (w *walker) writeName(j, hi int) {
	if !w.isNameStart(j, hi) {
		w.unnamed = true
		return
	}
	w.table(w.nameOf(j, w.skipName(j, hi)), true)
}

// copy walks COPY t [(cols)] FROM|TO ... and COPY (query) TO ....
func (w *walker) copy(j, hi int) {
	if w.wordAt(j, hi) == "binary" {
		j++
	}
	if j < hi && w.toks[j].isPunct("(") {
		w.group(j+1, w.closing(j, hi), modeQuery)
		return
	}
	if !w.isNameStart(j, hi) {
		w.unnamed = true
		return
	}
	k := w.skipName(j, hi)
	name := w.nameOf(j, k)
	if k < hi && w.toks[k].isPunct("(") {
		k = w.closing(k, hi) + 1
	}
	w.table(name, w.wordAt(k, hi) != "to")
}

// truncate walks TRUNCATE [TABLE] [ONLY] a [*], b ... [CASCADE].
func (w *walker) truncate(j, hi int) {
	if w.wordAt(j, hi) == "table" {
		j++
	}
	named := false
	for {
		if w.wordAt(j, hi) == "only" {
			j++
		}
		if !w.isNameStart(j, hi) {
			break
		}
		k := w.skipName(j, hi)
		w.table(w.nameOf(j, k), true)
		named, j = true, k
		if j < hi && w.toks[j].kind == tkOp && w.toks[j].text == "*" {
			j++
		}
		if j >= hi || !w.toks[j].isPunct(",") {
			break
		}
		j++
	}
	if !named || w.find(j, hi, "cascade") < hi {
		w.unnamed = true
	}
}

// relation records the table of CLUSTER [VERBOSE] t and REFRESH
// MATERIALIZED VIEW [CONCURRENTLY] v as written.
func (w *walker) relation(j, hi int) {
	for {
		switch w.wordAt(j, hi) {
		case "materialized", "view", "concurrently", "verbose":
			j++
			continue
		}
		break
	}
	if j < hi && w.toks[j].isPunct("(") {
		j = w.closing(j, hi) + 1
	}
	if w.isNameStart(j, hi) {
		w.table(w.nameOf(j, w.skipName(j, hi)), true)
	}
}

// finish fills st from what the walk found; readish says whether the
// statement reads only, as far as its verb tells.
func (w *walker) finish(st *Statement, readish bool) {
	st.Reads, st.Writes, st.Functions = w.reads.names, w.writes.names, w.funcs.names
	// An UPDATE of pg_settings is a SET.
	st.ChangesSession = st.ChangesSession || w.session || slices.ContainsFunc(w.writes.names, func(n string) bool {
		return n == "pg_settings" || n == "pg_catalog.pg_settings"
	})
	st.CreatesTemp = w.temp || slices.ContainsFunc(w.writes.names, func(n string) bool {
		return (st.Kind == KindDDL || w.into) && strings.HasPrefix(n, "pg_temp")
	})
	st.WritesUnknown = st.WritesUnknown || w.unnamed || w.tooDeep || w.unknownFn != "" || w.sequence != ""
	why := w.mayWrite()
	st.ReadOnly = readish && why == ""
	switch {
	case !readish:
		st.Uncacheable = "not a read"
	case st.Kind != KindSelect:
		st.Uncacheable = "utility statement"
	case why != "":
		st.Uncacheable = why
	case w.volatile != "":
		st.Uncacheable = "volatile function " + w.volatile
	case w.catalog != "":
		st.Uncacheable = "system catalog " + w.catalog
	}
	st.Cacheable = st.Uncacheable == ""
	st.UserFunctionsOnly = readish && st.Kind == KindSelect && w.unknownFn != "" &&
		strings.HasPrefix(why, "calls function ") && w.volatile == "" && w.catalog == "" && !w.unnamed && !w.tooDeep && w.sequence == ""
	st.Summary = w.summary(st.Operation)
}

// mayWrite says why a statement that reads by its verb may still write,
// or returns "".
func (w *walker) mayWrite() string {
	switch {
	case w.into:
		return "SELECT INTO"
	case w.lock != "":
		return w.lock
	case w.dataMod:
		return "data-modifying WITH"
	case len(w.writes.names) > 0:
		return "writes " + w.writes.names[0]
	case w.tooDeep:
		return "nested too deeply"
	case w.unnamed:
		return "may write unknown tables"
	case w.session:
		return "changes session state (set_config)"
	case w.sequence != "":
		return "calls " + w.sequence + "(), which writes a sequence"
	case w.unknownFn != "":
		return "calls function " + w.unknownFn + ", which may write"
	case w.sideEffect != "":
		return "calls " + w.sideEffect + "(), which has side effects"
	}
	return ""
}

// maxSummary is the longest Summary, in bytes.
const maxSummary = 255

// summary returns op followed by the verbs and tables of the walk.
func (w *walker) summary(op string) string {
	s := w.sum.String()
	switch {
	case s == "":
		return op
	case op == "", s == op || strings.HasPrefix(s, op) && s[len(op)] == ' ':
		return s
	}
	return op + " " + s
}

// truncateSummary cuts s to maxSummary bytes at a word boundary.
func truncateSummary(s string) string {
	if len(s) <= maxSummary {
		return s
	}
	if k := strings.LastIndexByte(s[:maxSummary+1], ' '); k > 0 {
		return s[:k]
	}
	k := maxSummary
	for k > 0 && !utf8.RuneStart(s[k]) {
		k--
	}
	return s[:k]
}

// ---- fingerprint ----

// fingerprinter writes the normalized text of statements, in the spirit of
// pg_stat_statements: literals become $n, comments and layout go.
type fingerprinter struct {
	b        strings.Builder
	next     int  // number of the next placeholder
	glue     bool // no space before the next token: it follows ( [ . ::
	callable bool // the last token was a name: a "(" after it opens arguments
	operand  bool // the last token ended an operand: a "-" after it subtracts
}

func (f *fingerprinter) space(t *token) {
	if f.b.Len() == 0 || f.glue {
		return
	}
	if t.kind == tkPunct {
		switch t.text {
		case ",", ")", "]", ";", "::", ".", "[":
			return
		case "(":
			if f.callable {
				return
			}
		}
	}
	f.b.WriteByte(' ')
}

func (f *fingerprinter) write(t *token, s string) {
	f.space(t)
	f.b.WriteString(s)
	fl := t.flags()
	f.glue = t.kind == tkPunct && (t.text == "(" || t.text == "[" || t.text == "." || t.text == "::")
	f.callable = t.kind == tkQIdent || t.kind == tkWord && fl&(fNoFunc|fAfterCall) == 0
	f.operand = t.kind == tkQIdent || t.kind == tkParam || t.kind == tkWord && fl&fKeyword == 0 ||
		t.isPunct(")") || t.isPunct("]")
}

func (f *fingerprinter) placeholder(t *token) {
	f.space(t)
	var buf [20]byte
	f.b.WriteByte('$')
	f.b.Write(strconv.AppendInt(buf[:0], int64(f.next), 10))
	f.next++
	f.glue, f.callable, f.operand = false, false, true
}

// statement writes the fingerprint of toks[lo:hi], after a "; " if it is
// not the first.
func (f *fingerprinter) statement(toks []token, lo, hi int) {
	if f.b.Len() > 0 {
		f.b.WriteByte(';')
		f.glue = false
	}
	valuesEnd := -1 // the ")" closing the first row of VALUES
	for i := lo; i < hi; i++ {
		t := &toks[i]
		switch {
		case i == lo && t.kind == tkWord:
			// The verb is upper case even when it is no keyword (SHOW, LOCK).
			if t.word != nil {
				f.write(t, t.word.upper)
			} else {
				f.write(t, asciiUpper(t.text))
			}
		case t.kind == tkString || t.kind == tkNumber:
			f.placeholder(t)
		case t.kind == tkOp && t.text == "-" && !f.operand && i+1 < hi && toks[i+1].kind == tkNumber:
			f.placeholder(t) // a negative number is one literal
			i++
		case (t.isWord("in") || t.isWord("array")) && f.collapse(toks, i, hi):
			i = int(toks[i+1].end)
		case t.kind == tkWord && t.flags()&fKeyword != 0:
			f.write(t, t.word.upper)
		case t.kind == tkWord:
			f.write(t, t.name)
		default:
			f.write(t, t.text)
		}
		if t.isWord("values") && i+1 < hi && toks[i+1].isPunct("(") {
			valuesEnd = int(toks[i+1].end)
		}
		if i == valuesEnd {
			// VALUES (...), (...), ... keeps its first row only.
			j := i + 1
			for j+1 < hi && toks[j].isPunct(",") && toks[j+1].isPunct("(") && int(toks[j+1].end) < hi {
				j = int(toks[j+1].end) + 1
			}
			if j > i+1 {
				f.b.WriteString(" /*, ... */")
				f.glue, f.callable, f.operand = false, false, true
				i = j - 1
			}
			valuesEnd = -1
		}
	}
}

// collapse writes IN (1, 2, 3) as IN ($1 /*, ... */), and ARRAY[...] alike,
// when the list at toks[i+1] holds only constants and parameters.
func (f *fingerprinter) collapse(toks []token, i, hi int) bool {
	if i+1 >= hi {
		return false
	}
	opener, closer := "(", ")"
	if toks[i].name == "array" {
		opener, closer = "[", "]"
	}
	open := &toks[i+1]
	end := int(open.end)
	if !open.isPunct(opener) || end >= hi || end <= i+2 || !toks[end].isPunct(closer) || !constList(toks, i+2, end) {
		return false
	}
	f.write(&toks[i], toks[i].word.upper)
	f.write(open, open.text)
	if first := &toks[i+2]; first.kind == tkParam {
		f.write(first, first.text)
	} else {
		f.placeholder(first)
	}
	f.b.WriteString(" /*, ... */")
	f.write(&toks[end], closer)
	return true
}

// constList reports whether toks[lo:hi] is a list of constants and
// parameters, each maybe negative or cast: 1, -2, $3, 'x'::text.
func constList(toks []token, lo, hi int) bool {
	elem := true // an element is due
	for i := lo; i < hi; i++ {
		t := &toks[i]
		if !elem {
			if !t.isPunct(",") {
				return false
			}
			elem = true
			continue
		}
		if t.kind == tkOp && t.text == "-" && i+1 < hi && toks[i+1].kind == tkNumber {
			i++
		} else if t.kind != tkString && t.kind != tkNumber && t.kind != tkParam {
			return false
		}
		for i+2 < hi && toks[i+1].isPunct("::") && toks[i+2].kind == tkWord {
			i += 2
		}
		elem = false
	}
	return !elem
}

// fnv64a is the 64-bit FNV-1a hash: stable across processes and releases.
func fnv64a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// ---- memo ----

const (
	memoMaxText  = 64 << 10 // longer texts are classified each time, not kept
	memoMaxBytes = 32 << 20 // SQL bytes kept, both generations together
)

// classifier memoizes Classify per SQL text. It keeps two generations of
// at most max/2 texts each: when the current one fills up it becomes the
// old one, and a hit in the old one moves back to the current one. Texts
// used often stay; the rest age out without any bookkeeping per hit.
type classifier struct {
	half     int
	mu       sync.RWMutex
	cur, old map[string]*Statement
	curBytes int
}

// newClassifier returns a classifier that remembers about max texts (at
// least 2).
func newClassifier(max int) *classifier {
	half := max / 2
	if half < 1 {
		half = 1
	}
	return &classifier{half: half, cur: make(map[string]*Statement, half)}
}

// classify returns Classify(sql), from memory when it can. The result is
// shared: callers must not modify it.
func (c *classifier) classify(sql string) *Statement {
	c.mu.RLock()
	st, hit := c.cur[sql]
	if !hit {
		st = c.old[sql]
	}
	c.mu.RUnlock()
	switch {
	case hit:
		return st
	case st == nil && len(sql) > memoMaxText:
		return Classify(sql)
	case st == nil:
		st = Classify(sql)
	}
	c.mu.Lock()
	if _, ok := c.cur[sql]; !ok {
		if len(c.cur) >= c.half || c.curBytes+len(sql) > memoMaxBytes/2 {
			c.old, c.cur, c.curBytes = c.cur, make(map[string]*Statement, c.half), 0
		}
		c.cur[sql] = st
		c.curBytes += len(sql)
	}
	c.mu.Unlock()
	return st
}
