package kubernetes

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

// bigStore holds services Services in 100 namespaces, each with one
// EndpointSlice of perSvc ready endpoints (every tenth service headless,
// the endpoints of those with hostnames), and pods Pods.
func bigStore(tb testing.TB, services, perSvc, pods int) *cluster.Store {
	tb.Helper()
	s := cluster.NewStore()
	must := func(_ cluster.Object, err error) {
		if err != nil {
			tb.Fatal(err)
		}
	}
	for n := 0; n < 100; n++ {
		must(s.Create(namespace(fmt.Sprintf("ns-%d", n), nil)))
	}
	addr := func(base netip.Addr, n int) string {
		b := base.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(n)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
	}
	svcBase, epBase, podBase := netip.MustParseAddr("10.96.0.0"), netip.MustParseAddr("10.128.0.0"), netip.MustParseAddr("10.192.0.0")
	for i := 0; i < services; i++ {
		ns, name := fmt.Sprintf("ns-%d", i%100), fmt.Sprintf("svc-%d", i)
		var svc *corev1.Service
		if i%10 == 0 {
			svc = headless(ns, name, tcp("http", 80))
		} else {
			svc = newSvc(ns, name, []string{addr(svcBase, i+1)}, tcp("http", 80), tcp("metrics", 9090))
		}
		must(s.Create(svc))
		var eps []ep
		for j := 0; j < perSvc; j++ {
			e := ep{ip: addr(epBase, i*perSvc+j), pod: fmt.Sprintf("%s-%d", name, j)}
			if i%10 == 0 {
				e.hostname = fmt.Sprintf("%s-%d", name, j)
			}
			eps = append(eps, e)
		}
		must(s.Create(newSlice(ns, name+"-abcde", name, v4, []port{tcp("http", 80), tcp("metrics", 9090)}, eps...)))
	}
	for p := 0; p < pods; p++ {
		must(s.Create(newPod(fmt.Sprintf("ns-%d", p%100), fmt.Sprintf("pod-%d", p), addr(podBase, p))))
	}
	return s
}

// discard is a ResponseWriter that drops the answer: the benchmarks
// measure the plugin, not the server's packing.
type discard struct{ dnstest.Writer }

func (discard) WriteMsg(*dns.Msg) error { return nil }

// BenchmarkLookup answers the plugin's hot questions with 10,000 services
// (10 endpoints each) loaded.
func BenchmarkLookup(b *testing.B) {
	store := bigStore(b, 10000, 10, 0)
	k := newPlugin(b, store, ". {\n kubernetes cluster.local in-addr.arpa {\n pods insecure\n }\n}\n")
	// svc-1 is a ClusterIP service (10.96.0.2), svc-10 a headless one
	// whose endpoints are 10.128.0.100-109.
	cases := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		n     int // answer records
	}{
		{"ClusterIP A", "svc-1.ns-1.svc.cluster.local.", dns.TypeA, noerror, 1},
		{"ClusterIP AAAA (NODATA)", "svc-1.ns-1.svc.cluster.local.", dns.TypeAAAA, noerror, 0},
		{"headless A (10 endpoints)", "svc-10.ns-10.svc.cluster.local.", dns.TypeA, noerror, 10},
		{"endpoint A", "svc-10-3.svc-10.ns-10.svc.cluster.local.", dns.TypeA, noerror, 1},
		{"ClusterIP SRV", "_http._tcp.svc-1.ns-1.svc.cluster.local.", dns.TypeSRV, noerror, 1},
		{"headless SRV (10 endpoints)", "_http._tcp.svc-10.ns-10.svc.cluster.local.", dns.TypeSRV, noerror, 10},
		{"PTR of a cluster IP", "2.0.96.10.in-addr.arpa.", dns.TypePTR, noerror, 1},
		{"PTR of an endpoint", "103.0.128.10.in-addr.arpa.", dns.TypePTR, noerror, 1},
		{"pod A (insecure)", "10-1-2-3.ns-1.pod.cluster.local.", dns.TypeA, noerror, 1},
		{"search-path miss <name>.<ns>.svc.<zone>", "example.com.ns-1.svc.cluster.local.", dns.TypeA, nxdomain, 0},
		{"search-path miss <name>.svc.<zone>", "example.com.svc.cluster.local.", dns.TypeA, nxdomain, 0},
		{"search-path miss <name>.<zone>", "example.com.cluster.local.", dns.TypeA, nxdomain, 0},
	}
	ctx := context.Background()
	for _, c := range cases {
		r := new(dns.Msg)
		r.SetQuestion(c.qname, c.qtype)
		if m := serve(k, c.qname, c.qtype); m.Rcode != c.rcode || len(m.Answer) != c.n {
			b.Fatalf("%s: got %s with %d records, want %s with %d", c.qname, dns.RcodeToString[m.Rcode], len(m.Answer), dns.RcodeToString[c.rcode], c.n)
		}
		b.Run(c.name, func(b *testing.B) {
			w := &discard{}
			b.ReportAllocs()
			for b.Loop() {
				_, _ = k.ServeDNS(ctx, w, r)
			}
		})
	}
	b.Run("ClusterIP A, 2 goroutines", func(b *testing.B) {
		r := new(dns.Msg)
		r.SetQuestion("svc-1.ns-1.svc.cluster.local.", dns.TypeA)
		b.ReportAllocs()
		b.SetParallelism(1)
		b.RunParallel(func(pb *testing.PB) {
			w := &discard{}
			for pb.Next() {
				_, _ = k.ServeDNS(ctx, w, r)
			}
		})
	})
}

