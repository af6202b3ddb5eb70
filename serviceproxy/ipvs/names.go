package ipvs

import (
	"fmt"
	"strings"
)

// The chains of kube-proxy's IPVS mode (pkg/proxy/ipvs/proxier.go).
const (
	kubeServicesChain             = "KUBE-SERVICES"
	kubeProxyFirewallChain        = "KUBE-PROXY-FIREWALL"
	kubeSourceRangesFirewallChain = "KUBE-SOURCE-RANGES-FIREWALL"
	kubePostroutingChain          = "KUBE-POSTROUTING"
	kubeMarkMasqChain             = "KUBE-MARK-MASQ"
	kubeNodePortChain             = "KUBE-NODE-PORT"
	kubeForwardChain              = "KUBE-FORWARD"
	kubeLoadBalancerChain         = "KUBE-LOAD-BALANCER"
	// kubeIPVSFilterChain "filters external access to main netns"
	// (kubernetes issue 72236).
	kubeIPVSFilterChain = "KUBE-IPVS-FILTER"
	// kubeIPVSOutFilterChain "filters access to load balancer services
	// from node" (kubernetes issue 119656).
	kubeIPVSOutFilterChain = "KUBE-IPVS-OUT-FILTER"

	// DefaultScheduler is upstream's default: "the default ipvs scheduler
	// algorithm - round robin".
	DefaultScheduler = "rr"
	// DummyDevice is "the default dummy interface which ipvs service
	// address will bind to it".
	DummyDevice = "kube-ipvs0"
)

// The ipsets of kube-proxy's IPVS mode (pkg/proxy/ipvs/ipset.go), with
// upstream's comments (which the iptables rules matching them carry).
const (
	kubeLoopBackIPSet                    = "KUBE-LOOP-BACK"
	kubeLoopBackIPSetComment             = "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"
	kubeClusterIPSet                     = "KUBE-CLUSTER-IP"
	kubeClusterIPSetComment              = "Kubernetes service cluster ip + port for masquerade purpose"
	kubeExternalIPSet                    = "KUBE-EXTERNAL-IP"
	kubeExternalIPSetComment             = "Kubernetes service external ip + port for masquerade and filter purpose"
	kubeExternalIPLocalSet               = "KUBE-EXTERNAL-IP-LOCAL"
	kubeExternalIPLocalSetComment        = "Kubernetes service external ip + port with externalTrafficPolicy=local"
	kubeLoadBalancerSet                  = "KUBE-LOAD-BALANCER"
	kubeLoadBalancerSetComment           = "Kubernetes service lb portal"
	kubeLoadBalancerLocalSet             = "KUBE-LOAD-BALANCER-LOCAL"
	kubeLoadBalancerLocalSetComment      = "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"
	kubeLoadBalancerFWSet                = "KUBE-LOAD-BALANCER-FW"
	kubeLoadBalancerFWSetComment         = "Kubernetes service load balancer ip + port for load balancer with sourceRange"
	kubeLoadBalancerSourceIPSet          = "KUBE-LOAD-BALANCER-SOURCE-IP"
	kubeLoadBalancerSourceIPSetComment   = "Kubernetes service load balancer ip + port + source IP for packet filter purpose"
	kubeLoadBalancerSourceCIDRSet        = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
	kubeLoadBalancerSourceCIDRSetComment = "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"
	kubeNodePortSetTCP                   = "KUBE-NODE-PORT-TCP"
	kubeNodePortSetTCPComment            = "Kubernetes nodeport TCP port for masquerade purpose"
	kubeNodePortLocalSetTCP              = "KUBE-NODE-PORT-LOCAL-TCP"
	kubeNodePortLocalSetTCPComment       = "Kubernetes nodeport TCP port with externalTrafficPolicy=local"
	kubeNodePortSetUDP                   = "KUBE-NODE-PORT-UDP"
	kubeNodePortSetUDPComment            = "Kubernetes nodeport UDP port for masquerade purpose"
	kubeNodePortLocalSetUDP              = "KUBE-NODE-PORT-LOCAL-UDP"
	kubeNodePortLocalSetUDPComment       = "Kubernetes nodeport UDP port with externalTrafficPolicy=local"
	kubeNodePortSetSCTP                  = "KUBE-NODE-PORT-SCTP-HASH"
	kubeNodePortSetSCTPComment           = "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"
	kubeNodePortLocalSetSCTP             = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
	kubeNodePortLocalSetSCTPComment      = "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"
	kubeHealthCheckNodePortSet           = "KUBE-HEALTH-CHECK-NODE-PORT"
	kubeHealthCheckNodePortSetComment    = "Kubernetes health check node port"
	kubeIPVSSet                          = "KUBE-IPVS-IPS"
	kubeIPVSSetComment                   = "Addresses on the ipvs interface"
)

