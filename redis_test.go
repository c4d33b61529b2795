package auditpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/sysdeps"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/redis/go-redis/v9"
)

// Tests of the shared Redis tier, each with a redis-server of its own on a
// free loopback port (a test stops and restarts it at will), and a key
// prefix of its own.

// redisServer is a redis-server a test started.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	args []string
	cmd  *exec.Cmd
}

func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	r := &redisServer{t: t, bin: testdb.Need(t, sysdeps.Redis()), port: freePort(t), dir: t.TempDir(), args: args}
	r.start()
	t.Cleanup(r.kill)
	return r
}

// freePort is a loopback port nothing listens on, below 55536 (a cluster
// node also listens on its port + 10000).
func freePort(t testing.TB) int {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if port < 55536 {
			return port
		}
	}
	t.Fatal("no free loopback port below 55536")
	return 0
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *redisServer) url() string  { return "redis://" + r.addr() + "/0" }

func (r *redisServer) start() {
	r.t.Helper()
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "no", "--loglevel", "warning"}, r.args...)
	r.cmd = exec.Command(r.bin, args...)
	r.cmd.Dir = r.dir
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	c := r.client()
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on port %d does not answer after 10s", r.port)
		}
	}
}

func (r *redisServer) client() *redis.Client { return redis.NewClient(&redis.Options{Addr: r.addr()}) }

// kill stops the server at once, losing what it held (no persistence).
func (r *redisServer) kill() {
	if r.cmd != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *redisServer) signal(s syscall.Signal) {
	if err := r.cmd.Process.Signal(s); err != nil {
		r.t.Fatal(err)
	}
}

// dataCommands counts the commands the server has run, other than those
// that touch no key (PING, INFO, HELLO, CLIENT...).
func dataCommands(t testing.TB, r *redisServer) int64 {
	c := r.client()
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "cmdstat_"), ":calls=")
		if !ok || slices.Contains([]string{"ping", "info", "hello", "client", "command"}, strings.SplitN(name, "|", 2)[0]) {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		v, _ := strconv.ParseInt(calls, 10, 64)
		n += v
	}
	return n
}

// startRedisCluster starts three masters and makes them a cluster with
// redis-cli, and returns the URL of a client of all three.
func startRedisCluster(t testing.TB) string {
	t.Helper()
	cli := testdb.Need(t, sysdeps.RedisCLI())
	var nodes []string
	for range 3 {
		r := startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		nodes = append(nodes, r.addr())
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, nodes...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n})
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			info, _ := c.ClusterInfo(context.Background()).Result()
			if strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the cluster is not ok on %s after 20s: %s", n, info)
			}
		}
		c.Close()
	}
	return "redis://" + nodes[0] + "?addr=" + nodes[1] + "&addr=" + nodes[2]
}

// withRedisAlways consults the tier for every fingerprint, however cheap:
// the tests' reads are primary-key selects.
func withRedisAlways() Option {
	return func(c *config) error { c.cache.Redis.Always = true; return nil }
}

func redisStats(t testing.TB, db *sql.DB) CacheStats {
	t.Helper()
	s := cacheStats(t, db)
	if s.Redis == nil {
		t.Fatal("Stats has no Redis figures")
	}
	return s
}

func dropLocal(t testing.TB, db *sql.DB) {
	c, err := connectorOf(db)
	if err != nil {
		t.Fatal(err)
	}
	c.cache.DropLocal()
}

