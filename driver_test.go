package auditpg

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// keyValueDSN turns the test URL into pgx's key=value form.
func keyValueDSN(t *testing.T, extra string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace("host=" + cfg.Host + " port=" + strconv.Itoa(int(cfg.Port)) + " user=" + cfg.User +
		" dbname=" + cfg.Database + " sslmode=disable " + extra)
}

// withParams adds query parameters to the test URL.
func withParams(t *testing.T, params map[string]string) string {
	t.Helper()
	u, err := url.Parse(testDSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range params {
		q.Set(k, v)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func TestOpenDSNForms(t *testing.T) {
	ctx := context.Background()
	for name, dsn := range map[string]string{
		"url":       withParams(t, map[string]string{"auditpg_slow_query": "250ms", "application_name": "auditpg-test"}),
		"key=value": keyValueDSN(t, "auditpg_slow_query=250ms application_name=auditpg-test"),
	} {
		t.Run(name, func(t *testing.T) {
			db, err := sql.Open("auditpg", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var app string
			// auditpg_* parameters must not reach the server, other runtime parameters must.
			if err := db.QueryRowContext(ctx, `SELECT current_setting('application_name')`).Scan(&app); err != nil {
				t.Fatal(err)
			}
			if app != "auditpg-test" {
				t.Errorf("application_name = %q, want auditpg-test", app)
			}
			c, err := connectorOf(db)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.cfg.stats.slowThreshold; got != 250*time.Millisecond {
				t.Errorf("slow threshold = %v, want 250ms", got)
			}
		})
	}
}

func TestDSNParameterErrors(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		want   []string // every piece must appear in the error
	}{
		{map[string]string{"auditpg_bogus": "1"}, []string{"unknown DSN parameter auditpg_bogus", "auditpg_slow_query"}},
		{map[string]string{"auditpg_slow_query": "fast"}, []string{"auditpg_slow_query", `"fast"`, "a duration such as 500ms"}},
		{map[string]string{"auditpg_slow_query": "-1s"}, []string{"auditpg_slow_query", "a duration"}},
		{map[string]string{"auditpg_max_fingerprints": "0"}, []string{"auditpg_max_fingerprints", "a positive integer"}},
		{map[string]string{"auditpg_log_args": "maybe"}, []string{"auditpg_log_args", "true or false"}},
		{map[string]string{"auditpg_retry_attempts": "zero"}, []string{"auditpg_retry_attempts", "a positive integer"}},
		{map[string]string{"auditpg_max_open_conns": "5"}, []string{"auditpg_max_open_conns", "auditpg.Open"}},
		{map[string]string{"auditpg_cache": "sometimes"}, []string{"auditpg_cache", `"sometimes"`, "off, explicit, tables or all"}},
		{map[string]string{"auditpg_cache_size": "100 furlongs"}, []string{"auditpg_cache_size", "such as 100MB"}},
		{map[string]string{"auditpg_cache_size": "10kB"}, []string{"auditpg_cache_size", "at least 1MB"}},
		{map[string]string{"auditpg_cache_ttl": "48h"}, []string{"auditpg_cache_ttl", "at most 24h"}},
		{map[string]string{"auditpg_cache_tables": "a,,b"}, []string{"auditpg_cache_tables", `"a,,b"`, "item 2 of 3 is empty", "table names separated by commas"}},
		{map[string]string{"auditpg_cache_tables": "a,b,"}, []string{"auditpg_cache_tables", "item 3 of 3 is empty"}},
		{map[string]string{"auditpg_cache_rls_tables": ", a"}, []string{"auditpg_cache_rls_tables", "item 1 of 2 is empty"}},
		{map[string]string{"auditpg_otel": "maybe"}, []string{"auditpg_otel", "on or off"}},
		{map[string]string{"auditpg_cache_max_entry": "200MB"}, []string{"auditpg_cache_max_entry", "200MB (auditpg_cache_max_entry, WithCacheMaxEntry), is larger than the whole cache, 100MB", "at most the cache size"}},
		{map[string]string{"auditpg_cache_max_entry": "2MB", "auditpg_cache_size": "1MB"}, []string{"auditpg_cache_max_entry", "2MB", "auditpg_cache_size", "1MB", "at most the cache size"}},
		// Every number has an upper bound; one past it kills nothing.
		{map[string]string{"auditpg_slow_samples": "1000000000000"}, []string{"auditpg_slow_samples", `"1000000000000"`, "at most 100000"}},
		{map[string]string{"auditpg_max_fingerprints": "1000001"}, []string{"auditpg_max_fingerprints", "at most 1000000"}},
		{map[string]string{"auditpg_retry_attempts": "101"}, []string{"auditpg_retry_attempts", "at most 100"}},
		{map[string]string{"auditpg_retry_delay": "2m"}, []string{"auditpg_retry_delay", "at most 1m"}},
		{map[string]string{"auditpg_slow_query": "25h"}, []string{"auditpg_slow_query", "at most 24h"}},
		{map[string]string{"auditpg_cache_size": "65GB"}, []string{"auditpg_cache_size", `"65GB"`, "at most 64GB"}},
		{map[string]string{"auditpg_cache_size": "2GB", "auditpg_cache_max_entry": "1GB"}, []string{"auditpg_cache_max_entry", "at most 512MB"}},
	} {
		_, err := sql.Open("auditpg", withParams(t, tc.params))
		if err == nil {
			t.Errorf("%v: sql.Open succeeded, want an error", tc.params)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not mention %q", tc.params, err, w)
			}
		}
		if ce := (*ConfigError)(nil); !errors.As(err, &ce) || ce.Value == "" || tc.params[ce.Param] == "" {
			t.Errorf("%v: error %#v: want a *ConfigError naming the parameter and its value", tc.params, err)
		}
	}
	var ce *ConfigError
	if _, err := Open(testDSN, WithCacheTTL(-time.Second)); !errors.As(err, &ce) || ce.Param != "" || !strings.Contains(ce.Error(), "WithCacheTTL(-1s)") {
		t.Errorf("a bad option: error %#v, want a *ConfigError that names the option", err)
	}
	if _, err := Open(testDSN, WithCacheTables("a", "")); !errors.As(err, &ce) || !strings.Contains(ce.Error(), "a table name is empty") {
		t.Errorf("WithCacheTables with an empty name: error %#v, want a *ConfigError that says so", err)
	}
	// The cache size and its largest entry are checked once both are set,
	// in whichever order and from wherever they come.
	for name, tc := range map[string]struct {
		dsn   string
		opts  []Option
		param string
	}{
		"max entry, then size": {testDSN, []Option{WithCacheMaxEntry(2 << 20), WithCacheSize(1 << 20)}, ""},
		"size, then max entry": {testDSN, []Option{WithCacheSize(1 << 20), WithCacheMaxEntry(2 << 20)}, ""},
		"size in the DSN":      {withParams(t, map[string]string{"auditpg_cache_size": "1MB"}), []Option{WithCacheMaxEntry(1<<20 + 1)}, "auditpg_cache_size"},
	} {
		_, err := Open(tc.dsn, tc.opts...)
		if !errors.As(err, &ce) || ce.Param != tc.param || !strings.Contains(ce.Error(), "WithCacheMaxEntry") || !strings.Contains(ce.Error(), "at most the cache size") {
			t.Errorf("%s: error %#v, want a *ConfigError (Param %q) that names the max entry and the size", name, err, tc.param)
		}
	}
	if _, err := Open(withParams(t, map[string]string{"auditpg_cache_max_entry": "2MB"}), WithCacheSize(1<<20), WithCacheMaxEntry(1<<20)); err != nil {
		t.Errorf("an option that lowers the DSN's max entry to the size: %v", err)
	}
	// A password must never appear in an error.
	_, err := sql.Open("auditpg", "postgres://u:s3cret-pw@127.0.0.1:1/db?auditpg_bogus=1")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %v: want an error without the password", err)
	}
	_, err = sql.Open("auditpg", "postgres://u:s3cret-pw@[::1/db")
	if err == nil || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error %v: want an error without the password", err)
	}
}

