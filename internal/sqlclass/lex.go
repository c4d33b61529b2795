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

// lex splits sql into tokens as the server does with
// standard_conforming_strings on, dropping whitespace and comments. maxParam
// is the highest $n in the text; doubt, when not "", says why the server may
// read the text otherwise: a number run into a word (123abc, 0x1F$$), which
// PostgreSQL 16 rejects and older servers lex differently, or a Unicode
// escape in an identifier that the classifier cannot decode.
func lex(sql string) (toks []token, maxParam int, doubt string) {
	return lexWith(sql, qStd)
}

// lexWith is lex with plain '...' strings read in mode plain: qEsc is what
// standard_conforming_strings=off makes of them.
func lexWith(sql string, plain quoteMode) (toks []token, maxParam int, doubt string) {
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
			i = commentEnd(sql, i)
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			i = skipComment(sql, i)
			continue
		case c == '\'':
			kind, i = tkString, scanString(sql, i, plain)
		case c == '"':
			kind, i = tkQIdent, scanQuoted(sql, i, '"')
		case isIdentStart(c):
			kind, i = scanWord(sql, i, plain)
			if kind != tkWord && c|0x20 == 'u' {
				i = uescape(sql, i) // part of the U&'...' or U&"..." token
			}
		case c == '$':
			kind, i = scanDollar(sql, i)
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
			kind, i = tkNumber, scanNumber(sql, i)
			if i < len(sql) && isIdentCont(sql[i]) && doubt == "" {
				doubt = "malformed number"
			}
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
			t.name = truncateIdent(t.name)
		case tkQIdent:
			name := unquote(t.text)
			if t.text[0] != '"' {
				var ok bool
				if name, ok = unicodeName(t.text); !ok && doubt == "" {
					doubt = "invalid Unicode escape"
				}
			}
			t.name = truncateIdent(name)
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
	return toks, maxParam, doubt
}

// maxIdentLen is NAMEDATALEN-1: the server truncates longer identifiers,
// quoted or not.
const maxIdentLen = 63

// truncateIdent cuts name to maxIdentLen bytes at a character boundary, as
// the server does (truncate_identifier: pg_mbcliplen in UTF-8, which reads a
// character's length from its first byte).
func truncateIdent(name string) string {
	if len(name) <= maxIdentLen {
		return name
	}
	n := 0
	for n < len(name) {
		l := 1
		switch c := name[n]; {
		case c&0xe0 == 0xc0:
			l = 2
		case c&0xf0 == 0xe0:
			l = 3
		case c&0xf8 == 0xf0:
			l = 4
		}
		if n+l > maxIdentLen {
			break
		}
		n += l
	}
	return name[:n]
}

// uescape returns the end of the UESCAPE 'c' clause after the U&'...' or
// U&"..." that ends at i, or i if none follows.
func uescape(s string, i int) int {
	j := skipSpace(s, i)
	if j+7 > len(s) || !strings.EqualFold(s[j:j+7], "uescape") || j+7 < len(s) && isIdentCont(s[j+7]) {
		return i
	}
	j = skipSpace(s, j+7)
	switch {
	case j < len(s) && s[j] == '\'':
		return scanString(s, j, qStd)
	case j+1 < len(s) && s[j]|0x20 == 'e' && s[j+1] == '\'':
		return scanString(s, j+1, qEsc)
	}
	return i // the server rejects a UESCAPE without its string
}

// skipSpace returns the end of the whitespace and comments at i.
func skipSpace(s string, i int) int {
	for i < len(s) {
		switch c := s[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = commentEnd(s, i)
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = skipComment(s, i)
		default:
			return i
		}
	}
	return i
}

// unicodeName returns the name a U&"..." [UESCAPE 'c'] token stands for; ok
// is false if the server would reject it.
func unicodeName(text string) (name string, ok bool) {
	end := scanQuoted(text, 2, '"')
	body := unquote(text[:end])
	esc := byte('\\')
	if rest := strings.TrimSpace(text[end:]); rest != "" {
		// Comments may stand between; only UESCAPE 'c' is taken.
		k := strings.LastIndexByte(rest, '\'')
		if k < 2 || rest[k-2] != '\'' || !validUescape(rest[k-1]) {
			return body, false
		}
		esc = rest[k-1]
	}
	return unescapeUnicode(body, esc)
}

