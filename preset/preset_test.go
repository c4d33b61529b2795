package preset

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeInvalidJSON(t *testing.T) {
	cases := []struct {
		name, doc, inMsg string
	}{
		{"syntax", `{"name": "a",}`, "not valid JSON"},
		{"cut short", `{"name": "a"`, "cut short"},
		{"empty", ``, "empty"},
		{"not an object", `[1, 2]`, "must be an object"},
		{"required fields an object", `{"required_fields": {"a": 1}}`, "required_fields must be an array"},
		{"required fields of numbers", `{"required_fields": [1]}`, "required_fields must be a string"},
		{"default values an array", `{"default_values": [1]}`, "default_values must be an object"},
		{"validation a string", `{"validation": "strict"}`, "validation must be an object"},
		{"validation length a string", `{"validation": {"max_string_length": "10"}}`, "validation.max_string_length must be a number"},
		{"validation length fractional", `{"validation": {"max_string_length": 1.5}}`, "validation.max_string_length"},
		{"validation unknown key", `{"validation": {"max_length": 10}}`, `unknown key "max_length"`},
		{"unknown key", `{"name": "a", "organisation": "x"}`, `unknown key "organisation"`},
		{"camelCase key", `{"name": "a", "organizationId": "x"}`, `unknown key "organizationId": keys are snake_case ("organization_id")`},
		{"camelCase validation key", `{"validation": {"maxStringLength": 10}}`, `keys are snake_case ("max_string_length")`},
		{"trailing data", `{"name": "a"} {"name": "b"}`, "trailing data"},
	}
	for _, c := range cases {
		_, err := Decode(strings.NewReader(c.doc))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.inMsg) {
			t.Errorf("%s: Decode(%s): %v; want ErrInvalid saying %q", c.name, c.doc, err, c.inMsg)
		}
	}
}

func TestDecode(t *testing.T) {
	p, err := Decode(strings.NewReader(`{
		"name": "login", "organization_id": "org-a", "action": "auth.login",
		"data_classification": "PHI", "required_fields": ["principalId"],
		"default_values": {"n": 12345678901234567890, "s": "x"},
		"validation": {"max_string_length": 50}, "created_by": "me"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("decoded preset does not validate: %v", err)
	}
	if p.Validation.MaxStringLength != 50 || p.Validation.MaxCustomFieldDepth != 3 || len(p.Validation.AllowedEventVersions) != 3 {
		t.Errorf("validation %+v; want max_string_length 50 and the other keys defaulted", p.Validation)
	}
	if n, ok := p.DefaultValues["n"].(json.Number); !ok || n.String() != "12345678901234567890" {
		t.Errorf("large number decoded as %#v; want it exact", p.DefaultValues["n"])
	}

	if _, err := DecodeDefaultValues([]byte(`null`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("DecodeDefaultValues(null): %v; want ErrInvalid", err)
	}
	if _, err := DecodeDefaultValues([]byte(`"x"`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("DecodeDefaultValues(string): %v; want ErrInvalid", err)
	}
	v, err := DecodeValidation([]byte(`{"allowed_event_versions": ["3.0"]}`))
	if err != nil || len(v.AllowedEventVersions) != 1 || v.MaxStringLength != 10000 {
		t.Errorf("DecodeValidation = %+v, %v; want versions [3.0], the rest defaulted", v, err)
	}
	if _, err := DecodeValidation([]byte(`{"allowed_data_classifications": "PHI"}`)); !errors.Is(err, ErrInvalid) ||
		!strings.Contains(err.Error(), "validation.allowed_data_classifications must be an array") {
		t.Errorf("DecodeValidation with a string list: %v; want ErrInvalid naming validation.allowed_data_classifications", err)
	}
	if _, err := DecodeValidation([]byte(`{`)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "validation is not valid JSON") {
		t.Errorf("DecodeValidation({): %v; want ErrInvalid saying validation is not valid JSON", err)
	}
}

func TestClassification(t *testing.T) {
	for _, c := range Classifications() {
		if !c.Valid() {
			t.Errorf("%s is not Valid", c)
		}
	}
	for _, c := range []Classification{"", "phi", "SECRET", "PHI "} {
		if c.Valid() {
			t.Errorf("%q is Valid", c)
		}
	}
}
