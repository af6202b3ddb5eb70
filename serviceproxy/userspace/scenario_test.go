package userspace

import (
	"context"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/proxytest"
)

// usMode is the userspace mode as the shared scenario suite runs it: the
// proxier runs in the node namespace, cluster IPs are added to its lo.
// What the mode cannot do, by design (see the package comment,
// "Differences from the kernel modes"), is skipped with the reason.
func usMode() proxytest.Mode {
	const resets = "a Go proxy must accept a connection before it knows it has nowhere to send it: " +
		"without a usable endpoint (kube-proxy's REJECT and DROP cases alike) it resets the accepted connection at once " +
		"(TestNamespaceScenarios: \"a service without endpoints resets at once\"), "
	return proxytest.Mode{
		Name: ModeName,
		New: func(t *testing.T, cfg serviceproxy.ModeConfig) serviceproxy.Backend {
			p, err := New(Config{Logger: cfg.Logger, Registerer: cfg.Registerer, NodeIPs: cfg.NodeIPs, ClusterCIDRs: cfg.ClusterCIDRs})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		Dump: dumpUserspace,
		NoDrop: "a Go proxy accepts the connection before it knows the client is outside loadBalancerSourceRanges; " +
			"it then resets it at once (balancer.admits) where kube-proxy's KUBE-PROXY-FIREWALL drops",
		Skip: map[string]string{
			proxytest.CheckExternalLocalSource: "a proxy opens its own connection to the endpoint, from the node's address: " +
				"no mode without NAT can keep the client's source address (kube-proxy's userspace mode could not either)",
			proxytest.CheckExternalLocalDrops: resets + "where the kernel modes drop",
			proxytest.CheckInternalLocalDrops: resets + "where the kernel modes drop",
			proxytest.CheckNoEndpointsRejects: resets + "instead of refusing the connect; UDP datagrams are dropped (no ICMP port unreachable)",
			proxytest.CheckConntrackFlushed: "no NAT, no conntrack entries: UDP is relayed through a socket per client session; " +
				"the sessions to a removed endpoint end at the sync (CheckUDP shows the client moving to the new endpoint)",
			proxytest.CheckSCTP: "Go's net package has no SCTP sockets and the userspace proxy relays TCP and UDP only " +
				"(kube-proxy's userspace mode had no SCTP either); SCTP service ports get no listener",
			proxytest.CheckFailedApply: "there is no transaction to fail: Sync opens and closes listeners one by one, and a listener " +
				"that cannot open is logged, counted (kubeproxy_userspace_bind_failures_total) and retried on the next sync while " +
				"every other service port keeps serving (TestPrivilegedPortWarnsOnceAndIsNotRemapped)",
		},
	}
}

// TestScenarios runs the shared scenario suite (serviceproxy/proxytest)
// for the userspace mode.
func TestScenarios(t *testing.T) {
	proxytest.Run(t, usMode())
}

// dumpUserspace lists what the mode holds in the node namespace: the
// addresses it added to lo (tagged with AddrProto) and the sockets
// listening there ("" when none).
func dumpUserspace(t *testing.T, e *proxytest.Env) string {
	t.Helper()
	var out strings.Builder
	err := e.Node.Do(func() error {
		idx, err := interfaceIndex("lo")
		if err != nil {
			return err
		}
		addrs, err := taggedAddrs(idx)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			out.WriteString("address " + a.String() + " on lo\n")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("addresses in the node namespace: %v", err)
	}
	ss, err := e.Node.Exec(context.Background(), "ss", "-H", "-l", "-n", "-t", "-u")
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(ss)), "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			out.WriteString("listening " + line + "\n")
		}
	}
	return out.String()
}
