package preset

import (
	"context"
	"testing"

	"github.com/auditpg/auditpg"
)

// benchCases are the ways of reading presets that the benchmarks compare:
// through the auditpg driver with the cache hint (served from its cache when
// it has one), through it without the hint, and through bare pgx stdlib.
var benchCases = []struct {
	name, driver string
	hint         bool
}{
	{"auditpg_hint", auditpg.DriverName, true},
	{"auditpg_nohint", auditpg.DriverName, false},
	{"pgx", "pgx", false},
}

// benchStore is a store with the default presets and org-a's own
// authentication preset.
func benchStore(b *testing.B, driver string, hint bool) *Store {
	s := newStore(b, openDB(b, driver), WithCacheHint(hint))
	if _, err := s.SeedDefaults(context.Background(), "bench"); err != nil {
		b.Fatal(err)
	}
	p := sample("authentication", "org-a")
	if _, err := s.Create(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkGet reads an organization's preset, which overrides a default.
func BenchmarkGet(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			s := benchStore(b, c.driver, c.hint)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(ctx, "authentication", "org-a"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkList lists what an organization sees: its preset over the
// eight defaults.
func BenchmarkList(b *testing.B) {
	for _, c := range benchCases {
		b.Run(c.name, func(b *testing.B) {
			s := benchStore(b, c.driver, c.hint)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if l, err := s.List(ctx, "org-a"); err != nil || len(l) != len(DefaultPresets()) {
					b.Fatalf("List = %d presets, %v", len(l), err)
				}
			}
		})
	}
}
