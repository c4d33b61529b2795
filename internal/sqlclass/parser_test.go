//go:build pgquery

// The classifier against PostgreSQL's own parser (pg_query_go, PostgreSQL
// 17, which needs cgo): behind a build tag, so that neither go test ./...
// nor a consumer of auditpg builds it. CI runs
//
//	go test -tags pgquery -run TestAgainstParser ./internal/sqlclass
//
// and a longer search is
//
//	go test -tags pgquery -run '^$' -fuzz FuzzAgainstParser -fuzztime 10m ./internal/sqlclass

package sqlclass

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var (
	parserTime = flag.Duration("parsertime", 20*time.Second, "how long TestAgainstParser mutates its seeds (2s with -short)")
	parserSeed = flag.Uint64("parserseed", 0, "TestAgainstParser's random seed, to replay a run (0: from the clock)")
)

// parserSeeds are texts on which FuzzAgainstParser found the classifier
// wrong once.
var parserSeeds = []string{
	"EXPLAIN SELECT til.is_active(t.x)",                                             // EXPLAIN kept UserFunctionsOnly
	"SELECT * INTO temp temp FROM t",                                                // INTO TEMP temp
	"SELECT * INTO temp  temp",                                                      //
	"UPDATE t * SET (a, b) = JOIN  (1, 2) WHERE a LIKE ('x')",                       // join(...) is a function
	"SELECT like('a', 'b') FROM t WHERE x NOT LIKE JOIN  ('y')",                     //
	"SELECT t * SET (a, b) = (1, 2)",                                                // set(...) is a function
	"SELECT pg::int_size_pretty(pg_total_relation_size('t'))",                       // a type modifier is an expression
	"SELECT 1 FROM a WHERE y ::intNY (ARRAY(SELECT y FROM e))",                      //
	"CREATE FUNCTION f() RETURNS int BEGIN ATOMIC SELECT 1 END; END; DELETE FROM t", // END as a column label
	"SELECT a IS DISTINCT FROM b, OT DISTINCT FROM d FROMt",                         // DISTINCT as a column label
	"WITH u AS (UPDATE a SET x = 1 RETURNING id)  (SELECT id FROM u)",               // a CTE's verb
	"PREPARE transaction AS DELETE FROM t",                                          // a statement named transaction
	"SELECT count(*) FROM t WHERE values.isve(t.x)",                                 // a keyword before "."
	"SELECT FROM A0000000000 JOIN A00000 ON set,A",                                  // a non-reserved word ended FROM
	"SELECT FROM a JOIN b ON values, c",
	"SELECT t * JOIN (a, b) = (1, 2)",                                                 // join(...) outside FROM
	"COPY t (id) FROM STDIN WHERE b > now()",                                          // COPY's WHERE
	"SELECT a. IS DISTINCT FROM b,TINClog WHERE id = 1",                               // a.is, and DISTINCT a label
	"SELECT * FROM recent JOIN users ON x * JOIN (a, b) = (1, 2)",                     // join(...) in ON
	"WITH RECURSIVE AS (INSERT INTO b SELECT id FROM u RETURNING id) SELECT * FROM i", // a CTE named recursive
	"SELECT a FROM t WHERE a LIKE 'x' ESCAPE  JOIN (a, b) = (1, 2)",                   // join(...) after FROM
	"SELECT * FROM a JOIN b ON tra LIKE 'x' ESCAPE  JOIN (a, b) = (1, 2)",             // in ON
	"SELECT a FROM t ORDER BY OVERLAPS (c, d)",                                        // overlaps(...) after BY
	"SELECT BY ()", // a function named by
}

