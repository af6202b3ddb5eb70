package testnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

const (
	tcpPort  = 8080
	udpPort  = 8081
	httpPort = 8082
	timeout  = 3 * time.Second
)

func serveAll(t *testing.T, hosts ...*Host) {
	for _, h := range hosts {
		h.ServeTCP(t, tcpPort)
		h.ServeUDP(t, udpPort)
		h.ServeHTTP(t, httpPort)
	}
}

// ask reaches to's servers from from over TCP, UDP and HTTP and returns
// the three answers (or the first error).
func ask(from *Host, to netip.Addr) ([]string, error) {
	tcp, err := from.AskTCP(netip.AddrPortFrom(to, tcpPort), timeout)
	if err != nil {
		return nil, err
	}
	udp, err := from.AskUDP(netip.AddrPortFrom(to, udpPort), timeout)
	if err != nil {
		return nil, err
	}
	web, err := from.AskHTTP(netip.AddrPortFrom(to, httpPort), "/", timeout)
	if err != nil {
		return nil, err
	}
	return []string{tcp, udp, web}, nil
}

func TestReachability(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	node := n.Node()
	a, b, c := n.AddPod(t, "pod-a"), n.AddPod(t, "pod-b"), n.AddPod(t, "pod-c")
	cl1, cl2 := n.AddClient(t, "client-1"), n.AddClient(t, "client-2")
	serveAll(t, node, a, b, c, cl1, cl2)

	cases := []struct {
		name     string
		from     *Host
		to       netip.Addr
		answerer *Host
	}{
		{"pod to pod across the bridge", a, b.IP, b},
		{"pod to another pod", c, a.IP, a},
		{"pod to itself", a, a.IP, a},
		{"pod to the node's gateway address", b, n.Gateway(), node},
		{"pod to the node IP", b, node.IP, node},
		{"node to pod", node, c.IP, c},
		{"node to its own node IP", node, node.IP, node},
		{"client to the node IP of its link", cl1, cl1.Gateway, node},
		{"second client to the node IP of its link", cl2, cl2.Gateway, node},
		{"second client to client 1's node IP, via its default route", cl2, node.IP, node},
		{"client to pod: the node forwards under the default routing", cl1, b.IP, b},
		{"pod to client", a, cl2.IP, cl2},
		{"client to client through the node", cl1, cl2.IP, cl2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ask(tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			for i, proto := range []string{"tcp", "udp", "http"} {
				if got[i] != tc.answerer.Name {
					t.Errorf("%s %s -> %s answered %q, want %q", proto, tc.from.Name, tc.to, got[i], tc.answerer.Name)
				}
			}
		})
	}
}

