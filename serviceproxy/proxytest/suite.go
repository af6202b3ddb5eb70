package proxytest

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// Mode describes a proxy mode to the suite.
type Mode struct {
	// Name is the mode ("nftables", "iptables", "userspace", ...).
	Name string
	// New builds the mode's backend for one Env's node from cfg (node
	// name "node", the node's IPs, the pod CIDR, a test logger, metrics
	// on Env.Registry). It must not touch the kernel.
	New func(t *testing.T, cfg serviceproxy.ModeConfig) serviceproxy.Backend
	// Skip lists checks (the Check* constants) the mode cannot pass, with
	// the documented reason; the subtest skips printing it.
	Skip map[string]string
	// Conntrack says that the mode NATs in the kernel, so that each
	// proxied flow has a conntrack entry in the node namespace
	// (CheckConntrackFlushed reads them with conntrack -L).
	Conntrack bool
	// Dump returns what the mode holds in the node namespace as text
	// (its tables, chains and rules; its addresses and listeners), ""
	// when it holds nothing. CheckFailedApply compares it before and
	// after a failed sync, CheckCleanup wants it empty after Cleanup.
	Dump func(t *testing.T, e *Env) string
	// BreakSync arranges that the next Sync fails inside the kernel (not
	// in rendering), and returns what undoes that.
	BreakSync func(t *testing.T, e *Env) (repair func())
	// CheckFailure, optional, checks the error of the failed sync and
	// what the mode reports about it (metrics).
	CheckFailure func(t *testing.T, e *Env, err error)
	// CheckRules, optional, compares what the node's kernel holds with
	// what the mode renders for Env.LastState(); it runs at the end of
	// every check that leaves rules in place, after the incremental syncs
	// of the check, so it also shows that incremental syncs leave the
	// rules a full render would make.
	CheckRules func(t *testing.T, e *Env)
	// NoDrop, when set, is why the mode cannot drop a connection it must
	// not serve (a proxy that accepts before it decides resets it
	// instead). Checks whose main point is not the drop itself
	// (CheckSourceRanges) then accept a reset or a refusal where the
	// kernel modes must time out, and log the reason.
	NoDrop string
}

