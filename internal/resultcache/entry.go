package resultcache

import (
	"bytes"
	"database/sql/driver"
	"encoding/binary"
	"slices"
	"time"
	"unsafe"
)

// An entry is: expiry (unix ns, 8 bytes), the generations it was filled
// under, the full key, the columns, then the rows' values, one after the
// other up to the end.

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
