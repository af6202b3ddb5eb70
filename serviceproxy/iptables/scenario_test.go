package iptables

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// The scenario tests run the iptables mode for real: a node namespace
// with a bridge, pod namespaces serving on it, client namespaces standing
// for the outside (internal/testnet), and real connections. They need
// root; testnet.New skips them otherwise.

const (
	tcpPort  = 8080 // testnet.ServeTCP: answers the pod's name, then echoes
	httpPort = 8081 // testnet.ServeHTTP: "/clientip" answers the source address seen
	udpPort  = 8053 // testnet.ServeUDP
	askWait  = 2 * time.Second
)

type scenario struct {
	t    *testing.T
	net  *testnet.Net
	node *testnet.Host
	p    *Proxier
	m    *serviceproxy.Metrics
	st   *serviceproxy.State
	pods map[string]*testnet.Host
}

// newScenario builds a node with the named pods (each serving TCP, HTTP
// and UDP) and an iptables proxier for it.
func newScenario(t *testing.T, pods ...string) *scenario {
	t.Helper()
	n := testnet.New(t, testnet.Options{})
	s := &scenario{t: t, net: n, node: n.Node(), pods: map[string]*testnet.Host{}}
	for _, name := range pods {
		h := n.AddPod(t, name)
		h.ServeTCP(t, tcpPort)
		h.ServeHTTP(t, httpPort)
		h.ServeUDP(t, udpPort)
		s.pods[name] = h
	}
	s.m = serviceproxy.NewMetrics(prometheus.NewRegistry(), ModeName)
	p, err := New(Config{Metrics: s.m})
	if err != nil {
		t.Fatal(err)
	}
	s.p = p
	// Register the clean-up before the first rule is written.
	t.Cleanup(func() {
		if err := s.node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	s.st = newState()
	s.st.Node.Name = "node"
	s.st.ClusterCIDRs = []netip.Prefix{n.PodCIDR()}
	return s
}

// endpoint is a ready endpoint on pod name's TCP port (or the given
// port), on this node unless remote.
func (s *scenario) endpoint(name string, port int32) *serviceproxy.Endpoint {
	h := s.pods[name]
	if h == nil {
		s.t.Fatalf("no pod %s", name)
	}
	return &serviceproxy.Endpoint{IP: h.IP, Port: port, Ready: true, Serving: true, NodeName: "node", IsLocal: true}
}

func (s *scenario) sync() error {
	s.t.Helper()
	err := s.node.Do(func() error { return s.p.Sync(context.Background(), s.st) })
	// Like the core: after a sync the change lists start afresh.
	s.st.Changed = map[serviceproxy.ServicePortName]bool{}
	s.st.StaleUDPEndpoints = nil
	s.st.StaleUDPServices = nil
	s.st.Full = err != nil
	return err
}

func (s *scenario) mustSync() {
	s.t.Helper()
	if err := s.sync(); err != nil {
		s.t.Fatalf("sync: %v", err)
	}
}

func (s *scenario) save(table string) string {
	s.t.Helper()
	out, err := s.node.Exec(context.Background(), "iptables-save", "-t", table)
	if err != nil {
		s.t.Fatalf("iptables-save: %v", err)
	}
	return string(out)
}

// askMany asks addr n times from h and counts the answers.
func askMany(t *testing.T, h *testnet.Host, addr netip.AddrPort, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		name, err := h.AskTCP(addr, askWait)
		if err != nil {
			t.Fatalf("ask %d: %v", i, err)
		}
		got[name]++
	}
	return got
}

func isRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func svcAddr(ip string, port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port))
}

