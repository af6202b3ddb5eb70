package hosts

import (
	"context"
	"net"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// Hosts serves A, AAAA and PTR records from a hosts file and inline
// entries.
type Hosts struct {
	Next plugin.Handler
	*Hostsfile

	Fall plugin.Fall

	rl reloader
}

// Name implements plugin.Handler.
func (h *Hosts) Name() string { return pluginName }

// ServeDNS implements plugin.Handler.
func (h *Hosts) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	qname := state.Name()
	qtype := state.QType()

	zone := plugin.LongestZone(h.Origins, qname)
	if zone == "" && qtype != dns.TypePTR {
		// Not ours, whatever fallthrough says. (PTR zones need not be in
		// Origins.)
		return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	}

	var answers []dns.RR
	switch qtype {
	case dns.TypePTR:
		addr, ok := addrFromReverse(qname)
		var names []string
		if ok {
			names = h.namesOf(addr)
		}
		if len(names) == 0 {
			// No entry for the address: the next plugin, whatever
			// fallthrough says, as in CoreDNS.
			return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
		}
		answers = ptr(qname, h.options.ttl, names)
	case dns.TypeA:
		f, i := h.lookupV4(qname)
		answers = a(qname, h.options.ttl, f, i)
	case dns.TypeAAAA:
		f, i := h.lookupV6(qname)
		answers = aaaa(qname, h.options.ttl, f, i)
	}

	// "Only on NXDOMAIN we will fallthrough."
	if len(answers) == 0 && !h.otherRecordsExist(qname) {
		if h.Fall.Through(qname) {
			return plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
		}
		// CoreDNS: "We want to send an NXDOMAIN, but because of
		// /etc/hosts' setup we don't have a SOA, so we make it SERVFAIL".
		return dns.RcodeServerFailure, nil
	}

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	m.Answer = answers
	w.WriteMsg(m) //nolint:errcheck // a failed write is the client's loss, as in CoreDNS
	return dns.RcodeSuccess, nil
}

func (h *Hosts) otherRecordsExist(qname string) bool {
	if f, i := h.lookupV4(qname); len(f)+len(i) > 0 {
		return true
	}
	f, i := h.lookupV6(qname)
	return len(f)+len(i) > 0
}

// a makes the A records of name: fresh records each time, so that later
// plugins may change them (TTL, owner) without touching the data.
func a(name string, ttl uint32, lists ...[]net.IP) []dns.RR {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	if n == 0 {
		return nil
	}
	rrs := make([]dns.RR, 0, n)
	recs := make([]dns.A, n)
	for _, l := range lists {
		for _, ip := range l {
			r := &recs[len(rrs)]
			r.Hdr = dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}
			r.A = ip
			rrs = append(rrs, r)
		}
	}
	return rrs
}

func aaaa(name string, ttl uint32, lists ...[]net.IP) []dns.RR {
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	if n == 0 {
		return nil
	}
	rrs := make([]dns.RR, 0, n)
	recs := make([]dns.AAAA, n)
	for _, l := range lists {
		for _, ip := range l {
			r := &recs[len(rrs)]
			r.Hdr = dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}
			r.AAAA = ip
			rrs = append(rrs, r)
		}
	}
	return rrs
}

func ptr(name string, ttl uint32, names []string) []dns.RR {
	rrs := make([]dns.RR, len(names))
	recs := make([]dns.PTR, len(names))
	for i, n := range names {
		r := &recs[i]
		r.Hdr = dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}
		r.Ptr = dns.Fqdn(n)
		rrs[i] = r
	}
	return rrs
}
