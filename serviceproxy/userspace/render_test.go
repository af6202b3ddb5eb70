package userspace

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestRenderListsEveryListener(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(netip.MustParseAddr("192.168.1.5"))
	svc := clusterIPService("web", corev1.ProtocolTCP, netip.MustParseAddr("10.96.0.10"), 80)
	svc.NodePort = 30080
	svc.ExternalIPs = []netip.Addr{netip.MustParseAddr("203.0.113.7")}
	svc.ExternalPolicyLocal = true
	w.set(svc, endpoint(netip.MustParseAddrPort("10.244.0.2:8080"), local), endpoint(netip.MustParseAddrPort("10.244.1.2:8080")),
		endpoint(netip.MustParseAddrPort("10.244.1.3:8080"), notReady))
	w.set(clusterIPService("dns", corev1.ProtocolUDP, netip.MustParseAddr("10.96.0.53"), 53))
	sctp := clusterIPService("sctp", corev1.ProtocolSCTP, netip.MustParseAddr("10.96.0.99"), 9)
	w.set(sctp)
	out, err := p.Render(w.st)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"10.96.0.10:80/TCP clusterIP default/web:p cluster=[10.244.0.2:8080 10.244.1.2:8080] local=[10.244.0.2:8080]",
		"10.96.0.53:53/UDP clusterIP default/dns:p cluster=[] local=-",
		"192.168.1.5:30080/TCP nodePort default/web:p cluster=[10.244.0.2:8080 10.244.1.2:8080] local=[10.244.0.2:8080]",
		"203.0.113.7:80/TCP externalIP default/web:p cluster=[10.244.0.2:8080 10.244.1.2:8080] local=[10.244.0.2:8080]",
	}
	if got := strings.Split(strings.TrimSpace(string(out)), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Render:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := p.Addresses(); len(got) != 0 {
		t.Errorf("Render opened listeners: %v", got)
	}
}
