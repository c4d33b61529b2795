package partition

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConvertResult says what Convert did.
type ConvertResult struct {
	Table Table `json:"table"`
	// Column is the partition key, Interval the partitions' interval.
	Column   string   `json:"column"`
	Interval Interval `json:"interval"`
	// Backup is the old, unpartitioned table, kept under a new name (its
	// indexes and identity sequences renamed after it): drop it once
	// satisfied.
	Backup     Table         `json:"backup"`
	Rows       int64         `json:"rows"`
	Partitions []string      `json:"partitions"`
	Warnings   []string      `json:"warnings"`
	Duration   time.Duration `json:"duration_ns"`
}

// Convert turns the configured table, unpartitioned, into a partitioned one
// without losing a row:
//
//  1. a partitioned table <name>_convert is made LIKE the old one (defaults,
//     CHECK constraints, identity, storage, comments), partitioned on the
//     column of WithColumn, with the old primary key plus that column, the
//     old non-unique indexes, a partition for each range holding data plus
//     the premade ones (gaps between them filled, as Create does), and the
//     default one;
//  2. the rows are copied in committed batches of blocks (writes continue
//     meanwhile), reporting progress;
//  3. in one transaction that blocks writes (not reads) to the old table:
//     the rows written since are copied, both tables are counted, and only
//     if the counts agree are they swapped: the old table becomes
//     <name>_unpartitioned, the new one takes its name, and sequences the
//     old one owned pass to the new one. The old table's indexes (and the
//     constraints they back) and identity sequences are renamed after the
//     backup, and the new table's take the old names: its primary key is
//     <name>_pkey again, never a staging name;
//  4. the new table is analyzed, so that its row estimates are known.
//
// Rows updated or deleted during the copy make the counts disagree:
// Convert then returns ErrCountMismatch, swaps nothing and removes the new
// table; run it again when writes are quieter. Views and foreign keys that
// name the old table keep pointing at it (now the backup). Other unique
// indexes than the primary key are not copied (a partitioned table's unique
// indexes must include the partition key): each is listed in Warnings. A
// premake past MaxPremake of the interval returns a *PremakeError.
func (m *Manager) Convert(ctx context.Context) (*ConvertResult, error) {
	t0 := time.Now()
	if limit := MaxPremake(m.cfg.interval); m.cfg.premake > limit {
		return nil, &PremakeError{Premake: m.cfg.premake, Max: limit, Interval: m.cfg.interval}
	}
	lock, err := m.acquireLock(ctx, true)
	if err != nil {
		return nil, err
	}
	defer lock.release()
	m = m.on(lock.conn)

	var old parent
	var kind string
	err = m.q.QueryRowContext(ctx, `SELECT c.oid::int8, n.nspname, c.relname, c.relkind::text,
			coalesce((SELECT atttypid::regtype::text FROM pg_attribute WHERE attrelid = c.oid AND attname = $2 AND NOT attisdropped), '')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`,
		m.cfg.table.String(), m.cfg.column).Scan(&old.oid, &old.table.Schema, &old.table.Name, &kind, &old.colType)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("%w: %s", ErrNoTable, m.cfg.table)
	case err != nil:
		return nil, fmt.Errorf("partition: look up %s: %w", m.cfg.table, err)
	case kind == "p":
		return nil, fmt.Errorf("%w: %s", ErrAlreadyPartitioned, m.cfg.table)
	case kind != "r":
		return nil, fmt.Errorf("%w: %s is not a table", ErrNotPartitioned, m.cfg.table)
	case old.colType != "timestamp with time zone" && old.colType != "timestamp without time zone":
		return nil, fmt.Errorf("%w: %s has no timestamptz or timestamp column %q", ErrUnsupportedKey, old.table, m.cfg.column)
	}
	old.column, old.base = m.cfg.column, old.table.Name
	tmp := old.table.Sibling(withSuffix(old.table.Name, "_convert"))
	backup := old.table.Sibling(withSuffix(old.table.Name, "_unpartitioned"))
	res := &ConvertResult{Table: old.table, Column: old.column, Interval: m.cfg.interval, Backup: backup, Partitions: []string{}, Warnings: []string{}}

	names, err := m.buildConverted(ctx, &old, tmp, res)
	if err != nil {
		m.dropQuietly(ctx, tmp)
		return nil, err
	}
	if err := m.copyAndSwap(ctx, &old, tmp, backup, names, res); err != nil {
		m.dropQuietly(ctx, tmp)
		return nil, err
	}
	if _, err := m.q.ExecContext(ctx, "ANALYZE "+old.table.String()); err != nil {
		res.Warnings = append(res.Warnings, fmt.Sprintf("ANALYZE %s failed (%v): row estimates stay unknown until autovacuum analyzes it", old.table, err))
	}
	res.Duration = time.Since(t0)
	return res, nil
}

