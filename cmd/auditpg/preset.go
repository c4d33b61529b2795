package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/auditpg/auditpg/preset"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newPresetCmd) }

// presetFlags are the flags every preset subcommand shares.
type presetFlags struct {
	org, schema, table string
}

// fieldFlags are the fields create and update set from flags.
type fieldFlags struct {
	description, action, classification string
	requiredFields                      []string
	defaultValues, validation           string
	by                                  string
}

func newPresetCmd(g *globals) *cobra.Command {
	f := &presetFlags{}
	cmd := &cobra.Command{
		Use:   "preset",
		Short: "List, read and write audit presets (an organization's over the defaults)",
		Long: `preset manages the audit_preset table: named templates for audit events.
An organization (--org) sees its own presets merged over the defaults
(organization "*"), its own winning on a shared name. Defaults are written
only by "preset seed". Every command takes --schema and --table; the
commands about one organization's presets take --org.`,
	}
	cmd.PersistentFlags().StringVar(&f.schema, "schema", "", "schema of the preset table (default: the search_path)")
	cmd.PersistentFlags().StringVar(&f.table, "table", "audit_preset", "name of the preset table")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the presets an organization sees",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd.Context(), g, f, func(ctx context.Context, s *preset.Store) error {
				list, err := s.List(ctx, f.readOrg())
				if err != nil {
					return err
				}
				if g.json {
					if list == nil {
						list = []preset.Preset{}
					}
					return g.printJSON(list)
				}
				return writePresetTable(g.stdout, list)
			})
		},
	}
	get := &cobra.Command{
		Use:   "get NAME",
		Short: "Show the preset an organization sees under NAME (its own, else the default)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withStore(cmd.Context(), g, f, func(ctx context.Context, s *preset.Store) error {
				p, err := s.Get(ctx, args[0], f.readOrg())
				if err != nil {
					return err
				}
				return printPreset(g, p)
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete an organization's own preset (the default of that name stays)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := writeOrg(f.org, "delete"); err != nil {
				return err
			}
			return withStore(cmd.Context(), g, f, func(ctx context.Context, s *preset.Store) error {
				p, err := s.Delete(ctx, args[0], f.org)
				if errors.Is(err, preset.ErrNotFound) {
					return fmt.Errorf("%w: organization %q has no preset %q of its own to delete (list what it sees: auditpg preset list --org %s)", preset.ErrNotFound, f.org, args[0], f.org)
				}
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(p)
				}
				_, err = fmt.Fprintf(g.stdout, "deleted preset %q of organization %q\n", p.Name, p.OrganizationID)
				return err
			})
		},
	}
	for _, c := range []*cobra.Command{list, get} {
		c.Flags().StringVar(&f.org, "org", "", `organization id (default "*": the defaults only)`)
	}
	create, update := newPresetCreateCmd(g, f), newPresetUpdateCmd(g, f)
	for _, c := range []*cobra.Command{create, update, del} {
		c.Flags().StringVar(&f.org, "org", "", "organization id (required; not \"*\", the defaults, which only seed writes)")
	}
	cmd.AddCommand(list, get, create, update, del, newPresetSeedCmd(g, f))
	return cmd
}

// writeOrg checks the organization (--org) of a command that writes an
// organization's own preset.
func writeOrg(org, verb string) error {
	switch org {
	case "":
		return fmt.Errorf("%w: --org is required: the organization whose preset to %s", preset.ErrInvalid, verb)
	case preset.DefaultOrg:
		return fmt.Errorf("%w: --org %q names the defaults, which only \"auditpg preset seed\" writes; give an organization id", preset.ErrInvalid, preset.DefaultOrg)
	}
	return nil
}

