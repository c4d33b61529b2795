package consumertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// oldGenproto is a google.golang.org/genproto from before googleapis/api
// and googleapis/rpc became modules of their own: it still holds those
// packages. A module graph that selects it and the split modules at once
// has two modules for one import path, and the go command fails with
// "ambiguous import" for any package that needs one of them. Modules such
// as GORM's tests pull it in through old dependencies.
const oldGenproto = "google.golang.org/genproto@v0.0.0-20190819201941-24fa4b261c55"

const consumerMain = `package main

import (
	"fmt"

	"github.com/auditpg/auditpg"
	"github.com/auditpg/auditpg/otel"
)

func main() { fmt.Println(auditpg.DriverName, len(otel.Options())) }
`

// TestConsumerWithOldGenproto makes a module that imports auditpg and its
// OpenTelemetry observer, tidies it, then adds the old monolithic genproto
// to its requirements, as a consumer with old dependencies has it, and
// checks that go mod tidy and go build still succeed without the consumer
// requiring a newer genproto by hand. That holds as long as the packages a
// consumer imports need none of genproto's packages (no gRPC): the
// exporters are in otel/otelsetup, which this consumer does not import.
//
// It runs the go command that built the test, with the module proxy of the
// environment: skipped with -short.
func TestConsumerWithOldGenproto(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go mod tidy against the module proxy: skipped with -short")
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", repo, err)
	}
	dir := t.TempDir()
	goMod := "module example.com/consumer\n\ngo 1.26.0\n\nrequire github.com/auditpg/auditpg v0.0.0\n\n" +
		"replace github.com/auditpg/auditpg => " + repo + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(consumerMain), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The go command of the toolchain that built this test, not whichever
	// one PATH names: a test binary runs where it was built.
	//lint:ignore SA1019 the test wants its own toolchain's go command
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, goCmd, args...)
		cmd.Dir = dir
		// GOFLAGS replaces the environment's: -mod=mod lets the go command
		// update go.mod and go.sum. GOWORK=off keeps a workspace around the
		// temporary directory out; GOTOOLCHAIN=local, a toolchain download.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			goModNow, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
			t.Fatalf("go %s: %v\n%s\ngo.mod:\n%s", strings.Join(args, " "), err, out.String(), goModNow)
		}
		return out.String()
	}

	run("mod", "tidy")
	run("mod", "edit", "-require="+oldGenproto)
	run("mod", "tidy")
	run("build", "-o", os.DevNull, ".")
	for _, pkg := range strings.Fields(run("list", "-deps", ".")) {
		if strings.HasPrefix(pkg, "google.golang.org/grpc") || strings.HasPrefix(pkg, "google.golang.org/genproto") {
			t.Errorf("the consumer builds %s: importing auditpg and otel should need no gRPC", pkg)
		}
	}
}
