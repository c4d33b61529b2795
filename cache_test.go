package auditpg

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// cacheDB opens the test database with the cache in mode all and a fresh
// table t(id, v).
func cacheDB(t *testing.T, table string, opts ...Option) *sql.DB {
	t.Helper()
	db := openDB(t, DriverName, append([]Option{WithCacheMode(CacheAll), WithInvalidation(InvalidateLocal)}, opts...)...) // see ciOpenDSN
	mustExec(t, db, `DROP TABLE IF EXISTS `+table)
	mustExec(t, db, `CREATE TABLE `+table+` (id int PRIMARY KEY, v text)`)
	mustExec(t, db, `INSERT INTO `+table+` VALUES (1, 'one'), (2, 'two')`)
	return db
}

func cacheStats(t testing.TB, db *sql.DB) CacheStats {
	t.Helper()
	s, err := Stats(db)
	if err != nil || s.Cache == nil {
		t.Fatalf("Stats: %v, cache %v", err, s.Cache)
	}
	return *s.Cache
}

func readV(t *testing.T, db *sql.DB, ctx context.Context, table string, id int) string {
	t.Helper()
	var v string
	if err := db.QueryRowContext(ctx, `SELECT v FROM `+table+` WHERE id = $1`, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCacheHitAndInvalidation(t *testing.T) {
	ctx := context.Background()
	db := cacheDB(t, "cache_basic")
	ResetStats(db)
	if v := readV(t, db, ctx, "cache_basic", 1); v != "one" {
		t.Fatalf("first read %q", v)
	}
	if v := readV(t, db, ctx, "cache_basic", 1); v != "one" {
		t.Fatalf("second read %q", v)
	}
	s := cacheStats(t, db)
	if s.Misses != 1 || s.Hits != 1 || s.Fills != 1 {
		t.Fatalf("after two reads: %+v, want 1 miss, 1 fill, 1 hit", s)
	}
	mustExec(t, db, `UPDATE cache_basic SET v = 'uno' WHERE id = 1`)
	if v := readV(t, db, ctx, "cache_basic", 1); v != "uno" {
		t.Fatalf("read after write: %q, want uno", v)
	}
	if s := cacheStats(t, db); s.Hits != 1 || s.Invalidations != 1 {
		t.Fatalf("after write: %+v", s)
	}
	_ = time.Second
}

// SQL syntax that looks like a call (coalesce) does not stop caching, and a
// per-fingerprint count of the cache's answers is kept.
func TestCacheSyntaxFunctions(t *testing.T) {
	ctx := context.Background()
	db := cacheDB(t, "cache_syntax")
	q := `SELECT coalesce(v, 'none'), greatest(id, 0) FROM cache_syntax WHERE id = $1`
	for range 2 {
		var v string
		var n int
		if err := db.QueryRowContext(ctx, q, 2).Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := Stats(db)
	for _, st := range s.Statements {
		if st.Fingerprint == Classify(q).Fingerprint {
			if st.CacheMisses != 1 || st.CacheHits != 1 {
				t.Fatalf("%s: %d misses, %d hits; want 1 and 1 (bypasses %v)", q, st.CacheMisses, st.CacheHits, s.Cache.Bypasses)
			}
			return
		}
	}
	t.Fatalf("fingerprint of %s not in the statistics", q)
}

// TestCacheHotEntriesInvalidate reads a row often enough to make it hot,
// then writes it: the next read must not replay the hot entry.
func TestCacheHotEntriesInvalidate(t *testing.T) {
	ctx := context.Background()
	db := cacheDB(t, "cache_hot")
	for range 3 { // a fill, a hit from BigCache that makes it hot, a hit from the hot set
		if v := readV(t, db, ctx, "cache_hot", 1); v != "one" {
			t.Fatalf("read %q", v)
		}
	}
	c, err := connectorOf(db)
	if err != nil {
		t.Fatal(err)
	}
	held := c.cache.HotLen()
	if s := cacheStats(t, db); s.Hits != 2 || held != 1 {
		t.Fatalf("%d hits, %d hot entries; want 2 and 1", s.Hits, held)
	}
	mustExec(t, db, `UPDATE cache_hot SET v = 'uno' WHERE id = 1`)
	if v := readV(t, db, ctx, "cache_hot", 1); v != "uno" {
		t.Fatalf("after the write, read %q from the hot set", v)
	}
}
