package auditpg_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/jackc/pgx/v5"
)

// The one-word switch: database/sql code, GORM and sqlx keep working, and
// every call is now timed and classified.
func Example() {
	db, err := sql.Open("auditpg", "postgres://app@localhost:5432/audit?auditpg_slow_query=500ms")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FROM audit_log`).Scan(&n); err != nil {
		log.Fatal(err)
	}
}

// Open takes options in code and applies the pool settings to the *sql.DB.
func ExampleOpen() {
	db, err := auditpg.Open("postgres://app@localhost:5432/audit",
		auditpg.WithSlowQueryThreshold(200*time.Millisecond),
		auditpg.WithSlowQueryCallback(func(q auditpg.SlowQuery) {
			log.Printf("slow: %s took %v", q.Fingerprint, q.Duration)
		}),
		auditpg.WithMaxOpenConns(10),
	)
	if err != nil {
		log.Fatal(err) // a bad option or DSN parameter is reported here, by name
	}
	defer db.Close()
}

// NewConnector is for sql.OpenDB, when the application manages the pool.
func ExampleNewConnector() {
	c, err := auditpg.NewConnector("host=localhost dbname=audit user=app", auditpg.WithMaxFingerprints(500))
	if err != nil {
		log.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
}

// Stats reports the calls made through a *sql.DB opened with auditpg, by
// either path.
func ExampleStats() {
	db, err := sql.Open("auditpg", "postgres://app@localhost:5432/audit")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	snap, err := auditpg.Stats(db)
	if err != nil {
		log.Fatal(err) // auditpg.ErrNotAuditpg for a *sql.DB of another driver
	}
	fmt.Println("queries:", snap.Totals.Queries, "slow:", snap.Totals.Slow)
	for _, st := range snap.Slowest {
		fmt.Printf("%-60s calls=%d p95=%v\n", st.Fingerprint, st.Calls, st.P95)
	}
}

// PgxConn reaches the *pgx.Conn under a connection, for pgx's own API:
// COPY, batches, LISTEN.
func ExamplePgxConn() {
	db, err := sql.Open("auditpg", "postgres://app@localhost:5432/audit")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) error {
		pc, err := auditpg.PgxConn(driverConn)
		if err != nil {
			return err
		}
		_, err = pc.CopyFrom(ctx, pgx.Identifier{"audit_log"}, []string{"action", "status"},
			pgx.CopyFromRows([][]any{{"login", "success"}}))
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}

// queryCounter is an Observer that counts queries by operation.
type queryCounter struct{ byOp map[string]int }

func (q *queryCounter) Start(ctx context.Context, ev *auditpg.Event) context.Context { return ctx }

func (q *queryCounter) End(ctx context.Context, ev *auditpg.Event) {
	if ev.Statement != nil {
		q.byOp[ev.Statement.Operation]++ // a real observer must be safe for concurrent use
	}
}

// WithObserver plugs code of your own into every call: it sees the SQL, its
// classification, the timing, the rows and the error.
func ExampleWithObserver() {
	counter := &queryCounter{byOp: map[string]int{}}
	db, err := auditpg.Open("postgres://app@localhost:5432/audit", auditpg.WithObserver(counter))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
}

// Classify tells what a statement does, without a server.
func ExampleClassify() {
	st := auditpg.Classify(`SELECT id, action FROM audit.audit_log WHERE organization_id = 'acme' AND id IN (1, 2, 3)`)
	fmt.Println(st.Summary)
	fmt.Println(st.Fingerprint)
	fmt.Println(st.Reads, st.Cacheable)

	st = auditpg.Classify(`WITH moved AS (DELETE FROM audit_log RETURNING *) SELECT count(*) FROM moved`)
	fmt.Println(st.Writes, st.ReadOnly, st.Uncacheable)
	// Output:
	// SELECT audit.audit_log
	// SELECT id, action FROM audit.audit_log WHERE organization_id = $1 AND id IN ($2 /*, ... */)
	// [audit.audit_log] true
	// [audit_log] false data-modifying WITH
}

// WithCache lets the result cache answer a read (in the default explicit
// mode, only reads that ask are cached); NoCache always goes to the server.
func ExampleWithCache() {
	db, err := sql.Open("auditpg", "postgres://app@localhost:5432/audit")
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var retention int
	err = db.QueryRowContext(auditpg.WithCache(ctx, time.Minute),
		`SELECT retention_days FROM org_settings WHERE organization_id = $1`, "acme").Scan(&retention)
	if err != nil {
		log.Fatal(err)
	}
	// The same from GORM or sqlx: a hint comment in the SQL.
	err = db.QueryRowContext(ctx,
		`/* auditpg:cache ttl=30s */ SELECT retention_days FROM org_settings WHERE organization_id = $1`, "acme").Scan(&retention)
	if err != nil {
		log.Fatal(err)
	}
	// A write through the driver invalidates org_settings at once.
	if _, err := db.ExecContext(ctx, `UPDATE org_settings SET retention_days = 90 WHERE organization_id = $1`, "acme"); err != nil {
		log.Fatal(err)
	}
}

// Invalidate is for writes the driver cannot see: a trigger that writes
// another table, a COPY through pgx, another process.
func ExampleInvalidate() {
	db, err := auditpg.Open("postgres://app@localhost:5432/audit", auditpg.WithCacheTables("audit_preset"))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if err := auditpg.Invalidate(db, "audit_preset"); err != nil {
		log.Fatal(err)
	}
}
