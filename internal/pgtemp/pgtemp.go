package pgtemp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDatabaseURL names the environment variable that the tests' TestMain
// (internal/testdb.Run) reads: when it is set, tests use that server and no
// cluster is started.
const EnvDatabaseURL = "AUDITPG_TEST_DATABASE_URL"

// ErrNoBinaries is wrapped by the error [Start] returns when no PostgreSQL
// server binaries (initdb and postgres) can be found or installed.
var ErrNoBinaries = errors.New("pgtemp: no PostgreSQL server binaries found")

// ErrNoPostgresUser is wrapped by the error [Start] returns when it runs as
// root and there is no "postgres" system user to run the server as.
var ErrNoPostgresUser = errors.New(`pgtemp: running as root and there is no "postgres" system user`)

const (
	// readyTimeout bounds the wait for the server to accept connections.
	readyTimeout = 30 * time.Second
	// initdbTimeout bounds initdb.
	initdbTimeout = 2 * time.Minute
	// stopTimeout bounds a fast shutdown before the process group is killed.
	stopTimeout = 30 * time.Second
	// abortTimeout bounds an immediate shutdown after a failed Start.
	abortTimeout = 5 * time.Second
	// portAttempts is how many ports are tried when the chosen one is taken.
	portAttempts = 3
	// pollInterval is the pause between connection attempts.
	pollInterval = 50 * time.Millisecond
	// logLines is how many server log lines an error shows.
	logLines = 40
	// maxIdentifier is PostgreSQL's NAMEDATALEN-1.
	maxIdentifier = 63
	// maxSocketPath is the longest Unix socket path (sun_path less its NUL).
	maxSocketPath = 107
)

type config struct {
	logger   io.Writer
	settings []setting
	freePort func() (int, error) // tests replace it
}

type setting struct{ name, value string }

// Option configures [Start].
type Option func(*config)

// WithLogger sends the output of initdb and of the server to w instead of
// the file server.log in the cluster directory. Write errors are ignored, and
// w is written from one goroutine at a time. The last lines are kept in memory
// either way, and shown in the error when Start fails.
func WithLogger(w io.Writer) Option {
	return func(c *config) { c.logger = w }
}

// WithSetting adds a postgresql.conf setting, passed to postgres as
// -c name=value after the package's own, which it can therefore override
// (a shared_preload_libraries setting must keep pg_stat_statements).
func WithSetting(name, value string) Option {
	return func(c *config) { c.settings = append(c.settings, setting{name, value}) }
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// Cluster is a running temporary PostgreSQL cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	dir     string // work directory, removed by Stop
	dataDir string
	sockDir string
	port    int
	dsn     string
	bin     binaries
	major   int     // server major version, 0 if unknown
	owner   *osUser // nil: run as the current user
	tail    *tailBuffer
	logw    io.Writer
	logFile *os.File // nil with WithLogger
	srv     *server  // nil while no server runs; guarded by mu after Start
	args    []string // the server's command line, which Restart runs again

	mu       sync.Mutex // serializes Restart and Stop
	stopped  bool       // Stop was called: Restart must not start a server
	stopOnce sync.Once
	stopErr  error
}

// server is one postgres process.
type server struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returned
	err  error         // cmd.Wait's result, set before done is closed
}

// errPortInUse marks a start that failed because the port was taken.
var errPortInUse = errors.New("another process took the port")

// Start initializes and starts a temporary cluster; the caller must Stop it.
// It first calls [Install], which may install the server with apt-get.
//
// Start returns once the server accepts connections on 127.0.0.1 and
// pg_stat_statements is created in the postgres and template1 databases (so
// databases created later have it too). ctx bounds the whole start; the
// server outlives ctx once Start returned. On failure nothing is left behind:
// the server is shut down and the directory removed, and the error includes
// the end of the server log.
func Start(ctx context.Context, opts ...Option) (_ *Cluster, err error) {
	cfg := config{freePort: freePort}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	for _, s := range cfg.settings {
		if !settingName.MatchString(s.name) {
			return nil, fmt.Errorf("pgtemp: invalid setting name %q: want a postgresql.conf parameter name", s.name)
		}
		if strings.ContainsRune(s.value, 0) {
			return nil, fmt.Errorf("pgtemp: setting %s: value contains a NUL byte", s.name)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("pgtemp: %w", err)
	}

	bin, err := ensureServer(ctx, defaultRoots)
	if err != nil {
		return nil, err
	}
	owner, err := serverUser()
	if err != nil {
		return nil, err
	}
	base, err := tempBase(owner)
	if err != nil {
		return nil, err
	}
	sweepStale(base)

	dir, err := os.MkdirTemp(base, dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtemp: creating the cluster directory: %w", err)
	}
	c := &Cluster{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		bin:     bin,
		major:   serverMajor(ctx, bin.postgres),
		owner:   owner,
		tail:    newTailBuffer(64 << 10),
	}
	defer func() {
		if err != nil {
			c.abort()
			if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
				err = fmt.Errorf("%w: %w", ctxErr, err)
			}
		}
	}()

	if err := c.prepareDir(cfg.logger); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err = c.startServer(ctx, cfg)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errPortInUse) {
			return nil, err
		}
		if attempt == portAttempts {
			return nil, fmt.Errorf("%w (tried %d ports)", err, portAttempts)
		}
	}
}

