package preset

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultOrg is the organization id of the defaults: a preset with it is seen
// by every organization that has no preset of the same name.
const DefaultOrg = "*"

// Limits on what a preset may hold. Names, organization ids, actions, authors
// and field names are bounded by MaxNameLen characters (the varchar(255)
// columns); the JSON of the default values by MaxDefaultValuesBytes.
const (
	MaxNameLen            = 255
	MaxDescriptionLen     = 4000
	MaxDefaultValuesBytes = 64 << 10
	MaxRequiredFields     = 100
	// MaxCustomFieldDepthLimit bounds Validation.MaxCustomFieldDepth.
	MaxCustomFieldDepthLimit = 32
)

// Errors that callers test with errors.Is. Every error the package returns
// for one of these cases wraps the sentinel and says which preset or which
// field was at fault.
var (
	// ErrInvalid: the preset, a field or an argument breaks a rule; nothing
	// was written.
	ErrInvalid = errors.New("invalid preset")
	// ErrNotFound: no preset with that name for that organization.
	ErrNotFound = errors.New("preset not found")
	// ErrExists: Create found a preset with that name for that organization
	// and left it as it was.
	ErrExists = errors.New("preset already exists")
)

// Classification is the data classification of the audit events a preset
// describes.
type Classification string

// The allowed classifications, from the least to the most sensitive.
const (
	Public       Classification = "PUBLIC"
	Internal     Classification = "INTERNAL"
	Confidential Classification = "CONFIDENTIAL"
	PHI          Classification = "PHI"
)

// Classifications returns the allowed classifications, from the least to the
// most sensitive.
func Classifications() []Classification {
	return []Classification{Public, Internal, Confidential, PHI}
}

// Valid says whether c is one of [Classifications].
func (c Classification) Valid() bool { return slices.Contains(Classifications(), c) }

// Validation holds the rules an audit event made from a preset must pass.
// Its JSON keys are snake_case, as every auditpg document's; the validation
// column itself stores them in camelCase (maxStringLength...), the form
// other clients of the table write and read.
type Validation struct {
	MaxStringLength            int              `json:"max_string_length"`
	AllowedDataClassifications []Classification `json:"allowed_data_classifications"`
	RequiredFields             []string         `json:"required_fields"`
	MaxCustomFieldDepth        int              `json:"max_custom_field_depth"`
	AllowedEventVersions       []string         `json:"allowed_event_versions"`
}

// DefaultValidation returns the validation column's default: strings of at
// most 10000 characters, every classification, timestamp, action and status
// required, custom fields nested at most 3 deep, event versions 1.0, 1.1 and
// 2.0.
func DefaultValidation() Validation {
	return Validation{
		MaxStringLength:            10000,
		AllowedDataClassifications: Classifications(),
		RequiredFields:             []string{"timestamp", "action", "status"},
		MaxCustomFieldDepth:        3,
		AllowedEventVersions:       []string{"1.0", "1.1", "2.0"},
	}
}

// isZero reports whether v is the zero Validation, which writes take to mean
// DefaultValidation.
func (v Validation) isZero() bool {
	return v.MaxStringLength == 0 && v.AllowedDataClassifications == nil && v.RequiredFields == nil &&
		v.MaxCustomFieldDepth == 0 && v.AllowedEventVersions == nil
}

// Preset is one row of audit_preset. Its JSON keys are snake_case
// (organization_id, data_classification...), the form Decode reads and the
// CLI's --json and --file use.
type Preset struct {
	// ID, CreatedAt and UpdatedAt are set by the server; writes ignore them.
	ID          int64  `json:"id,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// OrganizationID is the owner; DefaultOrg for a default.
	OrganizationID     string         `json:"organization_id"`
	Action             string         `json:"action"`
	DataClassification Classification `json:"data_classification"`
	// RequiredFields are the fields an event must carry; nil is stored as [].
	RequiredFields []string `json:"required_fields"`
	// DefaultValues are the values an event gets when it does not set them;
	// nil is stored as {}. Numbers read back as json.Number, exactly.
	DefaultValues map[string]any `json:"default_values"`
	// Validation: the zero value is written as DefaultValidation().
	Validation Validation `json:"validation"`
	CreatedAt  time.Time  `json:"created_at,omitzero"`
	// CreatedBy is required by Create, Upsert and UpsertDefault; Upsert also
	// records it as the updater of a preset that already existed.
	CreatedBy string    `json:"created_by"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// UpdatedBy is empty until the preset is first updated.
	UpdatedBy string `json:"updated_by,omitempty"`
}

// IsDefault says whether p is a default, seen by every organization.
func (p Preset) IsDefault() bool { return p.OrganizationID == DefaultOrg }

