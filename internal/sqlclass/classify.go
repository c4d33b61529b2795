package sqlclass

import (
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Classify lexes sql and reports what it does. It never panics: text the
// classifier fails on is reported as an unknown statement that may write
// anything.
func Classify(sql string) (st *Statement) {
	defer func() {
		if recover() != nil {
			st = &Statement{Kind: KindUnknown, WritesUnknown: true, Uncacheable: "unclassifiable",
				bypass: NotCacheable + ": unclassifiable"}
		}
	}()
	st = classify(sql)
	st.CacheHint, st.CacheTTL = cacheHint(sql)
	if !st.Cacheable {
		st.bypass = NotCacheable + ": " + st.Uncacheable
	}
	return st
}

func classify(sql string) *Statement {
	toks, maxParam, doubt := lex(sql)
	diverge := -1
	if doubt == "" {
		if diverge = offDivergence(sql, toks); diverge >= 0 {
			doubt = "a backslash in a string: standard_conforming_strings=off would end it elsewhere"
		}
	}
	st := &Statement{}
	var reads, writes, funcs nameList
	fp := fingerprinter{next: maxParam + 1}
	fp.b.Grow(len(sql) + len(sql)/4)
	n := 0
	for lo, hi := nextStatement(toks, 0); lo < hi; lo, hi = nextStatement(toks, hi) {
		w := walker{toks: toks}
		s := w.statement(lo, hi)
		if diverge < 0 {
			fp.statement(toks, lo, hi)
		}
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
	if doubt != "" {
		// The server may split or read the text otherwise: trust nothing
		// found, and let no transaction statement hide the doubt.
		st.Kind, st.ReadOnly, st.Cacheable, st.UserFunctionsOnly, st.WritesUnknown = KindUnknown, false, false, false, true
		st.Uncacheable = doubt
	}
	if diverge >= 0 {
		// Only the tokens both readings share are known not to be
		// literals; the rest is one.
		toks = append(toks[:diverge:diverge], token{kind: tkString, text: sql[offset(sql, toks[diverge].text):]})
		for lo, hi := nextStatement(toks, 0); lo < hi; lo, hi = nextStatement(toks, hi) {
			fp.statement(toks, lo, hi)
		}
	}
	st.Fingerprint = fp.b.String()
	st.FingerprintID = fnv64a(st.Fingerprint)
	st.Summary = truncateSummary(st.Summary)
	return st
}

// offDivergence returns the index of the first token of toks (lexed with
// standard_conforming_strings on, as pgx requires for arguments) that the
// server lexes otherwise with it off, which pgx allows for a text without
// arguments; -1 if none. Only a backslash in a plain string can make them
// differ.
func offDivergence(sql string, toks []token) int {
	backslash := false
	for k := range toks {
		t := &toks[k]
		if t.kind == tkString && t.text[0]|0x20 != 'e' && t.text[0]|0x20 != 'b' && t.text[0]|0x20 != 'x' &&
			t.text[0] != '$' && strings.IndexByte(t.text, '\\') >= 0 {
			backslash = true
			break
		}
	}
	if !backslash {
		return -1
	}
	off, _, _ := lexWith(sql, qEsc)
	for k := range toks {
		if k >= len(off) || off[k].kind != toks[k].kind || off[k].text != toks[k].text {
			return k
		}
	}
	return -1 // the same tokens end at the same place: what follows reads the same
}

// offset returns where sub, a substring of s, starts in s.
func offset(s, sub string) int {
	return int(uintptr(unsafe.Pointer(unsafe.StringData(sub))) - uintptr(unsafe.Pointer(unsafe.StringData(s))))
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

// isRelStart reports whether a relation's name starts at j: a quoted name,
// or a word the grammar takes for a ColId (any but a reserved or
// type_func_name keyword: FROM transaction, UPDATE partition).
func (w *walker) isRelStart(j, hi int) bool {
	if j >= hi {
		return false
	}
	t := &w.toks[j]
	return t.kind == tkQIdent || t.kind == tkWord && t.flags()&fNotColID == 0
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

// isQuery reports whether the group toks[lo:hi] holds a query; in FROM
// (inFrom) only a SELECT, VALUES, TABLE or WITH, elsewhere an INSERT,
// UPDATE, DELETE or MERGE too. A word that starts a query only when what
// follows fits may name a relation or a column: (values JOIN t ON true).
func (w *walker) isQuery(lo, hi int, inFrom bool) bool {
	for k := 0; lo < hi && k < 16 && w.toks[lo].isPunct("("); k++ {
		lo++
	}
	if lo >= hi || w.toks[lo].kind != tkWord || w.toks[lo].flags()&fQueryStart == 0 {
		return false
	}
	switch next := w.wordAt(lo+1, hi); w.toks[lo].name {
	case "select", "table", "with":
		return true
	case "values":
		return lo+1 < hi && w.toks[lo+1].isPunct("(")
	case "insert", "merge":
		return !inFrom && next == "into"
	case "delete":
		return !inFrom && next == "from"
	case "update":
		return !inFrom && (next == "only" || w.isRelStart(lo+1, hi))
	}
	return false
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
	if w.isQuery(lo, hi, m == modeFrom) {
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
	refEnd := -1             // where the last table reference of FROM ended
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
					i = w.alias(end+1, hi, true) - 1
					refEnd = i + 1
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
			if w.volatile == "" && isTimeLiteral(t.text) {
				w.volatile = t.text
			}
			expect = false
			continue
		default:
			expect = false
			continue
		}
		f := t.flags()
		if expect && w.isRelStart(i, hi) && !(t.isWord("rows") && w.wordAt(i+1, hi) == "from") {
			if j := w.skipName(i, hi); j >= hi || !w.toks[j].isPunct("(") {
				w.read(i, j)
				if j < hi && w.toks[j].kind == tkOp && w.toks[j].text == "*" {
					j++ // t* names t and its children, as t does
				}
				i = w.alias(j, hi, true) - 1
				refEnd = i + 1
				expect = false
				continue
			}
		}
		if t.isWord("as") {
			i = w.skipAs(i+1, hi) - 1
			continue
		}
		// A word before "." is the first part of a name: values.f(x).
		if f&fKeyword != 0 && m != modeExpr && !(i+1 < hi && w.toks[i+1].isPunct(".")) {
			switch t.name {
			case "with":
				if j, ok := w.with(i+1, hi); ok {
					i, atStmt = j-1, true
					continue
				}
			case "select", "values":
				if t.name == "values" && !(i+1 < hi && w.toks[i+1].isPunct("(")) {
					break // a column or relation named values
				}
				w.verbAt(t.word.upper, stmtStart)
				inFrom, expect = false, false
				continue
			case "table":
				w.verbAt("TABLE", stmtStart)
				j := i + 1
				if w.wordAt(j, hi) == "only" {
					j++
				}
				if w.isRelStart(j, hi) {
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
				// IS [NOT] DISTINCT FROM; DISTINCT alone may be a column
				// label (SELECT a distinct FROM t).
				if k := i - 2; k >= lo && w.toks[i-1].isWord("distinct") {
					if w.toks[k].isWord("not") && k > lo {
						k--
					}
					if w.toks[k].isWord("is") && !(k > lo && w.toks[k-1].isPunct(".")) { // not a.is
						break
					}
				}
				inFrom, expect = true, true
				continue
			case "join":
				if i+1 < hi && w.toks[i+1].isPunct("(") && w.callable(i, lo, inFrom, refEnd == i) {
					break // join(...), a function
				}
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
				if i+1 < hi && w.toks[i+1].isPunct("(") {
					break // tablesample(...), a function: a method's name comes first
				}
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
		syntax := j == i+1 && (f&fNoFunc != 0 && !w.callable(i, lo, inFrom, refEnd == i) || f&fAfterCall != 0 && i > lo && w.toks[i-1].isPunct(")"))
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
				i = w.alias(k, hi, true) - 1
				refEnd = i + 1
			}
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

// callable reports whether the fNoFunc word at i, before "(", calls a
// function: the grammar lets its non-reserved ones name one where they are
// not syntax (like(a, b), but a LIKE (b); set(x), but UPDATE t SET (a) =).
func (w *walker) callable(i, lo int, inFrom, afterRef bool) bool {
	var prev *token
	if i > lo {
		prev = &w.toks[i-1]
	}
	after := func(words ...string) bool {
		return prev != nil && prev.kind == tkWord && slices.Contains(words, prev.name)
	}
	switch w.toks[i].name {
	case "like", "ilike", "similar", "overlaps", "isnull", "notnull", "is":
		if after("not") && i-1 > lo { // a NOT LIKE (b), but NOT like(a, b)
			prev = &w.toks[i-2]
		}
		return !w.operand(prev)
	case "set": // UPDATE t SET is taken by target; DO UPDATE SET, THEN UPDATE SET
		return !after("update")
	case "conflict":
		return !after("on")
	case "by":
		return !after("order", "group", "partition", "first")
	case "sets":
		return !after("grouping")
	case "insert":
		return !after("then")
	case "join": // in FROM: a JOIN (b ...), t * JOIN (...), t LEFT JOIN (...), ON a = b JOIN (...)
		if after("escape") && i-2 >= lo && w.operand(&w.toks[i-2]) {
			return true // ON a LIKE 'x' ESCAPE join(...)
		}
		return !inFrom || !afterRef && !w.operand(prev) && !after("cross", "left", "right", "full", "inner", "outer", "natural")
	case "update", "delete", "merge", "authorization", "binary", "collation", "concurrently", "cross",
		"freeze", "full", "inner", "natural", "outer", "tablesample", "verbose":
		return true // never syntax before "(" where the walk reaches
	case "varying":
		return !after("character", "bit", "char", "nchar", "national")
	}
	return false
}

// operand reports whether t ends an operand, so that an infix word follows.
func (w *walker) operand(t *token) bool {
	switch {
	case t == nil:
		return false
	case t.kind == tkWord:
		switch t.name {
		case "true", "false", "null":
			return true
		case "by", "escape", "zone": // non-reserved, but syntax: ORDER BY like(a, b)
			return false
		}
		return t.flags()&(fNotColID|fVolatileKw) != fNotColID
	case t.kind == tkPunct:
		return t.text == ")" || t.text == "]"
	}
	return t.kind != tkOp
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

// IsTimeWord reports whether a string literal (quotes included) or an
// argument is one of the special date/time inputs whose value is the time
// it is read: now, today, tomorrow, yesterday.
func IsTimeWord(s string) bool {
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

// isTimeLiteral reports whether the string literal text, in any of its
// forms (E'...', U&'...', $$...$$, continued), may be read as a time word:
// E'no\x77' and 'no'\n'w' are 'now'. Whitespace is left out of the value
// (the server trims it), and a literal that does not decode counts as one.
func isTimeLiteral(text string) bool {
	var buf [16]byte
	v := buf[:0]
	add := func(c rune) bool { // false once v cannot be a time word
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == '\b':
		case c >= 0x80 || len(v) == len(buf):
			return false
		default:
			v = append(v, byte(c))
		}
		return true
	}
	if text[0] == '$' {
		k := strings.IndexByte(text[1:], '$') + 2 // past the opening tag
		body := text[k:]
		if len(body) >= k {
			body = body[:len(body)-k]
		}
		for _, c := range body {
			if !add(c) {
				return false
			}
		}
		return isTimeValue(v)
	}
	mode, i := qStd, 0
	switch text[0] | 0x20 {
	case 'b', 'x':
		return false
	case 'e':
		mode, i = qEsc, 1
	case 'n':
		i = 1
	case 'u':
		end, esc := scanString(text, 2, qStd), byte('\\')
		if rest := strings.TrimSpace(text[end:]); rest != "" { // UESCAPE 'c'
			if k := strings.LastIndexByte(rest, '\''); k >= 2 && rest[k-2] == '\'' {
				esc = rest[k-1]
			}
		}
		if strings.IndexByte(text[2:end], esc) >= 0 {
			body := text[3 : end-1]
			if strings.IndexByte(body, '\'') >= 0 {
				return true // escapes across '' or segments: maybe
			}
			u, ok := unescapeUnicode(body, esc)
			if !ok {
				return true
			}
			for _, c := range u {
				if !add(c) {
					return false
				}
			}
			return isTimeValue(v)
		}
		i = 2
	}
	for i < len(text) && text[i] == '\'' {
		i++ // the opening quote
		closed := false
		for i < len(text) && !closed {
			c := text[i]
			switch {
			case c == '\'' && i+1 < len(text) && text[i+1] == '\'':
				i += 2
				if !add('\'') {
					return false
				}
			case c == '\'':
				i++
				closed = true
			case mode == qEsc && c == '\\' && i+1 < len(text):
				r, n := unescapeE(text[i+1:])
				i += 1 + n
				if !add(r) {
					return false
				}
			default:
				i++
				if !add(rune(c)) {
					return false
				}
			}
		}
		next, ok := continuation(text, i)
		if !closed || !ok {
			break
		}
		i = next
	}
	return isTimeValue(v)
}

// unescapeE decodes the E'...' escape after a backslash at the start of s:
// the character and the bytes it takes.
func unescapeE(s string) (rune, int) {
	digits := func(n, base int) (rune, int) {
		var r rune
		k := 0
		for ; k < n && k < len(s)-1; k++ {
			c := s[1+k]
			d := -1
			switch {
			case '0' <= c && c <= '9':
				d = int(c - '0')
			case 'a' <= c|0x20 && c|0x20 <= 'f':
				d = int(c|0x20-'a') + 10
			}
			if d < 0 || d >= base {
				break
			}
			r = r*rune(base) + rune(d)
		}
		return r, 1 + k
	}
	switch c := s[0]; c {
	case 'b', 'f', 'n', 'r', 't':
		return ' ', 1
	case 'x':
		return digits(2, 16)
	case 'u':
		return digits(4, 16)
	case 'U':
		return digits(8, 16)
	default:
		if '0' <= c && c <= '7' {
			r, n := digits(2, 8)
			return rune(c-'0')<<(3*(n-1)) | r, n
		}
		return rune(c), 1
	}
}

// isTimeValue reports whether v, its whitespace left out, is a time word.
func isTimeValue(v []byte) bool {
	for _, w := range [...]string{"now", "today", "tomorrow", "yesterday"} {
		if strings.EqualFold(string(v), w) {
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
	case f&fSession != 0 && !w.transactionLocal(j):
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

// transactionLocal reports whether the call whose "(" is toks[open] ends
// with the literal argument true: set_config(name, value, true) changes the
// setting until the end of the transaction (an implicit one outside a
// block), never the session's. A bind parameter there may be false.
func (w *walker) transactionLocal(open int) bool {
	end := int(w.toks[open].end)
	return end < len(w.toks) && end-2 > open && w.toks[end].isPunct(")") &&
		w.toks[end-1].kind == tkWord && w.toks[end-1].name == "true" && w.toks[end-2].isPunct(",")
}

// alias skips an alias and its column list after a table reference: AS and
// a name, or, where bare allows, a name without AS, which the grammar takes
// from the ColIds (FROM t range).
func (w *walker) alias(j, hi int, bare bool) int {
	named := false
	if w.wordAt(j, hi) == "as" {
		j++
		if j < hi && (w.toks[j].kind == tkWord || w.toks[j].kind == tkQIdent) {
			j++
			named = true
		}
	} else if bare && w.isRelStart(j, hi) {
		j++
		named = true
	}
	if named && j < hi && w.toks[j].isPunct("(") {
		if end := w.closing(j, hi); !w.isQuery(j+1, end, false) {
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
		case t.isPunct("[") || t.isPunct("(") && !w.isQuery(j+1, w.closing(j, hi), false):
			// The grammar takes any expression for a modifier (the server
			// rejects all but constants later): walk it, calls and all.
			end := w.closing(j, hi)
			w.group(j+1, end, modeExpr)
			j = end + 1
		default:
			return j
		}
	}
	return j
}

// with walks the CTE list after WITH and returns where the main statement
// starts; ok is false when no CTE follows (WITH ORDINALITY, WITH TIES).
func (w *walker) with(j, hi int) (next int, ok bool) {
	// WITH recursive AS (...) names a CTE recursive.
	recursive := w.wordAt(j, hi) == "recursive" && j+1 < hi &&
		(w.toks[j+1].kind == tkQIdent || w.toks[j+1].kind == tkWord && w.toks[j+1].name != "as")
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
		// A CTE's verb is not the statement's, even when the main
		// statement is in parentheses: WITH u AS (UPDATE ...) (SELECT ...).
		verb, verbDepth := w.verb, w.verbDepth
		w.group(k+1, end, modeQuery)
		w.verb, w.verbDepth = verb, verbDepth
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
	if !w.isRelStart(j, hi) {
		w.unnamed = true
		return j
	}
	k := w.skipName(j, hi)
	w.table(w.nameOf(j, k), true)
	if k < hi && w.toks[k].kind == tkOp && w.toks[k].text == "*" {
		k++
	}
	// INSERT takes an alias after AS only; UPDATE's SET is no alias, and
	// is taken here: no function set(...) follows it.
	k = w.alias(k, hi, verb != "insert" && !(verb == "update" && w.wordAt(k, hi) == "set"))
	if verb == "update" && w.wordAt(k, hi) == "set" {
		k++
	}
	return k
}

// selectInto records the table that SELECT ... INTO [TEMP] [TABLE] t
// creates; INTO temp names a table temp.
func (w *walker) selectInto(j, hi int) int {
	w.into = true
	start, temp, before := j, -1, -1 // the last TEMP word, and the one before
	for {
		switch w.wordAt(j, hi) {
		case "temp", "temporary":
			before, temp = temp, j
			j++
			continue
		case "unlogged", "table", "local", "global":
			j++
			continue
		}
		break
	}
	if !w.isRelStart(j, hi) && j > start && w.toks[j-1].name != "table" {
		j-- // the last word was the name
		if temp == j {
			temp = before
		}
	}
	w.temp = w.temp || temp >= start
	if !w.isRelStart(j, hi) {
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
		// PREPARE TRANSACTION 'gid'; PREPARE transaction AS ... names a statement.
		if w.wordAt(lo+1, hi) == "transaction" && lo+2 < hi && w.toks[lo+2].kind == tkString {
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
	st.Cacheable, st.Uncacheable, st.UserFunctionsOnly = false, "EXPLAIN", false
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
			if !w.isRelStart(j, hi) {
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
	if !w.isRelStart(j, hi) {
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
	if !w.isRelStart(j, hi) {
		w.unnamed = true
		return
	}
	k := w.skipName(j, hi)
	name := w.nameOf(j, k)
	if k < hi && w.toks[k].isPunct("(") {
		k = w.closing(k, hi) + 1
	}
	w.table(name, w.wordAt(k, hi) != "to")
	if k := w.find(k, hi, "where"); k < hi {
		w.walk(k+1, hi, modeExpr) // COPY FROM ... WHERE runs its condition on each row
	}
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
		if !w.isRelStart(j, hi) {
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
	if w.isRelStart(j, hi) {
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
