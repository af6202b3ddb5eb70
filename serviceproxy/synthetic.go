package serviceproxy

import (
	"fmt"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Synthetic states are what the benchmarks load: n ClusterIP services of
// one TCP port each, with the same number of ready endpoints each. The
// shape is the one serviceproxy/nftables and serviceproxy/iptables built
// privately (BenchState) and bench/dns builds as objects:
//
//   - service i is "svc<i>" in namespace "ns<i/100>" (100 per namespace),
//     port "http" 80/TCP, cluster IP 10.96.0.0 + 1 + i (10.96.0.0/12);
//   - its endpoint j is 10.128.0.0 + 1 + i*eps + j (10.128.0.0/9), port
//     8080, ready and serving; a third of them (j%3 == 0) are on this node
//     (IsLocal, NodeName SyntheticNodeName), the rest on "other-node";
//   - the State's node is SyntheticNodeName with the IP 192.168.0.2, and
//     its cluster CIDR is 10.128.0.0/9.
var (
	syntheticServiceBase  = netip.MustParseAddr("10.96.0.0")
	syntheticEndpointBase = netip.MustParseAddr("10.128.0.0")
	// SyntheticClusterCIDR holds every synthetic endpoint address.
	SyntheticClusterCIDR = netip.MustParsePrefix("10.128.0.0/9")
	syntheticNodeIP      = netip.MustParseAddr("192.168.0.2")
)

// Limits of the synthetic address plan.
const (
	// SyntheticNodeName is the Node.Name of synthetic States.
	SyntheticNodeName = "bench-node"
	// SyntheticMaxServices is how many cluster IPs 10.96.0.0/12 has after
	// its network address, less the broadcast address.
	SyntheticMaxServices = 1<<20 - 2
	// SyntheticMaxEndpoints is how many endpoint addresses (all services
	// together) 10.128.0.0/9 has after its network address, less the
	// broadcast address.
	SyntheticMaxEndpoints = 1<<23 - 2
)

// CheckSyntheticSize tells whether SyntheticState(services,
// endpointsPerService) fits the address plan.
func CheckSyntheticSize(services, endpointsPerService int) error {
	switch {
	case services < 0:
		return fmt.Errorf("synthetic state: services %d: must not be negative", services)
	case endpointsPerService < 0:
		return fmt.Errorf("synthetic state: endpoints per service %d: must not be negative", endpointsPerService)
	case services > SyntheticMaxServices:
		return fmt.Errorf("synthetic state: services %d: at most %d cluster IPs fit in 10.96.0.0/12", services, SyntheticMaxServices)
	case endpointsPerService > 0 && services > SyntheticMaxEndpoints/endpointsPerService:
		return fmt.Errorf("synthetic state: %d services x %d endpoints: at most %d endpoint addresses fit in %s", services, endpointsPerService, SyntheticMaxEndpoints, SyntheticClusterCIDR)
	}
	return nil
}

// SyntheticState builds a full State (Full set, every port in Changed,
// Generation 1) of services ClusterIP services with endpointsPerService
// ready endpoints each, for benchmarks; see the shape above. Sizes that
// CheckSyntheticSize rejects are clamped: negative ones to 0, the number
// of services to what the address plan holds.
func SyntheticState(services, endpointsPerService int) *State {
	services = max(services, 0)
	endpointsPerService = max(endpointsPerService, 0)
	services = min(services, SyntheticMaxServices)
	if endpointsPerService > 0 {
		services = min(services, SyntheticMaxEndpoints/endpointsPerService)
	}
	st := &State{
		Node:         Node{Name: SyntheticNodeName, IPs: []netip.Addr{syntheticNodeIP}},
		ClusterCIDRs: []netip.Prefix{SyntheticClusterCIDR},
		Services:     make(map[ServicePortName]*ServicePort, services),
		Endpoints:    make(map[ServicePortName][]*Endpoint, services),
		Changed:      make(map[ServicePortName]bool, services),
		Full:         true,
		Generation:   1,
	}
	for i := 0; i < services; i++ {
		// In range by construction: the sizes were clamped above.
		_, _ = AddSyntheticService(st, i, endpointsPerService)
	}
	return st
}

// SyntheticServiceName is the name of synthetic service i's port.
func SyntheticServiceName(i int) ServicePortName {
	return ServicePortName{
		NamespacedName: types.NamespacedName{Namespace: "ns" + strconv.Itoa(i/100), Name: "svc" + strconv.Itoa(i)},
		Port:           "http",
		Protocol:       corev1.ProtocolTCP,
	}
}

// SyntheticClusterIP is synthetic service i's cluster IP, 10.96.0.0+1+i.
func SyntheticClusterIP(i int) netip.Addr { return addrPlus(syntheticServiceBase, uint32(i)+1) }

// AddSyntheticService adds synthetic service i with eps endpoints (as
// SyntheticState makes them) to st, replacing a service of that name,
// and marks it in st.Changed (made when nil). Use it for "one more
// service": a service i >= the state's size is new. Indexes or endpoint
// counts outside the address plan are an error and change nothing.
func AddSyntheticService(st *State, i, eps int) (ServicePortName, error) {
	name := SyntheticServiceName(i)
	switch {
	case st == nil:
		return name, fmt.Errorf("synthetic service %d: nil State", i)
	case i < 0 || eps < 0:
		return name, fmt.Errorf("synthetic service %d with %d endpoints: must not be negative", i, eps)
	case i >= SyntheticMaxServices:
		return name, fmt.Errorf("synthetic service %d: at most %d cluster IPs fit in 10.96.0.0/12", i, SyntheticMaxServices)
	case eps > 0 && i >= SyntheticMaxEndpoints/eps:
		return name, fmt.Errorf("synthetic service %d with %d endpoints: the endpoint addresses would leave %s", i, eps, SyntheticClusterCIDR)
	}
	if st.Services == nil {
		st.Services = map[ServicePortName]*ServicePort{}
	}
	if st.Endpoints == nil {
		st.Endpoints = map[ServicePortName][]*Endpoint{}
	}
	if st.Changed == nil {
		st.Changed = map[ServicePortName]bool{}
	}
	st.Services[name] = &ServicePort{
		Name:       name,
		Type:       corev1.ServiceTypeClusterIP,
		ClusterIPs: []netip.Addr{SyntheticClusterIP(i)},
		Port:       80,
		Protocol:   corev1.ProtocolTCP,
	}
	nodeName := st.Node.Name
	if nodeName == "" {
		nodeName = SyntheticNodeName
	}
	if eps == 0 {
		delete(st.Endpoints, name)
	} else {
		list := make([]*Endpoint, eps)
		for j := range list {
			local := j%3 == 0
			node := "other-node"
			if local {
				node = nodeName
			}
			list[j] = &Endpoint{
				IP:   addrPlus(syntheticEndpointBase, uint32(i*eps+j)+1),
				Port: 8080, Ready: true, Serving: true,
				NodeName: node, IsLocal: local,
			}
		}
		st.Endpoints[name] = list
	}
	st.Changed[name] = true
	return name, nil
}

// addrPlus is the IPv4 address n after base.
func addrPlus(base netip.Addr, n uint32) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
