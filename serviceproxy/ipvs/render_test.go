package ipvs

import (
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// chainRules lists the rules of a chain (in every table, in the order
// of the restore input, as upstream's fake iptables GetRules does) as
// "TARGET MATCHSET" (MATCHSET empty when the rule matches no set).
func chainRules(data, chain string) []string {
	var out []string
	for _, line := range strings.Split(data, "\n") {
		if !strings.HasPrefix(line, "-A "+chain+" ") {
			continue
		}
		target := ""
		if i := strings.LastIndex(line, " -j "); i >= 0 {
			target = strings.Fields(line[i+4:])[0]
		}
		set := ""
		if i := strings.Index(line, "--match-set "); i >= 0 {
			set = strings.Fields(line[i+len("--match-set "):])[0]
		}
		out = append(out, target+" "+set)
	}
	return out
}

type renderCase struct {
	name      string // upstream's test (pkg/proxy/ipvs/proxier_test.go) and rule
	cfg       Config
	nodeIPs   []netip.Addr
	hostAddrs []string
	state     func(st *serviceproxy.State)
	// wantIPVS is the "ipvsadm -S -n" section, exactly.
	wantIPVS string
	// wantSets are the members of the IPv4 sets; every other set must be
	// created empty.
	wantSets map[string][]string
	// wantChains are the rules of chains, as chainRules lists them.
	wantChains map[string][]string
	// wantRules are lines the iptables-restore section must hold.
	wantRules []string
	// noRules are substrings no iptables line may hold.
	noRules []string
}

func svcNodePort(proto corev1.Protocol, mod func(*serviceproxy.ServicePort)) *serviceproxy.ServicePort {
	s := &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", proto), Type: corev1.ServiceTypeNodePort, Protocol: proto,
		ClusterIPs: addrs("10.20.30.41"), Port: 80, NodePort: 3001}
	if mod != nil {
		mod(s)
	}
	return s
}

