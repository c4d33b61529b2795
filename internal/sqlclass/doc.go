// Package sqlclass classifies SQL text for the result cache, the statistics,
// the spans and the monitor: a
// lexer that follows PostgreSQL's lexical rules (src/backend/parser/scan.l),
// then a walk over its tokens that finds the statement kind, the tables read
// and written, the functions called and a normalized fingerprint. It parses
// no grammar; where it cannot tell, it says the statement may write anything.
//
// It assumes standard_conforming_strings=on, which pgx requires: with it off
// a backslash escapes a quote in '...', and statements would end elsewhere.
package sqlclass
