package iptables

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
)

// The chains of kube-proxy's iptables mode (pkg/proxy/iptables/proxier.go).
const (
	kubeServicesChain         = "KUBE-SERVICES"
	kubeExternalServicesChain = "KUBE-EXTERNAL-SERVICES"
	kubeNodePortsChain        = "KUBE-NODEPORTS"
	kubePostroutingChain      = "KUBE-POSTROUTING"
	kubeMarkMasqChain         = "KUBE-MARK-MASQ"
	kubeForwardChain          = "KUBE-FORWARD"
	kubeProxyFirewallChain    = "KUBE-PROXY-FIREWALL"
	kubeProxyCanaryChain      = "KUBE-PROXY-CANARY"
	// kubeletFirewallChain duplicates kubelet's firewall chain holding the
	// anti-martian rule for localhost NodePorts.
	kubeletFirewallChain = "KUBE-FIREWALL"

	// largeClusterEndpointsThreshold: "the number of endpoints at which we
	// switch into 'large cluster mode' and optimize for iptables
	// performance over iptables debuggability" (per-endpoint comments are
	// dropped).
	largeClusterEndpointsThreshold = 1000

	servicePortPolicyClusterChainNamePrefix = "KUBE-SVC-"
	servicePortPolicyLocalChainNamePrefix   = "KUBE-SVL-"
	serviceFirewallChainNamePrefix          = "KUBE-FW-"
	serviceExternalChainNamePrefix          = "KUBE-EXT-"
	servicePortEndpointChainNamePrefix      = "KUBE-SEP-"
)

// portProtoHash is upstream's portProtoHash: "computed by hashing (sha256)
// then encoding to base32 and truncating to 16 chars. We do this because
// IPTables Chain Names must be <= 28 chars long".
func portProtoHash(servicePortName string, protocol string) string {
	hash := sha256.Sum256([]byte(servicePortName + protocol))
	encoded := base32.StdEncoding.EncodeToString(hash[:])
	return encoded[:16]
}

// servicePortPolicyClusterChain is the KUBE-SVC-XXXX chain: "the main
// iptables chain for that service, used for dispatching to endpoints when
// using `Cluster` traffic policy".
func servicePortPolicyClusterChain(servicePortName, protocol string) string {
	return servicePortPolicyClusterChainNamePrefix + portProtoHash(servicePortName, protocol)
}

// servicePortPolicyLocalChainName is the KUBE-SVL-XXXX chain, "which handles
// dispatching to local endpoints when using `Local` traffic policy".
func servicePortPolicyLocalChainName(servicePortName, protocol string) string {
	return servicePortPolicyLocalChainNamePrefix + portProtoHash(servicePortName, protocol)
}

// serviceFirewallChainName is the KUBE-FW-XXXX chain "used to implement the
// filtering for the LoadBalancerSourceRanges feature".
func serviceFirewallChainName(servicePortName, protocol string) string {
	return serviceFirewallChainNamePrefix + portProtoHash(servicePortName, protocol)
}

// serviceExternalChainName is the KUBE-EXT-XXXX chain, "which implements
// 'short-circuiting' for internally-originated external-destination
// traffic when using `Local` external traffic policy".
func serviceExternalChainName(servicePortName, protocol string) string {
	return serviceExternalChainNamePrefix + portProtoHash(servicePortName, protocol)
}

// servicePortEndpointChainName is the KUBE-SEP-XXXX chain of one endpoint
// of one service port; endpoint is "IP:port" ("[IPv6]:port").
func servicePortEndpointChainName(servicePortName, protocol, endpoint string) string {
	hash := sha256.Sum256([]byte(servicePortName + protocol + endpoint))
	encoded := base32.StdEncoding.EncodeToString(hash[:])
	return servicePortEndpointChainNamePrefix + encoded[:16]
}

// isServiceChainName tells whether a chain is one of the per-service chains
// this mode creates and deletes when they become stale.
func isServiceChainName(chain string) bool {
	for _, p := range []string{
		servicePortPolicyClusterChainNamePrefix,
		servicePortPolicyLocalChainNamePrefix,
		servicePortEndpointChainNamePrefix,
		serviceFirewallChainNamePrefix,
		serviceExternalChainNamePrefix,
	} {
		if strings.HasPrefix(chain, p) {
			return true
		}
	}
	return false
}

// computeProbability is upstream's: fmt.Sprintf("%0.10f", 1.0/float64(n)).
func computeProbability(n int) string {
	return fmt.Sprintf("%0.10f", 1.0/float64(n))
}

// probabilities caches computeProbability results ("converting
// probabilities (floats) to strings is expensive").
type probabilities []string

func (p *probabilities) get(n int) string {
	if len(*p) == 0 {
		*p = append(*p, "<bad value>")
	}
	for i := len(*p); i <= n; i++ {
		*p = append(*p, computeProbability(i))
	}
	return (*p)[n]
}

// masqueradeMark formats the mark as upstream does: fmt.Sprintf("%#08x", 1<<bit).
func masqueradeMark(bit int) string {
	return fmt.Sprintf("%#08x", 1<<uint(bit))
}

// jumpChain is one rule linking a built-in chain to ours
// (upstream iptablesJumpChains).
type jumpChain struct {
	table     string
	dstChain  string
	srcChain  string
	comment   string
	extraArgs []string
}

var iptablesJumpChains = []jumpChain{
	{"filter", kubeExternalServicesChain, "INPUT", "kubernetes externally-visible service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{"filter", kubeExternalServicesChain, "FORWARD", "kubernetes externally-visible service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{"filter", kubeNodePortsChain, "INPUT", "kubernetes health check service ports", nil},
	{"filter", kubeServicesChain, "FORWARD", "kubernetes service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{"filter", kubeServicesChain, "OUTPUT", "kubernetes service portals", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{"filter", kubeForwardChain, "FORWARD", "kubernetes forwarding rules", nil},
	{"filter", kubeProxyFirewallChain, "INPUT", "kubernetes load balancer firewall", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{"filter", kubeProxyFirewallChain, "OUTPUT", "kubernetes load balancer firewall", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{"filter", kubeProxyFirewallChain, "FORWARD", "kubernetes load balancer firewall", []string{"-m", "conntrack", "--ctstate", "NEW"}},
	{"nat", kubeServicesChain, "OUTPUT", "kubernetes service portals", nil},
	{"nat", kubeServicesChain, "PREROUTING", "kubernetes service portals", nil},
	{"nat", kubePostroutingChain, "POSTROUTING", "kubernetes postrouting rules", nil},
}

// iptablesKubeletJumpChains duplicates the jumps kubelet creates.
var iptablesKubeletJumpChains = []jumpChain{
	{"filter", kubeletFirewallChain, "INPUT", "", nil},
	{"filter", kubeletFirewallChain, "OUTPUT", "", nil},
}

// restoreArgs renders the jump as an iptables-restore line with the given
// command ("-I" or "-D").
func (j jumpChain) restoreLine(cmd string) string {
	parts := []string{cmd, j.srcChain}
	parts = append(parts, j.extraArgs...)
	if j.comment != "" {
		parts = append(parts, "-m", "comment", "--comment", `"`+j.comment+`"`)
	}
	parts = append(parts, "-j", j.dstChain)
	return strings.Join(parts, " ")
}