func newPresetCreateCmd(g *globals, f *presetFlags) *cobra.Command {
	ff := &fieldFlags{}
	var file string
	cmd := &cobra.Command{
		Use:   "create [NAME]",
		Short: "Create an organization's preset; fails if it exists",
		Long: `create adds a preset for --org. The preset comes from the flags, or from
--file (a JSON document with the keys of "preset get --json"; - reads
standard input) with the flags overriding it. It never overwrites: when the
organization already has a preset of that name, it fails; use update.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := preset.Preset{}
			if file != "" {
				var err error
				if p, err = decodePresetFile(file, cmd.InOrStdin()); err != nil {
					return err
				}
			}
			if len(args) == 1 {
				p.Name = args[0]
			}
			if f.org != "" || p.OrganizationID == "" {
				p.OrganizationID = f.org
			}
			patch, err := ff.patch(cmd)
			if err != nil {
				return err
			}
			p.Apply(patch)
			if p.CreatedBy == "" || cmd.Flags().Changed("by") {
				p.CreatedBy = ff.by
			}
			if err := writeOrg(p.OrganizationID, "create"); err != nil {
				return err
			}
			if err := requireFields(p, file); err != nil {
				return err
			}
			return withStore(cmd.Context(), g, f, func(ctx context.Context, s *preset.Store) error {
				created, err := s.Create(ctx, p)
				if errors.Is(err, preset.ErrExists) {
					return fmt.Errorf("%w: organization %q already has a preset %q; change it with: auditpg preset update %s --org %s", preset.ErrExists, p.OrganizationID, p.Name, p.Name, p.OrganizationID)
				}
				if err != nil {
					return err
				}
				return printPreset(g, created)
			})
		},
	}
	ff.register(cmd)
	cmd.Flags().StringVar(&file, "file", "", "read the preset from this JSON file (- for standard input)")
	return cmd
}

func newPresetUpdateCmd(g *globals, f *presetFlags) *cobra.Command {
	ff := &fieldFlags{}
	return ff.register(&cobra.Command{
		Use:   "update NAME",
		Short: "Change the given fields of an organization's own preset",
		Long: `update changes, in one statement, only the fields whose flags are given, and
prints the updated preset. It fails when --org has no preset of that name of
its own (a default is overridden with create).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := writeOrg(f.org, "update"); err != nil {
				return err
			}
			patch, err := ff.patch(cmd)
			if err != nil {
				return err
			}
			if !ff.anyField(cmd) {
				return fmt.Errorf("%w: nothing to change: give at least one of --description, --action, --classification, --required-fields, --default-values, --validation", preset.ErrInvalid)
			}
			return withStore(cmd.Context(), g, f, func(ctx context.Context, s *preset.Store) error {
				p, err := s.Update(ctx, args[0], f.org, patch)
				if errors.Is(err, preset.ErrNotFound) {
					return fmt.Errorf("%w: organization %q has no preset %q of its own to update; to override the default, create one: auditpg preset create %s --org %s", preset.ErrNotFound, f.org, args[0], args[0], f.org)
				}
				if err != nil {
					return err
				}
				return printPreset(g, p)
			})
		},
	})
}

