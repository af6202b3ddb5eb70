package serviceproxy

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// tep builds an endpoint: flags R ready, S serving, T terminating, L on
// this node ("node-a", else "node-b"); opts set zone and hints.
func tep(ipPort, flags string, opts ...func(*Endpoint)) *Endpoint {
	ap := netip.MustParseAddrPort(ipPort)
	e := &Endpoint{
		IP: ap.Addr(), Port: int32(ap.Port()),
		Ready:       strings.Contains(flags, "R"),
		Serving:     strings.Contains(flags, "S"),
		Terminating: strings.Contains(flags, "T"),
		IsLocal:     strings.Contains(flags, "L"),
		NodeName:    "node-b",
	}
	if e.IsLocal {
		e.NodeName = "node-a"
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

func zone(z string) func(*Endpoint)       { return func(e *Endpoint) { e.Zone = z } }
func zh(z ...string) func(*Endpoint)      { return func(e *Endpoint) { e.ZoneHints = z } }
func nh(n ...string) func(*Endpoint)      { return func(e *Endpoint) { e.NodeHints = n } }
func onNodeName(n string) func(*Endpoint) { return func(e *Endpoint) { e.NodeName = n } }

func names(eps []*Endpoint) []string {
	if eps == nil {
		return nil
	}
	out := []string{}
	for _, e := range eps {
		out = append(out, e.String())
	}
	slices.Sort(out)
	return out
}

// same compares a result with a want where nil means "must be nil (the
// policy is not used)" and a non-nil slice "these, in any order".
func same(got []*Endpoint, want []string) bool {
	if want == nil {
		return got == nil
	}
	g := names(got)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(g, w) || len(g) == 0 && len(w) == 0
}

func TestCategorizeEndpoints(t *testing.T) {
	clusterIP := &ServicePort{Port: 80}
	nodePort := &ServicePort{Port: 80, NodePort: 30080}
	none := []string(nil)
	empty := []string{}
	tests := []struct {
		name           string
		svc            *ServicePort
		zone           string
		eps            []*Endpoint
		cluster, local []string
		all            []string
		hasAny         bool
	}{
		{
			name: "no endpoints: nothing to categorize",
			svc:  clusterIP, cluster: empty, local: none, all: empty,
		},
		{
			name:    `Cluster policy: "Usable endpoints" means Ready endpoints`,
			svc:     clusterIP,
			eps:     []*Endpoint{tep("10.0.0.1:80", "RS"), tep("10.0.0.2:80", "S"), tep("10.0.0.3:80", "ST")},
			cluster: []string{"10.0.0.1:80"}, local: none, all: []string{"10.0.0.1:80"}, hasAny: true,
		},
		{
			name:    `terminating endpoints are used only when none is ready: "falls back to Serving-Terminating endpoints ... if no Ready endpoints are available"`,
			svc:     clusterIP,
			eps:     []*Endpoint{tep("10.0.0.1:80", "ST"), tep("10.0.0.2:80", "T"), tep("10.0.0.3:80", "S")},
			cluster: []string{"10.0.0.1:80"}, local: none, all: []string{"10.0.0.1:80"}, hasAny: true,
		},
		{
			name:    "Cluster policy, no endpoint ready nor serving-terminating: none usable, hasAnyEndpoints false (REJECT)",
			svc:     clusterIP,
			eps:     []*Endpoint{tep("10.0.0.1:80", "T"), tep("10.0.0.2:80", "")},
			cluster: empty, local: none, all: empty, hasAny: false,
		},
		{
			name:    "internalTrafficPolicy Local, all endpoints local: no Cluster endpoints for an internal-only service",
			svc:     &ServicePort{Port: 80, InternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RSL"), tep("10.0.0.2:80", "RSL")},
			cluster: none, local: []string{"10.0.0.1:80", "10.0.0.2:80"}, all: []string{"10.0.0.1:80", "10.0.0.2:80"}, hasAny: true,
		},
		{
			name:    "internalTrafficPolicy Local without local endpoints: none reachable but hasAnyEndpoints true (DROP, not REJECT)",
			svc:     &ServicePort{Port: 80, InternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RS"), tep("10.0.0.2:80", "RS")},
			cluster: none, local: empty, all: empty, hasAny: true,
		},
		{
			name:    "internalTrafficPolicy Local, local endpoint only terminating: Local falls back to it independently",
			svc:     &ServicePort{Port: 80, InternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RS"), tep("10.0.0.2:80", "STL")},
			cluster: none, local: []string{"10.0.0.2:80"}, all: []string{"10.0.0.2:80"}, hasAny: true,
		},
		{
			name:    "externalTrafficPolicy Local with local endpoints: Cluster endpoints too (short circuit), all reachable = cluster",
			svc:     &ServicePort{Port: 80, NodePort: 30080, ExternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RSL"), tep("10.0.0.2:80", "RS")},
			cluster: []string{"10.0.0.1:80", "10.0.0.2:80"}, local: []string{"10.0.0.1:80"}, all: []string{"10.0.0.1:80", "10.0.0.2:80"}, hasAny: true,
		},
		{
			name:    "externalTrafficPolicy Local without local endpoints: local empty, endpoints elsewhere (hasAny)",
			svc:     &ServicePort{Port: 80, NodePort: 30080, ExternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RS"), tep("10.0.0.2:80", "RS")},
			cluster: []string{"10.0.0.1:80", "10.0.0.2:80"}, local: empty, all: []string{"10.0.0.1:80", "10.0.0.2:80"}, hasAny: true,
		},
		{
			name:    "iTP Local, eTP Local, all endpoints remote: Cluster endpoints still used for external short-circuiting",
			svc:     &ServicePort{Port: 80, NodePort: 30080, ExternalPolicyLocal: true, InternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RS"), tep("10.0.0.2:80", "RS")},
			cluster: []string{"10.0.0.1:80", "10.0.0.2:80"}, local: empty, all: []string{"10.0.0.1:80", "10.0.0.2:80"}, hasAny: true,
		},
		{
			name:    "iTP Cluster, eTP Local, local endpoint terminating: Local uses it, Cluster the ready ones, all = the union",
			svc:     &ServicePort{Port: 80, NodePort: 30080, ExternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RS"), tep("10.0.0.2:80", "STL"), tep("10.0.0.3:80", "TL")},
			cluster: []string{"10.0.0.1:80"}, local: []string{"10.0.0.2:80"}, all: []string{"10.0.0.1:80", "10.0.0.2:80"}, hasAny: true,
		},
		{
			name:    "externalTrafficPolicy ignored if not externally accessible",
			svc:     &ServicePort{Port: 80, ExternalPolicyLocal: true},
			eps:     []*Endpoint{tep("10.0.0.1:80", "RSL"), tep("10.0.0.2:80", "RS")},
			cluster: []string{"10.0.0.1:80", "10.0.0.2:80"}, local: none, all: []string{"10.0.0.1:80", "10.0.0.2:80"}, hasAny: true,
		},
		{
			name: `hints: "every ready endpoint has a zone hint, and at least one endpoint is hinted for this node's zone" => PreferSameZone`,
			svc:  clusterIP, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.3:80", "RS", zh("zone-a")), tep("10.1.2.4:80", "RS", zh("zone-b")),
				tep("10.1.2.5:80", "RS", zh("zone-c")), tep("10.1.2.6:80", "RS", zh("zone-a")),
			},
			cluster: []string{"10.1.2.3:80", "10.1.2.6:80"}, local: none, all: []string{"10.1.2.3:80", "10.1.2.6:80"}, hasAny: true,
		},
		{
			name: "hints: node in a zone no endpoint is hinted for: no filtering",
			svc:  clusterIP, zone: "zone-d",
			eps:     []*Endpoint{tep("10.1.2.3:80", "RS", zh("zone-a")), tep("10.1.2.4:80", "RS", zh("zone-b"))},
			cluster: []string{"10.1.2.3:80", "10.1.2.4:80"}, local: none, all: []string{"10.1.2.3:80", "10.1.2.4:80"}, hasAny: true,
		},
		{
			name: `hints: "one or more endpoints is missing a zone hint": no filtering`,
			svc:  clusterIP, zone: "zone-a",
			eps:     []*Endpoint{tep("10.1.2.3:80", "RS", zh("zone-a")), tep("10.1.2.4:80", "RS")},
			cluster: []string{"10.1.2.3:80", "10.1.2.4:80"}, local: none, all: []string{"10.1.2.3:80", "10.1.2.4:80"}, hasAny: true,
		},
		{
			name: `hints: node without a zone label ("node is missing label"): no filtering`,
			svc:  clusterIP, zone: "",
			eps:     []*Endpoint{tep("10.1.2.3:80", "RS", zh("zone-a")), tep("10.1.2.4:80", "RS", zh("zone-b"))},
			cluster: []string{"10.1.2.3:80", "10.1.2.4:80"}, local: none, all: []string{"10.1.2.3:80", "10.1.2.4:80"}, hasAny: true,
		},
		{
			name: "hints: only unready endpoints in this zone: hints of ready ones decide (no ready one here => no filtering)",
			svc:  clusterIP, zone: "zone-a",
			eps:     []*Endpoint{tep("10.1.2.3:80", "S", zh("zone-a")), tep("10.1.2.4:80", "RS", zh("zone-b"))},
			cluster: []string{"10.1.2.4:80"}, local: none, all: []string{"10.1.2.4:80"}, hasAny: true,
		},
		{
			name: `hints: "every ready endpoint has a node hint, and at least one endpoint is hinted for this node" => PreferSameNode`,
			svc:  clusterIP, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.3:80", "RSL", zh("zone-a"), nh("node-a")), tep("10.1.2.4:80", "RS", zh("zone-a"), nh("node-b")),
				tep("10.1.2.5:80", "RS", zh("zone-b"), nh("node-c")),
			},
			cluster: []string{"10.1.2.3:80"}, local: none, all: []string{"10.1.2.3:80"}, hasAny: true,
		},
		{
			name: "hints: node hints for other nodes only fall back to zone hints",
			svc:  clusterIP, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.4:80", "RS", zh("zone-a"), nh("node-b")), tep("10.1.2.5:80", "RS", zh("zone-b"), nh("node-c")),
			},
			cluster: []string{"10.1.2.4:80"}, local: none, all: []string{"10.1.2.4:80"}, hasAny: true,
		},
		{
			name: "hints with eTP Local: topology ignored for Local endpoints; all = union of hinted cluster endpoints and local ones",
			svc:  &ServicePort{Port: 80, NodePort: 30080, ExternalPolicyLocal: true}, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.3:80", "RS", zh("zone-a")), tep("10.1.2.4:80", "RSL", zh("zone-b")),
			},
			cluster: []string{"10.1.2.3:80"}, local: []string{"10.1.2.4:80"}, all: []string{"10.1.2.3:80", "10.1.2.4:80"}, hasAny: true,
		},
		{
			name: "trafficDistribution PreferClose without hints in the slices: hinted as the EndpointSlice controller would (own zone)",
			svc:  &ServicePort{Port: 80, TrafficDistribution: corev1.ServiceTrafficDistributionPreferClose}, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.3:80", "RS", zone("zone-a")), tep("10.1.2.4:80", "RS", zone("zone-b")), tep("10.1.2.5:80", "RS", zone("zone-a")),
			},
			cluster: []string{"10.1.2.3:80", "10.1.2.5:80"}, local: none, all: []string{"10.1.2.3:80", "10.1.2.5:80"}, hasAny: true,
		},
		{
			name: "trafficDistribution PreferSameZone, an endpoint without a zone: not every ready endpoint hinted, no filtering",
			svc:  &ServicePort{Port: 80, TrafficDistribution: corev1.ServiceTrafficDistributionPreferSameZone}, zone: "zone-a",
			eps:     []*Endpoint{tep("10.1.2.3:80", "RS", zone("zone-a")), tep("10.1.2.4:80", "RS")},
			cluster: []string{"10.1.2.3:80", "10.1.2.4:80"}, local: none, all: []string{"10.1.2.3:80", "10.1.2.4:80"}, hasAny: true,
		},
		{
			name: "trafficDistribution PreferSameNode: same node first",
			svc:  &ServicePort{Port: 80, TrafficDistribution: corev1.ServiceTrafficDistributionPreferSameNode}, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.3:80", "RSL", zone("zone-a")), tep("10.1.2.4:80", "RS", zone("zone-a")), tep("10.1.2.5:80", "RS", zone("zone-b")),
			},
			cluster: []string{"10.1.2.3:80"}, local: none, all: []string{"10.1.2.3:80"}, hasAny: true,
		},
		{
			name: "trafficDistribution PreferSameNode without an endpoint on this node: same zone",
			svc:  &ServicePort{Port: 80, TrafficDistribution: corev1.ServiceTrafficDistributionPreferSameNode}, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.4:80", "RS", zone("zone-a")), tep("10.1.2.5:80", "RS", zone("zone-b"), onNodeName("node-c")),
			},
			cluster: []string{"10.1.2.4:80"}, local: none, all: []string{"10.1.2.4:80"}, hasAny: true,
		},
		{
			name: "trafficDistribution is ignored when the slices carry hints (the controller's hints win)",
			svc:  &ServicePort{Port: 80, TrafficDistribution: corev1.ServiceTrafficDistributionPreferClose}, zone: "zone-a",
			eps: []*Endpoint{
				tep("10.1.2.3:80", "RS", zone("zone-a"), zh("zone-b")), tep("10.1.2.4:80", "RS", zone("zone-b"), zh("zone-a")),
			},
			cluster: []string{"10.1.2.4:80"}, local: none, all: []string{"10.1.2.4:80"}, hasAny: true,
		},
		{
			name: "topology with every endpoint terminating: the hints of ready endpoints are absent, serving-terminating fallback unfiltered",
			svc:  clusterIP, zone: "zone-a",
			eps:     []*Endpoint{tep("10.1.2.3:80", "ST", zh("zone-a")), tep("10.1.2.4:80", "ST", zh("zone-b"))},
			cluster: []string{"10.1.2.3:80", "10.1.2.4:80"}, local: none, all: []string{"10.1.2.3:80", "10.1.2.4:80"}, hasAny: true,
		},
		{
			name:    "nodePort service with Cluster policies: all ready endpoints",
			svc:     nodePort,
			eps:     []*Endpoint{tep("10.0.0.1:80", "RSL"), tep("10.0.0.2:80", "RS")},
			cluster: []string{"10.0.0.1:80", "10.0.0.2:80"}, local: none, all: []string{"10.0.0.1:80", "10.0.0.2:80"}, hasAny: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cluster, local, all, hasAny := CategorizeEndpoints(tc.eps, tc.svc, "node-a", tc.zone)
			if !same(cluster, tc.cluster) {
				t.Errorf("clusterEndpoints = %v, want %v", names(cluster), tc.cluster)
			}
			if !same(local, tc.local) {
				t.Errorf("localEndpoints = %v, want %v", names(local), tc.local)
			}
			if !same(all, tc.all) {
				t.Errorf("allReachableEndpoints = %v, want %v", names(all), tc.all)
			}
			if hasAny != tc.hasAny {
				t.Errorf("hasAnyEndpoints = %v, want %v", hasAny, tc.hasAny)
			}
		})
	}
}
