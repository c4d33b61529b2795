package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/auditpg/auditpg/internal/bytesize"
	"github.com/auditpg/auditpg/monitor"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newMonitorCmd, newOptimizeCmd) }

// withMonitor opens the database and runs fn with a Monitor on it. The
// command line's own pool is not the application's: its driver statistics
// are not given to the monitor.
func withMonitor(ctx context.Context, g *globals, opts []monitor.Option, fn func(context.Context, *monitor.Monitor) error) error {
	db, err := g.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := monitor.New(db, opts...)
	if err != nil {
		return err
	}
	return fn(ctx, m)
}

// reportCmd returns a command, without arguments, that reads one report
// with a Monitor and prints it (show). Callers set what else differs: Args
// and a PreRunE that reads them, PostRunE for a verdict on the report.
func reportCmd[T any](g *globals, use, short string, read func(context.Context, *monitor.Monitor) (T, error), text func(io.Writer, T) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: runMonitor(g, nil, read, text)}
}

// runMonitor is the RunE of a command that reads one report with a Monitor
// built with *opts (when opts is not nil: a PreRunE may set them) and
// prints it (show).
func runMonitor[T any](g *globals, opts *[]monitor.Option, read func(context.Context, *monitor.Monitor) (T, error), text func(io.Writer, T) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		var o []monitor.Option
		if opts != nil {
			o = *opts
		}
		return withMonitor(cmd.Context(), g, o, func(ctx context.Context, m *monitor.Monitor) error {
			g.progress("reading the server's statistics...")
			v, err := read(ctx, m)
			if err != nil {
				g.progressDone()
				return err
			}
			return show(g, v, text)
		})
	}
}

// applyHint is how the monitor and optimize outputs say to run the
// maintenance they list.
const applyHint = "auditpg optimize maintenance --apply"

// Bounds of the flags' values.
const (
	maxLimit         = 10000          // --limit: pg_stat_statements keeps 5000 statements by default
	maxTimeout       = 24 * time.Hour // --timeout
	minMemory        = 64 << 20       // --memory: less is no PostgreSQL server
	maxMemory  int64 = 1 << 50        // --memory: 1PB
)

// flagError refuses a flag's value, naming the flag, the value and what is
// accepted.
func flagError(flag string, value any, want string) error {
	return fmt.Errorf("--%s %v: %s", flag, value, want)
}

