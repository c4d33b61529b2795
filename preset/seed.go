package preset

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// DefaultPresets returns the default presets that SeedDefaults loads: one
// for each common kind of audit event (authentication, authorization, data
// access, data change, data export, PHI access, system, security). Each has
// OrganizationID DefaultOrg, the default validation, and no author: the
// author is SeedDefaults' by.
func DefaultPresets() []Preset {
	d := func(name, description, action string, c Classification, required []string, values map[string]any) Preset {
		return Preset{
			Name: name, Description: description, OrganizationID: DefaultOrg, Action: action,
			DataClassification: c, RequiredFields: required, DefaultValues: values,
			Validation: DefaultValidation(),
		}
	}
	return []Preset{
		d("authentication", "Sign-in, sign-out, failed logins, MFA and session events.", "auth.login",
			Internal, []string{"principalId", "sessionContext"},
			map[string]any{"retentionPolicy": "auth-logs-1y"}),
		d("authorization", "Access decisions: permission granted or denied, role and policy changes.", "authz.decision",
			Internal, []string{"principalId", "targetResourceType", "targetResourceId", "outcomeDescription"},
			map[string]any{"retentionPolicy": "auth-logs-1y"}),
		d("data_access", "Reads of business records.", "data.read",
			Confidential, []string{"principalId", "targetResourceType", "targetResourceId"},
			map[string]any{"retentionPolicy": "data-access-3y"}),
		d("data_change", "Creation, update and deletion of business records.", "data.update",
			Confidential, []string{"principalId", "targetResourceType", "targetResourceId", "changes"},
			map[string]any{"retentionPolicy": "data-change-7y"}),
		d("data_export", "Exports and bulk downloads of records.", "data.export",
			Confidential, []string{"principalId", "targetResourceType", "outcomeDescription"},
			map[string]any{"retentionPolicy": "data-export-7y"}),
		d("phi_access", "Reads and changes of protected health information.", "phi.access",
			PHI, []string{"principalId", "targetResourceType", "targetResourceId", "purposeOfUse"},
			map[string]any{"retentionPolicy": "phi-7y"}),
		d("system", "Service start and stop, configuration changes, scheduled jobs.", "system.event",
			Internal, []string{},
			map[string]any{"principalId": "system", "retentionPolicy": "system-logs-2y"}),
		d("security", "Security alerts: suspicious activity, lockouts, key rotation.", "security.alert",
			Confidential, []string{"principalId", "severity"},
			map[string]any{"severity": "medium", "retentionPolicy": "security-logs-2y"}),
	}
}

// SeedDefaults inserts the DefaultPresets that are missing, as by, in one
// transaction, and returns the names it inserted. Defaults that already exist
// are left as they are, edits included, so seeding twice changes nothing.
func (s *Store) SeedDefaults(ctx context.Context, by string) (inserted []string, err error) {
	var ps problems
	ps.identifier("by", by)
	if err := ps.err(); err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("seed default presets: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, p := range DefaultPresets() {
		p.CreatedBy = by
		_, err := s.insert(ctx, tx, s.sql.create, p)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// already there
		case err != nil:
			return nil, fmt.Errorf("seed default presets: %w", err)
		default:
			inserted = append(inserted, p.Name)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("seed default presets: commit: %w", err)
	}
	return inserted, nil
}