var renderCases = []renderCase{{
	name:    `TestNodePortIPv4: "1 service with node port, has 2 endpoints" (the IPv6 endpoint is not the IPv4 service's)`,
	nodeIPs: addrs("100.101.102.103", "2001:db8::1:1"),
	state: func(st *serviceproxy.State) {
		add(st, svcNodePort(corev1.ProtocolTCP, nil), ep("10.180.0.1", 80, false), ep("1002:ab8::2:10", 80, false))
	},
	wantIPVS: `-A -t 10.20.30.41:80 -s rr
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-A -t 100.101.102.103:3001 -s rr
-a -t 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:   {"10.20.30.41,tcp:80"},
		kubeNodePortSetTCP: {"3001"},
		kubeIPVSSet:        {"10.20.30.41"},
	},
}, {
	name:    `TestNodePortIPv4: "1 UDP service with node port, has endpoints"`,
	nodeIPs: addrs("100.101.102.103"),
	state: func(st *serviceproxy.State) {
		add(st, svcNodePort(corev1.ProtocolUDP, nil), ep("10.180.0.1", 80, false))
	},
	wantIPVS: `-A -u 10.20.30.41:80 -s rr
-a -u 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-A -u 100.101.102.103:3001 -s rr
-a -u 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:   {"10.20.30.41,udp:80"},
		kubeNodePortSetUDP: {"3001"},
		kubeIPVSSet:        {"10.20.30.41"},
	},
	wantChains: map[string][]string{
		kubeNodePortChain: {"KUBE-MARK-MASQ KUBE-NODE-PORT-UDP", "ACCEPT KUBE-HEALTH-CHECK-NODE-PORT"},
		// upstream's newer "Dismiss connects to localhost early in the
		// service chain" RETURN comes first.
		kubeServicesChain: {"RETURN ", "KUBE-MARK-MASQ KUBE-CLUSTER-IP", "KUBE-NODE-PORT ", "ACCEPT KUBE-CLUSTER-IP"},
	},
}, {
	name:    `TestNodePortIPv4: "service has node port but no endpoints" (virtual servers without real servers: "no real servers corresponding to no endpoints")`,
	nodeIPs: addrs("100.101.102.103"),
	state: func(st *serviceproxy.State) {
		add(st, svcNodePort(corev1.ProtocolTCP, nil))
	},
	wantIPVS: `-A -t 10.20.30.41:80 -s rr
-A -t 100.101.102.103:3001 -s rr
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:   {"10.20.30.41,tcp:80"},
		kubeNodePortSetTCP: {"3001"},
		kubeIPVSSet:        {"10.20.30.41"},
	},
}, {
	name:    `TestNodePortIPv4: "node port service with protocol sctp on a node with multiple nodeIPs" ("Since hash ip:port is used for SCTP, all the nodeIPs to be used in the SCTP ipset entries")`,
	nodeIPs: addrs("100.101.102.103", "100.101.102.104", "100.101.102.105", "2001:db8::1:1", "2001:db8::1:2", "2001:db8::1:3"),
	state: func(st *serviceproxy.State) {
		add(st, svcNodePort(corev1.ProtocolSCTP, nil), ep("10.180.0.1", 80, false))
	},
	wantIPVS: `-A --sctp-service 10.20.30.41:80 -s rr
-a --sctp-service 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-A --sctp-service 100.101.102.103:3001 -s rr
-a --sctp-service 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1
-A --sctp-service 100.101.102.104:3001 -s rr
-a --sctp-service 100.101.102.104:3001 -r 10.180.0.1:80 -m -w 1
-A --sctp-service 100.101.102.105:3001 -s rr
-a --sctp-service 100.101.102.105:3001 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:    {"10.20.30.41,sctp:80"},
		kubeNodePortSetSCTP: {"100.101.102.103,sctp:3001", "100.101.102.104,sctp:3001", "100.101.102.105,sctp:3001"},
		kubeIPVSSet:         {"10.20.30.41"},
	},
}, {
	name:    `TestNodePortIPv4: "node port service with protocol sctp and externalTrafficPolicy local"`,
	nodeIPs: addrs("100.101.102.103"),
	state: func(st *serviceproxy.State) {
		add(st, svcNodePort(corev1.ProtocolSCTP, func(s *serviceproxy.ServicePort) { s.ExternalPolicyLocal = true }),
			ep("10.180.0.1", 80, true), ep("10.180.1.1", 80, false))
	},
	wantIPVS: `-A --sctp-service 10.20.30.41:80 -s rr
-a --sctp-service 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-a --sctp-service 10.20.30.41:80 -r 10.180.1.1:80 -m -w 1
-A --sctp-service 100.101.102.103:3001 -s rr
-a --sctp-service 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeLoopBackIPSet:        {"10.180.0.1,sctp:80,10.180.0.1"},
		kubeClusterIPSet:         {"10.20.30.41,sctp:80"},
		kubeNodePortSetSCTP:      {"100.101.102.103,sctp:3001"},
		kubeNodePortLocalSetSCTP: {"100.101.102.103,sctp:3001"},
		kubeIPVSSet:              {"10.20.30.41"},
	},
	wantChains: map[string][]string{
		kubeNodePortChain: {"RETURN KUBE-NODE-PORT-LOCAL-SCTP-HASH", "KUBE-MARK-MASQ KUBE-NODE-PORT-SCTP-HASH", "ACCEPT KUBE-HEALTH-CHECK-NODE-PORT"},
		// "Handle traffic that loops back to the originator with SNAT."
		kubePostroutingChain: {"MASQUERADE KUBE-LOOP-BACK", "RETURN ", "MARK ", "MASQUERADE "},
	},
}, {
	name:    `TestNodePortIPv6: "1 service with node port, has 2 endpoints" (IPv6 sets are named KUBE-6-...)`,
	nodeIPs: addrs("100.101.102.103", "2001:db8::1:1"),
	state: func(st *serviceproxy.State) {
		add(st, svcNodePort(corev1.ProtocolTCP, func(s *serviceproxy.ServicePort) { s.ClusterIPs = addrs("2020::1") }),
			ep("10.180.0.1", 80, false), ep("1002:ab8::2:10", 80, false))
	},
	wantIPVS: `-A -t [2001:db8::1:1]:3001 -s rr
-a -t [2001:db8::1:1]:3001 -r [1002:ab8::2:10]:80 -m -w 1
-A -t [2020::1]:80 -s rr
-a -t [2020::1]:80 -r [1002:ab8::2:10]:80 -m -w 1
`,
	wantSets: map[string][]string{
		"KUBE-6-CLUSTER-IP":    {"2020::1,tcp:80"},
		"KUBE-6-NODE-PORT-TCP": {"3001"},
		"KUBE-6-IPVS-IPS":      {"2020::1"},
	},
	wantRules: []string{"-A KUBE-SERVICES -s ::1/128 -j RETURN"},
}, {
	name:    `TestOnlyLocalNodePorts: externalTrafficPolicy Local NodePort gets only the local endpoint`,
	nodeIPs: addrs("100.101.102.103"),
	state: func(st *serviceproxy.State) {
		add(st, svcNodePort(corev1.ProtocolTCP, func(s *serviceproxy.ServicePort) { s.ExternalPolicyLocal = true }),
			ep("10.180.0.1", 80, true), ep("10.180.1.1", 80, false))
	},
	wantIPVS: `-A -t 10.20.30.41:80 -s rr
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-a -t 10.20.30.41:80 -r 10.180.1.1:80 -m -w 1
-A -t 100.101.102.103:3001 -s rr
-a -t 100.101.102.103:3001 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeLoopBackIPSet:       {"10.180.0.1,tcp:80,10.180.0.1"},
		kubeClusterIPSet:        {"10.20.30.41,tcp:80"},
		kubeNodePortSetTCP:      {"3001"},
		kubeNodePortLocalSetTCP: {"3001"},
		kubeIPVSSet:             {"10.20.30.41"},
	},
	wantChains: map[string][]string{
		kubeServicesChain: {"RETURN ", "KUBE-MARK-MASQ KUBE-CLUSTER-IP", "KUBE-NODE-PORT ", "ACCEPT KUBE-CLUSTER-IP"},
		kubeNodePortChain: {"RETURN KUBE-NODE-PORT-LOCAL-TCP", "KUBE-MARK-MASQ KUBE-NODE-PORT-TCP", "ACCEPT KUBE-HEALTH-CHECK-NODE-PORT"},
	},
}, {
	name:    `TestHealthCheckNodePort: "healthcheck node port set should only contain valid HC node ports" (externalTrafficPolicy Local ones)`,
	nodeIPs: addrs("100.101.102.103"),
	state: func(st *serviceproxy.State) {
		for _, s := range []struct {
			name  string
			local bool
			hc    int32
		}{{"valid-svc1", true, 30000}, {"valid-svc2", true, 30001}, {"invalid-svc3", false, 30002}} {
			add(st, &serviceproxy.ServicePort{Name: spn("ns1", s.name, "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
				ClusterIPs: addrs("10.20.30.41"), Port: 80, NodePort: 3000, ExternalPolicyLocal: s.local, HealthCheckNodePort: s.hc})
		}
	},
	// the three share one cluster IP and port: the first service port
	// (by name) owns the virtual servers
	wantIPVS: `-A -t 10.20.30.41:80 -s rr
-A -t 100.101.102.103:3000 -s rr
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:           {"10.20.30.41,tcp:80"},
		kubeNodePortSetTCP:         {"3000"},
		kubeNodePortLocalSetTCP:    {"3000"},
		kubeHealthCheckNodePortSet: {"30000", "30001"},
		kubeIPVSSet:                {"10.20.30.41"},
	},
	wantChains: map[string][]string{
		kubeNodePortChain: {"RETURN KUBE-NODE-PORT-LOCAL-TCP", "KUBE-MARK-MASQ KUBE-NODE-PORT-TCP", "ACCEPT KUBE-HEALTH-CHECK-NODE-PORT"},
	},
}, {
	name: `TestLoadBalancerSourceRanges: "The service firewall rules are created based on ServiceSpec.loadBalancerSourceRanges field"; "since nodeIP is not covered in any of SourceRange we need to explicitly block the lbIP access from k8s nodes"`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
			ClusterIPs: addrs("10.20.30.41"), Port: 80, LoadBalancerVIPs: addrs("1.2.3.4"), LoadBalancerSourceRanges: prefixes("10.0.0.0/8")},
			ep("10.180.0.1", 80, false))
	},
	wantIPVS: `-A -t 1.2.3.4:80 -s rr
-a -t 1.2.3.4:80 -r 10.180.0.1:80 -m -w 1
-A -t 10.20.30.41:80 -s rr
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:              {"10.20.30.41,tcp:80"},
		kubeLoadBalancerSet:           {"1.2.3.4,tcp:80"},
		kubeLoadBalancerFWSet:         {"1.2.3.4,tcp:80"},
		kubeLoadBalancerSourceCIDRSet: {"1.2.3.4,tcp:80,10.0.0.0/8"},
		kubeIPVSSet:                   {"1.2.3.4", "10.20.30.41"},
	},
	wantChains: map[string][]string{
		kubeServicesChain:             {"RETURN ", "KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ KUBE-CLUSTER-IP", "KUBE-NODE-PORT ", "ACCEPT KUBE-CLUSTER-IP", "ACCEPT KUBE-LOAD-BALANCER"},
		kubeProxyFirewallChain:        {"KUBE-SOURCE-RANGES-FIREWALL KUBE-LOAD-BALANCER-FW"},
		kubeSourceRangesFirewallChain: {"RETURN KUBE-LOAD-BALANCER-SOURCE-CIDR", "DROP "},
		kubeIPVSOutFilterChain:        {"DROP "},
	},
	wantRules: []string{"-A KUBE-IPVS-OUT-FILTER -s 1.2.3.4 -m ipvs --vaddr 1.2.3.4 --vproto tcp --vport 80 -j DROP"},
}, {
	name:    `LoadBalancerSourceRanges holding the node IP: "Need to add the following rule to allow request on host"`,
	nodeIPs: addrs("10.1.2.3"),
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
			ClusterIPs: addrs("10.20.30.41"), Port: 80, LoadBalancerVIPs: addrs("1.2.3.4"), LoadBalancerSourceRanges: prefixes("10.0.0.0/8")},
			ep("10.180.0.1", 80, false))
	},
	wantIPVS: `-A -t 1.2.3.4:80 -s rr
-a -t 1.2.3.4:80 -r 10.180.0.1:80 -m -w 1
-A -t 10.20.30.41:80 -s rr
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:              {"10.20.30.41,tcp:80"},
		kubeLoadBalancerSet:           {"1.2.3.4,tcp:80"},
		kubeLoadBalancerFWSet:         {"1.2.3.4,tcp:80"},
		kubeLoadBalancerSourceCIDRSet: {"1.2.3.4,tcp:80,10.0.0.0/8"},
		kubeLoadBalancerSourceIPSet:   {"1.2.3.4,tcp:80,1.2.3.4"},
		kubeIPVSSet:                   {"1.2.3.4", "10.20.30.41"},
	},
	wantChains: map[string][]string{
		kubeSourceRangesFirewallChain: {"RETURN KUBE-LOAD-BALANCER-SOURCE-CIDR", "RETURN KUBE-LOAD-BALANCER-SOURCE-IP", "DROP "},
		kubeIPVSOutFilterChain:        nil,
	},
}, {
	name: `TestAcceptIPVSTraffic: "Accept all traffic with destination of ipvs virtual service"; external IPs are masqueraded and accepted`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.40"), Port: 80, NodePort: 80, ExternalIPs: addrs("5.6.7.8")})
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc2", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.20.30.41"), Port: 80, NodePort: 80, LoadBalancerVIPs: addrs("1.2.3.4")})
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc3", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.20.30.42"), Port: 80, NodePort: 80})
	},
	wantIPVS: `-A -t 1.2.3.4:80 -s rr
