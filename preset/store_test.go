package preset

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/auditpg/auditpg"
)

var drivers = []string{"pgx", auditpg.DriverName}

func mustCreate(t *testing.T, s *Store, p Preset) Preset {
	t.Helper()
	out, err := s.Create(context.Background(), p)
	if err != nil {
		t.Fatalf("Create(%q, %q): %v", p.Name, p.OrganizationID, err)
	}
	return out
}

func mustDefault(t *testing.T, s *Store, p Preset) Preset {
	t.Helper()
	p.OrganizationID = DefaultOrg
	out, err := s.UpsertDefault(context.Background(), p)
	if err != nil {
		t.Fatalf("UpsertDefault(%q): %v", p.Name, err)
	}
	return out
}

// TestPriority covers every case of the merge: a name only in the defaults,
// in both, only the organization's, only another organization's; and
// organization ids that sort before and after '*' or look like patterns.
func TestPriority(t *testing.T) {
	for _, drv := range drivers {
		t.Run(drv, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t, openDB(t, drv))
			mustDefault(t, s, sample("only_default", ""))
			mustDefault(t, s, sample("shared", ""))
			for _, org := range []string{"org-a", "!", "%"} { // '!' sorts before '*'
				mustCreate(t, s, sample("shared", org))
			}
			mustCreate(t, s, sample("only_a", "org-a"))
			mustCreate(t, s, sample("only_b", "org-b"))

			gets := []struct {
				name, org string
				wantOrg   string // "" for ErrNotFound
			}{
				{"only_default", "org-a", DefaultOrg},
				{"only_default", "org-b", DefaultOrg},
				{"shared", "org-a", "org-a"},
				{"shared", "!", "!"},
				{"shared", "%", "%"},
				{"shared", "org-b", DefaultOrg},
				{"shared", "org-", DefaultOrg}, // a prefix of org-a is another organization
				{"shared", DefaultOrg, DefaultOrg},
				{"only_a", "org-a", "org-a"},
				{"only_a", "org-b", ""},
				{"only_a", DefaultOrg, ""},
				{"only_b", "org-a", ""},
				{"missing", "org-a", ""},
			}
			for _, g := range gets {
				p, err := s.Get(ctx, g.name, g.org)
				switch {
				case g.wantOrg == "" && !errors.Is(err, ErrNotFound):
					t.Errorf("Get(%q, %q) = %q of %q, %v; want ErrNotFound", g.name, g.org, p.Name, p.OrganizationID, err)
				case g.wantOrg != "" && err != nil:
					t.Errorf("Get(%q, %q): %v", g.name, g.org, err)
				case g.wantOrg != "" && (p.OrganizationID != g.wantOrg || p.Name != g.name):
					t.Errorf("Get(%q, %q) = %q of %q; want the one of %q", g.name, g.org, p.Name, p.OrganizationID, g.wantOrg)
				}
			}

			lists := map[string][]string{ // org -> "name@owner", sorted by name
				"org-a":    {"only_a@org-a", "only_default@*", "shared@org-a"},
				"org-b":    {"only_b@org-b", "only_default@*", "shared@*"},
				"!":        {"only_default@*", "shared@!"},
				"nobody":   {"only_default@*", "shared@*"},
				DefaultOrg: {"only_default@*", "shared@*"},
			}
			for org, want := range lists {
				list, err := s.List(ctx, org)
				if err != nil {
					t.Fatalf("List(%q): %v", org, err)
				}
				var got []string
				for _, p := range list {
					got = append(got, p.Name+"@"+p.OrganizationID)
				}
				if !slices.Equal(got, want) {
					t.Errorf("List(%q) = %v; want %v", org, got, want)
				}
			}
			defaults, err := s.Defaults(ctx)
			if err != nil || len(defaults) != 2 {
				t.Errorf("Defaults() = %d presets, %v; want 2", len(defaults), err)
			}
		})
	}
}

func TestCreateNeverOverwrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, "pgx"))
	first := sample("login", "org-a")
	first.Description = "first"
	created := mustCreate(t, s, first)
	if created.ID == 0 || created.CreatedBy != "tester" || created.UpdatedBy != "" || created.CreatedAt.IsZero() {
		t.Errorf("Create returned %+v; want the stored row with id, creator and creation time", created)
	}

	second := first
	second.Description = "second"
	if _, err := s.Create(ctx, second); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v; want ErrExists", err)
	}
	if got, _ := s.Get(ctx, "login", "org-a"); got.Description != "first" {
		t.Errorf("after a refused Create the description is %q; want %q", got.Description, "first")
	}
	// Another organization and the defaults have names of their own.
	mustCreate(t, s, sample("login", "org-b"))
	mustDefault(t, s, sample("login", ""))

	// Concurrent creates of one name: exactly one wins, the others are told.
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			p := sample("race", "org-a")
			p.Description = fmt.Sprint("writer ", i)
			_, errs[i] = s.Create(ctx, p)
		})
	}
	wg.Wait()
	winners := 0
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = fmt.Sprint("writer ", i)
		case !errors.Is(err, ErrExists):
			t.Errorf("writer %d: %v; want nil or ErrExists", i, err)
		}
	}
	got, err := s.Get(ctx, "race", "org-a")
	if winners != 1 || err != nil || got.Description != winner {
		t.Errorf("%d creates won, stored %q (%v); want exactly one, stored as written", winners, got.Description, err)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, "pgx"))
	orig := mustCreate(t, s, sample("login", "org-a"))
	mustDefault(t, s, sample("only_default", ""))

	desc := "changed"
	up, err := s.Update(ctx, "login", "org-a", Patch{Description: &desc, RequiredFields: []string{}, UpdatedBy: "editor"})
	if err != nil {
		t.Fatal(err)
	}
	if up.Description != desc || up.UpdatedBy != "editor" || len(up.RequiredFields) != 0 || up.RequiredFields == nil {
		t.Errorf("Update returned description %q, updatedBy %q, requiredFields %#v; want %q, editor, []", up.Description, up.UpdatedBy, up.RequiredFields, desc)
	}
	if up.ID != orig.ID || up.CreatedBy != orig.CreatedBy || !up.CreatedAt.Equal(orig.CreatedAt) || up.UpdatedAt.Before(orig.UpdatedAt) {
		t.Errorf("Update changed identity or creation: %+v -> %+v", orig, up)
	}
	if up.Action != orig.Action || up.DataClassification != orig.DataClassification ||
		fmt.Sprint(up.DefaultValues) != fmt.Sprint(orig.DefaultValues) || fmt.Sprint(up.Validation) != fmt.Sprint(orig.Validation) {
		t.Errorf("Update changed fields the patch left out: %+v -> %+v", orig, up)
	}

	v := DefaultValidation()
	v.MaxStringLength = 42
	phi := PHI
	up, err = s.Update(ctx, "login", "org-a", Patch{DataClassification: &phi, Validation: &v, DefaultValues: map[string]any{"n": 1}, UpdatedBy: "editor2"})
	if err != nil {
		t.Fatal(err)
	}
	if up.DataClassification != PHI || up.Validation.MaxStringLength != 42 || fmt.Sprint(up.DefaultValues) != "map[n:1]" || up.Description != desc {
		t.Errorf("second Update returned %+v", up)
	}

	for _, c := range []struct{ name, org string }{
		{"missing", "org-a"},
		{"login", "org-b"},
		{"only_default", "org-a"}, // the default is not the organization's own
	} {
		if _, err := s.Update(ctx, c.name, c.org, Patch{Description: &desc, UpdatedBy: "x"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update(%q, %q): %v; want ErrNotFound", c.name, c.org, err)
		}
	}
	if _, err := s.Update(ctx, "login", "org-a", Patch{UpdatedBy: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty patch: %v; want ErrInvalid", err)
	}
	if _, err := s.Update(ctx, "login", "org-a", Patch{Description: &desc}); !errors.Is(err, ErrInvalid) {
		t.Errorf("patch without UpdatedBy: %v; want ErrInvalid", err)
	}
}

func TestDeleteAndUpsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, "pgx"))
	mustDefault(t, s, sample("login", ""))
	own := mustCreate(t, s, sample("login", "org-a"))

	deleted, err := s.Delete(ctx, "login", "org-a")
	if err != nil || deleted.ID != own.ID {
		t.Fatalf("Delete = %+v, %v; want the deleted row", deleted, err)
	}
	if _, err := s.Delete(ctx, "login", "org-a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Delete: %v; want ErrNotFound", err)
	}
	if p, err := s.Get(ctx, "login", "org-a"); err != nil || !p.IsDefault() {
		t.Errorf("after Delete, Get = %q of %q, %v; want the default", p.Name, p.OrganizationID, err)
	}

	p := sample("login", "org-a")
	p.Description = "v1"
	first, err := s.Upsert(ctx, p)
	if err != nil || first.Description != "v1" || first.UpdatedBy != "" {
		t.Fatalf("Upsert (insert) = %+v, %v", first, err)
	}
	p.Description, p.CreatedBy = "v2", "someone-else"
	second, err := s.Upsert(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID || second.Description != "v2" || second.CreatedBy != "tester" || second.UpdatedBy != "someone-else" ||
		!second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("Upsert (replace) = %+v; want same id and creator, description v2, updatedBy someone-else", second)
	}

	if _, err := s.DeleteDefault(ctx, "login"); err != nil {
		t.Fatal(err)
	}
	if p, err := s.Get(ctx, "login", "org-b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after DeleteDefault, Get for another organization = %+v, %v; want ErrNotFound", p, err)
	}
	if p, err := s.Get(ctx, "login", "org-a"); err != nil || p.OrganizationID != "org-a" {
		t.Errorf("DeleteDefault touched an organization's own preset: %+v, %v", p, err)
	}
}

