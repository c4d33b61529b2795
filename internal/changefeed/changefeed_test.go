package changefeed

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib"
)

var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

func TestPayloadRoundTrip(t *testing.T) {
	for _, c := range [][2]string{
		{"public", "audit_log"},
		{"Mixed Case", `a "quoted" name`},
		{"dots.in", "the.name"},
		{"é", "ü"},
	} {
		p := Payload(c[0], c[1])
		schema, table, all, err := ParsePayload(p)
		if err != nil || all || schema != c[0] || table != c[1] {
			t.Errorf("ParsePayload(Payload(%q, %q) = %s) = %q, %q, %v, %v", c[0], c[1], p, schema, table, all, err)
		}
	}
	if _, _, all, err := ParsePayload(All); !all || err != nil {
		t.Errorf("ParsePayload(All) = all %v, %v; want all", all, err)
	}
	// format('%I.%I') quotes only the names that need it.
	if schema, table, _, err := ParsePayload(`public."Audit Log"`); err != nil || schema != "public" || table != "Audit Log" {
		t.Errorf(`ParsePayload(public."Audit Log") = %q, %q, %v`, schema, table, err)
	}
	for _, bad := range []string{"", "audit_log", `"a"`, `"a"."b`, `"a"."b".`, `a.`, `.b`, `a..b`, `"a"x"b"`, `a"x.b`, `"a"."b"."c"`} {
		if _, _, _, err := ParsePayload(bad); err == nil {
			t.Errorf("ParsePayload(%s): no error", bad)
		}
	}
}

// recorder is a Listener's callbacks, recorded.
type recorder struct {
	mu       sync.Mutex
	payloads []string
	ups      int
	downs    []error
	changed  chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) listener(t *testing.T) *Listener {
	cfg, err := pgconn.ParseConfig(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Config: cfg, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Changed: func(p string) { r.mu.Lock(); r.payloads = append(r.payloads, p); r.mu.Unlock(); r.poke() },
		Up:      func() { r.mu.Lock(); r.ups++; r.mu.Unlock(); r.poke() },
		Down:    func(err error) { r.mu.Lock(); r.downs = append(r.downs, err); r.mu.Unlock(); r.poke() },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Run returned %v; want context.Canceled", err)
		}
	})
	return l
}

func (r *recorder) poke() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// await waits up to 10s for cond, checked after each callback.
func (r *recorder) await(t *testing.T, what string, cond func(r *recorder) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("waited 10s for %s; payloads %q, ups %d, downs %v", what, r.payloads, r.ups, r.downs)
		}
	}
}

// take returns the payloads received so far and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.payloads
	r.payloads = nil
	return p
}

