package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/auditpg/auditpg/partition"
)

// Status is a component's health.
type Status string

// Statuses, from best to worst.
const (
	Healthy  Status = "healthy"
	Warning  Status = "warning"
	Critical Status = "critical"
)

func (s Status) rank() int {
	switch s {
	case Warning:
		return 1
	case Critical:
		return 2
	}
	return 0
}

// Health is the status of each component and the worst of them.
type Health struct {
	Overall    Status      `json:"overall"`
	Components []Component `json:"components"`
}

// Component is the health of one part, with the reasons for its status.
type Component struct {
	Name    string   `json:"name"`
	Status  Status   `json:"status"`
	Reasons []string `json:"reasons"`
}

// componentBuilder accumulates the reasons of one component.
type componentBuilder struct{ c Component }

func (b *componentBuilder) flag(s Status, format string, args ...any) {
	if s.rank() > b.c.Status.rank() {
		b.c.Status = s
	}
	b.c.Reasons = append(b.c.Reasons, fmt.Sprintf(format, args...))
}

// manyPartitions: more leaf partitions than this make the partitions
// component a warning: the count partition analyze advises on.
const manyPartitions = partition.ManyPartitions

// dotted names a table for a message: schema.name, unquoted.
func dotted(t Table) string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Health runs the summary and returns its health status.
func (m *Monitor) Health(ctx context.Context) (Health, error) {
	s, err := m.Summary(ctx)
	if err != nil {
		return Health{}, err
	}
	return s.Health, nil
}

