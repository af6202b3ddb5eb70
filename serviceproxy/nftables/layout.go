package nftables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// Names of our chains, sets and maps: kube-proxy's where the object does
// the same job, so that anyone who knows kube-proxy's nftables mode can
// read our table.
const (
	chFilterPrerouting     = "filter-prerouting"
	chFilterInput          = "filter-input"
	chFilterForward        = "filter-forward"
	chFilterOutput         = "filter-output"
	chFilterOutputPostDNAT = "filter-output-post-dnat"
	chNatPrerouting        = "nat-prerouting"
	chNatOutput            = "nat-output"
	chNatPostrouting       = "nat-postrouting"

	chServices        = "services"
	chMasquerading    = "masquerading"
	chMarkMasq        = "mark-for-masquerade"
	chSvcEndpointsChk = "service-endpoints-check"
	chNPEndpointsChk  = "nodeport-endpoints-check"
	chReject          = "reject-chain"
	chFirewallCheck   = "firewall-check"
	chClusterIPsCheck = "cluster-ips-check"

	setClusterIPs       = "cluster-ips"
	setNodePortIPs      = "nodeport-ips"
	mapNoEndpointSvcs   = "no-endpoint-services"
	mapNoEndpointNPs    = "no-endpoint-nodeports"
	setFirewallIPs      = "firewall-ips"
	setFirewallAllow    = "firewall-allow"
	mapServiceIPs       = "service-ips"
	mapServiceNodePorts = "service-nodeports"
	mapSvcEndpoints     = "service-endpoints"
	mapNPEndpoints      = "nodeport-endpoints"
	setHairpin          = "hairpin"
	setClusterCIDRs     = "cluster-cidrs"

	// shortcutOffset is where a service's Cluster endpoints start in the
	// endpoint maps when its buckets 0..L-1 hold its Local endpoints
	// (externalTrafficPolicy Local with short-circuiting).
	shortcutOffset = 1 << 16
)

var baseChains = []chainDef{
	// "We want our filtering rules to operate on pre-DNAT dest IPs, so our
	// filter chains have to run before DNAT."
	{name: chFilterPrerouting, typ: "filter", hook: "prerouting", priority: -110},
	{name: chFilterInput, typ: "filter", hook: "input", priority: -110},
	{name: chFilterForward, typ: "filter", hook: "forward", priority: -110},
	{name: chFilterOutput, typ: "filter", hook: "output", priority: -110},
	{name: chFilterOutputPostDNAT, typ: "filter", hook: "output", priority: -90},
	{name: chNatPrerouting, typ: "nat", hook: "prerouting", priority: -100},
	{name: chNatOutput, typ: "nat", hook: "output", priority: -100},
	{name: chNatPostrouting, typ: "nat", hook: "postrouting", priority: 100},
}

// jumpRules are kube-proxy's nftablesJumpChains, in its order.
var jumpRules = []struct {
	src, dst string
	newOnly  bool
}{
	// "We can't jump to endpointsCheckChain from filter-prerouting like
	// firewallCheckChain because reject action is only valid in chains
	// using the input, forward or output hooks with kernels before 5.9."
	{chFilterInput, chNPEndpointsChk, true},
	{chFilterInput, chSvcEndpointsChk, true},
	{chFilterForward, chSvcEndpointsChk, true},
	{chFilterOutput, chSvcEndpointsChk, true},
	{chFilterPrerouting, chFirewallCheck, true},
	{chFilterOutput, chFirewallCheck, true},
	{chNatOutput, chServices, false},
	{chNatPrerouting, chServices, false},
	{chNatPostrouting, chMasquerading, false},
	{chFilterForward, chClusterIPsCheck, true},
	{chFilterOutputPostDNAT, chClusterIPsCheck, true},
}

// Indexes of the static sets, in staticSets order.
const (
	iClusterIPs uint8 = iota
	iNodePortIPs
	iNoEndpointSvcs
	iNoEndpointNPs
	iFirewallIPs
	iFirewallAllow
	iServiceIPs
	iServiceNodePorts
	iSvcEndpoints
	iNPEndpoints
	iHairpin
	iClusterCIDRs
	numStatic
)

var (
	keyIPProtoPort = []fieldKind{fAddr, fProto, fPort}
	keyProtoPort   = []fieldKind{fProto, fPort}
)