// TestRedisCoherence: two connectors sharing Redis (one node, and a
// three-master Redis Cluster), with writes from both, bare pgx, psql,
// triggers, COPY and a cascade: no stale read, and reads served from
// Redis.
func TestRedisCoherence(t *testing.T) {
	run := 8 * time.Second
	if testing.Short() {
		run = 2 * time.Second
	}
	for _, tc := range []struct {
		name  string
		redis func(t *testing.T) Option
	}{
		{"one node", func(t *testing.T) Option { return WithRedis(startRedis(t).url()) }},
		{"cluster with the application's client", func(t *testing.T) Option {
			o, err := redis.ParseClusterURL(startRedisCluster(t))
			if err != nil {
				t.Fatal(err)
			}
			o.ContextTimeoutEnabled, o.MaxRetries = true, -1
			client := redis.NewClusterClient(o)
			t.Cleanup(func() { client.Close() })
			return WithRedisClient(client)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cohDropLocalEvery = 8
			defer func() { cohDropLocalEvery = 0 }()
			insts := runCoherence(t, testDSN, InvalidateNotify, run, tc.redis(t), WithRedisPrefix("coh-"+strings.Fields(tc.name)[0]),
				WithRedisTimeout(50*time.Millisecond), withRedisAlways())
			var hits, lookups, errs int64
			for _, in := range insts {
				r := redisStats(t, in.db).Redis
				hits += r.Hits
				lookups += r.Hits + r.Misses + r.Stale + r.Unknown
				errs += r.Errors
				t.Logf("instance %s: %+v", in.name, *r)
			}
			if hits == 0 {
				t.Errorf("no read was served from Redis (%d lookups): the test proved nothing", lookups)
			}
			// A call past its 50 ms budget on a loaded machine (CI, -race)
			// is counted and costs a miss, never a stale read or an error of
			// the application; more than one lookup in a hundred is not load.
			if errs*100 > lookups {
				t.Errorf("%d calls to Redis failed, of %d lookups", errs, lookups)
			}
		})
	}
}

// TestRedisCoherenceAcrossProcesses: TestCoherenceAcrossProcesses with
// both processes sharing one Redis: the child never serves the old row
// from Redis after its feed received a write, and it does read from Redis.
func TestRedisCoherenceAcrossProcesses(t *testing.T) {
	hits := coherenceAcrossProcesses(t, startRedis(t).url())
	t.Logf("the child read %d times from Redis", hits)
	if hits == 0 {
		t.Error("the child process read nothing from Redis: the test proved nothing")
	}
}

