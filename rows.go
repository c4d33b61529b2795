package auditpg

import (
	"context"
	"database/sql/driver"
	"reflect"
	"sync"

	"github.com/auditpg/auditpg/internal/resultcache"
)

// rows carries one query's event from the query to Close. sqlmw picks the
// optional interfaces to expose from the rows that Unwrap returns and calls
// them on this value, which forwards them.
type rows struct {
	driver.Rows
	fill   *resultcache.Fill // a miss being captured for the cache
	replay resultcache.Rows  // a hit: the cached result, which Rows then points to
	ctx    context.Context
	ev     Event
	closed bool
}

// rowsPool recycles rows objects: one is taken by every query, and
// database/sql closes each exactly once, after which neither it nor sqlmw
// touches it again. (Why observers must not keep an Event past End.)
var rowsPool = sync.Pool{New: func() any { return new(rows) }}

// release returns r to the pool, cleared so that it holds on to nothing.
func (r *rows) release() {
	*r = rows{}
	rowsPool.Put(r)
}

func (r *rows) Unwrap() driver.Rows { return r.Rows }

func (r *rows) HasNextResultSet() bool {
	return r.Rows.(driver.RowsNextResultSet).HasNextResultSet()
}

func (r *rows) NextResultSet() error {
	return r.Rows.(driver.RowsNextResultSet).NextResultSet()
}

func (r *rows) ColumnTypeDatabaseTypeName(i int) string {
	return r.Rows.(driver.RowsColumnTypeDatabaseTypeName).ColumnTypeDatabaseTypeName(i)
}

func (r *rows) ColumnTypeLength(i int) (int64, bool) {
	return r.Rows.(driver.RowsColumnTypeLength).ColumnTypeLength(i)
}

func (r *rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	return r.Rows.(driver.RowsColumnTypeNullable).ColumnTypeNullable(i)
}

func (r *rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	return r.Rows.(driver.RowsColumnTypePrecisionScale).ColumnTypePrecisionScale(i)
}

func (r *rows) ColumnTypeScanType(i int) reflect.Type {
	return r.Rows.(driver.RowsColumnTypeScanType).ColumnTypeScanType(i)
}
