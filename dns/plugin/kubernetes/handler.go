package kubernetes

import (
	"context"
	"math"
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// maxCnameChainLength bounds the ExternalName chain followed, as CoreDNS.
const maxCnameChainLength = 10

// The answers are built in one allocation for the common cases: a message
// and its question together with the records it carries (one address, or
// the authority SOA). Records are built fresh for every answer, never
// shared between answers (plugins after us, such as cache, may change
// their TTLs); only the address bytes are shared, read-only.
type msgReply struct {
	m dns.Msg
	q [1]dns.Question
}

type aReply struct {
	msgReply
	rr [1]dns.RR
	a  dns.A
}

type aaaaReply struct {
	msgReply
	rr   [1]dns.RR
	aaaa dns.AAAA
}

type soaReply struct {
	msgReply
	rr  [1]dns.RR
	soa dns.SOA
}

// replyBuf remembers the message allocated along with the records, if any.
type replyBuf struct{ hdr *msgReply }

func (rb *replyBuf) msg() *msgReply {
	if rb.hdr == nil {
		rb.hdr = new(msgReply)
	}
	return rb.hdr
}

// ServeDNS implements plugin.Handler, as CoreDNS's kubernetes ServeDNS.
func (k *Kubernetes) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) == 0 {
		return plugin.NextOrFailure(k.Name(), k.Next, ctx, w, r)
	}
	qname := r.Question[0].Name
	if !strings.HasSuffix(qname, ".") {
		qname += "."
	}
	lname := lowerASCII(qname)
	zi, zone := k.matchZone(lname)
	if zi < 0 {
		return plugin.NextOrFailure(k.Name(), k.Next, ctx, w, r)
	}
	q := query{
		qname: qname,
		lname: lname,
		qtype: r.Question[0].Qtype,
		zone:  zone,
		zoneQ: qname[len(qname)-len(zone):], // keep the case of the question
		zi:    zi,
	}
	q.parse()

	var (
		rb        replyBuf
		records   []dns.RR
		extra     []dns.RR
		truncated bool
		ok        = true
	)
	switch q.qtype {
	case dns.TypeA, dns.TypeAAAA:
		records, truncated, ok = k.address(ctx, w, r, &q, nil, &rb)
	case dns.TypeTXT:
		records, ok = k.txt(&q)
	case dns.TypeCNAME:
		records, ok = k.cname(&q)
	case dns.TypePTR:
		records, ok = k.ptr(&q, &rb)
	case dns.TypeMX:
		_, ok = k.services(&q)
	case dns.TypeSRV:
		records, extra, ok = k.srv(&q, &rb)
	case dns.TypeSOA:
		if q.lname == q.zone {
			sr := new(soaReply)
			sr.soa = k.soa(&q)
			sr.rr[0] = &sr.soa
			records = sr.rr[:1]
			rb.hdr = &sr.msgReply
		}
	case dns.TypeAXFR, dns.TypeIXFR:
		return dns.RcodeRefused, nil
	case dns.TypeNS:
		if q.lname == q.zone {
			records, extra = k.nsRecords(&q)
			break
		}
		fallthrough
	default:
		// A fake A lookup tells NODATA from NXDOMAIN.
		if q.lname != q.zone {
			_, ok = k.services(&q)
		}
	}

	if !ok {
		if k.fallsThrough(q.lname) {
			return plugin.NextOrFailure(k.Name(), k.Next, ctx, w, r)
		}
		if !k.ix().syncedFlag.Load() {
			return k.backendError(w, r, &q, dns.RcodeServerFailure)
		}
		return k.backendError(w, r, &q, dns.RcodeNameError)
	}
	if len(records) == 0 {
		return k.backendError(w, r, &q, dns.RcodeSuccess)
	}
	m := k.header(r, rb.msg())
	m.Truncated = truncated
	m.Answer = records
	m.Extra = extra
	_ = w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// matchZone returns the longest of the plugin's zones holding lname.
func (k *Kubernetes) matchZone(lname string) (int, string) {
	best := -1
	for i, z := range k.Zones {
		if (best < 0 || len(z) > len(k.Zones[best])) && inZone(lname, z) {
			best = i
		}
	}
	if best < 0 {
		return -1, ""
	}
	return best, k.Zones[best]
}

// inZone reports whether lname (lower case, fully qualified) is zone or
// under it.
func inZone(lname, zone string) bool {
	if zone == "." {
		return true
	}
	if !strings.HasSuffix(lname, zone) {
		return false
	}
	return len(lname) == len(zone) || lname[len(lname)-len(zone)-1] == '.'
}

