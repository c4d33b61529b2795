// Package driverstats hands the monitor the auditpg driver's own
// statistics, for a *sql.DB opened with auditpg: the monitor itself works
// on any *sql.DB and imports no part of the driver.
//
//	m, err := monitor.New(db, monitor.WithDriverStats(driverstats.Read))
package driverstats

import (
	"database/sql"
	"errors"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/monitor"
)

// Stats are the auditpg driver's statistics as the monitor's summary
// carries them: they marshal as the auditpg.Snapshot they embed.
type Stats struct{ auditpg.Snapshot }

// DriverHealth returns the figures the monitor's health status judges.
func (d *Stats) DriverHealth() monitor.DriverHealth {
	t, p := d.Totals, d.Pool
	h := monitor.DriverHealth{
		Calls:  t.Queries + t.Execs + t.Prepares + t.Begins + t.Commits + t.Rollbacks + t.Pings,
		Errors: t.Errors, Slow: t.Slow,
		ConnectFailures: p.ConnectFailures, PoolWaits: p.WaitCount, PoolWaitDuration: p.WaitDuration,
	}
	if c := d.Cache; c != nil {
		h.CacheHits, h.CacheMisses, h.CacheHitRatio = c.Hits, c.Misses, c.HitRatio
	}
	return h
}

// Read reads the statistics of a *sql.DB opened with auditpg, and nothing
// (nil, nil) for one opened with another driver: pass it to
// monitor.WithDriverStats.
func Read(db *sql.DB) (monitor.DriverStats, error) {
	snap, err := auditpg.Stats(db)
	if errors.Is(err, auditpg.ErrNotAuditpg) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &Stats{snap}, nil
}
