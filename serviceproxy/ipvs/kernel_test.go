package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// requireIPVS skips unless root and the kernel has IPVS and the dummy
// link type, with the reason Probe gives.
func requireIPVS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	err := Probe()
	switch {
	case errors.Is(err, ErrNoIPVS):
		t.Skip(ErrNoIPVS.Error())
	case errors.Is(err, ErrNoDummy):
		t.Skip(ErrNoDummy.Error())
	case err != nil:
		t.Fatalf("probe: %v", err)
	}
}

// TestProbeNamesWhatIsMissing: Probe's verdict agrees with what the
// kernel does in a namespace of our own: "ip link add ... type dummy"
// fails exactly when Probe reports ErrNoDummy, and /proc/net/ip_vs
// exists exactly when it does not report ErrNoIPVS.
func TestProbeNamesWhatIsMissing(t *testing.T) {
	n := testnet.New(t, testnet.Options{}) // skips unless root
	err := Probe()
	if err != nil {
		t.Logf("probe: %v", err)
	}
	node := n.Node()
	_, dummyErr := node.Exec(context.Background(), "ip", "link", "add", "sbprobe0", "type", "dummy")
	if got, want := errors.Is(err, ErrNoDummy), dummyErr != nil; got != want {
		t.Errorf("Probe says no dummy link type: %v; ip link add type dummy failed: %v (%v)", got, want, dummyErr)
	}
	_, ipvsErr := node.Exec(context.Background(), "cat", "/proc/net/ip_vs")
	if got, want := errors.Is(err, ErrNoIPVS), ipvsErr != nil; got != want {
		t.Errorf("Probe says no IPVS: %v; /proc/net/ip_vs missing: %v (%v)", got, want, ipvsErr)
	}
	if errors.Is(err, ErrNoIPVS) && !strings.Contains(err.Error(), "kernel has no IPVS (ip_vs) module") ||
		errors.Is(err, ErrNoDummy) && !strings.Contains(err.Error(), "no dummy link type") {
		t.Errorf("the error does not name what is missing: %v", err)
	}
}

// TestRealKernelLinks exercises the netlink side in a node namespace:
// EnsureDummy fails with ErrNoDummy exactly where the kernel has no
// dummy link type; elsewhere the addresses bound on kube-ipvs0 are
// listed, kept out of HostAddrs, and removed with the link.
func TestRealKernelLinks(t *testing.T) {
	n := testnet.New(t, testnet.Options{}) // skips unless root
	node := n.Node()
	_, dummyErr := node.Exec(context.Background(), "ip", "link", "add", "sbprobe0", "type", "dummy")
	err := node.Do(func() error {
		k, err := openLinks()
		if err != nil {
			return err
		}
		defer k.Close()
		hostBefore, err := k.HostAddrs(DummyDevice)
		if err != nil {
			return err
		}
		if !containsAddr(hostBefore, n.NodeIPs()[0]) {
			t.Errorf("HostAddrs %v lacks the node's address %s", hostBefore, n.NodeIPs()[0])
		}
		for _, a := range hostBefore {
			if a.IsLoopback() {
				t.Errorf("HostAddrs holds loopback %s", a)
			}
		}
		err = k.EnsureDummy(DummyDevice)
		if dummyErr != nil {
			if !errors.Is(err, ErrNoDummy) {
				t.Errorf("EnsureDummy on a kernel without dummy links: %v, want ErrNoDummy", err)
			}
			t.Skip(ErrNoDummy.Error())
		}
		if err != nil {
			return err
		}
		vip := netip.MustParseAddr("10.96.0.10")
		if err := k.AddAddr(DummyDevice, vip); err != nil {
			return err
		}
		bound, err := k.LinkAddrs(DummyDevice)
		if err != nil {
			return err
		}
		if len(bound) != 1 || bound[0] != vip {
			t.Errorf("kube-ipvs0 holds %v, want [%s]", bound, vip)
		}
		host, err := k.HostAddrs(DummyDevice)
		if err != nil {
			return err
		}
		if containsAddr(host, vip) {
			t.Errorf("HostAddrs %v holds the service address bound on kube-ipvs0", host)
		}
		return k.DeleteDummy(DummyDevice)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func containsAddr(l []netip.Addr, a netip.Addr) bool {
	for _, x := range l {
		if x == a {
			return true
		}
	}
	return false
}

// TestIPVSScenario runs the mode for real where the kernel has IPVS: a
// node namespace with pods, real connections. "kube-proxy ... chooses a
// backend" among the ready endpoints; NodePort works from a client
// namespace standing for the outside; a service without endpoints
// refuses at once; the IPVS table equals the rendering.
func TestIPVSScenario(t *testing.T) {
	requireIPVS(t)
	n := testnet.New(t, testnet.Options{})
	node := n.Node()
	pods := map[string]*testnet.Host{}
	for _, name := range []string{"a", "b", "c"} {
		h := n.AddPod(t, name)
		h.ServeTCP(t, 8080)
		pods[name] = h
	}
	client := n.AddClient(t, "outside")
	p, err := New(Config{NodeName: "node"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	st := newState()
	st.Node.Name = "node"
	st.Node.IPs = n.NodeIPs()
	st.ClusterCIDRs = []netip.Prefix{n.PodCIDR()}
	var eps []*serviceproxy.Endpoint
	for _, name := range []string{"a", "b", "c"} {
		eps = append(eps, &serviceproxy.Endpoint{IP: pods[name].IP, Port: 8080, Ready: true, Serving: true, NodeName: "node", IsLocal: true})
	}
	add(st, &serviceproxy.ServicePort{Name: spn("default", "web", "", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
		ClusterIPs: addrs("10.96.0.10"), Port: 80, NodePort: 30080}, eps...)
	add(st, &serviceproxy.ServicePort{Name: spn("default", "empty", "", corev1.ProtocolTCP), ClusterIPs: addrs("10.96.0.11"), Port: 80})
	if err := node.Do(func() error { return p.Sync(context.Background(), st) }); err != nil {
		t.Fatalf("sync: %v", err)
	}

	var rendered []byte
	var table string
	if err := node.Do(func() error {
		var err error
		if rendered, err = p.Render(st); err != nil {
			return err
		}
		k, err := openKernel()
		if err != nil {
			return err
		}
		defer k.Close()
		svcs, err := servicesFromKernel(k)
		table = string(renderIPVSAdm(svcs))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if want := sections(t, rendered)["ipvsadm -S -n"]; table != want {
		t.Errorf("IPVS table differs from the rendering:\n%s", diffLines(want, table))
	}

	seen := map[string]int{}
	for i := 0; i < 30; i++ {
		name, err := pods["a"].AskTCP(netip.MustParseAddrPort("10.96.0.10:80"), 2*time.Second)
		if err != nil {
			t.Fatalf("cluster IP, try %d: %v", i, err)
		}
		seen[name]++
	}
	if len(seen) != 3 {
		t.Errorf("rr over 3 ready endpoints answered by %v", seen)
	}
	if _, err := client.AskTCP(netip.AddrPortFrom(n.NodeIPs()[0], 30080), 2*time.Second); err != nil {
		t.Errorf("NodePort from outside: %v", err)
	}
	start := time.Now()
	_, err = pods["a"].AskTCP(netip.MustParseAddrPort("10.96.0.11:80"), 5*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("service without endpoints: %v after %v, want refused at once", err, time.Since(start))
	}
}
