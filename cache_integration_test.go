package auditpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/auditpg/auditpg/internal/testdb"
)

// Integration tests of the result cache on the temporary
// PostgreSQL cluster: every rule both ways (cached when allowed, not when
// not): policy, what is never cached, the key (arguments, roles,
// search_path, row-level security), replay fidelity, invalidation,
// read-your-writes, a randomized concurrent test, single flight, the entry
// size limit. Each test uses tables of its own, prefixed ci_; roles it
// creates are dropped at its end. How the cache answered a read is told by
// the change in Stats(db).Cache around it (ciDo).

// ciQueryer is what a read runs on: a *sql.DB, *sql.Conn or *sql.Tx.
type ciQueryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// ciExecer is what a write runs on: a *sql.DB, *sql.Conn or *sql.Tx.
type ciExecer = testdb.Execer

// ciOpen opens testDSN through auditpg with opts and closes it at the end.
func ciOpen(t testing.TB, opts ...Option) *sql.DB {
	t.Helper()
	return ciOpenDSN(t, testDSN, opts...)
}

// ciOpenDSN opens dsn through auditpg with opts. The cache hears only of
// its own writes (InvalidateLocal) unless opts say otherwise: the tests run
// in parallel on one database, and each one's writes and DDL would
// otherwise cost the others the hits they count.
func ciOpenDSN(t testing.TB, dsn string, opts ...Option) *sql.DB {
	t.Helper()
	db, err := Open(dsn, append([]Option{WithInvalidation(InvalidateLocal)}, opts...)...)
	return testdb.Opened(t, db, err)
}

// ciDSN returns testDSN with a user (when not empty) and extra parameters;
// testDSN may be a URL or key=value pairs.
func ciDSN(t testing.TB, user string, params map[string]string) string {
	t.Helper()
	if strings.HasPrefix(testDSN, "postgres://") || strings.HasPrefix(testDSN, "postgresql://") {
		u, err := url.Parse(testDSN)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			u.User = url.UserPassword(user, "ci_pw")
		}
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	dsn := testDSN
	if user != "" {
		dsn += " user=" + user + " password=ci_pw"
	}
	for k, v := range params {
		dsn += " " + k + "='" + v + "'"
	}
	return dsn
}

// ciTable creates name(id int primary key, v text) with rows 1 'one' and 2 'two'.
func ciTable(t testing.TB, db ciExecer, name string) {
	t.Helper()
	ciExec(t, db, `DROP TABLE IF EXISTS `+name+` CASCADE`)
	ciExec(t, db, `CREATE TABLE `+name+` (id int PRIMARY KEY, v text)`)
	ciExec(t, db, `INSERT INTO `+name+` VALUES (1, 'one'), (2, 'two')`)
}

// ciExec runs a set-up statement or stops the test.
var ciExec = testdb.Exec

// ciRows runs a query and returns its rows formatted one a line. It reads
// once: a statement pgx prepared before DDL changed its table is the
// driver's to retry (replan.go), not the test's.
func ciRows(q ciQueryer, ctx context.Context, query string, args ...any) (string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var out strings.Builder
	if err := ciFormatRows(&out, rows); err != nil {
		return "", err
	}
	return out.String(), rows.Close()
}

// ciFormatRows writes rows to out, one a line, values separated by |
// ([]byte quoted), and reads them to the end.
func ciFormatRows(out *strings.Builder, rows *sql.Rows) error {
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			if i > 0 {
				out.WriteByte('|')
			}
			if b, ok := v.([]byte); ok {
				v = fmt.Sprintf("%q", b)
			}
			fmt.Fprint(out, v)
		}
		out.WriteByte('\n')
	}
	return rows.Err()
}

// ciDo runs a read and tells how the cache answered it, from the change in
// db's cache statistics: "hit", "miss", "bypass" (with its reason) or
// "none" when the cache had no part. Reads of one db must not run
// concurrently with it.
func ciDo(t testing.TB, db *sql.DB, q ciQueryer, ctx context.Context, query string, args ...any) (res, outcome, reason string) {
	t.Helper()
	before := ciStats(t, db)
	res, err := ciRows(q, ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	after := ciStats(t, db)
	switch {
	case after.Hits > before.Hits:
		outcome = "hit"
	case after.Misses > before.Misses:
		outcome = "miss"
	default:
		outcome = "none"
		for k, n := range after.Bypasses {
			if n > before.Bypasses[k] {
				outcome, reason = "bypass", k
			}
		}
	}
	return res, outcome, reason
}

// ciExpect runs a read and fails unless the cache answered it as want
// ("hit", "miss", "bypass", "none", or "cached" for hit or miss), with a
// bypass reason containing reasonPart when given. It returns the rows.
func ciExpect(t testing.TB, db *sql.DB, q ciQueryer, ctx context.Context, want, reasonPart, query string, args ...any) string {
	t.Helper()
	res, got, reason := ciDo(t, db, q, ctx, query, args...)
	ok := got == want || want == "cached" && (got == "hit" || got == "miss")
	if !ok || !strings.Contains(reason, reasonPart) {
		t.Fatalf("%s %v: cache answered %s (reason %q), want %s %q", query, args, got, reason, want, reasonPart)
	}
	return res
}

// ciNoCache reads through NoCache, for the truth to compare with.
func ciNoCache(t testing.TB, q ciQueryer, query string, args ...any) string {
	t.Helper()
	res, err := ciRows(q, NoCache(context.Background()), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return res
}

// ciDiscard closes conn and removes its connection from the pool, so that
// its session state does not leak into later tests.
// ciConn takes a connection of db for the test, closed when it ends.
func ciConn(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ciDiscardedConn is ciConn whose connection leaves the pool when the test
// ends, so that what it changed in its session is seen by no other test.
func ciDiscardedConn(t testing.TB, db *sql.DB) *sql.Conn {
	t.Helper()
	c := ciConn(t, db)
	t.Cleanup(func() { ciDiscard(c) }) // runs before ciConn's close
	return c
}

func ciDiscard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	conn.Close()
}

// ciStats returns db's cache statistics; the cache must be on.
func ciStats(t testing.TB, db *sql.DB) CacheStats {
	t.Helper()
	s, err := Stats(db)
	if err != nil || s.Cache == nil {
		t.Fatalf("Stats: %v, cache %v", err, s.Cache)
	}
	return *s.Cache
}

// ---- 1. policy ----

func TestCacheIntegPolicyExplicit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t) // explicit is the default
	ciTable(t, db, "ci_pol_explicit")
	if s := ciStats(t, db); s.Mode != "explicit" {
		t.Fatalf("default mode %q, want explicit", s.Mode)
	}
	q := `SELECT v FROM ci_pol_explicit WHERE id = $1`
	for range 2 {
		if got := ciExpect(t, db, db, ctx, "none", "", q, 1); got != "one\n" {
			t.Fatalf("read %q", got)
		}
	}
	wc := WithCache(ctx, time.Minute)
	ciExpect(t, db, db, wc, "miss", "", q, 1)
	if got := ciExpect(t, db, db, wc, "hit", "", q, 1); got != "one\n" {
		t.Fatalf("hit %q", got)
	}
	// The plain context still does not use the entry.
	ciExpect(t, db, db, ctx, "none", "", q, 1)

	hinted := `/* auditpg:cache ttl=30s */ SELECT v FROM ci_pol_explicit WHERE id = $1`
	ciExpect(t, db, db, ctx, "miss", "", hinted, 2)
	if got := ciExpect(t, db, db, ctx, "hit", "", hinted, 2); got != "two\n" {
		t.Fatalf("hinted hit %q", got)
	}
	// A hint elsewhere than in a comment is no hint.
	notHint := `SELECT v FROM ci_pol_explicit WHERE id = $1 AND v <> 'auditpg:cache'`
	ciExpect(t, db, db, ctx, "none", "", notHint, 2)
	ciExpect(t, db, db, ctx, "none", "", notHint, 2)

	// NoCache wins over the hint; WithCache does not make a volatile read
	// cacheable.
	ciExpect(t, db, db, NoCache(ctx), "bypass", "NoCache", hinted, 2)
	ciExpect(t, db, db, wc, "bypass", "", `SELECT v, random() FROM ci_pol_explicit WHERE id = $1`, 2)
}

func TestCacheIntegPolicyTables(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheTables("ci_pol_t1"))
	ciTable(t, db, "ci_pol_t1")
	ciTable(t, db, "ci_pol_t2")
	q1 := `SELECT v FROM ci_pol_t1 WHERE id = $1`
	q2 := `SELECT v FROM ci_pol_t2 WHERE id = $1`
	join := `SELECT a.v, b.v FROM ci_pol_t1 a JOIN ci_pol_t2 b USING (id) WHERE id = $1`
	ciExpect(t, db, db, ctx, "miss", "", q1, 1)
	if got := ciExpect(t, db, db, ctx, "hit", "", q1, 1); got != "one\n" {
		t.Fatalf("hit %q", got)
	}
	ciExpect(t, db, db, ctx, "cached", "", `SELECT v FROM public.ci_pol_t1 WHERE id = $1`, 2)
	for range 2 {
		ciExpect(t, db, db, ctx, "none", "", q2, 1)
		ciExpect(t, db, db, ctx, "none", "", join, 1)
		ciExpect(t, db, db, ctx, "none", "", `SELECT 1`)
	}
	// A read that asks is cached whatever its tables.
	ciExpect(t, db, db, WithCache(ctx, 0), "miss", "", q2, 2)
	ciExpect(t, db, db, WithCache(ctx, 0), "hit", "", q2, 2)

	// The same from the DSN.
	dsnDB := ciOpenDSN(t, ciDSN(t, "", map[string]string{"auditpg_cache": "tables", "auditpg_cache_tables": "ci_pol_t2,ci_pol_nothing"}))
	if s := ciStats(t, dsnDB); s.Mode != "tables" {
		t.Fatalf("DSN mode %q", s.Mode)
	}
	ciExpect(t, dsnDB, dsnDB, ctx, "miss", "", q2, 1)
	ciExpect(t, dsnDB, dsnDB, ctx, "hit", "", q2, 1)
	ciExpect(t, dsnDB, dsnDB, ctx, "none", "", q1, 1)
	ciExpect(t, dsnDB, dsnDB, ctx, "none", "", join, 1)
}

func TestCacheIntegPolicyAll(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_pol_all")
	q := `SELECT v FROM ci_pol_all WHERE id = $1`
	ciExpect(t, db, db, ctx, "miss", "", q, 1)
	ciExpect(t, db, db, ctx, "hit", "", q, 1)
	ciExpect(t, db, db, ctx, "miss", "", `SELECT id, v FROM ci_pol_all ORDER BY id`)
	ciExpect(t, db, db, ctx, "hit", "", `SELECT id, v FROM ci_pol_all ORDER BY id`)
	for range 2 {
		if got := ciExpect(t, db, db, NoCache(ctx), "bypass", "NoCache context", q, 1); got != "one\n" {
			t.Fatalf("NoCache read %q", got)
		}
	}
	s := ciStats(t, db)
	if s.Bypasses["NoCache context"] != 2 || s.Hits != 2 || s.Misses != 2 || s.Fills != 2 {
		t.Fatalf("stats %+v: want 2 hits, 2 misses, 2 fills, 2 NoCache bypasses", s)
	}
	if s.HitRatio != 0.5 || s.Entries < 2 || s.HeldBytes <= 0 {
		t.Fatalf("stats %+v: want hit ratio 0.5, at least 2 entries and some bytes", s)
	}
}

func TestCacheIntegTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const short = 400 * time.Millisecond
	db := ciOpen(t, WithCacheMode(CacheAll), WithCacheTTL(time.Hour))
	ciTable(t, db, "ci_ttl")
	defaultTTL := ciOpen(t, WithCacheMode(CacheAll), WithCacheTTL(short))

	cases := []struct {
		name  string
		db    *sql.DB
		ctx   context.Context
		query string
	}{
		{"WithCache", db, WithCache(ctx, short), `SELECT v FROM ci_ttl WHERE id = $1`},
		{"hint", db, ctx, `/* auditpg:cache ttl=400ms */ SELECT v FROM ci_ttl WHERE id = $1`},
		{"WithCacheTTL", defaultTTL, ctx, `SELECT v, 'default' FROM ci_ttl WHERE id = $1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ciExpect(t, c.db, c.db, c.ctx, "miss", "", c.query, 1)
			filled := time.Now()
			ciExpect(t, c.db, c.db, c.ctx, "hit", "", c.query, 1)
			time.Sleep(time.Until(filled.Add(short + 100*time.Millisecond)))
			ciExpect(t, c.db, c.db, c.ctx, "miss", "", c.query, 1)
			ciExpect(t, c.db, c.db, c.ctx, "hit", "", c.query, 1)
		})
	}
	// An expired entry filled again is replaced, not evicted.
	for _, d := range []*sql.DB{db, defaultTTL} {
		if s := ciStats(t, d); s.Evictions != 0 || s.Fills == 0 {
			t.Fatalf("after refilling expired entries: %+v, want fills and no evictions", s)
		}
	}
	// The long default keeps an entry past the short TTLs.
	q := `SELECT v FROM ci_ttl WHERE id = 2`
	ciExpect(t, db, db, ctx, "miss", "", q)
	time.Sleep(short + 100*time.Millisecond)
	ciExpect(t, db, db, ctx, "hit", "", q)
}

func TestCacheIntegOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, db := range map[string]*sql.DB{
		"option": ciOpen(t, WithCacheMode(CacheOff)),
		"DSN":    ciOpenDSN(t, ciDSN(t, "", map[string]string{"auditpg_cache": "off"})),
	} {
		ciTable(t, db, "ci_off_"+strings.ToLower(name))
		q := `SELECT v FROM ci_off_` + strings.ToLower(name) + ` WHERE id = 1`
		for range 2 {
			got, err := ciRows(db, WithCache(ctx, time.Minute), q)
			if err != nil || got != "one\n" {
				t.Fatalf("%s: %q, %v", name, got, err)
			}
		}
		s, err := Stats(db)
		if err != nil || s.Cache != nil {
			t.Fatalf("%s: Stats.Cache = %+v (%v), want nil when the cache is off", name, s.Cache, err)
		}
		if err := Invalidate(db, "x"); err != nil {
			t.Fatalf("Invalidate with the cache off: %v", err)
		}
	}
	// And the other way: the DSN turns it on.
	on := ciOpenDSN(t, ciDSN(t, "", map[string]string{"auditpg_cache": "all"}))
	if s := ciStats(t, on); s.Mode != "all" {
		t.Fatalf("DSN auditpg_cache=all: mode %q", s.Mode)
	}
}

// ---- 2. what is never cached ----

// ciNeverCached runs query twice and fails if the cache served or filled
// either read; the result must equal the NoCache read.
func ciNeverCached(t *testing.T, db *sql.DB, q ciQueryer, reasonPart, query string, args ...any) {
	t.Helper()
	for range 2 {
		_, got, reason := ciDo(t, db, q, context.Background(), query, args...)
		if got == "hit" || got == "miss" || !strings.Contains(reason, reasonPart) {
			t.Fatalf("%s: cache answered %s (reason %q), want a bypass %q", query, got, reason, reasonPart)
		}
	}
}

func TestCacheIntegNeverCached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_nc")
	plain := `SELECT v FROM ci_nc WHERE id = $1`
	ciExpect(t, db, db, ctx, "miss", "", plain, 1)
	ciExpect(t, db, db, ctx, "hit", "", plain, 1)

	t.Run("locking", func(t *testing.T) {
		for _, lock := range []string{"FOR UPDATE", "FOR NO KEY UPDATE", "FOR SHARE", "FOR KEY SHARE", "FOR UPDATE SKIP LOCKED"} {
			ciNeverCached(t, db, db, "", `SELECT v FROM ci_nc WHERE id = $1 `+lock, 1)
		}
	})
	t.Run("select into", func(t *testing.T) {
		for range 2 {
			ciExec(t, db, `DROP TABLE IF EXISTS ci_nc_into`)
			_, got, _ := ciDo(t, db, db, ctx, `SELECT id, v INTO ci_nc_into FROM ci_nc`)
			if got == "hit" || got == "miss" {
				t.Fatalf("SELECT INTO: cache answered %s", got)
			}
		}
		if got := ciNoCache(t, db, `SELECT count(*) FROM ci_nc_into`); got != "2\n" {
			t.Fatalf("SELECT INTO made %q rows", got)
		}
	})
	t.Run("data-modifying WITH", func(t *testing.T) {
		for i := range 2 {
			q := `WITH u AS (UPDATE ci_nc SET v = v WHERE id = $1 RETURNING v) SELECT v FROM u`
			res, got, _ := ciDo(t, db, db, ctx, q, 2)
			if got == "hit" || got == "miss" || res != "two\n" {
				t.Fatalf("read %d of %s: cache answered %s with %q", i, q, got, res)
			}
		}
	})
	t.Run("volatile and stable builtins", func(t *testing.T) {
		for _, q := range []string{
			`SELECT v, now() FROM ci_nc WHERE id = $1`,
			`SELECT v FROM ci_nc WHERE id = $1 AND random() >= 0`,
			`SELECT random()`,
			`SELECT clock_timestamp()`,
			`SELECT gen_random_uuid()`,
			`SELECT current_timestamp`,
			`SELECT localtimestamp, v FROM ci_nc WHERE id = $1`,
		} {
			var args []any
			if strings.Contains(q, "$1") {
				args = []any{1}
			}
			ciNeverCached(t, db, db, "", q, args...)
		}
	})
	t.Run("now literal", func(t *testing.T) {
		for _, q := range []string{`SELECT 'now'::timestamptz`, `SELECT 'today'::date`, `SELECT TIMESTAMP 'tomorrow'`} {
			ciNeverCached(t, db, db, "", q)
		}
		// As an argument too; an ordinary time is cached.
		for _, arg := range []string{"now", "today", " Yesterday "} {
			ciNeverCached(t, db, db, "", `SELECT $1::timestamptz AS ts`, arg)
		}
		ciExpect(t, db, db, ctx, "miss", "", `SELECT $1::timestamptz AS ts`, "2024-01-01 00:00:00+00")
		ciExpect(t, db, db, ctx, "hit", "", `SELECT $1::timestamptz AS ts`, "2024-01-01 00:00:00+00")
	})
	t.Run("tablesample", func(t *testing.T) {
		ciNeverCached(t, db, db, "", `SELECT count(*) >= 0 AS random_sample FROM ci_nc TABLESAMPLE BERNOULLI (50)`)
		ciNeverCached(t, db, db, "", `SELECT id FROM ci_nc TABLESAMPLE SYSTEM (50)`)
		ciExpect(t, db, db, ctx, "miss", "", `SELECT id FROM ci_nc TABLESAMPLE SYSTEM (50) REPEATABLE (7)`)
		ciExpect(t, db, db, ctx, "hit", "", `SELECT id FROM ci_nc TABLESAMPLE SYSTEM (50) REPEATABLE (7)`)
	})
	t.Run("system catalogs", func(t *testing.T) {
		ciNeverCached(t, db, db, "", `SELECT relname FROM pg_class WHERE relname = $1`, "ci_nc")
		ciNeverCached(t, db, db, "", `SELECT count(*) > 0 FROM pg_catalog.pg_attribute`)
		ciNeverCached(t, db, db, "", `SELECT table_name FROM information_schema.tables WHERE table_name = $1`, "ci_nc")
	})
	t.Run("row-level security", func(t *testing.T) {
		ciTable(t, db, "ci_nc_rls")
		q := `SELECT v FROM ci_nc_rls WHERE id = $1`
		ciExpect(t, db, db, ctx, "miss", "", q, 1) // no RLS yet
		ciExpect(t, db, db, ctx, "hit", "", q, 1)
		ciExec(t, db, `ALTER TABLE ci_nc_rls ENABLE ROW LEVEL SECURITY`)
		ciNeverCached(t, db, db, "row-level security", q, 1)
		allowed := ciOpen(t, WithCacheMode(CacheAll), WithCacheRLSTables("ci_nc_rls"))
		ciExpect(t, allowed, allowed, ctx, "miss", "", q, 1)
		ciExpect(t, allowed, allowed, ctx, "hit", "", q, 1)
		// Another table with row-level security, not allowed.
		ciTable(t, db, "ci_nc_rls2")
		ciExec(t, db, `ALTER TABLE ci_nc_rls2 ENABLE ROW LEVEL SECURITY`)
		ciNeverCached(t, allowed, allowed, "row-level security", `SELECT a.v FROM ci_nc_rls a JOIN ci_nc_rls2 b USING (id) WHERE id = $1`, 1)
	})
	t.Run("functions", func(t *testing.T) {
		for _, vol := range []string{"VOLATILE", "STABLE", "IMMUTABLE"} {
			ciExec(t, db, `CREATE OR REPLACE FUNCTION ci_nc_`+strings.ToLower(vol)+`(x int) RETURNS int LANGUAGE sql `+vol+` AS 'SELECT x + 1'`)
		}
		ciNeverCached(t, db, db, "function not immutable", `SELECT ci_nc_volatile(id) FROM ci_nc WHERE id = $1`, 1)
		ciNeverCached(t, db, db, "function not immutable", `SELECT ci_nc_stable(id) FROM ci_nc WHERE id = $1`, 1)
		ciNeverCached(t, db, db, "function not immutable", `SELECT ci_nc_volatile(1)`)
		ciFill(t, db, plain, 1) // after the DDL above
		q := `SELECT ci_nc_immutable(id) FROM ci_nc WHERE id = $1`
		ciExpect(t, db, db, ctx, "miss", "", q, 1)
		if got := ciExpect(t, db, db, ctx, "hit", "", q, 1); got != "2\n" {
			t.Fatalf("immutable function: %q", got)
		}
		ciExpect(t, db, db, ctx, "miss", "", `SELECT ci_nc_immutable(41)`)
		ciExpect(t, db, db, ctx, "hit", "", `SELECT ci_nc_immutable(41)`)
		// The immutable read invalidated nothing.
		ciExpect(t, db, db, ctx, "hit", "", plain, 1)
		// Redefined through the driver as VOLATILE: no longer cached.
		ciExec(t, db, `CREATE OR REPLACE FUNCTION ci_nc_flip(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x + 1'`)
		flip := `SELECT ci_nc_flip(id) FROM ci_nc WHERE id = $1`
		ciExpect(t, db, db, ctx, "miss", "", flip, 1)
		ciExpect(t, db, db, ctx, "hit", "", flip, 1)
		ciExec(t, db, `CREATE OR REPLACE FUNCTION ci_nc_flip(x int) RETURNS int LANGUAGE sql VOLATILE AS 'SELECT x + 2'`)
		ciNeverCached(t, db, db, "function not immutable", flip, 1)
		if got := ciNoCache(t, db, flip, 1); got != "3\n" {
			t.Fatalf("redefined function: %q", got)
		}
	})
	t.Run("view", func(t *testing.T) {
		ciExec(t, db, `CREATE OR REPLACE VIEW ci_nc_view AS SELECT id, v FROM ci_nc`)
		ciNeverCached(t, db, db, "view", `SELECT v FROM ci_nc_view WHERE id = $1`, 1)
	})
	t.Run("transaction", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		ciNeverCached(t, db, tx, "in a transaction", plain, 1)
		ciNeverCached(t, db, tx, "in a transaction", `SELECT v FROM ci_nc WHERE id = $1`, 2)
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		// The same read-only transaction, read only.
		tx, err = db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		ciNeverCached(t, db, tx, "in a transaction", plain, 1)
		tx.Rollback()
	})
	t.Run("manual BEGIN", func(t *testing.T) {
		conn := ciConn(t, db)
		ciExpect(t, db, conn, ctx, "cached", "", plain, 2)
		ciExec(t, conn, `BEGIN`)
		ciNeverCached(t, db, conn, "in a transaction", plain, 2)
		ciExec(t, conn, `COMMIT`)
		ciExpect(t, db, conn, ctx, "hit", "", plain, 2)
		ciExec(t, conn, `START TRANSACTION ISOLATION LEVEL REPEATABLE READ`)
		ciNeverCached(t, db, conn, "in a transaction", plain, 2)
		ciExec(t, conn, `ROLLBACK`)
		ciExpect(t, db, conn, ctx, "hit", "", plain, 2)
	})
	t.Run("session state", func(t *testing.T) {
		for _, change := range []string{
			`SET work_mem = '8MB'`,
			`SET SESSION statement_timeout = '1min'`,
			`SELECT set_config('work_mem', '8MB', false)`,
			`RESET work_mem`,
			`SET ROLE NONE`,
			`SET SESSION AUTHORIZATION DEFAULT`,
			`SET search_path = public`,
			`CREATE TEMP TABLE ci_nc_tmp (id int, v text)`,
		} {
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ciExpect(t, db, conn, ctx, "cached", "", plain, 1)
			if strings.HasPrefix(change, "SELECT") {
				ciNoCache(t, conn, change)
			} else {
				ciExec(t, conn, change)
			}
			ciNeverCached(t, db, conn, "session state changed", plain, 1)
			if strings.Contains(change, "TEMP") {
				ciExec(t, conn, `INSERT INTO ci_nc_tmp VALUES (1, 'temporary')`)
				ciNeverCached(t, db, conn, "", `SELECT v FROM ci_nc_tmp WHERE id = $1`, 1)
				// A temporary table that hides a permanent one.
				ciExec(t, conn, `CREATE TEMP TABLE ci_nc (id int, v text)`)
				ciExec(t, conn, `INSERT INTO ci_nc VALUES (1, 'hidden')`)
				// (A new text: the server keeps plans of statements prepared
				// before the temporary table hid the permanent one.)
				hidden := `SELECT v AS hidden FROM ci_nc WHERE id = $1`
				ciNeverCached(t, db, conn, "", hidden, 1)
				if got := ciNoCache(t, conn, hidden, 1); got != "hidden\n" {
					t.Fatalf("temporary table read %q", got)
				}
			}
			ciDiscard(conn)
			// Other connections go on caching.
			ciExpect(t, db, db, ctx, "cached", "", plain, 1)
		}
	})
}

// ---- 3. the key ----

func TestCacheIntegKeyArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_key_args")
	q := `SELECT v FROM ci_key_args WHERE id = $1`
	for _, want := range []string{"miss", "hit"} {
		for id, v := range map[int]string{1: "one\n", 2: "two\n", 3: ""} {
			if got := ciExpect(t, db, db, ctx, want, "", q, id); got != v {
				t.Fatalf("%s of id %d: %q, want %q", want, id, got, v)
			}
		}
	}

	// The same text in arguments of other Go types: each is a key of its
	// own, and each answer is the server's.
	type ciNamed string
	typed := []struct {
		query string
		args  []any
	}{
		{`SELECT $1::numeric AS n`, []any{int64(1), float64(1), "1", ciNamed("1"), float64(1.5), "1.50"}},
		{`SELECT $1::bool::text AS b`, []any{true, "true", "t", false}},
		{`SELECT $1::timestamptz::text AS ts`, []any{time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02 03:04:05+00",
			time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))}},
		{`SELECT $1::text IS NULL AS isnull`, []any{nil, "", "x"}},
	}
	for _, c := range typed {
		for _, arg := range c.args {
			truth := ciNoCache(t, db, c.query, arg)
			for _, want := range []string{"miss", "hit"} {
				if got := ciExpect(t, db, db, ctx, want, "", c.query, arg); got != truth {
					t.Fatalf("%s of %T %v: %q, want %q", want, arg, arg, got, truth)
				}
			}
		}
	}
	// A string and a []byte with the same bytes mean different bytea values.
	hex := `SELECT encode($1::bytea, 'hex') AS h`
	var answers []string
	for _, arg := range []any{`\x6869`, []byte(`\x6869`)} {
		truth := ciNoCache(t, db, hex, arg)
		answers = append(answers, truth)
		for _, want := range []string{"miss", "hit"} {
			if got := ciExpect(t, db, db, ctx, want, "", hex, arg); got != truth {
				t.Fatalf("%s of %T: %q, want %q", want, arg, got, truth)
			}
		}
	}
	if answers[0] == answers[1] {
		t.Fatalf("string and []byte gave the same bytea %q: the test proves nothing", answers[0])
	}
}

// ciAdmin is a connection without auditpg, for setup the cache must not see.
func ciAdmin(t *testing.T) *sql.DB {
	t.Helper()
	return openDB(t, "pgx")
}

