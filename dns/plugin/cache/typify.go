package cache

import (
	"time"

	"github.com/miekg/dns"
)

// responseType classifies an answer, as CoreDNS's pkg/response.Type.
type responseType int

const (
	typeNoError     responseType = iota // positive answer
	typeNameError                       // NXDOMAIN with SOA
	typeServerError                     // SERVFAIL or NOTIMP
	typeNoData                          // NOERROR, no answer, SOA
	typeDelegation                      // NOERROR, NS in authority
	typeMeta                            // NOTIFY, AXFR, IXFR
	typeUpdate                          // dynamic update
	typeOtherError                      // anything else: never cached
)

// typify is CoreDNS's response.Typify.
func typify(m *dns.Msg, t time.Time) responseType {
	if m == nil {
		return typeOtherError
	}
	do := false
	if opt := m.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	if m.Opcode == dns.OpcodeUpdate {
		return typeUpdate
	}
	if m.Opcode == dns.OpcodeNotify {
		return typeMeta
	}
	if len(m.Question) > 0 && (m.Question[0].Qtype == dns.TypeAXFR || m.Question[0].Qtype == dns.TypeIXFR) {
		return typeMeta
	}
	// Expired signatures are not cached when the client cares (DO).
	if do && (expiredRRSIG(m.Answer, t) || expiredRRSIG(m.Ns, t) || expiredRRSIG(m.Extra, t)) {
		return typeOtherError
	}
	if len(m.Answer) > 0 && m.Rcode == dns.RcodeSuccess {
		return typeNoError
	}
	soa := false
	ns := 0
	for _, r := range m.Ns {
		switch r.Header().Rrtype {
		case dns.TypeSOA:
			soa = true
		case dns.TypeNS:
			ns++
		}
	}
	if soa && m.Rcode == dns.RcodeSuccess {
		return typeNoData
	}
	if soa && m.Rcode == dns.RcodeNameError {
		return typeNameError
	}
	if m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeNotImplemented {
		return typeServerError
	}
	if ns > 0 && m.Rcode == dns.RcodeSuccess {
		return typeDelegation
	}
	if m.Rcode == dns.RcodeSuccess {
		return typeNoError
	}
	return typeOtherError
}

func expiredRRSIG(rrs []dns.RR, t time.Time) bool {
	for _, r := range rrs {
		if sig, ok := r.(*dns.RRSIG); ok && !sig.ValidityPeriod(t) {
			return true
		}
	}
	return false
}

// minimalTTL is CoreDNS's dnsutil.MinimalTTL: the lowest TTL of every
// record but OPT (for a denial that is the SOA record's own TTL, not its
// MINIMUM field), 5s for other types and for empty answers, at most 1h.
func minimalTTL(m *dns.Msg, mt responseType) time.Duration {
	if mt != typeNoError && mt != typeNameError && mt != typeNoData {
		return minTTL
	}
	if len(m.Answer)+len(m.Ns) == 0 &&
		(len(m.Extra) == 0 || (len(m.Extra) == 1 && m.Extra[0].Header().Rrtype == dns.TypeOPT)) {
		return minTTL
	}
	least := uint32(maxTTL / time.Second)
	for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, r := range rrs {
			h := r.Header()
			if h.Rrtype == dns.TypeOPT {
				continue
			}
			if h.Ttl < least {
				least = h.Ttl
			}
		}
	}
	return time.Duration(least) * time.Second
}
