package file

import (
	"context"
	"errors"
	"strings"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// Result is the kind of answer a lookup found.
type Result int

const (
	// Success is a positive answer (or NODATA at an empty non-terminal,
	// as CoreDNS).
	Success Result = iota
	// NameError is NXDOMAIN.
	NameError
	// Delegation is a referral to the NS records of a child zone.
	Delegation
	// NoData is NODATA: the name exists without records of the type.
	NoData
	// ServerFailure is SERVFAIL.
	ServerFailure
)

// loopKey carries, in a query's context, how many CNAME/DNAME lookups
// through the server this query has caused (CoreDNS's dnsserver.LoopKey).
type loopKey struct{}

// Upstream resolves names the zone does not hold (CNAME targets outside
// it) by asking the whole server again.
type Upstream interface {
	Lookup(ctx context.Context, state request.Request, name string, qtype uint16) (*dns.Msg, error)
}

// selfUpstream asks the server that answers the query (CoreDNS's
// upstream.Upstream): the query goes through the server's routing and the
// chain of the block serving name.
type selfUpstream struct{}

var errNoServer = errors.New("no full server is running")

func (selfUpstream) Lookup(ctx context.Context, state request.Request, name string, qtype uint16) (*dns.Msg, error) {
	s := dnsserver.FromContext(ctx)
	if s == nil {
		return nil, errNoServer
	}
	req := state.Req.Copy()
	req.Question[0] = dns.Question{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}
	nw := &nonWriter{ResponseWriter: state.W}
	s.ServeDNS(ctx, nw, req)
	return nw.Msg, nil
}

// nonWriter keeps the message written instead of sending it.
type nonWriter struct {
	dns.ResponseWriter
	Msg *dns.Msg
}

func (w *nonWriter) WriteMsg(m *dns.Msg) error { w.Msg = m; return nil }

func (w *nonWriter) Write(buf []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return 0, err
	}
	w.Msg = m
	return len(buf), nil
}

