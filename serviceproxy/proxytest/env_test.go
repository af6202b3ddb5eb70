package proxytest

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// bareEnv is an Env without a network: enough for NextState.
func bareEnv(t *testing.T) *Env {
	return &Env{T: t, State: &serviceproxy.State{
		Services:  map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{},
		Endpoints: map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{},
	}}
}

// applied records a successful sync of the next State, as Sync does.
func (e *Env) appliedNext() *serviceproxy.State {
	st := e.NextState()
	e.lastState, e.applied, e.failed, e.full = st, takeSnapshot(st), false, false
	return st
}

func ep(ip string, serving bool) *serviceproxy.Endpoint {
	return &serviceproxy.Endpoint{IP: netip.MustParseAddr(ip), Port: 53, Ready: serving, Serving: serving}
}

// TestNextState: the States an Env hands to a backend carry what the
// core's state builder computes: Full on the first sync and after a
// failure; Changed, Removed and RemovedServices; the UDP endpoints "that
// we were sending traffic to ... but are no longer sending to"; the UDP
// services "that have gone from 0 to non-0 ready endpoints"; unchanged
// ports keep their pointers.
func TestNextState(t *testing.T) {
	e := bareEnv(t)
	dns := &serviceproxy.ServicePort{Name: Name("dns", corev1.ProtocolUDP), ClusterIPs: addrs("10.96.0.10"), Port: 53}
	web := &serviceproxy.ServicePort{Name: Name("web", ""), ClusterIPs: addrs("10.96.0.11"), Port: 80}
	late := &serviceproxy.ServicePort{Name: Name("late", corev1.ProtocolUDP), ClusterIPs: addrs("10.96.0.12"), Port: 53}
	e.Set(dns, ep("10.244.0.3", true), ep("10.244.0.2", true))
	e.Set(web, ep("10.244.0.4", true))
	e.Set(late)

	first := e.appliedNext()
	if !first.Full || len(first.Changed) != 3 {
		t.Fatalf("first State: Full %v, Changed %v; want Full and all 3 changed", first.Full, first.Changed)
	}
	if got := first.Endpoints[dns.Name]; got[0].IP.String() != "10.244.0.2" {
		t.Errorf("endpoints not sorted by address: %v", got)
	}
	if web.Protocol != corev1.ProtocolTCP || web.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("Set defaults: protocol %q, type %q", web.Protocol, web.Type)
	}

	// No change: an empty incremental State, the same pointers.
	same := e.appliedNext()
	if same.Full || len(same.Changed) != 0 || len(same.Removed) != 0 || same.StaleUDPEndpoints != nil || same.StaleUDPServices != nil {
		t.Errorf("unchanged State: %+v", same)
	}
	if same.Services[web.Name] != first.Services[web.Name] || &same.Endpoints[web.Name][0] != &first.Endpoints[web.Name][0] {
		t.Error("an unchanged port lost its pointers")
	}

	// dns: 10.244.0.3 stops serving, 10.244.0.2 goes, 10.244.0.9 comes;
	// web goes; late gets its first endpoint.
	e.Set(dns, ep("10.244.0.3", false), ep("10.244.0.9", true))
	e.Remove(web.Name)
	e.Set(late, ep("10.244.0.5", true))
	st := e.NextState()
	if st.Full {
		t.Error("a State after a successful sync is Full")
	}
	if !st.Changed[dns.Name] || !st.Changed[late.Name] || len(st.Changed) != 2 {
		t.Errorf("Changed %v, want dns and late", st.Changed)
	}
	if !slices.Equal(st.Removed, []serviceproxy.ServicePortName{web.Name}) || st.RemovedServices[web.Name] != web {
		t.Errorf("Removed %v, RemovedServices %v", st.Removed, st.RemovedServices)
	}
	var stale []string
	for _, x := range st.StaleUDPEndpoints[dns.Name] {
		stale = append(stale, x.IP.String())
	}
	if !slices.Equal(stale, []string{"10.244.0.2", "10.244.0.3"}) || len(st.StaleUDPEndpoints) != 1 {
		t.Errorf("StaleUDPEndpoints %v, want dns: 10.244.0.2 (gone) and 10.244.0.3 (no longer serving)", st.StaleUDPEndpoints)
	}
	if !slices.Equal(st.StaleUDPServices, []serviceproxy.ServicePortName{late.Name}) {
		t.Errorf("StaleUDPServices %v, want late", st.StaleUDPServices)
	}

	// A failed sync: the next State is Full.
	e.lastState, e.failed = st, true
	if !e.NextState().Full {
		t.Error("the State after a failed sync is not Full")
	}
	e.appliedNext()
	e.ForceFull()
	if !e.NextState().Full {
		t.Error("ForceFull did not make the next State Full")
	}
}

// TestModeProblems: a Mode that skips a check must say why, must name
// real checks, and must give the hooks of the checks it runs.
func TestModeProblems(t *testing.T) {
	newB := func(*testing.T, serviceproxy.ModeConfig) serviceproxy.Backend { return nil }
	dump := func(*testing.T, *Env) string { return "" }
	breakSync := func(*testing.T, *Env) func() { return func() {} }
	for _, tc := range []struct {
		name string
		m    Mode
		want []string // substrings, one per problem
	}{
		{"complete", Mode{Name: "x", New: newB, Conntrack: true, Dump: dump, BreakSync: breakSync}, nil},
		{"no name", Mode{New: newB, Conntrack: true, Dump: dump, BreakSync: breakSync}, []string{"required"}},
		{"unknown skip", Mode{Name: "x", New: newB, Conntrack: true, Dump: dump, BreakSync: breakSync, Skip: map[string]string{"no such check": "because"}},
			[]string{"names no check"}},
		{"skip without reason", Mode{Name: "x", New: newB, Conntrack: true, Dump: dump, BreakSync: breakSync, Skip: map[string]string{CheckHairpin: " "}},
			[]string{"has no reason"}},
		{"missing hooks", Mode{Name: "x", New: newB},
			[]string{CheckCleanup, CheckConntrackFlushed, CheckFailedApply}},
		{"missing hooks, skipped with reasons", Mode{Name: "x", New: newB, Dump: dump,
			Skip: map[string]string{CheckConntrackFlushed: "no NAT", CheckFailedApply: "no transaction"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.m.problems()
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for _, w := range tc.want {
				found := false
				for _, g := range got {
					found = found || strings.Contains(g, w)
				}
				if !found {
					t.Errorf("no problem mentions %q: %q", w, got)
				}
			}
		})
	}
}

// TestReplySrc reads conntrack -L lines: the second src= is the reply's.
func TestReplySrc(t *testing.T) {
	line := "udp      17 29 src=10.244.0.4 dst=10.96.0.40 sport=40000 dport=53 src=10.244.0.2 dst=10.244.0.4 sport=8053 dport=40000 mark=0 use=1\n"
	for _, tc := range []struct {
		ip   string
		want bool
	}{{"10.244.0.2", true}, {"10.244.0.4", false}, {"10.244.0.20", false}} {
		if got := replySrc(line, tc.ip); got != tc.want {
			t.Errorf("replySrc(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if replySrc("", "10.244.0.2") {
		t.Error("an empty listing has an entry")
	}
}