// prepareDir sets up the work directory: permissions, owner, socket
// directory and log destination.
func (c *Cluster) prepareDir(logger io.Writer) error {
	// The server user must be able to traverse to the directory.
	if err := os.Chmod(c.dir, 0o755); err != nil {
		return fmt.Errorf("pgtemp: %w", err)
	}
	if err := writeOwner(c.dir); err != nil {
		return fmt.Errorf("pgtemp: %w", err)
	}
	if err := os.Mkdir(c.sockDir, 0o700); err != nil {
		return fmt.Errorf("pgtemp: %w", err)
	}
	for _, p := range []string{c.dir, c.sockDir} {
		if err := chownTo(p, c.owner); err != nil {
			return fmt.Errorf("pgtemp: giving %s to the postgres user: %w", p, err)
		}
	}
	dest := logger
	if dest == nil {
		f, err := os.OpenFile(filepath.Join(c.dir, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("pgtemp: creating the server log: %w", err)
		}
		c.logFile = f
		dest = f
	}
	c.logw = io.MultiWriter(ignoreErrors{dest}, c.tail)
	return nil
}

// initdb creates the data directory.
func (c *Cluster) initdb(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, initdbTimeout)
	defer cancel()
	mark := c.tail.mark()
	cmd := exec.CommandContext(ctx, c.bin.initdb,
		"-D", c.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	c.setupCmd(cmd)
	// initdb removes what it created on SIGTERM; its bootstrap backend is
	// in the same process group.
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, sigTerm) }
	cmd.WaitDelay = abortTimeout
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return fmt.Errorf("pgtemp: initdb (%s) failed after %v: %w; output:\n%s",
			c.bin.initdb, time.Since(start).Round(time.Millisecond), err, lastLines(c.tail.since(mark), logLines))
	}
	return nil
}

// setupCmd sets what initdb and postgres have in common.
func (c *Cluster) setupCmd(cmd *exec.Cmd) {
	cmd.Dir = c.dir
	cmd.Env = serverEnv()
	cmd.Stdout = c.logw
	cmd.Stderr = c.logw
	cmd.SysProcAttr = sysProcAttr(c.owner)
}

// startServer picks a port, starts postgres and waits until it is ready.
func (c *Cluster) startServer(ctx context.Context, cfg config) error {
	port, err := cfg.freePort()
	if err != nil {
		return err
	}
	sock := c.sockDir
	if len(sock)+len("/.s.PGSQL.")+len(strconv.Itoa(port)) > maxSocketPath {
		sock = "" // TCP only: the socket path would be too long
	}
	args := []string{
		"-D", c.dataDir,
		"-p", strconv.Itoa(port),
		"-k", sock,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "shared_preload_libraries=pg_stat_statements",
		"-c", "pg_stat_statements.track=all",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
	}
	if c.major == 0 || c.major >= 14 { // compute_query_id is new in 14
		args = append(args, "-c", "compute_query_id=on")
	}
	for _, s := range cfg.settings {
		args = append(args, "-c", s.name+"="+s.value)
	}
	c.port = port
	c.dsn = c.dsnFor("postgres")
	return c.run(ctx, args, true)
}

// run starts postgres with args and waits until it is ready; fresh says
// that the cluster is new, so that pg_stat_statements is still to be
// created.
func (c *Cluster) run(ctx context.Context, args []string, fresh bool) error {
	mark := c.tail.mark()
	cmd := exec.Command(c.bin.postgres, args...)
	c.setupCmd(cmd)
	// Backends inherit the log pipe; bound the wait for it after an exit.
	cmd.WaitDelay = abortTimeout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtemp: starting %s: %w", c.bin.postgres, err)
	}
	srv := &server{cmd: cmd, done: make(chan struct{})}
	go func() {
		srv.err = cmd.Wait()
		close(srv.done)
	}()
	c.srv, c.args = srv, args

	if err := c.waitReady(ctx, srv, mark, fresh); err != nil {
		c.kill(srv)
		c.srv = nil
		return err
	}
	return nil
}

