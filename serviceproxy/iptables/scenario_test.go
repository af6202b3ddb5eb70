package iptables

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/proxytest"
)

// The scenario tests run the iptables mode for real: a node namespace
// with a bridge, pod namespaces serving on it, client namespaces standing
// for the outside (internal/testnet), and real connections. The checks
// every mode shares are serviceproxy/proxytest's; the tests below them
// are this mode's own. They need root; testnet.New skips them otherwise.

func newBackend(t *testing.T, cfg Config) *Proxier {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// iptMode is the iptables mode as the shared scenario suite runs it.
func iptMode() proxytest.Mode {
	return proxytest.Mode{
		Name: ModeName,
		New: func(t *testing.T, cfg serviceproxy.ModeConfig) serviceproxy.Backend {
			return newBackend(t, Config{NodeName: cfg.NodeName, NodeIPs: cfg.NodeIPs, ClusterCIDRs: cfg.ClusterCIDRs, Logger: cfg.Logger, Metrics: cfg.Metrics})
		},
		Conntrack: true,
		Dump:      dumpKube,
		// An affinity timeout beyond xt_recent's range ("out of range
		// (1-4294967295)") makes iptables-restore fail on the affinity
		// rule, after the other rules of the input were accepted (the API
		// caps timeoutSeconds at 86400; this stands for any failing
		// restore).
		BreakSync: func(t *testing.T, e *proxytest.Env) func() {
			bad := proxytest.Name("bad", corev1.ProtocolTCP)
			e.Set(&serviceproxy.ServicePort{Name: bad, ClusterIPs: addrs("10.96.0.59"), Port: 80, StickyMaxAge: (1 << 33) * time.Second},
				e.Endpoint(firstPod(e), proxytest.TCPPort))
			return func() { e.Remove(bad) }
		},
		// "iptables-restore is atomic per table": the failure shows the
		// offending lines, is counted in
		// kubeproxy_sync_proxy_rules_iptables_restore_failures_total (and,
		// the sync being partial, in ..._partial_restore_failures_total),
		// and the next sync is full.
		CheckFailure: func(t *testing.T, e *proxytest.Env, err error) {
			var re *restoreError
			if !errors.As(err, &re) || re.near == "" {
				t.Errorf("error %v does not show the offending lines", err)
			}
			if got := testutil.ToFloat64(e.Metrics.IPTablesRestoreFailuresTotal); got != 1 {
				t.Errorf("restore failures = %v, want 1", got)
			}
			if got := testutil.ToFloat64(e.Metrics.IPTablesPartialRestoreFailuresTotal); got != 1 {
				t.Errorf("partial restore failures = %v, want 1", got)
			}
			if fs := e.Backend.(*Proxier).families[0]; fs == nil || fs.synced {
				t.Error("after a failure the next sync must be full")
			}
		},
		CheckRules: func(t *testing.T, e *proxytest.Env) {
			// What a first sync of the last State writes (with the
			// jumps from the built-in chains and kubelet's chains).
			data, err := e.Backend.(*Proxier).RenderFamily(e.LastState(), false)
			if err != nil {
				t.Fatal(err)
			}
			rendered := string(data)
			compareWithKernel(t, rendered, save(t, e.Node, "iptables-save", "nat"), "nat")
			compareWithKernel(t, rendered, save(t, e.Node, "iptables-save", "filter"), "filter")
		},
	}
}

func firstPod(e *proxytest.Env) string {
	for _, h := range e.Net.Pods() {
		return h.Name
	}
	e.T.Fatal("no pod")
	return ""
}

// TestScenarios runs the shared scenario suite (serviceproxy/proxytest)
// for the iptables mode.
func TestScenarios(t *testing.T) {
	proxytest.Run(t, iptMode())
}

func save(t *testing.T, h *testnet.Host, cmd, table string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), cmd, "-t", table)
	if err != nil {
		t.Fatalf("%s -t %s: %v", cmd, table, err)
	}
	return string(out)
}

// dumpKube is every KUBE-* chain and rule, and every jump to one, of
// both families' nat and filter tables, normalised ("" when none).
func dumpKube(t *testing.T, e *proxytest.Env) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range []string{"iptables-save", "ip6tables-save"} {
		for _, table := range []string{"nat", "filter"} {
			var body []string
			for _, l := range strings.Split(kubeOnly(save(t, e.Node, cmd, table)), "\n") {
				if l != "" && !strings.HasPrefix(l, "*") {
					body = append(body, l)
				}
			}
			if len(body) > 0 {
				b.WriteString("# " + cmd + "\n")
				b.WriteString(normalizeRestore(t, "*"+table+"\n"+strings.Join(body, "\n")))
			}
		}
	}
	return b.String()
}

// compareWithKernel checks that the KUBE-* chains of table in the
// iptables-save output are the rendered ones, with as many rules each.
// (iptables-save prints rules in its own normalised form, e.g.
// "-d 10.96.0.10/32 -p tcp ... -m tcp --dport 80", so rules are compared
// by count per chain; TestSavedRules checks some literally.)
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

