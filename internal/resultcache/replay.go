package resultcache

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"io"
	"math"
	"reflect"
	"time"
	"unsafe"
)

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
func (c *Cache) columns(b []byte) (*columnSet, error) {
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

// Rows replays a decoded entry.
type Rows struct {
	c         *Cache
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
func (r *Rows) replay(c *Cache, d *decoded) {
	r.c, r.set, r.values, r.rows, r.copyBytes = c, d.set, d.values, d.rows, d.bytes
	r.names = append(r.nameBuf[:0], d.set.names...)
}

func (r *Rows) Columns() []string { return r.names }
func (r *Rows) Close() error      { r.values, r.rows = nil, 0; return nil }

func (r *Rows) Next(dest []driver.Value) error {
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

func (r *Rows) ColumnTypeDatabaseTypeName(i int) string { return r.set.cols[i].dbType }
func (r *Rows) ColumnTypeScanType(i int) reflect.Type {
	return r.c.typeAt(r.set.cols[i].scanType)
}

func (r *Rows) ColumnTypeLength(i int) (int64, bool) {
	col := &r.set.cols[i]
	return col.length, col.hasLength
}

func (r *Rows) ColumnTypeNullable(i int) (nullable, ok bool) {
	col := &r.set.cols[i]
	return col.nullable, col.hasNullable
}

func (r *Rows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	col := &r.set.cols[i]
	return col.prec, col.scale, col.hasPrecScale
}
