package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/auditpg/auditpg/monitor"
	"github.com/auditpg/auditpg/monitor/driverstats"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newClientCmd) }

// snapshotSource is where the client commands read an application's driver
// statistics: the endpoint it mounts (auditpg.StatsHandler) or a file it
// wrote (Snapshot.WriteJSON).
type snapshotSource struct {
	url     string
	file    string
	headers []string
	timeout time.Duration
}

func (o *snapshotSource) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.url, "url", "", "the application's statistics endpoint (auditpg.StatsHandler), http or https")
	cmd.Flags().StringVar(&o.file, "file", "", "a statistics snapshot the application wrote (Snapshot.WriteJSON); - reads stdin")
	cmd.Flags().StringArrayVar(&o.headers, "header", nil, `a header for --url, "Name: value" (repeatable), e.g. "Authorization: Bearer $TOKEN"`)
	cmd.Flags().DurationVar(&o.timeout, "timeout", 10*time.Second, "how long --url may take to answer")
}

func (o *snapshotSource) given() bool { return o.url != "" || o.file != "" }

// check refuses flags that contradict one another or do not apply.
func (o *snapshotSource) check(cmd *cobra.Command) error {
	switch {
	case o.url != "" && o.file != "":
		return errors.New("give --url or --file, not both")
	case len(o.headers) > 0 && o.url == "":
		return errors.New("--header applies to --url only")
	case cmd.Flags().Changed("timeout") && o.url == "":
		return errors.New("--timeout applies to --url only")
	case o.timeout <= 0:
		return fmt.Errorf("--timeout %v: want a positive duration, e.g. 10s", o.timeout)
	}
	for _, h := range o.headers {
		if name, _, ok := strings.Cut(h, ":"); !ok || strings.TrimSpace(name) == "" {
			return fmt.Errorf(`--header %q: want "Name: value", e.g. "Authorization: Bearer $TOKEN"`, h)
		}
	}
	if o.url != "" {
		u, err := url.Parse(o.url)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--url %q: want an http or https URL, e.g. https://app.internal/debug/auditpg", o.url)
		}
	}
	return nil
}

// read reads the snapshot from --url or --file (stdin for -).
func (o *snapshotSource) read(ctx context.Context, stdin io.Reader) (*driverstats.Stats, error) {
	if o.file != "" {
		r := stdin
		name := "stdin"
		if o.file != "-" {
			f, err := os.Open(o.file)
			if err != nil {
				return nil, fmt.Errorf("--file: %w", err)
			}
			defer f.Close()
			r, name = f, o.file
		}
		s, err := driverstats.Decode(r)
		if err != nil {
			return nil, fmt.Errorf("--file %s: %w", name, err)
		}
		return s, nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return nil, fmt.Errorf("--url: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	for _, h := range o.headers {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("--url %s: no answer within --timeout %v", o.url, o.timeout)
		}
		return nil, fmt.Errorf("--url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		msg := strings.TrimSpace(strings.SplitN(string(body), "\n", 2)[0])
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (give the application's credentials with --header)"
		}
		return nil, fmt.Errorf("--url %s answered %s: %s%s", o.url, resp.Status, clip(msg, 200), hint)
	}
	s, err := driverstats.Decode(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("--url %s: %w", o.url, err)
	}
	return s, nil
}

func newClientCmd(g *globals) *cobra.Command {
	var src snapshotSource
	report := &cobra.Command{
		Use:   "report (--url URL | --file PATH)",
		Short: "Print an application's driver statistics, from its handler or snapshot: totals, pool, result cache, statements, slow queries",
		Long: `report prints the auditpg driver's statistics of an application: the
figures of its own *sql.DB, which only the application has. It reads them
from the endpoint the application mounts with auditpg.StatsHandler(db)
(behind its own authentication: pass credentials with --header), or from a
snapshot the application wrote with Snapshot.WriteJSON. It does not connect
to the database: for the server's view use monitor summary.

With --json it prints the snapshot as the application served it.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if !src.given() {
				return errors.New("client report reads the application's statistics: give --url with the address where the application serves auditpg.StatsHandler(db), or --file with a snapshot it wrote (Snapshot.WriteJSON; - for stdin)")
			}
			return src.check(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			g.progress("reading the application's statistics...")
			s, err := src.read(cmd.Context(), cmd.InOrStdin())
			if err != nil {
				g.progressDone()
				return err
			}
			return show(g, s.Snapshot, writeReport)
		},
	}
	src.flags(report)

	var hsrc snapshotSource
	var failOn string
	var overall monitor.Status
	health := &cobra.Command{
		Use:   "health [--url URL | --file PATH]",
		Short: "Judge health per component (healthy / warning / critical, with the reasons): the server, and an application's driver",
		Long: `health judges the server (connections, long queries, indexes, tables,
cache hit ratios, sequences, wraparound, partitions) and, with --url or
--file, the application's driver figures too (errors, failed connects,
pool waits, result cache hit ratio), read as client report reads them.
--fail-on makes the verdict the exit status, for a cron job or a probe.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if failOn != "" && failOn != string(monitor.Warning) && failOn != string(monitor.Critical) {
				return fmt.Errorf("--fail-on %q: want warning or critical", failOn)
			}
			return hsrc.check(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// The command's own connection pool is not the application's:
			// the driver's figures come only from --url or --file.
			read := func(*sql.DB) (monitor.DriverStats, error) { return nil, nil }
			if hsrc.given() {
				g.progress("reading the application's statistics...")
				s, err := hsrc.read(ctx, cmd.InOrStdin())
				if err != nil {
					g.progressDone()
					return err
				}
				read = driverstats.Fixed(s)
			}
			db, err := g.openDB(ctx)
			if err != nil {
				g.progressDone()
				return err
			}
			defer db.Close()
			m, err := monitor.New(db, monitor.WithDriverStats(read))
			if err != nil {
				return err
			}
			g.progress("reading the server's statistics...")
			h, err := m.Health(ctx)
			if err != nil {
				g.progressDone()
				return err
			}
			overall = h.Overall
			return show(g, h, writeHealth)
		},
		// PostRunE runs only after the report was read and printed.
		PostRunE: func(*cobra.Command, []string) error {
			if failOn != "" && (overall == monitor.Critical || overall == monitor.Status(failOn)) {
				return fmt.Errorf("health is %s", overall)
			}
			return nil
		},
	}
	health.Flags().StringVar(&failOn, "fail-on", "", "exit with status 1 when the overall health is this bad or worse: warning or critical")
	hsrc.flags(health)

	return group("client", "The application's side: its driver statistics (report) and the health judged with them", health, report)
}