// ciRole creates a login role (if it does not exist) and drops it when
// the test ends, with what it was granted.
func ciRole(t *testing.T, admin *sql.DB, name string) {
	t.Helper()
	ciExec(t, admin, `DO $$ BEGIN CREATE ROLE `+name+` LOGIN PASSWORD 'ci_pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$`)
	t.Cleanup(func() {
		// The DBs that log in as the role were opened later, so are closed by now.
		for _, q := range []string{`DROP OWNED BY ` + name, `DROP ROLE ` + name} {
			if _, err := admin.ExecContext(context.Background(), q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
}

// Two roles reading a table whose row-level security policy depends on
// current_user, allowed by name: through two DSNs, and through one
// connector whose connections start as different roles (a role-level
// default role), each sees only its own rows.
func TestCacheIntegKeyRoles(t *testing.T) {
	ctx := context.Background()
	admin := ciAdmin(t)
	for _, r := range []string{"ci_r1", "ci_r2", "ci_rx"} {
		ciRole(t, admin, r)
	}
	ciExec(t, admin, `GRANT ci_r1, ci_r2 TO ci_rx`)
	ciExec(t, admin, `DROP TABLE IF EXISTS ci_key_rls`)
	ciExec(t, admin, `CREATE TABLE ci_key_rls (owner text, v text)`)
	ciExec(t, admin, `INSERT INTO ci_key_rls VALUES ('ci_r1', 'r1-a'), ('ci_r2', 'r2-a'), ('ci_r2', 'r2-b')`)
	ciExec(t, admin, `ALTER TABLE ci_key_rls ENABLE ROW LEVEL SECURITY`)
	ciExec(t, admin, `CREATE POLICY ci_own ON ci_key_rls USING (owner = current_user)`)
	ciExec(t, admin, `GRANT SELECT ON ci_key_rls TO ci_r1, ci_r2`)
	q := `SELECT owner, v FROM ci_key_rls ORDER BY v`
	want := map[string]string{"ci_r1": "ci_r1|r1-a\n", "ci_r2": "ci_r2|r2-a\nci_r2|r2-b\n"}

	t.Run("two DSNs", func(t *testing.T) { // (two caches: the baseline)
		for _, r := range []string{"ci_r1", "ci_r2"} {
			db := ciOpenDSN(t, ciDSN(t, r, nil), WithCacheMode(CacheAll), WithCacheRLSTables("ci_key_rls"))
			for _, outcome := range []string{"miss", "hit"} {
				if got := ciExpect(t, db, db, ctx, outcome, "", q); got != want[r] {
					t.Fatalf("%s, %s: %q, want %q", r, outcome, got, want[r])
				}
			}
		}
	})
	t.Run("one connector", func(t *testing.T) {
		var db *sql.DB
		conns := map[string]*sql.Conn{}
		for _, r := range []string{"ci_r1", "ci_r2"} {
			ciExec(t, admin, `ALTER ROLE ci_rx SET role = '`+r+`'`)
			if db == nil { // its first connection (Ping's) starts as ci_r1
				db = ciOpenDSN(t, ciDSN(t, "ci_rx", nil), WithCacheMode(CacheAll), WithCacheRLSTables("ci_key_rls"))
			}
			conn := ciDiscardedConn(t, db)
			if got := ciNoCache(t, conn, `SELECT current_user`); got != r+"\n" {
				t.Fatalf("connection opened with role %s has current_user %q", r, got)
			}
			conns[r] = conn
		}
		ciExec(t, admin, `ALTER ROLE ci_rx RESET role`)
		for _, outcome := range []string{"miss", "hit"} {
			for _, r := range []string{"ci_r1", "ci_r2"} {
				if got := ciExpect(t, db, conns[r], ctx, outcome, "", q); got != want[r] {
					t.Fatalf("%s through role %s: %q, want %q", outcome, r, got, want[r])
				}
			}
		}
	})
}

// Two connections of one connector whose role-level search_path differs
// read two tables of the same name in two schemas.
func TestCacheIntegKeySearchPath(t *testing.T) {
	ctx := context.Background()
	admin := ciAdmin(t)
	ciRole(t, admin, "ci_sp")
	for _, s := range []string{"ci_sp_a", "ci_sp_b"} {
		ciExec(t, admin, `DROP SCHEMA IF EXISTS `+s+` CASCADE`)
		ciExec(t, admin, `CREATE SCHEMA `+s)
		ciExec(t, admin, `CREATE TABLE `+s+`.ci_sp_t (v text)`)
		ciExec(t, admin, `INSERT INTO `+s+`.ci_sp_t VALUES ($1)`, s)
		ciExec(t, admin, `GRANT USAGE ON SCHEMA `+s+` TO ci_sp`)
		ciExec(t, admin, `GRANT SELECT ON `+s+`.ci_sp_t TO ci_sp`)
	}
	var db *sql.DB
	conns := map[string]*sql.Conn{}
	for _, s := range []string{"ci_sp_a", "ci_sp_b"} {
		ciExec(t, admin, `ALTER ROLE ci_sp SET search_path = `+s)
		if db == nil { // its first connection (Ping's) has ci_sp_a
			db = ciOpenDSN(t, ciDSN(t, "ci_sp", nil), WithCacheMode(CacheAll))
		}
		conn := ciDiscardedConn(t, db)
		conns[s] = conn
	}
	ciExec(t, admin, `ALTER ROLE ci_sp RESET search_path`)
	for _, outcome := range []string{"miss", "hit"} {
		for _, s := range []string{"ci_sp_a", "ci_sp_b"} {
			if got := ciExpect(t, db, conns[s], ctx, outcome, "", `SELECT v FROM ci_sp_t`); got != s+"\n" {
				t.Fatalf("%s with search_path %s: %q", outcome, s, got)
			}
		}
	}
}

// A connection that changed its search_path after the cache asked its scope
// must not teach other connections what its names mean: here a view in
// public (never cached: it hides its table from invalidation) and a table
// of the same name in another schema.
func TestCacheIntegSessionMemo(t *testing.T) {
	ctx := context.Background()
	admin := ciAdmin(t)
	ciExec(t, admin, `DROP SCHEMA IF EXISTS ci_sm_s2 CASCADE`)
	ciExec(t, admin, `CREATE SCHEMA ci_sm_s2`)
	ciTable(t, admin, "ci_sm_base")
	ciExec(t, admin, `CREATE OR REPLACE VIEW ci_sm_v AS SELECT id, v FROM ci_sm_base`)
	ciExec(t, admin, `CREATE TABLE ci_sm_s2.ci_sm_v (id int, v text)`)
	db := ciOpen(t, WithCacheMode(CacheAll))

	x := ciDiscardedConn(t, db)
	ciExpect(t, db, x, ctx, "cached", "", `SELECT v FROM ci_sm_base WHERE id = $1`, 1) // the scope is asked
	ciExec(t, x, `SET search_path = ci_sm_s2, public`)
	ciExec(t, x, `INSERT INTO ci_sm_v VALUES (9, 'nine')`) // ci_sm_s2.ci_sm_v, a table

	q := `SELECT v FROM ci_sm_v WHERE id = $1`
	_, outcome, reason := ciDo(t, db, db, ctx, q, 1)
	ciExec(t, db, `UPDATE ci_sm_base SET v = 'new' WHERE id = 1`)
	got, outcome2, _ := ciDo(t, db, db, ctx, q, 1)
	if outcome == "hit" || outcome == "miss" || got != "new\n" {
		t.Fatalf("view read: %s (%q), then after a write to its table %s %q, want bypasses and new", outcome, reason, outcome2, got)
	}
}

// ---- replay fidelity ----

// ciColumn is every answer of one sql.ColumnType.
type ciColumn struct {
	Name, DatabaseTypeName string
	ScanType               reflect.Type
	Nullable, NullableOK   bool
	Length                 int64
	LengthOK               bool
	Precision, Scale       int64
	DecimalOK              bool
}

// ciScanned is what one read gave: the columns and, per row, each
// destination's value (or the Scan error).
type ciScanned struct {
	Columns []ciColumn
	Rows    []string
}

func ciScan(t *testing.T, db *sql.DB, ctx context.Context, query string, dests func() []any, args ...any) ciScanned {
	t.Helper()
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	var out ciScanned
	for _, ct := range cts {
		c := ciColumn{Name: ct.Name(), DatabaseTypeName: ct.DatabaseTypeName(), ScanType: ct.ScanType()}
		c.Nullable, c.NullableOK = ct.Nullable()
		c.Length, c.LengthOK = ct.Length()
		c.Precision, c.Scale, c.DecimalOK = ct.DecimalSize()
		out.Columns = append(out.Columns, c)
	}
	for rows.Next() {
		d := dests()
		if err := rows.Scan(d...); err != nil {
			out.Rows = append(out.Rows, "error: "+err.Error())
			continue
		}
		var line strings.Builder
		for _, p := range d {
			fmt.Fprintf(&line, "%#v; ", reflect.ValueOf(p).Elem().Interface())
		}
		out.Rows = append(out.Rows, line.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func ciPtrs[T any](n int) []any {
	d := make([]any, n)
	for i := range d {
		d[i] = new(T)
	}
	return d
}

func TestCacheIntegReplayFidelity(t *testing.T) {
	t.Parallel()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciExec(t, db, `DROP TABLE IF EXISTS ci_fid`)
	ciExec(t, db, `CREATE TABLE ci_fid (
		id int PRIMARY KEY, c_int2 int2, c_int4 int4 NOT NULL DEFAULT 0, c_int8 int8, c_num numeric(10,2), c_float8 float8,
		c_float4 float4, c_bool bool, c_text text, c_varchar varchar(20), c_char char(5), c_bytea bytea, c_json json,
		c_jsonb jsonb, c_tstz timestamptz, c_ts timestamp, c_date date, c_time time, c_interval interval, c_uuid uuid,
		c_ints int[], c_texts text[], c_inet inet)`)
	ciExec(t, db, `INSERT INTO ci_fid VALUES
		(1, -32768, 2147483647, -9223372036854775808, 12345678.91, 3.141592653589793, 1.5, true, 'tëxt', 'varchar', 'ab',
		 '\x00ff10', '{"a": [1, 2]}', '{"b": {"c": null}}', '2024-02-29 23:59:59.123456+02', '1999-12-31 23:59:59.999999',
		 '2000-01-01', '12:34:56.789', '1 year 2 mons 3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		 '{1,NULL,3}', '{"a b",NULL,"c,d"}', '192.168.0.1/24'),
		(2, NULL, 0, NULL, NULL, 'NaN', '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'infinity', NULL, NULL, NULL,
		 NULL, NULL, NULL, NULL, NULL),
		(3, 0, -1, 0, -0.01, -0, 0, false, '', '', '', '', 'null', '[]', '1970-01-01 00:00:00+00', '0001-01-01 00:00:00',
		 '0001-01-01', '00:00', '-1 day', '00000000-0000-0000-0000-000000000000', '{}', '{}', '::1')`)

	ciExec(t, db, `DROP TABLE IF EXISTS ci_fid_more`)
	ciExec(t, db, `DROP TYPE IF EXISTS ci_fid_mood, ci_fid_pair`)
	ciExec(t, db, `CREATE TYPE ci_fid_mood AS ENUM ('sad', 'ok', 'happy')`)
	ciExec(t, db, `CREATE TYPE ci_fid_pair AS (a int, b text)`)
	ciExec(t, db, `CREATE TABLE ci_fid_more (
		id int PRIMARY KEY, c_enum ci_fid_mood, c_pair ci_fid_pair, c_range int4range, c_tsrange tstzrange, c_point point,
		c_bit bit(4), c_varbit varbit(8), c_xml xml, c_tsv tsvector, c_macaddr macaddr, c_cidr cidr, c_oid oid, c_name name,
		c_qchar "char", c_intervals interval[], c_jsonbs jsonb[], c_num_special numeric, c_uuids uuid[], c_money money)`)
	ciExec(t, db, `INSERT INTO ci_fid_more VALUES
		(1, 'happy', ROW(1, 'x'), '[1,5)', '[2024-01-01 00:00+00,2024-02-01 00:00+00)', '(1.5,2)', B'1010', B'101',
		 '<a>x</a>', 'a fat cat', '08:00:2b:01:02:03', '10.0.0.0/8', 42, 'a name', 'c', '{1 day,"2 hours"}',
		 ARRAY['{"a":1}'::jsonb], 'NaN', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', 12.34),
		(2, NULL, NULL, 'empty', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}', NULL, 'Infinity',
		 NULL, NULL)`)

	all := `SELECT * FROM ci_fid ORDER BY id`
	const ncols = 23
	natural := func() []any {
		return []any{new(int), new(int16), new(int32), new(int64), new(string), new(float64), new(float32), new(bool),
			new(string), new(string), new(string), new([]byte), new([]byte), new(string), new(time.Time), new(time.Time),
			new(time.Time), new(string), new(string), new(string), new(string), new(string), new(string)}
	}
	nullable := func() []any {
		return []any{new(sql.NullInt64), new(sql.NullInt16), new(sql.NullInt32), new(sql.NullInt64), new(sql.NullString),
			new(sql.NullFloat64), new(sql.NullFloat64), new(sql.NullBool), new(sql.NullString), new(sql.NullString),
			new(sql.NullString), new([]byte), new([]byte), new(sql.NullString), new(sql.NullTime), new(sql.NullTime),
			new(sql.NullTime), new(sql.NullString), new(sql.NullString), new(sql.NullString), new(sql.NullString),
			new(sql.NullString), new(sql.NullString)}
	}
	cases := []struct {
		name  string
		query string
		dests func() []any
	}{
		{"natural", all, natural},
		{"sql.Null", all, nullable},
		{"any", all, func() []any { return ciPtrs[any](ncols) }},
		{"[]byte", all, func() []any { return ciPtrs[[]byte](ncols) }},
		{"sql.RawBytes", all, func() []any { return ciPtrs[sql.RawBytes](ncols) }},
		{"string", all, func() []any { return ciPtrs[string](ncols) }},
		{"time.Time", `SELECT c_tstz, c_ts, c_date FROM ci_fid ORDER BY id`, func() []any { return ciPtrs[time.Time](3) }},
		{"expressions", `SELECT id * 2 AS twice, c_num / 3 AS third, c_text || '!' AS excl, c_jsonb -> 'b' AS b,
			c_ints[1] AS first, c_tstz AT TIME ZONE 'UTC' AS utc, NULL::text AS nothing, c_varchar::varchar(3) AS short
			FROM ci_fid ORDER BY id`, func() []any { return ciPtrs[any](8) }},
		{"no rows", `SELECT * FROM ci_fid WHERE id < 0`, func() []any { return ciPtrs[any](ncols) }},
		{"other types", `SELECT * FROM ci_fid_more ORDER BY id`, func() []any { return ciPtrs[any](20) }},
		{"other types as text", `SELECT * FROM ci_fid_more ORDER BY id`, func() []any { return ciPtrs[sql.NullString](20) }},
	}
	// pgx's exec modes decode results from binary or from text: both replay.
	modes := map[string]*sql.DB{
		"cache_statement": db,
		"simple_protocol": ciOpenDSN(t, ciDSN(t, "", map[string]string{"default_query_exec_mode": "simple_protocol"}), WithCacheMode(CacheAll)),
		"exec":            ciOpenDSN(t, ciDSN(t, "", map[string]string{"default_query_exec_mode": "exec"}), WithCacheMode(CacheAll)),
	}
	for mode, db := range modes {
		for _, c := range cases {
			t.Run(mode+"/"+c.name, func(t *testing.T) {
				ciFidelity(t, db, c.name, c.query+" -- "+c.name, c.dests)
			})
		}
	}
}

// ciFidelity reads query without the cache, then filling it, then from
// it, and compares every column answer and every scanned value.
func ciFidelity(t *testing.T, db *sql.DB, name, query string, dests func() []any, args ...any) {
	t.Helper()
	ctx := context.Background()
	before := ciStats(t, db)
	truth := ciScan(t, db, NoCache(ctx), query, dests, args...)
	filled := ciScan(t, db, ctx, query, dests, args...)
	mid := ciStats(t, db)
	hit := ciScan(t, db, ctx, query, dests, args...)
	after := ciStats(t, db)
	if mid.Fills != before.Fills+1 || after.Hits != mid.Hits+1 {
		t.Fatalf("%s: fills %d->%d, hits %d->%d: want the second read to fill and the third to hit (bypasses %v)",
			name, before.Fills, mid.Fills, mid.Hits, after.Hits, after.Bypasses)
	}
	if len(truth.Rows) == 0 && name != "no rows" {
		t.Fatal("no rows read")
	}
	for _, got := range []ciScanned{filled, hit} {
		if !reflect.DeepEqual(got.Columns, truth.Columns) {
			t.Errorf("columns:\n got %+v\nwant %+v", got.Columns, truth.Columns)
		}
		if !reflect.DeepEqual(got.Rows, truth.Rows) {
			t.Errorf("rows:\n got %q\nwant %q", got.Rows, truth.Rows)
		}
	}
}

// A miss takes its column section from the connection's memo when pgx
// returns a result description it has seen (internal/resultcache's
// TestColumnMemo checks the memo itself). Results with the same column
// names and other types, on one connection, each keep their own columns,
// one-byte names included; so does a statement whose result types changed
// under pgx's prepared statement.
func TestCacheIntegColumnMemo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	plain := openDB(t, "pgx") // writes from outside the driver
	ciExec(t, plain, `DROP TABLE IF EXISTS ci_cm_a, ci_cm_b, ci_cm_c`)
	ciExec(t, plain, `DROP TYPE IF EXISTS ci_cm_mood`)
	ciExec(t, plain, `CREATE TYPE ci_cm_mood AS ENUM ('sad', 'ok')`)
	ciExec(t, plain, `CREATE TABLE ci_cm_a (id int PRIMARY KEY, v text, x int)`)
	ciExec(t, plain, `CREATE TABLE ci_cm_b (id bigint PRIMARY KEY, v varchar(10), x text)`)
	ciExec(t, plain, `CREATE TABLE ci_cm_c (id numeric(5,1) PRIMARY KEY, v varchar(20), x bool)`)
	ciExec(t, plain, `INSERT INTO ci_cm_a VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3)`)
	ciExec(t, plain, `INSERT INTO ci_cm_b VALUES (1, 'one', '1'), (2, 'two', '2'), (3, 'three', '3')`)
	ciExec(t, plain, `INSERT INTO ci_cm_c VALUES (1, 'one', true), (2, 'two', false), (3, 'three', true)`)
	wide := `SELECT id, v FROM %s WHERE id >= $1 ORDER BY id`
	oneByte := `SELECT x FROM %s WHERE id >= $1 ORDER BY id`

	t.Run("replay", func(t *testing.T) {
		db := ciOpen(t, WithCacheMode(CacheAll))
		db.SetMaxOpenConns(1) // one connection, one memo
		two := func() []any { return ciPtrs[any](2) }
		one := func() []any { return ciPtrs[any](1) }
		for arg := 1; arg <= 3; arg++ { // the first fills the memo, the others read it
			for _, tbl := range []string{"ci_cm_a", "ci_cm_b", "ci_cm_c"} {
				ciFidelity(t, db, tbl, fmt.Sprintf(wide, tbl), two, arg)
				ciFidelity(t, db, tbl, fmt.Sprintf(oneByte, tbl), one, arg)
			}
		}
		// The column's type changes outside the driver: pgx's prepared
		// statement fails once, pgx prepares it again, and the new
		// description's names are new strings, which the memo has not seen.
		ciExec(t, plain, `ALTER TABLE ci_cm_a ALTER COLUMN v TYPE varchar(7)`)
		query := fmt.Sprintf(wide, "ci_cm_a")
		switch rows, err := db.QueryContext(NoCache(ctx), query, 1); {
		case err == nil:
			rows.Close() // a pgx that prepares again by itself
		case !strings.Contains(err.Error(), "cached plan must not change result type"):
			t.Fatal(err)
		}
		ciFidelity(t, db, "altered", query, two, 0) // a key not read before
		got := ciScan(t, db, ctx, query, two, 0)
		if c := got.Columns[1]; c.DatabaseTypeName != "VARCHAR" || c.Length != 7 {
			t.Fatalf("after the change the replay says %s(%d), want VARCHAR(7)", c.DatabaseTypeName, c.Length)
		}
	})
}

// ---- 4. invalidation ----

// ciFill reads query until the cache holds it (a hit).
func ciFill(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	ciExpect(t, db, db, context.Background(), "cached", "", query, args...)
	return ciExpect(t, db, db, context.Background(), "hit", "", query, args...)
}

// ciFresh reads query and fails unless the server answered (not a hit) with
// what NoCache reads.
func ciFresh(t *testing.T, db *sql.DB, query string, args ...any) string {
	t.Helper()
	res, outcome, _ := ciDo(t, db, db, context.Background(), query, args...)
	if truth := ciNoCache(t, db, query, args...); outcome == "hit" || res != truth {
		t.Fatalf("%s after a write: %s %q, want the server's %q", query, outcome, res, truth)
	}
	return res
}

func TestCacheIntegInvalidationWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := ciAdmin(t)
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, admin, "ci_inv")
	ciTable(t, admin, "ci_inv_other")
	ciExec(t, admin, `CREATE OR REPLACE VIEW ci_inv_view AS SELECT id, v FROM ci_inv`)
	ciExec(t, admin, `DROP MATERIALIZED VIEW IF EXISTS ci_inv_mv`)
	ciExec(t, admin, `CREATE MATERIALIZED VIEW ci_inv_mv AS SELECT count(*) AS n FROM ci_inv`)
	ciExec(t, admin, `CREATE OR REPLACE PROCEDURE ci_inv_proc(x text) LANGUAGE sql AS $$ UPDATE ci_inv SET v = x WHERE id = 1 $$`)
	ciExec(t, admin, `CREATE OR REPLACE FUNCTION ci_inv_writer(x text) RETURNS int LANGUAGE sql VOLATILE AS $$ UPDATE ci_inv SET v = x WHERE id = 2 RETURNING id $$`)
	read := `SELECT * FROM ci_inv ORDER BY id`
	exec := func(q string, args ...any) func(t *testing.T) {
		return func(t *testing.T) { ciExec(t, db, q, args...) }
	}
	query := func(q string, args ...any) func(t *testing.T) {
		return func(t *testing.T) {
			if _, err := ciRows(db, ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	steps := []struct {
		name  string
		read  string // default: read
		write func(t *testing.T)
	}{
		{"insert", "", exec(`INSERT INTO ci_inv VALUES (3, 'three')`)},
		{"update", "", exec(`UPDATE ci_inv SET v = 'uno' WHERE id = 1`)},
		{"delete", "", exec(`DELETE FROM ci_inv WHERE id = 3`)},
		{"upsert", "", exec(`INSERT INTO ci_inv VALUES (2, 'deux') ON CONFLICT (id) DO UPDATE SET v = excluded.v`)},
		{"merge", "", exec(`MERGE INTO ci_inv t USING (VALUES (2, 'dos')) s(id, v) ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v`)},
		{"qualified", "", exec(`UPDATE public.ci_inv SET v = 'qualified' WHERE id = 1`)},
		{"quoted", "", exec(`UPDATE "ci_inv" SET v = 'quoted' WHERE id = 1`)},
		{"prepared", "", func(t *testing.T) {
			stmt, err := db.PrepareContext(ctx, `UPDATE ci_inv SET v = $1 WHERE id = $2`)
			if err != nil {
				t.Fatal(err)
			}
			defer stmt.Close()
			if _, err := stmt.ExecContext(ctx, "prepared", 1); err != nil {
				t.Fatal(err)
			}
		}},
		{"query with RETURNING", "", query(`UPDATE ci_inv SET v = 'returned' WHERE id = 2 RETURNING id, v`)},
		{"QueryRow with RETURNING", "", func(t *testing.T) {
			var id int
			if err := db.QueryRowContext(ctx, `INSERT INTO ci_inv VALUES (4, 'four') RETURNING id`).Scan(&id); err != nil {
				t.Fatal(err)
			}
		}},
		{"data-modifying WITH", "", query(`WITH d AS (DELETE FROM ci_inv WHERE id = $1 RETURNING id) SELECT count(*) FROM d`, 4)},
		{"DO", "", exec(`DO $$ BEGIN UPDATE ci_inv SET v = 'do' WHERE id = 1; END $$`)},
		{"CALL", "", exec(`CALL ci_inv_proc('called')`)},
		{"volatile function in a SELECT", "", query(`SELECT ci_inv_writer('written')`)},
		{"DDL add column", "", exec(`ALTER TABLE ci_inv ADD COLUMN extra int DEFAULT 7`)},
		{"DDL drop column", "", exec(`ALTER TABLE ci_inv DROP COLUMN extra`)},
		{"truncate", "", exec(`TRUNCATE ci_inv`)},
		{"insert again", "", exec(`INSERT INTO ci_inv VALUES (1, 'one'), (2, 'two')`)},
		{"refresh materialized view", `SELECT n FROM ci_inv_mv`, func(t *testing.T) {
			ciExec(t, admin, `INSERT INTO ci_inv VALUES (5, 'five')`) // the view does not change...
			ciExec(t, db, `REFRESH MATERIALIZED VIEW ci_inv_mv`)      // ...until this
		}},
		{"write through an updatable view", "", exec(`UPDATE ci_inv_view SET v = 'through the view' WHERE id = 1`)},
		{"two statements in one exec", "", exec(`UPDATE ci_inv_other SET v = 'multi' WHERE id = 1; UPDATE ci_inv SET v = 'multi' WHERE id = 1`)},
		{"UPDATE ... FROM", "", exec(`UPDATE ci_inv SET v = o.v || ' from' FROM ci_inv_other o WHERE o.id = ci_inv.id`)},
		{"EXPLAIN ANALYZE", "", exec(`EXPLAIN ANALYZE UPDATE ci_inv SET v = 'explained' WHERE id = 1`)},
		{"writing function in FROM", "", query(`SELECT * FROM ci_inv_writer('from clause')`)},
		{"a table read in a subquery", `SELECT count(*) FROM ci_inv WHERE id IN (SELECT id FROM ci_inv_other WHERE v = 'keep')`,
			exec(`UPDATE ci_inv_other SET v = 'keep' WHERE id = 1`)},
		{"a table read in a CTE of its own name", `WITH ci_inv_other AS (SELECT * FROM ci_inv_other WHERE id > 0)
			SELECT string_agg(v, ',' ORDER BY id) FROM ci_inv_other`, exec(`UPDATE ci_inv_other SET v = 'cte' WHERE id = 2`)},
		{"SQL PREPARE and EXECUTE", "", func(t *testing.T) {
			conn := ciDiscardedConn(t, db)
			ciExec(t, conn, `PREPARE ci_inv_p(text) AS UPDATE ci_inv SET v = $1 WHERE id = 1`)
			ciExec(t, conn, `EXECUTE ci_inv_p('executed')`)
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			q := s.read
			if q == "" {
				q = read
			}
			before := ciFill(t, db, q)
			inv := ciStats(t, db).Invalidations
			s.write(t)
			if got := ciStats(t, db).Invalidations; got <= inv {
				t.Errorf("%s: invalidations %d -> %d", s.name, inv, got)
			}
			if after := ciFresh(t, db, q); after == before {
				t.Fatalf("%s changed nothing (%q): the step proves nothing", s.name, after)
			}
		})
	}
}

func TestCacheIntegInvalidationTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_invtx")
	q := `SELECT v FROM ci_invtx WHERE id = $1`
	n := 0
	next := func() string { n++; return fmt.Sprintf("v%d", n) }

	t.Run("BeginTx commit", func(t *testing.T) {
		old := ciFill(t, db, q, 1)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		v := next()
		ciExec(t, tx, `UPDATE ci_invtx SET v = $1 WHERE id = 1`, v)
		if _, err := ciRows(tx, ctx, `UPDATE ci_invtx SET v = $1 WHERE id = 2 RETURNING id`, v); err != nil {
			t.Fatal(err)
		}
		inv := ciStats(t, db).Invalidations
		// Outside, the committed state is still the old one: a hit is right.
		if got := ciExpect(t, db, db, ctx, "hit", "", q, 1); got != old {
			t.Fatalf("outside the open transaction: %q, want %q", got, old)
		}
		if got := ciStats(t, db).Invalidations; got != inv {
			t.Fatalf("invalidated before commit: %d -> %d", inv, got)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if got := ciStats(t, db).Invalidations; got != inv+1 {
			t.Fatalf("commit: invalidations %d -> %d, want one more", inv, got)
		}
		if got := ciFresh(t, db, q, 1); got != v+"\n" {
			t.Fatalf("after commit %q, want %s", got, v)
		}
		if got := ciFresh(t, db, q, 2); got != v+"\n" {
			t.Fatalf("after commit %q, want %s", got, v)
		}
	})
	t.Run("BeginTx rollback", func(t *testing.T) {
		old := ciFill(t, db, q, 1)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ciExec(t, tx, `UPDATE ci_invtx SET v = $1 WHERE id = 1`, next())
		inv := ciStats(t, db).Invalidations
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if got := ciStats(t, db).Invalidations; got != inv {
			t.Fatalf("rollback invalidated: %d -> %d", inv, got)
		}
		if got := ciExpect(t, db, db, ctx, "hit", "", q, 1); got != old {
			t.Fatalf("after rollback %q, want %q", got, old)
		}
	})
	manual := func(t *testing.T, end string, savepoint bool) {
		old := ciFill(t, db, q, 1)
		conn := ciConn(t, db)
		ciExec(t, conn, `BEGIN`)
		v := next()
		ciExec(t, conn, `UPDATE ci_invtx SET v = $1 WHERE id = 1`, v)
		if savepoint {
			ciExec(t, conn, `SAVEPOINT s`)
			ciExec(t, conn, `UPDATE ci_invtx SET v = 'undone' WHERE id = 1`)
			ciExec(t, conn, `ROLLBACK TO SAVEPOINT s`)
		}
		inv := ciStats(t, db).Invalidations
		if got := ciExpect(t, db, db, ctx, "hit", "", q, 1); got != old {
			t.Fatalf("outside the open transaction: %q, want %q", got, old)
		}
		if got := ciStats(t, db).Invalidations; got != inv {
			t.Fatalf("invalidated before %s: %d -> %d", end, inv, got)
		}
		ciExec(t, conn, end)
		got := ciStats(t, db).Invalidations
		if end == "COMMIT" || end == "END" {
			if got != inv+1 {
				t.Fatalf("COMMIT: invalidations %d -> %d, want one more", inv, got)
			}
			if res := ciFresh(t, db, q, 1); res != v+"\n" {
				t.Fatalf("after COMMIT %q, want %s", res, v)
			}
			return
		}
		if got != inv {
			t.Fatalf("%s invalidated: %d -> %d", end, inv, got)
		}
		if res := ciExpect(t, db, db, ctx, "hit", "", q, 1); res != old {
			t.Fatalf("after %s %q, want %q", end, res, old)
		}
	}
	t.Run("manual COMMIT", func(t *testing.T) { manual(t, "COMMIT", false) })
	t.Run("manual ROLLBACK", func(t *testing.T) { manual(t, "ROLLBACK", false) })
	t.Run("savepoint COMMIT", func(t *testing.T) { manual(t, "COMMIT", true) })
	t.Run("manual END", func(t *testing.T) { manual(t, "END", false) })
	t.Run("manual ABORT", func(t *testing.T) { manual(t, "ABORT", false) })

	// A write is invalidated whatever its outcome: one the server refused
	// changed nothing, and costs a miss.
	t.Run("failed writes", func(t *testing.T) {
		for _, w := range []struct {
			query bool // through a query rather than an exec
			sql   string
		}{
			{false, `INSERT INTO ci_invtx VALUES (1, 'duplicate')`},
			{true, `INSERT INTO ci_invtx VALUES (2, 'duplicate') RETURNING id`},
			{false, `UPDATE ci_invtx SET id = 2 WHERE id = 1`},
		} {
			old := ciFill(t, db, q, 1)
			inv := ciStats(t, db).Invalidations
			var err error
			if w.query {
				_, err = ciRows(db, ctx, w.sql)
			} else {
				_, err = db.ExecContext(ctx, w.sql)
			}
			if pgerr.SQLState(err) != "23505" {
				t.Fatalf("%s: %v, want a duplicate key", w.sql, err)
			}
			if got := ciStats(t, db).Invalidations; got != inv+1 {
				t.Fatalf("failed write: invalidations %d -> %d, want one more", inv, got)
			}
			if got := ciFresh(t, db, q, 1); got != old {
				t.Fatalf("after a failed write %q, want %q", got, old)
			}
		}
	})
}

func TestCacheIntegInvalidationPartitions(t *testing.T) {
	t.Parallel()
	admin := ciAdmin(t)
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciExec(t, admin, `DROP TABLE IF EXISTS ci_part, ci_inh_parent CASCADE`)
	ciExec(t, admin, `CREATE TABLE ci_part (id int, v text) PARTITION BY RANGE (id)`)
	ciExec(t, admin, `CREATE TABLE ci_part_1 PARTITION OF ci_part FOR VALUES FROM (0) TO (100)`)
	ciExec(t, admin, `CREATE TABLE ci_part_2 PARTITION OF ci_part FOR VALUES FROM (100) TO (200) PARTITION BY RANGE (id)`)
	ciExec(t, admin, `CREATE TABLE ci_part_2a PARTITION OF ci_part_2 FOR VALUES FROM (100) TO (200)`)
	ciExec(t, admin, `INSERT INTO ci_part VALUES (1, 'one'), (150, 'one fifty')`)
	parent := `SELECT id, v FROM ci_part ORDER BY id`
	n := 0
	write := func(table string, id int) {
		n++
		ciExec(t, db, `UPDATE `+table+` SET v = $1 WHERE id = $2`, fmt.Sprint("w", n), id)
	}

	ciFill(t, db, parent)
	write("ci_part_1", 1)
	ciFresh(t, db, parent)
	ciFill(t, db, parent)
	write("ci_part_2a", 150) // two levels down
	ciFresh(t, db, parent)
	ciFill(t, db, `SELECT v FROM ci_part_2 WHERE id = 150`)
	write("ci_part_2a", 150)
	ciFresh(t, db, `SELECT v FROM ci_part_2 WHERE id = 150`)

	t.Run("write to the parent, read of a partition", func(t *testing.T) {
		child := `SELECT v FROM ci_part_1 WHERE id = 1`
		ciFill(t, db, child)
		write("ci_part", 1)
		ciFresh(t, db, child)
	})
	t.Run("inheritance", func(t *testing.T) {
		ciExec(t, admin, `CREATE TABLE ci_inh_parent (id int, v text)`)
		ciExec(t, admin, `CREATE TABLE ci_inh_child () INHERITS (ci_inh_parent)`)
		ciExec(t, admin, `INSERT INTO ci_inh_child VALUES (1, 'child')`)
		q := `SELECT id, v FROM ci_inh_parent ORDER BY id`
		ciFill(t, db, q)
		write("ci_inh_child", 1)
		ciFresh(t, db, q)
	})
}

// ciInvalidations records the tables of every invalidation.
type ciInvalidations struct {
	mu     sync.Mutex
	tables [][]string
}

func (o *ciInvalidations) Start(ctx context.Context, _ *Event) context.Context { return ctx }
func (o *ciInvalidations) End(context.Context, *Event)                         {}
func (o *ciInvalidations) Invalidated(_ context.Context, tables []string) {
	o.mu.Lock()
	o.tables = append(o.tables, slices.Clone(tables))
	o.mu.Unlock()
}

func TestCacheIntegInvalidateAPI(t *testing.T) {
	t.Parallel()
	admin := ciAdmin(t)
	obs := &ciInvalidations{}
	db := ciOpen(t, WithCacheMode(CacheAll), WithObserver(obs))
	ciTable(t, admin, "ci_api")
	ciTable(t, admin, "ci_api_other")
	q := `SELECT v FROM ci_api WHERE id = 1`
	other := `SELECT v FROM ci_api_other WHERE id = 1`

	// A write the driver cannot see stays invisible until Invalidate.
	ciFill(t, db, q)
	ciFill(t, db, other)
	ciExec(t, admin, `UPDATE ci_api SET v = 'outside'`)
	if got := ciExpect(t, db, db, context.Background(), "hit", "", q); got != "one\n" {
		t.Fatalf("before Invalidate %q", got)
	}
	if err := Invalidate(db, "ci_api_unrelated"); err != nil {
		t.Fatal(err)
	}
	ciExpect(t, db, db, context.Background(), "hit", "", q)
	if err := Invalidate(db, "public.ci_api"); err != nil {
		t.Fatal(err)
	}
	if got := ciFresh(t, db, q); got != "outside\n" {
		t.Fatalf("after Invalidate(ci_api) %q", got)
	}
	ciExpect(t, db, db, context.Background(), "hit", "", other) // untouched

	ciFill(t, db, q)
	ciExec(t, admin, `UPDATE ci_api SET v = 'again'`)
	ciExec(t, admin, `UPDATE ci_api_other SET v = 'again'`)
	if err := Invalidate(db); err != nil {
		t.Fatal(err)
	}
	if got := ciFresh(t, db, q); got != "again\n" {
		t.Fatalf("after Invalidate() %q", got)
	}
	if got := ciFresh(t, db, other); got != "again\n" {
		t.Fatalf("after Invalidate() %q", got)
	}

	// The observer hears of writes through the driver, with their tables.
	obs.mu.Lock()
	obs.tables = nil
	obs.mu.Unlock()
	ciExec(t, db, `UPDATE ci_api SET v = 'seen' WHERE id = 2`)
	obs.mu.Lock()
	got := obs.tables
	obs.mu.Unlock()
	if len(got) != 1 || !slices.Contains(got[0], "ci_api") {
		t.Fatalf("InvalidationObserver heard %v, want one call naming ci_api", got)
	}

	if err := Invalidate(openDB(t, "pgx")); !errors.Is(err, ErrNotAuditpg) {
		t.Fatalf("Invalidate of a pgx *sql.DB: %v, want ErrNotAuditpg", err)
	}
}

// ---- read-your-writes ----

func TestCacheIntegReadYourWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_ryw")
	q := `SELECT v FROM ci_ryw WHERE id = 1`
	read := func() (string, error) { return ciRows(db, ctx, q) }

	t.Run("same goroutine", func(t *testing.T) {
		for i := range 20 {
			ciFill(t, db, q)
			v := fmt.Sprint("same", i)
			ciExec(t, db, `UPDATE ci_ryw SET v = $1 WHERE id = 1`, v)
			for range 2 { // the miss, then the hit it filled
				if got, err := read(); err != nil || got != v+"\n" {
					t.Fatalf("read after writing %s: %q, %v", v, got, err)
				}
			}
		}
	})

	// Another goroutine reads once the write returned; ways to write.
	writes := map[string]func(t *testing.T, v string){
		"exec": func(t *testing.T, v string) { ciExec(t, db, `UPDATE ci_ryw SET v = $1 WHERE id = 1`, v) },
		"query RETURNING": func(t *testing.T, v string) {
			var id int
			if err := db.QueryRowContext(ctx, `UPDATE ci_ryw SET v = $1 WHERE id = 1 RETURNING id`, v).Scan(&id); err != nil {
				t.Fatal(err)
			}
		},
		"transaction commit": func(t *testing.T, v string) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			ciExec(t, tx, `UPDATE ci_ryw SET v = $1 WHERE id = 1`, v)
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		},
		"manual commit": func(t *testing.T, v string) {
			conn := ciConn(t, db)
			ciExec(t, conn, `BEGIN`)
			ciExec(t, conn, `UPDATE ci_ryw SET v = $1 WHERE id = 1`, v)
			ciExec(t, conn, `COMMIT`)
		},
	}
	for name, write := range writes {
		t.Run(name+" then another goroutine", func(t *testing.T) {
			values := make(chan string)
			results := make(chan error)
			go func() {
				for v := range values {
					got, err := read()
					if err == nil && got != v+"\n" {
						err = fmt.Errorf("read %q after the write of %s returned", got, v)
					}
					results <- err
				}
			}()
			defer close(values)
			for i := range 15 {
				ciFill(t, db, q)
				v := fmt.Sprint(name, i)
				write(t, v)
				values <- v
				if err := <-results; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	t.Run("rollback then another goroutine", func(t *testing.T) {
		old := ciFill(t, db, q)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		ciExec(t, tx, `UPDATE ci_ryw SET v = 'rolled back' WHERE id = 1`)
		done := make(chan string)
		go func() { got, _ := read(); done <- got }() // during the transaction
		if got := <-done; got != old {
			t.Fatalf("during the transaction %q, want %q", got, old)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		go func() { got, _ := read(); done <- got }()
		if got := <-done; got != old {
			t.Fatalf("after rollback %q, want %q", got, old)
		}
	})
}

// ---- randomized concurrent reads and writes ----

// Eight goroutines read and write three tables at random. Reads and
// writes of the rows id > 0 of one table hold that table's lock (read or
// write), so that every cached read of them must equal the NoCache read
// made right after it under the same lock. Row 0 of each table is a
// version counter written and read without any lock: a read must never
// return a version older than one whose write had returned before the read
// started, which checks reads that race writes.
func TestCacheIntegRandomized(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const (
		tables     = 3
		goroutines = 8
		ops        = 300
		ids        = 8
	)
	db := ciOpen(t, WithCacheMode(CacheAll))
	var locks [tables]sync.RWMutex
	var committed [tables]atomic.Int64
	for k := range tables {
		name := fmt.Sprint("ci_rnd_", k)
		ciExec(t, db, `DROP TABLE IF EXISTS `+name)
		ciExec(t, db, `CREATE TABLE `+name+` (id int PRIMARY KEY, v int NOT NULL)`)
		ciExec(t, db, `INSERT INTO `+name+` SELECT i, i * 10 FROM generate_series(0, 5) i`)
		ciExec(t, db, `UPDATE `+name+` SET v = 0 WHERE id = 0`)
	}
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	ResetStats(db)

	var stale, checked, versionChecks atomic.Int64
	lockAll := func(ks []int, write bool) func() {
		slices.Sort(ks)
		ks = slices.Compact(ks)
		for _, k := range ks {
			if write {
				locks[k].Lock()
			} else {
				locks[k].RLock()
			}
		}
		return func() {
			for _, k := range ks {
				if write {
					locks[k].Unlock()
				} else {
					locks[k].RUnlock()
				}
			}
		}
	}
	bumpVersion := func(k int, n int64) {
		for {
			cur := committed[k].Load()
			if n <= cur || committed[k].CompareAndSwap(cur, n) {
				return
			}
		}
	}
	randomWrite := func(rng *rand.Rand, ex ciExecer, k int) error {
		table := fmt.Sprint("ci_rnd_", k)
		id := 1 + rng.IntN(ids)
		var q string
		switch rng.IntN(4) {
		case 0:
			q = `INSERT INTO ` + table + ` VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`
		case 1:
			q = `DELETE FROM ` + table + ` WHERE id = $1 AND $2::int IS NOT NULL`
		default:
			q = `UPDATE ` + table + ` SET v = $2 WHERE id = $1`
		}
		_, err := ex.ExecContext(ctx, q, id, rng.IntN(1000))
		return err
	}

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(g)))
			fail := func(format string, args ...any) {
				t.Errorf("goroutine %d: "+format, append([]any{g}, args...)...)
			}
			for range ops {
				k := rng.IntN(tables)
				table := fmt.Sprint("ci_rnd_", k)
				switch r := rng.IntN(100); {
				case r < 45: // a locked read, compared with the server's
					var q string
					var args []any
					ks := []int{k}
					switch rng.IntN(4) {
					case 0:
						q, args = `SELECT v FROM `+table+` WHERE id = $1`, []any{1 + rng.IntN(ids)}
					case 1:
						q = `SELECT count(*), coalesce(sum(v), 0) FROM ` + table + ` WHERE id > 0`
					case 2:
						q = `SELECT id, v FROM ` + table + ` WHERE id > 0 ORDER BY id`
					default:
						j := (k + 1) % tables
						ks = append(ks, j)
						q = fmt.Sprintf(`SELECT a.id, a.v, b.v FROM ci_rnd_%d a JOIN ci_rnd_%d b USING (id) WHERE a.id > 0 ORDER BY a.id`, k, j)
					}
					unlock := lockAll(ks, false)
					got, err := ciRows(db, ctx, q, args...)
					truth, err2 := ciRows(db, NoCache(ctx), q, args...)
					unlock()
					if err != nil || err2 != nil {
						fail("%s: %v, %v", q, err, err2)
						return
					}
					checked.Add(1)
					if got != truth {
						stale.Add(1)
						fail("stale read %s %v: %q, the server says %q", q, args, got, truth)
					}
				case r < 60: // an unlocked version read
					before := committed[k].Load()
					got, err := ciRows(db, ctx, `SELECT v FROM `+table+` WHERE id = 0`)
					if err != nil {
						fail("version read: %v", err)
						return
					}
					var n int64
					fmt.Sscan(got, &n)
					versionChecks.Add(1)
					if n < before {
						stale.Add(1)
						fail("stale version of %s: %d, but %d was committed before the read", table, n, before)
					}
				case r < 70: // an unlocked version write
					var n int64
					if err := db.QueryRowContext(ctx, `UPDATE `+table+` SET v = v + 1 WHERE id = 0 RETURNING v`).Scan(&n); err != nil {
						fail("version write: %v", err)
						return
					}
					bumpVersion(k, n)
				case r < 88: // a locked write
					unlock := lockAll([]int{k}, true)
					err := randomWrite(rng, db, k)
					unlock()
					if err != nil {
						fail("write: %v", err)
						return
					}
				default: // a transaction over one or two tables, committed or not
					ks := []int{k, rng.IntN(tables)}
					commit := rng.IntN(2) == 0
					manual := rng.IntN(3) == 0
					unlock := lockAll(slices.Clone(ks), true)
					err := func() error {
						var ex interface {
							ciExecer
							ciQueryer
							QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
						}
						var end func(commit bool) error
						if manual {
							conn, err := db.Conn(ctx)
							if err != nil {
								return err
							}
							defer conn.Close()
							if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
								return err
							}
							ex = conn
							end = func(commit bool) error {
								_, err := conn.ExecContext(ctx, map[bool]string{true: "COMMIT", false: "ROLLBACK"}[commit])
								return err
							}
						} else {
							tx, err := db.BeginTx(ctx, nil)
							if err != nil {
								return err
							}
							defer tx.Rollback()
							ex = tx
							end = func(commit bool) error {
								if commit {
									return tx.Commit()
								}
								return tx.Rollback()
							}
						}
						for _, k := range ks {
							if err := randomWrite(rng, ex, k); err != nil {
								return err
							}
							if _, err := ciRows(ex, ctx, fmt.Sprint(`SELECT sum(v) FROM ci_rnd_`, k, ` WHERE id > 0`)); err != nil {
								return err
							}
						}
						var version int64
						if err := ex.QueryRowContext(ctx, `UPDATE `+table+` SET v = v + 1 WHERE id = 0 RETURNING v`).Scan(&version); err != nil {
							return err
						}
						if err := end(commit); err != nil {
							return err
						}
						if commit {
							bumpVersion(k, version)
						}
						return nil
					}()
					unlock()
					if err != nil {
						fail("transaction: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	s := ciStats(t, db)
	t.Logf("%d locked reads and %d version reads checked; cache %+v", checked.Load(), versionChecks.Load(), s)
	if stale.Load() != 0 {
		t.Fatalf("%d stale reads", stale.Load())
	}
	if s.Hits == 0 || s.Invalidations == 0 || checked.Load() < goroutines*ops/4 {
		t.Fatalf("the test exercised too little: %d hits, %d invalidations, %d checks", s.Hits, s.Invalidations, checked.Load())
	}
}

// ---- single flight ----

// ciOutcomes counts the cache's answers to one query text.
type ciOutcomes struct {
	query string
	mu    sync.Mutex
	count map[CacheOutcome]int
}

func (o *ciOutcomes) Start(ctx context.Context, _ *Event) context.Context { return ctx }
func (o *ciOutcomes) End(_ context.Context, ev *Event) {
	if ev.Op == OpQuery && ev.Query == o.query {
		o.mu.Lock()
		o.count[ev.Cache]++
		o.mu.Unlock()
	}
}

func (o *ciOutcomes) get(c CacheOutcome) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[c]
}

func TestCacheIntegSingleFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := ciAdmin(t)
	// IMMUTABLE is a lie here (it sleeps), which makes a slow cacheable read.
	ciExec(t, admin, `CREATE OR REPLACE FUNCTION ci_sf_slow(x int, secs float8) RETURNS int LANGUAGE plpgsql IMMUTABLE
		AS $$ BEGIN PERFORM pg_sleep(secs); RETURN x; END $$`)
	q := `SELECT ci_sf_slow($1, 0.3) AS sf`
	obs := &ciOutcomes{query: q, count: map[CacheOutcome]int{}}
	db := ciOpen(t, WithCacheMode(CacheAll), WithObserver(obs))
	calls := func() int {
		var n int
		if err := admin.QueryRowContext(ctx, `SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
			WHERE query LIKE 'SELECT ci_sf_slow(%) AS sf'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	const n = 6
	conns := make([]*sql.Conn, n)
	for i := range conns {
		conn := ciConn(t, db)
		// Each connection learns its scope and the function's volatility.
		if _, err := ciRows(conn, ctx, `SELECT ci_sf_slow($1, 0) AS warm`, -1); err != nil {
			t.Fatal(err)
		}
		conns[i] = conn
	}
	before := calls()
	start := make(chan struct{})
	errs := make(chan error, n)
	for _, conn := range conns {
		go func() {
			<-start
			var got int
			err := conn.QueryRowContext(ctx, q, 42).Scan(&got)
			if err == nil && got != 42 {
				err = fmt.Errorf("read %d, want 42", got)
			}
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if m, h := obs.get(CacheMiss), obs.get(CacheHit); m != 1 || h != n-1 {
		t.Fatalf("%d concurrent identical reads: %d misses and %d hits, want 1 and %d", n, m, h, n-1)
	}
	if got := calls() - before; got != 1 {
		t.Fatalf("the server ran the query %d times, want once", got)
	}

	t.Run("waiter's deadline", func(t *testing.T) {
		slow := `SELECT ci_sf_slow($1, 2) AS sfd`
		leader := make(chan error, 1)
		go func() {
			var got int
			err := conns[0].QueryRowContext(ctx, slow, 7).Scan(&got)
			if err == nil && got != 7 {
				err = fmt.Errorf("leader read %d", got)
			}
			leader <- err
		}()
		ciWaitBackend(t, admin, "AS sfd", "PgSleep") // the leader is running
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		began := time.Now()
		var got int
		err := conns[1].QueryRowContext(wctx, slow, 7).Scan(&got)
		if waited := time.Since(began); !errors.Is(err, context.DeadlineExceeded) || waited > 1500*time.Millisecond {
			t.Fatalf("waiter: %v after %v, want context.DeadlineExceeded after about 200ms", err, waited)
		}
		select {
		case err := <-leader:
			t.Fatalf("the waiter returned only after the leader (%v)", err)
		default:
		}
		if err := <-leader; err != nil {
			t.Fatal(err)
		}
		// The waiter's connection still works, and the leader's fill serves it.
		if res := ciExpect(t, db, conns[1], ctx, "hit", "", slow, 7); res != "7\n" {
			t.Fatalf("after the fill: %q", res)
		}
	})
	t.Run("leader gives up", func(t *testing.T) {
		slow := `SELECT ci_sf_slow($1, 0.8) AS sfl`
		lctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		defer cancel()
		leader := make(chan error, 1)
		go func() {
			var got int
			leader <- db.QueryRowContext(lctx, slow, 8).Scan(&got)
		}()
		time.Sleep(100 * time.Millisecond)
		var got int
		if err := conns[2].QueryRowContext(ctx, slow, 8).Scan(&got); err != nil || got != 8 {
			t.Fatalf("waiter whose leader gave up: %d, %v", got, err)
		}
		if err := <-leader; err == nil {
			t.Fatal("the leader's read ended without its deadline's error")
		}
		if res := ciExpect(t, db, conns[3], ctx, "hit", "", slow, 8); res != "8\n" {
			t.Fatalf("after the waiter's own fill: %q", res)
		}
	})
}

// ciWaitBackend waits until a backend runs a query containing marker and
// waits on event (a wait_event or wait_event_type), so that timing tests
// do not depend on the machine's load.
func ciWaitBackend(t *testing.T, admin *sql.DB, marker, event string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		err := admin.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND strpos(query, $1) > 0 AND $2 IN (wait_event, wait_event_type)`, marker, event).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no backend ran %q waiting on %s within 10s", marker, event)
}

// ---- entry size limit, partial and failed reads, evictions ----

func TestCacheIntegEntryLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := ciAdmin(t)
	ciExec(t, admin, `DROP TABLE IF EXISTS ci_size`)
	ciExec(t, admin, `CREATE TABLE ci_size (id int PRIMARY KEY, v text)`)
	ciExec(t, admin, `INSERT INTO ci_size SELECT i, repeat('x', 20) || i FROM generate_series(1, 200) i`)
	limited := ciOpen(t, WithCacheMode(CacheAll), WithCacheMaxEntry(1024))
	db := ciOpen(t, WithCacheMode(CacheAll))

	big := `SELECT id, v FROM ci_size ORDER BY id`
	truth := ciNoCache(t, limited, big)
	if len(truth) < 2048 || strings.Count(truth, "\n") != 200 {
		t.Fatalf("the big result is %d bytes, %d rows", len(truth), strings.Count(truth, "\n"))
	}
	// The first read tries to fill and gives up; the next ones know the
	// result is too large and skip the capture (and the single flight).
	for i, want := range []string{"miss", "bypass", "bypass"} {
		s := ciStats(t, limited)
		reason := ""
		if want == "bypass" {
			reason = "result too large to cache"
		}
		if got := ciExpect(t, limited, limited, ctx, want, reason, big); got != truth {
			t.Fatalf("big result read %d through the cache differs: %d bytes, want %d", i, len(got), len(truth))
		}
		after := ciStats(t, limited)
		rejected := int64(0)
		if want == "miss" {
			rejected = 1
		}
		if after.RejectedFills != s.RejectedFills+rejected || after.Fills != s.Fills {
			t.Fatalf("big result read %d: fills %d->%d, rejected %d->%d; want %d rejected", i, s.Fills, after.Fills, s.RejectedFills, after.RejectedFills, rejected)
		}
	}
	small := `SELECT id, v FROM ci_size WHERE id <= 3 ORDER BY id`
	ciExpect(t, limited, limited, ctx, "miss", "", small)
	ciExpect(t, limited, limited, ctx, "hit", "", small)

	// Closed after the first row: the rest is drained into the entry when
	// it fits, so that the next full read is a complete hit.
	partial := func(t *testing.T, db *sql.DB, q string) {
		t.Helper()
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !rows.Next() {
			t.Fatal("no first row")
		}
		var id int
		var v string
		if err := rows.Scan(&id, &v); err != nil || id != 1 {
			t.Fatalf("first row %d, %v", id, err)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	some := `SELECT id, v FROM ci_size WHERE id <= 40 ORDER BY id`
	partial(t, db, some)
	if got := ciExpect(t, db, db, ctx, "hit", "", some); got != ciNoCache(t, db, some) {
		t.Fatalf("hit after a partial read: %q", got)
	}
	rowQ := `SELECT id, v FROM ci_size WHERE id <= 30 ORDER BY id`
	var id int
	var v string
	if err := db.QueryRowContext(ctx, rowQ).Scan(&id, &v); err != nil || id != 1 {
		t.Fatalf("QueryRow: %d, %v", id, err)
	}
	if got := ciExpect(t, db, db, ctx, "hit", "", rowQ); strings.Count(got, "\n") != 30 || got != ciNoCache(t, db, rowQ) {
		t.Fatalf("hit after QueryRow: %q", got)
	}
	// Too large to drain into the limit: not cached, and the next read is whole.
	partial(t, limited, big)
	if got := ciExpect(t, limited, limited, ctx, "bypass", "result too large to cache", big); got != truth {
		t.Fatalf("after a partial read of the big result: %d bytes", len(got))
	}

	// A read that fails after some rows is not cached: the error comes again.
	// (100 kB of rows come before the error, so the fill has begun.)
	failing := `SELECT id, repeat('z', 1000) AS pad, 10 / (100 - id) AS q FROM ci_size WHERE id <= 150`
	for range 2 {
		s := ciStats(t, db)
		rows, err := db.QueryContext(ctx, failing)
		n := 0
		if err == nil { // the error may come with the first rows, or after them
			for rows.Next() {
				n++
			}
			err = rows.Err()
			rows.Close()
		}
		if pgerr.SQLState(err) != "22012" || n == 0 || n > 99 {
			t.Fatalf("failing read: %d rows, %v; want some of the first 99 rows then division by zero", n, err)
		}
		if after := ciStats(t, db); after.Hits != s.Hits || after.Fills != s.Fills {
			t.Fatalf("failing read: hits %d->%d, fills %d->%d", s.Hits, after.Hits, s.Fills, after.Fills)
		}
	}
}

func TestCacheIntegEvictions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll), WithCacheSize(1<<20), WithCacheMaxEntry(64<<10))
	q := `SELECT $1::int AS k, repeat('y', 40000) AS pad`
	const n = 60 // 60 entries of 40 kB in a 1 MB store
	for round := range 2 {
		for i := range n {
			res, err := ciRows(db, ctx, q, i)
			if err != nil || !strings.HasPrefix(res, fmt.Sprint(i, "|yyy")) || len(res) < 40000 {
				t.Fatalf("round %d, key %d: %.20q, %v", round, i, res, err)
			}
		}
	}
	s := ciStats(t, db)
	if s.Evictions == 0 || s.Entries >= n || s.Fills < n {
		t.Fatalf("after %d entries of 40 kB in 1 MB: %+v, want evictions and fewer than %d entries", n, s, n)
	}
	if s.HeldBytes <= 0 || s.HeldBytes > int64(s.CapacityBytes) || s.CapacityBytes > 2<<20 {
		t.Fatalf("the store holds %d bytes in %d allocated, want some, within its 1 MB limit", s.HeldBytes, s.CapacityBytes)
	}
	// Every entry stored is held or was evicted (no key was stored twice).
	if int64(s.Entries)+s.Evictions != s.Fills {
		t.Fatalf("%d entries held and %d evicted of %d stored", s.Entries, s.Evictions, s.Fills)
	}
	// The most recent entry is still there.
	ciExpect(t, db, db, ctx, "hit", "", q, n-1)
}

// ---- fills ----

// A fill is in the store once its rows are closed: the same read right
// after, with nothing in between (ciDo reads the statistics), hits, and a
// read after a write never does.
func TestCacheIntegFillStoredAfterClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := `SELECT v FROM ci_fill_after WHERE id = $1`
	seen := &ciOutcomes{query: q, count: map[CacheOutcome]int{}}
	db := ciOpen(t, WithCacheMode(CacheAll), WithObserver(seen))
	ciTable(t, db, "ci_fill_after")
	for round := range 50 {
		for i := range 3 {
			res, err := ciRows(db, ctx, q, 1)
			if err != nil || res != "one\n" {
				t.Fatalf("round %d, read %d: %q, %v", round, i, res, err)
			}
		}
		ciExec(t, db, `UPDATE ci_fill_after SET v = 'one' WHERE id = 1`)
	}
	if miss, hit := seen.get(CacheMiss), seen.get(CacheHit); miss != 50 || hit != 100 {
		t.Fatalf("%d misses and %d hits, want 50 and 100 (a miss, then two hits, after each write)", miss, hit)
	}
}

// Rows still open when the DB is closed (sql.DB.Close closes the connector
// without waiting for them): their fill is still stored, and counted.
func TestCacheIntegFillAfterDBClose(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(testDSN, WithCacheMode(CacheAll), WithInvalidation(InvalidateLocal))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ciTable(t, db, "ci_fill_closed")
	q := `SELECT id, v FROM ci_fill_closed ORDER BY id`
	ciExpect(t, db, db, ctx, "miss", "", q+` LIMIT 1`)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Close(); err != nil || n != 2 {
		t.Fatalf("%d rows, %v", n, err)
	}
	if s := ciStats(t, db); s.Fills != 2 || s.RejectedFills != 0 {
		t.Fatalf("after the DB closed: %d fills, %d rejected; want 2 and 0", s.Fills, s.RejectedFills)
	}
}

// ---- session changes the classifier cannot see, transaction chains, settings ----

// ciShadowedTable makes table in the search_path's schema and another of the
// same name in schema, holding 'other schema': a session whose search_path
// moves to schema reads the other one.
func ciShadowedTable(t *testing.T, admin *sql.DB, schema, table string) {
	t.Helper()
	ciExec(t, admin, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
	ciExec(t, admin, `CREATE SCHEMA `+schema)
	ciTable(t, admin, table)
	ciExec(t, admin, `CREATE TABLE `+schema+`.`+table+` (id int PRIMARY KEY, v text)`)
	ciExec(t, admin, `INSERT INTO `+schema+`.`+table+` VALUES (1, 'other schema')`)
}

// A function, a DO block or a procedure may change the session (here its
// search_path) where the classifier cannot see it: the connection must not
// then share entries with the others.
func TestCacheIntegHiddenSessionChange(t *testing.T) {
	ctx := context.Background()
	admin := ciAdmin(t)
	ciShadowedTable(t, admin, "ci_hs", "ci_hs_t")
	ciExec(t, admin, `CREATE OR REPLACE FUNCTION ci_hs_setpath() RETURNS text LANGUAGE sql VOLATILE
		AS $$ SELECT set_config('search_path', 'ci_hs', false) $$`)
	ciExec(t, admin, `CREATE OR REPLACE PROCEDURE ci_hs_proc() LANGUAGE plpgsql
		AS $$ BEGIN PERFORM set_config('search_path', 'ci_hs', false); END $$`)
	db := ciOpen(t, WithCacheMode(CacheAll))
	q := `SELECT v FROM ci_hs_t WHERE id = $1`

	for _, change := range []struct{ name, sql string }{
		{"function", `SELECT ci_hs_setpath()`},
		{"DO", `DO $$ BEGIN PERFORM set_config('search_path', 'ci_hs', false); END $$`},
		{"CALL", `CALL ci_hs_proc()`},
		{"UPDATE pg_settings", `UPDATE pg_settings SET setting = 'ci_hs' WHERE name = 'search_path'`},
	} {
		t.Run(change.name, func(t *testing.T) {
			x := ciDiscardedConn(t, db)
			ciFill(t, db, q, 1) // public's row
			// x's scope is known before the change.
			if _, err := ciRows(x, ctx, q, 1); err != nil {
				t.Fatal(err)
			}
			if _, err := ciRows(x, NoCache(ctx), change.sql); err != nil {
				t.Fatal(err)
			}
			if got := ciNoCache(t, x, `SELECT current_setting('search_path')`); got != "ci_hs\n" {
				t.Fatalf("search_path %q: the change did not happen", got)
			}
			// Now x reads ci_hs.ci_hs_t.
			if got, err := ciRows(x, ctx, q, 1); err != nil || got != "other schema\n" {
				t.Fatalf("x read %q, %v, want its own schema's row", got, err)
			}
			// And the others still read public.ci_hs_t.
			ciExec(t, db, `UPDATE ci_hs.ci_hs_t SET v = 'other schema' WHERE id = 1`) // invalidate ci_hs_t
			if got, err := ciRows(x, ctx, q, 1); err != nil || got != "other schema\n" {
				t.Fatalf("x read %q, %v, want its own schema's row", got, err)
			}
			if got := ciNoCache(t, x, `SELECT 1`); got != "1\n" {
				t.Fatal(got)
			}
			got, err := ciRows(db, ctx, q, 1)
			if err != nil || got != "one\n" {
				t.Fatalf("another connection read %q, %v, want public's row", got, err)
			}
		})
	}
}

// COMMIT AND CHAIN commits and opens the next transaction at once: the
// writes it committed must be invalidated then, and a rollback of the
// chained transaction must not forget them.
func TestCacheIntegCommitAndChain(t *testing.T) {
	t.Parallel()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_chain")
	q := `SELECT v FROM ci_chain WHERE id = 1`
	ciFill(t, db, q)
	conn := ciConn(t, db)
	ciExec(t, conn, `BEGIN`)
	ciExec(t, conn, `UPDATE ci_chain SET v = 'chained' WHERE id = 1`)
	ciExec(t, conn, `COMMIT AND CHAIN`)
	ciExec(t, conn, `ROLLBACK`)
	if got := ciFresh(t, db, q); got != "chained\n" {
		t.Fatalf("after COMMIT AND CHAIN: %q", got)
	}
}

// A setting that decides how values are written as text (TimeZone here)
// differs between two connections of one connector when it is set per role
// between their connections: a cached text must not cross over.
func TestCacheIntegKeyTimeZone(t *testing.T) {
	ctx := context.Background()
	admin := ciAdmin(t)
	ciRole(t, admin, "ci_tz")
	ciExec(t, admin, `DROP TABLE IF EXISTS ci_tz_t`)
	ciExec(t, admin, `CREATE TABLE ci_tz_t (ts timestamptz)`)
	ciExec(t, admin, `INSERT INTO ci_tz_t VALUES ('2024-01-01 12:00:00+00')`)
	ciExec(t, admin, `GRANT SELECT ON ci_tz_t TO ci_tz`)
	var db *sql.DB
	conns := map[string]*sql.Conn{}
	for _, zone := range []string{"UTC", "Asia/Tokyo"} {
		ciExec(t, admin, `ALTER ROLE ci_tz SET timezone = '`+zone+`'`)
		if db == nil {
			db = ciOpenDSN(t, ciDSN(t, "ci_tz", nil), WithCacheMode(CacheAll))
		}
		conn := ciDiscardedConn(t, db)
		conns[zone] = conn
	}
	ciExec(t, admin, `ALTER ROLE ci_tz RESET timezone`)
	q := `SELECT ts::text FROM ci_tz_t`
	want := map[string]string{"UTC": "2024-01-01 12:00:00+00\n", "Asia/Tokyo": "2024-01-01 21:00:00+09\n"}
	for _, zone := range []string{"UTC", "Asia/Tokyo"} {
		if got := ciNoCache(t, conns[zone], q); got != want[zone] {
			t.Fatalf("%s: NoCache %q", zone, got)
		}
	}
	for _, zone := range []string{"UTC", "Asia/Tokyo"} {
		if got, err := ciRows(conns[zone], ctx, q); err != nil || got != want[zone] {
			t.Fatalf("%s: %q, %v; want %q", zone, got, err, want[zone])
		}
	}
}

// ciStmt runs reads through a prepared statement (the query is its own).
type ciStmt struct{ *sql.Stmt }

func (s ciStmt) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.Stmt.QueryContext(ctx, args...)
}

// Prepared statements are cached and invalidated like direct reads; an
// argument whose type has no exact encoding is not cached.
func TestCacheIntegPreparedAndArgTypes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_prep")
	stmt, err := db.PrepareContext(ctx, `SELECT v FROM ci_prep WHERE id = $1`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	read := func(want, outcome string) {
		t.Helper()
		res, got, _ := ciDo(t, db, ciStmt{stmt}, ctx, "prepared", 1)
		if res != want || got != outcome {
			t.Fatalf("prepared read: %s %q, want %s %q", got, res, outcome, want)
		}
	}
	read("one\n", "miss")
	read("one\n", "hit")
	// A direct read of the same text shares the entry.
	ciExpect(t, db, db, ctx, "hit", "", `SELECT v FROM ci_prep WHERE id = $1`, 1)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	upd, err := tx.PrepareContext(ctx, `UPDATE ci_prep SET v = $1 WHERE id = $2`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upd.ExecContext(ctx, "prepared in a transaction", 1); err != nil {
		t.Fatal(err)
	}
	read("one\n", "hit") // not committed yet
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	read("prepared in a transaction\n", "miss")
	read("prepared in a transaction\n", "hit")

	// A map has no exact encoding: the read goes to the server.
	js := `SELECT $1::jsonb ->> 'a' AS a`
	for range 2 {
		if got := ciExpect(t, db, db, ctx, "bypass", "argument type", js, map[string]any{"a": "x"}); got != "x\n" {
			t.Fatalf("map argument: %q", got)
		}
	}
	ciExpect(t, db, db, ctx, "miss", "", js, `{"a": "y"}`)
	ciExpect(t, db, db, ctx, "hit", "", js, `{"a": "y"}`)
}

// A read whose fill raced a write, an Invalidate or a commit keeps its
// answer (it began before them) but must not be stored.
func TestCacheIntegFillRacingWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := ciAdmin(t)
	ciExec(t, admin, `CREATE OR REPLACE FUNCTION ci_fr_slow(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE
		AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN x; END $$`)
	ciTable(t, admin, "ci_fr")
	db := ciOpen(t, WithCacheMode(CacheAll))
	q := `SELECT v, ci_fr_slow(id) AS slow FROM ci_fr WHERE id = 1`
	n := 0
	races := map[string]func(t *testing.T) string{
		"write": func(t *testing.T) string {
			n++
			v := fmt.Sprint("write", n)
			ciExec(t, db, `UPDATE ci_fr SET v = $1 WHERE id = 1`, v)
			return v
		},
		"commit": func(t *testing.T) string {
			n++
			v := fmt.Sprint("commit", n)
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			ciExec(t, tx, `UPDATE ci_fr SET v = $1 WHERE id = 1`, v)
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			return v
		},
		"Invalidate(table)": func(t *testing.T) string {
			n++
			v := fmt.Sprint("outside", n)
			ciExec(t, admin, `UPDATE ci_fr SET v = $1 WHERE id = 1`, v)
			if err := Invalidate(db, "ci_fr"); err != nil {
				t.Fatal(err)
			}
			return v
		},
		"Invalidate()": func(t *testing.T) string {
			n++
			v := fmt.Sprint("outside", n)
			ciExec(t, admin, `UPDATE ci_fr SET v = $1 WHERE id = 1`, v)
			if err := Invalidate(db); err != nil {
				t.Fatal(err)
			}
			return v
		},
	}
	for name, race := range races {
		t.Run(name, func(t *testing.T) {
			q := q + " -- " + name // a key no other step filled
			old := ciNoCache(t, db, `SELECT v FROM ci_fr WHERE id = 1`)
			before := ciStats(t, db)
			read := make(chan string, 1)
			go func() {
				res, err := ciRows(db, ctx, q)
				if err != nil {
					res = err.Error()
				}
				read <- res
			}()
			ciWaitBackend(t, admin, "-- "+name, "PgSleep") // the read has its snapshot and sleeps
			v := race(t)
			if got := <-read; got != old+"|1\n" && got != strings.TrimSuffix(old, "\n")+"|1\n" {
				t.Fatalf("the racing read returned %q, want the old %q", got, old)
			}
			if s := ciStats(t, db); s.RejectedFills != before.RejectedFills+1 || s.Fills != before.Fills {
				t.Fatalf("fill that raced a %s: fills %d->%d, rejected %d->%d; want it rejected", name, before.Fills, s.Fills, before.RejectedFills, s.RejectedFills)
			}
			if got := ciFresh(t, db, q); got != v+"|1\n" {
				t.Fatalf("after the race: %q, want %s", got, v)
			}
		})
	}
}

// Edge shapes of results: no columns, no rows, one huge value; the query
// rewriter's comment is not part of the key; an unreadable hint TTL falls
// back to the default.
func TestCacheIntegResultShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rewrites atomic.Int64
	db := ciOpen(t, WithCacheMode(CacheAll), WithQueryRewriter(func(_ context.Context, q string) string {
		return fmt.Sprintf("%s /* traceparent=%d */", q, rewrites.Add(1))
	}))
	ciTable(t, db, "ci_shape")
	count := func(q string) (int, string) {
		t.Helper()
		before := ciStats(t, db)
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		outcome := "miss"
		if ciStats(t, db).Hits > before.Hits {
			outcome = "hit"
		}
		return n, outcome
	}
	t.Run("no columns", func(t *testing.T) {
		q := `SELECT FROM ci_shape`
		if n, outcome := count(q); n != 2 || outcome != "miss" {
			t.Fatalf("first read: %d rows (%s), want 2", n, outcome)
		}
		n, outcome := count(q)
		if outcome == "hit" && n != 2 {
			t.Fatalf("%s: a hit replayed %d rows, want 2", q, n)
		}
		if n != 2 {
			t.Fatalf("second read: %d rows (%s), want 2", n, outcome)
		}
	})
	t.Run("rewriter", func(t *testing.T) {
		q := `SELECT v FROM ci_shape WHERE id = $1`
		ciExpect(t, db, db, ctx, "miss", "", q, 1)
		ciExpect(t, db, db, ctx, "hit", "", q, 1)
		if rewrites.Load() == 0 {
			t.Fatal("the rewriter never ran")
		}
	})
	t.Run("bad hint TTL", func(t *testing.T) {
		explicit := ciOpen(t)
		q := `/* auditpg:cache ttl=banana */ SELECT v FROM ci_shape WHERE id = $1`
		ciExpect(t, explicit, explicit, ctx, "miss", "", q, 2)
		ciExpect(t, explicit, explicit, ctx, "hit", "", q, 2)
	})
	t.Run("caller writes into RawBytes", func(t *testing.T) {
		q := `SELECT v, v::bytea AS b FROM ci_shape WHERE id = $1`
		ciFill(t, db, q, 1)
		for range 2 { // each hit gets bytes of its own
			rows, err := db.QueryContext(ctx, q, 1)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var v, b sql.RawBytes
				if err := rows.Scan(&v, &b); err != nil {
					t.Fatal(err)
				}
				if string(v) != "one" || string(b) != "one" {
					t.Fatalf("hit gave %q, %q: an earlier caller's writes leaked into the entry", v, b)
				}
				copy(v, "zzz") // scribble on the bytes: the next hit must not see it
				copy(b, "zzz")
			}
			rows.Close()
		}
	})
	t.Run("one large value", func(t *testing.T) {
		q := `SELECT repeat('ab', 200000) AS big, NULL::bytea AS nothing, ''::bytea AS empty`
		truth := ciNoCache(t, db, q)
		ciExpect(t, db, db, ctx, "miss", "", q)
		if got := ciExpect(t, db, db, ctx, "hit", "", q); got != truth {
			t.Fatalf("large value replayed differently (%d bytes, want %d)", len(got), len(truth))
		}
	})
}

// DDL in a transaction changes the catalog only at commit: what a reader
// looked up in between (the old catalog) must not be remembered past it.
func TestCacheIntegDDLInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_ddltx")
	q := `SELECT v FROM ci_ddltx WHERE id = $1`
	ciFill(t, db, q, 1)

	b := ciConn(t, db)
	ciExec(t, b, `BEGIN`)
	ciExec(t, b, `ALTER TABLE ci_ddltx ENABLE ROW LEVEL SECURITY`)
	// A reader looks the table up now (no row-level security yet, as far as
	// its snapshot says), then waits for b's lock.
	read := make(chan error, 1)
	go func() {
		_, err := ciRows(db, ctx, q, 2)
		read <- err
	}()
	ciWaitBackend(t, ciAdmin(t), "FROM ci_ddltx WHERE", "Lock")
	ciExec(t, b, `COMMIT`)
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	ciNeverCached(t, db, db, "row-level security", q, 1)
}

// TRUNCATE ... CASCADE empties the tables whose foreign keys reference the
// one named: their cached reads must go too.
func TestCacheIntegTruncateCascade(t *testing.T) {
	t.Parallel()
	admin := ciAdmin(t)
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciExec(t, admin, `DROP TABLE IF EXISTS ci_tc_child, ci_tc_parent`)
	ciExec(t, admin, `CREATE TABLE ci_tc_parent (id int PRIMARY KEY)`)
	ciExec(t, admin, `CREATE TABLE ci_tc_child (id int PRIMARY KEY, parent int REFERENCES ci_tc_parent)`)
	ciExec(t, admin, `INSERT INTO ci_tc_parent VALUES (1)`)
	ciExec(t, admin, `INSERT INTO ci_tc_child VALUES (1, 1), (2, 1)`)
	q := `SELECT count(*) FROM ci_tc_child`
	ciFill(t, db, q)
	ciExec(t, db, `TRUNCATE ci_tc_parent CASCADE`)
	if got := ciFresh(t, db, q); got != "0\n" {
		t.Fatalf("child after TRUNCATE CASCADE: %q", got)
	}
}

// ciLastEvent keeps the last query event an observer saw.
type ciLastEvent struct {
	mu sync.Mutex
	ev Event
}

func (o *ciLastEvent) Start(ctx context.Context, _ *Event) context.Context { return ctx }
func (o *ciLastEvent) End(_ context.Context, ev *Event) {
	if ev.Op == OpQuery {
		o.mu.Lock()
		o.ev = *ev
		o.mu.Unlock()
	}
}

// Observers see how the cache answered each query, and a hit counts its
// rows like a read from the server.
func TestCacheIntegObserverEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	obs := &ciLastEvent{}
	db := ciOpen(t, WithCacheMode(CacheAll), WithObserver(obs))
	ciTable(t, db, "ci_obs")
	q := `SELECT id, v FROM ci_obs ORDER BY id`
	last := func() Event {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.ev
	}
	for _, c := range []struct {
		ctx     context.Context
		query   string
		outcome CacheOutcome
		reason  string
	}{
		{ctx, q, CacheMiss, ""},
		{ctx, q, CacheHit, ""},
		{NoCache(ctx), q, CacheBypass, "NoCache context"},
		{ctx, `SELECT id, v FROM ci_obs WHERE random() >= 0 ORDER BY id`, CacheBypass, "not cacheable"},
	} {
		if _, err := ciRows(db, c.ctx, c.query); err != nil {
			t.Fatal(err)
		}
		ev := last()
		if ev.Query != c.query || ev.Cache != c.outcome || !strings.Contains(ev.CacheReason, c.reason) || ev.Rows != 2 || ev.Err != nil {
			t.Fatalf("%s: event Cache %q, CacheReason %q, Rows %d, Err %v; want %q %q and 2 rows",
				c.query, ev.Cache, ev.CacheReason, ev.Rows, ev.Err, c.outcome, c.reason)
		}
	}
	// A query the cache has no part in (a write) carries no outcome.
	if _, err := ciRows(db, ctx, `UPDATE ci_obs SET v = v RETURNING id`); err != nil {
		t.Fatal(err)
	}
	if ev := last(); ev.Cache != "" {
		t.Fatalf("write through a query: Cache %q, want none", ev.Cache)
	}
}

// SQL syntax that looks like a call of an immutable function is cached
// like the function it stands for.
func TestCacheIntegSyntaxCalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_syntax")
	for _, q := range []string{
		`SELECT position('o' IN v) FROM ci_syntax`,
		`SELECT substring(v FROM 1 FOR 2) FROM ci_syntax`,
		`SELECT overlay(v PLACING 'x' FROM 1) FROM ci_syntax`,
		`SELECT coalesce(v, ''), nullif(id, 1), greatest(id, 1), least(id, 1) FROM ci_syntax`,
		`SELECT CAST(id AS text), id::text, v || 'x', v LIKE 'o%' FROM ci_syntax`,
		`SELECT trim(v), trim(BOTH 'o' FROM v), trim(LEADING FROM v) FROM ci_syntax`,
	} {
		truth := ciNoCache(t, db, q)
		ciExpect(t, db, db, ctx, "miss", "", q)
		if got := ciExpect(t, db, db, ctx, "hit", "", q); got != truth {
			t.Fatalf("%s: %q, want %q", q, got, truth)
		}
	}
}

// A table created in pg_temp is temporary although the statement does not
// say TEMP: it hides the permanent table of that name on its connection.
func TestCacheIntegTempSchemaTable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, db, "ci_pgtemp")
	q := `SELECT v FROM ci_pgtemp WHERE id = $1`
	ciFill(t, db, q, 1)
	x := ciDiscardedConn(t, db)
	ciExpect(t, db, x, ctx, "hit", "", q, 1) // x knows its scope and the verdict
	ciExec(t, x, `CREATE TABLE pg_temp.ci_pgtemp (id int, v text)`)
	ciExec(t, x, `INSERT INTO pg_temp.ci_pgtemp VALUES (1, 'temporary')`)
	fresh := `SELECT v AS temp_v FROM ci_pgtemp WHERE id = $1` // no plan prepared before
	if got := ciNoCache(t, x, fresh, 1); got != "temporary\n" {
		t.Fatalf("the temporary table does not hide the permanent one: %q", got)
	}
	if got, err := ciRows(x, ctx, q, 1); err != nil || got != "temporary\n" {
		t.Fatalf("x read %q, %v, want its temporary row", got, err)
	}
	if got := ciNoCache(t, db, q, 1); got != "one\n" {
		t.Fatalf("another connection reads %q", got)
	}
	ciExpect(t, db, db, ctx, "cached", "", q, 1)
	ciExpect(t, db, db, ctx, "hit", "", q, 1)
}

