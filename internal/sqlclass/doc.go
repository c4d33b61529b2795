// Package sqlclass classifies SQL text for the result cache, the statistics,
// the spans and the monitor: a
// lexer that follows PostgreSQL's lexical rules (src/backend/parser/scan.l),
// then a walk over its tokens that finds the statement kind, the tables read
// and written, the functions called and a normalized fingerprint. It parses
// no grammar; where it cannot tell, it says the statement may write anything.
//
// It lexes as the server does with standard_conforming_strings on, which
// pgx requires for a statement with arguments. pgx allows it off for one
// without: where a backslash in a string would then end the string, and
// statements, elsewhere, the classifier says the text may write anything
// and is not cacheable.
//
// parser_test.go (build tag pgquery) checks it against PostgreSQL's own
// parser: go test -tags pgquery -run TestAgainstParser ./internal/sqlclass.
package sqlclass
