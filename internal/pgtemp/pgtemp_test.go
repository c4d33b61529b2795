//go:build unix

package pgtemp

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/sysdeps"
	"github.com/jackc/pgx/v5"
)

func startCluster(t *testing.T, opts ...Option) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	begin := time.Now()
	c, err := Start(ctx, opts...)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v (port %d, dir %s)", time.Since(begin).Round(time.Millisecond), c.port, c.dir)
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

func connectT(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(t.Context(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStart(t *testing.T) {
	log := newTailBuffer(1 << 20) // the whole log, for the checks below
	c := startCluster(t, WithLogger(log), WithSetting("work_mem", "7MB"))

	want := "postgres://postgres@127.0.0.1:" + strconv.Itoa(c.port) + "/postgres?sslmode=disable"
	if c.DSN() != want {
		t.Errorf("DSN() = %q, want %q", c.DSN(), want)
	}
	if c.port == 5432 {
		t.Errorf("cluster on port 5432")
	}
	conn := connectT(t, c.DSN())

	tests := []struct {
		sql, want string
		contains  bool
	}{
		{sql: "SHOW shared_preload_libraries", want: "pg_stat_statements", contains: true},
		{sql: "SELECT current_setting('compute_query_id')", want: "on"},
		{sql: "SELECT current_setting('pg_stat_statements.track')", want: "all"},
		{sql: "SELECT current_setting('fsync')", want: "off"},
		{sql: "SELECT current_setting('listen_addresses')", want: "127.0.0.1"},
		{sql: "SELECT current_setting('work_mem')", want: "7MB"}, // WithSetting
		{sql: "SELECT current_user", want: "postgres"},
		{sql: "SELECT current_database()", want: "postgres"},
		{sql: "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'postgres'", want: "UTF8"},
	}
	for _, tt := range tests {
		got := queryString(t, conn, tt.sql)
		if tt.contains && !strings.Contains(got, tt.want) || !tt.contains && got != tt.want {
			t.Errorf("%s = %q, want %q", tt.sql, got, tt.want)
		}
	}

	// pg_stat_statements records what we run.
	// It starts clean: the extension scripts run by Start are forgotten.
	var n int
	if err := conn.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%CREATE FUNCTION%'").Scan(&n); err != nil {
		t.Fatalf("querying pg_stat_statements: %v", err)
	}
	if n != 0 {
		t.Errorf("pg_stat_statements holds %d statements of the extension scripts", n)
	}
	if _, err := conn.Exec(t.Context(), "SELECT $1::int + 1 AS pgtemp_marker", 41); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(),
		"SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%AS pgtemp_marker' AND queryid IS NOT NULL").Scan(&n); err != nil {
		t.Fatalf("querying pg_stat_statements: %v", err)
	}
	if n != 1 {
		t.Errorf("pg_stat_statements recorded the statement %d times, want 1", n)
	}

	// The server runs as the postgres user when we are root.
	if os.Geteuid() == 0 {
		fi, err := os.Stat(c.dataDir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("data directory mode %v, want 0700", fi.Mode().Perm())
		}
		if c.owner == nil || !ownedBy(fi, c.owner.uid) {
			t.Errorf("data directory not owned by the postgres user")
		}
	}

	if !strings.Contains(log.since(0), "ready to accept connections") {
		t.Errorf("WithLogger did not receive the server log; got:\n%s", log.since(0))
	}
	if _, err := os.Stat(filepath.Join(c.dir, "server.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server.log created despite WithLogger (err %v)", err)
	}
}

func TestCreateDatabase(t *testing.T) {
	c := startCluster(t)
	for _, name := range []string{`we"ird db`, "plain", "sl/ash?x=1&y#z", "Ünïcode%20", `'; DROP DATABASE postgres; --`} {
		t.Run(name, func(t *testing.T) {
			dsn, err := c.CreateDatabase(t.Context(), name)
			if err != nil {
				t.Fatalf("CreateDatabase(%q): %v", name, err)
			}
			conn := connectT(t, dsn)
			if got := queryString(t, conn, "SELECT current_database()"); got != name {
				t.Errorf("current_database() = %q, want %q (dsn %s)", got, name, dsn)
			}
			if got := queryString(t, conn, "SELECT count(*)::text FROM pg_extension WHERE extname = 'pg_stat_statements'"); got != "1" {
				t.Errorf("pg_stat_statements not created in %q", name)
			}
			if _, err := conn.Exec(t.Context(), "SELECT count(*) FROM pg_stat_statements"); err != nil {
				t.Errorf("pg_stat_statements in %q: %v", name, err)
			}
		})
	}

	if _, err := c.CreateDatabase(t.Context(), "plain"); err == nil {
		t.Errorf("CreateDatabase of an existing database: no error")
	}
	for _, bad := range []string{"", strings.Repeat("x", 64), "nul\x00"} {
		if _, err := c.CreateDatabase(t.Context(), bad); err == nil {
			t.Errorf("CreateDatabase(%q): no error", bad)
		}
	}
	// Databases created by other means get pg_stat_statements from template1.
	conn := connectT(t, c.DSN())
	if _, err := conn.Exec(t.Context(), "CREATE DATABASE other"); err != nil {
		t.Fatal(err)
	}
	other := connectT(t, c.dsnFor("other"))
	if _, err := other.Exec(t.Context(), "SELECT count(*) FROM pg_stat_statements"); err != nil {
		t.Errorf("pg_stat_statements in a database created by CREATE DATABASE: %v", err)
	}
}

func TestStop(t *testing.T) {
	ctx := t.Context()
	c, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := os.Stat(filepath.Join(c.dir, "server.log")); err != nil {
		t.Errorf("default server.log: %v", err)
	}
	pid := c.srv.cmd.Process.Pid

	begin := time.Now()
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(begin).Round(time.Millisecond))
	if _, err := os.Stat(c.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory still there after Stop (stat: %v)", err)
	}
	if nc, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)), time.Second); err == nil {
		nc.Close()
		t.Errorf("port %d still accepts connections after Stop", c.port)
	}
	if processAlive(pid) {
		t.Errorf("postmaster %d still alive after Stop", pid)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Errorf("connection still usable after Stop")
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	var nilCluster *Cluster
	if err := nilCluster.Stop(); err != nil {
		t.Errorf("nil Stop: %v", err)
	}
}