func newMonitorCmd(g *globals) *cobra.Command {
	var sq monitor.SlowQueryOptions
	slow := reportCmd(g, "slow-queries", "List the statements of pg_stat_statements, slowest mean time first (never resets them)",
		func(ctx context.Context, m *monitor.Monitor) ([]monitor.SlowQuery, error) {
			qs, err := m.SlowQueries(ctx, sq)
			return nonNil(qs), err
		}, writeSlowQueries)
	slow.Long = `slow-queries lists the statements of this database from pg_stat_statements,
slowest mean time (planning plus execution) first, as the extension normalizes
them: constants replaced by $1, $2... The text output clips a statement to fit
a line; --json prints it whole, ready for monitor explain (with one --arg per
parameter, or none for the generic plan). The statistics are never reset.`
	slow.Flags().Int64Var(&sq.MinCalls, "min-calls", 1, "skip statements called fewer times")
	slow.Flags().DurationVar(&sq.MinMean, "min-mean", 0, "skip statements with a lower mean time (planning plus execution), e.g. 100ms")
	slow.Flags().DurationVar(&sq.MinTotal, "min-total", 0, "skip statements with a lower total time, e.g. 1m")
	slow.Flags().BoolVar(&sq.OrderByTotal, "by-total", false, "order by total time instead of mean time")
	slow.Flags().IntVar(&sq.Limit, "limit", 20, fmt.Sprintf("how many statements, 1 to %d", maxLimit))
	slow.PreRunE = func(*cobra.Command, []string) error {
		switch {
		case sq.MinCalls < 0:
			return flagError("min-calls", sq.MinCalls, "want 0 or more calls")
		case sq.MinMean < 0:
			return flagError("min-mean", sq.MinMean, "want a duration of 0 or more, e.g. 100ms")
		case sq.MinTotal < 0:
			return flagError("min-total", sq.MinTotal, "want a duration of 0 or more, e.g. 1m")
		case sq.Limit < 1 || sq.Limit > maxLimit:
			return flagError("limit", sq.Limit, fmt.Sprintf("want 1 to %d statements", maxLimit))
		}
		return nil
	}

	var noSuggest, noHypo bool
	indexes := reportCmd(g, "indexes", "Report index usage: unused, redundant and invalid indexes, large tables read by sequential scans, suggested indexes",
		func(ctx context.Context, m *monitor.Monitor) (*monitor.IndexReport, error) {
			return m.Indexes(ctx, !noSuggest, !noHypo)
		}, writeIndexes)
	indexes.Long = `indexes reports every index with its scans and size, and lists:
  - unused indexes: never scanned since the statistics were reset (unique and
    primary indexes, indexes backing a constraint and indexes under 1MB are
    never listed), with the DROP INDEX statement, never run;
  - redundant indexes: covered by another index of the same table;
  - invalid indexes: left by a failed CREATE INDEX CONCURRENTLY;
  - tables of 10000 rows or more read mostly by sequential scans;
  - suggested indexes for the WHERE and ORDER BY columns of the top statements
    of pg_stat_statements, checked with HypoPG hypothetical indexes when the
    extension is available.`
	indexes.Flags().BoolVar(&noSuggest, "no-suggest", false, "skip the index suggestions from pg_stat_statements")
	indexes.Flags().BoolVar(&noHypo, "no-hypopg", false, "do not check the suggestions with HypoPG hypothetical indexes")
	indexes.PreRunE = func(*cobra.Command, []string) error {
		if noSuggest && noHypo {
			return errors.New("--no-hypopg with --no-suggest: there are no suggestions to check; give one or the other")
		}
		return nil
	}

	tables := reportCmd(g, "tables", "List the tables: size, rows, dead tuples, vacuum and analyze times, cache hit ratios",
		func(ctx context.Context, m *monitor.Monitor) ([]monitor.TableStats, error) { return m.Tables(ctx) }, writeTables)
	summary := reportCmd(g, "summary", "Print every report in one, with a healthy / warning / critical status per component",
		func(ctx context.Context, m *monitor.Monitor) (*monitor.Summary, error) { return m.Summary(ctx) }, writeSummary)
	summary.Long = `summary reads every report (statements, indexes, tables, cache, sequences,
transaction ID age, activity, partitioned tables) and judges each component
healthy, warning or critical. VACUUM and ANALYZE are called for by autovacuum's
own thresholds for each table (autovacuum_vacuum_threshold +
autovacuum_vacuum_scale_factor x rows, and the analyze ones, with the table's
storage parameters), and only when autovacuum is off for the table or twice
behind them; it lists the statements, which ` + applyHint + ` runs.`

	var stmt string
	var eo monitor.ExplainOptions
	var sets, args []string
	explain := reportCmd(g, `explain "SQL"`, "Run EXPLAIN (ANALYZE, BUFFERS) on one statement in a rolled-back transaction, with recommendations",
		func(ctx context.Context, m *monitor.Monitor) (*monitor.Plan, error) {
			p, err := m.Explain(ctx, stmt, eo)
			return p, explainError(err)
		}, writePlan)
	explain.Long = `explain runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) on one statement inside a
transaction that is always rolled back, under a statement_timeout. The server
checks that the text is one statement and parses it (it is prepared first,
whatever protocol the DSN asks for). A statement that may modify data, or that
calls a volatile function (pg_terminate_backend, nextval...), is refused unless
--allow-writes is given; without it the transaction is also READ ONLY. With it
the statement is rolled back all the same, but it does run: triggers fire,
sequences advance, and what a volatile function did outside the transaction
stays.

A statement with parameters ($1, $2..., as slow-queries prints them) takes one
--arg per parameter, in order, as text that the server converts to the type
it infers. Without --arg it is explained as its generic plan, the plan for any
values, estimated without running the statement.`
	explain.Example = `  auditpg monitor explain "SELECT * FROM audit_log WHERE org_id = 'acme'"
  auditpg monitor explain 'SELECT * FROM audit_log WHERE org_id = $1' --arg acme
  auditpg monitor explain 'SELECT * FROM audit_log WHERE org_id = $1'    # the generic plan
  auditpg monitor explain --set work_mem=64MB 'SELECT * FROM audit_log ORDER BY at'`
	explain.Args = cobra.ExactArgs(1)
	explain.PreRunE = func(_ *cobra.Command, a []string) error {
		stmt = a[0]
		if eo.Timeout <= 0 || eo.Timeout > maxTimeout {
			return flagError("timeout", eo.Timeout, fmt.Sprintf("want a statement timeout above 0 and at most %s, e.g. 30s", maxTimeout))
		}
		eo.Settings = map[string]string{}
		for _, s := range sets {
			name, value, ok := strings.Cut(s, "=")
			if name = strings.TrimSpace(name); !ok || name == "" {
				return flagError("set", fmt.Sprintf("%q", s), "want name=value, e.g. work_mem=64MB")
			}
			eo.Settings[name] = strings.TrimSpace(value)
		}
		eo.Args = nil
		for _, v := range args {
			eo.Args = append(eo.Args, v)
		}
		return nil
	}
	explain.Flags().BoolVar(&eo.AllowWrites, "allow-writes", false, "allow a statement that may modify data or calls a volatile function (still rolled back)")
	explain.Flags().DurationVar(&eo.Timeout, "timeout", 30*time.Second, "statement_timeout for the EXPLAIN, above 0 and at most 24h")
	explain.Flags().StringArrayVar(&sets, "set", nil, "SET LOCAL `name=value` before the EXPLAIN (repeatable), e.g. --set work_mem=64MB")
	explain.Flags().StringArrayVar(&args, "arg", nil, "the `value` of the next parameter ($1, then $2...), as text (repeatable); none: the generic plan")

	return group("monitor", "Read the server's diagnostics: slow statements, indexes, tables, plans, a summary with health", slow, indexes, tables, summary, explain)
}

