package ipvs

import (
	"bytes"
	"strconv"
	"strings"
)

// ruleBuffer collects iptables-restore lines: words joined by spaces.
type ruleBuffer struct{ bytes.Buffer }

func (b *ruleBuffer) line(words ...string) {
	for i, w := range words {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
	}
	b.WriteByte('\n')
}

// chainLine is upstream's utiliptables.MakeChainLine.
func chainLine(chain string) string { return ":" + chain + " - [0:0]" }

// ipsetWithIptablesChain is upstream's list of "ipsets with iptables
// source chain and the chain jump to": "iptables -t nat -A <from> -m set
// --match-set <name> <matchType> -j <to>" ("kubeNodePortLocalSetTCP must
// be prior to kubeNodePortSetTCP, the same for UDP").
var ipsetWithIptablesChain = []struct {
	name          string
	table         string
	from          string
	to            string
	matchType     string
	protocolMatch string
}{
	{kubeLoopBackIPSet, "nat", kubePostroutingChain, "MASQUERADE", "dst,dst,src", ""},
	{kubeLoadBalancerSet, "nat", kubeServicesChain, kubeLoadBalancerChain, "dst,dst", ""},
	{kubeLoadBalancerLocalSet, "nat", kubeLoadBalancerChain, "RETURN", "dst,dst", ""},
	{kubeNodePortLocalSetTCP, "nat", kubeNodePortChain, "RETURN", "dst", "tcp"},
	{kubeNodePortSetTCP, "nat", kubeNodePortChain, kubeMarkMasqChain, "dst", "tcp"},
	{kubeNodePortLocalSetUDP, "nat", kubeNodePortChain, "RETURN", "dst", "udp"},
	{kubeNodePortSetUDP, "nat", kubeNodePortChain, kubeMarkMasqChain, "dst", "udp"},
	{kubeNodePortLocalSetSCTP, "nat", kubeNodePortChain, "RETURN", "dst,dst", "sctp"},
	{kubeNodePortSetSCTP, "nat", kubeNodePortChain, kubeMarkMasqChain, "dst,dst", "sctp"},

	{kubeLoadBalancerFWSet, "filter", kubeProxyFirewallChain, kubeSourceRangesFirewallChain, "dst,dst", ""},
	{kubeLoadBalancerSourceCIDRSet, "filter", kubeSourceRangesFirewallChain, "RETURN", "dst,dst,src", ""},
	{kubeLoadBalancerSourceIPSet, "filter", kubeSourceRangesFirewallChain, "RETURN", "dst,dst,src", ""},
}

// comment quotes a set's comment as upstream's getComment does.
func comment(set string) string { return `"` + ipsetInfo[setIndex[set]].comment + `"` }