// TestTriggersPublishEveryWriter: the statement triggers publish each kind
// of write, from any connection, at commit, once a transaction and table,
// naming the partitioned table above a partition.
func TestTriggersPublishEveryWriter(t *testing.T) {
	ctx := context.Background()
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	q := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	testdb.Exec(t, db, `CREATE TABLE `+q("parent")+` (id int PRIMARY KEY)`)
	testdb.Exec(t, db, `CREATE TABLE `+q(`child "x"`)+` (id int REFERENCES `+q("parent")+` ON DELETE CASCADE)`)
	testdb.Exec(t, db, `CREATE TABLE `+q("log")+` (at date NOT NULL) PARTITION BY RANGE (at)`)
	testdb.Exec(t, db, `CREATE TABLE `+q("log_2026")+` PARTITION OF `+q("log")+` FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')`)
	testdb.Exec(t, db, InstallFunctionSQL(schema))
	for _, name := range []string{"parent", `child "x"`, "log", "log_2026"} {
		testdb.Exec(t, db, InstallTriggerSQL(pgx.Identifier{schema, name}, schema))
		testdb.Exec(t, db, InstallTriggerSQL(pgx.Identifier{schema, name}, schema)) // idempotent
	}

	r := newRecorder()
	r.listener(t)
	r.await(t, "the first Up", func(r *recorder) bool { return r.ups == 1 })

	expect := func(what string, want ...string) {
		t.Helper()
		r.await(t, what, func(r *recorder) bool { return len(r.payloads) >= len(want) })
		time.Sleep(50 * time.Millisecond) // room for a payload too many
		got := names(t, schema, r.take())
		if strings.Join(got, " | ") != strings.Join(want, " | ") {
			t.Errorf("%s: tables %q; want %q", what, got, want)
		}
	}

	testdb.Exec(t, db, `INSERT INTO `+q("parent")+` SELECT generate_series(1, 100)`)
	expect("an INSERT of 100 rows", "parent")

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		testdb.Exec(t, tx, `INSERT INTO `+q(`child "x"`)+` VALUES ($1)`, i)
	}
	testdb.Exec(t, tx, `UPDATE `+q("parent")+` SET id = id + 1000 WHERE id > 50`)
	time.Sleep(100 * time.Millisecond)
	if got := r.take(); len(got) != 0 {
		t.Errorf("before COMMIT, received %q; want nothing (NOTIFY is delivered at commit)", got)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	expect("a transaction of 5 inserts and an update", `child "x"`, "parent")

	testdb.Exec(t, db, `DELETE FROM `+q("parent")+` WHERE id = 1`)
	expect("a DELETE that cascades", "parent", `child "x"`)

	testdb.Exec(t, db, `INSERT INTO `+q("log_2026")+` VALUES ('2026-06-01')`)
	expect("an INSERT into a partition", "log_2026", "log")
	testdb.Exec(t, db, `INSERT INTO `+q("log")+` VALUES ('2026-06-02')`)
	expect("an INSERT through the partitioned table", "log")

	conn, err := pgx.Connect(ctx, testDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "parent"}, []string{"id"}, pgx.CopyFromRows([][]any{{7001}, {7002}})); err != nil {
		t.Fatal(err)
	}
	expect("COPY", "parent")

	testdb.Exec(t, db, `TRUNCATE `+q("parent")+` CASCADE`)
	r.await(t, "TRUNCATE ... CASCADE", func(r *recorder) bool { return len(r.payloads) >= 2 })
	time.Sleep(50 * time.Millisecond)
	got := names(t, schema, r.take())
	if len(got) != 2 || !contains(got, "parent") || !contains(got, `child "x"`) {
		t.Errorf("TRUNCATE ... CASCADE: payloads %q; want parent and child", got)
	}

	testdb.Exec(t, tx2(t, db, q("parent")), `SELECT 1`)
	if got := r.take(); len(got) != 0 {
		t.Errorf("a rolled-back write: received %q; want nothing", got)
	}

	for _, name := range []string{"parent", `child "x"`, "log", "log_2026"} {
		testdb.Exec(t, db, UninstallTriggerSQL(pgx.Identifier{schema, name}))
		testdb.Exec(t, db, UninstallTriggerSQL(pgx.Identifier{schema, name}))
	}
	testdb.Exec(t, db, UninstallFunctionSQL(schema))
	testdb.Exec(t, db, `INSERT INTO `+q("parent")+` VALUES (1)`)
	time.Sleep(100 * time.Millisecond)
	if got := r.take(); len(got) != 0 {
		t.Errorf("after uninstalling: received %q; want nothing", got)
	}
}

// tx2 writes to table in a transaction it rolls back, and returns the
// database to go on with.
func tx2(t *testing.T, db *sql.DB, table string) *sql.DB {
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, tx, `INSERT INTO `+table+` VALUES (424242)`)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	return db
}

// names returns the tables payloads name, which must be in schema.
func names(t *testing.T, schema string, payloads []string) []string {
	t.Helper()
	var out []string
	for _, p := range payloads {
		s, table, all, err := ParsePayload(p)
		if err != nil || all || s != schema {
			t.Errorf("payload %q: schema %q, all %v, %v; want a table of %q", p, s, all, err, schema)
		}
		out = append(out, table)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// TestListenerReconnects: a listener whose backend is terminated reports
// Down, reconnects, reports Up, and receives what is sent after.
func TestListenerReconnects(t *testing.T) {
	db := testdb.Open(t, "pgx", testDSN)
	r := newRecorder()
	r.listener(t)
	r.await(t, "the first Up", func(r *recorder) bool { return r.ups == 1 })

	var n int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, ListenerName).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d listening backends, %v; want 1", n, err)
	}
	r.await(t, "Down, then Up again", func(r *recorder) bool { return len(r.downs) == 1 && r.ups == 2 })
	testdb.Exec(t, db, `SELECT pg_notify($1, $2)`, Channel, All)
	r.await(t, "the notification sent after the reconnection", func(r *recorder) bool { return len(r.payloads) == 1 })
	if got := r.take(); got[0] != All {
		t.Errorf("received %q; want %q", got, All)
	}
}