// health judges a summary against the thresholds.
func (m *Monitor) health(s *Summary) Health {
	th := m.th
	var h Health
	add := func(name string, judge func(b *componentBuilder)) {
		b := &componentBuilder{c: Component{Name: name, Status: Healthy}}
		judge(b)
		if len(b.c.Reasons) == 0 {
			b.c.Reasons = []string{"nothing to report"}
		}
		h.Components = append(h.Components, b.c)
	}

	add("connections", func(b *componentBuilder) {
		a := s.Activity
		used := ratio(float64(a.Total), float64(a.MaxConnections))
		switch {
		case used >= th.ConnectionsCritical:
			b.flag(Critical, "%d of %d connections in use (critical at %.0f%%)", a.Total, a.MaxConnections, 100*th.ConnectionsCritical)
		case used >= th.ConnectionsWarning:
			b.flag(Warning, "%d of %d connections in use (warning at %.0f%%)", a.Total, a.MaxConnections, 100*th.ConnectionsWarning)
		default:
			b.flag(Healthy, "%d of %d connections in use", a.Total, a.MaxConnections)
		}
		if n := a.Connections["idle in transaction"] + a.Connections["idle in transaction (aborted)"]; n > 0 {
			b.flag(Healthy, "%d connections idle in a transaction", n)
		}
	})
	add("queries", func(b *componentBuilder) {
		for _, q := range s.Activity.LongRunning {
			age := max(q.QueryAge, q.XactAge)
			what := "query running"
			if q.State != "active" {
				what = "transaction open (" + q.State + ")"
			}
			if age >= th.LongQueryCritical {
				b.flag(Critical, "pid %d: %s for %s (critical at %s)", q.PID, what, age.Round(time.Second), th.LongQueryCritical)
			} else {
				b.flag(Warning, "pid %d: %s for %s (warning at %s)", q.PID, what, age.Round(time.Second), th.LongQueryWarning)
			}
		}
		for _, q := range s.Activity.Blocked {
			b.flag(Warning, "pid %d waits for a lock held by pid %v for %s", q.PID, q.BlockedBy, q.QueryAge.Round(time.Second))
		}
	})
	add("statements", func(b *componentBuilder) {
		if !s.Statements.Ready {
			for _, a := range s.Statements.Advice {
				b.flag(Warning, "pg_stat_statements: %s", a)
			}
			return
		}
		n := len(s.SlowQueries)
		if n >= th.SlowQueriesWarning {
			b.flag(Warning, "%d statements with a mean time of %s or more (warning at %d)", n, th.SlowQueryMean, th.SlowQueriesWarning)
		} else if n > 0 {
			b.flag(Healthy, "%d statements with a mean time of %s or more (warning at %d)", n, th.SlowQueryMean, th.SlowQueriesWarning)
		}
	})
	add("indexes", func(b *componentBuilder) {
		ix := s.Indexes
		for _, v := range ix.Invalid {
			b.flag(Warning, "invalid index %s: %s", dotted(v.Table.Sibling(v.Index)), v.ReindexSQL)
		}
		since := " since the statistics began (never reset)"
		if r := s.Server.StatsReset; r != nil {
			since = " since the statistics were reset on " + r.UTC().Format(time.DateTime) + " UTC"
		}
		for _, u := range ix.Unused {
			b.flag(Warning, "unused index %s on %s (%s, %d scans%s)", u.Index, dotted(u.Table), formatBytes(roundMB(float64(u.Bytes))), u.Scans, since)
		}
		for _, r := range ix.Redundant {
			b.flag(Warning, "index %s is covered by %s", dotted(r.Table.Sibling(r.Index)), r.CoveredBy)
		}
		for _, t := range ix.SeqScans {
			b.flag(Warning, "table %s (%d rows) is read by sequential scans %.0f%% of the time", dotted(t.Table), t.LiveRows, 100*(1-t.IndexShare))
		}
	})
	add("tables", func(b *componentBuilder) {
		for _, a := range s.Maintenance {
			if a.Kind == ActionVacuum || a.Kind == ActionAnalyze { // indexes are judged above
				b.flag(Warning, "%s needs %s: %s", dotted(a.Table), a.Kind, a.Reason)
			}
		}
	})
	add("cache", func(b *componentBuilder) {
		judge := func(what string, r float64, blocks int64) {
			switch {
			case blocks < 1000:
				b.flag(Healthy, "%s hit ratio not judged: only %d blocks read", what, blocks)
			case r < th.CacheHitCritical:
				b.flag(Critical, "%s hit ratio %.2f%% (critical below %.0f%%)", what, 100*r, 100*th.CacheHitCritical)
			case r < th.CacheHitWarning:
				b.flag(Warning, "%s hit ratio %.2f%% (warning below %.0f%%)", what, 100*r, 100*th.CacheHitWarning)
			default:
				b.flag(Healthy, "%s hit ratio %.2f%%", what, 100*r)
			}
		}
		judge("table", s.CacheHit.Table, s.CacheHit.TableBlocks)
		judge("index", s.CacheHit.Index, s.CacheHit.IndexBlocks)
	})
	add("sequences", func(b *componentBuilder) {
		for _, q := range s.Sequences {
			switch {
			case q.Used >= th.SequenceCritical:
				b.flag(Critical, "sequence %s has used %.1f%% of its range (limit %d)", dotted(q.Sequence), 100*q.Used, q.Limit)
			case q.Used >= th.SequenceWarning:
				b.flag(Warning, "sequence %s has used %.1f%% of its range (limit %d)", dotted(q.Sequence), 100*q.Used, q.Limit)
			}
		}
	})
	add("wraparound", func(b *componentBuilder) {
		w := s.Wraparound
		switch {
		case w.Age >= th.WraparoundCritical:
			b.flag(Critical, "transaction ID age %d (critical at %d; writes stop at 2^31)", w.Age, th.WraparoundCritical)
		case w.Age >= th.WraparoundWarning:
			b.flag(Warning, "transaction ID age %d (warning at %d)", w.Age, th.WraparoundWarning)
		default:
			b.flag(Healthy, "transaction ID age %d", w.Age)
		}
	})
	if len(s.Partitions) > 0 {
		add("partitions", func(b *componentBuilder) {
			for _, p := range s.Partitions {
				healthy := true
				if p.DefaultRows > 0 {
					healthy = false
					b.flag(Warning, "%s: %d rows in the default partition %s: create the partitions for their range", dotted(p.Table), p.DefaultRows, dotted(*p.Default))
				}
				if p.Partitions > manyPartitions {
					healthy = false
					b.flag(Warning, "%s: %d partitions (more than %d): planning and locking slow down with each one; see auditpg partition analyze for what to remove", dotted(p.Table), p.Partitions, manyPartitions)
				}
				if healthy {
					b.flag(Healthy, "%s: %d partitions", dotted(p.Table), p.Partitions)
				}
			}
		})
	}
	if len(s.ReplicationSlots) > 0 {
		add("replication slots", func(b *componentBuilder) { judgeSlots(b, s.ReplicationSlots) })
	}
	if s.Driver != nil {
		d := s.Driver.DriverHealth()
		add("driver", func(b *componentBuilder) {
			if d.Errors > 0 {
				b.flag(Warning, "%d of %d calls failed", d.Errors, d.Calls)
			}
			if d.ConnectFailures > 0 {
				b.flag(Warning, "%d failed connection attempts", d.ConnectFailures)
			}
			if d.PoolWaits > 0 {
				b.flag(Warning, "%d waits for a free connection (%s in all): the pool is too small", d.PoolWaits, d.PoolWaitDuration)
			}
			if reads := d.CacheHits + d.CacheMisses; reads >= 100 && d.CacheHitRatio < th.ResultCacheHitWarning {
				b.flag(Warning, "result cache hit ratio %.1f%% over %d cacheable reads (warning below %.0f%%)", 100*d.CacheHitRatio, reads, 100*th.ResultCacheHitWarning)
			}
			if d.Slow > 0 {
				b.flag(Healthy, "%d slow calls seen by the driver", d.Slow)
			}
		})
	}
	h.Overall = Healthy
	for _, c := range h.Components {
		if c.Status.rank() > h.Overall.rank() {
			h.Overall = c.Status
		}
	}
	return h
}