// TestScenarioClusterIP: "kube-proxy ... chooses a backend at random"
// among the ready endpoints; "only ready endpoints" get new connections
// (a not-ready one receives none); the rules in the kernel are the
// rendered ones.
func TestScenarioClusterIP(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "a", "b", "c", "notready", "client")
	name := spn("default", "web", "", corev1.ProtocolTCP)
	notReady := s.endpoint("notready", tcpPort)
	notReady.Ready, notReady.Serving = false, false
	add(s.st, &serviceproxy.ServicePort{Name: name, ClusterIPs: addrs("10.96.0.10"), Port: 80},
		s.endpoint("a", tcpPort), s.endpoint("b", tcpPort), s.endpoint("c", tcpPort), notReady)
	s.mustSync()

	for _, from := range []*testnet.Host{s.pods["client"], s.node} {
		got := askMany(t, from, svcAddr("10.96.0.10", 80), 60)
		for _, want := range []string{"a", "b", "c"} {
			if got[want] == 0 {
				t.Errorf("from %s: ready endpoint %s got no connection: %v", from.Name, want, got)
			}
		}
		if got["notready"] != 0 {
			t.Errorf("from %s: the not-ready endpoint got %d connections", from.Name, got["notready"])
		}
	}

	// The kernel holds exactly the rendered chains and rules.
	rendered := renderRules(t, s.p, s.st, false)
	compareWithKernel(t, rendered, s.save("nat"), "nat")
	compareWithKernel(t, rendered, s.save("filter"), "filter")
	nat := s.save("nat")
	svcChain := servicePortPolicyClusterChain("default/web", "tcp")
	for _, want := range []string{
		"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
		"-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
		"-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
		"-A " + svcChain + " -m comment --comment \"default/web -> " + s.pods["a"].IP.String() + ":8080\" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-",
		"-j MASQUERADE --random-fully",
	} {
		if !strings.Contains(nat, want) {
			t.Errorf("iptables-save -t nat lacks %q:\n%s", want, nat)
		}
	}
}

// compareWithKernel checks that the KUBE-* chains of table in the
// iptables-save output are the rendered ones, with as many rules each.
// (iptables-save prints rules in its own normalised form, e.g.
// "-d 10.96.0.10/32 -p tcp ... -m tcp --dport 80", so rules are compared
// by count per chain; the probabilities are checked literally above.)
func compareWithKernel(t *testing.T, rendered, saved, table string) {
	t.Helper()
	count := func(data string) map[string]int {
		out := map[string]int{}
		in := false
		for _, line := range strings.Split(data, "\n") {
			switch {
			case strings.HasPrefix(line, "*"):
				in = line == "*"+table
			case !in:
			case strings.HasPrefix(line, ":KUBE-"):
				out[strings.Fields(line)[0][1:]] += 0
			case strings.HasPrefix(line, "-A KUBE-"):
				out[strings.Fields(line)[1]]++
			}
		}
		return out
	}
	want, got := count(rendered), count(saved)
	for c, n := range want {
		if g, ok := got[c]; !ok || g != n {
			t.Errorf("%s chain %s: kernel has %d rules (present %v), rendered %d", table, c, g, ok, n)
		}
	}
	for c := range got {
		if _, ok := want[c]; !ok {
			t.Errorf("%s chain %s is in the kernel but was not rendered", table, c)
		}
	}
}