// TestDefaultsOnlyThroughDefaultsAPI: no ordinary write reaches '*'.
func TestDefaultsOnlyThroughDefaultsAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, "pgx"))
	mustDefault(t, s, sample("login", ""))
	desc := "hijacked"
	attempts := map[string]error{}
	_, attempts["Create"] = s.Create(ctx, sample("new", DefaultOrg))
	_, attempts["Upsert"] = s.Upsert(ctx, sample("login", DefaultOrg))
	_, attempts["Update"] = s.Update(ctx, "login", DefaultOrg, Patch{Description: &desc, UpdatedBy: "x"})
	_, attempts["Delete"] = s.Delete(ctx, "login", DefaultOrg)
	_, attempts["UpsertDefault for an organization"] = s.UpsertDefault(ctx, sample("login", "org-a"))
	for op, err := range attempts {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v; want ErrInvalid", op, err)
		}
	}
	list, err := s.List(ctx, DefaultOrg)
	if err != nil || len(list) != 1 || list[0].Description != "" {
		t.Errorf("defaults after refused writes: %+v, %v; want the one untouched default", list, err)
	}
	if _, err := s.List(ctx, "org-a"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(ctx, "org-a"); len(l) != 1 || !l[0].IsDefault() {
		t.Errorf("UpsertDefault for an organization wrote something: %+v", l)
	}
}

// TestConcurrentUpdates: writers patching the same preset at once all
// succeed, each gets back a consistent row, and patches of different fields
// are not lost.
func TestConcurrentUpdates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, auditpg.DriverName))
	mustCreate(t, s, sample("login", "org-a"))

	const writers, rounds = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				by := fmt.Sprintf("writer-%d", w)
				var patch Patch
				if w%2 == 0 { // even writers change the description, odd ones the action
					d := fmt.Sprintf("%s round %d", by, r)
					patch = Patch{Description: &d, UpdatedBy: by}
				} else {
					a := fmt.Sprintf("action.%d.%d", w, r)
					patch = Patch{Action: &a, UpdatedBy: by}
				}
				got, err := s.Update(ctx, "login", "org-a", patch)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s round %d: %w", by, r, err)
				case got.UpdatedBy != by:
					errs <- fmt.Errorf("%s round %d: returned row updated by %q", by, r, got.UpdatedBy)
				case patch.Description != nil && got.Description != *patch.Description,
					patch.Action != nil && got.Action != *patch.Action:
					errs <- fmt.Errorf("%s round %d: returned %q / %q, not what it wrote", by, r, got.Description, got.Action)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	final, err := s.Get(ctx, "login", "org-a")
	if err != nil {
		t.Fatal(err)
	}
	// Each writer's last patch is its final value; the description must be
	// some even writer's last, the action some odd writer's last.
	if !strings.HasSuffix(final.Description, fmt.Sprintf(" round %d", rounds-1)) || !strings.HasPrefix(final.Description, "writer-") {
		t.Errorf("final description %q is not an even writer's last write", final.Description)
	}
	if !strings.HasPrefix(final.Action, "action.") || !strings.HasSuffix(final.Action, fmt.Sprintf(".%d", rounds-1)) {
		t.Errorf("final action %q is not an odd writer's last write", final.Action)
	}
	if final.CreatedBy != "tester" {
		t.Errorf("creator changed to %q", final.CreatedBy)
	}
}

func TestValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, "pgx"))
	long := strings.Repeat("n", MaxNameLen+1)
	cases := []struct {
		name   string
		edit   func(*Preset)
		inMsg  string
		noSave bool
	}{
		{"empty name", func(p *Preset) { p.Name = "" }, "name must not be empty", true},
		{"long name", func(p *Preset) { p.Name = long }, "name is 256 characters", true},
		{"name with newline", func(p *Preset) { p.Name = "a\nb" }, "control characters", true},
		{"name with spaces around", func(p *Preset) { p.Name = " a" }, "spaces", true},
		{"invalid UTF-8", func(p *Preset) { p.Name = "a\xffb" }, "UTF-8", true},
		{"empty action", func(p *Preset) { p.Action = "" }, "action must not be empty", true},
		{"long action", func(p *Preset) { p.Action = long }, "action is 256", true},
		{"empty organization", func(p *Preset) { p.OrganizationID = "" }, "organization_id must not be empty", true},
		{"no author", func(p *Preset) { p.CreatedBy = "" }, "created_by", true},
		{"lower-case classification", func(p *Preset) { p.DataClassification = "internal" }, "data_classification must be one of", true},
		{"missing classification", func(p *Preset) { p.DataClassification = "" }, "data_classification", true},
		{"duplicate required field", func(p *Preset) { p.RequiredFields = []string{"a", "a"} }, "required_fields[1] repeats", true},
		{"empty required field", func(p *Preset) { p.RequiredFields = []string{""} }, "required_fields[0] must not be empty", true},
		{"empty default key", func(p *Preset) { p.DefaultValues = map[string]any{"": 1} }, "empty key", true},
		{"default value not JSON", func(p *Preset) { p.DefaultValues = map[string]any{"f": func() {}} }, "does not encode as JSON", true},
		{"long description", func(p *Preset) { p.Description = strings.Repeat("d", MaxDescriptionLen+1) }, "description", true},
		{"validation: bad classification", func(p *Preset) {
			p.Validation = DefaultValidation()
			p.Validation.AllowedDataClassifications = []Classification{"SECRET"}
		}, "validation.allowed_data_classifications[0]", true},
		{"validation: no versions", func(p *Preset) {
			p.Validation = DefaultValidation()
			p.Validation.AllowedEventVersions = []string{}
		}, "validation.allowed_event_versions", true},
		{"validation: negative depth", func(p *Preset) {
			p.Validation = DefaultValidation()
			p.Validation.MaxCustomFieldDepth = -1
		}, "max_custom_field_depth", true},
		{"validation: zero string length", func(p *Preset) { p.Validation = Validation{MaxStringLength: 0, RequiredFields: []string{}} }, "max_string_length", true},
	}
	for _, c := range cases {
		p := sample("p", "org-a")
		c.edit(&p)
		_, err := s.Create(ctx, p)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.inMsg) {
			t.Errorf("%s: Create: %v; want ErrInvalid saying %q", c.name, err, c.inMsg)
		}
	}
	if l, err := s.List(ctx, "org-a"); err != nil || len(l) != 0 {
		t.Errorf("invalid presets were written: %d, %v", len(l), err)
	}
	// Several problems are reported together.
	err := Preset{}.Validate()
	for _, field := range []string{"name", "organization_id", "action", "created_by", "data_classification"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate of the zero preset: %v; want it to name %s", err, field)
		}
	}
	// The zero Validation is the default one.
	p, err := s.Create(ctx, sample("p", "org-a"))
	if err != nil || fmt.Sprint(p.Validation) != fmt.Sprint(DefaultValidation()) {
		t.Errorf("zero Validation stored as %+v, %v; want the default", p.Validation, err)
	}
	// Bad arguments to reads.
	if _, err := s.Get(ctx, "", "org-a"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Get with empty name: %v; want ErrInvalid", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("List with empty organization: %v; want ErrInvalid", err)
	}
}