// parserShapes are statements of the kinds the parser's facts distinguish,
// for the mutations to start from.
var parserShapes = []string{
	"CREATE TEMP TABLE tt (a int)",
	"CREATE TABLE pg_temp.x (a int)",
	"SELECT * INTO pg_temp.x FROM t",
	"EXPLAIN ANALYZE UPDATE t SET a = 1",
	"EXPLAIN (ANALYZE false, COSTS off) DELETE FROM t",
	"COPY (DELETE FROM t RETURNING *) TO STDOUT",
	"DECLARE c CURSOR FOR SELECT * FROM t",
	"PREPARE p AS DELETE FROM t",
	"UPDATE pg_settings SET setting = 'x' WHERE name = 'y'",
	"SET CONSTRAINTS ALL DEFERRED",
	"SET LOCAL search_path = x; RESET ROLE",
	"SELECT * FROM t FOR UPDATE OF t",
	"SELECT a FROM t WHERE a LIKE 'x' ESCAPE '!' AND b AT TIME ZONE 'UTC' > now()",
	"WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT * FROM a) SELECT * FROM a",
	"WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b",
	"SELECT * FROM ROWS FROM (f(1), g(2)) AS x, LATERAL h(x.a) y",
	"SELECT s.f(1), \"G\"(2), pg_catalog.lower('A') FROM s.t JOIN u USING (a)",
	"INSERT INTO t (a) SELECT a FROM u ON CONFLICT (a) DO UPDATE SET b = excluded.b RETURNING *",
	"MERGE INTO t USING u ON t.a = u.a WHEN MATCHED THEN UPDATE SET b = u.b WHEN NOT MATCHED THEN INSERT VALUES (u.a, u.b)",
	"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END; SELECT 3",
	"TRUNCATE a, b; LOCK TABLE c; VACUUM d; ANALYZE e; CLUSTER f; REINDEX TABLE g; REFRESH MATERIALIZED VIEW h",
	"BEGIN; SAVEPOINT s; RELEASE s; COMMIT; START TRANSACTION; ROLLBACK; DISCARD ALL; SHOW x; LISTEN c; NOTIFY c",
}

func seedCorpus() []string {
	var seeds []string
	for _, tt := range classifyTests {
		seeds = append(seeds, tt.sql)
	}
	for _, tt := range classTests {
		seeds = append(seeds, tt.sql)
	}
	seeds = append(seeds, lexicalSeeds...)
	seeds = append(seeds, parserShapes...)
	return append(seeds, parserSeeds...)
}

// FuzzAgainstParser checks, for every text PostgreSQL's parser accepts,
// that the classifier agrees with it or is more cautious. See againstParser.
func FuzzAgainstParser(f *testing.F) {
	for _, sql := range seedCorpus() {
		f.Add(sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		if msg := againstParser(sql); msg != "" {
			t.Fatalf("%q: %s", sql, msg)
		}
	})
}

// TestAgainstParser checks the seeds, then random mutations of them for
// -parsertime: a bounded search CI can run.
func TestAgainstParser(t *testing.T) {
	seeds := seedCorpus()
	fails := 0
	fail := func(sql, msg string) {
		t.Errorf("%q: %s", sql, msg)
		if fails++; fails >= 20 {
			t.FailNow()
		}
	}
	accepted := 0
	for _, sql := range seeds {
		if _, err := pg_query.Parse(sql); err == nil {
			accepted++
		}
		if msg := againstParser(sql); msg != "" {
			fail(sql, msg)
		}
	}
	d := *parserTime
	if testing.Short() {
		d = min(d, 2*time.Second)
	}
	seed := *parserSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	r := rand.New(rand.NewPCG(seed, seed>>32))
	n := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline); n++ {
		sql := mutate(r, seeds)
		if _, err := pg_query.Parse(sql); err == nil {
			accepted++
		}
		if msg := againstParser(sql); msg != "" {
			fail(sql, msg)
		}
	}
	t.Logf("%d seeds, %d mutants (rand seed %d), %d accepted by the parser", len(seeds), n, seed, accepted)
}