// Lookup looks qname up for the query in state, as CoreDNS's file
// plugin: it returns the answer, authority and additional sections and
// the kind of result. DNSSEC records are included when the query has DO.
func (z *Zone) Lookup(ctx context.Context, state request.Request, qname string, up Upstream) ([]dns.RR, []dns.RR, []dns.RR, Result) {
	qtype := state.QType()
	do := state.Do()

	zd := z.data.Load()
	ap, tr := zd.Apex, zd.tree
	if ap.SOA == nil {
		return nil, nil, nil, ServerFailure
	}

	if qname == z.origin {
		switch qtype {
		case dns.TypeSOA:
			return ap.soa(do), ap.ns(do), nil, Success
		case dns.TypeNS:
			nsrrs := ap.ns(do)
			glue := tr.Glue(nsrrs, do) // technically not glue
			return nsrrs, nil, glue, Success
		}
	}

	var (
		found, shot   bool
		parts         string
		i             int
		elm, wildElem *elem
	)

	loop, _ := ctx.Value(loopKey{}).(int)
	if loop > 8 {
		// The 9th time here: a loop. Better an incomplete answer than
		// none at all is not worth the risk; SERVFAIL.
		return nil, nil, nil, ServerFailure
	}

	// Per label from the right, see whether the name exists, to find
	// delegations; where it does not, remember a wildcard at that level.
	for {
		parts, shot = z.nameFromRight(qname, i)
		if shot {
			break
		}
		elm, found = tr.Search(parts)
		if !found {
			// Empty non-terminals are not in the tree: keep going; a
			// wildcard found here is used if the whole name is missing.
			if wild, ok := tr.Search(replaceWithAsteriskLabel(parts)); ok {
				wildElem = wild
			}
			i++
			continue
		}

		// DNAME: synthesize a CNAME (RFC 6672).
		if dnamerrs := elm.Type(dns.TypeDNAME); dnamerrs != nil {
			dname := dnamerrs[0]
			if cname := synthesizeCNAME(state.Name(), dname.(*dns.DNAME)); cname != nil {
				var (
					answer, ns, extra []dns.RR
					rcode             Result
				)
				if qtype == dns.TypeCNAME {
					answer = []dns.RR{cname}
					ns = ap.ns(do)
					rcode = Success
				} else {
					ctx = context.WithValue(ctx, loopKey{}, loop+1)
					answer, ns, extra, rcode = z.externalLookup(ctx, state, elm, []dns.RR{cname}, up)
				}
				out := append([]dns.RR{}, dnamerrs...)
				if do {
					out = append(out, subTypeSignature(elm.Type(dns.TypeRRSIG), dns.TypeDNAME)...)
				}
				return append(out, answer...), ns, extra, rcode
			}
		}

		// NS below the apex: a delegation, unless this is a DS query
		// for exactly the delegated name.
		if nsrrs := elm.Type(dns.TypeNS); nsrrs != nil {
			if qtype == dns.TypeDS && elm.Name() == qname {
				i++
				continue
			}
			glue := tr.Glue(nsrrs, do)
			auth := append([]dns.RR{}, nsrrs...)
			if do {
				auth = append(auth, typeFromElem(elm, dns.TypeDS, do)...)
			}
			return nil, auth, glue, Delegation
		}
		i++
	}

	if found && !shot {
		return nil, nil, nil, ServerFailure
	}

	// The whole name exists.
	if found && shot {
		if rrs := elm.Type(dns.TypeCNAME); len(rrs) > 0 && qtype != dns.TypeCNAME {
			ctx = context.WithValue(ctx, loopKey{}, loop+1)
			return z.externalLookup(ctx, state, elm, rrs, up)
		}
		rrs := elm.Type(qtype)
		if len(rrs) == 0 { // NODATA
			ret := ap.soa(do)
			if do {
				ret = append(ret, typeFromElem(elm, dns.TypeNSEC, do)...)
			}
			return nil, ret, nil, NoData
		}
		// Additional section for MX and SRV targets in the zone.
		additional := z.additionalProcessing(tr, rrs, do)
		rrs = append([]dns.RR{}, rrs...)
		if do {
			rrs = append(rrs, subTypeSignature(elm.Type(dns.TypeRRSIG), qtype)...)
		}
		return rrs, ap.ns(do), additional, Success
	}

	// The name does not exist, but a wildcard does.
	if wildElem != nil {
		if rrs := wildElem.TypeForWildcard(dns.TypeCNAME, qname); len(rrs) > 0 && qtype != dns.TypeCNAME {
			ctx = context.WithValue(ctx, loopKey{}, loop+1)
			return z.externalLookup(ctx, state, wildElem, rrs, up)
		}
		rrs := wildElem.TypeForWildcard(qtype, qname)
		if len(rrs) == 0 { // NODATA
			ret := ap.soa(do)
			if do {
				ret = append(ret, typeFromElem(wildElem, dns.TypeNSEC, do)...)
			}
			return nil, ret, nil, NoData
		}
		auth := ap.ns(do)
		if do {
			// An NSEC proves no closer name exists under the wildcard.
			if deny, found := tr.Prev(qname); found {
				auth = append(auth, typeFromElem(deny, dns.TypeNSEC, do)...)
			}
			sigs := wildElem.TypeForWildcard(dns.TypeRRSIG, qname)
			rrs = append(rrs, subTypeSignature(sigs, qtype)...)
		}
		return rrs, auth, nil, Success
	}

	rcode := NameError
	// An empty non-terminal: a longer name exists below qname. NODATA,
	// but with NXDOMAIN's authority (CoreDNS returns Success here).
	if x, found := tr.Next(qname); found && dns.IsSubDomain(qname, x.Name()) {
		rcode = Success
	}

	ret := ap.soa(do)
	if do {
		deny, found := tr.Prev(qname)
		if !found {
			return nil, ret, nil, rcode
		}
		ret = append(ret, typeFromElem(deny, dns.TypeNSEC, do)...)
		if rcode != NameError {
			return nil, ret, nil, rcode
		}
		if ce, found := z.closestEncloser(tr, qname); found {
			// wildcard denial
			if ss, found := tr.Prev("*." + ce.Name()); found && ss.Name() != deny.Name() {
				ret = append(ret, typeFromElem(ss, dns.TypeNSEC, do)...)
			}
		}
	}
	return nil, ret, nil, rcode
}

// typeFromElem returns the records of type tp of e, with their
// signatures when do.
func typeFromElem(e *elem, tp uint16, do bool) []dns.RR {
	rrs := append([]dns.RR{}, e.Type(tp)...)
	if do {
		rrs = append(rrs, subTypeSignature(e.Type(dns.TypeRRSIG), tp)...)
	}
	return rrs
}

func (a Apex) soa(do bool) []dns.RR {
	if do {
		return append([]dns.RR{a.SOA}, a.SIGSOA...)
	}
	return []dns.RR{a.SOA}
}

func (a Apex) ns(do bool) []dns.RR {
	out := append([]dns.RR{}, a.NS...)
	if do {
		out = append(out, a.SIGNS...)
	}
	return out
}

