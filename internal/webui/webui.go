package webui

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/resultcache"
	"github.com/auditpg/auditpg/monitor"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Bounds of Config's figures.
const (
	DefaultSampleEvery = 30 * time.Second
	MinSampleEvery     = time.Second
	MaxSampleEvery     = 10 * time.Minute
	// Window is the time the charts cover.
	Window = time.Hour
	// MaxRetention bounds Config.Retention: a century.
	MaxRetention = 100 * 365 * 24 * time.Hour
	// maxPartitioned bounds the partitioned tables the Tables page lists
	// partitions of, one List and one Analyze each.
	maxPartitioned = 20
	// explainTimeout is the statement_timeout of the plan page's EXPLAIN.
	explainTimeout = 10 * time.Second
)

// Config is what the dashboard shows and may do.
type Config struct {
	// DB is the database the pages read, through the monitor and partition
	// packages (any PostgreSQL driver).
	DB *sql.DB
	// Source labels the database in the pages' header (for the CLI:
	// host:port/database as user, never a password). Empty: the database
	// name the server reports.
	Source string
	// Driver reads the application's own driver statistics, nil when the
	// dashboard runs outside the application (the CLI): the Queries page
	// then has no driver fingerprints and the Cache page says how to see
	// the application's cache.
	Driver func() (*Driver, error)
	// AllowActions lets the Maintenance page run its plan (a POST carrying
	// the page's token); without it the dashboard changes nothing.
	AllowActions bool
	// Retention is how long partitions are kept, for the Tables page's
	// report of the partitions past it (0: none is past it).
	Retention time.Duration
	// SampleEvery is how often the charts' figures are sampled (default
	// 30 s, MinSampleEvery to MaxSampleEvery); the charts cover Window.
	SampleEvery time.Duration
	// AllowedHosts, when not empty, are the only Host header names served
	// (without port), so that a page of another site cannot reach a
	// loopback dashboard through DNS rebinding.
	AllowedHosts []string
	// Metrics, when not nil, is served at /metrics: the Prometheus
	// metrics handler.
	Metrics http.Handler
	// Logger receives what a page could not read (warnings); nil discards.
	Logger *slog.Logger
}

// Check returns an error saying which figure of c is out of bounds.
func (c *Config) Check() error {
	switch {
	case c.DB == nil:
		return errors.New("webui: no database (Config.DB is nil)")
	case c.SampleEvery != 0 && (c.SampleEvery < MinSampleEvery || c.SampleEvery > MaxSampleEvery):
		return fmt.Errorf("sample interval %v: want %v to %v", c.SampleEvery, MinSampleEvery, MaxSampleEvery)
	case c.Retention < 0 || c.Retention > MaxRetention:
		return fmt.Errorf("retention %v: want 0 (none) to 100 years", c.Retention)
	}
	return nil
}

// Driver is what the dashboard shows of the application's driver
// statistics (auditpg.Snapshot, converted by the root package, which this
// package cannot import).
type Driver struct {
	Since, Taken time.Time
	// Calls counts the calls of every kind, Errors those that failed, Slow
	// those past the slow-query threshold.
	Calls, Errors, Slow int64
	Queries, Execs      int64
	ConnectFailures     int64
	PoolWaits           int64
	PoolWaitDuration    time.Duration
	OpenConnections     int
	InUse, Idle         int
	MaxOpenConnections  int
	Statements          []DriverStatement
	// Cache is nil when the application's result cache is off.
	Cache *resultcache.Stats
}

// DriverStatement is one fingerprint of the driver's statistics.
type DriverStatement struct {
	Fingerprint, Summary, Operation       string
	Calls, Errors, Rows                   int64
	CacheHits, CacheMisses, CacheBypasses int64
	Total, Mean, P50, P95, P99, Max       time.Duration
}

// DriverHealth gives the monitor's health status the figures it judges,
// as monitor/driverstats does for an auditpg.Snapshot.
func (d *Driver) DriverHealth() monitor.DriverHealth {
	h := monitor.DriverHealth{
		Calls: d.Calls, Errors: d.Errors, Slow: d.Slow,
		ConnectFailures: d.ConnectFailures, PoolWaits: d.PoolWaits, PoolWaitDuration: d.PoolWaitDuration,
	}
	if c := d.Cache; c != nil {
		h.CacheHits, h.CacheMisses, h.CacheHitRatio = c.Hits, c.Misses, c.HitRatio
	}
	return h
}

// server is the dashboard of one Config.
type server struct {
	cfg     Config
	mon     *monitor.Monitor
	pages   map[string]*template.Template
	token   string // the maintenance form's token: random, for this handler's life
	sampler *sampler
	log     *slog.Logger
}

