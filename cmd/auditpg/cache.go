package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/auditpg/auditpg/internal/bytesize"
	"github.com/auditpg/auditpg/internal/changefeed"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newCacheCmd) }

// triggerFlags are the flags of install-triggers and uninstall-triggers.
type triggerFlags struct {
	tables   string
	all      bool
	fnSchema string
	dryRun   bool
}

func newCacheCmd(g *globals) *cobra.Command {
	install := triggerCmd(g, "install-triggers",
		"Install the triggers that tell every process's cache of every writer's changes",
		`install-triggers installs, on each table named (--tables) or on every table
(--all), a statement trigger that publishes the table on the auditpg_invalidate
channel at each commit that wrote it (INSERT, UPDATE, DELETE, TRUNCATE, COPY,
cascades, other triggers), for the result caches of auditpg processes (they
listen with auditpg_invalidate=notify, the default). When the user is a
superuser it also installs an event trigger that publishes DDL, so that what
the caches remember of the catalog is forgotten. Run it again for tables
created later, partitions included: a statement trigger is not inherited.
Idempotent; --dry-run prints the SQL and changes nothing.`,
		changefeed.PlanInstall)
	uninstall := triggerCmd(g, "uninstall-triggers",
		"Remove the triggers install-triggers installed",
		`uninstall-triggers removes the statement triggers of the tables named
(--tables) or of every table (--all, which also removes the event trigger and
the functions). Idempotent; --dry-run prints the SQL and changes nothing.`,
		changefeed.PlanUninstall)
	status := &cobra.Command{
		Use:   "status",
		Short: "Which tables publish their changes, the DDL trigger, the processes listening",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := g.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			st, err := changefeed.ReadStatus(cmd.Context(), db)
			if err != nil {
				return err
			}
			return show(g, st, writeFeedStatus)
		},
	}
	dropSlot := &cobra.Command{
		Use:   "drop-slot NAME",
		Short: "Drop an inactive replication slot of auditpg_invalidate=wal",
		Long: `drop-slot drops the replication slot NAME, one of auditpg's (auditpg_...,
as auditpg cache status lists them), if no connection streams from it: a slot
nobody reads retains WAL until the disk fills. The slots of the WAL decoder are
temporary, so one is left only by a crash of the server's connection handling
or by hand; an active one is refused (it goes with its leader's connection).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := g.openDB(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			if err := changefeed.DropSlot(cmd.Context(), db, args[0]); err != nil {
				return err
			}
			return show(g, droppedSlot{Dropped: args[0]}, func(w io.Writer, d droppedSlot) error {
				_, err := fmt.Fprintf(w, "replication slot %s dropped\n", d.Dropped)
				return err
			})
		},
	}
	return group("cache", "The result cache across processes: the triggers that publish every writer's changes, the WAL decoder's slots, their status",
		install, uninstall, status, dropSlot)
}

// droppedSlot is what drop-slot prints with --json.
type droppedSlot struct {
	Dropped string `json:"dropped"`
}

// triggerCmd is install-triggers or uninstall-triggers, which plan with
// plan and apply the plan unless --dry-run.
func triggerCmd(g *globals, use, short, long string,
	plan func(context.Context, *sql.DB, string, []string) (*changefeed.Plan, error)) *cobra.Command {
	f := &triggerFlags{}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tables, err := splitNames(f.tables)
			if err != nil {
				return fmt.Errorf("--tables %s: %w", f.tables, err)
			}
			if f.all == (len(tables) > 0) {
				return errors.New("give either --tables a,b or --all")
			}
			if f.fnSchema == "" {
				return errors.New("--function-schema must not be empty: give the schema of the trigger functions (default public)")
			}
			ctx := cmd.Context()
			db, err := g.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			p, err := plan(ctx, db, f.fnSchema, tables)
			if err != nil {
				return err
			}
			if !f.dryRun {
				if err := p.Apply(ctx, db); err != nil {
					return err
				}
			}
			return show(g, p, func(w io.Writer, p *changefeed.Plan) error { return writeTriggerPlan(w, p, use, f.dryRun) })
		},
	}
	cmd.Flags().StringVar(&f.tables, "tables", "", `the tables, separated by commas, as SQL names them: audit_log,app."Settings"`)
	cmd.Flags().BoolVar(&f.all, "all", false, "every ordinary and partitioned table outside the system schemas")
	cmd.Flags().StringVar(&f.fnSchema, "function-schema", "public", "schema of the trigger functions")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "print the SQL, change nothing")
	return cmd
}

func writeTriggerPlan(w io.Writer, p *changefeed.Plan, use string, dryRun bool) error {
	if dryRun {
		fmt.Fprintf(w, "-- %s --dry-run: nothing was changed; these statements would run in one transaction\n", use)
		for _, s := range p.Statements {
			fmt.Fprintf(w, "%s;\n", s)
		}
		return nil
	}
	verb := "installed on"
	if strings.HasPrefix(use, "uninstall") {
		verb = "removed from"
	}
	fmt.Fprintf(w, "triggers %s %d tables\n", verb, len(p.Tables))
	for _, t := range p.Tables {
		fmt.Fprintf(w, "  %s\n", t)
	}
	if !p.DDLTrigger && !strings.HasPrefix(use, "uninstall") {
		fmt.Fprintln(w, "warning: not a superuser, so no event trigger: DDL by other processes (a table's row-level security, a column's type, a function's volatility) reaches the caches only when run through auditpg; run install-triggers as a superuser to install it")
	}
	return nil
}

func writeFeedStatus(w io.Writer, st *changefeed.Status) error {
	on := 0
	for _, t := range st.Tables {
		if t.Trigger {
			on++
		}
	}
	fmt.Fprintf(w, "tables publishing their changes: %d of %d\n", on, len(st.Tables))
	fmt.Fprintf(w, "DDL trigger: %v\nprocesses listening: %d\nnotification queue in use: %.2f%%\n", st.DDLTrigger, st.Listeners, 100*st.QueueUsage)
	fmt.Fprintf(w, "replication slots of auditpg_invalidate=wal: %d\n", len(st.Slots))
	if len(st.Slots) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  name\tdatabase\tstate\tkind\tretained WAL")
		for _, s := range st.Slots {
			state, kind := "inactive (drop it: auditpg cache drop-slot "+s.Name+")", "permanent"
			if s.Active {
				state = fmt.Sprintf("active (pid %d)", s.ActivePID)
			}
			if s.Temporary {
				kind = "temporary"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", s.Name, s.Database, state, kind, bytesize.Human(s.RetainedBytes))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(st.Tables) > on {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\nwithout a trigger (their writes reach other processes' caches only through auditpg):")
		for _, t := range st.Tables {
			if !t.Trigger {
				fmt.Fprintf(tw, "  %s\n", t.Table)
			}
		}
		return tw.Flush()
	}
	return nil
}

// splitNames splits a list of table names, as SQL writes them, at the
// commas outside double quotes.
func splitNames(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var names []string
	quoted, start := false, 0
	for i := 0; i <= len(list); i++ {
		switch {
		case i < len(list) && list[i] == '"':
			quoted = !quoted
		case i == len(list) || list[i] == ',' && !quoted:
			name := strings.TrimSpace(list[start:i])
			if name == "" {
				return nil, errors.New("an empty name (two commas in a row, or a comma at an end)")
			}
			names = append(names, name)
			start = i + 1
		}
	}
	if quoted {
		return nil, errors.New("a double quote is not closed")
	}
	return names, nil
}
