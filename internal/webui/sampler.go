package webui

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/auditpg/auditpg/monitor"
)

// sample is one reading of the figures the charts draw. The counters are
// cumulative, as the server and the driver keep them; the charts draw the
// change from one sample to the next.
type sample struct {
	At time.Time
	// Statements: pg_stat_statements could be read; Calls and Total are
	// its sums over this database's statements.
	Statements bool
	Calls      int64
	Total      time.Duration
	// BufHits and BufBlocks are the buffer cache's hits and blocks read
	// (tables and indexes).
	BufHits, BufBlocks int64
	// Top are the driver's busiest fingerprints, nil outside the application.
	Top []DriverStatement
	// Cache: the application's result cache is on; CacheHits and
	// CacheMisses its counts.
	Cache                  bool
	CacheHits, CacheMisses int64
}

// sampleTimeout bounds a sample's reads; the ticker skips the ticks a
// slow sample overlaps.
const sampleTimeout = 10 * time.Second

// topFingerprints is how many of the driver's fingerprints a sample keeps.
const topFingerprints = 5

// sampler keeps a bounded ring of samples, taken every interval while
// pages are being looked at: it starts at the first request and stops once
// no page was requested for a whole window, so that a handler mounted and
// never opened costs nothing.
type sampler struct {
	every, window time.Duration
	take          func(context.Context) (sample, error)

	mu        sync.Mutex
	ring      []sample // oldest first, at most cap
	cap       int
	lastTouch time.Time
	running   bool
	lastErr   error
}

func newSampler(every, window time.Duration, take func(context.Context) (sample, error)) *sampler {
	return &sampler{every: every, window: window, take: take, cap: int(window/every) + 1}
}

// touch notes a request and starts sampling if it is not running.
func (s *sampler) touch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastTouch = time.Now()
	if !s.running {
		s.running = true
		go s.loop()
	}
}

func (s *sampler) loop() {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), max(s.every, sampleTimeout))
		smp, err := s.take(ctx)
		cancel()
		s.mu.Lock()
		s.lastErr = err
		if err == nil {
			if len(s.ring) == s.cap {
				s.ring = slices.Delete(s.ring, 0, 1)
			}
			s.ring = append(s.ring, smp)
		}
		idle := time.Since(s.lastTouch) > s.window
		if idle || errors.Is(err, errClosed) {
			s.running = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		<-t.C
	}
}

// errClosed ends sampling: the database was closed.
var errClosed = errors.New("webui: the database is closed")

// snapshot returns the samples of the last window, oldest first.
func (s *sampler) snapshot() []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := time.Now().Add(-s.window)
	i := slices.IndexFunc(s.ring, func(x sample) bool { return !x.At.Before(from) })
	if i < 0 {
		return nil
	}
	return slices.Clone(s.ring[i:])
}

// sample reads the figures of one sample.
func (s *server) sample(ctx context.Context) (sample, error) {
	smp := sample{At: time.Now()}
	if err := s.cfg.DB.PingContext(ctx); err != nil && err.Error() == "sql: database is closed" {
		return smp, errClosed
	}
	ch, err := s.mon.CacheHitRatio(ctx)
	if err != nil {
		return smp, err
	}
	smp.BufHits = int64(math.Round(ch.Table*float64(ch.TableBlocks) + ch.Index*float64(ch.IndexBlocks)))
	smp.BufBlocks = ch.TableBlocks + ch.IndexBlocks
	qs, err := s.mon.SlowQueries(ctx, monitor.SlowQueryOptions{Limit: maxStatements})
	switch {
	case errors.Is(err, monitor.ErrStatementsUnavailable):
	case err != nil:
		return smp, err
	default:
		smp.Statements = true
		for _, q := range qs {
			smp.Calls += q.Calls
			smp.Total += q.Total
		}
	}
	d, err := s.driver()
	if err != nil {
		return smp, err
	}
	if d != nil {
		top := slices.Clone(d.Statements)
		slices.SortStableFunc(top, func(a, b DriverStatement) int { return cmp.Compare(b.Calls, a.Calls) })
		smp.Top = top[:min(len(top), topFingerprints)]
		if c := d.Cache; c != nil {
			smp.Cache, smp.CacheHits, smp.CacheMisses = true, c.Hits, c.Misses
		}
	}
	return smp, nil
}
