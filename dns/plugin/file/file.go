package file

import (
	"context"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// File serves zones read from RFC 1035 zone files.
type File struct {
	Next plugin.Handler
	Zones

	// Fall lists the zones whose names the zone does not hold are passed
	// to the next plugin.
	Fall plugin.Fall

	// Upstream resolves CNAME targets outside the zones; nil asks the
	// server answering the query (as CoreDNS does).
	Upstream Upstream
}

// Zones maps zone names to their Zone.
type Zones struct {
	Z     map[string]*Zone // by origin
	Names []string         // the keys of Z, in the order written
}

// Name implements plugin.Handler.
func (f *File) Name() string { return pluginName }

// ServeDNS implements plugin.Handler.
func (f *File) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	qname := state.Name()

	zone := plugin.LongestZone(f.Zones.Names, qname)
	if zone == "" {
		// file is authoritative: with no next plugin, REFUSED is more
		// correct than SERVFAIL.
		if f.Next == nil {
			return dns.RcodeRefused, nil
		}
		return plugin.NextOrFailure(f.Name(), f.Next, ctx, w, r)
	}
	z, ok := f.Z[zone]
	if !ok || z == nil {
		return dns.RcodeServerFailure, nil
	}

	// Zone transfers need the transfer plugin, which is not here.
	if qt := state.QType(); qt == dns.TypeAXFR || qt == dns.TypeIXFR {
		return dns.RcodeRefused, nil
	}
	// NOTIFY is only for secondary zones, which this plugin does not
	// have: dropped, as CoreDNS drops notifies for primary zones.
	if r.Opcode == dns.OpcodeNotify {
		z.logger.Info("file: dropping notify", "from", state.IP(), "zone", zone)
		return dns.RcodeSuccess, nil
	}

	answer, ns, extra, result := z.Lookup(ctx, state, qname, f.Upstream)

	// "Only on NXDOMAIN we will fallthrough"; Lookup answers Success
	// without records for empty non-terminals, which falls through too.
	if len(answer) == 0 && (result == NameError || result == Success) && f.Fall.Through(qname) {
		return plugin.NextOrFailure(f.Name(), f.Next, ctx, w, r)
	}

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	// The records are the zone's: later plugins (cache TTLs, alias
	// owner names) get copies to change.
	m.Answer, m.Ns, m.Extra = copyRRs(answer), copyRRs(ns), copyRRs(extra)

	switch result {
	case Success, NoData:
	case NameError:
		m.Rcode = dns.RcodeNameError
	case Delegation:
		m.Authoritative = false
	case ServerFailure:
		// A SERVFAIL after a CNAME to an outside name keeps the CNAME
		// (RFC 6604 section 3: the rcode is the target's).
		if len(m.Answer) == 0 {
			return dns.RcodeServerFailure, nil
		}
		m.Rcode = dns.RcodeServerFailure
	}
	w.WriteMsg(m) //nolint:errcheck // a failed write is the client's loss, as in CoreDNS
	return dns.RcodeSuccess, nil
}

func copyRRs(rrs []dns.RR) []dns.RR {
	if len(rrs) == 0 {
		return nil
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		out[i] = dns.Copy(rr)
	}
	return out
}
