package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/pgtemp"
	"github.com/auditpg/auditpg/partition"
	"github.com/spf13/cobra"
)

// The demo's bounds: a workload of minutes at most, and no more clients
// than a small server takes.
const (
	maxDemoEvents    = 1_000_000
	maxDemoWorkers   = 64
	maxDemoInstances = 8
)

type demoOptions struct {
	events    int
	workers   int
	instances int
	slow      time.Duration
	keep      bool
	redis     string
}

func newDemoCmd(g *globals) *cobra.Command {
	o := demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run an audit-log workload through the driver and print its report",
		Long: `demo runs a realistic audit-log workload through the auditpg driver: event
writes, reads by organization and correlation id, small transactions, and a
few deliberately slow reports. It then prints the driver's report: the pool,
a table per fingerprint and the slow queries grouped by statement (the
report that client report prints for an application). The statistics are
reset once the schema is made, so they count the workload alone; the pool
line says how many connections were already open then.

With --instances N, the workers are spread over N instances of the
application, each a connector with a cache of its own, as N processes would
be. At the end, one instance changes a cached row again and again, and the
report says how soon each other instance's cache heard of it (the change
feed's window) and whether any of them served the old row after that.

Without --dsn or DATABASE_URL it starts a temporary PostgreSQL cluster from
the local binaries and removes it at the end. On a database of yours it works
in a schema of its own, auditpg_demo, dropped at the end unless --keep.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), g, o) },
	}
	cmd.Flags().IntVar(&o.events, "events", 3000, "audit events to write")
	cmd.Flags().IntVar(&o.workers, "workers", 4, "concurrent clients")
	cmd.Flags().IntVar(&o.instances, "instances", 1, "instances of the application, each with a cache of its own (1 to 8)")
	cmd.Flags().DurationVar(&o.slow, "slow", 50*time.Millisecond, "slow-query threshold")
	cmd.Flags().BoolVar(&o.keep, "keep", false, "keep the auditpg_demo schema")
	cmd.Flags().StringVar(&o.redis, "redis", "", "the result cache's shared Redis tier, redis://[user:password@]host:port/db (as auditpg_redis in the DSN)")
	return cmd
}

func runDemo(ctx context.Context, g *globals, o demoOptions) error {
	switch {
	case o.events < 1 || o.events > maxDemoEvents:
		return fmt.Errorf("--events %d: want 1 to %d", o.events, maxDemoEvents)
	case o.workers < 1 || o.workers > maxDemoWorkers:
		return fmt.Errorf("--workers %d: want 1 to %d", o.workers, maxDemoWorkers)
	case o.instances < 1 || o.instances > maxDemoInstances:
		return fmt.Errorf("--instances %d: want 1 to %d", o.instances, maxDemoInstances)
	case o.slow <= 0:
		return fmt.Errorf("--slow %v: want a positive duration, e.g. 50ms (the demo's slow reports take twice as long)", o.slow)
	}
	dsn := g.dsnOrEnv()
	if dsn == "" {
		g.progress("starting a temporary PostgreSQL cluster...")
		cluster, err := pgtemp.Start(ctx)
		if err != nil {
			return fmt.Errorf("no --dsn or DATABASE_URL, and a temporary cluster could not start: %w", err)
		}
		defer cluster.Stop()
		dsn = cluster.DSN()
	}
	// With OTEL_EXPORTER_OTLP_ENDPOINT set, every query becomes a span in
	// Jaeger (or any OTLP collector); otherwise this costs nothing.
	shutdown, telemetry, err := setupTelemetry(ctx, g)
	if err != nil {
		return err
	}
	defer shutdown(context.WithoutCancel(ctx))
	opts := append([]auditpg.Option{auditpg.WithSlowQueryThreshold(o.slow), auditpg.WithMaxOpenConns(o.workers)}, telemetry...)
	if o.redis != "" {
		opts = append(opts, auditpg.WithRedis(o.redis))
	}
	dbs := make([]*sql.DB, o.instances)
	for i := range dbs {
		db, err := auditpg.Open(dsn, opts...)
		if err != nil {
			if o.redis != "" && strings.Contains(err.Error(), "WithRedis") {
				return fmt.Errorf("--redis: %s", strings.TrimPrefix(err.Error(), "auditpg: WithRedis(<url>): "))
			}
			return err
		}
		defer db.Close()
		if err := db.PingContext(ctx); err != nil {
			return err
		}
		dbs[i] = db
	}
	db := dbs[0]
	if err := createDemoSchema(ctx, db); err != nil {
		return err
	}
	if !o.keep {
		defer db.ExecContext(context.WithoutCancel(ctx), `DROP SCHEMA auditpg_demo CASCADE`)
	}
	// Report the workload, not the set-up: the counts start again, and
	// the connections open now are reported as open at the start.
	for _, db := range dbs {
		if err := auditpg.ResetStats(db); err != nil {
			return err
		}
	}
	start := time.Now()
	if err := runWorkload(ctx, g, dbs, o); err != nil {
		return err
	}
	elapsed := time.Since(start)
	var across *acrossInstances
	if len(dbs) > 1 {
		if across, err = probeInstances(ctx, dbs); err != nil {
			return err
		}
	}
	snap, err := auditpg.Stats(db)
	if err != nil {
		return err
	}
	if g.json {
		if across == nil {
			return g.printJSON(snap)
		}
		return g.printJSON(struct {
			FirstInstance auditpg.Snapshot `json:"first_instance"`
			Across        *acrossInstances `json:"across_instances"`
		}{snap, across})
	}
	fmt.Fprintf(g.stdout, "auditpg demo: %s, %s, %s, in %v\n\n", plural(o.events, "event"), plural(o.workers, "worker"),
		plural(o.instances, "instance"), elapsed.Round(time.Millisecond))
	if across != nil {
		writeAcross(g.stdout, across)
		fmt.Fprintln(g.stdout, "\nThe first instance's report:")
	}
	return writeReport(g.stdout, snap)
}

// demoTable is the demo's audit_log: partition's table, in the demo's schema.
var demoTable = partition.Table{Schema: "auditpg_demo", Name: "audit_log"}

func createDemoSchema(ctx context.Context, db *sql.DB) error {
	if err := partition.CreateAuditLog(ctx, db, demoTable); err != nil {
		return fmt.Errorf("creating the demo schema: %w", err)
	}
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS auditpg_demo.org_settings (
			organization_id text PRIMARY KEY,
			retention_days int NOT NULL,
			data_classification text NOT NULL)`,
		`INSERT INTO auditpg_demo.org_settings
			SELECT 'org-' || name, 365, 'INTERNAL'
			FROM unnest(ARRAY['acme', 'globex', 'initech', 'umbrella', 'hooli']) AS name
			ON CONFLICT DO NOTHING`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("creating the demo schema: %w", err)
		}
	}
	return nil
}