-A -t 5.6.7.8:80 -s rr
-A -t 10.20.30.40:80 -s rr
-A -t 10.20.30.41:80 -s rr
-A -t 10.20.30.42:80 -s rr
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:    {"10.20.30.40,tcp:80", "10.20.30.41,tcp:80", "10.20.30.42,tcp:80"},
		kubeExternalIPSet:   {"5.6.7.8,tcp:80"},
		kubeLoadBalancerSet: {"1.2.3.4,tcp:80"},
		kubeIPVSSet:         {"1.2.3.4", "10.20.30.40", "10.20.30.41", "10.20.30.42", "5.6.7.8"},
	},
	wantChains: map[string][]string{
		kubeServicesChain: {
			"RETURN ",
			"KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER",
			"KUBE-MARK-MASQ KUBE-CLUSTER-IP",
			"KUBE-MARK-MASQ KUBE-EXTERNAL-IP",
			"ACCEPT KUBE-EXTERNAL-IP", // With externalTrafficOnlyArgs
			"ACCEPT KUBE-EXTERNAL-IP", // With dstLocalOnlyArgs
			"KUBE-NODE-PORT ",
			"ACCEPT KUBE-CLUSTER-IP",
			"ACCEPT KUBE-LOAD-BALANCER",
		},
	},
	wantRules: []string{
		`-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT`,
		`-A KUBE-SERVICES -m comment --comment "Kubernetes service external ip + port for masquerade and filter purpose" -m set --match-set KUBE-EXTERNAL-IP dst,dst -m addrtype --dst-type LOCAL -j ACCEPT`,
	},
}, {
	name:      `TestOnlyLocalExternalIPs: externalTrafficPolicy Local external IPs go to KUBE-EXTERNAL-IP-LOCAL, not masqueraded; an external IP that is a node address is not bound on kube-ipvs0 ("We must not add the address to the dummy device if it exist on another interface")`,
	hostAddrs: []string{"50.60.70.82"},
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.41"), Port: 80,
			ExternalIPs: addrs("50.60.70.81", "50.60.70.82", "2012::51"), ExternalPolicyLocal: true},
			ep("10.180.0.1", 80, false), ep("10.180.2.1", 80, true))
	},
	wantIPVS: `-A -t 10.20.30.41:80 -s rr
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-a -t 10.20.30.41:80 -r 10.180.2.1:80 -m -w 1
-A -t 50.60.70.81:80 -s rr
-a -t 50.60.70.81:80 -r 10.180.2.1:80 -m -w 1
-A -t 50.60.70.82:80 -s rr
-a -t 50.60.70.82:80 -r 10.180.2.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeLoopBackIPSet:      {"10.180.2.1,tcp:80,10.180.2.1"},
		kubeClusterIPSet:       {"10.20.30.41,tcp:80"},
		kubeExternalIPLocalSet: {"50.60.70.81,tcp:80", "50.60.70.82,tcp:80"},
		kubeIPVSSet:            {"10.20.30.41", "50.60.70.81"},
	},
	wantChains: map[string][]string{
		kubeServicesChain: {"RETURN ", "KUBE-MARK-MASQ KUBE-CLUSTER-IP", "ACCEPT KUBE-EXTERNAL-IP-LOCAL", "ACCEPT KUBE-EXTERNAL-IP-LOCAL", "KUBE-NODE-PORT ", "ACCEPT KUBE-CLUSTER-IP"},
	},
}, {
	name: `TestOnlyLocalLoadBalancing: "**local** endpoint address, should be added as RS", "**remote** endpoint address, should not be added as RS"`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
			ClusterIPs: addrs("10.20.30.41"), Port: 80, NodePort: 3001, LoadBalancerVIPs: addrs("1.2.3.4"), ExternalPolicyLocal: true},
			ep("10.180.0.1", 80, true), ep("10.180.1.1", 80, false))
	},
	wantIPVS: `-A -t 1.2.3.4:80 -s rr