func (m *Manager) dropQuietly(ctx context.Context, t Table) {
	if _, err := m.q.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS `+t.String()+` CASCADE`); err != nil {
		m.cfg.logger.WarnContext(ctx, "partition: could not remove the unfinished table; drop it by hand", "table", t.String(), "err", err)
	}
}

// staged is an index (or the constraint it backs) of the new table made
// under a staging name, and the old table's name it takes at the swap.
type staged struct{ stage, final string }

// stageName is the name an index of the new table has until the swap.
func stageName(final string) string { return withSuffix(final, "_convert") }

// buildConverted makes the new partitioned table and its partitions, and
// returns the indexes it made under staging names.
func (m *Manager) buildConverted(ctx context.Context, old *parent, tmp Table, res *ConvertResult) ([]staged, error) {
	var exists bool
	if err := m.q.QueryRowContext(ctx, `SELECT to_regclass($1) IS NOT NULL`, tmp.String()).Scan(&exists); err != nil {
		return nil, err
	}
	if exists {
		return nil, fmt.Errorf("partition: %s exists, perhaps from an interrupted conversion: check and drop it, then convert again", tmp)
	}
	var names []staged
	err := m.inTx(ctx, "create "+tmp.String(), func(tx *sql.Tx) error {
		names = nil
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY
			INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (%s)`, tmp, old.table, old.col())); err != nil {
			return err
		}
		// The old primary key, plus the partition key when it lacks it.
		var pkName string
		err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT conname::text FROM pg_constraint WHERE conrelid = $1 AND contype = 'p'), '')`, old.oid).Scan(&pkName)
		if err != nil {
			return err
		}
		pk, err := queryStrings(ctx, tx, `SELECT a.attname FROM pg_index i
			CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord`, old.oid)
		if err != nil {
			return err
		}
		hasKey := false
		for i, c := range pk {
			hasKey = hasKey || c == old.column
			pk[i] = pgx.Identifier{c}.Sanitize()
		}
		if len(pk) > 0 {
			if !hasKey {
				pk = append(pk, old.col())
			}
			names = append(names, staged{stageName(pkName), pkName})
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ADD CONSTRAINT %s PRIMARY KEY (%s)`,
				tmp, pgx.Identifier{stageName(pkName)}.Sanitize(), strings.Join(pk, ", "))); err != nil {
				return err
			}
		}
		copied, err := m.copyIndexes(ctx, tx, old, tmp, res)
		names = append(names, copied...)
		return err
	})
	if err != nil {
		return nil, err
	}
	p, err := m.resolveTable(ctx, tmp)
	if err != nil {
		return nil, err
	}
	p.base = old.table.Name
	var parts []Partition
	if m.cfg.defaultPartition {
		if _, err := m.attachNew(ctx, p, nil, defaultName(p.base), Range{}, false); err != nil {
			return nil, err
		}
		res.Partitions = append(res.Partitions, defaultName(p.base))
		parts = append(parts, Partition{Schema: p.table.Schema, Name: defaultName(p.base), Default: true})
	}
	// Every range holding data, then the current one and the premade ones,
	// and the gaps between them.
	iv := m.cfg.interval
	starts, _, err := m.rangesWithRows(ctx, old, old.table, iv)
	if err != nil {
		return nil, err
	}
	pl := newPlanner(nil)
	for _, from := range starts {
		pl.add(from, iv.Add(from, 1))
	}
	pl.premade(iv, m.cfg.now(), m.cfg.premake)
	pl.fillGaps(time.Time{})
	r := &Report{}
	if err := m.makeRanges(ctx, p, parts, pl, r); err != nil {
		return nil, err
	}
	res.Partitions = append(res.Partitions, r.Created...)
	return names, nil
}

