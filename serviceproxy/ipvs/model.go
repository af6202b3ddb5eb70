package ipvs

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// IPVS service flags (linux/ip_vs.h, upstream's utilipvs flags).
const (
	flagPersistent = 0x1  // IP_VS_SVC_F_PERSISTENT
	flagHashed     = 0x2  // IP_VS_SVC_F_HASHED, set by the kernel on every service
	flagSourceHash = 0x10 // IP_VS_SVC_F_SCHED1, "needed for the distribution method mh"
)

// params are the settings that shape the desired state besides the
// services and endpoints. When their key changes the next sync is full.
type params struct {
	nodeName       string
	zone           string
	scheduler      string
	masqueradeAll  bool
	masqueradeMark string
	randomFully    bool
	ipv6           bool // the IPv6 family is programmed too
	// Per family (0: IPv4, 1: IPv6):
	// localCIDR is the local-traffic detector (upstream's
	// --detect-local-mode=ClusterCIDR; the first cluster CIDR of the
	// family); invalid when not implemented.
	localCIDR [2]netip.Prefix
	// nodeIP is the node's primary IP (a source range holding it lets
	// the node reach the load balancer IP).
	nodeIP [2]netip.Addr
	// nodePortIPs are the addresses NodePort virtual servers are made
	// on (never loopback).
	nodePortIPs [2][]netip.Addr
	// hostAddrs are the node's own addresses (not those on kube-ipvs0):
	// "We must not add the address to the dummy device if it exist on
	// another interface".
	hostAddrs map[netip.Addr]bool
}

func (p *params) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%v|%s|%v|%v|%v|%v|%v|%v|", p.nodeName, p.zone, p.scheduler, p.masqueradeAll, p.masqueradeMark,
		p.randomFully, p.ipv6, p.localCIDR, p.nodeIP, p.nodePortIPs[0], p.nodePortIPs[1])
	hs := make([]netip.Addr, 0, len(p.hostAddrs))
	for a := range p.hostAddrs {
		hs = append(hs, a)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Less(hs[j]) })
	fmt.Fprint(&b, hs)
	return b.String()
}

func famIndex(ipv6 bool) int {
	if ipv6 {
		return 1
	}
	return 0
}

func isV6(a netip.Addr) bool { return a.Unmap().Is6() }

// vsKey identifies an IPVS virtual server.
type vsKey struct {
	Proto uint16 // unix.IPPROTO_TCP, _UDP, _SCTP
	Addr  netip.Addr
	Port  uint16
}

func (k vsKey) String() string {
	return protoName(k.Proto) + "/" + netip.AddrPortFrom(k.Addr, k.Port).String()
}

func (k vsKey) less(o vsKey) bool {
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c < 0
	}
	if k.Port != o.Port {
		return k.Port < o.Port
	}
	return k.Proto < o.Proto
}

// rsKey identifies a real server of a virtual server.
type rsKey struct {
	Addr netip.Addr
	Port uint16
}

func (r rsKey) String() string { return netip.AddrPortFrom(r.Addr, r.Port).String() }

func (r rsKey) less(o rsKey) bool {
	if c := r.Addr.Compare(o.Addr); c != 0 {
		return c < 0
	}
	return r.Port < o.Port
}

// virtualServer is one desired IPVS service with its real servers (all
// of weight 1; real servers on their way out, of weight 0, are the
// graceful-termination list's business).
type virtualServer struct {
	key       vsKey
	scheduler string
	flags     uint32 // without flagHashed
	timeout   uint32 // persistence timeout in seconds (ClientIP affinity)
	bind      bool   // the address is bound on kube-ipvs0
	reals     []rsKey
	owner     string // the service port, for messages
}

// sameService tells whether two virtual servers have the same service
// attributes (not comparing real servers).
func (v *virtualServer) sameService(o *virtualServer) bool {
	return v.key == o.key && v.scheduler == o.scheduler && v.flags == o.flags && v.timeout == o.timeout
}

