package serviceproxy

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func svcObj(ns, name string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeClusterIP,
			ClusterIP:  "10.96.0.10",
			ClusterIPs: []string{"10.96.0.10"},
			Ports:      []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
		},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

func TestBuildServicePorts(t *testing.T) {
	nn := types.NamespacedName{Namespace: "ns", Name: "svc"}
	httpName := ServicePortName{NamespacedName: nn, Port: "http", Protocol: corev1.ProtocolTCP}
	tests := []struct {
		name  string
		svc   *corev1.Service
		check func(t *testing.T, got map[ServicePortName]*ServicePort)
	}{
		{
			name: `ShouldSkipService: "if ClusterIP is "None" or empty, skip proxying" (headless)`,
			svc:  svcObj("ns", "svc", func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.ClusterIPs = []string{"None"} }),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got != nil {
					t.Fatalf("headless service proxied: %v", got)
				}
			},
		},
		{
			name: `ShouldSkipService: services without a cluster IP are not proxied`,
			svc:  svcObj("ns", "svc", func(s *corev1.Service) { s.Spec.ClusterIP = ""; s.Spec.ClusterIPs = nil }),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got != nil {
					t.Fatalf("service without cluster IP proxied: %v", got)
				}
			},
		},
		{
			name: `ShouldSkipService: "ServiceTypeExternalName services don't get proxied" (even with a cluster IP)`,
			svc: svcObj("ns", "svc", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeExternalName
				s.Spec.ExternalName = "example.test"
			}),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got != nil {
					t.Fatalf("ExternalName service proxied: %v", got)
				}
			},
		},
		{
			name: "ports keyed by name and protocol; empty protocol is TCP; both families kept",
			svc: svcObj("ns", "svc", func(s *corev1.Service) {
				s.Spec.ClusterIPs = []string{"10.96.0.10", "fd00::10"}
				s.Spec.Ports = []corev1.ServicePort{
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
					{Name: "dns-tcp", Port: 53},
				}
			}),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				udp := got[ServicePortName{NamespacedName: nn, Port: "dns", Protocol: corev1.ProtocolUDP}]
				tcp := got[ServicePortName{NamespacedName: nn, Port: "dns-tcp", Protocol: corev1.ProtocolTCP}]
				if len(got) != 2 || udp == nil || tcp == nil {
					t.Fatalf("ports = %v", got)
				}
				if !reflect.DeepEqual(udp.ClusterIPs, addrs("10.96.0.10", "fd00::10")) || udp.Port != 53 || tcp.Protocol != corev1.ProtocolTCP {
					t.Fatalf("udp %+v tcp %+v", udp, tcp)
				}
			},
		},
		{
			name: `sessionAffinityConfig.clientIP.timeoutSeconds: "Default value is 10800(for 3 hours)"`,
			svc:  svcObj("ns", "svc", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP }),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got[httpName].StickyMaxAge != 10800*time.Second {
					t.Fatalf("StickyMaxAge = %v", got[httpName].StickyMaxAge)
				}
			},
		},
		{
			name: "ClientIP affinity with timeoutSeconds 60",
			svc: svcObj("ns", "svc", func(s *corev1.Service) {
				s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
				s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](60)}}
			}),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got[httpName].StickyMaxAge != time.Minute {
					t.Fatalf("StickyMaxAge = %v", got[httpName].StickyMaxAge)
				}
			},
		},
		{
			name: "sessionAffinity None has no sticky timeout",
			svc:  svcObj("ns", "svc", nil),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got[httpName].StickyMaxAge != 0 {
					t.Fatalf("StickyMaxAge = %v", got[httpName].StickyMaxAge)
				}
			},
		},
		{
			name: `load-balancer ingress: only "VIP-style load balancers" (ipMode VIP or unset); ipMode Proxy excluded`,
			svc: svcObj("ns", "svc", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30080
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{
					{IP: "192.0.2.1"},
					{IP: "192.0.2.2", IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)},
					{IP: "192.0.2.3", IPMode: ptr.To(corev1.LoadBalancerIPModeProxy)},
					{Hostname: "lb.example.test"},
				}
				s.Spec.LoadBalancerSourceRanges = []string{" 203.0.113.0/24 ", "198.51.100.7/16"}
			}),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				sp := got[httpName]
				if !reflect.DeepEqual(sp.LoadBalancerVIPs, addrs("192.0.2.1", "192.0.2.2")) {
					t.Errorf("LoadBalancerVIPs = %v", sp.LoadBalancerVIPs)
				}
				// "LoadBalancerSourceRanges validation mistakenly allows
				// whitespace padding"; prefixes are masked.
				want := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.0.0/16")}
				if !reflect.DeepEqual(sp.LoadBalancerSourceRanges, want) {
					t.Errorf("LoadBalancerSourceRanges = %v", sp.LoadBalancerSourceRanges)
				}
				if sp.NodePort != 30080 || sp.Type != corev1.ServiceTypeLoadBalancer {
					t.Errorf("NodePort %d Type %s", sp.NodePort, sp.Type)
				}
			},
		},
		{
			name: "externalTrafficPolicy Local on a LoadBalancer: Local external policy and its healthCheckNodePort",
			svc: svcObj("ns", "svc", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 32000
			}),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				sp := got[httpName]
				if !sp.ExternalPolicyLocal || sp.InternalPolicyLocal || sp.HealthCheckNodePort != 32000 {
					t.Fatalf("%+v", sp)
				}
			},
		},
		{
			name: "externalTrafficPolicy Local on a NodePort service: no healthCheckNodePort (NeedsHealthCheck is for LoadBalancers)",
			svc: svcObj("ns", "svc", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeNodePort
				s.Spec.Ports[0].NodePort = 30080
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.HealthCheckNodePort = 32000
			}),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				sp := got[httpName]
				if !sp.ExternalPolicyLocal || sp.HealthCheckNodePort != 0 {
					t.Fatalf("%+v", sp)
				}
			},
		},
		{
			name: "ExternalPolicyLocal: a ClusterIP service without externalIPs has no external policy",
			svc:  svcObj("ns", "svc", func(s *corev1.Service) { s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal }),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got[httpName].ExternalPolicyLocal {
					t.Fatal("ExternalPolicyLocal set")
				}
			},
		},
		{
			name: "externalIPs with externalTrafficPolicy Local; internalTrafficPolicy Local; trafficDistribution",
			svc: svcObj("ns", "svc", func(s *corev1.Service) {
				s.Spec.ExternalIPs = []string{"192.0.2.50", "not-an-ip", "192.0.2.50"}
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyLocal)
				s.Spec.TrafficDistribution = ptr.To(corev1.ServiceTrafficDistributionPreferSameZone)
			}),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				sp := got[httpName]
				if !reflect.DeepEqual(sp.ExternalIPs, addrs("192.0.2.50")) {
					t.Errorf("ExternalIPs = %v (bad and duplicate addresses must be dropped)", sp.ExternalIPs)
				}
				if !sp.ExternalPolicyLocal || !sp.InternalPolicyLocal || sp.TrafficDistribution != corev1.ServiceTrafficDistributionPreferSameZone {
					t.Errorf("%+v", sp)
				}
			},
		},
		{
			name: "a cluster IP that does not parse is dropped, without a panic",
			svc:  svcObj("ns", "svc", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.96.0.300"} }),
			check: func(t *testing.T, got map[ServicePortName]*ServicePort) {
				if got != nil {
					t.Fatalf("got %v", got)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, BuildServicePorts(tc.svc, nil))
		})
	}
}