// TestSQLLookingNames: values are bound, never spliced into SQL.
func TestSQLLookingNames(t *testing.T) {
	for _, drv := range drivers {
		t.Run(drv, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t, openDB(t, drv))
			mustDefault(t, s, sample("safe", ""))
			name := `x'; DROP TABLE audit_preset; --`
			org := `a' OR '1'='1`
			p := sample(name, org)
			p.Action = `"; DELETE FROM audit_preset; --`
			p.Description = `$1 $$ \' /* */`
			p.RequiredFields = []string{`'); DROP TABLE x; --`}
			p.DefaultValues = map[string]any{`k'"`: `v'); --`}
			created := mustCreate(t, s, p)
			if created.Name != name || created.OrganizationID != org || created.Action != p.Action || created.Description != p.Description ||
				created.RequiredFields[0] != p.RequiredFields[0] || created.DefaultValues[`k'"`] != `v'); --` {
				t.Errorf("stored %+v; want the values as written", created)
			}
			got, err := s.Get(ctx, name, org)
			if err != nil || got.ID != created.ID {
				t.Fatalf("Get = %+v, %v", got, err)
			}
			for _, other := range []string{`' OR 1=1 --`, `a`, `%`, `*' OR '1'='1`} {
				if _, err := s.Get(ctx, name, other); !errors.Is(err, ErrNotFound) {
					t.Errorf("Get for organization %q: %v; want ErrNotFound", other, err)
				}
				if l, err := s.List(ctx, other); err != nil || len(l) != 1 || l[0].Name != "safe" {
					t.Errorf("List for organization %q = %d presets, %v; want only the default", other, len(l), err)
				}
			}
			act := `'; TRUNCATE audit_preset; --`
			if _, err := s.Update(ctx, name, org, Patch{Action: &act, UpdatedBy: `o'brien`}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Delete(ctx, name, org); err != nil {
				t.Fatal(err)
			}
			if l, err := s.List(ctx, DefaultOrg); err != nil || len(l) != 1 {
				t.Errorf("the table lost rows: %d, %v", len(l), err)
			}
		})
	}
}

// TestReadAfterWrite runs through the auditpg driver: after each write
// returns, Get and List return the new state. With the driver's result cache
// this guards its invalidation; without it, it guards the store's SQL.
func TestReadAfterWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, auditpg.DriverName)
	s := newStore(t, db)
	mustDefault(t, s, sample("login", ""))

	// check reads Get and List twice (the second read may be a cache hit)
	// and compares with what the last write left.
	check := func(step, wantDesc, wantOrg string) {
		t.Helper()
		for range 2 {
			p, err := s.Get(ctx, "login", "org-a")
			if err != nil || p.Description != wantDesc || p.OrganizationID != wantOrg {
				t.Fatalf("%s: Get = %q of %q, %v; want %q of %q", step, p.Description, p.OrganizationID, err, wantDesc, wantOrg)
			}
			l, err := s.List(ctx, "org-a")
			if err != nil || len(l) != 1 || l[0].Description != wantDesc || l[0].OrganizationID != wantOrg {
				t.Fatalf("%s: List = %+v, %v; want one preset %q of %q", step, l, err, wantDesc, wantOrg)
			}
		}
	}
	check("default only", "", DefaultOrg)
	for i := range 20 {
		p := sample("login", "org-a")
		p.Description = fmt.Sprint("created ", i)
		mustCreate(t, s, p)
		check("after Create", p.Description, "org-a")

		d := fmt.Sprint("updated ", i)
		if _, err := s.Update(ctx, "login", "org-a", Patch{Description: &d, UpdatedBy: "editor"}); err != nil {
			t.Fatal(err)
		}
		check("after Update", d, "org-a")

		p.Description = fmt.Sprint("upserted ", i)
		if _, err := s.Upsert(ctx, p); err != nil {
			t.Fatal(err)
		}
		check("after Upsert", p.Description, "org-a")

		if _, err := s.Delete(ctx, "login", "org-a"); err != nil {
			t.Fatal(err)
		}
		def := sample("login", "")
		def.Description = fmt.Sprint("default ", i)
		mustDefault(t, s, def)
		check("after Delete and UpsertDefault", def.Description, DefaultOrg)
	}

	// The test means something only if the reads were cached.
	snap, err := auditpg.Stats(db)
	if err != nil {
		t.Fatal(err)
	}
	// Each check reads Get and List twice: the second ones should be hits.
	const checks = 1 + 20*4
	if snap.Cache == nil || snap.Cache.Hits < checks {
		t.Fatalf("cache %+v: want at least %d hits, or the read-after-write checks did not exercise the cache", snap.Cache, checks)
	}
	t.Logf("cache: %d hits, %d misses, %d invalidations over %d checks", snap.Cache.Hits, snap.Cache.Misses, snap.Cache.Invalidations, checks)
}

