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
	"github.com/auditpg/auditpg/monitor/driverstats"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newMonitorCmd, newOptimizeCmd) }

// withMonitor opens the database and runs fn with a Monitor on it, whose
// summary carries the auditpg driver's statistics.
func withMonitor(ctx context.Context, g *globals, opts []monitor.Option, fn func(context.Context, *monitor.Monitor) error) error {
	db, err := g.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := monitor.New(db, append([]monitor.Option{monitor.WithDriverStats(driverstats.Read)}, opts...)...)
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

func newMonitorCmd(g *globals) *cobra.Command {
	var sq monitor.SlowQueryOptions
	slow := reportCmd(g, "slow-queries", "Statements from pg_stat_statements, slowest mean time first (never resets them)",
		func(ctx context.Context, m *monitor.Monitor) ([]monitor.SlowQuery, error) {
			qs, err := m.SlowQueries(ctx, sq)
			return nonNil(qs), err
		}, writeSlowQueries)
	slow.Flags().Int64Var(&sq.MinCalls, "min-calls", 1, "skip statements called fewer times")
	slow.Flags().DurationVar(&sq.MinMean, "min-mean", 0, "skip statements with a lower mean time (planning plus execution), e.g. 100ms")
	slow.Flags().DurationVar(&sq.MinTotal, "min-total", 0, "skip statements with a lower total time")
	slow.Flags().BoolVar(&sq.OrderByTotal, "by-total", false, "order by total time instead of mean time")
	slow.Flags().IntVar(&sq.Limit, "limit", 20, "how many statements")

	var noSuggest, noHypo bool
	indexes := reportCmd(g, "indexes", "Index usage, unused, redundant and invalid indexes, tables read by sequential scans, index suggestions",
		func(ctx context.Context, m *monitor.Monitor) (*monitor.IndexReport, error) {
			return m.Indexes(ctx, !noSuggest, !noHypo)
		}, writeIndexes)
	indexes.Flags().BoolVar(&noSuggest, "no-suggest", false, "skip the index suggestions from pg_stat_statements")
	indexes.Flags().BoolVar(&noHypo, "no-hypopg", false, "do not check the suggestions with HypoPG hypothetical indexes")

	tables := reportCmd(g, "tables", "Tables: size, rows, dead tuples, vacuum and analyze times, cache hit ratios",
		func(ctx context.Context, m *monitor.Monitor) ([]monitor.TableStats, error) { return m.Tables(ctx) }, writeTables)
	summary := reportCmd(g, "summary", "Everything in one report, with the health status",
		func(ctx context.Context, m *monitor.Monitor) (*monitor.Summary, error) { return m.Summary(ctx) }, writeSummary)

	var stmt string
	var eo monitor.ExplainOptions
	var sets []string
	explain := reportCmd(g, `explain "SQL"`, "EXPLAIN (ANALYZE, BUFFERS) one statement in a rolled-back transaction, with recommendations",
		func(ctx context.Context, m *monitor.Monitor) (*monitor.Plan, error) {
			p, err := m.Explain(ctx, stmt, eo)
			if errors.Is(err, monitor.ErrWritesNotAllowed) {
				err = fmt.Errorf("%w (give --allow-writes to explain it anyway)", err)
			}
			return p, err
		}, writePlan)
	explain.Long = `explain runs EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) on one statement inside a
transaction that is always rolled back, under a statement_timeout. The server
checks that the text is one statement (it is prepared first, whatever protocol
the DSN asks for). A statement that may modify data, or that calls a volatile
function (pg_terminate_backend, nextval...), is refused unless --allow-writes
is given; without it the transaction is also READ ONLY. With it the statement
is rolled back all the same, but it does run: triggers fire, sequences
advance, and what a volatile function did outside the transaction stays.`
	explain.Args = cobra.ExactArgs(1)
	explain.PreRunE = func(_ *cobra.Command, args []string) error {
		stmt = args[0]
		eo.Settings = map[string]string{}
		for _, s := range sets {
			name, value, ok := strings.Cut(s, "=")
			if !ok {
				return fmt.Errorf("--set %q: want name=value, e.g. work_mem=64MB", s)
			}
			eo.Settings[strings.TrimSpace(name)] = strings.TrimSpace(value)
		}
		return nil
	}
	explain.Flags().BoolVar(&eo.AllowWrites, "allow-writes", false, "allow a statement that may modify data or calls a volatile function (still rolled back)")
	explain.Flags().DurationVar(&eo.Timeout, "timeout", 30*time.Second, "statement_timeout for the EXPLAIN")
	explain.Flags().StringArrayVar(&sets, "set", nil, "SET LOCAL name=value before the EXPLAIN (repeatable), e.g. --set work_mem=64MB")

	return group("monitor", "Server diagnostics: slow statements, indexes, tables, plans, summary", slow, indexes, tables, summary, explain)
}

func newOptimizeCmd(g *globals) *cobra.Command {
	var apply bool
	maintenance := &cobra.Command{
		Use:   "maintenance",
		Short: "List the VACUUM, ANALYZE and REINDEX CONCURRENTLY statements needed; run them with --apply",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withMonitor(cmd.Context(), g, nil, func(ctx context.Context, m *monitor.Monitor) error {
				actions, err := m.PlanMaintenance(ctx)
				if err != nil {
					return err
				}
				if !apply {
					if g.json {
						return g.printJSON(map[string]any{"dry_run": true, "actions": nonNil(actions)})
					}
					return writeMaintenancePlan(g.stdout, actions)
				}
				results, err := m.RunMaintenance(ctx, actions, func(i int, a monitor.MaintenanceAction) {
					g.progress("%d/%d %s", i+1, len(actions), a.SQL)
				})
				g.progressDone()
				if g.json {
					if jerr := g.printJSON(map[string]any{"dry_run": false, "results": nonNil(results)}); jerr != nil {
						return jerr
					}
				} else if werr := writeMaintenanceResults(g.stdout, results); werr != nil {
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
		Short: "Configuration advice from the current settings, the machine's memory and the database size (never applied)",
		Args:  cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if memory == "" {
				return nil
			}
			n, err := monitor.ParseSize(memory)
			if err != nil {
				return fmt.Errorf("--memory: %w", err)
			}
			opts = []monitor.Option{monitor.WithMemory(n)}
			return nil
		},
		RunE: runMonitor(g, &opts, func(ctx context.Context, m *monitor.Monitor) (*monitor.ConfigReport, error) {
			return m.ConfigAdvice(ctx)
		}, writeConfig),
	}
	config.Flags().StringVar(&memory, "memory", "", "the database server's memory, e.g. 16GB (default: this machine's /proc/meminfo)")
	return group("optimize", "Maintenance (dry run first) and configuration advice; nothing changes without --apply", maintenance, config)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// ---- text output ----

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
			fmt.Fprintf(tw, "  %s.%s\t%s\t%d\t%s\t%s\n", u.Schema, u.Index, u.Table, u.Scans, bytesize.Human(u.Bytes), kind)
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
	section("Unused indexes", len(r.Unused), func(i int) {
		u := r.Unused[i]
		fmt.Fprintf(w, "  %s.%s on %s: %d scans, %s\n    %s\n", u.Schema, u.Index, u.Table, u.Scans, bytesize.Human(u.Bytes), u.DropSQL)
	})
	section("Redundant indexes", len(r.Redundant), func(i int) {
		x := r.Redundant[i]
		what := "covered by"
		if x.Duplicate {
			what = "duplicate of"
		}
		fmt.Fprintf(w, "  %s.%s (%s) %s %s\n    %s\n", x.Schema, x.Index, bytesize.Human(x.Bytes), what, x.CoveredBy, x.DropSQL)
	})
	section("Invalid indexes", len(r.Invalid), func(i int) {
		x := r.Invalid[i]
		fmt.Fprintf(w, "  %s.%s on %s\n    %s\n", x.Schema, x.Index, x.Table, x.ReindexSQL)
	})
	section("Large tables read mostly by sequential scans", len(r.SeqScans), func(i int) {
		x := r.SeqScans[i]
		fmt.Fprintf(w, "  %s.%s: %d rows, %d sequential scans, %d index scans (%.1f%% by index)\n",
			x.Schema, x.Table, x.LiveRows, x.SeqScans, x.IdxScans, 100*x.IndexShare)
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
			fmt.Fprintf(tw, "%s.%s\t%s\t%d\t%d (%.0f%%)\t%s\t%s\t%d\t%d\t%.1f%%\t%.1f%%\n", t.Schema, t.Table, bytesize.Human(t.Bytes), t.LiveRows,
				t.DeadRows, 100*t.DeadRatio, timeText(t.LastVacuumed()), timeText(t.LastAnalyzed()), t.SeqScans, t.IdxScans, 100*t.HitRatio, 100*t.IndexHitRatio)
		}
	})
}

func writePlan(w io.Writer, p *monitor.Plan) error {
	fmt.Fprintf(w, "Planning %v, execution %v (rolled back)\n\n", round(p.PlanningTime), round(p.ExecutionTime))
	var walk func(n *monitor.PlanNode, depth int)
	walk = func(n *monitor.PlanNode, depth int) {
		fmt.Fprintf(w, "%s%s  (rows %.0f est %.0f, loops %.0f, %.3f ms, buffers hit %.0f read %.0f)\n", strings.Repeat("  ", depth),
			n.Label(), n.ActualRows, n.PlanRows, n.ActualLoops, n.ActualTotalTime, n.SharedHitBlocks, n.SharedReadBlocks)
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

func writeMaintenancePlan(w io.Writer, actions []monitor.MaintenanceAction) error {
	if len(actions) == 0 {
		fmt.Fprintln(w, "No maintenance needed.")
		return nil
	}
	fmt.Fprintf(w, "Dry run: %d statements (run them with --apply)\n", len(actions))
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
	fmt.Fprintf(w, "Memory %s (%s), database %s. Nothing is applied.\n\n", bytesize.Human(r.Memory), r.MemorySource, bytesize.Human(r.DatabaseBytes))
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
			fmt.Fprintf(w, "  %s.%s: %s, %d partitions, %s", p.Schema, p.Table, p.Strategy, p.Partitions, bytesize.Human(p.Bytes))
			if p.Default != "" {
				fmt.Fprintf(w, ", %d rows in the default partition", p.DefaultRows)
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