// The checks, each the upstream rule it re-creates; the constants are
// the subtests' names and the keys of Mode.Skip.
const (
	// "By default, kube-proxy in iptables mode chooses a backend at
	// random" among the endpoints it may use (virtual-ips); from pods
	// and from the node itself.
	CheckClusterIPSpreads = "ClusterIP spreads over all ready endpoints"
	// EndpointConditions.ready: "ready indicates that this endpoint is
	// ready to receive traffic"; kube-proxy's CategorizeEndpoints:
	// "Usable endpoints means Ready endpoints by default".
	CheckNotReady = "a not-ready endpoint gets no new connections"
	// ServiceSpec.type NodePort: "allocates a port from a range
	// (default: 30000-32767) on every node that routes to the same
	// endpoints as the clusterIP"; under the Cluster policy: "If we are
	// using non-local endpoints we need to masquerade, in case we cross
	// nodes."
	CheckNodePort = "NodePort works from a client outside the cluster"
	// virtual-ips: "If you want to make sure that connections from a
	// particular client are passed to the same Pod each time, you can
	// select the session affinity based on the client's IP addresses by
	// setting .spec.sessionAffinity to ClientIP".
	CheckAffinity = "ClientIP affinity sticks"
	// ServiceSpec.externalTrafficPolicy: "If set to "Local", the proxy
	// will ... deliver traffic only to the node-local endpoints of the
	// service"; it "describes how nodes distribute service traffic they
	// receive on one of the Service's "externally-facing" addresses", so
	// pods reaching the cluster IP still get every endpoint.
	CheckExternalLocalOnlyLocal = "externalTrafficPolicy Local uses only node-local endpoints"
	// ServiceSpec.externalTrafficPolicy Local: "without masquerading the
	// client source IP".
	CheckExternalLocalSource = "externalTrafficPolicy Local keeps the client source address"
	// ServiceSpec.externalTrafficPolicy Local: "(Traffic mistakenly sent
	// to a node with no endpoints will be dropped.)"
	CheckExternalLocalDrops = "externalTrafficPolicy Local drops without node-local endpoints"
	// ServiceSpec.internalTrafficPolicy: "If set to "Local", the proxy
	// will assume that pods only want to talk to endpoints of the service
	// on the same node as the pod".
	CheckInternalLocalOnlyLocal = "internalTrafficPolicy Local uses only node-local endpoints"
	// ... "dropping the traffic if there are no local endpoints."
	CheckInternalLocalDrops = "internalTrafficPolicy Local drops without node-local endpoints"
	// kube-proxy: "Handle traffic that loops back to the originator with
	// SNAT."
	CheckHairpin = "hairpin: a pod reaches itself through its service"
	// kube-proxy (nftables/proxier.go): "The service has no endpoints at
	// all; ... only rules in the "filter" table rejecting incoming
	// packets for the service's IPs": connection refused, no timeout.
	CheckNoEndpointsRejects = "a service without endpoints rejects at once"
	// kube-proxy (conntrack/cleanup.go): "After a UDP endpoint is removed
	// we must flush any conntrack entries for it so that if the same
	// client keeps sending, the packets will get routed to a new
	// endpoint."
	CheckUDP = "UDP works and survives an endpoint replacement"
	// The same rule, seen in the kernel: conntrack -L in the node
	// namespace lists the entry to the removed endpoint before the sync
	// and not after it.
	CheckConntrackFlushed = "stale UDP conntrack entries are deleted"
	// kube-proxy (conntrack/cleanup.go): "When a service has no endpoints
	// and we drop traffic to it, conntrack may create "black hole"
	// entries for that IP+port. When the service gets endpoints we need
	// to delete those entries so further traffic will get routed."
	CheckUDPFirstEndpoint = "a UDP service that gets its first endpoint answers the client that tried before"
	// kube-proxy (topology.go): "If we didn't get any endpoints, try
	// again using terminating endpoints"; KEP-1669: serving terminating
	// endpoints are used only when no endpoint is ready.
	CheckTerminating = "terminating endpoints are used only when all terminate"
	// ServiceSpec.externalIPs: "externalIPs is a list of IP addresses for
	// which nodes in the cluster will also accept traffic for this
	// service"; virtual-ips: "kube-proxy ... installs rules which capture
	// traffic to the Service's clusterIP (which is virtual) and port and
	// redirects that traffic to one of the Service's backend sets", for
	// external IPs as for the cluster IP.
	CheckExternalIPs = "externalIPs routed to the node reach the endpoints"
	// LoadBalancerIngress.ip: "IP is set for load-balancer ingress points
	// that are IP based"; kube-proxy: "Capture load-balancer ingress" (a
	// packet to the ingress IP routed to the node is served there).
	CheckLoadBalancerIP = "LoadBalancer ingress IPs reach the endpoints"
	// ServiceSpec.loadBalancerSourceRanges: "If specified and supported
	// by the platform, this will restrict traffic through the
	// cloud-provider load-balancer will be restricted to the specified
	// client IPs"; kube-proxy: "firewall filter based on each source
	// range" then "drop all other traffic" (the NodePort stays open).
	CheckSourceRanges = "loadBalancerSourceRanges serve clients inside and drop those outside"
	// kube-proxy (iptables/proxier.go): "This masquerades off-cluster
	// traffic to a service VIP. The idea is that you can establish a
	// static route for your Service range, routing to any node, and that
	// node will bridge into the Service for you."; for external
	// destinations under the Cluster policy: "Masquerade all
	// external-destination traffic".
	CheckMasqueradeOutside = "traffic from outside the cluster CIDR is masqueraded"
	// ServicePort.protocol: "Supports "TCP", "UDP", and "SCTP"."; issue
	// 4: "TCP and UDP (SCTP where the kernel has it)".
	CheckSCTP = "SCTP reaches the endpoints"
	// Issue 4: "a failed apply is retried and counted, and never leaves a
	// half-written ruleset".
	CheckFailedApply = "a failed apply leaves the previous rules serving"
	// kube-proxy --cleanup: "If true cleanup iptables and ipvs rules and
	// exit"; issue 4: "clean-up of everything we created on --cleanup and
	// when switching modes".
	CheckCleanup = "Cleanup removes everything the mode created"
)

type check struct {
	name string
	run  func(t *testing.T, m Mode)
}

var checks = []check{
	{CheckClusterIPSpreads, checkClusterIPSpreads},
	{CheckNotReady, checkNotReady},
	{CheckNodePort, checkNodePort},
	{CheckAffinity, checkAffinity},
	{CheckExternalLocalOnlyLocal, checkExternalLocalOnlyLocal},
	{CheckExternalLocalSource, checkExternalLocalSource},
	{CheckExternalLocalDrops, checkExternalLocalDrops},
	{CheckInternalLocalOnlyLocal, checkInternalLocalOnlyLocal},
	{CheckInternalLocalDrops, checkInternalLocalDrops},
	{CheckHairpin, checkHairpin},
	{CheckNoEndpointsRejects, checkNoEndpointsRejects},
	{CheckUDP, checkUDP},
	{CheckConntrackFlushed, checkConntrackFlushed},
	{CheckUDPFirstEndpoint, checkUDPFirstEndpoint},
	{CheckTerminating, checkTerminating},
	{CheckExternalIPs, checkExternalIPs},
	{CheckLoadBalancerIP, checkLoadBalancerIP},
	{CheckSourceRanges, checkSourceRanges},
	{CheckMasqueradeOutside, checkMasqueradeOutside},
	{CheckSCTP, checkSCTP},
	{CheckFailedApply, checkFailedApply},
	{CheckCleanup, checkCleanup},
}

// Checks lists the names of the checks, in the order Run runs them.
func Checks() []string {
	out := make([]string, len(checks))
	for i, c := range checks {
		out[i] = c.name
	}
	return out
}

