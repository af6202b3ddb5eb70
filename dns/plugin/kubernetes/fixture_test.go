package kubernetes

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// The fixture: services of every kind in several namespaces, with
// EndpointSlices written directly (no controllers), and pods for
// `pods verified`.

type port struct {
	name  string
	port  int32
	proto corev1.Protocol
}

func tcp(name string, p int32) port { return port{name, p, corev1.ProtocolTCP} }
func udp(name string, p int32) port { return port{name, p, corev1.ProtocolUDP} }

func newSvc(ns, name string, clusterIPs []string, ports ...port) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIPs: clusterIPs, Selector: map[string]string{"app": name}},
	}
	if len(clusterIPs) > 0 {
		s.Spec.ClusterIP = clusterIPs[0]
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: p.name, Port: p.port, Protocol: p.proto})
	}
	return s
}

func headless(ns, name string, ports ...port) *corev1.Service {
	return newSvc(ns, name, []string{corev1.ClusterIPNone}, ports...)
}

func externalName(ns, name, target string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: target},
	}
}

// ep is one endpoint of a slice.
type ep struct {
	ip       string
	hostname string
	pod      string
	ready    *bool
}

func newSlice(ns, name, svc string, family discoveryv1.AddressType, ports []port, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc,
			discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
		}},
		AddressType: family,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.name), Port: ptr.To(p.port), Protocol: ptr.To(p.proto)})
	}
	for _, e := range eps {
		x := discoveryv1.Endpoint{Addresses: []string{e.ip}, Conditions: discoveryv1.EndpointConditions{Ready: e.ready}}
		if e.hostname != "" {
			x.Hostname = ptr.To(e.hostname)
		}
		if e.pod != "" {
			x.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.pod}
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	return s
}

func newPod(ns, name, ip string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}},
	}
}

func withPodLabels(p *corev1.Pod, l map[string]string) *corev1.Pod { p.Labels = l; return p }

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

var (
	v4 = discoveryv1.AddressTypeIPv4
	v6 = discoveryv1.AddressTypeIPv6
)

