package webui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/sqlclass"
	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/partition"
)

// maxStatements is how many pg_stat_statements rows the Queries page
// lists, and the plan page looks a query id up among: the extension keeps
// 5000 by default.
const maxStatements = 10000

type overviewData struct {
	Summary  *monitor.Summary
	Driver   *Driver
	Latency  *chart
	HitRatio *chart
	Samples  int
	Every    time.Duration
	Full     bool   // the charts cover the whole Window
	Caption  string // what the latency chart's driver series are
}

func (s *server) overview(r *http.Request, c *common) (any, error) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	sum, err := s.mon.Summary(ctx)
	if err != nil {
		return nil, err
	}
	d, err := s.driver()
	if err != nil {
		return nil, err
	}
	samples := s.sampler.snapshot()
	lat, caption := latencyChart(samples, time.Now(), s.cfg.SampleEvery)
	return &overviewData{Summary: sum, Driver: d, Latency: lat, HitRatio: hitRatioChart(samples, time.Now(), s.cfg.SampleEvery),
		Samples: len(samples), Every: s.cfg.SampleEvery, Caption: caption, Full: span(samples, time.Now(), s.cfg.SampleEvery) == Window}, nil
}

type queryRow struct {
	monitor.SlowQuery
	Driver *DriverStatement // the driver's statistics of the same fingerprint
}

type queriesData struct {
	Status     monitor.StatementsStatus
	Rows       []queryRow
	Driver     []DriverStatement
	DriverSeen bool
	Matched    int
}

func (s *server) queries(r *http.Request, c *common) (any, error) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	st, err := s.mon.StatementsStatus(ctx)
	if err != nil {
		return nil, err
	}
	data := &queriesData{Status: st, Rows: []queryRow{}}
	d, err := s.driver()
	if err != nil {
		return nil, err
	}
	byFP := map[string]*DriverStatement{}
	if d != nil {
		data.DriverSeen = true
		data.Driver = d.Statements
		for i := range d.Statements {
			byFP[d.Statements[i].Fingerprint] = &d.Statements[i]
		}
	}
	if !st.Ready {
		return data, nil
	}
	qs, err := s.mon.SlowQueries(ctx, monitor.SlowQueryOptions{OrderByTotal: true, Limit: 200})
	if err != nil {
		return nil, err
	}
	for _, q := range qs {
		row := queryRow{SlowQuery: q}
		if len(byFP) > 0 {
			if ds := byFP[sqlclass.Classify(q.Query).Fingerprint]; ds != nil {
				row.Driver = ds
				data.Matched++
			}
		}
		data.Rows = append(data.Rows, row)
	}
	return data, nil
}

type planNode struct {
	*monitor.PlanNode
	Children []planNode
}

type planData struct {
	Query   monitor.SlowQuery
	Plan    *monitor.Plan
	Tree    planNode
	Refused string // why the guard refused the statement
}

func (s *server) plan(r *http.Request, c *common) (any, error) {
	id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
	if err != nil {
		return nil, &statusError{http.StatusBadRequest, "plan: want ?id= the query id of a statement of the Queries page"}
	}
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	qs, err := s.mon.SlowQueries(ctx, monitor.SlowQueryOptions{Limit: maxStatements})
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(qs, func(q monitor.SlowQuery) bool { return q.QueryID == id })
	if i < 0 {
		return nil, &statusError{http.StatusNotFound, fmt.Sprintf("plan: pg_stat_statements has no statement %d in this database (it may have been evicted or reset): pick one from the Queries page", id)}
	}
	data := &planData{Query: qs[i]}
	// Read-only, always: the dashboard explains what it may run without
	// changing anything; monitor.Explain's guard decides.
	p, err := s.mon.Explain(ctx, qs[i].Query, monitor.ExplainOptions{Timeout: explainTimeout})
	var we *monitor.WriteError
	switch {
	case errors.As(err, &we):
		data.Refused = we.Reason + ": the dashboard explains read-only statements only (auditpg monitor explain --allow-writes runs it, rolled back)"
		return data, nil
	case errors.Is(err, monitor.ErrSyntax), errors.Is(err, monitor.ErrMultipleStatements):
		data.Refused = err.Error()
		return data, nil
	case err != nil:
		return nil, err
	}
	data.Plan = p
	data.Tree = tree(p.Root)
	return data, nil
}

func tree(n *monitor.PlanNode) planNode {
	pn := planNode{PlanNode: n}
	for _, ch := range n.Plans {
		pn.Children = append(pn.Children, tree(ch))
	}
	return pn
}

func (s *server) indexes(r *http.Request, c *common) (any, error) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	return s.mon.Indexes(ctx, true, true)
}

type partitioned struct {
	monitor.PartitionedTable
	Listing  *partition.Listing
	Analysis *partition.Analysis
	Bars     *chart
	// Ahead is the time the partitions cover past now (0: none); Coverage
	// its words.
	Ahead    time.Duration
	Coverage string
	Err      string // why the partitions could not be listed
}

type tablesData struct {
	Tables      []monitor.TableStats
	Partitioned []partitioned
	Skipped     int // partitioned tables past maxPartitioned
	Retention   time.Duration
}

