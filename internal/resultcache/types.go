package resultcache

import (
	"reflect"
	"slices"
)

func (c *Cache) typeIndex(t reflect.Type) uint32 {
	if i, ok := c.findType(t); ok {
		return i
	}
	c.typesMu.Lock()
	defer c.typesMu.Unlock()
	if i, ok := c.findType(t); ok {
		return i
	}
	var types []reflect.Type
	if p := c.types.Load(); p != nil {
		types = *p
	}
	types = append(slices.Clip(types), t)
	c.types.Store(&types)
	return uint32(len(types) - 1)
}

func (c *Cache) findType(t reflect.Type) (uint32, bool) {
	if p := c.types.Load(); p != nil {
		for i, u := range *p {
			if u == t {
				return uint32(i), true
			}
		}
	}
	return 0, false
}

func (c *Cache) typeAt(i uint32) reflect.Type {
	if p := c.types.Load(); p != nil && int(i) < len(*p) {
		return (*p)[i]
	}
	return reflect.TypeFor[any]()
}
