package controllers

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

type svcOpt func(*corev1.Service)

func svc(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func withIP(ip string) svcOpt { return func(s *corev1.Service) { s.Spec.ClusterIP = ip } }
func withType(t corev1.ServiceType) svcOpt {
	return func(s *corev1.Service) {
		s.Spec.Type = t
		if t == corev1.ServiceTypeExternalName {
			s.Spec.ExternalName = "example.test"
		}
	}
}
func withNodePort(i int, p int32) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports[i].NodePort = p }
}
func withPorts(ports ...corev1.ServicePort) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports = ports }
}

// step is one write in an allocator scenario and what it must give.
type step struct {
	op      string // create (default), update, apply, delete
	svc     *corev1.Service
	wantErr string // substring of the error; "" for success
	field   string // the field the Invalid error names
	check   func(t *testing.T, got *corev1.Service)
}

func runSteps(t *testing.T, cfg Config, steps []step) *Allocator {
	t.Helper()
	a, err := NewAllocator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := cluster.NewStore()
	s.Use(a.Admit)
	for i, st := range steps {
		var got cluster.Object
		var err error
		switch st.op {
		case "", "create":
			got, err = s.Create(st.svc)
		case "update":
			got, err = s.Update(st.svc)
		case "apply":
			got, _, err = s.Apply(st.svc)
		case "delete":
			err = s.Delete(cluster.KindService, st.svc.Namespace, st.svc.Name, cluster.DeleteOptions{})
		}
		if st.wantErr == "" {
			if err != nil {
				t.Fatalf("step %d (%s %s): %v", i, st.op, st.svc.Name, err)
			}
		} else {
			if err == nil || !strings.Contains(err.Error(), st.wantErr) {
				t.Fatalf("step %d (%s %s): error %v, want one containing %q", i, st.op, st.svc.Name, err, st.wantErr)
			}
			if st.field != "" {
				se, ok := err.(apierrors.APIStatus)
				if !ok || !apierrors.IsInvalid(err) || se.Status().Details == nil || len(se.Status().Details.Causes) == 0 ||
					se.Status().Details.Causes[0].Field != st.field {
					t.Fatalf("step %d: error %v does not name field %s", i, err, st.field)
				}
			}
			continue
		}
		if st.check != nil {
			if got == nil {
				got, _ = s.Get(cluster.KindService, st.svc.Namespace, st.svc.Name)
			}
			st.check(t, got.(*corev1.Service))
		}
	}
	return a
}

func wantIP(ip string) func(*testing.T, *corev1.Service) {
	return func(t *testing.T, s *corev1.Service) {
		t.Helper()
		if s.Spec.ClusterIP != ip || len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIPs[0] != ip {
			t.Fatalf("%s: clusterIP %q clusterIPs %v, want %s", s.Name, s.Spec.ClusterIP, s.Spec.ClusterIPs, ip)
		}
	}
}

func inCIDR(cidr string) func(*testing.T, *corev1.Service) {
	return func(t *testing.T, s *corev1.Service) {
		t.Helper()
		p := netip.MustParsePrefix(cidr)
		a, err := netip.ParseAddr(s.Spec.ClusterIP)
		if err != nil || !p.Contains(a) || a == p.Addr() || len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIPs[0] != s.Spec.ClusterIP {
			t.Fatalf("%s: clusterIP %q (clusterIPs %v) not a usable address of %s", s.Name, s.Spec.ClusterIP, s.Spec.ClusterIPs, cidr)
		}
		if len(s.Spec.IPFamilies) != 1 || s.Spec.IPFamilyPolicy == nil || *s.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			t.Fatalf("%s: ipFamilies %v policy %v", s.Name, s.Spec.IPFamilies, s.Spec.IPFamilyPolicy)
		}
		if s.Spec.ClusterIP == "127.96.0.10" && !(s.Namespace == "kube-system" && s.Name == "kube-dns") {
			t.Fatalf("%s got the DNS address", s.Name)
		}
	}
}

func wantNodePorts(lo, hi int32) func(*testing.T, *corev1.Service) {
	return func(t *testing.T, s *corev1.Service) {
		t.Helper()
		for i, p := range s.Spec.Ports {
			if p.NodePort < lo || p.NodePort > hi {
				t.Fatalf("%s: ports[%d].nodePort %d not in %d-%d", s.Name, i, p.NodePort, lo, hi)
			}
		}
	}
}

