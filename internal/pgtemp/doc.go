// Package pgtemp starts a temporary PostgreSQL cluster from the local server
// binaries, for tests and for the CLI demo.
//
// Each [Start] runs initdb into a fresh directory from [os.MkdirTemp] and
// starts postgres on a free port of 127.0.0.1, with pg_stat_statements
// preloaded (shared_preload_libraries, compute_query_id=on,
// pg_stat_statements.track=all), durability turned off for speed (fsync,
// synchronous_commit and full_page_writes off) and trust authentication for
// the superuser "postgres". The server is a direct child process in its own
// process group: [Cluster.Stop] shuts it down and removes the directory;
// [Cluster.Restart] shuts it down and starts it again on the same port and
// data directory, for tests of what clients do through a restart. On
// Linux the server also receives SIGQUIT (immediate shutdown) if the process
// that started it dies without stopping it, as a test binary killed by
// -timeout does; the directory it leaves behind is removed by the next Start
// on the machine, once both processes are gone.
//
// initdb and postgres refuse to run as root. When the caller is root, both
// run as the "postgres" system user and the cluster directory is given to
// that user.
//
// Binaries are found through `pg_config --bindir` when pg_config is on PATH,
// then in the highest version under /usr/lib/postgresql/*/bin (Debian and
// Ubuntu) or /usr/pgsql-*/bin (PGDG on RHEL), then as initdb and postgres on
// PATH. When none is found, or the postgres user is missing, [Start] (or
// [Install] before it) installs them with internal/sysdeps: with apt-get
// when the process is root on Debian or Ubuntu (the server of the client's
// major version, postgresql-15 with a 15 psql or pg_config, else Debian's
// postgresql; its postgresql-common creates the user), saying so on
// standard error. Otherwise it returns at once an error wrapping
// [ErrNoBinaries] or [ErrNoPostgresUser] that gives the command to run.
//
// Test packages start it from TestMain through internal/testdb, which also
// honours AUDITPG_TEST_DATABASE_URL ([EnvDatabaseURL]); pgtemp itself does
// not import the testing package, so the CLI that links it does not either.
package pgtemp
