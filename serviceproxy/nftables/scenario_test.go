package nftables

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/proxytest"
)

// nftMode is the nftables mode as the shared scenario suite runs it.
func nftMode() proxytest.Mode {
	return proxytest.Mode{
		Name: "nftables",
		New: func(t *testing.T, cfg serviceproxy.ModeConfig) serviceproxy.Backend {
			p, err := New(Config{NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, ClusterCIDRs: cfg.ClusterCIDRs, Logger: cfg.Logger, Metrics: cfg.Metrics})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		Conntrack: true,
		Dump:      dumpTables,
		// The kernel rejects the whole netlink batch when one operation
		// fails: here a rule for a chain that does not exist, appended
		// to the sync's real transaction.
		BreakSync: func(t *testing.T, e *proxytest.Env) func() {
			p := e.Backend.(*Proxier)
			p.beforeApply = func(tx *transaction) {
				tx.add(txOp{kind: opAddRules, f: fam4, chain: &chainDef{name: "no-such-chain"}, rules: []rule{r(stReject{})}})
			}
			return func() { p.beforeApply = nil }
		},
		CheckFailure: func(t *testing.T, e *proxytest.Env, err error) {
			if !strings.Contains(err.Error(), "nftables transaction") {
				t.Errorf("error %q does not say which transaction failed", err)
			}
			if got := testutil.ToFloat64(e.Metrics.NFTablesSyncFailuresTotal); got != 1 {
				t.Errorf("kubeproxy_sync_proxy_rules_nftables_sync_failures_total = %v, want 1", got)
			}
		},
		CheckRules: checkKernelEqualsRender,
	}
}

// TestScenarios runs the shared scenario suite (serviceproxy/proxytest)
// for the nftables mode: real connections through a node namespace.
func TestScenarios(t *testing.T) {
	proxytest.Run(t, nftMode())
}

// dumpTables lists our tables in the node namespace ("" when there are
// none).
func dumpTables(t *testing.T, e *proxytest.Env) string {
	t.Helper()
	out, err := e.Node.Exec(context.Background(), "nft", "list", "tables")
	if err != nil {
		t.Fatalf("nft list tables: %v", err)
	}
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "table" || f[2] != DefaultTable {
			continue
		}
		tbl, err := e.Node.Exec(context.Background(), "nft", "list", "table", f[1], f[2])
		if err != nil {
			t.Fatalf("nft list table %s %s: %v", f[1], f[2], err)
		}
		b.Write(tbl)
	}
	return b.String()
}

// checkKernelEqualsRender: what the node's kernel holds after the
// check's syncs (the first full, the later ones incremental) is what
// `nft -f` makes of Render's script for the last State in a fresh
// namespace, as `nft list ruleset` prints both. Two differences are
// allowed: the entries affinity sets learnt from traffic ("expires"),
// and chains the incremental syncs flushed and will delete a second
// later (kube-proxy's delay for kernels before 6.2), which must be empty.
func checkKernelEqualsRender(t *testing.T, e *proxytest.Env) {
	t.Helper()
	p := e.Backend.(*Proxier)
	script, err := p.Render(e.LastState())
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Node.Exec(context.Background(), "nft", "list", "ruleset")
	if err != nil {
		t.Fatalf("nft list ruleset: %v", err)
	}
	var rendered string
	inNetns(t, func() {
		nftCmd(t, script, "-f", "-")
		rendered = nftCmd(t, nil, "list", "ruleset")
	})
	if t.Failed() {
		return
	}
	want := normalizeListing(rendered)
	got := dropLearnt(normalizeListing(string(out)), want)
	if got != want {
		t.Errorf("the kernel differs from a full render of the last state (- render, + kernel):\n%s", proxytest.LineDiff(want, got))
	}
}

// dropLearnt removes from a normalized listing the elements with an
// expiry (learnt by "update @set") and the empty chains that want does
// not have.
func dropLearnt(got, want string) string {
	// block headers ("  chain X") by table ("table ip switchboard")
	wantBlocks := map[string]bool{}
	table := ""
	for _, l := range strings.Split(want, "\n") {
		switch {
		case !strings.HasPrefix(l, " "):
			table = l
		case !strings.HasPrefix(l, "    "):
			wantBlocks[table+"/"+l] = true
		}
	}
	lines := strings.Split(got, "\n")
	var out []string
	table = ""
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if !strings.HasPrefix(l, " ") {
			table = l
		}
		if strings.HasPrefix(l, "  chain ") && !wantBlocks[table+"/"+l] && (i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "    ")) {
			continue // an empty chain awaiting deletion
		}
		if strings.HasPrefix(l, "    ") && strings.Contains(l, " expires ") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// TestNodePortOnEveryLocalAddress: without node IPs, NodePorts answer on
// every local address but loopback, as kube-proxy without
// --nodeport-addresses ("fib daddr type local"); in nftables mode
// "localhost NodePorts are not supported".
func TestNodePortOnEveryLocalAddress(t *testing.T) {
	t.Parallel()
	m := nftMode()
	m.New = func(t *testing.T, cfg serviceproxy.ModeConfig) serviceproxy.Backend {
		p, err := New(Config{NodeName: cfg.NodeName, ClusterCIDRs: cfg.ClusterCIDRs, Logger: cfg.Logger, Metrics: cfg.Metrics})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	e := proxytest.NewEnv(t, m, proxytest.EnvOptions{Pods: []string{"a"}, Outside: true})
	e.State.Node.IPs = nil
	e.Set(&serviceproxy.ServicePort{Name: proxytest.Name("np", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort,
		ClusterIPs: addrs("10.96.0.20"), Port: 80, NodePort: 30020}, e.Endpoint("a", proxytest.TCPPort))
	e.MustSync()
	if got := e.AskMany(e.Outside, netip.AddrPortFrom(e.Node.IP, 30020), 3); got["a"] != 3 {
		t.Errorf("outside -> node IP: %v, want a", got)
	}
	if name, err := e.Node.AskTCP(proxytest.Addr("127.0.0.1", 30020), proxytest.DropWait); err == nil {
		t.Errorf("a localhost NodePort answered (%q)", name)
	}
	checkKernelEqualsRender(t, e)
}
