package all_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin/kubernetes"
	_ "github.com/switchboard-dev/switchboard/dns/plugins/all"
)

// packWriter packs the answer into a reused buffer, as the server's UDP
// writer does, and keeps only its rcode.
type packWriter struct {
	dnstest.Writer
	buf   []byte
	rcode int
}

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.PackBuffer(w.buf)
	if err != nil {
		return err
	}
	w.buf, w.rcode = b[:cap(b)], m.Rcode
	return nil
}

func (w *packWriter) Write(b []byte) (int, error) {
	w.rcode = int(b[3] & 0xF)
	return len(b), nil
}

func addrPlus(base netip.Addr, n int) string {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
}

// BenchmarkKubeDNSChain is the server's whole work for one query off the
// wire (unpack, chain, pack) with CoreDNS's kube-dns Corefile (errors,
// kubernetes, forward, cache, loadbalance) over 1,000 services of 10
// endpoints and, for pods verified, 10,000 pods in a PodTable: the
// allocations per query are the garbage a server makes under load. The
// internal names are asked in turn over 1,000 services, so that after the
// first round each is a cache hit, as in bench/dns.
func BenchmarkKubeDNSChain(b *testing.B) {
	for _, mode := range []string{"insecure", "verified"} {
		b.Run("pods "+mode, func(b *testing.B) {
			store := cluster.NewStore()
			kubernetes.TrimStore(store)
			pods := kubernetes.NewPodTable(store)
			must := func(_ cluster.Object, err error) {
				if err != nil {
					b.Fatal(err)
				}
			}
			const services = 1000
			svcBase, podBase := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("10.128.0.10")
			for n := 0; n < 10; n++ {
				must(store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns%d", n)}}))
			}
			must(store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}))
			for i := 0; i < services; i++ {
				ns, name, ip := fmt.Sprintf("ns%d", i/100), fmt.Sprintf("svc%d", i), addrPlus(svcBase, i)
				must(store.Create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
					Spec: corev1.ServiceSpec{ClusterIP: ip, ClusterIPs: []string{ip}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}))
				sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
					AddressType: discoveryv1.AddressTypeIPv4,
					Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}}}
				for e := 0; e < 10; e++ {
					p := i*10 + e
					sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{addrPlus(podBase, p)}})
					if mode == "verified" {
						_ = pods.Add(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", p), Namespace: ns},
							Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: addrPlus(podBase, p)}})
					}
				}
				must(store.Create(sl))
			}
			pods.MarkSynced()
			corefile := fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods %s
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    forward . 127.0.0.1:9 {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
`, mode)
			inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0", Env: &dnsserver.Env{Store: store, Logger: dnstest.QuietEnv().Logger}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = inst.Stop() })
			if err := inst.Start(); err != nil {
				b.Fatal(err)
			}
			srv := inst.Servers()[0]
			packed := func(names []string) [][]byte {
				var qs [][]byte
				for _, n := range names {
					m := new(dns.Msg)
					m.SetQuestion(n, dns.TypeA)
					q, err := m.Pack()
					if err != nil {
						b.Fatal(err)
					}
					qs = append(qs, q)
				}
				return qs
			}
			var internal, miss, pod []string
			for i := 0; i < services; i++ {
				internal = append(internal, fmt.Sprintf("svc%d.ns%d.svc.cluster.local.", i, i/100))
				miss = append(miss, fmt.Sprintf("host%d.example.com.ns%d.svc.cluster.local.", i, i/100))
				ip := net.ParseIP(addrPlus(podBase, i*10)).To4()
				pod = append(pod, fmt.Sprintf("%d-%d-%d-%d.ns%d.pod.cluster.local.", ip[0], ip[1], ip[2], ip[3], i/100))
			}
			for _, wl := range []struct {
				name  string
				qs    [][]byte
				rcode int
			}{
				{"internal A (cache hits)", packed(internal), dns.RcodeSuccess},
				{"search-path miss (cache hits)", packed(miss), dns.RcodeNameError},
				{"pod A (cache hits)", packed(pod), dns.RcodeSuccess},
			} {
				b.Run(wl.name, func(b *testing.B) {
					w := &packWriter{}
					for _, q := range wl.qs { // fill the cache
						srv.ServePacket(w, q)
						if w.rcode != wl.rcode {
							b.Fatalf("rcode %s, want %s", dns.RcodeToString[w.rcode], dns.RcodeToString[wl.rcode])
						}
					}
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						srv.ServePacket(w, wl.qs[i%len(wl.qs)])
						i++
					}
				})
			}
		})
	}
}