// TestPublisher: what is published reaches a listener, once, names with
// quotes, commas and backslashes included; a queue too long becomes All.
func TestPublisher(t *testing.T) {
	r := newRecorder()
	r.listener(t)
	r.await(t, "the first Up", func(r *recorder) bool { return r.ups == 1 })

	cfg, err := pgconn.ParseConfig(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	var sent atomic.Int64
	p := &Publisher{Config: cfg, Sent: func(n int) { sent.Add(int64(n)) }}
	want := []string{Payload("s", `a "b", c`), Payload("", "plain"), Payload("x", `back\slash`)}
	// Queued before Run takes a batch: the repeat is folded, sent once.
	p.Publish(want...)
	p.Publish(want[0])
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Run returned %v", err)
		}
	}()
	r.await(t, "the published payloads", func(r *recorder) bool { return len(r.payloads) >= 3 })
	time.Sleep(50 * time.Millisecond)
	got := r.take()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("received %q; want %q", got, want)
	}

	// Past maxPending distinct tables, the queue is one All.
	many := make([]string, maxPending+1)
	for i := range many {
		many[i] = Payload("s", fmt.Sprint("t", i))
	}
	q := &Publisher{}
	q.Publish(many...)
	if batch := q.take(); len(batch) != 1 || batch[0] != All {
		t.Errorf("%d pending tables: batch %q; want [All]", len(many), batch)
	}
}

// TestPlanInstall: installing names each table or every table, is
// idempotent, shows in the status, publishes DDL through the event trigger
// (the test user is a superuser), and uninstalling removes it all.
func TestPlanInstall(t *testing.T) {
	ctx := context.Background()
	db := testdb.Open(t, "pgx", testDSN)
	schema := testdb.Schema(t, db)
	q := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	testdb.Exec(t, db, `CREATE TABLE `+q("one")+` (id int)`)
	testdb.Exec(t, db, `CREATE TABLE `+q("Two")+` (id int)`)
	testdb.Exec(t, db, `CREATE VIEW `+q("a_view")+` AS SELECT 1`)

	if _, err := PlanInstall(ctx, db, schema, []string{q("one"), q("nope"), q("a_view")}); err == nil ||
		!strings.Contains(err.Error(), "nope") || !strings.Contains(err.Error(), "a_view") {
		t.Errorf("a plan for a missing table and a view: %v; want an error naming both", err)
	}
	p, err := PlanInstall(ctx, db, schema, []string{q("one"), q("Two")})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Tables) != 2 || p.Tables[1].Name != "Two" || p.Tables[1].Schema != schema || !p.DDLTrigger {
		t.Fatalf("plan %+v; want the two tables, schema-qualified, and the DDL trigger", p)
	}
	for range 2 {
		if err := p.Apply(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	st, err := ReadStatus(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, ts := range st.Tables {
		if ts.Table.Schema == schema {
			got[ts.Table.Name] = ts.Trigger
		}
	}
	if !got["one"] || !got["Two"] || len(got) != 2 || !st.DDLTrigger {
		t.Errorf("status after install: %v, DDL trigger %v; want both tables' triggers and the DDL trigger", got, st.DDLTrigger)
	}

	r := newRecorder()
	r.listener(t)
	r.await(t, "the first Up", func(r *recorder) bool { return r.ups == 1 })
	testdb.Exec(t, db, `ALTER TABLE `+q("one")+` ENABLE ROW LEVEL SECURITY`)
	r.await(t, "the DDL published", func(r *recorder) bool { return slices.Contains(r.payloads, All) })
	if st, err := ReadStatus(ctx, db); err != nil || st.Listeners < 1 {
		t.Errorf("status with a listener: %+v, %v; want at least 1 listener", st, err)
	}

	all, err := PlanInstall(ctx, db, schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, tb := range all.Tables {
		if tb.Schema == schema {
			found++
		}
	}
	if found != 2 {
		t.Errorf("a plan for every table holds %d of the schema's 2 tables (not the view)", found)
	}

	u, err := PlanUninstall(ctx, db, schema, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := u.Apply(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	if st, err = ReadStatus(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, ts := range st.Tables {
		if ts.Trigger {
			t.Errorf("after uninstall, %v still has its trigger", ts.Table)
		}
	}
	if st.DDLTrigger {
		t.Error("after uninstall, the DDL trigger is still there")
	}
}
