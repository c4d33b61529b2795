package monitor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Maintenance action kinds.
const (
	ActionVacuum  = "vacuum"  // VACUUM (ANALYZE) a table past the dead-tuple ratio
	ActionAnalyze = "analyze" // ANALYZE a table not analyzed recently
	ActionReindex = "reindex" // REINDEX INDEX CONCURRENTLY an invalid index
	// ActionDropLeftover drops the transient index a failed REINDEX
	// CONCURRENTLY leaves behind (name suffixed _ccnew or _ccold), the
	// recovery the PostgreSQL documentation prescribes; nothing else is
	// ever dropped.
	ActionDropLeftover = "drop_leftover"
)

// reindexLeftover matches the names of the transient indexes of REINDEX
// CONCURRENTLY.
var reindexLeftover = regexp.MustCompile(`_cc(new|old)[0-9]*$`)

// MaintenanceAction is one statement the maintenance plan calls for. Only
// invalid indexes are ever reindexed; unused ones are reported, not touched.
type MaintenanceAction struct {
	Kind string `json:"kind"`
	// Table is the table vacuumed or analyzed, or the table of the index.
	Table Table `json:"table"`
	// Index is the index reindexed or dropped (in the table's schema), ""
	// for a vacuum or analyze.
	Index  string `json:"index,omitempty"`
	SQL    string `json:"sql"`
	Reason string `json:"reason"`
}

// statement rebuilds the action's SQL from its kind and names, so that
// RunMaintenance never executes text it did not build.
func (a MaintenanceAction) statement() (string, error) {
	if a.Table.Name == "" {
		return "", fmt.Errorf("monitor: %s action without a table", a.Kind)
	}
	table, index := a.Table.String(), a.Table.Sibling(a.Index).String()
	switch a.Kind {
	case ActionVacuum, ActionAnalyze:
		if a.Index != "" {
			return "", fmt.Errorf("monitor: a %s action names a table, not the index %s", a.Kind, index)
		}
	case ActionReindex, ActionDropLeftover:
		if a.Index == "" {
			return "", fmt.Errorf("monitor: a %s action names an index: none given for %s", a.Kind, table)
		}
	}
	switch a.Kind {
	case ActionVacuum:
		return "VACUUM (ANALYZE) " + table, nil
	case ActionAnalyze:
		return "ANALYZE " + table, nil
	case ActionReindex:
		return "REINDEX INDEX CONCURRENTLY " + index, nil
	case ActionDropLeftover:
		if !reindexLeftover.MatchString(a.Index) {
			return "", fmt.Errorf("monitor: %s is not a REINDEX CONCURRENTLY leftover (_ccnew, _ccold): not dropped", index)
		}
		return "DROP INDEX CONCURRENTLY " + index, nil
	}
	return "", fmt.Errorf("monitor: unknown maintenance action kind %q (want vacuum, analyze, reindex or drop_leftover)", a.Kind)
}

// PlanMaintenance returns the maintenance the database needs, without
// running anything: the dry run. Pass the actions (all or some) to
// RunMaintenance to run them.
func (m *Monitor) PlanMaintenance(ctx context.Context) ([]MaintenanceAction, error) {
	return inReadTx(ctx, m, func(m *Monitor) ([]MaintenanceAction, error) {
		tables, err := m.Tables(ctx)
		if err != nil {
			return nil, err
		}
		invalid, err := m.InvalidIndexes(ctx)
		if err != nil {
			return nil, err
		}
		return m.planMaintenance(tables, invalid), nil
	})
}

func (m *Monitor) planMaintenance(tables []TableStats, invalid []InvalidIndex) []MaintenanceAction {
	out := []MaintenanceAction{}
	add := func(a MaintenanceAction) {
		a.SQL, _ = a.statement()
		a.SQL += ";"
		out = append(out, a)
	}
	for _, t := range tables {
		switch {
		case m.due(t, t.DeadRows, t.VacuumThreshold):
			add(MaintenanceAction{Kind: ActionVacuum, Table: t.Table,
				Reason: fmt.Sprintf("%d dead tuples (%.0f%% of the table), %s", t.DeadRows, 100*t.DeadRatio, m.dueWhy(t, t.VacuumThreshold, "vacuum"))})
		case m.due(t, t.ModifiedSinceAnal, t.AnalyzeThreshold):
			since := "since the last analyze"
			if t.LastAnalyzed() == nil {
				since = "and never analyzed"
			}
			add(MaintenanceAction{Kind: ActionAnalyze, Table: t.Table,
				Reason: fmt.Sprintf("%d rows modified %s, %s", t.ModifiedSinceAnal, since, m.dueWhy(t, t.AnalyzeThreshold, "analyze"))})
		}
	}
	for _, ix := range invalid {
		if reindexLeftover.MatchString(ix.Index) {
			add(MaintenanceAction{Kind: ActionDropLeftover, Table: ix.Table, Index: ix.Index,
				Reason: "invalid transient index left by a failed REINDEX CONCURRENTLY: drop it (then reindex the original again if it is invalid too)"})
			continue
		}
		reason := "invalid (a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY): unused by queries, still maintained by writes"
		if ix.Unique {
			reason += "; unique: the rebuild fails again while duplicate values remain, remove them first or drop the index"
		}
		add(MaintenanceAction{Kind: ActionReindex, Table: ix.Table, Index: ix.Index, Reason: reason})
	}
	return out
}

// due reports whether count (dead tuples, or rows modified since the last
// analyze) calls for maintenance: past autovacuum's threshold for the table
// when autovacuum does not process it, past Thresholds.AutovacuumLag times
// the threshold when it does (autovacuum is behind).
func (m *Monitor) due(t TableStats, count, threshold int64) bool {
	limit := float64(threshold)
	if t.Autovacuum {
		limit *= m.th.AutovacuumLag
	}
	return count > 0 && float64(count) > limit
}

// dueWhy says which threshold a due table passed.
func (m *Monitor) dueWhy(t TableStats, threshold int64, what string) string {
	if !t.Autovacuum {
		return fmt.Sprintf("past autovacuum's %s threshold of %d for this table, and autovacuum is off for it", what, threshold)
	}
	return fmt.Sprintf("more than %g times autovacuum's %s threshold of %d for this table: autovacuum is behind", m.th.AutovacuumLag, what, threshold)
}

// MaintenanceResult is the outcome of one action.
type MaintenanceResult struct {
	Action   MaintenanceAction `json:"action"`
	Duration time.Duration     `json:"duration_ns"`
	Err      string            `json:"error,omitempty"`
}

// RunMaintenance runs the actions one after the other, outside any
// transaction (VACUUM and REINDEX CONCURRENTLY cannot run in one), and goes
// on after a failure. progress, if not nil, is called before each action.
// The error joins the failures.
func (m *Monitor) RunMaintenance(ctx context.Context, actions []MaintenanceAction, progress func(i int, a MaintenanceAction)) ([]MaintenanceResult, error) {
	results := []MaintenanceResult{}
	var errs []error
	for i, a := range actions {
		stmt, err := a.statement()
		if err != nil {
			return results, err
		}
		if progress != nil {
			progress(i, a)
		}
		start := time.Now()
		_, err = m.db.ExecContext(ctx, stmt)
		r := MaintenanceResult{Action: a, Duration: time.Since(start)}
		if err != nil {
			r.Err = err.Error()
			errs = append(errs, fmt.Errorf("monitor: %s: %w", stmt, err))
			m.log.WarnContext(ctx, "monitor: maintenance action failed", "kind", a.Kind, "table", a.Table.String(), "index", a.Index, "err", err)
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	return results, errors.Join(errs...)
}