// externalLookup follows the CNAME chain in rrs inside the zone (at most
// 8 links) and then asks up for a target the zone does not hold.
func (z *Zone) externalLookup(ctx context.Context, state request.Request, e *elem, rrs []dns.RR, up Upstream) ([]dns.RR, []dns.RR, []dns.RR, Result) {
	qtype := state.QType()
	do := state.Do()
	zd := z.data.Load()
	tr := zd.tree

	rrs = append([]dns.RR{}, rrs...)
	if do {
		rrs = append(rrs, subTypeSignature(e.Type(dns.TypeRRSIG), dns.TypeCNAME)...)
	}

	target := rrs[0].(*dns.CNAME).Target
	e, _ = tr.Search(target)
	if e == nil {
		lookupRRs, result := z.doLookup(ctx, state, target, qtype, up)
		return append(rrs, lookupRRs...), zd.ns(do), nil, result
	}

	for i := 0; ; {
		cname := e.Type(dns.TypeCNAME)
		if len(cname) == 0 {
			break
		}
		rrs = append(rrs, cname...)
		if do {
			rrs = append(rrs, subTypeSignature(e.Type(dns.TypeRRSIG), dns.TypeCNAME)...)
		}
		target := cname[0].(*dns.CNAME).Target
		e, _ = tr.Search(target)
		if e == nil {
			lookupRRs, result := z.doLookup(ctx, state, target, qtype, up)
			return append(rrs, lookupRRs...), zd.ns(do), nil, result
		}
		i++
		if i > 8 {
			return rrs, zd.ns(do), nil, Success
		}
	}

	if targets := e.Type(qtype); len(targets) > 0 {
		rrs = append(rrs, targets...)
		if do {
			rrs = append(rrs, subTypeSignature(e.Type(dns.TypeRRSIG), qtype)...)
		}
	}
	return rrs, zd.ns(do), nil, Success
}

func (z *Zone) doLookup(ctx context.Context, state request.Request, target string, qtype uint16, up Upstream) ([]dns.RR, Result) {
	if up == nil {
		up = selfUpstream{}
	}
	m, err := up.Lookup(ctx, state, target, qtype)
	if err != nil {
		return nil, ServerFailure
	}
	if m == nil {
		return nil, Success
	}
	switch {
	case m.Rcode == dns.RcodeNameError:
		return m.Answer, NameError
	case m.Rcode == dns.RcodeServerFailure:
		return m.Answer, ServerFailure
	case m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0:
		return m.Answer, NoData
	}
	return m.Answer, Success
}

// additionalProcessing returns the A and AAAA records (and signatures) of
// MX and SRV targets inside the zone.
func (z *Zone) additionalProcessing(tr *tree, answer []dns.RR, do bool) (extra []dns.RR) {
	for _, rr := range answer {
		name := ""
		switch x := rr.(type) {
		case *dns.SRV:
			name = x.Target
		case *dns.MX:
			name = x.Mx
		}
		if len(name) == 0 || !dns.IsSubDomain(z.origin, name) {
			continue
		}
		e, _ := tr.Search(name)
		if e == nil {
			continue
		}
		sigs := e.Type(dns.TypeRRSIG)
		for _, addr := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if a := e.Type(addr); a != nil {
				extra = append(extra, a...)
				if do {
					extra = append(extra, subTypeSignature(sigs, addr)...)
				}
			}
		}
	}
	return extra
}

// closestEncloser returns the closest existing ancestor of qname, or the
// apex's element.
func (z *Zone) closestEncloser(tr *tree, qname string) (*elem, bool) {
	offset, end := dns.NextLabel(qname, 0)
	for !end {
		if e, _ := tr.Search(qname); e != nil {
			return e, true
		}
		qname = qname[offset:]
		offset, end = dns.NextLabel(qname, 0)
	}
	return tr.Search(z.origin)
}

// replaceWithAsteriskLabel replaces the left-most label with "*".
func replaceWithAsteriskLabel(qname string) string {
	i, shot := dns.NextLabel(qname, 0)
	if shot {
		return ""
	}
	return "*." + qname[i:]
}

// substituteDNAME performs the DNAME substitution of RFC 6672: "" when
// qname is not below owner.
func substituteDNAME(qname, owner, target string) string {
	if dns.IsSubDomain(owner, qname) && qname != owner {
		labels := dns.SplitDomainName(qname)
		labels = append(labels[0:len(labels)-dns.CountLabel(owner)], dns.SplitDomainName(target)...)
		return join(labels)
	}
	return ""
}

func join(labels []string) string {
	return dns.Fqdn(strings.Join(labels, "."))
}

// synthesizeCNAME returns the CNAME qname -> DNAME substitution, with the
// DNAME's TTL; nil when qname is not below the DNAME.
func synthesizeCNAME(qname string, d *dns.DNAME) *dns.CNAME {
	target := substituteDNAME(qname, d.Header().Name, d.Target)
	if target == "" {
		return nil
	}
	return &dns.CNAME{
		Hdr:    dns.RR_Header{Name: qname, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: d.Header().Ttl},
		Target: target,
	}
}