func TestAllocatorClusterIP(t *testing.T) {
	cfg := testConfig()
	tests := []struct {
		name  string
		steps []step
	}{
		{"the tenth address is reserved for kube-system/kube-dns: only kube-dns gets it, when it asks or has none", []step{
			{svc: svc("default", "web"), check: inCIDR("127.96.0.0/16")},
			{svc: svc("default", "thief", withIP("127.96.0.10")), wantErr: "reserved for the cluster DNS Service kube-system/kube-dns", field: "spec.clusterIPs[0]"},
			{svc: svc("kube-system", "kube-dns"), check: wantIP("127.96.0.10")},
		}},
		{"kube-dns may ask for the tenth address explicitly", []step{
			{svc: svc("kube-system", "kube-dns", withIP("127.96.0.10")), check: wantIP("127.96.0.10")},
		}},
		{"a requested IP inside the range is given", []step{
			{svc: svc("default", "a", withIP("127.96.3.4")), check: wantIP("127.96.3.4")},
		}},
		{"upstream: provided IP is not in the valid range (outside the CIDR)", []step{
			{svc: svc("default", "a", withIP("10.0.0.1")), wantErr: "provided IP is not in the valid range. The range of valid IPs is 127.96.0.0/16", field: "spec.clusterIPs[0]"},
		}},
		{"upstream: the network address and the IPv4 broadcast address are never allocated", []step{
			{svc: svc("default", "a", withIP("127.96.0.0")), wantErr: "provided IP is not in the valid range", field: "spec.clusterIPs[0]"},
			{svc: svc("default", "b", withIP("127.96.255.255")), wantErr: "provided IP is not in the valid range", field: "spec.clusterIPs[0]"},
		}},
		{"upstream: provided IP is already allocated", []step{
			{svc: svc("default", "a", withIP("127.96.1.1")), check: wantIP("127.96.1.1")},
			{svc: svc("other", "a", withIP("127.96.1.1")), wantErr: "failed to allocate IP 127.96.1.1: provided IP is already allocated", field: "spec.clusterIPs[0]"},
		}},
		{"headless (clusterIP None) gets no address; clusterIPs is [None]", []step{
			{svc: svc("default", "h", withIP("None")), check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "None" || len(s.Spec.ClusterIPs) != 1 || s.Spec.ClusterIPs[0] != "None" {
					t.Fatalf("headless: %q %v", s.Spec.ClusterIP, s.Spec.ClusterIPs)
				}
			}},
		}},
		{"ExternalName gets no address and may not ask for one", []step{
			{svc: svc("default", "ext", withType(corev1.ServiceTypeExternalName)), check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.ClusterIP != "" || len(s.Spec.ClusterIPs) != 0 || len(s.Spec.IPFamilies) != 0 {
					t.Fatalf("ExternalName got %q %v %v", s.Spec.ClusterIP, s.Spec.ClusterIPs, s.Spec.IPFamilies)
				}
			}},
			{svc: svc("default", "ext2", withType(corev1.ServiceTypeExternalName), withIP("127.96.0.5")), wantErr: "may not be set for ExternalName"},
		}},
		{"an update keeps the IP it owns: re-applying the manifest (no clusterIP) or naming it again", []step{
			{svc: svc("default", "a", withIP("127.96.7.7")), check: wantIP("127.96.7.7")},
			{op: "apply", svc: svc("default", "a"), check: wantIP("127.96.7.7")},
			{op: "apply", svc: svc("default", "a", withIP("127.96.7.7")), check: wantIP("127.96.7.7")},
		}},
		{"upstream: spec.clusterIP is immutable", []step{
			{svc: svc("default", "a", withIP("127.96.7.7"))},
			{op: "apply", svc: svc("default", "a", withIP("127.96.7.8")), wantErr: "field is immutable", field: "spec.clusterIP"},
		}},
		{"a delete releases the address", []step{
			{svc: svc("default", "a", withIP("127.96.9.9"))},
			{svc: svc("default", "b", withIP("127.96.9.9")), wantErr: "already allocated"},
			{op: "delete", svc: svc("default", "a")},
			{svc: svc("default", "b", withIP("127.96.9.9")), check: wantIP("127.96.9.9")},
		}},
		{"changing the type to ExternalName releases the address", []step{
			{svc: svc("default", "a", withIP("127.96.9.9"))},
			{op: "apply", svc: svc("default", "a", withType(corev1.ServiceTypeExternalName))},
			{svc: svc("default", "b", withIP("127.96.9.9")), check: wantIP("127.96.9.9")},
		}},
		{"dual-stack is refused on a single-stack cluster", []step{
			{svc: svc("default", "a", func(s *corev1.Service) {
				s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
			}), wantErr: "not configured for dual-stack", field: "spec.ipFamilyPolicy"},
			{svc: svc("default", "b", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} }),
				wantErr: "not configured on this cluster", field: "spec.ipFamilies[0]"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { runSteps(t, cfg, tc.steps) })
	}
}