-a -t 1.2.3.4:80 -r 10.180.0.1:80 -m -w 1
-A -t 10.20.30.41:80 -s rr
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-a -t 10.20.30.41:80 -r 10.180.1.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeLoopBackIPSet:        {"10.180.0.1,tcp:80,10.180.0.1"},
		kubeClusterIPSet:         {"10.20.30.41,tcp:80"},
		kubeLoadBalancerSet:      {"1.2.3.4,tcp:80"},
		kubeLoadBalancerLocalSet: {"1.2.3.4,tcp:80"},
		kubeIPVSSet:              {"1.2.3.4", "10.20.30.41"},
	},
	wantChains: map[string][]string{
		kubeServicesChain:     {"RETURN ", "KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER", "KUBE-MARK-MASQ KUBE-CLUSTER-IP", "KUBE-NODE-PORT ", "ACCEPT KUBE-CLUSTER-IP", "ACCEPT KUBE-LOAD-BALANCER"},
		kubeLoadBalancerChain: {"RETURN KUBE-LOAD-BALANCER-LOCAL", "KUBE-MARK-MASQ "},
	},
}, {
	name: `TestSessionAffinity: sessionAffinity ClientIP "Set session affinity flag and timeout for IPVS service" on every virtual server`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.41"), Port: 80,
			ExternalIPs: addrs("50.60.70.81"), StickyMaxAge: 10800 * time.Second}, ep("10.180.0.1", 80, false))
	},
	wantIPVS: `-A -t 10.20.30.41:80 -s rr -p 10800
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
-A -t 50.60.70.81:80 -s rr -p 10800
-a -t 50.60.70.81:80 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeClusterIPSet:  {"10.20.30.41,tcp:80"},
		kubeExternalIPSet: {"50.60.70.81,tcp:80"},
		kubeIPVSSet:       {"10.20.30.41", "50.60.70.81"},
	},
}, {
	name: `scheduler "mh": "Set the source hash flag needed for the distribution method "mh""`,
	cfg:  Config{Scheduler: "mh"},
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.41"), Port: 80}, ep("10.180.0.1", 80, false))
	},
	wantIPVS: `-A -t 10.20.30.41:80 -s mh -b mh-fallback
