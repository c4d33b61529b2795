package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/metrics"
)

// A collection through the application's own *sql.DB leaves its
// connections as they were: cached reads still hit afterwards.
func TestCollectionKeepsTheCache(t *testing.T) {
	ctx := context.Background()
	setup := testdb.Open(t, "pgx", testDSN)
	f := newFixture(t, setup)
	db, err := auditpg.Open(testDSN, auditpg.WithCacheMode(auditpg.CacheAll), auditpg.WithMaxOpenConns(1))
	db = testdb.Opened(t, db, err)
	read := func() {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+f.items.String()).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	read()
	gather(t, newCollector(t, db, metrics.WithMemo(0), metrics.WithRetention(f.audit, time.Hour)))
	before, _ := auditpg.Stats(db)
	read()
	read()
	after, _ := auditpg.Stats(db)
	if after.Cache.Hits-before.Cache.Hits != 2 {
		t.Errorf("after a collection, 2 reads made %d hits (bypasses %v): the collection changed the connection's session",
			after.Cache.Hits-before.Cache.Hits, after.Cache.Bypasses)
	}
}
