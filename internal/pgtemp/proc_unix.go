//go:build unix

package pgtemp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

var (
	sigFast os.Signal      = syscall.SIGINT  // postgres: fast shutdown
	sigQuit os.Signal      = syscall.SIGQUIT // postgres: immediate shutdown
	sigTerm syscall.Signal = syscall.SIGTERM
	sigKill syscall.Signal = syscall.SIGKILL
)

// osUser is the account initdb and postgres run as when we are root.
type osUser struct {
	name     string
	uid, gid uint32
	groups   []uint32 // all its groups, for permission checks
}

// serverUser returns nil when the server can run as the current user, and
// the postgres system user when we are root (initdb and postgres refuse to
// run as root).
func serverUser() (*osUser, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w (%v): initdb and postgres refuse to run as root; "+
			"create the user (useradd --system --user-group postgres, or install the postgresql package, which does), "+
			"run the tests as another user, or set %s", ErrNoPostgresUser, err, EnvDatabaseURL)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtemp: postgres user: %w", err)
	}
	if uid == 0 {
		return nil, fmt.Errorf("%w: the postgres user has uid 0; set %s", ErrNoPostgresUser, EnvDatabaseURL)
	}
	o := &osUser{name: u.Username, uid: uint32(uid), gid: uint32(gid), groups: []uint32{uint32(gid)}}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if n, err := strconv.ParseUint(id, 10, 32); err == nil {
				o.groups = append(o.groups, uint32(n))
			}
		}
	}
	return o, nil
}

// sysProcAttr puts the child in its own process group (so that a terminal's
// ^C reaches us, not it, and Stop can kill the group), runs it as u when u is
// not nil, and on Linux has it receive SIGQUIT when we die.
func sysProcAttr(u *osUser) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		a.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	setParentDeathSignal(a)
	return a
}

func chownTo(path string, u *osUser) error {
	if u == nil {
		return nil
	}
	return os.Chown(path, int(u.uid), int(u.gid))
}

func signalGroup(pid int, sig syscall.Signal) error {
	return syscall.Kill(-pid, sig)
}

// processAlive reports whether pid names a process, not counting zombies
// (whose parent died before reaping them) where /proc tells.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && bytes.HasPrefix(b[i+1:], []byte(" Z")) {
			return false
		}
	}
	return true
}

// pidNamespace identifies our PID namespace, so that processes of another
// container sharing the temporary directory are not taken for dead.
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return "-"
	}
	return ns
}

// tempBase returns the directory to create cluster directories in: the
// system temporary directory, or /tmp when u cannot reach that one.
func tempBase(u *osUser) (string, error) {
	base := os.TempDir()
	if u == nil || canTraverse(base, u) {
		return base, nil
	}
	if canTraverse("/tmp", u) {
		return "/tmp", nil
	}
	return "", fmt.Errorf("pgtemp: the postgres user cannot reach the temporary directory %s (nor /tmp); "+
		"set TMPDIR to a directory it can traverse", base)
}

// canTraverse reports whether u can search dir and each of its parents.
func canTraverse(dir string, u *osUser) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return false
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return false
		}
		perm := fi.Mode().Perm()
		var can bool
		switch {
		case st.Uid == u.uid:
			can = perm&0o100 != 0
		case slices.Contains(u.groups, st.Gid):
			can = perm&0o010 != 0
		default:
			can = perm&0o001 != 0
		}
		if !can {
			return false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return true
		}
		dir = parent
	}
}
