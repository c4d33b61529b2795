package monitor

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// IndexUsage is the usage of one index. The indexes of the partitions of a
// partitioned table are rolled up into their partitioned parent index: its
// scans and size are the sums over its partitions (Partitions counts them).
type IndexUsage struct {
	// Table is the indexed table; Index the index's name, in the table's
	// schema.
	Table      Table  `json:"table"`
	Index      string `json:"index"`
	Scans      int64  `json:"scans"`
	TuplesRead int64  `json:"tuples_read"`
	Bytes      int64  `json:"bytes"`
	Partitions int    `json:"partitions,omitempty"`
	Unique     bool   `json:"unique"`
	Primary    bool   `json:"primary"`
	// Constraint: the index backs a constraint (primary key, unique,
	// exclusion): it cannot be dropped on its own.
	Constraint bool   `json:"constraint"`
	Valid      bool   `json:"valid"`
	Definition string `json:"definition"`
}

// IndexUsage lists the indexes of the user schemas, most scanned first,
// partition indexes rolled up into their partitioned parent index.
func (m *Monitor) IndexUsage(ctx context.Context) ([]IndexUsage, error) {
	return list(ctx, m, "index usage", `
WITH leaf AS (
  SELECT coalesce(pg_partition_root(i.indexrelid), i.indexrelid) AS root,
         coalesce(s.idx_scan, 0) AS scans, coalesce(s.idx_tup_read, 0) AS tup_read,
         pg_relation_size(i.indexrelid) AS bytes
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid
   WHERE c.relkind = 'i' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
), rolled AS (
  SELECT root, sum(scans)::int8 AS scans, sum(tup_read)::int8 AS tup_read, sum(bytes)::int8 AS bytes, count(*) AS parts
    FROM leaf GROUP BY root
)
SELECT n.nspname::text, t.relname::text, c.relname::text, r.scans, r.tup_read, r.bytes,
       CASE WHEN c.relkind = 'I' THEN r.parts ELSE 0 END::int,
       i.indisunique, i.indisprimary,
       EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid),
       i.indisvalid, pg_get_indexdef(i.indexrelid)
  FROM rolled r
  JOIN pg_index i ON i.indexrelid = r.root
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 ORDER BY r.scans DESC, r.bytes DESC, 1, 2, 3`, func(r scanner, u *IndexUsage) error {
		return r.Scan(&u.Table.Schema, &u.Table.Name, &u.Index, &u.Scans, &u.TuplesRead, &u.Bytes, &u.Partitions,
			&u.Unique, &u.Primary, &u.Constraint, &u.Valid, &u.Definition)
	})
}

// UnusedIndex is an index scanned at most Thresholds.UnusedIndexMaxScans
// times (default: never) since the statistics were reset. Unique and primary indexes,
// indexes backing constraints, invalid indexes and indexes smaller than
// Thresholds.UnusedIndexMinBytes are never reported. Dropping one is the
// operator's decision: DropSQL is a suggestion, never run by this package.
type UnusedIndex struct {
	IndexUsage
	DropSQL string `json:"drop_sql"`
}

// UnusedIndexes lists the unused indexes, largest first.
func (m *Monitor) UnusedIndexes(ctx context.Context) ([]UnusedIndex, error) {
	usage, err := m.IndexUsage(ctx)
	if err != nil {
		return nil, err
	}
	return m.unused(usage), nil
}

func (m *Monitor) unused(usage []IndexUsage) []UnusedIndex {
	out := []UnusedIndex{}
	for _, u := range usage {
		if u.Unique || u.Primary || u.Constraint || !u.Valid ||
			u.Bytes < m.th.UnusedIndexMinBytes || u.Scans > m.th.UnusedIndexMaxScans {
			continue
		}
		out = append(out, UnusedIndex{IndexUsage: u, DropSQL: dropIndexSQL(u.Table.Schema, u.Index, u.Partitions > 0)})
	}
	slices.SortStableFunc(out, func(a, b UnusedIndex) int { return int(b.Bytes - a.Bytes) })
	return out
}

// dropIndexSQL drops an index without blocking writes where PostgreSQL
// allows it (not on partitioned indexes).
func dropIndexSQL(schema, index string, partitioned bool) string {
	if partitioned {
		return "DROP INDEX " + pgx.Identifier{schema, index}.Sanitize() + ";"
	}
	return "DROP INDEX CONCURRENTLY " + pgx.Identifier{schema, index}.Sanitize() + ";"
}

// InvalidIndex is an index left invalid, usually by a CREATE INDEX
// CONCURRENTLY or REINDEX CONCURRENTLY that failed. Queries do not use it but
// every write still maintains it. Indexes being built right now are not
// reported.
type InvalidIndex struct {
	Table      Table  `json:"table"`
	Index      string `json:"index"`
	Unique     bool   `json:"unique"`
	Bytes      int64  `json:"bytes"`
	Definition string `json:"definition"`
	// ReindexSQL rebuilds it without blocking writes; for a unique index
	// it fails again until the duplicate values are removed.
	ReindexSQL string `json:"reindex_sql"`
	DropSQL    string `json:"drop_sql"`
}