// A result too large to be cached cannot be shared: a second identical
// read should not wait for the first to end before running its own query.
func TestCacheIntegSingleFlightTooLarge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := ciAdmin(t)
	ciExec(t, admin, `CREATE OR REPLACE FUNCTION ci_sfl_slow(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE
		AS $$ BEGIN PERFORM pg_sleep(1); RETURN x; END $$`)
	db := ciOpen(t, WithCacheMode(CacheAll), WithCacheMaxEntry(1024))
	q := `SELECT ci_sfl_slow($1) AS big, repeat('x', 5000) AS pad`
	// The first read learns that the result is too large.
	if _, err := ciRows(db, ctx, q, 1); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() { _, err := ciRows(db, ctx, q, 1); first <- err }()
	ciWaitBackend(t, admin, "ci_sfl_slow($1) AS big", "PgSleep")
	began := time.Now()
	if _, err := ciRows(db, ctx, q, 1); err != nil {
		t.Fatal(err)
	}
	waited := time.Since(began)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	t.Logf("the second read took %v", waited)
	if waited > 1700*time.Millisecond {
		t.Fatalf("the second read took %v, want about 1 s", waited)
	}
}

// What the catalog says of a function or a table is asked once per scope
// and remembered, whatever the connection and the statement. (Not
// parallel: it counts the catalog queries of the whole server.)
func TestCacheIntegCatalogLookupsRemembered(t *testing.T) {
	ctx := context.Background()
	admin := ciAdmin(t)
	ciExec(t, admin, `CREATE OR REPLACE FUNCTION ci_memo_f(x int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT x * 2'`)
	ciTable(t, admin, "ci_memo_t")
	db := ciOpen(t, WithCacheMode(CacheAll))
	calls := func(marker string) int {
		var n int
		if err := admin.QueryRowContext(ctx, `SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE strpos(query, $1) > 0`, marker).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	funcs, rels := calls("provolatile"), calls("relrowsecurity")
	for c := range 3 {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			q := fmt.Sprintf(`SELECT ci_memo_f(id) + %d FROM ci_memo_t WHERE id = $1`, i) // a statement of its own
			if got, err := ciRows(conn, ctx, q, 1); err != nil || got != fmt.Sprint(2+i, "\n") {
				t.Fatalf("conn %d, read %d: %q, %v", c, i, got, err)
			}
		}
		defer conn.Close()
	}
	if f, r := calls("provolatile")-funcs, calls("relrowsecurity")-rels; f != 1 || r != 1 {
		t.Fatalf("9 reads on 3 connections asked the catalog %d times for the function and %d for the table, want once each", f, r)
	}
}