func (s *server) tables(r *http.Request, c *common) (any, error) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	ts, err := s.mon.Tables(ctx)
	if err != nil {
		return nil, err
	}
	ps, err := s.mon.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	data := &tablesData{Tables: ts, Partitioned: []partitioned{}, Retention: s.cfg.Retention}
	now := time.Now()
	for i, pt := range ps {
		if i == maxPartitioned {
			data.Skipped = len(ps) - i
			break
		}
		p := partitioned{PartitionedTable: pt}
		if pt.Strategy != "range" {
			p.Err = "partitioned by " + pt.Strategy + ": only time ranges are listed"
			data.Partitioned = append(data.Partitioned, p)
			continue
		}
		opts := []partition.Option{partition.WithTable(pt.Table)}
		if s.cfg.Retention > 0 {
			opts = append(opts, partition.WithRetention(s.cfg.Retention))
		}
		m, err := partition.New(s.cfg.DB, opts...)
		if err == nil {
			p.Listing, err = m.List(ctx, false)
		}
		if err == nil {
			p.Analysis, err = m.Analyze(ctx)
		}
		if err != nil {
			p.Err = err.Error()
			data.Partitioned = append(data.Partitioned, p)
			continue
		}
		p.Ahead, p.Coverage = coverage(p.Listing, now)
		p.Bars = sizeChart(p.Listing)
		data.Partitioned = append(data.Partitioned, p)
	}
	return data, nil
}

// coverage is how far past now the partitions reach without a gap: the
// time rows can be inserted before they land in the default partition (or
// fail without one).
func coverage(l *partition.Listing, now time.Time) (time.Duration, string) {
	ps := l.Partitions
	i := slices.IndexFunc(ps, func(p partition.Partition) bool { return !p.Default && p.Contains(now) })
	if i < 0 {
		return 0, "no partition holds now: rows go to the default partition (auditpg partition create makes them)"
	}
	end := ps[i].To
	for _, p := range ps[i+1:] {
		if p.Default || end.IsZero() || !p.From.Equal(end) {
			break // a gap, or MAXVALUE: coverage ends there
		}
		end = p.To
	}
	if end.IsZero() {
		return MaxRetention, "no end: the last partition reaches MAXVALUE"
	}
	ahead := end.Sub(now)
	return ahead, fmt.Sprintf("%.1f days ahead of now, to %s", ahead.Hours()/24, end.UTC().Format("2006-01-02 15:04 UTC"))
}

type maintenanceData struct {
	Actions []monitor.MaintenanceAction
	Allowed bool // AllowActions: the page offers to run the plan
	Token   string
	// Ran: the POST's results, what was run.
	Ran     bool
	Results []monitor.MaintenanceResult
	Skipped int // actions posted that the plan no longer calls for
}

func (s *server) maintenance(r *http.Request, c *common) (any, error) {
	ctx, cancel := ctxTimeout(r)
	defer cancel()
	actions, err := s.mon.PlanMaintenance(ctx)
	if err != nil {
		return nil, err
	}
	return &maintenanceData{Actions: actions, Allowed: s.cfg.AllowActions, Token: s.token}, nil
}

// runMaintenance runs, of the plan as it stands now, the statements the
// posted form listed: nothing the operator did not see, and no SQL taken
// from the request.
func (s *server) runMaintenance(r *http.Request, c *common) (any, error) {
	if !s.cfg.AllowActions {
		return nil, &statusError{http.StatusForbidden, "maintenance: actions are off; the dashboard only reads (start auditpg serve with --allow-actions, or mount auditpg.Handler with HandlerAllowActions)"}
	}
	if err := r.ParseForm(); err != nil || !s.checkToken(r) {
		return nil, &statusError{http.StatusForbidden, "maintenance: the form's token is missing or not this dashboard's: reload the Maintenance page and submit it from there"}
	}
	posted := r.PostForm["sql"]
	// What the page was asked to run runs to the end, even if the browser
	// leaves: a REINDEX CONCURRENTLY cancelled half way leaves an index
	// behind.
	ctx := context.WithoutCancel(r.Context())
	plan, err := s.mon.PlanMaintenance(ctx)
	if err != nil {
		return nil, err
	}
	var run []monitor.MaintenanceAction
	for _, a := range plan {
		if slices.Contains(posted, a.SQL) {
			run = append(run, a)
		}
	}
	data := &maintenanceData{Ran: true, Allowed: true, Token: s.token, Skipped: len(posted) - len(run), Results: []monitor.MaintenanceResult{}}
	if len(run) > 0 {
		// A failure is in its result; the page says which.
		data.Results, _ = s.mon.RunMaintenance(ctx, run, nil)
		for _, res := range data.Results {
			s.log.Info("auditpg dashboard: maintenance ran", "sql", res.Action.SQL, "duration", res.Duration, "failed", res.Err != "")
		}
	}
	if data.Actions, err = s.mon.PlanMaintenance(ctx); err != nil {
		return nil, err
	}
	return data, nil
}

type cacheData struct {
	Driver   *Driver
	Reasons  []reasonCount
	HitRatio *chart
}

type reasonCount struct {
	Reason string
	Count  int64
}

func (s *server) cache(r *http.Request, c *common) (any, error) {
	d, err := s.driver()
	if err != nil || d == nil {
		return &cacheData{}, err
	}
	data := &cacheData{Driver: d, HitRatio: hitRatioChart(s.sampler.snapshot(), time.Now(), s.cfg.SampleEvery)}
	if d.Cache != nil {
		for k, v := range d.Cache.Bypasses {
			data.Reasons = append(data.Reasons, reasonCount{k, v})
		}
		slices.SortFunc(data.Reasons, func(a, b reasonCount) int {
			return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
		})
	}
	return data, nil
}
