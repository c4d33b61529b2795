package partition

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestIntervalFloorAdd(t *testing.T) {
	kiritimati := time.FixedZone("+14", 14*3600)
	pagoPago := time.FixedZone("-11", -11*3600)
	tests := []struct {
		iv       Interval
		at       time.Time
		from, to time.Time
	}{
		{Daily, time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC), date(2024, 2, 29), date(2024, 3, 1)},
		{Daily, time.Date(2024, 3, 1, 9, 0, 0, 0, kiritimati), date(2024, 2, 29), date(2024, 3, 1)}, // 2024-02-29T19:00Z
		{Weekly, date(2024, 2, 29), date(2024, 2, 26), date(2024, 3, 4)},                            // Thursday -> Monday
		{Weekly, date(2024, 3, 3), date(2024, 2, 26), date(2024, 3, 4)},                             // Sunday
		{Weekly, date(2024, 12, 30), date(2024, 12, 30), date(2025, 1, 6)},                          // Monday across a year
		{Monthly, time.Date(2024, 1, 31, 23, 59, 59, 0, time.UTC), date(2024, 1, 1), date(2024, 2, 1)},
		{Monthly, time.Date(2024, 2, 1, 10, 0, 0, 0, kiritimati), date(2024, 1, 1), date(2024, 2, 1)}, // still January in UTC
		{Monthly, time.Date(2024, 1, 31, 14, 0, 0, 0, pagoPago), date(2024, 2, 1), date(2024, 3, 1)},  // already February in UTC
		{Monthly, date(2024, 2, 29), date(2024, 2, 1), date(2024, 3, 1)},
		{Quarterly, time.Date(2024, 3, 31, 23, 59, 59, 0, time.UTC), date(2024, 1, 1), date(2024, 4, 1)},
		{Quarterly, date(2024, 12, 15), date(2024, 10, 1), date(2025, 1, 1)},
		{Yearly, time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), date(2024, 1, 1), date(2025, 1, 1)},
		{Yearly, time.Date(2025, 1, 1, 5, 0, 0, 0, kiritimati), date(2024, 1, 1), date(2025, 1, 1)},
	}
	for _, tt := range tests {
		from, to := tt.iv.Range(tt.at)
		if !from.Equal(tt.from) || !to.Equal(tt.to) || from.Location() != time.UTC {
			t.Errorf("%v.Range(%v) = [%v, %v), want [%v, %v) in UTC", tt.iv, tt.at, from, to, tt.from, tt.to)
		}
	}
	// Month arithmetic from a range start never skips a month.
	for iv, start := Monthly, date(2024, 1, 1); start.Before(date(2026, 1, 1)); start = iv.Add(start, 1) {
		if start.Day() != 1 {
			t.Fatalf("Monthly.Add produced %v", start)
		}
	}
}

func TestParseInterval(t *testing.T) {
	for iv, name := range intervalNames {
		got, err := ParseInterval(strings.ToUpper(name))
		if err != nil || got != iv {
			t.Errorf("ParseInterval(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := ParseInterval("hourly"); err == nil {
		t.Error("ParseInterval(hourly): want an error")
	}
}

func TestPartitionName(t *testing.T) {
	if got := PartitionName("audit_log", time.Date(2024, 2, 1, 5, 0, 0, 0, time.FixedZone("x", 14*3600))); got != "audit_log_p20240131" {
		t.Errorf("PartitionName uses the UTC date: got %q", got)
	}
	long := strings.Repeat("é", 40) // 80 bytes
	got := PartitionName(long, date(2024, 1, 1))
	if len(got) > maxIdentLen || !utf8.ValidString(got) || !strings.HasSuffix(got, "_p20240101") {
		t.Errorf("PartitionName(long) = %q (%d bytes): want <= 63 valid bytes ending in the suffix", got, len(got))
	}
}

func TestParseBound(t *testing.T) {
	from, to, def, err := parseBound(`FOR VALUES FROM ('2024-01-01 00:00:00+00') TO ('2024-02-01 00:00:00+00')`)
	if err != nil || def || !from.Equal(date(2024, 1, 1)) || !to.Equal(date(2024, 2, 1)) {
		t.Errorf("got %v %v %v %v", from, to, def, err)
	}
	from, to, _, err = parseBound(`FOR VALUES FROM (MINVALUE) TO ('2024-02-01 00:00:00')`)
	if err != nil || !from.IsZero() || !to.Equal(date(2024, 2, 1)) {
		t.Errorf("MINVALUE: got %v %v %v", from, to, err)
	}
	if _, _, def, err := parseBound("DEFAULT"); !def || err != nil {
		t.Errorf("DEFAULT: got %v %v", def, err)
	}
	if _, _, _, err := parseBound(`FOR VALUES IN ('a')`); err == nil {
		t.Error("list bound: want an error")
	}
}

func TestRecommendThresholds(t *testing.T) {
	a := &Analysis{Interval: Daily, TotalPartitions: ManyPartitions + 3, AverageBytes: 2 << 30, Empty: make([]string, 6), DefaultRows: 3, Future: 1,
		NotAnalyzedWithRows: []string{"p"}, Expired: []string{"x"}, MissingIndexes: []MissingIndex{{"p", "i"}}, Gaps: []Range{{}}, Table: Table{Name: "t"}}
	rec := a.recommend(config{premake: 4, retention: 48 * time.Hour})
	for _, want := range []string{"1002 past and current partitions (more than 1000)", "coarser interval", "1 GiB", "6 past or current partitions are empty",
		"3 rows are in the default", "run `ANALYZE \"t\"`", "only 1 future", "past the retention of 2d: run `auditpg partition cleanup --retention 2`",
		"1 partitions lack the index i of the parent (p)", "1 gaps", "`auditpg partition create`, which fills them"} {
		if !strings.Contains(strings.Join(rec, "\n"), want) {
			t.Errorf("recommendations lack %q:\n%s", want, strings.Join(rec, "\n"))
		}
	}
	if strings.Contains(strings.Join(rec, "\n"), "cleanup --future") {
		t.Errorf("partitions in the past: cleanup --future advised:\n%s", strings.Join(rec, "\n"))
	}
	quiet := (&Analysis{Interval: Monthly, TotalPartitions: 10, Empty: make([]string, 5), DefaultRows: 0, Future: 4}).recommend(config{premake: 4})
	if len(quiet) != 0 {
		t.Errorf("a healthy table got recommendations: %q", quiet)
	}
	// Many partitions, mostly ahead of now: remove the surplus, not a
	// coarser interval.
	ahead := (&Analysis{Interval: Monthly, TotalPartitions: 2700, Future: 2690, BeyondPremake: 2686}).recommend(config{premake: 4})
	if got := strings.Join(ahead, "\n"); !strings.Contains(got, "`auditpg partition cleanup --future --premake 4` removes the empty ones") ||
		strings.Contains(got, "coarser") {
		t.Errorf("2,690 future partitions: recommendations\n%s", got)
	}
	// Beyond two years ahead alone is worth the advice.
	if got := strings.Join((&Analysis{Interval: Monthly, TotalPartitions: 40, Future: 30, BeyondPremake: 26}).recommend(config{premake: 4}), "\n"); !strings.Contains(got, "cleanup --future") {
		t.Errorf("30 monthly partitions ahead: recommendations\n%s", got)
	}
}