// TestSavedRules: what iptables-save prints after a sync is kube-proxy's
// layout, literally: the jumps from the built-in chains, the statistic
// rule of a 3-endpoint service, the masquerade rule.
func TestSavedRules(t *testing.T) {
	t.Parallel()
	e := proxytest.NewEnv(t, iptMode(), proxytest.EnvOptions{Pods: []string{"a", "b", "c"}})
	web := spn("default", "web", "", corev1.ProtocolTCP)
	e.Set(&serviceproxy.ServicePort{Name: web, ClusterIPs: addrs("10.96.0.10"), Port: 80},
		e.Endpoint("a", proxytest.TCPPort), e.Endpoint("b", proxytest.TCPPort), e.Endpoint("c", proxytest.TCPPort))
	e.MustSync()
	iptMode().CheckRules(t, e)
	nat := save(t, e.Node, "iptables-save", "nat")
	svcChain := servicePortPolicyClusterChain("default/web", "tcp")
	for _, want := range []string{
		"-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
		"-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
		"-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
		"-A " + svcChain + " -m comment --comment \"default/web -> " + e.Pod("a").IP.String() + ":8080\" -m statistic --mode random --probability 0.33333333349 -j KUBE-SEP-",
		"-j MASQUERADE --random-fully",
	} {
		if !strings.Contains(nat, want) {
			t.Errorf("iptables-save -t nat lacks %q:\n%s", want, nat)
		}
	}
}

// TestLocalhostNodePort: with no node IPs given, --iptables-localhost-
// nodeports (default true) lets NodePorts answer on 127.0.0.1 too, with
// route_localnet set ("Set the route_localnet sysctl we need for exposing
// NodePorts on loopback addresses").
func TestLocalhostNodePort(t *testing.T) {
	t.Parallel()
	m := iptMode()
	m.New = func(t *testing.T, cfg serviceproxy.ModeConfig) serviceproxy.Backend {
		return newBackend(t, Config{NodeName: cfg.NodeName, ClusterCIDRs: cfg.ClusterCIDRs, Logger: cfg.Logger, Metrics: cfg.Metrics})
	}
	e := proxytest.NewEnv(t, m, proxytest.EnvOptions{Pods: []string{"a"}})
	e.State.Node.IPs = nil
	e.Set(&serviceproxy.ServicePort{Name: spn("default", "np", "", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.20"), Port: 80, NodePort: 30020},
		e.Endpoint("a", proxytest.HTTPPort))
	e.MustSync()
	body, err := e.Node.AskHTTP(proxytest.Addr("127.0.0.1", 30020), "/", proxytest.AskTimeout)
	if err != nil || body != "a" {
		t.Fatalf("got %q, %v", body, err)
	}
	if v, err := e.Node.Sysctl("net.ipv4.conf.all.route_localnet"); err != nil || v != "1" {
		t.Errorf("route_localnet = %q, %v; want 1", v, err)
	}
}

// TestScenarioPartialSyncEqualsFull: a partial sync (only the changed
// service ports' chains rewritten, the others kept) leaves the kernel
// exactly as a full sync of the same state does.
func TestScenarioPartialSyncEqualsFull(t *testing.T) {
	t.Parallel()
	build := func(e *proxytest.Env, second bool) {
		for i := 0; i < 6; i++ {
			n := spn("ns", fmt.Sprintf("svc%d", i), "http", corev1.ProtocolTCP)
			svc := &serviceproxy.ServicePort{Name: n, ClusterIPs: addrs(fmt.Sprintf("10.96.1.%d", i+1)), Port: 80}
			eps := []*serviceproxy.Endpoint{ep(fmt.Sprintf("10.244.0.%d", 10+i), 80, true), ep(fmt.Sprintf("10.244.0.%d", 20+i), 80, false)}
			switch {
			case !second:
			case i == 1: // endpoints change
				eps = append(eps, ep("10.244.0.99", 80, false))
			case i == 2: // removed
				e.Remove(n)
				continue
			case i == 3: // gains affinity and a NodePort
				svc.StickyMaxAge = time.Minute
				svc.NodePort = 30003
				svc.Type = corev1.ServiceTypeNodePort
			case i == 4: // loses its endpoints
				eps = nil
			}
			e.Set(svc, eps...)
		}
		if second {
			e.Set(&serviceproxy.ServicePort{Name: spn("ns", "added", "", corev1.ProtocolUDP), Protocol: corev1.ProtocolUDP, ClusterIPs: addrs("10.96.1.100"), Port: 53},
				ep("10.244.0.50", 53, true))
		}
	}

	// Node A: state 1 (full), then state 2 as a partial sync.
	a := proxytest.NewEnv(t, iptMode(), proxytest.EnvOptions{})
	build(a, false)
	a.MustSync()
	build(a, true)
	a.MustSync()
	if st := a.LastState(); st.Full || len(st.Changed) != 4 || len(st.Removed) != 1 {
		t.Fatalf("the second sync is not the partial one wanted: full %v, changed %v, removed %v", st.Full, st.Changed, st.Removed)
	}

	// Node B: state 2 as a first (full) sync.
	b := proxytest.NewEnv(t, iptMode(), proxytest.EnvOptions{})
	build(b, false)
	build(b, true)
	b.MustSync()

	for _, table := range []string{"nat", "filter"} {
		ga := normalizeRestore(t, kubeOnly(save(t, a.Node, "iptables-save", table)))
		gb := normalizeRestore(t, kubeOnly(save(t, b.Node, "iptables-save", table)))
		if ga != gb {
			t.Errorf("%s after partial sync differs from full sync:\n%s", table, diffLines(gb, ga))
		}
	}
	// The removed service's chains are gone.
	if nat := save(t, a.Node, "iptables-save", "nat"); strings.Contains(nat, servicePortPolicyClusterChain("ns/svc2:http", "tcp")) {
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