// missing names the Mode hooks a check cannot do without.
func (m Mode) missing(name string) string {
	switch name {
	case CheckConntrackFlushed:
		if !m.Conntrack {
			return "Mode.Conntrack is false"
		}
	case CheckFailedApply:
		if m.BreakSync == nil || m.Dump == nil {
			return "Mode.BreakSync or Mode.Dump is nil"
		}
	case CheckCleanup:
		if m.Dump == nil {
			return "Mode.Dump is nil"
		}

	}
	return ""
}

// problems lists what is wrong with a Mode: a Skip key naming no check
// or without a reason, a check needing a hook the mode lacks with no
// Skip reason.
func (m Mode) problems() []string {
	var bad []string
	if m.Name == "" || m.New == nil {
		bad = append(bad, "Mode.Name and Mode.New are required")
	}
	known := map[string]bool{}
	for _, c := range checks {
		known[c.name] = true
	}
	for k, reason := range m.Skip {
		if !known[k] {
			bad = append(bad, fmt.Sprintf("Skip %q names no check", k))
		} else if strings.TrimSpace(reason) == "" {
			bad = append(bad, fmt.Sprintf("Skip %q has no reason", k))
		}
	}
	for _, c := range checks {
		if miss := m.missing(c.name); miss != "" && strings.TrimSpace(m.Skip[c.name]) == "" {
			bad = append(bad, fmt.Sprintf("%q: %s and Mode.Skip gives no reason", c.name, miss))
		}
	}
	sort.Strings(bad)
	return bad
}

// Run runs every check for the mode, each as a parallel subtest with its
// own node. Checks listed in m.Skip skip with their reason.
func Run(t *testing.T, m Mode) {
	t.Helper()
	if bad := m.problems(); len(bad) > 0 {
		t.Fatalf("proxytest.Run(%s): bad Mode:\n  %s", m.Name, strings.Join(bad, "\n  "))
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if reason, ok := m.Skip[c.name]; ok {
				t.Skipf("%s mode: %s", m.Name, reason)
			}
			c.run(t, m)
		})
	}
}

func (e *Env) checkRules() {
	e.T.Helper()
	if e.Mode.CheckRules != nil && !e.T.Failed() {
		e.Mode.CheckRules(e.T, e)
	}
}

// expectSome fails unless every name in want answered at least once and
// nobody else did.
func expectOnly(t *testing.T, what string, got map[string]int, want ...string) {
	t.Helper()
	for _, w := range want {
		if got[w] == 0 {
			t.Errorf("%s: %s got no connection (answers %v, want all of %v)", what, w, got, want)
		}
	}
	for name, n := range got {
		ok := false
		for _, w := range want {
			ok = ok || name == w
		}
		if !ok {
			t.Errorf("%s: %s answered %d times (answers %v, want only %v)", what, name, n, got, want)
		}
	}
}

// expectDropped fails unless asking addr from h times out (no answer, no
// refusal).
func expectDropped(t *testing.T, h *testnet.Host, addr netip.AddrPort) {
	t.Helper()
	name, err := h.AskTCP(addr, DropWait)
	switch {
	case err == nil:
		t.Errorf("%s -> %s: answered by %q; want the packets dropped", h.Name, addr, name)
	case IsRefused(err):
		t.Errorf("%s -> %s: refused (%v); want the packets dropped (a timeout), not rejected", h.Name, addr, err)
	case !IsTimeout(err):
		t.Errorf("%s -> %s: %v; want the packets dropped (a timeout)", h.Name, addr, err)
	}
}

func expectRefused(t *testing.T, h *testnet.Host, addr netip.AddrPort) {
	t.Helper()
	// The timeout only bounds a failing check: a refusal comes with the
	// first answer to the SYN.
	name, err := h.AskTCP(addr, 5*time.Second)
	if err == nil || !IsRefused(err) {
		t.Errorf("%s -> %s: got %q, %v; want connection refused (REJECT), at once rather than a timeout", h.Name, addr, name, err)
	}
}

func checkClusterIPSpreads(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b", "c", "client"}})
	web := Name("web", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: web, ClusterIPs: addrs("10.96.0.10"), Port: 80},
		e.Endpoint("a", TCPPort), e.Endpoint("b", TCPPort), e.Endpoint("c", TCPPort))
	e.MustSync()
	for _, from := range []*testnet.Host{e.Pod("client"), e.Node} {
		got := e.AskMany(from, Addr("10.96.0.10", 80), 45)
		expectOnly(t, "from "+from.Name, got, "a", "b", "c")
	}
	e.checkRules()
}

func checkNotReady(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b", "sick", "client"}})
	web := Name("web", corev1.ProtocolTCP)
	svc := &serviceproxy.ServicePort{Name: web, ClusterIPs: addrs("10.96.0.11"), Port: 80}
	sick := e.Endpoint("sick", TCPPort)
	sick.Ready, sick.Serving = false, false
	e.Set(svc, e.Endpoint("a", TCPPort), e.Endpoint("b", TCPPort), sick)
	e.MustSync()
	expectOnly(t, "with sick not ready", e.AskMany(e.Pod("client"), Addr("10.96.0.11", 80), 30), "a", "b")

	// b turns not ready: an incremental sync.
	b := e.Endpoint("b", TCPPort)
	b.Ready, b.Serving = false, false
	e.Set(svc, e.Endpoint("a", TCPPort), b, sick)
	e.MustSync()
	expectOnly(t, "after b turned not ready", e.AskMany(e.Pod("client"), Addr("10.96.0.11", 80), 15), "a")
	e.checkRules()
}

