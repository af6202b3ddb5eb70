package serviceproxy

import (
	"io"
	"log/slog"
	"slices"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// harness drives a tracker and a state builder as the Proxier does,
// without a store or a backend.
type harness struct {
	t       *testing.T
	tr      *tracker
	b       *stateBuilder
	queued  int
	elig    []bool
	lastErr bool
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.tr = newTracker("node-a", log, NewMetrics(nil, ""), func() { h.queued++ }, func(ok bool) { h.elig = append(h.elig, ok) })
	h.b = newStateBuilder(Node{Name: "node-a"}, nil)
	return h
}

// sync builds the next State; ok tells whether the backend applied it.
func (h *harness) sync(full, ok bool) *State {
	st := h.b.build(h.tr.checkout(), full)
	if ok {
		h.b.markApplied(st)
	}
	return st
}

func (h *harness) svc(s *corev1.Service)                 { h.tr.serviceHandler().OnAdd(s, false) }
func (h *harness) delSvc(s *corev1.Service)              { h.tr.serviceHandler().OnDelete(s) }
func (h *harness) slice(s *discoveryv1.EndpointSlice)    { h.tr.sliceHandler().OnAdd(s, false) }
func (h *harness) delSlice(s *discoveryv1.EndpointSlice) { h.tr.sliceHandler().OnDelete(s) }

func spn(name, port string, proto corev1.Protocol) ServicePortName {
	return ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}, Port: port, Protocol: proto}
}

func changedNames(st *State) []string {
	var out []string
	for n, ok := range st.Changed {
		if ok {
			out = append(out, n.String()+"/"+string(n.Protocol))
		}
	}
	sort.Strings(out)
	return out
}

func strs(ns []ServicePortName) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.String()+"/"+string(n.Protocol))
	}
	return out
}

func dnsSvc(name, ip string) *corev1.Service {
	return svcObj("ns", name, func(s *corev1.Service) {
		s.Spec.ClusterIP, s.Spec.ClusterIPs = ip, []string{ip}
		s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}
	})
}

func dnsSlice(svc, name string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return sliceObj("ns", name, svc, discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("dns", 5353, corev1.ProtocolUDP)}, eps...)
}