func (v *virtualServer) sameReals(o *virtualServer) bool {
	if len(v.reals) != len(o.reals) {
		return false
	}
	for i := range v.reals {
		if v.reals[i] != o.reals[i] {
			return false
		}
	}
	return true
}

// familyModel is one family's ipsets and iptables rules.
type familyModel struct {
	ipv6 bool
	// sets holds the entries of every set of ipsetInfo, by index,
	// sorted and without duplicates.
	sets [][]string
	// lbNoNodeAccess are the load-balancer IP:port pairs whose source
	// ranges leave the node out: "since nodeIP is not covered in any of
	// SourceRange we need to explicitly block the lbIP access from k8s
	// nodes".
	lbNoNodeAccess []lbEntry
	// rules is the iptables-restore input (without the jumps from the
	// built-in chains).
	rules []byte
}

type lbEntry struct {
	ip       netip.Addr
	protocol string
	port     int32
}

// model is the whole desired state of one sync.
type model struct {
	vs    map[vsKey]*virtualServer
	binds map[netip.Addr]bool // addresses bound on kube-ipvs0
	fams  [2]*familyModel     // [1] is nil unless IPv6 is programmed
	// services and endpoints counted, for logs
	services, endpoints int
}

// sortedVS returns the virtual servers in a stable order.
func (m *model) sortedVS() []*virtualServer {
	out := make([]*virtualServer, 0, len(m.vs))
	for _, v := range m.vs {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.less(out[j].key) })
	return out
}

// setBuilder collects the entries of one family's sets.
type setBuilder struct {
	ipv6    bool
	entries []map[string]struct{}
}

func newSetBuilder(ipv6 bool) *setBuilder {
	b := &setBuilder{ipv6: ipv6, entries: make([]map[string]struct{}, len(ipsetInfo))}
	return b
}

func (b *setBuilder) add(set, entry string) {
	i := setIndex[set]
	if b.entries[i] == nil {
		b.entries[i] = map[string]struct{}{}
	}
	b.entries[i][entry] = struct{}{}
}

func (b *setBuilder) has(set string) bool { return len(b.entries[setIndex[set]]) > 0 }

func (b *setBuilder) sorted() [][]string {
	out := make([][]string, len(b.entries))
	for i, m := range b.entries {
		if len(m) == 0 {
			continue
		}
		l := make([]string, 0, len(m))
		for e := range m {
			l = append(l, e)
		}
		sort.Strings(l)
		out[i] = l
	}
	return out
}

// The ipset entry formats (upstream's Entry.String()).
func entryIPPort(ip netip.Addr, proto string, port int32) string {
	return ip.String() + "," + proto + ":" + strconv.Itoa(int(port))
}

func entryIPPortIP(ip netip.Addr, proto string, port int32, ip2 netip.Addr) string {
	return entryIPPort(ip, proto, port) + "," + ip2.String()
}

func entryIPPortNet(ip netip.Addr, proto string, port int32, n netip.Prefix) string {
	return entryIPPort(ip, proto, port) + "," + n.String()
}

// ipvsProto maps a service protocol to IPPROTO_*; ok is false for
// protocols IPVS does not serve.
func ipvsProto(p corev1.Protocol) (uint16, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return 6, true
	case corev1.ProtocolUDP:
		return 17, true
	case corev1.ProtocolSCTP:
		return 132, true
	}
	return 0, false
}

func protoName(p uint16) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 132:
		return "SCTP"
	}
	return strconv.Itoa(int(p))
}

// needsGracefulTermination is upstream's IsRsGracefulTerminationNeeded:
// "For UDP and SCTP traffic, no graceful termination, we immediately
// delete the RS (existing connections will be deleted on the next packet
// because sysctlExpireNoDestConn=1). For other protocols, don't delete
// until all connections have expired".
func needsGracefulTermination(proto uint16) bool { return proto == 6 }