// TestRedisSharedAcrossConnectors: what one connector filled, another
// reads from Redis; a write through either, or elsewhere, is never served
// stale from Redis; the key holds the scope (another user reads its own).
func TestRedisSharedAcrossConnectors(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_shared`)
	testdb.Exec(t, admin, `CREATE TABLE redis_shared (id int PRIMARY KEY, v int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO redis_shared VALUES (1, 1)`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_shared`) })
	opts := []Option{WithCacheMode(CacheAll), WithRedis(srv.url()), WithRedisPrefix("shared"), WithRedisTimeout(50 * time.Millisecond), withRedisAlways()}
	a, b := ciOpen(t, opts...), ciOpen(t, opts...)
	q := `SELECT v FROM redis_shared WHERE id = 1`
	read := func(db *sql.DB) (v int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	waitWrites := func(db *sql.DB, n int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); redisStats(t, db).Redis.Writes < n; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no write to Redis after 5s: %+v", *redisStats(t, db).Redis)
			}
		}
	}
	// First lookups make the version keys; then a fill is written.
	for range 2 {
		read(a)
		dropLocal(t, a)
	}
	waitWrites(a, 1)
	if v := read(b); v != 1 || redisStats(t, b).Redis.Hits != 1 {
		t.Fatalf("b read %d with %+v; want 1, a Redis hit", v, *redisStats(t, b).Redis)
	}
	if s := redisStats(t, b); s.Hits != 1 || s.Misses != 0 {
		t.Fatalf("a Redis hit counts as a hit: %+v", s)
	}
	// Promoted: the next read is the process's own hit.
	if v := read(b); v != 1 || redisStats(t, b).Redis.Hits != 1 || redisStats(t, b).Hits != 2 {
		t.Fatalf("second read of b: %d, %+v", v, redisStats(t, b))
	}

	// A write through a: b has not heard of it (local invalidation), but a's
	// own reads never see the old entry, from either tier.
	mustExec(t, a, `UPDATE redis_shared SET v = 2 WHERE id = 1`)
	if v := read(a); v != 2 {
		t.Fatalf("a reads %d after its own write; want 2", v)
	}
	// b, told of the write as the change feed would tell it, reads 2.
	if err := Invalidate(b, "redis_shared"); err != nil {
		t.Fatal(err)
	}
	dropLocal(t, b)
	if v := read(b); v != 2 {
		t.Fatalf("b reads %d after receiving the invalidation; want 2", v)
	}

	// The version keys hold random starts, and an evicted one is unknown:
	// a miss, never a match.
	c := srv.client()
	defer c.Close()
	key := "shared:1:v:redis_shared"
	v1, err := c.Get(ctx, key).Uint64()
	if err != nil || v1 < 1<<32 {
		t.Fatalf("version key %s = %d, %v; want a random start of at least 2^32", key, v1, err)
	}
	for deadline := time.Now().Add(5 * time.Second); redisStats(t, b).Redis.VersionMoves == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("b moved no version after 5s: %+v", *redisStats(t, b).Redis)
		}
	}
	if err := c.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	dropLocal(t, b)
	before := *redisStats(t, b).Redis
	if v := read(b); v != 2 || redisStats(t, b).Redis.Unknown != before.Unknown+1 || redisStats(t, b).Redis.Hits != before.Hits {
		t.Fatalf("after the version key was deleted: read %d, %+v; want 2 from the server, an unknown version", v, *redisStats(t, b).Redis)
	}

	// Another user: a scope of its own, so never a's entries.
	testdb.Exec(t, admin, `DROP ROLE IF EXISTS redis_other`)
	testdb.Exec(t, admin, `CREATE ROLE redis_other LOGIN PASSWORD 'ci_pw'`)
	testdb.Exec(t, admin, `GRANT SELECT ON redis_shared TO redis_other`)
	t.Cleanup(func() {
		testdb.Exec(t, admin, `DROP OWNED BY redis_other`)
		testdb.Exec(t, admin, `DROP ROLE IF EXISTS redis_other`)
	})
	other := ciOpenDSN(t, ciDSN(t, "redis_other", nil), opts...)
	read(other)
	if s := redisStats(t, other).Redis; s.Hits != 0 {
		t.Fatalf("another user's first read hit Redis: %+v", *s)
	}
}

