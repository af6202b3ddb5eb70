package nftables

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// TestIncrementalSyncEqualsFull: "Incremental application is an
// optimisation inside that, never a different path" (issue 4). A node
// that applied state 1 and then state 2 incrementally holds the table a
// node that applied state 2 at once holds; the chains the incremental
// sync left unreferenced are flushed at once and deleted by the first
// sync a second later (kube-proxy: "with kernels before 6.2, if there is
// a map element pointing to a chain, and you delete that map element,
// the kernel doesn't notice until a short amount of time later that the
// chain is now unreferenced").
func TestIncrementalSyncEqualsFull(t *testing.T) {
	needRoot(t)
	t.Parallel()
	state1 := allCases()
	state2, changed, removed := changeEverything(state1)

	p1, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var incremental, afterGC string
	var stale int
	inNetns(t, func() {
		ctx := context.Background()
		if err := p1.Sync(ctx, state1); err != nil {
			t.Errorf("first sync: %v", err)
			return
		}
		st := *state2
		st.Full, st.Changed, st.Removed = false, changed, removed
		st.RemovedServices = map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{}
		for _, n := range removed {
			st.RemovedServices[n] = state1.Services[n]
		}
		p1.KeepScripts(true)
		if err := p1.Sync(ctx, &st); err != nil {
			t.Errorf("incremental sync: %v", err)
			return
		}
		script := string(p1.LastScript())
		if strings.Contains(script, "flush map") || strings.Contains(script, "flush set") || strings.Contains(script, "delete table") {
			t.Errorf("the second sync was not incremental:\n%s", firstLines(script, 40))
		}
		stale = strings.Count(script, "flush chain")
		incremental = nftCmd(t, nil, "list", "ruleset")
		time.Sleep(1100 * time.Millisecond)
		next := st
		next.Changed, next.Removed, next.RemovedServices = map[serviceproxy.ServicePortName]bool{}, nil, nil
		if err := p1.Sync(ctx, &next); err != nil {
			t.Errorf("the sync a second later: %v", err)
			return
		}
		afterGC = nftCmd(t, nil, "list", "ruleset")
	})
	p2, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	var full string
	inNetns(t, func() {
		if err := p2.Sync(context.Background(), state2); err != nil {
			t.Errorf("full sync: %v", err)
			return
		}
		full = nftCmd(t, nil, "list", "ruleset")
	})
	if t.Failed() {
		return
	}
	want := normalizeListing(full)
	if got := dropLearnt(normalizeListing(incremental), want); got != want {
		t.Errorf("after the incremental sync (- full, + incremental):\n%s", lineDiff(want, got))
	}
	if stale == 0 {
		t.Error("the incremental sync flushed no chain: the test no longer removes a shared chain")
	}
	if got := normalizeListing(afterGC); got != want {
		t.Errorf("a second later, the flushed chains must be gone (- full, + incremental):\n%s", lineDiff(want, got))
	}
}

