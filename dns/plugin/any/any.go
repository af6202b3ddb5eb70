package any

import (
	"context"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// Any answers ANY queries with one HINFO record and passes every other
// query on.
type Any struct {
	Next plugin.Handler
}

// The HINFO CoreDNS synthesizes: RFC 8482 section 4.2 lets the responder
// choose the CPU and OS strings; CoreDNS uses these, with TTL 8482.
const (
	hinfoCPU = "ANY obsoleted"
	hinfoOS  = "See RFC 8482"
	hinfoTTL = 8482
)

// ServeDNS implements plugin.Handler.
func (a Any) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) == 0 || r.Question[0].Qtype != dns.TypeANY {
		return plugin.NextOrFailure(a.Name(), a.Next, ctx, w, r)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	hdr := dns.RR_Header{Name: r.Question[0].Name, Ttl: hinfoTTL, Class: dns.ClassINET, Rrtype: dns.TypeHINFO}
	m.Answer = []dns.RR{&dns.HINFO{Hdr: hdr, Cpu: hinfoCPU, Os: hinfoOS}}
	w.WriteMsg(m) //nolint:errcheck // a failed write is the client's loss, as in CoreDNS
	return dns.RcodeSuccess, nil
}

// Name implements plugin.Handler.
func (a Any) Name() string { return pluginName }