func TestAllocatorExhaustion(t *testing.T) {
	// A /28 has 16 addresses: the network, the broadcast and the DNS
	// address are never given out, which leaves 13.
	cfg := testConfig()
	cfg.ServiceCIDR = netip.MustParsePrefix("127.97.0.0/28")
	var steps []step
	seen := map[string]bool{}
	for i := range 13 {
		steps = append(steps, step{svc: svc("default", "s"+string(rune('a'+i))), check: func(t *testing.T, s *corev1.Service) {
			inCIDR("127.97.0.0/28")(t, s)
			if seen[s.Spec.ClusterIP] || s.Spec.ClusterIP == "127.97.0.10" {
				t.Fatalf("%s: address %s given twice or reserved", s.Name, s.Spec.ClusterIP)
			}
			seen[s.Spec.ClusterIP] = true
		}})
	}
	steps = append(steps, step{svc: svc("default", "full"), wantErr: "range is full"})
	runSteps(t, cfg, steps)
}

func TestAllocatorNodePorts(t *testing.T) {
	cfg := testConfig()
	np := corev1.ServiceTypeNodePort
	lb := corev1.ServiceTypeLoadBalancer
	tests := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{"NodePort services get node ports in 30000-32767", nil, []step{
			{svc: svc("default", "a", withType(np)), check: wantNodePorts(30000, 32767)},
			{svc: svc("default", "b", withType(lb)), check: wantNodePorts(30000, 32767)},
		}},
		{"a requested node port is given; upstream: provided port is already allocated", nil, []step{
			{svc: svc("default", "a", withType(np), withNodePort(0, 30080)), check: wantNodePorts(30080, 30080)},
			{svc: svc("default", "b", withType(np), withNodePort(0, 30080)), wantErr: "provided port is already allocated", field: "spec.ports[0].nodePort"},
		}},
		{"upstream: provided port is not in the valid range", nil, []step{
			{svc: svc("default", "a", withType(np), withNodePort(0, 8080)), wantErr: "provided port is not in the valid range. The range of valid ports is 30000-32767", field: "spec.ports[0].nodePort"},
		}},
		{"upstream: a ClusterIP service may not name a node port", nil, []step{
			{svc: svc("default", "a", withNodePort(0, 30001)), wantErr: "may not be used when `type` is 'ClusterIP'", field: "spec.ports[0].nodePort"},
		}},
		{"upstream: the same port number over TCP and UDP shares one node port", nil, []step{
			{svc: svc("default", "dns", withType(np), withPorts(
				corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				corev1.ServicePort{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP},
			)), check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort == 0 || s.Spec.Ports[0].NodePort != s.Spec.Ports[1].NodePort {
					t.Fatalf("node ports %d and %d", s.Spec.Ports[0].NodePort, s.Spec.Ports[1].NodePort)
				}
			}},
		}},
		{"re-applying keeps the node port; changing the type away from NodePort releases it", nil, []step{
			{svc: svc("default", "a", withType(np), withNodePort(0, 31000))},
			{op: "apply", svc: svc("default", "a", withType(np)), check: wantNodePorts(31000, 31000)},
			{op: "update", svc: func() *corev1.Service {
				s := svc("default", "a", withType(corev1.ServiceTypeClusterIP), withNodePort(0, 31000))
				return s
			}(), check: func(t *testing.T, s *corev1.Service) {
				if s.Spec.Ports[0].NodePort != 0 {
					t.Fatalf("ClusterIP service kept node port %d", s.Spec.Ports[0].NodePort)
				}
			}},
			{svc: svc("default", "b", withType(np), withNodePort(0, 31000)), check: wantNodePorts(31000, 31000)},
		}},
		{"a delete releases node ports", nil, []step{
			{svc: svc("default", "a", withType(np), withNodePort(0, 31001))},
			{op: "delete", svc: svc("default", "a")},
			{svc: svc("default", "b", withType(np), withNodePort(0, 31001)), check: wantNodePorts(31001, 31001)},
		}},
		{"upstream NeedsHealthCheck: LoadBalancer with externalTrafficPolicy Local gets a healthCheckNodePort", nil, []step{
			{svc: svc("default", "a", withType(lb), func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			}), check: func(t *testing.T, s *corev1.Service) {
				hc := s.Spec.HealthCheckNodePort
				if hc < 30000 || hc > 32767 || hc == s.Spec.Ports[0].NodePort {
					t.Fatalf("healthCheckNodePort %d (nodePort %d)", hc, s.Spec.Ports[0].NodePort)
				}
			}},
			{svc: svc("default", "b", withType(np), func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 30500 }),
				wantErr: "may only be set when `type` is 'LoadBalancer'", field: "spec.healthCheckNodePort"},
		}},
		{"allocateLoadBalancerNodePorts false allocates none", nil, []step{
			{svc: svc("default", "a", withType(lb), func(s *corev1.Service) { s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false) }),
				check: func(t *testing.T, s *corev1.Service) {
					if s.Spec.Ports[0].NodePort != 0 {
						t.Fatalf("got node port %d", s.Spec.Ports[0].NodePort)
					}
				}},
		}},
		{"exhausting the node-port range gives a clear error", func(c *Config) { c.NodePortRange = [2]int{30000, 30002} }, []step{
			{svc: svc("default", "a", withType(np)), check: wantNodePorts(30000, 30002)},
			{svc: svc("default", "b", withType(np)), check: wantNodePorts(30000, 30002)},
			{svc: svc("default", "c", withType(np)), check: wantNodePorts(30000, 30002)},
			{svc: svc("default", "d", withType(np)), wantErr: "failed to allocate a nodePort: range is full"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				tc.cfg(&c)
			}
			runSteps(t, c, tc.steps)
		})
	}
}