// New returns the dashboard's handler, or an error saying which figure of
// cfg is out of bounds. Mount it at the root of a path (links are
// relative): mux.Handle("/db/", http.StripPrefix("/db", h)).
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.SampleEvery == 0 {
		cfg.SampleEvery = DefaultSampleEvery
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []monitor.Option{monitor.WithLogger(log)}
	if cfg.Driver != nil {
		read := cfg.Driver
		opts = append(opts, monitor.WithDriverStats(func(*sql.DB) (monitor.DriverStats, error) {
			d, err := read()
			if err != nil || d == nil {
				return nil, err
			}
			return d, nil
		}))
	}
	mon, err := monitor.New(cfg.DB, opts...)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	var tok [32]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, mon: mon, pages: pages, token: hex.EncodeToString(tok[:]), log: log}
	s.sampler = newSampler(cfg.SampleEvery, Window, s.sample)

	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", assets(http.FileServerFS(static))))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "static/favicon.svg", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /{$}", s.page("overview", s.overview))
	mux.HandleFunc("GET /queries", s.page("queries", s.queries))
	mux.HandleFunc("GET /plan", s.page("plan", s.plan))
	mux.HandleFunc("GET /indexes", s.page("indexes", s.indexes))
	mux.HandleFunc("GET /tables", s.page("tables", s.tables))
	mux.HandleFunc("GET /maintenance", s.page("maintenance", s.maintenance))
	mux.HandleFunc("POST /maintenance", s.page("maintenance", s.runMaintenance))
	mux.HandleFunc("GET /cache", s.page("cache", s.cache))
	// The Prometheus metrics handler is mounted here when the caller gives
	// one (Config.Metrics): `auditpg serve` passes it.
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics)
	}
	return s.guard(mux), nil
}

// guard refuses requests for hosts not allowed and sets the headers every
// answer carries.
func (s *server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.cfg.AllowedHosts) > 0 && !hostAllowed(r.Host, s.cfg.AllowedHosts) {
			http.Error(w, "auditpg dashboard: host "+r.Host+" is not served here: open it by the address it listens on", http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func hostAllowed(host string, allowed []string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	for _, a := range allowed {
		if strings.EqualFold(host, a) {
			return true
		}
	}
	return false
}

// assets may be cached: they hold no data, only the program's own files.
func assets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// common is what every page's layout shows.
type common struct {
	Title     string
	Nav       string
	Source    string
	Actions   bool
	HasDriver bool
	Taken     time.Time
	Error     string // a failure of the page's main read, shown instead
}

// statusError is an error with the HTTP status to answer with.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

// page wraps a page's loader: it starts the sampler, renders the page's
// template with the loader's data, and answers an error with its status
// (500 by default), the page's layout and what went wrong.
func (s *server) page(name string, load func(r *http.Request, c *common) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.sampler.touch()
		c := &common{Nav: name, Title: titles[name], Source: s.cfg.Source, Actions: s.cfg.AllowActions,
			HasDriver: s.cfg.Driver != nil, Taken: time.Now().UTC()}
		data, err := load(r, c)
		code := http.StatusOK
		if err != nil {
			code = http.StatusInternalServerError
			var se *statusError
			if errors.As(err, &se) {
				code = se.code
			} else {
				s.log.Warn("auditpg dashboard: a page failed", "page", name, "error", err)
			}
			c.Error = err.Error()
			data = nil
		}
		var buf bytes.Buffer
		if err := s.pages[name].ExecuteTemplate(&buf, "layout", struct {
			C *common
			D any
		}{c, data}); err != nil {
			s.log.Warn("auditpg dashboard: a page did not render", "page", name, "error", err)
			http.Error(w, "auditpg dashboard: the page did not render: "+err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		w.Write(buf.Bytes()) // a failed write is the client's gone
	}
}

var titles = map[string]string{
	"overview": "Overview", "queries": "Queries", "plan": "Plan", "indexes": "Indexes",
	"tables": "Tables and partitions", "maintenance": "Maintenance", "cache": "Cache",
}

// checkToken says whether the form's token is this handler's.
func (s *server) checkToken(r *http.Request) bool {
	got := r.PostFormValue("token")
	return len(got) == len(s.token) && subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) == 1
}

// driver reads the application's statistics, nil outside the application.
func (s *server) driver() (*Driver, error) {
	if s.cfg.Driver == nil {
		return nil, nil
	}
	return s.cfg.Driver()
}

// ctxTimeout bounds a page's reads.
func ctxTimeout(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), 60*time.Second)
}
