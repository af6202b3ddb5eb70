package serviceproxy

import (
	"fmt"
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// syntheticObjects are the Services and EndpointSlices a user would
// apply to get SyntheticState(services, eps) (as bench/dns creates them).
func syntheticObjects(services, eps int, nodeName string) []any {
	var objs []any
	for i := 0; i < services; i++ {
		n := SyntheticServiceName(i)
		ip := SyntheticClusterIP(i).String()
		objs = append(objs, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: ip, ClusterIPs: []string{ip},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		})
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: n.Namespace, Name: n.Name + "-1",
				Labels: map[string]string{discoveryv1.LabelServiceName: n.Name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for j := 0; j < eps; j++ {
			node := "other-node"
			if j%3 == 0 {
				node = nodeName
			}
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{addrPlus(netip.MustParseAddr("10.128.0.0"), uint32(i*eps+j)+1).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
				NodeName:   ptr.To(node),
			})
		}
		objs = append(objs, sl)
	}
	return objs
}

// The synthetic state must be exactly what the change tracker builds from
// the equivalent Services and EndpointSlices, so that a benchmark of a
// backend measures the states it gets in a cluster.
func TestSyntheticStateEqualsTheStateBuiltFromObjects(t *testing.T) {
	for _, tc := range []struct{ services, eps int }{
		{0, 10}, {1, 1}, {3, 0}, {5, 4}, {250, 10}, // 250: three namespaces
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.services, tc.eps), func(t *testing.T) {
			got := SyntheticState(tc.services, tc.eps)
			want := BuildState(got.Node, got.ClusterCIDRs, syntheticObjects(tc.services, tc.eps, got.Node.Name)...)
			if len(got.Services) != tc.services || len(got.Changed) != tc.services || !got.Full {
				t.Fatalf("%d services, %d changed, full %v; want %d, %d, true", len(got.Services), len(got.Changed), got.Full, tc.services, tc.services)
			}
			if !reflect.DeepEqual(got.Services, want.Services) {
				for n, sp := range got.Services {
					if !reflect.DeepEqual(sp, want.Services[n]) {
						t.Fatalf("service %s:\n got %+v\nwant %+v", n, sp, want.Services[n])
					}
				}
				t.Fatalf("services differ: got %d, built %d", len(got.Services), len(want.Services))
			}
			if !reflect.DeepEqual(got.Endpoints, want.Endpoints) {
				for n, eps := range got.Endpoints {
					if !reflect.DeepEqual(eps, want.Endpoints[n]) {
						t.Fatalf("endpoints of %s:\n got %v\nwant %v", n, eps, want.Endpoints[n])
					}
				}
				t.Fatalf("endpoints differ: got %d ports, built %d", len(got.Endpoints), len(want.Endpoints))
			}
			if !reflect.DeepEqual(got.Changed, want.Changed) {
				t.Fatalf("Changed: got %v, built %v", got.Changed, want.Changed)
			}
		})
	}
}

// The address plan, as the nftables and iptables BenchStates had it.
func TestSyntheticAddresses(t *testing.T) {
	st := SyntheticState(10000, 10)
	for _, tc := range []struct {
		svc       int
		clusterIP string
		firstEp   string
		lastEp    string
	}{
		{0, "10.96.0.1", "10.128.0.1", "10.128.0.10"},
		{1, "10.96.0.2", "10.128.0.11", "10.128.0.20"},
		{9999, "10.96.39.16", "10.129.134.151", "10.129.134.160"}, // 10.128.0.0 + 99,991 and + 100,000
	} {
		n := SyntheticServiceName(tc.svc)
		sp := st.Services[n]
		eps := st.Endpoints[n]
		if sp == nil || len(eps) != 10 {
			t.Fatalf("service %d (%s): %v with %d endpoints", tc.svc, n, sp, len(eps))
		}
		if got := sp.ClusterIPs[0].String(); got != tc.clusterIP || sp.Port != 80 || sp.Protocol != corev1.ProtocolTCP {
			t.Errorf("service %d: %s port %d/%s, want %s port 80/TCP", tc.svc, got, sp.Port, sp.Protocol, tc.clusterIP)
		}
		if eps[0].IP.String() != tc.firstEp || eps[9].IP.String() != tc.lastEp || eps[0].Port != 8080 {
			t.Errorf("service %d: endpoints %s..%s port %d, want %s..%s port 8080", tc.svc, eps[0].IP, eps[9].IP, eps[0].Port, tc.firstEp, tc.lastEp)
		}
	}
	seen := map[netip.Addr]bool{}
	for n, list := range st.Endpoints {
		for _, e := range list {
			if seen[e.IP] || !SyntheticClusterCIDR.Contains(e.IP) {
				t.Fatalf("%s: endpoint %s repeated or outside %s", n, e.IP, SyntheticClusterCIDR)
			}
			seen[e.IP] = true
		}
	}
}

