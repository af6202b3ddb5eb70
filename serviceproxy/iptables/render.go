package iptables

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// params are the settings that shape the rules besides the services and
// endpoints themselves. When one of them changes between two syncs every
// service chain must be rewritten (as upstream forces a full sync when
// the node's topology labels change).
type params struct {
	ipv6               bool
	masqueradeAll      bool
	masqueradeMark     string
	randomFully        bool
	localhostNodePorts bool // effective: IPv4, option on, NodePorts on loopback
	// conntrackTCPLiberal: net.netfilter.nf_conntrack_tcp_be_liberal is
	// set, so no DROP rule for INVALID packets is written.
	conntrackTCPLiberal bool
	// localCIDR is the local-traffic detector (upstream's
	// LocalTrafficDetector for --detect-local-mode=ClusterCIDR); invalid
	// when not implemented (no cluster CIDR of this family).
	localCIDR netip.Prefix
	// nodeIP is the node's primary IP of this family (the FW chain lets
	// traffic from the node through when a source range contains it).
	nodeIP netip.Addr
	// nodePortAddrs are the addresses NodePorts answer on; nil means every
	// local address (upstream's nodePortAddresses.MatchAll()).
	nodePortAddrs []netip.Addr
	nodeName      string
	zone          string
}

// key is a comparable summary of the parameters.
func (p *params) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v|%v|%s|%v|%v|%v|%s|%s|%s|%s|", p.ipv6, p.masqueradeAll, p.masqueradeMark,
		p.randomFully, p.localhostNodePorts, p.conntrackTCPLiberal, p.localCIDR, p.nodeIP, p.nodeName, p.zone)
	for _, a := range p.nodePortAddrs {
		b.WriteString(a.String())
		b.WriteByte(',')
	}
	return b.String()
}

