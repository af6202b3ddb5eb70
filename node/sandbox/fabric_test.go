package sandbox

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestSplitPodCIDR(t *testing.T) {
	for _, tc := range []struct {
		cluster string
		bits, i int
		want    string // "" an error
	}{
		// kube-controller-manager: --node-cidr-mask-size 24 of 10.244.0.0/16
		{"10.244.0.0/16", 24, 0, "10.244.0.0/24"},
		{"10.244.0.0/16", 24, 2, "10.244.2.0/24"},
		{"10.244.0.0/16", 24, 255, "10.244.255.0/24"},
		{"10.244.0.0/16", 24, 256, ""},
		{"10.244.0.0/16", 26, 5, "10.244.1.64/26"},
		{"10.244.0.0/16", 15, 0, ""},
		{"fd00::/64", 80, 0, ""},
	} {
		got, err := SplitPodCIDR(netip.MustParsePrefix(tc.cluster), tc.bits, tc.i)
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s /%d #%d: got %s, want an error", tc.cluster, tc.bits, tc.i, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("%s /%d #%d: got %s (%v), want %s", tc.cluster, tc.bits, tc.i, got, err, tc.want)
		}
	}
}

func rootLinks(t *testing.T) string {
	t.Helper()
	b, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v\n%s", err, b)
	}
	return string(b)
}

// TestFabricPodToPod wires three node namespaces, each with its own
// netns sandbox and pod CIDR, into a fabric and checks that a pod on each
// node reaches the pods on the two others by pod IP, over VXLAN and over
// host-gw routes, and that nothing remains afterwards.
func TestFabricPodToPod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the fabric needs root (network namespaces, veth, vxlan)")
	}
	plugin := buildPlugin(t)
	for _, overlay := range []string{OverlayVXLAN, OverlayHostGW} {
		t.Run(overlay, func(t *testing.T) {
			linksBefore := rootLinks(t)
			cluster := fmt.Sprintf("f%dx%d", os.Getpid()%100000, rand.IntN(100000))
			const nodes = 3
			var names []string
			for i := 1; i <= nodes; i++ {
				names = append(names, fmt.Sprintf("%s-%d", cluster, i))
			}
			t.Cleanup(func() {
				for _, n := range names {
					_, _ = RemoveNodeNamespaces(n)
				}
				_ = RemoveNamedNetNS(NetnsDir + "/" + FabricNamespaceName(cluster))
			})
			podRange := netip.MustParsePrefix("10.244.0.0/16")
			var fnodes []FabricNode
			var sbs []*NetNS
			for i, name := range names {
				path, err := CreateNamedNetNS(NodeNamespaceName(name))
				if err != nil {
					t.Fatal(err)
				}
				cidr, err := SplitPodCIDR(podRange, 24, i)
				if err != nil {
					t.Fatal(err)
				}
				s, err := NewNetNS(NetNSConfig{NodeName: name, NodeNetNS: path, StateDir: t.TempDir(), PodCIDR: cidr, PluginBinary: plugin})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close(context.Background()) })
				sbs = append(sbs, s)
				fnodes = append(fnodes, FabricNode{Name: name, NetNS: path, PodCIDR: cidr})
			}
			f, err := CreateFabric(FabricConfig{Name: cluster, Nodes: fnodes, Overlay: overlay})
			if err != nil {
				t.Fatal(err)
			}
			closed := false
			t.Cleanup(func() {
				if !closed {
					_ = f.Close()
				}
			})
			// A pod on every node, listening on :7000 in its namespace.
			type podAt struct {
				ns string
				ip netip.Addr
			}
			var pods []podAt
			for i, s := range sbs {
				pod := testPod(fmt.Sprintf("p%d", i), nil)
				nw, err := s.Setup(context.Background(), pod)
				if err != nil {
					t.Fatal(err)
				}
				if !fnodes[i].PodCIDR.Contains(nw.IPs[0]) {
					t.Fatalf("pod on node %d got %s, outside %s", i, nw.IPs[0], fnodes[i].PodCIDR)
				}
				p := podAt{ns: s.PodNetNS(pod.UID), ip: nw.IPs[0]}
				var l net.Listener
				if err := InNetNS(p.ns, func() error {
					var err error
					l, err = net.Listen("tcp", ":7000")
					return err
				}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				go func(i int) {
					for {
						c, err := l.Accept()
						if err != nil {
							return
						}
						// Answer with the node and the peer address the
						// pod sees: no NAT between pods.
						fmt.Fprintf(c, "node %d saw %s", i, c.RemoteAddr().(*net.TCPAddr).IP)
						c.Close()
					}
				}(i)
				pods = append(pods, p)
			}
			for i, from := range pods {
				for j, to := range pods {
					if i == j {
						continue
					}
					var got string
					err := InNetNS(from.ns, func() error {
						c, err := net.DialTimeout("tcp", netip.AddrPortFrom(to.ip, 7000).String(), 5*time.Second)
						if err != nil {
							return err
						}
						defer c.Close()
						_ = c.SetDeadline(time.Now().Add(5 * time.Second))
						b, err := io.ReadAll(c)
						got = string(b)
						return err
					})
					want := fmt.Sprintf("node %d saw %s", j, from.ip)
					if err != nil || got != want {
						t.Errorf("pod on node %d (%s) -> pod on node %d (%s): %q %v, want %q", i, from.ip, j, to.ip, got, err, want)
					}
				}
			}
			if overlay == OverlayVXLAN {
				out, err := exec.Command("ip", "-n", NodeNamespaceName(names[0]), "-d", "link", "show", VXLANIfName).CombinedOutput()
				if err != nil || !strings.Contains(string(out), "vxlan id 1") {
					t.Errorf("node 1 has no vxlan link: %v\n%s", err, out)
				}
			}

			for i, s := range sbs {
				if err := s.Teardown(context.Background(), testPod(fmt.Sprintf("p%d", i), nil)); err != nil {
					t.Errorf("teardown: %v", err)
				}
			}
			closed = true
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(f.NetNS()); !os.IsNotExist(err) {
				t.Errorf("fabric namespace %s still there (%v)", f.NetNS(), err)
			}
			for _, n := range names {
				if _, err := RemoveNodeNamespaces(n); err != nil {
					t.Fatal(err)
				}
			}
			entries, _ := os.ReadDir(NetnsDir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), NodeNamespaceName(cluster)) {
					t.Errorf("namespace %s left", e.Name())
				}
			}
			if after := rootLinks(t); after != linksBefore {
				t.Errorf("the host's links changed:\nbefore:\n%s\nafter:\n%s", linksBefore, after)
			}
		})
	}
}
