package auditpg

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"io"
	"math"
	"reflect"
	"slices"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/stdlib"
)

// This file encodes what the cache stores: argument values for the key, and
// entries (expiry, generations, full key, columns, rows) in a compact binary
// form; and it replays an entry as driver.Rows, with every ColumnType answer
// the server's rows gave.

// Value tags. Arguments also carry named and composite types; row values are
// only the seven types pgx stdlib returns.
const (
	tagNil byte = iota
	tagInt
	tagUint
	tagFloat
	tagTrue
	tagFalse
	tagString
	tagBytes
	tagTime
	tagValuer // a driver.Valuer's type name, then its Value()
	tagNamed  // a named type's name, then its underlying value
	tagList   // a slice or array: its type name, length, elements
)

// appendValue appends v with its type. It returns false for a type it has
// no exact encoding for: two different values must never encode alike.
func appendValue(b []byte, v any) ([]byte, bool) {
	if nb, ok := appendBasic(b, v); ok {
		return nb, true
	}
	switch v := v.(type) {
	case int:
		return binary.AppendVarint(append(b, tagInt), int64(v)), true
	case int32:
		return binary.AppendVarint(append(b, tagInt), int64(v)), true
	case driver.Valuer:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer && rv.IsNil() {
			return append(b, tagNil), true
		}
		dv, err := v.Value()
		if err != nil {
			return b, false
		}
		b = appendString(append(b, tagValuer), rv.Type().String())
		return appendValue(b, dv)
	}
	return appendReflect(b, reflect.ValueOf(v))
}

// appendBasic appends v when it is of one of the seven types pgx stdlib
// returns in rows (a time only in a location appendTime keeps), and
// returns false, with b as it was, for anything else.
func appendBasic(b []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(b, tagNil), true
	case int64:
		return binary.AppendVarint(append(b, tagInt), v), true
	case float64:
		return appendFloat(append(b, tagFloat), v), true
	case bool:
		if v {
			return append(b, tagTrue), true
		}
		return append(b, tagFalse), true
	case string:
		return appendString(append(b, tagString), v), true
	case []byte:
		if v == nil {
			return append(b, tagNil), true
		}
		return appendString(append(b, tagBytes), unsafe.String(unsafe.SliceData(v), len(v))), true
	case time.Time:
		if nb, ok := appendTime(append(b, tagTime), v); ok {
			return nb, true
		}
	}
	return b, false
}

// appendReflect encodes the other kinds: named basic types, pointers,
// slices and arrays of what appendValue encodes.
func appendReflect(b []byte, rv reflect.Value) ([]byte, bool) {
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return append(b, tagNil), true
		}
		return appendValue(b, rv.Elem().Interface())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b = appendString(append(b, tagNamed), rv.Type().String())
		return binary.AppendVarint(append(b, tagInt), rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		b = appendString(append(b, tagNamed), rv.Type().String())
		return binary.AppendUvarint(append(b, tagUint), rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		b = appendString(append(b, tagNamed), rv.Type().String())
		return appendFloat(append(b, tagFloat), rv.Float()), true
	case reflect.Bool:
		b = appendString(append(b, tagNamed), rv.Type().String())
		if rv.Bool() {
			return append(b, tagTrue), true
		}
		return append(b, tagFalse), true
	case reflect.String:
		b = appendString(append(b, tagNamed), rv.Type().String())
		return appendString(append(b, tagString), rv.String()), true
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return append(b, tagNil), true
		}
		b = appendString(append(b, tagList), rv.Type().String())
		b = binary.AppendUvarint(b, uint64(rv.Len()))
		for i := range rv.Len() {
			var ok bool
			if b, ok = appendValue(b, rv.Index(i).Interface()); !ok {
				return b, false
			}
		}
		return b, true
	}
	return b, false
}

// Time zones: pgx returns times in UTC or time.Local; a fixed zone is kept
// by name and offset. Other locations are not cached.
const (
	zoneUTC byte = iota
	zoneLocal
	zoneFixed
)

func appendTime(b []byte, t time.Time) ([]byte, bool) {
	// Fixed width: a time is encoded in the miss's path, once a row.
	b = binary.LittleEndian.AppendUint64(b, uint64(t.Unix()))
	b = binary.LittleEndian.AppendUint32(b, uint32(t.Nanosecond()))
	switch loc := t.Location(); loc {
	case time.UTC:
		return append(b, zoneUTC), true
	case time.Local:
		return append(b, zoneLocal), true
	default:
		name, off := t.Zone()
		if fixed := time.FixedZone(name, off); t.In(fixed).Location().String() != loc.String() {
			return b, false // a named location such as Europe/Paris
		}
		b = binary.AppendVarint(append(b, zoneFixed), int64(off))
		return appendString(b, name), true
	}
}

