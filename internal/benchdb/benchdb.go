// Package benchdb is what the benchmarks of several packages share: the
// table they read and the point select they time, so that figures taken in
// different packages (the driver's, the cache's, OpenTelemetry's) measure
// the same query the same way.
package benchdb

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to create the table
)

// Items is how many rows bench_item holds: enough that the cache
// benchmark's misses never read a key twice before a full store has
// dropped it.
const Items = 100_000

// PointSelect reads one row of bench_item by primary key.
const PointSelect = `SELECT id, name, created_at FROM bench_item WHERE id = $1`

// Create makes bench_item(id, name, created_at) with Items rows in the
// database at dsn, unless it is there already.
func Create(tb testing.TB, dsn string) {
	tb.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS bench_item (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL)`); err != nil {
		tb.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO bench_item SELECT g, 'item ' || g, now() FROM generate_series(1, $1::int) g ON CONFLICT DO NOTHING`, Items); err != nil {
		tb.Fatal(err)
	}
}

// PointSelects times db answering PointSelect over the first 1,000 ids in
// turn, on one connection (the call path, not the pool). A first read
// before the timer opens the connection.
func PointSelects(b *testing.B, db *sql.DB) {
	ctx := context.Background()
	db.SetMaxOpenConns(1)
	var (
		id      int64
		label   string
		created time.Time
	)
	if err := db.QueryRowContext(ctx, PointSelect, 1).Scan(&id, &label, &created); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := db.QueryRowContext(ctx, PointSelect, int64(i%1000+1)).Scan(&id, &label, &created); err != nil {
			b.Fatal(err)
		}
	}
}

// PointSelectsOpening is PointSelects over a database that open opens, and
// that is closed when it is done.
func PointSelectsOpening(b *testing.B, open func() (*sql.DB, error)) {
	db, err := open()
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	PointSelects(b, db)
}
