package resultcache

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/jackc/pgx/v5"
)

// relInfo is what the catalog says of one table name.
type relInfo struct {
	found     bool
	unsafe    string   // why reads of it are not cached, "" when they may be
	ancestors []string // the tables it inherits from (partitioned or not), unqualified
}

// verdict is what the server said of one statement's reads.
type verdict struct {
	reason string        // why it bypasses the cache; "" when it may be cached
	gens   []*generation // the generations that guard its entries: of the tables read and their parents
}

// maxVerdicts bounds a connection's verdicts; past it they start over.
const maxVerdicts = 1024

// verdict returns the remembered verdict for st, or asks the server.
func (s *Session) verdict(ctx context.Context, st *sqlclass.Statement) (verdict, string) {
	cc, epoch := s, s.c.epoch.Load()
	if cc.epoch != epoch || len(cc.verdicts) >= maxVerdicts {
		cc.verdicts, cc.epoch = nil, epoch
	}
	if v, ok := cc.verdicts[st]; ok {
		return v, v.reason
	}
	v, err := s.eligible(ctx, st)
	if err != nil {
		return v, bypassLookupError // not remembered: the next call asks again
	}
	if s.c.epoch.Load() != epoch {
		return v, v.reason // DDL ran meanwhile: use it once, do not remember it
	}
	if cc.verdicts == nil {
		cc.verdicts = make(map[*sqlclass.Statement]verdict)
	}
	cc.verdicts[st] = v
	return v, v.reason
}

// eligible checks what only the server knows: the session's scope, the
// volatility of the functions called, and the tables read (temporary,
// system, views and foreign tables, row-level security, the partitioned
// tables above them).
func (s *Session) eligible(ctx context.Context, st *sqlclass.Statement) (verdict, error) {
	c := s.c
	if s.scope == "" {
		if err := s.askScope(ctx); err != nil {
			return verdict{}, err
		}
	}
	for _, fn := range st.Functions {
		if syntaxFunctions[fn] {
			continue
		}
		v, err := s.volatility(ctx, fn)
		if err != nil {
			return verdict{}, err
		}
		if v != 'i' {
			return verdict{reason: bypassFunction + ": " + fn}, nil
		}
	}
	tables := slices.Clone(st.Reads)
	for _, t := range st.Reads {
		rel, err := s.relation(ctx, t, true)
		if err != nil {
			return verdict{}, err
		}
		if rel.unsafe != "" && !(rel.unsafe == unsafeRLS && (c.cfg.RLSAllowed[t] || c.cfg.RLSAllowed[baseName(t)])) {
			return verdict{reason: bypassTable + ": " + t + " (" + rel.unsafe + ")"}, nil
		}
		tables = append(tables, rel.ancestors...)
	}
	return verdict{gens: c.genCounters(tables)}, nil
}

// syntaxFunctions look like calls but are SQL syntax, absent from pg_proc,
// and depend on their arguments only.
var syntaxFunctions = map[string]bool{"coalesce": true, "nullif": true, "greatest": true, "least": true, "trim": true}

// askScope reads what, beside the SQL and its arguments, decides what a
// read returns on this connection. The connector fixes the server and the
// database; the user, role and search_path come from the session.
func (s *Session) askScope(ctx context.Context) error {
	// The settings that change how values print as text are part of it
	// too: SELECT ts::text differs by TimeZone.
	var scope string
	err := s.pgx.Conn().QueryRow(ctx, `SELECT concat_ws(E'\x01', session_user, current_user, current_database(),
		current_setting('search_path'), current_setting('TimeZone'), current_setting('DateStyle'),
		current_setting('IntervalStyle'), current_setting('extra_float_digits'), current_setting('lc_monetary'),
		current_setting('bytea_output'))`).Scan(&scope)
	if err != nil {
		return err
	}
	s.scope = s.host + "\x00" + strconv.Itoa(int(s.port)) + "\x00" + scope
	s.scopeID = s.c.scopeID(s.scope)
	return nil
}

// maxScopes bounds the scopes numbered; past it the numbering starts over
// with new numbers, and the entries under the old ones are no longer found.
const maxScopes = 4096

// scopeID numbers a scope, so that keys hold a number instead of its text.
// A number is never given to two scopes.
func (c *Cache) scopeID(scope string) uint64 {
	c.scopesMu.Lock()
	defer c.scopesMu.Unlock()
	if id, ok := c.scopes[scope]; ok {
		return id
	}
	if len(c.scopes) >= maxScopes {
		clear(c.scopes)
	}
	c.lastScope++
	c.scopes[scope] = c.lastScope
	return c.lastScope
}

// errNotAsked is relation's answer, without asking, for a table the memos
// do not know.
var errNotAsked = errors.New("not in the catalog memo")

const (
	unsafeRLS     = "row-level security"
	unsafeTemp    = "temporary"
	unsafeCatalog = "system catalog"
	unsafeKind    = "view or foreign table"
	unsafeMissing = "not found"
)

