package sqlclass

// TokenKind says what a Token is.
type TokenKind uint8

// The kinds of Token.
const (
	TokenWord        TokenKind = iota // an unquoted identifier or keyword
	TokenQuotedIdent                  // a "quoted identifier", U&"..." [UESCAPE 'c'] too
	TokenString                       // '...' (continued too), E'...', U&'...' [UESCAPE 'c'], B'...', X'...', N'...', $tag$...$tag$
	TokenNumber                       // 1, 1.5, 1e10, 0x1F, 1_000
	TokenParam                        // $1
	TokenOperator                     // = <> >= ->> and the like, and bytes SQL has no use for
	TokenPunct                        // ( ) [ ] , ; . ::
)

// Token is one token of SQL text, as the classifier reads it.
type Token struct {
	Kind TokenKind
	// Text is the token as written.
	Text string
	// Name is the name a TokenWord or TokenQuotedIdent stands for: a word
	// folded to lower case (ASCII only, as PostgreSQL folds), a quoted
	// identifier without its quotes, with "" undoubled and U&"..." escapes
	// decoded; truncated to 63 bytes as the server truncates. Empty for
	// the other kinds.
	Name string
	// Keyword: the TokenWord is syntax rather than a name, a reserved word
	// or one that cannot name a function (SELECT, WHERE, IN, BETWEEN,
	// EXISTS, ORDER, NULL). A quoted identifier is never a keyword.
	Keyword bool
	// Param is n for the TokenParam $n, and 0 for the other kinds.
	Param int
}

// Tokens splits sql into tokens by PostgreSQL's lexical rules (the lexer
// Classify uses), dropping whitespace and comments. Unterminated strings,
// quoted identifiers and comments run to the end of the text.
func Tokens(sql string) []Token {
	toks, _, _ := lex(sql)
	out := make([]Token, len(toks))
	for i := range toks {
		t := &toks[i]
		o := Token{Kind: exportedKind[t.kind], Text: t.text}
		switch t.kind {
		case tkWord:
			o.Name = t.name
			o.Keyword = t.word != nil && t.word.flags&fNoFunc != 0
		case tkQIdent:
			o.Name = t.name
		case tkParam:
			for k := 1; k < len(t.text) && o.Param < 1e8; k++ { // as lex bounds it
				o.Param = o.Param*10 + int(t.text[k]-'0')
			}
		}
		out[i] = o
	}
	return out
}

var exportedKind = [...]TokenKind{
	tkWord:   TokenWord,
	tkQIdent: TokenQuotedIdent,
	tkString: TokenString,
	tkNumber: TokenNumber,
	tkParam:  TokenParam,
	tkOp:     TokenOperator,
	tkPunct:  TokenPunct,
}
