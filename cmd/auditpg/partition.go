package main

import (
	"context"
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

// partitionFlags are the flags of every partition command.
type partitionFlags struct {
	table         string
	schema        string
	interval      string
	retentionDays int
	premake       int
	dryRun        bool
	mode          string
	archiveSchema string
	lockTimeout   time.Duration
	batchSize     int
	exact         bool
	seedIndexes   bool
	noDefault     bool
}

func newPartitionCmd(g *globals) *cobra.Command {
	f := &partitionFlags{}
	cmd := &cobra.Command{
		Use:   "partition",
		Short: "Manage the time partitions of audit_log: create, list, analyze, cleanup, convert, schema",
		Long: `partition manages the time-range partitions of audit_log (or --table): bounds in
UTC, partitions built standalone and attached without blocking inserts, rows
moved out of the default partition, retention that never touches the current
partition. The logic lives in the partition package; see its documentation.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.table, "table", "audit_log", "the partitioned table")
	pf.StringVar(&f.schema, "schema", "", "the table's schema (default: the search_path)")
	pf.StringVar(&f.interval, "interval", "monthly", "partition interval: daily, weekly, monthly, quarterly or yearly")
	pf.IntVar(&f.retentionDays, "retention", 0, "retention in days: cleanup removes partitions entirely older, analyze reports them (0: keep all)")
	pf.IntVar(&f.premake, "premake", 4, "future partitions kept ready")
	pf.DurationVar(&f.lockTimeout, "lock-timeout", 2*time.Second, "lock_timeout of each DDL step (retried)")
	pf.IntVar(&f.batchSize, "batch-size", 10000, "rows per committed batch when moving or copying")
	pf.BoolVar(&f.noDefault, "no-default", false, "make no default partition")

	create := partitionCmd(g, f, "create", "Create the table if missing, the current and premade partitions; move rows out of the default partition",
		func(ctx context.Context, m *partition.Manager) (*partition.Report, error) { return m.Create(ctx) }, writePartitionReport)
	list := partitionCmd(g, f, "list", "List partitions with bounds (UTC), estimated rows and size; gaps and overlaps",
		func(ctx context.Context, m *partition.Manager) (*partition.Listing, error) {
			return m.List(ctx, f.exact)
		},
		func(w io.Writer, l *partition.Listing) error { return writePartitionList(w, l, f.exact) })
	list.Flags().BoolVar(&f.exact, "exact", false, "also count each partition's rows exactly (scans every partition)")
	analyze := partitionCmd(g, f, "analyze", "Summarize the partitions and recommend what to change",
		func(ctx context.Context, m *partition.Manager) (*partition.Analysis, error) { return m.Analyze(ctx) }, writePartitionAnalysis)
	cleanup := partitionCmd(g, f, "cleanup", "Apply the retention: drop, detach or archive partitions entirely older than --retention days",
		func(ctx context.Context, m *partition.Manager) (*partition.Report, error) {
			return m.Cleanup(ctx, f.dryRun)
		}, writePartitionReport)
	cleanup.PreRunE = func(*cobra.Command, []string) error {
		if f.retentionDays <= 0 {
			return fmt.Errorf("cleanup needs --retention DAYS (a positive number of days)")
		}
		return nil
	}
	cleanup.Flags().BoolVar(&f.dryRun, "dry-run", false, "list what would go, change nothing")
	cleanup.Flags().StringVar(&f.mode, "mode", "drop", "what to do with expired partitions: drop, detach or archive")
	cleanup.Flags().StringVar(&f.archiveSchema, "archive-schema", "archive", "schema that --mode archive moves partitions into")
	convert := partitionCmd(g, f, "convert", "Convert an unpartitioned table into a partitioned one, copying in batches; the old one is kept as <table>_unpartitioned",
		func(ctx context.Context, m *partition.Manager) (*partition.ConvertResult, error) {
			return m.Convert(ctx)
		}, writeConvertResult)
	schema := &cobra.Command{
		Use:   "schema",
		Short: "Print the audit_log DDL (partitioned parent, primary key, indexes, default partition) for a migration tool",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts []partition.SchemaOption
			if f.seedIndexes {
				opts = append(opts, partition.WithSeedIndexes())
			}
			if f.noDefault {
				opts = append(opts, partition.WithoutDefaultPartition())
			}
			_, err := io.WriteString(g.stdout, partition.AuditLogSchema(partition.Table{Schema: f.schema, Name: f.table}, opts...))
			return err
		},
	}
	schema.Flags().BoolVar(&f.seedIndexes, "seed-indexes", false, "declare all fourteen candidate indexes, not only the five kept ones")
	cmd.AddCommand(create, list, analyze, cleanup, convert, schema)
	return cmd
}

// withPartition opens the database and builds the Manager the flags describe.
func withPartition(ctx context.Context, g *globals, f *partitionFlags, run func(context.Context, *partition.Manager) error) error {
	iv, err := partition.ParseInterval(f.interval)
	if err != nil {
		return err
	}
	mode := partition.Drop
	if f.mode != "" {
		if mode, err = partition.ParseRetentionMode(f.mode); err != nil {
			return err
		}
	}
	if f.retentionDays < 0 {
		return fmt.Errorf("--retention must be a number of days >= 0, got %d", f.retentionDays)
	}
	db, err := g.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	opts := []partition.Option{
		partition.WithTable(partition.Table{Schema: f.schema, Name: f.table}),
		partition.WithInterval(iv),
		partition.WithPremake(f.premake),
		partition.WithRetention(time.Duration(f.retentionDays) * 24 * time.Hour),
		partition.WithRetentionMode(mode),
		partition.WithDefaultPartition(!f.noDefault),
		partition.WithLockTimeout(f.lockTimeout),
		partition.WithBatchSize(f.batchSize),
		partition.WithProgress(func(p partition.Progress) {
			if p.Total > 0 {
				g.progress("%s: %d/%d", p.Step, p.Done, p.Total)
			} else {
				g.progress("%s: %d", p.Step, p.Done)
			}
		}),
	}
	if f.archiveSchema != "" {
		opts = append(opts, partition.WithArchiveSchema(f.archiveSchema))
	}
	m, err := partition.New(db, opts...)
	if err != nil {
		return err
	}
	defer g.progressDone()
	return run(ctx, m)
}

// partitionCmd returns a command, without arguments, that runs read on the
// Manager the flags describe and prints its result (show).
func partitionCmd[T any](g *globals, f *partitionFlags, use, short string, read func(context.Context, *partition.Manager) (T, error), text func(io.Writer, T) error) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		return withPartition(cmd.Context(), g, f, func(ctx context.Context, m *partition.Manager) error {
			v, err := read(ctx, m)
			if err != nil {
				return err
			}
			return show(g, v, text)
		})
	}}
}

func writeConvertResult(w io.Writer, res *partition.ConvertResult) error {
	fmt.Fprintf(w, "converted %s: %d rows into %d partitions in %v; the old table is %s (drop it once satisfied)\n",
		res.Table, res.Rows, len(res.Partitions), res.Duration.Round(time.Millisecond), res.Backup)
	for _, warn := range res.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
	return nil
}

func writePartitionReport(w io.Writer, r *partition.Report) error {
	if len(r.Created) > 0 {
		fmt.Fprintf(w, "created %d partitions: %s\n", len(r.Created), strings.Join(r.Created, ", "))
	}
	if r.Moved > 0 {
		fmt.Fprintf(w, "moved %d rows out of the default partition\n", r.Moved)
	}
	verb := map[partition.RetentionMode]string{partition.Drop: "dropped", partition.Detach: "detached", partition.Archive: "archived"}
	for _, rm := range r.Removed {
		v := verb[rm.Mode]
		if r.DryRun {
			v = "would be " + v
		}
		fmt.Fprintf(w, "%s [%s, %s) %s\n", rm.Name, rm.From.Format(time.RFC3339), rm.To.Format(time.RFC3339), v)
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
		fmt.Fprintf(w, "gap: [%s, %s) has no partition\n", gap.From.Format(time.RFC3339), gap.To.Format(time.RFC3339))
	}
	for _, o := range l.Overlaps {
		fmt.Fprintf(w, "overlap: %s and %s\n", o[0], o[1])
	}
	return nil
}

func writePartitionAnalysis(w io.Writer, a *partition.Analysis) error {
	fmt.Fprintf(w, "%s: %d partitions, %s (average %s), about %d rows", a.Table, a.TotalPartitions,
		bytesize.Human(a.TotalSizeBytes), bytesize.Human(a.AverageBytes), a.EstimatedRows)
	if a.NotAnalyzed > 0 {
		fmt.Fprintf(w, " (%d partitions never analyzed)", a.NotAnalyzed)
	}
	fmt.Fprintf(w, "\n%d future, %d empty, %d past the retention", a.Future, len(a.Empty), len(a.Expired))
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