// staticSets returns the family's fixed sets and maps.
func staticSets(f *family) []*setDef {
	return []*setDef{
		{name: setClusterIPs, key: []fieldKind{fAddr}, comment: "Active ClusterIPs"},
		{name: setNodePortIPs, key: []fieldKind{fAddr}, comment: "IPs that accept NodePort traffic"},
		{name: mapNoEndpointSvcs, key: keyIPProtoPort, vmap: true, comment: "vmap to drop or reject packets to services with no endpoints"},
		{name: mapNoEndpointNPs, key: keyProtoPort, vmap: true, comment: "vmap to drop or reject packets to service nodeports with no endpoints"},
		{name: setFirewallIPs, key: keyIPProtoPort, comment: "destinations that are subject to LoadBalancerSourceRanges"},
		{name: setFirewallAllow, key: []fieldKind{fAddr, fProto, fPort, fRange}, flags: []string{"interval"}, comment: "sources allowed by LoadBalancerSourceRanges"},
		{name: mapServiceIPs, key: keyIPProtoPort, vmap: true, comment: "ClusterIP, ExternalIP and LoadBalancer IP traffic"},
		{name: mapServiceNodePorts, key: keyProtoPort, vmap: true, comment: "NodePort traffic"},
		{name: mapSvcEndpoints, key: []fieldKind{fAddr, fProto, fPort, fBucket}, data: []fieldKind{fAddr, fPort},
			typeof:  f.name + " daddr . meta l4proto . th dport . numgen random mod 1 : " + f.name + " daddr . th dport",
			comment: "endpoints by service IP, port and bucket"},
		{name: mapNPEndpoints, key: []fieldKind{fProto, fPort, fBucket}, data: []fieldKind{fAddr, fPort},
			typeof:  "meta l4proto . th dport . numgen random mod 1 : " + f.name + " daddr . th dport",
			comment: "endpoints by NodePort and bucket"},
		{name: setHairpin, key: []fieldKind{fAddr, fAddr2}, comment: "endpoint . endpoint: a pod reaching itself through a service"},
		{name: setClusterCIDRs, key: []fieldKind{fRange}, flags: []string{"interval"}, comment: "cluster (pod) CIDRs"},
	}
}

// globals is what every rule of the skeleton and the shared chains depends
// on; when it changes, the next sync is a full one.
type globals struct {
	masqMark      uint32
	masqueradeAll bool
	clusterCIDRs  []netip.Prefix // this family's
	nodePortIPs   []netip.Addr   // this family's; empty: every local address
	nodeIP        netip.Addr     // first node IP of the family (LoadBalancerSourceRanges)
	nodeName      string
	zone          string
}

func (g *globals) equal(o *globals) bool {
	return g.masqMark == o.masqMark && g.masqueradeAll == o.masqueradeAll &&
		slices.Equal(g.clusterCIDRs, o.clusterCIDRs) && slices.Equal(g.nodePortIPs, o.nodePortIPs) &&
		g.nodeIP == o.nodeIP && g.nodeName == o.nodeName && g.zone == o.zone
}

