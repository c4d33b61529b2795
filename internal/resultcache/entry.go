package resultcache

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"reflect"
	"slices"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/stdlib"
)

// An entry is: expiry (unix ns, 8 bytes), the generations it was filled
// under, the full key, the columns, then the rows' values, one after the
// other up to the end.

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

// rowMark starts each row of an entry.
const rowMark byte = 0xff

// appendRow appends one row's values; false when a value is of a type the
// entry cannot hold.
func appendRow(b []byte, dest []driver.Value) ([]byte, bool) {
	b = append(b, rowMark) // so that rows of no columns still count
	for _, v := range dest {
		var ok bool
		if b, ok = appendBasic(b, v); !ok {
			return b, false
		}
	}
	return b, true
}

// appendHeader starts an entry.
func appendHeader(b []byte, expiry time.Time, gens []uint64, key []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(expiry.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(gens)))
	for _, g := range gens {
		b = binary.AppendUvarint(b, g)
	}
	return appendString(b, unsafe.String(unsafe.SliceData(key), len(key)))
}

// decoded is an entry decoded for replay. Its strings and byte slices
// point into the entry's bytes, which BigCache copied for us and nobody
// writes again.
type decoded struct {
	expiry int64    // unix ns
	gens   []uint64 // the generations it was filled under
	key    []byte   // the full key, to verify
	set    *columnSet
	values []driver.Value // the rows' values, one row after the other
	rows   int
	bytes  bool // some value is a []byte: each replay gets its own copy
	size   int  // what keeping it costs, roughly, in bytes
}

// validEntry checks an entry against the time, the current generations and
// the full key, allocating nothing (a stale entry costs only BigCache's
// copy), and returns the key it holds and what follows its header.
func validEntry(e []byte, now int64, gens []uint64, key []byte) (stored, body []byte, ok bool) {
	if len(e) < 8 || int64(binary.LittleEndian.Uint64(e)) <= now {
		return nil, nil, false
	}
	n, e, err := readUvarint(e[8:])
	if err != nil || n != uint64(len(gens)) {
		return nil, nil, false
	}
	for _, want := range gens {
		var g uint64
		if g, e, err = readUvarint(e); err != nil || g != want {
			return nil, nil, false
		}
	}
	stored, e, err = readBytes(e)
	if err != nil || !bytes.Equal(stored, key) {
		return nil, nil, false
	}
	return stored, e, true
}

// valid says whether d answers key now, under the generations gens.
func (d *decoded) valid(now int64, gens []uint64, key []byte) bool {
	return d.expiry > now && slices.Equal(d.gens, gens) && bytes.Equal(d.key, key)
}

// decode decodes the valid entry e, whose key and body validEntry
// returned, filled under gens.
func (c *Cache) decode(e, key, body []byte, gens []uint64) (*decoded, error) {
	d := &decoded{expiry: int64(binary.LittleEndian.Uint64(e)), gens: slices.Clone(gens), key: key, size: len(e)}
	section, e, err := readBytes(body)
	if err != nil {
		return nil, err
	}
	if d.set, err = c.columns(section); err != nil {
		return nil, err
	}
	width := len(d.set.cols)
	for len(e) > 0 {
		if e[0] != rowMark {
			return nil, errNotCached
		}
		e = e[1:]
		d.rows++
		for range width {
			var v driver.Value
			if v, e, err = readValue(e); err != nil {
				return nil, err
			}
			if _, ok := v.([]byte); ok {
				d.bytes = true
			}
			d.values = append(d.values, v)
		}
	}
	d.size += 32*len(d.values) + 8*len(d.gens) + 128
	return d, nil
}