var (
	demoOrgs    = []string{"org-acme", "org-globex", "org-initech", "org-umbrella", "org-hooli"}
	demoActions = []string{"auth.login", "auth.logout", "data.read", "data.update", "data.export", "admin.role_change"}
	demoStatus  = []string{"success", "success", "success", "failure", "attempt"}
)

// runWorkload spreads the events over the workers; each worker mixes
// writes, reads, transactions and, now and then, a slow report.
func runWorkload(ctx context.Context, g *globals, dbs []*sql.DB, o demoOptions) error {
	var (
		done     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range o.events {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			db := dbs[w%len(dbs)] // the workers are spread over the instances
			for i := range next {
				if err := demoStep(ctx, db, rng, i, o.slow); err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
				if n := done.Add(1); n%100 == 0 {
					g.progress("workload: %d/%d events", n, o.events)
				}
			}
		}()
	}
	wg.Wait()
	g.progressDone()
	return firstErr
}

func demoStep(ctx context.Context, db *sql.DB, rng *rand.Rand, i int, slow time.Duration) error {
	org := demoOrgs[rng.IntN(len(demoOrgs))]
	corr := fmt.Sprintf("req-%d", i/3) // a few events share a request
	// "timestamp" has no default in partition's table: the writer sets it.
	insert := `INSERT INTO auditpg_demo.audit_log
		("timestamp", principal_id, organization_id, action, target_resource_type, target_resource_id, status, correlation_id, details)
		VALUES (now(), $1, $2, $3, $4, $5, $6, $7, $8)`
	args := []any{fmt.Sprintf("user-%d", rng.IntN(200)), org, demoActions[rng.IntN(len(demoActions))],
		"document", fmt.Sprintf("doc-%d", rng.IntN(5000)), demoStatus[rng.IntN(len(demoStatus))], corr,
		fmt.Sprintf(`{"ip": "10.0.%d.%d", "agent": "demo"}`, rng.IntN(255), rng.IntN(255))}

	// Every event reads its organization's settings: a hot row, served by
	// the result cache (the hint asks for it), refreshed on every update.
	var retention int
	var class string
	err := db.QueryRowContext(ctx, `/* auditpg:cache ttl=1m */ SELECT retention_days, data_classification
		FROM auditpg_demo.org_settings WHERE organization_id = $1`, org).Scan(&retention, &class)
	if err != nil {
		return err
	}
	switch r := rng.IntN(100); {
	case r < 60:
		_, err = db.ExecContext(ctx, insert, args...)
	case r < 75:
		err = drain(db.QueryContext(ctx, `SELECT id, "timestamp", action, status FROM auditpg_demo.audit_log
			WHERE organization_id = $1 ORDER BY "timestamp" DESC LIMIT 50`, org))
	case r < 85:
		err = drain(db.QueryContext(ctx, `SELECT action, count(*) FROM auditpg_demo.audit_log
			WHERE organization_id = $1 GROUP BY action`, org))
	case r < 92:
		err = drain(db.QueryContext(ctx, `SELECT * FROM auditpg_demo.audit_log WHERE correlation_id = $1`, corr))
	case r < 93: // an administrator changes a setting: the cached row is invalidated
		_, err = db.ExecContext(ctx, `UPDATE auditpg_demo.org_settings SET retention_days = $2 WHERE organization_id = $1`,
			org, 30+rng.IntN(700))
	case r < 99:
		err = inTx(ctx, db, func(tx *sql.Tx) error {
			// Inside a transaction the cache steps aside (a bypass).
			if err := tx.QueryRowContext(ctx, `/* auditpg:cache */ SELECT retention_days FROM auditpg_demo.org_settings
				WHERE organization_id = $1`, org).Scan(&retention); err != nil {
				return err
			}
			for range 3 {
				if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
					return err
				}
			}
			return nil
		})
	default: // a deliberately slow compliance report
		err = drain(db.QueryContext(ctx, `SELECT pg_sleep($1::float8), count(*) FROM auditpg_demo.audit_log
			WHERE details->>'ip' LIKE '10.0.1.%'`, (2 * slow).Seconds()))
	}
	return err
}

func drain(rows *sql.Rows, err error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
	}
	return rows.Err()
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
