package resultcache

import (
	"database/sql/driver"
	"encoding/binary"
	"hash/maphash"
	"unsafe"

	"github.com/auditpg/auditpg/internal/sqlclass"
)

// appendKey appends the full key: the session scope's number, the SQL text
// and the typed arguments. It returns false when an argument's type has no
// exact encoding, and the read is then not cached.
func appendKey(b []byte, scopeID uint64, query string, args []driver.NamedValue) ([]byte, bool) {
	b = binary.AppendUvarint(b, scopeID)
	b = appendString(b, query)
	b = binary.AppendUvarint(b, uint64(len(args)))
	for i := range args {
		if s, ok := args[i].Value.(string); ok && sqlclass.IsTimeWord(s) {
			return b, false // 'now' read as a timestamp: a new value each time
		}
		b = appendString(b, args[i].Name)
		var ok bool
		if b, ok = appendValue(b, args[i].Value); !ok {
			return b, false
		}
	}
	return b, true
}

// keyHash is a key's 128-bit hash: what the hot set and the single flight
// know an entry by.
type keyHash [16]byte

// storeKey is what BigCache knows an entry by: the key's hash, then a hash
// of the generations it was filled under. A read after a write asks for a
// key that is not there (a map lookup) instead of having BigCache copy out
// the entry the write made stale, only to throw it away; the stale entry
// waits for its space to be needed, as an overwritten one would.
type storeKey [len(keyHash{}) + 8]byte

// str is k as BigCache takes it, valid while k is.
func (k *storeKey) str() string { return unsafe.String(&k[0], len(k)) }

// storeHasher gives BigCache a store key's own bits as its 64-bit hash:
// the key is made of hashes already, which BigCache's FNV would hash again
// on every lookup and store. (BigCache keeps the key beside its entry and
// compares it on a read, so two keys alike in these bits never mix up.)
type storeHasher struct{}

func (storeHasher) Sum64(k string) uint64 {
	if len(k) != len(storeKey{}) {
		return maphash.String(storeHasherSeed, k) // no key of ours
	}
	b := unsafe.Slice(unsafe.StringData(k), len(k))
	return binary.LittleEndian.Uint64(b) ^ binary.LittleEndian.Uint64(b[len(keyHash{}):])
}

var storeHasherSeed = maphash.MakeSeed()

// appendGensHash appends the generations' hash that completes a storeKey.
// Two vectors that hash alike only cost a copy: the entry's own
// generations are compared on every read.
func appendGensHash(b []byte, gens []uint64) []byte {
	words := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(gens))), len(gens)*8)
	return binary.LittleEndian.AppendUint64(b, maphash.Bytes(storeHasherSeed, words))
}

// appendHash appends the key's 128-bit hash to it (in the same buffer, so
// that a lookup allocates nothing for it).
func (c *Cache) appendHash(key []byte) []byte {
	b := binary.LittleEndian.AppendUint64(key, maphash.Bytes(c.seeds[0], key))
	return binary.LittleEndian.AppendUint64(b, maphash.Bytes(c.seeds[1], key))
}