// TestRestart: the server comes back on the same port with its data, after
// a pause in which it refuses connections; the old sessions are gone and
// pg_stat_statements is still there. A Restart after Stop fails.
func TestRestart(t *testing.T) {
	ctx := t.Context()
	c, err := Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	conn := connectT(t, c.DSN())
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')"); err != nil {
		t.Fatal(err)
	}
	pid, port, dsn := c.srv.cmd.Process.Pid, c.port, c.DSN()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var refused error
	begin := time.Now()
	err = c.Restart(ctx, func() {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			nc.Close()
		}
		refused = err
	})
	if err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("Restart took %v", time.Since(begin).Round(time.Millisecond))
	if refused == nil {
		t.Errorf("port %d accepted a connection while the server was down", port)
	}
	if processAlive(pid) {
		t.Errorf("the old postmaster %d is still alive", pid)
	}
	if c.port != port || c.DSN() != dsn || c.srv.cmd.Process.Pid == pid {
		t.Errorf("after Restart: port %d, DSN %s, postmaster %d; want port %d, DSN %s and a new postmaster",
			c.port, c.DSN(), c.srv.cmd.Process.Pid, port, dsn)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Errorf("a session from before the restart still works")
	}
	again := connectT(t, c.DSN())
	if v := queryString(t, again, "SELECT v FROM kept"); v != "before" {
		t.Errorf("kept row = %q after Restart, want %q", v, "before")
	}
	queryString(t, again, "SELECT count(*)::text FROM pg_stat_statements")

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := c.Restart(ctx, nil); err == nil {
		t.Errorf("Restart after Stop succeeded")
	}
}

func TestConcurrentClusters(t *testing.T) {
	var (
		wg sync.WaitGroup
		cs [3]*Cluster
	)
	for i := range cs {
		wg.Go(func() {
			c, err := Start(t.Context())
			if err != nil {
				t.Errorf("Start %d: %v", i, err)
				return
			}
			cs[i] = c
		})
	}
	wg.Wait()
	ports := map[int]bool{}
	for _, c := range cs {
		if c == nil {
			continue
		}
		if ports[c.port] {
			t.Errorf("two clusters on port %d", c.port)
		}
		ports[c.port] = true
		conn := connectT(t, c.DSN())
		if got := queryString(t, conn, "SELECT current_setting('data_directory')"); !sameFile(got, c.dataDir) {
			t.Errorf("DSN %s reaches data directory %s, want %s", c.DSN(), got, c.dataDir)
		}
		conn.Close(t.Context())
		if err := c.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
}

// ourDirs lists the cluster directories this process created.
func ourDirs(t *testing.T) []string {
	t.Helper()
	base, err := tempBase(mustServerUser(t))
	if err != nil {
		t.Fatal(err)
	}
	dirs, _ := filepath.Glob(filepath.Join(base, dirPrefix+"*"))
	var ours []string
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err == nil && strings.HasPrefix(string(b), strconv.Itoa(os.Getpid())+"\n") {
			ours = append(ours, d)
		}
	}
	return ours
}