func newPresetSeedCmd(g *globals, f *presetFlags) *cobra.Command {
	var by string
	cmd := &cobra.Command{
		Use:   "seed",
		Short: "Create the preset table if needed and load the missing default presets",
		Long: `seed creates the preset table and its index if they do not exist, then
inserts the default presets (organization "*") that are missing: one for each
common kind of audit event. Defaults already there, edited or not, are left
as they are, so seeding twice changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd.Context(), g, f, func(ctx context.Context, s *preset.Store) error {
				if err := s.EnsureSchema(ctx); err != nil {
					return err
				}
				inserted, err := s.SeedDefaults(ctx, by)
				if err != nil {
					return err
				}
				if inserted == nil {
					inserted = []string{}
				}
				if g.json {
					return g.printJSON(map[string]any{"inserted": inserted})
				}
				if len(inserted) == 0 {
					_, err = fmt.Fprintln(g.stdout, "every default preset is already there; nothing inserted")
					return err
				}
				_, err = fmt.Fprintf(g.stdout, "inserted %d default presets: %s\n", len(inserted), strings.Join(inserted, ", "))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&by, "by", defaultAuthor(), "author recorded as created_by")
	return cmd
}

// readOrg is the organization list and get read for: --org, else the
// defaults.
func (f *presetFlags) readOrg() string {
	if f.org == "" {
		return preset.DefaultOrg
	}
	return f.org
}

// requireFields names the flag (or the --file key) of each field a new
// preset lacks, so that the store's own checks are left with the values.
func requireFields(p preset.Preset, file string) error {
	var missing []string
	for _, req := range []struct{ value, flag, key string }{
		{p.Name, "NAME (the argument)", "name"},
		{p.Action, "--action", "action"},
		{string(p.DataClassification), "--classification", "data_classification"},
		{p.CreatedBy, "--by", "created_by"},
	} {
		if req.value == "" {
			if file != "" {
				req.flag += fmt.Sprintf(" (or %q in --file)", req.key)
			}
			missing = append(missing, req.flag)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: a new preset needs %s", preset.ErrInvalid, strings.Join(missing, ", "))
	}
	return nil
}

// withStore opens the database and runs fn with a store on it.
func withStore(ctx context.Context, g *globals, f *presetFlags, fn func(context.Context, *preset.Store) error) error {
	if f.table == "" {
		return errors.New("--table must not be empty: give the preset table's name (default audit_preset)")
	}
	db, err := g.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	s, err := preset.New(db, preset.WithTable(f.schema, f.table))
	if err != nil {
		return err
	}
	return fn(ctx, s)
}

func (ff *fieldFlags) register(cmd *cobra.Command) *cobra.Command {
	fl := cmd.Flags()
	fl.StringVar(&ff.description, "description", "", "description")
	fl.StringVar(&ff.action, "action", "", "audit action, e.g. auth.login")
	fl.StringVar(&ff.classification, "classification", "", "data classification: "+preset.ClassificationList())
	fl.StringSliceVar(&ff.requiredFields, "required-fields", nil, "fields an event must carry, comma-separated")
	fl.StringVar(&ff.defaultValues, "default-values", "", `default values, a JSON object: '{"retentionPolicy":"1y"}'`)
	fl.StringVar(&ff.validation, "validation", "", `validation rules, a JSON object; keys left out keep their default: '{"max_string_length":5000}'`)
	fl.StringVar(&ff.by, "by", defaultAuthor(), "author recorded as created_by / updated_by")
	return cmd
}

// anyField says whether a flag that sets a field was given.
func (ff *fieldFlags) anyField(cmd *cobra.Command) bool {
	for _, name := range []string{"description", "action", "classification", "required-fields", "default-values", "validation"} {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// patch turns the flags given on the command line into a Patch; flags left
// out stay nil.
func (ff *fieldFlags) patch(cmd *cobra.Command) (preset.Patch, error) {
	changed := cmd.Flags().Changed
	p := preset.Patch{UpdatedBy: ff.by}
	if changed("description") {
		p.Description = &ff.description
	}
	if changed("action") {
		p.Action = &ff.action
	}
	if changed("classification") {
		c := preset.Classification(strings.ToUpper(ff.classification))
		p.DataClassification = &c
	}
	if changed("required-fields") {
		p.RequiredFields = append([]string{}, ff.requiredFields...)
	}
	if changed("default-values") {
		m, err := preset.DecodeDefaultValues([]byte(ff.defaultValues))
		if err != nil {
			return p, fmt.Errorf("--default-values: %w", err)
		}
		p.DefaultValues = m
	}
	if changed("validation") {
		v, err := preset.DecodeValidation([]byte(ff.validation))
		if err != nil {
			return p, fmt.Errorf("--validation: %w", err)
		}
		p.Validation = &v
	}
	return p, nil
}

func decodePresetFile(name string, stdin io.Reader) (preset.Preset, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return preset.Preset{}, err
		}
		defer f.Close()
		r = f
	}
	p, err := preset.Decode(r)
	if err != nil {
		return preset.Preset{}, fmt.Errorf("--file %s: %w", name, err)
	}
	return p, nil
}

// defaultAuthor is the author writes record when --by is not given: the
// login name, else "auditpg-cli".
func defaultAuthor() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "auditpg-cli"
}

func printPreset(g *globals, p preset.Preset) error {
	if g.json {
		return g.printJSON(p)
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
	owner := p.OrganizationID
	if p.IsDefault() {
		owner = "* (default)"
	}
	updated := "never"
	if p.UpdatedBy != "" {
		updated = fmt.Sprintf("%s by %s", p.UpdatedAt.Format("2006-01-02 15:04:05Z07:00"), p.UpdatedBy)
	}
	for _, kv := range [][2]string{
		{"name", p.Name},
		{"organization", owner},
		{"description", strings.Join(strings.Fields(p.Description), " ")}, // one line; --json has it as written
		{"action", p.Action},
		{"classification", string(p.DataClassification)},
		{"required fields", strings.Join(p.RequiredFields, ", ")},
		{"default values", jsonOneLine(p.DefaultValues)},
		{"validation", jsonOneLine(p.Validation)},
		{"created", fmt.Sprintf("%s by %s", p.CreatedAt.Format("2006-01-02 15:04:05Z07:00"), p.CreatedBy)},
		{"updated", updated},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	return tw.Flush()
}

func writePresetTable(w io.Writer, list []preset.Preset) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no presets (load the defaults with: auditpg preset seed)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tORGANIZATION\tACTION\tCLASSIFICATION\tREQUIRED FIELDS\tDESCRIPTION")
	for _, p := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, p.OrganizationID, p.Action, p.DataClassification,
			clip(strings.Join(p.RequiredFields, ","), 50), clip(strings.Join(strings.Fields(p.Description), " "), 60))
	}
	return tw.Flush()
}

// jsonOneLine renders v as compact JSON for a text line.
func jsonOneLine(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
