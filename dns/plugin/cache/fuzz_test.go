package cache

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// FuzzCache: any bytes written by the next plugin are cached (or not)
// without a panic, and a hit is a message that unpacks, answers the
// query's question and fits the client's buffer.
func FuzzCache(f *testing.F) {
	seeds := []*dns.Msg{
		reply(query("example.org.", dns.TypeA), dns.RcodeSuccess, []dns.RR{rr("example.org. 300 IN A 192.0.2.1"), rr("example.org. 300 IN A 192.0.2.2")}, nil, nil),
		reply(query("nx.example.org.", dns.TypeA), dns.RcodeNameError, nil, []dns.RR{soa("example.org.", 60)}, nil),
		reply(query("www.example.org.", dns.TypeA), dns.RcodeSuccess, []dns.RR{rr("www.example.org. 300 IN CNAME web.example.net."), rr("web.example.net. 300 IN A 192.0.2.1")}, nil, []dns.RR{rr("web.example.net. 300 IN AAAA fd00::1")}),
	}
	for i, m := range seeds {
		m.Compress = i%2 == 0
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint16(0), false)
		f.Add(b, uint16(1232), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, edns uint16, tcp bool) {
		in := new(dns.Msg)
		if err := in.Unpack(data); err != nil || len(in.Question) == 0 {
			return
		}
		q := query(in.Question[0].Name, in.Question[0].Qtype)
		if edns != 0 {
			q.SetEdns0(edns, false)
		}
		c, _ := newCache(t, "cache", nil, &backend{})
		c.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			w.Write(data)
			return 0, nil
		})
		c.ServeDNS(context.Background(), newWriter(tcp), q)
		w := newWriter(tcp)
		c.ServeDNS(context.Background(), w, q)
		if !w.viaRaw || w.raw == nil {
			return // not a hit
		}
		size := 512
		if tcp {
			size = dns.MaxMsgSize
		} else if edns > 512 {
			size = int(edns)
		}
		if len(w.raw) > size {
			t.Fatalf("%d bytes for a %d byte buffer", len(w.raw), size)
		}
		m := w.msg
		if m == nil {
			t.Fatalf("the hit does not unpack: %x", w.raw)
		}
		if m.Id != q.Id || len(m.Question) != 1 || m.Question[0] != q.Question[0] {
			t.Fatalf("hit does not answer the query: %v", m)
		}
	})
}