func checkNodePort(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b"}, Outside: true})
	np := Name("np", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: np, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.20"), Port: 80, NodePort: 30020},
		e.Endpoint("a", HTTPPort), e.Remote("b", HTTPPort))
	e.MustSync()
	addr := netip.AddrPortFrom(e.Node.IP, 30020)
	got := map[string]int{}
	for i := 0; i < 30; i++ {
		name, err := e.Outside.AskHTTP(addr, "/", AskTimeout)
		if err != nil {
			t.Fatalf("outside -> NodePort %s: %v", addr, err)
		}
		got[name]++
	}
	expectOnly(t, "outside -> NodePort", got, "a", "b")
	src, err := e.ClientIP(e.Outside, addr)
	if err != nil {
		t.Fatal(err)
	}
	if src == e.Outside.IP {
		t.Errorf("an endpoint saw the outside client's own address %s: external traffic under the Cluster policy must be masqueraded", src)
	}
	e.checkRules()
}

func checkAffinity(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b", "c", "client"}})
	sticky := Name("sticky", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: sticky, ClusterIPs: addrs("10.96.0.30"), Port: 80, StickyMaxAge: 3 * time.Hour},
		e.Endpoint("a", TCPPort), e.Endpoint("b", TCPPort), e.Endpoint("c", TCPPort))
	e.MustSync()
	got := e.AskMany(e.Pod("client"), Addr("10.96.0.30", 80), 20)
	if len(got) != 1 {
		t.Fatalf("one client's connections spread over %v; want one endpoint", got)
	}
	e.checkRules()
}

// localEnv has a "local" pod on this node, a "remote" one standing for a
// pod elsewhere, a client pod and the outside client.
func localEnv(t *testing.T, m Mode) *Env {
	return NewEnv(t, m, EnvOptions{Pods: []string{"local", "remote", "client"}, Outside: true})
}

func checkExternalLocalOnlyLocal(t *testing.T, m Mode) {
	e := localEnv(t, m)
	svc := Name("local", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.21"), Port: 80, NodePort: 30021, ExternalPolicyLocal: true},
		e.Endpoint("local", TCPPort), e.Remote("remote", TCPPort))
	e.MustSync()
	expectOnly(t, "outside -> NodePort", e.AskMany(e.Outside, netip.AddrPortFrom(e.Node.IP, 30021), 12), "local")
	expectOnly(t, "pod -> cluster IP", e.AskMany(e.Pod("client"), Addr("10.96.0.21", 80), 30), "local", "remote")
	e.checkRules()
}

func checkExternalLocalSource(t *testing.T, m Mode) {
	e := localEnv(t, m)
	svc := Name("local", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.21"), Port: 80, NodePort: 30021, ExternalPolicyLocal: true},
		e.Endpoint("local", HTTPPort), e.Remote("remote", HTTPPort))
	e.MustSync()
	for i := 0; i < 3; i++ {
		src, err := e.ClientIP(e.Outside, netip.AddrPortFrom(e.Node.IP, 30021))
		if err != nil {
			t.Fatal(err)
		}
		if src != e.Outside.IP {
			t.Fatalf("the endpoint saw %s; want the outside client's own address %s", src, e.Outside.IP)
		}
	}
	e.checkRules()
}

func checkExternalLocalDrops(t *testing.T, m Mode) {
	e := localEnv(t, m)
	svc := Name("local-none", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.22"), Port: 80, NodePort: 30022, ExternalPolicyLocal: true},
		e.Remote("remote", TCPPort))
	e.MustSync()
	expectDropped(t, e.Outside, netip.AddrPortFrom(e.Node.IP, 30022))
	// "traffic from inside the cluster may still be accepted"
	expectOnly(t, "pod -> cluster IP", e.AskMany(e.Pod("client"), Addr("10.96.0.22", 80), 3), "remote")
	e.checkRules()
}

func checkInternalLocalOnlyLocal(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"local", "remote", "client"}})
	svc := Name("itp", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, ClusterIPs: addrs("10.96.0.24"), Port: 80, InternalPolicyLocal: true},
		e.Endpoint("local", TCPPort), e.Remote("remote", TCPPort))
	e.MustSync()
	expectOnly(t, "pod -> cluster IP", e.AskMany(e.Pod("client"), Addr("10.96.0.24", 80), 16), "local")
	e.checkRules()
}

func checkInternalLocalDrops(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"remote", "client"}})
	svc := Name("itp-none", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, ClusterIPs: addrs("10.96.0.23"), Port: 80, InternalPolicyLocal: true},
		e.Remote("remote", TCPPort))
	e.MustSync()
	expectDropped(t, e.Pod("client"), Addr("10.96.0.23", 80))
	e.checkRules()
}