// TestReadsAreCacheable checks the read SQL against the auditpg driver's
// classifier: cacheable, reading the table the writes write, with the hint.
func TestReadsAreCacheable(t *testing.T) {
	s, err := New(openDB(t, "pgx"), WithTable("tenant one", "audit_preset"))
	if err != nil {
		t.Fatal(err)
	}
	const table = "tenant one.audit_preset"
	for _, q := range []string{s.sql.get, s.sql.list} {
		st := auditpg.Classify(q)
		if !st.Cacheable || !slices.Equal(st.Reads, []string{table}) {
			t.Errorf("read %q: cacheable %v (%s), reads %v; want cacheable, reading %s", q, st.Cacheable, st.Uncacheable, st.Reads, table)
		}
		if !strings.HasPrefix(q, "/* auditpg:cache ttl=5m0s */ SELECT") {
			t.Errorf("read does not start with the cache hint: %q", q)
		}
	}
	for _, q := range []string{s.sql.create, s.sql.upsert, s.sql.update, s.sql.del} {
		if st := auditpg.Classify(q); !slices.Equal(st.Writes, []string{table}) || st.WritesUnknown {
			t.Errorf("write %q writes %v (unknown %v); want %s, so that it invalidates the reads", q, st.Writes, st.WritesUnknown, table)
		}
	}

	for _, c := range []struct {
		opts []Option
		want string
	}{
		{[]Option{WithCacheHint(false)}, "SELECT"},
		{[]Option{WithCacheTTL(30 * time.Second)}, "/* auditpg:cache ttl=30s */ SELECT"},
		{[]Option{WithCacheTTL(0)}, "/* auditpg:cache */ SELECT"},
	} {
		s, err := New(s.db, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{s.sql.get, s.sql.list} {
			if !strings.HasPrefix(q, c.want) {
				t.Errorf("read %q; want it to start with %q", q, c.want)
			}
		}
	}
	if _, err := New(s.db, WithCacheTTL(-time.Second)); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative TTL: %v; want ErrInvalid", err)
	}
	if _, err := New(s.db, WithTable("x", "")); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty table name: %v; want ErrInvalid", err)
	}
	if _, err := New(nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil db: %v; want ErrInvalid", err)
	}
}

func TestSeedDefaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, openDB(t, auditpg.DriverName))
	var want []string
	for _, p := range DefaultPresets() {
		p.CreatedBy = "seed"
		if err := p.Validate(); err != nil {
			t.Errorf("default preset %q: %v", p.Name, err)
		}
		want = append(want, p.Name)
	}
	for _, kind := range []string{"authentication", "authorization", "data_access", "data_change", "system", "security"} {
		if !slices.Contains(want, kind) {
			t.Errorf("no default preset for %s events", kind)
		}
	}
	for range 2 { // cache the empty list: the seeding transaction must invalidate it at commit
		if l, err := s.Defaults(ctx); err != nil || len(l) != 0 {
			t.Fatalf("Defaults before seeding = %d, %v", len(l), err)
		}
	}
	inserted, err := s.SeedDefaults(ctx, "seed")
	if err != nil || !slices.Equal(inserted, want) {
		t.Fatalf("first SeedDefaults = %v, %v; want %v", inserted, err, want)
	}
	edited := "edited by an operator"
	if _, err := s.UpsertDefault(ctx, Preset{Name: "system", Description: edited, Action: "system.event", DataClassification: Internal, CreatedBy: "ops"}); err != nil {
		t.Fatal(err)
	}
	inserted, err = s.SeedDefaults(ctx, "seed")
	if err != nil || len(inserted) != 0 {
		t.Errorf("second SeedDefaults = %v, %v; want nothing inserted", inserted, err)
	}
	defaults, err := s.Defaults(ctx)
	if err != nil || len(defaults) != len(want) {
		t.Fatalf("Defaults = %d, %v; want %d", len(defaults), err, len(want))
	}
	for _, p := range defaults {
		if p.Name == "system" && p.Description != edited {
			t.Errorf("seeding again overwrote the edited default: %q", p.Description)
		}
	}
	if _, err := s.SeedDefaults(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("SeedDefaults without author: %v; want ErrInvalid", err)
	}
}