func TestAddressPlan(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	node := n.Node()
	// The node IP exists before any client is added.
	a := n.AddPod(t, "a")
	node.ServeTCP(t, tcpPort)
	if got, err := a.AskTCP(netip.AddrPortFrom(node.IP, tcpPort), timeout); err != nil || got != node.Name {
		t.Errorf("pod -> node IP %s before any client: %q, %v; want %q", node.IP, got, err, node.Name)
	}
	b := n.AddPod(t, "b")
	c1, c2 := n.AddClient(t, "c1"), n.AddClient(t, "c2")

	pods := n.Pods()
	if len(pods) != 2 || pods[0] != a || pods[1] != b {
		t.Errorf("Pods() = %v, want [a b]", pods)
	}
	if cl := n.Clients(); len(cl) != 2 || cl[0] != c1 || cl[1] != c2 {
		t.Errorf("Clients() = %v, want [c1 c2]", cl)
	}
	if ips := n.NodeIPs(); len(ips) != 2 || ips[0] != node.IP || ips[0] != c1.Gateway || ips[1] != c2.Gateway {
		t.Errorf("NodeIPs() = %v, want [%s %s] with Node().IP first", ips, c1.Gateway, c2.Gateway)
	}
	if n.Gateway() != n.PodCIDR().Addr().Next() {
		t.Errorf("Gateway() = %s, want the pod CIDR's first address", n.Gateway())
	}
	for _, h := range []*Host{a, b} {
		if !n.PodCIDR().Contains(h.IP) || h.Gateway != n.Gateway() || h.Prefix.Bits() != n.PodCIDR().Bits() {
			t.Errorf("pod %s: IP %s prefix %s gateway %s; want in %s via %s", h.Name, h.IP, h.Prefix, h.Gateway, n.PodCIDR(), n.Gateway())
		}
	}
	if a.IP == b.IP {
		t.Errorf("pods share %s", a.IP)
	}
	for _, h := range []*Host{c1, c2} {
		if !ClientRange.Contains(h.IP) || !h.Prefix.Contains(h.Gateway) {
			t.Errorf("client %s: IP %s prefix %s gateway %s", h.Name, h.IP, h.Prefix, h.Gateway)
		}
	}
	if c1.Prefix.Masked().Overlaps(c2.Prefix.Masked()) {
		t.Errorf("clients share a subnet: %s %s", c1.Prefix, c2.Prefix)
	}

	// What the kernel holds agrees with the Host values.
	ctx := context.Background()
	checks := []struct {
		host *Host
		args []string
		want []string
	}{
		{node, []string{"ip", "-o", "-4", "addr", "show", "dev", BridgeName}, []string{netip.PrefixFrom(n.Gateway(), n.PodCIDR().Bits()).String()}},
		{node, []string{"ip", "-o", "-4", "addr", "show", "dev", c2.HostLink}, []string{netip.PrefixFrom(c2.Gateway, c2.Prefix.Bits()).String()}},
		{a, []string{"ip", "-o", "-4", "addr", "show", "dev", "eth0"}, []string{a.Prefix.String()}},
		{a, []string{"ip", "-4", "route", "show", "default"}, []string{"via " + n.Gateway().String()}},
		{c1, []string{"ip", "-o", "-4", "addr", "show", "dev", "eth0"}, []string{c1.Prefix.String()}},
		{c1, []string{"ip", "-4", "route", "show", "default"}, []string{"via " + c1.Gateway.String()}},
		{node, []string{"ip", "-d", "link", "show", a.HostLink}, []string{"master " + BridgeName, "hairpin on"}},
		{node, []string{"ip", "-d", "link", "show", b.HostLink}, []string{"master " + BridgeName, "hairpin on"}},
	}
	for _, ck := range checks {
		out, err := ck.host.Exec(ctx, ck.args...)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, w := range ck.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: %s: output lacks %q:\n%s", ck.host.Name, strings.Join(ck.args, " "), w, out)
			}
		}
	}
	// The node has no default route: nothing leaves the node namespace.
	if out, err := node.Exec(ctx, "ip", "-4", "route", "show", "default"); err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("node default route: %q, %v; want none", out, err)
	}
	if out, err := node.Exec(ctx, "ip", "-6", "route", "show", "default"); err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("node IPv6 default route: %q, %v; want none", out, err)
	}
}

