package resultcache

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/auditpg/auditpg/internal/benchdb"
)

// BenchmarkFillParts times a fill's two per-query parts on their own, with
// warm caches, over a live 100-row result: the column section (every
// ColumnType answer pgx gives, encoded; then from the connection's memo)
// and one row's encoding. Compare with the same parts in a cpu profile of
// BenchmarkCache's misses, where they run cold after each network wait.
func BenchmarkFillParts(b *testing.B) {
	ctx := context.Background()
	benchdb.Create(b, testDSN)
	conn, err := openPgx(b).Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	c := New(DefaultConfig(), nil)
	err = conn.Raw(func(dc any) error {
		rows, err := dc.(driver.QueryerContext).QueryContext(ctx,
			`SELECT id, name, created_at FROM bench_item WHERE id > $1 ORDER BY id LIMIT 100`,
			[]driver.NamedValue{{Ordinal: 1, Value: int64(0)}})
		if err != nil {
			return err
		}
		defer rows.Close()
		buf := make([]byte, 0, 4096)
		b.Run("part=columns", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf, _ = c.appendColumns(buf[:0], rows)
			}
		})
		// As a miss takes them once its connection has seen the result.
		var memo columnMemo
		b.Run("part=columns-memo", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				buf = memo.appendColumns(c, buf[:0], rows)
			}
		})
		dest := make([]driver.Value, len(rows.Columns()))
		if err := rows.Next(dest); err != nil {
			return err
		}
		b.Run("part=row", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var ok bool
				if buf, ok = appendRow(buf[:0], dest); !ok {
					b.Fatalf("row %v not encoded", dest)
				}
			}
		})
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
