package kubernetes

import (
	"net/netip"
	"strings"
)

// query is one question as the plugin reads it. Every string is the
// question's name or a substring of it: parsing allocates nothing.
type query struct {
	qname string // as the client wrote it
	lname string // lower case
	qtype uint16
	zone  string // the matched zone, lower case
	zoneQ string // the same zone as written in qname
	zi    int    // index of zone in Kubernetes.Zones

	bad      bool  // not a name of the schema (CoreDNS's errInvalidRequest)
	podOrSvc uint8 // typeNone, typeSvc or typePod
	ns       string
	svc      string // the service or pod label
	key      string // svc + "." + ns, the services index key
	endpoint string
	port     string // without its underscore
	proto    string // without its underscore
}

const (
	typeNone uint8 = iota
	typeSvc
	typePod
)

// parse is CoreDNS's parseRequest over lname relative to zone:
//
//	_port._protocol.service.namespace.pod|svc.zone
//	endpoint.service.namespace.pod|svc.zone
//	service.namespace.pod|svc.zone
//	namespace.pod|svc.zone
//
// The zone itself, svc.zone and pod.zone parse to nothing (NODATA); a last
// label other than svc or pod, or more than five labels, is invalid.
func (q *query) parse() {
	base := q.lname[:len(q.lname)-len(q.zone)]
	if len(base) > 0 && base[len(base)-1] == '.' {
		base = base[:len(base)-1]
	}
	if base == "" || base == "svc" || base == "pod" {
		return
	}
	// Labels from the right: 0 pod|svc, 1 namespace, 2 service, 3, 4.
	var labs [5]string
	var start [5]int
	n := 0
	end := len(base)
	for i := len(base) - 1; i >= -1; i-- {
		if i >= 0 && base[i] != '.' {
			continue
		}
		if n == len(labs) {
			q.bad = true // too long
			return
		}
		labs[n], start[n] = base[i+1:end], i+1
		n++
		end = i
	}
	switch labs[0] {
	case "svc":
		q.podOrSvc = typeSvc
	case "pod":
		q.podOrSvc = typePod
	default:
		q.bad = true
		return
	}
	if n < 2 {
		return
	}
	q.ns = labs[1]
	if n < 3 {
		return
	}
	q.svc = labs[2]
	q.key = base[start[2] : start[1]+len(labs[1])]
	switch n {
	case 4:
		q.endpoint = labs[3]
	case 5:
		q.proto = stripUnderscore(labs[3])
		q.port = stripUnderscore(labs[4])
	}
}

func stripUnderscore(s string) string {
	if len(s) > 0 && s[0] == '_' {
		return s[1:]
	}
	return s
}

// The targets a name resolves to.
const (
	tNone      uint8 = iota // the name exists and holds nothing (zone, namespace, ...)
	tService                // a service, maybe narrowed by endpoint or port
	tPod                    // pods insecure|verified: the address in the name
	tDefaultNS              // ns.dns.<zone>: the addresses of this server
)

type target struct {
	kind uint8
	svc  *service
	pod  netip.Addr
}

// records is CoreDNS's Kubernetes.Records: what the name holds, or false
// for a name error (NXDOMAIN).
func (k *Kubernetes) records(q *query) (target, bool) {
	if q.bad {
		return target{}, false
	}
	if q.podOrSvc == typeNone {
		return target{}, true
	}
	if isReverse(q.lname) {
		return target{}, false
	}
	if !k.exposed(q.ns) {
		return target{}, false
	}
	if q.podOrSvc == typePod {
		return k.findPod(q)
	}
	if q.svc == "" {
		return target{}, true
	}
	s, ok := k.ix().services.get(q.key)
	if !ok || !k.serviceAnswers(s, q) {
		return target{}, false
	}
	return target{kind: tService, svc: s}, true
}

// services is CoreDNS's Kubernetes.Services for the types other than TXT
// and NS: ns.dns.<zone> first, then records. As CoreDNS's isDefaultNS, the
// lower-cased name is searched for the zone as the question wrote it, so
// ns.dns.<zone> written with capitals in the zone part is not recognized.
func (k *Kubernetes) services(q *query) (target, bool) {
	if strings.HasPrefix(q.lname, "ns.dns.") && strings.Index(q.lname, q.zoneQ) == len("ns.dns.") {
		return target{kind: tDefaultNS}, true
	}
	return k.records(q)
}

// serviceAnswers is the error of CoreDNS's findServices: whether the
// service, narrowed by the query's endpoint, port and protocol, answers.
func (k *Kubernetes) serviceAnswers(s *service, q *query) bool {
	if k.ignoreEmpty && s.kind == kindClusterIP && s.ready == 0 {
		return false // `ignore empty_service`: NXDOMAIN for a service without ready endpoints
	}
	switch {
	case s.kind == kindExternalName:
		// "External services do not have endpoints, nor can we accept
		// port/protocol pseudo subdomains in an SRV query."
		return q.endpoint == "" && q.port == "" && q.proto == "" && !s.externalIP
	case s.kind == kindHeadless || q.endpoint != "":
		for _, es := range s.slices {
			if !anyPort(es.ports, q) {
				continue
			}
			for i := range es.addrs {
				if q.endpoint == "" || strings.EqualFold(q.endpoint, es.addrs[i].host) {
					return true
				}
			}
		}
		return false
	default:
		return anyPort(s.ports, q)
	}
}