// Patch is what Update changes: a nil field is left as it is. RequiredFields
// and DefaultValues follow the same rule: nil keeps, an empty non-nil value
// empties.
type Patch struct {
	Description        *string
	Action             *string
	DataClassification *Classification
	RequiredFields     []string
	DefaultValues      map[string]any
	Validation         *Validation
	// UpdatedBy is required: who made the change.
	UpdatedBy string
}

// Apply sets the fields of p that patch sets and leaves the others as they
// are, as Store.Update does to the stored row; nil RequiredFields and
// DefaultValues keep, empty non-nil ones empty. It neither validates nor
// touches the author fields (CreatedBy, UpdatedBy): it builds a preset from
// a base (a decoded file, a default) and overrides, to be written with
// Create or Upsert.
func (p *Preset) Apply(patch Patch) {
	if patch.Description != nil {
		p.Description = *patch.Description
	}
	if patch.Action != nil {
		p.Action = *patch.Action
	}
	if patch.DataClassification != nil {
		p.DataClassification = *patch.DataClassification
	}
	if patch.RequiredFields != nil {
		p.RequiredFields = patch.RequiredFields
	}
	if patch.DefaultValues != nil {
		p.DefaultValues = patch.DefaultValues
	}
	if patch.Validation != nil {
		p.Validation = *patch.Validation
	}
}

func (p Patch) empty() bool {
	return p.Description == nil && p.Action == nil && p.DataClassification == nil &&
		p.RequiredFields == nil && p.DefaultValues == nil && p.Validation == nil
}

// Validate checks p as Create would, the organization aside: names, action
// and author non-empty and bounded, a known classification, required fields
// that are distinct non-empty names, default values that encode as a JSON
// object of bounded size, and a sound Validation (or the zero one). The error
// wraps ErrInvalid and lists every problem.
func (p Preset) Validate() error {
	var ps problems
	ps.identifier("name", p.Name)
	ps.identifier("organization_id", p.OrganizationID)
	ps.identifier("action", p.Action)
	ps.identifier("created_by", p.CreatedBy)
	ps.description(p.Description)
	ps.classification("data_classification", p.DataClassification)
	ps.fieldNames("required_fields", p.RequiredFields)
	ps.defaultValues(p.DefaultValues)
	if !p.Validation.isZero() {
		ps.validation(p.Validation)
	}
	return ps.err()
}

// validate checks a patch as Update would.
func (p Patch) validate() error {
	var ps problems
	ps.identifier("updated_by", p.UpdatedBy)
	if p.empty() {
		ps.add("the patch changes nothing: set at least one field")
	}
	if p.Description != nil {
		ps.description(*p.Description)
	}
	if p.Action != nil {
		ps.identifier("action", *p.Action)
	}
	if p.DataClassification != nil {
		ps.classification("data_classification", *p.DataClassification)
	}
	ps.fieldNames("required_fields", p.RequiredFields)
	ps.defaultValues(p.DefaultValues)
	if p.Validation != nil {
		ps.validation(*p.Validation)
	}
	return ps.err()
}

// problems collects what is wrong with a preset, so that one error can say
// everything at once.
type problems []string

func (ps *problems) add(format string, args ...any) { *ps = append(*ps, fmt.Sprintf(format, args...)) }

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(ps, "; "))
}

// identifier checks a bounded one-line name: not empty, valid UTF-8, at most
// MaxNameLen characters, no control characters, no surrounding spaces.
func (ps *problems) identifier(field, s string) {
	switch n := utf8.RuneCountInString(s); {
	case s == "":
		ps.add("%s must not be empty", field)
	case !utf8.ValidString(s):
		ps.add("%s is not valid UTF-8", field)
	case n > MaxNameLen:
		ps.add("%s is %d characters long, at most %d allowed", field, n, MaxNameLen)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		ps.add("%s must not contain control characters (newlines, tabs...)", field)
	case strings.TrimSpace(s) != s:
		ps.add("%s must not begin or end with spaces", field)
	}
}

func (ps *problems) description(s string) {
	switch n := utf8.RuneCountInString(s); {
	case !utf8.ValidString(s):
		ps.add("description is not valid UTF-8")
	case n > MaxDescriptionLen:
		ps.add("description is %d characters long, at most %d allowed", n, MaxDescriptionLen)
	case strings.ContainsRune(s, 0):
		ps.add("description must not contain NUL characters")
	}
}

func (ps *problems) classification(field string, c Classification) {
	if !c.Valid() {
		ps.add("%s must be one of %s (got %q)", field, ClassificationList(), truncate(string(c), 40))
	}
}

// ClassificationList returns the allowed classifications as one line, the
// least sensitive first: "PUBLIC, INTERNAL, CONFIDENTIAL, PHI". Error
// messages and help texts name them with it.
func ClassificationList() string {
	var b strings.Builder
	for i, c := range Classifications() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(c))
	}
	return b.String()
}

