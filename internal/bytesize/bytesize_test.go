package bytesize

import (
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string // in the error; "" for none
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"100B", 100, ""},
		{"64kB", 64 << 10, ""},
		{"1024 kB", 1 << 20, ""},
		{"100MB", 100 << 20, ""},
		{"8GB", 8 << 30, ""},
		{"2TB", 2 << 40, ""},
		{" 16GB ", 16 << 30, ""},
		{"+5MB", 5 << 20, ""},
		{"-0", 0, ""},
		{"1.5GB", 3 << 29, ""},
		{".5kB", 512, ""},
		{"1.5B", 1, ""},
		{"9007199254740993", 9007199254740993, ""}, // exact beyond float64's integers
		{"8388607TB", 8388607 << 40, ""},
		{"", 0, "no number"},
		{"GB", 0, "no number"},
		{"abc", 0, "no number"},
		{"-1MB", 0, "negative"},
		{"-1.5", 0, "negative"},
		{"1..5GB", 0, "not a number"},
		{"1.2.3", 0, "not a number"},
		{"8gb", 0, "case-sensitive: GB"},
		{"8KB", 0, "case-sensitive: kB"},
		{"8 GiB", 0, `unit "GiB" is not one of B, kB, MB, GB or TB`},
		{"1e3", 0, `unit "e3"`},
		{"8388608TB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
		{"9999999999999.5TB", 0, "too large"},
	} {
		got, err := Parse(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Parse(%q) = %d, %v; want an error saying %q", tc.in, got, err, tc.err)
		}
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0B"},
		{100, "100B"},
		{1 << 10, "1kB"},
		{1536, "1536B"},
		{3 << 19, "1536kB"},
		{128 << 20, "128MB"},
		{6 << 30, "6GB"},
		{2 << 40, "2TB"},
		{1<<20 + 1, "1MB"}, // no unit divides it: whole megabytes
		{5<<30 + 3, "5120MB"},
		{math.MaxInt64, "8796093022207MB"},
	} {
		if got := Format(tc.in); got != tc.want {
			t.Errorf("Format(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, n := range []int64{0, 100, 1 << 10, 3 << 19, 128 << 20, 6 << 30, 2 << 40} {
		if back, err := Parse(Format(n)); err != nil || back != n {
			t.Errorf("Parse(Format(%d)) = %d, %v", n, back, err)
		}
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{8 << 30, "8.0 GiB"},
		{3<<40 + 1<<39, "3.5 TiB"},
		{math.MaxInt64, "8.0 EiB"},
	} {
		if got := Human(tc.in); got != tc.want {
			t.Errorf("Human(%d) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