// InvalidIndexes lists the invalid indexes.
func (m *Monitor) InvalidIndexes(ctx context.Context) ([]InvalidIndex, error) {
	return list(ctx, m, "invalid indexes", `
SELECT n.nspname::text, t.relname::text, c.relname::text, i.indisunique,
       pg_relation_size(i.indexrelid), pg_get_indexdef(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE NOT i.indisvalid AND c.relkind = 'i'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
   AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid)
 ORDER BY 1, 2, 3`, func(r scanner, v *InvalidIndex) error {
		if err := r.Scan(&v.Table.Schema, &v.Table.Name, &v.Index, &v.Unique, &v.Bytes, &v.Definition); err != nil {
			return err
		}
		v.ReindexSQL = "REINDEX INDEX CONCURRENTLY " + v.Table.Sibling(v.Index).String() + ";"
		v.DropSQL = dropIndexSQL(v.Table.Schema, v.Index, false)
		return nil
	})
}

// RedundantIndex is an index that another index of the same table makes
// useless: same access method, expressions and predicate, and its key
// columns are the leading key columns of the other (an exact duplicate when
// they are all of them).
type RedundantIndex struct {
	Table      Table  `json:"table"`
	Index      string `json:"index"`
	Definition string `json:"definition"`
	Bytes      int64  `json:"bytes"`
	CoveredBy  string `json:"covered_by"`
	// CoveredByDefinition is the covering index's definition.
	CoveredByDefinition string `json:"covered_by_definition"`
	Duplicate           bool   `json:"duplicate"`
	DropSQL             string `json:"drop_sql"`
}

// indexShape is what decides whether one index covers another.
type indexShape struct {
	oid                           int64
	schema, table, index, def, am string
	tableOID                      int64
	keys, classes, colls, options []string // per key column
	atts                          []string // key and INCLUDE columns (attribute numbers)
	nAtts                         int      // len(atts)
	exprs, pred                   string
	unique, constraint            bool
	partitioned                   bool
	bytes                         int64
}