func checkHairpin(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b"}})
	self := Name("self", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: self, ClusterIPs: addrs("10.96.0.31"), Port: 80}, e.Endpoint("a", TCPPort))
	both := Name("both", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: both, ClusterIPs: addrs("10.96.0.35"), Port: 80}, e.Endpoint("a", TCPPort), e.Endpoint("b", TCPPort))
	e.MustSync()
	expectOnly(t, "a -> its only service", e.AskMany(e.Pod("a"), Addr("10.96.0.31", 80), 3), "a")
	expectOnly(t, "a -> a service of a and b", e.AskMany(e.Pod("a"), Addr("10.96.0.35", 80), 24), "a", "b")
	e.checkRules()
}

func checkNoEndpointsRejects(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"sick", "client"}, Outside: true})
	empty := Name("empty", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: empty, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.32"), Port: 80, NodePort: 30032})
	// Endpoints exist but none is usable: "hasAnyEndpoints" is false.
	notReady := Name("not-ready", corev1.ProtocolTCP)
	sick := e.Endpoint("sick", TCPPort)
	sick.Ready, sick.Serving = false, false
	e.Set(&serviceproxy.ServicePort{Name: notReady, ClusterIPs: addrs("10.96.0.34"), Port: 80}, sick)
	emptyUDP := Name("empty-udp", corev1.ProtocolUDP)
	e.Set(&serviceproxy.ServicePort{Name: emptyUDP, ClusterIPs: addrs("10.96.0.33"), Port: 53})
	e.MustSync()

	expectRefused(t, e.Pod("client"), Addr("10.96.0.32", 80))
	expectRefused(t, e.Pod("client"), Addr("10.96.0.34", 80))
	expectRefused(t, e.Outside, netip.AddrPortFrom(e.Node.IP, 30032))
	u := e.DialUDP(e.Pod("client"), Addr("10.96.0.33", 53))
	if name, err := u.Ask(5 * time.Second); err == nil || !IsRefused(err) {
		t.Errorf("udp client -> 10.96.0.33:53: got %q, %v; want connection refused (ICMP port unreachable)", name, err)
	}
	e.checkRules()
}

// udpEnv serves a UDP service 10.96.0.40:53 from pod "old" and returns it
// with a connected client socket that has been answered by "old".
func udpEnv(t *testing.T, m Mode) (*Env, *serviceproxy.ServicePort, *UDPConn) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"old", "new", "client"}})
	dns := &serviceproxy.ServicePort{Name: Name("dns", corev1.ProtocolUDP), ClusterIPs: addrs("10.96.0.40"), Port: 53}
	e.Set(dns, e.Endpoint("old", UDPPort))
	e.MustSync()
	u := e.DialUDP(e.Pod("client"), Addr("10.96.0.40", 53))
	if got, err := u.Ask(AskTimeout); err != nil || got != "old" {
		t.Fatalf("udp before the replacement: got %q, %v; want old", got, err)
	}
	return e, dns, u
}

func checkUDP(t *testing.T, m Mode) {
	e, dns, u := udpEnv(t, m)
	// Replace the endpoint; the old pod keeps serving, so only a flushed
	// conntrack entry (a new session) brings the client to the new one.
	e.Set(dns, e.Endpoint("new", UDPPort))
	e.MustSync()
	for i := 0; i < 3; i++ {
		if got, err := u.Ask(AskTimeout); err != nil || got != "new" {
			t.Fatalf("after the replacement, datagram %d on the same socket: got %q, %v; want new", i+1, got, err)
		}
	}
	e.checkRules()
}

// conntrackTo lists the node's UDP conntrack entries to ip.
func conntrackTo(t *testing.T, e *Env, ip string) string {
	t.Helper()
	out, err := e.Node.Exec(context.Background(), "conntrack", "-L", "-p", "udp", "--orig-dst", ip)
	if err != nil {
		t.Fatalf("conntrack -L in the node namespace: %v", err)
	}
	return string(out)
}

// replySrc tells whether an entry's reply tuple comes from ip (the
// endpoint the entry was DNATed to).
func replySrc(entries, ip string) bool {
	for _, line := range strings.Split(entries, "\n") {
		f := strings.Fields(line)
		n := 0
		for _, x := range f {
			if strings.HasPrefix(x, "src=") {
				n++
				if n == 2 && x == "src="+ip {
					return true
				}
			}
		}
	}
	return false
}

func checkConntrackFlushed(t *testing.T, m Mode) {
	e, dns, u := udpEnv(t, m)
	old, nw := e.Pod("old").IP.String(), e.Pod("new").IP.String()
	if before := conntrackTo(t, e, "10.96.0.40"); !replySrc(before, old) {
		t.Fatalf("no conntrack entry towards the old endpoint %s before the replacement:\n%s", old, before)
	}
	e.Set(dns, e.Endpoint("new", UDPPort))
	e.MustSync()
	if after := conntrackTo(t, e, "10.96.0.40"); replySrc(after, old) {
		t.Errorf("the conntrack entry towards the removed endpoint %s is still there after the sync:\n%s", old, after)
	}
	if got, err := u.Ask(AskTimeout); err != nil || got != "new" {
		t.Fatalf("after the replacement: got %q, %v; want new", got, err)
	}
	if now := conntrackTo(t, e, "10.96.0.40"); !replySrc(now, nw) || replySrc(now, old) {
		t.Errorf("want one entry, towards the new endpoint %s:\n%s", nw, now)
	}
}