func anyPort(ports []svcPort, q *query) bool {
	for i := range ports {
		if matchPort(&ports[i], q) {
			return true
		}
	}
	return false
}

// matchPort is CoreDNS's matchPortAndProtocol: an empty query part matches
// anything, else names compare case-insensitively.
func matchPort(p *svcPort, q *query) bool {
	return (q.port == "" || strings.EqualFold(q.port, p.name)) && (q.proto == "" || strings.EqualFold(q.proto, p.proto))
}

// simple tells whether the query is the service name itself, answered
// from the precomputed address lists.
func (q *query) simple() bool { return q.endpoint == "" && q.port == "" && q.proto == "" }

// item is one entry of CoreDNS's []msg.Service for a service: an address
// with a port (and the endpoint's hostname), or the ExternalName.
type item struct {
	a     *addr
	cname string
	port  int32
	host  string // endpoint hostname; "" for a cluster IP
}

// items lists a service's entries narrowed by the query, in CoreDNS's
// order, appended to dst.
func (k *Kubernetes) items(s *service, q *query, dst []item) []item {
	switch {
	case s.kind == kindExternalName:
		return append(dst, item{cname: s.external})
	case s.kind == kindHeadless || q.endpoint != "":
		for _, es := range s.slices {
			for i := range es.addrs {
				a := &es.addrs[i]
				if q.endpoint != "" && !strings.EqualFold(q.endpoint, a.host) {
					continue
				}
				for j := range es.ports {
					if matchPort(&es.ports[j], q) {
						dst = append(dst, item{a: &a.addr, port: es.ports[j].port, host: a.host})
					}
				}
			}
		}
	default:
		for j := range s.ports {
			if !matchPort(&s.ports[j], q) {
				continue
			}
			for i := range s.clusterIPs {
				dst = append(dst, item{a: &s.clusterIPs[i], port: s.ports[j].port})
			}
		}
	}
	return dst
}

// findPod is CoreDNS's findPods: the address written in the name
// (a-b-c-d, or an IPv6 address with dashes), in `pods insecure` mode for
// any existing namespace, in `pods verified` mode only when a pod of that
// namespace has that Status.PodIP.
func (k *Kubernetes) findPod(q *query) (target, bool) {
	if k.podMode == podsDisabled {
		return target{}, false
	}
	if q.svc == "" {
		return target{}, true
	}
	label := q.svc
	v4 := strings.Count(label, "-") == 3 && !strings.Contains(label, "--")
	var ip netip.Addr
	var ok bool
	if v4 {
		ip, ok = parseDashedV4(label)
	} else {
		var err error
		ip, err = netip.ParseAddr(strings.ReplaceAll(label, "-", ":"))
		ok = err == nil && ip.Zone() == ""
	}
	if !ok {
		return target{}, false
	}
	if k.podMode == podsInsecure {
		return target{kind: tPod, pod: ip.Unmap()}, true
	}
	e, found := k.ix().podByIP.get(ipKeyOf(ip))
	if !found || !e.has(q.ns) {
		return target{}, false
	}
	// CoreDNS compares the name, dashes read as dots or colons, with the
	// pod's IP as a string: the name must spell the address as Kubernetes
	// writes it (its canonical form).
	sep := byte(':')
	if v4 {
		sep = '.'
	}
	var b [64]byte
	if !dashedEqual(label, ip.AppendTo(b[:0]), sep) {
		return target{}, false
	}
	return target{kind: tPod, pod: ip.Unmap()}, true
}

// dashedEqual reports whether label with every '-' read as sep is ip:
// CoreDNS compares the rewritten label with the pod's IP as a string.
func dashedEqual(label string, ip []byte, sep byte) bool {
	if len(label) != len(ip) {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if c == '-' {
			c = sep
		}
		if c != ip[i] {
			return false
		}
	}
	return true
}

// parseDashedV4 parses a-b-c-d as net.ParseIP parses a.b.c.d: four decimal
// fields of at most 255, no leading zeros.
func parseDashedV4(s string) (netip.Addr, bool) {
	var b [4]byte
	field, n, digits := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '-' {
			if digits == 0 || field > 3 {
				return netip.Addr{}, false
			}
			b[field] = byte(n)
			field++
			n, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits == 1 && n == 0) {
			return netip.Addr{}, false
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	if field != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// isReverse tells whether name is under in-addr.arpa. or ip6.arpa.
// (CoreDNS's dnsutil.IsReverse, which checks the suffix with its dot).
func isReverse(name string) bool {
	return strings.HasSuffix(name, ".in-addr.arpa.") || strings.HasSuffix(name, ".ip6.arpa.")
}

// lowerASCII lower-cases s, allocating only when it has upper-case letters.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if c := b[j]; c >= 'A' && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
