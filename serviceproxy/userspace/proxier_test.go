package userspace

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// names asks n times and counts the answers.
func names(t *testing.T, n int, ask func() (string, error)) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		name, err := ask()
		if err != nil {
			t.Fatalf("ask: %v", err)
		}
		got[name]++
	}
	return got
}

func TestClusterIPEndpointSelection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// endpoints: name → options; every one runs a server.
		endpoints map[string][]epOpt
		want      []string // the endpoints that must get connections; the others none
	}{
		{
			name:      "ClusterIP spreads over all ready endpoints",
			endpoints: map[string][]epOpt{"a": nil, "b": nil, "c": nil},
			want:      []string{"a", "b", "c"},
		},
		{
			// "Pods that are not ready are not used as backends" (only
			// ready endpoints receive new connections).
			name:      "a not-ready endpoint gets no new connections",
			endpoints: map[string][]epOpt{"a": nil, "b": nil, "sick": {notReady}},
			want:      []string{"a", "b"},
		},
		{
			// "If there are no ready endpoints, kube-proxy falls back to
			// serving-and-terminating endpoints" (ProxyTerminatingEndpoints).
			name:      "terminating endpoints are used only when none is ready",
			endpoints: map[string][]epOpt{"a": nil, "old": {terminating}},
			want:      []string{"a"},
		},
		{
			name:      "all terminating: the serving terminating endpoints are used",
			endpoints: map[string][]epOpt{"old1": {terminating}, "old2": {terminating}},
			want:      []string{"old1", "old2"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			port := sb.freePort()
			p, _ := newProxier(t)
			w := newWorld()
			var eps []*serviceproxy.Endpoint
			host := byte(10)
			for name, opts := range tc.endpoints {
				ap := netip.AddrPortFrom(sb.ip(host), uint16(port))
				host++
				serveTCP(t, name, ap)
				eps = append(eps, endpoint(ap, opts...))
			}
			svcIP := netip.AddrPortFrom(sb.ip(1), uint16(port))
			w.set(clusterIPService("web", corev1.ProtocolTCP, svcIP.Addr(), int32(svcIP.Port())), eps...)
			w.sync(t, p)
			got := names(t, 10*len(tc.endpoints), func() (string, error) { return askTCP(netip.Addr{}, svcIP) })
			for _, n := range tc.want {
				if got[n] == 0 {
					t.Errorf("endpoint %s got no connection: %v", n, got)
				}
			}
			for n, c := range got {
				if !contains2(tc.want, n) {
					t.Errorf("endpoint %s got %d connections, want none: %v", n, c, got)
				}
			}
		})
	}
}

