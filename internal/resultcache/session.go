package resultcache

import (
	"context"
	"database/sql/driver"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/auditpg/auditpg/internal/sqlclass"
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
	var tables []*generation
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
	case !c.feedReady(ctx, s):
		reason = bypassFeedDown
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
	hit := c.get(replay, &hash, sk, start, gens, key)
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
		if hit = c.get(replay, &hash, sk, time.Now(), gens, key); hit {
			c.stats.hits.Add(1)
			return Hit, "", nil, nil
		}
	}
	var rf *redisFill
	if leader && c.redis != nil {
		// The shared tier, after the process's own: a hit is stored there
		// too, for the callers waiting on this one.
		var hit bool
		if hit, rf = c.redis.lookup(ctx, s, st.Fingerprint, replay, hash, sk, key, tables, gens); hit {
			c.leave(hash)
			c.stats.hits.Add(1)
			return Hit, "", nil, nil
		}
	}
	c.stats.misses.Add(1)
	f = c.newFill(s, hash, sk, tables, gens, key, start.Add(ttl), leader)
	if c.redis != nil {
		// Timed from here: what a miss costs past the lookups.
		f.fp, f.started, f.redis = st.Fingerprint, time.Now(), rf
	}
	return Miss, "", f, nil
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

// AfterStatement runs once a statement is over (an exec, or a query when
// its rows close), with the SQLSTATE of its error if the server sent one.
// It notes session changes and invalidates what the statement may have
// written, whatever its outcome (a write the server refused costs a miss,
// one that committed before it failed would cost a stale read): at once
// outside a transaction, at its end inside one. A text of several
// statements may commit part way (see afterText).
func (s *Session) AfterStatement(ctx context.Context, st *sqlclass.Statement, sqlState string) {
	c := s.c
	if c == nil || st == nil {
		return
	}
	// A statement that failed took no effect, unless it committed part
	// way: a text of several statements can, and DO and CALL at the top
	// level (in a transaction block they cannot commit).
	tookEffect := sqlState == "" || st.MultiStatement ||
		(st.Kind == sqlclass.KindDo || st.Kind == sqlclass.KindCall) && !s.inTransaction()
	if tookEffect && (st.ChangesSession || st.CreatesTemp) {
		s.sessionChanged = true
	}
	if st.Kind == sqlclass.KindTx && !st.MultiStatement {
		if sqlState == "" {
			s.txStatement(ctx, st)
		}
		return
	}
	if st.ReadOnly {
		return
	}
	tables, all := st.Writes, st.WritesUnknown
	if st.Kind == sqlclass.KindDDL || st.MultiStatement && strings.Contains(strings.ToUpper(st.Fingerprint), "COMMIT PREPARED") {
		// DDL may drop or detach a partition, or change what the catalog
		// said of a table: forget it all, now and again at commit. (A
		// prepared transaction's writes are unknown here.)
		c.forgetCatalog()
		all = true
		s.pendingDDL = s.pendingDDL || s.inTransaction()
	}
	if all && st.UserFunctionsOnly && s.pgx != nil && !s.inTransaction() && s.scope != "" {
		all = !s.functionsCannotWrite(ctx, st.Functions)
	}
	if all && tookEffect && !s.sessionChanged {
		// DO, CALL, a volatile function or an unknown statement may have
		// changed the session unseen (set_config, SET in a function): ask.
		s.recheckScope(ctx)
	}
	if st.MultiStatement {
		s.afterText(ctx, tables, all)
		return
	}
	if !all && len(tables) == 0 {
		return // a read that only looked like it might write
	}
	if s.inTransaction() {
		s.pending = append(s.pending, tables...)
		s.pendingAll = s.pendingAll || all
		s.pendingAny = true
		return
	}
	s.invalidate(ctx, tables, all, true)
}

// afterText ends a text of several statements, which pgx sends as one
// simple query and which may hold its own COMMIT, ROLLBACK and BEGIN: it
// may have committed what it wrote, and what its transaction wrote before
// it, and then failed or begun a transaction that a ROLLBACK will forget.
// So all of that is invalidated now, and again when the transaction it
// leaves open ends (for what it wrote after its last BEGIN).
func (s *Session) afterText(ctx context.Context, tables []string, all bool) {
	if all || len(tables) > 0 {
		s.pending = append(s.pending, tables...)
		s.pendingAll = s.pendingAll || all
		s.pendingAny = true
	}
	if !s.inTransaction() {
		s.EndTransaction(ctx, true)
		return
	}
	if s.pendingAny {
		// Without a catalog lookup: one that failed would abort the
		// application's transaction (and fails in one already aborted).
		s.invalidate(ctx, s.pending, s.pendingAll, false)
	}
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
		s.c.startFeed(s)
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

// EndTransaction invalidates what the transaction wrote when it committed
// (or may have), and forgets it when it rolled back.
func (s *Session) EndTransaction(ctx context.Context, committed bool) {
	cc := s
	if committed && cc.pendingDDL {
		s.c.forgetCatalog() // lookups made while the DDL was uncommitted saw the old catalog
	}
	if committed && cc.pendingAny {
		s.invalidate(ctx, cc.pending, cc.pendingAll, true)
	}
	cc.pending, cc.pendingAll, cc.pendingAny, cc.pendingDDL = cc.pending[:0], false, false, false
}

// invalidate bumps the tables written and the partitioned tables above
// them. When a table cannot be looked up, everything is invalidated. With
// ask unset, only what the catalog memos already say is used.
func (s *Session) invalidate(ctx context.Context, tables []string, all, ask bool) {
	c := s.c
	c.startFeed(s) // the others hear of this write
	if all || len(tables) == 0 {
		c.invalidate(ctx, nil, true)
		return
	}
	names := tables
	if s.pgx != nil {
		if s.scope == "" && (!ask || s.askScope(ctx) != nil) {
			c.invalidate(ctx, nil, true)
			return
		}
		for _, t := range tables {
			rel, err := s.relation(ctx, t, ask)
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