// TestScenarioNodePortAndPolicies: NodePort from a client namespace
// (outside the cluster), and the Local policies: "If a Service's
// .spec.externalTrafficPolicy is set to Local, kube-proxy only proxies
// proxy requests to node-local endpoints, and does not forward traffic to
// other nodes. This approach preserves the original source IP address.
// If there are no node-local endpoints, packets sent to the node are
// dropped by kube-proxy"; "internalTrafficPolicy: Local ... If there are
// no node-local endpoints, kube-proxy drops the traffic."
func TestScenarioNodePortAndPolicies(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "local", "remote", "client")
	outside := s.net.AddClient(t, "outside")
	nodeIP := s.net.Node().IP
	remote := s.endpoint("remote", httpPort)
	remote.IsLocal, remote.NodeName = false, "other-node" // pretend it runs elsewhere

	cluster := spn("default", "cluster", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: cluster, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.20"), Port: 80, NodePort: 30020},
		s.endpoint("local", httpPort))
	local := spn("default", "local", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: local, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.21"), Port: 80, NodePort: 30021, ExternalPolicyLocal: true},
		s.endpoint("local", httpPort), remote)
	localNone := spn("default", "local-none", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: localNone, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.22"), Port: 80, NodePort: 30022, ExternalPolicyLocal: true},
		remote)
	itpLocalNone := spn("default", "itp-local-none", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: itpLocalNone, ClusterIPs: addrs("10.96.0.23"), Port: 80, InternalPolicyLocal: true},
		remote)
	itpLocal := spn("default", "itp-local", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: itpLocal, ClusterIPs: addrs("10.96.0.24"), Port: 80, InternalPolicyLocal: true},
		s.endpoint("local", httpPort), remote)
	s.mustSync()

	clientIP := func(from *testnet.Host, addr netip.AddrPort) (string, error) {
		body, err := from.AskHTTP(addr, "/"+testnet.ClientIPRequest, askWait)
		if err != nil {
			return "", err
		}
		ap, err := netip.ParseAddrPort(body)
		if err != nil {
			return "", fmt.Errorf("answer %q: %v", body, err)
		}
		return ap.Addr().String(), nil
	}

	t.Run("NodePort with Cluster policy is masqueraded", func(t *testing.T) {
		src, err := clientIP(outside, netip.AddrPortFrom(nodeIP, 30020))
		if err != nil {
			t.Fatal(err)
		}
		if src == outside.IP.String() {
			t.Errorf("the endpoint saw the client's address %s; want the node's (masquerade)", src)
		}
	})
	t.Run("NodePort with Local policy keeps the client address and uses only local endpoints", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			src, err := clientIP(outside, netip.AddrPortFrom(nodeIP, 30021))
			if err != nil {
				t.Fatal(err)
			}
			if src != outside.IP.String() {
				t.Fatalf("the endpoint saw %s, want the client's %s", src, outside.IP)
			}
		}
		for i := 0; i < 10; i++ {
			body, err := outside.AskHTTP(netip.AddrPortFrom(nodeIP, 30021), "/", askWait)
			if err != nil {
				t.Fatal(err)
			}
			if body != "local" {
				t.Fatalf("answered by %q, want only the local endpoint", body)
			}
		}
	})
	t.Run("NodePort with Local policy and no local endpoint drops", func(t *testing.T) {
		_, err := outside.AskTCP(netip.AddrPortFrom(nodeIP, 30022), time.Second)
		if err == nil || isRefused(err) || !isTimeout(err) {
			t.Fatalf("got %v, want a timeout (dropped)", err)
		}
	})
	t.Run("a pod reaching a Local-policy NodePort service's cluster IP still gets remote endpoints", func(t *testing.T) {
		// externalTrafficPolicy applies to external traffic only.
		body, err := s.pods["client"].AskHTTP(svcAddr("10.96.0.22", 80), "/", askWait)
		if err != nil || body != "remote" {
			t.Fatalf("got %q, %v; want remote", body, err)
		}
	})
	t.Run("internalTrafficPolicy Local without local endpoints drops", func(t *testing.T) {
		_, err := s.pods["client"].AskTCP(svcAddr("10.96.0.23", 80), time.Second)
		if err == nil || isRefused(err) || !isTimeout(err) {
			t.Fatalf("got %v, want a timeout (dropped)", err)
		}
	})
	t.Run("internalTrafficPolicy Local uses only local endpoints", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			body, err := s.pods["client"].AskHTTP(svcAddr("10.96.0.24", 80), "/", askWait)
			if err != nil {
				t.Fatal(err)
			}
			if body != "local" {
				t.Fatalf("answered by %q, want only local", body)
			}
		}
	})
	t.Run("NodePort on localhost from the node", func(t *testing.T) {
		// --iptables-localhost-nodeports (default true): NodePorts
		// answer on 127.0.0.1 too, with route_localnet set.
		body, err := s.node.AskHTTP(svcAddr("127.0.0.1", 30020), "/", askWait)
		if err != nil || body != "local" {
			t.Fatalf("got %q, %v", body, err)
		}
	})
}

