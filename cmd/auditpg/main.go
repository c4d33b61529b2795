// Command auditpg is the command line of the auditpg driver: a demo of the
// driver's report today, and the partition, preset and monitor commands.
//
// Every command takes --dsn and falls back to DATABASE_URL; commands that
// produce data take --json and then print one JSON document on stdout.
// Errors go to stderr with a non-zero exit status.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"

	"github.com/auditpg/auditpg"
	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := newRootCmd(&globals{stdout: os.Stdout, stderr: os.Stderr, isTerm: isTerminal(os.Stderr)}).ExecuteContext(ctx)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, errorText(err, interrupted))
		if interrupted {
			os.Exit(130) // the shell's code for a command stopped by SIGINT
		}
		os.Exit(1)
	}
}

// errorText is the one line (or block) the command prints for err: prefixed
// once with "auditpg:", with the lines that pgx repeats for each of its
// connection attempts (TLS, then plain) printed once, and, after Ctrl-C, a
// sentence that says the command was interrupted rather than a bare
// "context canceled".
func errorText(err error, interrupted bool) string {
	if interrupted && errors.Is(err, context.Canceled) {
		text := "auditpg: interrupted (Ctrl-C) before the command finished"
		var at interface{ interruptedAt() string } // how far it got, when the command can say
		if errors.As(err, &at) {
			text += ": " + at.interruptedAt()
		}
		return text
	}
	msg := strings.TrimPrefix(err.Error(), "auditpg: ")
	var lines []string
	seen := make(map[string]bool)
	for _, line := range strings.Split(msg, "\n") {
		if !seen[line] {
			seen[line] = true
			lines = append(lines, line)
		}
	}
	return "auditpg: " + strings.Join(lines, "\n")
}

// globals are the flags every command shares.
type globals struct {
	dsn    string
	json   bool
	stdout io.Writer
	stderr io.Writer
	isTerm bool // stderr is a terminal: show progress
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "auditpg",
		Short:         "The auditpg PostgreSQL driver's command line",
		SilenceUsage:  true,
		SilenceErrors: true, // main prints the error once, to stderr
		Version:       version(),
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see: %s --help)", err, c.CommandPath())
	})
	root.PersistentFlags().StringVar(&g.dsn, "dsn", "", "PostgreSQL connection string (URL or key=value); default $DATABASE_URL")
	root.PersistentFlags().BoolVar(&g.json, "json", false, "print one JSON document on stdout instead of text")
	for _, newCmd := range commands {
		root.AddCommand(newCmd(g))
	}
	return root
}

// commands are the top-level commands. Each command's file adds its
// constructor in an init function, so that adding a command touches no
// other file.
var commands = []func(*globals) *cobra.Command{newDemoCmd}

// dsnOrEnv returns --dsn, else $DATABASE_URL, else "".
func (g *globals) dsnOrEnv() string {
	if g.dsn != "" {
		return g.dsn
	}
	return os.Getenv("DATABASE_URL")
}

// openDB opens the database named by --dsn or DATABASE_URL through the
// auditpg driver, and checks that it answers.
func (g *globals) openDB(ctx context.Context, opts ...auditpg.Option) (*sql.DB, error) {
	dsn := g.dsnOrEnv()
	if dsn == "" {
		return nil, errors.New("no database: give --dsn or set DATABASE_URL")
	}
	db, err := auditpg.Open(dsn, opts...)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// group returns a command that only holds subs.
func group(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	cmd.AddCommand(subs...)
	return cmd
}

// show ends the progress line and prints v: as one JSON document with
// --json, else with text.
func show[T any](g *globals, v T, text func(io.Writer, T) error) error {
	g.progressDone()
	if g.json {
		return g.printJSON(v)
	}
	return text(g.stdout, v)
}

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // a terminal, not a web page: "->" stays "->"
	return enc.Encode(v)
}

// progress writes a one-line progress report, redrawn in place, when stderr
// is a terminal; elsewhere (CI logs, pipes) it stays silent.
func (g *globals) progress(format string, args ...any) {
	if g.isTerm {
		fmt.Fprintf(g.stderr, "\r\033[K"+format, args...)
	}
}

func (g *globals) progressDone() {
	if g.isTerm {
		fmt.Fprint(g.stderr, "\r\033[K")
	}
}

// version is the module version the binary was built from (a tag when
// installed with go install, else "(devel)"), with the VCS revision when the
// build recorded one.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
		if s.Key == "vcs.modified" && s.Value == "true" {
			v += " (modified)"
		}
	}
	return v
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