// renderRules writes one family's iptables-restore input: upstream's
// createAndLinkKubeChain (the chain lines) and writeIptablesRules, in
// upstream's order (nat, then filter). The jumps from the built-in
// chains are not part of it (see withJumps).
func renderRules(pr *params, fm *familyModel) []byte {
	fi := famIndex(fm.ipv6)
	name := func(set string) string { return familySetName(set, fm.ipv6) }
	empty := func(set string) bool { return len(fm.sets[setIndex[set]]) == 0 }

	var natChains, natRules, filterChains, filterRules ruleBuffer
	natChains.line("*nat")
	filterChains.line("*filter")
	for _, c := range iptablesChains["nat"] {
		natChains.line(chainLine(c))
	}
	for _, c := range iptablesChains["filter"] {
		filterChains.line(chainLine(c))
	}

	// "Dismiss connects to localhost early in the service chain"
	loAddr := "127.0.0.0/8"
	if fm.ipv6 {
		loAddr = "::1/128"
	}
	natRules.line("-A", kubeServicesChain, "-s", loAddr, "-j", "RETURN")

	for _, set := range ipsetWithIptablesChain {
		if empty(set.name) {
			continue
		}
		args := []string{"-A", set.from}
		if set.protocolMatch != "" {
			args = append(args, "-p", set.protocolMatch)
		}
		args = append(args,
			"-m", "comment", "--comment", comment(set.name),
			"-m", "set", "--match-set", name(set.name), set.matchType,
			"-j", set.to)
		if set.table == "filter" {
			filterRules.line(args...)
		} else {
			natRules.line(args...)
		}
	}

	if !empty(kubeClusterIPSet) {
		args := []string{"-A", kubeServicesChain,
			"-m", "comment", "--comment", comment(kubeClusterIPSet),
			"-m", "set", "--match-set", name(kubeClusterIPSet)}
		switch {
		case pr.masqueradeAll:
			natRules.line(append(args, "dst,dst", "-j", kubeMarkMasqChain)...)
		case pr.localCIDR[fi].IsValid():
			// "This masquerades off-cluster traffic to a service VIP.
			// The idea is that you can establish a static route for your
			// Service range, routing to any node, and that node will
			// bridge into the Service for you. Since that might bounce
			// off-node, we masquerade here."
			natRules.line(append(args, "dst,dst", "!", "-s", pr.localCIDR[fi].String(), "-j", kubeMarkMasqChain)...)
		default:
			// "Masquerade all OUTPUT traffic coming from a service ip.
			// The kube dummy interface has all service VIPs assigned
			// which results in the service VIP being picked as the
			// source IP to reach a VIP."
			natRules.line(append(args, "src,dst", "-j", kubeMarkMasqChain)...)
		}
	}

	// "Allow traffic for external IPs that does not come from a bridge
	// (i.e. not from a container) nor from a local process to be
	// forwarded to the service."; "Allow traffic bound for external IPs
	// that happen to be recognized as local IPs to stay local."
	externalIPRules := func(args []string) {
		natRules.line(append(append([]string{}, args...),
			"-m", "physdev", "!", "--physdev-is-in",
			"-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "ACCEPT")...)
		natRules.line(append(append([]string{}, args...),
			"-m", "addrtype", "--dst-type", "LOCAL", "-j", "ACCEPT")...)
	}
	if !empty(kubeExternalIPSet) {
		// "Build masquerade rules for packets to external IPs."
		args := []string{"-A", kubeServicesChain,
			"-m", "comment", "--comment", comment(kubeExternalIPSet),
			"-m", "set", "--match-set", name(kubeExternalIPSet), "dst,dst"}
		natRules.line(append(append([]string{}, args...), "-j", kubeMarkMasqChain)...)
		externalIPRules(args)
	}
	if !empty(kubeExternalIPLocalSet) {
		externalIPRules([]string{"-A", kubeServicesChain,
			"-m", "comment", "--comment", comment(kubeExternalIPLocalSet),
			"-m", "set", "--match-set", name(kubeExternalIPLocalSet), "dst,dst"})
	}

	// "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT"
	natRules.line("-A", kubeServicesChain, "-m", "addrtype", "--dst-type", "LOCAL", "-j", kubeNodePortChain)
	// "mark for masquerading for KUBE-LOAD-BALANCER"
	natRules.line("-A", kubeLoadBalancerChain, "-j", kubeMarkMasqChain)
	// "drop packets filtered by KUBE-SOURCE-RANGES-FIREWALL"
	filterRules.line("-A", kubeSourceRangesFirewallChain, "-j", "DROP")
	// "disable LB access from node; for IPVS src and dst both would be
	// lbIP"
	for _, e := range fm.lbNoNodeAccess {
		filterRules.line("-A", kubeIPVSOutFilterChain,
			"-s", e.ip.String(),
			"-m", "ipvs", "--vaddr", e.ip.String(), "--vproto", e.protocol, "--vport", strconv.Itoa(int(e.port)),
			"-j", "DROP")
	}

	// "Accept all traffic with destination of ipvs virtual service, in
	// case other iptables rules block the traffic, that may result in
	// ipvs rules invalid. Those rules must be in the end of KUBE-SERVICE
	// chain"
	for _, set := range []string{kubeClusterIPSet, kubeLoadBalancerSet} {
		if !empty(set) {
			natRules.line("-A", kubeServicesChain, "-m", "set", "--match-set", name(set), "dst,dst", "-j", "ACCEPT")
		}
	}

	mark := pr.masqueradeMark + "/" + pr.masqueradeMark
	// "If the masqueradeMark has been added then we want to forward that
	// same traffic, this allows NodePort traffic to be forwarded even if
	// the default FORWARD policy is not accept."
	filterRules.line("-A", kubeForwardChain,
		"-m", "comment", "--comment", `"kubernetes forwarding rules"`,
		"-m", "mark", "--mark", mark, "-j", "ACCEPT")
	// "The following rule ensures the traffic after the initial packet
	// accepted by the "kubernetes forwarding rules" rule above will be
	// accepted."
	filterRules.line("-A", kubeForwardChain,
		"-m", "comment", "--comment", `"kubernetes forwarding conntrack rule"`,
		"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT")
	// "Add rule to accept traffic towards health check node port"
	filterRules.line("-A", kubeNodePortChain,
		"-m", "comment", "--comment", comment(kubeHealthCheckNodePortSet),
		"-m", "set", "--match-set", name(kubeHealthCheckNodePortSet), "dst", "-j", "ACCEPT")
	// "Add rules to the filter/KUBE-IPVS-FILTER chain to prevent access to
	// ports on the host through VIP addresses."
	for _, set := range []string{kubeLoadBalancerSet, kubeClusterIPSet, kubeExternalIPSet, kubeExternalIPLocalSet} {
		filterRules.line("-A", kubeIPVSFilterChain, "-m", "set", "--match-set", name(set), "dst,dst", "-j", "RETURN")
	}
	filterRules.line("-A", kubeIPVSFilterChain, "-m", "set", "--match-set", name(kubeHealthCheckNodePortSet), "dst", "-j", "RETURN")
	filterRules.line("-A", kubeIPVSFilterChain, "-m", "conntrack", "--ctstate", "NEW",
		"-m", "set", "--match-set", name(kubeIPVSSet), "dst", "-j", "REJECT")

	// "Install the kubernetes-specific postrouting rules."
	natRules.line("-A", kubePostroutingChain, "-m", "mark", "!", "--mark", mark, "-j", "RETURN")
	// "Clear the mark to avoid re-masquerading if the packet re-traverses
	// the network stack."
	natRules.line("-A", kubePostroutingChain, "-j", "MARK", "--xor-mark", pr.masqueradeMark)
	masq := []string{"-A", kubePostroutingChain,
		"-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`, "-j", "MASQUERADE"}
	if pr.randomFully {
		masq = append(masq, "--random-fully")
	}
	natRules.line(masq...)
	// "Install the kubernetes-specific masquerade mark rule."
	natRules.line("-A", kubeMarkMasqChain, "-j", "MARK", "--or-mark", pr.masqueradeMark)

	natRules.line("COMMIT")
	filterRules.line("COMMIT")

	var out bytes.Buffer
	out.Grow(natChains.Len() + natRules.Len() + filterChains.Len() + filterRules.Len())
	out.Write(natChains.Bytes())
	out.Write(natRules.Bytes())
	out.Write(filterChains.Bytes())
	out.Write(filterRules.Bytes())
	return out.Bytes()
}

// withJumps inserts the given jump rules (upstream's
// EnsureRule(Prepend, ...) calls, as "-I" lines) before each table's
// COMMIT of a rendered input.
func withJumps(rules []byte, jumps []jumpChain) []byte {
	if len(jumps) == 0 {
		return rules
	}
	var out bytes.Buffer
	table := ""
	for _, line := range strings.SplitAfter(string(rules), "\n") {
		l := strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case l == "COMMIT":
			for _, j := range jumps {
				if j.table == table {
					out.WriteString(j.restoreLine("-I") + "\n")
				}
			}
		}
		out.WriteString(line)
	}
	return out.Bytes()
}

// missingJumps returns the jumps not present in iptables-save output.
func missingJumps(save []byte) []jumpChain {
	rules := map[string][]string{}
	table := ""
	for _, line := range strings.Split(string(save), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, "-A "):
			rules[table] = append(rules[table], line)
		}
	}
	var out []jumpChain
	for _, j := range iptablesJumpChain {
		found := false
		for _, r := range rules[j.table] {
			if strings.HasPrefix(r, "-A "+j.from+" ") && strings.HasSuffix(r, " -j "+j.to) &&
				strings.Contains(r, `--comment "`+j.comment+`"`) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, j)
		}
	}
	return out
}

// savedChains lists the chains declared in iptables-save output, per
// table.
func savedChains(save []byte) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	table := ""
	for _, line := range strings.Split(string(save), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if out[table] == nil {
				out[table] = map[string]bool{}
			}
		case strings.HasPrefix(line, ":") && table != "":
			if sp := strings.IndexByte(line, ' '); sp > 1 {
				out[table][line[1:sp]] = true
			}
		}
	}
	return out
}
