package sysdeps

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeApt stands for apt-get and apt-cache: it records the commands and
// "installs" by setting installed.
type fakeApt struct {
	mu         sync.Mutex
	calls      []string // "name args... [env]"
	known      bool     // apt-cache knows the package before an update
	installErr error
	installs   atomic.Int32
	installed  atomic.Bool
	noEffect   bool          // the install succeeds but installs nothing
	delay      time.Duration // how long an install takes
}

func (f *fakeApt) run(ctx context.Context, out io.Writer, env []string, name string, args ...string) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s %v", filepath.Base(name), strings.Join(args, " "), env))
	f.mu.Unlock()
	switch {
	case filepath.Base(name) == "apt-cache":
		if !f.known {
			return errors.New("exit status 100")
		}
	case slices.Contains(args, "update"):
		f.known = true
	case slices.Contains(args, "install"):
		fmt.Fprintln(out, "Setting up the package...")
		if f.installErr != nil {
			fmt.Fprintln(out, "E: Unable to locate package")
			return f.installErr
		}
		f.installs.Add(1)
		time.Sleep(f.delay)
		if !f.noEffect {
			f.installed.Store(true)
		}
	}
	return nil
}

func (f *fakeApt) dep() Dep {
	d := HypoPG(15)
	d.Find = func() (string, bool) {
		if f.installed.Load() {
			return "/usr/share/postgresql/15/extension/hypopg.control", true
		}
		return "", false
	}
	return d
}

func (f *fakeApt) system(t *testing.T, stderr io.Writer) system {
	return system{
		root:     true,
		aptGet:   "/usr/bin/apt-get",
		lockPath: filepath.Join(t.TempDir(), lockName),
		stderr:   stderr,
		run:      f.run,
	}
}

const (
	wantUpdate  = "apt-get -o DPkg::Lock::Timeout=300 -q update [DEBIAN_FRONTEND=noninteractive]"
	wantInstall = "apt-get -o DPkg::Lock::Timeout=300 -q install -y --no-install-recommends postgresql-15-hypopg [DEBIAN_FRONTEND=noninteractive]"
	wantShow    = "apt-cache show --no-all-versions postgresql-15-hypopg [DEBIAN_FRONTEND=noninteractive]"
)

// TestEnsureInstalls: as root with apt-get, a missing package unknown to apt
// is installed after one apt-get update, with the non-interactive options,
// saying what and why on standard error.
func TestEnsureInstalls(t *testing.T) {
	f := &fakeApt{}
	var stderr bytes.Buffer
	path, err := f.system(t, &stderr).ensure(t.Context(), f.dep())
	if err != nil || path != "/usr/share/postgresql/15/extension/hypopg.control" {
		t.Fatalf("ensure = %q, %v", path, err)
	}
	if want := []string{wantShow, wantUpdate, wantInstall}; !slices.Equal(f.calls, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	for _, want := range []string{
		"auditpg: installing postgresql-15-hypopg (HypoPG for PostgreSQL 15, for the index-suggestion check) with apt-get...\n",
		"running apt-get update first",
		"Setting up the package...", // apt's own output goes to stderr as well
		"auditpg: installed postgresql-15-hypopg\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}

	// A package apt knows is installed without an update; one that is
	// there is not installed again.
	f = &fakeApt{known: true}
	s := f.system(t, io.Discard)
	for range 2 {
		if _, err := s.ensure(t.Context(), f.dep()); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{wantShow, wantInstall}; !slices.Equal(f.calls, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestEnsureRefuses: without root, without apt-get or with AUDITPG_NO_INSTALL,
// nothing runs and the error, at once, gives the command to run, even while
// another process holds the install lock.
func TestEnsureRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*system)
		reason string
		hint   string
	}{
		{"not root", func(s *system) { s.root = false }, "not running as root",
			"install it with: sudo apt-get install -y postgresql-15-hypopg"},
		{"no apt-get", func(s *system) { s.aptGet = "" }, "apt-get is not on PATH",
			"install it (on Debian or Ubuntu: apt-get install -y postgresql-15-hypopg)"},
		{"no install", func(s *system) { s.noInstall = true }, "AUDITPG_NO_INSTALL is set",
			"install it with: apt-get install -y postgresql-15-hypopg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeApt{}
			var stderr bytes.Buffer
			s := f.system(t, &stderr)
			tc.change(&s)
			unlock, err := lockFile(t.Context(), s.lockPath)
			if err != nil {
				t.Fatal(err)
			}
			defer unlock()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err = s.ensure(ctx, f.dep())
			var me *MissingError
			if !errors.As(err, &me) || !errors.Is(err, ErrMissing) {
				t.Fatalf("ensure = %v, want a MissingError", err)
			}
			if ctx.Err() != nil {
				t.Errorf("ensure waited for the lock: %v", err)
			}
			for _, want := range []string{
				"HypoPG for PostgreSQL 15 is not installed (postgresql-15-hypopg), needed for the index-suggestion check",
				tc.reason, tc.hint,
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q: %v", want, err)
				}
			}
			if len(f.calls) != 0 || stderr.Len() != 0 {
				t.Errorf("ran %q, printed %q; want nothing", f.calls, stderr.String())
			}
		})
	}
}

