package partition

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Manager creates, moves data into and removes the time-range partitions of
// one table. It is safe for concurrent use; its mutating methods serialize
// on a session advisory lock per table, so several processes may call them.
type Manager struct {
	db  *sql.DB
	q   dbConn // db, or during a locked call the connection holding the lock
	cfg config
}

// dbConn is what *sql.DB and *sql.Conn share. A locked call runs on the
// connection that holds the lock, so a Manager needs one connection, not
// two, and never waits on its own pool.
type dbConn interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	BeginTx(ctx context.Context, opts *sql.TxOptions) (*sql.Tx, error)
}

// on returns a copy of m that runs on conn.
func (m *Manager) on(conn *sql.Conn) *Manager {
	other := *m
	other.q = conn
	return &other
}

// New returns a Manager for db (a *sql.DB of any PostgreSQL driver, server
// 14 or later), audit_log by default.
func New(db *sql.DB, opts ...Option) (*Manager, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if limit := MaxPremake(cfg.interval); cfg.intervalSet && cfg.premake > limit {
		return nil, &PremakeError{Premake: cfg.premake, Max: limit, Interval: cfg.interval}
	}
	return &Manager{db: db, q: db, cfg: cfg}, nil
}

// Report says what one call did.
type Report struct {
	Table    Table         `json:"table"` // the schema as the server resolved it`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	DryRun   bool          `json:"dry_run"`
	// Created lists the partitions made (the default one included).
	Created []string `json:"created"`
	// Moved counts rows moved out of the default partition.
	Moved int64 `json:"moved"`
	// Removed lists the partitions retention removed (or, in a dry run,
	// would remove).
	Removed []Removal `json:"removed"`
	// Warnings are what could not be done and why (rows with a NULL key in
	// the default partition, a future partition holding rows).
	Warnings []string `json:"warnings"`
}

// Removal is one partition that Cleanup or CleanupFuture removed.
type Removal struct {
	Name       string        `json:"name"`
	From       time.Time     `json:"from"`
	To         time.Time     `json:"to"`
	Mode       RetentionMode `json:"mode"`
	ArchivedAs *Table        `json:"archived_as,omitempty"` // Archive: the table it became
	// Detach says how it was detached: "concurrently", or "plain" (a
	// default partition exists, or CleanupFuture, which drops in the
	// transaction that checked it empty).
	Detach string `json:"detach"`
	// Reason is "retention" (its range ended before now minus the
	// retention) or "future" (an empty partition beyond the premade ones).
	Reason string `json:"reason"`
}

func (m *Manager) newReport() *Report {
	return &Report{Table: m.cfg.table, Started: m.cfg.now().UTC(), Created: []string{}, Removed: []Removal{}, Warnings: []string{}}
}

// parent is the resolved partitioned table.
type parent struct {
	oid     int64
	table   Table  // Schema always set
	base    string // partition names start with it: the table's name (Convert: the final one)
	column  string
	colType string // timestamp with time zone | timestamp without time zone
}

