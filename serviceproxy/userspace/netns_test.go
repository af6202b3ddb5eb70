package userspace

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// The same scenarios as the loopback tests, with real namespaces: the
// proxier runs in the node namespace (service IPs added to its lo), the
// endpoints are pods behind the node's bridge, and an outside client has
// its own link to the node. Needs root (testnet.New skips otherwise).
func TestNamespaceScenarios(t *testing.T) {
	n := testnet.New(t, testnet.Options{})
	node := n.Node()
	pods := map[string]*testnet.Host{}
	for _, name := range []string{"a", "b", "c", "sick", "cl"} {
		pods[name] = n.AddPod(t, name)
	}
	outside := n.AddClient(t, "outside")
	for _, name := range []string{"a", "b", "c", "sick"} {
		pods[name].ServeTCP(t, 8080)
		pods[name].ServeUDP(t, 5353)
	}
	pod := func(name string, port int) netip.AddrPort {
		return netip.AddrPortFrom(pods[name].IP, uint16(port))
	}

	p, _ := newProxier(t) // its Cleanup runs in the root namespace: a no-op there
	t.Cleanup(func() {
		if err := node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
			t.Errorf("Cleanup in the node namespace: %v", err)
		}
	})
	w := newWorld(n.NodeIPs()...)
	w.st.ClusterCIDRs = []netip.Prefix{n.PodCIDR()}
	sync := func(t *testing.T) {
		t.Helper()
		if err := node.Do(func() error { return p.Sync(context.Background(), w.st) }); err != nil {
			t.Fatalf("Sync in the node namespace: %v", err)
		}
		next := *w.st
		next.Changed = map[serviceproxy.ServicePortName]bool{}
		next.Removed, next.Full, next.StaleUDPEndpoints = nil, false, nil
		w.st = &next
	}
	vip := func(last byte, port int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 96, 0, last}), uint16(port))
	}
	ask := func(t *testing.T, from *testnet.Host, addr netip.AddrPort, times int) map[string]int {
		t.Helper()
		got := map[string]int{}
		for range times {
			name, err := from.AskTCP(addr, 5*time.Second)
			if err != nil {
				t.Fatalf("%s -> %s: %v", from.Name, addr, err)
			}
			got[name]++
		}
		return got
	}
	loAddrs := func(t *testing.T) string {
		t.Helper()
		out, err := node.Exec(context.Background(), "ip", "-o", "address", "show", "dev", "lo")
		if err != nil {
			t.Fatalf("ip address: %v: %s", err, out)
		}
		return string(out)
	}

	t.Run("ClusterIP spreads over all ready endpoints; a not-ready endpoint gets no new connections", func(t *testing.T) {
		svc := clusterIPService("spread", corev1.ProtocolTCP, vip(10, 80).Addr(), 80)
		w.set(svc, endpoint(pod("a", 8080)), endpoint(pod("b", 8080)), endpoint(pod("c", 8080)), endpoint(pod("sick", 8080), notReady))
		sync(t)
		got := ask(t, pods["cl"], vip(10, 80), 30)
		for _, want := range []string{"a", "b", "c"} {
			if got[want] == 0 {
				t.Errorf("%s got no connection: %v", want, got)
			}
		}
		if got["sick"] != 0 {
			t.Errorf("the not-ready endpoint got %d connections", got["sick"])
		}
		if !strings.Contains(loAddrs(t), "10.96.0.10/32") {
			t.Errorf("the cluster IP is not on the node's lo:\n%s", loAddrs(t))
		}
	})

	t.Run("sessionAffinity ClientIP sticks", func(t *testing.T) {
		svc := clusterIPService("sticky", corev1.ProtocolTCP, vip(11, 80).Addr(), 80)
		svc.StickyMaxAge = 10800 * time.Second
		w.set(svc, endpoint(pod("a", 8080)), endpoint(pod("b", 8080)), endpoint(pod("c", 8080)))
		sync(t)
		if got := ask(t, pods["cl"], vip(11, 80), 10); len(got) != 1 {
			t.Errorf("one client spread over %v", got)
		}
	})

	t.Run("connect failure retries another endpoint", func(t *testing.T) {
		// a:9999 refuses (no server); 10.244.0.250 does not exist (the
		// connect times out); b answers.
		ghost := netip.AddrPortFrom(netip.MustParseAddr("10.244.0.250"), 8080)
		svc := clusterIPService("retry", corev1.ProtocolTCP, vip(12, 80).Addr(), 80)
		w.set(svc, endpoint(pod("a", 9999)), endpoint(ghost), endpoint(pod("b", 8080)))
		sync(t)
		if got := ask(t, pods["cl"], vip(12, 80), 6); got["b"] != 6 {
			t.Errorf("answers %v, want all from b", got)
		}
	})

	t.Run("removing an endpoint lets its open connection finish", func(t *testing.T) {
		svc := clusterIPService("drain", corev1.ProtocolTCP, vip(13, 80).Addr(), 80)
		w.set(svc, endpoint(pod("a", 8080)))
		sync(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pods["cl"].DialTCP(ctx, vip(13, 80))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		if line, err := r.ReadString('\n'); err != nil || line != "a\n" {
			t.Fatalf("greeting %q, %v", line, err)
		}
		w.set(svc, endpoint(pod("b", 8080)))
		sync(t)
		if got := ask(t, pods["cl"], vip(13, 80), 3); got["b"] != 3 {
			t.Errorf("new connections went to %v, want b", got)
		}
		w.remove(svc.Name)
		sync(t)
		if _, err := io.WriteString(c, "still there\n"); err != nil {
			t.Fatal(err)
		}
		if line, err := r.ReadString('\n'); err != nil || line != "still there\n" {
			t.Errorf("the old connection after the endpoint and the service went: %q, %v", line, err)
		}
		// The address stays while a connection accepted on it is open.
		if !strings.Contains(loAddrs(t), "10.96.0.13/32") {
			t.Errorf("the removed service's IP left lo under an open connection")
		}
		c.Close()
		waitFor(t, "the removed service's IP to leave lo", func() bool {
			return !strings.Contains(loAddrs(t), "10.96.0.13/32")
		})
	})

	t.Run("a service without endpoints resets at once", func(t *testing.T) {
		svc := clusterIPService("empty", corev1.ProtocolTCP, vip(14, 80).Addr(), 80)
		w.set(svc)
		sync(t)
		if name, err := pods["cl"].AskTCP(vip(14, 80), 5*time.Second); err == nil || !isReset(err) {
			t.Errorf("got %q, %v; want a reset, not a timeout", name, err)
		}
	})

	t.Run("UDP works and survives an endpoint replacement", func(t *testing.T) {
		svc := clusterIPService("dns", corev1.ProtocolUDP, vip(15, 53).Addr(), 53)
		w.set(svc, endpoint(pod("a", 5353)))
		sync(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := pods["cl"].DialUDP(ctx, vip(15, 53))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		askOn := func() (string, error) {
			if _, err := io.WriteString(c, "name?"); err != nil {
				return "", err
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 512)
			n, err := c.Read(buf)
			return string(buf[:n]), err
		}
		if name, err := askOn(); err != nil || name != "a" {
			t.Fatalf("before: %q, %v", name, err)
		}
		w.set(svc, endpoint(pod("c", 5353)))
		w.st.StaleUDPEndpoints = map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{svc.Name: {endpoint(pod("a", 5353))}}
		sync(t)
		if name, err := askOn(); err != nil || name != "c" {
			t.Errorf("after replacing a by c: %q, %v", name, err)
		}
	})

	nodePortSvc := func(name string, last byte, nodePort int32) *serviceproxy.ServicePort {
		svc := clusterIPService(name, corev1.ProtocolTCP, vip(last, 80).Addr(), 80)
		svc.Type = corev1.ServiceTypeNodePort
		svc.NodePort = nodePort
		return svc
	}
	nodePortAddr := func(port int32) netip.AddrPort { return netip.AddrPortFrom(n.NodeIPs()[0], uint16(port)) }

	t.Run("NodePort answers an outside client on the node IP", func(t *testing.T) {
		w.set(nodePortSvc("np", 16, 30080), endpoint(pod("a", 8080)), endpoint(pod("b", 8080)))
		sync(t)
		got := ask(t, outside, nodePortAddr(30080), 10)
		if got["a"] == 0 || got["b"] == 0 {
			t.Errorf("answers %v, want both a and b", got)
		}
	})

	t.Run("externalTrafficPolicy Local: outside clients reach only local endpoints, pods every one", func(t *testing.T) {
		svc := nodePortSvc("local", 17, 30081)
		svc.ExternalPolicyLocal = true
		// b stands for a pod on another node.
		w.set(svc, endpoint(pod("a", 8080), local), endpoint(pod("b", 8080)))
		sync(t)
		if got := ask(t, outside, nodePortAddr(30081), 8); got["a"] != 8 {
			t.Errorf("outside client: %v, want only a", got)
		}
		if got := ask(t, pods["cl"], nodePortAddr(30081), 12); got["a"] == 0 || got["b"] == 0 {
			t.Errorf("pod client (in the cluster CIDR): %v, want a and b", got)
		}
	})

	t.Run("internalTrafficPolicy Local: the cluster IP reaches only local endpoints", func(t *testing.T) {
		svc := clusterIPService("itp", corev1.ProtocolTCP, vip(18, 80).Addr(), 80)
		svc.InternalPolicyLocal = true
		w.set(svc, endpoint(pod("a", 8080)), endpoint(pod("b", 8080), local))
		sync(t)
		if got := ask(t, pods["cl"], vip(18, 80), 8); got["b"] != 8 {
			t.Errorf("answers %v, want only b", got)
		}
	})

	t.Run("hairpin: a pod reaches itself through its service", func(t *testing.T) {
		svc := clusterIPService("self", corev1.ProtocolTCP, vip(19, 80).Addr(), 80)
		w.set(svc, endpoint(pod("a", 8080)))
		sync(t)
		if name, err := pods["a"].AskTCP(vip(19, 80), 5*time.Second); err != nil || name != "a" {
			t.Errorf("a -> its own service: %q, %v", name, err)
		}
	})

	t.Run("Cleanup removes the service addresses", func(t *testing.T) {
		if err := node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
			t.Fatal(err)
		}
		if out := loAddrs(t); strings.Contains(out, "10.96.") {
			t.Errorf("service addresses left on lo:\n%s", out)
		}
		if _, err := pods["cl"].AskTCP(vip(10, 80), time.Second); err == nil {
			t.Errorf("the service still answers after Cleanup")
		}
	})
}
