package driverstats_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/monitor/driverstats"
	_ "github.com/jackc/pgx/v5/stdlib"
)

var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// TestRead: a *sql.DB opened with auditpg gives its statistics, one opened
// with another driver gives none and no error.
func TestRead(t *testing.T) {
	db := testdb.Open(t, "auditpg", testDSN)
	testdb.Exec(t, db, `SELECT 1`)
	s, err := driverstats.Read(db)
	if err != nil || s == nil || s.DriverHealth().Calls < 1 {
		t.Fatalf("Read(auditpg db) = %v, %v; want the driver's statistics with its calls", s, err)
	}
	if s, err := driverstats.Read(testdb.Open(t, "pgx", testDSN)); s != nil || err != nil {
		t.Fatalf("Read(pgx db) = %v, %v; want nothing and no error", s, err)
	}
}

// TestDecodeFixed: the JSON an application writes decodes into the same
// statistics, which Fixed hands to a Monitor on any *sql.DB; what is not
// that JSON is refused with an error that says so.
func TestDecodeFixed(t *testing.T) {
	ctx := context.Background()
	adb := testdb.Open(t, "auditpg", testDSN)
	testdb.Exec(t, adb, `SELECT 1`)
	if _, err := adb.ExecContext(ctx, `SELECT 1/0`); err == nil {
		t.Fatal("1/0 did not fail")
	}
	snap, err := auditpg.Stats(adb)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := snap.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	s, err := driverstats.Decode(&buf)
	if err != nil || !reflect.DeepEqual(s.Snapshot, snap) {
		t.Fatalf("Decode: %v\n%+v\nwant %+v", err, s, snap)
	}

	// A Monitor on a pgx *sql.DB judges the application's figures.
	m, err := monitor.New(testdb.Open(t, "pgx", testDSN), monitor.WithDriverStats(driverstats.Fixed(s)))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := m.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Driver != s {
		t.Errorf("summary driver = %v, want the decoded statistics", sum.Driver)
	}
	found := false
	for _, c := range sum.Health.Components {
		if c.Name == "driver" {
			found = c.Status == monitor.Warning && strings.Contains(strings.Join(c.Reasons, ";"), "calls failed")
		}
	}
	if !found {
		t.Errorf("health %+v: want a driver warning for the failed call", sum.Health)
	}

	for _, bad := range []string{``, `<html>`, `{"overall": "healthy"}`, `[1]`} {
		if _, err := driverstats.Decode(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "not the JSON of auditpg statistics") {
			t.Errorf("Decode(%.20q): err = %v, want one that says it is not auditpg's statistics", bad, err)
		}
	}
	var two bytes.Buffer
	snap.WriteJSON(&two)
	snap.WriteJSON(&two)
	if _, err := driverstats.Decode(&two); err == nil || !strings.Contains(err.Error(), "more than one") {
		t.Errorf("Decode of two snapshots: err = %v", err)
	}
}

// TestSummaryInProcess: a Monitor on a *sql.DB opened with auditpg, given
// WithDriverStats(Read), carries the driver's statistics and judges them;
// without the option, or on another driver's *sql.DB, there are none.
func TestSummaryInProcess(t *testing.T) {
	ctx := context.Background()
	adb := testdb.Open(t, "auditpg", testDSN)
	testdb.Exec(t, adb, `SELECT 1`)
	summary := func(db *sql.DB, opts ...monitor.Option) *monitor.Summary {
		t.Helper()
		m, err := monitor.New(db, opts...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := m.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	hasDriver := func(s *monitor.Summary) bool {
		for _, c := range s.Health.Components {
			if c.Name == "driver" {
				return true
			}
		}
		return false
	}
	s := summary(adb, monitor.WithDriverStats(driverstats.Read))
	if d, ok := s.Driver.(*driverstats.Stats); !ok || d.Totals.Queries+d.Totals.Execs == 0 || !hasDriver(s) {
		t.Errorf("auditpg summary: driver = %+v, want its statistics and a driver component", s.Driver)
	}
	if s := summary(adb); s.Driver != nil || hasDriver(s) {
		t.Errorf("summary without WithDriverStats: driver = %+v; want none", s.Driver)
	}
	if s := summary(testdb.Open(t, "pgx", testDSN), monitor.WithDriverStats(driverstats.Read)); s.Driver != nil {
		t.Errorf("pgx summary with WithDriverStats: driver = %+v; want none", s.Driver)
	}
}

// BenchmarkSummary measures one full summary report through auditpg, with
// the driver's statistics, beside bare pgx in the same run.
func BenchmarkSummary(b *testing.B) {
	ctx := context.Background()
	for _, bc := range []struct {
		name   string
		driver string
		opts   []monitor.Option
	}{{"driver=pgx", "pgx", nil}, {"driver=auditpg", "auditpg", []monitor.Option{monitor.WithDriverStats(driverstats.Read)}}} {
		m, err := monitor.New(testdb.Open(b, bc.driver, testDSN), bc.opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Summary(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Example gives a Monitor the driver's statistics; db is opened with
// sql.Open("auditpg", dsn).
func Example() {
	db, err := sql.Open("auditpg", os.Getenv("DATABASE_URL"))
	if err != nil {
		return
	}
	defer db.Close()
	m, err := monitor.New(db, monitor.WithDriverStats(driverstats.Read))
	if err != nil {
		return
	}
	summary, err := m.Summary(context.Background())
	if err == nil && summary.Driver != nil {
		_ = summary.Driver.DriverHealth().Calls // the driver's own figures beside the server's
	}
}
