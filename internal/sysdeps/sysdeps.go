// Package sysdeps finds the programs outside Go that the tests and the demo
// need (the PostgreSQL server, HypoPG, redis-server, chromium) and installs
// a missing one when it can.
//
// [Ensure] is the one entry point. When the program is missing and the
// process runs as root with apt-get (Debian, Ubuntu), it installs the Debian
// package with apt-get, saying on standard error what it installs and why;
// otherwise, or when the install fails, it returns at once a *[MissingError]
// that gives the exact command to run. Installs are serialized across
// processes (go test runs test binaries in parallel) by a lock file in
// [os.TempDir], and whether the program is there is asked again once the
// lock is held. Setting AUDITPG_NO_INSTALL ([EnvNoInstall]) to a non-empty
// value turns installing off.
//
// The package does not import testing: the CLI links it. Tests reach it
// through internal/testdb.
package sysdeps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// EnvNoInstall names the environment variable that, when not empty, stops
// [Ensure] from installing anything: a missing program is an error that says
// what to install.
const EnvNoInstall = "AUDITPG_NO_INSTALL"

// aptTimeout bounds one apt-get run, waiting for dpkg's lock included.
const aptTimeout = 15 * time.Minute

// lockName is the lock file, in os.TempDir(), that serializes installs.
const lockName = "auditpg-install.lock"

// Dep is a program the tests or the demo need: how to find it, and the
// Debian package that provides it.
type Dep struct {
	// Name says what it is, for people: "HypoPG".
	Name string
	// Purpose says who needs it: "for the index-suggestion check".
	Purpose string
	// Package is the Debian package that provides it.
	Package string
	// Find reports where it is installed (a path: a program, a directory),
	// or false when it is not.
	Find func() (string, bool)
}

func (d Dep) describe() string {
	if d.Purpose == "" {
		return d.Name
	}
	return d.Name + ", " + d.Purpose
}

// ErrMissing is wrapped by every error [Ensure] returns for a program that
// is missing and was not installed.
var ErrMissing = errors.New("a needed program is missing")

// MissingError says that a program is missing and what to run to install it.
type MissingError struct {
	Dep Dep
	// Command installs it: "sudo apt-get install -y postgresql-15-hypopg"
	// (without sudo when the process is root).
	Command string
	// Reason says why it was not installed automatically.
	Reason string
	// Err is the install's failure, if one was tried.
	Err error

	noApt bool // apt-get is not on PATH: Command is for Debian and Ubuntu only
}

func (e *MissingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s is not installed (%s)", e.Dep.Name, e.Dep.Package)
	if e.Dep.Purpose != "" {
		fmt.Fprintf(&b, ", needed %s", e.Dep.Purpose)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, "; not installed automatically: %s", e.Reason)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.noApt {
		fmt.Fprintf(&b, "; install it (on Debian or Ubuntu: %s)", e.Command)
	} else {
		fmt.Fprintf(&b, "; install it with: %s", e.Command)
	}
	return b.String()
}

// Is makes every MissingError match [ErrMissing].
func (e *MissingError) Is(target error) bool { return target == ErrMissing }

func (e *MissingError) Unwrap() error { return e.Err }

// Ensure returns where d is, installing d.Package first when d is missing,
// the process runs as root, apt-get is on PATH and [EnvNoInstall] is not
// set. Otherwise a missing d is a *[MissingError] (matching [ErrMissing]),
// returned without waiting for anything. ctx bounds the install, the wait
// for another process's install included.
func Ensure(ctx context.Context, d Dep) (string, error) {
	return host().ensure(ctx, d)
}

// Find returns where d is, or a *[MissingError] that gives the command to
// install it; it never installs.
func Find(d Dep) (string, error) {
	s := host()
	if path, ok := d.Find(); ok {
		return path, nil
	}
	return "", s.missing(d, "", nil)
}

// system is what Ensure needs of the machine; tests replace its parts.
type system struct {
	root      bool
	aptGet    string // "" when apt-get is not on PATH
	noInstall bool   // EnvNoInstall is set
	lockPath  string
	stderr    io.Writer
	clearLine string // written before the first message: erases a progress line on a terminal
	// run runs a command with its output to out and the environment
	// variables env added to the process's.
	run func(ctx context.Context, out io.Writer, env []string, name string, args ...string) error
}

