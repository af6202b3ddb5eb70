// Package serviceproxy owns Switchboard's kube-proxy: it turns Services and
// EndpointSlices from the cluster.Store into a model of service ports and
// their endpoints (change tracking, as kube-proxy's pkg/proxy), coalesces
// changes with a bounded-frequency runner, and hands the whole desired
// State to one Backend per mode (serviceproxy/nftables, iptables, ipvs,
// userspace), which renders it and applies it as one transaction. It also
// serves kube-proxy's /healthz, /livez and /metrics and the
// healthCheckNodePort servers. It never touches pods or DNS.
package serviceproxy

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServicePortName names one port of one Service, as kube-proxy's
// proxy.ServicePortName.
type ServicePortName struct {
	types.NamespacedName
	Port     string // the port's name ("" for a single unnamed port)
	Protocol corev1.Protocol
}

func (n ServicePortName) String() string {
	return fmt.Sprintf("%s%s", n.NamespacedName.String(), fmtPortName(n.Port))
}

func fmtPortName(in string) string {
	if in == "" {
		return ""
	}
	return ":" + in
}

// ServicePort is everything a proxy needs to know of one service port.
// Address slices hold the addresses of every family the service has;
// backends pick the family they program.
type ServicePort struct {
	Name ServicePortName
	Type corev1.ServiceType

	ClusterIPs []netip.Addr // empty for headless services (never proxied)
	Port       int32        // the service's port
	Protocol   corev1.Protocol
	NodePort   int32 // 0 when none

	ExternalIPs              []netip.Addr
	LoadBalancerVIPs         []netip.Addr   // status.loadBalancer.ingress IPs (ipMode VIP or unset)
	LoadBalancerSourceRanges []netip.Prefix // empty = all

	// StickyMaxAge is the ClientIP session affinity timeout; 0 means no
	// affinity (sessionAffinity None).
	StickyMaxAge time.Duration

	ExternalPolicyLocal bool  // externalTrafficPolicy: Local (NodePort, LB, external IPs)
	InternalPolicyLocal bool  // internalTrafficPolicy: Local (cluster IP)
	HealthCheckNodePort int32 // for externalTrafficPolicy Local LoadBalancers

	// TrafficDistribution is spec.trafficDistribution ("" when unset):
	// PreferClose, PreferSameZone, PreferSameNode.
	TrafficDistribution string
}

// UsesClusterEndpoints tells whether the service port ever sends traffic
// to endpoints under the "Cluster" policy. As kube-proxy's serviceport.go:
// "The service port uses Cluster endpoints if the internal traffic policy
// is "Cluster", or if it accepts external traffic at all. (Even if the
// external traffic policy is "Local", we need Cluster endpoints to
// implement short circuiting.)"
func (s *ServicePort) UsesClusterEndpoints() bool {
	return !s.InternalPolicyLocal || s.ExternallyAccessible()
}

// UsesLocalEndpoints tells whether the service port ever sends traffic to
// endpoints under the "Local" policy (only endpoints on this node).
func (s *ServicePort) UsesLocalEndpoints() bool {
	return s.InternalPolicyLocal || s.ExternalPolicyLocal && s.ExternallyAccessible()
}

// ExternallyAccessible tells whether the service port is reachable by
// something other than its cluster IP (a NodePort, an external IP or a
// load-balancer IP).
func (s *ServicePort) ExternallyAccessible() bool {
	return s.NodePort != 0 || len(s.LoadBalancerVIPs) > 0 || len(s.ExternalIPs) > 0
}

// Endpoint is one address and port serving a ServicePort, with the
// conditions of discovery/v1.
type Endpoint struct {
	IP          netip.Addr
	Port        int32
	Ready       bool // ready condition (nil counts as true)
	Serving     bool // serving condition (nil counts as true, as the API and kube-proxy read it)
	Terminating bool // terminating condition (nil counts as false)
	NodeName    string
	Zone        string
	IsLocal     bool     // on this node
	ZoneHints   []string // hints.forZones
	NodeHints   []string // hints.forNodes
}

// String is "IP:port".
func (e *Endpoint) String() string { return netip.AddrPortFrom(e.IP, uint16(e.Port)).String() }

// Node is what a proxy knows of the node it runs on.
type Node struct {
	Name   string
	IPs    []netip.Addr // addresses NodePorts answer on
	Zone   string       // topology.kubernetes.io/zone label
	Labels map[string]string
}

