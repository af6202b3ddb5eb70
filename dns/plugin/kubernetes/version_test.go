package kubernetes

import (
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
	"github.com/switchboard-dev/switchboard/dns/plugin"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/cache"
)

const versionCorefile = ". {\n kubernetes cluster.local in-addr.arpa ip6.arpa {\n pods verified\n }\n}\n"

var _ plugin.Versioned = (*Kubernetes)(nil)

// TestVersion: every store change that alters an answer changes the
// version of the names it alters, and leaves the names of other services
// and namespaces alone (their cache entries stay).
func TestVersion(t *testing.T) {
	t.Parallel()
	const (
		web        = "web.default.svc.cluster.local."
		webEP      = "10-244-6-10.web.default.svc.cluster.local."
		api        = "api.default.svc.cluster.local."
		alias      = "alias.default.svc.cluster.local." // ExternalName -> api.default.svc.cluster.local
		searchDef  = "example.com.default.svc.cluster.local."
		searchTest = "example.com.testns.svc.cluster.local."
		nsDefault  = "default.svc.cluster.local."
		svc1       = "svc1.testns.svc.cluster.local."
		podDefault = "10-244-0-10.default.pod.cluster.local."
		podTestns  = "10-244-3-10.testns.pod.cluster.local."
		ptrWeb     = "20.0.96.10.in-addr.arpa."
		apex       = "cluster.local."
	)
	setClusterIP := func(ns, name, ip string) func(*cluster.Store) error {
		return func(s *cluster.Store) error {
			_, err := s.UpdateFunc(cluster.KindService, ns, name, func(o cluster.Object) error {
				svc := o.(*corev1.Service)
				svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
				return nil
			})
			return err
		}
	}
	create := func(o cluster.Object) func(*cluster.Store) error {
		return func(s *cluster.Store) error { _, err := s.Create(o); return err }
	}
	cases := []struct {
		name      string
		setup     func(*cluster.Store) error // applied (and waited for) before the versions are read
		ready     string                     // a name whose answer shows that setup is applied
		change    func(*cluster.Store) error
		changed   []string
		unchanged []string
	}{
		{
			name: "2.3.1 a Service deleted: its names and its cluster IP's PTR change, its neighbours' do not",
			change: func(s *cluster.Store) error {
				return s.Delete(cluster.KindService, "default", "web", cluster.DeleteOptions{})
			},
			changed: []string{web, webEP, ptrWeb, apex},
			unchanged: []string{api, searchDef, nsDefault, podDefault, svc1, searchTest,
				"21.0.96.10.in-addr.arpa.", "10.1.244.10.in-addr.arpa.", "1.1.1.10.in-addr.arpa."},
		},
		{
			name:      "search path: example.com.default.svc.<zone> depends on Service com in default",
			change:    create(newSvc("default", "com", []string{"10.96.0.77"}, tcp("http", 80))),
			changed:   []string{searchDef, "com.default.svc.cluster.local.", "_http._tcp.com.default.svc.cluster.local.", apex},
			unchanged: []string{web, api, nsDefault, searchTest, svc1},
		},
		{
			name:      "2.3.1 a ClusterIP changed: the service's names and PTR records",
			change:    setClusterIP("default", "web", "10.96.0.78"),
			changed:   []string{web, ptrWeb, "78.0.96.10.in-addr.arpa."},
			unchanged: []string{api, searchDef, nsDefault, svc1},
		},
		{
			name: "2.4.1 headless: an endpoint that stops being ready leaves the A records, its own name and its PTR",
			change: func(s *cluster.Store) error {
				_, err := s.UpdateFunc(cluster.KindEndpointSlice, "default", "db-xyz", func(o cluster.Object) error {
					o.(*discoveryv1.EndpointSlice).Endpoints[1].Conditions.Ready = ptr.To(false)
					return nil
				})
				return err
			},
			changed:   []string{"db.default.svc.cluster.local.", "db-1.db.default.svc.cluster.local.", "_postgres._tcp.db.default.svc.cluster.local.", "11.1.244.10.in-addr.arpa."},
			unchanged: []string{web, api, searchDef, nsDefault, svc1, "21.0.96.10.in-addr.arpa."},
		},
		{
			name:      "a Namespace created: <ns>.svc.<zone> and every name in it",
			change:    create(namespace("ghost", nil)),
			changed:   []string{"svcg.ghost.svc.cluster.local.", "ghost.svc.cluster.local.", "x.ghost.svc.cluster.local.", "10-1-2-3.ghost.pod.cluster.local.", apex},
			unchanged: []string{web, searchDef, nsDefault, svc1, searchTest},
		},
		{
			name:      "2.6 pods verified: a pod created changes the pod names of its namespace only",
			change:    create(newPod("default", "late", "10.244.7.7")),
			changed:   []string{"10-244-7-7.default.pod.cluster.local.", podDefault},
			unchanged: []string{web, searchDef, nsDefault, podTestns, svc1},
		},
		{
			name:      "2.5 ExternalName: alias (CNAME to api.default) changes with its target",
			change:    setClusterIP("default", "api", "10.96.0.79"),
			changed:   []string{api, alias, apex},
			unchanged: []string{web, searchDef, nsDefault, svc1},
		},
		{
			name:      "2.5 ExternalName into another namespace changes with its target",
			setup:     create(externalName("testns", "xref", "web.default.svc.cluster.local")),
			ready:     "xref.testns.svc.cluster.local.",
			change:    setClusterIP("default", "web", "10.96.0.80"),
			changed:   []string{web, "xref.testns.svc.cluster.local."},
			unchanged: []string{svc1, searchTest, api, searchDef},
		},
		{
			name: "a change in namespace testns leaves the names of namespace default",
			change: func(s *cluster.Store) error {
				_, err := s.UpdateFunc(cluster.KindService, "testns", "svc1", func(o cluster.Object) error {
					svc := o.(*corev1.Service)
					svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "grpc", Port: 9090, Protocol: corev1.ProtocolTCP})
					return nil
				})
				return err
			},
			changed:   []string{svc1, "_grpc._tcp.svc1.testns.svc.cluster.local.", apex},
			unchanged: []string{web, api, searchDef, nsDefault, podDefault},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			store := fixtureStore(t)
			k := newPlugin(t, store, versionCorefile)
			if c.setup != nil {
				if err := c.setup(store); err != nil {
					t.Fatal(err)
				}
				deadline := time.Now().Add(time.Second)
				for serve(k, c.ready, dns.TypeCNAME).Rcode != dns.RcodeSuccess {
					if time.Now().After(deadline) {
						t.Fatalf("setup not applied within 1s")
					}
					time.Sleep(time.Millisecond)
				}
			}
			before := map[string]uint64{}
			for _, n := range append(append([]string(nil), c.changed...), c.unchanged...) {
				before[n] = k.Version(n)
			}
			if err := c.change(store); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(time.Second)
			for _, n := range c.changed {
				for k.Version(n) == before[n] {
					if time.Now().After(deadline) {
						t.Fatalf("the version of %s did not change within 1s", n)
					}
					time.Sleep(time.Millisecond)
				}
			}
			for _, n := range c.unchanged {
				if v := k.Version(n); v != before[n] {
					t.Errorf("the version of %s changed (%d -> %d): its cache entries would be dropped for nothing", n, before[n], v)
				}
			}
		})
	}
}

