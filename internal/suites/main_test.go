package suites

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/auditpg/auditpg/internal/testdb"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", for the schemas and the comparisons
)

// testDSN points at the temporary cluster TestMain starts (or at
// AUDITPG_TEST_DATABASE_URL).
var testDSN string

func TestMain(m *testing.M) { os.Exit(testdb.Run(m, &testDSN)) }

// skipShort skips a test that runs the go command or a foreign suite.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a suite in a temporary module with the go command and the module proxy: skipped with -short")
	}
}

// repoRoot is the directory of auditpg's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", repo, err)
	}
	return repo
}

// goCommand is the go command of the toolchain that built this test, not
// whichever one PATH names: a test binary runs where it was built.
func goCommand() string {
	//lint:ignore SA1019 the test wants its own toolchain's go command
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// goEnv is the go command's environment: GOFLAGS replaces the environment's
// (-mod=mod lets the go command write a temporary module's go.mod and
// go.sum; auditpg's own module is only read, with -mod=readonly); GOWORK=off
// keeps a workspace around the directory out; GOTOOLCHAIN=local, a toolchain
// download. extra (KEY=value) comes last and wins.
func goEnv(mod string, extra ...string) []string {
	env := append(os.Environ(), "GOFLAGS=-mod="+mod, "GOWORK=off", "GOTOOLCHAIN=local")
	return append(env, extra...)
}

// runGo runs the go command in dir and returns its combined output.
func runGo(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("go %s (in %s): %w", strings.Join(args, " "), dir, err)
	}
	return out.String(), err
}

// module is a module of auditpg's build list, as `go list -m -json` gives it.
type module struct {
	Path, Version, Dir string
}

// requiredModule finds the version of path that auditpg's go.mod selects
// and its directory in the module cache, downloading it if it is not there.
func requiredModule(ctx context.Context, t *testing.T, path string) module {
	t.Helper()
	repo := repoRoot(t)
	for attempt := 0; ; attempt++ {
		out, err := runGo(ctx, repo, goEnv("readonly"), "list", "-m", "-json", path)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var m module
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("go list -m -json %s: %v\n%s", path, err, out)
		}
		if m.Dir != "" {
			return m
		}
		if attempt > 0 {
			t.Fatalf("%s@%s: not in the module cache after go mod download", path, m.Version)
		}
		if out, err := runGo(ctx, repo, goEnv("readonly"), "mod", "download", path); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
}

// writeModule makes a module at dir with the given go.mod (plus the
// replace of auditpg by this repository) and auditpg's go.sum, so that the
// go command checks the modules auditpg already uses without asking the
// checksum database again.
func writeModule(t *testing.T, dir, goMod string) {
	t.Helper()
	repo := repoRoot(t)
	goMod += "\nreplace github.com/auditpg/auditpg => " + repo + "\n"
	writeFile(t, filepath.Join(dir, "go.mod"), goMod)
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.sum"), string(sum))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withParams adds connection parameters to a DSN in either of the forms pgx
// accepts: a URL (postgres://...?k=v) or keyword/value (k=v k=v).
func withParams(t *testing.T, dsn string, kv ...string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("test DSN: %v", err)
		}
		q := u.Query()
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		dsn += " " + kv[i] + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(kv[i+1]) + "'"
	}
	return dsn
}

// replaceN replaces old by new in src, failing the test unless old occurs
// exactly n times: a rewrite of a foreign file that no longer matches says
// so instead of running the file unchanged.
func replaceN(t *testing.T, file, src, old, new string, n int) string {
	t.Helper()
	if got := strings.Count(src, old); got != n {
		t.Fatalf("rewriting %s: %q occurs %d times, want %d: the file changed, update the rewrite", file, old, got, n)
	}
	return strings.ReplaceAll(src, old, new)
}

// funcs parses a Go file and returns the source of each top-level function
// by name.
func funcs(t *testing.T, file, src string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("parsing %s: %v", file, err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil {
			out[fd.Name.Name] = src[fset.Position(fd.Pos()).Offset:fset.Position(fd.End()).Offset]
		}
	}
	return out
}

// editFunc rewrites the top-level function name of a Go file with edit.
func editFunc(t *testing.T, file, src, name string, edit func(string) string) string {
	t.Helper()
	body, ok := funcs(t, file, src)[name]
	if !ok {
		t.Fatalf("rewriting %s: no function %s: the file changed, update the rewrite", file, name)
	}
	return strings.Replace(src, body, edit(body), 1)
}

// suiteResult is what `go test -json` said of a suite.
type suiteResult struct {
	passed, failed, skipped []string          // test names, subtests included
	output                  map[string]string // each test's output
	all                     string            // every line of output, for a build failure
}

// runSuite runs `go test -json` with args in dir and collects the outcome
// of each test. err is the go command's (a failed test fails it too).
func runSuite(ctx context.Context, dir string, env []string, args ...string) (suiteResult, error) {
	args = append([]string{"test", "-json", "-count=1"}, args...)
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := runGo(ctx, dir, env, args...)
	r := suiteResult{output: map[string]string{}, all: out}
	var outputs = map[string]*strings.Builder{}
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var ev struct{ Action, Test, Output string }
		if dec.Decode(&ev) != nil {
			break // the end, or a build failure the go command printed as text (in all)
		}
		switch ev.Action {
		case "output":
			if ev.Test != "" {
				b := outputs[ev.Test]
				if b == nil {
					b = &strings.Builder{}
					outputs[ev.Test] = b
				}
				b.WriteString(ev.Output)
			}
		case "pass":
			if ev.Test != "" {
				r.passed = append(r.passed, ev.Test)
			}
		case "fail":
			if ev.Test != "" {
				r.failed = append(r.failed, ev.Test)
			}
		case "skip":
			if ev.Test != "" {
				r.skipped = append(r.skipped, ev.Test)
			}
		}
	}
	for name, b := range outputs {
		r.output[name] = b.String()
	}
	return r, err
}

// topLevel keeps the names of top-level tests.
func topLevel(names []string) []string {
	var out []string
	for _, n := range names {
		if !strings.Contains(n, "/") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// report logs a suite's outcome and returns the failures, each with its
// output cut to limit bytes.
func (r suiteResult) report(t *testing.T, limit int) string {
	t.Helper()
	t.Logf("%d tests and subtests passed, %d failed, %d skipped; top-level failures: %q",
		len(r.passed), len(r.failed), len(r.skipped), topLevel(r.failed))
	if len(r.skipped) > 0 {
		t.Logf("skipped: %q", r.skipped)
	}
	var b strings.Builder
	failed := slices.Clone(r.failed)
	slices.Sort(failed)
	for _, name := range failed {
		out := r.output[name]
		if len(out) > limit {
			out = out[:limit] + "...\n"
		}
		fmt.Fprintf(&b, "--- %s:\n%s", name, out)
	}
	return b.String()
}

// tail is the end of s, at most n bytes.
func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