// ---- 5. a statement that commits, then fails ----

// ciFails runs a statement that must fail with the SQLSTATE code.
func ciFails(t *testing.T, e ciExecer, code, query string) {
	t.Helper()
	if _, err := e.ExecContext(context.Background(), query); pgerr.SQLState(err) != code {
		t.Fatalf("%s: error %v, want SQLSTATE %s", query, err, code)
	}
}

// A procedure, a DO block or a text of several statements can COMMIT part
// way and go on: fail after it, or begin a transaction that is then rolled
// back. What it committed must be invalidated whatever comes next: after
// each step a read returns what the server holds, never the cached 0.
func TestCacheIntegCommitThenFail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := ciAdmin(t)
	ciExec(t, admin, `DROP TABLE IF EXISTS ci_cls CASCADE`)
	ciExec(t, admin, `CREATE TABLE ci_cls (k int PRIMARY KEY, v int)`)
	ciExec(t, admin, `INSERT INTO ci_cls VALUES (1, 0)`)
	ciExec(t, admin, `CREATE OR REPLACE PROCEDURE ci_cls_batch(x int) LANGUAGE plpgsql AS $$
		BEGIN UPDATE ci_cls SET v = x WHERE k = 1; COMMIT; RAISE EXCEPTION 'after the commit'; END $$`)
	ciExec(t, admin, `CREATE OR REPLACE PROCEDURE ci_cls_outer(x int) LANGUAGE plpgsql AS $$
		BEGIN CALL ci_cls_batch(x); END $$`)
	db := ciOpen(t, WithCacheMode(CacheAll))
	// pgx sends a query without arguments as a simple query only in this mode.
	simple := ciOpenDSN(t, ciDSN(t, "", map[string]string{"default_query_exec_mode": "simple_protocol"}), WithCacheMode(CacheAll))
	q := `SELECT v FROM ci_cls WHERE k = 1`
	update := func(v int) string { return fmt.Sprintf(`UPDATE ci_cls SET v = %d WHERE k = 1`, v) }

	for i, tc := range []struct {
		name string
		db   *sql.DB
		run  func(t *testing.T, db *sql.DB, v int, want func(v int))
	}{
		{"CALL commits, then raises", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			ciFails(t, db, "P0001", fmt.Sprintf(`CALL ci_cls_batch(%d)`, v))
			want(v)
		}},
		{"nested CALL commits, then raises", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			ciFails(t, db, "P0001", fmt.Sprintf(`CALL ci_cls_outer(%d)`, v))
			want(v)
		}},
		{"CALL with an argument, through a prepared statement", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			stmt, err := db.PrepareContext(ctx, `CALL ci_cls_batch($1)`)
			if err != nil {
				t.Fatal(err)
			}
			defer stmt.Close()
			if _, err := stmt.ExecContext(ctx, v); pgerr.SQLState(err) != "P0001" {
				t.Fatalf("error %v, want SQLSTATE P0001", err)
			}
			want(v)
		}},
		{"CALL through a query", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			if _, err := ciRows(db, ctx, `CALL ci_cls_batch($1)`, v); pgerr.SQLState(err) != "P0001" {
				t.Fatalf("error %v, want SQLSTATE P0001", err)
			}
			want(v)
		}},
		{"DO commits, then fails", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			ciFails(t, db, "22012", fmt.Sprintf(`DO $$ BEGIN UPDATE ci_cls SET v = %d WHERE k = 1; COMMIT; PERFORM 1/0; END $$`, v))
			want(v)
		}},
		{"UPDATE; COMMIT; SELECT 1/0", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			ciFails(t, db, "22012", update(v)+`; COMMIT; SELECT 1/0`)
			want(v)
		}},
		{"UPDATE; COMMIT; SELECT 1/0 through a query", simple, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			if _, err := ciRows(db, ctx, update(v)+`; COMMIT; SELECT 1/0`); pgerr.SQLState(err) != "22012" {
				t.Fatalf("error %v, want SQLSTATE 22012", err)
			}
			want(v)
		}},
		{"UPDATE; COMMIT; BEGIN, then ROLLBACK", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			conn := ciConn(t, db)
			ciExec(t, conn, update(v)+`; COMMIT; BEGIN`)
			want(v)
			ciExec(t, conn, `ROLLBACK`)
			want(v)
		}},
		{"UPDATE; COMMIT; BEGIN; UPDATE, then COMMIT", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			conn := ciConn(t, db)
			ciExec(t, conn, update(v)+`; COMMIT; BEGIN; `+update(v+100))
			want(v)
			ciExec(t, conn, `COMMIT`)
			want(v + 100)
		}},
		{"BEGIN; UPDATE, then COMMIT; BEGIN, then ROLLBACK", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			conn := ciConn(t, db)
			ciExec(t, conn, `BEGIN`)
			ciExec(t, conn, update(v))
			ciExec(t, conn, `COMMIT; BEGIN`)
			want(v)
			ciExec(t, conn, `ROLLBACK`)
			want(v)
		}},
		{"BEGIN, then UPDATE; COMMIT AND CHAIN, then ROLLBACK", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			conn := ciConn(t, db)
			ciExec(t, conn, `BEGIN`)
			ciExec(t, conn, update(v)+`; COMMIT AND CHAIN`)
			want(v)
			ciExec(t, conn, `ROLLBACK`)
			want(v)
		}},
		{"BEGIN; UPDATE, then COMMIT; SELECT 1/0", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			conn := ciConn(t, db)
			ciExec(t, conn, `BEGIN`)
			ciExec(t, conn, update(v))
			ciFails(t, conn, "22012", `COMMIT; SELECT 1/0`)
			want(v)
			ciExec(t, conn, `ROLLBACK`) // no transaction is left: the server only warns
			want(v)
		}},
		{"Tx: UPDATE; COMMIT; SELECT 1/0, then Rollback", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			ciFails(t, tx, "22012", update(v)+`; COMMIT; SELECT 1/0`)
			want(v)
			_ = tx.Rollback() // the server has no transaction left to roll back
			want(v)
		}},
		{"Tx: UPDATE, then COMMIT; BEGIN, then Rollback", db, func(t *testing.T, db *sql.DB, v int, want func(int)) {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			ciExec(t, tx, update(v))
			ciExec(t, tx, `COMMIT; BEGIN`)
			want(v)
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			want(v)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ciExec(t, tc.db, update(0))
			if got := ciFill(t, tc.db, q); got != "0\n" {
				t.Fatalf("before: %q", got)
			}
			// A hit is right once a read after the write filled the cache.
			tc.run(t, tc.db, i+1, func(v int) {
				t.Helper()
				got, err := ciRows(tc.db, ctx, q)
				if truth := ciNoCache(t, tc.db, q); err != nil || got != truth {
					t.Fatalf("read %q, %v; the server holds %q", got, err, truth)
				}
				if got != fmt.Sprintf("%d\n", v) {
					t.Fatalf("read %q, want %d: the step did not commit as the test means", got, v)
				}
			})
		})
	}
}

