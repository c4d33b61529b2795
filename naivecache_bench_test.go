package auditpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/ngrok/sqlmw"
)

// naiveCache is the reference the cache's speed target is set
// against: a map behind sqlmw keyed by the SQL text and the formatted
// arguments, holding the driver's values as they came. It has none of the
// safety of the real cache (no invalidation, no scope, no expiry, no size
// limit, no column types, []byte values shared with every reader), so it
// is only a benchmark's yardstick: what a hit costs when the store costs
// nothing.
type naiveCache struct {
	sqlmw.NullInterceptor
	mu      sync.Mutex
	results map[string]*naiveResult
}

type naiveResult struct {
	columns []string
	rows    [][]driver.Value
}

// naiveRows replays a result, or captures one while it is read.
type naiveRows struct {
	driver.Rows // the server's rows while capturing; nil on replay
	res         *naiveResult
	next        int
	store       func()
}

func (r *naiveRows) Columns() []string { return r.res.columns }

func (r *naiveRows) Next(dest []driver.Value) error {
	if r.Rows != nil {
		if err := r.Rows.Next(dest); err != nil {
			if err == io.EOF {
				r.store()
			}
			return err
		}
		r.res.rows = append(r.res.rows, append([]driver.Value(nil), dest...))
		return nil
	}
	if r.next == len(r.res.rows) {
		return io.EOF
	}
	copy(dest, r.res.rows[r.next])
	r.next++
	return nil
}

func (r *naiveRows) Close() error {
	if r.Rows != nil {
		return r.Rows.Close()
	}
	return nil
}

func (n *naiveCache) ConnQueryContext(ctx context.Context, conn driver.QueryerContext, query string, args []driver.NamedValue) (context.Context, driver.Rows, error) {
	var buf [256]byte
	b := append(buf[:0], query...)
	for _, a := range args {
		b = fmt.Appendf(b, "\x00%T:%v", a.Value, a.Value)
	}
	n.mu.Lock()
	res, ok := n.results[string(b)] // no allocation for the lookup
	n.mu.Unlock()
	if ok {
		return ctx, &naiveRows{res: res}, nil
	}
	rows, err := conn.QueryContext(ctx, query, args)
	if err != nil {
		return ctx, nil, err
	}
	key := string(b)
	res = &naiveResult{columns: rows.Columns()}
	return ctx, &naiveRows{Rows: rows, res: res, store: func() {
		n.mu.Lock()
		n.results[key] = res
		n.mu.Unlock()
	}}, nil
}

// openNaiveCacheDB opens the test database through pgx behind naiveCache.
func openNaiveCacheDB(b *testing.B) *sql.DB {
	connector, err := stdlib.GetDefaultDriver().(driver.DriverContext).OpenConnector(testDSN)
	if err != nil {
		b.Fatal(err)
	}
	nc := &naiveCache{results: map[string]*naiveResult{}}
	wrapped, err := sqlmw.Driver(connectorDriver{connector}, nc).(driver.DriverContext).OpenConnector("")
	if err != nil {
		b.Fatal(err)
	}
	db := sql.OpenDB(wrapped)
	b.Cleanup(func() { db.Close() })
	return db
}