// ---- entries ----

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
func (m *columnMemo) appendColumns(c *cache, out []byte, r driver.Rows) []byte {
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
func (c *cache) appendColumns(out []byte, r driver.Rows) (b []byte, known bool) {
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
func (c *cache) decode(e, key, body []byte, gens []uint64) (*decoded, error) {
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

// ---- replay ----

// columnSet is a result's columns, decoded once and shared by the
// replays of every entry with the same columns. It is never modified.
type columnSet struct {
	names []string
	cols  []column
}

// maxColumnSets bounds the decoded column sets kept; past it, replays
// decode their own.
const maxColumnSets = 4096

// columns returns the decoded column set of an entry's column section.
func (c *cache) columns(b []byte) (*columnSet, error) {
	if v, ok := c.colSets.Load(unsafe.String(unsafe.SliceData(b), len(b))); ok {
		return v.(*columnSet), nil
	}
	b = bytes.Clone(b) // the set outlives the entry it was read from
	set, err := decodeColumns(b)
	if err != nil {
		return nil, err
	}
	if c.colSetCount.Load() < maxColumnSets {
		if _, loaded := c.colSets.LoadOrStore(unsafe.String(unsafe.SliceData(b), len(b)), set); !loaded {
			c.colSetCount.Add(1)
		}
	}
	return set, nil
}

func decodeColumns(e []byte) (*columnSet, error) {
	n, e, err := readUvarint(e)
	if err != nil || n > uint64(len(e)) {
		return nil, errNotCached
	}
	set := &columnSet{names: make([]string, n), cols: make([]column, n)}
	for i := range set.cols {
		var name, dbType []byte
		if name, e, err = readBytes(e); err != nil {
			return nil, err
		}
		if dbType, e, err = readBytes(e); err != nil {
			return nil, err
		}
		var st uint64
		if st, e, err = readUvarint(e); err != nil || len(e) < 1 {
			return nil, errNotCached
		}
		flags := e[0]
		e = e[1:]
		var vals [3]int64
		for j := range vals {
			v, k := binary.Varint(e)
			if k <= 0 {
				return nil, errNotCached
			}
			vals[j], e = v, e[k:]
		}
		set.names[i] = unsafe.String(unsafe.SliceData(name), len(name))
		set.cols[i] = column{
			name: set.names[i], dbType: unsafe.String(unsafe.SliceData(dbType), len(dbType)), scanType: uint32(st),
			hasLength: flags&colHasLength != 0, hasNullable: flags&colHasNullable != 0,
			nullable: flags&colNullable != 0, hasPrecScale: flags&colHasPrecScale != 0,
			length: vals[0], prec: vals[1], scale: vals[2],
		}
	}
	return set, nil
}

// cachedRows replays a decoded entry.
type cachedRows struct {
	c         *cache
	set       *columnSet
	values    []driver.Value // the rows not yet read
	rows      int
	copyBytes bool // the reader may write into []byte values (sql.RawBytes): give it copies
	// names is the replay's own copy of the column names (in nameBuf when
	// they fit): database/sql hands Columns' slice to the application,
	// which may change it.
	names   []string
	nameBuf [8]string
}

// replay makes r replay d.
func (r *cachedRows) replay(c *cache, d *decoded) {
	r.c, r.set, r.values, r.rows, r.copyBytes = c, d.set, d.values, d.rows, d.bytes
	r.names = append(r.nameBuf[:0], d.set.names...)
}

func (r *cachedRows) Columns() []string { return r.names }
func (r *cachedRows) Close() error      { r.values, r.rows = nil, 0; return nil }

func (r *cachedRows) Next(dest []driver.Value) error {
	if r.rows == 0 {
		return io.EOF
	}
	r.rows--
	n := copy(dest, r.values[:len(r.set.cols)])
	r.values = r.values[len(r.set.cols):]
	if r.copyBytes {
		for i, v := range dest[:n] {
			if b, ok := v.([]byte); ok {
				dest[i] = bytes.Clone(b)
			}
		}
	}
	return nil
}

// readValue decodes one row value (the seven types of appendRow).
func readValue(b []byte) (driver.Value, []byte, error) {
	if len(b) == 0 {
		return nil, nil, errNotCached
	}
	tag, b := b[0], b[1:]
	switch tag {
	case tagNil:
		return nil, b, nil
	case tagInt:
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, nil, errNotCached
		}
		return v, b[n:], nil
	case tagFloat:
		if len(b) < 8 {
			return nil, nil, errNotCached
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), b[8:], nil
	case tagTrue:
		return true, b, nil
	case tagFalse:
		return false, b, nil
	case tagString:
		s, rest, err := readBytes(b)
		return unsafe.String(unsafe.SliceData(s), len(s)), rest, err
	case tagBytes:
		s, rest, err := readBytes(b)
		return s, rest, err
	case tagTime:
		return readTime(b)
	}
	return nil, nil, errNotCached
}

func readTime(b []byte) (driver.Value, []byte, error) {
	if len(b) < 8+4+1 {
		return nil, nil, errNotCached
	}
	sec, nsec := int64(binary.LittleEndian.Uint64(b)), int64(binary.LittleEndian.Uint32(b[8:]))
	zone := b[12]
	b = b[13:]
	t := time.Unix(sec, nsec)
	switch zone {
	case zoneUTC:
		return t.UTC(), b, nil
	case zoneLocal:
		return t, b, nil
	case zoneFixed:
		off, n := binary.Varint(b)
		if n <= 0 {
			return nil, nil, errNotCached
		}
		name, rest, err := readBytes(b[n:])
		if err != nil {
			return nil, nil, err
		}
		return t.In(time.FixedZone(string(name), int(off))), rest, nil
	}
	return nil, nil, errNotCached
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string { return r.set.cols[i].dbType }
func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	return r.c.typeAt(r.set.cols[i].scanType)
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	col := &r.set.cols[i]
	return col.length, col.hasLength
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	col := &r.set.cols[i]
	return col.nullable, col.hasNullable
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	col := &r.set.cols[i]
	return col.prec, col.scale, col.hasPrecScale
}
