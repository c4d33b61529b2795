package partition

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the Pacific zones, whatever the machine has

	"github.com/auditpg/auditpg/internal/testdb"
)

// insertAt inserts one event at t and returns the partition it landed in.
func insertAt(tb testing.TB, db *sql.DB, table Table, t time.Time) string {
	tb.Helper()
	var part string
	err := db.QueryRow(`INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ($1, 'login', 'success')
		RETURNING tableoid::regclass::text`, t).Scan(&part)
	if err != nil {
		tb.Fatalf("insert at %v: %v", t, err)
	}
	return part
}

// unqualified strips the schema from a regclass text.
func unqualified(s string) string { return strings.Trim(s[strings.LastIndex(s, ".")+1:], `"`) }

// TestBoundaries creates partitions at month, quarter and year ends and on
// a leap day, with clocks in zones far from UTC, from sessions whose
// TimeZone is +14 and -11, and checks names, bounds and where rows land.
func TestBoundaries(t *testing.T) {
	kiritimati, err := time.LoadLocation("Pacific/Kiritimati")
	if err != nil {
		t.Fatal(err)
	}
	pagoPago, err := time.LoadLocation("Pacific/Pago_Pago")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		iv   Interval
		now  time.Time
		want []time.Time // starts of the current and 2 premade partitions
	}{
		{"month end", Monthly, time.Date(2024, 1, 31, 23, 59, 59, 0, time.UTC), []time.Time{date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)}},
		{"month, clock at +14", Monthly, time.Date(2024, 2, 1, 13, 0, 0, 0, kiritimati), []time.Time{date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)}},
		{"quarter end, clock at -11", Quarterly, time.Date(2024, 6, 30, 20, 0, 0, 0, pagoPago), []time.Time{date(2024, 7, 1), date(2024, 10, 1), date(2025, 1, 1)}},
		{"quarter end", Quarterly, time.Date(2024, 3, 31, 23, 59, 59, 0, time.UTC), []time.Time{date(2024, 1, 1), date(2024, 4, 1), date(2024, 7, 1)}},
		{"year end", Yearly, time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC), []time.Time{date(2024, 1, 1), date(2025, 1, 1), date(2026, 1, 1)}},
		{"leap day", Daily, time.Date(2024, 3, 1, 10, 0, 0, 0, kiritimati), []time.Time{date(2024, 2, 29), date(2024, 3, 1), date(2024, 3, 2)}},
		{"leap week", Weekly, date(2024, 2, 29), []time.Time{date(2024, 2, 26), date(2024, 3, 4), date(2024, 3, 11)}},
	}
	for _, tz := range []string{"Pacific/Kiritimati", "Pacific/Pago_Pago"} {
		db := openDB(t, tz)
		for _, tt := range tests {
			t.Run(tz+"/"+tt.name, func(t *testing.T) {
				table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
				m := newManager(t, db, WithTable(table), WithInterval(tt.iv), WithPremake(2), WithClock(fixedClock(tt.now)))
				if _, err := m.Create(context.Background()); err != nil {
					t.Fatal(err)
				}
				l, err := m.List(context.Background(), false)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for i, p := range l.Partitions {
					if p.Default {
						continue
					}
					got = append(got, p.Name)
					if i < len(tt.want) && (!p.From.Equal(tt.want[i]) || !p.To.Equal(tt.iv.Add(tt.want[i], 1))) {
						t.Errorf("%s: bounds [%v, %v), want [%v, %v)", p.Name, p.From, p.To, tt.want[i], tt.iv.Add(tt.want[i], 1))
					}
				}
				var want []string
				for _, w := range tt.want {
					want = append(want, "audit_log_p"+w.Format("20060102"))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("partitions %v, want %v", got, want)
				}
				// The server, in this session's TimeZone, routes the
				// instants around each bound as the UTC bounds say.
				for _, start := range tt.want {
					name := "audit_log_p" + start.Format("20060102")
					if p := unqualified(insertAt(t, db, table, start)); p != name {
						t.Errorf("row at %v went to %s, want %s", start, p, name)
					}
					if p := unqualified(insertAt(t, db, table, start.Add(-time.Microsecond))); p == name {
						t.Errorf("row at %v (just before) went to %s", start.Add(-time.Microsecond), p)
					}
				}
			})
		}
	}
}

