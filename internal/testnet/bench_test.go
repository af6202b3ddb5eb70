package testnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	utilrand "k8s.io/apimachinery/pkg/util/rand"
)

// ipScript builds the same network as New + 3×AddPod + AddClient with
// ip(8), the way a person would by hand, and tears it down again.
func ipScript(p string) (setup, teardown string) {
	var b strings.Builder
	fmt.Fprintf(&b, `set -e
ip netns add %[1]s-node
ip netns exec %[1]s-node sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.default.send_redirects=0 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1
ip -n %[1]s-node link set lo up
ip -n %[1]s-node link add sbbr0 up type bridge
ip -n %[1]s-node addr add 10.244.0.1/24 dev sbbr0
ip -n %[1]s-node route add 10.96.0.0/12 dev sbbr0
ip -n %[1]s-node route add 203.0.113.0/24 dev sbbr0
`, p)
	for i := range 3 {
		fmt.Fprintf(&b, `ip netns add %[1]s-p%[2]d
ip -n %[1]s-node link add sbp%[2]d up master sbbr0 type veth peer name eth0 netns %[1]s-p%[2]d
ip -n %[1]s-node link set sbp%[2]d type bridge_slave hairpin on
ip -n %[1]s-p%[2]d link set lo up
ip -n %[1]s-p%[2]d addr add 10.244.0.%[3]d/24 dev eth0
ip -n %[1]s-p%[2]d link set eth0 up
ip -n %[1]s-p%[2]d route add default via 10.244.0.1
`, p, i, i+2)
	}
	fmt.Fprintf(&b, `ip netns add %[1]s-cl
ip -n %[1]s-node link add sbc0 up type veth peer name eth0 netns %[1]s-cl
ip -n %[1]s-node addr add 198.51.100.1/28 dev sbc0
ip -n %[1]s-cl link set lo up
ip -n %[1]s-cl addr add 198.51.100.2/28 dev eth0
ip -n %[1]s-cl link set eth0 up
ip -n %[1]s-cl route add default via 198.51.100.1
`, p)
	teardown = fmt.Sprintf("for n in node p0 p1 p2 cl; do ip netns del %s-$n 2>/dev/null || true; done", p)
	return b.String(), teardown
}

// BenchmarkNodeThreePodsOneClient measures building and removing a node
// with three pods and one client, against the same network built with
// ip(8) commands.
func BenchmarkNodeThreePodsOneClient(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("testnet: creating network namespaces needs root")
	}
	var ours, peer time.Duration
	for b.Loop() {
		start := time.Now()
		ft := &fakeTB{TB: b}
		n := New(ft, Options{})
		for _, name := range []string{"a", "b", "c"} {
			n.AddPod(ft, name)
		}
		n.AddClient(ft, "cl")
		ft.runCleanups()
		ours += time.Since(start)

		p := fmt.Sprintf("%s%dx%s", Prefix, os.Getpid(), utilrand.String(4))
		setup, teardown := ipScript(p)
		b.Cleanup(func() { _ = exec.Command("sh", "-c", teardown).Run() })
		start = time.Now()
		if out, err := exec.CommandContext(context.Background(), "sh", "-c", setup+teardown).CombinedOutput(); err != nil {
			b.Fatalf("ip script: %v\n%s", err, out)
		}
		peer += time.Since(start)
	}
	runs := time.Duration(b.N)
	b.ReportMetric(float64((ours/runs).Microseconds())/1000, "testnet-ms/op")
	b.ReportMetric(float64((peer/runs).Microseconds())/1000, "ip-ms/op")
	b.ReportMetric(float64(ours)/float64(peer), "ratio")
	b.Logf("\n%-46s %12s %12s %7s\n%-46s %12v %12v %7.2f", "work", "testnet", "ip(8)", "ratio",
		"node+3 pods+1 client, created and removed", (ours / runs).Round(time.Microsecond), (peer / runs).Round(time.Microsecond), float64(ours)/float64(peer))
}
