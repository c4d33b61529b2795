package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/auditpg/auditpg/internal/webui"
	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newServeCmd) }

// serveOptions are serve's flags.
type serveOptions struct {
	listen        string
	listenPublic  bool
	allowActions  bool
	retentionDays int
	sampleEvery   time.Duration
}

func newServeCmd(g *globals) *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve [--listen 127.0.0.1:8080] [--allow-actions]",
		Short: "Serve a web dashboard of the database: health, statements, plans, indexes, tables and partitions, maintenance",
		Long: `serve runs a web dashboard of the database, in the manner of PgHero: the
health with its reasons, the statements of pg_stat_statements (sortable), a
statement's plan (EXPLAIN, read-only, a statement with $n as its generic
plan), indexes (unused, duplicate, invalid, suggestions checked with HypoPG),
tables and partitions (sizes, coverage ahead of now, gaps, retention), the
maintenance plan, and charts of the last hour.

It is read-only unless --allow-actions, which lets the Maintenance page run
its plan (a POST carrying the page's token). It listens on loopback only
unless --listen-public: its pages name the database's statements and tables
and it has no authentication of its own; to reach it from elsewhere, use an
SSH tunnel (ssh -L 8080:127.0.0.1:8080 host) or put an authenticating proxy
in front and give --listen-public.

The command line's own connection pool is not the application's: the Cache
page says how to see an application's result cache (auditpg.Handler, mounted
in the application).`,
		Example: `  auditpg serve --dsn postgres://monitor@db.internal/app
  auditpg serve --listen 127.0.0.1:9090 --allow-actions --retention 365`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if g.json {
				return errors.New("serve prints no JSON: leave out --json (the dashboard's pages are HTML)")
			}
			if o.retentionDays < 0 || time.Duration(o.retentionDays)*24*time.Hour > webui.MaxRetention {
				return flagError("retention", o.retentionDays, "want a number of days from 0 (none) to 36500")
			}
			if o.sampleEvery < webui.MinSampleEvery || o.sampleEvery > webui.MaxSampleEvery {
				return flagError("sample-every", o.sampleEvery, fmt.Sprintf("want %v to %v, e.g. 30s", webui.MinSampleEvery, webui.MaxSampleEvery))
			}
			_, err := listenHosts(o.listen, o.listenPublic)
			return err
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), g, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "the `address` to listen on, host:port (port 0: any free port)")
	f.BoolVar(&o.listenPublic, "listen-public", false, "allow an address other than loopback: the dashboard has no authentication of its own")
	f.BoolVar(&o.allowActions, "allow-actions", false, "let the Maintenance page run its plan (VACUUM, ANALYZE, REINDEX CONCURRENTLY)")
	f.IntVar(&o.retentionDays, "retention", 0, "how many days partitions are kept, to report those past it (0: none)")
	f.DurationVar(&o.sampleEvery, "sample-every", webui.DefaultSampleEvery, "how often the charts' figures are sampled, 1s to 10m")
	return cmd
}

// listenHosts checks --listen and returns the Host header names the
// dashboard answers to: on loopback, the loopback names only (a page of
// another site cannot then reach it through DNS rebinding); with
// --listen-public, any (nil).
func listenHosts(listen string, public bool) ([]string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, flagError("listen", fmt.Sprintf("%q", listen), "want host:port, e.g. 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, flagError("listen", fmt.Sprintf("%q", listen), "want a port number from 0 to 65535")
	}
	if public {
		return nil, nil
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		where := host
		if where == "" {
			where = "every interface"
		}
		return nil, flagError("listen", fmt.Sprintf("%q", listen), fmt.Sprintf("%s is not loopback, and the dashboard has no authentication of its own: listen on 127.0.0.1 and use an SSH tunnel, or give --listen-public behind an authenticating proxy", where))
	}
	return []string{"localhost", "127.0.0.1", "::1", host}, nil
}

// dsnLabel names the database for the dashboard's header: user, host,
// port and database, never the password or another parameter.
func dsnLabel(dsn string) string {
	c, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "(the DSN does not parse)"
	}
	return fmt.Sprintf("%s@%s/%s", c.User, net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port))), c.Database)
}

func serve(ctx context.Context, g *globals, o serveOptions) error {
	hosts, err := listenHosts(o.listen, o.listenPublic)
	if err != nil {
		return err
	}
	db, err := g.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	h, err := webui.New(webui.Config{
		DB:           db,
		Source:       dsnLabel(g.dsnOrEnv()),
		AllowActions: o.allowActions,
		Retention:    time.Duration(o.retentionDays) * 24 * time.Hour,
		SampleEvery:  o.sampleEvery,
		AllowedHosts: hosts,
		// Metrics: the Prometheus metrics handler is mounted here (at /metrics).
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	mode := "read-only (--allow-actions lets the Maintenance page run its plan)"
	if o.allowActions {
		mode = "actions allowed: the Maintenance page runs its plan when asked"
	}
	fmt.Fprintf(g.stdout, "auditpg serve: http://%s/ for %s, %s; Ctrl-C stops it\n", ln.Addr(), dsnLabel(g.dsnOrEnv()), mode)
	if o.listenPublic {
		fmt.Fprintf(g.stderr, "auditpg serve: WARNING: --listen-public: anyone who reaches %s sees the database's statements and tables; the dashboard has no authentication of its own\n", ln.Addr())
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx) // the pages in flight get 5 s; serve stops either way
		return nil
	}
}
