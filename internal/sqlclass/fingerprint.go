package sqlclass

import (
	"hash/fnv"
	"strconv"
	"strings"
)

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
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
