package proxycmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// fakeMode is a mode registered by this test under a kernel mode's name
// (this package imports no real mode, so nothing touches the kernel).
type fakeMode struct {
	name string
	mc   serviceproxy.ModeConfig
	reg  *registry
}

type registry struct {
	mu       sync.Mutex
	cleanups []string
	syncs    chan *serviceproxy.State
	dryRun   []bool
}

var fakes = &registry{syncs: make(chan *serviceproxy.State, 100)}

func init() {
	for _, n := range []string{"nftables", "iptables", "userspace", "norender"} {
		serviceproxy.RegisterMode(n, func(mc serviceproxy.ModeConfig) (serviceproxy.Backend, error) {
			fakes.mu.Lock()
			fakes.dryRun = append(fakes.dryRun, mc.DryRun)
			fakes.mu.Unlock()
			if n == "norender" {
				return plainMode{&fakeMode{name: n, mc: mc, reg: fakes}}, nil
			}
			return &fakeMode{name: n, mc: mc, reg: fakes}, nil
		})
	}
}

func (f *fakeMode) Name() string { return f.name }
func (f *fakeMode) Sync(_ context.Context, st *serviceproxy.State) error {
	f.reg.syncs <- st
	return nil
}
func (f *fakeMode) Cleanup(context.Context) error {
	f.reg.mu.Lock()
	f.reg.cleanups = append(f.reg.cleanups, f.name)
	f.reg.mu.Unlock()
	return nil
}

// Render prints one line per service port: name, cluster IPs, port and
// endpoints.
func (f *fakeMode) Render(st *serviceproxy.State) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# mode %s node %s full %v\n", f.name, st.Node.Name, st.Full)
	var lines []string
	for n, sp := range st.Services {
		var eps []string
		for _, e := range st.Endpoints[n] {
			eps = append(eps, e.String())
		}
		lines = append(lines, fmt.Sprintf("%s %v %d -> %s", n, sp.ClusterIPs, sp.Port, strings.Join(eps, ",")))
	}
	slices.Sort(lines)
	b.WriteString(strings.Join(lines, "\n") + "\n")
	return b.Bytes(), nil
}

// plainMode has no Render.
type plainMode struct{ f *fakeMode }

func (p plainMode) Name() string                                           { return p.f.Name() }
func (p plainMode) Sync(ctx context.Context, st *serviceproxy.State) error { return p.f.Sync(ctx, st) }
func (p plainMode) Cleanup(ctx context.Context) error                      { return p.f.Cleanup(ctx) }

func (r *registry) takeCleanups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cleanups
	r.cleanups = nil
	slices.Sort(c)
	return c
}

const manifests = `apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
spec:
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-manual
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
  protocol: TCP
endpoints:
- addresses: ["10.244.0.5"]
  nodeName: n1
`

func writeManifests(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The tests share the fake registry: they do not run in parallel.

func TestDryRunRendersOneSyncWithTheModesDryRunner(t *testing.T) {
	dir := writeManifests(t)
	cmd := NewCommand()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs([]string{"--mode", "nftables", "-f", dir, "--dry-run", "--node-name", "n1", "--service-cidr", "10.96.0.0/16"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v (%s)", err, errb.String())
	}
	got := out.String()
	// The service got a cluster IP from --service-cidr (the store's
	// allocator) and its endpoint comes from the hand-written slice.
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "# mode nftables node n1 full true") {
		t.Fatalf("output:\n%s", got)
	}
	var ip string
	var port int
	var eps string
	if _, err := fmt.Sscanf(lines[1], "default/web:http [%s %d -> %s", &ip, &port, &eps); err != nil {
		t.Fatalf("line %q: %v", lines[1], err)
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(ip, "]"))
	if err != nil || !netip.MustParsePrefix("10.96.0.0/16").Contains(a) || port != 80 || eps != "10.244.0.5:8080" {
		t.Fatalf("line %q: ip %s port %d endpoints %s", lines[1], ip, port, eps)
	}
	fakes.mu.Lock()
	last := fakes.dryRun[len(fakes.dryRun)-1]
	fakes.mu.Unlock()
	if !last {
		t.Fatal("the backend was not built with ModeConfig.DryRun")
	}
	if c := fakes.takeCleanups(); len(c) != 0 {
		t.Fatalf("--dry-run cleaned up %v: it must change nothing", c)
	}
	select {
	case st := <-fakes.syncs:
		t.Fatalf("--dry-run called Sync (generation %d)", st.Generation)
	default:
	}
}

func TestDryRunNeedsADryRunner(t *testing.T) {
	dir := writeManifests(t)
	err := Run(context.Background(), &Options{Mode: "norender", Paths: []string{dir}, DryRun: true, NodeName: "n1"}, io.Discard, quiet())
	if err == nil || !strings.Contains(err.Error(), "cannot render") {
		t.Fatalf("err = %v", err)
	}
}

func TestCleanupRunsEveryMode(t *testing.T) {
	fakes.takeCleanups()
	if err := Run(context.Background(), &Options{Cleanup: true, Mode: "nftables"}, io.Discard, quiet()); err != nil {
		t.Fatal(err)
	}
	if got, want := fakes.takeCleanups(), []string{"iptables", "nftables", "norender", "userspace"}; !slices.Equal(got, want) {
		t.Fatalf("cleaned %v, want %v", got, want)
	}
}

func TestRunCleansOtherKernelModesAndSyncs(t *testing.T) {
	dir := writeManifests(t)
	fakes.takeCleanups()
	for len(fakes.syncs) > 0 {
		<-fakes.syncs
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, &Options{
			Mode: "nftables", Paths: []string{dir}, NodeName: "n1", ClusterCIDRs: []string{"10.244.0.0/16"},
			MinSyncPeriod: 10 * time.Millisecond, SyncPeriod: time.Hour,
		}, io.Discard, quiet())
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var st *serviceproxy.State
	select {
	case st = <-fakes.syncs:
	case <-time.After(20 * time.Second):
		t.Fatal("no sync within 20 s")
	}
	if len(st.Services) != 1 || len(st.ClusterCIDRs) != 1 || st.Node.Name != "n1" {
		t.Fatalf("state: services %d cidrs %v node %q", len(st.Services), st.ClusterCIDRs, st.Node.Name)
	}
	for _, eps := range st.Endpoints {
		if len(eps) != 1 || !eps[0].IsLocal {
			t.Fatalf("endpoints %v: the endpoint on n1 is local", eps)
		}
	}
	// As kube-proxy: the other kernel modes' leftovers are removed; not
	// this mode's, not userspace's.
	if got := fakes.takeCleanups(); !slices.Equal(got, []string{"iptables"}) {
		t.Fatalf("cleaned up %v, want [iptables]", got)
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "nope", "-f", "x"}, "unknown mode"},
		{[]string{"--mode", "nftables"}, "-f"},
		{[]string{"--mode", "nftables", "-f", "x", "--node-ip", "1.2.3"}, "--node-ip"},
		{[]string{"--mode", "nftables", "-f", "x", "--cluster-cidr", "10.0.0.0"}, "--cluster-cidr"},
		{[]string{"--mode", "nftables", "-f", "/nonexistent/manifests"}, "manifests"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := NewCommand()
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
