package main

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/auditpg/auditpg/internal/sysdeps"
	"github.com/auditpg/auditpg/internal/testdb"
	"github.com/redis/go-redis/v9"
)

// TestDemoRedis: with --redis, the demo's report shows the shared tier;
// a bad URL is refused naming the flag, without its password.
func TestDemoRedis(t *testing.T) {
	bin := testdb.Need(t, sysdeps.Redis())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("redis-server does not answer")
		}
	}

	out, err := runCLI(t, "demo", "--events", "200", "--workers", "2", "--redis", "redis://"+addr+"/0")
	if err != nil {
		t.Fatal(err)
	}
	checkWidth(t, "demo", out)
	for _, w := range []string{"Redis " + addr + " (keys auditpg:*), up;", "lookups: hits", "not worth the round trip", "versions moved"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo --redis: output lacks %q:\n%s", w, out)
		}
	}
	_, err = runCLI(t, "demo", "--events", "10", "--redis", "redis://u:s3cret@h:1/notadb")
	if err == nil || !strings.Contains(err.Error(), "--redis") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("demo with a bad --redis: %v; want an error naming --redis, without the password", err)
	}
}
