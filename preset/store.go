package preset

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/auditpg/auditpg/internal/pgerr"
	"github.com/jackc/pgx/v5"
)

// DefaultCacheTTL is the TTL the read hint asks for unless WithCacheTTL says
// otherwise. Within a process the driver drops cached presets at every write,
// so the TTL only bounds how long another process, one that does not hear of
// the write, may serve the older preset.
const DefaultCacheTTL = 5 * time.Minute

// Store reads and writes presets in one table through a *sql.DB. It is safe
// for concurrent use and keeps no state besides its SQL text.
type Store struct {
	db  *sql.DB
	sql statements
}

// statements is the SQL text of every operation, built once with the
// quoted table name.
type statements struct {
	table                                  string // quoted, schema-qualified when a schema was given
	schema                                 string // the DDL
	get, list, create, upsert, update, del string
}

type options struct {
	schema, table string
	hint          bool
	ttl           time.Duration
}

// Option configures a Store.
type Option func(*options) error

// WithTable names the table, schema-qualified unless schema is "" (then the
// connection's search_path finds it). The default is audit_preset.
func WithTable(schema, table string) Option {
	return func(o *options) error {
		if table == "" {
			return fmt.Errorf("%w: WithTable: the table name must not be empty", ErrInvalid)
		}
		o.schema, o.table = schema, table
		return nil
	}
}

// WithCacheHint turns the /* auditpg:cache */ hint of the reads on (the
// default) or off. Off, the auditpg driver does not cache the store's reads
// (unless its own policy caches every SELECT).
func WithCacheHint(on bool) Option {
	return func(o *options) error { o.hint = on; return nil }
}

// WithCacheTTL sets the ttl= of the read hint (default DefaultCacheTTL);
// 0 leaves it out, so the driver's default TTL applies.
func WithCacheTTL(ttl time.Duration) Option {
	return func(o *options) error {
		if ttl < 0 {
			return fmt.Errorf("%w: WithCacheTTL: the TTL must not be negative (got %s)", ErrInvalid, ttl)
		}
		o.ttl = ttl
		return nil
	}
}

// New returns a store of presets in db. It does not touch the database;
// call EnsureSchema to create the table.
func New(db *sql.DB, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: New: db is nil", ErrInvalid)
	}
	o := options{table: "audit_preset", hint: true, ttl: DefaultCacheTTL}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Store{db: db, sql: buildStatements(o)}, nil
}

// columns are read back by every statement, in scanPreset's order.
const columns = `id, name, description, organization_id, action, data_classification,
	required_fields, default_values, validation, created_at, created_by, updated_at, updated_by`

