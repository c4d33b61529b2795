package driverstats_test

import (
	"context"
	"database/sql"
	"os"
	"testing"

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