// ipset types (upstream's utilipset.Type).
const (
	hashIP        = "hash:ip"
	hashIPPort    = "hash:ip,port"
	hashIPPortIP  = "hash:ip,port,ip"
	hashIPPortNet = "hash:ip,port,net"
	bitmapPort    = "bitmap:port"

	// Upstream's defaults: hashsize 1024, maxelem 65536, port range
	// 0-65535.
	defaultHashSize  = 1024
	defaultMaxElem   = 65536
	defaultPortRange = "0-65535"
)

// setInfo is one ipset of the mode (upstream's ipsetInfo).
type setInfo struct {
	name    string // the IPv4 name
	setType string
	comment string
}

// ipsetInfo lists every ipset the mode uses, in upstream's order.
var ipsetInfo = []setInfo{
	{kubeLoopBackIPSet, hashIPPortIP, kubeLoopBackIPSetComment},
	{kubeClusterIPSet, hashIPPort, kubeClusterIPSetComment},
	{kubeExternalIPSet, hashIPPort, kubeExternalIPSetComment},
	{kubeExternalIPLocalSet, hashIPPort, kubeExternalIPLocalSetComment},
	{kubeLoadBalancerSet, hashIPPort, kubeLoadBalancerSetComment},
	{kubeLoadBalancerFWSet, hashIPPort, kubeLoadBalancerFWSetComment},
	{kubeLoadBalancerLocalSet, hashIPPort, kubeLoadBalancerLocalSetComment},
	{kubeLoadBalancerSourceIPSet, hashIPPortIP, kubeLoadBalancerSourceIPSetComment},
	{kubeLoadBalancerSourceCIDRSet, hashIPPortNet, kubeLoadBalancerSourceCIDRSetComment},
	{kubeNodePortSetTCP, bitmapPort, kubeNodePortSetTCPComment},
	{kubeNodePortLocalSetTCP, bitmapPort, kubeNodePortLocalSetTCPComment},
	{kubeNodePortSetUDP, bitmapPort, kubeNodePortSetUDPComment},
	{kubeNodePortLocalSetUDP, bitmapPort, kubeNodePortLocalSetUDPComment},
	{kubeNodePortSetSCTP, hashIPPort, kubeNodePortSetSCTPComment},
	{kubeNodePortLocalSetSCTP, hashIPPort, kubeNodePortLocalSetSCTPComment},
	{kubeHealthCheckNodePortSet, bitmapPort, kubeHealthCheckNodePortSetComment},
	{kubeIPVSSet, hashIP, kubeIPVSSetComment},
}

// setIndex maps an IPv4 set name to its index in ipsetInfo.
var setIndex = func() map[string]int {
	m := make(map[string]int, len(ipsetInfo))
	for i, s := range ipsetInfo {
		m[s.name] = i
	}
	return m
}()

// maxSetNameLen is the kernel's limit (IPSET_MAXNAMELEN - 1).
const maxSetNameLen = 31