// familyService is one family's view of a service port (upstream runs
// one proxier per family, each seeing the service's addresses of its
// family only).
type familyService struct {
	svc          *serviceproxy.ServicePort // a copy holding only the family's addresses
	nameString   string
	protocol     string // lower case, for ipset entries
	proto        uint16
	clusterIP    netip.Addr
	externalIPs  []netip.Addr
	lbVIPs       []netip.Addr
	sourceRanges []netip.Prefix
	stickySecs   uint32
}

func newFamilyService(name serviceproxy.ServicePortName, svc *serviceproxy.ServicePort, ipv6 bool) *familyService {
	proto, ok := ipvsProto(svc.Protocol)
	if !ok {
		return nil
	}
	match := func(a netip.Addr) bool { return a.IsValid() && isV6(a) == ipv6 }
	fs := &familyService{nameString: name.String(), proto: proto, protocol: strings.ToLower(string(svc.Protocol))}
	if fs.protocol == "" {
		fs.protocol = "tcp"
	}
	for _, ip := range svc.ClusterIPs {
		if match(ip) {
			fs.clusterIP = ip.Unmap()
			break
		}
	}
	if !fs.clusterIP.IsValid() {
		return nil
	}
	for _, ip := range svc.ExternalIPs {
		if match(ip) {
			fs.externalIPs = append(fs.externalIPs, ip.Unmap())
		}
	}
	for _, ip := range svc.LoadBalancerVIPs {
		if match(ip) {
			fs.lbVIPs = append(fs.lbVIPs, ip.Unmap())
		}
	}
	for _, r := range svc.LoadBalancerSourceRanges {
		if r.IsValid() && isV6(r.Addr()) == ipv6 {
			fs.sourceRanges = append(fs.sourceRanges, r.Masked())
		}
	}
	if svc.StickyMaxAge > 0 {
		secs := svc.StickyMaxAge / time.Second
		if secs < 1 {
			secs = 1
		}
		fs.stickySecs = uint32(secs)
	}
	fam := *svc
	fam.ClusterIPs = []netip.Addr{fs.clusterIP}
	fam.ExternalIPs = fs.externalIPs
	fam.LoadBalancerVIPs = fs.lbVIPs
	fam.LoadBalancerSourceRanges = fs.sourceRanges
	fs.svc = &fam
	return fs
}

// familyEndpoints returns the endpoints of the family.
func familyEndpoints(eps []*serviceproxy.Endpoint, ipv6 bool) []*serviceproxy.Endpoint {
	out := make([]*serviceproxy.Endpoint, 0, len(eps))
	for _, ep := range eps {
		if ep != nil && ep.IP.IsValid() && isV6(ep.IP) == ipv6 && ep.Port > 0 && ep.Port <= 65535 {
			out = append(out, ep)
		}
	}
	return out
}

func rsKeys(eps []*serviceproxy.Endpoint) []rsKey {
	out := make([]rsKey, 0, len(eps))
	seen := make(map[rsKey]bool, len(eps))
	for _, ep := range eps {
		k := rsKey{Addr: ep.IP.Unmap(), Port: uint16(ep.Port)}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].less(out[j]) })
	return out
}