func checkUDPFirstEndpoint(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "client"}})
	dns := &serviceproxy.ServicePort{Name: Name("late", corev1.ProtocolUDP), ClusterIPs: addrs("10.96.0.41"), Port: 53}
	e.Set(dns)
	e.MustSync()
	u := e.DialUDP(e.Pod("client"), Addr("10.96.0.41", 53))
	if got, err := u.Ask(DropWait); err == nil {
		t.Fatalf("a service without endpoints answered %q", got)
	}
	e.Set(dns, e.Endpoint("a", UDPPort))
	e.MustSync()
	if got, err := u.Ask(AskTimeout); err != nil || got != "a" {
		t.Fatalf("after the first endpoint came, on the same socket: got %q, %v; want a", got, err)
	}
	e.checkRules()
}

func checkTerminating(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b", "gone", "client"}})
	svc := &serviceproxy.ServicePort{Name: Name("rolling", corev1.ProtocolTCP), ClusterIPs: addrs("10.96.0.45"), Port: 80}
	terminating := func(pod string, serving bool) *serviceproxy.Endpoint {
		ep := e.Endpoint(pod, TCPPort)
		ep.Ready, ep.Serving, ep.Terminating = false, serving, true
		return ep
	}
	e.Set(svc, e.Endpoint("a", TCPPort), terminating("b", true), terminating("gone", false))
	e.MustSync()
	expectOnly(t, "while a is ready", e.AskMany(e.Pod("client"), Addr("10.96.0.45", 80), 20), "a")

	// Every endpoint terminates: the serving ones take the traffic.
	e.Set(svc, terminating("a", true), terminating("b", true), terminating("gone", false))
	e.MustSync()
	expectOnly(t, "when all terminate", e.AskMany(e.Pod("client"), Addr("10.96.0.45", 80), 30), "a", "b")
	e.checkRules()
}

func checkFailedApply(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "client"}})
	good := Name("good", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: good, ClusterIPs: addrs("10.96.0.50"), Port: 80}, e.Endpoint("a", TCPPort))
	e.MustSync()
	before := m.Dump(t, e)
	if before == "" {
		t.Fatal("Mode.Dump shows nothing after a successful sync")
	}

	repair := m.BreakSync(t, e)
	added := Name("added", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: added, ClusterIPs: addrs("10.96.0.51"), Port: 80}, e.Endpoint("a", TCPPort))
	err := e.Sync()
	if err == nil {
		t.Fatal("the sync that BreakSync arranged to fail succeeded")
	}
	t.Logf("the failed sync (as arranged): %v", err)
	if m.CheckFailure != nil {
		m.CheckFailure(t, e, err)
	}
	if after := m.Dump(t, e); after != before {
		t.Errorf("the failed sync changed what the node holds:\n%s", lineDiff(before, after))
	}
	expectOnly(t, "the previous rules after the failure", e.AskMany(e.Pod("client"), Addr("10.96.0.50", 80), 3), "a")

	// The retry is a full sync and succeeds.
	repair()
	if st := e.NextState(); !st.Full {
		t.Error("the sync after a failure is not full")
	}
	e.MustSync()
	expectOnly(t, "the added service after the retry", e.AskMany(e.Pod("client"), Addr("10.96.0.51", 80), 3), "a")
	e.checkRules()
}