// fixtureObjects is the cluster every query table is written against.
func fixtureObjects() []cluster.Object {
	notReady := ptr.To(false)
	withLabels := func(s *corev1.Service, l map[string]string) *corev1.Service { s.Labels = l; return s }
	publishNotReady := headless("default", "notready", tcp("web", 80))
	publishNotReady.Spec.PublishNotReadyAddresses = true
	return []cluster.Object{
		namespace("default", nil),
		namespace("testns", nil),
		namespace("other", map[string]string{"team": "a"}),
		namespace("empty-ns", nil),

		// ClusterIP, one unnamed port.
		newSvc("default", "web", []string{"10.96.0.20"}, tcp("", 80)),
		newSlice("default", "web-1", "web", v4, []port{tcp("", 80)}, ep{ip: "10.244.6.10", pod: "web-1"}),
		// ClusterIP, named ports (several protocols).
		newSvc("default", "api", []string{"10.96.0.21"}, tcp("http", 80), tcp("https", 443), udp("dns", 53)),
		newSlice("default", "api-abc", "api", v4, []port{tcp("http", 80), tcp("https", 443), udp("dns", 53)},
			ep{ip: "10.244.0.10", pod: "api-1", ready: ptr.To(true)},
			ep{ip: "10.244.0.11", pod: "api-2"},
			ep{ip: "10.244.0.12", pod: "api-3", ready: notReady}),
		// Headless, pods with hostname and subdomain (a StatefulSet).
		headless("default", "db", tcp("postgres", 5432)),
		newSlice("default", "db-xyz", "db", v4, []port{tcp("postgres", 5432)},
			ep{ip: "10.244.1.10", hostname: "db-0", pod: "db-0"},
			ep{ip: "10.244.1.11", hostname: "db-1", pod: "db-1"},
			ep{ip: "10.244.1.12", hostname: "db-2", pod: "db-2", ready: notReady}),
		// Headless without hostnames, a named and an unnamed port, two slices.
		headless("default", "cache", tcp("redis", 6379), tcp("", 6380)),
		newSlice("default", "cache-1", "cache", v4, []port{tcp("redis", 6379), tcp("", 6380)}, ep{ip: "10.244.2.10", pod: "cache-abc"}),
		newSlice("default", "cache-2", "cache", v4, []port{tcp("redis", 6379), tcp("", 6380)}, ep{ip: "10.244.2.11", pod: "cache-def"}),
		// ExternalName, outside and inside the cluster zone.
		externalName("default", "ext", "www.example.com"),
		externalName("default", "alias", "api.default.svc.cluster.local"),
		// IPv6 ClusterIP with IPv6 endpoints; dual-stack.
		newSvc("default", "v6", []string{"fd00:10:96::30"}, tcp("http", 80)),
		newSlice("default", "v6-1", "v6", v6, []port{tcp("http", 80)}, ep{ip: "fd00:10:244::10", pod: "pod6"}),
		newSvc("default", "dual", []string{"10.96.0.31", "fd00:10:96::31"}, tcp("http", 8080)),
		newSlice("default", "dual-4", "dual", v4, []port{tcp("http", 8080)}, ep{ip: "10.244.5.10", pod: "dual-1"}),
		newSlice("default", "dual-6", "dual", v6, []port{tcp("http", 8080)}, ep{ip: "fd00:10:244::50", pod: "dual-1"}),
		// Headless IPv6, with and without hostname.
		headless("default", "headless6", tcp("http", 80)),
		newSlice("default", "headless6-1", "headless6", v6, []port{tcp("http", 80)},
			ep{ip: "fd00:10:244::20", hostname: "h6", pod: "h6"},
			ep{ip: "fd00:10:244::21", pod: "h6-b"}),
		// No endpoints at all; headless without endpoints.
		newSvc("default", "empty", []string{"10.96.0.40"}, tcp("http", 80)),
		headless("default", "empty-headless", tcp("http", 80)),
		// publishNotReadyAddresses: the slice controller marks such endpoints ready.
		publishNotReady,
		newSlice("default", "notready-1", "notready", v4, []port{tcp("web", 80)}, ep{ip: "10.244.4.10", hostname: "nr-0", pod: "nr-0", ready: ptr.To(true)}),
		// A Service without ports.
		newSvc("default", "noports", []string{"10.96.0.50"}),
		// A slice whose service is gone.
		newSlice("default", "gone-1", "gone", v4, []port{tcp("http", 80)}, ep{ip: "10.244.9.9", pod: "gone-1"}),
		// Other namespaces.
		newSvc("testns", "svc1", []string{"10.96.1.10"}, tcp("http", 80)),
		newSlice("testns", "svc1-1", "svc1", v4, []port{tcp("http", 80)}, ep{ip: "10.244.3.10", pod: "tpod"}),
		withLabels(newSvc("other", "svc2", []string{"10.96.2.10"}, tcp("http", 80)), map[string]string{"app": "x"}),
		newSvc("other", "svc3", []string{"10.96.2.11"}, tcp("http", 80)),
		// A namespace without a Namespace object.
		newSvc("ghost", "svcg", []string{"10.96.3.10"}, tcp("http", 80)),

		withPodLabels(newPod("default", "api-1", "10.244.0.10"), map[string]string{"app": "api", "tier": "front"}),
		newPod("default", "db-0", "10.244.1.10"),
		newPod("default", "pod6", "fd00:10:244::10"),
		withPodLabels(newPod("testns", "tpod", "10.244.3.10"), map[string]string{"app": "x", "tier": "back"}),
	}
}