// TestVersionNames: names outside the zones have version 0 (they never
// change here); names compare in any case; a version costs no allocation.
func TestVersionNames(t *testing.T) {
	k := newPlugin(t, fixtureStore(t), versionCorefile)
	for _, n := range []string{"example.org.", "org.", ".", "local.", "arpa."} {
		if v := k.Version(n); v != 0 {
			t.Errorf("Version(%q) = %d, want 0: not in the plugin's zones", n, v)
		}
	}
	names := []string{
		"web.default.svc.cluster.local.", "example.com.default.svc.cluster.local.", "10-244-0-10.default.pod.cluster.local.",
		"default.svc.cluster.local.", "20.0.96.10.in-addr.arpa.", "cluster.local.", "dns-version.cluster.local.",
		"_http._tcp.api.default.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local.",
		"0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", "1.0.ip6.arpa.",
	}
	for _, n := range names {
		if v := k.Version(n); v == 0 {
			t.Errorf("Version(%q) = 0 in the zone", n)
		}
		if up := strings.ToUpper(n); k.Version(up) != k.Version(n) {
			t.Errorf("Version(%q) != Version(%q)", up, n)
		}
		if a := testing.AllocsPerRun(100, func() { k.Version(n) }); a != 0 {
			t.Errorf("Version(%q) allocates %v times", n, a)
		}
	}
	idle := New([]string{"cluster.local."})
	if idle.Version(names[0]) == k.Version(names[0]) {
		t.Error("a plugin that has not started reports the version of a started one")
	}
}

