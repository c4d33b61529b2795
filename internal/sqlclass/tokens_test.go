package sqlclass

import (
	"slices"
	"testing"
)

func TestTokens(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want []Token
	}{
		{`SELECT "My ""Col""", Foo FROM t WHERE x >= $12 AND y IN ('a', 1.5e3) -- c`, []Token{
			{Kind: TokenWord, Text: "SELECT", Name: "select", Keyword: true},
			{Kind: TokenQuotedIdent, Text: `"My ""Col"""`, Name: `My "Col"`},
			{Kind: TokenPunct, Text: ","},
			{Kind: TokenWord, Text: "Foo", Name: "foo"},
			{Kind: TokenWord, Text: "FROM", Name: "from", Keyword: true},
			{Kind: TokenWord, Text: "t", Name: "t"},
			{Kind: TokenWord, Text: "WHERE", Name: "where", Keyword: true},
			{Kind: TokenWord, Text: "x", Name: "x"},
			{Kind: TokenOperator, Text: ">="},
			{Kind: TokenParam, Text: "$12", Param: 12},
			{Kind: TokenWord, Text: "AND", Name: "and", Keyword: true},
			{Kind: TokenWord, Text: "y", Name: "y"},
			{Kind: TokenWord, Text: "IN", Name: "in", Keyword: true},
			{Kind: TokenPunct, Text: "("},
			{Kind: TokenString, Text: "'a'"},
			{Kind: TokenPunct, Text: ","},
			{Kind: TokenNumber, Text: "1.5e3"},
			{Kind: TokenPunct, Text: ")"},
		}},
		// Non-reserved words and function names are names; a quoted
		// keyword is a name too.
		{`range lower "select" a::int`, []Token{
			{Kind: TokenWord, Text: "range", Name: "range"},
			{Kind: TokenWord, Text: "lower", Name: "lower"},
			{Kind: TokenQuotedIdent, Text: `"select"`, Name: "select"},
			{Kind: TokenWord, Text: "a", Name: "a"},
			{Kind: TokenPunct, Text: "::"},
			{Kind: TokenWord, Text: "int", Name: "int"},
		}},
		{`/* unterminated`, []Token{}},
		{`$$ x $$ $`, []Token{{Kind: TokenString, Text: "$$ x $$"}, {Kind: TokenOperator, Text: "$"}}},
	} {
		if got := Tokens(tc.sql); !slices.Equal(got, tc.want) {
			t.Errorf("Tokens(%q)\n got %+v\nwant %+v", tc.sql, got, tc.want)
		}
	}
}

// TestTokensKinds keeps Tokens's kinds in step with the lexer's: each lexer
// kind maps to its own exported kind.
func TestTokensKinds(t *testing.T) {
	seen := map[TokenKind]bool{}
	for k := tkWord; k <= tkPunct; k++ {
		if int(k) >= len(exportedKind) || seen[exportedKind[k]] {
			t.Fatalf("lexer kind %d has no exported kind of its own", k)
		}
		seen[exportedKind[k]] = true
	}
}

func TestSkipSpace(t *testing.T) {
	for _, tc := range []struct {
		s    string
		i    int
		want int
	}{
		{"f (x)", 1, 2},
		{"f -- c\r(x)", 1, 7},
		{"f /* a /* b */ c */(x)", 1, 19},
		{"f /* unterminated", 1, 17},
		{"f  ", 1, 3},
	} {
		if got := SkipSpace(tc.s, tc.i); got != tc.want {
			t.Errorf("SkipSpace(%q, %d) = %d, want %d", tc.s, tc.i, got, tc.want)
		}
	}
}
