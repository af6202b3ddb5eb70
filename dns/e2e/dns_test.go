package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// dcase is one row of the table: a rule (quoted from the Kubernetes DNS
// specification, a CoreDNS plugin README or an RFC), the dig arguments,
// and the exact answer expected.
type dcase struct {
	rule       string
	args       []string // dig arguments after the server: name, type, options
	rcode      string   // dig's status: NOERROR, NXDOMAIN, REFUSED
	answer     []string // records as dig prints them, one space between fields
	authority  []string // the SOA of NXDOMAIN/NODATA; the NS of file zones
	additional []string
	aa         *bool   // nil: not checked (see the case)
	ede        string  // Extended DNS Error dig prints ("15 (Blocked)")
	ttl        ttlRule // unset: the rule of the case's server block
}

var (
	yes = func() *bool { b := true; return &b }()
	no  = func() *bool { b := false; return &b }()
)

// fixture holds what only the running node knows: cluster IPs and pod
// addresses, read from its local API.
type fixture struct {
	webIP, plainIP, apiIP string
	web                   []podAddr // the two web pods, sorted by name
	db0, db1, starting    string    // pod IPs
}

type podAddr struct{ name, ip string }

func dashed(ip string) string { return strings.NewReplacer(".", "-", ":", "-").Replace(ip) }

func reverse(ip string) string {
	r, err := mdns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return r
}

// rr writes a record the way dig prints it, fields separated by one space.
func rr(name, ttl, typ, rdata string) string { return name + " " + ttl + " IN " + typ + " " + rdata }

// TestClusterDNS runs one node with the fixture and the suite's Corefile
// and asks it everything issue 3 must show, with dig.
func TestClusterDNS(t *testing.T) {
	needDig(t)
	t.Parallel()
	a := newAddrs()
	up := startUpstream(t, a.upstream)

	dir := t.TempDir()
	mdir := filepath.Join(dir, "manifests")
	if err := os.Mkdir(mdir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mdir, "fixture.yaml"), manifests)
	writeFile(t, filepath.Join(mdir, "many.yaml"), manySlice())
	zonefile := filepath.Join(dir, "db.example.test")
	writeFile(t, zonefile, exampleZone)
	src := newGitSource(t)
	src.commit("deploy.test: www at 127.0.0.1", "db.deploy.test", deployZone(1, "127.0.0.1"))
	checkout := filepath.Join(dir, "checkout")
	corefile := filepath.Join(dir, "Corefile")
	writeFile(t, corefile, render(mainCorefile,
		"DNS", a.dnsIP, "NODE", a.nodeIP, "UPSTREAM", up.addr, "DROP", a.client(2),
		"ZONEFILE", zonefile, "REPO", src.dir, "CHECKOUT", checkout))

	n := startNode(t, a, mdir, corefile)
	if out := n.Stdout.String(); !strings.Contains(out, "cluster DNS on "+n.dnsAddr) {
		t.Errorf("up does not print where cluster DNS answers (%s):\n%s", n.dnsAddr, out)
	}
	if out := n.Stdout.String(); !strings.Contains(out, " 0 problems") {
		t.Fatalf("the fixture does not load cleanly:\n%s", out)
	}

	// Wait for the pods and their EndpointSlices, then read what the
	// expectations are made of.
	n.WaitFor(30*time.Second, "the web, db and starting pods", func() bool {
		web := n.Pods("default", "app=web")
		ready := 0
		for i := range web {
			if testutil.PodReady(&web[i]) {
				ready++
			}
		}
		st := n.Pod("default", "starting")
		return len(web) == 2 && ready == 2 && testutil.PodReady(n.Pod("default", "db-0")) && testutil.PodReady(n.Pod("default", "db-1")) &&
			st != nil && st.Status.PodIP != ""
	})
	n.WaitFor(10*time.Second, "the EndpointSlices", func() bool {
		return n.readyEndpoints("default", "web") == 2 && n.readyEndpoints("default", "workers") == 2 &&
			n.readyEndpoints("default", "db") == 2 && n.readyEndpoints("default", "nr") == 1
	})
	f := fixture{webIP: n.clusterIP("default", "web"), plainIP: n.clusterIP("default", "plain"), apiIP: n.clusterIP("team", "api")}
	for _, p := range n.Pods("default", "app=web") {
		f.web = append(f.web, podAddr{p.Name, p.Status.PodIP})
	}
	sort.Slice(f.web, func(i, j int) bool { return f.web[i].name < f.web[j].name })
	f.db0, f.db1, f.starting = n.Pod("default", "db-0").Status.PodIP, n.Pod("default", "db-1").Status.PodIP, n.Pod("default", "starting").Status.PodIP

	// The DNS index follows the store within moments of the slices.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := dig(t, n.dnsAddr, "db.default.svc.verified.local", "A")
		if err == nil && len(r.answer) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster DNS does not answer the db pods: %+v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("table", func(t *testing.T) {
		for _, c := range tableCases(f) {
			t.Run(c.rule, func(t *testing.T) { checkCase(t, n.dnsAddr, c) })
		}
	})
	t.Run("truncation", func(t *testing.T) { testTruncation(t, n) })
	t.Run("acl drop", func(t *testing.T) { testACLDrop(t, n, a, f) })
	t.Run("cache hits in metrics", func(t *testing.T) { testCacheMetrics(t, n, up, f) })
	t.Run("git-deployed zone", func(t *testing.T) { testGit(t, n, src) })
	t.Run("records follow the store", func(t *testing.T) { testFollowStore(t, n, dir) })
}

