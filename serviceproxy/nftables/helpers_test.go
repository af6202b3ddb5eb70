package nftables

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// --- states ---

func spn(ns, name, port string, proto corev1.Protocol) serviceproxy.ServicePortName {
	return serviceproxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}, Port: port, Protocol: proto}
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// ep is a ready endpoint; local says it is on "node1".
func ep(ip string, port int32, local bool) *serviceproxy.Endpoint {
	node := "node2"
	if local {
		node = "node1"
	}
	return &serviceproxy.Endpoint{IP: netip.MustParseAddr(ip), Port: port, Ready: true, Serving: true, NodeName: node, IsLocal: local}
}

func notReady(e *serviceproxy.Endpoint) *serviceproxy.Endpoint {
	e.Ready, e.Serving = false, false
	return e
}

func terminating(e *serviceproxy.Endpoint) *serviceproxy.Endpoint {
	e.Ready, e.Serving, e.Terminating = false, true, true
	return e
}

func newState() *serviceproxy.State {
	return &serviceproxy.State{
		Node:         serviceproxy.Node{Name: "node1", IPs: addrs("192.168.0.2")},
		ClusterCIDRs: prefixes("10.244.0.0/16"),
		Services:     map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{},
		Endpoints:    map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{},
		Full:         true,
	}
}

func (tc *stateCase) add(st *serviceproxy.State) {
	for n, s := range tc.svcs {
		st.Services[n] = s
		st.Endpoints[n] = tc.eps[n]
	}
}

type stateCase struct {
	name string
	svcs map[serviceproxy.ServicePortName]*serviceproxy.ServicePort
	eps  map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint
}

func one(name string, n serviceproxy.ServicePortName, s *serviceproxy.ServicePort, eps ...*serviceproxy.Endpoint) stateCase {
	s.Name = n
	if s.Protocol == "" {
		s.Protocol = n.Protocol
	}
	return stateCase{name: name,
		svcs: map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{n: s},
		eps:  map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{n: eps}}
}