func host() system {
	apt, _ := exec.LookPath("apt-get")
	return system{
		root:      os.Geteuid() == 0,
		aptGet:    apt,
		noInstall: os.Getenv(EnvNoInstall) != "",
		lockPath:  filepath.Join(os.TempDir(), lockName),
		stderr:    os.Stderr,
		clearLine: clearLine(os.Stderr),
		run:       runCommand,
	}
}

// clearLine returns what erases the current line of f when it is a
// terminal, where the CLI may have drawn a progress line.
func clearLine(f *os.File) string {
	if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		return "\r\033[K"
	}
	return ""
}

func runCommand(ctx context.Context, out io.Writer, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 10 * time.Second
	return cmd.Run()
}

// installCommand is what a person runs to install pkg.
func (s system) installCommand(pkg string) string {
	if s.root {
		return "apt-get install -y " + pkg
	}
	return "sudo apt-get install -y " + pkg
}

func (s system) missing(d Dep, reason string, err error) *MissingError {
	return &MissingError{Dep: d, Command: s.installCommand(d.Package), Reason: reason, Err: err, noApt: s.aptGet == ""}
}

func (s system) ensure(ctx context.Context, d Dep) (string, error) {
	if path, ok := d.Find(); ok {
		return path, nil
	}
	switch {
	case s.noInstall:
		return "", s.missing(d, EnvNoInstall+" is set", nil)
	case s.aptGet == "":
		return "", s.missing(d, "apt-get is not on PATH (not Debian or Ubuntu)", nil)
	case !s.root:
		return "", s.missing(d, "not running as root", nil)
	}

	unlock, err := lockFile(ctx, s.lockPath)
	if err != nil {
		return "", s.missing(d, "waiting for another install", err)
	}
	defer unlock()
	// Another process may have installed it while this one waited.
	if path, ok := d.Find(); ok {
		return path, nil
	}
	fmt.Fprintf(s.stderr, "%sauditpg: installing %s (%s) with apt-get...\n", s.clearLine, d.Package, d.describe())
	if err := s.aptInstall(ctx, d.Package); err != nil {
		return "", s.missing(d, "apt-get failed", err)
	}
	path, ok := d.Find()
	if !ok {
		return "", s.missing(d, "apt-get installed "+d.Package+" but "+d.Name+" is still not found", nil)
	}
	fmt.Fprintf(s.stderr, "auditpg: installed %s\n", d.Package)
	return path, nil
}

// aptInstall installs pkg, after apt-get update when apt does not know pkg
// (a fresh machine has no package lists).
func (s system) aptInstall(ctx context.Context, pkg string) error {
	ctx, cancel := context.WithTimeout(ctx, aptTimeout)
	defer cancel()
	env := []string{"DEBIAN_FRONTEND=noninteractive"}
	lock := []string{"-o", "DPkg::Lock::Timeout=300"}
	apt := func(args ...string) error {
		var out tail
		err := s.run(ctx, io.MultiWriter(s.stderr, &out), env, s.aptGet, append(lock, args...)...)
		if err != nil {
			return fmt.Errorf("apt-get %s: %w; its last output:\n%s", strings.Join(args, " "), err, out.String())
		}
		return nil
	}
	aptCache := filepath.Join(filepath.Dir(s.aptGet), "apt-cache")
	if s.run(ctx, io.Discard, env, aptCache, "show", "--no-all-versions", pkg) != nil {
		fmt.Fprintf(s.stderr, "auditpg: apt does not know %s yet: running apt-get update first\n", pkg)
		if err := apt("-q", "update"); err != nil {
			return err
		}
	}
	return apt("-q", "install", "-y", "--no-install-recommends", pkg)
}

// tail keeps the last lines written to it.
type tail struct{ buf []byte }

const tailBytes = 4 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	b := t.buf
	if len(b) > tailBytes {
		b = b[len(b)-tailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return strings.TrimRight(string(b), "\n")
}