-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1
`,
	wantSets: map[string][]string{kubeClusterIPSet: {"10.20.30.41,tcp:80"}, kubeIPVSSet: {"10.20.30.41"}},
}, {
	name: `TestInternalTrafficPolicy: "internalTrafficPolicy is cluster with non-zero local endpoints"`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "", corev1.ProtocolTCP), ClusterIPs: addrs("172.20.1.1"), Port: 80},
			ep("10.0.1.1", 80, true), ep("10.0.1.2", 80, false), ep("10.0.1.3", 80, false))
	},
	wantIPVS: `-A -t 172.20.1.1:80 -s rr
-a -t 172.20.1.1:80 -r 10.0.1.1:80 -m -w 1
-a -t 172.20.1.1:80 -r 10.0.1.2:80 -m -w 1
-a -t 172.20.1.1:80 -r 10.0.1.3:80 -m -w 1
`,
	wantSets: map[string][]string{kubeClusterIPSet: {"172.20.1.1,tcp:80"}, kubeLoopBackIPSet: {"10.0.1.1,tcp:80,10.0.1.1"}, kubeIPVSSet: {"172.20.1.1"}},
}, {
	name: `TestInternalTrafficPolicy: "internalTrafficPolicy is local with non-zero local endpoints"`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "", corev1.ProtocolTCP), ClusterIPs: addrs("172.20.1.1"), Port: 80, InternalPolicyLocal: true},
			ep("10.0.1.1", 80, true), ep("10.0.1.2", 80, false), ep("10.0.1.3", 80, false))
	},
	wantIPVS: `-A -t 172.20.1.1:80 -s rr
-a -t 172.20.1.1:80 -r 10.0.1.1:80 -m -w 1
`,
	wantSets: map[string][]string{kubeClusterIPSet: {"172.20.1.1,tcp:80"}, kubeLoopBackIPSet: {"10.0.1.1,tcp:80,10.0.1.1"}, kubeIPVSSet: {"172.20.1.1"}},
}, {
	name: `TestInternalTrafficPolicy: "internalTrafficPolicy is local with zero local endpoints" (no real server: IPVS refuses)`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "", corev1.ProtocolTCP), ClusterIPs: addrs("172.20.1.1"), Port: 80, InternalPolicyLocal: true},
			ep("10.0.1.1", 80, false), ep("10.0.1.2", 80, false), ep("10.0.1.3", 80, false))
	},
	wantIPVS: `-A -t 172.20.1.1:80 -s rr
