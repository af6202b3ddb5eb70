package alias

import (
	"context"
	"math"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// Alias flattens CNAMEs at the zone apex in the answers of the plugins
// after it.
type Alias struct {
	Next plugin.Handler
}

// ServeDNS implements plugin.Handler.
func (a Alias) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(a.Name(), a.Next, ctx, &ResponseModifier{ResponseWriter: w}, r)
}

// Name implements plugin.Handler.
func (a Alias) Name() string { return pluginName }

// Ready implements the ready plugin's readiness: alias is always ready,
// as the upstream plugin reports.
func (a Alias) Ready() bool { return true }

// ResponseModifier is the writer the next plugins answer through.
type ResponseModifier struct {
	dns.ResponseWriter
}

// WriteMsg flattens res and writes it.
func (r *ResponseModifier) WriteMsg(res *dns.Msg) error {
	return r.ResponseWriter.WriteMsg(Flatten(res))
}

// Write passes packed answers on unchanged, as the upstream plugin does.
func (r *ResponseModifier) Write(buf []byte) (int, error) { return r.ResponseWriter.Write(buf) }

// Flatten returns res with the apex CNAME chain flattened, as the
// upstream alias plugin's WriteMsg does:
//
//   - the zone is guessed from the authority section: the owner of its
//     (last) NS record;
//   - going through the answer in order, a CNAME owned by the zone (then
//     by the target found so far) is removed and its target followed,
//     keeping the smallest TTL;
//   - every record owned by the last target is renamed to the zone, its
//     TTL lowered to that smallest TTL.
//
// An answer without NS in authority, or without a CNAME at the zone, is
// returned as it is. res itself and its records are not changed: the
// result is a shallow copy with copied records where they differ.
func Flatten(res *dns.Msg) *dns.Msg {
	if res == nil {
		return res
	}
	var zone string
	for _, rr := range res.Ns {
		if rr.Header().Rrtype == dns.TypeNS {
			zone = rr.Header().Name
		}
	}
	if zone == "" {
		return res
	}
	cname, ttl := zone, uint32(math.MaxUint32)
	var answer []dns.RR
	removed := false
	for _, rr := range res.Answer {
		if c, ok := rr.(*dns.CNAME); ok && c.Hdr.Name == cname {
			cname = c.Target
			ttl = min(ttl, c.Hdr.Ttl)
			removed = true
			continue
		}
		answer = append(answer, rr)
	}
	if !removed {
		// Nothing flattened: the upstream plugin's renaming step would
		// only "rename" the zone's own records to the zone.
		return res
	}
	for i, rr := range answer {
		if rr.Header().Name == cname {
			cp := dns.Copy(rr)
			cp.Header().Name = zone
			cp.Header().Ttl = min(ttl, cp.Header().Ttl)
			answer[i] = cp
		}
	}
	out := *res
	out.Answer = answer
	return &out
}
