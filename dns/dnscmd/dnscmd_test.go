package dnscmd

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

func init() { dnstest.RegisterAnswer() }

// TestDefaultCorefile: --print-default-corefile prints CoreDNS's kube-dns
// Corefile, and it loads with every plugin of the binary, chained in
// CoreDNS's order.
func TestDefaultCorefile(t *testing.T) {
	var out bytes.Buffer
	cmd := NewCommand(func() string { return t.TempDir() })
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--print-default-corefile", "--cluster-domain", "example.internal"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if out.String() != DefaultCorefile("example.internal") {
		t.Fatalf("printed:\n%s", out.String())
	}
	for _, want := range []string{"kubernetes example.internal in-addr.arpa ip6.arpa {", "pods insecure", "fallthrough in-addr.arpa ip6.arpa",
		"ttl 30", "prometheus :9153", "forward . /etc/resolv.conf {", "max_concurrent 1000", "cache 30", "lameduck 5s", "reload", "loadbalance"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("default Corefile lacks %q", want)
		}
	}
	env := dnstest.QuietEnv()
	env.Store = cluster.NewStore()
	inst, err := dnsserver.NewInstance("Corefile", []byte(DefaultCorefile("")), dnsserver.Options{Env: env})
	if err != nil {
		t.Fatalf("the default Corefile does not load: %v", err)
	}
	var names []string
	for _, h := range inst.Configs[0].Handlers() {
		names = append(names, h.Name())
	}
	if got, want := strings.Join(names, " "), "prometheus errors loadbalance cache kubernetes forward"; got != want {
		t.Errorf("chain %q, want %q", got, want)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return fmt.Sprint(port)
		}
	}
	t.Fatal("no free port")
	return ""
}

const manifest = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  selector:
    app: web
  ports:
  - name: http
    port: 80
`

// TestRunWithManifests: with manifests, the kubernetes plugin answers for
// their services; SIGHUP reloads the Corefile (as CoreDNS).
func TestRunWithManifests(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, problems, err := NewStore(ctx, StoreConfig{Paths: []string{dir}, Logger: dnstest.QuietEnv().Logger})
	if err != nil || len(problems) > 0 {
		t.Fatalf("store: %v %v", err, problems)
	}
	svc, err := cluster.Get[*corev1.Service](store, "default", "web")
	if err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	path := filepath.Join(t.TempDir(), "Corefile")
	base := "cluster.local {\n bind 127.0.0.1\n kubernetes cluster.local\n}\n"
	if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	env := *dnstest.QuietEnv()
	env.Store = store
	done := make(chan error, 1)
	out := &dnstest.SafeBuffer{}
	go func() { done <- Run(ctx, Config{Filename: path, Port: port, Env: env, ReloadOnSIGHUP: true, Out: out}) }()
	t.Cleanup(func() { cancel(); <-done })

	addr := "127.0.0.1:" + port
	c := &dns.Client{Timeout: time.Second}
	ask := func(name string) *dns.Msg {
		deadline := time.Now().Add(10 * time.Second)
		for {
			r, _, err := c.Exchange(dnstest.Query(name, dns.TypeA), addr)
			if err == nil {
				return r
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", name, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	r := ask("web.default.svc.cluster.local.")
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != svc.Spec.ClusterIP {
		t.Fatalf("web.default.svc.cluster.local: %v, want %s", r.Answer, svc.Spec.ClusterIP)
	}
	if !strings.Contains(out.String(), "cluster.local.:"+port+" on 127.0.0.1") {
		t.Errorf("startup summary %q", out.String())
	}
	if r := ask("example.org."); r.Rcode != dns.RcodeRefused {
		t.Fatalf("example.org before reload: rcode %d", r.Rcode)
	}

	if err := os.WriteFile(path, []byte(base+"example.org {\n bind 127.0.0.1\n testanswer\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for ask("example.org.").Rcode != dns.RcodeSuccess {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
}
