package auditpg

import (
	"context"
	"database/sql"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// queryCounter is a pgx.QueryTracer that counts the queries pgx starts.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}

func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// targetRecorder keeps the Target of every event it sees.
type targetRecorder struct {
	mu      sync.Mutex
	targets map[Op][]*Target
}

func (r *targetRecorder) Start(ctx context.Context, _ *Event) context.Context { return ctx }

func (r *targetRecorder) End(_ context.Context, ev *Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.targets == nil {
		r.targets = map[Op][]*Target{}
	}
	r.targets[ev.Op] = append(r.targets[ev.Op], ev.Target)
}

func (r *targetRecorder) of(op Op) []*Target {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Target(nil), r.targets[op]...)
}

// TestRegisteredConnConfig opens a *pgx.ConnConfig registered with pgx by the
// name stdlib.RegisterConnConfig returns: what the config carries (tracer,
// dialer, AfterConnect) works, auditpg's settings come from options, and the
// connector learns its Target from the connection.
func TestRegisteredConnConfig(t *testing.T) {
	ctx := context.Background()
	pc, err := pgx.ParseConfig(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	var tracer queryCounter
	var dials, afterConnect atomic.Int64
	pc.Tracer = &tracer
	pc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	pc.AfterConnect = func(ctx context.Context, c *pgconn.PgConn) error {
		afterConnect.Add(1)
		_, err := c.Exec(ctx, `SET application_name = 'auditpg-registered'`).ReadAll()
		return err
	}
	name := stdlib.RegisterConnConfig(pc)
	t.Cleanup(func() { stdlib.UnregisterConnConfig(name) })

	var rec targetRecorder
	db, err := Open(name, WithCacheMode(CacheAll), WithInvalidation(InvalidateLocal), WithObserver(&rec))
	c, cerr := connectorOf(db)
	if err == nil && cerr == nil && c.Target() != (Target{}) {
		t.Errorf("Target before any connection = %+v, want the zero Target", c.Target())
	}
	db = testdb.Opened(t, db, err) // pings: the first connection
	want := Target{Host: pc.Host, Port: pc.Port, Database: pc.Database, User: pc.User}
	if got := c.Target(); got != want {
		t.Errorf("Target after the first connection = %+v, want %+v", got, want)
	}

	mustExec(t, db, `DROP TABLE IF EXISTS regcfg_item`)
	mustExec(t, db, `CREATE TABLE regcfg_item (id int PRIMARY KEY, v text)`)
	mustExec(t, db, `INSERT INTO regcfg_item VALUES (1, 'one')`)
	if err := ResetStats(db); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if v := readV(t, db, ctx, "regcfg_item", 1); v != "one" {
			t.Fatalf("read %q, want one", v)
		}
	}
	if s := cacheStats(t, db); s.Misses != 1 || s.Fills != 1 || s.Hits != 1 {
		t.Errorf("cache after two reads: %+v, want 1 miss, 1 fill, 1 hit", s)
	}
	var app string
	if err := db.QueryRowContext(NoCache(ctx), `SELECT current_setting('application_name')`).Scan(&app); err != nil || app != "auditpg-registered" {
		t.Errorf("application_name = %q (%v): want the one AfterConnect set", app, err)
	}
	if tracer.n.Load() == 0 || dials.Load() == 0 || afterConnect.Load() == 0 {
		t.Errorf("the config's tracer saw %d queries, its dialer made %d connections, AfterConnect ran %d times; want each at least once",
			tracer.n.Load(), dials.Load(), afterConnect.Load())
	}
	shared := c.target.Load()
	for _, op := range []Op{OpConnect, OpExec, OpQuery} {
		ts := rec.of(op)
		if len(ts) == 0 {
			t.Errorf("no %s event", op)
		}
		for _, tg := range ts {
			if tg != shared {
				t.Errorf("a %s event's Target = %v, want the connector's %+v (one pointer)", op, tg, want)
				break
			}
		}
	}
	sc, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = sc.Raw(func(dc any) error {
		// The cache session's scope is the connection's server.
		if ic := dc.(*pooledConn).ic; ic.target == nil || ic.target.Host != pc.Host || ic.target.Port != pc.Port {
			t.Errorf("connection target = %v, want host %s port %d", ic.target, pc.Host, pc.Port)
		}
		return nil
	})
	sc.Close()
	if err != nil {
		t.Fatal(err)
	}

	// sql.Open takes the name too, with auditpg's defaults.
	plain := testdb.Open(t, DriverName, name)
	if err := plain.QueryRowContext(ctx, `SELECT 1`).Scan(new(int)); err != nil {
		t.Errorf("sql.Open(%q): %v", name, err)
	}
	if _, err := Stats(plain); err != nil {
		t.Errorf("Stats: %v", err)
	}

	// Once unregistered, new connections fail, as they do with pgx.
	stdlib.UnregisterConnConfig(name)
	db.SetMaxIdleConns(0) // the next query needs a new connection
	err = db.PingContext(ctx)
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "RegisterConnConfig") {
		t.Errorf("ping after UnregisterConnConfig: %v, want an error naming %s and RegisterConnConfig", err, name)
	}
}

func TestUnregisteredConnConfigName(t *testing.T) {
	db, err := sql.Open(DriverName, "registeredConnConfig999")
	if err != nil {
		t.Fatalf("sql.Open: %v; pgx looks registered names up at connect, and so does auditpg", err)
	}
	defer db.Close()
	err = db.Ping()
	if err == nil || !strings.Contains(err.Error(), "registeredConnConfig999") || !strings.Contains(err.Error(), "stdlib.RegisterConnConfig") {
		t.Errorf("ping: %v, want an error that names registeredConnConfig999 and stdlib.RegisterConnConfig", err)
	}
	// Anything else that does not parse fails at once, as before.
	for _, dsn := range []string{"registeredConnConfig", "registeredConnConfig1x", "notAConnConfig0"} {
		if _, err := sql.Open(DriverName, dsn); err == nil || !strings.Contains(err.Error(), "cannot parse") {
			t.Errorf("sql.Open(%q): %v, want pgx's parse error", dsn, err)
		}
	}
}
