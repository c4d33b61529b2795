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
	"github.com/auditpg/auditpg/partition"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newPartitionCmd) }

// partitionFlags are the values of the partition commands' flags; each
// command declares only the flags it uses (see the add* functions), and
// options turns the declared ones into the Manager's options.
type partitionFlags struct {
	table         string
	schema        string
	column        string
	interval      string
	retentionDays int
	premake       int
	future        bool
	dryRun        bool
	mode          string
	archiveSchema string
	lockTimeout   time.Duration
	batchSize     int
	exact         bool
	seedIndexes   bool
	noDefault     bool
	createTable   bool
}

func newPartitionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "partition",
		Short: "Manage the time partitions of audit_log: create, list, analyze, cleanup, convert, schema",
		Long: `partition manages the time-range partitions of audit_log (or --table): bounds in
UTC, partitions built standalone and attached without blocking inserts, rows
moved out of the default partition, retention that never touches the current
partition. The logic lives in the partition package; see its documentation.`,
	}
	cmd.AddCommand(newPartitionCreateCmd(g), newPartitionListCmd(g), newPartitionAnalyzeCmd(g),
		newPartitionCleanupCmd(g), newPartitionConvertCmd(g), newPartitionSchemaCmd(g))
	return cmd
}

func newPartitionCreateCmd(g *globals) *cobra.Command {
	f := &partitionFlags{}
	cmd := partitionCmd(g, f, "create", "Create the current and premade partitions, fill gaps, move rows out of the default partition",
		func(ctx context.Context, m *partition.Manager) (*partition.Report, error) { return m.Create(ctx) }, writePartitionReport)
	cmd.Long = `create makes the default partition (unless --no-default), the current partition
and --premake future ones, fills the gaps between partitions, and moves the
rows of the default partition into partitions of their own. The partitions
keep the table's interval (the one of its newest partition); --interval is
for a new table, and an interval other than the table's is refused. A table
that does not exist is refused unless --create-table is given: then it is
created with the audit_log schema (` + "`auditpg partition schema`" + ` prints it).
Ctrl-C keeps the partitions made so far, each complete; run it again to finish.`
	addTableFlags(cmd, f)
	addIntervalFlag(cmd, f)
	addPremakeFlag(cmd, f, "future partitions kept ready after the current one (at most two years ahead: 731 daily, 105 weekly, 24 monthly, 8 quarterly, 2 yearly)")
	cmd.Flags().BoolVar(&f.noDefault, "no-default", false, "make no default partition")
	cmd.Flags().BoolVar(&f.createTable, "create-table", false, "create the table with the audit_log schema if it does not exist")
	addLockTimeoutFlag(cmd, f)
	addBatchSizeFlag(cmd, f)
	return cmd
}

func newPartitionListCmd(g *globals) *cobra.Command {
	f := &partitionFlags{}
	cmd := partitionCmd(g, f, "list", "List partitions with bounds (UTC), estimated rows and size; gaps and overlaps",
		func(ctx context.Context, m *partition.Manager) (*partition.Listing, error) {
			return m.List(ctx, f.exact)
		},
		func(w io.Writer, l *partition.Listing) error { return writePartitionList(w, l, f.exact) })
	addTableFlags(cmd, f)
	cmd.Flags().BoolVar(&f.exact, "exact", false, "also count each partition's rows exactly (scans every partition)")
	addLockTimeoutFlag(cmd, f)
	return cmd
}

func newPartitionAnalyzeCmd(g *globals) *cobra.Command {
	f := &partitionFlags{}
	cmd := partitionCmd(g, f, "analyze", "Summarize the partitions and recommend what to change, with the command that does it",
		func(ctx context.Context, m *partition.Manager) (*partition.Analysis, error) { return m.Analyze(ctx) }, writePartitionAnalysis)
	addTableFlags(cmd, f)
	cmd.Flags().IntVar(&f.retentionDays, "retention", 0, "retention in days: report the partitions entirely older (0: keep all)")
	addPremakeFlag(cmd, f, "future partitions maintenance keeps ready: report fewer, and the empty ones beyond")
	addLockTimeoutFlag(cmd, f)
	return cmd
}