func TestNodeSysctls(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts Options
		want map[string]string
	}{
		{"defaults: forwarding and bridge netfilter on, redirects off", Options{}, map[string]string{
			"net.ipv4.ip_forward":                  "1",
			"net.bridge.bridge-nf-call-iptables":   "1",
			"net.bridge.bridge-nf-call-ip6tables":  "1",
			"net.ipv4.conf.all.send_redirects":     "0",
			"net/ipv4/conf/sbbr0/send_redirects":   "0",
			"net.ipv4.conf.default.send_redirects": "0",
		}},
		{"BrNetfilter true is the default", Options{BrNetfilter: true}, map[string]string{
			"net.bridge.bridge-nf-call-iptables": "1",
		}},
		{"DisableBrNetfilter", Options{DisableBrNetfilter: true}, map[string]string{
			"net.ipv4.ip_forward":                 "1",
			"net.bridge.bridge-nf-call-iptables":  "0",
			"net.bridge.bridge-nf-call-ip6tables": "0",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := New(t, tc.opts)
			for k, want := range tc.want {
				got, err := n.Node().Sysctl(k)
				if err != nil || got != want {
					t.Errorf("%s = %q, %v; want %q", k, got, err, want)
				}
			}
		})
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"IPv6 pod CIDR", Options{PodCIDR: netip.MustParsePrefix("fd00::/64")}, "PodCIDR"},
		{"pod CIDR too small", Options{PodCIDR: netip.MustParsePrefix("10.1.0.0/31")}, "PodCIDR"},
		{"pod CIDR overlaps clients", Options{PodCIDR: netip.MustParsePrefix("198.51.100.0/25")}, "overlaps"},
		{"node name not a DNS label", Options{NodeName: "Node_1"}, "NodeName"},
		{"IPv6 service CIDR", Options{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("fd00::/108")}}, "ServiceCIDRs[0]"},
		{"service CIDR overlaps the pod CIDR", Options{ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "ServiceCIDRs[0]"},
		{"invalid client route", Options{ClientRoutes: []netip.Prefix{{}}}, "ClientRoutes[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.setDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("setDefaults() = %v, want an error naming %q", err, tc.wantErr)
			}
		})
	}
	var o Options
	if err := o.setDefaults(); err != nil || o.PodCIDR != DefaultPodCIDR || o.NodeName != "node" || len(o.ServiceCIDRs) != len(DefaultServiceCIDRs) {
		t.Errorf("zero Options: %+v, %v", o, err)
	}
}

func TestHostNames(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	cases := []struct {
		name    string
		add     func(t *fakeTB, name string)
		host    string
		wantErr string
	}{
		{"pod name taken by the node", func(t *fakeTB, s string) { n.AddPod(t, s) }, "node", "already used"},
		{"client name not a DNS label", func(t *fakeTB, s string) { n.AddClient(t, s) }, "Bad_Name", "RFC 1123"},
		{"pod name with a slash", func(t *fakeTB, s string) { n.AddPod(t, s) }, "../x", "RFC 1123"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ft := runFake(t, func(ft *fakeTB) { tc.add(ft, tc.host) })
			if !strings.Contains(ft.fatal, tc.wantErr) {
				t.Errorf("fatal = %q, want it to contain %q", ft.fatal, tc.wantErr)
			}
		})
	}
	// A failed AddPod leaves the Net usable.
	p := n.AddPod(t, "ok")
	if !n.PodCIDR().Contains(p.IP) {
		t.Errorf("pod after failures got %s", p.IP)
	}
}

func TestClientRoutes(t *testing.T) {
	t.Parallel()
	external := netip.MustParseAddr("203.0.113.7")
	cases := []struct {
		name         string
		routes       []netip.Prefix
		podReachable bool
		extReachable bool
	}{
		{"nil: default route via the node", nil, true, true},
		{"empty: only the client's own subnet", []netip.Prefix{}, false, false},
		{"pod CIDR only", []netip.Prefix{DefaultPodCIDR}, true, false},
		{"external range only", []netip.Prefix{ExternalRange}, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := New(t, Options{ClientRoutes: tc.routes})
			p := n.AddPod(t, "p")
			cl := n.AddClient(t, "cl")
			p.ServeTCP(t, tcpPort)
			n.Node().ServeTCP(t, tcpPort)
			// The node IP of the client's own link is always on-link.
			if got, err := cl.AskTCP(netip.AddrPortFrom(cl.Gateway, tcpPort), timeout); err != nil || got != n.Node().Name {
				t.Errorf("client -> node IP: %q, %v", got, err)
			}
			got, err := cl.AskTCP(netip.AddrPortFrom(p.IP, tcpPort), timeout)
			switch {
			case tc.podReachable && (err != nil || got != p.Name):
				t.Errorf("client -> pod: %q, %v; want %q", got, err, p.Name)
			case !tc.podReachable && !errors.Is(err, syscall.ENETUNREACH):
				t.Errorf("client -> pod: %q, %v; want network unreachable", got, err)
			}
			// No one owns the external address: a route to it shows as
			// an answer from the node (connection refused, no listener)
			// or silence; no route shows as ENETUNREACH at once.
			_, err = cl.AskTCP(netip.AddrPortFrom(external, tcpPort), 200*time.Millisecond)
			if unreach := errors.Is(err, syscall.ENETUNREACH); unreach == tc.extReachable || err == nil {
				t.Errorf("client -> %s: %v; routed=%v", external, err, tc.extReachable)
			}
		})
	}
}

