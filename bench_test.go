package auditpg

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// createBenchItems makes the benchmarks' table: 1000 rows, ids 1 to 1000.
func createBenchItems(b *testing.B) {
	setup := openDB(b, "pgx")
	mustExec(b, setup, `CREATE TABLE IF NOT EXISTS bench_item (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL)`)
	mustExec(b, setup, `INSERT INTO bench_item SELECT g, 'item ' || g, now() FROM generate_series(1, $1) g ON CONFLICT DO NOTHING`, benchItems)
}

// benchItems is how many rows bench_item holds: enough that BenchmarkCache's
// misses never read a key twice before the store has dropped it.
const benchItems = 100_000

// BenchmarkPointSelect is the driver issue's overhead target: a select by
// primary key on loopback PostgreSQL, bare pgx stdlib and auditpg side by
// side in one run. Compare with
//
//	go test -run '^$' -bench PointSelect -count 10 . | tee bench.txt
//	benchstat -col /driver bench.txt
func BenchmarkPointSelect(b *testing.B) {
	ctx := context.Background()
	createBenchItems(b)

	for _, name := range []string{"pgx", "auditpg"} {
		b.Run("driver="+name, func(b *testing.B) {
			db := openDB(b, name)
			db.SetMaxOpenConns(1) // one connection: measure the call path, not the pool
			var (
				id      int64
				label   string
				created time.Time
			)
			q := `SELECT id, name, created_at FROM bench_item WHERE id = $1`
			if err := db.QueryRowContext(ctx, q, 1).Scan(&id, &label, &created); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := db.QueryRowContext(ctx, q, int64(i%1000+1)).Scan(&id, &label, &created); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWrapper measures the wrapper alone, over a driver that answers at
// once: the difference between the two sub-benchmarks is what auditpg adds
// to every query (timing, classification, statistics, sqlmw).
func BenchmarkWrapper(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		db   *sql.DB
	}{
		{"driver=fake", sql.OpenDB(fakeConnector{})},
		{"driver=auditpg-over-fake", sql.OpenDB(wrapConnector(fakeConnector{}, defaultConfig()))},
	} {
		b.Run(tc.name+"/op=query", func(b *testing.B) {
			var (
				id      int64
				label   string
				created time.Time
			)
			b.ReportAllocs()
			for b.Loop() {
				if err := tc.db.QueryRowContext(ctx, `SELECT id, name, created_at FROM bench_item WHERE id = $1`, 42).Scan(&id, &label, &created); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/op=exec", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.db.ExecContext(ctx, `UPDATE bench_item SET name = $1 WHERE id = $2`, "x", 42); err != nil {
					b.Fatal(err)
				}
			}
		})
		tc.db.Close()
	}
}
