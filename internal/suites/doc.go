// Package suites runs other projects' test suites, and tests of ours that
// use an ORM the way an application does, through the auditpg driver:
//
//   - pgx v5's own stdlib test suite (stdlib/sql_test.go of the pgx version
//     in auditpg's go.mod), its driver name rewritten to "auditpg";
//   - sqlx's own tests (the version in go.mod) against PostgreSQL, with
//     "auditpg" as their driver, in pgx's default query exec mode;
//   - GORM migrating a table to other column types and reading it back
//     through the same connections, in pgx's default query exec mode.
//
// The foreign suites are copied at test time from the module cache (the go
// command finds them) into a temporary module that requires pgx at
// auditpg's version and replaces auditpg with this repository, and run with
// the go command of the toolchain that built the tests. Nothing of theirs is
// vendored or committed. Each lists what it leaves out and why.
//
// Every test needs a PostgreSQL server (internal/testdb). The two foreign
// suites also need the go command and the module proxy (or a module cache
// holding the modules): they are skipped with -short. The GORM test needs
// nothing more than the server, runs in a fraction of a second, and is not.
//
// AUDITPG_SUITES_DRIVER=pgx runs the sqlx suite through bare pgx instead of
// auditpg, to compare by hand; the test then reports what fails rather than
// asserting (see TestSqlxSuite).
//
// It has no code of its own.
package suites