func newPartitionCleanupCmd(g *globals) *cobra.Command {
	f := &partitionFlags{}
	cmd := partitionCmd(g, f, "cleanup", "Remove partitions older than --retention days, or (--future) the empty ones beyond --premake",
		func(ctx context.Context, m *partition.Manager) (*partition.Report, error) { return cleanup(ctx, m, f) }, writePartitionReport)
	cmd.Long = `cleanup applies the retention (--retention DAYS): the partitions whose whole
range ended before now minus the retention are dropped, detached or archived
(--mode), never the current one, a future one or the default one. With
--future it drops the empty partitions that start after the last of the
--premake kept ahead (a surplus left by a large premake); a future partition
holding rows is kept, with a warning naming it. --dry-run lists what would go.`
	addTableFlags(cmd, f)
	cmd.Flags().IntVar(&f.retentionDays, "retention", 0, "remove the partitions entirely older than this many days")
	cmd.Flags().BoolVar(&f.future, "future", false, "remove the empty partitions beyond the --premake kept ahead")
	addPremakeFlag(cmd, f, "with --future: the future partitions kept after the current one")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "list what would go, change nothing")
	cmd.Flags().StringVar(&f.mode, "mode", "drop", "with --retention: what to do with expired partitions: drop, detach or archive")
	cmd.Flags().StringVar(&f.archiveSchema, "archive-schema", "archive", "with --mode archive: the schema the partitions move into")
	addLockTimeoutFlag(cmd, f)
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		set := cmd.Flags().Changed
		switch {
		case f.retentionDays < 0:
			return fmt.Errorf("--retention must be a number of days >= 1, got %d", f.retentionDays)
		case f.retentionDays == 0 && !f.future:
			return errors.New("cleanup needs --retention DAYS (remove the partitions older than that) or --future (remove the empty partitions beyond --premake), or both")
		case set("premake") && !f.future:
			return errors.New("--premake applies to --future only")
		case (set("mode") || set("archive-schema")) && f.retentionDays == 0:
			return errors.New("--mode and --archive-schema apply to --retention only (--future drops the partitions)")
		case set("archive-schema") && f.mode != "archive":
			return fmt.Errorf("--archive-schema applies to --mode archive only, not --mode %s", f.mode)
		}
		return nil
	}
	return cmd
}

// cleanup runs the retention, then the future cleanup, as the flags ask,
// and returns one report of both.
func cleanup(ctx context.Context, m *partition.Manager, f *partitionFlags) (*partition.Report, error) {
	var r *partition.Report
	if f.retentionDays > 0 {
		var err error
		if r, err = m.Cleanup(ctx, f.dryRun); err != nil {
			return nil, err
		}
	}
	if !f.future {
		return r, nil
	}
	fr, err := m.CleanupFuture(ctx, f.dryRun)
	if err != nil || r == nil {
		return fr, err
	}
	r.Removed = append(r.Removed, fr.Removed...)
	r.Warnings = append(r.Warnings, fr.Warnings...)
	r.Duration += fr.Duration
	return r, nil
}

func newPartitionConvertCmd(g *globals) *cobra.Command {
	f := &partitionFlags{}
	cmd := partitionCmd(g, f, "convert", "Convert an unpartitioned table into a partitioned one, copying in batches; the old one is kept as <table>_unpartitioned",
		func(ctx context.Context, m *partition.Manager) (*partition.ConvertResult, error) {
			return m.Convert(ctx)
		}, writeConvertResult)
	addTableFlags(cmd, f)
	cmd.Flags().StringVar(&f.column, "column", "timestamp", "the timestamptz or timestamp column to partition on")
	addIntervalFlag(cmd, f)
	addPremakeFlag(cmd, f, "future partitions made after the current one (at most two years ahead)")
	cmd.Flags().BoolVar(&f.noDefault, "no-default", false, "make no default partition")
	addLockTimeoutFlag(cmd, f)
	addBatchSizeFlag(cmd, f)
	return cmd
}

