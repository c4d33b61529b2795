package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
)

func TestHoles(t *testing.T) {
	r := func(a, b time.Time) Range { return Range{a, b} }
	taken := []Range{r(date(2024, 1, 1), date(2024, 2, 1)), r(date(2024, 3, 1), date(2024, 3, 10)), r(date(2024, 4, 1), time.Time{})}
	for _, tc := range []struct {
		from, to time.Time
		want     []Range
	}{
		{date(2023, 12, 1), date(2024, 1, 1), []Range{r(date(2023, 12, 1), date(2024, 1, 1))}},
		{date(2024, 1, 1), date(2024, 2, 1), nil},
		{date(2024, 1, 15), date(2024, 3, 5), []Range{r(date(2024, 2, 1), date(2024, 3, 1))}},
		{date(2024, 3, 1), date(2024, 4, 1), []Range{r(date(2024, 3, 10), date(2024, 4, 1))}},
		{date(2024, 5, 1), date(2024, 6, 1), nil}, // under MAXVALUE
		{date(2023, 12, 20), date(2024, 3, 20), []Range{r(date(2023, 12, 20), date(2024, 1, 1)), r(date(2024, 2, 1), date(2024, 3, 1)), r(date(2024, 3, 10), date(2024, 3, 20))}},
	} {
		if got := holes(taken, tc.from, tc.to); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("holes [%v, %v) = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
	if got := holes([]Range{r(time.Time{}, date(2024, 1, 1))}, date(2023, 1, 1), date(2024, 2, 1)); fmt.Sprint(got) != fmt.Sprint([]Range{r(date(2024, 1, 1), date(2024, 2, 1))}) {
		t.Errorf("after MINVALUE: %v", got)
	}
}

func TestPlanner(t *testing.T) {
	// Daily partitions up to 23 December, monthly from January: December's
	// range is planned as the days left, the gap filled once.
	var parts []Partition
	for d := date(2026, 12, 1); d.Before(date(2026, 12, 23)); d = d.AddDate(0, 0, 1) {
		parts = append(parts, Partition{Name: PartitionName("t", d), From: d, To: d.AddDate(0, 0, 1)})
	}
	parts = append(parts, Partition{Name: "t_p20270101", From: date(2027, 1, 1), To: date(2027, 2, 1)}, Partition{Name: "t_default", Default: true})
	if iv, newest, ok := detectInterval(parts); !ok || iv != Monthly || newest.Name != "t_p20270101" {
		t.Errorf("detectInterval: %v %v %v", iv, newest, ok)
	}
	pl := newPlanner(parts)
	pl.premade(Monthly, date(2026, 12, 15), 2)
	pl.fillGaps(time.Time{})
	want := []Range{{date(2026, 12, 23), date(2027, 1, 1)}, {date(2027, 2, 1), date(2027, 3, 1)}}
	if got := pl.ranges(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("planned %v, want %v", got, want)
	}
	// A gap far from the others is one partition; one before the cutoff none.
	pl = newPlanner([]Partition{{From: date(2001, 1, 1), To: date(2001, 2, 1)}, {From: date(2005, 1, 1), To: date(2005, 2, 1)}, {From: date(2024, 1, 1), To: date(2024, 2, 1)}})
	pl.fillGaps(date(2010, 1, 1))
	if got := pl.ranges(); fmt.Sprint(got) != fmt.Sprint([]Range{{date(2005, 2, 1), date(2024, 1, 1)}}) {
		t.Errorf("gaps planned %v", got)
	}
	if _, _, ok := detectInterval([]Partition{{From: date(2024, 1, 3), To: date(2024, 1, 9)}}); ok {
		t.Error("a six-day range detected as an interval")
	}
}

// TestIntervalAndPremake: the table's interval is kept when none is given,
// a different one is refused, premake is bounded by the interval in use.
func TestIntervalAndPremake(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	now := fixedClock(date(2024, 6, 15))
	if _, err := newManager(t, db, WithTable(table), WithInterval(Weekly), WithPremake(2), WithClock(now)).Create(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := newManager(t, db, WithTable(table), WithPremake(3), WithClock(now)).Create(ctx)
	if err != nil || !slices.Equal(r.Created, []string{"audit_log_p20240701"}) { // the week of 1 July, not July
		t.Errorf("Create without an interval on a weekly table: %v, %v", r.Created, err)
	}
	_, err = newManager(t, db, WithTable(table), WithInterval(Monthly), WithClock(now)).Create(ctx)
	var conflict *IntervalConflictError
	if !errors.As(err, &conflict) || !errors.Is(err, ErrIntervalConflict) || conflict.Have != Weekly || conflict.Want != Monthly || conflict.Partition != "audit_log_p20240701" {
		t.Errorf("Create with another interval: %v", err)
	}
	var premake *PremakeError
	if _, err := newManager(t, db, WithTable(table), WithPremake(106), WithClock(now)).Create(ctx); !errors.As(err, &premake) || premake.Max != 105 || premake.Interval != Weekly {
		t.Errorf("premake 106 weekly: %v, want a PremakeError of 105", err)
	}
	if _, err := New(db, WithInterval(Yearly), WithPremake(3)); !errors.As(err, &premake) || premake.Max != 2 {
		t.Errorf("New with premake 3 yearly: %v", err)
	}
	for _, iv := range []Interval{Daily, Weekly, Monthly, Quarterly, Yearly} {
		if span := iv.Add(date(2024, 1, 1), MaxPremake(iv)).Sub(date(2024, 1, 1)); span < 2*365*24*time.Hour || span > 2*366*24*time.Hour+7*24*time.Hour {
			t.Errorf("MaxPremake(%v) = %d spans %v, want two years", iv, MaxPremake(iv), span)
		}
	}
}

// TestCreateTable: Create refuses a missing table unless WithCreateTable.
func TestCreateTable(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db), Name: "audti_log"}
	m, err := New(db, WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx); !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), "WithCreateTable") {
		t.Errorf("Create of a missing table: %v, want ErrNoTable saying WithCreateTable", err)
	}
	var exists bool
	db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, table.String()).Scan(&exists)
	if exists {
		t.Fatal("Create without WithCreateTable made the table")
	}
	if _, err := newManager(t, db, WithTable(table), WithColumn("at")).Create(ctx); !errors.Is(err, ErrNoTable) || !strings.Contains(err.Error(), `not on "at"`) {
		t.Errorf("WithCreateTable with another column: %v", err)
	}
	if _, err := newManager(t, db, WithTable(table)).Create(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCleanupFuture: the empty partitions beyond premake go, the ones
// with rows stay with a warning, and a dry run changes nothing.
func TestCleanupFuture(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	now := fixedClock(date(2024, 6, 15))
	if _, err := newManager(t, db, WithTable(table), WithPremake(10), WithClock(now)).Create(ctx); err != nil {
		t.Fatal(err)
	}
	insertAt(t, db, table, date(2025, 2, 3))
	m := newManager(t, db, WithTable(table), WithPremake(2), WithClock(now))
	for _, dry := range []bool{true, false} {
		r, err := m.CleanupFuture(ctx, dry)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rm := range r.Removed {
			got = append(got, rm.Name)
		}
		want := []string{"audit_log_p20240901", "audit_log_p20241001", "audit_log_p20241101", "audit_log_p20241201", "audit_log_p20250101",
			"audit_log_p20250301", "audit_log_p20250401"}
		if !slices.Equal(got, want) || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "audit_log_p20250201 [2025-02-01T00:00:00Z, 2025-03-01T00:00:00Z) holds 1 rows") {
			t.Errorf("dry run %v: removed %v, warnings %q", dry, got, r.Warnings)
		}
	}
	l, err := m.List(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(l.Partitions); !slices.Equal(got, []string{"audit_log_p20240601", "audit_log_p20240701", "audit_log_p20240801", "audit_log_p20250201", "audit_log_default"}) {
		t.Errorf("left: %v", got)
	}
}

// TestCreateInterrupted cancels Create while it moves rows into a new
// partition: the partition is rolled back (its rows back in the default
// partition, the table gone), the error says how far Create got and wraps
// context.Canceled, and the next Create finishes.
func TestCreateInterrupted(t *testing.T) {
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	now := fixedClock(date(2024, 6, 15))
	if _, err := newManager(t, db, WithTable(table), WithClock(now)).Create(context.Background()); err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, db, `INSERT INTO `+table.String()+` ("timestamp", action, status) SELECT '2023-03-01'::timestamptz + i * interval '1 minute', 'a', 's' FROM generate_series(1, 50) i`)
	count0, sum0 := checksum(t, db, table)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := newManager(t, db, WithTable(table), WithClock(now), WithBatchSize(10), WithLogger(testLogger(t)), WithProgress(func(p Progress) {
		if strings.HasPrefix(p.Step, "move") && p.Done >= 20 {
			cancel()
		}
	}))
	_, err := m.Create(ctx)
	var partial *PartialError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &partial) || partial.Done != 0 || partial.Total != 2 || !partial.Interrupted() ||
		!strings.Contains(err.Error(), "created 0 of 2 partitions before the interruption; run it again to finish") {
		t.Fatalf("Create cancelled while moving rows: %v", err)
	}
	var leftover bool
	db.QueryRow(`SELECT to_regclass($1) IS NOT NULL`, table.Sibling("audit_log_p20230301").String()).Scan(&leftover)
	if n := countIn(t, db, table.Sibling("audit_log_default")); leftover || n != 50 {
		t.Errorf("after the interruption: the unfinished partition exists %v, the default partition holds %d rows (want 50)", leftover, n)
	}
	if c, s := checksum(t, db, table); c != count0 || s != sum0 {
		t.Errorf("rows changed by the interruption: %d, want %d", c, count0)
	}
	r, err := newManager(t, db, WithTable(table), WithClock(now)).Create(context.Background())
	if err != nil || r.Moved != 50 || len(r.Created) != 2 { // March 2023, and the gap [2023-04, 2024-06)
		t.Errorf("Create again: %+v, %v", r, err)
	}
}