// waitReady connects until the server answers, checks that it is ours and,
// in a fresh cluster, creates pg_stat_statements.
func (c *Cluster) waitReady(ctx context.Context, srv *server, mark int64, fresh bool) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	// A connection attempt ends as soon as the server exits: when it lost
	// the port, whatever holds the port may never answer.
	attemptCtx, cancelAttempt := context.WithCancel(ctx)
	defer cancelAttempt()
	go func() {
		select {
		case <-srv.done:
			cancelAttempt()
		case <-attemptCtx.Done():
		}
	}()
	start := time.Now()
	var lastErr error
	for {
		select {
		case <-srv.done:
			return c.exitError(srv, mark)
		default:
		}
		retry, err := c.setUp(attemptCtx, fresh)
		select {
		case <-srv.done:
			return c.exitError(srv, mark)
		default:
		}
		if err == nil || !retry {
			return err
		}
		lastErr = err
		t := time.NewTimer(pollInterval)
		select {
		case <-srv.done:
			t.Stop()
			return c.exitError(srv, mark)
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("pgtemp: postgres on port %d not ready after %v: %w (last connection error: %v); server log:\n%s",
				c.port, time.Since(start).Round(time.Millisecond), ctx.Err(), lastErr, lastLines(c.tail.since(mark), logLines))
		case <-t.C:
		}
	}
}

// setUp connects once; on success it checks the server's data directory and,
// when fresh, creates pg_stat_statements in postgres and template1. Only a
// failure to connect is worth a retry: once a connection is accepted the
// server is up.
func (c *Cluster) setUp(ctx context.Context, fresh bool) (retry bool, err error) {
	conn, err := connect(ctx, c.dsn)
	if err != nil {
		return true, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dataDir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dataDir); err != nil {
		return false, fmt.Errorf("pgtemp: querying the new server: %w", err)
	}
	if !sameFile(dataDir, c.dataDir) {
		return false, fmt.Errorf("pgtemp: another server (data directory %s) answered on port %d: %w", dataDir, c.port, errPortInUse)
	}
	if !fresh {
		return false, nil
	}
	for _, db := range []string{"postgres", "template1"} {
		if err := createExtension(ctx, c.dsnFor(db)); err != nil {
			return false, fmt.Errorf("pgtemp: %w", err)
		}
	}
	// With track=all the extension scripts filled pg_stat_statements: start
	// clean.
	if _, err := conn.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
		return false, fmt.Errorf("pgtemp: resetting pg_stat_statements: %w", err)
	}
	return false, nil
}

// createExtension creates pg_stat_statements in the database of dsn.
func createExtension(ctx context.Context, dsn string) error {
	conn, err := connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("creating pg_stat_statements: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return fmt.Errorf("creating pg_stat_statements in database %q: %w", conn.Config().Database, err)
	}
	return nil
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 5 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

func sameFile(a, b string) bool {
	ai, err := os.Stat(a)
	if err != nil {
		return false
	}
	bi, err := os.Stat(b)
	return err == nil && os.SameFile(ai, bi)
}

// exitError describes a server that exited before it was ready.
func (c *Cluster) exitError(srv *server, mark int64) error {
	log := c.tail.since(mark)
	if strings.Contains(log, "Address already in use") {
		return fmt.Errorf("pgtemp: port %d: %w", c.port, errPortInUse)
	}
	hint := ""
	if strings.Contains(log, `"pg_stat_statements"`) {
		hint = "; pg_stat_statements is missing: install the PostgreSQL contrib modules" +
			" (postgresql-contrib on Fedora/RHEL/Alpine; part of postgresql on Debian/Ubuntu)"
	}
	return fmt.Errorf("pgtemp: postgres exited during startup (%v)%s; server log:\n%s",
		srv.err, hint, lastLines(log, logLines))
}

// kill shuts srv down at once (immediate shutdown, which also releases its
// shared memory), then kills its process group if it lingers.
func (c *Cluster) kill(srv *server) {
	_ = srv.cmd.Process.Signal(sigQuit)
	t := time.NewTimer(abortTimeout)
	defer t.Stop()
	select {
	case <-srv.done:
	case <-t.C:
		_ = signalGroup(srv.cmd.Process.Pid, sigKill)
		<-srv.done
	}
}

// abort undoes a failed Start.
func (c *Cluster) abort() {
	if c.srv != nil {
		c.kill(c.srv)
		c.srv = nil
	}
	if c.logFile != nil {
		_ = c.logFile.Close()
	}
	_ = os.RemoveAll(c.dir)
}

// DSN returns the URL of the cluster's postgres database, as the superuser
// "postgres" (trust authentication, no password):
// postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable.
func (c *Cluster) DSN() string { return c.dsn }

func (c *Cluster) dsnFor(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.port)),
		Path:     "/" + database,
		RawPath:  "/" + url.PathEscape(database),
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates the database name (any name PostgreSQL accepts: it
// is quoted with pgx.Identifier.Sanitize), creates pg_stat_statements in it,
// and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (dsn string, err error) {
	switch {
	case name == "":
		return "", errors.New("pgtemp: CreateDatabase: empty database name")
	case len(name) > maxIdentifier:
		return "", fmt.Errorf("pgtemp: CreateDatabase: name %q is longer than %d bytes; PostgreSQL would truncate it", name, maxIdentifier)
	case strings.ContainsRune(name, 0):
		return "", fmt.Errorf("pgtemp: CreateDatabase: name %q contains a NUL byte", name)
	}
	conn, err := connect(ctx, c.dsn)
	if err != nil {
		return "", fmt.Errorf("pgtemp: CreateDatabase %q: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtemp: CreateDatabase %q: %w", name, err)
	}
	dsn = c.dsnFor(name)
	if err := createExtension(ctx, dsn); err != nil {
		return "", fmt.Errorf("pgtemp: CreateDatabase %q: %w", name, err)
	}
	return dsn, nil
}

