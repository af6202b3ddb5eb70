package userspace

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// listenerKind says which address of a service a listener stands for;
// it decides the traffic policy that applies.
type listenerKind uint8

const (
	kindClusterIP listenerKind = iota
	kindNodePort
	kindExternalIP
	kindLoadBalancer
)

func (k listenerKind) String() string {
	return [...]string{"clusterIP", "nodePort", "externalIP", "loadBalancer"}[k]
}

// family indexes per-family endpoint lists: 0 IPv4, 1 IPv6.
func family(a netip.Addr) int {
	if a.Is4() {
		return 0
	}
	return 1
}

// balance is one immutable snapshot of a service port's endpoints and
// policies, replaced as a whole by a sync.
type balance struct {
	// cluster and local are the usable endpoints (CategorizeEndpoints)
	// per family; nil when the service uses no such policy.
	cluster, local [2][]netip.AddrPort
	all            map[netip.AddrPort]bool // every reachable endpoint (stale UDP sessions)
	hasAny         bool

	internalLocal, externalLocal bool
	sticky                       time.Duration
	sourceRanges                 []netip.Prefix // loadBalancerSourceRanges
	clusterCIDRs                 []netip.Prefix
	nodeIPs                      []netip.Addr
}

func newBalance(st *serviceproxy.State, svc *serviceproxy.ServicePort, eps []*serviceproxy.Endpoint, defaultCIDRs []netip.Prefix) *balance {
	if slices.Contains(eps, nil) { // bad input: skip, never panic
		eps = slices.DeleteFunc(slices.Clone(eps), func(e *serviceproxy.Endpoint) bool { return e == nil })
	}
	cluster, local, all, hasAny := serviceproxy.CategorizeEndpoints(eps, svc, st.Node.Name, st.Node.Zone)
	b := &balance{
		all:           make(map[netip.AddrPort]bool, len(all)),
		hasAny:        hasAny,
		internalLocal: svc.InternalPolicyLocal,
		externalLocal: svc.ExternalPolicyLocal,
		sticky:        svc.StickyMaxAge,
		sourceRanges:  slices.Clone(svc.LoadBalancerSourceRanges),
		clusterCIDRs:  slices.Clone(st.ClusterCIDRs),
		nodeIPs:       slices.Clone(st.Node.IPs),
	}
	if len(b.clusterCIDRs) == 0 {
		b.clusterCIDRs = slices.Clone(defaultCIDRs)
	}
	split := func(eps []*serviceproxy.Endpoint) (out [2][]netip.AddrPort) {
		if eps == nil {
			return out
		}
		for _, e := range eps {
			if !e.IP.IsValid() || e.Port <= 0 || e.Port > 65535 {
				continue
			}
			ap := netip.AddrPortFrom(e.IP.Unmap(), uint16(e.Port))
			f := family(ap.Addr())
			out[f] = append(out[f], ap)
		}
		// Upstream shuffles the endpoints on every update so that
		// proxies on different nodes do not start on the same one.
		for f := range out {
			rand.Shuffle(len(out[f]), func(i, j int) { out[f][i], out[f][j] = out[f][j], out[f][i] })
			if out[f] == nil {
				out[f] = []netip.AddrPort{}
			}
		}
		return out
	}
	if cluster != nil {
		b.cluster = split(cluster)
	}
	if local != nil {
		b.local = split(local)
	}
	for _, e := range all {
		if e.IP.IsValid() && e.Port > 0 && e.Port <= 65535 {
			b.all[netip.AddrPortFrom(e.IP.Unmap(), uint16(e.Port))] = true
		}
	}
	return b
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// admits applies loadBalancerSourceRanges: "If specified and supported by
// the platform, this will restrict traffic through the cloud-provider
// load-balancer will be restricted to the specified client IPs."
func (b *balance) admits(kind listenerKind, client netip.Addr) bool {
	return kind != kindLoadBalancer || len(b.sourceRanges) == 0 || contains(b.sourceRanges, client)
}

// candidates are the endpoints a new connection from client to a
// listener of the given kind and family may go to, by kube-proxy's rules:
//
//   - cluster IP: internalTrafficPolicy Local uses only node-local
//     endpoints, Cluster uses all;
//   - NodePort, external IPs, load-balancer IPs: externalTrafficPolicy
//     Local uses only node-local endpoints, except for pod traffic (a
//     client in the cluster CIDRs: "Treat all locally-originated pod ->
//     external destination traffic as a special-case. It is subject to
//     neither form of traffic policy") and traffic from the node itself
//     ("Redirect all src-type=LOCAL -> external destination to the
//     policy=cluster chain"), which use the cluster endpoints. The node's
//     own addresses are State.Node.IPs here.
func (b *balance) candidates(kind listenerKind, fam int, client netip.Addr) []netip.AddrPort {
	if kind == kindClusterIP {
		if b.internalLocal {
			return b.local[fam]
		}
		return b.cluster[fam]
	}
	if !b.externalLocal || contains(b.clusterCIDRs, client) || slices.Contains(b.nodeIPs, client) {
		return b.cluster[fam]
	}
	return b.local[fam]
}

type affinity struct {
	endpoint netip.AddrPort
	lastUsed time.Time
}

// service is the live state of one service port, shared by its
// listeners and their connections.
type service struct {
	name     serviceproxy.ServicePortName
	label    string // name.String(), the metrics label
	protocol string
	bal      atomic.Pointer[balance]
	rr       atomic.Uint64
	m        serviceMetrics

	mu       sync.Mutex
	affinity map[netip.Addr]*affinity // client IP → endpoint (sessionAffinity ClientIP)
}

// pick returns the index in cands of the endpoint for a new connection:
// the client's affinity endpoint while its timeout has not run out and it
// is still a candidate ("connections from a particular client are passed
// to the same Pod each time"), else the next one in round-robin order.
func (s *service) pick(b *balance, client netip.Addr, cands []netip.AddrPort) int {
	if b.sticky <= 0 {
		return int(s.rr.Add(1) % uint64(len(cands)))
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.affinity[client]; ok && now.Sub(a.lastUsed) < b.sticky {
		if i := slices.Index(cands, a.endpoint); i >= 0 {
			a.lastUsed = now
			return i
		}
	}
	i := int(s.rr.Add(1) % uint64(len(cands)))
	s.setAffinityLocked(client, cands[i], now)
	return i
}

// connected records that client ended up on ep after a retry, as
// upstream's sessionAffinityReset did.
func (s *service) connected(b *balance, client netip.Addr, ep netip.AddrPort) {
	if b.sticky <= 0 {
		return
	}
	s.mu.Lock()
	s.setAffinityLocked(client, ep, time.Now())
	s.mu.Unlock()
}

func (s *service) setAffinityLocked(client netip.Addr, ep netip.AddrPort, now time.Time) {
	if s.affinity == nil {
		s.affinity = map[netip.Addr]*affinity{}
	}
	if a, ok := s.affinity[client]; ok {
		a.endpoint, a.lastUsed = ep, now
		return
	}
	s.affinity[client] = &affinity{endpoint: ep, lastUsed: now}
}

// expireAffinity drops affinity records that timed out or whose endpoint
// is gone.
func (s *service) expireAffinity(b *balance) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for ip, a := range s.affinity {
		if b.sticky <= 0 || now.Sub(a.lastUsed) >= b.sticky || !b.all[a.endpoint] {
			delete(s.affinity, ip)
		}
	}
}