// changeEverything returns state 1 with every kind of change the cases
// allow, the Changed set and the Removed list of going from 1 to 2.
func changeEverything(s1 *serviceproxy.State) (*serviceproxy.State, map[serviceproxy.ServicePortName]bool, []serviceproxy.ServicePortName) {
	s2 := &serviceproxy.State{Node: s1.Node, ClusterCIDRs: s1.ClusterCIDRs, Services: maps.Clone(s1.Services), Endpoints: maps.Clone(s1.Endpoints), Full: true}
	changed := map[serviceproxy.ServicePortName]bool{}
	set := func(n serviceproxy.ServicePortName, mutate func(*serviceproxy.ServicePort), eps ...*serviceproxy.Endpoint) {
		sp := *s2.Services[n]
		if mutate != nil {
			mutate(&sp)
		}
		s2.Services[n] = &sp
		s2.Endpoints[n] = eps
		changed[n] = true
	}
	// endpoints change: 3 ready become 2 (the shared chain svc-ip-3
	// loses its last user: flushed, deleted later)
	set(spn("ns1", "web", "http", corev1.ProtocolTCP), nil, ep("10.244.0.5", 8080, true), ep("10.244.9.5", 8080, false))
	// REJECT becomes DNAT
	set(spn("ns1", "empty", "", corev1.ProtocolTCP), nil, ep("10.244.0.20", 80, true))
	// terminating endpoints become ready
	set(spn("ns1", "draining", "", corev1.ProtocolTCP), nil, ep("10.244.0.6", 80, true), ep("10.244.1.6", 80, false))
	// source ranges change (overlapping, holding the VIP), the local endpoint goes
	set(spn("ns2", "lb", "", corev1.ProtocolTCP), func(sp *serviceproxy.ServicePort) {
		sp.LoadBalancerSourceRanges = prefixes("10.0.0.0/8", "10.1.0.0/16", "203.0.113.0/24")
	}, ep("10.244.1.8", 8443, false))
	// Local policy gains a local endpoint: DROP becomes DNAT
	set(spn("ns2", "lb-remote", "", corev1.ProtocolTCP), nil, ep("10.244.0.9", 80, true), ep("10.244.1.9", 80, false))
	// internalTrafficPolicy back to Cluster
	set(spn("ns3", "itp", "", corev1.ProtocolTCP), func(sp *serviceproxy.ServicePort) { sp.InternalPolicyLocal = false }, ep("10.244.1.10", 80, false))
	// a new affinity timeout: new affinity sets, the old ones deleted
	set(spn("ns3", "sticky", "", corev1.ProtocolTCP), func(sp *serviceproxy.ServicePort) { sp.StickyMaxAge = time.Minute },
		ep("10.244.0.11", 80, true), ep("10.244.1.11", 80, false), ep("10.244.2.11", 80, false))
	// UDP loses its endpoints
	set(spn("kube-system", "dns", "dns", corev1.ProtocolUDP), nil)
	// dual stack: the IPv6 endpoint goes
	set(spn("ns4", "dual", "", corev1.ProtocolTCP), nil, ep("10.244.0.14", 80, true))
	// removed
	removed := []serviceproxy.ServicePortName{spn("ns2", "np", "p", corev1.ProtocolTCP), spn("ns4", "sctp", "", corev1.ProtocolSCTP)}
	for _, n := range removed {
		delete(s2.Services, n)
		delete(s2.Endpoints, n)
	}
	// added: a sticky NodePort and an IPv6-only service
	for _, c := range []stateCase{
		one("added", spn("ns5", "added", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.80"), Port: 80, NodePort: 30080, StickyMaxAge: time.Hour},
			ep("10.244.0.15", 80, true)),
		one("added6", spn("ns5", "six", "", corev1.ProtocolUDP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("fd00:10:96::81"), Port: 53},
			ep("fd00:10:244::15", 53, true), ep("fd00:10:244::16", 53, false)),
	} {
		c.add(s2)
		for n := range c.svcs {
			changed[n] = true
		}
	}
	return s2, changed, removed
}

// TestOverlappingSourceRanges: loadBalancerSourceRanges may overlap, and
// may hold the load-balancer IP that is allowed from the node anyway; an
// interval set cannot hold overlapping ranges, and the kernel would
// reject the whole transaction (it did: "file exists"). Only the
// outermost ranges are kept, which allow the same sources.
func TestOverlappingSourceRanges(t *testing.T) {
	needRoot(t)
	t.Parallel()
	st := newState() // node IP 192.168.0.2
	n := spn("ns", "lb", "", corev1.ProtocolTCP)
	c := one("lb", n, &serviceproxy.ServicePort{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.96.0.30"), Port: 80, NodePort: 30030,
		LoadBalancerVIPs: addrs("203.0.113.30"), LoadBalancerSourceRanges: prefixes("10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/16", "192.168.0.0/24", "203.0.113.0/24")},
		ep("10.244.0.5", 80, true))
	c.add(st)
	p, err := New(Config{IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol}})
	if err != nil {
		t.Fatal(err)
	}
	var listing string
	inNetns(t, func() {
		if err := p.Sync(context.Background(), st); err != nil {
			t.Errorf("Sync: %v", err)
			return
		}
		listing = nftCmd(t, nil, "list", "set", "ip", DefaultTable, setFirewallAllow)
	})
	if t.Failed() {
		return
	}
	norm := normalizeListing(listing)
	for _, want := range []string{"203.0.113.30 . tcp . 80 . 10.0.0.0/8", "203.0.113.30 . tcp . 80 . 192.168.0.0/16", "203.0.113.30 . tcp . 80 . 203.0.113.0/24"} {
		if !strings.Contains(norm, want) {
			t.Errorf("firewall-allow lacks %q:\n%s", want, norm)
		}
	}
	for _, inner := range []string{"10.1.0.0/16", "10.1.2.0/24", "192.168.0.0/24", "203.0.113.30 . tcp . 80 . 203.0.113.30"} {
		if strings.Contains(norm, inner) {
			t.Errorf("firewall-allow holds %q, inside another range:\n%s", inner, norm)
		}
	}
}
