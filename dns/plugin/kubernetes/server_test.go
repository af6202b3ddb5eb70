package kubernetes

import (
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
)

// startCorefile runs a Corefile through the DNS server with store as the
// cluster store; it returns the server's UDP address and the plugin.
func startCorefile(t *testing.T, store *cluster.Store, corefile string, reg prometheus.Registerer) (string, *Kubernetes) {
	t.Helper()
	env := dnstest.QuietEnv()
	env.Store = store
	env.Registerer = reg
	inst := dnstest.StartInstance(t, corefile, env)
	var k *Kubernetes
	for _, cfg := range inst.Configs {
		if h, ok := cfg.Handler(pluginName).(*Kubernetes); ok {
			k = h
		}
	}
	if k == nil {
		t.Fatal("no kubernetes handler in the chain")
	}
	return dnstest.UDPAddr(t, inst), k
}

// dig asks the real dig and returns the records of its answer section.
func dig(t *testing.T, addr, name, qtype string) []string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("dig", "@"+host, "-p", port, "+noall", "+answer", "+nocookie", "+tries=1", "+time=5", name, qtype).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s %s: %v\n%s", name, qtype, err, out)
	}
	var rrs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("dig printed %q: %v", line, err)
		}
		rrs = append(rrs, rr.String())
	}
	sort.Strings(rrs)
	return rrs
}

// TestCorefileWithDig runs the plugin from a Corefile inside the DNS
// server (setup, OnStartup, chain) and asks it with dig. The ExternalName
// target outside the zone is resolved through the server again, as
// CoreDNS's upstream does: "foo.default.svc.cluster.local. 10 IN CNAME
// www.example.com. / www.example.com. 28715 IN A 192.0.2.53".
func TestCorefileWithDig(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig is not installed (Debian bind9-dnsutils; ./test.sh installs it)")
	}
	t.Parallel()
	store := fixtureStore(t)
	addr, k := startCorefile(t, store, `
. {
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        endpoint https://kubernetes.invalid:6443
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    testanswer 192.0.2.53
}
`, prometheus.NewRegistry())
	if !k.Ready() {
		t.Fatal("the plugin is not ready once the server started")
	}
	cases := []struct {
		rule, name, qtype string
		want              []string
	}{
		{"2.3.1 <service>.<ns>.svc.<zone>. <ttl> IN A <cluster-ip>", "web.default.svc.cluster.local", "A",
			[]string{"web.default.svc.cluster.local. 5 IN A 10.96.0.20"}},
		{"2.4.2 N x M SRV records", "_postgres._tcp.db.default.svc.cluster.local", "SRV",
			[]string{"_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
				"_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-1.db.default.svc.cluster.local."}},
		{"2.5 <service>.<ns>.svc.<zone>. <ttl> IN CNAME <extname>. (and the target's A through the server)", "ext.default.svc.cluster.local", "A",
			[]string{"ext.default.svc.cluster.local. 5 IN CNAME www.example.com.", "www.example.com. 30 IN A 192.0.2.53"}},
		{"2.3.3 PTR", "20.0.96.10.in-addr.arpa", "PTR", []string{"20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."}},
		{"fallthrough in-addr.arpa: the next plugin (testanswer, which answers A records) answers an unknown address",
			"1.1.1.10.in-addr.arpa", "PTR", []string{"1.1.1.10.in-addr.arpa. 30 IN A 192.0.2.53"}},
		{"2.6 pods insecure", "10-1-2-3.default.pod.cluster.local", "A", []string{"10-1-2-3.default.pod.cluster.local. 5 IN A 10.1.2.3"}},
		{"search path: NXDOMAIN", "example.com.default.svc.cluster.local", "A", nil},
	}
	for _, c := range cases {
		got := dig(t, addr, c.name, c.qtype)
		want := normalize(t, c.want)
		if !equalStrings(got, want) {
			t.Errorf("%s\ndig %s %s:\n got %q\nwant %q", c.rule, c.name, c.qtype, got, want)
		}
	}
	// The fallthrough went to testanswer, which answers A only: the
	// rcode tells it apart from our NXDOMAIN.
	m := exchange(t, addr, "example.com.default.svc.cluster.local.", dns.TypeA, false)
	if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
		t.Errorf("search-path miss: got %s with %d authority records, want NXDOMAIN with the SOA", dns.RcodeToString[m.Rcode], len(m.Ns))
	}
}