type epOpt func(*discoveryv1.Endpoint)

func ready(b bool) epOpt { return func(e *discoveryv1.Endpoint) { e.Conditions.Ready = &b } }
func serving(b bool) epOpt {
	return func(e *discoveryv1.Endpoint) { e.Conditions.Serving = &b }
}
func terminating(b bool) epOpt {
	return func(e *discoveryv1.Endpoint) { e.Conditions.Terminating = &b }
}
func onNode(n string) epOpt { return func(e *discoveryv1.Endpoint) { e.NodeName = &n } }
func inZone(z string) epOpt { return func(e *discoveryv1.Endpoint) { e.Zone = &z } }
func zoneHints(z ...string) epOpt {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, x := range z {
			e.Hints.ForZones = append(e.Hints.ForZones, discoveryv1.ForZone{Name: x})
		}
	}
}
func nodeHints(n ...string) epOpt {
	return func(e *discoveryv1.Endpoint) {
		if e.Hints == nil {
			e.Hints = &discoveryv1.EndpointHints{}
		}
		for _, x := range n {
			e.Hints.ForNodes = append(e.Hints.ForNodes, discoveryv1.ForNode{Name: x})
		}
	}
}

func sliceEp(ip string, opts ...epOpt) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{ip}}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func sliceObj(ns, name, svc string, at discoveryv1.AddressType, ports []discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: at,
		Ports:       ports,
		Endpoints:   eps,
	}
}

func epPort(name string, port int32, proto corev1.Protocol) discoveryv1.EndpointPort {
	return discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto}
}