func TestAllocatorConfig(t *testing.T) {
	tests := []struct {
		cidr    string
		ports   [2]int
		dns     string
		wantErr string
	}{
		{cidr: "127.96.0.0/16", dns: "127.96.0.10"},
		{cidr: "10.96.0.0/12", dns: "10.96.0.10"},
		{cidr: "fd00:10:96::/108", dns: "fd00:10:96::a"},
		{cidr: "10.0.0.0/8", wantErr: "too large"},
		{cidr: "fd00::/64", wantErr: "too large"},
		{cidr: "10.0.0.0/29", wantErr: "too small"},
		{cidr: "10.96.0.0/12", ports: [2]int{32000, 31000}, wantErr: "node port range"},
	}
	for _, tc := range tests {
		t.Run(tc.cidr, func(t *testing.T) {
			a, err := NewAllocator(Config{ServiceCIDR: netip.MustParsePrefix(tc.cidr), NodePortRange: tc.ports})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.DNSServiceIP().String(); got != tc.dns {
				t.Fatalf("DNSServiceIP %s, want %s", got, tc.dns)
			}
		})
	}
}

func TestAllocatorIPv6(t *testing.T) {
	cfg := testConfig()
	cfg.ServiceCIDR = netip.MustParsePrefix("fd00:10:96::/112")
	runSteps(t, cfg, []step{
		{svc: svc("default", "a"), check: func(t *testing.T, s *corev1.Service) {
			a, err := netip.ParseAddr(s.Spec.ClusterIP)
			if err != nil || !cfg.ServiceCIDR.Contains(a) || s.Spec.IPFamilies[0] != corev1.IPv6Protocol {
				t.Fatalf("got %q %v", s.Spec.ClusterIP, s.Spec.IPFamilies)
			}
		}},
		{svc: svc("kube-system", "kube-dns"), check: wantIP("fd00:10:96::a")},
	})
}