// fragments are what mutate inserts: the lexical and naming traps.
var fragments = []string{
	"'", "E'", "e'\\'", "\\", "\\'", "''", "\n", "\r", "\r\n", "\v", "--", "-- c\n", "-- c\r", "/*", "*/",
	"/* /* */ */", "$$", "$a$", "$a", "a$b", "\"", "\"\"", ";", " ", "(", ")", ",", ".", "*", "U&'", "U&\"",
	" UESCAPE '!'", "!0061", "\\0061", "\\+000061", "N'", "B'", "X'", "SELECT ", " FROM ", " JOIN ", " AS ",
	" WHERE ", " transaction", " partition", " range", " filter", " schema", " sequence", " view", " database",
	" values", " set", " update", " rows", " only", " temp", "UPDATE cls SET v = 1 WHERE k = 1", "SET ROLE x",
	"DELETE FROM t", "INSERT INTO t VALUES (1)", "WITH w AS (SELECT 1) ", "f(", "nextval('s')", "set_config('a', 'b', false)",
	strings.Repeat("x", 64), strings.Repeat("y", 62) + "é", "é", "1", "0x1", "1e", "$1", "::int", "TABLE ", "INTO ",
	"CREATE TEMP TABLE tt (a int)", "COPY t FROM STDIN", "EXPLAIN ANALYZE ", "BEGIN ATOMIC ", " END",
}

// mutate returns a seed changed in one to three places.
func mutate(r *rand.Rand, seeds []string) string {
	s := seeds[r.IntN(len(seeds))]
	for range 1 + r.IntN(3) {
		i := r.IntN(len(s) + 1)
		j := min(len(s), i+r.IntN(9))
		switch r.IntN(5) {
		case 0, 1:
			s = s[:i] + fragments[r.IntN(len(fragments))] + s[i:]
		case 2:
			s = s[:i] + s[j:]
		case 3:
			s = s[:i] + fragments[r.IntN(len(fragments))] + s[j:]
		case 4:
			o := seeds[r.IntN(len(seeds))]
			s = s[:i] + o[r.IntN(len(o)+1):]
		}
	}
	return s
}

// againstParser returns what the classifier gets wrong about sql by
// PostgreSQL's parser, or "". It may be more cautious than the parser (say a
// statement may write anything, or is not cacheable), never less: no write,
// session change, function or relation read by a cacheable statement may go
// unreported, and the statements must be the parser's.
func againstParser(sql string) string {
	if !utf8.ValidString(sql) || strings.IndexByte(sql, 0) >= 0 {
		return "" // the server rejects the text before it parses it
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return "" // nothing runs
	}
	st := classify(sql)
	if msg := literalsCovered(sql); msg != "" {
		return msg
	}
	toks, _, _ := lex(sql)
	var each []Statement
	var bounds [][2]int // of each statement's text
	for lo, hi := nextStatement(toks, 0); lo < hi; lo, hi = nextStatement(toks, hi) {
		w := walker{toks: toks}
		each = append(each, w.statement(lo, hi))
		bounds = append(bounds, [2]int{offset(sql, toks[lo].text), offset(sql, toks[hi-1].text) + len(toks[hi-1].text)})
	}
	// Statements split otherwise are allowed only to a text said to write
	// anything.
	cautious := mayWriteAny(st) && !st.Cacheable && !st.ReadOnly
	if len(each) != len(tree.Stmts) {
		if cautious {
			return ""
		}
		return fmt.Sprintf("%d statements, the parser sees %d", len(each), len(tree.Stmts))
	}
	var all pgFacts
	for i, raw := range tree.Stmts {
		end := len(sql)
		if raw.StmtLen > 0 {
			end = int(raw.StmtLocation + raw.StmtLen)
		}
		if b := bounds[i]; b[0] < int(raw.StmtLocation) || b[1] > end {
			if cautious {
				return ""
			}
			return fmt.Sprintf("statement %d is %q, the parser's %q", i+1, sql[b[0]:b[1]], sql[raw.StmtLocation:end])
		}
		f := facts(sql, raw.Stmt)
		if msg := agrees(&each[i], &f); msg != "" {
			return fmt.Sprintf("statement %d (%s): %s", i+1, f.node, msg)
		}
		all.reads = append(all.reads, f.reads...)
		all.writes = append(all.writes, f.writes...)
		all.funcs = append(all.funcs, f.funcs...)
		all.session = all.session || f.session
		all.temp = all.temp || f.temp
		all.readOnly = i == 0 && f.readOnly || i > 0 && all.readOnly && f.readOnly
		all.node, all.kind = f.node, kindAny
	}
	if st.Cacheable && len(tree.Stmts) != 1 {
		return "Cacheable with several statements"
	}
	if msg := agrees(st, &all); msg != "" {
		return "the whole text: " + msg
	}
	return ""
}

