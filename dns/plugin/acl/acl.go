package acl

import (
	"context"
	"log/slog"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// ACL enforces access control policies on DNS queries.
type ACL struct {
	Next  plugin.Handler
	Rules []rule

	metrics *metrics
	logger  *slog.Logger
}

// rule is a set of zones and the policies enforced on them, in order.
type rule struct {
	zones    []string
	policies []policy
}

type action int

const (
	actionNone action = iota
	actionAllow
	actionBlock
	actionFilter
	actionDrop
)

// policy performs its action on queries matched by type and source.
type policy struct {
	action   action
	allTypes bool
	qtypes   []uint16
	allNets  bool
	nets     []netip.Prefix
}

func (p *policy) matchType(qtype uint16) bool {
	if p.allTypes {
		return true
	}
	for _, t := range p.qtypes {
		if t == qtype {
			return true
		}
	}
	return false
}

func (p *policy) matchNet(ip netip.Addr) bool {
	if p.allNets {
		return true
	}
	for _, n := range p.nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Name implements plugin.Handler.
func (a *ACL) Name() string { return pluginName }

// ServeDNS implements plugin.Handler.
func (a *ACL) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	qname := state.Name()

	for i := range a.Rules {
		rl := &a.Rules[i]
		zone := plugin.LongestZone(rl.zones, qname)
		if zone == "" {
			continue
		}
		switch a.matchWithPolicies(rl.policies, w, state.QType()) {
		case actionDrop:
			// "drop however returns no response to the client."
			a.metrics.dropped.WithLabelValues(dnsserver.ServerName(ctx), zone, "").Inc()
			return dns.RcodeSuccess, nil
		case actionBlock:
			// "block returns status code of REFUSED", with the Extended DNS
			// Error "Blocked" (RFC 8914 code 15) as CoreDNS adds.
			m := new(dns.Msg).SetRcode(r, dns.RcodeRefused).SetEdns0(4096, true)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeBlocked})
			w.WriteMsg(m) //nolint:errcheck // a failed write is the client's loss, as in CoreDNS
			a.metrics.blocked.WithLabelValues(dnsserver.ServerName(ctx), zone, "").Inc()
			return dns.RcodeSuccess, nil
		case actionAllow:
			a.metrics.allowed.WithLabelValues(dnsserver.ServerName(ctx), "").Inc()
			return plugin.NextOrFailure(a.Name(), a.Next, ctx, w, r)
		case actionFilter:
			// "filter returns an empty set NOERROR", with the Extended DNS
			// Error "Filtered" (RFC 8914 code 17).
			m := new(dns.Msg).SetRcode(r, dns.RcodeSuccess).SetEdns0(4096, true)
			m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeFiltered})
			w.WriteMsg(m) //nolint:errcheck
			a.metrics.filtered.WithLabelValues(dnsserver.ServerName(ctx), zone, "").Inc()
			return dns.RcodeSuccess, nil
		}
	}
	// "The default action is allow, which means a DNS query not matched by
	// any rules will be allowed to recurse."
	a.metrics.allowed.WithLabelValues(dnsserver.ServerName(ctx), "").Inc()
	return plugin.NextOrFailure(a.Name(), a.Next, ctx, w, r)
}

// matchWithPolicies returns the action of the first policy matching the
// query's type and source address; actionNone when none matches. A source
// address that cannot be read is blocked, as in CoreDNS.
func (a *ACL) matchWithPolicies(policies []policy, w dns.ResponseWriter, qtype uint16) action {
	ip, ok := sourceAddr(w)
	if !ok {
		a.logger.Error("acl: blocking request, unable to parse source address", "addr", remoteString(w))
		return actionBlock
	}
	for i := range policies {
		p := &policies[i]
		if !p.matchType(qtype) || !p.matchNet(ip) {
			continue
		}
		return p.action
	}
	return actionNone
}

// sourceAddr reads the client's address without allocating for the usual
// UDP and TCP addresses. IPv4-mapped IPv6 addresses count as IPv4 and an
// IPv6 zone is ignored, as CoreDNS's net.ParseIP based matching does.
func sourceAddr(w dns.ResponseWriter) (netip.Addr, bool) {
	if w == nil {
		return netip.Addr{}, false
	}
	var ip net.IP
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	case nil:
		return netip.Addr{}, false
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err == nil {
			return ap.Addr().Unmap().WithZone(""), true
		}
		host, _, err := net.SplitHostPort(a.String())
		if err != nil {
			host = a.String()
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return netip.Addr{}, false
		}
		return addr.Unmap().WithZone(""), true
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	return addr.Unmap(), true
}

func remoteString(w dns.ResponseWriter) string {
	if w == nil || w.RemoteAddr() == nil {
		return ""
	}
	return w.RemoteAddr().String()
}