// TestRedisOutage: Redis hung (SIGSTOP), then killed and restarted, under
// load: no read fails, a read waits at most about the budget while the
// breaker learns, and Redis serves again once back.
func TestRedisOutage(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_outage`)
	testdb.Exec(t, admin, `CREATE TABLE redis_outage (id int PRIMARY KEY, v int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO redis_outage SELECT g, g FROM generate_series(1, 50) g`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_outage`) })
	budget := 5 * time.Millisecond
	db := ciOpen(t, WithCacheMode(CacheAll), WithRedis(srv.url()), WithRedisPrefix("outage"), WithRedisTimeout(budget), withRedisAlways())

	type phase struct {
		state         string
		reads, errors int
		redisHits     int64
		slowest       time.Duration
		times         []time.Duration
	}
	var phases []phase
	// pass drops the process's own entries and reads every row once: the
	// reads go to Redis, or to the server.
	pass := func(state string) phase {
		dropLocal(t, db)
		before := redisStats(t, db).Redis.Hits
		p := phase{state: state}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := 1 + w; id <= 50; id += 4 {
					start := time.Now()
					var v int
					err := db.QueryRowContext(ctx, `SELECT v FROM redis_outage WHERE id = $1`, id).Scan(&v)
					d := time.Since(start)
					mu.Lock()
					p.reads++
					if err != nil || v != id {
						p.errors++
					}
					p.slowest = max(p.slowest, d)
					p.times = append(p.times, d)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		p.redisHits = redisStats(t, db).Redis.Hits - before
		phases = append(phases, p)
		return p
	}
	// Warm up until a pass reads Redis: on a loaded machine (CI, -race) a
	// round trip past the budget opens the breaker for a while, which is
	// the point of the budget, not a failure of the tier.
	var warm phase
	for deadline := time.Now().Add(20 * time.Second); warm.redisHits < 45 && time.Now().Before(deadline); {
		warm = pass("up")
	}
	if warm.redisHits < 45 {
		t.Fatalf("with Redis up and warm, %d of 50 reads hit Redis, for 20 s of passes", warm.redisHits)
	}
	srv.signal(syscall.SIGSTOP) // hung: calls time out
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		pass("hung")
	}
	srv.signal(syscall.SIGCONT)
	srv.kill() // down: refused
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		pass("down")
	}
	srv.start()
	back := time.Now()
	var recovered time.Duration
	for deadline := back.Add(15 * time.Second); time.Now().Before(deadline); {
		if p := pass("restarted"); p.redisHits >= 45 {
			recovered = time.Since(back)
			break
		}
	}
	var errs int
	var slowestOut time.Duration
	counts := map[string]int{}
	times := map[string][]time.Duration{}
	for _, p := range phases {
		errs += p.errors
		counts[p.state]++
		times[p.state] = append(times[p.state], p.times...)
		if p.state == "hung" || p.state == "down" {
			slowestOut = max(slowestOut, p.slowest)
		}
	}
	for _, state := range []string{"up", "hung", "down", "restarted"} {
		d := times[state]
		slices.Sort(d)
		if len(d) > 0 {
			t.Logf("Redis %s: %d reads, p50 %v, p99 %v, max %v", state, len(d), d[len(d)/2], d[len(d)*99/100], d[len(d)-1])
		}
	}
	s := redisStats(t, db).Redis
	t.Logf("passes %v; slowest read while Redis was hung or down: %v; back to hits %v after the restart; %+v", counts, slowestOut, recovered, *s)
	if errs > 0 {
		t.Errorf("%d reads failed or read a wrong value", errs)
	}
	if recovered == 0 {
		t.Errorf("Redis served no pass of hits within 15s of its restart: %+v", *s)
	}
	if s.BreakerOpens == 0 || s.Errors == 0 || s.Resyncs == 0 {
		t.Errorf("the outage was not seen: %+v", *s)
	}
	// A read waits the budget at most a few times (a lookup in flight on
	// each connection when the breaker opens); the rest of it is the
	// server's time on a loaded machine. A read that waited on the hung
	// Redis itself would take the whole second it was stopped.
	if limit := 750 * time.Millisecond; slowestOut > limit {
		t.Errorf("a read took %v while Redis was failing; want under %v (the budget is %v)", slowestOut, limit, budget)
	}
}