func mustServerUser(t *testing.T) *osUser {
	t.Helper()
	u, err := serverUser()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestStartFailureCleansUp(t *testing.T) {
	before := ourDirs(t)

	t.Run("bad setting", func(t *testing.T) {
		_, err := Start(t.Context(), WithSetting("shared_buffers", "lots"))
		if err == nil {
			t.Fatal("Start with an invalid setting: no error")
		}
		t.Logf("error: %v", err)
		for _, want := range []string{"exited during startup", "shared_buffers", "lots"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q (the server log): %v", want, err)
			}
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		for _, d := range []time.Duration{0, 300 * time.Millisecond, 1500 * time.Millisecond} {
			ctx, cancel := context.WithTimeout(t.Context(), d)
			c, err := Start(ctx)
			cancel()
			if err == nil {
				c.Stop()
				t.Logf("Start finished within %v", d)
				continue
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Start with a %v deadline: %v, want context.DeadlineExceeded", d, err)
			}
		}
	})
	t.Run("bad setting name", func(t *testing.T) {
		for _, name := range []string{"", "a=b", "x y", "-D"} {
			if _, err := Start(t.Context(), WithSetting(name, "1")); err == nil {
				t.Errorf("WithSetting(%q): no error", name)
			}
		}
	})

	if after := ourDirs(t); !slices.Equal(before, after) {
		t.Errorf("failed Starts left directories behind: before %v, after %v", before, after)
	}
}

// withPorts makes Start try the given ports, then free ones.
func withPorts(ports ...int) Option {
	return func(c *config) {
		var mu sync.Mutex
		c.freePort = func() (int, error) {
			mu.Lock()
			defer mu.Unlock()
			if len(ports) == 0 {
				return freePort()
			}
			p := ports[0]
			ports = ports[1:]
			return p, nil
		}
	}
}

func TestPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port

	log := newTailBuffer(1 << 20) // the whole log, for the checks below
	c := startCluster(t, WithLogger(log), withPorts(taken))
	if c.port == taken {
		t.Fatalf("cluster on the taken port %d", taken)
	}
	if !strings.Contains(log.since(0), "Address already in use") {
		t.Errorf("the first server did not meet the taken port; log:\n%s", log.since(0))
	}
	if strings.Count(log.since(0), "ready to accept connections") != 1 {
		t.Errorf("log:\n%s", log.since(0))
	}

	before := ourDirs(t)
	begin := time.Now()
	_, err = Start(t.Context(), withPorts(taken, taken, taken))
	if err == nil || !errors.Is(err, errPortInUse) {
		t.Errorf("Start with every port taken: %v, want an error", err)
	}
	t.Logf("gave up after %v: %v", time.Since(begin).Round(time.Millisecond), err)
	if after := ourDirs(t); !slices.Equal(before, after) {
		t.Errorf("failed Start left directories behind: before %v, after %v", before, after)
	}
}

func TestPortRetry(t *testing.T) {
	a := startCluster(t)
	b := &Cluster{port: a.port}
	b.dsn = b.dsnFor("postgres")
	// A server answering on the port with another data directory is detected.
	b.dataDir = t.TempDir()
	retry, err := b.setUp(t.Context(), true)
	if !errors.Is(err, errPortInUse) || retry {
		t.Errorf("setUp against another server: retry %v, err %v; want errPortInUse", retry, err)
	}
	// And an exit with "Address already in use" in the log.
	b.tail = newTailBuffer(1024)
	mark := b.tail.mark()
	b.tail.Write([]byte(`LOG:  could not bind IPv4 address "127.0.0.1": Address already in use` + "\n"))
	if err := b.exitError(&server{}, mark); !errors.Is(err, errPortInUse) {
		t.Errorf("exitError: %v, want errPortInUse", err)
	}
}

// TestNoBinaries: with nothing installed and installing turned off, the
// error says what to install.
func TestNoBinaries(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(sysdeps.EnvNoInstall, "1")
	_, err := ensureServer(t.Context(), []string{filepath.Join(t.TempDir(), "*", "bin")})
	if !errors.Is(err, ErrNoBinaries) || !errors.Is(err, sysdeps.ErrMissing) {
		t.Fatalf("ensureServer with nothing installed: %v, want ErrNoBinaries and sysdeps.ErrMissing", err)
	}
	for _, want := range []string{"apt-get install -y postgresql)", "AUDITPG_NO_INSTALL is set", "dnf install"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}
}