// eventually polls addr until the answer to name/qtype is want, for at
// most the second the issue allows ("a service created, changed or
// deleted is answered accordingly within one second").
func eventually(t *testing.T, addr, name string, qtype uint16, want answer) {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	var got answer
	for {
		got = answerOf(exchange(t, addr, name, qtype, false), false)
		if got.equal(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s not answered within 1s:\n got %s\nwant %s", name, dns.TypeToString[qtype], got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func okAnswer(t *testing.T, rrs ...string) answer {
	return answer{rcode: noerror, answer: normalize(t, rrs)}
}

var nxAnswer = answer{rcode: nxdomain, soa: true}

// TestRecordsFollowTheStore changes the store under a running server and
// asks again: no restart.
func TestRecordsFollowTheStore(t *testing.T) {
	t.Parallel()
	store := fixtureStore(t)
	addr, _ := startCorefile(t, store, `
. {
    bind 127.0.0.1
    kubernetes cluster.local in-addr.arpa {
        pods verified
    }
}
`, nil)
	mustDo := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// A service is created ...
	_, err := store.Create(newSvc("default", "fresh", []string{"10.96.0.60"}, tcp("http", 80)))
	mustDo("create service", err)
	eventually(t, addr, "fresh.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "fresh.default.svc.cluster.local. 5 IN A 10.96.0.60"))
	eventually(t, addr, "60.0.96.10.in-addr.arpa.", dns.TypePTR, okAnswer(t, "60.0.96.10.in-addr.arpa. 5 IN PTR fresh.default.svc.cluster.local."))

	// ... changed (a new named port) ...
	_, err = store.UpdateFunc(cluster.KindService, "default", "fresh", func(o cluster.Object) error {
		s := o.(*corev1.Service)
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "grpc", Port: 9090, Protocol: corev1.ProtocolTCP})
		return nil
	})
	mustDo("update service", err)
	eventually(t, addr, "_grpc._tcp.fresh.default.svc.cluster.local.", dns.TypeSRV, answer{rcode: noerror,
		answer: normalize(t, []string{"_grpc._tcp.fresh.default.svc.cluster.local. 5 IN SRV 0 100 9090 fresh.default.svc.cluster.local."}),
		extra:  normalize(t, []string{"fresh.default.svc.cluster.local. 5 IN A 10.96.0.60"})})

	// ... and deleted, with its reverse record.
	mustDo("delete service", store.Delete(cluster.KindService, "default", "fresh", cluster.DeleteOptions{}))
	eventually(t, addr, "fresh.default.svc.cluster.local.", dns.TypeA, nxAnswer)
	eventually(t, addr, "60.0.96.10.in-addr.arpa.", dns.TypePTR, nxAnswer)

	// An ExternalName changes its target.
	_, err = store.UpdateFunc(cluster.KindService, "default", "ext", func(o cluster.Object) error {
		o.(*corev1.Service).Spec.ExternalName = "www.example.org"
		return nil
	})
	mustDo("update ExternalName", err)
	eventually(t, addr, "ext.default.svc.cluster.local.", dns.TypeCNAME, okAnswer(t, "ext.default.svc.cluster.local. 5 IN CNAME www.example.org."))

	// Endpoints: a new ready endpoint of the headless service, then one
	// that stops being ready, then the slice goes away.
	_, err = store.UpdateFunc(cluster.KindEndpointSlice, "default", "db-xyz", func(o cluster.Object) error {
		s := o.(*discoveryv1.EndpointSlice)
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.1.13"}, Hostname: ptr.To("db-3")})
		s.Endpoints[1].Conditions.Ready = ptr.To(false) // db-1
		return nil
	})
	mustDo("update slice", err)
	eventually(t, addr, "db.default.svc.cluster.local.", dns.TypeA,
		okAnswer(t, "db.default.svc.cluster.local. 5 IN A 10.244.1.10", "db.default.svc.cluster.local. 5 IN A 10.244.1.13"))
	eventually(t, addr, "db-1.db.default.svc.cluster.local.", dns.TypeA, nxAnswer)
	eventually(t, addr, "13.1.244.10.in-addr.arpa.", dns.TypePTR, okAnswer(t, "13.1.244.10.in-addr.arpa. 5 IN PTR db-3.db.default.svc.cluster.local."))
	mustDo("delete slice", store.Delete(cluster.KindEndpointSlice, "default", "db-xyz", cluster.DeleteOptions{}))
	eventually(t, addr, "db.default.svc.cluster.local.", dns.TypeA, nxAnswer)

	// Namespaces: the service of a namespace that did not exist appears
	// with its Namespace; a deleted namespace takes its names along.
	_, err = store.Create(namespace("ghost", nil))
	mustDo("create namespace", err)
	eventually(t, addr, "svcg.ghost.svc.cluster.local.", dns.TypeA, okAnswer(t, "svcg.ghost.svc.cluster.local. 5 IN A 10.96.3.10"))
	mustDo("delete namespace", store.Delete(cluster.KindNamespace, "", "testns", cluster.DeleteOptions{}))
	eventually(t, addr, "svc1.testns.svc.cluster.local.", dns.TypeA, nxAnswer)

	// pods verified: a new pod, then a failed one (not listed by CoreDNS).
	_, err = store.Create(newPod("default", "late", "10.244.7.7"))
	mustDo("create pod", err)
	eventually(t, addr, "10-244-7-7.default.pod.cluster.local.", dns.TypeA, okAnswer(t, "10-244-7-7.default.pod.cluster.local. 5 IN A 10.244.7.7"))
	_, err = store.UpdateStatusFunc(cluster.KindPod, "default", "late", func(o cluster.Object) error {
		o.(*corev1.Pod).Status.Phase = corev1.PodFailed
		return nil
	})
	mustDo("fail pod", err)
	eventually(t, addr, "10-244-7-7.default.pod.cluster.local.", dns.TypeA, nxAnswer)

	// A ClusterIP service is replaced by a headless one of the same name.
	mustDo("delete api", store.Delete(cluster.KindService, "default", "api", cluster.DeleteOptions{}))
	_, err = store.Create(headless("default", "api", tcp("http", 80)))
	mustDo("create headless api", err)
	eventually(t, addr, "api.default.svc.cluster.local.", dns.TypeA,
		okAnswer(t, "api.default.svc.cluster.local. 5 IN A 10.244.0.10", "api.default.svc.cluster.local. 5 IN A 10.244.0.11"))
	eventually(t, addr, "21.0.96.10.in-addr.arpa.", dns.TypePTR, nxAnswer)
}

// TestReadiness: Ready is false until the initial lists are indexed, and
// until then a name the plugin cannot deny is SERVFAIL ("CoreDNS will
// answer SERVFAIL to any request made for a Kubernetes record that has not
// yet been synchronized").
func TestReadiness(t *testing.T) {
	t.Parallel()
	k, err := parse(controller(t, ". {\n kubernetes cluster.local\n}\n"), dnstest.QuietEnv().Log())
	if err != nil {
		t.Fatal(err)
	}
	if k.Ready() {
		t.Fatal("ready before Start")
	}
	m := serve(k, "nothere.default.svc.cluster.local.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || len(m.Ns) != 1 {
		t.Fatalf("before sync: got %s with %d authority records, want SERVFAIL with the SOA", dns.RcodeToString[m.Rcode], len(m.Ns))
	}
	store := fixtureStore(t)
	if err := k.Start(store); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Stop)
	if !k.Ready() {
		t.Fatal("not ready after Start")
	}
	if m := serve(k, "nothere.default.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Fatalf("after sync: got %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}

// TestSharedIndex: server blocks with the same index options share one
// index; it stops with the last of them.
func TestSharedIndex(t *testing.T) {
	t.Parallel()
	store := fixtureStore(t)
	a := newPlugin(t, store, ". {\n kubernetes cluster.local\n}\n")
	b := newPlugin(t, store, ". {\n kubernetes example.local {\n ttl 30\n }\n}\n")
	c := newPlugin(t, store, ". {\n kubernetes cluster.local {\n pods verified\n }\n}\n")
	if a.ix() != b.ix() {
		t.Error("two blocks with the same index options do not share the index")
	}
	if a.ix() == c.ix() {
		t.Error("pods verified shares the index of a block that does not watch pods")
	}
	if m := serve(b, "web.default.svc.example.local.", dns.TypeA); len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 30 {
		t.Errorf("the second block answers from the shared index: got %v", m.Answer)
	}
	idx := a.ix()
	a.Stop()
	if m := serve(b, "web.default.svc.example.local.", dns.TypeA); len(m.Answer) != 1 {
		t.Errorf("the index stopped with its first user: %v", m)
	}
	b.Stop()
	select {
	case <-idx.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the index runs on after its last user stopped")
	}
}

// TestNSRecords: NS at the apex names the service whose endpoint is the
// address the server is bound to, and ns.dns.<zone> holds it; without
// such an endpoint, the bound addresses as ns.dns.<zone>.
func TestNSRecords(t *testing.T) {
	t.Parallel()
	store := fixtureStore(t)
	for _, o := range []cluster.Object{
		namespace("kube-system", nil),
		newSvc("kube-system", "kube-dns", []string{"10.96.0.10"}, udp("dns", 53), tcp("dns-tcp", 53)),
		newSlice("kube-system", "kube-dns-1", "kube-dns", v4, []port{udp("dns", 53)}, ep{ip: "192.0.2.10", pod: "coredns-1"}),
	} {
		if _, err := store.Create(o); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		listen []string
		ns     []string
		extra  []string
	}{
		{[]string{"192.0.2.10"}, []string{"cluster.local. 5 IN NS kube-dns.kube-system.svc.cluster.local."},
			[]string{"kube-dns.kube-system.svc.cluster.local. 5 IN A 10.96.0.10"}},
		{[]string{"192.0.2.99", "127.0.0.1"}, []string{"cluster.local. 5 IN NS ns.dns.cluster.local."},
			[]string{"ns.dns.cluster.local. 5 IN A 192.0.2.99"}},
	}
	for _, c := range cases {
		k, err := parse(controller(t, ". {\n kubernetes cluster.local\n}\n"), dnstest.QuietEnv().Log())
		if err != nil {
			t.Fatal(err)
		}
		k.listenHosts = c.listen
		if err := k.Start(store); err != nil {
			t.Fatal(err)
		}
		got := answerOf(serve(k, "cluster.local.", dns.TypeNS), false)
		want := answer{rcode: noerror, answer: normalize(t, c.ns), extra: normalize(t, c.extra)}
		if !got.equal(want) {
			t.Errorf("bound to %v: NS\n got %s\nwant %s", c.listen, got, want)
		}
		ext := strings.Fields(c.extra[0])
		got = answerOf(serve(k, "ns.dns.cluster.local.", dns.TypeA), false)
		want = okAnswer(t, "ns.dns.cluster.local. 5 IN A "+ext[len(ext)-1])
		if !got.equal(want) {
			t.Errorf("bound to %v: ns.dns A\n got %s\nwant %s", c.listen, got, want)
		}
		k.Stop()
	}
}

// TestProgrammingLatencyMetric: a slice of a headless service carrying
// endpoints.kubernetes.io/last-change-trigger-time is observed in
// coredns_kubernetes_dns_programming_duration_seconds{service_kind="headless_with_selector"};
// one of a ClusterIP service is not ("The duration metric only supports
// the headless_with_selector service currently").
func TestProgrammingLatencyMetric(t *testing.T) {
	store := fixtureStore(t)
	reg := prometheus.NewRegistry()
	addr, _ := startCorefile(t, store, ". {\n bind 127.0.0.1\n kubernetes cluster.local\n}\n", reg)
	count := func() uint64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "coredns_kubernetes_dns_programming_duration_seconds" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "headless_with_selector" {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
		return 0
	}
	before := count()
	trigger := time.Now().Add(-200 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	for _, name := range []string{"db-xyz", "api-abc"} {
		_, err := store.UpdateFunc(cluster.KindEndpointSlice, "default", name, func(o cluster.Object) error {
			s := o.(*discoveryv1.EndpointSlice)
			s.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: trigger}
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.244.8.%d", len(s.Endpoints))}})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, addr, "10-244-8-3.db.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "10-244-8-3.db.default.svc.cluster.local. 5 IN A 10.244.8.3"))
	eventually(t, addr, "10-244-8-3.api.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "10-244-8-3.api.default.svc.cluster.local. 5 IN A 10.244.8.3"))
	// The observation follows the publication of the records.
	deadline := time.Now().Add(time.Second)
	for count()-before < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := count() - before; got != 1 {
		t.Errorf("programming duration observations: got %d, want 1 (the headless service's slice only)", got)
	}
}