// Stop shuts the server down (fast shutdown: sessions are disconnected and
// open transactions rolled back) and removes the cluster directory. If the
// server has not exited within 30 seconds its process group is killed. Stop
// is idempotent: later calls return the first call's result. Stop on a nil
// *Cluster returns nil.
func (c *Cluster) Stop() error {
	if c == nil {
		return nil
	}
	c.stopOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stopped = true
		c.stopErr = c.stop()
	})
	return c.stopErr
}

// Restart shuts the server down as Stop does (fast shutdown: sessions are
// disconnected) and starts it again on the same port and data directory,
// with the same settings, returning once it accepts connections; the data,
// the DSN and the directory stay. whileDown, when not nil, is called in
// between, once the old server has exited: a test holds the server down
// there for as long as it needs, to see what its clients do meanwhile. ctx
// bounds the start. When the server cannot start again (another process
// took the port meanwhile, say), the error says why and no server runs
// until a later Restart; Stop still removes the directory. Restart after
// Stop fails.
func (c *Cluster) Restart(ctx context.Context, whileDown func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgtemp: Restart after Stop")
	}
	if srv := c.srv; srv != nil {
		c.srv = nil
		if err := shutdown(srv); err != nil {
			return fmt.Errorf("pgtemp: restarting the cluster in %s: %w", c.dir, err)
		}
	}
	if whileDown != nil {
		whileDown()
	}
	return c.run(ctx, c.args, false)
}

func (c *Cluster) stop() error {
	var errs []error
	if srv := c.srv; srv != nil {
		errs = append(errs, shutdown(srv))
	}
	if c.logFile != nil {
		if err := c.logFile.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pgtemp: stopping the cluster in %s: %w", c.dir, err)
	}
	return nil
}

// shutdown stops srv with a fast shutdown and waits for it to exit; past
// stopTimeout it kills the process group.
func shutdown(srv *server) error {
	select {
	case <-srv.done:
		return nil // already gone (killed, or crashed)
	default:
	}
	var errs []error
	if err := srv.cmd.Process.Signal(sigFast); err != nil {
		errs = append(errs, fmt.Errorf("signalling postgres: %w", err))
	}
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-srv.done:
	case <-t.C:
		errs = append(errs, fmt.Errorf("postgres did not shut down within %v; killed it", stopTimeout))
		_ = signalGroup(srv.cmd.Process.Pid, sigKill)
		<-srv.done
	}
	return errors.Join(errs...)
}

// freePort returns a port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("pgtemp: finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return 0, fmt.Errorf("pgtemp: finding a free port: %w", err)
		}
		if port != 5432 { // never the default port of a system server
			return port, nil
		}
	}
}

// serverEnv is the environment of initdb and postgres: ours, less the libpq
// variables, which are meant for clients.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// ignoreErrors keeps a failing log destination from stopping the copy of the
// server's output, which would block the server.
type ignoreErrors struct{ w io.Writer }

func (w ignoreErrors) Write(p []byte) (int, error) {
	_, _ = w.w.Write(p)
	return len(p), nil
}
