// Package loadbalance is the DNS plugin "loadbalance" of Switchboard, a
// port of CoreDNS 1.14.1's plugin/loadbalance: it shuffles the A, AAAA and
// MX records of answers (round_robin), or moves a weighted random address
// to the top (weighted WEIGHTFILE), optionally putting addresses of
// preferred subnets first. It owns only its package and must not touch
// other plugins' state.
package loadbalance

import (
	"context"
	"log/slog"
	"math/rand/v2"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const (
	randomShufflePolicy      = "round_robin"
	weightedRoundRobinPolicy = "weighted"
)

// LoadBalance is the plugin.
type LoadBalance struct {
	Next    plugin.Handler
	shuffle func(*dns.Msg) *dns.Msg
	// wireRR tells that the shuffle is plain round_robin, which raw
	// (packed) answers get without unpacking.
	wireRR bool
	log    *slog.Logger
}

// ServeDNS implements plugin.Handler.
func (lb *LoadBalance) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	rw := &ResponseWriter{ResponseWriter: w, lb: lb}
	return plugin.NextOrFailure(lb.Name(), lb.Next, ctx, rw, r)
}

// Name implements plugin.Handler.
func (lb *LoadBalance) Name() string { return "loadbalance" }

// ResponseWriter shuffles what the next plugins write.
type ResponseWriter struct {
	dns.ResponseWriter
	lb *LoadBalance
}

// WriteMsg shuffles successful answers that are not zone transfers.
func (r *ResponseWriter) WriteMsg(res *dns.Msg) error {
	if res.Rcode != dns.RcodeSuccess || len(res.Question) == 0 {
		return r.ResponseWriter.WriteMsg(res)
	}
	if res.Question[0].Qtype == dns.TypeAXFR || res.Question[0].Qtype == dns.TypeIXFR {
		return r.ResponseWriter.WriteMsg(res)
	}
	return r.ResponseWriter.WriteMsg(r.lb.shuffle(res))
}

// Write shuffles a packed answer too (CoreDNS only logs "LoadBalance
// called with Write: not shuffling records"; here the cache writes its
// hits packed). round_robin reorders the records' bytes when no
// compression pointer points into what moves; otherwise, and for weighted
// and prefer, the answer is unpacked, shuffled and written as a message.
func (r *ResponseWriter) Write(buf []byte) (int, error) {
	if r.lb.wireRR {
		bp := bufPool.Get().(*[]byte)
		out, res := shuffleWire(buf, (*bp)[:0])
		var n int
		var err error
		switch res {
		case wireUnchanged:
			n, err = r.ResponseWriter.Write(buf)
		case wireShuffled:
			_, err = r.ResponseWriter.Write(out)
			n = len(buf)
		}
		*bp = out[:0]
		bufPool.Put(bp)
		if res != wireFallback {
			return n, err
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf); err != nil {
		return r.ResponseWriter.Write(buf)
	}
	return len(buf), r.WriteMsg(m)
}

func randomShuffle(res *dns.Msg) *dns.Msg {
	res.Answer = roundRobin(res.Answer)
	res.Ns = roundRobin(res.Ns)
	res.Extra = roundRobin(res.Extra)
	return res
}

// roundRobin puts CNAMEs first, then the other records, then the
// addresses and MX records, each shuffled, as CoreDNS (glibc wants CNAMEs
// before addresses).
func roundRobin(in []dns.RR) []dns.RR {
	var cname, address, mx, rest []dns.RR
	for _, r := range in {
		switch r.Header().Rrtype {
		case dns.TypeCNAME:
			cname = append(cname, r)
		case dns.TypeA, dns.TypeAAAA:
			address = append(address, r)
		case dns.TypeMX:
			mx = append(mx, r)
		default:
			rest = append(rest, r)
		}
	}
	shuffleSlice(address)
	shuffleSlice(mx)
	out := append(cname, rest...)
	out = append(out, address...)
	return append(out, mx...)
}

// shuffleSlice is a Fisher-Yates shuffle (CoreDNS draws from dns.Id()).
func shuffleSlice[T any](records []T) {
	switch l := len(records); l {
	case 0, 1:
	case 2:
		if rand.IntN(2) == 0 {
			records[0], records[1] = records[1], records[0]
		}
	default:
		for j := range l {
			p := j + rand.IntN(l-j)
			records[j], records[p] = records[p], records[j]
		}
	}
}