// checksum summarizes every row of a table, whatever partition holds it.
func checksum(tb testing.TB, db *sql.DB, table Table) (count int64, sum string) {
	tb.Helper()
	err := db.QueryRow(`SELECT count(*), coalesce(md5(string_agg(row(t.*)::text, ',' ORDER BY id)), '') FROM `+table.String()+` t`).Scan(&count, &sum)
	if err != nil {
		tb.Fatal(err)
	}
	return count, sum
}

func countIn(tb testing.TB, db *sql.DB, table Table) int64 {
	tb.Helper()
	var n int64
	if err := db.QueryRow(`SELECT count(*) FROM ONLY ` + table.String()).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestDefaultRows puts rows in the default partition, past and future,
// then checks that maintenance reports them and moves every one into a
// partition of its own, in batches, including into a premade partition
// whose range already had rows in the default.
func TestDefaultRows(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "Pacific/Kiritimati")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	m := newManager(t, db, WithTable(table), WithPremake(1), WithClock(fixedClock(date(2024, 6, 15))))
	if _, err := m.Create(ctx); err != nil {
		t.Fatal(err)
	}
	wantDefault := map[time.Time]int{
		time.Date(2023, 12, 31, 23, 30, 0, 0, time.UTC): 4, // December in UTC, January in Kiritimati
		date(2024, 3, 10): 10,
		date(2024, 8, 20): 5, // future: the next Create premakes August
		date(2024, 9, 1):  1,
	}
	for at, n := range wantDefault {
		for range n {
			if p := unqualified(insertAt(t, db, table, at)); p != "audit_log_default" {
				t.Fatalf("row at %v went to %s, want the default partition", at, p)
			}
		}
	}
	countBefore, sumBefore := checksum(t, db, table)

	a, err := m.Analyze(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a.DefaultRows != 20 || !strings.Contains(strings.Join(a.Recommendations, "\n"), "20 rows are in the default partition") {
		t.Errorf("Analyze: default rows %d, recommendations %q", a.DefaultRows, a.Recommendations)
	}

	var progress int
	m2 := newManager(t, db, WithTable(table), WithPremake(2), WithBatchSize(3), WithClock(fixedClock(date(2024, 7, 10))),
		WithProgress(func(Progress) { progress++ }))
	r, err := m2.Create(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Moved != 20 {
		t.Errorf("moved %d rows, want 20", r.Moved)
	}
	// The ranges with rows, then one partition for each gap between them.
	wantCreated := []string{"audit_log_p20231201", "audit_log_p20240101", "audit_log_p20240301", "audit_log_p20240401", "audit_log_p20240801", "audit_log_p20240901"}
	if !slices.Equal(r.Created, wantCreated) {
		t.Errorf("created %v, want %v", r.Created, wantCreated)
	}
	if progress < 5 { // batches of 3: 10 rows of March alone take 4
		t.Errorf("progress called %d times, want one per batch", progress)
	}
	if n := countIn(t, db, table.Sibling("audit_log_default")); n != 0 {
		t.Errorf("%d rows left in the default partition", n)
	}
	for name, want := range map[string]int64{"audit_log_p20231201": 4, "audit_log_p20240301": 10, "audit_log_p20240801": 5, "audit_log_p20240901": 1} {
		if n := countIn(t, db, table.Sibling(name)); n != want {
			t.Errorf("%s holds %d rows, want %d", name, n, want)
		}
	}
	countAfter, sumAfter := checksum(t, db, table)
	if countAfter != countBefore || sumAfter != sumBefore {
		t.Errorf("rows changed by the move: %d %s, before %d %s", countAfter, sumAfter, countBefore, sumBefore)
	}
	// Idempotent: a second run creates and moves nothing.
	if r, err := m2.Create(ctx); err != nil || len(r.Created) != 0 || r.Moved != 0 {
		t.Errorf("second Create: %+v, %v", r, err)
	}
}

// TestRaceTwoConnections runs maintenance from two pools at once, as two
// instances of an application would.
func TestRaceTwoConnections(t *testing.T) {
	ctx := context.Background()
	db1, db2 := openDB(t, ""), openDB(t, "Pacific/Pago_Pago")
	table := Table{Schema: testdb.Schema(t, db1), Name: "audit_log"}
	insertDefault := func() {
		for _, at := range []time.Time{date(2023, 1, 5), date(2023, 2, 5), date(2024, 1, 5)} {
			insertAt(t, db1, table, at)
		}
	}
	opts := []Option{WithTable(table), WithPremake(3), WithRetention(200 * 24 * time.Hour), WithClock(fixedClock(date(2024, 6, 15)))}
	if _, err := newManager(t, db1, opts...).Create(ctx); err != nil {
		t.Fatal(err)
	}
	insertDefault()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	reports := make(chan *Report, 8)
	for _, db := range []*sql.DB{db1, db2, db1, db2} {
		wg.Go(func() {
			r, err := newManager(t, db, opts...).Maintain(ctx)
			errs <- err
			reports <- r
		})
	}
	wg.Wait()
	close(errs)
	close(reports)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	var moved int64
	var removed int
	for r := range reports {
		moved += r.Moved
		removed += len(r.Removed)
	}
	if moved != 3 || removed != 2 { // 2023-01, 2023-02 moved then expired; 2024-01 moved and kept
		t.Errorf("moved %d, removed %d across the runs; want 3 and 2 (each once)", moved, removed)
	}
	l, err := newManager(t, db2, opts...).List(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	// [2023-03, 2024-01) and [2024-02, 2024-06) are the gaps, filled and
	// kept: their ranges end after the retention's cutoff.
	want := []string{"audit_log_p20230301", "audit_log_p20240101", "audit_log_p20240201", "audit_log_p20240601", "audit_log_p20240701", "audit_log_p20240801",
		"audit_log_p20240901", "audit_log_default"}
	if got := names(l.Partitions); !slices.Equal(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	now := date(2024, 6, 15)
	setup := func(t *testing.T, db *sql.DB, opts ...Option) (Table, *Manager) {
		table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
		opts = append([]Option{WithTable(table), WithPremake(1), WithClock(fixedClock(now))}, opts...)
		m := newManager(t, db, opts...)
		if _, err := newManager(t, db, WithTable(table), WithPremake(1), WithClock(fixedClock(now))).Create(ctx); err != nil {
			t.Fatal(err)
		}
		for mo := date(2023, 1, 10); mo.Before(now); mo = mo.AddDate(0, 1, 0) {
			insertAt(t, db, table, mo)
		}
		if _, err := newManager(t, db, WithTable(table), WithPremake(1), WithClock(fixedClock(now)), WithDefaultPartition(false)).MoveDefault(ctx); err != nil {
			t.Fatal(err)
		}
		return table, m
	}
	// cutoff 2024-03-17: everything ending by then goes, March 2024 stays.
	var wantGone []string
	for mo := date(2023, 1, 1); mo.Before(date(2024, 3, 1)); mo = mo.AddDate(0, 1, 0) {
		wantGone = append(wantGone, PartitionName("audit_log", mo))
	}
	retention := WithRetention(90 * 24 * time.Hour)
	db := openDB(t, "Pacific/Kiritimati")

	t.Run("dry run", func(t *testing.T) {
		table, m := setup(t, db, retention)
		r, err := m.Cleanup(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, rm := range r.Removed {
			got = append(got, rm.Name)
		}
		if !slices.Equal(got, wantGone) || !r.DryRun {
			t.Errorf("dry run lists %v, want %v", got, wantGone)
		}
		l, _ := m.List(ctx, false)
		if len(l.Partitions) != 20 { // 2023-01..2024-07 and the default
			t.Errorf("dry run removed partitions: %d left: %v (table %s)", len(l.Partitions), names(l.Partitions), table)
		}
	})

	for _, tt := range []struct {
		mode       RetentionMode
		noDefault  bool
		wantDetach string
	}{{Drop, false, "plain"}, {Detach, false, "plain"}, {Archive, false, "plain"}, {Drop, true, "concurrently"}, {Archive, true, "concurrently"}} {
		t.Run(fmt.Sprintf("%v/default=%v", tt.mode, !tt.noDefault), func(t *testing.T) {
			archive := testdb.Schema(t, db)
			table, m := setup(t, db, retention, WithRetentionMode(tt.mode), WithArchiveSchema(archive), WithDefaultPartition(!tt.noDefault))
			if tt.noDefault {
				testdb.Exec(t, db, `DROP TABLE `+table.Sibling("audit_log_default").String())
			}
			r, err := m.Cleanup(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Removed) != len(wantGone) {
				t.Fatalf("removed %d, want %d", len(r.Removed), len(wantGone))
			}
			for _, rm := range r.Removed {
				if rm.Detach != tt.wantDetach {
					t.Errorf("%s detached %s, want %s", rm.Name, rm.Detach, tt.wantDetach)
				}
				var inTable, inArchive bool
				db.QueryRow(`SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL`,
					table.Sibling(rm.Name).String(), Table{Schema: archive, Name: rm.Name}.String()).Scan(&inTable, &inArchive)
				want := map[RetentionMode][2]bool{Drop: {false, false}, Detach: {true, false}, Archive: {false, true}}[tt.mode]
				if [2]bool{inTable, inArchive} != want {
					t.Errorf("%v: %s exists in the table's schema %v, in the archive %v", tt.mode, rm.Name, inTable, inArchive)
				}
			}
			l, err := m.List(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(l.Partitions); got[0] != "audit_log_p20240301" {
				t.Errorf("partitions left: %v", got)
			}
		})
	}

	t.Run("never the current partition", func(t *testing.T) {
		for _, at := range []time.Time{now, date(2024, 7, 1), date(2024, 7, 1).Add(-time.Nanosecond)} {
			table, _ := setup(t, db)
			m := newManager(t, db, WithTable(table), WithRetention(time.Nanosecond), WithClock(fixedClock(at)))
			r, err := m.Cleanup(ctx, false)
			if err != nil {
				t.Fatal(err)
			}
			current := PartitionName("audit_log", Monthly.Floor(at))
			for _, rm := range r.Removed {
				if rm.Name == current || rm.To.After(at) {
					t.Errorf("at %v, retention removed %s [%v, %v)", at, rm.Name, rm.From, rm.To)
				}
			}
			if n := countIn(t, db, table.Sibling(current)); n < 0 {
				t.Fatal("unreachable")
			}
		}
	})
}

// TestQuotedNames manages a table whose schema and name need quoting (a
// space, a double quote, a single quote) through every entry point.
func TestQuotedNames(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	schema := `my "odd" schema`
	testdb.Exec(t, db, `CREATE SCHEMA `+Table{Name: schema}.String())
	t.Cleanup(func() { db.Exec(`DROP SCHEMA ` + Table{Name: schema}.String() + ` CASCADE`) })
	table := Table{Schema: schema, Name: `audit log's "x"`}
	now := date(2024, 6, 15)
	m := newManager(t, db, WithTable(table), WithRetention(60*24*time.Hour), WithClock(fixedClock(now)))
	if _, err := m.Create(ctx); err != nil {
		t.Fatal(err)
	}
	insertAt(t, db, table, date(2024, 1, 2))
	insertAt(t, db, table, date(2024, 5, 2))
	r, err := m.Maintain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Moved != 2 || len(r.Removed) != 1 || r.Removed[0].Name != `audit log's "x"_p20240101` {
		t.Errorf("Maintain: %+v", r)
	}
	if _, err := m.Analyze(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := m.List(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	// [2024-02, 2024-05) is the gap between the rows' months, filled.
	if l.Partitions[0].Name != `audit log's "x"_p20240201` || !l.Partitions[0].To.Equal(date(2024, 5, 1)) ||
		l.Partitions[1].Name != `audit log's "x"_p20240501` || *l.Partitions[1].ExactRows != 1 {
		t.Errorf("List: %v", names(l.Partitions))
	}
}

// TestInsertsDuringMaintenance inserts without pause while maintenance
// runs against a long reader that blocks its ACCESS EXCLUSIVE step: no
// insert may wait much longer than the lock timeout, and maintenance
// succeeds once the reader is gone.
func TestInsertsDuringMaintenance(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	now := date(2024, 6, 15)
	const lockTimeout = 200 * time.Millisecond
	if _, err := newManager(t, db, WithTable(table), WithClock(fixedClock(now))).Create(ctx); err != nil {
		t.Fatal(err)
	}
	for mo := date(2023, 1, 10); mo.Before(now); mo = mo.AddDate(0, 1, 0) {
		insertAt(t, db, table, mo)
	}
	if _, err := newManager(t, db, WithTable(table), WithClock(fixedClock(now))).MoveDefault(ctx); err != nil {
		t.Fatal(err)
	}
	insertAt(t, db, table, date(2025, 1, 1)) // in the default, past premake

	// A reader holds ACCESS SHARE on the table for 3s: without the lock
	// timeout, inserts would queue behind maintenance's locks that long.
	reader, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRow(`SELECT count(*) FROM ` + table.String()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(3*time.Second, func() { reader.Rollback() })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var worst time.Duration
	var inserts int
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				if _, err := db.Exec(`INSERT INTO `+table.String()+` ("timestamp", action, status) VALUES ($1, 'write', 'success')`, now); err != nil {
					t.Error(err)
					return
				}
				d := time.Since(t0)
				mu.Lock()
				worst, inserts = max(worst, d), inserts+1
				mu.Unlock()
			}
		})
	}
	m := newManager(t, db, WithTable(table), WithClock(fixedClock(now)), WithRetention(100*24*time.Hour),
		WithLockTimeout(lockTimeout), WithRetries(20))
	r, err := m.Maintain(ctx)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Removed) == 0 || r.Moved != 1 {
		t.Errorf("maintenance did not do its work: %+v", r)
	}
	// The bound: the lock timeout plus scheduling slack (-race, 2 shared cores).
	if limit := lockTimeout + 800*time.Millisecond; worst > limit {
		t.Errorf("an insert waited %v, more than the lock timeout %v allows (%v)", worst, lockTimeout, limit)
	}
	t.Logf("%d inserts, worst %v, maintenance %v", inserts, worst, r.Duration)
}

// TestLockTimeoutGivesUp checks that maintenance blocked for good reports
// ErrLockTimeout after its retries instead of waiting forever.
func TestLockTimeoutGivesUp(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "")
	table := Table{Schema: testdb.Schema(t, db), Name: "audit_log"}
	if _, err := newManager(t, db, WithTable(table), WithClock(fixedClock(date(2024, 6, 15)))).Create(ctx); err != nil {
		t.Fatal(err)
	}
	blocker, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback()
	if _, err := blocker.Exec(`LOCK TABLE ` + table.String() + ` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	m := newManager(t, db, WithTable(table), WithClock(fixedClock(date(2024, 9, 15))), WithLockTimeout(50*time.Millisecond), WithRetries(2))
	_, err = m.Create(ctx)
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Create against a held lock: %v, want ErrLockTimeout", err)
	}
}
