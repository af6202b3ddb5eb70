package ipvs

import (
	"context"
	"errors"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// The tests of this file run Sync against an in-memory IPVS table and
// recorded ipset/iptables commands (no root, nothing touches the
// machine); netns_test.go runs the ipset and iptables parts for real.

// syncLikeCore runs one Sync and resets the change lists as the core
// does after it.
func syncLikeCore(t *testing.T, p *Proxier, st *serviceproxy.State) error {
	t.Helper()
	err := p.Sync(context.Background(), st)
	st.Changed = map[serviceproxy.ServicePortName]bool{}
	st.StaleUDPEndpoints, st.StaleUDPServices, st.Removed = nil, nil, nil
	st.Full = err != nil
	return err
}

func mustSync(t *testing.T, p *Proxier, st *serviceproxy.State) {
	t.Helper()
	if err := syncLikeCore(t, p, st); err != nil {
		t.Fatalf("sync: %v", err)
	}
}

func ft(p *Proxier) *fakeTools { return p.tools.(*fakeTools) }

// TestSyncWithoutIPVSChangesNothing: on a kernel without IPVS, Sync
// fails at once with an error naming what is missing, and runs nothing.
func TestSyncWithoutIPVSChangesNothing(t *testing.T) {
	p := newTestProxier(t, Config{}, nil)
	st := newState()
	oneClusterIP(st)
	err := p.Sync(context.Background(), st)
	if !errors.Is(err, ErrNoIPVS) || !strings.Contains(err.Error(), "kernel has no IPVS (ip_vs) module") {
		t.Fatalf("err = %v, want one naming the missing IPVS module", err)
	}
	if n := ft(p).calls(); n != 0 {
		t.Errorf("%d commands ran on a kernel without IPVS", n)
	}
}

// TestSyncWithoutDummyChangesNothing: without the dummy link type Sync
// fails naming it, before any set, rule or virtual server is made.
func TestSyncWithoutDummyChangesNothing(t *testing.T) {
	k := newFakeKernel()
	k.noDummy = true
	p := newTestProxier(t, Config{}, k)
	st := newState()
	oneClusterIP(st)
	err := p.Sync(context.Background(), st)
	if !errors.Is(err, ErrNoDummy) || !strings.Contains(err.Error(), "no dummy link type") {
		t.Fatalf("err = %v, want one naming the missing dummy link type", err)
	}
	if n := ft(p).calls(); n != 0 || len(k.services) != 0 {
		t.Errorf("%d commands ran and %d IPVS services were made without a dummy link type", n, len(k.services))
	}
}

// bigState is a mix of every kind of service, for comparing a sync with
// its rendering.
func bigState() *serviceproxy.State {
	st := newState()
	st.Node.IPs = addrs("100.101.102.103")
	st.ClusterCIDRs = prefixes("10.180.0.0/16")
	add(st, svcNodePort(corev1.ProtocolTCP, func(s *serviceproxy.ServicePort) { s.ExternalPolicyLocal = true; s.HealthCheckNodePort = 30000 }),
		ep("10.180.0.1", 80, true), ep("10.180.1.1", 80, false))
	add(st, &serviceproxy.ServicePort{Name: spn("ns2", "lb", "https", corev1.ProtocolTCP), Type: corev1.ServiceTypeLoadBalancer,
		ClusterIPs: addrs("10.20.30.42"), Port: 443, NodePort: 3002, LoadBalancerVIPs: addrs("1.2.3.4"), LoadBalancerSourceRanges: prefixes("100.101.0.0/16"),
		StickyMaxAge: 30 * time.Second}, ep("10.180.0.2", 8443, true), ep("10.180.1.2", 8443, false))
	add(st, &serviceproxy.ServicePort{Name: spn("ns3", "dns", "dns", corev1.ProtocolUDP), Protocol: corev1.ProtocolUDP,
		ClusterIPs: addrs("10.20.30.53"), Port: 53, ExternalIPs: addrs("50.60.70.81")}, ep("10.180.0.3", 53, true))
	add(st, &serviceproxy.ServicePort{Name: spn("ns4", "empty", "", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.44"), Port: 80})
	return st
}

// TestSyncAppliesTheRendering: the first sync on a fresh node feeds
// ipset and iptables-restore exactly the rendered inputs, leaves the
// IPVS table as rendered, binds KUBE-IPVS-IPS's members on kube-ipvs0
// and sets upstream's sysctls.
func TestSyncAppliesTheRendering(t *testing.T) {
	k := newFakeKernel()
	p := newTestProxier(t, Config{}, k)
	st := bigState()
	out, err := p.Render(st)
	if err != nil {
		t.Fatal(err)
	}
	want := sections(t, out)
	mustSync(t, p, st)
	tools := ft(p)

	if got := k.ipvsadm(t); got != want["ipvsadm -S -n"] {
		t.Errorf("IPVS table differs from the rendering:\n%s", diffLines(want["ipvsadm -S -n"], got))
	}
	if len(tools.ipsetInputs) != 1 || tools.ipsetInputs[0] != want["ipset restore"] {
		t.Errorf("ipset restore inputs %q, want one: %q", tools.ipsetInputs, want["ipset restore"])
	}
	if len(tools.restores[0]) != 1 || tools.restores[0][0] != want["iptables-restore"] {
		t.Errorf("iptables-restore inputs differ:\n%s", diffLines(want["iptables-restore"], strings.Join(tools.restores[0], "")))
	}
	var bound []string
	for _, a := range k.links[DummyDevice] {
		bound = append(bound, a.String())
	}
	sort.Strings(bound)
	var ipvsIPs []string
	for m := range tools.sets[kubeIPVSSet].members {
		ipvsIPs = append(ipvsIPs, m)
	}
	sort.Strings(ipvsIPs)
	if strings.Join(bound, ",") != strings.Join(ipvsIPs, ",") || len(bound) != 6 {
		t.Errorf("kube-ipvs0 holds %v, KUBE-IPVS-IPS %v (want the 4 cluster IPs, the external and the LB IP)", bound, ipvsIPs)
	}
	// "In IPVS proxy mode, the following flags need to be set"
	for name, v := range map[string]string{"net/ipv4/vs/conntrack": "1", "net/ipv4/vs/expire_nodest_conn": "1",
		"net/ipv4/vs/expire_quiescent_template": "1", "net/ipv4/ip_forward": "1"} {
		if k.sysctls[name] != v {
			t.Errorf("sysctl %s = %q, want %s", name, k.sysctls[name], v)
		}
	}
	if tools.conntrackRuns != 1 {
		t.Errorf("conntrack clean-up ran %d times, want 1", tools.conntrackRuns)
	}

	// A second sync of the same state changes nothing.
	k.calls = nil
	mustSync(t, p, st)
	if len(k.calls) != 0 || len(tools.ipsetInputs) != 1 || len(tools.restores[0]) != 1 {
		t.Errorf("an unchanged partial sync made IPVS calls %v, %d ipset and %d iptables restores", k.calls, len(tools.ipsetInputs), len(tools.restores[0]))
	}
}

// TestPartialSyncEqualsFull: after each change, partial syncs leave the
// same IPVS table, sets and addresses as a full sync of the same state,
// and rebuild only the sets that changed (temporary set, then swap).
func TestPartialSyncEqualsFull(t *testing.T) {
	kp, kf := newFakeKernel(), newFakeKernel()
	partial := newTestProxier(t, Config{}, kp)
	full := newTestProxier(t, Config{}, kf)
	st := bigState()
	mustSync(t, partial, st)

	web := spn("ns1", "svc1", "p80", corev1.ProtocolTCP)
	steps := []struct {
		name   string
		change func(st *serviceproxy.State)
		// sets that the change must rebuild
		rebuilt []string
	}{
		{"an endpoint is added", func(st *serviceproxy.State) {
			st.Endpoints[web] = append(st.Endpoints[web], ep("10.180.0.9", 80, true))
			st.Changed[web] = true
		}, []string{kubeLoopBackIPSet}},
		{"a service is added", func(st *serviceproxy.State) {
			add(st, &serviceproxy.ServicePort{Name: spn("ns5", "new", "", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.45"), Port: 8080}, ep("10.180.2.1", 8080, false))
		}, []string{kubeClusterIPSet, kubeIPVSSet}},
		{"affinity is switched on", func(st *serviceproxy.State) {
			svc := *st.Services[web]
			svc.StickyMaxAge = 10800 * time.Second
			st.Services[web] = &svc
			st.Changed[web] = true
		}, nil},
		{"a service is removed", func(st *serviceproxy.State) {
			name := spn("ns3", "dns", "dns", corev1.ProtocolUDP)
			delete(st.Services, name)
			delete(st.Endpoints, name)
			st.Removed = []serviceproxy.ServicePortName{name}
		}, []string{kubeLoopBackIPSet, kubeClusterIPSet, kubeExternalIPSet, kubeIPVSSet}},
	}
	for _, step := range steps {
		step.change(st)
		before := len(ft(partial).ipsetInputs)
		mustSync(t, partial, st)
		// the full proxier syncs from scratch each time
		full.synced = false
		st2 := *st
		st2.Full = true
		mustSync(t, full, &st2)

		if a, b := kp.ipvsadm(t), kf.ipvsadm(t); a != b {
			t.Errorf("%s: partial sync's IPVS table differs from a full one's:\n%s", step.name, diffLines(b, a))
		}
		for name, s := range ft(full).sets {
			ps := ft(partial).sets[name]
			if ps == nil || !sameMembers(ps.members, s.members) {
				t.Errorf("%s: set %s differs after a partial sync", step.name, name)
			}
		}
		if a, b := sortedAddrStrings(kp.links[DummyDevice]), sortedAddrStrings(kf.links[DummyDevice]); a != b {
			t.Errorf("%s: kube-ipvs0 holds %s after a partial sync, %s after a full one", step.name, a, b)
		}
		var rebuilt []string
		if n := len(ft(partial).ipsetInputs); n > before {
			for _, line := range lines(ft(partial).ipsetInputs[n-1]) {
				if f := strings.Fields(line); f[0] == "swap" {
					rebuilt = append(rebuilt, f[2])
				}
			}
		}
		sort.Strings(rebuilt)
		want := append([]string(nil), step.rebuilt...)
		sort.Strings(want)
		if strings.Join(rebuilt, ",") != strings.Join(want, ",") {
			t.Errorf("%s: the partial sync rebuilt sets %v, want %v", step.name, rebuilt, want)
		}
	}
	// The rules change once: when the last external IP goes,
	// KUBE-EXTERNAL-IP is empty and its rules are no longer written.
	if r := ft(partial).restores[0]; len(r) != 2 || strings.Contains(r[1], kubeExternalIPSet+" dst,dst -j KUBE-MARK-MASQ") {
		t.Errorf("iptables-restore ran %d times, want 2 (first sync, last external IP gone)", len(r))
	}
}

func sameMembers(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for m := range a {
		if !b[m] {
			return false
		}
	}
	return true
}

func sortedAddrStrings(l []netip.Addr) string {
	var s []string
	for _, a := range l {
		s = append(s, a.String())
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

// TestGracefulTermination is upstream's graceful termination: a real
// server that is no longer wanted keeps weight 0 while it has
// connections and is deleted when they are gone; "For UDP and SCTP
// traffic, no graceful termination, we immediately delete the RS".
func TestGracefulTermination(t *testing.T) {
	k := newFakeKernel()
	p := newTestProxier(t, Config{}, k)
	st := newState()
	web := spn("ns", "web", "", corev1.ProtocolTCP)
	dns := spn("ns", "dns", "", corev1.ProtocolUDP)
	add(st, &serviceproxy.ServicePort{Name: web, ClusterIPs: addrs("10.96.0.10"), Port: 80}, ep("10.244.0.2", 8080, true), ep("10.244.0.3", 8080, true))
	add(st, &serviceproxy.ServicePort{Name: dns, Protocol: corev1.ProtocolUDP, ClusterIPs: addrs("10.96.0.53"), Port: 53}, ep("10.244.0.2", 53, true), ep("10.244.0.3", 53, true))
	mustSync(t, p, st)
	webVS, old := tcpVS("10.96.0.10", 80), rs("10.244.0.3", 8080)
	k.setConns(t, webVS, old, 2)
	k.dests[vsKey{Proto: 17, Addr: netip.MustParseAddr("10.96.0.53"), Port: 53}][rs("10.244.0.3", 53)].InactiveConnections = 1

	// 10.244.0.3 starts terminating while 10.244.0.2 is ready: it is no
	// longer used ("terminating endpoints ... only when there are no
	// ready endpoints").
	st.Endpoints[web] = []*serviceproxy.Endpoint{ep("10.244.0.2", 8080, true), terminating("10.244.0.3", 8080, true)}
	st.Endpoints[dns] = []*serviceproxy.Endpoint{ep("10.244.0.2", 53, true), terminating("10.244.0.3", 53, true)}
	st.Changed[web], st.Changed[dns] = true, true
	mustSync(t, p, st)
	want := `-A -t 10.96.0.10:80 -s rr
-a -t 10.96.0.10:80 -r 10.244.0.2:8080 -m -w 1
-a -t 10.96.0.10:80 -r 10.244.0.3:8080 -m -w 0
-A -u 10.96.0.53:53 -s rr
-a -u 10.96.0.53:53 -r 10.244.0.2:53 -m -w 1
`
	if got := k.ipvsadm(t); got != want {
		t.Fatalf("after the endpoint started terminating:\n%s\nwant:\n%s", got, want)
	}

	// Still connections: kept at weight 0 by the next syncs.
	mustSync(t, p, st)
	if got := k.ipvsadm(t); got != want {
		t.Fatalf("with connections left the real server must stay:\n%s", got)
	}
	// Connections gone: deleted by the next sync.
	k.setConns(t, webVS, old, 0)
	mustSync(t, p, st)
	want = strings.Replace(want, "-a -t 10.96.0.10:80 -r 10.244.0.3:8080 -m -w 0\n", "", 1)
	if got := k.ipvsadm(t); got != want {
		t.Fatalf("after its connections ended the real server must be gone:\n%s\nwant:\n%s", got, want)
	}
	if len(p.graceful) != 0 {
		t.Errorf("graceful list still holds %v", p.graceful)
	}
}

// TestGracefulRealServerWantedAgain: a real server on its way out that
// is wanted again gets weight 1 back.
func TestGracefulRealServerWantedAgain(t *testing.T) {
	k := newFakeKernel()
	p := newTestProxier(t, Config{}, k)
	st := newState()
	web := spn("ns", "web", "", corev1.ProtocolTCP)
	add(st, &serviceproxy.ServicePort{Name: web, ClusterIPs: addrs("10.96.0.10"), Port: 80}, ep("10.244.0.2", 8080, true), ep("10.244.0.3", 8080, true))
	mustSync(t, p, st)
	k.setConns(t, tcpVS("10.96.0.10", 80), rs("10.244.0.3", 8080), 1)
	st.Endpoints[web] = st.Endpoints[web][:1]
	st.Changed[web] = true
	mustSync(t, p, st)
	if d := k.dests[tcpVS("10.96.0.10", 80)][rs("10.244.0.3", 8080)]; d == nil || d.Weight != 0 {
		t.Fatalf("removed endpoint with a connection: %+v, want weight 0", d)
	}
	st.Endpoints[web] = []*serviceproxy.Endpoint{ep("10.244.0.2", 8080, true), ep("10.244.0.3", 8080, true)}
	st.Changed[web] = true
	mustSync(t, p, st)
	if d := k.dests[tcpVS("10.96.0.10", 80)][rs("10.244.0.3", 8080)]; d == nil || d.Weight != 1 {
		t.Fatalf("endpoint back: %+v, want weight 1", d)
	}
	if len(p.graceful) != 0 {
		t.Errorf("graceful list still holds %v", p.graceful)
	}
}

// TestFullSyncAdoptsTheKernelsTable: a restarted proxier (first sync is
// full) removes virtual servers nobody wants, except those in
// ExcludeCIDRs ("Values are CIDR's to exclude when cleaning up IPVS
// rules"), gives wanted real servers weight 1 back and takes unwanted
// ones with connections out gracefully.
func TestFullSyncAdoptsTheKernelsTable(t *testing.T) {
	k := newFakeKernel()
	for _, v := range []vsKey{tcpVS("10.96.0.10", 80), tcpVS("10.96.9.9", 80), tcpVS("192.0.2.1", 80)} {
		if err := k.NewService(toIPVSService(&virtualServer{key: v, scheduler: "rr"})); err != nil {
			t.Fatal(err)
		}
	}
	svc := keyService(tcpVS("10.96.0.10", 80))
	for _, d := range []*struct {
		rs    rsKey
		w     int
		conns int
	}{{rs("10.244.0.2", 8080), 0, 0}, {rs("10.244.0.7", 8080), 1, 3}} {
		if err := k.NewDestination(svc, toDestination(d.rs, d.w)); err != nil {
			t.Fatal(err)
		}
		k.setConns(t, tcpVS("10.96.0.10", 80), d.rs, d.conns)
	}
	p := newTestProxier(t, Config{ExcludeCIDRs: prefixes("192.0.2.0/24")}, k)
	st := newState()
	add(st, &serviceproxy.ServicePort{Name: spn("ns", "web", "", corev1.ProtocolTCP), ClusterIPs: addrs("10.96.0.10"), Port: 80}, ep("10.244.0.2", 8080, true))
	mustSync(t, p, st)
	want := `-A -t 10.96.0.10:80 -s rr
-a -t 10.96.0.10:80 -r 10.244.0.2:8080 -m -w 1
-a -t 10.96.0.10:80 -r 10.244.0.7:8080 -m -w 0
-A -t 192.0.2.1:80 -s rr
`
	if got := k.ipvsadm(t); got != want {
		t.Errorf("after the first sync:\n%s\nwant:\n%s", got, want)
	}
}

// TestIPSetRebuildAndLeftovers: a set that changes is rebuilt in a
// temporary set and swapped in; a temporary set left by a failed restore
// is destroyed by the next (full) sync; a failed ipset restore fails the
// sync before any rule or virtual server changes.
func TestIPSetRebuildAndLeftovers(t *testing.T) {
	k := newFakeKernel()
	p := newTestProxier(t, Config{}, k)
	st := newState()
	oneClusterIP(st)
	mustSync(t, p, st)
	tools := ft(p)

	add(st, &serviceproxy.ServicePort{Name: spn("ns1", "svc2", "", corev1.ProtocolTCP), ClusterIPs: addrs("10.20.30.42"), Port: 80})
	tools.failIPSet = true
	err := syncLikeCore(t, p, st)
	if err == nil || !strings.Contains(err.Error(), "ipset restore") {
		t.Fatalf("sync with a failing ipset restore: %v", err)
	}
	if len(tools.restores[0]) != 1 || len(k.services) != 1 {
		t.Errorf("a failed ipset restore must stop the sync: %d iptables restores, %d IPVS services", len(tools.restores[0]), len(k.services))
	}
	tools.failIPSet = false
	// What a real failure half-way would leave: a temporary set.
	tools.sets[tempSetName(setIndex[kubeClusterIPSet], false)] = &parsedSet{setType: hashIPPort, family: "inet", members: map[string]bool{}}
	mustSync(t, p, st)
	in := tools.ipsetInputs[len(tools.ipsetInputs)-1]
	tmp := tempSetName(setIndex[kubeClusterIPSet], false)
	for _, want := range []string{
		"destroy " + tmp + "\n",
		"create " + tmp + " hash:ip,port family inet hashsize 1024 maxelem 65536\nadd " + tmp + " 10.20.30.41,tcp:80\nadd " + tmp + " 10.20.30.42,tcp:80\n",
		"swap " + tmp + " KUBE-CLUSTER-IP\n",
	} {
		if !strings.Contains(in, want) {
			t.Errorf("ipset input lacks %q:\n%s", want, in)
		}
	}
	if strings.Index(in, "destroy "+tmp) > strings.Index(in, "create "+tmp) {
		t.Errorf("the leftover must be destroyed before it is created again:\n%s", in)
	}
	if i, j := strings.LastIndex(in, "add "), strings.Index(in, "swap "); i > j {
		t.Errorf("every swap must come after every addition:\n%s", in)
	}
	if _, left := tools.sets[tmp]; left {
		t.Errorf("temporary set %s left after the sync", tmp)
	}
	if got := tools.sets[kubeClusterIPSet].members; !got["10.20.30.42,tcp:80"] || len(got) != 2 {
		t.Errorf("KUBE-CLUSTER-IP = %v", got)
	}
}

// TestIPTablesFailureIsCounted: a failed iptables-restore fails the
// sync, is counted in
// kubeproxy_sync_proxy_rules_iptables_restore_failures_total, and the
// next sync is a full one.
func TestIPTablesFailureIsCounted(t *testing.T) {
	k := newFakeKernel()
	m := serviceproxy.NewMetrics(prometheus.NewRegistry(), ModeName)
	p := newTestProxier(t, Config{Metrics: m}, k)
	st := newState()
	oneClusterIP(st)
	ft(p).failIPTables = true
	if err := syncLikeCore(t, p, st); err == nil || !strings.Contains(err.Error(), "iptables-restore") {
		t.Fatalf("err = %v", err)
	}
	if n := testutil.ToFloat64(m.IPTablesRestoreFailuresTotal); n != 1 {
		t.Errorf("restore failures = %v, want 1", n)
	}
	if len(k.services) != 0 {
		t.Errorf("IPVS services made after a failed iptables-restore: %d", len(k.services))
	}
	ft(p).failIPTables = false
	mustSync(t, p, st)
	if got := ft(p).restores[0]; len(got) != 2 || !strings.Contains(got[1], "-I OUTPUT") {
		t.Errorf("the sync after a failure must be full (jumps re-checked): %q", got)
	}
	if len(k.services) != 1 {
		t.Errorf("IPVS services: %d, want 1", len(k.services))
	}
}

// TestCleanupRemovesWhatItMade: Cleanup flushes IPVS, deletes
// kube-ipvs0, removes the chains of a family where this mode ran, and
// destroys the sets; the chains it shares with the iptables mode are
// left where only the iptables mode ran.
func TestCleanupRemovesWhatItMade(t *testing.T) {
	k := newFakeKernel()
	p := newTestProxier(t, Config{}, k)
	st := bigState()
	mustSync(t, p, st)
	tools := ft(p)
	// IPv6: only the iptables mode's chains.
	tools.chains[1]["nat"] = map[string]bool{kubeServicesChain: true, kubeMarkMasqChain: true}

	if err := p.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(k.services) != 0 {
		t.Errorf("%d IPVS services left", len(k.services))
	}
	if _, ok := k.links[DummyDevice]; ok {
		t.Error("kube-ipvs0 left")
	}
	if len(tools.removed[0]) != 1 {
		t.Errorf("IPv4 chains removed %d times, want 1", len(tools.removed[0]))
	}
	if len(tools.removed[1]) != 0 || !tools.chains[1]["nat"][kubeServicesChain] {
		t.Errorf("IPv6 chains of the iptables mode were removed: %v", tools.removed[1])
	}
	for name := range tools.sets {
		if ourSetNames()[name] {
			t.Errorf("set %s left", name)
		}
	}
	// Cleanup is idempotent.
	if err := p.Cleanup(context.Background()); err != nil {
		t.Errorf("second cleanup: %v", err)
	}
}