// A statement that commits part way and then fails may have changed the
// session (search_path here): the connection must stop reading the entries
// of its old scope.
func TestCacheIntegCommitThenFailSession(t *testing.T) {
	ctx := context.Background()
	admin := ciAdmin(t)
	ciShadowedTable(t, admin, "ci_cfs", "ci_cfs_t")
	ciExec(t, admin, `CREATE OR REPLACE PROCEDURE ci_cfs_proc() LANGUAGE plpgsql AS $$
		BEGIN PERFORM set_config('search_path', 'ci_cfs', false); COMMIT; RAISE EXCEPTION 'after the commit'; END $$`)
	db := ciOpen(t, WithCacheMode(CacheAll))
	q := `SELECT v FROM ci_cfs_t WHERE id = $1`

	for _, change := range []struct{ name, code, sql string }{
		{"SET; COMMIT; SELECT 1/0", "22012", `SET search_path = ci_cfs; COMMIT; SELECT 1/0`},
		{"DO", "22012", `DO $$ BEGIN PERFORM set_config('search_path', 'ci_cfs', false); COMMIT; PERFORM 1/0; END $$`},
		{"CALL", "P0001", `CALL ci_cfs_proc()`},
	} {
		t.Run(change.name, func(t *testing.T) {
			x := ciDiscardedConn(t, db)
			ciFill(t, db, q, 1) // public's row
			// x's scope is known before the change.
			if _, err := ciRows(x, ctx, q, 1); err != nil {
				t.Fatal(err)
			}
			ciFails(t, x, change.code, change.sql)
			if got := ciNoCache(t, x, `SELECT current_setting('search_path')`); got != "ci_cfs\n" {
				t.Fatalf("search_path %q: the change did not happen", got)
			}
			if got, err := ciRows(x, ctx, q, 1); err != nil || got != "other schema\n" {
				t.Fatalf("x read %q, %v, want its own schema's row", got, err)
			}
		})
	}
}

