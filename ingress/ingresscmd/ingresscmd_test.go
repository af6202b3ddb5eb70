package ingresscmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/ingress"
	"github.com/switchboard-dev/switchboard/ingress/acmeflags"
)

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

const manifests = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: switchboard
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: switchboard.dev/ingress
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
    - name: http
      port: 80
---
# Hand-written: the Service has no selector, the backend is the test's.
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
  - name: http
    port: %d
    protocol: TCP
endpoints:
  - addresses: ["127.0.0.1"]
    conditions:
      ready: true
`

const ingressYAML = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  tls:
    - hosts: [shop.example.test]
  rules:
    - host: shop.example.test
      http:
        paths:
          - path: %s
            pathType: Prefix
            backend:
              service:
                name: web
                port:
                  name: http
`

func curl(t *testing.T, args ...string) (code string, body string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (apt-get install curl)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "curl", append([]string{"-sS", "--noproxy", "*", "-w", "\n%{http_code}"}, args...)...).Output()
	s := string(out)
	i := strings.LastIndex(s, "\n")
	return s[i+1:], s[:i]
}

func TestCommand(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s %s proto=%s", r.Host, r.URL.Path, r.Header.Get("X-Forwarded-Proto"))
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { backend.Close() })
	go backend.Serve(ln)

	dir := t.TempDir()
	write := func(name, content string) {
		// Write then rename, as editors do, so the watcher sees whole files.
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("backend.yaml", fmt.Sprintf(manifests, ln.Addr().(*net.TCPAddr).Port))
	write("ingress.yaml", fmt.Sprintf(ingressYAML, "/"))

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	got := make(chan *ingress.Controller, 1)
	done := make(chan error, 1)
	o := &Options{Paths: []string{dir}, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", StatusAddr: "127.0.0.1:0", AccessLog: true,
		ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 32 << 10, MaxHeaders: 100}
	go func() {
		done <- Run(ctx, o, out, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *ingress.Controller) { got <- c })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var c *ingress.Controller
	select {
	case c = <-got:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not ready")
	}
	port := func(a net.Addr) string { return fmt.Sprint(a.(*net.TCPAddr).Port) }
	hp, sp := port(c.HTTPAddr()), port(c.HTTPSAddr())
	host := "shop.example.test"

	code, body := curl(t, "-k", "--resolve", host+":"+sp+":127.0.0.1", "https://"+host+":"+sp+"/cart")
	if code != "200" || body != "backend saw shop.example.test:"+sp+" /cart proto=https" {
		t.Errorf("https: %s %q", code, body)
	}
	// A TLS entry without a Secret: the default certificate, and the
	// redirect from HTTP.
	if code, _ := curl(t, "--resolve", host+":"+hp+":127.0.0.1", "http://"+host+":"+hp+"/cart"); code != "308" {
		t.Errorf("http: %s, want 308", code)
	}
	if !strings.Contains(out.String(), `"host":"shop.example.test:`+sp+`"`) || !strings.Contains(out.String(), `"status":200`) {
		t.Errorf("access log: %s", out.String())
	}
	resp, err := http.Get("http://" + c.StatusAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"ingress_controller_requests{", "go_goroutines", "ingress_controller_routing_table_syncs_total"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Editing the manifest changes the routing without restart.
	write("ingress.yaml", fmt.Sprintf(ingressYAML, "/shop"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := curl(t, "-k", "--resolve", host+":"+sp+":127.0.0.1", "https://"+host+":"+sp+"/cart")
		if code == "404" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edited Ingress not applied: /cart still %s", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := curl(t, "-k", "--resolve", host+":"+sp+":127.0.0.1", "https://"+host+":"+sp+"/shop/x"); code != "200" {
		t.Errorf("edited Ingress: /shop/x %s %q", code, body)
	}
}

func TestFlags(t *testing.T) {
	cases := []struct {
		o    Options
		want string
	}{
		{Options{HTTPAddr: ":0"}, "-f: give the manifests"},
		{Options{Paths: []string{"x"}}, "both empty"},
		{Options{Paths: []string{filepath.Join(t.TempDir(), "missing")}, HTTPAddr: "127.0.0.1:0"}, "manifests:"},
		{Options{Paths: []string{"x"}, HTTPAddr: "127.0.0.1:0", LoadBalance: "ewma"}, `--load-balance "ewma": must be one of round_robin, least_request`},
		{Options{Paths: []string{"x"}, HTTPAddr: "127.0.0.1:0", ACME: acmeflags.Options{Email: "ops@example.test"}}, "--acme-email needs --acme-directory"},
		{Options{Paths: []string{"x"}, HTTPAddr: "127.0.0.1:0", PublishStatusAddress: "lb.example.test"}, `--publish-status-address "lb.example.test": not an IP address`},
		{Options{Paths: []string{"x"}, HTTPAddr: "127.0.0.1:0", PublishService: "ingress-svc"}, `--publish-service "ingress-svc": want NAMESPACE/NAME of a Service`},
		{Options{Paths: []string{"x"}, HTTPAddr: "127.0.0.1:0", PublishService: "sys/Bad_Name"}, `--publish-service "sys/Bad_Name": want NAMESPACE/NAME of a Service`},
	}
	for _, c := range cases {
		err := Run(context.Background(), &c.o, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.want)
		}
	}
	cmd := NewCommand()
	for _, f := range []string{"filename", "http-addr", "https-addr", "status-addr", "load-balance", "acme-directory", "acme-email", "acme-state-dir", "acme-ca-file"} {
		if cmd.Flags().Lookup(f) == nil {
			t.Errorf("flag --%s missing", f)
		}
	}
}

// TestACMEFlagsReachTheController: --acme-directory (and the others)
// give the controller an ACME manager; without it there is none.
func TestACMEFlagsReachTheController(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "class.yaml"), []byte(`apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: switchboard
spec:
  controller: switchboard.dev/ingress
`), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(secret, []byte("c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args     []string
		wantACME string // the challenge answered; "": no ACME
	}{
		{nil, ""},
		{[]string{"--acme-directory", "https://127.0.0.1:1/dir", "--acme-email", "ops@example.test", "--acme-state-dir", filepath.Join(dir, "acme")}, "http-01"},
		{[]string{"--acme-directory", "https://127.0.0.1:1/dir", "--acme-state-dir", filepath.Join(dir, "acme"),
			"--acme-dns01-server", "127.0.0.1:1", "--acme-dns01-tsig-key", "acme", "--acme-dns01-tsig-secret-file", secret}, "dns-01"},
	} {
		o := &Options{}
		cmd := newCommand(o)
		if err := cmd.ParseFlags(append([]string{"-f", dir, "--http-addr", "127.0.0.1:0", "--https-addr", "", "--status-addr", "", "--access-log=false"}, c.args...)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		got := ""
		err := Run(ctx, o, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), func(ctl *ingress.Controller) {
			if m := ctl.ACME(); m != nil {
				got = m.Challenge()
			}
			cancel()
		})
		cancel()
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got != c.wantACME {
			t.Errorf("%v: ACME manager answering %q, want %q", c.args, got, c.wantACME)
		}
	}
}

// TestExamples loads examples/ingress as the command does: no manifest
// problem, and the shop's routes are in the table.
func TestExamples(t *testing.T) {
	for _, dir := range []string{"../../examples/ingress/shop", "../../examples/ingress/standalone"} {
		var problems syncBuffer
		log := slog.New(slog.NewTextHandler(&problems, &slog.HandlerOptions{Level: slog.LevelError}))
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan *ingress.Controller, 1)
		done := make(chan error, 1)
		o := &Options{Paths: []string{dir}, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"}
		go func() { done <- Run(ctx, o, io.Discard, log, func(c *ingress.Controller) { got <- c }) }()
		select {
		case c := <-got:
			for _, p := range []string{"/", "/healthz", "/any/path"} {
				r := c.Table().Match("shop.example.test", p)
				if r == nil || r.Backend.Service != "shop" || !r.TLS {
					t.Errorf("%s: shop.example.test%s: %+v", dir, p, r)
				}
			}
			if len(c.Table().Conflicts)+len(c.Table().Problems) > 0 {
				t.Errorf("%s: conflicts %v problems %v", dir, c.Table().Conflicts, c.Table().Problems)
			}
		case err := <-done:
			t.Fatalf("%s: %v", dir, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", dir, err)
		}
		if problems.String() != "" {
			t.Errorf("%s: %s", dir, problems.String())
		}
	}
}

// TestAnnotationsExample loads examples/ingress/annotations: every
// Ingress is accepted (no refusal logged), the canary is attached to the
// shop's route and the admin host is served.
func TestAnnotationsExample(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *ingress.Controller, 1)
	done := make(chan error, 1)
	o := &Options{Paths: []string{"../../examples/ingress/annotations"}, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0"}
	go func() { done <- Run(ctx, o, io.Discard, log, func(c *ingress.Controller) { got <- c }) }()
	select {
	case c := <-got:
		r := c.Table().Match("shop.example.test", "/")
		if r == nil || r.Backend.Service != "shop" || len(r.Canaries) != 1 || r.Canaries[0].Backend.Service != "shop-next" {
			t.Errorf("shop.example.test/: %+v", r)
		}
		if r := c.Table().Match("admin.example.test", "/stats/x"); r == nil || r.Backend.Service != "shop" {
			t.Errorf("admin.example.test/stats/x: %+v", r)
		}
		if n := len(c.Table().Ingresses); n != 3 {
			t.Errorf("%d Ingresses served, want 3", n)
		}
	case err := <-done:
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if logs.String() != "" {
		t.Errorf("warnings: %s", logs.String())
	}
}