// cases are representative service ports, each named after the upstream
// rule it exercises.
func cases() []stateCase {
	return []stateCase{
		one("clusterip_spreads_over_ready_endpoints_not_the_not_ready_one",
			spn("ns1", "web", "http", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.10"), Port: 80},
			ep("10.244.0.5", 8080, true), ep("10.244.1.5", 8080, false), ep("10.244.2.5", 8080, false), notReady(ep("10.244.3.5", 8080, false))),
		one("no_endpoints_rejects",
			spn("ns1", "empty", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.11"), Port: 80}),
		one("terminating_endpoints_used_when_none_ready",
			spn("ns1", "draining", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.12"), Port: 80},
			terminating(ep("10.244.0.6", 80, true)), notReady(ep("10.244.1.6", 80, false))),
		one("nodeport_and_external_ip_cluster_policy_masquerade",
			spn("ns2", "np", "p", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.20"), Port: 8080, NodePort: 30080, ExternalIPs: addrs("203.0.113.20")},
			ep("10.244.0.7", 8080, true), ep("10.244.1.7", 8080, false)),
		one("loadbalancer_local_policy_short_circuits_and_source_ranges",
			spn("ns2", "lb", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.96.0.30"), Port: 443, NodePort: 30443,
				LoadBalancerVIPs: addrs("203.0.113.30"), LoadBalancerSourceRanges: prefixes("198.51.100.0/24", "192.168.0.0/24"), ExternalPolicyLocal: true, HealthCheckNodePort: 32000},
			ep("10.244.0.8", 8443, true), ep("10.244.1.8", 8443, false)),
		one("external_local_without_local_endpoints_drops",
			spn("ns2", "lb-remote", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeLoadBalancer, ClusterIPs: addrs("10.96.0.31"), Port: 80, NodePort: 30081,
				LoadBalancerVIPs: addrs("203.0.113.31"), ExternalPolicyLocal: true},
			ep("10.244.1.9", 80, false)),
		one("internal_local_without_local_endpoints_drops",
			spn("ns3", "itp", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.40"), Port: 80, InternalPolicyLocal: true},
			ep("10.244.1.10", 80, false)),
		one("client_ip_affinity_sticks_for_timeout",
			spn("ns3", "sticky", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.50"), Port: 80, NodePort: 30050, StickyMaxAge: 3 * time.Hour},
			ep("10.244.0.11", 80, true), ep("10.244.1.11", 80, false)),
		one("udp_service",
			spn("kube-system", "dns", "dns", corev1.ProtocolUDP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.53"), Port: 53},
			ep("10.244.0.12", 53, true)),
		one("sctp_service",
			spn("ns4", "sctp", "", corev1.ProtocolSCTP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeClusterIP, ClusterIPs: addrs("10.96.0.60"), Port: 9999},
			ep("10.244.0.13", 9999, true)),
		one("dual_stack_service",
			spn("ns4", "dual", "", corev1.ProtocolTCP),
			&serviceproxy.ServicePort{Type: corev1.ServiceTypeNodePort, ClusterIPs: addrs("10.96.0.70", "fd00:10:96::70"), Port: 80, NodePort: 30070},
			ep("10.244.0.14", 80, true), ep("fd00:10:244::14", 80, true)),
	}
}

func allCases() *serviceproxy.State {
	st := newState()
	st.Node.IPs = addrs("192.168.0.2", "fd00::2")
	for _, c := range cases() {
		c.add(st)
	}
	return st
}

// --- namespaces ---

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root to create a network namespace (uid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs the nft tool")
	}
}

// inNetns runs f on a thread in a new, empty network namespace; the
// thread (and with it the namespace) ends when f returns. f reports
// failures with t.Error (not t.Fatal: it runs on another goroutine).
func inNetns(t testing.TB, f func()) {
	t.Helper()
	needRoot(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			t.Errorf("unshare network namespace: %v", err)
			return
		}
		f()
	}()
	<-done
}

// nftCmd runs nft in the calling thread's namespace.
func nftCmd(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nft", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("nft %s: %v\n%s", strings.Join(args, " "), err, firstLines(string(out), 30))
	}
	return string(out)
}

func firstLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append(lines[:n], fmt.Sprintf("... (%d more lines)", len(lines)-n))
	}
	return strings.Join(lines, "\n")
}

var hexMark = regexp.MustCompile(`\b0x[0-9a-f]{8}\b`)

// normalizeListing turns `nft list ruleset` output into a canonical form:
// objects sorted by name, elements sorted, the endpoint maps' key type
// line dropped and the bucket printed in decimal (the listing of a map
// written through netlink says "type ... mark" where the script's says
// "typeof ... numgen").
func normalizeListing(s string) string {
	type block struct {
		head  string
		lines []string
	}
	var out []string
	var tables []string
	var cur []block
	var b *block
	inElems := false
	var elems []string
	var pending string
	flushTable := func(head string) {
		slices.SortFunc(cur, func(x, y block) int { return strings.Compare(x.head, y.head) })
		var sb strings.Builder
		sb.WriteString(head + "\n")
		for _, bl := range cur {
			sb.WriteString("  " + bl.head + "\n")
			for _, l := range bl.lines {
				sb.WriteString("    " + l + "\n")
			}
		}
		tables = append(tables, sb.String())
		cur = nil
	}
	tableHead := ""
	for _, raw := range strings.Split(s, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		if inElems {
			pending += " " + line
			if strings.HasSuffix(line, "}") {
				body := strings.TrimSuffix(strings.TrimSpace(pending), "}")
				for _, e := range splitTop(body) {
					e = strings.TrimSpace(e)
					if e != "" {
						elems = append(elems, hexToDec(e))
					}
				}
				slices.Sort(elems)
				b.lines = append(b.lines, elems...)
				inElems, elems, pending = false, nil, ""
			}
			continue
		}
		switch {
		case strings.HasPrefix(line, "table "):
			tableHead = strings.TrimSuffix(line, " {")
		case strings.HasPrefix(line, "set ") || strings.HasPrefix(line, "map ") || strings.HasPrefix(line, "chain "):
			cur = append(cur, block{head: strings.TrimSuffix(line, " {")})
			b = &cur[len(cur)-1]
		case line == "}":
			if b != nil {
				b = nil
			} else if tableHead != "" {
				flushTable(tableHead)
				tableHead = ""
			}
		case strings.HasPrefix(line, "elements = {"):
			inElems = true
			pending = strings.TrimPrefix(line, "elements = {")
			if strings.HasSuffix(line, "}") {
				inElems = false
				for _, e := range splitTop(strings.TrimSuffix(pending, "}")) {
					if e = strings.TrimSpace(e); e != "" {
						elems = append(elems, hexToDec(e))
					}
				}
				slices.Sort(elems)
				b.lines = append(b.lines, elems...)
				elems, pending = nil, ""
			}
		default:
			if b == nil {
				continue
			}
			if (strings.HasPrefix(b.head, "map "+mapSvcEndpoints) || strings.HasPrefix(b.head, "map "+mapNPEndpoints)) &&
				(strings.HasPrefix(line, "type ") || strings.HasPrefix(line, "typeof ")) {
				continue
			}
			b.lines = append(b.lines, line)
		}
	}
	slices.Sort(tables)
	out = append(out, tables...)
	return strings.Join(out, "")
}

func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	inQ := false
	for i, c := range s {
		switch {
		case c == '"':
			inQ = !inQ
		case inQ:
		case c == '{':
			depth++
		case c == '}':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func hexToDec(e string) string {
	return hexMark.ReplaceAllStringFunc(e, func(h string) string {
		v, _ := strconv.ParseUint(h[2:], 16, 32)
		return strconv.FormatUint(v, 10)
	})
}