// explainError words Explain's errors for the command line: the flags to
// give, not the options of the Go API.
func explainError(err error) error {
	var we *monitor.WriteError
	switch {
	case errors.As(err, &we):
		return &cliError{msg: we.Reason + ": give --allow-writes to explain it (EXPLAIN ANALYZE then runs it in a transaction that is rolled back; what a volatile function does outside the transaction stays)", err: err}
	case errors.Is(err, monitor.ErrArgCount):
		return &cliError{msg: strings.TrimPrefix(err.Error(), "monitor: explain: ") + ": give one --arg per parameter, in order, or none for the generic plan", err: err}
	}
	return err
}

// cliError is an error reworded for the command line, the library's error
// kept for errors.Is and As.
type cliError struct {
	msg string
	err error
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

func newOptimizeCmd(g *globals) *cobra.Command {
	var apply bool
	maintenance := &cobra.Command{
		Use:   "maintenance",
		Short: "List the VACUUM, ANALYZE and REINDEX CONCURRENTLY statements needed; run them with --apply",
		Long: `maintenance lists the statements the database needs, without running them:
VACUUM (ANALYZE) of tables past autovacuum's dead-tuple threshold, ANALYZE of
tables past its analyze threshold (where autovacuum is off for the table, or
twice behind), REINDEX INDEX CONCURRENTLY of invalid indexes and DROP INDEX
CONCURRENTLY of what a failed REINDEX CONCURRENTLY left. --apply runs them one
after the other, outside any transaction, and goes on after a failure. An
index that is merely unused is never dropped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withMonitor(cmd.Context(), g, nil, func(ctx context.Context, m *monitor.Monitor) error {
				g.progress("reading the server's statistics...")
				actions, err := m.PlanMaintenance(ctx)
				g.progressDone()
				if err != nil {
					return err
				}
				if !apply {
					return show(g, maintenanceReport{DryRun: true, Actions: actions, Results: []monitor.MaintenanceResult{}}, writeMaintenance)
				}
				results, err := m.RunMaintenance(ctx, actions, func(i int, a monitor.MaintenanceAction) {
					g.progress("%d/%d %s", i+1, len(actions), a.SQL)
				})
				if werr := show(g, maintenanceReport{Actions: actions, Results: results}, writeMaintenance); werr != nil {
					return werr
				}
				return err
			})
		},
	}
	maintenance.Flags().BoolVar(&apply, "apply", false, "run the statements (default: only list them)")

	var memory string
	var opts []monitor.Option
	config := &cobra.Command{
		Use:   "config",
		Short: "Advise on settings from the current ones, the server's memory and the database size (never applied)",
		Long: `config suggests values for shared_buffers, effective_cache_size, work_mem,
maintenance_work_mem, max_wal_size and a few others, in the manner of PGTune
for a mixed workload on SSD storage, each with the ALTER SYSTEM statement to
run. Nothing is applied. The memory is the database server's: give --memory
unless the server runs on this machine (then /proc/meminfo is read).`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			opts = nil
			if !cmd.Flags().Changed("memory") {
				return nil
			}
			n, err := monitor.ParseSize(memory)
			if err != nil {
				return flagError("memory", memory, strings.TrimPrefix(err.Error(), "monitor: ")+"; want a size such as 16GB or 512MB")
			}
			if n < minMemory || n > maxMemory {
				return flagError("memory", memory, "want the database server's memory, from 64MB to 1PB, e.g. 16GB (leave --memory out to read this machine's /proc/meminfo)")
			}
			opts = []monitor.Option{monitor.WithMemory(n)}
			return nil
		},
		RunE: runMonitor(g, &opts, func(ctx context.Context, m *monitor.Monitor) (*monitor.ConfigReport, error) {
			return m.ConfigAdvice(ctx)
		}, writeConfig),
	}
	config.Flags().StringVar(&memory, "memory", "", "the database server's memory, a `size` such as 16GB (default: this machine's /proc/meminfo)")
	return group("optimize", "Plan maintenance (run it with --apply) and advise on configuration", maintenance, config)
}

// maintenanceReport is what optimize maintenance prints: the actions
// planned and, with --apply, the result of each.
type maintenanceReport struct {
	DryRun  bool                        `json:"dry_run"`
	Actions []monitor.MaintenanceAction `json:"actions"`
	Results []monitor.MaintenanceResult `json:"results"`
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---- text output ----

// dotted names a table for people: schema.name, unquoted.
func dotted(t monitor.Table) string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

func timeText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func table(w io.Writer, header string, rows func(tw *tabwriter.Writer)) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	rows(tw)
	return tw.Flush()
}

func writeSlowQueries(w io.Writer, qs []monitor.SlowQuery) error {
	if len(qs) == 0 {
		fmt.Fprintln(w, "No statements match.")
		return nil
	}
	return table(w, "calls\tmean\ttotal\t% total\trows\thit ratio\tstatement", func(tw *tabwriter.Writer) {
		for _, q := range qs {
			fmt.Fprintf(tw, "%d\t%v\t%v\t%.1f%%\t%d\t%.1f%%\t%s\n", q.Calls, round(q.Mean), round(q.Total), q.PercentOfTotal,
				q.Rows, 100*q.HitRatio, clip(strings.Join(strings.Fields(q.Query), " "), 90))
		}
	})
}

func writeIndexes(w io.Writer, r *monitor.IndexReport) error {
	fmt.Fprintln(w, "Index usage")
	if err := table(w, "  index\ttable\tscans\tsize\tkind", func(tw *tabwriter.Writer) {
		for _, u := range r.Usage {
			kind := ""
			switch {
			case u.Primary:
				kind = "primary"
			case u.Unique:
				kind = "unique"
			}
			if u.Partitions > 0 {
				kind = strings.TrimSpace(kind + fmt.Sprintf(" partitioned (%d)", u.Partitions))
			}
			if !u.Valid {
				kind += " INVALID"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", u.Index, dotted(u.Table), u.Scans, bytesize.Human(u.Bytes), kind)
		}
	}); err != nil {
		return err
	}
	section := func(title string, n int, each func(i int)) {
		fmt.Fprintf(w, "\n%s (%d)\n", title, n)
		for i := range n {
			each(i)
		}
	}
	section("Unused indexes: never scanned since the statistics were reset", len(r.Unused), func(i int) {
		u := r.Unused[i]
		fmt.Fprintf(w, "  %s on %s: %d scans, %s\n    %s\n", u.Index, dotted(u.Table), u.Scans, bytesize.Human(u.Bytes), u.DropSQL)
	})
	section("Redundant indexes", len(r.Redundant), func(i int) {
		x := r.Redundant[i]
		what := "covered by"
		if x.Duplicate {
			what = "duplicate of"
		}
		fmt.Fprintf(w, "  %s on %s (%s) %s %s\n    %s\n", x.Index, dotted(x.Table), bytesize.Human(x.Bytes), what, x.CoveredBy, x.DropSQL)
	})
	section("Invalid indexes", len(r.Invalid), func(i int) {
		x := r.Invalid[i]
		fmt.Fprintf(w, "  %s on %s\n    %s\n", x.Index, dotted(x.Table), x.ReindexSQL)
	})
	section("Large tables read mostly by sequential scans", len(r.SeqScans), func(i int) {
		x := r.SeqScans[i]
		fmt.Fprintf(w, "  %s: %d rows, %d sequential scans, %d index scans (%.1f%% by index)\n",
			dotted(x.Table), x.LiveRows, x.SeqScans, x.IdxScans, 100*x.IndexShare)
	})
	if s := r.Suggestions; s != nil {
		section("Suggested indexes", len(s.Suggestions), func(i int) {
			x := s.Suggestions[i]
			fmt.Fprintf(w, "  %s\n", x.CreateSQL)
			for _, q := range x.Queries {
				est := ""
				switch {
				case q.CheckErr != "":
					est = "  (not checked: " + q.CheckErr + ")"
				case q.CostBefore > 0:
					est = fmt.Sprintf("  cost %.0f -> %.0f%s", q.CostBefore, q.CostAfter, map[bool]string{true: "", false: " (index not used)"}[q.UsesIndex])
				}
				fmt.Fprintf(w, "    %d calls: %s%s\n", q.Calls, clip(strings.Join(strings.Fields(q.Query), " "), 80), est)
			}
		})
		fmt.Fprintf(w, "  HypoPG: %s\n", s.HypoPG)
	}
	return nil
}

func writeTables(w io.Writer, ts []monitor.TableStats) error {
	return table(w, "table\tsize\trows\tdead\tlast vacuum\tlast analyze\tseq scans\tidx scans\theap hit\tidx hit", func(tw *tabwriter.Writer) {
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d (%.0f%%)\t%s\t%s\t%d\t%d\t%.1f%%\t%.1f%%\n", dotted(t.Table), bytesize.Human(t.Bytes), t.LiveRows,
				t.DeadRows, 100*t.DeadRatio, timeText(t.LastVacuumed()), timeText(t.LastAnalyzed()), t.SeqScans, t.IdxScans, 100*t.HitRatio, 100*t.IndexHitRatio)
		}
	})
}

func writePlan(w io.Writer, p *monitor.Plan) error {
	if p.Generic {
		fmt.Fprint(w, "Generic plan, without execution: the statement has parameters and no --arg values,\n"+
			"so this is the plan for any values, with the planner's estimates only.\n\n")
	} else {
		fmt.Fprintf(w, "Planning %v, execution %v (rolled back)\n\n", round(p.PlanningTime), round(p.ExecutionTime))
	}
	var walk func(n *monitor.PlanNode, depth int)
	walk = func(n *monitor.PlanNode, depth int) {
		indent := strings.Repeat("  ", depth)
		if p.Generic {
			fmt.Fprintf(w, "%s%s  (est rows %.0f, cost %.2f..%.2f)\n", indent, n.Label(), n.PlanRows, n.StartupCost, n.TotalCost)
		} else {
			fmt.Fprintf(w, "%s%s  (rows %.0f est %.0f, loops %.0f, %.3f ms, buffers hit %.0f read %.0f)\n", indent,
				n.Label(), n.ActualRows, n.PlanRows, n.ActualLoops, n.ActualTotalTime, n.SharedHitBlocks, n.SharedReadBlocks)
		}
		for _, c := range n.Plans {
			walk(c, depth+1)
		}
	}
	walk(p.Root, 0)
	fmt.Fprintf(w, "\nRecommendations (%d)\n", len(p.Recommendations))
	for _, r := range p.Recommendations {
		fmt.Fprintf(w, "  [%s] %s: %s\n", r.Kind, r.Node, r.Message)
	}
	return nil
}

// writeMaintenance prints the dry run, or the results of --apply.
func writeMaintenance(w io.Writer, r maintenanceReport) error {
	if r.DryRun || len(r.Actions) == 0 {
		return writeMaintenancePlan(w, r.Actions)
	}
	return writeMaintenanceResults(w, r.Results)
}

func writeMaintenancePlan(w io.Writer, actions []monitor.MaintenanceAction) error {
	if len(actions) == 0 {
		fmt.Fprintln(w, "No maintenance needed.")
		return nil
	}
	fmt.Fprintf(w, "Maintenance: %d statement(s), not run (run them with %s)\n", len(actions), applyHint)
	for _, a := range actions {
		fmt.Fprintf(w, "  %s\n    -- %s\n", a.SQL, a.Reason)
	}
	return nil
}

func writeMaintenanceResults(w io.Writer, results []monitor.MaintenanceResult) error {
	return table(w, "statement\ttime\tresult", func(tw *tabwriter.Writer) {
		for _, r := range results {
			res := "ok"
			if r.Err != "" {
				res = r.Err
			}
			fmt.Fprintf(tw, "%s\t%v\t%s\n", r.Action.SQL, round(r.Duration), res)
		}
	})
}

func writeConfig(w io.Writer, r *monitor.ConfigReport) error {
	source := r.MemorySource
	if source == "given" {
		source = "--memory"
	}
	if r.Memory > 0 {
		fmt.Fprintf(w, "Memory %s (%s), database %s. Nothing is applied.\n\n", bytesize.Human(r.Memory), source, bytesize.Human(r.DatabaseBytes))
	} else {
		fmt.Fprintf(w, "Memory unknown: give the server's memory with --memory, e.g. --memory 16GB. Database %s. Nothing is applied.\n\n", bytesize.Human(r.DatabaseBytes))
	}
	if err := table(w, "setting\tcurrent\tsuggested\tchange\twhy", func(tw *tabwriter.Writer) {
		for _, a := range r.Advice {
			change := ""
			if a.Change {
				change = "yes"
				if a.Restart {
					change += " (restart)"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Current, a.Suggested, change, a.Why)
		}
	}); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

func writeHealth(w io.Writer, h monitor.Health) error {
	fmt.Fprintf(w, "Overall: %s\n", strings.ToUpper(string(h.Overall)))
	for _, c := range h.Components {
		fmt.Fprintf(w, "  %-12s %s\n", c.Name, c.Status)
		for _, r := range c.Reasons {
			fmt.Fprintf(w, "      - %s\n", r)
		}
	}
	return nil
}

func writeSummary(w io.Writer, s *monitor.Summary) error {
	fmt.Fprintf(w, "PostgreSQL %s, database %s (%s), up since %s\n", s.Server.Version, s.Server.Database,
		bytesize.Human(s.Server.DatabaseBytes), s.Server.StartedAt.Local().Format(time.DateTime))
	fmt.Fprintf(w, "Cache hit ratio: tables %.2f%%, indexes %.2f%%; connections %d of %d; transaction ID age %d\n\n",
		100*s.CacheHit.Table, 100*s.CacheHit.Index, s.Activity.Total, s.Activity.MaxConnections, s.Wraparound.Age)
	if err := writeHealth(w, s.Health); err != nil {
		return err
	}
	if s.Statements.Ready {
		fmt.Fprintln(w, "\nTop statements by total time")
		if err := writeSlowQueries(w, s.TopQueries); err != nil {
			return err
		}
	}
	if len(s.Partitions) > 0 {
		fmt.Fprintln(w, "\nPartitioned tables")
		for _, p := range s.Partitions {
			fmt.Fprintf(w, "  %s: %s, %d partitions, %s", dotted(p.Table), p.Strategy, p.Partitions, bytesize.Human(p.Bytes))
			if p.Default != nil {
				fmt.Fprintf(w, ", %d rows in the default partition %s", p.DefaultRows, p.Default.Name)
			}
			fmt.Fprintln(w)
		}
	}
	if len(s.Maintenance) > 0 {
		fmt.Fprintln(w)
		if err := writeMaintenancePlan(w, s.Maintenance); err != nil {
			return err
		}
	}
	return nil
}