// resolve finds the table and its partition key. It returns ErrNoTable,
// ErrNotPartitioned or ErrUnsupportedKey when it cannot be managed.
func (m *Manager) resolve(ctx context.Context, q querier) (*parent, error) {
	var p parent
	var kind string
	err := q.QueryRowContext(ctx, `SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, m.cfg.table.String()).Scan(&p.oid, &p.table.Schema, &p.table.Name, &kind)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s (Create with WithCreateTable(true) creates it)", ErrNoTable, m.cfg.table)
	}
	if err != nil {
		return nil, fmt.Errorf("partition: look up %s: %w", m.cfg.table, err)
	}
	if kind != "p" {
		return nil, fmt.Errorf("%w: %s (convert it with Convert or `auditpg partition convert`)", ErrNotPartitioned, p.table)
	}
	p.base = p.table.Name
	var strategy string
	var natts int
	err = q.QueryRowContext(ctx, `SELECT pt.partstrat::text, pt.partnatts, coalesce(a.attname::text, ''), coalesce(a.atttypid::regtype::text, '')
		FROM pg_partitioned_table pt
		LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
		WHERE pt.partrelid = $1`, p.oid).Scan(&strategy, &natts, &p.column, &p.colType)
	if err != nil {
		return nil, fmt.Errorf("partition: partition key of %s: %w", p.table, err)
	}
	if strategy != "r" || natts != 1 || p.column == "" ||
		(p.colType != "timestamp with time zone" && p.colType != "timestamp without time zone") {
		return nil, fmt.Errorf("%w: %s must be partitioned BY RANGE on one timestamptz or timestamp column", ErrUnsupportedKey, p.table)
	}
	return &p, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (p *parent) col() string { return pgx.Identifier{p.column}.Sanitize() }

// utcExpr is the key as a UTC timestamp without time zone, for date_trunc.
func (p *parent) utcExpr() string {
	if p.colType == "timestamp with time zone" {
		return "(" + p.col() + " AT TIME ZONE 'UTC')"
	}
	return p.col()
}

// PartitionName returns the name of the partition whose range starts at
// from: <table>_pYYYYMMDD, the UTC date of the range's first day, for every
// interval (as pg_partman does), so names sort by time. A table name too
// long for the suffix is shortened to fit PostgreSQL's 63 bytes.
func PartitionName(table string, from time.Time) string {
	return withSuffix(table, "_p"+from.UTC().Format("20060102"))
}

// Create makes sure the table's default partition (unless turned off) and
// the current partition plus premake future ones exist, fills the gaps
// between partitions and moves the rows of the default partition into
// partitions of their own. The partitions are listed once.
//
// The interval is the table's (read from its newest partition whose range
// is one interval) unless WithInterval was given; WithInterval with another
// interval than the table's returns an *IntervalConflictError. A premake
// past MaxPremake of the interval returns a *PremakeError. A missing table
// is created from AuditLogSchema with WithCreateTable(true), else Create
// returns ErrNoTable. A Create that stops part way (a cancelled context)
// returns a *PartialError; the partitions made stay, the one in progress is
// rolled back. Create is idempotent.
func (m *Manager) Create(ctx context.Context) (*Report, error) {
	return m.locked(ctx, true, func(m *Manager, r *Report) error { return m.create(ctx, r) })
}

// MoveDefault moves the rows of the default partition into partitions of
// their own, creating them (a range partly covered by partitions of another
// interval gets partitions for the rest). Each batch is its own committed
// transaction; a new partition's rows are not visible through the parent
// between its first batch and its attach.
func (m *Manager) MoveDefault(ctx context.Context) (*Report, error) {
	return m.locked(ctx, true, func(m *Manager, r *Report) error {
		p, err := m.resolve(ctx, m.q)
		if err != nil {
			return err
		}
		r.Table = p.table
		parts, err := m.partitions(ctx, p)
		if err != nil {
			return err
		}
		iv, err := m.interval(p, parts)
		if err != nil {
			return err
		}
		pl := newPlanner(parts)
		if err := m.planDefaultRows(ctx, p, parts, iv, pl, r); err != nil {
			return err
		}
		return m.makeRanges(ctx, p, parts, pl, r)
	})
}

// Maintain runs a full maintenance: what Create does (default partition,
// rows out of it, premade partitions, gaps filled), then retention. It waits
// for the table's maintenance lock if another session holds it.
func (m *Manager) Maintain(ctx context.Context) (*Report, error) {
	return m.locked(ctx, true, func(m *Manager, r *Report) error { return m.maintain(ctx, r) })
}

func (m *Manager) maintain(ctx context.Context, r *Report) error {
	if err := m.create(ctx, r); err != nil {
		return err
	}
	if m.cfg.retention > 0 {
		p, err := m.resolve(ctx, m.q)
		if err != nil {
			return err
		}
		return m.cleanup(ctx, p, r, false)
	}
	return nil
}

// locked runs f under the table's maintenance lock, on the connection
// holding it, and times it.
func (m *Manager) locked(ctx context.Context, wait bool, f func(*Manager, *Report) error) (*Report, error) {
	r := m.newReport()
	t0 := time.Now()
	lock, err := m.acquireLock(ctx, wait)
	if err != nil {
		return r, err
	}
	defer lock.release()
	err = f(m.on(lock.conn), r)
	r.Duration = time.Since(t0)
	return r, err
}

func (m *Manager) create(ctx context.Context, r *Report) error {
	p, err := m.resolve(ctx, m.q)
	if errors.Is(err, ErrNoTable) && m.cfg.createTable {
		if m.cfg.column != "timestamp" {
			return fmt.Errorf("%w: %s (AuditLogSchema partitions on \"timestamp\", not on %q: create the table yourself)", ErrNoTable, m.cfg.table, m.cfg.column)
		}
		if err = m.createTable(ctx); err == nil {
			p, err = m.resolve(ctx, m.q)
		}
	}
	if err != nil {
		return err
	}
	r.Table = p.table
	parts, err := m.partitions(ctx, p)
	if err != nil {
		return err
	}
	iv, err := m.interval(p, parts)
	if err != nil {
		return err
	}
	if limit := MaxPremake(iv); m.cfg.premake > limit {
		return &PremakeError{Premake: m.cfg.premake, Max: limit, Interval: iv}
	}
	if m.cfg.defaultPartition && defaultOf(parts) == nil {
		name := defaultName(p.base)
		if _, err := m.attachNew(ctx, p, nil, name, Range{}, false); err != nil {
			return err
		}
		r.Created = append(r.Created, name)
		parts = append(parts, Partition{Schema: p.table.Schema, Name: name, Default: true})
	}
	pl := newPlanner(parts)
	if err := m.planDefaultRows(ctx, p, parts, iv, pl, r); err != nil {
		return err
	}
	pl.premade(iv, m.cfg.now(), m.cfg.premake)
	var cutoff time.Time
	if m.cfg.retention > 0 {
		cutoff = m.cfg.now().Add(-m.cfg.retention)
	}
	pl.fillGaps(cutoff)
	return m.makeRanges(ctx, p, parts, pl, r)
}

// createTable applies AuditLogSchema without its default partition (made
// the gentle way afterwards), in one transaction.
func (m *Manager) createTable(ctx context.Context) error {
	ddl := AuditLogStatements(m.cfg.table, WithoutDefaultPartition())
	return m.inTx(ctx, "create table "+m.cfg.table.String(), func(tx *sql.Tx) error { return execDDL(ctx, tx, ddl) })
}

// makeRanges creates a partition for each range of todo, in order, moving
// the rows of its range out of the default partition, and analyzes each
// one that received rows (its estimates are unknown until then). It
// reports progress per partition. On an error after the first partition it
// returns a *PartialError that says how far it got.
func (m *Manager) makeRanges(ctx context.Context, p *parent, parts []Partition, pl *planner, r *Report) error {
	todo := pl.ranges()
	if len(todo) == 0 {
		return nil
	}
	def, err := m.defaultPartition(ctx, p)
	if err != nil {
		return err
	}
	used := make(map[string]bool, len(parts))
	for _, q := range parts {
		used[q.Name] = true
	}
	step := "create partitions of " + p.table.Name
	for i, rg := range todo {
		m.cfg.progress(Progress{Step: step, Done: int64(i), Total: int64(len(todo))})
		name := PartitionName(p.base, rg.From)
		if used[name] { // two ranges starting the same day: bounds not at midnight
			name = withSuffix(p.base, "_p"+rg.From.UTC().Format("20060102_150405"))
		}
		moved, err := m.attachNew(ctx, p, def, name, rg, pl.rows[rg.From.UnixNano()])
		r.Moved += moved
		if err != nil {
			return &PartialError{Table: p.table, Done: i, Total: len(todo), Err: err}
		}
		used[name] = true
		r.Created = append(r.Created, name)
		m.cfg.logger.InfoContext(ctx, "partition: created", "table", p.table.String(), "partition", name, "moved_from_default", moved)
		if moved > 0 {
			if _, err := m.q.ExecContext(ctx, "ANALYZE "+p.table.Sibling(name).String()); err != nil {
				r.Warnings = append(r.Warnings, fmt.Sprintf("ANALYZE %s failed (%v): its row estimate stays unknown until autovacuum analyzes it", name, err))
			}
		}
	}
	m.cfg.progress(Progress{Step: step, Done: int64(len(todo)), Total: int64(len(todo))})
	return nil
}

// attachNew builds a partition standalone, moves the rows of its range out
// of the default partition def (nil: none), in batches first when batches
// is true (the default was seen holding rows of the range), then attaches
// it, and returns how many rows it moved. A zero range means the default partition itself.
// If a step after the table was built fails (a cancelled context, a lock
// timeout), the table it built is removed and the rows it moved go back to
// the default partition, so that nothing is left half made.
//
// Lock order, here and everywhere: parent, then default partition, then the
// partition being changed. The CHECK constraint matching the bounds lets
// ATTACH skip its validation scan; ATTACH takes SHARE UPDATE EXCLUSIVE on
// the parent, which does not block inserts.
func (m *Manager) attachNew(ctx context.Context, p *parent, def *Table, name string, rg Range, batches bool) (moved int64, err error) {
	child := p.table.Sibling(name)
	isDefault := rg.From.IsZero()
	from, to := rg.From, rg.To
	check := pgx.Identifier{withSuffix(name, "_bounds")}.Sanitize()
	built := false
	err = m.inTx(ctx, "create "+child.String(), func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, child.String()).Scan(&exists); err != nil {
			return err
		}
		built = false
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS
			INCLUDING INDEXES INCLUDING STORAGE INCLUDING COMMENTS INCLUDING GENERATED)`, child, p.table)); err != nil {
			return err
		}
		if isDefault {
			return nil
		}
		var has bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2)`,
			child.String(), withSuffix(name, "_bounds")).Scan(&has); err != nil || has {
			return err
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s CHECK (%[3]s IS NOT NULL AND %[3]s >= %[4]s AND %[3]s < %[5]s)`,
			child, check, p.col(), literal(boundText(from)), literal(boundText(to)))); err != nil {
			return err
		}
		built = !exists
		return nil
	})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil && built {
			m.undoNew(ctx, p, def, child, moved)
		}
	}()
	if !isDefault && def != nil && batches {
		moved, err = m.moveRows(ctx, p, *def, child, from, to)
		if err != nil {
			return moved, err
		}
	}
	var tail int64 // rows that reached the default since the batches
	err = m.inTx(ctx, "attach "+child.String(), func(tx *sql.Tx) error {
		tail = 0
		locks := []string{fmt.Sprintf("LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE", p.table)}
		if def != nil && !isDefault {
			locks = append(locks, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", *def))
		}
		locks = append(locks, fmt.Sprintf("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", child))
		for _, l := range locks {
			if _, err := tx.ExecContext(ctx, l); err != nil {
				return err
			}
		}
		if isDefault {
			_, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s DEFAULT`, p.table, child))
			return err
		}
		if def != nil {
			var err error
			if tail, err = m.moveBatch(ctx, tx, p, *def, child, from, to, math.MaxInt32); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)`,
			p.table, child, literal(boundText(from)), literal(boundText(to)))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s DROP CONSTRAINT %s`, child, check)) // redundant once attached
		return err
	})
	if err == nil {
		moved += tail
	}
	return moved, err
}

// undoNew removes child, a table attachNew built and could not attach,
// after putting the rows it moved into it back into the default partition,
// in one transaction that runs even when ctx was cancelled (bounded by the
// lock timeout). A table that is attached after all is left alone; a
// failure is logged, and the next Create finishes the table instead.
func (m *Manager) undoNew(ctx context.Context, p *parent, def *Table, child Table, moved int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second+m.cfg.lockTimeout)
	defer cancel()
	undo := *m
	undo.cfg.retries = 0
	run := func(tx *sql.Tx) error {
		var attached bool
		if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT relispartition FROM pg_class WHERE oid = to_regclass($1)), true)`,
			child.String()).Scan(&attached); err != nil || attached {
			return err
		}
		if def != nil { // whatever the count says: every row in it came from there
			cols, err := columnList(ctx, tx, p.oid)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (%s) SELECT %[2]s FROM ONLY %s`, *def, cols, child)); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, "DROP TABLE "+child.String())
		return err
	}
	err := undo.inTx(ctx, "remove the unfinished "+child.String(), run)
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		// A cancelled call can leave the locked connection closed (and
		// the maintenance lock released with its session): use the pool.
		undo.q = m.db
		err = undo.inTx(ctx, "remove the unfinished "+child.String(), run)
	}
	if err != nil {
		m.cfg.logger.WarnContext(ctx, "partition: could not remove an unfinished partition; the next Create finishes it", "table", child.String(), "err", err)
	}
}

// defaultPartition returns the default partition of p, or nil.
func (m *Manager) defaultPartition(ctx context.Context, p *parent) (*Table, error) {
	var t Table
	err := m.q.QueryRowContext(ctx, `SELECT n.nspname, c.relname FROM pg_partitioned_table pt
		JOIN pg_class c ON c.oid = pt.partdefid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE pt.partrelid = $1`, p.oid).Scan(&t.Schema, &t.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("partition: default partition of %s: %w", p.table, err)
	}
	return &t, nil
}

// moveRows moves the rows of [from, to) from def into child in committed
// batches of the configured size.
func (m *Manager) moveRows(ctx context.Context, p *parent, def, child Table, from, to time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := m.inTx(ctx, "move rows from "+def.String(), func(tx *sql.Tx) error {
			var err error
			n, err = m.moveBatch(ctx, tx, p, def, child, from, to, m.cfg.batchSize)
			return err
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
		m.cfg.progress(Progress{Step: "move " + child.Name, Done: total})
	}
}

// moveBatch moves up to limit rows of [from, to) from def into child, in tx.
func (m *Manager) moveBatch(ctx context.Context, tx *sql.Tx, p *parent, def, child Table, from, to time.Time, limit int) (int64, error) {
	cols, err := columnList(ctx, tx, p.oid)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, fmt.Sprintf(`WITH moved AS (
			DELETE FROM ONLY %[1]s WHERE ctid = ANY (ARRAY (
				SELECT ctid FROM ONLY %[1]s WHERE %[2]s >= $1 AND %[2]s < $2 LIMIT $3))
			RETURNING %[3]s)
		INSERT INTO %[4]s (%[3]s) SELECT %[3]s FROM moved`, def, p.col(), cols, child),
		boundText(from), boundText(to), limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// columnList is the parent's stored columns, quoted, in order.
func columnList(ctx context.Context, q querier, oid int64) (string, error) {
	cols, err := queryStrings(ctx, q, `SELECT quote_ident(attname) FROM pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`, oid)
	return strings.Join(cols, ", "), err
}

// queryStrings returns the first column of every row of a query.
func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// planDefaultRows plans a partition for each interval range the default
// partition has rows of (or, where partitions of another interval cover
// part of that range, for the rest of it).
func (m *Manager) planDefaultRows(ctx context.Context, p *parent, parts []Partition, iv Interval, pl *planner, r *Report) error {
	def := defaultOf(parts)
	if def == nil {
		return nil
	}
	starts, nulls, err := m.rangesWithRows(ctx, p, def.Table(), iv)
	if err != nil {
		return err
	}
	if nulls > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d rows in %s have a NULL %s: no partition can take them", nulls, def.Table(), p.column))
	}
	for _, from := range starts {
		pl.addRows(from, iv.Add(from, 1))
	}
	return nil
}

// rangesWithRows returns the starts of the interval ranges that rows of
// table t (p's columns) fall in, in order, and how many rows have a NULL key.
func (m *Manager) rangesWithRows(ctx context.Context, p *parent, t Table, iv Interval) (starts []time.Time, nulls int64, err error) {
	rows, err := m.q.QueryContext(ctx, fmt.Sprintf(`SELECT extract(epoch FROM date_trunc(%s, %s))::float8, count(*)
		FROM ONLY %s GROUP BY 1 ORDER BY 1 NULLS LAST`, literal(iv.postgresUnit()), p.utcExpr(), t))
	if err != nil {
		return nil, 0, fmt.Errorf("partition: ranges of the rows in %s: %w", t, err)
	}
	defer rows.Close()
	for rows.Next() {
		var epoch sql.NullFloat64
		var count int64
		if err := rows.Scan(&epoch, &count); err != nil {
			return nil, 0, err
		}
		if !epoch.Valid {
			nulls = count
			continue
		}
		starts = append(starts, time.Unix(int64(epoch.Float64), 0).UTC())
	}
	return starts, nulls, rows.Err()
}
