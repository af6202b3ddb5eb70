package userspace

import (
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

func TestAffinityTimeout(t *testing.T) {
	st := newWorld().st
	svc := clusterIPService("s", corev1.ProtocolTCP, netip.MustParseAddr("10.96.0.1"), 80)
	a := netip.MustParseAddrPort("10.244.0.10:8080")
	b := netip.MustParseAddrPort("10.244.0.11:8080")
	client := netip.MustParseAddr("10.244.0.99")
	tests := []struct {
		name    string
		sticky  time.Duration
		age     time.Duration // how long ago the client was last seen
		gone    bool          // the recorded endpoint is no longer a candidate
		wantOld bool
	}{
		// sessionAffinityConfig.clientIP.timeoutSeconds: "specifies the
		// seconds of ClientIP type session sticky time".
		{name: "within timeoutSeconds the client keeps its endpoint", sticky: time.Minute, age: 30 * time.Second, wantOld: true},
		{name: "after timeoutSeconds the client is balanced again", sticky: time.Minute, age: 61 * time.Second},
		{name: "a removed endpoint loses its clients", sticky: time.Minute, age: time.Second, gone: true},
		{name: "sessionAffinity None keeps no record", sticky: 0, age: time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc.StickyMaxAge = tc.sticky
			eps := []*serviceproxy.Endpoint{endpoint(a), endpoint(b)}
			bal := newBalance(st, svc, eps, nil)
			s := &service{name: svc.Name}
			cands := bal.candidates(kindClusterIP, 0, client)
			if len(cands) != 2 {
				t.Fatalf("candidates %v", cands)
			}
			first := cands[s.pick(bal, client, cands)]
			other := a
			if first == a {
				other = b
			}
			if tc.sticky > 0 {
				s.affinity[client].lastUsed = time.Now().Add(-tc.age)
			}
			if tc.gone {
				bal = newBalance(st, svc, []*serviceproxy.Endpoint{endpoint(other)}, nil)
				cands = bal.candidates(kindClusterIP, 0, client)
			}
			// Round robin moves on after each pick, so a fresh choice
			// lands on the other endpoint.
			got := cands[s.pick(bal, client, cands)]
			if tc.wantOld && got != first {
				t.Errorf("got %v, want the affinity endpoint %v", got, first)
			}
			if !tc.wantOld && got != other {
				t.Errorf("got %v, want a fresh choice %v", got, other)
			}
			if tc.sticky == 0 && len(s.affinity) != 0 {
				t.Errorf("affinity recorded without sessionAffinity")
			}
		})
	}
}

func TestCandidatesByFamilyAndPolicy(t *testing.T) {
	v4 := netip.MustParseAddrPort("10.244.0.10:80")
	v4local := netip.MustParseAddrPort("10.244.0.11:80")
	v6 := netip.MustParseAddrPort("[fd00::10]:80")
	eps := []*serviceproxy.Endpoint{endpoint(v4), endpoint(v4local, local), endpoint(v6)}
	st := newWorld(netip.MustParseAddr("192.168.1.5")).st
	st.ClusterCIDRs = []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}
	tests := []struct {
		name     string
		extLocal bool
		intLocal bool
		kind     listenerKind
		fam      int
		client   string
		want     []netip.AddrPort
	}{
		{name: "IPv4 cluster IP gets the IPv4 endpoints only", kind: kindClusterIP, fam: 0, client: "10.244.1.1", want: []netip.AddrPort{v4, v4local}},
		{name: "IPv6 cluster IP gets the IPv6 endpoints only", kind: kindClusterIP, fam: 1, client: "fd00::99", want: []netip.AddrPort{v6}},
		{name: "external Local from outside: local only", extLocal: true, kind: kindNodePort, client: "203.0.113.9", want: []netip.AddrPort{v4local}},
		{name: "external Local from a pod: cluster policy", extLocal: true, kind: kindLoadBalancer, client: "10.244.3.3", want: []netip.AddrPort{v4, v4local}},
		{name: "external Local from the node: every endpoint", extLocal: true, kind: kindExternalIP, client: "192.168.1.5", want: []netip.AddrPort{v4, v4local}},
		// "Even if the external traffic policy is "Local", we need Cluster
		// endpoints to implement short circuiting."
		{name: "both Local, from a pod to the NodePort: neither policy applies", extLocal: true, intLocal: true, kind: kindNodePort, client: "10.244.3.3", want: []netip.AddrPort{v4, v4local}},
		{name: "both Local, from the node to the NodePort: cluster endpoints", extLocal: true, intLocal: true, kind: kindNodePort, client: "192.168.1.5", want: []netip.AddrPort{v4, v4local}},
		{name: "both Local, from a pod to the cluster IP: local only", extLocal: true, intLocal: true, kind: kindClusterIP, client: "10.244.3.3", want: []netip.AddrPort{v4local}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := clusterIPService("s", corev1.ProtocolTCP, netip.MustParseAddr("10.96.0.1"), 80)
			svc.NodePort = 30080
			svc.ExternalPolicyLocal = tc.extLocal
			svc.InternalPolicyLocal = tc.intLocal
			b := newBalance(st, svc, eps, nil)
			got := b.candidates(tc.kind, tc.fam, netip.MustParseAddr(tc.client))
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || g == w
				}
				if !found {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{DialTimeout: -time.Second},
		{UDPIdleTimeout: -time.Second},
		{NodeIPs: []netip.Addr{{}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted a bad config", cfg)
		}
	}
}

func TestBadInputNeverPanics(t *testing.T) {
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Cleanup(t.Context()) })
	w := newWorld()
	svc := clusterIPService("bad", corev1.ProtocolTCP, netip.MustParseAddr("127.0.0.1"), 0) // port 0: no listener
	w.set(svc, nil, &serviceproxy.Endpoint{Port: 80, Ready: true}, &serviceproxy.Endpoint{IP: netip.MustParseAddr("127.0.0.1"), Port: 99999, Ready: true})
	w.st.Services[spn("nil", corev1.ProtocolTCP)] = nil
	w.set(&serviceproxy.ServicePort{Name: spn("noip", corev1.ProtocolUDP), Protocol: corev1.ProtocolUDP, Port: 53})
	if err := p.Sync(t.Context(), w.st); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Render(w.st); err != nil {
		t.Fatal(err)
	}
	if got := p.Addresses(); len(got) != 0 {
		t.Errorf("listeners %v for services without a usable address and port", got)
	}
	if err := p.Sync(t.Context(), nil); err == nil {
		t.Error("Sync(nil) accepted")
	}
}