// DDL that commits before its text fails changes what the catalog says:
// reads of a table that gained row-level security are no longer cached.
func TestCacheIntegCommitThenFailDDL(t *testing.T) {
	t.Parallel()
	admin := ciAdmin(t)
	db := ciOpen(t, WithCacheMode(CacheAll))
	ciTable(t, admin, "ci_cfd")
	q := `SELECT v FROM ci_cfd WHERE id = $1`
	ciFill(t, db, q, 1)
	ciFails(t, db, "22012", `ALTER TABLE ci_cfd ENABLE ROW LEVEL SECURITY; COMMIT; SELECT 1/0`)
	ciNeverCached(t, db, db, "row-level security", q, 1)
}

// Texts the server reads otherwise than a naive lexer would, through the
// driver on a real server: a -- comment that ends at a carriage return, an
// E” string continued on the next line, a 66-byte name the server
// truncates to 63, a table named like a non-reserved keyword. Each write
// must invalidate the cached read, and a SET ROLE hidden behind a comment
// must end caching on its connection (never another role's result).
func TestCacheIntegLexicalClasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := ciOpen(t, WithCacheMode(CacheAll))
	long := strings.Repeat("l", 63) // the server's name for the 66-byte spelling below
	for _, table := range []string{"ci_lex", `"transaction"`, long} {
		ciExec(t, db, `DROP TABLE IF EXISTS `+table)
		ciExec(t, db, `CREATE TABLE `+table+` (k int PRIMARY KEY, v int)`)
		ciExec(t, db, `INSERT INTO `+table+` VALUES (1, 0)`)
	}
	for i, c := range []struct{ read, write string }{
		{`SELECT v FROM ci_lex WHERE k = 1`, "-- note\rUPDATE ci_lex SET v = %d WHERE k = 1"},
		{`SELECT v FROM ci_lex WHERE k = 1`, "SELECT E'a'\n'\\'' ; UPDATE ci_lex SET v = %d WHERE k = 1 --'"},
		{`SELECT v FROM transaction WHERE k = 1`, `UPDATE "transaction" SET v = %d WHERE k = 1`},
		{`SELECT v FROM ` + long + ` WHERE k = 1`, `UPDATE ` + long + `xyz SET v = %d WHERE k = 1`},
		{`SELECT v FROM ` + long + `abc WHERE k = 1`, `UPDATE ` + long + ` SET v = %d WHERE k = 1`},
	} {
		ciFill(t, db, c.read)
		want := fmt.Sprint(100 + i)
		if _, err := db.ExecContext(ctx, fmt.Sprintf(c.write, 100+i)); err != nil {
			t.Fatalf("%q: %v", c.write, err)
		}
		if got := ciFresh(t, db, c.read); got != want+"\n" {
			t.Fatalf("after %q, %s read %q, want %s", c.write, c.read, got, want)
		}
	}

	admin := ciAdmin(t)
	ciRole(t, admin, "ci_lex_nobody")
	read := `SELECT v FROM ci_lex WHERE k = 1`
	conn := ciDiscardedConn(t, db)
	ciExpect(t, db, conn, ctx, "cached", "", read)
	ciExpect(t, db, conn, ctx, "hit", "", read)
	if _, err := conn.ExecContext(ctx, "-- note\rSET ROLE ci_lex_nobody"); err != nil {
		t.Fatal(err)
	}
	if res, err := ciRows(conn, ctx, read); err == nil {
		t.Fatalf("after a SET ROLE behind a comment, the role without access read %q: another role's result", res)
	}
}