// mayWriteAny reports whether the cache invalidates everything after s and
// asks the session's scope again.
func mayWriteAny(s *Statement) bool {
	return (s.WritesUnknown || s.Kind == KindDDL) && s.Kind != KindTx
}

// agrees compares a classification with the parser's facts.
func agrees(s *Statement, f *pgFacts) string {
	wide := mayWriteAny(s)
	switch {
	case f.kind == kindAny, s.Kind == f.kind, s.Kind == KindUnknown && s.WritesUnknown:
	case f.kind == KindUtility && s.Kind == KindSession: // SET CONSTRAINTS
	default:
		return fmt.Sprintf("Kind %v, the parser says %v", s.Kind, f.kind)
	}
	for _, w := range f.writes {
		if !wide && !slices.Contains(s.Writes, w) {
			return fmt.Sprintf("writes %q unreported (Writes %q)", w, s.Writes)
		}
	}
	if s.ReadOnly && !f.readOnly {
		return "ReadOnly, but it writes"
	}
	if f.session && !s.ChangesSession && !s.CreatesTemp && !wide {
		return "changes the session unreported"
	}
	if f.temp && !s.CreatesTemp && !s.ChangesSession {
		return "creates a temporary relation unreported"
	}
	for _, fn := range f.funcs {
		if !slices.Contains(s.Functions, fn) && !(wide && !s.UserFunctionsOnly) {
			return fmt.Sprintf("calls %q unreported (Functions %q)", fn, s.Functions)
		}
	}
	if s.Cacheable || s.UserFunctionsOnly {
		if !f.readOnly || f.node != "SelectStmt" {
			return "Cacheable, but the parser sees a " + f.node + " that may write"
		}
		for _, r := range f.reads {
			if !slices.Contains(s.Reads, r) {
				return fmt.Sprintf("Cacheable, but reads %q unreported (Reads %q)", r, s.Reads)
			}
		}
	}
	return ""
}

// literalsCovered checks that each literal the server's scanner finds lies
// inside a literal of the classifier's (what its fingerprint replaces),
// up to where standard_conforming_strings=off would lex otherwise, past
// which the fingerprint holds none of the text.
func literalsCovered(sql string) string {
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return ""
	}
	toks, _, _ := lex(sql)
	type span struct{ lo, hi int }
	var lits []span
	diverge := offDivergence(sql, toks)
	for k, t := range toks {
		if k == diverge {
			lits = append(lits, span{offset(sql, t.text), len(sql)})
			break
		}
		// A U&"..." identifier holds its UESCAPE 'c' string.
		if t.kind == tkString || t.kind == tkNumber || t.kind == tkQIdent && t.text[0] != '"' {
			lo := offset(sql, t.text)
			lits = append(lits, span{lo, lo + len(t.text)})
		}
	}
	for _, t := range scan.Tokens {
		switch t.Token {
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_ICONST, pg_query.Token_FCONST:
		default:
			continue
		}
		if !slices.ContainsFunc(lits, func(s span) bool { return s.lo <= int(t.Start) && int(t.End) <= s.hi }) {
			return fmt.Sprintf("the literal %q is no literal of the classifier's", sql[t.Start:t.End])
		}
	}
	return ""
}

// kindAny marks facts whose kind is not compared (EXPLAIN, the whole text).
const kindAny Kind = 255

// pgFacts is what the parser's tree says of one statement.
type pgFacts struct {
	node                 string
	kind                 Kind
	reads, writes, funcs []string // of what runs now
	session, temp        bool     // changes the session; creates a temporary relation
	readOnly             bool     // writes nothing, by its tree
}

