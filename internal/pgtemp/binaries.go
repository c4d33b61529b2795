package pgtemp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/auditpg/auditpg/internal/sysdeps"
)

// binaries are the server programs a cluster runs.
type binaries struct {
	initdb, postgres string
}

// serverMajor returns the major version of postgres (15 for 15.4, 9 for
// 9.6), or 0 if it cannot tell.
func serverMajor(ctx context.Context, postgres string) int {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, postgres, "--version").Output()
	if err != nil {
		return 0
	}
	return parseMajor(string(out))
}

// parseMajor reads the major version in the output of postgres --version,
// such as "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)".
func parseMajor(out string) int {
	_, rest, ok := strings.Cut(out, ")")
	if !ok {
		return 0
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 {
		return 0
	}
	v := fields[0]
	digits := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' })
	if digits >= 0 {
		v = v[:digits]
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0
	}
	return n
}

// defaultRoots are the glob patterns of versioned server directories, the
// version being the component the star matches.
var defaultRoots = []string{
	"/usr/lib/postgresql/*/bin", // Debian, Ubuntu
	"/usr/pgsql-*/bin",          // PGDG packages on RHEL, Fedora
}

// otherSystems says what to install where there is no apt-get.
const otherSystems = "elsewhere: dnf install postgresql-server postgresql-contrib (Fedora/RHEL), " +
	"apk add postgresql postgresql-contrib (Alpine), brew install postgresql (macOS)"

// ensureDep is sysdeps.Ensure; tests replace it.
var ensureDep = sysdeps.Ensure

// Install makes sure that [Start] can run a cluster: it finds the server
// binaries and, when the process is root, the "postgres" system user, and
// installs what is missing with apt-get when the process is root on Debian
// or Ubuntu (see internal/sysdeps), saying so on standard error. Otherwise
// it returns at once an error, wrapping [ErrNoBinaries] or
// [ErrNoPostgresUser], that gives the command to run. Start calls it; call
// it first to give the install a bound of its own.
func Install(ctx context.Context) error {
	_, err := ensureServer(ctx, defaultRoots)
	return err
}

// ensureServer returns the binaries found in roots (see findBinaries),
// installing the server first, and the postgres user when the process is
// root, if they are missing.
func ensureServer(ctx context.Context, roots []string) (binaries, error) {
	bin, err := findBinaries(ctx, roots)
	if errors.Is(err, ErrNoBinaries) {
		dep := sysdeps.PostgreSQLServer()
		dep.Find = func() (string, bool) {
			b, err := findBinaries(ctx, roots)
			return filepath.Dir(b.postgres), err == nil
		}
		if _, ierr := ensureDep(ctx, dep); ierr != nil {
			hint := ""
			if _, err := exec.LookPath("apt-get"); err != nil {
				hint = "; " + otherSystems
			}
			return binaries{}, fmt.Errorf("%w: %w%s", err, ierr, hint)
		}
		bin, err = findBinaries(ctx, roots)
	}
	if err != nil {
		return binaries{}, err
	}
	if os.Geteuid() == 0 {
		if _, err := ensureDep(ctx, sysdeps.PostgresUser()); err != nil {
			return binaries{}, fmt.Errorf("%w: %w", ErrNoPostgresUser, err)
		}
	}
	return bin, nil
}

// findBinaries looks for initdb and postgres: in `pg_config --bindir` when
// pg_config is on PATH, then in the highest version matched by roots, then
// on PATH.
func findBinaries(ctx context.Context, roots []string) (binaries, error) {
	var tried []string
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		cancel()
		dir := strings.TrimSpace(string(out))
		if err == nil && dir != "" {
			if b, ok := binariesIn(dir); ok {
				return b, nil
			}
		}
		// Debian's libpq-dev ships a pg_config that names the server's
		// directory whether the server is installed or not.
		tried = append(tried, fmt.Sprintf("%s --bindir (%s)", pgConfig, dir))
	} else {
		tried = append(tried, "pg_config on PATH")
	}

	for _, root := range roots {
		for _, dir := range versionDirs(root) {
			if b, ok := binariesIn(dir); ok {
				return b, nil
			}
		}
		tried = append(tried, root)
	}

	initdb, err1 := exec.LookPath("initdb")
	postgres, err2 := exec.LookPath("postgres")
	if err1 == nil && err2 == nil {
		return binaries{initdb: initdb, postgres: postgres}, nil
	}
	tried = append(tried, "initdb and postgres on PATH")
	return binaries{}, fmt.Errorf("%w (tried %s)", ErrNoBinaries, strings.Join(tried, ", "))
}

// binariesIn returns the programs of dir if it has both.
func binariesIn(dir string) (binaries, bool) {
	b := binaries{initdb: filepath.Join(dir, "initdb"), postgres: filepath.Join(dir, "postgres")}
	return b, isExecutable(b.initdb) && isExecutable(b.postgres)
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// versionDirs returns the directories matching pattern, which has one star,
// highest version first.
func versionDirs(pattern string) []string {
	dirs, err := filepath.Glob(pattern)
	if err != nil || len(dirs) == 0 {
		return nil
	}
	prefix, suffix, _ := strings.Cut(pattern, "*")
	version := func(dir string) []int {
		v := strings.TrimSuffix(strings.TrimPrefix(dir, prefix), suffix)
		var parts []int
		for _, f := range strings.Split(v, ".") {
			n, err := strconv.Atoi(f)
			if err != nil {
				return nil // not a version: sorts last
			}
			parts = append(parts, n)
		}
		return parts
	}
	slices.SortStableFunc(dirs, func(a, b string) int {
		return slices.Compare(version(b), version(a))
	})
	return dirs
}
