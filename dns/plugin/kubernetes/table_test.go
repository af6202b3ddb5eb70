package kubernetes

import (
	"strings"

	"github.com/miekg/dns"
)

// The query tables: for each configuration of the plugin (a kubernetes
// directive, written as CoreDNS reads it), questions and the exact answer
// expected over the fixture. Case names quote the rule of the Kubernetes
// DNS specification (schema 1.1.0, kubernetes/dns docs/specification.md)
// or name the CoreDNS 1.14 behaviour the case re-creates. The same tables
// are asked of a real CoreDNS in coredns_test.go.

type qcase struct {
	rule   string
	name   string
	qtype  uint16
	rcode  int
	answer []string
	extra  []string
	soa    bool
}

type variant struct {
	name    string
	zones   string   // the directive's zones
	options []string // the lines of its block
	cases   []qcase
}

// corefile is the server block our tests parse: the same directive a
// CoreDNS user writes, endpoint included (it is accepted and ignored).
func (v variant) corefile(endpoint string) string {
	var b strings.Builder
	b.WriteString(". {\n  kubernetes " + v.zones + " {\n")
	if endpoint != "" {
		b.WriteString("    endpoint " + endpoint + "\n")
	}
	for _, o := range v.options {
		b.WriteString("    " + o + "\n")
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

func rev(ip string) string {
	r, err := dns.ReverseAddr(ip)
	if err != nil {
		panic(err)
	}
	return r
}

const (
	noerror  = dns.RcodeSuccess
	nxdomain = dns.RcodeNameError
	servfail = dns.RcodeServerFailure
)

func nodata(rule, name string, qtype uint16) qcase {
	return qcase{rule: rule, name: name, qtype: qtype, rcode: noerror, soa: true}
}

func nx(rule, name string, qtype uint16) qcase {
	return qcase{rule: rule, name: name, qtype: qtype, rcode: nxdomain, soa: true}
}

func ok(rule, name string, qtype uint16, answer ...string) qcase {
	return qcase{rule: rule, name: name, qtype: qtype, rcode: noerror, answer: answer}
}

func (c qcase) with(extra ...string) qcase { c.extra = extra; return c }

var (
	A     = dns.TypeA
	AAAA  = dns.TypeAAAA
	SRV   = dns.TypeSRV
	PTR   = dns.TypePTR
	TXT   = dns.TypeTXT
	CNAME = dns.TypeCNAME
	SOA   = dns.TypeSOA
	NS    = dns.TypeNS
	MX    = dns.TypeMX
	HINFO = dns.TypeHINFO
)

var variants = []variant{
	{
		name:    "insecure",
		zones:   "cluster.local in-addr.arpa ip6.arpa",
		options: []string{"pods insecure", "fallthrough in-addr.arpa ip6.arpa"},
		cases: []qcase{
			// 2.2 Record for Schema Version
			ok("2.2 There must be a TXT record named dns-version.<zone>. that contains the semantic version of the DNS schema",
				"dns-version.cluster.local.", TXT, `dns-version.cluster.local. 28800 IN TXT "1.1.0"`),
			nx("CoreDNS: dns-version.<zone> holds only its TXT record; other types are NXDOMAIN", "dns-version.cluster.local.", A),

			// 2.3 Records for a Service with ClusterIP
			ok("2.3.1 <service>.<ns>.svc.<zone>. <ttl> IN A <cluster-ip>", "web.default.svc.cluster.local.", A,
				"web.default.svc.cluster.local. 5 IN A 10.96.0.20"),
			nodata("2.3.1 an IPv4 <cluster-ip> has an A record only: AAAA is NODATA", "web.default.svc.cluster.local.", AAAA),
			ok("2.3.1 If the <cluster-ip> is an IPv6 address: <service>.<ns>.svc.<zone>. <ttl> IN AAAA <cluster-ip>", "v6.default.svc.cluster.local.", AAAA,
				"v6.default.svc.cluster.local. 5 IN AAAA fd00:10:96::30"),
			nodata("2.3.1 an IPv6 <cluster-ip> has no A record: NODATA", "v6.default.svc.cluster.local.", A),
			ok("2.3.1 a dual-stack service: an A record for its IPv4 cluster IP", "dual.default.svc.cluster.local.", A,
				"dual.default.svc.cluster.local. 5 IN A 10.96.0.31"),
			ok("2.3.1 a dual-stack service: an AAAA record for its IPv6 cluster IP", "dual.default.svc.cluster.local.", AAAA,
				"dual.default.svc.cluster.local. 5 IN AAAA fd00:10:96::31"),
			ok("2.1 All comparisons between query data and data in Kubernetes are case-insensitive (the question's case is kept)",
				"WEB.Default.SVC.Cluster.Local.", A, "WEB.Default.SVC.Cluster.Local. 5 IN A 10.96.0.20"),
			ok("CoreDNS: a service without ports still has its A record", "noports.default.svc.cluster.local.", A,
				"noports.default.svc.cluster.local. 5 IN A 10.96.0.50"),
			nodata("CoreDNS: a service without ports has no SRV record", "noports.default.svc.cluster.local.", SRV),
			ok("2.3.2 _<port>._<proto>.<service>.<ns>.svc.<zone>. <ttl> IN SRV <weight> <priority> <port-number> <service>.<ns>.svc.<zone>.",
				"_https._tcp.api.default.svc.cluster.local.", SRV,
				"_https._tcp.api.default.svc.cluster.local. 5 IN SRV 0 100 443 api.default.svc.cluster.local.").
				with("api.default.svc.cluster.local. 5 IN A 10.96.0.21"),
			ok("2.3.2 SRV for a UDP port", "_dns._udp.api.default.svc.cluster.local.", SRV,
				"_dns._udp.api.default.svc.cluster.local. 5 IN SRV 0 100 53 api.default.svc.cluster.local.").
				with("api.default.svc.cluster.local. 5 IN A 10.96.0.21"),
			nx("2.3.2 the <proto> must be the port's protocol", "_dns._tcp.api.default.svc.cluster.local.", SRV),
			nx("2.3.2 Unnamed ports do not have an SRV record", "_http._tcp.web.default.svc.cluster.local.", SRV),
			ok("CoreDNS: SRV on the service name lists every port, the weights sharing 100", "api.default.svc.cluster.local.", SRV,
				"api.default.svc.cluster.local. 5 IN SRV 0 33 80 api.default.svc.cluster.local.",
				"api.default.svc.cluster.local. 5 IN SRV 0 33 443 api.default.svc.cluster.local.",
				"api.default.svc.cluster.local. 5 IN SRV 0 33 53 api.default.svc.cluster.local.").
				with("api.default.svc.cluster.local. 5 IN A 10.96.0.21"),
			ok("CoreDNS: SRV on the service name includes an unnamed port", "web.default.svc.cluster.local.", SRV,
				"web.default.svc.cluster.local. 5 IN SRV 0 100 80 web.default.svc.cluster.local.").
				with("web.default.svc.cluster.local. 5 IN A 10.96.0.20"),
			ok("2.3.2 The Additional section of the response may include the Service A record (both families of a dual-stack service)",
				"_http._tcp.dual.default.svc.cluster.local.", SRV,
				"_http._tcp.dual.default.svc.cluster.local. 5 IN SRV 0 50 8080 dual.default.svc.cluster.local.").
				with("dual.default.svc.cluster.local. 5 IN A 10.96.0.31", "dual.default.svc.cluster.local. 5 IN AAAA fd00:10:96::31"),
			ok("2.3.3 <d>.<c>.<b>.<a>.in-addr.arpa. <ttl> IN PTR <service>.<ns>.svc.<zone>.", "20.0.96.10.in-addr.arpa.", PTR,
				"20.0.96.10.in-addr.arpa. 5 IN PTR web.default.svc.cluster.local."),
			ok("2.3.3 Given IPv6 Service ClusterIP ... a PTR record as a sequence of nibbles in reverse order", rev("fd00:10:96::30"), PTR,
				rev("fd00:10:96::30")+" 5 IN PTR v6.default.svc.cluster.local."),
			ok("2.3.3 the PTR of a dual-stack service's IPv6 cluster IP", rev("fd00:10:96::31"), PTR,
				rev("fd00:10:96::31")+" 5 IN PTR dual.default.svc.cluster.local."),
			{rule: "fallthrough in-addr.arpa: an unknown address goes to the next plugin (none here: SERVFAIL)",
				name: "99.99.96.10.in-addr.arpa.", qtype: PTR, rcode: servfail},

			// 2.4 Records for a Headless Service
			ok("2.4.1 There must be an A record for each ready endpoint of the headless Service", "db.default.svc.cluster.local.", A,
				"db.default.svc.cluster.local. 5 IN A 10.244.1.10", "db.default.svc.cluster.local. 5 IN A 10.244.1.11"),
			ok("2.4.1 <hostname>.<service>.<ns>.svc.<zone>. <ttl> IN A <endpoint-ip>", "db-0.db.default.svc.cluster.local.", A,
				"db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.10"),
			nx("2.1 An endpoint is considered ready if its address is in the addresses field (ready condition false: no record)",
				"db-2.db.default.svc.cluster.local.", A),
			ok("2.1 hostname: A unique, system-assigned identifier for the endpoint (CoreDNS: the address with dashes)",
				"10-244-2-10.cache.default.svc.cluster.local.", A, "10-244-2-10.cache.default.svc.cluster.local. 5 IN A 10.244.2.10"),
			nx("2.1 an endpoint with a hostname is named by it, not by its address", "10-244-1-10.db.default.svc.cluster.local.", A),
			ok("2.4.1 A records of every EndpointSlice of the service", "cache.default.svc.cluster.local.", A,
				"cache.default.svc.cluster.local. 5 IN A 10.244.2.10", "cache.default.svc.cluster.local. 5 IN A 10.244.2.11"),
			nx("2.4.1 If there are no ready endpoints for the headless Service, the answer should be NXDOMAIN", "empty-headless.default.svc.cluster.local.", A),
			ok("2.4.1 There must be an AAAA record for each ready endpoint of the headless Service with IPv6 address", "headless6.default.svc.cluster.local.", AAAA,
				"headless6.default.svc.cluster.local. 5 IN AAAA fd00:10:244::20", "headless6.default.svc.cluster.local. 5 IN AAAA fd00:10:244::21"),
			nodata("2.4.1 a headless service with IPv6 endpoints only: A is NODATA", "headless6.default.svc.cluster.local.", A),
			ok("2.4.1 <hostname>.<service>.<ns>.svc.<zone>. <ttl> IN AAAA <endpoint-ip>", "h6.headless6.default.svc.cluster.local.", AAAA,
				"h6.headless6.default.svc.cluster.local. 5 IN AAAA fd00:10:244::20"),
			ok("2.1 the system-assigned hostname of an IPv6 endpoint (CoreDNS: colons as dashes)", "fd00-10-244--21.headless6.default.svc.cluster.local.", AAAA,
				"fd00-10-244--21.headless6.default.svc.cluster.local. 5 IN AAAA fd00:10:244::21"),
			ok("2.1 ready: ... or the corresponding service tolerates unready endpoints (publishNotReadyAddresses)", "notready.default.svc.cluster.local.", A,
				"notready.default.svc.cluster.local. 5 IN A 10.244.4.10"),
			ok("2.4.1 a published not-ready endpoint has its hostname record", "nr-0.notready.default.svc.cluster.local.", A,
				"nr-0.notready.default.svc.cluster.local. 5 IN A 10.244.4.10"),
			ok("CoreDNS: endpoints of a ClusterIP service are named too", "10-244-0-10.api.default.svc.cluster.local.", A,
				"10-244-0-10.api.default.svc.cluster.local. 5 IN A 10.244.0.10"),
			nx("CoreDNS: a not-ready endpoint of a ClusterIP service has no name", "10-244-0-12.api.default.svc.cluster.local.", A),
			ok("2.4.2 N ready endpoints and M named ports give N x M SRV records targeting <hostname>.<service>.<ns>.svc.<zone>.",
				"_postgres._tcp.db.default.svc.cluster.local.", SRV,
				"_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-0.db.default.svc.cluster.local.",
				"_postgres._tcp.db.default.svc.cluster.local. 5 IN SRV 0 50 5432 db-1.db.default.svc.cluster.local.").
				with("db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.10", "db-1.db.default.svc.cluster.local. 5 IN A 10.244.1.11"),
			ok("2.4.2 SRV targets of endpoints without hostname", "_redis._tcp.cache.default.svc.cluster.local.", SRV,
				"_redis._tcp.cache.default.svc.cluster.local. 5 IN SRV 0 50 6379 10-244-2-10.cache.default.svc.cluster.local.",
				"_redis._tcp.cache.default.svc.cluster.local. 5 IN SRV 0 50 6379 10-244-2-11.cache.default.svc.cluster.local.").
				with("10-244-2-10.cache.default.svc.cluster.local. 5 IN A 10.244.2.10", "10-244-2-11.cache.default.svc.cluster.local. 5 IN A 10.244.2.11"),
			ok("CoreDNS: SRV on a headless service name: every endpoint x every port", "cache.default.svc.cluster.local.", SRV,
				"cache.default.svc.cluster.local. 5 IN SRV 0 25 6379 10-244-2-10.cache.default.svc.cluster.local.",
				"cache.default.svc.cluster.local. 5 IN SRV 0 25 6380 10-244-2-10.cache.default.svc.cluster.local.",
				"cache.default.svc.cluster.local. 5 IN SRV 0 25 6379 10-244-2-11.cache.default.svc.cluster.local.",
				"cache.default.svc.cluster.local. 5 IN SRV 0 25 6380 10-244-2-11.cache.default.svc.cluster.local.").
				with("10-244-2-10.cache.default.svc.cluster.local. 5 IN A 10.244.2.10", "10-244-2-11.cache.default.svc.cluster.local. 5 IN A 10.244.2.11"),
			ok("2.4.2 The Additional section may include the AAAA records referred to in the SRV records", "_http._tcp.headless6.default.svc.cluster.local.", SRV,
				"_http._tcp.headless6.default.svc.cluster.local. 5 IN SRV 0 50 80 h6.headless6.default.svc.cluster.local.",
				"_http._tcp.headless6.default.svc.cluster.local. 5 IN SRV 0 50 80 fd00-10-244--21.headless6.default.svc.cluster.local.").
				with("h6.headless6.default.svc.cluster.local. 5 IN AAAA fd00:10:244::20", "fd00-10-244--21.headless6.default.svc.cluster.local. 5 IN AAAA fd00:10:244::21"),
			ok("CoreDNS: SRV on an endpoint name", "db-0.db.default.svc.cluster.local.", SRV,
				"db-0.db.default.svc.cluster.local. 5 IN SRV 0 100 5432 db-0.db.default.svc.cluster.local.").
				with("db-0.db.default.svc.cluster.local. 5 IN A 10.244.1.10"),
			nx("2.4.2 no ready endpoint, no SRV", "_http._tcp.empty-headless.default.svc.cluster.local.", SRV),
			ok("2.4.3 <d>.<c>.<b>.<a>.in-addr.arpa. <ttl> IN PTR <hostname>.<service>.<ns>.svc.<zone>.", "10.1.244.10.in-addr.arpa.", PTR,
				"10.1.244.10.in-addr.arpa. 5 IN PTR db-0.db.default.svc.cluster.local."),
			ok("2.4.3 PTR of an endpoint without hostname", "10.2.244.10.in-addr.arpa.", PTR,
				"10.2.244.10.in-addr.arpa. 5 IN PTR 10-244-2-10.cache.default.svc.cluster.local."),
			ok("2.4.3 PTR of an IPv6 endpoint (ip6.arpa)", rev("fd00:10:244::21"), PTR,
				rev("fd00:10:244::21")+" 5 IN PTR fd00-10-244--21.headless6.default.svc.cluster.local."),
			ok("CoreDNS: This plugin creates PTR records for every Pod selected by a Service (ClusterIP too)", "10.0.244.10.in-addr.arpa.", PTR,
				"10.0.244.10.in-addr.arpa. 5 IN PTR 10-244-0-10.api.default.svc.cluster.local."),
			ok("CoreDNS: an endpoint PTR does not need its service", "9.9.244.10.in-addr.arpa.", PTR,
				"9.9.244.10.in-addr.arpa. 5 IN PTR 10-244-9-9.gone.default.svc.cluster.local."),
			{rule: "2.4.3 Given a ready endpoint: a not-ready one has no PTR (falls through: SERVFAIL)",
				name: "12.1.244.10.in-addr.arpa.", qtype: PTR, rcode: servfail},

			// 2.5 Records for External Name Services
			ok("2.5 <service>.<ns>.svc.<zone>. <ttl> IN CNAME <extname>.", "ext.default.svc.cluster.local.", A,
				"ext.default.svc.cluster.local. 5 IN CNAME www.example.com."),
			ok("2.5 the CNAME answers a CNAME question", "ext.default.svc.cluster.local.", CNAME,
				"ext.default.svc.cluster.local. 5 IN CNAME www.example.com."),
			ok("2.5 the CNAME answers an AAAA question", "ext.default.svc.cluster.local.", AAAA,
				"ext.default.svc.cluster.local. 5 IN CNAME www.example.com."),
			ok("CoreDNS: an ExternalName inside the zone is followed", "alias.default.svc.cluster.local.", A,
				"alias.default.svc.cluster.local. 5 IN CNAME api.default.svc.cluster.local.",
				"api.default.svc.cluster.local. 5 IN A 10.96.0.21"),
			nodata("CoreDNS: a followed ExternalName without records of the type is NODATA", "alias.default.svc.cluster.local.", AAAA),
			nodata("CoreDNS: SRV for external services is not implemented (NODATA)", "ext.default.svc.cluster.local.", SRV),
			nodata("CoreDNS: an ExternalName service name exists for TXT (NODATA)", "ext.default.svc.cluster.local.", TXT),
			nx("CoreDNS: External services do not have endpoints, nor ... port/protocol pseudo subdomains", "_http._tcp.ext.default.svc.cluster.local.", SRV),
			nx("CoreDNS: no endpoint names under an ExternalName", "x.ext.default.svc.cluster.local.", A),
			nodata("CoreDNS: a ClusterIP service has no CNAME (NODATA)", "web.default.svc.cluster.local.", CNAME),

			// 2.6 Deprecated Records: pods
			ok("2.6 <a>-<b>-<c>-<d>.<ns>.pod.<zone>. <ttl> IN A <a>.<b>.<c>.<d> (pods insecure: any address)", "1-2-3-4.default.pod.cluster.local.", A,
				"1-2-3-4.default.pod.cluster.local. 5 IN A 1.2.3.4"),
			ok("2.6 the pod record of a real pod", "10-244-0-10.default.pod.cluster.local.", A,
				"10-244-0-10.default.pod.cluster.local. 5 IN A 10.244.0.10"),
			nx("CoreDNS pods insecure: only in a namespace that exists", "1-2-3-4.ghost.pod.cluster.local.", A),
			ok("CoreDNS pods insecure: an IPv6 address with dashes", "fd00--1.default.pod.cluster.local.", AAAA,
				"fd00--1.default.pod.cluster.local. 5 IN AAAA fd00::1"),
			nodata("CoreDNS pods insecure: an IPv6 pod name has no A record", "fd00--1.default.pod.cluster.local.", A),
			nx("2.6 any values ... between 0 and 255: 256 is not an address", "256-1-1-1.default.pod.cluster.local.", A),
			nx("CoreDNS pods insecure: three fields are not an address", "1-2-3.default.pod.cluster.local.", A),
			nodata("CoreDNS pods insecure: <ns>.pod.<zone> exists (NODATA)", "default.pod.cluster.local.", A),
			ok("CoreDNS: SRV on a pod name (port 0)", "1-2-3-4.default.pod.cluster.local.", SRV,
				"1-2-3-4.default.pod.cluster.local. 5 IN SRV 0 100 0 1-2-3-4.default.pod.cluster.local.").
				with("1-2-3-4.default.pod.cluster.local. 5 IN A 1.2.3.4"),

			// The structure of the zone: NXDOMAIN versus NODATA.
			nodata("CoreDNS: an existing namespace answers NODATA", "default.svc.cluster.local.", A),
			nodata("CoreDNS: a namespace without services answers NODATA", "empty-ns.svc.cluster.local.", A),
			nx("CoreDNS: a namespace that does not exist is NXDOMAIN", "ghost.svc.cluster.local.", A),
			nx("CoreDNS: services of a namespace that does not exist are NXDOMAIN", "svcg.ghost.svc.cluster.local.", A),
			nodata("CoreDNS: svc.<zone> is NODATA", "svc.cluster.local.", A),
			nodata("CoreDNS: pod.<zone> is NODATA", "pod.cluster.local.", A),
			nodata("CoreDNS: the zone apex has no address (NODATA)", "cluster.local.", A),
			ok("CoreDNS: the SOA of the zone (ns.dns.<zone>, hostmaster.<zone>)", "cluster.local.", SOA,
				"cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 5"),
			ok("CoreDNS: the SOA of a reverse zone", "in-addr.arpa.", SOA,
				"in-addr.arpa. 5 IN SOA ns.dns.in-addr.arpa. hostmaster.in-addr.arpa. 0 7200 1800 86400 5"),
			nodata("CoreDNS: NS at the apex names this server's addresses (bound to loopback only: none, NODATA)", "cluster.local.", NS),
			nodata("CoreDNS: ns.dns.<zone> holds this server's addresses (loopback only: NODATA)", "ns.dns.cluster.local.", A),
			nx("CoreDNS: TXT at the zone apex is NXDOMAIN", "cluster.local.", TXT),
			nx("CoreDNS: TXT on a namespace is NXDOMAIN", "default.svc.cluster.local.", TXT),
			nodata("CoreDNS: TXT on a service is NODATA", "web.default.svc.cluster.local.", TXT),
			nodata("CoreDNS: MX on a service is NODATA", "web.default.svc.cluster.local.", MX),
			nx("CoreDNS: MX on a missing service is NXDOMAIN", "nothere.default.svc.cluster.local.", MX),
			nodata("CoreDNS: SOA below the apex is NODATA, even for a missing name", "nothere.default.svc.cluster.local.", SOA),
			nodata("CoreDNS: any other type on a service is NODATA", "web.default.svc.cluster.local.", HINFO),
			nx("CoreDNS: any other type on a missing service is NXDOMAIN", "nothere.default.svc.cluster.local.", HINFO),
			nodata("CoreDNS: NS below the apex is NODATA on an existing name", "web.default.svc.cluster.local.", NS),
			nx("search path (ndots:5): <name>.<ns>.svc.<zone> is NXDOMAIN", "example.com.default.svc.cluster.local.", A),
			nx("search path (ndots:5): <name>.svc.<zone> is NXDOMAIN", "example.com.svc.cluster.local.", A),
			nx("search path (ndots:5): <name>.<zone> is NXDOMAIN", "example.com.cluster.local.", A),
			nx("search path (ndots:5): AAAA too", "example.com.default.svc.cluster.local.", AAAA),
			nx("CoreDNS: a name too long for the schema is NXDOMAIN", "a.b._http._tcp.api.default.svc.cluster.local.", A),
			{rule: "fallthrough in-addr.arpa: a reverse name that is no address falls through", name: "20.0.96.10.in-addr.arpa.", qtype: A, rcode: servfail},
			{rule: "fallthrough in-addr.arpa: a partial reverse name falls through", name: "96.10.in-addr.arpa.", qtype: PTR, rcode: servfail},
			{rule: "a name outside the plugin's zones goes to the next plugin", name: "example.org.", qtype: A, rcode: servfail},
		},
	},
	{
		name:    "verified",
		zones:   "cluster.local in-addr.arpa",
		options: []string{"pods verified", "endpoint_pod_names", "ignore empty_service", "ttl 30"},
		cases: []qcase{
			ok("pods verified: Return an A record if there exists a pod in same namespace with matching IP", "10-244-0-10.default.pod.cluster.local.", A,
				"10-244-0-10.default.pod.cluster.local. 30 IN A 10.244.0.10"),
			nx("pods verified: no pod with that address", "1-2-3-4.default.pod.cluster.local.", A),
			nx("pods verified: the pod is in another namespace", "10-244-3-10.default.pod.cluster.local.", A),
			ok("pods verified: the pod's own namespace", "10-244-3-10.testns.pod.cluster.local.", A,
				"10-244-3-10.testns.pod.cluster.local. 30 IN A 10.244.3.10"),
			ok("pods verified: an IPv6 pod", "fd00-10-244--10.default.pod.cluster.local.", AAAA,
				"fd00-10-244--10.default.pod.cluster.local. 30 IN AAAA fd00:10:244::10"),
			nx("pods verified: the name must spell the pod's IP as the pod does", "fd00-10-244-0-0-0-0-10.default.pod.cluster.local.", AAAA),
			ok("endpoint_pod_names: Use the hostname of the endpoint, or if hostname is not set, use the pod name", "api-1.api.default.svc.cluster.local.", A,
				"api-1.api.default.svc.cluster.local. 30 IN A 10.244.0.10"),
			ok("endpoint_pod_names: an endpoint whose ready condition is unset counts as ready", "api-2.api.default.svc.cluster.local.", A,
				"api-2.api.default.svc.cluster.local. 30 IN A 10.244.0.11"),
			nx("endpoint_pod_names: the dashed address is no name any more", "10-244-0-10.api.default.svc.cluster.local.", A),
			ok("endpoint_pod_names: the hostname still comes first", "db-0.db.default.svc.cluster.local.", A,
				"db-0.db.default.svc.cluster.local. 30 IN A 10.244.1.10"),
			ok("endpoint_pod_names: SRV targets are pod names", "_redis._tcp.cache.default.svc.cluster.local.", SRV,
				"_redis._tcp.cache.default.svc.cluster.local. 30 IN SRV 0 50 6379 cache-abc.cache.default.svc.cluster.local.",
				"_redis._tcp.cache.default.svc.cluster.local. 30 IN SRV 0 50 6379 cache-def.cache.default.svc.cluster.local.").
				with("cache-abc.cache.default.svc.cluster.local. 30 IN A 10.244.2.10", "cache-def.cache.default.svc.cluster.local. 30 IN A 10.244.2.11"),
			ok("endpoint_pod_names: PTR targets are pod names", "10.2.244.10.in-addr.arpa.", PTR,
				"10.2.244.10.in-addr.arpa. 30 IN PTR cache-abc.cache.default.svc.cluster.local."),
			nx("ignore empty_service returns NXDOMAIN for services without any ready endpoint addresses", "empty.default.svc.cluster.local.", A),
			ok("ignore empty_service: a service with ready endpoints answers", "web.default.svc.cluster.local.", A,
				"web.default.svc.cluster.local. 30 IN A 10.96.0.20"),
			nx("ignore empty_service: a headless service without endpoints is NXDOMAIN anyway", "empty-headless.default.svc.cluster.local.", A),
			ok("ttl: the SOA's TTL and minimum follow it", "cluster.local.", SOA,
				"cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 30"),
			nx("no fallthrough: an unknown address is NXDOMAIN", "99.99.96.10.in-addr.arpa.", PTR),
		},
	},
	{
		name:    "restricted",
		zones:   "cluster.local",
		options: []string{"noendpoints", "namespaces default"},
		cases: []qcase{
			nx("noendpoints: All endpoint queries and headless service queries will result in an NXDOMAIN", "db.default.svc.cluster.local.", A),
			nx("noendpoints: endpoint names are NXDOMAIN", "db-0.db.default.svc.cluster.local.", A),
			nx("noendpoints: endpoint names of ClusterIP services are NXDOMAIN", "10-244-0-10.api.default.svc.cluster.local.", A),
			ok("noendpoints: ClusterIP services still answer", "web.default.svc.cluster.local.", A,
				"web.default.svc.cluster.local. 5 IN A 10.96.0.20"),
			ok("noendpoints: ClusterIP SRV still answers", "_http._tcp.api.default.svc.cluster.local.", SRV,
				"_http._tcp.api.default.svc.cluster.local. 5 IN SRV 0 100 80 api.default.svc.cluster.local.").
				with("api.default.svc.cluster.local. 5 IN A 10.96.0.21"),
			nx("namespaces: only exposes the k8s namespaces listed", "svc1.testns.svc.cluster.local.", A),
			nx("namespaces: an unlisted namespace is NXDOMAIN", "testns.svc.cluster.local.", A),
			nodata("namespaces: a listed namespace is NODATA", "default.svc.cluster.local.", A),
			nx("pods disabled: Default. Do not process pod requests, always returning NXDOMAIN", "1-2-3-4.default.pod.cluster.local.", A),
			nx("pods disabled: <ns>.pod.<zone> is NXDOMAIN too", "default.pod.cluster.local.", A),
		},
	},
	{
		name:    "verified-labels",
		zones:   "cluster.local",
		options: []string{"pods verified", "labels app in (api,x),tier notin (back)"},
		cases: []qcase{
			ok("labels: only exposes the records for Kubernetes objects that match this label selector (a pod that matches)", "10-244-0-10.default.pod.cluster.local.", A,
				"10-244-0-10.default.pod.cluster.local. 5 IN A 10.244.0.10"),
			nx("labels: a pod without the labels is not found by pods verified", "10-244-1-10.default.pod.cluster.local.", A),
			nx("labels: a pod whose labels fail one requirement (tier notin (back)) is not found", "10-244-3-10.testns.pod.cluster.local.", A),
			nx("labels: a service without the labels is NXDOMAIN", "web.default.svc.cluster.local.", A),
		},
	},
	{
		name:    "labels",
		zones:   "cluster.local",
		options: []string{"labels app=x", "namespace_labels team=a"},
		cases: []qcase{
			ok("labels: only exposes the records for Kubernetes objects that match this label selector", "svc2.other.svc.cluster.local.", A,
				"svc2.other.svc.cluster.local. 5 IN A 10.96.2.10"),
			nx("labels: a service without the label is NXDOMAIN", "svc3.other.svc.cluster.local.", A),
			nx("namespace_labels: only expose the records for Kubernetes namespaces that match this label selector", "web.default.svc.cluster.local.", A),
			nx("namespace_labels: a namespace without the label is NXDOMAIN", "default.svc.cluster.local.", A),
			nodata("namespace_labels: a matching namespace is NODATA", "other.svc.cluster.local.", A),
		},
	},
	{
		name:    "fallthrough",
		zones:   "cluster.local",
		options: []string{"fallthrough"},
		cases: []qcase{
			{rule: "fallthrough: If [ZONES...] is omitted, then fallthrough happens for all zones", name: "nothere.default.svc.cluster.local.", qtype: A, rcode: servfail},
			ok("fallthrough: names that exist answer", "web.default.svc.cluster.local.", A, "web.default.svc.cluster.local. 5 IN A 10.96.0.20"),
			nodata("fallthrough: only NXDOMAIN falls through, not NODATA", "web.default.svc.cluster.local.", AAAA),
		},
	},
}