// TestServiceNAT plays a proxy by hand in the node namespace: it checks
// the plumbing a proxy relies on (bridge netfilter, hairpin, the routes
// of ServiceCIDRs), not a proxy.
func TestServiceNAT(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	a, b := n.AddPod(t, "a"), n.AddPod(t, "b")
	cl := n.AddClient(t, "cl")
	a.ServeTCP(t, tcpPort)
	a.ServeHTTP(t, httpPort)
	clusterIP := netip.MustParseAddr("10.96.0.10")
	externalIP := netip.MustParseAddr("203.0.113.7")
	rules := fmt.Sprintf(`table ip sbtest {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr { %[1]s, %[2]s } tcp dport 80 dnat to %[3]s:%[4]d
		ip daddr { %[1]s, %[2]s } tcp dport 81 dnat to %[3]s:%[5]d
	}
	chain out {
		type nat hook output priority -100; policy accept;
		ip daddr { %[1]s, %[2]s } tcp dport 80 dnat to %[3]s:%[4]d
		ip daddr { %[1]s, %[2]s } tcp dport 81 dnat to %[3]s:%[5]d
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		ct status dnat ip saddr %[3]s ip daddr %[3]s masquerade
	}
}
`, clusterIP, externalIP, a.IP, tcpPort, httpPort)
	if _, err := n.Node().ExecInput(context.Background(), []byte(rules), "nft", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		from       *Host
		to         netip.Addr
		wantSource netip.Addr // source address the backend sees
	}{
		// "hairpin" traffic: the backend is the client itself; the
		// bridge must send the frame back out of its ingress port.
		{"pod reaches itself through the cluster IP (hairpin, masqueraded)", a, clusterIP, n.Gateway()},
		{"other pod through the cluster IP keeps its source", b, clusterIP, b.IP},
		{"node through the cluster IP (OUTPUT DNAT after the ServiceCIDRs route)", n.Node(), clusterIP, n.Gateway()},
		{"node through the external IP", n.Node(), externalIP, n.Gateway()},
		{"client through the external IP keeps its source", cl, externalIP, cl.IP},
		{"client through the cluster IP via its default route", cl, clusterIP, cl.IP},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.from.AskTCP(netip.AddrPortFrom(tc.to, 80), timeout)
			if err != nil || got != a.Name {
				t.Fatalf("tcp %s -> %s:80 = %q, %v; want %q", tc.from.Name, tc.to, got, err, a.Name)
			}
			src, err := tc.from.AskHTTP(netip.AddrPortFrom(tc.to, 81), "/"+ClientIPRequest, timeout)
			if err != nil {
				t.Fatal(err)
			}
			ap, err := netip.ParseAddrPort(src)
			if err != nil || ap.Addr().Unmap() != tc.wantSource {
				t.Errorf("backend saw source %q, want %s", src, tc.wantSource)
			}
		})
	}
}

func TestClientIPAnswers(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	p := n.AddPod(t, "p")
	cl := n.AddClient(t, "cl")
	serveAll(t, p)
	for _, from := range []*Host{cl, n.Node(), p} {
		udp, err := from.AskUDPPayload(netip.AddrPortFrom(p.IP, udpPort), ClientIPRequest, timeout)
		if err != nil {
			t.Fatal(err)
		}
		web, err := from.AskHTTP(netip.AddrPortFrom(p.IP, httpPort), "/"+ClientIPRequest, timeout)
		if err != nil {
			t.Fatal(err)
		}
		want := from.IP
		if from == n.Node() {
			want = n.Gateway() // the node's address on the pods' subnet
		}
		for _, got := range []string{udp, web} {
			ap, err := netip.ParseAddrPort(got)
			if err != nil || ap.Addr().Unmap() != want {
				t.Errorf("%s -> pod: server saw %q, want %s", from.Name, got, want)
			}
		}
	}
}

