package auditpg

import (
	"context"
	"database/sql"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/auditpg/auditpg/internal/benchdb"
)

// BenchmarkPointSelect measures the driver's overhead: a select by
// primary key on loopback PostgreSQL, bare pgx stdlib and auditpg as
// sql.Open makes it (OpenTelemetry on, no provider installed) side by side
// in one run. Compare with
//
//	go test -run '^$' -bench PointSelect -count 10 . | tee bench.txt
//	benchstat -col /driver bench.txt
func BenchmarkPointSelect(b *testing.B) {
	benchdb.Create(b, testDSN)
	for _, name := range []string{"pgx", "auditpg"} {
		b.Run("driver="+name, func(b *testing.B) {
			benchdb.PointSelects(b, openDB(b, name))
		})
	}
}

// BenchmarkWrapper measures the wrapper alone, over a driver that answers at
// once: the difference between the two sub-benchmarks is what auditpg adds
// to every query (timing, classification, statistics, sqlmw, and the
// default OpenTelemetry observer with no provider installed).
func BenchmarkWrapper(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		db   *sql.DB
	}{
		{"driver=fake", sql.OpenDB(fakeConnector{})},
		{"driver=auditpg-over-fake", sql.OpenDB(wrapConnector(fakeConnector{}, defaultConfig()))},
	} {
		b.Run(tc.name+"/op=query", func(b *testing.B) { benchdb.PointSelects(b, tc.db) })
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