// State is the whole desired state a backend programs: every proxied
// service port and its endpoints. Backends must treat it as read-only.
type State struct {
	Node         Node
	ClusterCIDRs []netip.Prefix // traffic from outside these is masqueraded (empty: masquerade all external-facing traffic as kube-proxy does without --cluster-cidr)
	Services     map[ServicePortName]*ServicePort
	// Endpoints holds the endpoints of every port named in an
	// EndpointSlice, sorted by address and port, deduplicated across the
	// service's slices; it may name ports no service has (ignore them).
	// A *ServicePort or []*Endpoint that did not change is the same
	// pointer (slice) in consecutive States.
	Endpoints map[ServicePortName][]*Endpoint
	// Changed lists the service ports whose service or endpoints differ
	// from the last State the backend applied successfully; when Full is
	// set (the first sync, a periodic resync, after a failed one) it lists
	// every service port. Backends may use it to apply incrementally; the
	// result must equal a full render of State.
	Changed map[ServicePortName]bool
	// Full is true when the backend must render and apply everything
	// (first sync, periodic resync, after an error).
	Full bool
	// Removed lists service ports present before and gone now (for UDP
	// conntrack clean-up and incremental removal).
	Removed []ServicePortName
	// StaleUDPEndpoints are UDP endpoints removed since the last sync,
	// per service port: conntrack entries towards them must be flushed.
	// (As kube-proxy: an endpoint that was serving before and is gone or no
	// longer serving now.)
	StaleUDPEndpoints map[ServicePortName][]*Endpoint
	// RemovedServices holds the ports listed in Removed as they were last
	// applied (their IPs and ports, for conntrack clean-up).
	RemovedServices map[ServicePortName]*ServicePort
	// StaleUDPServices are UDP service ports that had no serving endpoint
	// in the previous state and have one now (every UDP service port with
	// a serving endpoint on the first sync): conntrack entries towards their
	// IPs (which may hold the "no endpoints" verdict) must be flushed, as
	// kube-proxy does.
	StaleUDPServices []ServicePortName
	// Generation counts syncs.
	Generation uint64
}

// Backend programs one proxy mode. Sync is called from one goroutine only.
type Backend interface {
	// Name is the mode: "nftables", "iptables", "ipvs", "userspace".
	Name() string
	// Sync renders state and applies it as one transaction. On error
	// nothing half-written may remain in force (the previous rules stay),
	// and the runner calls Sync again with Full set.
	Sync(ctx context.Context, state *State) error
	// Cleanup removes everything this backend ever created (--cleanup,
	// and when switching modes).
	Cleanup(ctx context.Context) error
}

// DryRunner is implemented by backends that can print exactly what they
// would apply for a state (the iptables-restore input, the nft script).
type DryRunner interface {
	Render(state *State) ([]byte, error)
}

// CategorizeEndpoints splits a service port's endpoints as kube-proxy's
// pkg/proxy/topology.go CategorizeEndpoints does:
//
//   - clusterEndpoints: the endpoints for traffic under the Cluster policy
//     (nil when the service uses only Local policies);
//   - localEndpoints: the endpoints for traffic under a Local policy (nil
//     when the service uses none);
//   - allReachableEndpoints: the union, for the few features that need
//     every endpoint (affinity, the health check's count);
//   - hasAnyEndpoints: whether the service has a usable endpoint (ready,
//     or serving and terminating) anywhere in the cluster, even when none
//     is usable from this node; it decides between REJECT (no endpoint at
//     all) and DROP (a Local policy without local endpoints).
//
// Ready endpoints are used; when none is ready, serving-and-terminating
// ones are used instead (separately for Cluster and Local); topology
// (hints, or trafficDistribution when no endpoint carries hints) narrows
// the cluster endpoints when every ready endpoint carries the needed hints
// and one is hinted for this node or zone. See topology.go.
func CategorizeEndpoints(endpoints []*Endpoint, svc *ServicePort, nodeName, zone string) (clusterEndpoints, localEndpoints, allReachableEndpoints []*Endpoint, hasAnyEndpoints bool) {
	return categorize(endpoints, svc, nodeName, zone)
}

// NewState is an empty full State of the node named node, to which
// Put adds service ports (tests, tools).
func NewState(node string) *State {
	return &State{
		Node:      Node{Name: node},
		Services:  map[ServicePortName]*ServicePort{},
		Endpoints: map[ServicePortName][]*Endpoint{},
		Changed:   map[ServicePortName]bool{},
		Full:      true,
	}
}

// Put sets a service port with its endpoints and marks it changed;
// svc's protocol (and its name's) defaults to TCP and its type to
// ClusterIP, as a Service's do.
func (s *State) Put(svc *ServicePort, eps ...*Endpoint) {
	if svc.Protocol == "" {
		svc.Protocol = corev1.ProtocolTCP
	}
	if svc.Name.Protocol == "" {
		svc.Name.Protocol = svc.Protocol
	}
	if svc.Type == "" {
		svc.Type = corev1.ServiceTypeClusterIP
	}
	if s.Changed == nil {
		s.Changed = map[ServicePortName]bool{}
	}
	s.Services[svc.Name] = svc
	s.Endpoints[svc.Name] = eps
	s.Changed[svc.Name] = true
}

// HasIPv6 tells whether the state has an IPv6 node address or service
// cluster IP: a mode that programs one family per table (iptables,
// ip6tables; ipsets) must then program IPv6 too.
func (s *State) HasIPv6() bool {
	for _, ip := range s.Node.IPs {
		if ip.Unmap().Is6() {
			return true
		}
	}
	for _, svc := range s.Services {
		if svc == nil {
			continue
		}
		for _, ip := range svc.ClusterIPs {
			if ip.Unmap().Is6() {
				return true
			}
		}
	}
	return false
}
