package sandbox

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// buildPlugin builds cmd/switchboard-cni (the plugin alone) for the test.
func buildPlugin(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "switchboard-cni")
	cmd := exec.Command("go", "build", "-o", out, "github.com/switchboard-dev/switchboard/cmd/switchboard-cni")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// newTestNetNS creates a node namespace and a sandbox in it; both are
// removed when the test ends.
func newTestNetNS(t *testing.T, dns DNSConfig) *NetNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the netns sandbox needs root (network namespaces, bind mounts)")
	}
	node := fmt.Sprintf("t%dx%d", os.Getpid(), time.Now().UnixNano()%1e6)
	t.Cleanup(func() {
		if _, err := RemoveNodeNamespaces(node); err != nil {
			t.Errorf("removing namespaces: %v", err)
		}
	})
	path, err := CreateNamedNetNS(NodeNamespaceName(node))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewNetNS(NetNSConfig{
		NodeName: node, NodeNetNS: path, StateDir: t.TempDir(),
		PodCIDR: netip.MustParsePrefix("10.250.0.0/24"), PluginBinary: buildPlugin(t), DNS: dns,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func testPod(name string, mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name)}}
	if mut != nil {
		mut(p)
	}
	return p
}

// runIn runs argv through Prepare (as the node does) and returns stdout.
func runIn(t *testing.T, s *NetNS, pod *corev1.Pod, argv ...string) string {
	t.Helper()
	path, err := exec.LookPath(argv[0])
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: path, Args: argv, Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}
	if err := s.Prepare(pod, cmd); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	return string(out)
}

func TestNetNSPodNamespaces(t *testing.T) {
	dnsIP := netip.MustParseAddr("10.96.0.10")
	s := newTestNetNS(t, DNSConfig{ClusterDNS: []netip.Addr{dnsIP}, ClusterDomain: "cluster.local"})
	ctx := context.Background()
	a := testPod("a", func(p *corev1.Pod) {
		p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}}
	})
	b := testPod("b", func(p *corev1.Pod) { p.Spec.Hostname = "bee"; p.Spec.Subdomain = "sub" })
	na, err := s.Setup(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := s.Setup(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.Setup(ctx, a); err != nil || again.IPs[0] != na.IPs[0] {
		t.Fatalf("Setup is idempotent per pod: got %v, %v; want %v", again, err, na)
	}
	if !s.PodCIDR().Contains(na.IPs[0]) || na.IPs[0] == nb.IPs[0] || na.HostIP != s.HostIP() {
		t.Fatalf("addresses: a %v, b %v, node %v", na, nb, s.HostIP())
	}

	t.Run("resolv.conf is kubelet's ClusterFirst", func(t *testing.T) {
		got := runIn(t, s, a, "cat", "/etc/resolv.conf")
		want := "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
		if got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("hosts has the pod's entry and hostAliases", func(t *testing.T) {
		got := runIn(t, s, a, "cat", "/etc/hosts")
		for _, line := range []string{na.IPs[0].String() + "\ta\n", "10.1.2.3\tfoo.local\tbar.local\n", "# Entries added by HostAliases.\n"} {
			if !strings.Contains(got, line) {
				t.Errorf("/etc/hosts lacks %q:\n%s", line, got)
			}
		}
		got = runIn(t, s, b, "cat", "/etc/hosts")
		if line := nb.IPs[0].String() + "\tbee.sub.default.svc.cluster.local\tbee\n"; !strings.Contains(got, line) {
			t.Errorf("/etc/hosts lacks %q:\n%s", line, got)
		}
	})
	t.Run("hostname is the pod's (spec.hostname wins)", func(t *testing.T) {
		if got := strings.TrimSpace(runIn(t, s, b, "hostname")); got != "bee" {
			t.Fatalf("hostname %q, want bee", got)
		}
		if got := strings.TrimSpace(runIn(t, s, a, "hostname")); got != "a" {
			t.Fatalf("hostname %q, want a", got)
		}
	})
	t.Run("eth0 holds the pod address", func(t *testing.T) {
		got := runIn(t, s, a, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
		if !strings.Contains(got, " "+na.IPs[0].String()+"/") {
			t.Fatalf("eth0: %s; want %s", got, na.IPs[0])
		}
	})
	t.Run("host mount namespace is untouched", func(t *testing.T) {
		host, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			t.Skip(err)
		}
		if strings.Contains(string(host), "svc.cluster.local") {
			t.Fatalf("the host's /etc/resolv.conf shows the pod's:\n%s", host)
		}
	})
	t.Run("pod to pod over the bridge", func(t *testing.T) {
		var l net.Listener
		if err := InNetNS(s.PodNetNS(a.UID), func() (err error) { l, err = net.Listen("tcp", ":0"); return err }); err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err == nil {
				_, _ = io.WriteString(c, c.RemoteAddr().String())
				c.Close()
			}
		}()
		port := l.Addr().(*net.TCPAddr).Port
		var c net.Conn
		if err := InNetNS(s.PodNetNS(b.UID), func() (err error) {
			c, err = net.DialTimeout("tcp", netip.AddrPortFrom(na.IPs[0], uint16(port)).String(), 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b2, _ := io.ReadAll(c)
		if host, _, _ := net.SplitHostPort(string(b2)); host != nb.IPs[0].String() {
			t.Fatalf("a saw the connection from %q, want b's %s", b2, nb.IPs[0])
		}
	})

	t.Run("teardown removes namespace and address", func(t *testing.T) {
		path := s.PodNetNS(a.UID)
		if err := s.Teardown(ctx, a); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", path, err)
		}
		if err := s.Teardown(ctx, a); err != nil {
			t.Fatalf("second teardown: %v", err)
		}
		dir := filepath.Join(s.cfg.StateDir, "cni", "ipam", NetworkName)
		if _, err := os.Stat(filepath.Join(dir, nb.IPs[0].String())); err != nil {
			t.Fatalf("b's allocation should be a file in %s: %v", dir, err)
		}
		if _, err := os.Stat(filepath.Join(dir, na.IPs[0].String())); !os.IsNotExist(err) {
			t.Fatalf("address %s still allocated: %v", na.IPs[0], err)
		}
	})
	t.Run("hostNetwork pods run in the node namespace", func(t *testing.T) {
		h := testPod("h", func(p *corev1.Pod) { p.Spec.HostNetwork = true; p.Spec.DNSPolicy = corev1.DNSClusterFirstWithHostNet })
		n, err := s.Setup(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if n.IPs[0] != s.HostIP() {
			t.Fatalf("hostNetwork pod got %v, want the node's %v", n.IPs, s.HostIP())
		}
		got := runIn(t, s, h, "ip", "-o", "-4", "addr", "show", "dev", DefaultBridge)
		if !strings.Contains(got, " "+s.HostIP().String()+"/") {
			t.Fatalf("%s: %s", DefaultBridge, got)
		}
		if err := s.Teardown(ctx, h); err != nil {
			t.Fatal(err)
		}
	})
}