func TestTCPEchoes(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	p := n.AddPod(t, "p")
	p.ServeTCP(t, tcpPort)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := n.Node().DialTCP(ctx, netip.AddrPortFrom(p.IP, tcpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	msg := "hello through " + p.Name + "\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	want := p.Name + "\n" + msg
	buf := make([]byte, len(want))
	if _, err := ioReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	if string(buf) != want {
		t.Errorf("got %q, want %q", buf, want)
	}
}

func ioReadFull(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestUDPRefusedWithoutServer(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	p := n.AddPod(t, "p")
	_, err := n.Node().AskUDP(netip.AddrPortFrom(p.IP, udpPort), timeout)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("AskUDP to a port nobody serves: %v, want connection refused (ICMP port unreachable)", err)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	p := n.AddPod(t, "p")
	ctx := context.Background()
	cases := []struct {
		name    string
		host    *Host
		stdin   string
		args    []string
		want    string
		wantErr string
	}{
		{"runs in the pod", p, "", []string{"ip", "-o", "-4", "addr", "show", "dev", "eth0"}, p.Prefix.String(), ""},
		{"runs in the node", n.Node(), "", []string{"ip", "-o", "link", "show", BridgeName}, BridgeName, ""},
		{"stdin reaches the command", p, "from stdin", []string{"cat"}, "from stdin", ""},
		{"nft in the node", n.Node(), "table inet sbexec { }", []string{"nft", "-f", "-"}, "", ""},
		{"the table stays in the node", n.Node(), "", []string{"nft", "list", "tables"}, "sbexec", ""},
		{"failure carries stderr", p, "", []string{"ip", "link", "show", "nosuch0"}, "", "nosuch0"},
		{"no command", p, "", nil, "", "needs a command"},
		{"missing binary", p, "", []string{"/nonexistent/sbt-cmd"}, "", "sbt-cmd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdin []byte
			if tc.stdin != "" {
				stdin = []byte(tc.stdin)
			}
			out, err := tc.host.ExecInput(ctx, stdin, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("output %q lacks %q", out, tc.want)
			}
		})
	}
	// The pod's nft ruleset does not see the node's table.
	out, err := p.Exec(ctx, "nft", "list", "tables")
	if err != nil || strings.Contains(string(out), "sbexec") {
		t.Errorf("pod sees the node's table: %q %v", out, err)
	}
}

func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func TestStartAndDo(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	p := n.AddPod(t, "p")
	var pid int
	t.Run("start", func(t *testing.T) {
		cmd := exec.Command("sleep", "60")
		p.Start(t, cmd)
		pid = cmd.Process.Pid
		if got, want := nsInode(t, fmt.Sprintf("/proc/%d/ns/net", pid)), nsInode(t, p.NSPath); got != want {
			t.Errorf("started process is in netns inode %d, want the pod's %d", got, want)
		}
	})
	t.Run("command via nsenter from another goroutine", func(t *testing.T) {
		errc := make(chan error, 1)
		var out []byte
		go func() {
			var err error
			out, err = p.Command(context.Background(), "readlink", "/proc/self/ns/net").Output()
			errc <- err
		}()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("net:[%d]", nsInode(t, p.NSPath)); strings.TrimSpace(string(out)) != want {
			t.Errorf("command ran in %q, want %q", out, want)
		}
	})
	// The subtest's clean-up killed and reaped it.
	if processAlive(pid) {
		t.Errorf("process %d still alive after its test ended", pid)
	}
	var inDo uint64
	if err := p.Do(func() error {
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/thread-self/ns/net"), &st); err != nil {
			return err
		}
		inDo = st.Ino
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inDo != nsInode(t, p.NSPath) {
		t.Errorf("Do ran in netns inode %d, want the pod's %d", inDo, nsInode(t, p.NSPath))
	}
	wantErr := errors.New("from f")
	if err := p.Do(func() error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("Do returned %v, want f's error", err)
	}
}

// assertGone checks that nothing of Net id is left: no namespace files
// and, in the root namespace, no link whose name starts with "sb".
func assertGone(t *testing.T, id string) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(NetnsDir, Prefix+id+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) > 0 {
		t.Errorf("namespaces left behind: %v", matches)
	}
	links, err := netlink.LinkList() // the root namespace: read only
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, "sb") {
			t.Errorf("link %q in the root namespace", l.Attrs().Name)
		}
	}
}