// "One more service": the added port is the only one in Changed, and the
// state it joins is otherwise the same.
func TestAddSyntheticService(t *testing.T) {
	st := SyntheticState(100, 3)
	st.Changed = map[ServicePortName]bool{}
	name, err := AddSyntheticService(st, 100, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Services) != 101 || len(st.Changed) != 1 || !st.Changed[name] || name != SyntheticServiceName(100) {
		t.Fatalf("after adding: %d services, changed %v, name %s", len(st.Services), st.Changed, name)
	}
	if want := SyntheticState(101, 3); !reflect.DeepEqual(st.Services, want.Services) || !reflect.DeepEqual(st.Endpoints, want.Endpoints) {
		t.Fatal("SyntheticState(100)+AddSyntheticService(100) differs from SyntheticState(101)")
	}
	// Into an empty State: the maps are made.
	var empty State
	if _, err := AddSyntheticService(&empty, 0, 2); err != nil || len(empty.Services) != 1 || len(empty.Endpoints) != 1 || len(empty.Changed) != 1 {
		t.Fatalf("into an empty State: %v, %+v", err, empty)
	}
}

// Bad sizes are errors (AddSyntheticService, CheckSyntheticSize) or
// clamped (SyntheticState), never a panic or an address outside the plan.
func TestSyntheticSizeLimits(t *testing.T) {
	for _, tc := range []struct {
		name          string
		services, eps int
		ok            bool
	}{
		{"empty", 0, 0, true},
		{"10,000 x 10", 10000, 10, true},
		{"negative services", -1, 10, false},
		{"negative endpoints", 10, -1, false},
		{"more services than 10.96.0.0/12 holds", SyntheticMaxServices + 1, 0, false},
		{"all of 10.96.0.0/12", SyntheticMaxServices, 0, true},
		{"more endpoints than 10.128.0.0/9 holds", SyntheticMaxEndpoints/10 + 1, 10, false},
		{"all of 10.128.0.0/9", SyntheticMaxEndpoints / 10, 10, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckSyntheticSize(tc.services, tc.eps); (err == nil) != tc.ok {
				t.Fatalf("CheckSyntheticSize(%d, %d) = %v, want ok %v", tc.services, tc.eps, err, tc.ok)
			}
			if tc.services <= 0 {
				return
			}
			// The last service of the size: in the plan exactly when the size is.
			st := &State{}
			_, err := AddSyntheticService(st, tc.services-1, tc.eps)
			if (err == nil) != tc.ok {
				t.Fatalf("AddSyntheticService(%d, %d) = %v, want ok %v", tc.services-1, tc.eps, err, tc.ok)
			}
			if err != nil {
				if len(st.Services) != 0 {
					t.Fatal("a failed AddSyntheticService changed the State")
				}
				return
			}
			for _, sp := range st.Services {
				if ip := sp.ClusterIPs[0]; !netip.MustParsePrefix("10.96.0.0/12").Contains(ip) || ip == netip.MustParseAddr("10.111.255.255") {
					t.Errorf("cluster IP %s outside 10.96.0.0/12 or its broadcast address", ip)
				}
			}
			for _, list := range st.Endpoints {
				for _, e := range list {
					if !SyntheticClusterCIDR.Contains(e.IP) || e.IP == netip.MustParseAddr("10.255.255.255") {
						t.Errorf("endpoint %s outside %s or its broadcast address", e.IP, SyntheticClusterCIDR)
					}
				}
			}
		})
	}
	// Clamped, not panicking, and small for a negative size.
	if st := SyntheticState(-5, 10); len(st.Services) != 0 {
		t.Errorf("SyntheticState(-5, 10): %d services", len(st.Services))
	}
	if st := SyntheticState(3, -1); len(st.Services) != 3 || len(st.Endpoints) != 0 {
		t.Errorf("SyntheticState(3, -1): %d services, %d with endpoints", len(st.Services), len(st.Endpoints))
	}
}
