// Package bytesize reads and writes byte sizes the way postgresql.conf
// does: a number and one of the units B, kB, MB, GB and TB, each 1024 times
// the one before.
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// units are the postgresql.conf memory units, largest first. They are
// case-sensitive, as PostgreSQL's are.
var units = []struct {
	name string
	n    int64
}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}

// unitList names the units for error messages.
const unitList = "B, kB, MB, GB or TB"

// Parse reads a size such as 8GB, 512MB, 1.5GB, 64kB, 100B or 1048576 (no
// unit: bytes), with or without spaces around and between number and unit.
// A fraction of a byte is dropped: 1.5B is 1. The error says what is wrong
// with s and what a size looks like.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := 0
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		i++
	}
	digits := i
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	if i == digits {
		return 0, fmt.Errorf("size %q: no number; want a number of bytes and a unit (%s), e.g. 512MB or 1.5GB", s, unitList)
	}
	mult := int64(0)
	if unit == "" {
		mult = 1
	}
	for _, u := range units {
		if unit == u.name {
			mult = u.n
		}
	}
	if mult == 0 {
		hint := ""
		for _, u := range units {
			if strings.EqualFold(unit, u.name) {
				hint = fmt.Sprintf(" (units are case-sensitive: %s)", u.name)
			}
		}
		return 0, fmt.Errorf("size %q: unit %q is not one of %s%s", s, unit, unitList, hint)
	}
	if !strings.Contains(num, ".") {
		n, err := strconv.ParseInt(num, 10, 64)
		switch {
		case err != nil && n != 0: // out of range: ParseInt returns the bound
			return 0, fmt.Errorf("size %q: too large; want at most %d bytes", s, int64(math.MaxInt64))
		case err != nil:
			return 0, fmt.Errorf("size %q: %q is not a number; want a number of bytes and a unit (%s), e.g. 512MB", s, num, unitList)
		case n < 0:
			return 0, fmt.Errorf("size %q: negative; want 0 or more", s)
		case n > math.MaxInt64/mult:
			return 0, fmt.Errorf("size %q: too large; want at most %d bytes", s, int64(math.MaxInt64))
		}
		return n * mult, nil
	}
	v, err := strconv.ParseFloat(num, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("size %q: %q is not a number; want a number of bytes and a unit (%s), e.g. 1.5GB", s, num, unitList)
	case v < 0:
		return 0, fmt.Errorf("size %q: negative; want 0 or more", s)
	case v*float64(mult) >= math.MaxInt64: // 2^63 exactly as a float64
		return 0, fmt.Errorf("size %q: too large; want at most %d bytes", s, int64(math.MaxInt64))
	}
	return int64(v * float64(mult)), nil
}

// Format writes n bytes in the largest unit that keeps it whole (1536MB,
// 64kB, 100B), the way postgresql.conf takes it. A size of 1MB or more that
// no unit divides is written in whole megabytes, rounded down: Format is
// for settings, where a byte more or less does not matter.
func Format(n int64) string {
	for _, u := range units[:len(units)-1] {
		if n >= u.n && n%u.n == 0 {
			return strconv.FormatInt(n/u.n, 10) + u.name
		}
	}
	if n >= 1<<20 {
		return strconv.FormatInt(n>>20, 10) + "MB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// Human writes n bytes for a person to read, to one decimal in binary
// units: 512 B, 1.5 KiB, 8.0 GiB. Unlike Format it rounds.
func Human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