// header fills rep's message as dns.Msg.SetReply does, authoritative.
func (k *Kubernetes) header(r *dns.Msg, rep *msgReply) *dns.Msg {
	m := &rep.m
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	if m.Opcode == dns.OpcodeQuery {
		m.RecursionDesired = r.RecursionDesired
		m.CheckingDisabled = r.CheckingDisabled
	}
	m.Authoritative = true
	rep.q[0] = r.Question[0]
	m.Question = rep.q[:1]
	return m
}

// backendError writes an answer without records, with the zone's SOA in the
// authority section (CoreDNS's plugin.BackendError).
func (k *Kubernetes) backendError(w dns.ResponseWriter, r *dns.Msg, q *query, rcode int) (int, error) {
	rep := new(soaReply)
	m := k.header(r, &rep.msgReply)
	m.Rcode = rcode
	rep.soa = k.soa(q)
	rep.rr[0] = &rep.soa
	m.Ns = rep.rr[:1]
	_ = w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// soa is CoreDNS's plugin.SOA for the query's zone.
func (k *Kubernetes) soa(q *query) dns.SOA {
	ns, mbox := k.zoneNames[q.zi].nsName, k.zoneNames[q.zi].hostmaster
	if q.zoneQ != q.zone {
		ns, mbox = joinZone("ns.dns.", q.zoneQ), joinZone("hostmaster.", q.zoneQ)
	}
	return dns.SOA{
		Hdr:     dns.RR_Header{Name: q.zoneQ, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: min(k.ttl, 300)},
		Ns:      ns,
		Mbox:    mbox,
		Serial:  uint32(k.ix().modified.Load()),
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  k.ttl,
	}
}

func (k *Kubernetes) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: k.ttl}
}

// address answers A and AAAA (CoreDNS's plugin.A and plugin.AAAA): the
// records of the name, and for an ExternalName the CNAME followed by the
// records of its target when we can resolve it. chain holds the CNAMEs
// followed so far. ok is false for a name error.
func (k *Kubernetes) address(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, q *query, chain []dns.RR, rep *replyBuf) (records []dns.RR, truncated, ok bool) {
	var t target
	if q.lname != q.zone { // the apex holds no address (there is no apex.dns entry)
		if t, ok = k.services(q); !ok {
			return nil, false, false
		}
	}
	v6 := q.qtype == dns.TypeAAAA
	switch t.kind {
	case tNone:
		return nil, false, true
	case tPod:
		if t.pod.Is4() == v6 {
			return nil, false, true
		}
		return k.addrRecords(q.qname, []net.IP{net.IP(t.pod.AsSlice())}, v6, rep, records), false, true
	case tDefaultNS:
		var ips []net.IP
		for _, a := range k.nsAddrs(q) {
			if a.ip.Is4() != v6 && !containsIP(ips, a.raw) {
				ips = append(ips, a.raw)
			}
		}
		return k.addrRecords(q.qname, ips, v6, rep, records), false, true
	}
	s := t.svc
	if s.kind != kindExternalName && q.simple() {
		ips := s.v4
		if v6 {
			ips = s.v6
		}
		return k.addrRecords(q.qname, ips, v6, rep, records), false, true
	}
	var buf [8]item
	var ips []net.IP
	for _, it := range k.items(s, q, buf[:0]) {
		if it.a != nil {
			if it.a.ip.Is4() != v6 && !containsIP(ips, it.a.raw) {
				ips = append(ips, it.a.raw)
			}
			continue
		}
		// The ExternalName: "x CNAME x is a direct loop, don't add those".
		if nameMatches(q.lname, it.cname) || len(chain) > maxCnameChainLength || duplicateCNAME(it.cname, chain) {
			continue
		}
		cn := &dns.CNAME{Hdr: k.hdr(q.qname, dns.TypeCNAME), Target: it.cname}
		if zi, zone := k.matchZone(lowerASCII(it.cname)); zi >= 0 {
			q1 := query{qname: it.cname, lname: lowerASCII(it.cname), qtype: q.qtype, zone: zone, zi: zi}
			q1.zoneQ = q1.qname[len(q1.qname)-len(zone):]
			q1.parse()
			next, tc, ok1 := k.address(ctx, w, r, &q1, append(chain, cn), new(replyBuf))
			if ok1 && len(next) > 0 {
				records = append(records, cn)
				records = append(records, next...)
			}
			truncated = truncated || tc
			continue
		}
		up := k.upstream(ctx)
		if up == nil {
			records = append(records, cn) // as when nothing in the server resolves the target
			continue
		}
		m1, err := up.Lookup(ctx, request.Request{W: w, Req: r}, it.cname, q.qtype)
		if err != nil || m1 == nil {
			continue
		}
		truncated = truncated || m1.Truncated
		records = append(records, cn)
		records = append(records, m1.Answer...)
	}
	return k.addrRecords(q.qname, ips, v6, rep, records), truncated, true
}

