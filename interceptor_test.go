package auditpg

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/DATA-DOG/go-sqlmock"
)

// recorder is an Observer that keeps a copy of every finished event.
type recorder struct {
	mu     sync.Mutex
	events []Event
	starts int
}

type recorderKey struct{}

func (r *recorder) Start(ctx context.Context, ev *Event) context.Context {
	r.mu.Lock()
	r.starts++
	r.mu.Unlock()
	return context.WithValue(ctx, recorderKey{}, ev.Op) // End must see the context Start returned
}

func (r *recorder) End(ctx context.Context, ev *Event) {
	if op, _ := ctx.Value(recorderKey{}).(Op); op != ev.Op {
		panic("End did not receive the context its Start returned")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, *ev)
}

// take returns the events recorded so far and forgets them.
func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func opsOf(evs []Event) []Op {
	ops := make([]Op, len(evs))
	for i, ev := range evs {
		ops[i] = ev.Op
	}
	return ops
}

func TestInterceptorTimesEveryCall(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	db := openDB(t, "auditpg", WithObserver(rec), WithMaxOpenConns(1))
	mustExec(t, db, `CREATE TABLE IF NOT EXISTS icpt_item (id int PRIMARY KEY, v text)`)
	mustExec(t, db, `TRUNCATE icpt_item`)
	rec.take()

	t.Run("exec reports rows affected", func(t *testing.T) {
		mustExec(t, db, `INSERT INTO icpt_item SELECT g, 'v' FROM generate_series(1, 5) g`)
		evs := rec.take()
		if len(evs) != 1 || evs[0].Op != OpExec || evs[0].Rows != 5 || evs[0].Err != nil || evs[0].Duration <= 0 {
			t.Fatalf("events = %+v, want one successful exec of 5 rows", evs)
		}
		if evs[0].Statement == nil || evs[0].Query == "" {
			t.Errorf("exec event lacks its query or statement: %+v", evs[0])
		}
	})

	t.Run("query lasts until Close, iteration included", func(t *testing.T) {
		rows, err := db.QueryContext(ctx, `SELECT id FROM icpt_item ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
			time.Sleep(10 * time.Millisecond)
			if n == 1 && len(rec.take()) != 0 {
				t.Error("the query's event ended before its rows were read")
			}
		}
		rows.Close() // database/sql already closed them at the end of the rows
		evs := rec.take()
		if len(evs) != 1 || evs[0].Op != OpQuery || evs[0].Rows != 5 || n != 5 {
			t.Fatalf("events = %+v, want one query of 5 rows", evs)
		}
		if evs[0].Duration < 50*time.Millisecond {
			t.Errorf("query duration %v does not include the 50ms of iteration", evs[0].Duration)
		}
	})

	t.Run("prepared statement and transaction", func(t *testing.T) {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, `UPDATE icpt_item SET v = $1 WHERE id = $2`)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stmt.ExecContext(ctx, "w", 1); err != nil {
			t.Fatal(err)
		}
		var v string
		qs, err := tx.PrepareContext(ctx, `SELECT v FROM icpt_item WHERE id = $1`)
		if err != nil {
			t.Fatal(err)
		}
		if err := qs.QueryRowContext(ctx, 1).Scan(&v); err != nil {
			t.Fatal(err)
		}
		stmt.Close()
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		evs := rec.take()
		var got []Op
		for _, ev := range evs {
			got = append(got, ev.Op)
			switch ev.Op {
			case OpExec, OpQuery:
				if !ev.Prepared || !ev.InTx {
					t.Errorf("%v event: Prepared=%v InTx=%v, want both", ev.Op, ev.Prepared, ev.InTx)
				}
			}
		}
		want := []Op{OpBegin, OpPrepare, OpExec, OpPrepare, OpQuery, OpCommit}
		if !equalOps(got, want) {
			t.Errorf("ops = %v, want %v", got, want)
		}
	})

	t.Run("rollback and ping", func(t *testing.T) {
		tx, _ := db.BeginTx(ctx, nil)
		tx.Rollback()
		db.PingContext(ctx)
		if got, want := opsOf(rec.take()), []Op{OpBegin, OpRollback, OpPing}; !equalOps(got, want) {
			t.Errorf("ops = %v, want %v", got, want)
		}
	})

	t.Run("errors carry their SQLSTATE", func(t *testing.T) {
		db.ExecContext(ctx, `INSERT INTO icpt_item VALUES (1, 'duplicate')`)
		db.QueryContext(ctx, `SELECT nope FROM icpt_item`)
		evs := rec.take()
		if len(evs) != 2 || evs[0].SQLState != "23505" || evs[1].SQLState != "42703" || evs[0].Err == nil || evs[1].Err == nil {
			t.Errorf("events = %+v, want unique_violation 23505 then undefined_column 42703", evs)
		}
	})

	t.Run("connect", func(t *testing.T) {
		db2 := openDB(t, "auditpg", WithObserver(rec))
		db2.PingContext(ctx)
		evs := rec.take()
		if len(evs) == 0 || evs[0].Op != OpConnect || evs[0].Err != nil || evs[0].Duration <= 0 {
			t.Errorf("events = %+v, want a successful connect first", evs)
		}
	})
}

func equalOps(a, b []Op) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sqlmockConnector adapts go-sqlmock to a driver.Connector, for the paths a
// server cannot produce on demand: a row error in the middle of iteration,
// an error from Rows.Close, a result whose RowsAffected fails.
type sqlmockConnector struct {
	drv driver.Driver
	dsn string
}

func (c sqlmockConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c sqlmockConnector) Driver() driver.Driver                        { return c.drv }

func TestInterceptorErrorPathsWithSqlmock(t *testing.T) {
	ctx := context.Background()
	mockDB, mock, err := sqlmock.NewWithDSN("auditpg-mock", sqlmock.QueryMatcherOption(sqlmock.QueryMatcherEqual))
	if err != nil {
		t.Fatal(err)
	}
	defer mockDB.Close()
	rec := &recorder{}
	cfg := defaultConfig()
	cfg.observers = []Observer{rec}
	db := sql.OpenDB(wrapConnector(sqlmockConnector{mockDB.Driver(), "auditpg-mock"}, cfg))
	defer db.Close()

	rowErr := errors.New("row 2 is corrupt")
	closeErr := errors.New("close failed")
	mock.ExpectQuery(`SELECT id FROM t`).WillReturnRows(
		sqlmock.NewRows([]string{"id"}).AddRow(1).AddRow(2).RowError(1, rowErr).CloseError(closeErr))
	rows, err := db.QueryContext(ctx, `SELECT id FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	if !errors.Is(rows.Err(), rowErr) {
		t.Errorf("rows.Err() = %v, want the row error", rows.Err())
	}
	rows.Close()
	evs := rec.take()
	last := evs[len(evs)-1]
	if last.Op != OpQuery || !errors.Is(last.Err, rowErr) || last.Rows != 1 {
		t.Errorf("query event = %+v, want the mid-iteration error after 1 row", last)
	}

	mock.ExpectExec(`DELETE FROM t`).WillReturnResult(sqlmock.NewErrorResult(errors.New("no count")))
	if _, err := db.ExecContext(ctx, `DELETE FROM t`); err != nil {
		t.Fatal(err)
	}
	evs = rec.take()
	if last := evs[len(evs)-1]; last.Op != OpExec || last.Err != nil || last.Rows != 0 {
		t.Errorf("exec event = %+v, want success with 0 rows when RowsAffected fails", last)
	}
	if err := mock.ExpectationsWereMet(); err != nil {
		t.Error(err)
	}
}