`,
	wantSets: map[string][]string{kubeClusterIPSet: {"172.20.1.1,tcp:80"}, kubeIPVSSet: {"172.20.1.1"}},
}, {
	name: `Test_EndpointSliceReadyAndTerminatingCluster: "terminating endpoints ... are only used when there are no ready endpoints": ready ones only`,
	state: func(st *serviceproxy.State) {
		notServing := terminating("10.0.1.4", 80, true)
		notServing.Serving = false
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "", corev1.ProtocolTCP), ClusterIPs: addrs("172.20.1.1"), Port: 80},
			ep("10.0.1.1", 80, true), ep("10.0.1.2", 80, true), terminating("10.0.1.3", 80, true), notServing, ep("10.0.1.5", 80, false))
	},
	wantIPVS: `-A -t 172.20.1.1:80 -s rr
-a -t 172.20.1.1:80 -r 10.0.1.1:80 -m -w 1
-a -t 172.20.1.1:80 -r 10.0.1.2:80 -m -w 1
-a -t 172.20.1.1:80 -r 10.0.1.5:80 -m -w 1
`,
	wantSets: map[string][]string{
		kubeClusterIPSet: {"172.20.1.1,tcp:80"},
		// upstream puts every local endpoint in KUBE-LOOP-BACK
		kubeLoopBackIPSet: {"10.0.1.1,tcp:80,10.0.1.1", "10.0.1.2,tcp:80,10.0.1.2", "10.0.1.3,tcp:80,10.0.1.3", "10.0.1.4,tcp:80,10.0.1.4"},
		kubeIPVSSet:       {"172.20.1.1"},
	},
}, {
	name: `Test_EndpointSliceOnlyReadyAndTerminatingCluster: no ready endpoint, so the serving terminating ones (not the non-serving)`,
	state: func(st *serviceproxy.State) {
		notServing := terminating("10.0.1.3", 80, false)
		notServing.Serving = false
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "", corev1.ProtocolTCP), ClusterIPs: addrs("172.20.1.1"), Port: 80},
			terminating("10.0.1.1", 80, false), terminating("10.0.1.2", 80, false), notServing, terminating("10.0.1.4", 80, false))
	},
	wantIPVS: `-A -t 172.20.1.1:80 -s rr