func fixtureStore(t testing.TB) *cluster.Store {
	t.Helper()
	s := cluster.NewStore()
	for _, o := range fixtureObjects() {
		if _, err := s.Create(o); err != nil {
			t.Fatalf("creating %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	return s
}

// trimmedFixtureStore is the fixture in a store with TrimStore's
// transforms, its objects first filled in with what a cluster adds and the
// trims drop (annotations, owners, container specs, conditions, node and
// zone of endpoints, not-ready endpoints), so that dropping them is tested.
func trimmedFixtureStore(t testing.TB) *cluster.Store {
	t.Helper()
	return trimmedFixture(t, false)
}

// compactFixtureStore is trimmedFixtureStore with the pods in a PodTable
// (NewPodTable) rather than in the store, as a DNS server fed by a cluster
// holds them (`switchboard dns --kubeconfig`).
func compactFixtureStore(t testing.TB) *cluster.Store {
	t.Helper()
	return trimmedFixture(t, true)
}

func trimmedFixture(t testing.TB, podTable bool) *cluster.Store {
	t.Helper()
	s := cluster.NewStore()
	TrimStore(s)
	var pods *PodTable
	if podTable {
		pods = NewPodTable(s)
	}
	for _, o := range fixtureObjects() {
		o.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"})
		o.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}})
		switch x := o.(type) {
		case *corev1.Pod:
			x.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: "u", Controller: ptr.To(true)}}
			x.Spec.Containers = []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}
			x.Spec.NodeName = "node-1"
			x.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			x.Status.HostIP = "192.0.2.1"
		case *corev1.Service:
			x.Spec.Selector = map[string]string{"app": x.Name}
			x.Spec.SessionAffinity = corev1.ServiceAffinityNone
			for i := range x.Spec.Ports {
				x.Spec.Ports[i].TargetPort = intstr.FromInt32(x.Spec.Ports[i].Port)
			}
		case *discoveryv1.EndpointSlice:
			for i := range x.Endpoints {
				x.Endpoints[i].NodeName = ptr.To("node-1")
				x.Endpoints[i].Zone = ptr.To("zone-a")
				x.Endpoints[i].Conditions.Serving = ptr.To(true)
				if x.Endpoints[i].TargetRef != nil {
					x.Endpoints[i].TargetRef.UID = "pod-uid"
				}
			}
		}
		if p, ok := o.(*corev1.Pod); ok && pods != nil {
			if err := pods.Add(p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := s.Create(o); err != nil {
			t.Fatalf("creating %T %s/%s: %v", o, o.GetNamespace(), o.GetName(), err)
		}
	}
	if pods != nil {
		pods.MarkSynced()
		if n := len(cluster.List[*corev1.Pod](s, "", nil)); n != 0 {
			t.Fatalf("the store holds %d pods, want none (they are in the PodTable)", n)
		}
	}
	// What the store keeps is trimmed.
	for _, p := range cluster.List[*corev1.Pod](s, "", nil) {
		if len(p.Annotations) != 0 || len(p.OwnerReferences) != 0 || len(p.Spec.Containers) != 0 || len(p.Status.Conditions) != 0 {
			t.Fatalf("pod %s/%s is not trimmed: %+v", p.Namespace, p.Name, p)
		}
	}
	for _, es := range cluster.List[*discoveryv1.EndpointSlice](s, "", nil) {
		for _, ep := range es.Endpoints {
			if ep.NodeName != nil || ep.Zone != nil || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) {
				t.Fatalf("endpoint slice %s/%s is not trimmed: %+v", es.Namespace, es.Name, ep)
			}
		}
	}
	return s
}

// controller returns a setup Controller for the kubernetes lines of a
// Corefile server block.
func controller(t testing.TB, corefile string) *dnsserver.Controller {
	t.Helper()
	blocks, err := caddyfile.Parse("Corefile", strings.NewReader(corefile), []string{"kubernetes", "bind"})
	if err != nil {
		t.Fatalf("parsing %q: %v", corefile, err)
	}
	if len(blocks) != 1 {
		t.Fatalf("want one server block in %q, got %d", corefile, len(blocks))
	}
	var zones []string
	for _, key := range blocks[0].Keys {
		zones = append(zones, plugin.Host(key))
	}
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenserTokens("Corefile", blocks[0].Tokens["kubernetes"]),
		Directive: "kubernetes",
		Config:    &dnsserver.Config{Zone: zones[0], Zones: zones},
	}
}

// newPlugin parses the kubernetes directive of a Corefile block, starts it
// on store with the server bound to 127.0.0.1 (so that, as for a CoreDNS
// with `bind 127.0.0.1`, no address of this machine is named in NS
// records) and stops it when the test ends.
func newPlugin(t testing.TB, store *cluster.Store, corefile string) *Kubernetes {
	t.Helper()
	k, err := parse(controller(t, corefile), dnstest.QuietEnv().Log())
	if err != nil {
		t.Fatalf("parse %q: %v", corefile, err)
	}
	k.listenHosts = []string{"127.0.0.1"}
	if err := k.Start(store); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(k.Stop)
	if !k.Ready() {
		t.Fatalf("not ready after Start")
	}
	return k
}