// addrRecords appends an A or AAAA record named name for each address.
// A single record of a new answer is allocated with the message (rep).
func (k *Kubernetes) addrRecords(name string, ips []net.IP, v6 bool, rep *replyBuf, dst []dns.RR) []dns.RR {
	if len(ips) == 0 {
		return dst
	}
	if dst == nil && len(ips) == 1 && rep.hdr == nil {
		if v6 {
			ar := new(aaaaReply)
			ar.aaaa = dns.AAAA{Hdr: k.hdr(name, dns.TypeAAAA), AAAA: ips[0]}
			ar.rr[0] = &ar.aaaa
			rep.hdr = &ar.msgReply
			return ar.rr[:1]
		}
		ar := new(aReply)
		ar.a = dns.A{Hdr: k.hdr(name, dns.TypeA), A: ips[0]}
		ar.rr[0] = &ar.a
		rep.hdr = &ar.msgReply
		return ar.rr[:1]
	}
	if dst == nil {
		dst = make([]dns.RR, 0, len(ips))
	}
	if v6 {
		rrs := make([]dns.AAAA, len(ips))
		for i, ip := range ips {
			rrs[i] = dns.AAAA{Hdr: k.hdr(name, dns.TypeAAAA), AAAA: ip}
			dst = append(dst, &rrs[i])
		}
		return dst
	}
	rrs := make([]dns.A, len(ips))
	for i, ip := range ips {
		rrs[i] = dns.A{Hdr: k.hdr(name, dns.TypeA), A: ip}
		dst = append(dst, &rrs[i])
	}
	return dst
}

func containsIP(ips []net.IP, ip net.IP) bool {
	for _, have := range ips {
		if have.Equal(ip) {
			return true
		}
	}
	return false
}

// nameMatches is CoreDNS's plugin.Name(name).Matches(child): child is name
// or under it.
func nameMatches(name, child string) bool {
	return inZone(lowerASCII(child), name)
}

func duplicateCNAME(target string, chain []dns.RR) bool {
	for _, rr := range chain {
		if c, ok := rr.(*dns.CNAME); ok && c.Target == target {
			return true
		}
	}
	return false
}

// txt answers TXT: dns-version.<zone> holds the schema version ("There must
// be a TXT record named dns-version.<zone>. that contains the semantic
// version of the DNS schema in use in this cluster"); any other name that
// holds records gets NODATA, and a name without records (even the zone or a
// namespace) NXDOMAIN, as in CoreDNS.
func (k *Kubernetes) txt(q *query) ([]dns.RR, bool) {
	if rest, isVersion := strings.CutPrefix(q.lname, "dns-version."); isVersion && (rest == q.zone || (q.zone == "." && rest == "")) {
		return []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.qname, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: dnsVersionTTL}, Txt: []string{DNSSchemaVersion}}}, true
	}
	t, ok := k.records(q)
	if !ok {
		return nil, false
	}
	switch t.kind {
	case tPod:
		return nil, true
	case tService:
		var buf [8]item
		if len(k.items(t.svc, q, buf[:0])) > 0 {
			return nil, true
		}
	}
	return nil, false
}

// cname answers CNAME: the ExternalName of a service.
func (k *Kubernetes) cname(q *query) ([]dns.RR, bool) {
	t, ok := k.services(q)
	if !ok {
		return nil, false
	}
	if t.kind == tService && t.svc.kind == kindExternalName {
		return []dns.RR{&dns.CNAME{Hdr: k.hdr(q.qname, dns.TypeCNAME), Target: t.svc.external}}, true
	}
	return nil, true
}

// ptr answers PTR (CoreDNS's Reverse): a reverse name of a service or
// endpoint address, else NXDOMAIN; a forward name NODATA or NXDOMAIN as
// its records say.
func (k *Kubernetes) ptr(q *query, rb *replyBuf) ([]dns.RR, bool) {
	ip, isAddr := reverseAddr(q.lname)
	if !isAddr {
		_, ok := k.records(q)
		return nil, ok
	}
	var buf [4]string
	targets := k.ptrTargets(ip, buf[:0])
	switch len(targets) {
	case 0:
		return nil, false
	case 1:
		pr := new(ptrReply)
		pr.ptr = dns.PTR{Hdr: k.hdr(q.qname, dns.TypePTR), Ptr: targets[0]}
		pr.rr[0] = &pr.ptr
		rb.hdr = &pr.msgReply
		return pr.rr[:1], true
	}
	rrs := make([]dns.PTR, len(targets))
	out := make([]dns.RR, len(targets))
	for i, t := range targets {
		rrs[i] = dns.PTR{Hdr: k.hdr(q.qname, dns.TypePTR), Ptr: t}
		out[i] = &rrs[i]
	}
	return out, true
}