// TestCacheFollowsTheStore runs the kube-dns Corefile (`cache 30` in front
// of `kubernetes ... { ttl 30 }`) and changes the store under it: an
// answer in the cache is replaced as soon as the records behind it
// change, not when its 30 seconds run out, while the entries of other
// namespaces stay cached.
func TestCacheFollowsTheStore(t *testing.T) {
	t.Parallel()
	store := fixtureStore(t)
	reg := prometheus.NewRegistry()
	addr, _ := startCorefile(t, store, `
. {
    bind 127.0.0.1
    cache 30
    kubernetes cluster.local in-addr.arpa {
        pods verified
        ttl 30
    }
}
`, reg)
	hits := func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var n float64
		for _, mf := range mfs {
			if mf.GetName() == "coredns_cache_hits_total" {
				for _, m := range mf.GetMetric() {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	ask := func(name string, qtype uint16) answer { return answerOf(exchange(t, addr, name, qtype, false), false) }
	// cached asks twice and requires the second answer from the cache.
	cached := func(name string, qtype uint16, want answer) {
		t.Helper()
		if got := ask(name, qtype); !got.equal(want) {
			t.Fatalf("%s %s:\n got %s\nwant %s", name, dns.TypeToString[qtype], got, want)
		}
		h := hits()
		if got := ask(name, qtype); got.rcode != want.rcode || len(got.answer) != len(want.answer) {
			t.Fatalf("%s %s again: got %s", name, dns.TypeToString[qtype], got)
		}
		if d := hits() - h; d != 1 {
			t.Fatalf("%s %s was not answered from the cache (coredns_cache_hits_total +%v)", name, dns.TypeToString[qtype], d)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	update := func(kind *cluster.Kind, ns, name string, f func(cluster.Object)) {
		t.Helper()
		_, err := store.UpdateFunc(kind, ns, name, func(o cluster.Object) error { f(o); return nil })
		must(err)
	}
	const rule = "a service created, changed or deleted is answered accordingly within one second, with no restart"

	t.Run("deleted: "+rule, func(t *testing.T) {
		cached("web.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "web.default.svc.cluster.local. 30 IN A 10.96.0.20"))
		cached("20.0.96.10.in-addr.arpa.", dns.TypePTR, okAnswer(t, "20.0.96.10.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local."))
		must(store.Delete(cluster.KindService, "default", "web", cluster.DeleteOptions{}))
		eventually(t, addr, "web.default.svc.cluster.local.", dns.TypeA, nxAnswer)
		eventually(t, addr, "20.0.96.10.in-addr.arpa.", dns.TypePTR, nxAnswer)
	})
	t.Run("created: "+rule+" (the cached NXDOMAIN goes)", func(t *testing.T) {
		cached("fresh.default.svc.cluster.local.", dns.TypeA, nxAnswer)
		_, err := store.Create(newSvc("default", "fresh", []string{"10.96.0.60"}, tcp("http", 80)))
		must(err)
		eventually(t, addr, "fresh.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "fresh.default.svc.cluster.local. 30 IN A 10.96.0.60"))
	})
	t.Run("changed: "+rule+" (a ClusterIP, and the ExternalName pointing at it)", func(t *testing.T) {
		cached("api.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "api.default.svc.cluster.local. 30 IN A 10.96.0.21"))
		cached("alias.default.svc.cluster.local.", dns.TypeA, okAnswer(t,
			"alias.default.svc.cluster.local. 30 IN CNAME api.default.svc.cluster.local.", "api.default.svc.cluster.local. 30 IN A 10.96.0.21"))
		update(cluster.KindService, "default", "api", func(o cluster.Object) {
			s := o.(*corev1.Service)
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.99", []string{"10.96.0.99"}
		})
		eventually(t, addr, "api.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "api.default.svc.cluster.local. 30 IN A 10.96.0.99"))
		eventually(t, addr, "alias.default.svc.cluster.local.", dns.TypeA, okAnswer(t,
			"alias.default.svc.cluster.local. 30 IN CNAME api.default.svc.cluster.local.", "api.default.svc.cluster.local. 30 IN A 10.96.0.99"))
	})
	t.Run("changed: "+rule+" (a headless endpoint stops being ready)", func(t *testing.T) {
		cached("db.default.svc.cluster.local.", dns.TypeA, okAnswer(t,
			"db.default.svc.cluster.local. 30 IN A 10.244.1.10", "db.default.svc.cluster.local. 30 IN A 10.244.1.11"))
		cached("db-1.db.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "db-1.db.default.svc.cluster.local. 30 IN A 10.244.1.11"))
		update(cluster.KindEndpointSlice, "default", "db-xyz", func(o cluster.Object) {
			o.(*discoveryv1.EndpointSlice).Endpoints[1].Conditions.Ready = ptr.To(false) // db-1
		})
		eventually(t, addr, "db.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "db.default.svc.cluster.local. 30 IN A 10.244.1.10"))
		eventually(t, addr, "db-1.db.default.svc.cluster.local.", dns.TypeA, nxAnswer)
	})
	t.Run("a Namespace created: its services are answered within one second", func(t *testing.T) {
		cached("svcg.ghost.svc.cluster.local.", dns.TypeA, nxAnswer)
		_, err := store.Create(namespace("ghost", nil))
		must(err)
		eventually(t, addr, "svcg.ghost.svc.cluster.local.", dns.TypeA, okAnswer(t, "svcg.ghost.svc.cluster.local. 30 IN A 10.96.3.10"))
	})
	t.Run("pods verified: a pod created is answered within one second", func(t *testing.T) {
		cached("10-244-7-7.default.pod.cluster.local.", dns.TypeA, nxAnswer)
		_, err := store.Create(newPod("default", "late", "10.244.7.7"))
		must(err)
		eventually(t, addr, "10-244-7-7.default.pod.cluster.local.", dns.TypeA, okAnswer(t, "10-244-7-7.default.pod.cluster.local. 30 IN A 10.244.7.7"))
	})
	t.Run("changes in namespace default leave the cached answers of namespace testns", func(t *testing.T) {
		cached("svc1.testns.svc.cluster.local.", dns.TypeA, okAnswer(t, "svc1.testns.svc.cluster.local. 30 IN A 10.96.1.10"))
		cached("example.com.testns.svc.cluster.local.", dns.TypeA, nxAnswer)
		_, err := store.Create(newSvc("default", "newsvc", []string{"10.96.0.61"}, tcp("http", 80)))
		must(err)
		update(cluster.KindEndpointSlice, "default", "api-abc", func(o cluster.Object) {
			o.(*discoveryv1.EndpointSlice).Endpoints[0].Conditions.Ready = ptr.To(false)
		})
		eventually(t, addr, "newsvc.default.svc.cluster.local.", dns.TypeA, okAnswer(t, "newsvc.default.svc.cluster.local. 30 IN A 10.96.0.61"))
		eventually(t, addr, "10-244-0-10.api.default.svc.cluster.local.", dns.TypeA, nxAnswer)
		h := hits()
		if got := ask("svc1.testns.svc.cluster.local.", dns.TypeA); got.rcode != noerror || len(got.answer) != 1 {
			t.Fatalf("svc1.testns: %s", got)
		}
		if got := ask("example.com.testns.svc.cluster.local.", dns.TypeA); got.rcode != nxdomain {
			t.Fatalf("example.com.testns: %s", got)
		}
		if d := hits() - h; d != 2 {
			t.Errorf("the entries of namespace testns were dropped by changes in default: %v of 2 hits", d)
		}
	})
}

// BenchmarkVersion: what a cache hit pays to check that its entry is
// current, with 10,000 services loaded.
func BenchmarkVersion(b *testing.B) {
	store := bigStore(b, 10000, 10, 0)
	k := newPlugin(b, store, ". {\n kubernetes cluster.local in-addr.arpa\n}\n")
	for _, n := range []struct{ name, qname string }{
		{"service", "svc-1.ns-1.svc.cluster.local."},
		{"search-path miss", "example.com.ns-1.svc.cluster.local."},
		{"SRV", "_http._tcp.svc-1.ns-1.svc.cluster.local."},
		{"PTR", "2.0.96.10.in-addr.arpa."},
		{"outside the zones", "www.example.com."},
	} {
		b.Run(n.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k.Version(n.qname)
			}
		})
	}
}

// BenchmarkCacheHit: a cache hit in front of the plugin, with 10,000
// services loaded (the entry's version is checked on every hit).
func BenchmarkCacheHit(b *testing.B) {
	store := bigStore(b, 10000, 10, 0)
	env := dnstest.QuietEnv()
	env.Store = store
	inst := dnstest.StartInstance(b, ". {\n bind 127.0.0.1\n cache 30\n kubernetes cluster.local in-addr.arpa\n}\n", env)
	chain := inst.Configs[0].Handler("cache")
	if chain == nil {
		b.Fatal("no cache in the chain")
	}
	for _, n := range []struct{ name, qname string }{
		{"ClusterIP A", "svc-1.ns-1.svc.cluster.local."},
		{"search-path miss", "example.com.ns-1.svc.cluster.local."},
	} {
		r := new(dns.Msg)
		r.SetQuestion(n.qname, dns.TypeA)
		r.SetEdns0(1232, false)
		w := &discardAll{}
		_, _ = chain.ServeDNS(b.Context(), w, r)
		b.Run(n.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = chain.ServeDNS(b.Context(), w, r)
			}
		})
	}
}

// discardAll drops packed answers too (cache hits are written packed).
type discardAll struct{ discard }

func (discardAll) Write(b []byte) (int, error) { return len(b), nil }