// answer is what a test compares of a response.
type answer struct {
	rcode  int
	answer []string // presentation form, sorted
	extra  []string
	soa    bool // an SOA in the authority section
}

func rrStrings(rrs []dns.RR, lower bool) []string {
	var out []string
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		if soa, ok := rr.(*dns.SOA); ok {
			c := *soa
			c.Serial = 0 // the serial is the time of the last change
			rr = &c
		}
		s := rr.String()
		if lower {
			s = strings.ToLower(s)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func answerOf(m *dns.Msg, lower bool) answer {
	a := answer{rcode: m.Rcode, answer: rrStrings(m.Answer, lower), extra: rrStrings(m.Extra, lower)}
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			a.soa = true
		}
	}
	return a
}

func (a answer) String() string {
	return fmt.Sprintf("rcode %s, soa %t\n  answer: %s\n  extra: %s", dns.RcodeToString[a.rcode], a.soa,
		strings.Join(a.answer, "\n          "), strings.Join(a.extra, "\n          "))
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (a answer) equal(b answer) bool {
	return a.rcode == b.rcode && a.soa == b.soa && equalStrings(a.answer, b.answer) && equalStrings(a.extra, b.extra)
}

// normalize parses each record and prints it back, so that expectations
// can be written with spaces.
func normalize(t testing.TB, rrs []string) []string {
	t.Helper()
	var out []string
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", s, err)
		}
		out = append(out, rr.String())
	}
	sort.Strings(out)
	return out
}

// serve asks h one question directly, writing what a server writes when
// the handler did not (SERVFAIL, REFUSED ...).
func serve(h plugin.Handler, name string, qtype uint16) *dns.Msg {
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	rec := dnstest.NewRecorder(&dnstest.Writer{})
	rcode, _ := h.ServeDNS(context.Background(), rec, r)
	if !plugin.ClientWrite(rcode) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		return m
	}
	if rec.Msg == nil {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		return m
	}
	return rec.Msg
}

// startServer serves h with miekg/dns on 127.0.0.1:0 over UDP and TCP, as
// the DNS server does: a code the handler did not write is written for it.
func startServer(t testing.TB, h plugin.Handler) string {
	t.Helper()
	pc, ln := listenBoth(t)
	addr := pc.LocalAddr().String()
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		w = &scrubWriter{ResponseWriter: w, req: r}
		rcode, _ := h.ServeDNS(context.Background(), w, r)
		if !plugin.ClientWrite(rcode) {
			m := new(dns.Msg)
			m.SetRcode(r, rcode)
			_ = w.WriteMsg(m)
		}
	})
	udpSrv := &dns.Server{PacketConn: pc, Handler: handler}
	tcpSrv := &dns.Server{Listener: ln, Handler: handler}
	started := make(chan struct{}, 2)
	udpSrv.NotifyStartedFunc = func() { started <- struct{}{} }
	tcpSrv.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { _ = udpSrv.ActivateAndServe() }()
	go func() { _ = tcpSrv.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udpSrv.Shutdown()
		_ = tcpSrv.Shutdown()
	})
	for i := 0; i < 2; i++ {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("DNS server did not start")
		}
	}
	return addr
}

// listenBoth binds one port of 127.0.0.1 for UDP and TCP.
func listenBoth(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	for i := 0; i < 50; i++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		_ = pc.Close()
	}
	t.Fatal("no port of 127.0.0.1 free for both UDP and TCP")
	return nil, nil
}

// scrubWriter fits answers to the client's buffer as the server does.
type scrubWriter struct {
	dns.ResponseWriter
	req *dns.Msg
}

func (w *scrubWriter) WriteMsg(m *dns.Msg) error {
	state := request.Request{W: w.ResponseWriter, Req: w.req}
	return w.ResponseWriter.WriteMsg(state.Scrub(m))
}

// exchange asks addr over UDP (TCP when tcp is set).
func exchange(t testing.TB, addr, name string, qtype uint16, tcp bool) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: 5 * time.Second}
	if tcp {
		c.Net = "tcp"
	}
	r := new(dns.Msg)
	r.SetQuestion(name, qtype)
	r.SetEdns0(4096, false)
	m, _, err := c.Exchange(r, addr)
	if err != nil {
		t.Fatalf("%s %s @%s: %v", name, dns.TypeToString[qtype], addr, err)
	}
	return m
}