-a -t 172.20.1.1:80 -r 10.0.1.1:80 -m -w 1
-a -t 172.20.1.1:80 -r 10.0.1.2:80 -m -w 1
-a -t 172.20.1.1:80 -r 10.0.1.4:80 -m -w 1
`,
	wantSets: map[string][]string{kubeClusterIPSet: {"172.20.1.1,tcp:80"}, kubeIPVSSet: {"172.20.1.1"}},
}, {
	name: `TestClusterIPNoEndpoint: a virtual server without real servers`,
	state: func(st *serviceproxy.State) {
		add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.41"), Port: 80})
	},
	wantIPVS: "-A -t 10.20.30.41:80 -s rr\n",
	wantSets: map[string][]string{kubeClusterIPSet: {"10.20.30.41,tcp:80"}, kubeIPVSSet: {"10.20.30.41"}},
	wantRules: []string{
		// "Add rules to the filter/KUBE-IPVS-FILTER chain to prevent
		// access to ports on the host through VIP addresses."
		`-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT`,
	},
}, {
	name:       `cluster CIDR: "This masquerades off-cluster traffic to a service VIP"`,
	cfg:        Config{ClusterCIDRs: prefixes("10.244.0.0/16")},
	state:      oneClusterIP,
	wantIPVS:   "-A -t 10.20.30.41:80 -s rr\n-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1\n",
	wantSets:   map[string][]string{kubeClusterIPSet: {"10.20.30.41,tcp:80"}, kubeIPVSSet: {"10.20.30.41"}},
	wantRules:  []string{`-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`},
	noRules:    []string{"src,dst"},
	hostAddrs:  nil,
	wantChains: nil,
	nodeIPs:    nil,
}, {
	name:      `masqueradeAll: every packet to a cluster IP is masqueraded`,
	cfg:       Config{MasqueradeAll: true, ClusterCIDRs: prefixes("10.244.0.0/16")},
	state:     oneClusterIP,
	wantIPVS:  "-A -t 10.20.30.41:80 -s rr\n-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1\n",
	wantSets:  map[string][]string{kubeClusterIPSet: {"10.20.30.41,tcp:80"}, kubeIPVSSet: {"10.20.30.41"}},
	wantRules: []string{`-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ`},
	noRules:   []string{"! -s 10.244.0.0/16"},
}, {
	name:     `no cluster CIDR: "Masquerade all OUTPUT traffic coming from a service ip"`,
	state:    oneClusterIP,
	wantIPVS: "-A -t 10.20.30.41:80 -s rr\n-a -t 10.20.30.41:80 -r 10.180.0.1:80 -m -w 1\n",
	wantSets: map[string][]string{kubeClusterIPSet: {"10.20.30.41,tcp:80"}, kubeIPVSSet: {"10.20.30.41"}},
	wantRules: []string{
		`-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ`,
		`-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN`,
		`-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000`,
		`-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE`,
		`-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000`,
	},
}}

func oneClusterIP(st *serviceproxy.State) {
	add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc1", "p80", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.41"), Port: 80}, ep("10.180.0.1", 80, false))
}

func TestRenderMatchesUpstream(t *testing.T) {
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestProxier(t, tc.cfg, nil, tc.hostAddrs...)
			st := newState()
			st.Node.IPs = tc.nodeIPs
			tc.state(st)
			out, err := p.Render(st)
			if err != nil {
				t.Fatal(err)
			}
			sec := sections(t, out)
			if got := sec["ipvsadm -S -n"]; got != tc.wantIPVS {
				t.Errorf("ipvsadm -S -n:\n%s\nwant:\n%s\ndiff:\n%s", got, tc.wantIPVS, diffLines(tc.wantIPVS, got))
			}

			sets := parseIPSet(t, sec["ipset restore"])
			for _, info := range ipsetInfo {
				s := sets[info.name]
				if s == nil {
					t.Errorf("set %s is not created", info.name)
					continue
				}
				if s.setType != info.setType {
					t.Errorf("set %s has type %s, upstream's is %s", info.name, s.setType, info.setType)
				}
			}
			for name, s := range sets {
				var got []string
				for m := range s.members {
					got = append(got, m)
				}
				sort.Strings(got)
				want := append([]string(nil), tc.wantSets[name]...)
				sort.Strings(want)
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("set %s: members %v, want %v", name, got, want)
				}
			}
			for name := range tc.wantSets {
				if sets[name] == nil {
					t.Errorf("set %s: not in the ipset restore input", name)
				}
			}

			rules := sec["iptables-restore"]
			if strings.HasPrefix(tc.name, "TestNodePortIPv6") {
				rules = sec["ip6tables-restore"]
			}
			for chain, want := range tc.wantChains {
				got := chainRules(rules, chain)
				if strings.Join(got, "|") != strings.Join(want, "|") {
					t.Errorf("chain %s rules:\n got %q\nwant %q", chain, got, want)
				}
			}
			for _, r := range tc.wantRules {
				if !strings.Contains(rules, r+"\n") {
					t.Errorf("missing rule %s in:\n%s", r, rules)
				}
			}
			for _, r := range tc.noRules {
				if strings.Contains(rules, r) {
					t.Errorf("unexpected %q in:\n%s", r, rules)
				}
			}
		})
	}
}

// TestRenderGoldenRules checks a whole iptables-restore input, line by
// line against upstream's writeIptablesRules and createAndLinkKubeChain
// (chains declared in upstream's iptablesChains order, jumps inserted as
// EnsureRule(Prepend) would), for one UDP NodePort service.
func TestRenderGoldenRules(t *testing.T) {
	p := newTestProxier(t, Config{RandomFully: boolp(true)}, nil)
	st := newState()
	st.Node.IPs = addrs("100.101.102.103")
	add(st, svcNodePort(corev1.ProtocolUDP, nil), ep("10.180.0.1", 80, false))
	out, err := p.Render(st)
	if err != nil {
		t.Fatal(err)
	}
	want := `*nat