func checkCleanup(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b", "client"}, Outside: true})
	e.Set(&serviceproxy.ServicePort{Name: Name("web", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.60"), Port: 80, NodePort: 30060},
		e.Endpoint("a", TCPPort), e.Endpoint("b", TCPPort))
	e.Set(&serviceproxy.ServicePort{Name: Name("sticky", corev1.ProtocolTCP), ClusterIPs: addrs("10.96.0.61"), Port: 80, StickyMaxAge: time.Hour},
		e.Endpoint("a", TCPPort), e.Endpoint("b", TCPPort))
	e.Set(&serviceproxy.ServicePort{Name: Name("dns", corev1.ProtocolUDP), ClusterIPs: addrs("10.96.0.62"), Port: 53}, e.Endpoint("a", UDPPort))
	e.Set(&serviceproxy.ServicePort{Name: Name("local", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.63"), Port: 80, NodePort: 30063, ExternalPolicyLocal: true},
		e.Remote("b", TCPPort))
	e.Set(&serviceproxy.ServicePort{Name: Name("empty", corev1.ProtocolTCP), ClusterIPs: addrs("10.96.0.64"), Port: 80})
	e.MustSync()
	e.AskMany(e.Pod("client"), Addr("10.96.0.60", 80), 2)
	e.AskMany(e.Pod("client"), Addr("10.96.0.61", 80), 2)
	e.AskMany(e.Outside, netip.AddrPortFrom(e.Node.IP, 30060), 2)
	if d := m.Dump(t, e); d == "" {
		t.Fatal("Mode.Dump shows nothing after a sync")
	}
	if err := e.Cleanup(); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if d := m.Dump(t, e); d != "" {
		t.Errorf("after Cleanup the node still holds:\n%s", d)
	}
	if name, err := e.Pod("client").AskTCP(Addr("10.96.0.60", 80), DropWait); err == nil {
		t.Errorf("the cluster IP still answers (%q) after Cleanup", name)
	}
	if name, err := e.Outside.AskTCP(netip.AddrPortFrom(e.Node.IP, 30060), DropWait); err == nil {
		t.Errorf("the NodePort still answers (%q) after Cleanup", name)
	}
	// A second Cleanup (--cleanup on a clean node) has nothing to do.
	if err := e.Cleanup(); err != nil {
		t.Errorf("a second Cleanup: %v", err)
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// lineDiff lists the lines only in a (-) or only in b (+).
func lineDiff(a, b string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	var out strings.Builder
	for _, l := range strings.Split(a, "\n") {
		if cb[l] > 0 {
			cb[l]--
			continue
		}
		out.WriteString("- " + l + "\n")
	}
	for _, l := range strings.Split(b, "\n") {
		if ca[l] > 0 {
			ca[l]--
			continue
		}
		out.WriteString("+ " + l + "\n")
	}
	return out.String()
}

// LineDiff is the short line diff the suite prints, for modes' hooks.
func LineDiff(a, b string) string { return lineDiff(a, b) }

// --- external IPs, load-balancer IPs, source ranges, masquerade, SCTP ---

// Addresses out of testnet.ExternalRange (203.0.113.0/24), which clients
// route via the node.
const (
	externalIP    = "203.0.113.10"
	lbIP          = "203.0.113.20"
	lbRangedIP    = "203.0.113.30"
	externalMasqI = "203.0.113.40"
)

func checkExternalIPs(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b", "client"}, Outside: true})
	svc := Name("ext", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, ClusterIPs: addrs("10.96.0.70"), Port: 80, ExternalIPs: addrs(externalIP)},
		e.Endpoint("a", TCPPort), e.Remote("b", TCPPort))
	udp := Name("ext-udp", corev1.ProtocolUDP)
	e.Set(&serviceproxy.ServicePort{Name: udp, ClusterIPs: addrs("10.96.0.70"), Port: 53, ExternalIPs: addrs(externalIP)},
		e.Endpoint("a", UDPPort))
	e.MustSync()
	ext := Addr(externalIP, 80)
	expectOnly(t, "outside -> external IP", e.AskMany(e.Outside, ext, 30), "a", "b")
	// Pods reach the external IP too: kube-proxy captures it for
	// "traffic from pods" as well (the packet leaves the pod via the node).
	expectOnly(t, "pod -> external IP", e.AskMany(e.Pod("client"), ext, 24), "a", "b")
	if got, err := e.Outside.AskUDP(Addr(externalIP, 53), AskTimeout); err != nil || got != "a" {
		t.Errorf("outside -> udp external IP %s:53: got %q, %v; want a", externalIP, got, err)
	}
	// Only the service's port is captured on the external IP.
	if name, err := e.Outside.AskTCP(Addr(externalIP, 81), DropWait); err == nil {
		t.Errorf("outside -> %s:81 (no service port) answered %q", externalIP, name)
	}
	e.checkRules()
}

func checkLoadBalancerIP(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b"}, Outside: true})
	svc := Name("lb", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.96.0.71"), Port: 80, NodePort: 30071,
		LoadBalancerVIPs: addrs(lbIP)},
		e.Endpoint("a", TCPPort), e.Remote("b", TCPPort))
	e.MustSync()
	expectOnly(t, "outside -> load-balancer IP", e.AskMany(e.Outside, Addr(lbIP, 80), 30), "a", "b")
	expectOnly(t, "outside -> its NodePort", e.AskMany(e.Outside, netip.AddrPortFrom(e.Node.IP, 30071), 12), "a", "b")

	// The ingress IP goes away (status.loadBalancer cleared): no longer
	// captured, an incremental sync.
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.96.0.71"), Port: 80, NodePort: 30071},
		e.Endpoint("a", TCPPort), e.Remote("b", TCPPort))
	e.MustSync()
	if name, err := e.Outside.AskTCP(Addr(lbIP, 80), DropWait); err == nil {
		t.Errorf("outside -> %s:80 answered %q after the ingress IP was removed", lbIP, name)
	}
	e.checkRules()
}

func checkSourceRanges(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a"}, Outsiders: []string{"far"}})
	far := e.Outsiders["far"]
	inside := netip.PrefixFrom(e.Outside.IP, 32)
	if inside.Contains(far.IP) {
		t.Fatalf("test set-up: %s is inside %s", far.IP, inside)
	}
	svc := Name("ranged", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.96.0.72"), Port: 80, NodePort: 30072,
		LoadBalancerVIPs: addrs(lbRangedIP), LoadBalancerSourceRanges: []netip.Prefix{inside}},
		e.Endpoint("a", TCPPort))
	e.MustSync()
	lb := Addr(lbRangedIP, 80)
	expectOnly(t, "a client inside the source ranges -> load-balancer IP", e.AskMany(e.Outside, lb, 6), "a")
	if m.NoDrop != "" {
		if name, err := far.AskTCP(lb, DropWait); err == nil {
			t.Errorf("a client outside the source ranges was served by %q", name)
		} else {
			t.Logf("outside the source ranges: %v (%s mode cannot drop: %s)", err, m.Name, m.NoDrop)
		}
	} else {
		expectDropped(t, far, lb)
	}
	// The ranges restrict "traffic through the cloud-provider
	// load-balancer", not the service's NodePort or cluster IP.
	expectOnly(t, "a client outside the source ranges -> NodePort", e.AskMany(far, netip.AddrPortFrom(e.Node.IP, 30072), 3), "a")

	// The ranges widened to both clients: an incremental sync.
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.96.0.72"), Port: 80, NodePort: 30072,
		LoadBalancerVIPs: addrs(lbRangedIP), LoadBalancerSourceRanges: []netip.Prefix{inside, netip.PrefixFrom(far.IP, 32)}},
		e.Endpoint("a", TCPPort))
	e.MustSync()
	expectOnly(t, "the far client once inside the widened ranges", e.AskMany(far, lb, 3), "a")
	e.checkRules()
}