// RedundantIndexes lists the duplicate and redundant indexes. An index
// backing a constraint is never the one to drop, nor a unique index covered
// by a longer one (it enforces something the longer one does not).
func (m *Monitor) RedundantIndexes(ctx context.Context) ([]RedundantIndex, error) {
	all, err := list(ctx, m, "index definitions", `
SELECT c.oid::int8, n.nspname::text, t.relname::text, c.relname::text, pg_get_indexdef(i.indexrelid),
       a.amname::text, i.indrelid::int8, i.indkey::text, i.indclass::text, i.indcollation::text,
       i.indoption::text, i.indnkeyatts::int, i.indnatts::int,
       coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), ''),
       i.indisunique, EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid),
       c.relkind = 'I', pg_relation_size(i.indexrelid)
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_am a ON a.oid = c.relam
 WHERE i.indisvalid AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
 ORDER BY i.indrelid, c.oid`, func(r scanner, s *indexShape) error {
		var keys, classes, colls, options string
		var nKey int
		if err := r.Scan(&s.oid, &s.schema, &s.table, &s.index, &s.def, &s.am, &s.tableOID, &keys, &classes, &colls,
			&options, &nKey, &s.nAtts, &s.exprs, &s.pred, &s.unique, &s.constraint, &s.partitioned, &s.bytes); err != nil {
			return err
		}
		s.atts = strings.Fields(keys)
		s.keys = firstN(s.atts, nKey)
		s.classes, s.colls, s.options = firstN(strings.Fields(classes), nKey), firstN(strings.Fields(colls), nKey), firstN(strings.Fields(options), nKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := []RedundantIndex{}
	for _, a := range all {
		for _, b := range all {
			if a.oid == b.oid || a.tableOID != b.tableOID || !covers(b, a) {
				continue
			}
			exact := len(a.keys) == len(b.keys) && slices.Equal(a.atts, b.atts) && a.unique == b.unique
			if exact && !droppableDuplicate(a, b) || !exact && (a.unique || a.constraint) {
				continue
			}
			out = append(out, RedundantIndex{Table: Table{Schema: a.schema, Name: a.table}, Index: a.index, Definition: a.def,
				Bytes: a.bytes, CoveredBy: b.index, CoveredByDefinition: b.def, Duplicate: exact,
				DropSQL: dropIndexSQL(a.schema, a.index, a.partitioned)})
			break
		}
	}
	return out, nil
}

// covers reports whether index b makes index a redundant as far as their
// shapes go: same method, expressions and predicate; a's key columns (with
// their operator classes, collations and orderings) are b's leading key
// columns; and if a has INCLUDE columns, b holds the same columns in the
// same order, as keys or included.
func covers(b, a indexShape) bool {
	if a.am != b.am || a.exprs != b.exprs || a.pred != b.pred || len(a.keys) > len(b.keys) {
		return false
	}
	if a.nAtts > len(a.keys) && !slices.Equal(a.atts, b.atts) {
		return false // INCLUDE columns: only the same columns cover them
	}
	n := len(a.keys)
	return slices.Equal(a.keys, b.keys[:n]) && slices.Equal(a.classes, b.classes[:n]) &&
		slices.Equal(a.colls, b.colls[:n]) && slices.Equal(a.options, b.options[:n])
}

// droppableDuplicate decides which of two identical indexes to drop: never
// one that backs a constraint; else the newer (larger oid).
func droppableDuplicate(a, b indexShape) bool {
	switch {
	case a.constraint && !b.constraint:
		return false
	case b.constraint && !a.constraint:
		return true
	case a.constraint && b.constraint:
		return false // two constraints: the schema says so, leave it
	}
	return a.oid > b.oid
}

func firstN(s []string, n int) []string {
	if n < len(s) {
		return s[:n]
	}
	return s
}

// SeqScanTable is a large table read mostly by sequential scans.
type SeqScanTable struct {
	Table      Table   `json:"table"`
	SeqScans   int64   `json:"seq_scans"`
	IdxScans   int64   `json:"idx_scans"`
	SeqTupRead int64   `json:"seq_tup_read"`
	LiveRows   int64   `json:"live_rows"`
	Bytes      int64   `json:"bytes"`
	IndexShare float64 `json:"index_share"`
}

// SeqScanTables lists the tables of at least Thresholds.SeqScanMinRows rows
// whose share of index scans is below Thresholds.SeqScanMaxIndexShare,
// most rows read sequentially first.
func (m *Monitor) SeqScanTables(ctx context.Context) ([]SeqScanTable, error) {
	return list(ctx, m, "sequential scans", `
SELECT schemaname::text, relname::text, seq_scan, coalesce(idx_scan, 0), seq_tup_read, n_live_tup,
       pg_total_relation_size(relid), coalesce(idx_scan, 0)::float8 / (seq_scan + coalesce(idx_scan, 0))
  FROM pg_stat_user_tables
 WHERE n_live_tup >= $1 AND seq_scan > 0
   AND coalesce(idx_scan, 0)::float8 / (seq_scan + coalesce(idx_scan, 0)) < $2
 ORDER BY seq_tup_read DESC, 1, 2`, func(r scanner, s *SeqScanTable) error {
		return r.Scan(&s.Table.Schema, &s.Table.Name, &s.SeqScans, &s.IdxScans, &s.SeqTupRead, &s.LiveRows, &s.Bytes, &s.IndexShare)
	}, m.th.SeqScanMinRows, m.th.SeqScanMaxIndexShare)
}

// IndexReport gathers every index finding.
type IndexReport struct {
	Usage       []IndexUsage      `json:"usage"`
	Unused      []UnusedIndex     `json:"unused"`
	Redundant   []RedundantIndex  `json:"redundant"`
	Invalid     []InvalidIndex    `json:"invalid"`
	SeqScans    []SeqScanTable    `json:"seq_scans"`
	Suggestions *IndexSuggestions `json:"suggestions,omitempty"`
}

// Indexes gathers every index finding; suggestions from the statements are
// included (and checked with HypoPG when checkHypothetical and available)
// when suggest is set and pg_stat_statements is ready.
func (m *Monitor) Indexes(ctx context.Context, suggest, checkHypothetical bool) (*IndexReport, error) {
	r, err := inReadTx(ctx, m, func(m *Monitor) (*IndexReport, error) {
		var v *stmtView
		if suggest {
			var err error
			switch v, err = m.statementsView(ctx, nil); {
			case errors.Is(err, ErrStatementsUnavailable):
				m.log.DebugContext(ctx, "monitor: no index suggestions", "reason", err)
			case err != nil:
				return nil, err
			}
		}
		return m.indexes(ctx, v)
	})
	if err != nil || !checkHypothetical || r.Suggestions == nil {
		return r, err
	}
	// After the read-only transaction: HypoPG may need CREATE EXTENSION,
	// in a transaction of its own that is rolled back.
	r.Suggestions.HypoPG, r.Suggestions.Checked, err = m.checkHypothetical(ctx, r.Suggestions.Suggestions)
	return r, err
}

// indexes gathers the findings, with unchecked suggestions when v is not
// nil.
func (m *Monitor) indexes(ctx context.Context, v *stmtView) (*IndexReport, error) {
	r := &IndexReport{}
	var err error
	if r.Usage, err = m.IndexUsage(ctx); err != nil {
		return nil, err
	}
	r.Unused = m.unused(r.Usage)
	if r.Redundant, err = m.RedundantIndexes(ctx); err != nil {
		return nil, err
	}
	if r.Invalid, err = m.InvalidIndexes(ctx); err != nil {
		return nil, err
	}
	if r.SeqScans, err = m.SeqScanTables(ctx); err != nil {
		return nil, err
	}
	if v != nil {
		if r.Suggestions, err = m.suggestIndexes(ctx, v, SuggestOptions{}); err != nil {
			return nil, err
		}
	}
	return r, nil
}