// kindOf maps the parser's statement node to the classifier's kind.
func kindOf(node string) Kind {
	switch node {
	case "SelectStmt":
		return KindSelect
	case "InsertStmt":
		return KindInsert
	case "UpdateStmt":
		return KindUpdate
	case "DeleteStmt":
		return KindDelete
	case "MergeStmt":
		return KindMerge
	case "CopyStmt":
		return KindCopy
	case "TruncateStmt":
		return KindTruncate
	case "CallStmt":
		return KindCall
	case "DoStmt":
		return KindDo
	case "TransactionStmt":
		return KindTx
	case "VariableSetStmt", "DiscardStmt":
		return KindSession
	case "ExplainStmt":
		return kindAny
	case "VariableShowStmt", "ListenStmt", "UnlistenStmt", "NotifyStmt", "VacuumStmt", "LockStmt",
		"CheckPointStmt", "LoadStmt", "FetchStmt", "ClosePortalStmt", "DeallocateStmt", "PrepareStmt",
		"ExecuteStmt", "DeclareCursorStmt", "ConstraintsSetStmt":
		return KindUtility
	}
	return KindDDL // CREATE, ALTER, DROP, GRANT, COMMENT, CLUSTER, REFRESH...
}

// facts collects what the statement n of sql does now.
func facts(sql string, n *pg_query.Node) pgFacts {
	var inner protoreflect.Message
	n.ProtoReflect().Range(func(_ protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		inner = v.Message()
		return false
	})
	f := pgFacts{node: string(inner.Descriptor().Name())}
	f.kind = kindOf(f.node)
	c := collector{sql: sql, f: &f}
	temp := func(rv *pg_query.RangeVar) {
		if rv != nil && (rv.Relpersistence == "t" || strings.HasPrefix(rv.Schemaname, "pg_temp")) {
			f.temp = true
		}
	}
	switch x := inner.Interface().(type) {
	case *pg_query.SelectStmt:
		c.walk(inner)
		f.readOnly = x.IntoClause == nil && len(f.writes) == 0
		if x.IntoClause != nil {
			temp(x.IntoClause.Rel)
		}
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt,
		*pg_query.CopyStmt, *pg_query.DeclareCursorStmt, *pg_query.CallStmt:
		c.walk(inner)
		_, f.readOnly = x.(*pg_query.DeclareCursorStmt)
	case *pg_query.CreateTableAsStmt:
		c.walk(inner)
		temp(x.Into.GetRel())
	case *pg_query.ExplainStmt:
		f.readOnly = true
		for _, o := range x.Options {
			if d := o.GetDefElem(); d != nil && d.Defname == "analyze" {
				sub := facts(sql, x.Query)
				f.reads, f.writes, f.funcs, f.session, f.temp, f.readOnly =
					sub.reads, sub.writes, sub.funcs, sub.session, sub.temp, sub.readOnly
				break
			}
		}
	case *pg_query.VariableShowStmt:
		f.readOnly = true
	case *pg_query.VariableSetStmt, *pg_query.DiscardStmt:
		f.session = true
	case *pg_query.TruncateStmt:
		for _, r := range x.Relations {
			c.write(r.GetRangeVar())
		}
	case *pg_query.CreateStmt:
		temp(x.Relation)
	case *pg_query.ViewStmt:
		temp(x.View)
	case *pg_query.CreateSeqStmt:
		temp(x.Sequence)
	}
	for _, w := range f.writes {
		if w == "pg_settings" || w == "pg_catalog.pg_settings" {
			f.session = true
		}
	}
	return f
}

// collector walks a statement's tree, CTE names in scope.
type collector struct {
	sql    string
	f      *pgFacts
	scopes [][]string
}