// memoGet and memoPut read and fill a catalog memo (tables, functions)
// shared by the connections of one scope. A session that changed (SET
// search_path, a temporary table) may see other objects under the same
// names: it neither uses nor fills the memo. An answer read before DDL was
// forgotten (epoch) is not remembered past it: it may predate the DDL's
// commit.
func memoGet[V any](s *Session, m map[string]V, key string) (V, bool) {
	var v V
	if s.sessionChanged {
		return v, false
	}
	c := s.c
	c.metaMu.Lock()
	v, ok := m[key]
	c.metaMu.Unlock()
	return v, ok
}

func memoPut[V any](s *Session, m map[string]V, key string, v V, epoch uint64) {
	if s.sessionChanged {
		return
	}
	c := s.c
	c.metaMu.Lock()
	if c.epoch.Load() == epoch {
		m[key] = v
	}
	c.metaMu.Unlock()
}

// relation returns what the catalog says of the table named t, as the
// session's search_path resolves it; with ask unset, only from the memos
// (errNotAsked when they do not know it).
func (s *Session) relation(ctx context.Context, t string, ask bool) (relInfo, error) {
	c, cc := s.c, s
	epoch := c.epoch.Load()
	// The connection's own memo first: a write's lookup then allocates
	// nothing (the shared memo's key is built from the scope).
	if cc.relsEpoch != epoch || len(cc.rels) >= maxVerdicts {
		cc.rels, cc.relsEpoch = nil, epoch
	}
	if rel, ok := cc.rels[t]; ok && !cc.sessionChanged {
		return rel, nil
	}
	rel, err := s.lookupRelation(ctx, t, epoch, ask)
	if err == nil && !cc.sessionChanged && c.epoch.Load() == epoch {
		if cc.rels == nil {
			cc.rels = make(map[string]relInfo)
		}
		cc.rels[t] = rel
	}
	return rel, err
}

// lookupRelation answers relation from the memo shared by the scope's
// connections, or from the server.
func (s *Session) lookupRelation(ctx context.Context, t string, epoch uint64, ask bool) (relInfo, error) {
	c := s.c
	memo := s.scope + "\x00" + t
	if rel, ok := memoGet(s, c.rels, memo); ok {
		return rel, nil
	}
	if !ask {
		return relInfo{}, errNotAsked
	}
	var rel relInfo
	var kind, persistence string
	var rls bool
	var schema string
	err := s.pgx.Conn().QueryRow(ctx, `
		SELECT c.relkind::text, c.relpersistence::text, c.relrowsecurity, n.nspname,
		       ARRAY(WITH RECURSIVE up(oid) AS (
		                 SELECT inhparent FROM pg_inherits WHERE inhrelid = c.oid
		                 UNION SELECT i.inhparent FROM pg_inherits i JOIN up ON i.inhrelid = up.oid)
		             SELECT p.relname::text FROM up JOIN pg_class p ON p.oid = up.oid)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, pgx.Identifier(strings.Split(t, ".")).Sanitize(),
	).Scan(&kind, &persistence, &rls, &schema, &rel.ancestors)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		rel.unsafe = unsafeMissing
	case err != nil:
		return relInfo{}, err
	default:
		rel.found = true
		switch {
		case persistence == "t":
			rel.unsafe = unsafeTemp
		case schema == "pg_catalog" || schema == "information_schema" || strings.HasPrefix(schema, "pg_"):
			rel.unsafe = unsafeCatalog
		case kind != "r" && kind != "p" && kind != "m":
			rel.unsafe = unsafeKind // a view hides the tables it reads from invalidation
		case rls:
			rel.unsafe = unsafeRLS
		}
	}
	memoPut(s, c.rels, memo, rel, epoch)
	return rel, nil
}

// volatility returns the worst provolatile ('i' < 's' < 'v') of the
// functions named fn that the session can call; 'v' when there is none.
func (s *Session) volatility(ctx context.Context, fn string) (byte, error) {
	c := s.c
	memo, epoch := s.scope+"\x00"+fn, c.epoch.Load()
	if v, ok := memoGet(s, c.funcs, memo); ok {
		return v, nil
	}
	schema, name := "", fn
	if i := strings.LastIndexByte(fn, '.'); i >= 0 {
		schema, name = fn[:i], fn[i+1:]
	}
	var worst string
	err := s.pgx.Conn().QueryRow(ctx, `
		SELECT coalesce(max(p.provolatile::text COLLATE "C"), 'v')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE p.proname = $1
		  AND CASE WHEN $2 = '' THEN n.nspname = ANY (current_schemas(true)) ELSE n.nspname = $2 END`,
		name, schema).Scan(&worst)
	if err != nil {
		return 0, err
	}
	v := worst[0] // 'i' < 's' < 'v' in byte order, so max is the worst
	memoPut(s, c.funcs, memo, v, epoch)
	return v, nil
}

// functionsCannotWrite is true when every function is STABLE or IMMUTABLE,
// which PostgreSQL forbids to modify the database.
func (s *Session) functionsCannotWrite(ctx context.Context, fns []string) bool {
	for _, fn := range fns {
		if v, err := s.volatility(ctx, fn); err != nil || v == 'v' {
			return false
		}
	}
	return true
}
