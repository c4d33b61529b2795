package monitor

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
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
	Kind   string `json:"kind"`
	Schema string `json:"schema"`
	// Object is the table (vacuum, analyze) or index (reindex).
	Object string `json:"object"`
	SQL    string `json:"sql"`
	Reason string `json:"reason"`
}

// statement rebuilds the action's SQL from its kind and names, so that
// RunMaintenance never executes text it did not build.
func (a MaintenanceAction) statement() (string, error) {
	name := pgx.Identifier{a.Schema, a.Object}.Sanitize()
	switch a.Kind {
	case ActionVacuum:
		return "VACUUM (ANALYZE) " + name, nil
	case ActionAnalyze:
		return "ANALYZE " + name, nil
	case ActionReindex:
		return "REINDEX INDEX CONCURRENTLY " + name, nil
	case ActionDropLeftover:
		if !reindexLeftover.MatchString(a.Object) {
			return "", fmt.Errorf("monitor: %s is not a REINDEX CONCURRENTLY leftover (_ccnew, _ccold): not dropped", name)
		}
		return "DROP INDEX CONCURRENTLY " + name, nil
	}
	return "", fmt.Errorf("monitor: unknown maintenance action kind %q (want vacuum, analyze or reindex)", a.Kind)
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
		return m.planMaintenance(tables, invalid, time.Now()), nil
	})
}

func (m *Monitor) planMaintenance(tables []TableStats, invalid []InvalidIndex, now time.Time) []MaintenanceAction {
	var out []MaintenanceAction
	add := func(a MaintenanceAction) {
		a.SQL, _ = a.statement()
		a.SQL += ";"
		out = append(out, a)
	}
	for _, t := range tables {
		last := t.LastAnalyzed()
		switch {
		case t.DeadRows >= m.th.DeadTupleMin && t.DeadRatio >= m.th.DeadTupleRatio:
			add(MaintenanceAction{Kind: ActionVacuum, Schema: t.Schema, Object: t.Table,
				Reason: fmt.Sprintf("%d dead tuples, %.0f%% of the table (threshold %.0f%%)", t.DeadRows, 100*t.DeadRatio, 100*m.th.DeadTupleRatio)})
		case last == nil && t.LiveRows+t.ModifiedSinceAnal > 0:
			add(MaintenanceAction{Kind: ActionAnalyze, Schema: t.Schema, Object: t.Table,
				Reason: fmt.Sprintf("never analyzed (manually or by autovacuum); %d rows, %d modified", t.LiveRows, t.ModifiedSinceAnal)})
		case last != nil && t.ModifiedSinceAnal > 0 && now.Sub(*last) > m.th.AnalyzeMaxAge:
			add(MaintenanceAction{Kind: ActionAnalyze, Schema: t.Schema, Object: t.Table,
				Reason: fmt.Sprintf("last analyzed %s ago (threshold %s) and %d rows modified since", now.Sub(*last).Round(time.Minute), m.th.AnalyzeMaxAge, t.ModifiedSinceAnal)})
		}
	}
	for _, ix := range invalid {
		if reindexLeftover.MatchString(ix.Index) {
			add(MaintenanceAction{Kind: ActionDropLeftover, Schema: ix.Schema, Object: ix.Index,
				Reason: "invalid transient index left by a failed REINDEX CONCURRENTLY: drop it (then reindex the original again if it is invalid too)"})
			continue
		}
		reason := "invalid (a failed CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY): unused by queries, still maintained by writes"
		if ix.Unique {
			reason += "; unique: the rebuild fails again while duplicate values remain, remove them first or drop the index"
		}
		add(MaintenanceAction{Kind: ActionReindex, Schema: ix.Schema, Object: ix.Index, Reason: reason})
	}
	return out
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
	var results []MaintenanceResult
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
			m.log.WarnContext(ctx, "monitor: maintenance action failed", "kind", a.Kind, "schema", a.Schema, "object", a.Object, "err", err)
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	return results, errors.Join(errs...)
}
