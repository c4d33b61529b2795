package sysdeps

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The known dependencies: what each is, the Debian package that provides
// it and how it is found. Callers may set Purpose to say who needs it.
//
//	PostgreSQLServer()  postgresql-<client major>, or postgresql   initdb and postgres in /usr/lib/postgresql/*/bin
//	PostgresUser()      postgresql-common                          the system user "postgres"
//	HypoPG(major)       postgresql-<major>-hypopg                  hypopg.control in the server's extension directory
//	Redis()             redis-server                               redis-server on PATH
//	RedisCLI()          redis-tools                                redis-cli on PATH
//	Chromium()          chromium                                   chromium (or chromium-browser, google-chrome) on PATH

// debianServerDirs is where Debian's server packages put each version's
// programs, the version being the component the star matches.
const debianServerDirs = "/usr/lib/postgresql/*/bin"

// PostgreSQLServer is the PostgreSQL server's programs (initdb, postgres,
// pg_ctl), found in /usr/lib/postgresql/<version>/bin; Find returns that
// directory, the highest version first. The package is the server of the
// client's major version (postgresql-15 when psql or pg_config is 15), or
// Debian's default server, postgresql, when no client is installed.
func PostgreSQLServer() Dep {
	pkg := "postgresql"
	if m := clientMajor(); m > 0 {
		pkg = "postgresql-" + strconv.Itoa(m)
	}
	return Dep{
		Name:    "the PostgreSQL server",
		Purpose: "for the temporary clusters of the tests and the demo",
		Package: pkg,
		Find:    func() (string, bool) { return serverDir(debianServerDirs) },
	}
}

// serverDir returns the directory matched by pattern (one star) that has
// both initdb and postgres, the highest version first.
func serverDir(pattern string) (string, bool) {
	dirs, _ := filepath.Glob(pattern)
	prefix, suffix, _ := strings.Cut(pattern, "*")
	version := func(dir string) int {
		v, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(dir, prefix), suffix))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, true
		}
	}
	return "", false
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// clientMajor returns the major version of the PostgreSQL client (psql,
// else pg_config) on PATH, or 0.
func clientMajor() int {
	for _, prog := range []string{"psql", "pg_config"} {
		path, err := exec.LookPath(prog)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, path, "--version").Output()
		cancel()
		if err != nil {
			continue
		}
		if m := ParseMajor(string(out)); m > 0 {
			return m
		}
	}
	return 0
}

// ParseMajor reads the major version in the output of a PostgreSQL
// program's --version ("psql (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)",
// "PostgreSQL 9.6.24"): the number after the word PostgreSQL, 0 if none.
func ParseMajor(out string) int {
	_, rest, ok := strings.Cut(out, "PostgreSQL")
	if !ok {
		return 0
	}
	rest = strings.TrimLeft(rest, ") ")
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		rest = rest[:end]
	}
	n, err := strconv.Atoi(rest)
	if err != nil {
		return 0
	}
	return n
}

// PostgresUser is the system user "postgres", which the temporary clusters
// run as when the process is root (initdb and postgres refuse to run as
// root). Debian's postgresql-common creates it; Find returns its name.
func PostgresUser() Dep {
	return Dep{
		Name:    `the "postgres" system user`,
		Purpose: "to run the temporary clusters as (initdb and postgres refuse to run as root)",
		Package: "postgresql-common",
		Find: func() (string, bool) {
			u, err := user.Lookup("postgres")
			if err != nil {
				return "", false
			}
			return u.Username, true
		},
	}
}

// HypoPG is the hypothetical-index extension for a server of the given
// major version; Find returns its control file.
func HypoPG(major int) Dep {
	return Dep{
		Name:    fmt.Sprintf("HypoPG for PostgreSQL %d", major),
		Purpose: "for the index-suggestion check",
		Package: fmt.Sprintf("postgresql-%d-hypopg", major),
		Find: func() (string, bool) {
			return firstFile(
				fmt.Sprintf("/usr/share/postgresql/%d/extension/hypopg.control", major), // Debian, Ubuntu
				fmt.Sprintf("/usr/pgsql-%d/share/extension/hypopg.control", major),      // PGDG on RHEL
			)
		},
	}
}

// Redis is redis-server; Find returns the program.
func Redis() Dep {
	return Dep{
		Name:    "redis-server",
		Purpose: "for the tests that run a Redis server",
		Package: "redis-server",
		Find:    func() (string, bool) { return onPath("redis-server") },
	}
}

// RedisCLI is redis-cli (the tests create a Redis Cluster with it); Find
// returns the program.
func RedisCLI() Dep {
	return Dep{
		Name:    "redis-cli",
		Purpose: "for the tests that create a Redis Cluster",
		Package: "redis-tools",
		Find:    func() (string, bool) { return onPath("redis-cli") },
	}
}

// Chromium is a headless-capable Chromium or Chrome; Find returns the
// program.
func Chromium() Dep {
	return Dep{
		Name:    "Chromium",
		Purpose: "for the tests that drive a browser",
		Package: "chromium",
		Find: func() (string, bool) {
			return onPath("chromium", "chromium-browser", "google-chrome-stable", "google-chrome")
		},
	}
}

// onPath returns the first of names found on PATH.
func onPath(names ...string) (string, bool) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
	}
	return "", false
}

func firstFile(paths ...string) (string, bool) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, true
		}
	}
	return "", false
}