// TestRedisWorthItsRoundTrip: a primary-key select is cheaper than the
// round trip and never reaches Redis (its server's command count does not
// move); an aggregate of several milliseconds is consulted.
func TestRedisWorthItsRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_worth`)
	testdb.Exec(t, admin, `CREATE TABLE redis_worth (id int PRIMARY KEY, action text NOT NULL, n int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO redis_worth SELECT g, 'a' || (g % 20), g FROM generate_series(1, 300000) g`)
	testdb.Exec(t, admin, `ANALYZE redis_worth`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_worth`) })
	// A factor of 20 round trips: a primary-key select is far below it even
	// on a loaded machine, the aggregate far above.
	db := ciOpen(t, WithCacheMode(CacheAll), WithRedis(srv.url()), WithRedisPrefix("worth"), WithRedisTimeout(50*time.Millisecond),
		func(c *config) error { c.cache.Redis.WorthFactor = 20; return nil })
	for deadline := time.Now().Add(5 * time.Second); redisStats(t, db).Redis.RoundTripMicros == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no round trip measured after 5s")
		}
	}
	// The fingerprint measured first: its first runs (prepared then) cost
	// more than the next ones.
	for id := range 20 {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT n FROM redis_worth WHERE id = $1`, 1000+id).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	before := dataCommands(t, srv)
	for id := range 200 {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT n FROM redis_worth WHERE id = $1`, id+1).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	calls := dataCommands(t, srv) - before
	s := redisStats(t, db).Redis
	t.Logf("200 primary-key selects: %d Redis commands; %+v", calls, *s)
	if calls != 0 {
		t.Errorf("the cheap query cost %d Redis commands; want 0", calls)
	}
	if s.Skipped < 200 || s.FingerprintsSkipped != 1 || s.FingerprintsConsulted != 0 {
		t.Errorf("the cheap query was not skipped: %+v", *s)
	}
	// The aggregate, on a connector of the default factor's order (2
	// round trips): consulted, even where the race detector makes every
	// round trip to Redis cost milliseconds.
	db = ciOpen(t, WithCacheMode(CacheAll), WithRedis(srv.url()), WithRedisPrefix("worth"), WithRedisTimeout(50*time.Millisecond),
		func(c *config) error { c.cache.Redis.WorthFactor = 2; return nil })
	agg := `SELECT action, count(*), sum(n) FROM redis_worth WHERE action = $1 GROUP BY action`
	for i := range 5 { // measured over three misses, then consulted
		rows, err := db.QueryContext(ctx, agg, fmt.Sprint("a", i))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
		}
		rows.Close()
	}
	s = redisStats(t, db).Redis
	if s.FingerprintsConsulted != 1 || s.Hits+s.Misses+s.Unknown == 0 {
		t.Errorf("the aggregate was not consulted: %+v", *s)
	}
}

// TestRedisConfig: a bad URL or prefix is refused with an error that names
// the parameter and never shows the password; Redis with the cache off is
// refused; Stats shows no password.
func TestRedisConfig(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"auditpg_redis=http://u:s3cret@h:1", "auditpg_redis"},
		{"auditpg_redis=redis://u:s3cret@h:1/notadb", "auditpg_redis"},
		{"auditpg_redis=redis://u:s3cret@h:1/0?bogus=1", "auditpg_redis"},
		{"auditpg_redis_prefix=a:b", "auditpg_redis_prefix"},
		{"auditpg_redis_timeout=2s", "auditpg_redis_timeout"},
		{"auditpg_redis=redis://u:s3cret@h:1/0 auditpg_cache=off", "cache off"},
	} {
		_, err := NewConnector("host=localhost " + tc.dsn)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want a ConfigError naming %s", tc.dsn, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") || strings.Contains(ce.Value, "s3cret") {
			t.Errorf("%s: the error shows the password: %v (value %q)", tc.dsn, err, ce.Value)
		}
	}
	if _, err := NewConnector("host=localhost", WithRedisClient(nil)); err == nil {
		t.Error("WithRedisClient(nil) accepted")
	}
	if u, err := parseRedisURL("redis://u:p@n1:7000?addr=n2:7001&addr=n3:7002"); err != nil || u.cluster == nil || u.addr != "3 nodes: n1:7000,n2:7001,n3:7002" {
		t.Errorf("a cluster URL: %+v, %v; want a cluster client's options of three nodes", u, err)
	}
	deaf := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer deaf.Close()
	if _, err := NewConnector("host=localhost", WithRedisClient(deaf)); err == nil || !strings.Contains(err.Error(), "ContextTimeoutEnabled") {
		t.Errorf("a client without ContextTimeoutEnabled: %v; want it refused, naming the setting", err)
	}
	srv := startRedis(t)
	c := srv.client()
	defer c.Close()
	// The commands README's "Shared Redis tier" lists, on the prefix's keys
	// only.
	acl := append([]any{"ACL", "SETUSER", "app", "on", ">s3cret", "resetkeys", "~app:*", "-@all"}, redisACLCommands()...)
	if err := c.Do(context.Background(), acl...).Err(); err != nil {
		t.Fatal(err)
	}
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_acl`)
	testdb.Exec(t, admin, `CREATE TABLE redis_acl (id int PRIMARY KEY, v int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO redis_acl VALUES (1, 1)`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_acl`) })
	opts := []Option{WithCacheMode(CacheAll), WithInvalidation(InvalidateNotify), WithRedis("redis://app:s3cret@" + srv.addr() + "/0"),
		WithRedisPrefix("app"), WithRedisTimeout(50 * time.Millisecond), withRedisAlways()}
	db := ciOpen(t, opts...)
	s := redisStats(t, db)
	if text := fmt.Sprintf("%+v", *s.Redis); strings.Contains(text, "s3cret") || s.Redis.Addr != srv.addr() {
		t.Errorf("Stats: %s; want the address without the password", text)
	}
	for deadline := time.Now().Add(5 * time.Second); redisStats(t, db).Redis.RoundTripMicros == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the ACL user could not reach Redis: %+v", *redisStats(t, db).Redis)
		}
	}
	// Every command the tier sends: versions made and moved, entries
	// written and read, a second process's barrier acknowledged.
	read := func(db *sql.DB) {
		t.Helper()
		var v int
		if err := db.QueryRowContext(context.Background(), `SELECT v FROM redis_acl WHERE id = 1`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		dropLocal(t, db)
	}
	for range 3 {
		read(db)
	}
	mustExec(t, db, `UPDATE redis_acl SET v = 2`)
	b := ciOpen(t, opts...)
	for range 3 {
		read(b)
	}
	for deadline := time.Now().Add(5 * time.Second); redisStats(t, b).Redis.Hits == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			break
		}
		read(b)
	}
	for _, db := range []*sql.DB{db, b} {
		if s := redisStats(t, db).Redis; s.Errors > 0 || s.State != "up" {
			t.Errorf("with the ACL user: %+v; want no error", *s)
		}
	}
	if s := redisStats(t, b).Redis; s.CoveredStarts != 1 || s.Hits == 0 {
		t.Errorf("the second process with the ACL user: %+v; want a covered start and hits", *s)
	}
}

