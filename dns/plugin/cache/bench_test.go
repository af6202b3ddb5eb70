package cache

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// nullWriter is a client connection that costs nothing: fixed addresses,
// writes dropped.
type nullWriter struct {
	remote, local net.Addr
	n             int
}

func (w *nullWriter) LocalAddr() net.Addr         { return w.local }
func (w *nullWriter) RemoteAddr() net.Addr        { return w.remote }
func (w *nullWriter) WriteMsg(m *dns.Msg) error   { w.n++; return nil }
func (w *nullWriter) Write(b []byte) (int, error) { w.n += len(b); return len(b), nil }
func (w *nullWriter) Close() error                { return nil }
func (w *nullWriter) TsigStatus() error           { return nil }
func (w *nullWriter) TsigTimersOnly(bool)         {}
func (w *nullWriter) Hijack()                     {}

func newNullWriter() *nullWriter {
	return &nullWriter{
		remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212},
		local:  &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53},
	}
}

// BenchmarkHit: a cached answer (A record, NXDOMAIN of a search-path
// expansion), query with and without EDNS0, client case differing.
func BenchmarkHit(b *testing.B) {
	cases := []struct {
		name   string
		qname  string
		qtype  uint16
		edns   bool
		answer func(r *dns.Msg) *dns.Msg
	}{
		{"A", "WwW.example.org.", dns.TypeA, false, func(r *dns.Msg) *dns.Msg {
			return reply(r, dns.RcodeSuccess, []dns.RR{rr("www.example.org. 300 IN A 192.0.2.1"), rr("www.example.org. 300 IN A 192.0.2.2")}, nil, nil)
		}},
		{"A+EDNS0", "www.example.org.", dns.TypeA, true, func(r *dns.Msg) *dns.Msg {
			return reply(r, dns.RcodeSuccess, []dns.RR{rr("www.example.org. 300 IN A 192.0.2.1"), rr("www.example.org. 300 IN A 192.0.2.2")}, nil, nil)
		}},
		{"NXDOMAIN-search-path", "example.com.default.svc.cluster.local.", dns.TypeA, true, func(r *dns.Msg) *dns.Msg {
			return reply(r, dns.RcodeNameError, nil, []dns.RR{rr("cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30")}, nil)
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			c, _ := newCache(b, "cache", nil, &backend{answer: tc.answer})
			q := query(tc.qname, tc.qtype)
			if tc.edns {
				q.SetEdns0(1232, false)
			}
			w := newNullWriter()
			ctx := context.Background()
			c.ServeDNS(ctx, w, q)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c.ServeDNS(ctx, w, q)
			}
		})
	}
}

// BenchmarkHitParallel: hits from all cores on different names.
func BenchmarkHitParallel(b *testing.B) {
	c, _ := newCache(b, "cache", nil, &backend{answer: func(r *dns.Msg) *dns.Msg {
		return reply(r, dns.RcodeSuccess, []dns.RR{rr(r.Question[0].Name + " 300 IN A 192.0.2.1")}, nil, nil)
	}})
	var qs []*dns.Msg
	for i := range 1000 {
		q := query(fmt.Sprintf("host%d.example.org.", i), dns.TypeA)
		c.ServeDNS(context.Background(), newNullWriter(), q)
		qs = append(qs, q)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := newNullWriter()
		i := 0
		for pb.Next() {
			c.ServeDNS(context.Background(), w, qs[i%len(qs)])
			i++
		}
	})
}

// BenchmarkMiss: the entry is not there; the backend answers and the
// answer is stored (then removed again so every round misses).
func BenchmarkMiss(b *testing.B) {
	ans := reply(query("www.example.org.", dns.TypeA), dns.RcodeSuccess, []dns.RR{rr("www.example.org. 300 IN A 192.0.2.1"), rr("www.example.org. 300 IN A 192.0.2.2")}, nil, nil)
	c, _ := newCache(b, "cache", nil, &backend{answer: func(r *dns.Msg) *dns.Msg { ans.Id = r.Id; return ans }})
	q := query("www.example.org.", dns.TypeA)
	key := hash(q.Question[0].Name, dns.TypeA, false, false)
	w := newNullWriter()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.ServeDNS(ctx, w, q)
		c.pcache.Remove(key)
	}
}