const insertColumns = `(name, description, organization_id, action, data_classification,
	required_fields, default_values, validation, created_by)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

func buildStatements(o options) statements {
	id := pgx.Identifier{o.table}
	if o.schema != "" {
		id = pgx.Identifier{o.schema, o.table}
	}
	t := id.Sanitize()
	hint := ""
	if o.hint {
		hint = "/* auditpg:cache */ "
		if o.ttl > 0 {
			hint = "/* auditpg:cache ttl=" + o.ttl.String() + " */ "
		}
	}
	// The reads: the organization's row sorts before the default's
	// (false < true), so it wins on a shared name. For DefaultOrg both
	// sides of IN are '*' and only defaults come back.
	return statements{
		table:  t,
		schema: schemaSQL(o.table, t),
		get: hint + `SELECT ` + columns + ` FROM ` + t + `
	WHERE name = $1 AND organization_id IN ($2, '*')
	ORDER BY organization_id = '*'
	LIMIT 1`,
		list: hint + `SELECT DISTINCT ON (name) ` + columns + ` FROM ` + t + `
	WHERE organization_id IN ($1, '*')
	ORDER BY name, organization_id = '*'`,
		create: `INSERT INTO ` + t + ` ` + insertColumns + `
	ON CONFLICT (name, organization_id) DO NOTHING
	RETURNING ` + columns,
		upsert: `INSERT INTO ` + t + ` ` + insertColumns + `
	ON CONFLICT (name, organization_id) DO UPDATE SET
		description = EXCLUDED.description,
		action = EXCLUDED.action,
		data_classification = EXCLUDED.data_classification,
		required_fields = EXCLUDED.required_fields,
		default_values = EXCLUDED.default_values,
		validation = EXCLUDED.validation,
		updated_at = now(),
		updated_by = EXCLUDED.created_by
	RETURNING ` + columns,
		update: `UPDATE ` + t + ` SET
		description = COALESCE($3::text, description),
		action = COALESCE($4::text, action),
		data_classification = COALESCE($5::text, data_classification),
		required_fields = COALESCE($6::jsonb, required_fields),
		default_values = COALESCE($7::jsonb, default_values),
		validation = COALESCE($8::jsonb, validation),
		updated_at = now(),
		updated_by = $9
	WHERE name = $1 AND organization_id = $2
	RETURNING ` + columns,
		del: `DELETE FROM ` + t + ` WHERE name = $1 AND organization_id = $2 RETURNING ` + columns,
	}
}

// Get returns the preset called name that org sees: its own, else the
// default. org DefaultOrg asks for the default only. ErrNotFound when there
// is neither.
func (s *Store) Get(ctx context.Context, name, org string) (Preset, error) {
	var ps problems
	ps.identifier("name", name)
	ps.identifier("organization_id", org)
	if err := ps.err(); err != nil {
		return Preset{}, err
	}
	p, err := scanPreset(s.db.QueryRowContext(ctx, s.sql.get, name, org))
	if errors.Is(err, sql.ErrNoRows) {
		if org == DefaultOrg {
			return Preset{}, fmt.Errorf("%w: no default preset %q", ErrNotFound, name)
		}
		return Preset{}, fmt.Errorf("%w: no preset %q for organization %q, nor a default of that name", ErrNotFound, name, org)
	}
	if err != nil {
		return Preset{}, s.wrap(err, "get preset %q for organization %q", name, org)
	}
	return p, nil
}

// List returns the presets org sees, sorted by name: its own and the
// defaults it has not overridden. org DefaultOrg lists the defaults.
func (s *Store) List(ctx context.Context, org string) ([]Preset, error) {
	var ps problems
	ps.identifier("organization_id", org)
	if err := ps.err(); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.sql.list, org)
	if err != nil {
		return nil, s.wrap(err, "list presets for organization %q", org)
	}
	defer rows.Close()
	var list []Preset
	for rows.Next() {
		p, err := scanPreset(rows)
		if err != nil {
			return nil, s.wrap(err, "list presets for organization %q", org)
		}
		list = append(list, p)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err, "list presets for organization %q", org)
	}
	return list, nil
}

// Defaults returns the default presets, sorted by name.
func (s *Store) Defaults(ctx context.Context) ([]Preset, error) { return s.List(ctx, DefaultOrg) }

// Create inserts p for p.OrganizationID, which must not be DefaultOrg (see
// UpsertDefault). It never overwrites: ErrExists when the organization
// already has a preset of that name. It returns the row as stored.
func (s *Store) Create(ctx context.Context, p Preset) (Preset, error) {
	if err := checkOrgWrite(p.OrganizationID, "Create", "UpsertDefault"); err != nil {
		return Preset{}, err
	}
	out, err := s.insert(ctx, s.db, s.sql.create, p)
	if errors.Is(err, sql.ErrNoRows) {
		return Preset{}, fmt.Errorf("%w: organization %q already has a preset %q; use Update to change it", ErrExists, p.OrganizationID, p.Name)
	}
	return out, err
}

// Upsert creates p or, when p.OrganizationID already has a preset of that
// name, replaces its fields, recording p.CreatedBy as the updater and keeping
// its creator and creation time. p.OrganizationID must not be DefaultOrg.
func (s *Store) Upsert(ctx context.Context, p Preset) (Preset, error) {
	if err := checkOrgWrite(p.OrganizationID, "Upsert", "UpsertDefault"); err != nil {
		return Preset{}, err
	}
	return s.insert(ctx, s.db, s.sql.upsert, p)
}

// UpsertDefault creates or replaces the default preset p.Name, as Upsert
// does; p.OrganizationID must be DefaultOrg or empty.
func (s *Store) UpsertDefault(ctx context.Context, p Preset) (Preset, error) {
	if p.OrganizationID != "" && p.OrganizationID != DefaultOrg {
		return Preset{}, fmt.Errorf("%w: UpsertDefault writes defaults only, and the preset belongs to organization %q; use Upsert", ErrInvalid, p.OrganizationID)
	}
	p.OrganizationID = DefaultOrg
	return s.insert(ctx, s.db, s.sql.upsert, p)
}

// Update changes the fields set in patch of org's own preset called name and
// returns the updated row. ErrNotFound when org has no preset of that name,
// even if a default of that name exists: Create the organization's own to
// override a default. org must not be DefaultOrg.
func (s *Store) Update(ctx context.Context, name, org string, patch Patch) (Preset, error) {
	var ps problems
	ps.identifier("name", name)
	if err := ps.err(); err != nil {
		return Preset{}, err
	}
	if err := checkOrgWrite(org, "Update", "UpsertDefault"); err != nil {
		return Preset{}, err
	}
	if err := patch.validate(); err != nil {
		return Preset{}, err
	}
	args := []any{name, org, nullable(patch.Description), nullable(patch.Action), nullable(patch.DataClassification), nil, nil, nil, patch.UpdatedBy}
	var err error
	if patch.RequiredFields != nil {
		args[5], err = jsonText(patch.RequiredFields)
	}
	if err == nil && patch.DefaultValues != nil {
		args[6], err = jsonText(patch.DefaultValues)
	}
	if err == nil && patch.Validation != nil {
		args[7], err = jsonText(validationColumn(*patch.Validation))
	}
	if err != nil {
		return Preset{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	p, err := scanPreset(s.db.QueryRowContext(ctx, s.sql.update, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return Preset{}, fmt.Errorf("%w: organization %q has no preset %q of its own to update; Create one to override a default", ErrNotFound, org, name)
	}
	if err != nil {
		return Preset{}, s.wrap(err, "update preset %q for organization %q", name, org)
	}
	return p, nil
}

// Delete deletes org's own preset called name and returns it; ErrNotFound
// when org has none (a default of that name is not touched: see
// DeleteDefault). org must not be DefaultOrg.
func (s *Store) Delete(ctx context.Context, name, org string) (Preset, error) {
	if err := checkOrgWrite(org, "Delete", "DeleteDefault"); err != nil {
		return Preset{}, err
	}
	return s.delete(ctx, name, org)
}

// DeleteDefault deletes the default preset called name and returns it;
// ErrNotFound when there is none. Organizations' own presets of that name
// stay.
func (s *Store) DeleteDefault(ctx context.Context, name string) (Preset, error) {
	return s.delete(ctx, name, DefaultOrg)
}

func (s *Store) delete(ctx context.Context, name, org string) (Preset, error) {
	var ps problems
	ps.identifier("name", name)
	if err := ps.err(); err != nil {
		return Preset{}, err
	}
	p, err := scanPreset(s.db.QueryRowContext(ctx, s.sql.del, name, org))
	if errors.Is(err, sql.ErrNoRows) {
		return Preset{}, fmt.Errorf("%w: organization %q has no preset %q of its own to delete", ErrNotFound, org, name)
	}
	if err != nil {
		return Preset{}, s.wrap(err, "delete preset %q for organization %q", name, org)
	}
	return p, nil
}

// rowQuerier is a *sql.DB or a *sql.Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// insert validates p and runs an INSERT ... RETURNING statement with it.
// sql.ErrNoRows comes back unwrapped: ON CONFLICT DO NOTHING did nothing.
func (s *Store) insert(ctx context.Context, q rowQuerier, query string, p Preset) (Preset, error) {
	if p.Validation.isZero() {
		p.Validation = DefaultValidation()
	}
	if p.RequiredFields == nil {
		p.RequiredFields = []string{}
	}
	if p.DefaultValues == nil {
		p.DefaultValues = map[string]any{}
	}
	if err := p.Validate(); err != nil {
		return Preset{}, err
	}
	var fields, values, validation string
	var err error
	if fields, err = jsonText(p.RequiredFields); err == nil {
		if values, err = jsonText(p.DefaultValues); err == nil {
			validation, err = jsonText(validationColumn(p.Validation))
		}
	}
	if err != nil {
		return Preset{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	out, err := scanPreset(q.QueryRowContext(ctx, query, p.Name, p.Description, p.OrganizationID, p.Action,
		string(p.DataClassification), fields, values, validation, p.CreatedBy))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Preset{}, s.wrap(err, "write preset %q for organization %q", p.Name, p.OrganizationID)
	}
	return out, err
}

// checkOrgWrite refuses an organization id that an ordinary write may not
// use: empty, malformed, or DefaultOrg (whose writes go through the defaults
// API, named by instead).
func checkOrgWrite(org, op, instead string) error {
	var ps problems
	ps.identifier("organization_id", org)
	if err := ps.err(); err != nil {
		return err
	}
	if org == DefaultOrg {
		return fmt.Errorf("%w: %s does not write defaults (organization %q); use %s", ErrInvalid, op, DefaultOrg, instead)
	}
	return nil
}

// wrap adds what the store was doing to a database error, and a hint when
// the table is missing.
func (s *Store) wrap(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if pgerr.SQLState(err) == "42P01" { // undefined_table
		return fmt.Errorf("%s: table %s does not exist (create it with EnsureSchema or `auditpg preset seed`): %w", msg, s.sql.table, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

func nullable[T ~string](p *T) any {
	if p == nil {
		return nil
	}
	return string(*p)
}

// validationColumn is Validation as the validation column stores it: the
// camelCase keys that every client of the table reads and writes.
type validationColumn struct {
	MaxStringLength            int              `json:"maxStringLength"`
	AllowedDataClassifications []Classification `json:"allowedDataClassifications"`
	RequiredFields             []string         `json:"requiredFields"`
	MaxCustomFieldDepth        int              `json:"maxCustomFieldDepth"`
	AllowedEventVersions       []string         `json:"allowedEventVersions"`
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanPreset reads one row of columns. JSON columns written by other
// programs are decoded leniently (unknown validation keys are ignored,
// missing ones take their default) but must have the right shape.
func scanPreset(row scanner) (Preset, error) {
	var p Preset
	var description, updatedBy sql.NullString
	var classification string
	var fields, values, validation []byte
	if err := row.Scan(&p.ID, &p.Name, &description, &p.OrganizationID, &p.Action, &classification,
		&fields, &values, &validation, &p.CreatedAt, &p.CreatedBy, &p.UpdatedAt, &updatedBy); err != nil {
		return Preset{}, err
	}
	p.Description, p.UpdatedBy = description.String, updatedBy.String
	p.DataClassification = Classification(classification)
	p.Validation = DefaultValidation()
	if err := decodeColumn(fields, &p.RequiredFields, false); err != nil {
		return Preset{}, p.columnError("required_fields", err)
	}
	if err := decodeColumn(values, &p.DefaultValues, true); err != nil {
		return Preset{}, p.columnError("default_values", err)
	}
	if err := decodeColumn(validation, (*validationColumn)(&p.Validation), false); err != nil {
		return Preset{}, p.columnError("validation", err)
	}
	return p, nil
}

// decodeColumn decodes a JSON column; SQL NULL leaves dst as it is.
// useNumber keeps numbers exact (json.Number) in untyped values.
func decodeColumn(data []byte, dst any, useNumber bool) error {
	switch {
	case data == nil:
		return nil
	case useNumber:
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		return dec.Decode(dst)
	default:
		return json.Unmarshal(data, dst)
	}
}

func (p *Preset) columnError(column string, err error) error {
	return fmt.Errorf("preset %d (%q for organization %q): column %s does not hold the expected JSON: %w",
		p.ID, p.Name, p.OrganizationID, column, err)
}
