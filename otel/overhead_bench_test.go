package otel

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/XSAM/otelsql"
	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/benchdb"
)

// BenchmarkOTelOverhead measures what instrumentation alone costs a query,
// over a driver that answers at once with one row (no network, so that the
// few microseconds of a span are not lost in a round trip's noise): the
// bare fake driver; auditpg over it; auditpg with OpenTelemetry and no
// provider installed (the global no-op); auditpg with an SDK
// TracerProvider (batch span processor, discarding exporter) and SDK
// MeterProvider; XSAM/otelsql over it with the same providers, with its
// default spans and with one span a query, as auditpg makes. The round
// trip version is BenchmarkPointSelect.
//
//	go test -run '^$' -bench OTelOverhead -count 8 ./otel | tee otel.txt
//	go tool benchstat -col /driver otel.txt
func BenchmarkOTelOverhead(b *testing.B) {
	tp, mp := benchdb.Providers(b)
	otelsqlDefaults, otelsqlOneSpan := benchdb.Otelsql(tp, mp)
	for _, c := range []struct {
		name string
		open func() (*sql.DB, error)
	}{
		{"fake", func() (*sql.DB, error) { return sql.OpenDB(fakeConnector{}), nil }},
		{"auditpg", auditpgOverFake()},
		{"auditpg-otel-noprovider", auditpgOverFake(Options()...)}, // the global no-op providers
		{"auditpg-otel-sdk", auditpgOverFake(Options(WithTracerProvider(tp), WithMeterProvider(mp))...)},
		{"otelsql-sdk", func() (*sql.DB, error) { return otelsql.OpenDB(fakeConnector{}, otelsqlDefaults...), nil }},
		{"otelsql-sdk-1span", func() (*sql.DB, error) { return otelsql.OpenDB(fakeConnector{}, otelsqlOneSpan...), nil }},
	} {
		b.Run("driver="+c.name, func(b *testing.B) { benchdb.PointSelectsOpening(b, c.open) })
	}
}

// auditpgOverFake opens auditpg's wrapper, with opts, over fakeConnector
// instead of pgx. Package auditpg has no exported way to wrap another
// driver.Connector, so the Connector that NewConnector makes has its
// unexported inner connector replaced, and its target cleared as for any
// connector that is not pgx's. Should the Connector's fields change, the
// benchmark fails here rather than measure pgx.
func auditpgOverFake(opts ...auditpg.Option) func() (*sql.DB, error) {
	return func() (*sql.DB, error) {
		c, err := auditpg.NewConnector("postgres://bench@fake.invalid/bench", opts...)
		if err != nil {
			return nil, err
		}
		v := reflect.ValueOf(c).Elem()
		inner, target := v.FieldByName("inner"), v.FieldByName("target")
		if !inner.IsValid() || inner.Type() != reflect.TypeFor[driver.Connector]() ||
			!target.IsValid() || target.Type() != reflect.TypeFor[*auditpg.Target]() {
			return nil, fmt.Errorf("auditpg.Connector has no fields inner driver.Connector and target *Target to point at the fake driver")
		}
		reflect.NewAt(inner.Type(), unsafe.Pointer(inner.UnsafeAddr())).Elem().Set(reflect.ValueOf(driver.Connector(fakeConnector{})))
		reflect.NewAt(target.Type(), unsafe.Pointer(target.UnsafeAddr())).Elem().SetZero()
		return sql.OpenDB(c), nil
	}
}

// fakeConnector is a driver that answers at once, with no network: it lets
// a benchmark measure what the instrumentation itself costs.
type fakeConnector struct{}

func (fakeConnector) Connect(context.Context) (driver.Conn, error) { return &fakeConn{}, nil }
func (fakeConnector) Driver() driver.Driver                        { return fakeDriver{} }

type fakeDriver struct{}

func (fakeDriver) Open(string) (driver.Conn, error) { return &fakeConn{}, nil }

type fakeConn struct{}

func (*fakeConn) Prepare(string) (driver.Stmt, error) { return nil, driver.ErrSkip }
func (*fakeConn) Close() error                        { return nil }
func (*fakeConn) Begin() (driver.Tx, error)           { return fakeTx{}, nil }
func (*fakeConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return fakeTx{}, nil
}
func (*fakeConn) Ping(context.Context) error { return nil }
func (*fakeConn) ExecContext(context.Context, string, []driver.NamedValue) (driver.Result, error) {
	return driver.RowsAffected(1), nil
}
func (*fakeConn) QueryContext(context.Context, string, []driver.NamedValue) (driver.Rows, error) {
	return &fakeRows{}, nil
}

type fakeTx struct{}

func (fakeTx) Commit() error   { return nil }
func (fakeTx) Rollback() error { return nil }

var fakeColumns = []string{"id", "name", "created_at"}
var fakeTime = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// fakeRows returns one row, like a point select.
type fakeRows struct{ done bool }

func (*fakeRows) Columns() []string { return fakeColumns }
func (*fakeRows) Close() error      { return nil }
func (r *fakeRows) Next(dest []driver.Value) error {
	if r.done {
		return io.EOF
	}
	r.done = true
	dest[0], dest[1], dest[2] = int64(42), "forty-two", fakeTime
	return nil
}