// skeletonChains returns the fixed chains with their rules.
func (g *globals) skeletonChains(f *family) map[string][]rule {
	chains := map[string][]rule{}
	for _, bc := range baseChains {
		chains[bc.name] = nil
	}
	for _, c := range []string{chServices, chMasquerading, chMarkMasq, chSvcEndpointsChk, chNPEndpointsChk, chReject, chFirewallCheck, chClusterIPsCheck} {
		chains[c] = nil
	}
	for _, j := range jumpRules {
		if j.newOnly {
			chains[j.src] = append(chains[j.src], r(stCtStateNew{}, jump(j.dst)))
		} else {
			chains[j.src] = append(chains[j.src], r(jump(j.dst)))
		}
	}
	chains[chMarkMasq] = []rule{r(stMarkOr{g.masqMark})}
	chains[chMasquerading] = []rule{
		// Hairpin: kube-proxy masquerades "traffic that loops back to the
		// originator" in each endpoint chain (ip saddr ENDPOINT); here one
		// set lookup after DNAT does it for every endpoint.
		rc("hairpin", stCtStatusDnat{}, stLookup{keys: []keyExpr{keySaddr, keyDaddr}, set: setHairpin}, jump(chMarkMasq)),
		r(stMarkUnset{g.masqMark}, stVerdict{code: vReturn}),
		r(stMarkXor{g.masqMark}),
		r(stMasq{}),
	}
	chains[chClusterIPsCheck] = []rule{
		rc("Reject traffic to invalid ports of ClusterIPs", stLookup{keys: []keyExpr{keyDaddr}, set: setClusterIPs}, stReject{}),
	}
	chains[chReject] = []rule{r(stReject{})}
	ipProtoPort := []keyExpr{keyDaddr, keyL4proto, keyDport}
	protoPort := []keyExpr{keyL4proto, keyDport}
	chains[chSvcEndpointsChk] = []rule{r(stVmap{keys: ipProtoPort, set: mapNoEndpointSvcs})}
	if len(g.nodePortIPs) == 0 {
		chains[chNPEndpointsChk] = []rule{r(stNotLoopback{}, stVmap{keys: protoPort, set: mapNoEndpointNPs})}
	} else {
		chains[chNPEndpointsChk] = []rule{r(stLookup{keys: []keyExpr{keyDaddr}, set: setNodePortIPs}, stVmap{keys: protoPort, set: mapNoEndpointNPs})}
	}
	chains[chFirewallCheck] = []rule{
		// LoadBalancerSourceRanges: kube-proxy jumps to a chain per
		// service that drops sources outside the ranges; here an
		// interval set of (VIP . proto . port . source range) allows and
		// everything else aimed at a firewalled VIP is dropped.
		r(stLookup{keys: []keyExpr{keyDaddr, keyL4proto, keyDport, keySaddr}, set: setFirewallAllow, hton: true}, stVerdict{code: vReturn}),
		r(stLookup{keys: ipProtoPort, set: setFirewallIPs}, stVerdict{code: vDrop}),
	}
	chains[chServices] = []rule{r(stVmap{keys: ipProtoPort, set: mapServiceIPs})}
	if len(g.nodePortIPs) == 0 {
		chains[chServices] = append(chains[chServices], r(stFibLocal{}, stNotLoopback{}, stVmap{keys: protoPort, set: mapServiceNodePorts}))
	} else {
		chains[chServices] = append(chains[chServices], r(stLookup{keys: []keyExpr{keyDaddr}, set: setNodePortIPs}, stVmap{keys: protoPort, set: mapServiceNodePorts}))
	}
	return chains
}

// skeletonElems returns the elements that belong to no service.
func (g *globals) skeletonElems() []celem {
	var out []celem
	for _, ip := range g.nodePortIPs {
		out = append(out, celem{set: iNodePortIPs, key: elemKey{a: toA16(ip)}})
	}
	for _, p := range g.clusterCIDRs {
		a, bits := rangeKey(p)
		out = append(out, celem{set: iClusterCIDRs, key: elemKey{b: a, bits: bits}})
	}
	return out
}

// --- shared load-balancing chains ---
//
// Instead of kube-proxy's chain per service and chain per endpoint, the
// services of one shape share a chain: "svc-ip-3" DNATs any cluster IP
// whose service has 3 endpoints, by looking up (daddr . proto . dport .
// random bucket) in @service-endpoints. The number of chains depends on
// the distinct endpoint counts, not on the number of services.

type lbKind uint8

const (
	lbInternal      lbKind = iota // cluster IP: masquerade traffic from outside the cluster CIDRs
	lbExternal                    // external/LB IP, Cluster policy: masquerade, DNAT
	lbExternalLocal               // external/LB IP, Local policy: short-circuit, DNAT to local
	lbShortcut                    // DNAT to the Cluster endpoints at shortcutOffset
)

func lbChainName(kind lbKind, nodePort bool, n, c int) string {
	p := ""
	if nodePort {
		p = "nodeport-"
	} else if kind != lbInternal {
		p = "ext-"
	}
	switch kind {
	case lbInternal:
		return "svc-ip-" + strconv.Itoa(n)
	case lbExternal:
		return p + "cluster-" + strconv.Itoa(n)
	case lbExternalLocal:
		return p + "local-" + strconv.Itoa(n) + "-" + strconv.Itoa(c)
	default:
		return p + "shortcut-" + strconv.Itoa(c)
	}
}

