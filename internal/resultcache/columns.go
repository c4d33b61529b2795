package resultcache

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"reflect"
	"slices"
	"unsafe"

	"github.com/jackc/pgx/v5/stdlib"
)

// column is one result column and what ColumnType* answered for it.
type column struct {
	name, dbType           string
	scanType               uint32 // index in the cache's type registry
	hasLength, hasNullable bool
	nullable, hasPrecScale bool
	length, prec, scale    int64
}

const (
	colHasLength byte = 1 << iota
	colHasNullable
	colNullable
	colHasPrecScale
)

// columnMemo remembers, on one connection, the column sections of the
// results pgx has returned, so that a miss does not ask every ColumnType
// question again: pgx answers DatabaseTypeName with two map lookups and
// an upper-cased copy of the name, on every call.
//
// A result is recognized by the identity of its column-name strings. pgx
// makes them once per statement description, from the server's
// RowDescription, and every execution of a statement it keeps prepared
// returns that description's own strings. The memo holds the strings, so
// their memory cannot be reused: the same string data is the same
// description, and pgx never changes a description. What keeps it exact:
//   - only pgx stdlib's rows, whose names are made this way;
//   - a one-byte string is not memory of its own (Go takes it from a
//     static table, so every column "a" shares it): a result is known by
//     a name of two bytes or more, and one without is always asked;
//   - the answers depend on the description's type OIDs and modifiers,
//     and on the connection's type map for type names: a type registered
//     on a live connection changes them for an OID pgx did not know
//     (named by its number until then), and a result with such a column
//     is always asked. (A known OID registered again under another name
//     would not be seen; pgx's types are named as the server names them.)
//
// A statement that pgx does not keep prepared (the simple protocol, say)
// gets new strings every time, and is asked every time.
type columnMemo struct {
	m map[*byte]*memoColumns // by the data of the result's first name of two bytes or more
}

type memoColumns struct {
	names   []string // pgx's strings, held
	section []byte   // as appendColumns wrote it
}

// maxMemoColumns bounds the results a connection remembers; past it, the
// memo starts again.
const maxMemoColumns = 256

// appendColumns appends the column section of r, from the memo when it
// has seen r's description.
func (m *columnMemo) appendColumns(c *Cache, out []byte, r driver.Rows) []byte {
	var id *byte
	var names []string
	if _, ok := r.(*stdlib.Rows); ok {
		names = r.Columns()
		id = memoID(names)
	}
	if id == nil {
		out, _ = c.appendColumns(out, r)
		return out
	}
	if e := m.m[id]; e != nil && sameStrings(e.names, names) {
		return append(out, e.section...)
	}
	start := len(out)
	out, known := c.appendColumns(out, r)
	if known {
		if m.m == nil || len(m.m) >= maxMemoColumns {
			m.m = make(map[*byte]*memoColumns)
		}
		m.m[id] = &memoColumns{names: slices.Clone(names), section: bytes.Clone(out[start:])}
	}
	return out
}

// memoID is the data of the first name of two bytes or more; nil when
// there is none.
func memoID(names []string) *byte {
	for _, n := range names {
		if len(n) >= 2 {
			return unsafe.StringData(n)
		}
	}
	return nil
}

// sameStrings says whether a and b are the same strings in memory, not
// only in content.
func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) || unsafe.StringData(a[i]) != unsafe.StringData(b[i]) {
			return false
		}
	}
	return true
}

// appendColumns appends the columns of live rows, asking every ColumnType
// interface they implement; known is false when a DatabaseTypeName was a
// number (pgx's answer for a type it does not know).
func (c *Cache) appendColumns(out []byte, r driver.Rows) (b []byte, known bool) {
	names := r.Columns()
	known = true
	// The section is length-prefixed: written after a placeholder of the
	// largest length it may have, then moved back over what it did not use.
	out = append(out, make([]byte, binary.MaxVarintLen64)...)
	start := len(out)
	b = binary.AppendUvarint(out, uint64(len(names)))
	dbType, _ := r.(driver.RowsColumnTypeDatabaseTypeName)
	scanType, _ := r.(driver.RowsColumnTypeScanType)
	length, _ := r.(driver.RowsColumnTypeLength)
	nullable, _ := r.(driver.RowsColumnTypeNullable)
	precScale, _ := r.(driver.RowsColumnTypePrecisionScale)
	for i, name := range names {
		var col column
		if dbType != nil {
			col.dbType = dbType.ColumnTypeDatabaseTypeName(i)
			known = known && !isNumber(col.dbType)
		}
		st := reflect.TypeFor[any]()
		if scanType != nil {
			st = scanType.ColumnTypeScanType(i)
		}
		var flags byte
		if length != nil {
			if col.length, col.hasLength = length.ColumnTypeLength(i); col.hasLength {
				flags |= colHasLength
			}
		}
		if nullable != nil {
			if null, ok := nullable.ColumnTypeNullable(i); ok {
				flags |= colHasNullable
				if null {
					flags |= colNullable
				}
			}
		}
		if precScale != nil {
			var ok bool
			if col.prec, col.scale, ok = precScale.ColumnTypePrecisionScale(i); ok {
				flags |= colHasPrecScale
			}
		}
		b = appendString(b, name)
		b = appendString(b, col.dbType)
		b = binary.AppendUvarint(b, uint64(c.typeIndex(st)))
		b = append(b, flags)
		b = binary.AppendVarint(b, col.length)
		b = binary.AppendVarint(b, col.prec)
		b = binary.AppendVarint(b, col.scale)
	}
	// Length-prefixed, so that a replay finds the same columns decoded
	// once (columnSets) from the bytes alone.
	var prefix [binary.MaxVarintLen64]byte
	p := binary.PutUvarint(prefix[:], uint64(len(b)-start))
	head := start - binary.MaxVarintLen64
	copy(b[head:], prefix[:p])
	n := copy(b[head+p:], b[start:])
	return b[:head+p+n], known
}

// isNumber says whether s is a decimal number, as pgx names a type it
// does not know.
func isNumber(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
