package main

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the documented JSON examples under testdata/json from the commands' output")

// snakeCase is the form of every JSON key the commands print, but for the
// keys of maps whose keys are data.
var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkJSON checks what a command printed with --json against the one JSON
// style of the command line, and against the command's documented example,
// testdata/json/<name>.json:
//   - one JSON document, without HTML escaping ("->" is printed as is);
//   - keys in snake_case, but under dataKeys, paths (as "cache.bypasses")
//     whose objects are maps keyed by data;
//   - no null anywhere: an empty list is [], an absent value is omitted;
//   - every key path, with its JSON type, appears in the documented example,
//     so that a renamed or retyped field fails here until the example (the
//     documentation) says so. With -update the example is rewritten from out.
func checkJSON(t *testing.T, name, out string, dataKeys ...string) {
	t.Helper()
	var doc any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("%s --json: not JSON: %v\n%s", name, err, out)
	}
	if dec.More() {
		t.Fatalf("%s --json: more than one JSON document:\n%s", name, out)
	}
	for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
		if strings.Contains(out, esc) {
			t.Errorf("%s --json: HTML escaping (%s) in the output", name, esc)
		}
	}
	got := make(map[string]string)
	for _, problem := range jsonShape(doc, "", dataKeys, got) {
		t.Errorf("%s --json: %s", name, problem)
	}

	path := filepath.Join("testdata", "json", name+".json")
	if *update {
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s --json: no documented example (%v); write it with go test -run %s -update", name, err, t.Name())
	}
	var example any
	dec = json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&example); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	documented := make(map[string]string)
	jsonShape(example, "", dataKeys, documented)
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range got {
			if !yield(p) {
				return
			}
		}
	}) {
		if want, ok := documented[p]; !ok {
			t.Errorf("%s --json: %s (%s) is not in the documented example %s: document it (go test -run %s -update)", name, p, got[p], path, t.Name())
		} else if want != got[p] {
			t.Errorf("%s --json: %s is %s, the documented example %s says %s", name, p, got[p], path, want)
		}
	}
}

// jsonShape records the JSON type of every key path under v in shape and
// returns what breaks the style.
func jsonShape(v any, path string, dataKeys []string, shape map[string]string) (problems []string) {
	switch v := v.(type) {
	case nil:
		problems = append(problems, path+" is null: print [] for an empty list, omit an absent value")
	case map[string]any:
		shape[path] = "object"
		isData := slices.Contains(dataKeys, path)
		for k, e := range v {
			if isData {
				k = "*"
			} else if !snakeCase.MatchString(k) {
				problems = append(problems, "key "+join(path, k)+" is not snake_case")
			}
			problems = append(problems, jsonShape(e, join(path, k), dataKeys, shape)...)
		}
	case []any:
		shape[path] = "array"
		for _, e := range v {
			problems = append(problems, jsonShape(e, path+"[]", dataKeys, shape)...)
		}
	case string:
		shape[path] = "string"
	case json.Number:
		shape[path] = "number"
	case bool:
		shape[path] = "boolean"
	}
	return problems
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