func (g *globals) lbRules(kind lbKind, nodePort bool, n, c int) []rule {
	keys := func(mod, off int) []keyExpr {
		k := []keyExpr{keyDaddr, keyL4proto, keyDport, keyNumgen(uint32(mod), uint32(off))}
		if nodePort {
			k = k[1:]
		}
		return k
	}
	m := mapSvcEndpoints
	if nodePort {
		m = mapNPEndpoints
	}
	dnat := func(mod, off int) rule { return r(stDnatMap{keys: keys(mod, off), set: m}) }
	var out []rule
	switch kind {
	case lbInternal:
		if g.masqueradeAll {
			out = append(out, r(jump(chMarkMasq)))
		} else if len(g.clusterCIDRs) > 0 {
			// "This masquerades off-cluster traffic to a service VIP."
			out = append(out, r(stLookup{keys: []keyExpr{keySaddr}, set: setClusterCIDRs, neg: true}, jump(chMarkMasq)))
		}
		out = append(out, dnat(n, 0))
	case lbExternal:
		// "If we are using non-local endpoints we need to masquerade, in
		// case we cross nodes."
		out = append(out, r(jump(chMarkMasq)), dnat(n, 0))
	case lbExternalLocal:
		sc := lbChainName(lbShortcut, nodePort, 0, c)
		if c > 0 {
			if len(g.clusterCIDRs) > 0 {
				// "Treat all locally-originated pod -> external destination
				// traffic as a special-case. It is subject to neither form
				// of traffic policy, which simulates going up-and-out to an
				// external load-balancer and coming back in."
				out = append(out, rc("short-circuit pod traffic", stLookup{keys: []keyExpr{keySaddr}, set: setClusterCIDRs}, gotoC(sc)))
			}
			// "Locally originated traffic (not a pod, but the host node)
			// still needs masquerade because the LBIP itself is a local
			// address, so that will be the chosen source IP."
			out = append(out, rc("masquerade local traffic", stFibLocal{saddr: true}, jump(chMarkMasq)))
			// "Redirect all src-type=LOCAL -> external destination to the
			// policy=cluster chain."
			out = append(out, rc("short-circuit local traffic", stFibLocal{saddr: true}, gotoC(sc)))
		}
		if n > 0 {
			out = append(out, dnat(n, 0))
		}
	case lbShortcut:
		out = append(out, dnat(c, shortcutOffset))
	}
	return out
}

// --- per service port ---

// celem is one element a service port (or the skeleton) wants.
type celem struct {
	set uint8 // index of a static set
	key elemKey
	val elemVal
}

// cchain is one chain a service port uses, with its rules.
type cchain struct {
	name  string
	rules []rule
}

// contrib is everything one service port puts into one family's table.
type contrib struct {
	elems  []celem
	chains []cchain
	sets   []*setDef // affinity sets
	// for metrics
	noLocalInternal, noLocalExternal bool
}

// builder renders service ports for one family.
type builder struct {
	f      *family
	g      *globals
	strs   *strTable
	shared map[string][]rule // shared chain rules, built once
}

func newBuilder(f *family, g *globals, strs *strTable) *builder {
	return &builder{f: f, g: g, strs: strs, shared: map[string][]rule{}}
}

func (b *builder) lbChain(kind lbKind, nodePort bool, n, c int) cchain {
	name := lbChainName(kind, nodePort, n, c)
	rules, ok := b.shared[name]
	if !ok {
		rules = b.g.lbRules(kind, nodePort, n, c)
		b.shared[name] = rules
	}
	return cchain{name: name, rules: rules}
}

func protoNum(p corev1.Protocol) (uint8, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return unix.IPPROTO_TCP, true
	case corev1.ProtocolUDP:
		return unix.IPPROTO_UDP, true
	case corev1.ProtocolSCTP:
		return unix.IPPROTO_SCTP, true
	}
	return 0, false
}