func (c *collector) walk(m protoreflect.Message) {
	skip := protoreflect.Name("")
	switch n := m.Interface().(type) {
	case *pg_query.RangeVar:
		c.read(n)
		return
	case *pg_query.LockingClause:
		return // FOR UPDATE OF names FROM items, not relations
	case *pg_query.IntoClause:
		c.write(n.Rel)
		return
	case *pg_query.FuncCall:
		c.call(n)
	case *pg_query.InsertStmt:
		c.write(n.Relation)
		skip = "relation"
	case *pg_query.UpdateStmt:
		c.write(n.Relation)
		skip = "relation"
	case *pg_query.DeleteStmt:
		c.write(n.Relation)
		skip = "relation"
	case *pg_query.MergeStmt:
		c.write(n.Relation)
		skip = "relation"
	case *pg_query.CopyStmt:
		if n.IsFrom {
			c.write(n.Relation)
		} else if n.Relation != nil {
			c.read(n.Relation)
		}
		skip = "relation"
	}
	scoped := false
	if fd := m.Descriptor().Fields().ByName("with_clause"); fd != nil && m.Has(fd) {
		c.with(m.Get(fd).Message().Interface().(*pg_query.WithClause))
		scoped = true
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() == "with_clause" || fd.Name() == skip || fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if fd.IsList() {
			for i, l := 0, v.List(); i < l.Len(); i++ {
				c.walk(l.Get(i).Message())
			}
		} else {
			c.walk(v.Message())
		}
		return true
	})
	if scoped {
		c.scopes = c.scopes[:len(c.scopes)-1]
	}
}

// with walks the CTEs of a WITH and leaves their names in a new scope: a
// CTE sees the ones before it, and itself too if RECURSIVE.
func (c *collector) with(w *pg_query.WithClause) {
	c.scopes = append(c.scopes, nil)
	top := len(c.scopes) - 1
	if w.Recursive {
		for _, n := range w.Ctes {
			c.scopes[top] = append(c.scopes[top], n.GetCommonTableExpr().GetCtename())
		}
	}
	for _, n := range w.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		if cte.Ctequery != nil {
			c.walk(cte.Ctequery.ProtoReflect())
		}
		if !w.Recursive {
			c.scopes[top] = append(c.scopes[top], cte.Ctename)
		}
	}
}

func rvName(rv *pg_query.RangeVar) string {
	var parts []string
	for _, p := range []string{rv.Catalogname, rv.Schemaname, rv.Relname} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return strings.Join(parts, ".")
}

func (c *collector) read(rv *pg_query.RangeVar) {
	if rv.Schemaname == "" && rv.Catalogname == "" {
		for _, s := range c.scopes {
			if slices.Contains(s, rv.Relname) {
				return
			}
		}
	}
	c.f.reads = append(c.f.reads, rvName(rv))
}

func (c *collector) write(rv *pg_query.RangeVar) {
	if rv != nil {
		c.f.writes = append(c.f.writes, rvName(rv))
	}
}

// call notes a function the text names; the ones the grammar makes of
// syntax (EXTRACT, LIKE ... ESCAPE, AT TIME ZONE) are built in, and their
// name is not where they are.
func (c *collector) call(fc *pg_query.FuncCall) {
	var parts []string
	for _, p := range fc.Funcname {
		parts = append(parts, p.GetString_().GetSval())
	}
	if len(parts) == 0 || fc.Funcformat == pg_query.CoercionForm_COERCE_SQL_SYNTAX {
		return
	}
	loc := int(fc.Location)
	if loc < 0 || loc >= len(c.sql) {
		return
	}
	at := c.sql[loc:]
	quoted := at[0] == '"' || len(at) > 2 && at[0]|0x20 == 'u' && at[1] == '&' && at[2] == '"'
	if !quoted && !(len(at) >= len(parts[0]) && strings.EqualFold(at[:len(parts[0])], parts[0])) {
		return
	}
	name := strings.Join(parts, ".")
	c.f.funcs = append(c.f.funcs, name)
	if (name == "set_config" || name == "pg_catalog.set_config") && !literalTrue(fc.Args) {
		c.f.session = true // set_config(..., true) lasts until the transaction ends
	}
}

// literalTrue reports whether the last of args is the constant true.
func literalTrue(args []*pg_query.Node) bool {
	if len(args) == 0 {
		return false
	}
	c := args[len(args)-1].GetAConst()
	return c != nil && c.GetBoolval() != nil && c.GetBoolval().Boolval
}
