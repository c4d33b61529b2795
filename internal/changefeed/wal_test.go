package changefeed

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// runLeader runs a Leader on dsn until the test ends or stop is called; the
// errors it reports go to failed.
func runLeader(t *testing.T, dsn string) (l *Leader, failed chan error, stop func()) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	failed = make(chan error, 100)
	l = &Leader{Config: cfg, RetryLock: 50 * time.Millisecond, HeartbeatEvery: 20 * time.Millisecond,
		Failed: func(err error) {
			select {
			case failed <- err:
			default:
			}
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return l, failed, stop
}

// heartbeatListener is a recorder's Listener that depends on heartbeats.
func heartbeatListener(t *testing.T, dsn string, r *recorder, timeout time.Duration) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{Config: cfg, Heartbeat: timeout, RetryMin: 10 * time.Millisecond, RetryMax: 100 * time.Millisecond,
		Changed: func(p string) { r.mu.Lock(); r.payloads = append(r.payloads, p); r.mu.Unlock(); r.poke() },
		Up:      func() { r.mu.Lock(); r.ups++; r.mu.Unlock(); r.poke() },
		Down:    func(err error) { r.mu.Lock(); r.downs = append(r.downs, err); r.mu.Unlock(); r.poke() },
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls cond every millisecond for up to 10s.
func waitFor(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	began := time.Now()
	for deadline := began.Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
	}
	return time.Since(began)
}

// listening returns once r's listener has its LISTEN in place: it has
// received a notification sent after the call.
func listening(t *testing.T, admin *pgx.Conn, r *recorder) {
	t.Helper()
	waitFor(t, "the listener listens", func() bool {
		if _, err := admin.Exec(context.Background(), `SELECT pg_notify($1, 'barrier')`, Channel); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		p, _, _ := r.snapshot()
		return slices.Contains(p, "barrier")
	})
	r.mu.Lock()
	r.payloads = nil
	r.mu.Unlock()
}

func (r *recorder) snapshot() (payloads []string, ups, downs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.payloads), r.ups, len(r.downs)
}

// TestLeaderDecodes: every kind of change, by a writer the driver never
// sees, reaches a listener as its tables, a partition's parent included,
// once a transaction; the takeover publishes All first.
func TestLeaderDecodes(t *testing.T) {
	dsn := testdb.LogicalCluster(t).DSN()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, stmt := range []string{
		`CREATE TABLE w_a (id int PRIMARY KEY, v int)`,
		`CREATE TABLE "W b" (id int PRIMARY KEY)`,
		`CREATE TABLE w_parted (at int NOT NULL, v int) PARTITION BY RANGE (at)`,
		`CREATE TABLE w_mid PARTITION OF w_parted FOR VALUES FROM (0) TO (100) PARTITION BY RANGE (at)`,
		`CREATE TABLE w_leaf PARTITION OF w_mid FOR VALUES FROM (0) TO (50)`,
		`ALTER TABLE w_leaf REPLICA IDENTITY FULL`,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	r := newRecorder()
	heartbeatListener(t, dsn, r, 500*time.Millisecond)
	listening(t, admin, r)
	l, failed, _ := runLeader(t, dsn)
	waitFor(t, "the listener is up", func() bool { _, ups, _ := r.snapshot(); return ups == 1 })
	if !l.Leading() {
		t.Fatal("the only candidate does not lead")
	}
	if p, _, _ := r.snapshot(); !slices.Contains(p, All) {
		t.Errorf("the takeover published %q; want All among them", p)
	}
	if slices.Contains(r.payloads, Heartbeat) {
		t.Error("a heartbeat was handed to Changed")
	}

	for _, c := range []struct {
		sql  []string // one transaction
		want []string
	}{
		{[]string{`INSERT INTO w_a VALUES (1, 1)`}, []string{`"public"."w_a"`}},
		{[]string{`UPDATE w_a SET v = 2`}, []string{`"public"."w_a"`}},
		{[]string{`DELETE FROM w_a`}, []string{`"public"."w_a"`}},
		{[]string{`INSERT INTO w_a VALUES (1, 1)`, `INSERT INTO w_a VALUES (2, 1)`, `INSERT INTO "W b" VALUES (1)`},
			[]string{`"public"."W b"`, `"public"."w_a"`}},
		{[]string{`TRUNCATE w_a`}, []string{`"public"."w_a"`}},
		{[]string{`INSERT INTO w_parted VALUES (1, 1)`}, []string{`"public"."w_leaf"`, `"public"."w_mid"`, `"public"."w_parted"`}},
		{[]string{`COPY w_a FROM PROGRAM 'echo 7,7' WITH (FORMAT csv)`}, []string{`"public"."w_a"`}},
	} {
		before, _, _ := r.snapshot()
		tx, err := admin.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range c.sql {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		var got []string
		waitFor(t, "the change of "+c.sql[0]+" is received", func() bool {
			p, _, _ := r.snapshot()
			got = p[len(before):]
			return len(got) >= len(c.want)
		})
		time.Sleep(50 * time.Millisecond) // nothing more comes
		p, _, _ := r.snapshot()
		got = slices.Clone(p[len(before):])
		slices.Sort(got)
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: received %q; want %q", c.sql, got, c.want)
		}
	}
	// Acknowledged: the slot's confirmed position reaches the WAL's end
	// once everything is published, so it retains nothing needlessly.
	var end string
	if err := admin.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&end); err != nil {
		t.Fatal(err)
	}
	d := waitFor(t, "the slot confirms the WAL's end", func() bool {
		var ok bool
		if err := admin.QueryRow(ctx, `SELECT bool_and(confirmed_flush_lsn >= $1::pg_lsn) FROM pg_replication_slots WHERE slot_name LIKE 'auditpg\_%'`, end).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	})
	t.Logf("the slot confirmed %s %v later", end, d)
	if s := l.Stats(); s.Changes < 9 || s.Commits != 7 || s.Slots != 1 {
		t.Errorf("stats %+v; want at least 9 changes, 7 commits, 1 slot", s)
	}
	select {
	case err := <-failed:
		t.Errorf("the leader failed: %v", err)
	default:
	}
}