// TestScenarioAffinityHairpinReject covers ClientIP session affinity
// ("connections from a particular client are passed to the same Pod each
// time"), hairpin (a pod reaching itself through its Service, which
// needs the masquerade of KUBE-SEP's "-s <endpoint>" rule), and a
// Service without endpoints, which rejects at once ("kube-proxy ...
// REJECT for services without endpoints": connection refused, no
// timeout).
func TestScenarioAffinityHairpinReject(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "a", "b", "c", "client")
	sticky := spn("default", "sticky", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: sticky, ClusterIPs: addrs("10.96.0.30"), Port: 80, StickyMaxAge: 3 * time.Hour},
		s.endpoint("a", tcpPort), s.endpoint("b", tcpPort), s.endpoint("c", tcpPort))
	self := spn("default", "self", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: self, ClusterIPs: addrs("10.96.0.31"), Port: 80},
		s.endpoint("a", tcpPort))
	empty := spn("default", "empty", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: empty, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.32"), Port: 80, NodePort: 30032})
	s.mustSync()

	t.Run("ClientIP affinity sticks", func(t *testing.T) {
		got := askMany(t, s.pods["client"], svcAddr("10.96.0.30", 80), 20)
		if len(got) != 1 {
			t.Fatalf("answers spread over %v; want one endpoint", got)
		}
	})
	t.Run("hairpin: a pod reaches itself through its service", func(t *testing.T) {
		name, err := s.pods["a"].AskTCP(svcAddr("10.96.0.31", 80), askWait)
		if err != nil || name != "a" {
			t.Fatalf("got %q, %v", name, err)
		}
	})
	t.Run("no endpoints: connection refused at once", func(t *testing.T) {
		for _, addr := range []netip.AddrPort{svcAddr("10.96.0.32", 80), netip.AddrPortFrom(s.net.Node().IP, 30032)} {
			from := s.pods["client"]
			if addr.Port() == 30032 {
				from = s.net.AddClient(t, "outside")
			}
			_, err := from.AskTCP(addr, 5*time.Second)
			if !isRefused(err) {
				t.Errorf("%s: got %v, want connection refused (REJECT)", addr, err)
			}
		}
	})
}

// TestScenarioUDP: UDP works, and survives an endpoint replacement:
// "kube-proxy ... clears conntrack entries of removed UDP endpoints", so
// a client that keeps its socket (same source port, same conntrack
// entry) reaches the new endpoint although the old one still answers.
func TestScenarioUDP(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "old", "new", "client")
	dns := spn("default", "dns", "", corev1.ProtocolUDP)
	svc := &serviceproxy.ServicePort{Name: dns, ClusterIPs: addrs("10.96.0.40"), Port: 53, Protocol: corev1.ProtocolUDP}
	oldEP := s.endpoint("old", udpPort)
	add(s.st, svc, oldEP)
	s.mustSync()

	conn, err := s.pods["client"].DialUDP(context.Background(), svcAddr("10.96.0.40", 53))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func() (string, error) {
		_ = conn.SetDeadline(time.Now().Add(askWait))
		if _, err := conn.Write([]byte("name?")); err != nil {
			return "", err
		}
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		return string(buf[:n]), err
	}
	if got, err := ask(); err != nil || got != "old" {
		t.Fatalf("before: got %q, %v", got, err)
	}

	// Replace the endpoint; the old pod keeps serving.
	s.st.Endpoints[dns] = []*serviceproxy.Endpoint{s.endpoint("new", udpPort)}
	s.st.Changed[dns] = true
	s.st.StaleUDPEndpoints = map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{dns: {oldEP}}
	s.mustSync()
	for i := 0; i < 3; i++ {
		if got, err := ask(); err != nil || got != "new" {
			t.Fatalf("after replacement, ask %d: got %q, %v (want the new endpoint on the same socket)", i, got, err)
		}
	}
}