// familySetName is upstream's NewIPSet naming: "In dual-stack both ipv4
// and ipv6 ipset's can co-exist. To ensure unique names the prefix for
// ipv6 is changed from "KUBE-" to "KUBE-6-". ... The maximum name length
// of an ipset is 31 characters which must be taken into account."
func familySetName(name string, ipv6 bool) string {
	if !ipv6 || !strings.HasPrefix(name, "KUBE-") {
		return name
	}
	name = strings.Replace(name, "KUBE-", "KUBE-6-", 1)
	if len(name) > maxSetNameLen {
		name = name[:maxSetNameLen]
	}
	return name
}

// tempSetName names the set a sync fills before swapping it with the
// live set of index i (names are ≤ 31 characters; Switchboard's own
// prefix, so that no other tool takes them for kube-proxy's).
func tempSetName(i int, ipv6 bool) string {
	fam := 4
	if ipv6 {
		fam = 6
	}
	return fmt.Sprintf("SB-IPVS-TMP-%d-%02d", fam, i)
}

// jumpChain is one rule linking a built-in chain to ours (upstream's
// iptablesJumpChain, installed with EnsureRule(Prepend)).
type jumpChain struct {
	table   string
	from    string
	to      string
	comment string
}

var iptablesJumpChain = []jumpChain{
	{"nat", "OUTPUT", kubeServicesChain, "kubernetes service portals"},
	{"nat", "PREROUTING", kubeServicesChain, "kubernetes service portals"},
	{"nat", "POSTROUTING", kubePostroutingChain, "kubernetes postrouting rules"},
	{"filter", "FORWARD", kubeForwardChain, "kubernetes forwarding rules"},
	{"filter", "INPUT", kubeNodePortChain, "kubernetes health check rules"},
	{"filter", "INPUT", kubeProxyFirewallChain, "kube-proxy firewall rules"},
	{"filter", "FORWARD", kubeProxyFirewallChain, "kube-proxy firewall rules"},
	{"filter", "INPUT", kubeIPVSFilterChain, "kubernetes ipvs access filter"},
	{"filter", "OUTPUT", kubeIPVSOutFilterChain, "kubernetes ipvs access filter"},
}

// restoreLine renders the jump as an iptables-restore line ("-I" or "-D").
func (j jumpChain) restoreLine(cmd string) string {
	return cmd + " " + j.from + ` -m comment --comment "` + j.comment + `" -j ` + j.to
}

// iptablesChains are the chains the mode declares (and so flushes) in
// every restore (upstream's iptablesChains), per table.
var iptablesChains = map[string][]string{
	"nat":    {kubeServicesChain, kubePostroutingChain, kubeNodePortChain, kubeLoadBalancerChain, kubeMarkMasqChain},
	"filter": {kubeForwardChain, kubeNodePortChain, kubeProxyFirewallChain, kubeSourceRangesFirewallChain, kubeIPVSFilterChain, kubeIPVSOutFilterChain},
}

// ipvsOnlyChains are the chains only this mode creates. The other chains
// (KUBE-SERVICES, KUBE-POSTROUTING, KUBE-MARK-MASQ, KUBE-FORWARD,
// KUBE-PROXY-FIREWALL) have the same names in iptables mode; Cleanup
// removes them only where one of these shows the IPVS mode ran.
var ipvsOnlyChains = map[string][]string{
	"nat":    {kubeNodePortChain, kubeLoadBalancerChain},
	"filter": {kubeNodePortChain, kubeSourceRangesFirewallChain, kubeIPVSFilterChain, kubeIPVSOutFilterChain},
}

// masqueradeMark formats the mark as upstream does: fmt.Sprintf("%#08x",
// 1<<bit).
func masqueradeMark(bit int) string {
	return fmt.Sprintf("%#08x", 1<<uint(bit))
}

// knownSchedulers are the IPVS schedulers of the Linux kernel
// (net/netfilter/ipvs/ip_vs_*.c), for validating Config.Scheduler.
var knownSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