// TestLeaderFailover: of two candidates one leads; when its stream's
// backend is terminated it streams again from a new slot and publishes
// All; when it stops, the other takes over, its slot is gone, and a
// listener that depends on heartbeats goes down and comes back up.
func TestLeaderFailover(t *testing.T) {
	dsn := testdb.LogicalCluster(t).DSN()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	r := newRecorder()
	heartbeatListener(t, dsn, r, 300*time.Millisecond)
	a, _, stopA := runLeader(t, dsn)
	waitFor(t, "a leads", a.Leading)
	b, _, stopB := runLeader(t, dsn)
	waitFor(t, "the listener is up", func() bool { _, ups, _ := r.snapshot(); return ups == 1 })
	time.Sleep(200 * time.Millisecond) // b tried the lock a few times
	if b.Leading() {
		t.Fatal("two candidates lead")
	}
	slots := func() (n int) {
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'auditpg\_%' AND temporary`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := slots(); n != 1 {
		t.Fatalf("%d temporary slots; want 1", n)
	}

	// The stream's backend dies: a new slot, and All.
	before, _, _ := r.snapshot()
	var killed int
	if err := admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE slot_name LIKE 'auditpg\_%'`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d walsenders, %v", killed, err)
	}
	d := waitFor(t, "All after the stream's loss", func() bool { p, _, _ := r.snapshot(); return slices.Contains(p[len(before):], All) })
	t.Logf("stream back, All published, %v after its walsender was terminated", d)
	if s := a.Stats(); s.Slots != 2 || !a.Leading() || b.Leading() {
		t.Errorf("after the stream's loss: a %+v leading %v, b leading %v; want a leading with 2 slots", s, a.Leading(), b.Leading())
	}

	// The leader stops: b takes over.
	before, _, _ = r.snapshot()
	stopA()
	d = waitFor(t, "b takes over", func() bool { p, _, _ := r.snapshot(); return b.Leading() && slices.Contains(p[len(before):], All) })
	t.Logf("b took over and published All %v after a stopped", d)
	waitFor(t, "one slot", func() bool { return slots() == 1 })

	// No candidate left: the listener goes down, and no slot is left; a
	// new candidate: up again.
	_, ups, downs := r.snapshot()
	if downs != 0 {
		t.Errorf("the listener went down %d times while a leader streamed", downs)
	}
	stopB()
	waitFor(t, "the listener goes down", func() bool { _, _, downs := r.snapshot(); return downs == 1 })
	waitFor(t, "no slot left", func() bool { return slots() == 0 })
	runLeader(t, dsn)
	waitFor(t, "up again", func() bool { _, u, _ := r.snapshot(); return u == ups+1 })
}

