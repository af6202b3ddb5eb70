package serviceproxy

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// fill feeds n services with eps endpoints each into h.
func fill(h *harness, n, eps int) {
	for i := 0; i < n; i++ {
		ip := fmt.Sprintf("10.96.%d.%d", i/250, 1+i%250)
		name := fmt.Sprintf("svc-%d", i)
		h.svc(svcObj("ns", name, func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = ip, []string{ip} }))
		var list []discoveryv1.Endpoint
		for j := 0; j < eps; j++ {
			list = append(list, sliceEp(fmt.Sprintf("10.%d.%d.%d", 100+j, i/250, 1+i%250), onNode("node-b")))
		}
		h.slice(sliceObj("ns", name+"-1", name, discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)}, list...))
	}
}

// BenchmarkFirstState10kx10 is the core's share of a first (full) sync of
// 10,000 services × 10 endpoints: checkout and State build.
func BenchmarkFirstState10kx10(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := newHarness(nil)
		fill(h, 10000, 10)
		b.StartTimer()
		st := h.sync(false, true)
		if len(st.Services) != 10000 {
			b.Fatal(len(st.Services))
		}
	}
}

// BenchmarkOneMoreService10kx10 is the core's share of applying one added
// service when 10,000 are programmed: checkout, State build and the
// per-sync statistics.
func BenchmarkOneMoreService10kx10(b *testing.B) {
	h := newHarness(nil)
	fill(h, 10000, 10)
	h.sync(false, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		name := fmt.Sprintf("extra-%d", i)
		h.svc(svcObj("ns", name, func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.97.0.1", []string{"10.97.0.1"} }))
		h.slice(sliceObj("ns", name+"-1", name, discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)}, sliceEp("10.200.0.1")))
		st := h.sync(false, true)
		if len(st.Changed) != 1 {
			b.Fatal(len(st.Changed))
		}
		localEndpointStats(st)
	}
}