// resolveTable resolves t as the manager's table would be.
func (m *Manager) resolveTable(ctx context.Context, t Table) (*parent, error) {
	other := *m
	other.cfg.table = t
	return other.resolve(ctx, m.q)
}

// copyIndexes recreates old's non-unique indexes on tmp, from
// pg_get_indexdef with the table's name replaced, each under the staging
// name of the old index's name, which it returns.
func (m *Manager) copyIndexes(ctx context.Context, tx *sql.Tx, old *parent, tmp Table, res *ConvertResult) ([]staged, error) {
	rows, err := tx.QueryContext(ctx, `SELECT ic.relname, i.indisunique, i.indisprimary, pg_get_indexdef(i.indexrelid),
			'CREATE INDEX ' || quote_ident(ic.relname) || ' ON ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || ' USING '
		FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.indrelid = $1 ORDER BY ic.relname`, old.oid)
	if err != nil {
		return nil, err
	}
	var defs []string
	var names []staged
	for rows.Next() {
		var name, def, prefix string
		var unique, primary bool
		if err := rows.Scan(&name, &unique, &primary, &def, &prefix); err != nil {
			rows.Close()
			return nil, err
		}
		switch {
		case primary:
		case unique:
			res.Warnings = append(res.Warnings, fmt.Sprintf("unique index %s not copied: a partitioned table's unique index must include %s", name, old.column))
		case !strings.HasPrefix(def, prefix):
			res.Warnings = append(res.Warnings, fmt.Sprintf("index %s not copied: unexpected definition %q", name, def))
		default:
			names = append(names, staged{stageName(name), name})
			defs = append(defs, "CREATE INDEX "+pgx.Identifier{stageName(name)}.Sanitize()+" ON "+tmp.String()+" USING "+strings.TrimPrefix(def, prefix))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range defs {
		if _, err := tx.ExecContext(ctx, d); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// copyAndSwap copies the rows in batches of blocks, then copies the rest,
// verifies the counts and swaps the tables in one transaction.
func (m *Manager) copyAndSwap(ctx context.Context, old *parent, tmp, backup Table, names []staged, res *ConvertResult) error {
	cols, err := columnList(ctx, m.q, old.oid)
	if err != nil {
		return err
	}
	var blocks, perBlock int64
	if err := m.q.QueryRowContext(ctx, `SELECT pg_relation_size($1::regclass) / current_setting('block_size')::int8,
			CASE WHEN c.relpages > 0 AND c.reltuples > 0 THEN (c.reltuples / c.relpages)::int8 ELSE 50 END
		FROM pg_class c WHERE c.oid = $1::regclass`, old.table.String()).Scan(&blocks, &perBlock); err != nil {
		return err
	}
	step := max(1, int64(m.cfg.batchSize)/max(perBlock, 1))
	copyBlocks := func(ctx context.Context, q interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, from, to int64) (int64, error) {
		cond := fmt.Sprintf("ctid >= '(%d,0)'::tid", from)
		if to >= 0 {
			cond += fmt.Sprintf(" AND ctid < '(%d,0)'::tid", to)
		}
		r, err := q.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %[2]s FROM ONLY %s WHERE %s`, tmp, cols, old.table, cond))
		if err != nil {
			return 0, err
		}
		return r.RowsAffected()
	}
	// The last block is left to the swap, with the blocks added since:
	// concurrent inserts land in its free space as well as after it.
	last := max(blocks-1, 0)
	var copied int64
	for b := int64(0); b < last; b += step {
		end := min(b+step, last) // the blocks after are the swap's to copy
		n, err := copyBlocks(ctx, m.q, b, end)
		if err != nil {
			return fmt.Errorf("partition: copy blocks %d-%d of %s: %w", b, end, old.table, err)
		}
		copied += n
		m.cfg.progress(Progress{Step: "copy rows", Done: end, Total: blocks})
	}
	return m.inTx(ctx, "swap "+old.table.String(), func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`LOCK TABLE %s IN EXCLUSIVE MODE`, old.table)); err != nil {
			return err
		}
		tail, err := copyBlocks(ctx, tx, last, -1)
		if err != nil {
			return err
		}
		var oldCount, newCount int64
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM ONLY `+old.table.String()).Scan(&oldCount); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+tmp.String()).Scan(&newCount); err != nil {
			return err
		}
		if oldCount != newCount {
			return fmt.Errorf("%w: %s has %d rows, the copy %d (rows changed during the copy): nothing swapped, convert again when writes are quieter",
				ErrCountMismatch, old.table, oldCount, newCount)
		}
		res.Rows = copied + tail
		stmts := []string{
			fmt.Sprintf(`ALTER TABLE %s RENAME TO %s`, old.table, pgx.Identifier{backup.Name}.Sanitize()),
			fmt.Sprintf(`ALTER TABLE %s RENAME TO %s`, tmp, pgx.Identifier{old.table.Name}.Sanitize()),
		}
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		if err := m.handOverSequences(ctx, tx, backup, old.table); err != nil {
			return err
		}
		return renameAfterSwap(ctx, tx, old.table, tmp, backup, names)
	})
}

// renameAfterSwap gives the names of the old table's indexes (and of the
// constraints they back) and identity sequences to the new table's: the
// backup's are renamed after it first (a name starting with the table's
// name gets the backup's instead, another name the suffix
// "_unpartitioned"), then the new table's staged indexes take the old
// names and its identity sequences lose the staging table's name.
func renameAfterSwap(ctx context.Context, tx *sql.Tx, table, tmp, backup Table, names []staged) error {
	rename := func(kind, schema, from, to string) error {
		if from == to {
			return nil
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf("ALTER %s %s RENAME TO %s", kind, Table{Schema: schema, Name: from}, pgx.Identifier{to}.Sanitize()))
		return err
	}
	owned := `SELECT c.relname::text, CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'INDEX' END
		FROM pg_class c WHERE c.oid IN (
			SELECT indexrelid FROM pg_index WHERE indrelid = $1::regclass
			UNION ALL
			SELECT d.objid FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
			WHERE d.refobjid = $1::regclass AND d.deptype = 'i')
		ORDER BY 1`
	list := func(t Table) ([][2]string, error) {
		rows, err := tx.QueryContext(ctx, owned, t.String())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][2]string
		for rows.Next() {
			var name, kind string
			if err := rows.Scan(&name, &kind); err != nil {
				return nil, err
			}
			out = append(out, [2]string{name, kind})
		}
		return out, rows.Err()
	}
	olds, err := list(backup)
	if err != nil {
		return err
	}
	for _, o := range olds {
		to := withSuffix(o[0], "_unpartitioned")
		if rest, ok := strings.CutPrefix(o[0], table.Name); ok {
			to = withSuffix(backup.Name, rest)
		}
		if err := rename(o[1], backup.Schema, o[0], to); err != nil {
			return err
		}
	}
	final := make(map[string]string, len(names))
	for _, n := range names {
		final[n.stage] = n.final
	}
	news, err := list(table)
	if err != nil {
		return err
	}
	for _, n := range news {
		to, ok := final[n[0]]
		if rest, cut := strings.CutPrefix(n[0], tmp.Name); !ok && cut && n[1] == "SEQUENCE" {
			to, ok = withSuffix(table.Name, rest), true
		}
		if ok {
			if err := rename(n[1], table.Schema, n[0], to); err != nil {
				return err
			}
		}
	}
	return nil
}

// handOverSequences gives the new table the sequences the old one owned
// (serial columns, still named by the copied defaults), and moves each
// identity sequence of the new table past the old values.
func (m *Manager) handOverSequences(ctx context.Context, tx *sql.Tx, backup, table Table) error {
	stmts, err := queryStrings(ctx, tx, `SELECT format('ALTER SEQUENCE %s OWNED BY %s.%I', s.oid::regclass, $2::text, a.attname)
		FROM pg_depend d
		JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
		JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
		WHERE d.refobjid = $1::regclass AND d.deptype = 'a'`, backup.String(), table.String())
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	idCols, err := queryStrings(ctx, tx, `SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attidentity <> '' AND NOT attisdropped`, table.String())
	if err != nil {
		return err
	}
	for _, c := range idCols {
		col := pgx.Identifier{c}.Sanitize()
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, $2), max(%s)) FROM %s HAVING max(%[1]s) IS NOT NULL`,
			col, table), table.String(), c); err != nil {
			return err
		}
	}
	return nil
}
