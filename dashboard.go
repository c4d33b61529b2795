package auditpg

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/auditpg/auditpg/internal/webui"
)

// dashboardConns bounds the connections of the pool Handler reads the
// server through, apart from the application's.
const dashboardConns = 4

// HandlerOption configures Handler.
type HandlerOption func(*webui.Config) error

// HandlerAllowActions lets the dashboard's Maintenance page run the
// maintenance it plans (VACUUM, ANALYZE, REINDEX CONCURRENTLY of invalid
// indexes), from a POST that carries the page's token. Without it the
// dashboard changes nothing.
func HandlerAllowActions() HandlerOption {
	return func(c *webui.Config) error { c.AllowActions = true; return nil }
}

// HandlerRetention sets how long the application keeps partitions, so that
// the Tables page lists those past it (default: none is past it). d from
// 0 to 100 years.
func HandlerRetention(d time.Duration) HandlerOption {
	return func(c *webui.Config) error {
		if d < 0 || d > webui.MaxRetention {
			return fmt.Errorf("HandlerRetention(%v): want 0 (none) to 100 years", d)
		}
		c.Retention = d
		return nil
	}
}

// HandlerSampleEvery sets how often the charts' figures are sampled while
// the dashboard is looked at: 1 s to 10 min, default 30 s. The charts show
// the last hour.
func HandlerSampleEvery(d time.Duration) HandlerOption {
	return func(c *webui.Config) error {
		if d < webui.MinSampleEvery || d > webui.MaxSampleEvery {
			return fmt.Errorf("HandlerSampleEvery(%v): want %v to %v", d, webui.MinSampleEvery, webui.MaxSampleEvery)
		}
		c.SampleEvery = d
		return nil
	}
}

// HandlerLogger sets the logger for what a page could not read and for the
// maintenance it ran (the statements, never argument values).
func HandlerLogger(l *slog.Logger) HandlerOption {
	return func(c *webui.Config) error { c.Logger = l; return nil }
}

// Handler serves the dashboard of `auditpg serve` for db, a *sql.DB opened
// with auditpg, with this application's live driver statistics beside the
// server's: the Queries page shows the driver's fingerprints and their
// percentiles, the Cache page the result cache (hit ratio, bypasses by
// reason, entries, invalidations, the change feed). Pages: Overview (health
// with its reasons), Queries, a statement's Plan (EXPLAIN through the
// monitor's read-only guard), Indexes, Tables and partitions, Maintenance,
// Cache.
//
// It is read-only unless HandlerAllowActions, and its pages name the
// application's statements and tables: mount it behind the application's
// own authentication, at the root of a path (its links are relative):
//
//	mux.Handle("/debug/auditpg/", http.StripPrefix("/debug/auditpg", requireAdmin(auditpg.Handler(db))))
//
// The pages read the server through a pool of their own, on the pgx
// configuration of db's connector: at most 4 connections, closed after a
// minute unused, so that the dashboard's statements neither count in the
// application's statistics nor change the sessions of its pool. A db not
// opened with auditpg is read as it is, and gets the server's pages
// without driver statistics. An option given a value out of bounds makes every request
// answer 500 with the option's error.
func Handler(db *sql.DB, opts ...HandlerOption) http.Handler {
	cfg := webui.Config{DB: db, Source: "this application's database"}
	if c, err := connectorOf(db); err == nil {
		// The pages read the server through a small pool of their own on
		// pgx's connector: their statements then neither count in the
		// application's statistics nor change the sessions of its pool
		// (the monitor's SET LOCAL would make those connections bypass
		// the result cache for good).
		own := sql.OpenDB(c.inner)
		own.SetMaxOpenConns(dashboardConns)
		own.SetMaxIdleConns(dashboardConns)
		own.SetConnMaxIdleTime(time.Minute)
		cfg.DB = own
		cfg.Driver = func() (*webui.Driver, error) {
			s, err := Stats(db)
			if err != nil {
				return nil, err
			}
			return dashboardDriver(&s), nil
		}
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return failing(err)
		}
	}
	h, err := webui.New(cfg)
	if err != nil {
		return failing(err)
	}
	return h
}

func failing(err error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "auditpg dashboard: "+err.Error(), http.StatusInternalServerError)
	})
}

// dashboardDriver converts a Snapshot into the figures the dashboard shows.
func dashboardDriver(s *Snapshot) *webui.Driver {
	t, p := s.Totals, s.Pool
	d := &webui.Driver{
		Since: s.Since, Taken: s.Taken,
		Calls:  t.Calls(),
		Errors: t.Errors, Slow: t.Slow, Queries: t.Queries, Execs: t.Execs,
		ConnectFailures: p.ConnectFailures, PoolWaits: p.WaitCount, PoolWaitDuration: p.WaitDuration,
		OpenConnections: p.OpenConnections, InUse: p.InUse, Idle: p.Idle, MaxOpenConnections: p.MaxOpenConnections,
		Cache:      s.Cache,
		Statements: make([]webui.DriverStatement, 0, len(s.Statements)),
	}
	for _, st := range s.Statements {
		d.Statements = append(d.Statements, webui.DriverStatement{
			Fingerprint: st.Fingerprint, Summary: st.Summary, Operation: st.Operation,
			Calls: st.Calls, Errors: st.Errors, Rows: st.Rows,
			CacheHits: st.CacheHits, CacheMisses: st.CacheMisses, CacheBypasses: st.CacheBypasses,
			Total: st.Total, Mean: st.Mean, P50: st.P50, P95: st.P95, P99: st.P99, Max: st.Max,
		})
	}
	return d
}