// TestEnsureFails: a failed install, or one after which the program is still
// missing, is a MissingError with apt's last output and the command.
func TestEnsureFails(t *testing.T) {
	f := &fakeApt{known: true, installErr: errors.New("exit status 100")}
	_, err := f.system(t, io.Discard).ensure(t.Context(), f.dep())
	var me *MissingError
	if !errors.As(err, &me) || me.Err == nil {
		t.Fatalf("ensure = %v, want a MissingError with the install's error", err)
	}
	for _, want := range []string{"apt-get failed", "exit status 100", "E: Unable to locate package", "install it with: apt-get install -y postgresql-15-hypopg"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}

	f = &fakeApt{known: true, noEffect: true}
	_, err = f.system(t, io.Discard).ensure(t.Context(), f.dep())
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "apt-get installed postgresql-15-hypopg but HypoPG for PostgreSQL 15 is still not found") {
		t.Errorf("ensure after an install without effect = %v", err)
	}
}

// TestEnsureSerialized: concurrent Ensures install once; the others find the
// program once they hold the lock.
func TestEnsureSerialized(t *testing.T) {
	f := &fakeApt{known: true, delay: 50 * time.Millisecond}
	s := f.system(t, io.Discard)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.ensure(t.Context(), f.dep()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if n := f.installs.Load(); n != 1 {
		t.Errorf("%d installs, want 1", n)
	}
}

// TestLockAcrossProcesses: the lock taken by another process makes this one
// wait, up to its context, and is free once that process is gone.
func TestLockAcrossProcesses(t *testing.T) {
	if path := os.Getenv("SYSDEPS_TEST_HOLD_LOCK"); path != "" {
		unlock, err := lockFile(context.Background(), path)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin) // until the parent closes it
		unlock()
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), lockName)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockAcrossProcesses$")
	cmd.Env = append(os.Environ(), "SYSDEPS_TEST_HOLD_LOCK="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("child: %q", line)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if unlock, err := lockFile(ctx, path); err == nil {
		unlock()
		t.Fatal("took the lock another process holds")
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	unlock, err := lockFile(ctx, path)
	if err != nil {
		t.Fatalf("lock after the other process ended: %v", err)
	}
	unlock()
}

// TestNoInstallOnThisMachine: with AUDITPG_NO_INSTALL the real host installs
// nothing, whoever runs the test, and says what to run.
func TestNoInstallOnThisMachine(t *testing.T) {
	t.Setenv(EnvNoInstall, "1")
	d := Dep{Name: "nothing", Package: "auditpg-no-such-package", Find: func() (string, bool) { return "", false }}
	_, err := Ensure(t.Context(), d)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "apt-get install -y auditpg-no-such-package") {
		t.Fatalf("Ensure = %v, want the command to run", err)
	}
	if _, err := Find(d); !errors.Is(err, ErrMissing) || strings.Contains(err.Error(), "not installed automatically") {
		t.Errorf("Find = %v, want a MissingError without a reason", err)
	}
}