func TestStateChangesAgainstAppliedState(t *testing.T) {
	h := newHarness(t)
	h.svc(dnsSvc("dns", "10.96.0.10"))
	h.svc(svcObj("ns", "web", nil))
	h.svc(svcObj("ns", "headless", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", []string{"None"} }))
	h.slice(dnsSlice("dns", "dns-1", sliceEp("10.0.0.1"), sliceEp("10.0.0.2")))
	h.slice(sliceObj("ns", "web-1", "web", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)}, sliceEp("10.0.1.1")))

	dns := spn("dns", "dns", corev1.ProtocolUDP)
	web := spn("web", "http", corev1.ProtocolTCP)

	// The first sync is Full, lists every service port as changed, and
	// treats every UDP service with a serving endpoint as newly active
	// (the previous endpoints map is empty).
	st1 := h.sync(false, true)
	if !st1.Full || !slices.Equal(changedNames(st1), []string{"ns/dns:dns/UDP", "ns/web:http/TCP"}) {
		t.Fatalf("first sync: Full=%v Changed=%v", st1.Full, changedNames(st1))
	}
	if len(st1.Services) != 2 || st1.Services[spn("headless", "http", corev1.ProtocolTCP)] != nil {
		t.Fatalf("services = %v (headless services are not proxied)", st1.Services)
	}
	if !slices.Equal(strs(st1.StaleUDPServices), []string{"ns/dns:dns/UDP"}) {
		t.Fatalf("StaleUDPServices = %v", strs(st1.StaleUDPServices))
	}

	// A UDP endpoint goes away and another stops serving: "Find the UDP
	// endpoints that we were sending traffic to in oldEndpointsMap, but
	// are no longer sending to newEndpointsMap."
	h.slice(dnsSlice("dns", "dns-1", sliceEp("10.0.0.2", ready(false), serving(false)), sliceEp("10.0.0.3")))
	st2 := h.sync(false, true)
	if st2.Full {
		t.Fatal("second sync is Full")
	}
	if !slices.Equal(changedNames(st2), []string{"ns/dns:dns/UDP"}) {
		t.Fatalf("Changed = %v", changedNames(st2))
	}
	if got := names(st2.StaleUDPEndpoints[dns]); !slices.Equal(got, []string{"10.0.0.1:5353", "10.0.0.2:5353"}) {
		t.Fatalf("StaleUDPEndpoints = %v", got)
	}
	if len(st2.StaleUDPServices) != 0 {
		t.Fatalf("StaleUDPServices = %v (the service had serving endpoints)", strs(st2.StaleUDPServices))
	}
	if st2.Services[web] != st1.Services[web] || &st2.Endpoints[web][0] != &st1.Endpoints[web][0] {
		t.Fatal("an unchanged service port must keep its *ServicePort and endpoint slice")
	}

	// All endpoints go, then one comes back: "Detect services that have
	// gone from 0 to non-0 ready endpoints."
	h.delSlice(dnsSlice("dns", "dns-1"))
	st3 := h.sync(false, true)
	if len(st3.Endpoints[dns]) != 0 || !st3.Changed[dns] {
		t.Fatalf("endpoints %v changed %v", st3.Endpoints[dns], st3.Changed)
	}
	h.slice(dnsSlice("dns", "dns-2", sliceEp("10.0.0.9")))
	st4 := h.sync(false, true)
	if !slices.Equal(strs(st4.StaleUDPServices), []string{"ns/dns:dns/UDP"}) {
		t.Fatalf("StaleUDPServices = %v", strs(st4.StaleUDPServices))
	}

	// A sync that fails: the next one is computed against the last
	// applied state, so changes of the failed one are not lost.
	h.delSvc(svcObj("ns", "web", nil))
	st5 := h.sync(true, false) // the backend fails
	if !slices.Equal(strs(st5.Removed), []string{"ns/web:http/TCP"}) {
		t.Fatalf("Removed = %v", strs(st5.Removed))
	}
	h.slice(dnsSlice("dns", "dns-2", sliceEp("10.0.0.10")))
	st6 := h.sync(true, true) // the retry is Full
	if !st6.Full {
		t.Fatal("retry not Full")
	}
	if !slices.Equal(strs(st6.Removed), []string{"ns/web:http/TCP"}) || st6.RemovedServices[web] != st4.Services[web] {
		t.Fatalf("retry: Removed = %v RemovedServices = %v", strs(st6.Removed), st6.RemovedServices)
	}
	if got := names(st6.StaleUDPEndpoints[dns]); !slices.Equal(got, []string{"10.0.0.9:5353"}) {
		t.Fatalf("retry: StaleUDPEndpoints = %v", got)
	}
	if !slices.Equal(changedNames(st6), []string{"ns/dns:dns/UDP"}) {
		t.Fatalf("Full retry: Changed = %v (every service port)", changedNames(st6))
	}

	// Applied: the next sync only sees what changed since.
	h.svc(svcObj("ns", "web2", nil))
	st7 := h.sync(false, true)
	if len(st7.Removed) != 0 || !slices.Equal(changedNames(st7), []string{"ns/web2:http/TCP"}) {
		t.Fatalf("after success: Removed %v Changed %v", strs(st7.Removed), changedNames(st7))
	}
	// The States handed out before are untouched.
	if st1.Services[web] == nil || len(st3.Services) != 2 {
		t.Fatal("an earlier State was modified")
	}
}

func TestTrackerIgnoresNoOpChanges(t *testing.T) {
	h := newHarness(t)
	s := svcObj("ns", "web", nil)
	h.svc(s)
	h.sync(false, true)
	before := h.queued

	// A status-only change that does not touch load-balancer IPs, a resync
	// (same object) and a headless service added: nothing to sync.
	s2 := s.DeepCopy()
	s2.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue}}
	h.tr.serviceHandler().OnUpdate(s, s2)
	h.tr.serviceHandler().OnUpdate(s2, s2)
	h.svc(svcObj("ns", "none", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "None", nil }))
	sl := sliceObj("ns", "web-1", "web", discoveryv1.AddressTypeIPv4, nil, sliceEp("10.0.0.1"))
	h.slice(sl)
	afterSlice := h.queued
	sl2 := sl.DeepCopy()
	sl2.Annotations = map[string]string{"x": "y"}
	h.tr.sliceHandler().OnUpdate(sl, sl2)
	if h.queued != afterSlice || afterSlice != before+1 {
		t.Fatalf("queued %d → %d → %d: only the new slice may queue a sync", before, afterSlice, h.queued)
	}
	// A slice without the kubernetes.io/service-name label is ignored.
	orphan := sliceObj("ns", "orphan", "", discoveryv1.AddressTypeIPv4, nil, sliceEp("10.0.0.1"))
	h.slice(orphan)
	if h.queued != afterSlice {
		t.Fatal("a slice without the service-name label queued a sync")
	}
}