func TestCleanupAfterPass(t *testing.T) {
	t.Parallel()
	var id string
	var nodePath string
	t.Run("net", func(t *testing.T) {
		n := New(t, Options{})
		id = n.ID()
		nodePath = n.Node().NSPath
		p := n.AddPod(t, "p")
		n.AddClient(t, "cl")
		p.ServeTCP(t, tcpPort)
		assertPresent(t, n.Node(), p)
	})
	assertGone(t, id)
	if err := (&Host{Name: "gone", NSPath: nodePath}).Do(func() error { return nil }); err == nil {
		t.Errorf("Do in a removed namespace succeeded")
	}
}

func assertPresent(t *testing.T, hosts ...*Host) {
	t.Helper()
	for _, h := range hosts {
		if _, err := os.Stat(h.NSPath); err != nil {
			t.Errorf("namespace of %s: %v", h.Name, err)
		}
	}
}

const childEnv = "SBT_TESTNET_CHILD"

// TestChild is run by TestCleanupAfterFailure in a child process; it
// skips otherwise.
func TestChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("helper of TestCleanupAfterFailure, runs only in its child process")
	}
	n := New(t, Options{})
	p := n.AddPod(t, "p")
	n.AddPod(t, "q")
	n.AddClient(t, "cl")
	p.ServeTCP(t, tcpPort)
	cmd := exec.Command("sleep", "60")
	p.Start(t, cmd)
	fmt.Printf("SBT-ID=%s SBT-PID=%d\n", n.ID(), cmd.Process.Pid)
	switch mode {
	case "pass":
	case "fatal":
		t.Fatal("failing on purpose")
	case "panic":
		panic("panicking on purpose")
	case "panic-in-do":
		_ = p.Do(func() error { panic("panicking in the namespace on purpose") })
	case "fatal-in-do":
		_ = p.Do(func() error { t.Fatal("FailNow in the namespace on purpose"); return nil })
		fmt.Println("reached after FailNow")
	}
}