// BenchmarkIndexMemory reports the heap the index takes for 10,000
// services of 10 endpoints and 100,000 pods (pods verified, so that pods
// are indexed), beyond the store's own objects; and how long the initial
// build takes.
func BenchmarkIndexMemory(b *testing.B) {
	store := bigStore(b, 10000, 10, 100000)
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		k, err := parse(controller(b, ". {\n kubernetes cluster.local in-addr.arpa {\n pods verified\n }\n}\n"), dnstest.QuietEnv().Log())
		if err != nil {
			b.Fatal(err)
		}
		k.listenHosts = []string{"127.0.0.1"}
		if err := k.Start(store); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "index-bytes")
		ix := k.ix()
		b.ReportMetric(float64(ix.services.len()), "services")
		b.ReportMetric(float64(ix.epByIP.len()), "endpoint-ips")
		b.ReportMetric(float64(ix.podByIP.len()), "pod-ips")
		if m := serve(k, "10-192-0-5.ns-5.pod.cluster.local.", dns.TypeA); len(m.Answer) != 1 {
			b.Fatalf("pod lookup: %v", m)
		}
		k.Stop()
	}
}

// BenchmarkPodTableMemory reports the heap a PodTable takes for 100,000
// pods (in 100 namespaces, each with two labels shared by ten pods, as a
// ReplicaSet's), against what the same pods take as trimmed corev1.Pods
// in a store.
func BenchmarkPodTableMemory(b *testing.B) {
	const n = 100000
	pod := func(p int) *corev1.Pod {
		x := newPod(fmt.Sprintf("ns-%d", p%100), fmt.Sprintf("pod-%d", p), netip.AddrFrom4([4]byte{10, 192, byte(p >> 8), byte(p)}).String())
		x.Labels = map[string]string{"app": fmt.Sprintf("app-%d", p/10), "pod-template-hash": "5d8f7c9b4"}
		return x
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for b.Loop() {
		before := heap()
		t := NewPodTable(nil)
		for p := 0; p < n; p++ {
			_ = t.Add(pod(p))
		}
		b.ReportMetric(float64(heap()-before)/n, "table-bytes/pod")
		runtime.KeepAlive(t)
		before = heap()
		s := cluster.NewStore()
		TrimStore(s)
		for p := 0; p < n; p++ {
			if _, err := s.Create(pod(p)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(heap()-before)/n, "store-bytes/pod")
		runtime.KeepAlive(s)
	}
}