func (p *params) family() corev1.IPFamily {
	if p.ipv6 {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

func (p *params) matches(a netip.Addr) bool {
	return a.IsValid() && a.Unmap().Is6() == p.ipv6
}

// renderRequest is one sync's input to render.
type renderRequest struct {
	params
	state *serviceproxy.State
	// partial: write the service chains (SVC, SVL, EXT, FW, SEP) of the
	// service ports in changed only; the chains of the others are kept
	// as they are in the kernel (upstream's partial sync).
	partial bool
	changed map[serviceproxy.ServicePortName]bool
	// existingNAT are the nat chains in the kernel (from iptables-save;
	// nil when not read) and previousNAT the service chains the previous
	// sync left active: those among them that are service chains and not
	// active now are flushed and deleted.
	existingNAT map[string]bool
	previousNAT map[string]bool
	// jumps are the rules linking the built-in chains to ours that are
	// missing and must be inserted (upstream's EnsureRule(Prepend, ...)).
	jumps []jumpChain
	// declareChains are chains that do not exist yet and that a jump
	// needs (KUBE-FIREWALL when localhost NodePorts are off).
	declareFilterChains []string
	// probs caches the statistic probabilities.
	probs *probabilities
}

// renderResult is what render produced.
type renderResult struct {
	data         []byte
	activeNAT    map[string]bool
	largeCluster bool
	// counts for kubeproxy_sync_proxy_rules_iptables_total and
	// kubeproxy_sync_proxy_rules_iptables_last (upstream's
	// IPTablesRulesTotal / IPTablesRulesLastSync).
	filterRules, natRules, skippedNATRules, deletedChains int
	noLocalInternal, noLocalExternal                      int
	services, endpoints                                   int
}

// servicePortInfo is one service port as one family's proxier sees it
// (upstream's servicePortInfo over BaseServicePortInfo).
type servicePortInfo struct {
	name         serviceproxy.ServicePortName
	nameString   string
	protocol     string // lower case, as iptables wants it
	svc          *serviceproxy.ServicePort
	clusterIP    netip.Addr
	externalIPs  []netip.Addr
	lbVIPs       []netip.Addr
	sourceRanges []netip.Prefix
	stickySecs   int

	clusterPolicyChainName string
	localPolicyChainName   string
	firewallChainName      string
	externalChainName      string
}

func (s *servicePortInfo) externallyAccessible() bool {
	return s.svc.NodePort != 0 || len(s.lbVIPs) > 0 || len(s.externalIPs) > 0
}

// newServicePortInfo returns the family's view of svc, or nil when the
// service has no cluster IP of the family (a headless service, or a
// single-stack service of the other family: upstream's change tracker
// skips those).
func newServicePortInfo(p *params, name serviceproxy.ServicePortName, svc *serviceproxy.ServicePort) *servicePortInfo {
	var clusterIP netip.Addr
	for _, ip := range svc.ClusterIPs {
		if p.matches(ip) {
			clusterIP = ip.Unmap()
			break
		}
	}
	if !clusterIP.IsValid() {
		return nil
	}
	info := &servicePortInfo{
		name:       name,
		nameString: name.String(),
		protocol:   strings.ToLower(string(svc.Protocol)),
		clusterIP:  clusterIP,
	}
	if info.protocol == "" {
		info.protocol = "tcp"
	}
	for _, ip := range svc.ExternalIPs {
		if p.matches(ip) {
			info.externalIPs = append(info.externalIPs, ip.Unmap())
		}
	}
	for _, ip := range svc.LoadBalancerVIPs {
		if p.matches(ip) {
			info.lbVIPs = append(info.lbVIPs, ip.Unmap())
		}
	}
	for _, r := range svc.LoadBalancerSourceRanges {
		if r.IsValid() && r.Addr().Unmap().Is6() == p.ipv6 {
			info.sourceRanges = append(info.sourceRanges, r.Masked())
		}
	}
	if svc.StickyMaxAge > 0 {
		info.stickySecs = int(svc.StickyMaxAge / time.Second)
		if info.stickySecs < 1 {
			info.stickySecs = 1
		}
	}
	// The family's copy of the service port, for CategorizeEndpoints
	// (whether the service is externally accessible depends on the
	// family's addresses, as upstream's per-family service info).
	fam := *svc
	fam.ClusterIPs = []netip.Addr{clusterIP}
	fam.ExternalIPs = info.externalIPs
	fam.LoadBalancerVIPs = info.lbVIPs
	fam.LoadBalancerSourceRanges = info.sourceRanges
	info.svc = &fam

	protocol := info.protocol
	info.clusterPolicyChainName = servicePortPolicyClusterChain(info.nameString, protocol)
	info.localPolicyChainName = servicePortPolicyLocalChainName(info.nameString, protocol)
	info.firewallChainName = serviceFirewallChainName(info.nameString, protocol)
	info.externalChainName = serviceExternalChainName(info.nameString, protocol)
	return info
}

// familyEndpoints returns the endpoints of the family, in their order.
func familyEndpoints(p *params, eps []*serviceproxy.Endpoint) []*serviceproxy.Endpoint {
	all := true
	for _, ep := range eps {
		if ep == nil || !p.matches(ep.IP) {
			all = false
			break
		}
	}
	if all {
		return eps
	}
	out := make([]*serviceproxy.Endpoint, 0, len(eps))
	for _, ep := range eps {
		if ep != nil && p.matches(ep.IP) {
			out = append(out, ep)
		}
	}
	return out
}

// endpointString is upstream's BaseEndpointInfo.String(): "IP:port" or
// "[IPv6]:port".
func endpointString(ep *serviceproxy.Endpoint) string {
	return netip.AddrPortFrom(ep.IP.Unmap(), uint16(ep.Port)).String()
}

// sortedServicePorts returns the names of the state's service ports in a
// stable order (upstream iterates a map; any order is correct, a fixed one
// makes the output reproducible).
func sortedServicePorts(services map[serviceproxy.ServicePortName]*serviceproxy.ServicePort) []serviceproxy.ServicePortName {
	names := make([]serviceproxy.ServicePortName, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := names[i], names[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		return a.Protocol < b.Protocol
	})
	return names
}

// render writes the iptables-restore input of one family: upstream's
// syncProxyRules from "Reset all buffers" to the RestoreAll call.
func render(req *renderRequest) *renderResult {
	p := &req.params
	state := req.state
	res := &renderResult{activeNAT: make(map[string]bool)}
	if req.probs == nil {
		req.probs = &probabilities{}
	}

	var filterChains, filterRules, natChains, natRules lineBuffer
	skippedNatChains := &lineBuffer{discard: true}
	skippedNatRules := &lineBuffer{discard: true}

	// Write chain lines for all the "top-level" chains we'll be filling in
	for _, chainName := range []string{kubeServicesChain, kubeExternalServicesChain, kubeForwardChain, kubeNodePortsChain, kubeProxyFirewallChain} {
		filterChains.writeLine(makeChainLine(chainName))
	}
	for _, chainName := range []string{kubeServicesChain, kubeNodePortsChain, kubePostroutingChain, kubeMarkMasqChain} {
		natChains.writeLine(makeChainLine(chainName))
	}
	for _, chainName := range req.declareFilterChains {
		filterChains.writeLine(makeChainLine(chainName))
	}

	// Install the kubernetes-specific postrouting rules.
	masqMatch := p.masqueradeMark + "/" + p.masqueradeMark
	natRules.write("-A", kubePostroutingChain, "-m", "mark", "!", "--mark", masqMatch, "-j", "RETURN")
	// Clear the mark to avoid re-masquerading if the packet re-traverses the network stack.
	natRules.write("-A", kubePostroutingChain, "-j", "MARK", "--xor-mark", p.masqueradeMark)
	masqRule := []string{"-A", kubePostroutingChain, "-m", "comment", "--comment", `"kubernetes service traffic requiring SNAT"`, "-j", "MASQUERADE"}
	if p.randomFully {
		masqRule = append(masqRule, "--random-fully")
	}
	natRules.write(masqRule...)
	// Install the kubernetes-specific masquerade mark rule.
	natRules.write("-A", kubeMarkMasqChain, "-j", "MARK", "--or-mark", p.masqueradeMark)

	if !p.ipv6 && p.localhostNodePorts {
		// Kube-proxy's use of `route_localnet` to enable NodePorts on
		// localhost creates a security hole (https://issue.k8s.io/90259)
		// which this iptables rule mitigates.
		filterChains.writeLine(makeChainLine(kubeletFirewallChain))
		filterRules.write("-A", kubeletFirewallChain,
			"-m", "comment", "--comment", `"block incoming localnet connections"`,
			"-d", "127.0.0.0/8",
			"!", "-s", "127.0.0.0/8",
			"-m", "conntrack",
			"!", "--ctstate", "RELATED,ESTABLISHED,DNAT",
			"-j", "DROP")
	}

	// Build the family's service infos and count the endpoints "to get a
	// sense of how big the cluster is".
	names := sortedServicePorts(state.Services)
	infos := make([]*servicePortInfo, 0, len(names))
	epsByInfo := make([][]*serviceproxy.Endpoint, 0, len(names))
	totalEndpoints := 0
	for _, name := range names {
		svc := state.Services[name]
		if svc == nil {
			continue
		}
		info := newServicePortInfo(p, name, svc)
		if info == nil {
			continue
		}
		eps := familyEndpoints(p, state.Endpoints[name])
		infos = append(infos, info)
		epsByInfo = append(epsByInfo, eps)
		totalEndpoints += len(eps)
	}
	res.services = len(infos)
	res.endpoints = totalEndpoints
	largeClusterMode := totalEndpoints > largeClusterEndpointsThreshold
	res.largeCluster = largeClusterMode
	appendServiceComment := func(args []string, svcName string) []string {
		// "Not printing these comments, can reduce size of iptables (in
		// case of large number of endpoints) even by 40%+."
		if largeClusterMode {
			return args
		}
		return append(args, "-m", "comment", "--comment", svcName)
	}

	var localIfNot, localIf []string
	if p.localCIDR.IsValid() {
		localIfNot = []string{"!", "-s", p.localCIDR.String()}
		localIf = []string{"-s", p.localCIDR.String()}
	}

	args := make([]string, 0, 64)

	for i, svcInfo := range infos {
		svcName := svcInfo.name
		protocol := svcInfo.protocol
		svcPortNameString := svcInfo.nameString
		portString := strconv.Itoa(int(svcInfo.svc.Port))

		allEndpoints := epsByInfo[i]
		clusterEndpoints, localEndpoints, allLocallyReachableEndpoints, hasEndpoints := serviceproxy.CategorizeEndpoints(allEndpoints, svcInfo.svc, p.nodeName, p.zone)

		// clusterPolicyChain contains the endpoints used with "Cluster" traffic policy
		clusterPolicyChain := svcInfo.clusterPolicyChainName
		usesClusterPolicyChain := len(clusterEndpoints) > 0 && svcInfo.svc.UsesClusterEndpoints()

		// localPolicyChain contains the endpoints used with "Local" traffic policy
		localPolicyChain := svcInfo.localPolicyChainName
		usesLocalPolicyChain := len(localEndpoints) > 0 && svcInfo.svc.UsesLocalEndpoints()

		// internalPolicyChain is the chain containing the endpoints for
		// "internal" (ClusterIP) traffic.
		internalPolicyChain := clusterPolicyChain
		hasInternalEndpoints := hasEndpoints
		if svcInfo.svc.InternalPolicyLocal {
			internalPolicyChain = localPolicyChain
			if len(localEndpoints) == 0 {
				hasInternalEndpoints = false
			}
		}
		internalTrafficChain := internalPolicyChain

		// externalPolicyChain is the chain containing the endpoints for
		// "external" (NodePort, LoadBalancer, and ExternalIP) traffic.
		externalPolicyChain := clusterPolicyChain
		hasExternalEndpoints := hasEndpoints
		if svcInfo.svc.ExternalPolicyLocal {
			externalPolicyChain = localPolicyChain
			if len(localEndpoints) == 0 {
				hasExternalEndpoints = false
			}
		}
		externalTrafficChain := svcInfo.externalChainName // eventually jumps to externalPolicyChain

		// usesExternalTrafficChain is based on hasEndpoints, not
		// hasExternalEndpoints, because we need the
		// local-traffic-short-circuiting rules even when there are no
		// externally-usable endpoints.
		usesExternalTrafficChain := hasEndpoints && svcInfo.externallyAccessible()

		// Traffic to LoadBalancer IPs can go directly to
		// externalTrafficChain unless LoadBalancerSourceRanges is in use
		// in which case we will create a firewall chain.
		loadBalancerTrafficChain := externalTrafficChain
		fwChain := svcInfo.firewallChainName
		usesFWChain := hasEndpoints && len(svcInfo.lbVIPs) > 0 && len(svcInfo.sourceRanges) > 0
		if usesFWChain {
			loadBalancerTrafficChain = fwChain
		}

		var internalTrafficFilterTarget, internalTrafficFilterComment string
		var externalTrafficFilterTarget, externalTrafficFilterComment string
		if !hasEndpoints {
			// The service has no endpoints at all; we will not generate
			// any chains in the "nat" table for the service; only rules
			// in the "filter" table rejecting incoming packets for the
			// service's IPs.
			internalTrafficFilterTarget = "REJECT"
			internalTrafficFilterComment = `"` + svcPortNameString + ` has no endpoints"`
			externalTrafficFilterTarget = "REJECT"
			externalTrafficFilterComment = internalTrafficFilterComment
		} else {
			if !hasInternalEndpoints {
				// The internalTrafficPolicy is "Local" but there are no
				// local endpoints. Traffic to the clusterIP will be
				// dropped, but external traffic may still be accepted.
				internalTrafficFilterTarget = "DROP"
				internalTrafficFilterComment = `"` + svcPortNameString + ` has no local endpoints"`
				res.noLocalInternal++
			}
			if !hasExternalEndpoints {
				// The externalTrafficPolicy is "Local" but there are no
				// local endpoints. Traffic to "external" IPs from outside
				// the cluster will be dropped, but traffic from inside
				// the cluster may still be accepted.
				externalTrafficFilterTarget = "DROP"
				externalTrafficFilterComment = `"` + svcPortNameString + ` has no local endpoints"`
				res.noLocalExternal++
			}
		}

		svcNatChains := &natChains
		svcNatRules := &natRules

		// Capture the clusterIP.
		if hasInternalEndpoints {
			natRules.write("-A", kubeServicesChain,
				"-m", "comment", "--comment", `"`+svcPortNameString+` cluster IP"`,
				"-m", protocol, "-p", protocol,
				"-d", svcInfo.clusterIP.String(),
				"--dport", portString,
				"-j", internalTrafficChain)
		} else {
			// No endpoints.
			filterRules.write("-A", kubeServicesChain,
				"-m", "comment", "--comment", internalTrafficFilterComment,
				"-m", protocol, "-p", protocol,
				"-d", svcInfo.clusterIP.String(),
				"--dport", portString,
				"-j", internalTrafficFilterTarget)
		}

		// Capture externalIPs.
		for _, externalIP := range svcInfo.externalIPs {
			if hasEndpoints {
				// Send traffic bound for external IPs to the "external
				// destinations" chain.
				natRules.write("-A", kubeServicesChain,
					"-m", "comment", "--comment", `"`+svcPortNameString+` external IP"`,
					"-m", protocol, "-p", protocol,
					"-d", externalIP.String(),
					"--dport", portString,
					"-j", externalTrafficChain)
			}
			if !hasExternalEndpoints {
				// Either no endpoints at all (REJECT) or no endpoints for
				// external traffic (DROP anything that didn't get
				// short-circuited by the EXT chain.)
				filterRules.write("-A", kubeExternalServicesChain,
					"-m", "comment", "--comment", externalTrafficFilterComment,
					"-m", protocol, "-p", protocol,
					"-d", externalIP.String(),
					"--dport", portString,
					"-j", externalTrafficFilterTarget)
			}
		}

		// Capture load-balancer ingress.
		for _, lbip := range svcInfo.lbVIPs {
			if hasEndpoints {
				natRules.write("-A", kubeServicesChain,
					"-m", "comment", "--comment", `"`+svcPortNameString+` loadbalancer IP"`,
					"-m", protocol, "-p", protocol,
					"-d", lbip.String(),
					"--dport", portString,
					"-j", loadBalancerTrafficChain)
			}
			if usesFWChain {
				filterRules.write("-A", kubeProxyFirewallChain,
					"-m", "comment", "--comment", `"`+svcPortNameString+` traffic not accepted by `+svcInfo.firewallChainName+`"`,
					"-m", protocol, "-p", protocol,
					"-d", lbip.String(),
					"--dport", portString,
					"-j", "DROP")
			}
		}
		if !hasExternalEndpoints {
			// Either no endpoints at all (REJECT) or no endpoints for
			// external traffic (DROP anything that didn't get
			// short-circuited by the EXT chain.)
			for _, lbip := range svcInfo.lbVIPs {
				filterRules.write("-A", kubeExternalServicesChain,
					"-m", "comment", "--comment", externalTrafficFilterComment,
					"-m", protocol, "-p", protocol,
					"-d", lbip.String(),
					"--dport", portString,
					"-j", externalTrafficFilterTarget)
			}
		}

		// Capture nodeports.
		if np := svcInfo.svc.NodePort; np != 0 {
			nodePortString := strconv.Itoa(int(np))
			if hasEndpoints {
				// Jump to the external destination chain. For better or
				// for worse, nodeports are not subect to
				// loadBalancerSourceRanges, and we can't change that.
				natRules.write("-A", kubeNodePortsChain,
					"-m", "comment", "--comment", svcPortNameString,
					"-m", protocol, "-p", protocol,
					"--dport", nodePortString,
					"-j", externalTrafficChain)
			}
			if !hasExternalEndpoints {
				// Either no endpoints at all (REJECT) or no endpoints for
				// external traffic (DROP anything that didn't get
				// short-circuited by the EXT chain.)
				filterRules.write("-A", kubeExternalServicesChain,
					"-m", "comment", "--comment", externalTrafficFilterComment,
					"-m", "addrtype", "--dst-type", "LOCAL",
					"-m", protocol, "-p", protocol,
					"--dport", nodePortString,
					"-j", externalTrafficFilterTarget)
			}
		}

		// Capture healthCheckNodePorts.
		// (Upstream's service info only has a healthCheckNodePort when
		// the service "NeedsHealthCheck": externalTrafficPolicy Local.)
		if hc := svcInfo.svc.HealthCheckNodePort; hc != 0 && svcInfo.svc.ExternalPolicyLocal {
			// no matter if node has local endpoints, healthCheckNodePorts
			// need to add a rule to accept the incoming connection
			filterRules.write("-A", kubeNodePortsChain,
				"-m", "comment", "--comment", `"`+svcPortNameString+` health check node port"`,
				"-m", "tcp", "-p", "tcp",
				"--dport", strconv.Itoa(int(hc)),
				"-j", "ACCEPT")
		}

		// If the SVC/SVL/EXT/FW/SEP chains have not changed since the
		// last sync then we can omit them from the restore input.
		// However, we have to still figure out how many chains we
		// _would_ have written, to make the metrics come out right, so we
		// just compute them and throw them away.
		if req.partial && !req.changed[svcName] {
			svcNatChains = skippedNatChains
			svcNatRules = skippedNatRules
		}

		// Set up internal traffic handling.
		if hasInternalEndpoints {
			args = append(args[:0],
				"-m", "comment", "--comment", `"`+svcPortNameString+` cluster IP"`,
				"-m", protocol, "-p", protocol,
				"-d", svcInfo.clusterIP.String(),
				"--dport", portString,
			)
			if p.masqueradeAll {
				svcNatRules.writeArgs([]string{"-A", internalTrafficChain}, append(args, "-j", kubeMarkMasqChain)...)
			} else if localIfNot != nil {
				// This masquerades off-cluster traffic to a service VIP.
				// The idea is that you can establish a static route for
				// your Service range, routing to any node, and that node
				// will bridge into the Service for you. Since that might
				// bounce off-node, we masquerade here.
				a := append(args, localIfNot...)
				svcNatRules.writeArgs([]string{"-A", internalTrafficChain}, append(a, "-j", kubeMarkMasqChain)...)
			}
		}

		// Set up external traffic handling (if any "external"
		// destinations are enabled). All captured traffic for all
		// external destinations should jump to externalTrafficChain,
		// which will handle some special cases and then jump to
		// externalPolicyChain.
		if usesExternalTrafficChain {
			svcNatChains.writeLine(makeChainLine(externalTrafficChain))
			res.activeNAT[externalTrafficChain] = true

			if !svcInfo.svc.ExternalPolicyLocal {
				// If we are using non-local endpoints we need to
				// masquerade, in case we cross nodes.
				svcNatRules.write("-A", externalTrafficChain,
					"-m", "comment", "--comment", `"masquerade traffic for `+svcPortNameString+` external destinations"`,
					"-j", kubeMarkMasqChain)
			} else {
				// If we are only using same-node endpoints, we can retain
				// the source IP in most cases.
				if localIf != nil {
					// Treat all locally-originated pod -> external
					// destination traffic as a special-case. It is
					// subject to neither form of traffic policy, which
					// simulates going up-and-out to an external
					// load-balancer and coming back in.
					svcNatRules.writeArgs([]string{"-A", externalTrafficChain,
						"-m", "comment", "--comment", `"pod traffic for ` + svcPortNameString + ` external destinations"`},
						append(append([]string{}, localIf...), "-j", clusterPolicyChain)...)
				}
				// Locally originated traffic (not a pod, but the host
				// node) still needs masquerade because the LBIP itself is
				// a local address, so that will be the chosen source IP.
				svcNatRules.write("-A", externalTrafficChain,
					"-m", "comment", "--comment", `"masquerade LOCAL traffic for `+svcPortNameString+` external destinations"`,
					"-m", "addrtype", "--src-type", "LOCAL",
					"-j", kubeMarkMasqChain)
				// Redirect all src-type=LOCAL -> external destination to
				// the policy=cluster chain. This allows traffic
				// originating from the host to be redirected to the
				// service correctly.
				svcNatRules.write("-A", externalTrafficChain,
					"-m", "comment", "--comment", `"route LOCAL traffic for `+svcPortNameString+` external destinations"`,
					"-m", "addrtype", "--src-type", "LOCAL",
					"-j", clusterPolicyChain)
			}

			// Anything else falls thru to the appropriate policy chain.
			if hasExternalEndpoints {
				svcNatRules.write("-A", externalTrafficChain, "-j", externalPolicyChain)
			}
		}

		// Set up firewall chain, if needed
		if usesFWChain {
			svcNatChains.writeLine(makeChainLine(fwChain))
			res.activeNAT[fwChain] = true

			// The service firewall rules are created based on the
			// loadBalancerSourceRanges field. This only works for
			// VIP-like loadbalancers that preserve source IPs. For
			// loadbalancers which direct traffic to service NodePort,
			// the firewall rules will not apply.
			fwArgs := []string{"-A", fwChain, "-m", "comment", "--comment", `"` + svcPortNameString + ` loadbalancer IP"`}

			// firewall filter based on each source range
			allowFromNode := false
			for _, cidr := range svcInfo.sourceRanges {
				svcNatRules.writeArgs(fwArgs, "-s", cidr.String(), "-j", externalTrafficChain)
				if p.nodeIP.IsValid() && cidr.Contains(p.nodeIP) {
					allowFromNode = true
				}
			}
			// For VIP-like LBs, the VIP is often added as a local address
			// (via an IP route rule). In that case, a request from a node
			// to the VIP will not hit the loadbalancer but will loop back
			// with the source IP set to the VIP. We need the following
			// rules to allow requests from this node.
			if allowFromNode {
				for _, lbip := range svcInfo.lbVIPs {
					svcNatRules.writeArgs(fwArgs, "-s", lbip.String(), "-j", externalTrafficChain)
				}
			}
			// If the packet was able to reach the end of firewall chain,
			// then it did not get DNATed, so it will match the
			// corresponding KUBE-PROXY-FIREWALL rule.
			svcNatRules.write("-A", fwChain,
				"-m", "comment", "--comment", `"other traffic to `+svcPortNameString+` will be dropped by KUBE-PROXY-FIREWALL"`)
		}

		// If Cluster policy is in use, create the chain and create rules
		// jumping from clusterPolicyChain to the clusterEndpoints
		if usesClusterPolicyChain {
			svcNatChains.writeLine(makeChainLine(clusterPolicyChain))
			res.activeNAT[clusterPolicyChain] = true
			writeServiceToEndpointRules(svcNatRules, svcInfo, clusterPolicyChain, clusterEndpoints, appendServiceComment, req.probs)
		}

		// If Local policy is in use, create the chain and create rules
		// jumping from localPolicyChain to the localEndpoints
		if usesLocalPolicyChain {
			svcNatChains.writeLine(makeChainLine(localPolicyChain))
			res.activeNAT[localPolicyChain] = true
			writeServiceToEndpointRules(svcNatRules, svcInfo, localPolicyChain, localEndpoints, appendServiceComment, req.probs)
		}

		// Generate the per-endpoint chains.
		for _, ep := range allLocallyReachableEndpoints {
			epString := endpointString(ep)
			endpointChain := servicePortEndpointChainName(svcPortNameString, protocol, epString)

			// Create the endpoint chain
			svcNatChains.writeLine(makeChainLine(endpointChain))
			res.activeNAT[endpointChain] = true

			args = append(args[:0], "-A", endpointChain)
			args = appendServiceComment(args, svcPortNameString)
			// Handle traffic that loops back to the originator with SNAT.
			svcNatRules.writeArgs(args, "-s", ep.IP.Unmap().String(), "-j", kubeMarkMasqChain)
			// Update client-affinity lists.
			if svcInfo.stickySecs > 0 {
				args = append(args, "-m", "recent", "--name", endpointChain, "--set")
			}
			// DNAT to final destination.
			args = append(args, "-m", protocol, "-p", protocol, "-j", "DNAT", "--to-destination", epString)
			svcNatRules.write(args...)
		}
	}

	// Delete chains no longer in use.
	var stale []string
	for _, set := range []map[string]bool{req.existingNAT, req.previousNAT} {
		for chain := range set {
			if !res.activeNAT[chain] && isServiceChainName(chain) {
				stale = append(stale, chain)
			}
		}
	}
	sort.Strings(stale)
	for i, chain := range stale {
		if i > 0 && stale[i-1] == chain {
			continue
		}
		// We must (as per iptables) write a chain-line for it, which has
		// the nice effect of flushing the chain. Then we can remove the
		// chain.
		natChains.writeLine(makeChainLine(chain))
		natRules.write("-X", chain)
		res.deletedChains++
	}

	// Finally, tail-call to the nodePorts chain. This needs to be after
	// all other service portal rules.
	nodePortsComment := `"kubernetes service nodeports; NOTE: this must be the last rule in this chain"`
	if p.nodePortAddrs == nil {
		destinations := []string{"-m", "addrtype", "--dst-type", "LOCAL"}
		// Block localhost nodePorts if they are not supported. (For IPv6
		// they never work, and for IPv4 they only work if we previously
		// set `route_localnet`.)
		if p.ipv6 {
			destinations = append(destinations, "!", "-d", "::1/128")
		} else if !p.localhostNodePorts {
			destinations = append(destinations, "!", "-d", "127.0.0.0/8")
		}
		natRules.writeArgs([]string{"-A", kubeServicesChain, "-m", "comment", "--comment", nodePortsComment},
			append(destinations, "-j", kubeNodePortsChain)...)
	} else {
		for _, ip := range p.nodePortAddrs {
			if ip.IsLoopback() && (p.ipv6 || !p.localhostNodePorts) {
				// "--nodeport-addresses includes localhost but localhost
				// NodePorts are not supported" (IPv6, or disabled).
				continue
			}
			// create nodeport rules for each IP one by one
			natRules.write("-A", kubeServicesChain,
				"-m", "comment", "--comment", nodePortsComment,
				"-d", ip.String(),
				"-j", kubeNodePortsChain)
		}
	}

	// Drop the packets in INVALID state, which would potentially cause
	// unexpected connection reset if nf_conntrack_tcp_be_liberal is not
	// set.
	if !p.conntrackTCPLiberal {
		filterRules.write("-A", kubeForwardChain, "-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP")
	}

	// If the masqueradeMark has been added then we want to forward that
	// same traffic, this allows NodePort traffic to be forwarded even if
	// the default FORWARD policy is not accept.
	filterRules.write("-A", kubeForwardChain,
		"-m", "comment", "--comment", `"kubernetes forwarding rules"`,
		"-m", "mark", "--mark", masqMatch,
		"-j", "ACCEPT")

	// The following rule ensures the traffic after the initial packet
	// accepted by the "kubernetes forwarding rules" rule above will be
	// accepted.
	filterRules.write("-A", kubeForwardChain,
		"-m", "comment", "--comment", `"kubernetes forwarding conntrack rule"`,
		"-m", "conntrack",
		"--ctstate", "RELATED,ESTABLISHED",
		"-j", "ACCEPT")

	// Jumps from the built-in chains that are missing (upstream's
	// EnsureRule(Prepend, ...) before the restore): inserted at the top.
	var filterJumps, natJumps lineBuffer
	for _, j := range req.jumps {
		if j.table == "nat" {
			natJumps.writeLine(j.restoreLine("-I"))
		} else {
			filterJumps.writeLine(j.restoreLine("-I"))
		}
	}

	res.filterRules = filterRules.lines
	res.natRules = natRules.lines
	res.skippedNATRules = skippedNatRules.lines

	var out bytes.Buffer
	out.Grow(filterChains.buf.Len() + filterRules.buf.Len() + natChains.buf.Len() + natRules.buf.Len() + 64)
	out.WriteString("*filter\n")
	out.Write(filterChains.bytes())
	out.Write(filterRules.bytes())
	out.Write(filterJumps.bytes())
	out.WriteString("COMMIT\n")
	out.WriteString("*nat\n")
	out.Write(natChains.bytes())
	out.Write(natRules.bytes())
	out.Write(natJumps.bytes())
	out.WriteString("COMMIT\n")
	res.data = out.Bytes()
	return res
}

// writeServiceToEndpointRules is upstream's: the session affinity rules,
// then one probabilistic jump per endpoint.
func writeServiceToEndpointRules(natRules *lineBuffer, svcInfo *servicePortInfo, svcChain string, endpoints []*serviceproxy.Endpoint, appendServiceComment func([]string, string) []string, probs *probabilities) {
	svcPortNameString := svcInfo.nameString
	args := make([]string, 0, 24)
	// First write session affinity rules, if applicable.
	if svcInfo.stickySecs > 0 {
		seconds := strconv.Itoa(svcInfo.stickySecs)
		for _, ep := range endpoints {
			epString := endpointString(ep)
			epChain := servicePortEndpointChainName(svcPortNameString, svcInfo.protocol, epString)
			comment := `"` + svcPortNameString + ` -> ` + epString + `"`
			args = append(args[:0], "-A", svcChain)
			args = appendServiceComment(args, comment)
			args = append(args,
				"-m", "recent", "--name", epChain,
				"--rcheck", "--seconds", seconds, "--reap",
				"-j", epChain)
			natRules.write(args...)
		}
	}

	// Now write loadbalancing rules.
	numEndpoints := len(endpoints)
	for i, ep := range endpoints {
		epString := endpointString(ep)
		epChain := servicePortEndpointChainName(svcPortNameString, svcInfo.protocol, epString)
		comment := `"` + svcPortNameString + ` -> ` + epString + `"`
		args = append(args[:0], "-A", svcChain)
		args = appendServiceComment(args, comment)
		if i < numEndpoints-1 {
			// Each rule is a probabilistic match.
			args = append(args,
				"-m", "statistic",
				"--mode", "random",
				"--probability", probs.get(numEndpoints-i))
		}
		// The final (or only if n == 1) rule is a guaranteed match.
		natRules.writeArgs(args, "-j", epChain)
	}
}