// nodeAddr tells whether ip is one of the node's own addresses: a node
// IP or its address on the pod bridge (where masqueraded traffic to a
// pod leaves from).
func nodeAddr(e *Env, ip netip.Addr) bool {
	return ip == e.Net.Gateway() || slices.Contains(e.Net.NodeIPs(), ip)
}

func checkMasqueradeOutside(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "client"}, Outside: true})
	// One endpoint, on this node: no cross-node reason to masquerade;
	// only the client being outside the cluster CIDR is.
	svc := Name("masq", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.73"), Port: 80, NodePort: 30073,
		ExternalIPs: addrs(externalMasqI)}, e.Endpoint("a", HTTPPort))
	e.MustSync()
	for _, to := range []netip.AddrPort{Addr("10.96.0.73", 80), Addr(externalMasqI, 80), netip.AddrPortFrom(e.Node.IP, 30073)} {
		src, err := e.ClientIP(e.Outside, to)
		if err != nil {
			t.Errorf("outside -> %s: %v", to, err)
			continue
		}
		t.Logf("outside (%s) -> %s: the endpoint saw %s", e.Outside.IP, to, src)
		if !nodeAddr(e, src) {
			t.Errorf("outside (%s) -> %s: the endpoint saw %s; want a node address (%s or one of %v): traffic from outside the cluster CIDR %s is masqueraded",
				e.Outside.IP, to, src, e.Net.Gateway(), e.Net.NodeIPs(), e.Net.PodCIDR())
		}
	}
	// A pod inside the cluster CIDR reaching the cluster IP is not
	// masqueraded by a mode that NATs in the kernel (kube-proxy's
	// local-traffic detector: "! -s <clusterCIDR>" marks only others); a
	// proxy that opens its own connection always shows the node.
	if m.Conntrack {
		src, err := e.ClientIP(e.Pod("client"), Addr("10.96.0.73", 80))
		if err != nil {
			t.Fatal(err)
		}
		if src != e.Pod("client").IP {
			t.Errorf("pod client -> cluster IP: the endpoint saw %s; want the pod's own address %s (inside the cluster CIDR, not masqueraded)", src, e.Pod("client").IP)
		}
	}
	e.checkRules()
}

// SCTPPort is the port ServeSCTP listens on in CheckSCTP's pods.
const SCTPPort = 8132

func checkSCTP(t *testing.T, m Mode) {
	e := NewEnv(t, m, EnvOptions{Pods: []string{"a", "b", "client"}, Outside: true})
	if err := SCTPSupport(e.Pod("a")); err != nil {
		t.Skipf("the kernel has no SCTP (no /proc/net/sctp, %v): SCTP services cannot be exercised here; the rendered rules are tested", err)
	}
	ServeSCTP(t, e.Pod("a"), SCTPPort)
	ServeSCTP(t, e.Pod("b"), SCTPPort)
	svc := Name("sctp", corev1.ProtocolSCTP)
	e.Set(&serviceproxy.ServicePort{Name: svc, Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.74"), Port: 80, NodePort: 30074},
		e.Endpoint("a", SCTPPort), e.Endpoint("b", SCTPPort))
	e.MustSync()
	ask := func(from *testnet.Host, to netip.AddrPort, n int) map[string]int {
		got := map[string]int{}
		for i := 0; i < n; i++ {
			name, err := AskSCTP(from, to, AskTimeout)
			if err != nil {
				t.Fatalf("connection %d of %d: %v (answers so far %v)", i+1, n, err, got)
			}
			got[name]++
		}
		return got
	}
	expectOnly(t, "pod -> sctp cluster IP", ask(e.Pod("client"), Addr("10.96.0.74", 80), 24), "a", "b")
	expectOnly(t, "outside -> sctp NodePort", ask(e.Outside, netip.AddrPortFrom(e.Node.IP, 30074), 12), "a", "b")
	e.checkRules()
}