// TestScenarioPartialSyncEqualsFull: a partial sync (only the changed
// service ports' chains rewritten, the others kept) leaves the kernel
// exactly as a full sync of the same state does.
func TestScenarioPartialSyncEqualsFull(t *testing.T) {
	t.Parallel()
	build := func(st *serviceproxy.State, second bool) {
		for i := 0; i < 6; i++ {
			n := spn("ns", fmt.Sprintf("svc%d", i), "http", corev1.ProtocolTCP)
			svc := &serviceproxy.ServicePort{Name: n, ClusterIPs: addrs(fmt.Sprintf("10.96.1.%d", i+1)), Port: 80}
			eps := []*serviceproxy.Endpoint{ep(fmt.Sprintf("10.244.0.%d", 10+i), 80, true), ep(fmt.Sprintf("10.244.0.%d", 20+i), 80, false)}
			switch {
			case !second:
			case i == 1: // endpoints change
				eps = append(eps, ep("10.244.0.99", 80, false))
			case i == 2: // removed
				continue
			case i == 3: // gains affinity and a NodePort
				svc.StickyMaxAge = time.Minute
				svc.NodePort = 30003
				svc.Type = corev1.ServiceTypeNodePort
			case i == 4: // loses its endpoints
				eps = nil
			}
			add(st, svc, eps...)
		}
		if second {
			add(st, &serviceproxy.ServicePort{Name: spn("ns", "added", "", corev1.ProtocolUDP), Protocol: corev1.ProtocolUDP, ClusterIPs: addrs("10.96.1.100"), Port: 53},
				ep("10.244.0.50", 53, true))
		}
	}
	ctx := context.Background()

	// Node A: state 1 (full), then state 2 as a partial sync.
	a := newScenario(t)
	build(a.st, false)
	a.mustSync()
	a.st = newState()
	a.st.Node.Name, a.st.ClusterCIDRs = "node", []netip.Prefix{a.net.PodCIDR()}
	build(a.st, true)
	a.st.Full = false
	a.st.Changed = map[serviceproxy.ServicePortName]bool{}
	for _, i := range []int{1, 3, 4} {
		a.st.Changed[spn("ns", fmt.Sprintf("svc%d", i), "http", corev1.ProtocolTCP)] = true
	}
	a.st.Changed[spn("ns", "added", "", corev1.ProtocolUDP)] = true
	a.st.Removed = []serviceproxy.ServicePortName{spn("ns", "svc2", "http", corev1.ProtocolTCP)}
	if err := a.node.Do(func() error { return a.p.Sync(ctx, a.st) }); err != nil {
		t.Fatal(err)
	}
	if fs := a.p.families[0]; fs == nil || !fs.synced {
		t.Fatal("second sync did not succeed")
	}

	// Node B: state 2 as a first (full) sync.
	b := newScenario(t)
	build(b.st, true)
	b.mustSync()

	for _, table := range []string{"nat", "filter"} {
		ga, gb := normalizeRestore(t, kubeOnly(a.save(table))), normalizeRestore(t, kubeOnly(b.save(table)))
		if ga != gb {
			t.Errorf("%s after partial sync differs from full sync:\n%s", table, diffLines(gb, ga))
		}
	}
	// The removed service's chains are gone.
	if nat := a.save("nat"); strings.Contains(nat, servicePortPolicyClusterChain("ns/svc2:http", "tcp")) {
		t.Errorf("removed service's chain still there:\n%s", nat)
	}
}