:KUBE-SERVICES - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-LOAD-BALANCER - [0:0]
:KUBE-MARK-MASQ - [0:0]
-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN
-A KUBE-NODE-PORT -p udp -m comment --comment "Kubernetes nodeport UDP port for masquerade purpose" -m set --match-set KUBE-NODE-PORT-UDP dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m comment --comment "Kubernetes service cluster ip + port for masquerade purpose" -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODE-PORT
-A KUBE-LOAD-BALANCER -j KUBE-MARK-MASQ
-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT
-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x00004000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000
-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-I POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
COMMIT
*filter
:KUBE-FORWARD - [0:0]
:KUBE-NODE-PORT - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
:KUBE-SOURCE-RANGES-FIREWALL - [0:0]
:KUBE-IPVS-FILTER - [0:0]
:KUBE-IPVS-OUT-FILTER - [0:0]
-A KUBE-SOURCE-RANGES-FIREWALL -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x00004000/0x00004000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A KUBE-NODE-PORT -m comment --comment "Kubernetes health check node port" -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j ACCEPT
-A KUBE-IPVS-FILTER -m set --match-set KUBE-LOAD-BALANCER dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-CLUSTER-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-EXTERNAL-IP-LOCAL dst,dst -j RETURN
-A KUBE-IPVS-FILTER -m set --match-set KUBE-HEALTH-CHECK-NODE-PORT dst -j RETURN
-A KUBE-IPVS-FILTER -m conntrack --ctstate NEW -m set --match-set KUBE-IPVS-IPS dst -j REJECT
-I FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-I INPUT -m comment --comment "kubernetes health check rules" -j KUBE-NODE-PORT
-I INPUT -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
-I FORWARD -m comment --comment "kube-proxy firewall rules" -j KUBE-PROXY-FIREWALL
-I INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER
-I OUTPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-OUT-FILTER
COMMIT
`
	if got := sections(t, out)["iptables-restore"]; got != want {
		t.Errorf("iptables-restore input differs:\n%s", diffLines(want, got))
	}
}

// TestRenderSetsRestoreInput checks the "ipset restore" input of a fresh
// node: upstream's create parameters ("hashsize 1024 maxelem 65536",
// "range 0-65535") and its entry formats.
func TestRenderSetsRestoreInput(t *testing.T) {
	p := newTestProxier(t, Config{}, nil)
	st := newState()
	st.Node.IPs = addrs("100.101.102.103")
	add(st, svcNodePort(corev1.ProtocolTCP, func(s *serviceproxy.ServicePort) {
		s.Type = corev1.ServiceTypeLoadBalancer
		s.LoadBalancerVIPs = addrs("1.2.3.4")
		s.LoadBalancerSourceRanges = prefixes("203.0.113.0/25")
	}), ep("10.180.0.1", 80, true))
	out, err := p.Render(st)
	if err != nil {
		t.Fatal(err)
	}
	got := sections(t, out)["ipset restore"]
	for _, want := range []string{
		"create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536\nadd KUBE-LOOP-BACK 10.180.0.1,tcp:80,10.180.0.1\n",
		"create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\nadd KUBE-CLUSTER-IP 10.20.30.41,tcp:80\n",
		"create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536\nadd KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,203.0.113.0/25\n",
		"create KUBE-NODE-PORT-TCP bitmap:port range 0-65535\nadd KUBE-NODE-PORT-TCP 3001\n",
		"create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536\nadd KUBE-IPVS-IPS 1.2.3.4\nadd KUBE-IPVS-IPS 10.20.30.41\n",
		"create KUBE-HEALTH-CHECK-NODE-PORT bitmap:port range 0-65535\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("ipset restore input lacks\n%s\nin\n%s", want, got)
		}
	}
	if strings.Contains(got, "swap") || strings.Contains(got, "SB-IPVS-TMP") {
		t.Errorf("a fresh node needs no temporary set:\n%s", got)
	}
}

func TestFamilySetNames(t *testing.T) {
	cases := []struct{ name, v6 string }{
		{kubeClusterIPSet, "KUBE-6-CLUSTER-IP"},
		// "The maximum name length of an ipset is 31 characters which
		// must be taken into account."
		{kubeLoadBalancerSourceCIDRSet, "KUBE-6-LOAD-BALANCER-SOURCE-CID"},
		{kubeNodePortLocalSetSCTP, "KUBE-6-NODE-PORT-LOCAL-SCTP-HAS"},
	}
	for _, c := range cases {
		if got := familySetName(c.name, true); got != c.v6 {
			t.Errorf("IPv6 name of %s = %s, want %s", c.name, got, c.v6)
		}
		if got := familySetName(c.name, false); got != c.name {
			t.Errorf("IPv4 name of %s = %s", c.name, got)
		}
	}
	seen := map[string]bool{}
	for n := range ourSetNames() {
		if len(n) > maxSetNameLen {
			t.Errorf("set name %s is longer than %d", n, maxSetNameLen)
		}
		if seen[n] {
			t.Errorf("duplicate set name %s", n)
		}
		seen[n] = true
	}
	if len(seen) != 4*len(ipsetInfo) {
		t.Errorf("%d distinct set names, want %d", len(seen), 4*len(ipsetInfo))
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	bit := 32
	neg := -1 * time.Second
	for name, cfg := range map[string]Config{
		"masqueradeBit":   {MasqueradeBit: &bit},
		"scheduler":       {Scheduler: "fastest"},
		"nodeIPs[0]":      {NodeIPs: []netip.Addr{{}}},
		"clusterCIDRs[0]": {ClusterCIDRs: []netip.Prefix{{}}},
		"excludeCIDRs[0]": {ExcludeCIDRs: []netip.Prefix{{}}},
		"udpTimeout":      {UDPTimeout: neg},
	} {
		_, err := New(cfg)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name the field", name, err)
		}
	}
}

func TestRegisteredMode(t *testing.T) {
	b, err := serviceproxy.NewMode(ModeName, serviceproxy.ModeConfig{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "ipvs" {
		t.Errorf("name %q", b.Name())
	}
	if _, ok := b.(serviceproxy.DryRunner); !ok {
		t.Error("the ipvs mode cannot render (--dry-run)")
	}
}
