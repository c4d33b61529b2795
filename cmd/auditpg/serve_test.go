package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServeFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listen", "0.0.0.0:8080"}, "--listen-public"},
		{[]string{"serve", "--listen", ":8080"}, "every interface"},
		{[]string{"serve", "--listen", "db.example:8080"}, "not loopback"},
		{[]string{"serve", "--listen", "127.0.0.1"}, "host:port"},
		{[]string{"serve", "--listen", "127.0.0.1:99999"}, "port number"},
		{[]string{"serve", "--retention", "-1"}, "--retention -1"},
		{[]string{"serve", "--sample-every", "10ms"}, "--sample-every 10ms"},
		{[]string{"serve", "--json"}, "leave out --json"},
	} {
		_, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error saying %q", c.args, err, c.want)
		}
	}
}

func TestListenHosts(t *testing.T) {
	for _, l := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:8080", "127.0.0.2:80"} {
		if h, err := listenHosts(l, false); err != nil || len(h) == 0 {
			t.Errorf("%s: %v, %v; want loopback accepted, with its host names", l, h, err)
		}
	}
	if h, err := listenHosts("0.0.0.0:8080", true); err != nil || h != nil {
		t.Errorf("--listen-public: %v, %v; want any host", h, err)
	}
}

// syncBuffer is a buffer the command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe starts the command on a free port, reads a page, checks the
// guards (host, token, read-only) and that no password is printed or
// shown, and stops it as Ctrl-C does.
func TestServe(t *testing.T) {
	const secret = "s3cret-never-shown"
	dsn := testDSN
	switch {
	case strings.Contains(dsn, "://") && strings.Contains(dsn, "?"):
		dsn += "&password=" + secret
	case strings.Contains(dsn, "://"):
		dsn += "?password=" + secret
	default:
		dsn += " password=" + secret
	}
	var out, errOut syncBuffer
	root := newRootCmd(&globals{stdout: &out, stderr: &errOut})
	root.SetArgs([]string{"--dsn", dsn, "serve", "--listen", "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve stopped with %v, want nil after Ctrl-C", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop within 10 s of its context's end")
		}
	}()

	addr := regexp.MustCompile(`http://127\.0\.0\.1:\d+/`)
	var base string
	for deadline := time.Now().Add(20 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v (stderr %s)", err, errOut.String())
		default:
		}
		base = addr.FindString(out.String())
	}
	if base == "" {
		t.Fatalf("serve printed no address: %q", out.String())
	}
	if !strings.Contains(out.String(), "read-only") {
		t.Errorf("serve's first line %q does not say it is read-only", out.String())
	}

	get := func(path, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("", "")
	if code != http.StatusOK || !strings.Contains(body, `id="overall"`) {
		t.Errorf("GET /: %d, want the overview", code)
	}
	if code, body := get("cache", ""); code != http.StatusOK || !strings.Contains(body, `id="no-application"`) {
		t.Errorf("GET /cache: %d, want the page saying there is no application cache", code)
	}
	if code, _ := get("", "attacker.example"); code != http.StatusMisdirectedRequest {
		t.Errorf("GET / for another host (DNS rebinding): %d, want 421", code)
	}
	resp, err := http.PostForm(base+"maintenance", url.Values{"token": {"x"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST /maintenance on a read-only dashboard: %s, want 403", resp.Status)
	}
	for what, s := range map[string]string{"stdout": out.String(), "stderr": errOut.String(), "the overview": body} {
		if strings.Contains(s, secret) {
			t.Errorf("%s shows the password", what)
		}
	}
}

func TestDSNLabel(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://app:pw-secret@db.internal:6432/audit?sslmode=disable": "app@db.internal:6432/audit",
		"host=db user=app password=pw-secret dbname=audit":                "app@db:5432/audit",
	} {
		if got := dsnLabel(dsn); got != want || strings.Contains(got, "pw-secret") {
			t.Errorf("dsnLabel(%q) = %q, want %q", dsn, got, want)
		}
	}
}
