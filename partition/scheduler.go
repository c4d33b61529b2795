package partition

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Run is the record of one scheduled maintenance.
type Run struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	// Skipped is true when another session (another instance of the
	// application) held the table's maintenance lock: it ran there.
	Skipped bool `json:"skipped"`
	// Report is what the run did (created, moved, removed); nil if skipped.
	Report *Report `json:"report,omitempty"`
	// Err is the run's error, nil on success; Error is its text, for JSON.
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
}

// Scheduler runs a Manager's maintenance every interval (default daily) in
// the background. Across any number of processes managing the same table,
// one run at a time does the work: each takes pg_try_advisory_lock on a
// connection of its own, and the others record a skipped run.
type Scheduler struct {
	m     *Manager
	every time.Duration
	onRun func(Run)

	mu     sync.Mutex
	last   *Run
	cancel context.CancelFunc
	done   chan struct{}
}

// SchedulerOption configures a Scheduler.
type SchedulerOption func(*Scheduler)

// Every sets the time between runs (default 24h; values <= 0 keep it).
func Every(d time.Duration) SchedulerOption {
	return func(s *Scheduler) {
		if d > 0 {
			s.every = d
		}
	}
}

// OnRun sets a callback called after every run, skipped or not, with its
// record: the place to export metrics or alert on Err.
func OnRun(f func(Run)) SchedulerOption { return func(s *Scheduler) { s.onRun = f } }

// NewScheduler returns a stopped scheduler of m's maintenance.
func NewScheduler(m *Manager, opts ...SchedulerOption) *Scheduler {
	s := &Scheduler{m: m, every: 24 * time.Hour, onRun: func(Run) {}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Start runs maintenance now and then every interval, until ctx ends or
// Stop is called. Starting a started scheduler does nothing.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.loop(ctx, s.done)
}

// Stop cancels the run in progress, if any (every step of it is a
// transaction, so a cancelled step changes nothing), and returns once the
// scheduler's goroutine has ended.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Last returns the record of the last run, and false before the first.
func (s *Scheduler) Last() (Run, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Run{}, false
	}
	return *s.last, true
}

func (s *Scheduler) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.RunOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce runs one maintenance now, unless another session is running one,
// records it and returns its record.
func (s *Scheduler) RunOnce(ctx context.Context) Run {
	run := Run{Started: time.Now()}
	r, err := s.m.locked(ctx, false, func(m *Manager, r *Report) error { return m.maintain(ctx, r) })
	run.Duration = time.Since(run.Started)
	switch {
	case errors.Is(err, ErrBusy):
		run.Skipped = true
		s.m.cfg.logger.InfoContext(ctx, "partition: maintenance skipped: another session is running it", "table", s.m.cfg.table.String())
	case err != nil && ctx.Err() != nil:
		run.Report, run.Err = r, err
		s.m.cfg.logger.InfoContext(ctx, "partition: maintenance stopped", "table", s.m.cfg.table.String(), "err", err)
	case err != nil:
		run.Report, run.Err = r, err
		s.m.cfg.logger.ErrorContext(ctx, "partition: maintenance failed", "table", s.m.cfg.table.String(), "err", err)
	default:
		run.Report = r
		s.m.cfg.logger.InfoContext(ctx, "partition: maintenance done", "table", s.m.cfg.table.String(),
			"created", len(r.Created), "moved", r.Moved, "removed", len(r.Removed), "duration", run.Duration)
	}
	if run.Err != nil {
		run.Error = run.Err.Error()
	}
	s.mu.Lock()
	s.last = &run
	s.mu.Unlock()
	s.onRun(run)
	return run
}
