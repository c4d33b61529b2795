package auditpg

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/jackc/pgx/v5"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// pgx's five exec modes: the first two keep what they prepared or
// described, and meet DDL with a stale plan.
var execModes = []string{"cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol"}

// replanDB opens testDSN through auditpg in one pgx exec mode.
func replanDB(t *testing.T, mode string, opts ...Option) *sql.DB {
	t.Helper()
	return ciOpenDSN(t, ciDSN(t, "", map[string]string{"default_query_exec_mode": mode}), opts...)
}

// replanRead runs a read and returns its columns with their database types,
// then its rows: "id:INT4 v:TEXT\n1|a\n". It never reads twice.
func replanRead(q ciQueryer, query string, args ...any) (string, error) {
	rows, err := q.QueryContext(context.Background(), query, args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for i, ct := range cts {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(ct.Name() + ":" + ct.DatabaseTypeName())
	}
	out.WriteByte('\n')
	if err := ciFormatRows(&out, rows); err != nil {
		return "", err
	}
	return out.String(), nil
}

// stmtQueryer reads through a Stmt where a ciQueryer is wanted; the query
// text is the Stmt's.
type stmtQueryer struct{ *sql.Stmt }

func (s stmtQueryer) QueryContext(ctx context.Context, _ string, args ...any) (*sql.Rows, error) {
	return s.Stmt.QueryContext(ctx, args...)
}

func replanExpect(t *testing.T, q ciQueryer, want, query string, args ...any) {
	t.Helper()
	got, err := replanRead(q, query, args...)
	if err != nil || got != want {
		t.Fatalf("%s %v = %q, %v; want %q", query, args, got, err, want)
	}
}

func retries(t *testing.T, db *sql.DB) int64 {
	t.Helper()
	s, err := Stats(db)
	if err != nil {
		t.Fatal(err)
	}
	return s.Totals.Retries
}

// replanSetup gives a test an auditpg connection in mode, a bare pgx
// session for DDL run elsewhere, and a table name in a schema of its own.
func replanSetup(t *testing.T, mode string, opts ...Option) (db *sql.DB, conn *sql.Conn, other *sql.DB, table string) {
	t.Helper()
	db = replanDB(t, mode, opts...)
	conn = ciConn(t, db)
	other = openDB(t, "pgx")
	table = pgx.Identifier{testdb.Schema(t, other), "replan"}.Sanitize()
	return db, conn, other, table
}

// A table's row type changes between reads, by the same connection or by
// another session: the GORM-like sequence (dropped and created with other
// columns) and an ALTER COLUMN ... TYPE. The next reads, with and without
// arguments, return the new columns without error. Through the
// connection, DDL empties pgx's caches; from elsewhere, the stale statement
// (cache_statement) or description (cache_describe, when the number of
// columns changed) is met by one retry for each read.
func TestReplanRowTypeChange(t *testing.T) {
	for _, change := range []struct {
		name           string
		create, insert string   // the table's first form, as column list and row
		ddl            []string // what changes it (%s: the table)
		before, after  string   // what the reads return before and after
		retriedIn      []string // the modes where a read from another session is retried
	}{
		{"drop-create", `(id int PRIMARY KEY, name varchar(20))`, `(1, 'a')`,
			[]string{`DROP TABLE %s`, `CREATE TABLE %s (id int PRIMARY KEY, title text, n int8)`, `INSERT INTO %s VALUES (1, 'b', 2)`},
			"id:INT4 name:VARCHAR\n1|a\n", "id:INT4 title:TEXT n:INT8\n1|b|2\n", []string{"cache_statement", "cache_describe"}},
		{"alter-type", `(id int PRIMARY KEY, v varchar(20))`, `(1, '42')`,
			[]string{`ALTER TABLE %s ALTER COLUMN v TYPE int8 USING v::int8`},
			"id:INT4 v:VARCHAR\n1|42\n", "id:INT4 v:INT8\n1|42\n", []string{"cache_statement"}},
	} {
		for _, mode := range execModes {
			for _, where := range []string{"same connection", "other session"} {
				t.Run(change.name+"/"+mode+"/"+where, func(t *testing.T) {
					db, conn, other, table := replanSetup(t, mode)
					ddl := testdb.Execer(conn)
					if where == "other session" {
						ddl = other
					}
					testdb.Exec(t, other, `CREATE TABLE `+table+` `+change.create)
					testdb.Exec(t, other, `INSERT INTO `+table+` VALUES `+change.insert)
					all, byID := `SELECT * FROM `+table+` LIMIT 1`, `SELECT * FROM `+table+` WHERE id = $1`
					replanExpect(t, conn, change.before, all)
					replanExpect(t, conn, change.before, byID, 1)
					for _, stmt := range change.ddl {
						testdb.Exec(t, ddl, fmt.Sprintf(stmt, table))
					}
					replanExpect(t, conn, change.after, all)
					replanExpect(t, conn, change.after, byID, 1)
					want := int64(0)
					if where == "other session" && slices.Contains(change.retriedIn, mode) {
						want = 2
					}
					if n := retries(t, db); n != want {
						t.Errorf("%d retries, want %d", n, want)
					}
				})
			}
		}
	}
}

// Inside a transaction the stale plan's error is the caller's: the
// transaction is aborted, and nothing is made again.
func TestReplanInTransaction(t *testing.T) {
	db, conn, other, table := replanSetup(t, "cache_statement")
	testdb.Exec(t, other, `CREATE TABLE `+table+` (id int PRIMARY KEY, v varchar(20))`)
	testdb.Exec(t, other, `INSERT INTO `+table+` VALUES (1, 'a')`)
	byID := `SELECT * FROM ` + table + ` WHERE id = $1`
	replanExpect(t, conn, "id:INT4 v:VARCHAR\n1|a\n", byID, 1)
	testdb.Exec(t, other, `ALTER TABLE `+table+` ALTER COLUMN v TYPE text`)

	ctx := context.Background()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replanRead(tx, byID, 1); !stalePlan(err) {
		t.Fatalf("read of a stale plan in a transaction: %v, want the server's 0A000", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1`); pgerr.SQLState(err) != "25P02" {
		t.Errorf("after the error the transaction says %v, want 25P02 (aborted)", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := retries(t, db); n != 0 {
		t.Errorf("%d retries, want none in a transaction", n)
	}
	replanExpect(t, conn, "id:INT4 v:TEXT\n1|a\n", byID, 1) // pgx forgot the statement

	// DDL through the connection inside the transaction empties pgx's
	// caches there and then: the read after it in the same transaction
	// is planned anew, and the transaction goes on.
	tx, err = conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	testdb.Exec(t, tx, `ALTER TABLE `+table+` ALTER COLUMN v TYPE varchar(10)`)
	replanExpect(t, tx, "id:INT4 v:VARCHAR\n1|a\n", byID, 1)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if n := retries(t, db); n != 0 {
		t.Errorf("%d retries, want none", n)
	}
}

// A database/sql Stmt keeps its pgx statement, which pgx does not forget
// on error: through bare pgx it fails at every use once DDL elsewhere
// changed its result. auditpg prepares it again, once, under the same
// name; DDL through the connection itself leaves the Stmt working.
func TestReplanStmt(t *testing.T) {
	for _, mode := range execModes {
		t.Run(mode, func(t *testing.T) {
			db, conn, other, table := replanSetup(t, mode)
			testdb.Exec(t, other, `CREATE TABLE `+table+` (id int PRIMARY KEY, v varchar(20))`)
			testdb.Exec(t, other, `INSERT INTO `+table+` VALUES (1, '42')`)
			ctx := context.Background()
			stmt, err := conn.PrepareContext(ctx, `SELECT * FROM `+table+` WHERE id = $1`)
			if err != nil {
				t.Fatal(err)
			}
			replanExpect(t, stmtQueryer{stmt}, "id:INT4 v:VARCHAR\n1|42\n", "", 1)

			testdb.Exec(t, other, `ALTER TABLE `+table+` ALTER COLUMN v TYPE text`)
			replanExpect(t, stmtQueryer{stmt}, "id:INT4 v:TEXT\n1|42\n", "", 1)
			replanExpect(t, stmtQueryer{stmt}, "id:INT4 v:TEXT\n1|42\n", "", 1)
			if n := retries(t, db); n != 1 {
				t.Errorf("%d retries after DDL elsewhere, want 1: the Stmt is prepared again once", n)
			}

			testdb.Exec(t, conn, `ALTER TABLE `+table+` ALTER COLUMN v TYPE int8 USING v::int8`)
			replanExpect(t, stmtQueryer{stmt}, "id:INT4 v:INT8\n1|42\n", "", 1)
			if n := retries(t, db); n != 1 {
				t.Errorf("%d retries after DDL through the connection, want still 1", n)
			}
			if err := stmt.Close(); err != nil {
				t.Errorf("Stmt.Close after pgx's statements were deallocated: %v", err)
			}
			replanExpect(t, conn, "id:INT4 v:INT8\n1|42\n", `SELECT * FROM `+table+` WHERE id = $1`, 1)
		})
	}
}

// What bare pgx does with the same Stmt: the error at every use.
func TestReplanStmtBarePgx(t *testing.T) {
	_, _, other, table := replanSetup(t, "cache_statement")
	db := openDB(t, "pgx")
	conn := ciConn(t, db)
	testdb.Exec(t, other, `CREATE TABLE `+table+` (id int PRIMARY KEY, v varchar(20))`)
	stmt, err := conn.PrepareContext(context.Background(), `SELECT * FROM `+table+` WHERE id = $1`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	replanExpect(t, stmtQueryer{stmt}, "id:INT4 v:VARCHAR\n", "", 1)
	testdb.Exec(t, other, `ALTER TABLE `+table+` ALTER COLUMN v TYPE text`)
	for i := range 2 {
		if _, err := replanRead(stmtQueryer{stmt}, "", 1); !stalePlan(err) {
			t.Errorf("bare pgx, use %d of the Stmt after DDL: %v, want 0A000", i+1, err)
		}
	}
}

// A retried read fills no cache entry (the fill it joined was taken
// before the DDL was known); an exec that is retried still invalidates
// what it wrote.
func TestReplanResultCache(t *testing.T) {
	db, conn, other, table := replanSetup(t, "cache_statement", WithCacheMode(CacheAll))
	testdb.Exec(t, other, `CREATE TABLE `+table+` (id int PRIMARY KEY, v varchar(20))`)
	testdb.Exec(t, other, `INSERT INTO `+table+` VALUES (1, 'a'), (2, 'b')`)
	ctx := context.Background()
	byID := `SELECT * FROM ` + table + ` WHERE id = $1`
	if res := ciExpect(t, db, conn, ctx, "miss", "", byID, 1); res != "1|a\n" {
		t.Fatalf("read = %q", res)
	}
	ciExpect(t, db, conn, ctx, "hit", "", byID, 1)

	testdb.Exec(t, other, `ALTER TABLE `+table+` ALTER COLUMN v TYPE text`)
	before := ciStats(t, db)
	replanExpect(t, conn, "id:INT4 v:TEXT\n2|b\n", byID, 2) // a miss, retried
	if after := ciStats(t, db); after.Fills != before.Fills || retries(t, db) != 1 {
		t.Fatalf("the retried read: fills %d -> %d, %d retries; want no fill, 1 retry", before.Fills, after.Fills, retries(t, db))
	}
	ciExpect(t, db, conn, ctx, "miss", "", byID, 2)
	ciExpect(t, db, conn, ctx, "hit", "", byID, 2)

	// An exec whose RETURNING row changed type: retried, and its write
	// invalidates the cached read of the table.
	update := `UPDATE ` + table + ` SET v = $1 WHERE id = $2 RETURNING *`
	testdb.Exec(t, conn, update, "c", 2)
	ciExpect(t, db, conn, ctx, "miss", "", byID, 2)
	testdb.Exec(t, other, `ALTER TABLE `+table+` ALTER COLUMN v TYPE varchar(10)`)
	testdb.Exec(t, conn, update, "d", 2)
	if n := retries(t, db); n != 2 {
		t.Errorf("%d retries, want 2 (the read, the exec)", n)
	}
	if res := ciExpect(t, db, conn, ctx, "miss", "", byID, 2); res != "2|d\n" {
		t.Errorf("read after the retried update = %q, want 2|d", res)
	}
}

// GORM's TestDifferentTypeWithoutDeclaredLength (gorm.io/gorm/tests)
// through auditpg in the default exec mode. Bare pgx passes it only under
// the name "pgx": GORM's postgres migrator runs its `SELECT * ... LIMIT 1`
// (Migrator().ColumnTypes) with pgx.QueryExecModeSimpleProtocol when the
// driver name is "" or "pgx", and not for any other driver: bare pgx
// registered as "pgx/v5" fails it with 0A000, as auditpg did.
func TestReplanGormDifferentType(t *testing.T) {
	if err := gormDiffTypes(t, DriverName); err != nil {
		t.Errorf("through auditpg: %v", err)
	}
	if err := gormDiffTypes(t, "pgx"); err != nil {
		t.Errorf("through bare pgx, as \"pgx\": %v", err)
	}
	if err := gormDiffTypes(t, "pgx/v5"); !stalePlan(err) {
		t.Logf("through bare pgx, as \"pgx/v5\": %v (0A000 when GORM's connection pool reuses the connection that prepared the read)", err)
	}
}

// gormDiffTypes runs GORM's own TestDifferentTypeWithoutDeclaredLength
// (gorm.io/gorm/tests) through the database/sql driver registered as
// driverName and returns the first error it meets.
func gormDiffTypes(t *testing.T, driverName string) error {
	t.Helper()
	gdb, err := gorm.Open(postgres.New(postgres.Config{DriverName: driverName, DSN: testDSN}),
		&gorm.Config{Logger: logger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := gdb.DB()
	t.Cleanup(func() { sqlDB.Close() })

	type DiffType struct {
		ID   uint
		Name string `gorm:"type:varchar(20)"`
	}
	type DiffType1 struct {
		ID   uint
		Name string `gorm:"type:text"`
	}
	columnType := func() (string, error) {
		cts, err := gdb.Migrator().ColumnTypes(&DiffType{})
		if err != nil {
			return "", err
		}
		for _, c := range cts {
			if c.Name() == "name" {
				return strings.ToLower(c.DatabaseTypeName()), nil
			}
		}
		return "", nil
	}
	_ = gdb.Migrator().DropTable(&DiffType{})
	t.Cleanup(func() { _ = gdb.Migrator().DropTable(&DiffType{}) })
	if err := gdb.AutoMigrate(&DiffType{}); err != nil {
		return err
	}
	if got, err := columnType(); err != nil {
		return err
	} else if got != "varchar" {
		t.Errorf("%s: name is %q before the migration, want varchar", driverName, got)
	}
	if err := gdb.Table("diff_types").AutoMigrate(&DiffType1{}); err != nil {
		return err
	}
	if got, err := columnType(); err != nil {
		return err
	} else if got != "text" {
		t.Errorf("%s: name is %q after the migration, want text", driverName, got)
	}
	return nil
}
