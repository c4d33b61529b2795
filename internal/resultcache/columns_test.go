package resultcache

import (
	"bytes"
	"context"
	"database/sql/driver"
	"fmt"
	"testing"
)

// TestColumnMemo: on a bare pgx stdlib connection, the second result of a
// statement is answered by the memo's entry, another statement's result
// with the same names gets its own, and a result known only by one-byte
// names, or with a type pgx does not know, is never kept.
func TestColumnMemo(t *testing.T) {
	ctx := context.Background()
	plain := openPgx(t)
	exec(t, plain, `DROP TABLE IF EXISTS cm_a, cm_b`)
	exec(t, plain, `DROP TYPE IF EXISTS cm_mood`)
	exec(t, plain, `CREATE TYPE cm_mood AS ENUM ('sad', 'ok')`)
	exec(t, plain, `CREATE TABLE cm_a (id int PRIMARY KEY, v text, x int)`)
	exec(t, plain, `CREATE TABLE cm_b (id bigint PRIMARY KEY, v varchar(10), x text)`)
	exec(t, plain, `INSERT INTO cm_a VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3)`)
	exec(t, plain, `INSERT INTO cm_b VALUES (1, 'one', '1'), (2, 'two', '2'), (3, 'three', '3')`)
	wide := `SELECT id, v FROM %s WHERE id >= $1 ORDER BY id`
	oneByte := `SELECT x FROM %s WHERE id >= $1 ORDER BY id`

	conn, err := plain.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := New(DefaultConfig(), nil)
	var memo columnMemo
	section := func(query string) ([]byte, *memoColumns) {
		var out []byte
		var entry *memoColumns
		err := conn.Raw(func(dc any) error {
			rows, err := dc.(driver.QueryerContext).QueryContext(ctx, query, []driver.NamedValue{{Ordinal: 1, Value: int64(1)}})
			if err != nil {
				return err
			}
			defer rows.Close()
			out = memo.appendColumns(c, nil, rows)
			want, _ := c.appendColumns(nil, rows)
			if !bytes.Equal(out, want) {
				t.Errorf("%s: the memo's section differs from pgx's answers", query)
			}
			if id := memoID(rows.Columns()); id != nil {
				entry = memo.m[id]
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out, entry
	}
	a1, entryA := section(fmt.Sprintf(wide, "cm_a"))
	a2, entryA2 := section(fmt.Sprintf(wide, "cm_a"))
	if entryA == nil || entryA2 != entryA || len(memo.m) != 1 || !bytes.Equal(a1, a2) {
		t.Fatalf("a statement's second result was not answered by its memo entry (%d entries)", len(memo.m))
	}
	b, entryB := section(fmt.Sprintf(wide, "cm_b"))
	if entryB == nil || entryB == entryA || len(memo.m) != 2 || bytes.Equal(a1, b) {
		t.Fatalf("the same names of other types shared a memo entry (%d entries)", len(memo.m))
	}
	if _, entryX := section(fmt.Sprintf(oneByte, "cm_a")); entryX != nil || len(memo.m) != 2 {
		t.Fatalf("a result named only by one-byte names was kept (%d entries)", len(memo.m))
	}
	// A type pgx does not know is named by its OID until registered.
	if _, entryE := section(`SELECT id, 'ok'::cm_mood AS mood FROM cm_a WHERE id >= $1`); entryE != nil || len(memo.m) != 2 {
		t.Fatalf("a result with a type pgx does not know was kept (%d entries)", len(memo.m))
	}
}