// kubeOnly keeps the table headers, KUBE-* chains and rules jumping to
// KUBE-* chains of iptables-save output.
func kubeOnly(save string) string {
	var b strings.Builder
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"), strings.HasPrefix(line, ":KUBE-"), strings.HasPrefix(line, "-A KUBE-"), strings.Contains(line, " -j KUBE-"):
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestScenarioFailedRestoreKeepsRules: "a failed apply ... never leaves a
// half-written ruleset": iptables-restore is atomic per table, the
// previous rules stay in force, the failure is counted in
// kubeproxy_sync_proxy_rules_iptables_restore_failures_total and the next
// sync is a full one.
func TestScenarioFailedRestoreKeepsRules(t *testing.T) {
	t.Parallel()
	s := newScenario(t, "a", "client")
	good := spn("default", "good", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: good, ClusterIPs: addrs("10.96.0.50"), Port: 80}, s.endpoint("a", tcpPort))
	s.mustSync()
	before := s.save("nat")

	// An affinity timeout beyond xt_recent's range ("out of range
	// (1-4294967295)") makes iptables-restore fail on the affinity rule,
	// after the other rules of the input were accepted (the API caps
	// timeoutSeconds at 86400; this stands for any failing restore).
	bad := spn("default", "bad", "", corev1.ProtocolTCP)
	add(s.st, &serviceproxy.ServicePort{Name: bad, ClusterIPs: addrs("10.96.0.51"), Port: 80, StickyMaxAge: (1 << 33) * time.Second}, s.endpoint("a", tcpPort))
	s.st.Full = false
	err := s.sync()
	if err == nil {
		t.Fatal("sync with an out-of-range affinity timeout succeeded")
	}
	t.Logf("expected failure: %v", err)
	var re *restoreError
	if !errors.As(err, &re) || re.near == "" {
		t.Errorf("error %v does not show the offending lines", err)
	}
	if got := testutil.ToFloat64(s.m.IPTablesRestoreFailuresTotal); got != 1 {
		t.Errorf("restore failures = %v, want 1", got)
	}
	if got := testutil.ToFloat64(s.m.IPTablesPartialRestoreFailuresTotal); got != 1 {
		t.Errorf("partial restore failures = %v, want 1", got)
	}
	if after := s.save("nat"); normalizeRestore(t, kubeOnly(after)) != normalizeRestore(t, kubeOnly(before)) {
		t.Errorf("rules changed by the failed restore:\n%s", diffLines(normalizeRestore(t, kubeOnly(before)), normalizeRestore(t, kubeOnly(after))))
	}
	if name, err := s.pods["client"].AskTCP(svcAddr("10.96.0.50", 80), askWait); err != nil || name != "a" {
		t.Errorf("the previous rules no longer work: %q, %v", name, err)
	}

	// The next sync is full and succeeds once the bad port is gone.
	delete(s.st.Services, bad)
	delete(s.st.Endpoints, bad)
	if fs := s.p.families[0]; fs.synced {
		t.Error("after a failure the next sync must be full")
	}
	s.mustSync()
}

// TestScenarioRenderIsAccepted: Render's output (the --dry-run text) is
// exactly what iptables-restore accepts on a fresh node, and Cleanup
// removes every chain and jump afterwards.
func TestScenarioRenderIsAccepted(t *testing.T) {
	t.Parallel()
	st := upstreamOverallState()
	p := upstreamFakeProxier(t)
	data, err := p.Render(st)
	if err != nil {
		t.Fatal(err)
	}
	n := testnet.New(t, testnet.Options{})
	node := n.Node()
	t.Cleanup(func() {
		_ = node.Do(func() error { return p.Cleanup(context.Background()) })
	})
	if _, err := node.ExecInput(context.Background(), data, "iptables-restore", "--noflush"); err != nil {
		t.Fatalf("iptables-restore rejected Render's output: %v\n%s", err, data)
	}
	if err := node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"nat", "filter"} {
		out, err := node.Exec(context.Background(), "iptables-save", "-t", table)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "KUBE-") {
			t.Errorf("after Cleanup, %s still has KUBE- chains or jumps:\n%s", table, out)
		}
	}
}
