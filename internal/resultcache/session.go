package resultcache

import (
	"context"
	"database/sql/driver"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Outcome is how the cache answered one read.
type Outcome string

const (
	Hit    Outcome = "hit"    // served from the cache: no network call was made
	Miss   Outcome = "miss"   // run on the server, and its result may fill the cache
	Bypass Outcome = "bypass" // not eligible: run on the server, never cached
)

// Session is the cache state of one connection: what the server said of
// its statements and session, the key buffer, and the writes of its open
// transaction. database/sql makes one call at a time on a connection, so it
// needs no lock. Attach it before use.
type Session struct {
	c    *Cache
	pgx  *stdlib.Conn // nil for a driver other than pgx: reads then bypass
	inTx *bool        // the interceptor's view, used when pgx is nil
	host string
	port uint16

	// verdicts remembers, per classified statement, whether its reads may
	// be cached on this connection and the tables whose generations guard
	// them (those read and the partitioned tables above them), until DDL
	// makes the cache forget the catalog (epoch).
	verdicts map[*sqlclass.Statement]verdict
	epoch    uint64
	// rels remembers relation's answers on this connection, as verdicts.
	rels      map[string]relInfo
	relsEpoch uint64

	scope          string     // database, server, user, role, search_path; "" until asked
	scopeID        uint64     // the scope's number in the cache: what keys hold
	keyBuf         []byte     // where lookups build their key and its hash
	columns        columnMemo // the column sections of results read here
	sessionChanged bool       // SET, SET ROLE, set_config, a temporary table...: bypass for good
	pending        []string
	pendingAll     bool // a write in the open transaction could not name its tables
	pendingAny     bool
	pendingDDL     bool // the open transaction ran DDL
}

// Attach binds s to the cache c and to one connection: its pgx connection
// (nil for another driver), the interceptor's transaction flag, and the
// server it is connected to (part of every key's scope).
func (s *Session) Attach(c *Cache, pgx *stdlib.Conn, inTx *bool, host string, port uint16) {
	s.c, s.pgx, s.inTx, s.host, s.port = c, pgx, inTx, host, port
}

// inTransaction tells from the server's own status when there is one, so
// that a BEGIN sent as SQL counts too.
func (s *Session) inTransaction() bool {
	if s.pgx != nil {
		return s.pgx.Conn().PgConn().TxStatus() != 'I'
	}
	return *s.inTx
}

// Lookup decides how the cache answers the read st of query with args,
// started at start: a Hit (replay is then set to replay the rows), a Miss
// (run it and feed the Fill, when there is one, with its rows), a Bypass
// with its reason, or "" when the cache has no part in it. An error is the
// context's, ended while waiting for an identical read's fill.
func (s *Session) Lookup(ctx context.Context, st *sqlclass.Statement, query string, args []driver.NamedValue, start time.Time, replay *Rows) (outcome Outcome, reason string, f *Fill, err error) {
	c := s.c
	ttl, selected, noCache := c.selected(ctx, st)
	var tables []*atomic.Uint64
	switch {
	case noCache:
		reason = bypassContext
	case !selected:
		return "", "", nil, nil
	case !st.Cacheable && !st.UserFunctionsOnly:
		reason = st.BypassReason()
	case s.inTransaction():
		reason = bypassTx
	case s.sessionChanged:
		reason = bypassSession
	case s.pgx == nil:
		reason = bypassLookupError
	default:
		var v verdict
		v, reason = s.verdict(ctx, st)
		tables = v.gens
	}
	if reason != "" {
		c.countBypass(reason)
		return Bypass, reason, nil, nil
	}

	// The key is built in the connection's own buffer: database/sql makes
	// one call at a time on a connection, and nothing keeps the buffer past
	// this call (a fill copies the key into its entry). One that a large
	// argument grew is not kept for the connection's life.
	if cap(s.keyBuf) > 64<<10 {
		s.keyBuf = nil
	}
	key, ok := appendKey(s.keyBuf[:0], s.scopeID, query, args)
	if !ok {
		s.keyBuf = key
		c.countBypass(bypassArgs)
		return Bypass, bypassArgs, nil, nil
	}
	var gensArr [8]uint64
	gens := c.generations(gensArr[:0], tables)
	buf := c.appendHash(key)
	var hash keyHash
	copy(hash[:], buf[len(key):])
	sk := s.storeKeyAfter(buf, len(key), gens)
	hit, inStore := c.get(replay, &hash, sk, start, gens, key)
	if hit {
		c.stats.hits.Add(1)
		return Hit, "", nil, nil
	}
	wait, leader, unfillable := c.join(hash, start)
	if unfillable {
		c.countBypass(bypassUnfillable)
		return Bypass, bypassUnfillable, nil, nil
	}
	if !leader {
		// Another caller is running this very query: wait for its fill,
		// within our own deadline, then look again.
		select {
		case <-wait:
		case <-ctx.Done():
			return "", "", nil, ctx.Err()
		}
		gens = c.generations(gens[:0], tables)
		sk = s.storeKeyAfter(buf, len(key), gens)
		if hit, inStore = c.get(replay, &hash, sk, time.Now(), gens, key); hit {
			c.stats.hits.Add(1)
			return Hit, "", nil, nil
		}
	}
	c.stats.misses.Add(1)
	return Miss, "", c.newFill(s, hash, sk, tables, gens, key, start.Add(ttl), leader, inStore), nil
}

// storeKeyAfter completes, after the key and its hash in buf, the store key
// for the generations gens, keeps the buffer as the connection's, and
// returns the store key as a string over it, for BigCache (a string over
// an array of ours would move it to the heap).
func (s *Session) storeKeyAfter(buf []byte, keyLen int, gens []uint64) string {
	buf = appendGensHash(buf[:keyLen+len(keyHash{})], gens)
	s.keyBuf = buf
	return unsafe.String(&buf[keyLen], len(storeKey{}))
}

// get sets dst to replay a valid entry, from the hot set (by the key's
// hash) or else from BigCache (by sk, the store key as a string; the entry is
// then kept hot), and reports a hit; inStore says whether BigCache held an
// entry under the store key, valid or not (a fill then replaces it). (The
// replay is the query's rows object's own field: a hit allocates no rows
// of its own.)
func (c *Cache) get(dst *Rows, hash *keyHash, sk string, now time.Time, gens []uint64, key []byte) (hit, inStore bool) {
	t := now.UnixNano()
	if d := c.hot.get(hash); d != nil {
		if d.valid(t, gens, key) {
			dst.replay(c, d)
			return true, true
		}
		c.hot.drop(hash, d) // written since, or too old
	}
	e, err := c.store.Get(sk)
	if err != nil {
		return false, false
	}
	stored, body, ok := validEntry(e, t, gens, key)
	if !ok {
		return false, true
	}
	d, err := c.decode(e, stored, body, gens)
	if err != nil {
		return false, true
	}
	c.hot.put(hash, d)
	dst.replay(c, d)
	return true, true
}

// verdict is what the server said of one statement's reads.
type verdict struct {
	reason string           // why it bypasses the cache; "" when it may be cached
	gens   []*atomic.Uint64 // the generations that guard its entries: of the tables read and their parents
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
		rel, err := s.relation(ctx, t)
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
// session's search_path resolves it.
func (s *Session) relation(ctx context.Context, t string) (relInfo, error) {
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
	rel, err := s.lookupRelation(ctx, t, epoch)
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
func (s *Session) lookupRelation(ctx context.Context, t string, epoch uint64) (relInfo, error) {
	c := s.c
	memo := s.scope + "\x00" + t
	if rel, ok := memoGet(s, c.rels, memo); ok {
		return rel, nil
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

// AfterStatement runs once a statement is over (an exec, or a query when
// its rows close), with the SQLSTATE of its error if the server sent one:
// it notes session changes and invalidates what the statement wrote, at
// once outside a transaction, at commit inside one.
func (s *Session) AfterStatement(ctx context.Context, st *sqlclass.Statement, sqlState string) {
	c := s.c
	if c == nil || st == nil {
		return
	}
	if sqlState != "" {
		return // the server refused the statement: it changed nothing
	}
	if st.ChangesSession || st.CreatesTemp {
		s.sessionChanged = true
	}
	if st.Kind == sqlclass.KindTx {
		s.txStatement(ctx, st)
		return
	}
	if st.ReadOnly {
		return
	}
	tables, all := st.Writes, st.WritesUnknown
	if st.Kind == sqlclass.KindDDL {
		// DDL may drop or detach a partition, or change what the catalog
		// said of a table: forget it all, now and again at commit.
		c.forgetCatalog()
		all = true
		s.pendingDDL = s.pendingDDL || s.inTransaction()
	}
	if all && st.UserFunctionsOnly && s.pgx != nil && !s.inTransaction() && s.scope != "" {
		all = !s.functionsCannotWrite(ctx, st.Functions)
	}
	if !all && len(tables) == 0 {
		return // a read that only looked like it might write
	}
	if all && !s.sessionChanged {
		// DO, CALL, a volatile function or an unknown statement may have
		// changed the session unseen (set_config, SET in a function): ask.
		s.recheckScope(ctx)
	}
	if s.inTransaction() {
		s.pending = append(s.pending, tables...)
		s.pendingAll = s.pendingAll || all
		s.pendingAny = true
		return
	}
	s.invalidate(ctx, tables, all)
}

// recheckScope asks the session's scope again, after a statement that may
// have changed it unseen; a change, or no answer, ends caching on this
// connection.
func (s *Session) recheckScope(ctx context.Context) {
	before := s.scope
	if before == "" || s.pgx == nil {
		return // not asked yet: it will be asked as it is then
	}
	if err := s.askScope(ctx); err != nil || s.scope != before {
		s.sessionChanged = true
	}
}

// txStatement handles BEGIN, COMMIT, ROLLBACK and the like sent as SQL.
func (s *Session) txStatement(ctx context.Context, st *sqlclass.Statement) {
	fp := strings.ToUpper(st.Fingerprint)
	switch {
	case st.Operation == "COMMIT" && strings.Contains(fp, " PREPARED"):
		// A prepared transaction, of this session or another, committed:
		// what it wrote is unknown here.
		s.c.forgetCatalog()
		s.c.invalidate(ctx, nil, true)
	case st.Operation == "PREPARE TRANSACTION":
		s.EndTransaction(ctx, false) // its writes land at COMMIT PREPARED
	case strings.HasSuffix(fp, " AND CHAIN"):
		// The transaction ended and a new one began at once.
		s.EndTransaction(ctx, st.Operation == "COMMIT" || st.Operation == "END")
	case !s.inTransaction():
		s.EndTransaction(ctx, st.Operation != "ROLLBACK" && st.Operation != "ABORT")
	}
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

// EndTransaction invalidates what the transaction wrote when it committed
// (or may have), and forgets it when it rolled back.
func (s *Session) EndTransaction(ctx context.Context, committed bool) {
	cc := s
	if committed && cc.pendingDDL {
		s.c.forgetCatalog() // lookups made while the DDL was uncommitted saw the old catalog
	}
	if committed && cc.pendingAny {
		s.invalidate(ctx, cc.pending, cc.pendingAll)
	}
	cc.pending, cc.pendingAll, cc.pendingAny, cc.pendingDDL = cc.pending[:0], false, false, false
}

// invalidate bumps the tables written and the partitioned tables above
// them. When a table cannot be looked up, everything is invalidated.
func (s *Session) invalidate(ctx context.Context, tables []string, all bool) {
	c := s.c
	if all || len(tables) == 0 {
		c.invalidate(ctx, nil, true)
		return
	}
	names := tables
	if s.pgx != nil {
		if s.scope == "" && s.askScope(ctx) != nil {
			c.invalidate(ctx, nil, true)
			return
		}
		for _, t := range tables {
			rel, err := s.relation(ctx, t)
			if err != nil || !rel.found || rel.unsafe == unsafeKind {
				// Unknown, or a view (its base tables are not named) or a
				// foreign table: invalidate everything.
				c.invalidate(ctx, nil, true)
				return
			}
			if len(rel.ancestors) > 0 {
				names = append(slices.Clip(names), rel.ancestors...) // a copy: never the Statement's
			}
		}
	}
	c.invalidate(ctx, names, false)
}