// TestInstallServer: missing binaries are installed through sysdeps, which
// finds them where pgtemp looks; as root the postgres user is asked for too.
func TestInstallServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	root := t.TempDir()
	var asked []string
	ensureDep = func(ctx context.Context, d sysdeps.Dep) (string, error) {
		asked = append(asked, d.Package)
		if _, ok := d.Find(); !ok && d.Package == "postgresql" {
			bin := filepath.Join(root, "15", "bin")
			if err := os.MkdirAll(bin, 0o755); err != nil {
				return "", err
			}
			for _, p := range []string{"initdb", "postgres"} {
				if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
					return "", err
				}
			}
		}
		path, ok := d.Find()
		if !ok {
			return "", errors.New("still missing")
		}
		return path, nil
	}
	t.Cleanup(func() { ensureDep = sysdeps.Ensure })
	b, err := ensureServer(t.Context(), []string{filepath.Join(root, "*", "bin")})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "15", "bin", "postgres"); b.postgres != want {
		t.Errorf("postgres = %s, want %s", b.postgres, want)
	}
	want := []string{"postgresql"}
	if os.Geteuid() == 0 {
		want = append(want, "postgresql-common")
	}
	if !slices.Equal(asked, want) {
		t.Errorf("asked sysdeps for %q, want %q", asked, want)
	}
}

func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	for _, v := range []string{"9.6", "10", "16", "notaversion"} {
		dir := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if v == "16" {
			continue // a version without its server: skipped
		}
		for _, p := range []string{"initdb", "postgres"} {
			if err := os.WriteFile(filepath.Join(dir, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Setenv("PATH", t.TempDir())
	b, err := findBinaries(t.Context(), []string{filepath.Join(root, "*", "bin")})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "10", "bin", "initdb"); b.initdb != want {
		t.Errorf("initdb = %s, want %s", b.initdb, want)
	}

	// The real machine: whatever is installed is found.
	if b, err := findBinaries(t.Context(), defaultRoots); err != nil {
		t.Logf("no local binaries: %v", err)
	} else {
		t.Logf("binaries: %+v", b)
	}
}

func TestSweepStale(t *testing.T) {
	base := t.TempDir()
	mk := func(name, owner string) string {
		d := filepath.Join(base, dirPrefix+name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	// A PID that is surely dead: a child we waited for.
	deadPID := deadProcess(t)
	ns := pidNamespace()
	live := mk("live", strconv.Itoa(os.Getpid())+"\n"+ns+"\n")
	dead := mk("dead", strconv.Itoa(deadPID)+"\n"+ns+"\n")
	otherNS := mk("otherns", strconv.Itoa(deadPID)+"\npid:[1]\n")
	noOwner := mk("noowner", "")
	deadButServerAlive := mk("server", strconv.Itoa(deadPID)+"\n"+ns+"\n")
	if err := os.MkdirAll(filepath.Join(deadButServerAlive, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(deadButServerAlive, "data", "postmaster.pid"),
		[]byte(strconv.Itoa(os.Getpid())+"\n/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unrelated := filepath.Join(base, "unrelated")
	if err := os.Mkdir(unrelated, 0o755); err != nil {
		t.Fatal(err)
	}

	sweepStale(base)
	for dir, kept := range map[string]bool{live: true, dead: false, otherNS: true, noOwner: true, deadButServerAlive: true, unrelated: true} {
		_, err := os.Stat(dir)
		if exists := err == nil; exists != kept {
			t.Errorf("%s: exists %v, want %v", filepath.Base(dir), exists, kept)
		}
	}
}

func TestParseMajor(t *testing.T) {
	for out, want := range map[string]int{
		"postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n": 15,
		"postgres (PostgreSQL) 9.6.24\n":                         9,
		"postgres (PostgreSQL) 17beta1\n":                        17,
		"postgres (PostgreSQL) 16.2 (Homebrew)\n":                16,
		"garbage": 0,
	} {
		if got := parseMajor(out); got != want {
			t.Errorf("parseMajor(%q) = %d, want %d", out, got, want)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	tb := newTailBuffer(10)
	tb.Write([]byte("0123456789"))
	m := tb.mark()
	tb.Write([]byte("abc"))
	if got := tb.since(m); got != "abc" {
		t.Errorf("since = %q, want abc", got)
	}
	tb.Write([]byte(strings.Repeat("z", 30)))
	if got := tb.since(m); len(got) > 20 || !strings.HasSuffix(got, "zzzzzzzzzz") {
		t.Errorf("since after overflow = %q", got)
	}
	if got := lastLines("a\nb\nc\n", 2); got != "\tb\n\tc" {
		t.Errorf("lastLines = %q", got)
	}
	if got := lastLines("", 2); got != "\t(no output)" {
		t.Errorf("lastLines of nothing = %q", got)
	}
}

func ownedBy(fi os.FileInfo, uid uint32) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == uid
}

// deadProcess returns the PID of a process that has exited and been reaped.
func deadProcess(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestProcessAlive(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Errorf("processAlive(self) = false")
	}
	if processAlive(deadProcess(t)) {
		t.Errorf("processAlive(reaped child) = true")
	}
	// A zombie: a child that exited and was not reaped yet.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("exited child %d still counted alive", cmd.Process.Pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
