package resultcache

import (
	"database/sql/driver"
	"encoding/binary"
	"math"
	"reflect"
	"time"
	"unsafe"
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errNotCached
	}
	return v, b[n:], nil
}

func readBytes(b []byte) ([]byte, []byte, error) {
	n, b, err := readUvarint(b)
	if err != nil || uint64(len(b)) < n {
		return nil, nil, errNotCached
	}
	return b[:n:n], b[n:], nil
}

func appendFloat(b []byte, f float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
}

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
