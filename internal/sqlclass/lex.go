package sqlclass

import (
	"strings"
)

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
