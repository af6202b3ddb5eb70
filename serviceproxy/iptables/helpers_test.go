package iptables

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

func spn(ns, name, port string, proto corev1.Protocol) serviceproxy.ServicePortName {
	return serviceproxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: port, Protocol: proto}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func ep(ip string, port int32, local bool) *serviceproxy.Endpoint {
	return &serviceproxy.Endpoint{IP: netip.MustParseAddr(ip), Port: port, Ready: true, Serving: true, IsLocal: local}
}

// newState returns an empty state for node "test-node".
func newState() *serviceproxy.State { return serviceproxy.NewState("test-node") }

// add adds a service port with its endpoints (and marks it changed).
func add(st *serviceproxy.State, svc *serviceproxy.ServicePort, eps ...*serviceproxy.Endpoint) {
	st.Put(svc, eps...)
}

// normalizeRestore turns iptables-restore (or iptables-save) text into a
// canonical form to compare rule sets: per table, the declared chains
// sorted, then each chain's rules in their order, chains sorted, then
// other lines ("-X", "-I") sorted. Comments, counters and COMMIT lines
// are dropped. Like upstream's assertIPTablesRulesEqual, it ignores the
// order of chains and of rules of different chains, never the order of
// rules within a chain.
func normalizeRestore(t testing.TB, data string) string {
	t.Helper()
	type table struct {
		decl  []string
		rules map[string][]string
		other []string
	}
	tables := map[string]*table{}
	var order []string
	var cur *table
	for _, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line == "COMMIT":
		case line[0] == '*':
			name := line[1:]
			if tables[name] == nil {
				tables[name] = &table{rules: map[string][]string{}}
				order = append(order, name)
			}
			cur = tables[name]
		case cur == nil:
			t.Fatalf("line outside a table: %q", line)
		case line[0] == ':':
			f := strings.Fields(line)
			cur.decl = append(cur.decl, f[0])
		case strings.HasPrefix(line, "-A "):
			chain := strings.Fields(line)[1]
			cur.rules[chain] = append(cur.rules[chain], line)
		default:
			cur.other = append(cur.other, line)
		}
	}
	sort.Strings(order)
	var b strings.Builder
	for _, name := range order {
		tb := tables[name]
		fmt.Fprintf(&b, "*%s\n", name)
		sort.Strings(tb.decl)
		for _, d := range tb.decl {
			b.WriteString(d + "\n")
		}
		chains := make([]string, 0, len(tb.rules))
		for c := range tb.rules {
			chains = append(chains, c)
		}
		sort.Strings(chains)
		for _, c := range chains {
			for _, r := range tb.rules[c] {
				b.WriteString(r + "\n")
			}
		}
		sort.Strings(tb.other)
		for _, o := range tb.other {
			b.WriteString(o + "\n")
		}
	}
	return b.String()
}

// diffLines returns a short line diff of two texts.
func diffLines(want, got string) string {
	w := strings.Split(want, "\n")
	g := strings.Split(got, "\n")
	wm := map[string]int{}
	for _, l := range w {
		wm[l]++
	}
	gm := map[string]int{}
	for _, l := range g {
		gm[l]++
	}
	var b strings.Builder
	for _, l := range w {
		if gm[l] > 0 {
			gm[l]--
			continue
		}
		b.WriteString("- " + l + "\n")
	}
	for _, l := range g {
		if wm[l] > 0 {
			wm[l]--
			continue
		}
		b.WriteString("+ " + l + "\n")
	}
	if b.Len() == 0 {
		return "(same lines, different order)"
	}
	return b.String()
}

func boolp(b bool) *bool { return &b }