// TestDSNAcceptedSpellings: word values in any case, spaces around list items.
func TestDSNAcceptedSpellings(t *testing.T) {
	for _, tc := range []struct {
		params map[string]string
		check  func(c config) bool
	}{
		{map[string]string{"auditpg_cache": "ALL"}, func(c config) bool { return c.cache.Mode == CacheAll }},
		{map[string]string{"auditpg_cache": "Explicit"}, func(c config) bool { return c.cache.Mode == CacheExplicit }},
		{map[string]string{"auditpg_cache": "OFF"}, func(c config) bool { return c.cache.Mode == CacheOff }},
		{map[string]string{"auditpg_log_args": "TRUE"}, func(c config) bool { return c.stats.logArgs }},
		{map[string]string{"auditpg_log_args": "True"}, func(c config) bool { return c.stats.logArgs }},
		{map[string]string{"auditpg_otel": "OFF"}, func(c config) bool { return !c.otel }},
		{map[string]string{"auditpg_otel": "False"}, func(c config) bool { return !c.otel }},
		{map[string]string{"auditpg_cache_rls_tables": ""}, func(c config) bool { return len(c.cache.RLSAllowed) == 0 }},
		{map[string]string{"auditpg_cache_max_entry": "1MB", "auditpg_cache_size": "1MB"}, func(c config) bool {
			return c.cache.MaxEntryBytes == 1<<20 && c.cache.MaxBytes == 1<<20
		}},
	} {
		db, err := sql.Open("auditpg", withParams(t, tc.params))
		if err != nil {
			t.Errorf("%v: %v", tc.params, err)
			continue
		}
		c, err := connectorOf(db)
		if err != nil || !tc.check(c.cfg) {
			t.Errorf("%v: not applied (%v)", tc.params, err)
		}
		db.Close()
	}
	db, err := sql.Open("auditpg", keyValueDSN(t, "auditpg_cache_tables=' a , b '"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if c, _ := connectorOf(db); c.cfg.cache.Mode != CacheTables || !reflect.DeepEqual(c.cfg.cache.Tables, map[string]bool{"a": true, "b": true}) {
		t.Errorf("auditpg_cache_tables=' a , b ': mode %v, tables %v; want tables a and b", c.cfg.cache.Mode, c.cfg.cache.Tables)
	}
}

func TestOptionsWinOverDSNAndPoolSettings(t *testing.T) {
	dsn := withParams(t, map[string]string{
		"auditpg_slow_query":     "5s",
		"auditpg_max_open_conns": "7",
		"auditpg_max_idle_conns": "3",
	})
	db, err := Open(dsn, WithSlowQueryThreshold(time.Millisecond), WithMaxIdleConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, _ := connectorOf(db)
	if c.cfg.stats.slowThreshold != time.Millisecond {
		t.Errorf("slow threshold = %v, want the option's 1ms", c.cfg.stats.slowThreshold)
	}
	if got := db.Stats().MaxOpenConnections; got != 7 {
		t.Errorf("MaxOpenConnections = %d, want 7 from the DSN", got)
	}
	if c.cfg.pool.maxIdle != 2 {
		t.Errorf("max idle = %d, want the option's 2", c.cfg.pool.maxIdle)
	}
	if _, err := Open(testDSN, WithMaxFingerprints(0)); err == nil || !strings.Contains(err.Error(), "WithMaxFingerprints(0)") {
		t.Errorf("WithMaxFingerprints(0): err = %v, want one naming the option", err)
	}
}

func TestStatsNeedsAuditpgDB(t *testing.T) {
	db := openDB(t, "pgx")
	if _, err := Stats(db); !errors.Is(err, ErrNotAuditpg) {
		t.Errorf("Stats(pgx db) error = %v, want ErrNotAuditpg", err)
	}
	if err := ResetStats(db); !errors.Is(err, ErrNotAuditpg) {
		t.Errorf("ResetStats(pgx db) error = %v, want ErrNotAuditpg", err)
	}
}

// retryDB opens a DB whose logger counts retry warnings.
func retryDB(t *testing.T, dsn string, attempts int, delay time.Duration) (*sql.DB, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	db, err := Open(dsn, WithConnectRetry(attempts, delay), WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, &log
}

func TestConnectRetry(t *testing.T) {
	ctx := context.Background()
	t.Run("transient failures are retried", func(t *testing.T) {
		db, log := retryDB(t, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", 3, time.Millisecond)
		err := db.PingContext(ctx)
		if err == nil {
			t.Fatal("ping of a closed port succeeded")
		}
		if n := strings.Count(log.String(), "retrying"); n != 2 {
			t.Errorf("%d retry warnings, want 2 (3 attempts); log:\n%s", n, log)
		}
	})
	t.Run("configuration errors are not", func(t *testing.T) {
		u, _ := url.Parse(testDSN)
		u.Path = "/no_such_database"
		db, log := retryDB(t, u.String(), 5, time.Millisecond)
		err := db.PingContext(ctx)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
			t.Fatalf("ping error = %v, want SQLSTATE 3D000", err)
		}
		if strings.Contains(log.String(), "retrying") {
			t.Errorf("a missing database was retried; log:\n%s", log)
		}
	})
	t.Run("bounded by the context", func(t *testing.T) {
		db, _ := retryDB(t, "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", 100, 10*time.Second)
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := db.PingContext(ctx)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("ping took %v, want it bounded by the 200ms context", took)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("error = %v, want the deadline and the last attempt's cause", err)
		}
	})
}

func TestTypesRoundTrip(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "auditpg")
	mustExec(t, db, `CREATE TABLE IF NOT EXISTS types_rt (
		id uuid PRIMARY KEY, n numeric(12,3), b bytea, j jsonb, ts timestamptz, tags text[], maybe text)`)
	id := "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
	ts := time.Date(2026, 11, 25, 23, 59, 58, 123456000, time.UTC)
	mustExec(t, db, `INSERT INTO types_rt VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, "12345.678", []byte{0, 1, 2, 255}, `{"a": [1, 2]}`, ts, []string{"x", "y z"}, nil)

	var (
		gotID   string
		n       pgtype.Numeric
		b       []byte
		j       json.RawMessage
		gotTS   time.Time
		tags    []string
		maybe   sql.NullString
		typeMap = pgtype.NewMap()
	)
	err := db.QueryRowContext(ctx, `SELECT id, n, b, j, ts, tags, maybe FROM types_rt WHERE id = $1`, id).
		Scan(&gotID, &n, &b, &j, &gotTS, typeMap.SQLScanner(&tags), &maybe)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := n.Float64Value()
	if gotID != id || f.Float64 != 12345.678 || !bytes.Equal(b, []byte{0, 1, 2, 255}) ||
		!gotTS.Equal(ts) || !reflect.DeepEqual(tags, []string{"x", "y z"}) || maybe.Valid {
		t.Errorf("round trip: id=%s n=%v b=%v ts=%v tags=%q maybe=%v", gotID, f, b, gotTS, tags, maybe)
	}
	var doc map[string][]int
	if err := json.Unmarshal(j, &doc); err != nil || !reflect.DeepEqual(doc["a"], []int{1, 2}) {
		t.Errorf("jsonb = %s (%v)", j, err)
	}
	// pgx types as arguments reach pgx through the wrapper's NamedValueChecker.
	var sum int64
	if err := db.QueryRowContext(ctx, `SELECT sum(x) FROM unnest($1::int8[]) x`, []int64{1, 2, 39}).Scan(&sum); err != nil || sum != 42 {
		t.Errorf("sum of a Go slice argument = %d (%v), want 42", sum, err)
	}
	var r pgtype.Range[pgtype.Int4]
	if err := db.QueryRowContext(ctx, `SELECT $1::int4range`, pgtype.Range[pgtype.Int4]{
		Lower: pgtype.Int4{Int32: 1, Valid: true}, Upper: pgtype.Int4{Int32: 5, Valid: true},
		LowerType: pgtype.Inclusive, UpperType: pgtype.Exclusive, Valid: true,
	}).Scan(typeMap.SQLScanner(&r)); err != nil || r.Upper.Int32 != 5 {
		t.Errorf("int4range through pgtype = %+v (%v)", r, err)
	}
}

// TestColumnTypesMatchPgx checks that every ColumnType answer and
// NextResultSet reach pgx through the wrapper unchanged.
func TestColumnTypesMatchPgx(t *testing.T) {
	ctx := context.Background()
	q := `SELECT 1::int4 AS i, 'x'::varchar(10) AS v, 1.5::numeric(10,2) AS n, now() AS t, '{}'::jsonb AS j, NULL::bytea AS b`
	describe := func(db *sql.DB) []string {
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cts, err := rows.ColumnTypes()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, ct := range cts {
			l, lok := ct.Length()
			p, s, dok := ct.DecimalSize()
			nl, nok := ct.Nullable()
			out = append(out, strings.Join([]string{ct.Name(), ct.DatabaseTypeName(), ct.ScanType().String(),
				strconv.FormatInt(l, 10), strconv.FormatInt(p, 10), strconv.FormatInt(s, 10),
				strconv.FormatBool(lok), strconv.FormatBool(dok), strconv.FormatBool(nl), strconv.FormatBool(nok)}, "|"))
		}
		for rows.Next() {
		}
		if rows.NextResultSet() {
			out = append(out, "has another result set")
		}
		return out
	}
	want, got := describe(openDB(t, "pgx")), describe(openDB(t, "auditpg"))
	if !reflect.DeepEqual(want, got) {
		t.Errorf("column types differ:\npgx:     %v\nauditpg: %v", want, got)
	}
}

func TestPreparedStatementsAndTransactions(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "auditpg")
	mustExec(t, db, `CREATE TABLE IF NOT EXISTS tx_item (id int PRIMARY KEY, v text)`)
	mustExec(t, db, `TRUNCATE tx_item`)

	stmt, err := db.PrepareContext(ctx, `INSERT INTO tx_item VALUES ($1, $2)`)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		res, err := stmt.ExecContext(ctx, i, "v")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Errorf("RowsAffected = %d, want 1", n)
		}
	}
	stmt.Close()

	for _, iso := range []sql.IsolationLevel{sql.LevelReadCommitted, sql.LevelRepeatableRead, sql.LevelSerializable} {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: iso})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := tx.QueryRowContext(ctx, `SELECT current_setting('transaction_isolation')`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := strings.ToLower(iso.String()); got != want {
			t.Errorf("isolation = %q, want %q", got, want)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}

	ro, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ro.ExecContext(ctx, `INSERT INTO tx_item VALUES (9, 'no')`)
	if got := pgerr.SQLState(err); got != "25006" { // read_only_sql_transaction
		t.Errorf("write in a read-only transaction: SQLSTATE %q (%v), want 25006", got, err)
	}
	ro.Rollback()

	tx, _ := db.BeginTx(ctx, nil)
	mustTxExec(t, tx, `INSERT INTO tx_item VALUES (10, 'rolled back')`)
	tx.Rollback()
	tx, _ = db.BeginTx(ctx, nil)
	mustTxExec(t, tx, `INSERT INTO tx_item VALUES (11, 'committed')`)
	tx.Commit()
	var n int
	db.QueryRowContext(ctx, `SELECT count(*) FROM tx_item WHERE id >= 10`).Scan(&n)
	if n != 1 {
		t.Errorf("%d rows after one rollback and one commit, want 1", n)
	}

	// A prepared query, iterated.
	qs, err := db.PrepareContext(ctx, `SELECT id FROM tx_item WHERE id <= $1 ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer qs.Close()
	rows, err := qs.QueryContext(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	for rows.Next() {
		var id int
		rows.Scan(&id)
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil || !reflect.DeepEqual(ids, []int{1, 2, 3}) {
		t.Errorf("prepared query ids = %v (%v)", ids, err)
	}
}

func mustTxExec(t *testing.T, tx *sql.Tx, q string) {
	t.Helper()
	if _, err := tx.ExecContext(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

func TestCancellationAndServerErrors(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "auditpg")
	db.SetMaxOpenConns(1) // the statement must be cancelled, or the next query would wait behind it

	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := db.ExecContext(tctx, `SELECT pg_sleep(10)`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timed-out statement: error %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("timed-out statement returned after %v", took)
	}
	var one int
	if err := db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
		t.Errorf("pool unusable after a cancelled statement: %v", err)
	}

	_, err = db.ExecContext(ctx, `SELECT 1/0`)
	if got := pgerr.SQLState(err); got != "22012" {
		t.Errorf("division by zero: SQLSTATE %q (%v), want 22012", got, err)
	}
	_, err = db.QueryContext(ctx, `SELECT * FROM no_such_table`)
	if got := pgerr.SQLState(err); got != "42P01" {
		t.Errorf("missing table: SQLSTATE %q (%v), want 42P01", got, err)
	}
}

func TestTerminatedBackendRecovers(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "auditpg")
	admin := openDB(t, "pgx")

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if err := conn.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// Kill the backend while a query of it runs.
	done := make(chan error, 1)
	go func() {
		_, err := conn.ExecContext(ctx, `SELECT pg_sleep(5)`)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if _, err := admin.ExecContext(ctx, `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("query on a terminated backend succeeded")
	}
	conn.Close() // returns a broken connection: the pool must discard it

	for i := 0; i < 3; i++ { // every query after recovery succeeds
		var other int
		if err := db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&other); err != nil {
			t.Fatalf("query %d after the backend was killed: %v", i, err)
		}
		if other == pid {
			t.Errorf("query ran on the terminated backend %d", pid)
		}
	}
}

func TestPgxConnCopyFromAndBatch(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, "auditpg")
	mustExec(t, db, `CREATE TABLE IF NOT EXISTS copy_item (id int PRIMARY KEY, v text)`)
	mustExec(t, db, `TRUNCATE copy_item`)

	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(driverConn any) error {
		pc, err := PgxConn(driverConn)
		if err != nil {
			return err
		}
		n, err := pc.CopyFrom(ctx, pgx.Identifier{"copy_item"}, []string{"id", "v"},
			pgx.CopyFromRows([][]any{{1, "a"}, {2, "b"}, {3, "c"}}))
		if err != nil || n != 3 {
			t.Errorf("CopyFrom = %d, %v; want 3 rows", n, err)
		}
		var batch pgx.Batch
		batch.Queue(`INSERT INTO copy_item VALUES (4, 'd')`)
		batch.Queue(`SELECT count(*) FROM copy_item`)
		br := pc.SendBatch(ctx, &batch)
		if _, err := br.Exec(); err != nil {
			return err
		}
		var count int
		if err := br.QueryRow().Scan(&count); err != nil {
			return err
		}
		if count != 4 {
			t.Errorf("count after batch = %d, want 4", count)
		}
		return br.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PgxConn(42); err == nil || !strings.Contains(err.Error(), "(*sql.Conn).Raw") {
		t.Errorf("PgxConn(42) error = %v, want one that says what to pass", err)
	}
}