// validUescape reports whether the server accepts c as a UESCAPE character.
func validUescape(c byte) bool {
	return !isHex(c) && c != '+' && c != '\'' && c != '"' && c != ' ' && (c < '\t' || c > '\r')
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// unescapeUnicode decodes the escapes of a U&"..." body: esc esc is esc,
// esc and 4 hex digits or esc + and 6 are a code point (UTF-16 surrogates in
// pairs). It reports false where the server reports an error.
func unescapeUnicode(s string, esc byte) (string, bool) {
	if strings.IndexByte(s, esc) < 0 {
		return s, true
	}
	var b strings.Builder
	hex := func(h string) (rune, bool) {
		var r rune
		for i := 0; i < len(h); i++ {
			if !isHex(h[i]) {
				return 0, false
			}
			d := h[i] | 0x20
			if d <= '9' {
				r = r<<4 | rune(d-'0')
			} else {
				r = r<<4 | rune(d-'a'+10)
			}
		}
		return r, true
	}
	var high rune // a first surrogate waiting for its second
	for i := 0; i < len(s); {
		var r rune
		switch {
		case s[i] != esc:
			if high != 0 {
				return "", false
			}
			b.WriteByte(s[i])
			i++
			continue
		case i+1 < len(s) && s[i+1] == esc:
			if high != 0 {
				return "", false
			}
			b.WriteByte(esc)
			i += 2
			continue
		case i+5 <= len(s) && isHex(s[i+1]):
			v, good := hex(s[i+1 : i+5])
			if !good {
				return "", false
			}
			r, i = v, i+5
		case i+8 <= len(s) && s[i+1] == '+':
			v, good := hex(s[i+2 : i+8])
			if !good {
				return "", false
			}
			r, i = v, i+8
		default:
			return "", false
		}
		switch {
		case r <= 0 || r > 0x10FFFF:
			return "", false
		case high != 0:
			if r < 0xDC00 || r > 0xDFFF {
				return "", false
			}
			r, high = 0x10000+(high-0xD800)<<10+(r-0xDC00), 0
		case r >= 0xD800 && r <= 0xDBFF:
			high = r
			continue
		case r >= 0xDC00 && r <= 0xDFFF:
			return "", false
		}
		b.WriteRune(r)
	}
	return b.String(), high == 0
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

// SkipSpace returns the index of the first byte at or after i that is
// neither white space nor in a comment, as PostgreSQL reads them (a --
// comment ends at \n or \r; /* */ comments nest); len(s) when none is.
func SkipSpace(s string, i int) int {
	for i < len(s) {
		switch {
		case strings.IndexByte(" \t\n\r\f\v", s[i]) >= 0:
			i++
		case strings.HasPrefix(s[i:], "--"):
			i = commentEnd(s, i)
		case strings.HasPrefix(s[i:], "/*"):
			i = skipComment(s, i)
		default:
			return i
		}
	}
	return i
}

// commentEnd returns the end of the -- comment at i: the next newline, which
// is \n or \r (scan.l), or the end of the text.
func commentEnd(s string, i int) int {
	if k := strings.IndexAny(s[i:], "\r\n"); k >= 0 {
		return i + k
	}
	return len(s)
}

// scanQuoted returns the end of the quoted identifier opening at s[i]; a
// doubled quote stands for itself. Unterminated text runs to the end, as the
// server would reject it whole.
func scanQuoted(s string, i int, q byte) int {
	for i++; i < len(s); i++ {
		if s[i] == q {
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(s)
}

// quoteMode is how a string literal's quotes and backslashes read.
type quoteMode uint8

const (
	qStd  quoteMode = iota // '...', N'...', U&'...': '' is a quote
	qEsc                   // E'...': a backslash escapes the next byte too
	qBits                  // B'...', X'...': '' ends the string, and a new one begins
)

// scanString returns the end of the string literal opening at s[i]. A
// string continues after whitespace holding a newline (and -- comments)
// when a quote follows, in the same mode: E'a'\n'\” is one string.
// Unterminated text runs to the end, as the server would reject it whole.
func scanString(s string, i int, m quoteMode) int {
	for {
		i++ // past the opening quote
		for i < len(s) {
			c := s[i]
			if c == '\\' && m == qEsc {
				i += 2
				continue
			}
			if c == '\'' {
				if m != qBits && i+1 < len(s) && s[i+1] == '\'' {
					i += 2
					continue
				}
				break
			}
			i++
		}
		if i >= len(s) {
			return len(s)
		}
		i++ // past the closing quote
		next, ok := continuation(s, i)
		if !ok {
			return i
		}
		i = next
	}
}

// continuation returns the quote that continues the string ending at i:
// scan.l's {quotecontinue}, whitespace and -- comments holding a newline,
// then a quote.
func continuation(s string, i int) (int, bool) {
	newline := false
	for i < len(s) {
		switch c := s[i]; {
		case c == '\n' || c == '\r':
			newline = true
			i++
		case c == ' ' || c == '\t' || c == '\f' || c == '\v':
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = commentEnd(s, i)
		case c == '\'':
			return i, newline
		default:
			return 0, false
		}
	}
	return 0, false
}

// scanWord scans an identifier or keyword, or a string or quoted identifier
// that a prefix introduces: E'...', B'...', X'...', N'...', U&'...', U&"...";
// plain is the mode of N'...'.
func scanWord(s string, i int, plain quoteMode) (tokKind, int) {
	if i+1 < len(s) {
		switch s[i] | 0x20 {
		case 'e':
			if s[i+1] == '\'' {
				return tkString, scanString(s, i+1, qEsc)
			}
		case 'b', 'x':
			if s[i+1] == '\'' {
				return tkString, scanString(s, i+1, qBits)
			}
		case 'n':
			if s[i+1] == '\'' {
				return tkString, scanString(s, i+1, plain)
			}
		case 'u':
			if s[i+1] == '&' && i+2 < len(s) {
				switch s[i+2] {
				case '\'':
					return tkString, scanString(s, i+2, qStd)
				case '"':
					return tkQIdent, scanQuoted(s, i+2, '"')
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
// inside the BEGIN ATOMIC ... END body of CREATE FUNCTION or PROCEDURE,
// whose END stands where a statement of the body would start: elsewhere END
// closes a CASE or is a column label (SELECT 1 END;).
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
	atomic := false
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
		case atomic && t.name == "end" && (toks[i-1].isPunct(";") || toks[i-1].isWord("atomic")):
			atomic = false
		}
	}
	return from, len(toks)
}
