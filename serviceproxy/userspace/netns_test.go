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

// This mode's own behaviours with real namespaces: the proxier runs in
// the node namespace (service IPs added to its lo), the endpoints are
// pods behind the node's bridge. The behaviours every mode shares are
// checked by the shared suite (TestScenarios, serviceproxy/proxytest).
// Needs root (testnet.New skips otherwise).
func TestNamespaceScenarios(t *testing.T) {
	n := testnet.New(t, testnet.Options{})
	node := n.Node()
	pods := map[string]*testnet.Host{}
	for _, name := range []string{"a", "b", "cl"} {
		pods[name] = n.AddPod(t, name)
	}
	for _, name := range []string{"a", "b"} {
		pods[name].ServeTCP(t, 8080)
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

}