func (b *builder) addrs(in []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range in {
		a = a.Unmap()
		if b.f.has(a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func (b *builder) endpoints(in []*serviceproxy.Endpoint) []*serviceproxy.Endpoint {
	var out []*serviceproxy.Endpoint
	for _, e := range in {
		if e != nil && b.f.has(e.IP) && e.Port > 0 && e.Port < 65536 {
			out = append(out, e)
		}
	}
	return out
}

// service renders one service port. It returns nil when the port has
// nothing in this family (no cluster IP of the family, headless, or a bad
// protocol or port).
func (b *builder) service(name serviceproxy.ServicePortName, svc *serviceproxy.ServicePort, allEndpoints []*serviceproxy.Endpoint) *contrib {
	if svc == nil || svc.Port <= 0 || svc.Port > 65535 {
		return nil
	}
	proto, ok := protoNum(svc.Protocol)
	if !ok {
		return nil
	}
	clusterIPs := b.addrs(svc.ClusterIPs)
	if len(clusterIPs) == 0 {
		// kube-proxy's per-family proxier ignores a service without a
		// cluster IP of its family.
		return nil
	}
	clusterIP := clusterIPs[0]
	port := uint16(svc.Port)
	nodePort := uint16(0)
	if svc.NodePort > 0 && svc.NodePort < 65536 {
		nodePort = uint16(svc.NodePort)
	}
	externalIPs := b.addrs(svc.ExternalIPs)
	lbIPs := b.addrs(svc.LoadBalancerVIPs)
	var sourceRanges []netip.Prefix
	for _, p := range svc.LoadBalancerSourceRanges {
		if p.IsValid() && b.f.has(p.Addr()) {
			sourceRanges = append(sourceRanges, p.Masked())
		}
	}
	externallyAccessible := nodePort != 0 || len(externalIPs) > 0 || len(lbIPs) > 0

	eps := b.endpoints(allEndpoints)
	clusterEndpoints, localEndpoints, allReachable, hasEndpoints := serviceproxy.CategorizeEndpoints(eps, svc, b.g.nodeName, b.g.zone)
	clusterEndpoints = dedupe(clusterEndpoints)
	localEndpoints = dedupe(localEndpoints)
	allReachable = dedupe(allReachable)

	c := &contrib{}
	add := func(set uint8, k elemKey, v elemVal) { c.elems = append(c.elems, celem{set: set, key: k, val: v}) }
	nameStr := b.strs.id(name.String())
	goTo := func(chain string) elemVal { return elemVal{code: vGoto, chain: b.strs.id(chain)} }
	ca := toA16(clusterIP)

	// Internal (cluster IP) endpoints and external endpoints, as kube-proxy
	// picks its internalPolicyChain and externalPolicyChain.
	internalEps := clusterEndpoints
	hasInternalEndpoints := hasEndpoints
	if svc.InternalPolicyLocal {
		internalEps = localEndpoints
		if len(localEndpoints) == 0 {
			hasInternalEndpoints = false
		}
	}
	externalEps := clusterEndpoints
	hasExternalEndpoints := hasEndpoints
	if svc.ExternalPolicyLocal {
		externalEps = localEndpoints
		if len(localEndpoints) == 0 {
			hasExternalEndpoints = false
		}
	}
	if hasInternalEndpoints && len(internalEps) == 0 {
		hasInternalEndpoints = false
	}
	if hasExternalEndpoints && len(externalEps) == 0 {
		hasExternalEndpoints = false
	}
	usesExternalTrafficChain := hasEndpoints && externallyAccessible

	var internalVerdict, externalVerdict elemVal
	if !hasEndpoints {
		// "The service has no endpoints at all ... only rules in the
		// "filter" table rejecting incoming packets for the service's IPs."
		internalVerdict = elemVal{code: vGoto, chain: b.strs.id(chReject), comment: nameStr}
		externalVerdict = internalVerdict
	} else {
		if !hasInternalEndpoints {
			// "The internalTrafficPolicy is "Local" but there are no local
			// endpoints. Traffic to the clusterIP will be dropped, but
			// external traffic may still be accepted."
			internalVerdict = elemVal{code: vDrop, comment: nameStr}
			c.noLocalInternal = true
		}
		if !hasExternalEndpoints {
			// "The externalTrafficPolicy is "Local" but there are no local
			// endpoints. Traffic to "external" IPs from outside the cluster
			// will be dropped, but traffic from inside the cluster may
			// still be accepted."
			externalVerdict = elemVal{code: vDrop, comment: nameStr}
			c.noLocalExternal = true
		}
	}

	sticky := svc.StickyMaxAge > 0
	var internalChain, externalChain, npExternalChain string
	if sticky {
		internalChain, externalChain = b.stickyChains(c, name, svc, proto, clusterIP, port, clusterEndpoints, localEndpoints, allReachable, hasInternalEndpoints, hasExternalEndpoints, usesExternalTrafficChain, internalEps)
		npExternalChain = externalChain
	} else {
		if hasInternalEndpoints {
			ch := b.lbChain(lbInternal, false, len(internalEps), 0)
			c.chains = append(c.chains, ch)
			internalChain = ch.name
			for _, ip := range clusterIPs[:1] {
				for i, e := range internalEps {
					add(iSvcEndpoints, elemKey{a: toA16(ip), proto: proto, port: port, bucket: uint32(i)}, elemVal{a: toA16(e.IP.Unmap()), port: uint16(e.Port)})
				}
			}
		}
		if usesExternalTrafficChain {
			externalChain, npExternalChain = b.externalChains(c, svc, len(externalEps), hasExternalEndpoints, len(clusterEndpoints))
			var extAddrs []netip.Addr
			extAddrs = append(extAddrs, externalIPs...)
			extAddrs = append(extAddrs, lbIPs...)
			for _, ip := range dedupeAddrs(extAddrs) {
				b.endpointElems(c, iSvcEndpoints, elemKey{a: toA16(ip), proto: proto, port: port}, svc, externalEps, hasExternalEndpoints, clusterEndpoints)
			}
			if nodePort != 0 {
				b.endpointElems(c, iNPEndpoints, elemKey{proto: proto, port: nodePort}, svc, externalEps, hasExternalEndpoints, clusterEndpoints)
			}
		}
	}

	// Hairpin: every endpoint this node may DNAT to.
	for _, e := range allReachable {
		a := toA16(e.IP.Unmap())
		add(iHairpin, elemKey{a: a, b: a}, elemVal{})
	}

	// "Capture the clusterIP."
	add(iClusterIPs, elemKey{a: ca}, elemVal{})
	svcKey := elemKey{a: ca, proto: proto, port: port}
	if hasInternalEndpoints {
		add(iServiceIPs, svcKey, goTo(internalChain))
	} else {
		add(iNoEndpointSvcs, svcKey, internalVerdict)
	}

	// "Capture externalIPs."
	for _, ip := range externalIPs {
		k := elemKey{a: toA16(ip), proto: proto, port: port}
		if hasEndpoints {
			add(iServiceIPs, k, goTo(externalChain))
		}
		if !hasExternalEndpoints {
			add(iNoEndpointSvcs, k, externalVerdict)
		}
	}

	// "Capture load-balancer ingress."
	usesFW := len(lbIPs) > 0 && len(sourceRanges) > 0
	allowFromNode := false
	for _, p := range sourceRanges {
		if b.g.nodeIP.IsValid() && p.Contains(b.g.nodeIP) {
			allowFromNode = true
		}
	}
	for _, ip := range lbIPs {
		k := elemKey{a: toA16(ip), proto: proto, port: port}
		if hasEndpoints {
			add(iServiceIPs, k, goTo(externalChain))
		}
		if usesFW {
			add(iFirewallIPs, k, elemVal{})
			allow := slices.Clone(sourceRanges)
			// "For VIP-like LBs, the VIP is often added as a local address
			// ... a request from a node to the VIP will not hit the
			// loadbalancer but will loop back with the source IP set to the
			// VIP. We need the following rules to allow requests from this
			// node."
			if allowFromNode {
				for _, src := range lbIPs {
					allow = append(allow, netip.PrefixFrom(src, src.BitLen()))
				}
			}
			// An interval set cannot hold overlapping ranges (the kernel
			// rejects the whole transaction): keep only the outermost of
			// nested ones (loadBalancerSourceRanges may overlap, and may
			// hold the VIP).
			for _, p := range normalizePrefixes(allow) {
				fk := k
				fk.b, fk.bits = rangeKey(p)
				add(iFirewallAllow, fk, elemVal{})
			}
		}
		if !hasExternalEndpoints {
			add(iNoEndpointSvcs, k, externalVerdict)
		}
	}

	// "Capture nodeports."
	if nodePort != 0 {
		k := elemKey{proto: proto, port: nodePort}
		if hasEndpoints {
			// "For better or for worse, nodeports are not subject to
			// loadBalancerSourceRanges, and we can't change that."
			add(iServiceNodePorts, k, goTo(npExternalChain))
		}
		if !hasExternalEndpoints {
			add(iNoEndpointNPs, k, externalVerdict)
		}
	}
	return c
}

// externalChains picks the shared chains for external traffic (IPs and
// NodePorts).
func (b *builder) externalChains(c *contrib, svc *serviceproxy.ServicePort, n int, hasExternal bool, clusterN int) (string, string) {
	if !hasExternal {
		n = 0
	}
	var ip, np cchain
	if !svc.ExternalPolicyLocal {
		ip = b.lbChain(lbExternal, false, n, 0)
		np = b.lbChain(lbExternal, true, n, 0)
	} else {
		ip = b.lbChain(lbExternalLocal, false, n, clusterN)
		np = b.lbChain(lbExternalLocal, true, n, clusterN)
		if clusterN > 0 {
			c.chains = append(c.chains, b.lbChain(lbShortcut, false, 0, clusterN), b.lbChain(lbShortcut, true, 0, clusterN))
		}
	}
	c.chains = append(c.chains, ip, np)
	return ip.name, np.name
}

// endpointElems adds the buckets of one external destination.
func (b *builder) endpointElems(c *contrib, set uint8, base elemKey, svc *serviceproxy.ServicePort, externalEps []*serviceproxy.Endpoint, hasExternal bool, clusterEps []*serviceproxy.Endpoint) {
	put := func(i int, e *serviceproxy.Endpoint) {
		k := base
		k.bucket = uint32(i)
		c.elems = append(c.elems, celem{set: set, key: k, val: elemVal{a: toA16(e.IP.Unmap()), port: uint16(e.Port)}})
	}
	if hasExternal {
		for i, e := range externalEps {
			put(i, e)
		}
	}
	if svc.ExternalPolicyLocal {
		for i, e := range clusterEps {
			put(shortcutOffset+i, e)
		}
	}
}

// --- session affinity: kube-proxy's own layout ---

// stickyChains builds, for a ClientIP-affinity service, kube-proxy's chain
// per policy and chain per endpoint with an affinity set per endpoint. It
// returns the chains its cluster IP and its external destinations go to.
func (b *builder) stickyChains(c *contrib, name serviceproxy.ServicePortName, svc *serviceproxy.ServicePort, proto uint8, clusterIP netip.Addr, port uint16,
	clusterEps, localEps, allReachable []*serviceproxy.Endpoint, hasInternal, hasExternal, usesExternal bool, internalEps []*serviceproxy.Endpoint) (string, string) {
	base := chainNameBase(name, protoName(proto), svc.StickyMaxAge.String())
	clusterChain := "service-" + base
	localChain := "local-" + base
	externalChain := "external-" + base
	usesCluster := len(clusterEps) > 0 && svc.UsesClusterEndpoints()
	usesLocal := len(localEps) > 0 && svc.UsesLocalEndpoints()
	internalChain := clusterChain
	if svc.InternalPolicyLocal {
		internalChain = localChain
	}
	externalPolicyChain := clusterChain
	if svc.ExternalPolicyLocal {
		externalPolicyChain = localChain
	}
	chains := map[string][]rule{}
	order := []string{}
	ensure := func(n string) {
		if _, ok := chains[n]; !ok {
			chains[n] = nil
			order = append(order, n)
		}
	}
	epChain := func(e *serviceproxy.Endpoint) string {
		return "endpoint-" + endpointChainNameBase(name, protoName(proto), svc.StickyMaxAge.String(), netip.AddrPortFrom(e.IP.Unmap(), uint16(e.Port)))
	}
	affSet := func(e *serviceproxy.Endpoint) string {
		return "affinity-" + endpointChainNameBase(name, protoName(proto), svc.StickyMaxAge.String(), netip.AddrPortFrom(e.IP.Unmap(), uint16(e.Port)))
	}
	if usesCluster {
		ensure(clusterChain)
	}
	if usesLocal {
		ensure(localChain)
	}
	if usesExternal {
		ensure(externalChain)
	}
	if hasInternal && (internalChain != clusterChain || usesCluster) && (internalChain != localChain || usesLocal) {
		ensure(internalChain)
		if b.g.masqueradeAll {
			chains[internalChain] = append(chains[internalChain], r(stAddrEq{addr: clusterIP}, stProtoDport{proto, port}, jump(chMarkMasq)))
		} else if len(b.g.clusterCIDRs) > 0 {
			chains[internalChain] = append(chains[internalChain], r(stAddrEq{addr: clusterIP}, stProtoDport{proto, port},
				stLookup{keys: []keyExpr{keySaddr}, set: setClusterCIDRs, neg: true}, jump(chMarkMasq)))
		}
	}
	if usesExternal {
		if !svc.ExternalPolicyLocal {
			chains[externalChain] = append(chains[externalChain], r(jump(chMarkMasq)))
		} else if usesCluster {
			if len(b.g.clusterCIDRs) > 0 {
				chains[externalChain] = append(chains[externalChain], rc("short-circuit pod traffic", stLookup{keys: []keyExpr{keySaddr}, set: setClusterCIDRs}, gotoC(clusterChain)))
			}
			chains[externalChain] = append(chains[externalChain],
				rc("masquerade local traffic", stFibLocal{saddr: true}, jump(chMarkMasq)),
				rc("short-circuit local traffic", stFibLocal{saddr: true}, gotoC(clusterChain)))
		}
		if hasExternal && (externalPolicyChain != localChain || usesLocal) && (externalPolicyChain != clusterChain || usesCluster) {
			chains[externalChain] = append(chains[externalChain], r(gotoC(externalPolicyChain)))
		}
	}
	policyRules := func(eps []*serviceproxy.Endpoint) []rule {
		var out []rule
		// "First write session affinity rules, if applicable."
		for _, e := range eps {
			out = append(out, r(stLookup{keys: []keyExpr{keySaddr}, set: affSet(e)}, gotoC(epChain(e))))
		}
		// "Now write loadbalancing rule": kube-proxy uses an anonymous
		// "numgen random mod N vmap"; here a cascade of 1/N, 1/(N-1), ...
		// draws (iptables' statistic rules), equally uniform, needing no
		// anonymous map.
		for i, e := range eps {
			if i < len(eps)-1 {
				out = append(out, r(stNumgenZero{mod: uint32(len(eps) - i)}, gotoC(epChain(e))))
			} else {
				out = append(out, r(gotoC(epChain(e))))
			}
		}
		return out
	}
	if usesCluster {
		chains[clusterChain] = append(chains[clusterChain], policyRules(clusterEps)...)
	}
	if usesLocal {
		chains[localChain] = append(chains[localChain], policyRules(localEps)...)
	}
	for _, e := range allReachable {
		n := epChain(e)
		ensure(n)
		a := e.IP.Unmap()
		chains[n] = []rule{
			r(stAddrEq{saddr: true, addr: a}, jump(chMarkMasq)),
			r(stUpdate{set: affSet(e)}),
			r(stDnatTo{proto: proto, addr: a, port: uint16(e.Port)}),
		}
		c.sets = append(c.sets, &setDef{name: affSet(e), key: []fieldKind{fAddr}, flags: []string{"dynamic", "timeout"}, timeout: svc.StickyMaxAge})
	}
	for _, n := range order {
		c.chains = append(c.chains, cchain{name: n, rules: chains[n]})
	}
	ext := ""
	if usesExternal {
		ext = externalChain
	}
	return internalChain, ext
}

// Chain names of sticky services follow kube-proxy's: a hash, then the
// readable name, truncated to fit nft's 256-byte limit.
const chainNameBaseLengthMax = 256 - 1 - 16

// chainNameBase is "HASH-namespace/name/protocol/port"; the affinity
// timeout is part of the hash, so a new timeout makes new sets.
func chainNameBase(n serviceproxy.ServicePortName, proto, timeout string) string {
	readable := fmt.Sprintf("%s/%s/%s/%s", n.Namespace, n.Name, proto, n.Port)
	h := sha256.Sum256([]byte(readable + "|" + timeout))
	return base32.StdEncoding.EncodeToString(h[:])[:8] + "-" + truncate(readable)
}

func endpointChainNameBase(n serviceproxy.ServicePortName, proto, timeout string, ep netip.AddrPort) string {
	ip := strings.ReplaceAll(ep.Addr().String(), ":", ".")
	readable := fmt.Sprintf("%s/%s/%s/%s__%s/%d", n.Namespace, n.Name, proto, n.Port, ip, ep.Port())
	h := sha256.Sum256([]byte(readable + "|" + timeout))
	return base32.StdEncoding.EncodeToString(h[:])[:8] + "-" + truncate(readable)
}

func truncate(s string) string {
	if len(s) > chainNameBaseLengthMax-9 {
		return s[:chainNameBaseLengthMax-12] + "..."
	}
	return s
}

func dedupe(in []*serviceproxy.Endpoint) []*serviceproxy.Endpoint {
	seen := make(map[netip.AddrPort]bool, len(in))
	out := in[:0:0]
	for _, e := range in {
		k := netip.AddrPortFrom(e.IP.Unmap(), uint16(e.Port))
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

func dedupeAddrs(in []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range in {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}
