package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/auditpg/auditpg/preset"
)

// TestPresetCommands runs every preset subcommand against the test
// database, in a table of its own so that other tests are not disturbed.
func TestPresetCommands(t *testing.T) {
	table := []string{"--table", "cli_preset_test"}
	db, err := auditpg.Open(testDSN)
	db = testdb.Opened(t, db, err)
	drop := func() { testdb.Exec(t, db, `DROP TABLE IF EXISTS cli_preset_test`) }
	drop() // a database that outlives the tests (AUDITPG_TEST_DATABASE_URL) may hold a previous run's
	defer drop()
	run := func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(append([]string{"preset"}, args...), table...)...)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("auditpg preset %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	var seeded struct{ Inserted []string }
	out := mustRun("seed", "--json", "--by", "cli-test")
	checkJSON(t, "preset-seed", out)
	if err := json.Unmarshal([]byte(out), &seeded); err != nil {
		t.Fatal(err)
	}
	if len(seeded.Inserted) != len(preset.DefaultPresets()) {
		t.Errorf("seed inserted %v; want every default", seeded.Inserted)
	}
	if out := mustRun("seed"); !strings.Contains(out, "nothing inserted") {
		t.Errorf("second seed printed %q; want nothing inserted", out)
	}

	checkJSON(t, "preset-create", mustRun("create", "authentication", "--org", "org-a", "--action", "auth.sso",
		"--description", "single sign-on -> the IdP", "--classification", "confidential", "--required-fields", "principalId,idp",
		"--default-values", `{"retentionPolicy":"5y"}`, "--validation", `{"max_string_length":500}`, "--by", "alice", "--json"), "default_values")
	if _, err := run("create", "authentication", "--org", "org-a", "--action", "x", "--classification", "PUBLIC"); !errors.Is(err, preset.ErrExists) ||
		!strings.Contains(err.Error(), "auditpg preset update authentication --org org-a") {
		t.Errorf("create of an existing preset: %v; want ErrExists naming the update command", err)
	}
	if _, err := run("create", "x", "--org", "org-a", "--action", "a", "--classification", "PUBLIC", "--default-values", `[1]`); !errors.Is(err, preset.ErrInvalid) {
		t.Errorf("create with --default-values an array: %v; want ErrInvalid", err)
	}
	// Errors name the command line's flags, never the Go API.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "x", "--org", "*", "--action", "a", "--classification", "PUBLIC"}, `only "auditpg preset seed" writes`},
		{[]string{"create", "x", "--action", "a", "--classification", "PUBLIC"}, "--org is required"},
		{[]string{"create", "x", "--org", "org-a", "--classification", "PUBLIC"}, "a new preset needs --action"},
		{[]string{"create", "x", "--org", "org-a", "--action", "a", "--by", ""}, "--classification, --by"},
		{[]string{"update", "authentication", "--description", "x"}, "--org is required"},
		{[]string{"update", "authentication", "--org", "org-a"}, "nothing to change: give at least one of --description"},
		{[]string{"delete", "authentication"}, "--org is required"},
	} {
		_, err := run(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("preset %s: %v; want an error saying %q", strings.Join(c.args, " "), err, c.want)
		}
		for _, goName := range []string{"Update", "Create one", "UpsertDefault", "WithTable", "organizationId", "createdBy"} {
			if err != nil && strings.Contains(err.Error(), goName) {
				t.Errorf("preset %s: %v names the Go API (%s)", strings.Join(c.args, " "), err, goName)
			}
		}
	}
	if _, err := runCLI(t, "preset", "list", "--table", ""); err == nil || !strings.Contains(err.Error(), "--table must not be empty") {
		t.Errorf("preset list --table '': %v; want --table named", err)
	}
	// Flags that mean nothing to a command are refused, not ignored.
	if _, err := runCLI(t, "preset", "seed", "--org", "acme"); err == nil || !strings.Contains(err.Error(), "unknown flag: --org") ||
		!strings.Contains(err.Error(), "auditpg preset seed --help") {
		t.Errorf("preset seed --org acme: %v; want unknown flag --org, pointing at the help", err)
	}
	camel := filepath.Join(t.TempDir(), "camel.json")
	if err := os.WriteFile(camel, []byte(`{"name":"c","action":"a","dataClassification":"PUBLIC"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := run("create", "--file", camel, "--org", "org-a"); err == nil || !strings.Contains(err.Error(), `keys are snake_case ("data_classification")`) {
		t.Errorf("create --file with a camelCase key: %v; want the snake_case key named", err)
	}

	// A preset from a file.
	file := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(file, []byte(`{"name":"from_file","action":"file.read","data_classification":"PUBLIC"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun("create", "--file", file, "--org", "org-a")

	var got preset.Preset
	out = mustRun("get", "authentication", "--org", "org-a", "--json")
	checkJSON(t, "preset-get", out, "default_values")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.OrganizationID != "org-a" || got.Action != "auth.sso" || got.DataClassification != preset.Confidential ||
		got.CreatedBy != "alice" || got.Validation.MaxStringLength != 500 || len(got.RequiredFields) != 2 {
		t.Errorf("get --json = %+v; want org-a's preset as created", got)
	}
	if out := mustRun("get", "authentication", "--org", "org-b"); !strings.Contains(out, "* (default)") {
		t.Errorf("get for org-b printed\n%s\nwant the default", out)
	}

	checkJSON(t, "preset-update", mustRun("update", "authentication", "--org", "org-a", "--action", "auth.sso", "--by", "bob", "--json"), "default_values")
	out = mustRun("update", "authentication", "--org", "org-a", "--description", "single sign-on", "--by", "bob")
	if !strings.Contains(out, "single sign-on") || !strings.Contains(out, "by bob") || !strings.Contains(out, "auth.sso") {
		t.Errorf("update printed\n%s\nwant the new description, the updater and the unchanged action", out)
	}
	if _, err := run("update", "nope", "--org", "org-a", "--description", "x"); !errors.Is(err, preset.ErrNotFound) ||
		!strings.Contains(err.Error(), "auditpg preset create nope --org org-a") {
		t.Errorf("update of a missing preset: %v; want ErrNotFound naming the create command", err)
	}

	var list []preset.Preset
	out = mustRun("list", "--org", "org-a", "--json")
	checkJSON(t, "preset-list", out, "[].default_values")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	owners := map[string]string{}
	for _, p := range list {
		owners[p.Name] = p.OrganizationID
	}
	if owners["authentication"] != "org-a" || owners["from_file"] != "org-a" || owners["system"] != preset.DefaultOrg ||
		len(list) != len(preset.DefaultPresets())+1 {
		t.Errorf("list --org org-a: %v; want org-a's two presets over the defaults", owners)
	}
	text := mustRun("list", "--org", "org-a")
	if !strings.HasPrefix(text, "NAME") || !strings.Contains(text, "auth.sso") {
		t.Errorf("list printed\n%s", text)
	}

	checkJSON(t, "preset-delete", mustRun("delete", "from_file", "--org", "org-a", "--json"), "default_values")
	if out := mustRun("delete", "authentication", "--org", "org-a"); !strings.Contains(out, "deleted") {
		t.Errorf("delete printed %q", out)
	}
	if _, err := run("delete", "authentication", "--org", "org-a"); !errors.Is(err, preset.ErrNotFound) {
		t.Errorf("second delete: %v; want ErrNotFound", err)
	}
	if out := mustRun("get", "authentication", "--org", "org-a"); !strings.Contains(out, "* (default)") {
		t.Errorf("after delete, get printed\n%s\nwant the default", out)
	}
}