// TestRealAptSimulated runs the real apt-get with --simulate in front of the
// arguments Ensure gives its install, for chromium taken as missing: apt
// accepts the arguments and would install the package (or has it already),
// and nothing is installed. apt knows every other known package too.
func TestRealAptSimulated(t *testing.T) {
	apt, err := exec.LookPath("apt-get")
	if err != nil || os.Geteuid() != 0 {
		t.Skip("not root on Debian or Ubuntu: there is no apt-get to run as root here")
	}
	dir := t.TempDir()
	for name, script := range map[string]string{
		// apt-get update, which a machine without package lists needs, runs
		// as it is: --simulate does not apply to it.
		"apt-get":   `case " $* " in *" install "*) exec ` + apt + ` --simulate "$@";; esac; exec ` + apt + ` "$@"`,
		"apt-cache": `exec ` + filepath.Join(filepath.Dir(apt), "apt-cache") + ` "$@"`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := host() // and its lock: apt-get update must not run beside another test's install
	s.aptGet = filepath.Join(dir, "apt-get")
	s.noInstall = false
	var stderr bytes.Buffer
	s.stderr = &stderr
	d := Chromium()
	d.Find = func() (string, bool) { return "", false }
	_, err = s.ensure(t.Context(), d)
	if !errors.Is(err, ErrMissing) || !strings.Contains(err.Error(), "but Chromium is still not found") {
		t.Errorf("simulated install: %v, want apt-get to succeed and chromium to stay missing", err)
	}
	if !strings.Contains(stderr.String(), "Inst chromium ") && !strings.Contains(stderr.String(), "chromium is already the newest version") {
		t.Errorf("apt-get would not install chromium:\n%s", stderr.String())
	}

	pkgs := []string{PostgreSQLServer().Package, PostgresUser().Package, Redis().Package}
	if m := clientMajor(); m > 0 {
		pkgs = append(pkgs, HypoPG(m).Package)
	}
	out, err := exec.Command(filepath.Join(filepath.Dir(apt), "apt-cache"), append([]string{"show", "--no-all-versions"}, pkgs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("apt-cache show %s: %v\n%s", pkgs, err, out)
	}
	for _, p := range pkgs {
		if !strings.Contains(string(out), "Package: "+p+"\n") {
			t.Errorf("apt does not know %s", p)
		}
	}
}

// TestDetection finds each known program where it is, and not where it is
// not.
func TestDetection(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if p, ok := Chromium().Find(); ok {
		t.Errorf("chromium found on an empty PATH: %s", p)
	}
	if p, ok := Redis().Find(); ok {
		t.Errorf("redis-server found on an empty PATH: %s", p)
	}
	for _, name := range []string{"google-chrome", "redis-server"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if p, ok := Chromium().Find(); !ok || p != filepath.Join(dir, "google-chrome") {
		t.Errorf("Chromium().Find() = %q, %v; want google-chrome in %s", p, ok, dir)
	}
	if p, ok := Redis().Find(); !ok || p != filepath.Join(dir, "redis-server") {
		t.Errorf("Redis().Find() = %q, %v", p, ok)
	}

	// The server's directory: the highest version that has both programs.
	root := t.TempDir()
	for _, v := range []string{"9.6", "13", "16", "17"} {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		progs := []string{"initdb", "postgres"}
		if v == "17" {
			progs = progs[:1] // the client only
		}
		for _, p := range progs {
			if err := os.WriteFile(filepath.Join(bin, p), []byte("#!/bin/sh\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if d, ok := serverDir(filepath.Join(root, "*", "bin")); !ok || d != filepath.Join(root, "16", "bin") {
		t.Errorf("serverDir = %q, %v; want version 16", d, ok)
	}
	if d, ok := serverDir(filepath.Join(t.TempDir(), "*", "bin")); ok {
		t.Errorf("serverDir of an empty directory = %q", d)
	}

	// The server package follows the client's major version.
	if pkg := PostgreSQLServer().Package; pkg != "postgresql" {
		t.Errorf("without a client, package %q, want postgresql", pkg)
	}
	if err := os.WriteFile(filepath.Join(dir, "psql"), []byte("#!/bin/sh\necho 'psql (PostgreSQL) 13.9 (Debian 13.9-0+deb11u1)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if pkg := PostgreSQLServer().Package; pkg != "postgresql-13" {
		t.Errorf("with psql 13, package %q, want postgresql-13", pkg)
	}
}

// TestDetectionHere: what this machine has is found where the usual tools
// see it.
func TestDetectionHere(t *testing.T) {
	want, err := exec.LookPath("redis-server")
	if got, ok := Redis().Find(); ok != (err == nil) || got != want {
		t.Errorf("Redis().Find() = %q, %v; LookPath = %q, %v", got, ok, want, err)
	}
	got, ok := Chromium().Find()
	t.Logf("redis-server: %q; chromium: %q, %v", want, got, ok)
	if _, err := os.Stat("/usr/lib/postgresql"); err == nil {
		if d, ok := PostgreSQLServer().Find(); !ok {
			t.Errorf("/usr/lib/postgresql exists but no server directory is found in it")
		} else {
			t.Logf("server: %s", d)
		}
	}
}

func TestParseMajor(t *testing.T) {
	for in, want := range map[string]int{
		"psql (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)\n": 15,
		"PostgreSQL 9.6.24\n":                                9,
		"postgres (PostgreSQL) 17beta1\n":                    17,
		"PostgreSQL 16devel":                                 16,
		"pg_config: could not find own program":              0,
		"PostgreSQL ":                                        0,
	} {
		if got := ParseMajor(in); got != want {
			t.Errorf("ParseMajor(%q) = %d, want %d", in, got, want)
		}
	}
}