// TestLeaderWALLevel: on a server without wal_level = logical, the leader
// says so and what to do, and a listener that depends on heartbeats
// never comes up.
func TestLeaderWALLevel(t *testing.T) {
	r := newRecorder()
	heartbeatListener(t, testDSN, r, 200*time.Millisecond)
	_, failed, _ := runLeader(t, testDSN)
	select {
	case err := <-failed:
		var wl *WALLevelError
		if !errors.As(err, &wl) || wl.Level != "replica" {
			t.Fatalf("the leader failed with %v; want a WALLevelError for replica", err)
		}
		for _, want := range []string{"wal_level = logical", "ALTER SYSTEM SET wal_level = logical", "restart"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error %q does not say %q", err, want)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leader reported no failure in 10s")
	}
	time.Sleep(300 * time.Millisecond)
	if _, ups, _ := r.snapshot(); ups != 0 {
		t.Errorf("the listener came up %d times without a decoder", ups)
	}
}

// TestLeaderReplicaIdentity: the leader does not create a publication of
// every table while one has no replica identity (PostgreSQL would then
// refuse its UPDATE and DELETE); it says which, and creates it once fixed.
func TestLeaderReplicaIdentity(t *testing.T) {
	dsn := testdb.LogicalCluster(t).DSN()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE TABLE "No Key" (v int)`); err != nil {
		t.Fatal(err)
	}
	l, failed, _ := runLeader(t, dsn)
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), `public."No Key"`) || !strings.Contains(err.Error(), "REPLICA IDENTITY FULL") {
			t.Fatalf("the leader failed with %v; want the table named and what to do", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the leader reported no failure in 10s")
	}
	if _, err := admin.Exec(ctx, `DELETE FROM "No Key"`); err != nil {
		t.Errorf("a DELETE on the table without a key fails: %v", err)
	}
	if _, err := admin.Exec(ctx, `ALTER TABLE "No Key" REPLICA IDENTITY FULL`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a slot streams", func() bool { return l.Stats().Slots == 1 })
	if _, err := admin.Exec(ctx, `DELETE FROM "No Key"`); err != nil {
		t.Errorf("a DELETE on the table with a full replica identity fails: %v", err)
	}
}

// TestLeaderLagStopsHeartbeats: while the leader decodes commits older
// than its MaxLag (a large transaction), it sends no heartbeat, so a
// listener goes down; it comes up again once the leader caught up.
func TestLeaderLagStopsHeartbeats(t *testing.T) {
	dsn := testdb.LogicalCluster(t).DSN()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE TABLE w_big (id int PRIMARY KEY, v text)`); err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	heartbeatListener(t, dsn, r, 150*time.Millisecond)
	listening(t, admin, r)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leader{Config: cfg, HeartbeatEvery: 10 * time.Millisecond, MaxLag: 20 * time.Millisecond}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); l.Run(lctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the listener is up", func() bool { _, ups, _ := r.snapshot(); return ups == 1 })
	_, _, downs0 := r.snapshot()
	rows := 300_000
	if _, err := admin.Exec(ctx, `INSERT INTO w_big SELECT g, repeat('x', 20) FROM generate_series(1, $1) AS g`, rows); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	for deadline := began.Add(time.Minute); l.Stats().Changes < int64(rows); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rows decoded after a minute", l.Stats().Changes, rows)
		}
	}
	d := time.Since(began)
	_, _, downs := r.snapshot()
	t.Logf("%d rows decoded %v after their commit; the listener went down %d times", rows, d, downs-downs0)
	if downs == downs0 {
		t.Errorf("the listener never went down while the leader decoded a transaction for %v", d)
	}
	waitFor(t, "up again", func() bool { _, u, dn := r.snapshot(); return u == dn+1 }) // each down followed by an up
}

// TestListenerIgnoresHeartbeats: a Listener without Heartbeat (notify
// mode, sharing the channel with a WAL decoder) is up at once and never
// hands a heartbeat to Changed.
func TestListenerIgnoresHeartbeats(t *testing.T) {
	r := newRecorder()
	r.listener(t)
	r.await(t, "up", func(r *recorder) bool { return r.ups == 1 })
	admin, err := pgx.Connect(context.Background(), testDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), `SELECT pg_notify($1, $2), pg_notify($1, 'after')`, Channel, Heartbeat); err != nil {
		t.Fatal(err)
	}
	r.await(t, "the payload after the heartbeat", func(r *recorder) bool { return slices.Contains(r.payloads, "after") })
	if p, _, _ := r.snapshot(); slices.Contains(p, Heartbeat) {
		t.Errorf("Changed was handed %q; want no heartbeat", p)
	}
	if Heartbeat != Payload("pg_catalog", "auditpg_heartbeat") {
		t.Errorf("Heartbeat %s is not the payload of pg_catalog.auditpg_heartbeat", Heartbeat)
	}
}