// sortedServicePorts returns the state's service ports in a stable order
// (the first of two service ports claiming the same virtual server wins).
func sortedServicePorts(services map[serviceproxy.ServicePortName]*serviceproxy.ServicePort) []serviceproxy.ServicePortName {
	names := make([]serviceproxy.ServicePortName, 0, len(services))
	for n, s := range services {
		if s != nil {
			names = append(names, n)
		}
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

// buildModel computes the desired state of state under pr: upstream's
// syncProxyRules loop "Build IPVS rules for each service", without
// touching the kernel.
func buildModel(state *serviceproxy.State, pr *params) *model {
	m := &model{vs: map[vsKey]*virtualServer{}, binds: map[netip.Addr]bool{}}
	families := []bool{false}
	if pr.ipv6 {
		families = append(families, true)
	}
	builders := [2]*setBuilder{}
	for _, ipv6 := range families {
		builders[famIndex(ipv6)] = newSetBuilder(ipv6)
	}
	lbNoNode := [2][]lbEntry{}
	names := sortedServicePorts(state.Services)

	for _, name := range names {
		svc := state.Services[name]
		for _, ipv6 := range families {
			fi := famIndex(ipv6)
			sets := builders[fi]
			info := newFamilyService(name, svc, ipv6)
			if info == nil {
				continue
			}
			m.services++
			protocol := info.protocol
			port := info.svc.Port
			eps := familyEndpoints(state.Endpoints[name], ipv6)
			m.endpoints += len(eps)
			clusterEps, localEps, _, _ := serviceproxy.CategorizeEndpoints(eps, info.svc, pr.nodeName, pr.zone)
			// syncEndpoint: "if onlyNodeLocalEndpoints { if
			// len(localEndpoints) > 0 { endpoints = localEndpoints }
			// else { ... Allow access from local PODs even if no local
			// endpoints exist ... endpoints = clusterEndpoints } } else {
			// endpoints = clusterEndpoints }".
			pick := func(onlyLocal bool) []rsKey {
				if onlyLocal && len(localEps) > 0 {
					return rsKeys(localEps)
				}
				return rsKeys(clusterEps)
			}
			newVS := func(addr netip.Addr, p int32, bind bool, reals []rsKey) {
				key := vsKey{Proto: info.proto, Addr: addr, Port: uint16(p)}
				if _, taken := m.vs[key]; taken {
					return
				}
				v := &virtualServer{key: key, scheduler: pr.scheduler, bind: bind, reals: reals, owner: info.nameString}
				// "Set session affinity flag and timeout for IPVS service"
				if info.stickySecs > 0 {
					v.flags |= flagPersistent
					v.timeout = info.stickySecs
				}
				// "Set the source hash flag needed for the distribution
				// method "mh""
				if pr.scheduler == "mh" {
					v.flags |= flagSourceHash
				}
				m.vs[key] = v
				if bind {
					m.binds[addr] = true
				}
			}

			// "Handle traffic that loops back to the originator with
			// SNAT": every local endpoint, "IP,proto:port,IP".
			for _, ep := range eps {
				if ep.IsLocal {
					sets.add(kubeLoopBackIPSet, entryIPPortIP(ep.IP.Unmap(), protocol, ep.Port, ep.IP.Unmap()))
				}
			}

			// "Capture the clusterIP."
			sets.add(kubeClusterIPSet, entryIPPort(info.clusterIP, protocol, port))
			// "We need to bind ClusterIP to dummy interface"; "ExternalTrafficPolicy
			// only works for NodePort and external LB traffic, does not
			// affect ClusterIP".
			newVS(info.clusterIP, port, true, pick(info.svc.InternalPolicyLocal))

			// "Capture externalIPs."
			for _, ip := range info.externalIPs {
				if info.svc.ExternalPolicyLocal {
					sets.add(kubeExternalIPLocalSet, entryIPPort(ip, protocol, port))
				} else {
					// "We have to SNAT packets to external IPs."
					sets.add(kubeExternalIPSet, entryIPPort(ip, protocol, port))
				}
				// "We must not add the address to the dummy device if it
				// exist on another interface"
				newVS(ip, port, !pr.hostAddrs[ip], pick(info.svc.ExternalPolicyLocal))
			}

			// "Capture load-balancer ingress."
			for _, ip := range info.lbVIPs {
				sets.add(kubeLoadBalancerSet, entryIPPort(ip, protocol, port))
				// "insert loadbalancer entry to lbIngressLocalSet if
				// service externaltrafficpolicy=local"
				if info.svc.ExternalPolicyLocal {
					sets.add(kubeLoadBalancerLocalSet, entryIPPort(ip, protocol, port))
				}
				if len(info.sourceRanges) != 0 {
					// "The service firewall rules are created based on
					// ServiceSpec.loadBalancerSourceRanges field."
					sets.add(kubeLoadBalancerFWSet, entryIPPort(ip, protocol, port))
					allowFromNode := false
					for _, cidr := range info.sourceRanges {
						sets.add(kubeLoadBalancerSourceCIDRSet, entryIPPortNet(ip, protocol, port, cidr))
						if pr.nodeIP[fi].IsValid() && cidr.Contains(pr.nodeIP[fi]) {
							allowFromNode = true
						}
					}
					// "generally, ip route rule was added to intercept
					// request to loadbalancer vip from the loadbalancer's
					// backend hosts. In this case, request will not hit the
					// loadbalancer but loop back directly. Need to add the
					// following rule to allow request on host."
					if allowFromNode {
						sets.add(kubeLoadBalancerSourceIPSet, entryIPPortIP(ip, protocol, port, ip))
					} else {
						lbNoNode[fi] = append(lbNoNode[fi], lbEntry{ip: ip, protocol: protocol, port: port})
					}
				}
				newVS(ip, port, !pr.hostAddrs[ip], pick(info.svc.ExternalPolicyLocal))
			}

			if np := info.svc.NodePort; np != 0 {
				nodeIPs := pr.nodePortIPs[fi]
				if len(nodeIPs) == 0 {
					// "Skip nodePort configuration since an error
					// occurred when computing nodeAddresses or nodeIPs."
					continue
				}
				// "Nodeports need SNAT, unless they're local."
				var set, localSet string
				var entries []string
				switch info.proto {
				case 6:
					set, localSet = kubeNodePortSetTCP, kubeNodePortLocalSetTCP
					entries = []string{strconv.Itoa(int(np))}
				case 17:
					set, localSet = kubeNodePortSetUDP, kubeNodePortLocalSetUDP
					entries = []string{strconv.Itoa(int(np))}
				case 132:
					// "Since hash ip:port is used for SCTP, all the
					// nodeIPs to be used in the SCTP ipset entries."
					set, localSet = kubeNodePortSetSCTP, kubeNodePortLocalSetSCTP
					for _, ip := range nodeIPs {
						entries = append(entries, entryIPPort(ip, protocol, np))
					}
				}
				for _, e := range entries {
					sets.add(set, e)
					// "Add externaltrafficpolicy=local type nodeport entry"
					if info.svc.ExternalPolicyLocal {
						sets.add(localSet, e)
					}
				}
				// "Build ipvs kernel routes for each node ip address";
				// "There is no need to bind Node IP to dummy interface".
				for _, ip := range nodeIPs {
					newVS(ip, np, false, pick(info.svc.ExternalPolicyLocal))
				}
			}

			// Upstream's service info only has a health check node port
			// when the service "NeedsHealthCheck" (externalTrafficPolicy
			// Local).
			if hc := info.svc.HealthCheckNodePort; hc != 0 && info.svc.ExternalPolicyLocal {
				sets.add(kubeHealthCheckNodePortSet, strconv.Itoa(int(hc)))
			}
		}
	}

	// "Set the KUBE-IPVS-IPS set to the activeBindAddrs"
	for a := range m.binds {
		if b := builders[famIndex(isV6(a))]; b != nil {
			b.add(kubeIPVSSet, a.String())
		}
	}
	for _, ipv6 := range families {
		fi := famIndex(ipv6)
		fm := &familyModel{ipv6: ipv6, sets: builders[fi].sorted(), lbNoNodeAccess: lbNoNode[fi]}
		fm.rules = renderRules(pr, fm)
		m.fams[fi] = fm
	}
	return m
}