func newPartitionSchemaCmd(g *globals) *cobra.Command {
	f := &partitionFlags{}
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Print the audit_log DDL (partitioned parent, primary key, indexes, default partition) for a migration tool",
		Long: `schema prints the audit_log DDL as SQL; with --json, one JSON document:
{"table": {"schema": ..., "name": ...}, "statements": ["CREATE TABLE ...", ...]},
each statement without its ending semicolon. It needs no database.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTableFlags(f); err != nil {
				return err
			}
			var opts []partition.SchemaOption
			if f.seedIndexes {
				opts = append(opts, partition.WithSeedIndexes())
			}
			if f.noDefault {
				opts = append(opts, partition.WithoutDefaultPartition())
			}
			table := partition.Table{Schema: f.schema, Name: f.table}
			ddl := schemaDDL{Table: table, Statements: partition.AuditLogStatements(table, opts...)}
			return show(g, ddl, func(w io.Writer, d schemaDDL) error {
				_, err := io.WriteString(w, partition.AuditLogSchema(d.Table, opts...))
				return err
			})
		},
	}
	addTableFlags(cmd, f)
	cmd.Flags().BoolVar(&f.seedIndexes, "seed-indexes", false, "declare all fourteen candidate indexes, not only the five kept ones")
	cmd.Flags().BoolVar(&f.noDefault, "no-default", false, "leave out the default partition")
	return cmd
}

// schemaDDL is what `partition schema --json` prints. Table's schema is
// the one given (--schema), left out when none was: the statements then
// name the table through the search_path.
type schemaDDL struct {
	Table      partition.Table `json:"table"`
	Statements []string        `json:"statements"`
}

func addTableFlags(cmd *cobra.Command, f *partitionFlags) {
	cmd.Flags().StringVar(&f.table, "table", "audit_log", "the partitioned table")
	cmd.Flags().StringVar(&f.schema, "schema", "", "the table's schema (default: the search_path)")
}

func addIntervalFlag(cmd *cobra.Command, f *partitionFlags) {
	cmd.Flags().StringVar(&f.interval, "interval", "", "partition interval of a new table: daily, weekly, monthly, quarterly or yearly (default: the table's; monthly for a new table)")
}

func addPremakeFlag(cmd *cobra.Command, f *partitionFlags, usage string) {
	cmd.Flags().IntVar(&f.premake, "premake", 4, usage)
}

func addLockTimeoutFlag(cmd *cobra.Command, f *partitionFlags) {
	cmd.Flags().DurationVar(&f.lockTimeout, "lock-timeout", 2*time.Second, "lock_timeout of each step (retried with backoff): the longest an insert waits on it")
}

func addBatchSizeFlag(cmd *cobra.Command, f *partitionFlags) {
	cmd.Flags().IntVar(&f.batchSize, "batch-size", 10000, "rows per committed batch when moving or copying")
}

func checkTableFlags(f *partitionFlags) error {
	if strings.TrimSpace(f.table) == "" {
		return errors.New("--table must not be empty (audit_log by default)")
	}
	return nil
}

// maxBatchSize bounds --batch-size: a batch is one transaction, and its
// rows are held in one statement's memory.
const maxBatchSize = 1_000_000

// options checks the flags cmd declares and returns the Manager's options
// for them; a flag the command does not declare is left to the default.
func (f *partitionFlags) options(cmd *cobra.Command) ([]partition.Option, error) {
	if err := checkTableFlags(f); err != nil {
		return nil, err
	}
	has := func(name string) bool { return cmd.Flags().Lookup(name) != nil }
	opts := []partition.Option{partition.WithTable(partition.Table{Schema: f.schema, Name: f.table})}
	var iv partition.Interval
	if has("interval") && cmd.Flags().Changed("interval") {
		var err error
		if iv, err = partition.ParseInterval(f.interval); err != nil {
			return nil, fmt.Errorf("--interval %q: want daily, weekly, monthly, quarterly or yearly", f.interval)
		}
		opts = append(opts, partition.WithInterval(iv))
	}
	if has("premake") {
		if f.premake < 0 {
			return nil, fmt.Errorf("--premake must be 0 (the current partition only) or more, got %d", f.premake)
		}
		if iv != 0 && f.premake > partition.MaxPremake(iv) {
			return nil, premakeError(&partition.PremakeError{Premake: f.premake, Max: partition.MaxPremake(iv), Interval: iv})
		}
		opts = append(opts, partition.WithPremake(f.premake))
	}
	if has("retention") {
		if f.retentionDays < 0 {
			return nil, fmt.Errorf("--retention must be a number of days >= 0, got %d", f.retentionDays)
		}
		opts = append(opts, partition.WithRetention(time.Duration(f.retentionDays)*24*time.Hour))
	}
	if has("mode") {
		mode, err := partition.ParseRetentionMode(f.mode)
		if err != nil {
			return nil, fmt.Errorf("--mode %q: want drop, detach or archive", f.mode)
		}
		opts = append(opts, partition.WithRetentionMode(mode))
	}
	if has("archive-schema") {
		if strings.TrimSpace(f.archiveSchema) == "" {
			return nil, errors.New("--archive-schema must not be empty (archive by default)")
		}
		opts = append(opts, partition.WithArchiveSchema(f.archiveSchema))
	}
	if has("column") {
		if strings.TrimSpace(f.column) == "" {
			return nil, errors.New(`--column must not be empty ("timestamp" by default)`)
		}
		opts = append(opts, partition.WithColumn(f.column))
	}
	if has("no-default") {
		opts = append(opts, partition.WithDefaultPartition(!f.noDefault))
	}
	if has("create-table") {
		opts = append(opts, partition.WithCreateTable(f.createTable))
	}
	if has("lock-timeout") {
		if f.lockTimeout <= 0 {
			return nil, fmt.Errorf("--lock-timeout must be a positive duration (2s by default), got %v", f.lockTimeout)
		}
		opts = append(opts, partition.WithLockTimeout(f.lockTimeout))
	}
	if has("batch-size") {
		if f.batchSize < 1 || f.batchSize > maxBatchSize {
			return nil, fmt.Errorf("--batch-size must be between 1 and %d rows, got %d", maxBatchSize, f.batchSize)
		}
		opts = append(opts, partition.WithBatchSize(f.batchSize))
	}
	return opts, nil
}

// partitionCmd returns a command, without arguments, that checks its
// flags, runs read on the Manager they describe and prints its result
// (show); the library's errors are said in the command line's words.
func partitionCmd[T any](g *globals, f *partitionFlags, use, short string, read func(context.Context, *partition.Manager) (T, error), text func(io.Writer, T) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		opts, err := f.options(cmd)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		db, err := g.openDB(ctx)
		if err != nil {
			return err
		}
		defer db.Close()
		opts = append(opts, partition.WithProgress(func(p partition.Progress) {
			if p.Total > 0 {
				g.progress("%s: %d/%d", p.Step, p.Done, p.Total)
			} else {
				g.progress("%s: %d", p.Step, p.Done)
			}
		}))
		m, err := partition.New(db, opts...)
		if err != nil {
			return err
		}
		defer g.progressDone()
		v, err := read(ctx, m)
		if err != nil {
			return partitionError(use, f, err)
		}
		return show(g, v, text)
	}}
}

// interruptedError is an error after Ctrl-C that says how far the command
// got; main prints its interruptedAt after "interrupted".
type interruptedError struct {
	err    error
	detail string
}

func (e *interruptedError) Error() string         { return e.err.Error() }
func (e *interruptedError) Unwrap() error         { return e.err }
func (e *interruptedError) interruptedAt() string { return e.detail }

func premakeError(e *partition.PremakeError) error {
	return fmt.Errorf("--premake %d: at most %d for %s partitions (two years ahead); more only makes empty partitions that slow planning and every maintenance run",
		e.Premake, e.Max, e.Interval)
}

// partitionError says the library's errors in the command line's words:
// the flag to give, the command to run.
func partitionError(use string, f *partitionFlags, err error) error {
	table := partition.Table{Schema: f.schema, Name: f.table}
	var conflict *partition.IntervalConflictError
	var premake *partition.PremakeError
	var partial *partition.PartialError
	switch {
	case errors.As(err, &partial) && partial.Interrupted():
		return &interruptedError{err: err, detail: fmt.Sprintf("created %d of %d partitions of %s; each is complete: run it again to finish",
			partial.Done, partial.Total, partial.Table)}
	case errors.As(err, &conflict):
		return fmt.Errorf("--interval %s: %s has %s partitions (the newest is %s): leave out --interval (or give --interval %s) to keep them; "+
			"the interval of an existing table cannot be changed in place", conflict.Want, conflict.Table, conflict.Have, conflict.Partition, conflict.Have)
	case errors.As(err, &premake):
		return premakeError(premake)
	case errors.Is(err, partition.ErrNoTable) && use == "create":
		return fmt.Errorf("table %s does not exist: give --create-table to create it with the audit_log schema (`auditpg partition schema` prints it), or check --table and --schema", table)
	case errors.Is(err, partition.ErrNoTable):
		return fmt.Errorf("table %s does not exist: check --table and --schema (`auditpg partition create --create-table` creates it)", table)
	case errors.Is(err, partition.ErrNotPartitioned) && use != "convert":
		return fmt.Errorf("table %s is not partitioned: `auditpg partition convert` turns it into a partitioned table", table)
	case errors.Is(err, partition.ErrAlreadyPartitioned):
		return fmt.Errorf("table %s is already partitioned: nothing to convert (`auditpg partition list` shows its partitions)", table)
	case errors.Is(err, partition.ErrUnsupportedKey) && use == "convert":
		return fmt.Errorf("table %s has no timestamptz or timestamp column %q: name the time column with --column", table, f.column)
	case errors.Is(err, partition.ErrLockTimeout):
		return fmt.Errorf("%w (--lock-timeout sets the wait)", err)
	}
	return err
}

func writeConvertResult(w io.Writer, res *partition.ConvertResult) error {
	fmt.Fprintf(w, "converted %s: %d rows into %d %s partitions on %q in %v; the old table is %s (drop it once satisfied)\n",
		res.Table, res.Rows, len(res.Partitions), res.Interval, res.Column, res.Duration.Round(time.Millisecond), res.Backup)
	for _, warn := range res.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	return nil
}

// nameList joins names, the first ten and a count of the rest.
func nameList(names []string) string {
	const shown = 10
	if len(names) <= shown {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s ... and %d more (%s the last)", strings.Join(names[:shown], ", "), len(names)-shown, names[len(names)-1])
}

func writePartitionReport(w io.Writer, r *partition.Report) error {
	if len(r.Created) > 0 {
		fmt.Fprintf(w, "created %d partitions of %s: %s\n", len(r.Created), r.Table, nameList(r.Created))
	}
	if r.Moved > 0 {
		fmt.Fprintf(w, "moved %d rows out of the default partition (the partitions they went to are analyzed)\n", r.Moved)
	}
	verb := map[partition.RetentionMode]string{partition.Drop: "dropped", partition.Detach: "detached", partition.Archive: "archived"}
	for _, rm := range r.Removed {
		v := verb[rm.Mode]
		if r.DryRun {
			v = "would be " + v
		}
		why := "past the retention"
		if rm.Reason == "future" {
			why = "empty, beyond premake"
		}
		fmt.Fprintf(w, "%s [%s, %s) %s (%s)\n", rm.Name, rm.From.Format(time.RFC3339), rm.To.Format(time.RFC3339), v, why)
	}
	if len(r.Created) == 0 && r.Moved == 0 && len(r.Removed) == 0 {
		fmt.Fprintln(w, "nothing to do")
	}
	for _, warn := range r.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	return nil
}

func writePartitionList(w io.Writer, l *partition.Listing, exact bool) error {
	iv := "no regular partition yet"
	if l.Interval != 0 {
		iv = l.Interval.String()
	}
	fmt.Fprintf(w, "%s, partitioned on %q: %s\n", l.Table, l.Column, iv)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "partition\tfrom (UTC)\tto (UTC)\test. rows\tsize"
	if exact {
		header += "\trows"
	}
	fmt.Fprintln(tw, header)
	bound := func(t time.Time, def bool) string {
		switch {
		case def:
			return "DEFAULT"
		case t.IsZero():
			return "unbounded"
		}
		return t.Format("2006-01-02 15:04")
	}
	for _, p := range l.Partitions {
		est := "never analyzed"
		if p.EstimatedRows != nil {
			est = fmt.Sprint(*p.EstimatedRows)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", p.Name, bound(p.From, p.Default), bound(p.To, p.Default), est, bytesize.Human(p.SizeBytes))
		if p.ExactRows != nil {
			fmt.Fprintf(tw, "\t%d", *p.ExactRows)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, gap := range l.Gaps {
		fmt.Fprintf(w, "gap: [%s, %s) has no partition (`auditpg partition create` fills it)\n", gap.From.Format(time.RFC3339), gap.To.Format(time.RFC3339))
	}
	for _, o := range l.Overlaps {
		fmt.Fprintf(w, "overlap: %s and %s\n", o[0], o[1])
	}
	return nil
}

func writePartitionAnalysis(w io.Writer, a *partition.Analysis) error {
	fmt.Fprintf(w, "%s: %d %s partitions, %s (average %s), ", a.Table, a.TotalPartitions, a.Interval,
		bytesize.Human(a.TotalSizeBytes), bytesize.Human(a.AverageBytes))
	switch unknown := len(a.NotAnalyzedWithRows); {
	case unknown == 0:
		fmt.Fprintf(w, "about %d rows", a.EstimatedRows)
	case a.EstimatedRows == 0:
		fmt.Fprintf(w, "row count unknown: the %d partitions holding rows were never analyzed", unknown)
	default:
		fmt.Fprintf(w, "about %d rows in the analyzed partitions, an unknown number in %d never analyzed", a.EstimatedRows, unknown)
	}
	fmt.Fprintf(w, "\n%d future (%d beyond premake), %d empty, %d past the retention", a.Future, a.BeyondPremake, len(a.Empty), len(a.Expired))
	if a.DefaultRows >= 0 {
		fmt.Fprintf(w, ", %d rows in the default partition", a.DefaultRows)
	}
	fmt.Fprintln(w)
	if len(a.Recommendations) == 0 {
		_, err := fmt.Fprintln(w, "no recommendation: the partitioning looks healthy")
		return err
	}
	fmt.Fprintln(w, "recommendations:")
	for _, r := range a.Recommendations {
		fmt.Fprintln(w, "  -", r)
	}
	return nil
}