// fieldNames checks a list of event field names: each a bounded identifier,
// no duplicates, at most MaxRequiredFields of them.
func (ps *problems) fieldNames(field string, names []string) {
	if len(names) > MaxRequiredFields {
		ps.add("%s has %d entries, at most %d allowed", field, len(names), MaxRequiredFields)
		return
	}
	for i, n := range names {
		ps.identifier(fmt.Sprintf("%s[%d]", field, i), n)
		if slices.Contains(names[:i], n) {
			ps.add("%s[%d] repeats %q", field, i, truncate(n, 40))
		}
	}
}

func (ps *problems) defaultValues(m map[string]any) {
	if m == nil {
		return
	}
	for k := range m {
		if k == "" {
			ps.add("default_values has an empty key")
		}
	}
	b, err := json.Marshal(m)
	switch {
	case err != nil:
		ps.add("default_values does not encode as JSON: %v", err)
	case len(b) > MaxDefaultValuesBytes:
		ps.add("default_values is %d bytes of JSON, at most %d allowed", len(b), MaxDefaultValuesBytes)
	}
}

func (ps *problems) validation(v Validation) {
	if v.MaxStringLength < 1 {
		ps.add("validation.max_string_length must be at least 1 (got %d)", v.MaxStringLength)
	}
	if len(v.AllowedDataClassifications) == 0 {
		ps.add("validation.allowed_data_classifications must list at least one of %s", ClassificationList())
	}
	for i, c := range v.AllowedDataClassifications {
		ps.classification(fmt.Sprintf("validation.allowed_data_classifications[%d]", i), c)
	}
	ps.fieldNames("validation.required_fields", v.RequiredFields)
	if v.MaxCustomFieldDepth < 0 || v.MaxCustomFieldDepth > MaxCustomFieldDepthLimit {
		ps.add("validation.max_custom_field_depth must be between 0 and %d (got %d)", MaxCustomFieldDepthLimit, v.MaxCustomFieldDepth)
	}
	if len(v.AllowedEventVersions) == 0 {
		ps.add("validation.allowed_event_versions must list at least one version")
	}
	ps.fieldNames("validation.allowed_event_versions", v.AllowedEventVersions)
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "..."
}

// Decode reads one preset from JSON, strictly: an unknown key, a value of the
// wrong type (required_fields not an array of strings, default_values not an
// object, validation not an object of Validation's keys and types) or trailing
// data is an error wrapping ErrInvalid. Validation keys left out keep their
// DefaultValidation value. Decode checks the shape only; the store validates
// the content when it writes.
func Decode(r io.Reader) (Preset, error) {
	p := Preset{Validation: DefaultValidation()}
	if err := decodeStrict(r, &p, ""); err != nil {
		return Preset{}, err
	}
	return p, nil
}

// DecodeValidation reads a validation object from JSON, strictly (see
// Decode); keys left out keep their DefaultValidation value.
func DecodeValidation(data []byte) (Validation, error) {
	v := DefaultValidation()
	if err := decodeStrict(bytes.NewReader(data), &v, "validation"); err != nil {
		return Validation{}, err
	}
	return v, nil
}

// DecodeDefaultValues reads default values from JSON: an object, with
// numbers kept exactly as json.Number.
func DecodeDefaultValues(data []byte) (map[string]any, error) {
	var m map[string]any
	if err := decodeStrict(bytes.NewReader(data), &m, "default_values"); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%w: default_values must be a JSON object, not null", ErrInvalid)
	}
	return m, nil
}

// decodeStrict decodes exactly one JSON value from r into v and turns
// decoding errors into ErrInvalid errors that name the offending field;
// field names are prefixed with what ("validation", say) unless it is "".
func decodeStrict(r io.Reader, v any, what string) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil {
		if _, tokErr := dec.Token(); tokErr != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	doc := what
	if doc == "" {
		doc = "the document"
	}
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr):
		field := typeErr.Field
		switch {
		case field == "":
			field = doc
		case what != "":
			field = what + "." + field
		}
		return fmt.Errorf("%w: %s must be %s, not a JSON %s", ErrInvalid, field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%w: %s is not valid JSON (at byte %d): %w", ErrInvalid, doc, syntaxErr.Offset, err)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		key := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if snake := snakeCase(key); snake != key {
			return fmt.Errorf("%w: %s has an unknown key %q: keys are snake_case (%q)", ErrInvalid, doc, key, snake)
		}
		return fmt.Errorf("%w: %s has an unknown key %q", ErrInvalid, doc, key)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %s is not valid JSON: empty or cut short", ErrInvalid, doc)
	default:
		return fmt.Errorf("%w: %s: %w", ErrInvalid, doc, err)
	}
}

// snakeCase returns a camelCase key in snake_case: organizationId becomes
// organization_id.
func snakeCase(key string) string {
	var b strings.Builder
	for i, r := range key {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// jsonKind names a Go kind the way a JSON author thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	}
	return "a " + kind
}