func TestBuildEndpoints(t *testing.T) {
	nn := types.NamespacedName{Namespace: "ns", Name: "svc"}
	http := ServicePortName{NamespacedName: nn, Port: "http", Protocol: corev1.ProtocolTCP}
	httpPorts := []discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)}
	tests := []struct {
		name   string
		slices []*discoveryv1.EndpointSlice
		want   map[ServicePortName][]*Endpoint
	}{
		{
			name: `conditions: ready "A nil value should be interpreted as "true"", serving nil "true", terminating nil "false"`,
			slices: []*discoveryv1.EndpointSlice{sliceObj("ns", "a", "svc", discoveryv1.AddressTypeIPv4, httpPorts,
				sliceEp("10.0.0.1"),
				sliceEp("10.0.0.2", ready(false)),
				sliceEp("10.0.0.3", ready(false), serving(true), terminating(true)),
				sliceEp("10.0.0.4", ready(false), terminating(true)),
			)},
			want: map[ServicePortName][]*Endpoint{http: {
				{IP: netip.MustParseAddr("10.0.0.1"), Port: 8080, Ready: true, Serving: true},
				{IP: netip.MustParseAddr("10.0.0.2"), Port: 8080, Serving: true},
				{IP: netip.MustParseAddr("10.0.0.3"), Port: 8080, Serving: true, Terminating: true},
				{IP: netip.MustParseAddr("10.0.0.4"), Port: 8080, Serving: true, Terminating: true},
			}},
		},
		{
			name: "slices of one service merge (by kubernetes.io/service-name); addresses sort numerically; nodeName/zone/hints kept; IsLocal = nodeName is this node",
			slices: []*discoveryv1.EndpointSlice{
				sliceObj("ns", "b", "svc", discoveryv1.AddressTypeIPv4, httpPorts, sliceEp("10.0.0.10", onNode("node-a"), inZone("z1"), zoneHints("z1", "z1"), nodeHints("node-a"))),
				sliceObj("ns", "a", "svc", discoveryv1.AddressTypeIPv4, httpPorts, sliceEp("10.0.0.9", onNode("node-b"), inZone("z2"))),
				sliceObj("ns", "c", "svc", discoveryv1.AddressTypeIPv6, httpPorts, sliceEp("fd00::1", onNode("node-a"))),
			},
			want: map[ServicePortName][]*Endpoint{http: {
				{IP: netip.MustParseAddr("10.0.0.9"), Port: 8080, Ready: true, Serving: true, NodeName: "node-b", Zone: "z2"},
				{IP: netip.MustParseAddr("10.0.0.10"), Port: 8080, Ready: true, Serving: true, NodeName: "node-a", Zone: "z1", IsLocal: true, ZoneHints: []string{"z1"}, NodeHints: []string{"node-a"}},
				{IP: netip.MustParseAddr("fd00::1"), Port: 8080, Ready: true, Serving: true, NodeName: "node-a", IsLocal: true},
			}},
		},
		{
			name: `an address in two slices is kept once: "we want to prefer the running pod over the terminating one"`,
			slices: []*discoveryv1.EndpointSlice{
				sliceObj("ns", "a", "svc", discoveryv1.AddressTypeIPv4, httpPorts, sliceEp("10.0.0.1", ready(false), serving(true), terminating(true))),
				sliceObj("ns", "b", "svc", discoveryv1.AddressTypeIPv4, httpPorts, sliceEp("10.0.0.1", onNode("node-a"))),
				sliceObj("ns", "c", "svc", discoveryv1.AddressTypeIPv4, httpPorts, sliceEp("10.0.0.1", ready(false), serving(false), terminating(true))),
			},
			want: map[ServicePortName][]*Endpoint{http: {
				{IP: netip.MustParseAddr("10.0.0.1"), Port: 8080, Ready: true, Serving: true, NodeName: "node-a", IsLocal: true},
			}},
		},
		{
			name: `per port name and protocol; ports without a name or with port 0 are ignored ("Ignoring invalid endpoint port"); FQDN slices ignored`,
			slices: []*discoveryv1.EndpointSlice{
				sliceObj("ns", "a", "svc", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{
					epPort("dns", 53, corev1.ProtocolUDP), epPort("dns", 53, corev1.ProtocolTCP), epPort("zero", 0, corev1.ProtocolTCP), {Port: ptr.To[int32](9)},
				}, sliceEp("10.0.0.1"), sliceEp("bogus"), discoveryv1.Endpoint{}),
				sliceObj("ns", "f", "svc", discoveryv1.AddressTypeFQDN, httpPorts, sliceEp("example.test")),
			},
			want: map[ServicePortName][]*Endpoint{
				{NamespacedName: nn, Port: "dns", Protocol: corev1.ProtocolUDP}: {{IP: netip.MustParseAddr("10.0.0.1"), Port: 53, Ready: true, Serving: true}},
				{NamespacedName: nn, Port: "dns", Protocol: corev1.ProtocolTCP}: {{IP: netip.MustParseAddr("10.0.0.1"), Port: 53, Ready: true, Serving: true}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := BuildEndpoints(nn, tc.slices, "node-a", nil)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got:\n%s\nwant:\n%s", dumpEps(got), dumpEps(tc.want))
			}
		})
	}
}

func dumpEps(m map[ServicePortName][]*Endpoint) string {
	s := ""
	for k, v := range m {
		s += k.String() + "/" + string(k.Protocol) + ":"
		for _, e := range v {
			s += " " + formatEp(e)
		}
		s += "\n"
	}
	return s
}

func formatEp(e *Endpoint) string {
	return e.String() + "{" + flags(e) + " node=" + e.NodeName + " zone=" + e.Zone + "}"
}

func flags(e *Endpoint) string {
	s := ""
	for _, f := range []struct {
		b bool
		n string
	}{{e.Ready, "R"}, {e.Serving, "S"}, {e.Terminating, "T"}, {e.IsLocal, "L"}} {
		if f.b {
			s += f.n
		}
	}
	return s
}