func TestTrackerNodeLabelsForceFullSync(t *testing.T) {
	h := newHarness(t)
	h.svc(svcObj("ns", "web", nil))
	h.sync(false, true)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{corev1.LabelTopologyZone: "zone-a"}}}
	h.tr.nodeHandler().OnAdd(node, false)
	// Another node is none of our business.
	h.tr.nodeHandler().OnAdd(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b", Labels: map[string]string{corev1.LabelTopologyZone: "zone-b"}}}, false)
	st := h.sync(false, true)
	if !st.Full || st.Node.Zone != "zone-a" || st.Node.Name != "node-a" {
		t.Fatalf("Full=%v node=%+v", st.Full, st.Node)
	}
	// ToBeDeletedByClusterAutoscaler makes the node ineligible.
	tainted := node.DeepCopy()
	tainted.Spec.Taints = []corev1.Taint{{Key: ToBeDeletedTaint, Effect: corev1.TaintEffectNoSchedule}}
	h.tr.nodeHandler().OnUpdate(node, tainted)
	h.tr.nodeHandler().OnDelete(tainted)
	if !slices.Equal(h.elig, []bool{false}) {
		t.Fatalf("eligibility changes = %v", h.elig)
	}
}

func TestBuildState(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a", Labels: map[string]string{corev1.LabelTopologyZone: "zone-a"}}}
	st := BuildState(Node{Name: "node-a"}, nil,
		svcObj("ns", "web", nil),
		sliceObj("ns", "web-1", "web", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)}, sliceEp("10.0.0.1", onNode("node-a"))),
		node, "ignored")
	web := spn("web", "http", corev1.ProtocolTCP)
	if !st.Full || !st.Changed[web] || st.Node.Zone != "zone-a" || len(st.Endpoints[web]) != 1 || !st.Endpoints[web][0].IsLocal {
		t.Fatalf("state: Full=%v changed=%v zone=%q endpoints=%v", st.Full, st.Changed, st.Node.Zone, st.Endpoints[web])
	}
}

// kube-proxy watches Services and EndpointSlices with the label selector
// "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless":
// an object with either label is not proxied, and gaining the label is a
// delete.
func TestServiceProxyNameLabelIsNotProxied(t *testing.T) {
	h := newHarness(t)
	other := dnsSvc("other", "10.96.0.11")
	other.Labels = map[string]string{LabelServiceProxyName: "someone-else"}
	h.svc(other)
	h.svc(dnsSvc("dns", "10.96.0.10"))
	h.slice(dnsSlice("dns", "dns-1", sliceEp("10.0.0.1")))
	st := h.sync(false, true)
	if len(st.Services) != 1 || st.Services[spn("other", "dns", corev1.ProtocolUDP)] != nil {
		t.Fatalf("services = %v, want only ns/dns", st.Services)
	}
	dns := spn("dns", "dns", corev1.ProtocolUDP)
	if len(st.Endpoints[dns]) != 1 {
		t.Fatalf("endpoints of ns/dns = %v", st.Endpoints[dns])
	}

	// The service, then its slice, gain the label: both are gone.
	labelled := dnsSvc("dns", "10.96.0.10")
	labelled.Labels = map[string]string{LabelServiceProxyName: "switchboard-dns"}
	h.tr.serviceHandler().OnUpdate(dnsSvc("dns", "10.96.0.10"), labelled)
	sl := dnsSlice("dns", "dns-1", sliceEp("10.0.0.1"))
	sl.Labels[corev1.IsHeadlessService] = ""
	h.tr.sliceHandler().OnUpdate(dnsSlice("dns", "dns-1", sliceEp("10.0.0.1")), sl)
	st = h.sync(false, true)
	if len(st.Services) != 0 || len(st.Endpoints[dns]) != 0 {
		t.Fatalf("after labelling: services %v endpoints %v, want none", st.Services, st.Endpoints)
	}
}
