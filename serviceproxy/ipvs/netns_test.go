package ipvs

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// The tests of this file apply the ipset and iptables parts of a sync
// for real, in a throwaway node namespace (internal/testnet; they skip
// unless root), with the IPVS table and kube-ipvs0 faked: this kernel
// has neither IPVS nor the dummy link type (kernel_test.go covers those
// where the kernel has them). The sets and rules in the namespace must
// equal the rendered input.

// ipsetNode returns a node namespace where ipset works, or skips.
func ipsetNode(t *testing.T) *testnet.Host {
	t.Helper()
	n := testnet.New(t, testnet.Options{})
	node := n.Node()
	probe := "SB-PROBE-" + utilrand.String(5)
	if out, err := node.Exec(context.Background(), "ipset", "create", probe, "hash:ip"); err != nil {
		t.Skipf("kernel has no ip_set (ipset create in a throwaway namespace: %v %s)", err, out)
	}
	if _, err := node.Exec(context.Background(), "ipset", "destroy", probe); err != nil {
		t.Fatal(err)
	}
	return node
}

// netnsProxier is a proxier with the real ipset and iptables tools and
// a fake IPVS table, whose clean-up is registered.
func netnsProxier(t *testing.T, node *testnet.Host, cfg Config) (*Proxier, *fakeKernel) {
	t.Helper()
	k := newFakeKernel()
	p := newTestProxier(t, cfg, k, "198.51.100.1")
	p.tools = execTools{log: p.log}
	t.Cleanup(func() {
		if err := node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p, k
}

// netnsState has a service of every kind, IPv4 and IPv6.
func netnsState() *serviceproxy.State {
	st := newState()
	st.Node.IPs = addrs("198.51.100.1", "fd00::1")
	st.ClusterCIDRs = prefixes("10.244.0.0/24", "fd00:10:244::/64")
	add(st, &serviceproxy.ServicePort{Name: spn("ns", "web", "http", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
		ClusterIPs: addrs("10.96.0.10"), Port: 80, NodePort: 30080, ExternalPolicyLocal: true, HealthCheckNodePort: 32000,
		LoadBalancerVIPs: addrs("203.0.113.10"), LoadBalancerSourceRanges: prefixes("198.51.100.0/24", "203.0.113.128/25"),
		ExternalIPs: addrs("203.0.113.20")},
		ep("10.244.0.2", 8080, true), ep("10.244.0.3", 8080, false))
	add(st, &serviceproxy.ServicePort{Name: spn("ns", "dns", "dns", corev1.ProtocolUDP), Protocol: corev1.ProtocolUDP,
		ClusterIPs: addrs("10.96.0.53"), Port: 53, NodePort: 30053, ExternalIPs: addrs("203.0.113.21")}, ep("10.244.0.4", 53, true))
	add(st, &serviceproxy.ServicePort{Name: spn("ns", "sctp", "", corev1.ProtocolSCTP), Protocol: corev1.ProtocolSCTP, Type: corev1.ServiceTypeNodePort,
		ClusterIPs: addrs("10.96.0.132"), Port: 9000, NodePort: 30132}, ep("10.244.0.5", 9000, true))
	add(st, &serviceproxy.ServicePort{Name: spn("ns", "v6", "", corev1.ProtocolTCP), ClusterIPs: addrs("fd00:96::10"), Port: 80, NodePort: 30081},
		ep("fd00:10:244::2", 8080, true))
	return st
}

func (p *Proxier) syncIn(t *testing.T, node *testnet.Host, st *serviceproxy.State) {
	t.Helper()
	err := node.Do(func() error { return p.Sync(context.Background(), st) })
	st.Changed = map[serviceproxy.ServicePortName]bool{}
	st.Full = err != nil
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
}

// kernelSets parses "ipset save" in the node, keeping this mode's sets.
func kernelSets(t *testing.T, node *testnet.Host) map[string]*parsedSet {
	t.Helper()
	out, err := node.Exec(context.Background(), "ipset", "save")
	if err != nil {
		t.Fatal(err)
	}
	sets := parseIPSet(t, string(out))
	for name := range sets {
		if !ourSetNames()[name] {
			delete(sets, name)
		}
	}
	return sets
}

func compareSets(t *testing.T, what string, want, got map[string]*parsedSet) {
	t.Helper()
	names := func(m map[string]*parsedSet) string {
		var l []string
		for n := range m {
			l = append(l, n)
		}
		sort.Strings(l)
		return strings.Join(l, " ")
	}
	if names(want) != names(got) {
		t.Errorf("%s: sets in the kernel\n%s\nrendered\n%s", what, names(got), names(want))
	}
	for name, w := range want {
		g := got[name]
		if g == nil {
			continue
		}
		if g.setType != w.setType || g.family != w.family {
			t.Errorf("%s: set %s is %s %s in the kernel, rendered %s %s", what, name, g.setType, g.family, w.setType, w.family)
		}
		if !sameMembers(g.members, w.members) {
			t.Errorf("%s: set %s has %v in the kernel, rendered %v", what, name, g.members, w.members)
		}
	}
}

// splitWords splits an iptables rule into words, keeping quoted words
// whole (without their quotes).
func splitWords(line string) []string {
	var out []string
	var cur strings.Builder
	inQuote, any := false, false
	for _, r := range line {
		switch {
		case r == '"':
			inQuote, any = !inQuote, true
		case r == ' ' && !inQuote:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// canonicalRule brings a rule to the form iptables-save prints it in:
// the base matches (-s, -d, -p, with their "!") first, in that order;
// marks as short hex, MARK --or-mark/--xor-mark as --set-xmark; REJECT
// with its default --reject-with; "-I" as "-A".
func canonicalRule(line string, ipv6 bool) string {
	w := splitWords(line)
	if len(w) < 2 {
		return line
	}
	head := []string{"-A", w[1]}
	base := map[string][]string{}
	var rest []string
	for i := 2; i < len(w); i++ {
		neg := false
		j := i
		if w[j] == "!" && j+1 < len(w) {
			neg, j = true, j+1
		}
		if (w[j] == "-s" || w[j] == "-d" || w[j] == "-p") && j+1 < len(w) {
			v := []string{w[j], w[j+1]}
			if neg {
				v = []string{"!", w[j], w[j+1]}
			}
			base[w[j]] = v
			i = j + 1
			continue
		}
		rest = append(rest, w[i])
	}
	out := head
	for _, k := range []string{"-s", "-d", "-p"} {
		out = append(out, base[k]...)
	}
	for i := 0; i < len(rest); i++ {
		x := strings.ReplaceAll(rest[i], `\'`, "'")
		switch {
		case (x == "--or-mark" || x == "--xor-mark") && i+1 < len(rest):
			// iptables-save prints MARK --or-mark X as --set-xmark X/X
			// and --xor-mark X as --set-xmark X/0x0.
			v := shortHex(rest[i+1])
			mask := v
			if x == "--xor-mark" {
				mask = "0x0"
			}
			out = append(out, "--set-xmark", v+"/"+mask)
			i++
			continue
		case strings.HasPrefix(x, "0x"):
			out = append(out, shortHex(x))
			continue
		case x == "REJECT" && i > 0 && rest[i-1] == "-j" && (i+1 >= len(rest) || rest[i+1] != "--reject-with"):
			if ipv6 {
				out = append(out, x, "--reject-with", "icmp6-port-unreachable")
			} else {
				out = append(out, x, "--reject-with", "icmp-port-unreachable")
			}
			continue
		}
		out = append(out, x)
	}
	return strings.Join(out, " ")
}

func shortHex(x string) string {
	parts := strings.Split(x, "/")
	for i, p := range parts {
		if v, err := strconv.ParseUint(strings.TrimPrefix(p, "0x"), 16, 32); err == nil {
			parts[i] = fmt.Sprintf("%#x", v)
		}
	}
	return strings.Join(parts, "/")
}

// ruleSet lists, per "table chain", the rules of this mode (its chains,
// and the rules of other chains jumping to them), canonical, in order.
func ruleSet(data string, ipv6 bool) map[string][]string {
	ours := map[string]bool{}
	for _, list := range iptablesChains {
		for _, c := range list {
			ours[c] = true
		}
	}
	out := map[string][]string{}
	table := ""
	for _, line := range strings.Split(data, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			c := strings.Fields(line)[0][1:]
			if ours[c] {
				out[table+" "+c] = append(out[table+" "+c], []string{}...)
			}
		case strings.HasPrefix(line, "-A ") || strings.HasPrefix(line, "-I "):
			w := strings.Fields(line)
			target := w[len(w)-1]
			if i := strings.LastIndex(line, " -j "); i >= 0 {
				target = strings.Fields(line[i+4:])[0]
			}
			if !ours[w[1]] && !ours[target] {
				continue
			}
			key := table + " " + w[1]
			if w[0] == "-I" {
				// inserted at the top: the last one ends up first
				out[key] = append([]string{canonicalRule(line, ipv6)}, out[key]...)
			} else {
				out[key] = append(out[key], canonicalRule(line, ipv6))
			}
		}
	}
	return out
}

func compareRules(t *testing.T, what string, want, got map[string][]string) {
	t.Helper()
	keys := map[string]bool{}
	for k := range want {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	for k := range keys {
		w, g := strings.Join(want[k], "\n"), strings.Join(got[k], "\n")
		if _, ok := got[k]; !ok && len(want[k]) == 0 {
			if _, declared := want[k]; declared {
				t.Errorf("%s: chain %s is not in the kernel", what, k)
			}
			continue
		}
		if w != g {
			t.Errorf("%s: chain %s\nkernel:\n%s\nrendered:\n%s", what, k, g, w)
		}
	}
}

func saveRules(t *testing.T, node *testnet.Host, ipv6 bool) string {
	t.Helper()
	cmd := "iptables-save"
	if ipv6 {
		cmd = "ip6tables-save"
	}
	out, err := node.Exec(context.Background(), cmd)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// checkKernelEqualsRendering compares the node's sets and rules with a
// fresh rendering of st.
func checkKernelEqualsRendering(t *testing.T, what string, node *testnet.Host, st *serviceproxy.State, cfg Config) {
	t.Helper()
	r := newTestProxier(t, cfg, nil, "198.51.100.1")
	out, err := r.Render(st)
	if err != nil {
		t.Fatal(err)
	}
	sec := sections(t, out)
	compareSets(t, what, parseIPSet(t, sec["ipset restore"]), kernelSets(t, node))
	compareRules(t, what+" (IPv4)", ruleSet(sec["iptables-restore"], false), ruleSet(saveRules(t, node, false), false))
	if v6, ok := sec["ip6tables-restore"]; ok {
		compareRules(t, what+" (IPv6)", ruleSet(v6, true), ruleSet(saveRules(t, node, true), true))
	}
}

// TestNetnsSetsAndRulesEqualRendering: after a first sync and after
// partial syncs, "ipset save" and iptables-save (ip6tables-save) in the
// namespace equal the rendered input; Cleanup leaves none of it.
func TestNetnsSetsAndRulesEqualRendering(t *testing.T) {
	t.Parallel()
	node := ipsetNode(t)
	cfg := Config{}
	p, k := netnsProxier(t, node, cfg)
	st := netnsState()
	p.syncIn(t, node, st)
	checkKernelEqualsRendering(t, "first sync", node, st, cfg)

	// Partial syncs: an endpoint goes, a service goes, one comes.
	web := spn("ns", "web", "http", corev1.ProtocolTCP)
	st.Endpoints[web] = st.Endpoints[web][1:]
	st.Changed[web] = true
	p.syncIn(t, node, st)
	checkKernelEqualsRendering(t, "endpoint removed", node, st, cfg)

	dns := spn("ns", "dns", "dns", corev1.ProtocolUDP)
	delete(st.Services, dns)
	delete(st.Endpoints, dns)
	add(st, &serviceproxy.ServicePort{Name: spn("ns", "new", "", corev1.ProtocolTCP), ClusterIPs: addrs("10.96.0.77"), Port: 7777}, ep("10.244.0.7", 7777, true))
	p.syncIn(t, node, st)
	checkKernelEqualsRendering(t, "service replaced", node, st, cfg)
	if len(k.links[DummyDevice]) == 0 {
		t.Error("no address bound on the (fake) kube-ipvs0")
	}

	// No temporary set is left.
	out, err := node.Exec(context.Background(), "ipset", "list", "-n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "SB-IPVS-TMP") {
		t.Errorf("temporary sets left:\n%s", out)
	}

	// A restart's first (full) sync over the existing sets and rules
	// reaches the same state.
	p2, _ := netnsProxier(t, node, cfg)
	st.Full = true
	p2.syncIn(t, node, st)
	checkKernelEqualsRendering(t, "full sync over existing state", node, st, cfg)

	if err := node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	if sets := kernelSets(t, node); len(sets) != 0 {
		t.Errorf("sets left after Cleanup: %v", sets)
	}
	for _, v6 := range []bool{false, true} {
		if rules := ruleSet(saveRules(t, node, v6), v6); len(rules) != 0 {
			t.Errorf("rules left after Cleanup (IPv6 %v): %v", v6, rules)
		}
	}
}

// TestNetnsCleanupLeavesIPTablesModeAlone: Cleanup of this mode in a
// namespace where only the iptables mode's chains exist (same names:
// KUBE-SERVICES, KUBE-POSTROUTING, KUBE-MARK-MASQ, ...) leaves them.
func TestNetnsCleanupLeavesIPTablesModeAlone(t *testing.T) {
	t.Parallel()
	node := ipsetNode(t)
	p, _ := netnsProxier(t, node, Config{})
	rules := "*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n" +
		"-I OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\nCOMMIT\n"
	t.Cleanup(func() {
		_, _ = node.ExecInput(context.Background(), []byte("*nat\n-D OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n-X KUBE-SERVICES\n-F KUBE-MARK-MASQ\n-X KUBE-MARK-MASQ\nCOMMIT\n"), "iptables-restore", "--noflush")
	})
	if out, err := node.ExecInput(context.Background(), []byte(rules), "iptables-restore", "--noflush"); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	before := saveRules(t, node, false)
	if err := node.Do(func() error { return p.Cleanup(context.Background()) }); err != nil {
		t.Fatal(err)
	}
	after := saveRules(t, node, false)
	if a, b := ruleSet(before, false), ruleSet(after, false); fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("the iptables mode's chains changed:\nbefore %v\nafter  %v", a, b)
	}
	if !strings.Contains(after, ":KUBE-SERVICES") {
		t.Errorf("KUBE-SERVICES removed:\n%s", after)
	}
}

// TestNetnsLargeSet: KUBE-LOOP-BACK holds every local endpoint; past
// upstream's maxelem 65536 the set is created bigger (and rebuilt bigger
// through the temporary set when it grows).
func TestNetnsLargeSet(t *testing.T) {
	t.Parallel()
	node := ipsetNode(t)
	p, _ := netnsProxier(t, node, Config{})
	st := newState()
	st.Node.IPs = addrs("198.51.100.1")
	name := spn("ns", "big", "", corev1.ProtocolTCP)
	mk := func(n int) []*serviceproxy.Endpoint {
		eps := make([]*serviceproxy.Endpoint, 0, n)
		for i := 0; i < n; i++ {
			eps = append(eps, ep(fmt.Sprintf("10.%d.%d.%d", 100+i/65536, i/256%256, i%256), 8080, true))
		}
		return eps
	}
	add(st, &serviceproxy.ServicePort{Name: name, ClusterIPs: addrs("10.96.0.10"), Port: 80}, mk(1000)...)
	start := time.Now()
	p.syncIn(t, node, st)
	st.Endpoints[name] = mk(70000)
	st.Changed[name] = true
	p.syncIn(t, node, st)
	t.Logf("two syncs with up to 70000 local endpoints: %v", time.Since(start))
	sets := kernelSets(t, node)
	if n := len(sets[kubeLoopBackIPSet].members); n != 70000 {
		t.Errorf("KUBE-LOOP-BACK has %d members, want 70000", n)
	}
}