// tableCases is the table, built by hand from the fixture: the names and
// structure come from the manifests, the addresses from the local API.
func tableCases(f fixture) []dcase {
	const (
		z   = "cluster.local."
		svc = ".default.svc.cluster.local."
	)
	// Through the cache of the `.` block (cache 30, kubernetes ttl 30):
	// a hit counts down, and the cache caps every TTL at 30.
	soa := "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. * 7200 1800 86400 30"
	web0, web1 := f.web[0], f.web[1]
	cached := []dcase{
		// 2.2
		{rule: "2.2 There must be a TXT record named dns-version.<zone>. that contains the semantic version of the DNS schema (cache 30 caps its 28800)",
			args: []string{"dns-version.cluster.local", "TXT"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("dns-version."+z, "30", "TXT", `"1.1.0"`)}},
		// 2.3 ClusterIP
		{rule: "2.3.1 <service>.<ns>.svc.<zone>. <ttl> IN A <cluster-ip>",
			args: []string{"web.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("web"+svc, "30", "A", f.webIP)}},
		{rule: "2.1 All comparisons between query data and data in Kubernetes are case-insensitive (the answer keeps the question's case)",
			args: []string{"WEB.Default.SVC.cluster.LOCAL", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("WEB.Default.SVC.cluster.LOCAL.", "30", "A", f.webIP)}},
		{rule: "2.3.1 an IPv4 cluster IP has no AAAA record: NODATA, SOA in authority",
			args: []string{"web.default.svc.cluster.local", "AAAA"}, rcode: "NOERROR", aa: yes, authority: []string{soa}},
		{rule: "2.3.1 a ClusterIP service with an unnamed port: A record",
			args: []string{"plain.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("plain"+svc, "30", "A", f.plainIP)}},
		{rule: "2.3.2 _<port>._<proto>.<service>.<ns>.svc.<zone>. <ttl> IN SRV <weight> <priority> <port-number> <service>.<ns>.svc.<zone>. (the Additional section may include the Service A record)",
			args: []string{"_http._tcp.web.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes,
			answer:     []string{rr("_http._tcp.web"+svc, "30", "SRV", "0 100 80 web"+svc)},
			additional: []string{rr("web"+svc, "30", "A", f.webIP)}},
		{rule: "2.3.2 SRV of a named UDP port (<proto> udp; the port number, not the numbered targetPort)",
			args: []string{"_stats._udp.web.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes,
			answer:     []string{rr("_stats._udp.web"+svc, "30", "SRV", "0 100 8125 web"+svc)},
			additional: []string{rr("web"+svc, "30", "A", f.webIP)}},
		{rule: "2.3.2 using protocol <proto>: a UDP port has no _tcp record (NXDOMAIN)",
			args: []string{"_stats._tcp.web.default.svc.cluster.local", "SRV"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},
		{rule: "CoreDNS: SRV on the service name lists every port, the weights sharing 100",
			args: []string{"web.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes,
			answer:     []string{rr("web"+svc, "30", "SRV", "0 50 80 web"+svc), rr("web"+svc, "30", "SRV", "0 50 8125 web"+svc)},
			additional: []string{rr("web"+svc, "30", "A", f.webIP)}},
		{rule: "2.3.2 Unnamed ports do not have an SRV record",
			args: []string{"_http._tcp.plain.default.svc.cluster.local", "SRV"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},
		{rule: "CoreDNS: SRV on the service name includes an unnamed port",
			args: []string{"plain.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes,
			answer:     []string{rr("plain"+svc, "30", "SRV", "0 100 8080 plain"+svc)},
			additional: []string{rr("plain"+svc, "30", "A", f.plainIP)}},
		{rule: "2.3.3 <d>.<c>.<b>.<a>.in-addr.arpa. <ttl> IN PTR <service>.<ns>.svc.<zone>.",
			args: []string{"-x", f.webIP}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(reverse(f.webIP), "30", "PTR", "web"+svc)}},
		{rule: "CoreDNS: the endpoints of a ClusterIP service are named too (<dashed-ip>.<service>)",
			args: []string{dashed(web0.ip) + ".plain.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(dashed(web0.ip)+".plain"+svc, "30", "A", web0.ip)}},

		// 2.4 Headless
		{rule: "2.4.1 There must be an A record for each ready endpoint of the headless Service (pods with hostname)",
			args: []string{"db.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("db"+svc, "30", "A", f.db0), rr("db"+svc, "30", "A", f.db1)}},
		{rule: "2.4.1 <hostname>.<service>.<ns>.svc.<zone>. <ttl> IN A <endpoint-ip> (hostname + subdomain of the pod)",
			args: []string{"db-0.db.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("db-0.db"+svc, "30", "A", f.db0)}},
		{rule: "2.1 In order of precedence, the hostname of an endpoint is the value of the endpoint's hostname field (not its address)",
			args: []string{dashed(f.db0) + ".db.default.svc.cluster.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},
		{rule: "2.4.2 N ready endpoints and M named ports give N x M SRV records <hostname>.<service>.<ns>.svc.<zone>. (port-number from the named targetPort; the Additional section may include the A records)",
			args: []string{"_postgres._tcp.db.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes,
			answer:     []string{rr("_postgres._tcp.db"+svc, "30", "SRV", "0 50 8080 db-0.db"+svc), rr("_postgres._tcp.db"+svc, "30", "SRV", "0 50 8080 db-1.db"+svc)},
			additional: []string{rr("db-0.db"+svc, "30", "A", f.db0), rr("db-1.db"+svc, "30", "A", f.db1)}},
		{rule: "2.4.3 <d>.<c>.<b>.<a>.in-addr.arpa. <ttl> IN PTR <hostname>.<service>.<ns>.svc.<zone>.",
			args: []string{"-x", f.db0}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(reverse(f.db0), "30", "PTR", "db-0.db"+svc)}},
		{rule: "2.4.1 A records of a headless service whose pods have no hostname",
			args: []string{"workers.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("workers"+svc, "30", "A", web0.ip), rr("workers"+svc, "30", "A", web1.ip)}},
		{rule: "2.1 hostname: a unique, system-assigned identifier for the endpoint (CoreDNS: the address with dashes)",
			args: []string{dashed(web1.ip) + ".workers.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(dashed(web1.ip)+".workers"+svc, "30", "A", web1.ip)}},
		{rule: "2.4.2 SRV targets of endpoints without hostname",
			args: []string{"_http._tcp.workers.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("_http._tcp.workers"+svc, "30", "SRV", "0 50 8080 "+dashed(web0.ip)+".workers"+svc),
				rr("_http._tcp.workers"+svc, "30", "SRV", "0 50 8080 "+dashed(web1.ip)+".workers"+svc)},
			additional: []string{rr(dashed(web0.ip)+".workers"+svc, "30", "A", web0.ip), rr(dashed(web1.ip)+".workers"+svc, "30", "A", web1.ip)}},
		{rule: "2.1 ready: ... or the corresponding service tolerates unready endpoints (publishNotReadyAddresses)",
			args: []string{"nr.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("nr"+svc, "30", "A", f.starting)}},
		{rule: "2.4.1 the hostname record of a published not-ready endpoint",
			args: []string{"nr-0.nr.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("nr-0.nr"+svc, "30", "A", f.starting)}},
		{rule: "2.4.1 If there are no ready endpoints for the headless Service, the answer should be NXDOMAIN",
			args: []string{"nr-strict.default.svc.cluster.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},

		// IPv6 (schema 1.1.0)
		{rule: "2.4.1 There must be an AAAA record for each ready endpoint of the headless Service with IPv6 address",
			args: []string{"v6.default.svc.cluster.local", "AAAA"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("v6"+svc, "30", "AAAA", "fd00::1"), rr("v6"+svc, "30", "AAAA", "fd00::2")}},
		{rule: "2.4.1 a headless service with IPv6 endpoints only has no A record: NODATA",
			args: []string{"v6.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes, authority: []string{soa}},
		{rule: "2.4.1 <hostname>.<service>.<ns>.svc.<zone>. <ttl> IN AAAA <endpoint-ip>",
			args: []string{"h6.v6.default.svc.cluster.local", "AAAA"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("h6.v6"+svc, "30", "AAAA", "fd00::1")}},
		{rule: "2.1 the system-assigned hostname of an IPv6 endpoint (CoreDNS: colons as dashes)",
			args: []string{"fd00--2.v6.default.svc.cluster.local", "AAAA"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("fd00--2.v6"+svc, "30", "AAAA", "fd00::2")}},
		{rule: "2.4.3 the PTR of an IPv6 endpoint, a sequence of nibbles in reverse order under ip6.arpa",
			args: []string{"-x", "fd00::1"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(reverse("fd00::1"), "30", "PTR", "h6.v6"+svc)}},
		{rule: "2.4.3 the PTR of an IPv6 endpoint without hostname",
			args: []string{"-x", "fd00::2"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(reverse("fd00::2"), "30", "PTR", "fd00--2.v6"+svc)}},
		{rule: "2.4.2 SRV with AAAA targets in the Additional section",
			args: []string{"_http._tcp.v6.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes,
			answer:     []string{rr("_http._tcp.v6"+svc, "30", "SRV", "0 50 8080 h6.v6"+svc), rr("_http._tcp.v6"+svc, "30", "SRV", "0 50 8080 fd00--2.v6"+svc)},
			additional: []string{rr("h6.v6"+svc, "30", "AAAA", "fd00::1"), rr("fd00--2.v6"+svc, "30", "AAAA", "fd00::2")}},
		{rule: "2.4.3 the PTR of an endpoint of a hand-written EndpointSlice",
			args: []string{"-x", manyAddr(7)}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(reverse(manyAddr(7)), "30", "PTR", dashed(manyAddr(7))+".many"+svc)}},
		{rule: "fallthrough in-addr.arpa ip6.arpa: an address the cluster does not know goes to forward (the test's upstream)",
			args: []string{"-x", "127.1.2.3"}, rcode: "NOERROR",
			answer: []string{rr(upstreamPTR, "30", "PTR", "one-two-three.upstream.test.")}},

		// 2.5 ExternalName
		{rule: "2.5 <service>.<ns>.svc.<zone>. <ttl> IN CNAME <extname>. (CoreDNS: a target inside the zone is followed)",
			args: []string{"ext.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("ext"+svc, "30", "CNAME", "web"+svc), rr("web"+svc, "30", "A", f.webIP)}},
		{rule: "2.5 the CNAME answers a CNAME question",
			args: []string{"ext.default.svc.cluster.local", "CNAME"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("ext"+svc, "30", "CNAME", "web"+svc)}},
		{rule: "2.5 an external target is resolved through the server (forward to the upstream; cache 30 caps its 300)",
			args: []string{"outside.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("outside"+svc, "30", "CNAME", "www.upstream.test."), rr("www.upstream.test.", "30", "A", upstreamWWW)}},
		{rule: "CoreDNS: SRV for external services is not implemented (NODATA)",
			args: []string{"ext.default.svc.cluster.local", "SRV"}, rcode: "NOERROR", aa: yes, authority: []string{soa}},

		// 2.6 pods insecure
		{rule: "2.6 <a>-<b>-<c>-<d>.<ns>.pod.<zone>. <ttl> IN A <a>.<b>.<c>.<d> (a real pod's address)",
			args: []string{dashed(web0.ip) + ".default.pod.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(dashed(web0.ip)+".default.pod."+z, "30", "A", web0.ip)}},
		{rule: "pods insecure: Always return an A record with IP from request (without checking k8s)",
			args: []string{"127-1-2-3.default.pod.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("127-1-2-3.default.pod."+z, "30", "A", "127.1.2.3")}},
		{rule: "pods insecure: an IPv6 address with dashes gets its AAAA",
			args: []string{"fd00--9.default.pod.cluster.local", "AAAA"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("fd00--9.default.pod."+z, "30", "AAAA", "fd00::9")}},
		{rule: "CoreDNS pods insecure: only in a namespace that exists (NXDOMAIN)",
			args: []string{"127-1-2-3.ghost.pod.cluster.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},

		// NXDOMAIN versus NODATA
		{rule: "RFC 2308: a name that does not exist is NXDOMAIN with the SOA in authority",
			args: []string{"nothere.default.svc.cluster.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},
		{rule: "RFC 2308: an existing namespace has no address: NODATA (NOERROR, no answer, SOA)",
			args: []string{"default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes, authority: []string{soa}},
		{rule: "CoreDNS: a namespace created by a manifest answers NODATA",
			args: []string{"team.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes, authority: []string{soa}},
		{rule: "CoreDNS: a namespace that does not exist is NXDOMAIN",
			args: []string{"ghost.svc.cluster.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},
		{rule: "2.3.1 <service>.<ns>: a service of another namespace",
			args: []string{"api.team.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("api.team.svc."+z, "30", "A", f.apiIP)}},
		{rule: "2.3.1 <service>.<ns>: not in a namespace it is not in",
			args: []string{"api.default.svc.cluster.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},
		{rule: "search path (ndots:5): <name>.<ns>.svc.<zone> is NXDOMAIN",
			args: []string{"example.com.default.svc.cluster.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{soa}},
		{rule: "CoreDNS: the SOA of the zone (ns.dns.<zone>, hostmaster.<zone>)",
			args: []string{"cluster.local", "SOA"}, rcode: "NOERROR", aa: yes, answer: []string{soa}},

		// forward
		{rule: "forward: a name outside the cluster zones is answered by the upstream",
			args: []string{"www.upstream.test", "A"}, rcode: "NOERROR",
			answer: []string{rr("www.upstream.test.", "30", "A", upstreamWWW)}},
		{rule: "forward: the upstream's NXDOMAIN and SOA are passed on (cache 30 caps the SOA's 60)",
			args: []string{"nothere.upstream.test", "A"}, rcode: "NXDOMAIN",
			authority: []string{strings.Replace(upstreamSOA, " 60 IN ", " 30 IN ", 1)}},

		// acl and any
		{rule: "acl: block answers REFUSED, with the Extended DNS Error 15 (Blocked)",
			args: []string{"web.default.svc.cluster.local", "MX"}, rcode: "REFUSED", aa: no, ede: "15 (Blocked)"},
		{rule: "acl: a query matched by no policy is allowed (source not in the dropped net)",
			args: []string{"-b", "127.0.0.1", "web.default.svc.cluster.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("web"+svc, "30", "A", f.webIP)}},
		{rule: "any: A query of type ANY is answered with one HINFO record for the query name (RFC 8482)",
			args: []string{"web.default.svc.cluster.local", "ANY"}, rcode: "NOERROR", aa: no, ttl: ttlExact,
			answer: []string{rr("web"+svc, "8482", "HINFO", `"ANY obsoleted" "See RFC 8482"`)}},

		// alias over file
		{rule: "alias: a CNAME at the zone apex is replaced by the records it leads to, owned by the apex (two links, ending in the cluster zone; TTL the smallest)",
			args: []string{"example.test", "A"}, rcode: "NOERROR", aa: yes,
			answer:    []string{rr("example.test.", "30", "A", f.webIP)},
			authority: []string{rr("example.test.", "300", "NS", "ns.upstream.test.")}},
		{rule: "alias: Only the apex is flattened (www keeps its CNAME)",
			args: []string{"www.example.test", "A"}, rcode: "NOERROR", aa: yes,
			answer:    []string{rr("www.example.test.", "600", "CNAME", "web"+svc), rr("web"+svc, "30", "A", f.webIP)},
			authority: []string{rr("example.test.", "300", "NS", "ns.upstream.test.")}},
		{rule: "file: a name of the zone answers with the zone's NS records in authority",
			args: []string{"txt.example.test", "TXT"}, rcode: "NOERROR", aa: yes, ttl: ttlExact,
			answer:    []string{rr("txt.example.test.", "300", "TXT", `"hello from a file zone"`)},
			authority: []string{rr("example.test.", "300", "NS", "ns.upstream.test.")}},
		{rule: "file: NXDOMAIN carries the SOA in the authority section",
			args: []string{"nothere.example.test", "A"}, rcode: "NXDOMAIN", aa: yes, ttl: ttlExact,
			authority: []string{"example.test. 300 IN SOA ns.upstream.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300"}},
	}
	for i := range cached {
		if cached[i].ttl == ttlUnset {
			cached[i].ttl = ttlAtMost
		}
	}

	// Blocks without a cache: TTLs exactly as the plugin writes them
	// (kubernetes' default ttl 5).
	vsoa := "verified.local. 5 IN SOA ns.dns.verified.local. hostmaster.verified.local. * 7200 1800 86400 5"
	dsoa := "disabled.local. 5 IN SOA ns.dns.disabled.local. hostmaster.disabled.local. * 7200 1800 86400 5"
	exact := []dcase{
		{rule: "pods verified: Return an A record if there exists a pod in same namespace with matching IP",
			args: []string{dashed(web0.ip) + ".default.pod.verified.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(dashed(web0.ip)+".default.pod.verified.local.", "5", "A", web0.ip)}},
		{rule: "pods verified: no pod has that address (NXDOMAIN)",
			args: []string{"127-1-2-3.default.pod.verified.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{vsoa}},
		{rule: "pods verified: a pod in same namespace: the address of a pod of another namespace is NXDOMAIN",
			args: []string{dashed(web0.ip) + ".team.pod.verified.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{vsoa}},
		{rule: "endpoint_pod_names: if hostname is not set, use the pod name of the pod targeted by the endpoint",
			args: []string{web1.name + ".workers.default.svc.verified.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr(web1.name+".workers.default.svc.verified.local.", "5", "A", web1.ip)}},
		{rule: "endpoint_pod_names: the hostname of the endpoint still comes first",
			args: []string{"db-1.db.default.svc.verified.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("db-1.db.default.svc.verified.local.", "5", "A", f.db1)}},
		{rule: "acl is per server block: MX in a block without acl is NODATA",
			args: []string{"web.default.svc.verified.local", "MX"}, rcode: "NOERROR", aa: yes, authority: []string{vsoa}},
		{rule: "pods disabled: Default. Do not process pod requests, always returning NXDOMAIN",
			args: []string{dashed(web0.ip) + ".default.pod.disabled.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{dsoa}},
		{rule: "pods disabled: <ns>.pod.<zone> is NXDOMAIN too",
			args: []string{"default.pod.disabled.local", "A"}, rcode: "NXDOMAIN", aa: yes, authority: []string{dsoa}},
		{rule: "pods disabled: services answer as ever (ttl default 5)",
			args: []string{"web.default.svc.disabled.local", "A"}, rcode: "NOERROR", aa: yes,
			answer: []string{rr("web.default.svc.disabled.local.", "5", "A", f.webIP)}},
		{rule: "git + file: the zone cloned from the repository at setup is served",
			args: []string{"www.deploy.test", "A"}, rcode: "NOERROR", aa: yes,
			answer:    []string{rr("www.deploy.test.", "60", "A", "127.0.0.1")},
			authority: []string{rr("deploy.test.", "60", "NS", "ns.upstream.test.")}},
	}
	for i := range exact {
		if exact[i].ttl == ttlUnset {
			exact[i].ttl = ttlExact
		}
	}
	return append(cached, exact...)
}

// checkCase asks dig and compares everything the case states.
func checkCase(t *testing.T, server string, c dcase) {
	t.Helper()
	r, err := dig(t, server, c.args...)
	if err != nil {
		t.Fatalf("dig %s: %v\n%s", strings.Join(c.args, " "), err, r.out)
	}
	var problems []string
	if r.status != c.rcode {
		problems = append(problems, "status "+r.status+", want "+c.rcode)
	}
	if !sameRecords(r.answer, c.answer, c.ttl) {
		problems = append(problems, "answer:\n  got  "+strings.Join(r.answer, "\n       ")+"\n  want "+strings.Join(c.answer, "\n       "))
	}
	if !sameRecords(r.authority, c.authority, c.ttl) {
		problems = append(problems, "authority:\n  got  "+strings.Join(r.authority, "\n       ")+"\n  want "+strings.Join(c.authority, "\n       "))
	}
	if !sameRecords(r.additional, c.additional, c.ttl) {
		problems = append(problems, "additional:\n  got  "+strings.Join(r.additional, "\n       ")+"\n  want "+strings.Join(c.additional, "\n       "))
	}
	if c.aa != nil && r.flag("aa") != *c.aa {
		problems = append(problems, "flags "+strings.Join(r.flags, " ")+": aa should be "+map[bool]string{true: "set", false: "clear"}[*c.aa])
	}
	if r.flag("tc") {
		problems = append(problems, "tc set on an answer that fits")
	}
	if c.ede != "" && !slices.Contains(r.ede, c.ede) || c.ede == "" && len(r.ede) > 0 {
		problems = append(problems, "EDE "+strings.Join(r.ede, ", ")+", want "+c.ede)
	}
	if len(problems) > 0 {
		t.Errorf("dig %s (TTLs %s):\n%s\n--- dig output:\n%s", strings.Join(c.args, " "),
			map[ttlRule]string{ttlExact: "exact", ttlAtMost: "at most"}[c.ttl], strings.Join(problems, "\n"), r.out)
	}
}

// testTruncation: an answer larger than 512 bytes, asked without EDNS0.
func testTruncation(t *testing.T, n *node) {
	name := "many.default.svc.cluster.local"
	var want []string
	for i := 1; i <= manyCount; i++ {
		want = append(want, rr(name+".", "30", "A", manyAddr(i)))
	}
	full := func(t *testing.T, r digResult) {
		t.Helper()
		if r.status != "NOERROR" || r.flag("tc") || !sameRecords(r.answer, want, ttlAtMost) {
			t.Errorf("want all %d records without tc; got %s, flags %v, %d records:\n%s", manyCount, r.status, r.flags, len(r.answer), r.out)
		}
	}
	t.Run("RFC 6891: with EDNS0 (dig's 1232 bytes) the whole answer fits in UDP", func(t *testing.T) {
		r, err := dig(t, n.dnsAddr, name, "A")
		if err != nil {
			t.Fatal(err)
		}
		full(t, r)
		if r.retriedTCP {
			t.Errorf("dig retried over TCP:\n%s", r.out)
		}
	})
	t.Run("RFC 1035 4.2.1: over 512 bytes without EDNS0, the UDP answer is truncated with TC", func(t *testing.T) {
		r, err := dig(t, n.dnsAddr, "+ignore", "+noedns", name, "A")
		if err != nil {
			t.Fatal(err)
		}
		if r.status != "NOERROR" || !r.flag("tc") || len(r.answer) >= manyCount {
			t.Errorf("want NOERROR with tc and fewer than %d records; got %s, flags %v, %d records:\n%s", manyCount, r.status, r.flags, len(r.answer), r.out)
		}
		t.Logf("truncated UDP answer: flags %v, %d of %d records", r.flags, len(r.answer), manyCount)
		// What it holds is part of the answer (a whole RRset may be left out).
		for _, g := range r.answer {
			if !slices.ContainsFunc(want, func(w string) bool { return recordMatches(g, w, ttlAtMost) }) {
				t.Errorf("truncated answer holds %q, not one of the records", g)
			}
		}
	})
	t.Run("RFC 7766: the client retries a truncated answer over TCP and gets it whole", func(t *testing.T) {
		r, err := dig(t, n.dnsAddr, "+noedns", name, "A")
		if err != nil {
			t.Fatal(err)
		}
		if !r.retriedTCP {
			t.Errorf("dig did not retry over TCP:\n%s", r.out)
		}
		full(t, r)
	})
	t.Run("TCP answers are never truncated", func(t *testing.T) {
		r, err := dig(t, n.dnsAddr, "+tcp", "+noedns", name, "A")
		if err != nil {
			t.Fatal(err)
		}
		full(t, r)
	})
}

// testACLDrop: a source in the dropped net gets no answer at all; one
// next to it does. The acl counters show both acl actions.
func testACLDrop(t *testing.T, n *node, a addrs, f fixture) {
	before, err := metrics(metricsAddr(a.dnsIP))
	if err != nil {
		t.Fatal(err)
	}
	r, err := dig(t, n.dnsAddr, "-b", a.client(2), "+time=1", "web.default.svc.cluster.local", "A")
	if !errors.Is(err, errTimeout) {
		t.Errorf("acl: drop sends no answer at all; from %s dig got %v:\n%s", a.client(2), err, r.out)
	}
	r, err = dig(t, n.dnsAddr, "-b", a.client(3), "web.default.svc.cluster.local", "A")
	if err != nil || r.status != "NOERROR" || !sameRecords(r.answer, []string{rr("web.default.svc.cluster.local.", "30", "A", f.webIP)}, ttlAtMost) {
		t.Errorf("acl: a source outside the dropped net is answered; from %s: %v\n%s", a.client(3), err, r.out)
	}
	if _, err := dig(t, n.dnsAddr, "web.default.svc.cluster.local", "MX"); err != nil {
		t.Fatal(err)
	}
	after, err := metrics(metricsAddr(a.dnsIP))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"coredns_acl_dropped_requests_total", "coredns_acl_blocked_requests_total"} {
		b, _ := metricSum(before, m)
		x, ok := metricSum(after, m)
		if !ok || x < b+1 {
			t.Errorf("%s: %v before, %v after (found %v)", m, b, x, ok)
		}
	}
}

// metricsAddr is where the Corefile puts prometheus.
func metricsAddr(ip string) string { return ip + ":9153" }

// testCacheMetrics: a repeated question is a cache hit, visible in
// coredns_cache_hits_total, and a forwarded name is not asked of the
// upstream again.
func testCacheMetrics(t *testing.T, n *node, up *upstream, f fixture) {
	ask := func(name, qtype string, want []string) {
		t.Helper()
		r, err := dig(t, n.dnsAddr, name, qtype)
		if err != nil {
			t.Fatal(err)
		}
		if r.status != "NOERROR" || !sameRecords(r.answer, want, ttlAtMost) {
			t.Fatalf("dig %s %s:\n%s", name, qtype, r.out)
		}
	}
	hits := func() float64 {
		t.Helper()
		m, err := metrics(metricsAddr(n.addrs.dnsIP))
		if err != nil {
			t.Fatal(err)
		}
		v, _ := metricSum(m, "coredns_cache_hits_total", `type="success"`)
		return v
	}
	for _, q := range []struct{ name, qtype, ans string }{
		{"plain.default.svc.cluster.local", "A", rr("plain.default.svc.cluster.local.", "30", "A", f.plainIP)},
		{"www.upstream.test", "A", rr("www.upstream.test.", "30", "A", upstreamWWW)},
	} {
		ask(q.name, q.qtype, []string{q.ans}) // cached now, if it was not
		h0, asked0 := hits(), up.asked(q.name+".", q.qtype)
		ask(q.name, q.qtype, []string{q.ans})
		ask(q.name, q.qtype, []string{q.ans})
		if h1 := hits(); h1 < h0+2 {
			t.Errorf("%s %s asked twice more: coredns_cache_hits_total{type=\"success\"} went from %v to %v, want +2", q.name, q.qtype, h0, h1)
		}
		if asked1 := up.asked(q.name+".", q.qtype); asked1 != asked0 {
			t.Errorf("%s %s: the upstream was asked %d more times; the cache should have answered", q.name, q.qtype, asked1-asked0)
		}
	}
	if up.asked("www.upstream.test.", "A") == 0 {
		t.Error("the upstream was never asked for www.upstream.test A")
	}
}

// testGit: a new commit in the repository (a new address and SOA
// serial) is answered after the next pull and zone reload.
func testGit(t *testing.T, n *node, src *gitSource) {
	src.commit("deploy.test: www moves to 127.0.0.2", "db.deploy.test", deployZone(2, "127.0.0.2"))
	want := []string{rr("www.deploy.test.", "60", "A", "127.0.0.2")}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r, err := dig(t, n.dnsAddr, "www.deploy.test", "A")
		if err == nil && r.status == "NOERROR" && sameRecords(r.answer, want, ttlExact) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("git: the new commit is not answered after 15s (pull interval 300ms, file reload 200ms): %v\n%s", err, r.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testFollowStore: a Service applied with the CLI is answered within a
// second, also where the cache holds the NXDOMAIN of a moment before; a
// change shows the same way, and a deletion is NXDOMAIN within a second.
func testFollowStore(t *testing.T, n *node, dir string) {
	const name = "late.default.svc.cluster.local"
	within := func(what string, args []string, ok func(digResult) bool) {
		t.Helper()
		deadline := time.Now().Add(time.Second)
		for {
			r, err := dig(t, n.dnsAddr, args...)
			if err == nil && ok(r) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not answered within 1s of the CLI returning: %v\n%s", what, err, r.out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	nx := func(r digResult) bool { return r.status == "NXDOMAIN" }
	// The denials are cached first (cache 30).
	for _, q := range [][]string{{name, "A"}, {"_grpc._tcp." + name, "SRV"}} {
		r, err := dig(t, n.dnsAddr, q...)
		if err != nil || !nx(r) {
			t.Fatalf("before the Service exists: %v\n%s", err, r.out)
		}
	}

	svc := func(ports string) string {
		return "apiVersion: v1\nkind: Service\nmetadata:\n  name: late\nspec:\n  selector: {app: web}\n  ports:\n" + ports
	}
	file := filepath.Join(dir, "late.yaml")
	writeFile(t, file, svc("    - {name: http, port: 80, targetPort: http}\n"))
	if out, err := n.CLI("apply", "-f", file); err != nil {
		t.Fatalf("switchboard apply: %v\n%s", err, out)
	}
	ip := n.clusterIP("default", "late")
	within("created Service", []string{name, "A"}, func(r digResult) bool {
		return r.status == "NOERROR" && sameRecords(r.answer, []string{rr(name+".", "30", "A", ip)}, ttlAtMost)
	})

	writeFile(t, file, svc("    - {name: http, port: 80, targetPort: http}\n    - {name: grpc, port: 9090, targetPort: 9090}\n"))
	if out, err := n.CLI("apply", "-f", file); err != nil {
		t.Fatalf("switchboard apply: %v\n%s", err, out)
	}
	within("changed Service (a new named port)", []string{"_grpc._tcp." + name, "SRV"}, func(r digResult) bool {
		return r.status == "NOERROR" && sameRecords(r.answer, []string{rr("_grpc._tcp."+name+".", "30", "SRV", "0 100 9090 "+name+".")}, ttlAtMost)
	})

	if out, err := n.CLI("delete", "service", "late"); err != nil {
		t.Fatalf("switchboard delete: %v\n%s", err, out)
	}
	if _, err := n.Client.CoreV1().Services("default").Get(context.Background(), "late", metav1.GetOptions{}); err == nil {
		t.Fatal("the Service is still there after switchboard delete")
	}
	within("deleted Service", []string{name, "A"}, nx)
	within("deleted Service (SRV)", []string{"_grpc._tcp." + name, "SRV"}, nx)
}