type ptrReply struct {
	msgReply
	rr  [1]dns.RR
	ptr dns.PTR
}

type srvReply struct {
	msgReply
	rr   [1]dns.RR
	ex   [1]dns.RR
	srv  dns.SRV
	a    dns.A
	aaaa dns.AAAA
}

// srvOut is one record of an SRV answer: the SRV (unless a duplicate) and
// the target's address (unless a duplicate).
type srvOut struct {
	target string
	port   int32
	a      *addr
	srv    bool
	ext    bool
}

// srv answers SRV (CoreDNS's plugin.SRV): one record per port of the
// service (target: the service name) or per ready endpoint and port
// (target: <hostname>.<service>...), the weights splitting 100 between
// them, and the targets' addresses in the additional section.
func (k *Kubernetes) srv(q *query, rb *replyBuf) (records, extra []dns.RR, ok bool) {
	t, ok := k.services(q)
	if !ok {
		return nil, nil, false
	}
	var buf [16]item
	var its []item
	switch t.kind {
	case tService:
		if t.svc.kind == kindExternalName {
			return nil, nil, true // SRV for external services is not implemented (CoreDNS)
		}
		its = k.items(t.svc, q, buf[:0])
	case tPod:
		a := newAddr(t.pod)
		its = append(buf[:0], item{a: &a, host: q.svc})
	default:
		return nil, nil, true
	}
	if len(its) == 0 {
		return nil, nil, true
	}
	weight := uint16(math.Floor(100.0 / float64(100*len(its)) * 100))
	if weight == 0 {
		weight = 1
	}
	// Duplicates (same target and port; same target and address) are
	// dropped, as CoreDNS's isDuplicate does.
	var dup map[srvSeen]struct{}
	if len(its) > 16 {
		dup = make(map[srvSeen]struct{}, 2*len(its))
	}
	// Every target name is cut out of one string: one allocation for all.
	var tb strings.Builder
	size := 0
	for _, it := range its {
		switch {
		case t.kind == tPod:
			size += len(it.host) + len(q.ns) + 6
		case it.host != "":
			size += len(it.host) + 1 + len(t.svc.suffix)
		default:
			size += len(t.svc.suffix)
		}
		size += len(q.zoneQ)
	}
	tb.Grow(size)
	var ends [16]int
	tends := ends[:0]
	for _, it := range its {
		if it.port == -1 {
			tends = append(tends, tb.Len())
			continue
		}
		switch {
		case t.kind == tPod:
			tb.WriteString(it.host)
			tb.WriteByte('.')
			tb.WriteString(q.ns)
			tb.WriteString(".pod.")
		case it.host != "":
			tb.WriteString(it.host)
			tb.WriteByte('.')
			tb.WriteString(t.svc.suffix)
		default:
			tb.WriteString(t.svc.suffix)
		}
		if q.zoneQ != "." {
			tb.WriteString(q.zoneQ)
		}
		tends = append(tends, tb.Len())
	}
	names := tb.String()
	var obuf [16]srvOut
	outs := obuf[:0]
	nsrv, next, nA := 0, 0, 0
	for i, it := range its {
		if it.port == -1 {
			continue
		}
		start := 0
		if i > 0 {
			start = tends[i-1]
		}
		target := names[start:tends[i]]
		o := srvOut{target: target, port: it.port, a: it.a, srv: true, ext: true}
		if dup != nil {
			if _, d := dup[srvSeen{target: target, port: it.port}]; d {
				o.srv = false
			} else {
				dup[srvSeen{target: target, port: it.port}] = struct{}{}
			}
			if _, d := dup[srvSeen{target: target, isAddr: true, ip: ipKeyOf(it.a.ip)}]; d {
				o.ext = false
			} else {
				dup[srvSeen{target: target, isAddr: true, ip: ipKeyOf(it.a.ip)}] = struct{}{}
			}
		} else {
			for i := range outs {
				p := &outs[i]
				if p.target != target {
					continue
				}
				if p.port == it.port {
					o.srv = false
				}
				if p.a.ip == it.a.ip {
					o.ext = false
				}
			}
		}
		if o.srv {
			nsrv++
		}
		if o.ext {
			next++
			if o.a.ip.Is4() {
				nA++
			}
		}
		outs = append(outs, o)
	}
	if nsrv == 0 {
		return nil, nil, true
	}
	if nsrv == 1 && next == 1 && len(outs) == 1 {
		o := outs[0]
		sr := new(srvReply)
		sr.srv = dns.SRV{Hdr: k.hdr(q.qname, dns.TypeSRV), Weight: weight, Port: uint16(o.port), Target: o.target}
		sr.rr[0] = &sr.srv
		if o.a.ip.Is4() {
			sr.a = dns.A{Hdr: k.hdr(o.target, dns.TypeA), A: o.a.raw}
			sr.ex[0] = &sr.a
		} else {
			sr.aaaa = dns.AAAA{Hdr: k.hdr(o.target, dns.TypeAAAA), AAAA: o.a.raw}
			sr.ex[0] = &sr.aaaa
		}
		rb.hdr = &sr.msgReply
		return sr.rr[:1], sr.ex[:1], true
	}
	srvs := make([]dns.SRV, 0, nsrv)
	as := make([]dns.A, 0, nA)
	aaaas := make([]dns.AAAA, 0, next-nA)
	rrs := make([]dns.RR, 0, nsrv+next)
	records, extra = rrs[:0:nsrv], rrs[nsrv:nsrv:nsrv+next]
	for _, o := range outs {
		if o.srv {
			srvs = append(srvs, dns.SRV{Hdr: k.hdr(q.qname, dns.TypeSRV), Weight: weight, Port: uint16(o.port), Target: o.target})
			records = append(records, &srvs[len(srvs)-1])
		}
		if o.ext {
			if o.a.ip.Is4() {
				as = append(as, dns.A{Hdr: k.hdr(o.target, dns.TypeA), A: o.a.raw})
				extra = append(extra, &as[len(as)-1])
			} else {
				aaaas = append(aaaas, dns.AAAA{Hdr: k.hdr(o.target, dns.TypeAAAA), AAAA: o.a.raw})
				extra = append(extra, &aaaas[len(aaaas)-1])
			}
		}
	}
	return records, extra, true
}