// TestForeignRows: rows written by another program are read leniently where
// that is safe, and the table refuses JSON of the wrong shape.
func TestForeignRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "pgx")
	s := newStore(t, db)
	ins := `INSERT INTO ` + s.sql.table + ` (name, organization_id, action, data_classification, created_by, required_fields, validation)
		VALUES ('foreign', 'org-a', 'a', 'PUBLIC', 'ts', NULL, $1)`
	if _, err := db.ExecContext(ctx, ins, `{"maxStringLength": 7, "someNewKey": true}`); err != nil {
		t.Fatal(err)
	}
	p, err := s.Get(ctx, "foreign", "org-a")
	if err != nil || p.Validation.MaxStringLength != 7 || p.Validation.MaxCustomFieldDepth != 3 || p.RequiredFields != nil {
		t.Errorf("foreign row read as %+v, %v; want maxStringLength 7, other validation keys defaulted", p, err)
	}
	// What the store writes, other programs read: the column keeps camelCase keys.
	own := Preset{Name: "own", OrganizationID: "org-a", Action: "a", DataClassification: Public, CreatedBy: "go",
		Validation: Validation{MaxStringLength: 9, AllowedDataClassifications: []Classification{PHI}, RequiredFields: []string{"x"}, AllowedEventVersions: []string{"1.0"}}}
	if _, err := s.Create(ctx, own); err != nil {
		t.Fatal(err)
	}
	var column string
	if err := db.QueryRowContext(ctx, `SELECT validation->>'maxStringLength' || ' ' || (validation->'allowedDataClassifications')::text FROM `+s.sql.table+` WHERE name = 'own'`).Scan(&column); err != nil || column != `9 ["PHI"]` {
		t.Errorf("validation column written as %q, %v; want camelCase keys: 9 [\"PHI\"]", column, err)
	}
	for _, bad := range []string{`[1]`, `"x"`} {
		if _, err := db.ExecContext(ctx, `UPDATE `+s.sql.table+` SET validation = $1::jsonb`, bad); err == nil {
			t.Errorf("the table accepted validation %s", bad)
		}
	}
	if _, err := db.ExecContext(ctx, `UPDATE `+s.sql.table+` SET data_classification = 'SECRET'`); err == nil {
		t.Error("the table accepted classification SECRET")
	}
	if _, err := db.ExecContext(ctx, `UPDATE `+s.sql.table+` SET required_fields = '[1, 2]'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "foreign", "org-a"); err == nil || !strings.Contains(err.Error(), "required_fields") {
		t.Errorf("required_fields of numbers: %v; want an error naming the column", err)
	}
}

func TestMissingTable(t *testing.T) {
	t.Parallel()
	s, err := New(openDB(t, "pgx"), WithTable("", "no_such_preset_table"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(context.Background(), "x", "org-a")
	if err == nil || !strings.Contains(err.Error(), "EnsureSchema") {
		t.Errorf("Get on a missing table: %v; want a hint to create it", err)
	}
}

// TestCacheHint: through auditpg, the hinted reads are served from the cache
// and the unhinted ones are not.
func TestCacheHint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, hint := range []bool{true, false} {
		db := openDB(t, auditpg.DriverName)
		s := newStore(t, db, WithCacheHint(hint))
		mustCreate(t, s, sample("login", "org-a"))
		for range 3 {
			if _, err := s.Get(ctx, "login", "org-a"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.List(ctx, "org-a"); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := auditpg.Stats(db)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{true: 4, false: 0}[hint]; snap.Cache == nil || snap.Cache.Hits != want {
			t.Errorf("hint %v: cache %+v; want %d hits", hint, snap.Cache, want)
		}
	}
}

// TestOddTableName: the table name is quoted, never spliced in raw.
func TestOddTableName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t, "pgx")
	base := newStore(t, db) // for its schema, dropped at the end
	schema := strings.Trim(strings.SplitN(base.sql.table, ".", 2)[0], `"`)
	s, err := New(db, WithTable(schema, `preset "x"; DROP TABLE audit_preset; --`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureSchema(ctx); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, sample("login", "org-a"))
	if p, err := s.Get(ctx, "login", "org-a"); err != nil || p.OrganizationID != "org-a" {
		t.Errorf("Get = %+v, %v", p, err)
	}
	if _, err := base.List(ctx, "org-a"); err != nil {
		t.Errorf("the other table is gone: %v", err)
	}
}
