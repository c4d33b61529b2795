package preset_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/preset"
)

// The examples need a server: they compile, and run only by hand.

func ExampleNew() {
	db, err := auditpg.Open(os.Getenv("DATABASE_URL")) // reads cached, writes invalidate
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := preset.New(db, preset.WithCacheTTL(time.Minute))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := store.EnsureSchema(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := store.SeedDefaults(ctx, "setup"); err != nil {
		log.Fatal(err)
	}
}

func ExampleStore_Get() {
	var store *preset.Store // from preset.New
	p, err := store.Get(context.Background(), "authentication", "org-123")
	if errors.Is(err, preset.ErrNotFound) {
		fmt.Println("neither org-123 nor the defaults have it")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Action, p.DataClassification, p.IsDefault())
}

func ExampleStore_List() {
	var store *preset.Store // from preset.New
	list, err := store.List(context.Background(), "org-123")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range list {
		fmt.Println(p.Name, p.OrganizationID) // org-123's own, else "*"
	}
}

func ExampleStore_Defaults() {
	var store *preset.Store // from preset.New
	defaults, err := store.Defaults(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(defaults), "defaults")
}

func ExampleStore_Create() {
	var store *preset.Store // from preset.New
	_, err := store.Create(context.Background(), preset.Preset{
		Name:               "authentication",
		OrganizationID:     "org-123",
		Action:             "auth.sso",
		DataClassification: preset.Confidential,
		RequiredFields:     []string{"principalId", "identityProvider"},
		DefaultValues:      map[string]any{"retentionPolicy": "auth-logs-5y"},
		CreatedBy:          "admin-user",
	})
	if errors.Is(err, preset.ErrExists) {
		fmt.Println("org-123 already overrides authentication; use Update")
	}
}

func ExampleStore_Upsert() {
	var store *preset.Store // from preset.New
	p, err := store.Upsert(context.Background(), preset.Preset{
		Name: "custom-export", OrganizationID: "org-123", Action: "data.export",
		DataClassification: preset.PHI, CreatedBy: "admin-user",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.ID, p.UpdatedBy) // UpdatedBy is set when it replaced a preset
}

func ExampleStore_Update() {
	var store *preset.Store // from preset.New
	description := "Sign-in through the corporate IdP"
	p, err := store.Update(context.Background(), "authentication", "org-123", preset.Patch{
		Description: &description, // fields left nil keep their value
		UpdatedBy:   "admin-user",
	})
	if errors.Is(err, preset.ErrNotFound) {
		fmt.Println("org-123 has no authentication preset of its own")
		return
	}
	fmt.Println(p.Description, p.UpdatedAt)
}

func ExampleStore_Delete() {
	var store *preset.Store // from preset.New
	deleted, err := store.Delete(context.Background(), "authentication", "org-123")
	if errors.Is(err, preset.ErrNotFound) {
		fmt.Println("nothing to delete")
		return
	}
	fmt.Println("deleted", deleted.ID, "; org-123 now sees the default again")
}

func ExampleStore_UpsertDefault() {
	var store *preset.Store // from preset.New
	_, err := store.UpsertDefault(context.Background(), preset.Preset{
		Name: "billing", Action: "billing.charge", DataClassification: preset.Confidential,
		CreatedBy: "platform-team",
	})
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleStore_DeleteDefault() {
	var store *preset.Store // from preset.New
	if _, err := store.DeleteDefault(context.Background(), "billing"); err != nil {
		log.Fatal(err)
	}
}

func ExampleStore_SeedDefaults() {
	var store *preset.Store // from preset.New
	inserted, err := store.SeedDefaults(context.Background(), "setup")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("inserted", inserted) // empty the second time
}

func ExampleStore_Schema() {
	var store *preset.Store     // from preset.New
	fmt.Println(store.Schema()) // for a migration tool
}

func ExampleStore_EnsureSchema() {
	var store *preset.Store // from preset.New
	if err := store.EnsureSchema(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func ExampleDecode() {
	p, err := preset.Decode(strings.NewReader(`{
		"name": "login", "organization_id": "org-123", "action": "auth.login",
		"data_classification": "INTERNAL", "required_fields": ["principalId"],
		"validation": {"max_string_length": 500}, "created_by": "admin-user"}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Name, p.Validation.MaxStringLength, p.Validation.MaxCustomFieldDepth, p.Validate() == nil)
	_, err = preset.Decode(strings.NewReader(`{"required_fields": {"a": 1}}`))
	fmt.Println(errors.Is(err, preset.ErrInvalid))
	// Output:
	// login 500 3 true
	// true
}

func ExampleDecodeValidation() {
	v, err := preset.DecodeValidation([]byte(`{"allowed_event_versions": ["2.0"]}`))
	fmt.Println(v.AllowedEventVersions, v.MaxStringLength, err)
	// Output: [2.0] 10000 <nil>
}

func ExampleDecodeDefaultValues() {
	m, err := preset.DecodeDefaultValues([]byte(`{"retentionPolicy": "1y", "priority": 3}`))
	fmt.Println(m["retentionPolicy"], m["priority"], err)
	// Output: 1y 3 <nil>
}

func ExampleDefaultValidation() {
	v := preset.DefaultValidation()
	fmt.Println(v.MaxStringLength, v.AllowedDataClassifications, v.RequiredFields, v.MaxCustomFieldDepth, v.AllowedEventVersions)
	// Output: 10000 [PUBLIC INTERNAL CONFIDENTIAL PHI] [timestamp action status] 3 [1.0 1.1 2.0]
}

func ExampleDefaultPresets() {
	for _, p := range preset.DefaultPresets()[:3] {
		fmt.Println(p.Name, p.Action, p.DataClassification)
	}
	// Output:
	// authentication auth.login INTERNAL
	// authorization authz.decision INTERNAL
	// data_access data.read CONFIDENTIAL
}

func ExamplePreset_Validate() {
	err := preset.Preset{Name: "login", OrganizationID: "org-123", Action: "auth.login", DataClassification: "SECRET", CreatedBy: "me"}.Validate()
	fmt.Println(err)
	// Output: invalid preset: data_classification must be one of PUBLIC, INTERNAL, CONFIDENTIAL, PHI (got "SECRET")
}

func ExampleClassifications() {
	fmt.Println(preset.Classifications(), preset.Classification("PHI").Valid())
	// Output: [PUBLIC INTERNAL CONFIDENTIAL PHI] true
}

func ExampleClassificationList() {
	fmt.Println("--classification: " + preset.ClassificationList())
	// Output: --classification: PUBLIC, INTERNAL, CONFIDENTIAL, PHI
}

// A preset built from a default and overrides, as "auditpg preset create
// --file" does with its flags.
func ExamplePreset_Apply() {
	var base preset.Preset
	for _, d := range preset.DefaultPresets() {
		if d.Name == "data_export" {
			base = d
		}
	}
	phi := preset.PHI
	base.Apply(preset.Patch{
		DataClassification: &phi,
		RequiredFields:     []string{"principalId", "purposeOfUse"},
		// Description, Action, DefaultValues, Validation: nil, kept.
	})
	base.Name, base.OrganizationID, base.CreatedBy = "phi_export", "org-123", "me"
	fmt.Println(base.Action, base.DataClassification, base.RequiredFields, base.DefaultValues, base.Validate())
	// Output: data.export PHI [principalId purposeOfUse] map[retentionPolicy:data-export-7y] <nil>
}

func ExampleWithTable() {
	var db *sql.DB // any driver
	store, err := preset.New(db, preset.WithTable("config", "audit_preset"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Contains(store.Schema(), `"config"."audit_preset"`))
}

func ExampleWithCacheHint() {
	var db *sql.DB // from auditpg.Open
	// Reads always go to the server: for a tool that must see other
	// processes' writes at once.
	if _, err := preset.New(db, preset.WithCacheHint(false)); err != nil {
		log.Fatal(err)
	}
}

func ExampleWithCacheTTL() {
	var db *sql.DB // from auditpg.Open
	// Other processes' writes are seen within 30s at worst; this process's
	// own writes at once.
	if _, err := preset.New(db, preset.WithCacheTTL(30*time.Second)); err != nil {
		log.Fatal(err)
	}
}