type srvSeen struct {
	target string
	port   int32
	isAddr bool
	ip     ipKey
}

// nsAddr is an address this server is reached at, with the name that
// holds it.
type nsAddr struct {
	name string
	addr
}

// nsAddrs is CoreDNS's nsAddrs: for each address the server is bound to
// that is a ready endpoint of a service, the service's records (its
// cluster IPs, or for a headless one its endpoints); else the bound
// addresses themselves as ns.dns.<zone>.
func (k *Kubernetes) nsAddrs(q *query) []nsAddr {
	var out []nsAddr
	found := false
	for _, lip := range k.localIPs {
		refs, ok := k.ix().epByIP.get(ipKeyOf(lip))
		if !ok {
			continue
		}
		var visited []*epSlice
		for i := 0; i < refs.len(); i++ {
			es := refs.at(i).slice
			if containsSlice(visited, es) {
				continue
			}
			visited = append(visited, es)
			found = true
			s, ok := k.ix().services.get(es.svcKey)
			if !ok {
				continue
			}
			name := s.suffix + q.zoneQ
			if q.zoneQ == "." {
				name = s.suffix
			}
			if s.kind == kindHeadless {
				for _, a := range es.addrs {
					out = append(out, nsAddr{a.host + "." + name, a.addr})
				}
				continue
			}
			for _, a := range s.clusterIPs {
				out = append(out, nsAddr{name, a})
			}
		}
	}
	if !found {
		name := joinZone("ns.dns.", q.zoneQ)
		for _, lip := range k.localIPs {
			out = append(out, nsAddr{name, newAddr(lip)})
		}
	}
	return out
}

func containsSlice(list []*epSlice, s *epSlice) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nsRecords answers NS at the zone apex: an NS record per distinct name
// of nsAddrs, their addresses in the additional section.
func (k *Kubernetes) nsRecords(q *query) (records, extra []dns.RR) {
	seen := map[string]bool{}
	for _, a := range k.nsAddrs(q) {
		if a.ip.Is4() {
			extra = append(extra, &dns.A{Hdr: k.hdr(a.name, dns.TypeA), A: a.raw})
		} else {
			extra = append(extra, &dns.AAAA{Hdr: k.hdr(a.name, dns.TypeAAAA), AAAA: a.raw})
		}
		if seen[a.name] {
			continue
		}
		seen[a.name] = true
		records = append(records, &dns.NS{Hdr: k.hdr(q.qname, dns.TypeNS), Ns: a.name})
	}
	return records, extra
}
