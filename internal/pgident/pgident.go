// Package pgident is the name of a table as every auditpg package takes and
// prints it: the schema and the name apart (in JSON {"schema": ...,
// "name": ...}), quoted for SQL only by pgx's Identifier.Sanitize.
package pgident

import "github.com/jackc/pgx/v5"

// Table names a table. An empty Schema means the one the search_path finds.
type Table struct {
	Schema string `json:"schema,omitempty"`
	Name   string `json:"name"`
}

// String returns the table's name quoted for SQL, schema-qualified when the
// schema is known.
func (t Table) String() string { return t.Ident().Sanitize() }

// Ident returns the table's name as a pgx identifier.
func (t Table) Ident() pgx.Identifier {
	if t.Schema == "" {
		return pgx.Identifier{t.Name}
	}
	return pgx.Identifier{t.Schema, t.Name}
}

// Sibling returns the table named name in t's schema.
func (t Table) Sibling(name string) Table { return Table{Schema: t.Schema, Name: name} }