func contains2(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// "If you want to make sure that connections from a particular client are
// passed to the same Pod each time, you can select the session affinity
// based on the client's IP addresses by setting .spec.sessionAffinity to
// ClientIP."
func TestSessionAffinityClientIPSticks(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, _ := newProxier(t)
	w := newWorld()
	var eps []*serviceproxy.Endpoint
	for i, n := range []string{"a", "b", "c"} {
		ap := netip.AddrPortFrom(sb.ip(byte(10+i)), uint16(port))
		serveTCP(t, n, ap)
		eps = append(eps, endpoint(ap))
	}
	svc := clusterIPService("sticky", corev1.ProtocolTCP, sb.ip(1), port)
	svc.StickyMaxAge = 3 * time.Hour
	w.set(svc, eps...)
	w.sync(t, p)
	svcAddr := netip.AddrPortFrom(sb.ip(1), uint16(port))
	seen := map[string]bool{}
	for _, client := range []netip.Addr{sb.ip(200), sb.ip(201), sb.ip(202), sb.ip(203)} {
		got := names(t, 8, func() (string, error) { return askTCP(client, svcAddr) })
		if len(got) != 1 {
			t.Errorf("client %s was spread over %v, want one endpoint", client, got)
		}
		for n := range got {
			seen[n] = true
		}
	}
	if len(seen) < 2 {
		t.Errorf("four clients all went to %v: affinity should still spread clients", seen)
	}
}

func TestConnectFailureRetriesAnotherEndpoint(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, reg := newProxier(t)
	w := newWorld()
	live := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveTCP(t, "live", live)
	// Two endpoints that are ready in the API but have no server: the
	// connect is refused and the proxy must move on.
	dead1 := netip.AddrPortFrom(sb.ip(11), uint16(port))
	dead2 := netip.AddrPortFrom(sb.ip(12), uint16(port))
	w.set(clusterIPService("flaky", corev1.ProtocolTCP, sb.ip(1), port), endpoint(dead1), endpoint(live), endpoint(dead2))
	w.sync(t, p)
	svcAddr := netip.AddrPortFrom(sb.ip(1), uint16(port))
	got := names(t, 9, func() (string, error) { return askTCP(netip.Addr{}, svcAddr) })
	if got["live"] != 9 {
		t.Errorf("answers %v, want all 9 from the live endpoint", got)
	}
	if f := counterValue(t, reg, "kubeproxy_userspace_dial_failures_total", map[string]string{"service": "default/flaky:p"}); f == 0 {
		t.Errorf("dial_failures_total = 0, want the refused connects counted")
	}

	// Every endpoint dead: the client's connection is reset, not left
	// hanging.
	w.set(clusterIPService("flaky", corev1.ProtocolTCP, sb.ip(1), port), endpoint(dead1), endpoint(dead2))
	w.sync(t, p)
	if name, err := askTCP(netip.Addr{}, svcAddr); err == nil || !isReset(err) {
		t.Errorf("all endpoints dead: got %q, %v; want a reset", name, err)
	}
}

func TestRemovingEndpointLetsOpenConnectionFinish(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, reg := newProxier(t)
	w := newWorld()
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	b := netip.AddrPortFrom(sb.ip(11), uint16(port))
	serveTCP(t, "a", a)
	serveTCP(t, "b", b)
	svc := clusterIPService("drain", corev1.ProtocolTCP, sb.ip(1), port)
	svcAddr := netip.AddrPortFrom(sb.ip(1), uint16(port))
	w.set(svc, endpoint(a))
	w.sync(t, p)

	c, err := dialFrom(netip.Addr{}, svcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if name, err := r.ReadString('\n'); err != nil || name != "a\n" {
		t.Fatalf("first answer %q, %v", name, err)
	}

	echo := func(msg string) {
		t.Helper()
		if _, err := io.WriteString(c, msg+"\n"); err != nil {
			t.Fatalf("write on the old connection: %v", err)
		}
		if got, err := r.ReadString('\n'); err != nil || got != msg+"\n" {
			t.Fatalf("echo on the old connection: %q, %v", got, err)
		}
	}

	// Endpoint a replaced by b: new connections go to b, the open one
	// keeps talking to a.
	w.set(svc, endpoint(b))
	w.sync(t, p)
	echo("still-a")
	if name, err := askTCP(netip.Addr{}, svcAddr); err != nil || name != "b" {
		t.Errorf("new connection after the change: %q, %v; want b", name, err)
	}
	echo("still-a-2")

	// The whole service removed: its listener closes (new connections are
	// refused), the established connection still finishes.
	w.remove(svc.Name)
	w.sync(t, p)
	if _, err := askTCP(netip.Addr{}, svcAddr); err == nil {
		t.Errorf("service removed, yet a new connection was answered")
	}
	echo("after-removal")

	// Half-close: the client's FIN reaches the endpoint, whose answer and
	// FIN come back.
	if _, err := io.WriteString(c, "last\n"); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "last\n" {
		t.Errorf("after half-close: %q, %v; want the echo then EOF", rest, err)
	}
	c.Close()
	waitFor(t, "the active gauge to drop to 0", func() bool {
		// the removed service's series is forgotten; the live one is b's earlier connection
		return counterValue(t, reg, "kubeproxy_userspace_connections_active", map[string]string{"service": "default/drain:p"}) == 0
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// kube-proxy: "If a Service has no endpoints, connections to it are
// rejected" (REJECT with tcp-reset) so that clients fail at once.
func TestNoEndpointsFailsImmediately(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		eps  func(sb *sandbox, port int32) []*serviceproxy.Endpoint
	}{
		{"no endpoints at all", func(*sandbox, int32) []*serviceproxy.Endpoint { return nil }},
		{"only not-ready endpoints", func(sb *sandbox, port int32) []*serviceproxy.Endpoint {
			ap := netip.AddrPortFrom(sb.ip(10), uint16(port))
			serveTCP(t, "sick", ap)
			return []*serviceproxy.Endpoint{endpoint(ap, notReady)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			port := sb.freePort()
			p, reg := newProxier(t)
			w := newWorld()
			w.set(clusterIPService("empty", corev1.ProtocolTCP, sb.ip(1), port), tc.eps(sb, port)...)
			w.sync(t, p)
			c, err := dialFrom(netip.Addr{}, netip.AddrPortFrom(sb.ip(1), uint16(port)))
			if err == nil { // on loopback the reset can beat connect's return
				defer c.Close()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 1))
			}
			if !isReset(err) {
				t.Fatalf("read: %v; want a reset, not a timeout", err)
			}
			if n := counterValue(t, reg, "kubeproxy_userspace_rejected_total", map[string]string{"service": "default/empty:p"}); n != 1 {
				t.Errorf("rejected_total = %v, want 1", n)
			}
		})
	}
}

func TestUDP(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, reg := newProxier(t)
	w := newWorld()
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	b := netip.AddrPortFrom(sb.ip(11), uint16(port))
	c := netip.AddrPortFrom(sb.ip(12), uint16(port))
	stopA := serveUDP(t, "a", a)
	serveUDP(t, "b", b)
	serveUDP(t, "c", c)
	svc := clusterIPService("dns", corev1.ProtocolUDP, sb.ip(1), port)
	svcAddr := netip.AddrPortFrom(sb.ip(1), uint16(port))

	t.Run("spreads new clients over the ready endpoints, replies from the service address", func(t *testing.T) {
		w.set(svc, endpoint(a), endpoint(b))
		w.sync(t, p)
		got := names(t, 10, func() (string, error) { return askUDP(svcAddr, 5*time.Second) })
		if got["a"] == 0 || got["b"] == 0 || len(got) != 2 {
			t.Errorf("answers %v, want both a and b", got)
		}
	})

	t.Run("one client stays on its endpoint while it is there", func(t *testing.T) {
		conn, err := net.Dial("udp", svcAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		got := names(t, 5, func() (string, error) { return askUDPOn(conn, 5*time.Second) })
		if len(got) != 1 {
			t.Errorf("one client's datagrams went to %v", got)
		}
	})

	t.Run("survives an endpoint replacement", func(t *testing.T) {
		w.set(svc, endpoint(a))
		w.sync(t, p)
		conn, err := net.Dial("udp", svcAddr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if name, err := askUDPOn(conn, 5*time.Second); err != nil || name != "a" {
			t.Fatalf("before: %q, %v", name, err)
		}
		// a is replaced by c (its pod deleted): "conntrack entries of
		// removed UDP endpoints are flushed", so the same client socket
		// reaches c on its next datagram.
		stopA()
		w.set(svc, endpoint(c))
		w.st.StaleUDPEndpoints = map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{svc.Name: {endpoint(a)}}
		w.sync(t, p)
		w.st.StaleUDPEndpoints = nil
		if name, err := askUDPOn(conn, 5*time.Second); err != nil || name != "c" {
			t.Errorf("after the replacement: %q, %v; want c", name, err)
		}
	})

	t.Run("a session to an endpoint without a server moves on", func(t *testing.T) {
		// a's server is stopped but a is listed again (ready in the API):
		// the port unreachable ends the session, the client's retry goes
		// elsewhere.
		w.set(svc, endpoint(a), endpoint(b))
		w.sync(t, p)
		answered := 0
		for range 6 {
			conn, err := net.Dial("udp", svcAddr.String())
			if err != nil {
				t.Fatal(err)
			}
			for range 3 { // a client retries after a lost datagram
				if name, err := askUDPOn(conn, 300*time.Millisecond); err == nil {
					if name != "b" {
						t.Errorf("answer from %q, want b", name)
					}
					answered++
					break
				}
			}
			conn.Close()
		}
		if answered != 6 {
			t.Errorf("%d of 6 clients got an answer", answered)
		}
	})

	if n := counterValue(t, reg, "kubeproxy_userspace_connections_total", map[string]string{"service": "default/dns:p", "protocol": "UDP"}); n == 0 {
		t.Errorf("connections_total for UDP sessions is 0")
	}
}

// NodePort: "the Kubernetes control plane allocates a port ... each node
// proxies that port (the same port number on every Node) into your
// Service."
func TestNodePortOnNodeIP(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	nodePort := sb.freePort()
	nodeIP := sb.ip(250) // stands for the node's address
	p, _ := newProxier(t)
	w := newWorld(nodeIP)
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveTCP(t, "a", a)
	ua := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveUDP(t, "ua", ua)
	for _, proto := range []corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP} {
		svc := clusterIPService("np", proto, sb.ip(1), port)
		svc.Type = corev1.ServiceTypeNodePort
		svc.NodePort = nodePort
		w.set(svc, endpoint(a))
	}
	w.sync(t, p)
	np := netip.AddrPortFrom(nodeIP, uint16(nodePort))
	if name, err := askTCP(netip.Addr{}, np); err != nil || name != "a" {
		t.Errorf("TCP NodePort: %q, %v", name, err)
	}
	if name, err := askUDP(np, 5*time.Second); err != nil || name != "ua" {
		t.Errorf("UDP NodePort: %q, %v", name, err)
	}
	want := []string{
		netip.AddrPortFrom(sb.ip(1), uint16(port)).String() + "/TCP",
		netip.AddrPortFrom(sb.ip(1), uint16(port)).String() + "/UDP",
		np.String() + "/TCP",
		np.String() + "/UDP",
	}
	if got := p.Addresses(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("listeners %v, want %v", got, want)
	}
}

func TestTrafficPolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                       string
		externalLocal, internaLocl bool
		client                     byte // source host in the sandbox; 250 is the node's IP
		clusterCIDR                bool // the client is inside ClusterCIDRs (a pod)
		wantNodePort, wantCluster  []string
	}{
		{
			name:         "Cluster policies use every endpoint",
			client:       200,
			wantNodePort: []string{"here", "there"}, wantCluster: []string{"here", "there"},
		},
		{
			// "externalTrafficPolicy: Local ... only routes to node-local
			// endpoints" for external traffic; the cluster IP is unaffected.
			name: "externalTrafficPolicy Local: NodePort only to local endpoints", externalLocal: true,
			client:       200,
			wantNodePort: []string{"here"}, wantCluster: []string{"here", "there"},
		},
		{
			// "internalTrafficPolicy: Local ... only routes internal
			// traffic to endpoints within the node the traffic originated from".
			name: "internalTrafficPolicy Local: cluster IP only to local endpoints", internaLocl: true,
			client:       200,
			wantNodePort: []string{"here", "there"}, wantCluster: []string{"here"},
		},
		{
			// kube-proxy: "Treat all locally-originated pod -> external
			// destination traffic as a special-case. It is subject to
			// neither form of traffic policy".
			name: "externalTrafficPolicy Local: pods reaching the NodePort use the cluster policy", externalLocal: true,
			client: 200, clusterCIDR: true,
			wantNodePort: []string{"here", "there"}, wantCluster: []string{"here", "there"},
		},
		{
			// kube-proxy: "Redirect all src-type=LOCAL -> external
			// destination to the policy=cluster chain".
			name: "externalTrafficPolicy Local: the node itself reaching the NodePort uses every endpoint", externalLocal: true,
			client:       250,
			wantNodePort: []string{"here", "there"}, wantCluster: []string{"here", "there"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			port := sb.freePort()
			nodePort := sb.freePort()
			nodeIP := sb.ip(250)
			p, _ := newProxier(t)
			w := newWorld(nodeIP)
			if tc.clusterCIDR {
				w.st.ClusterCIDRs = []netip.Prefix{netip.PrefixFrom(sb.ip(200), 32)}
			}
			here := netip.AddrPortFrom(sb.ip(10), uint16(port))
			there := netip.AddrPortFrom(sb.ip(11), uint16(port))
			serveTCP(t, "here", here)
			serveTCP(t, "there", there)
			svc := clusterIPService("pol", corev1.ProtocolTCP, sb.ip(1), port)
			svc.Type = corev1.ServiceTypeNodePort
			svc.NodePort = nodePort
			svc.ExternalPolicyLocal = tc.externalLocal
			svc.InternalPolicyLocal = tc.internaLocl
			w.set(svc, endpoint(here, local), endpoint(there))
			w.sync(t, p)
			client := sb.ip(tc.client)
			for _, target := range []struct {
				what string
				addr netip.AddrPort
				want []string
			}{
				{"NodePort", netip.AddrPortFrom(nodeIP, uint16(nodePort)), tc.wantNodePort},
				{"cluster IP", netip.AddrPortFrom(sb.ip(1), uint16(port)), tc.wantCluster},
			} {
				got := names(t, 12, func() (string, error) { return askTCP(client, target.addr) })
				for _, n := range target.want {
					if got[n] == 0 {
						t.Errorf("%s: endpoint %s got nothing: %v", target.what, n, got)
					}
				}
				for n := range got {
					if !contains2(target.want, n) {
						t.Errorf("%s: endpoint %s got connections, want only %v: %v", target.what, n, target.want, got)
					}
				}
			}
		})
	}

	t.Run("externalTrafficPolicy Local without local endpoints: NodePort connections fail at once", func(t *testing.T) {
		t.Parallel()
		sb := newSandbox(t)
		port := sb.freePort()
		nodePort := sb.freePort()
		nodeIP := sb.ip(250)
		p, _ := newProxier(t)
		w := newWorld(nodeIP)
		there := netip.AddrPortFrom(sb.ip(11), uint16(port))
		serveTCP(t, "there", there)
		svc := clusterIPService("pol", corev1.ProtocolTCP, sb.ip(1), port)
		svc.Type = corev1.ServiceTypeNodePort
		svc.NodePort = nodePort
		svc.ExternalPolicyLocal = true
		w.set(svc, endpoint(there))
		w.sync(t, p)
		if name, err := askTCP(sb.ip(200), netip.AddrPortFrom(nodeIP, uint16(nodePort))); err == nil || !isReset(err) {
			t.Errorf("NodePort: %q, %v; want a reset", name, err)
		}
		if name, err := askTCP(sb.ip(200), netip.AddrPortFrom(sb.ip(1), uint16(port))); err != nil || name != "there" {
			t.Errorf("cluster IP: %q, %v; want there", name, err)
		}
	})
}

// "loadBalancerSourceRanges ... traffic through the cloud-provider
// load-balancer will be restricted to the specified client IPs";
// externalIPs: "traffic that ingresses into the cluster with the external
// IP (as destination IP), on the Service port, will be routed to one of
// the Service endpoints".
func TestExternalAndLoadBalancerIPs(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, _ := newProxier(t)
	w := newWorld()
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveTCP(t, "a", a)
	svc := clusterIPService("lb", corev1.ProtocolTCP, sb.ip(1), port)
	svc.Type = corev1.ServiceTypeLoadBalancer
	svc.ExternalIPs = []netip.Addr{sb.ip(50)}
	svc.LoadBalancerVIPs = []netip.Addr{sb.ip(60)}
	svc.LoadBalancerSourceRanges = []netip.Prefix{netip.PrefixFrom(sb.ip(200), 32)}
	w.set(svc, endpoint(a))
	w.sync(t, p)
	ext := netip.AddrPortFrom(sb.ip(50), uint16(port))
	lb := netip.AddrPortFrom(sb.ip(60), uint16(port))
	if name, err := askTCP(sb.ip(201), ext); err != nil || name != "a" {
		t.Errorf("external IP: %q, %v", name, err)
	}
	if name, err := askTCP(sb.ip(200), lb); err != nil || name != "a" {
		t.Errorf("LB IP from an allowed source: %q, %v", name, err)
	}
	if name, err := askTCP(sb.ip(201), lb); err == nil {
		t.Errorf("LB IP from a source outside loadBalancerSourceRanges answered by %q", name)
	}
}

func TestBindFailureCountedOnceAndRetried(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, reg := newProxier(t)
	w := newWorld()
	svcAddr := netip.AddrPortFrom(sb.ip(1), uint16(port))
	squatter, err := net.Listen("tcp", svcAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveTCP(t, "a", a)
	svc := clusterIPService("taken", corev1.ProtocolTCP, sb.ip(1), port)
	w.set(svc, endpoint(a))
	w.sync(t, p)
	w.st.Changed[svc.Name] = true
	w.sync(t, p)
	labels := map[string]string{"service": "default/taken:p", "reason": "in_use"}
	if n := counterValue(t, reg, "kubeproxy_userspace_bind_failures_total", labels); n != 1 {
		t.Errorf("bind_failures_total{reason=in_use} = %v after two syncs, want 1", n)
	}
	if got := p.Addresses(); len(got) != 0 {
		t.Errorf("listeners %v, want none", got)
	}
	squatter.Close()
	w.sync(t, p)
	if name, err := askTCP(netip.Addr{}, svcAddr); err != nil || name != "a" {
		t.Errorf("after the port was freed: %q, %v", name, err)
	}
}

func TestMetricsAndCleanup(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, reg := newProxier(t)
	w := newWorld()
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveTCP(t, "a", a)
	svc := clusterIPService("m", corev1.ProtocolTCP, sb.ip(1), port)
	svcAddr := netip.AddrPortFrom(sb.ip(1), uint16(port))
	w.set(svc, endpoint(a))
	w.sync(t, p)
	labels := map[string]string{"service": "default/m:p", "protocol": "TCP"}
	for range 3 {
		if _, err := askTCP(netip.Addr{}, svcAddr); err != nil {
			t.Fatal(err)
		}
	}
	c, err := dialFrom(netip.Addr{}, svcAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "connections_total to reach 4", func() bool {
		return counterValue(t, reg, "kubeproxy_userspace_connections_total", labels) == 4
	})
	waitFor(t, "one active connection", func() bool {
		return counterValue(t, reg, "kubeproxy_userspace_connections_active", labels) == 1
	})
	if n := counterValue(t, reg, "kubeproxy_userspace_listeners", nil); n != 1 {
		t.Errorf("listeners gauge = %v, want 1", n)
	}
	if err := p.Cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Cleanup ends even established connections, and the listener.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); !isReset(err) {
		t.Errorf("after Cleanup the connection still works: %v", err)
	}
	if _, err := askTCP(netip.Addr{}, svcAddr); err == nil {
		t.Errorf("after Cleanup the service still answers")
	}
	// And the proxier can be synced again.
	w.st.Full = true
	w.sync(t, p)
	if name, err := askTCP(netip.Addr{}, svcAddr); err != nil || name != "a" {
		t.Errorf("after Cleanup and Sync: %q, %v", name, err)
	}
}

// Two service ports wanting the same address and port (an external IP
// shared by mistake): the first by name gets it; when it goes, the other
// takes over.
func TestClashFirstByNameWinsThenHandsOver(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, _ := newProxier(t)
	w := newWorld()
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	b := netip.AddrPortFrom(sb.ip(11), uint16(port))
	serveTCP(t, "a", a)
	serveTCP(t, "b", b)
	shared := sb.ip(50)
	svcA := clusterIPService("alpha", corev1.ProtocolTCP, sb.ip(1), port)
	svcA.ExternalIPs = []netip.Addr{shared}
	svcB := clusterIPService("beta", corev1.ProtocolTCP, sb.ip(2), port)
	svcB.ExternalIPs = []netip.Addr{shared}
	w.set(svcB, endpoint(b))
	w.set(svcA, endpoint(a))
	w.sync(t, p)
	ext := netip.AddrPortFrom(shared, uint16(port))
	if name, err := askTCP(netip.Addr{}, ext); err != nil || name != "a" {
		t.Errorf("shared address: %q, %v; want alpha's endpoint a", name, err)
	}
	w.remove(svcA.Name)
	w.sync(t, p)
	if name, err := askTCP(netip.Addr{}, ext); err != nil || name != "b" {
		t.Errorf("after alpha went: %q, %v; want beta's endpoint b", name, err)
	}
}

func TestUDPSessionEndsWhenIdle(t *testing.T) {
	t.Parallel()
	sb := newSandbox(t)
	port := sb.freePort()
	p, reg := newProxier(t, func(c *Config) { c.UDPIdleTimeout = 200 * time.Millisecond })
	w := newWorld()
	a := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveUDP(t, "a", a)
	w.set(clusterIPService("idle", corev1.ProtocolUDP, sb.ip(1), port), endpoint(a))
	w.sync(t, p)
	if name, err := askUDP(netip.AddrPortFrom(sb.ip(1), uint16(port)), 5*time.Second); err != nil || name != "a" {
		t.Fatalf("ask: %q, %v", name, err)
	}
	labels := map[string]string{"service": "default/idle:p", "protocol": "UDP"}
	if n := counterValue(t, reg, "kubeproxy_userspace_connections_active", labels); n != 1 {
		t.Errorf("active sessions right after the exchange: %v, want 1", n)
	}
	waitFor(t, "the idle session to end", func() bool {
		return counterValue(t, reg, "kubeproxy_userspace_connections_active", labels) == 0
	})
}

func TestRegisteredAsUserspaceMode(t *testing.T) {
	b, err := serviceproxy.NewMode(ModeName, serviceproxy.ModeConfig{NodeName: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(*Proxier); !ok || b.Name() != "userspace" {
		t.Errorf("NewMode(userspace) = %T named %q", b, b.Name())
	}
}
