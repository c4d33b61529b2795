// Package driverstats hands the monitor the auditpg driver's own
// statistics: those of a *sql.DB opened with auditpg in the same process
// (Read), or a snapshot an application served or wrote (Decode, then
// Fixed): the monitor itself works on any *sql.DB and imports no part of
// the driver.
//
//	m, err := monitor.New(db, monitor.WithDriverStats(driverstats.Read))
package driverstats

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"

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
		Calls:  t.Calls(),
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

// Fixed returns a reader for monitor.WithDriverStats that gives s whatever
// the *sql.DB: the statistics of an application read from its
// auditpg.StatsHandler or from a file it wrote, judged beside the server
// the monitor reads.
func Fixed(s *Stats) func(*sql.DB) (monitor.DriverStats, error) {
	return func(*sql.DB) (monitor.DriverStats, error) { return s, nil }
}

// Decode reads one auditpg.Snapshot as JSON (what auditpg.StatsHandler
// serves and Snapshot.WriteJSON writes). A document that is not one (no
// "taken" time) is an error that says so.
func Decode(r io.Reader) (*Stats, error) {
	var s Stats
	dec := json.NewDecoder(r)
	if err := dec.Decode(&s.Snapshot); err != nil {
		return nil, fmt.Errorf("not the JSON of auditpg statistics: %w", err)
	}
	if s.Taken.IsZero() {
		return nil, errors.New(`not the JSON of auditpg statistics: no "taken" time (want what auditpg.StatsHandler serves)`)
	}
	if dec.More() {
		return nil, errors.New("not the JSON of auditpg statistics: more than one JSON document")
	}
	return &s, nil
}