// redisACLCommands are the commands the tier sends, as ACL SETUSER takes
// them (README's "Shared Redis tier" lists them).
func redisACLCommands() []any {
	return []any{"+get", "+set", "+incr", "+eval", "+evalsha", "+exists", "+sadd", "+smembers", "+pexpire", "+ping", "+hello", "+client"}
}

// TestRedisFeedStart: a process whose change feed comes up reads the
// entries of Redis only when another process heard every change before
// (it acknowledges the newcomer's barrier); a change made while no process
// listened is never served from Redis.
func TestRedisFeedStart(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t)
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_start`)
	testdb.Exec(t, admin, `CREATE TABLE redis_start (id int PRIMARY KEY, v int NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO redis_start VALUES (1, 1)`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_start`) })
	opts := []Option{WithCacheMode(CacheAll), WithInvalidation(InvalidateNotify), WithRedis(srv.url()), WithRedisPrefix("start"),
		WithRedisTimeout(50 * time.Millisecond), withRedisAlways()}
	open := func() *sql.DB {
		db, err := Open(testDSN, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	read := func(db *sql.DB) (v int) {
		t.Helper()
		if err := db.QueryRowContext(ctx, `SELECT v FROM redis_start WHERE id = 1`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	settled := func(db *sql.DB) RedisStats {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
			s := redisStats(t, db)
			if s.Feed == "up" && s.Redis.State == "up" {
				return *s.Redis
			}
			if time.Now().After(deadline) {
				t.Fatalf("the tier did not settle within 5s: feed %s, %+v", s.Feed, *s.Redis)
			}
		}
	}
	fill := func(db *sql.DB) {
		t.Helper()
		for i := 0; redisStats(t, db).Redis.Writes == 0; i++ {
			if i == 500 {
				t.Fatalf("no entry written: %+v", *redisStats(t, db).Redis)
			}
			read(db)
			dropLocal(t, db)
			time.Sleep(2 * time.Millisecond)
		}
	}

	a := open()
	read(a) // starts the feed
	if s := settled(a); s.CoveredStarts != 0 || s.Resyncs != 1 || !s.Covering {
		t.Errorf("the first process: %+v; want the global version moved, then covering", s)
	}
	fill(a)

	// A second process, started while a runs: a acknowledges, and b reads
	// a's entry.
	b := open()
	defer b.Close()
	read(b)
	if s := settled(b); s.CoveredStarts != 1 || s.Resyncs != 0 {
		t.Errorf("the second process: %+v; want covered by the first", s)
	}
	dropLocal(t, b)
	hitsBefore := redisStats(t, b).Redis.Hits
	if v := read(b); v != 1 || redisStats(t, b).Redis.Hits != hitsBefore+1 {
		t.Fatalf("the second process read %d, %+v; want a's entry from Redis", v, *redisStats(t, b).Redis)
	}

	// Nobody listens: b and a close; a write is heard by no one.
	a.Close()
	b.Close()
	testdb.Exec(t, admin, `UPDATE redis_start SET v = 2 WHERE id = 1`)
	c := open()
	defer c.Close()
	read(c)
	if s := settled(c); s.CoveredStarts != 0 || s.Resyncs != 1 {
		t.Errorf("a process started alone: %+v; want the global version moved", s)
	}
	if v := read(c); v != 2 {
		t.Fatalf("after a change no process heard, read %d from Redis; want 2", v)
	}
}

// TestRedisFull: a Redis whose memory is full and evicts nothing refuses
// the tier's writes: no read fails or reads a wrong value, the failures
// are counted, and the process's own tier keeps serving.
func TestRedisFull(t *testing.T) {
	ctx := context.Background()
	srv := startRedis(t, "--maxmemory", "1mb", "--maxmemory-policy", "noeviction")
	c := srv.client()
	defer c.Close()
	// Fill it up to its limit with keys of no concern to the tier.
	for i := 0; ; i++ {
		if err := c.Set(ctx, fmt.Sprint("ballast:", i), strings.Repeat("x", 10_000), 0).Err(); err != nil {
			if !strings.Contains(err.Error(), "OOM") {
				t.Fatal(err)
			}
			break
		}
	}
	admin := testdb.Open(t, "pgx", testDSN)
	testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_full`)
	testdb.Exec(t, admin, `CREATE TABLE redis_full (id int PRIMARY KEY, v text NOT NULL)`)
	testdb.Exec(t, admin, `INSERT INTO redis_full SELECT g, repeat('v', 5000) || g FROM generate_series(1, 40) g`)
	t.Cleanup(func() { testdb.Exec(t, admin, `DROP TABLE IF EXISTS redis_full`) })
	db := ciOpen(t, WithCacheMode(CacheAll), WithRedis(srv.url()), WithRedisPrefix("full"), WithRedisTimeout(50*time.Millisecond), withRedisAlways())
	for pass := range 5 {
		for id := 1; id <= 40; id++ {
			var v string
			if err := db.QueryRowContext(ctx, `SELECT v FROM redis_full WHERE id = $1`, id).Scan(&v); err != nil {
				t.Fatalf("pass %d, id %d: %v", pass, id, err)
			}
			if want := strings.Repeat("v", 5000) + strconv.Itoa(id); v != want {
				t.Fatalf("pass %d, id %d: a wrong value", pass, id)
			}
		}
	}
	s := redisStats(t, db)
	t.Logf("%+v", *s.Redis)
	if s.Redis.Errors == 0 || s.Redis.Writes != 0 || s.Redis.BreakerOpens == 0 {
		t.Errorf("a full Redis: %+v; want errors, the breaker open, no write", *s.Redis)
	}
	if s.Hits < 4*40 {
		t.Errorf("the process's own tier served %d of %d reads; want the 4 passes after the first", s.Hits, 5*40)
	}
}