func TestCleanupAfterFailure(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("testnet: creating network namespaces needs root")
	}
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	cases := []struct {
		mode     string
		wantFail bool
		wantOut  string
	}{
		{"pass", false, "--- PASS: TestChild"},
		{"fatal", true, "failing on purpose"},
		{"panic", true, "panicking on purpose"},
		{"panic-in-do", true, "panicking in the namespace on purpose"},
		{"fatal-in-do", true, "--- FAIL: TestChild"},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+tc.mode)
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Errorf("child failed=%v (%v), want %v:\n%s", failed, err, tc.wantFail, out)
			}
			if !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("child output lacks %q:\n%s", tc.wantOut, out)
			}
			if strings.Contains(string(out), "reached after FailNow") {
				t.Errorf("FailNow inside Do did not end the test goroutine")
			}
			var id string
			var pid int
			for _, line := range strings.Split(string(out), "\n") {
				if _, err := fmt.Sscanf(strings.TrimSpace(line), "SBT-ID=%s SBT-PID=%d", &id, &pid); err == nil {
					break
				}
			}
			if id == "" || pid == 0 {
				t.Fatalf("child printed no net id:\n%s", out)
			}
			assertGone(t, id)
			if processAlive(pid) {
				t.Errorf("process %d started in the child's pod is still running", pid)
			}
		})
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("testnet: creating network namespaces needs root")
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := dead.Process.Pid
	cases := []struct {
		name        string
		pid         int
		age         time.Duration
		asPlainFile bool // as left after a reboot: a file, no mount
		wantRemoved bool
	}{
		{"older than the limit", 1, 2 * time.Hour, false, true},
		{"owner gone, past the grace period", deadPID, time.Minute, false, true},
		{"owner gone, just made", deadPID, 0, false, false},
		{"owner alive, young", 1, time.Minute, false, false},
		{"own process, old", os.Getpid(), 2 * time.Hour, false, false},
		{"plain file left by a reboot", deadPID, 2 * time.Hour, true, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("%s%dx%s-sweep%d", Prefix, tc.pid, "t"+fmt.Sprint(os.Getpid()), i)
			path := filepath.Join(NetnsDir, name)
			var owned = new(atomicBool)
			t.Cleanup(func() {
				if owned.Load() {
					_ = deleteNamed(path)
				}
			})
			if tc.asPlainFile {
				owned.Store(true)
				if err := os.WriteFile(path, nil, 0o444); err != nil {
					t.Fatal(err)
				}
			} else if err := createNamed(name, &owned.Bool); err != nil {
				t.Fatal(err)
			}
			removed, err := sweep(time.Now().Add(tc.age), time.Hour, func(s string) bool { return s == name })
			if err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(path)
			gone := errors.Is(statErr, os.ErrNotExist)
			if gone != tc.wantRemoved || (len(removed) == 1) != tc.wantRemoved {
				t.Errorf("removed=%v (file gone: %v), want removed=%v", removed, gone, tc.wantRemoved)
			}
		})
	}
}

func TestServiceCIDRRoutes(t *testing.T) {
	t.Parallel()
	clusterIP := "10.96.0.10"
	cases := []struct {
		name      string
		cidrs     []netip.Prefix
		wantRoute bool
	}{
		{"default service CIDRs are routed onto the bridge", nil, true},
		{"a custom range", []netip.Prefix{netip.MustParsePrefix("10.96.0.0/24")}, true},
		{"none: the node has no route to a service IP", []netip.Prefix{}, false},
		{"a range that does not hold the IP", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/24")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := New(t, Options{ServiceCIDRs: tc.cidrs})
			out, err := n.Node().Exec(context.Background(), "ip", "-4", "route", "get", clusterIP)
			if tc.wantRoute {
				if err != nil || !strings.Contains(string(out), "dev "+BridgeName) {
					t.Errorf("ip route get %s = %q, %v; want a route via %s", clusterIP, out, err, BridgeName)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Errorf("ip route get %s = %q, %v; want network unreachable", clusterIP, out, err)
			}
		})
	}
}

func TestConcurrentAdds(t *testing.T) {
	t.Parallel()
	n := New(t, Options{})
	const pods, clients = 6, 3
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() { n.AddPod(t, fmt.Sprintf("p%d", i)) })
	}
	for i := range clients {
		wg.Go(func() { n.AddClient(t, fmt.Sprintf("c%d", i)) })
	}
	wg.Wait()
	seen := map[netip.Addr]string{}
	hosts := append(n.Pods(), n.Clients()...)
	if len(hosts) != pods+clients {
		t.Fatalf("%d hosts, want %d", len(hosts), pods+clients)
	}
	for _, h := range hosts {
		if other, dup := seen[h.IP]; dup {
			t.Errorf("%s and %s share %s", h.Name, other, h.IP)
		}
		seen[h.IP] = h.Name
		h.ServeTCP(t, tcpPort)
	}
	if got := len(n.NodeIPs()); got != clients {
		t.Errorf("%d node IPs, want one per client (%d)", got, clients)
	}
	for _, h := range hosts {
		got, err := n.Node().AskTCP(netip.AddrPortFrom(h.IP, tcpPort), timeout)
		if err != nil || got != h.Name {
			t.Errorf("node -> %s: %q, %v", h.Name, got, err)
		}
	}
}
