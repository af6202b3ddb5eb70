package loadbalance

import (
	"reflect"
	"testing"

	"github.com/miekg/dns"
)

// FuzzShuffleWire: any bytes through the packed-answer shuffle: no panic,
// and a message that unpacks still unpacks to the same records.
func FuzzShuffleWire(f *testing.F) {
	seeds := []*dns.Msg{
		answerWith("a.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{rr("a.example. 60 IN A 10.0.0.1"), rr("a.example. 60 IN A 10.0.0.2"), rr("a.example. 60 IN A 10.0.0.3")}, nil),
		answerWith("www.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{rr("www.example. 60 IN CNAME web.example."), rr("web.example. 60 IN A 10.0.0.1"), rr("web.example. 60 IN A 10.0.0.2")}, []dns.RR{rr("web.example. 60 IN AAAA fd00::1")}),
		answerWith("example.", dns.TypeMX, dns.RcodeSuccess, []dns.RR{rr("example. 60 IN MX 10 mx1.example."), rr("example. 60 IN MX 20 mx2.example.")}, []dns.RR{rr("mx1.example. 60 IN A 10.0.0.1")}),
	}
	for i, m := range seeds {
		m.Compress = i%2 == 0
		m.SetEdns0(1232, i == 1)
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, res := shuffleWire(data, nil)
		if res != wireShuffled {
			return
		}
		in := new(dns.Msg)
		if err := in.Unpack(data); err != nil {
			return
		}
		got := new(dns.Msg)
		if err := got.Unpack(out); err != nil {
			t.Fatalf("input unpacks, shuffled output does not: %v", err)
		}
		for _, p := range [][2][]dns.RR{{in.Answer, got.Answer}, {in.Ns, got.Ns}, {in.Extra, got.Extra}} {
			if !reflect.DeepEqual(sortedSet(p[0]), sortedSet(p[1])) {
				t.Fatalf("records changed:\n%v\n%v", in, got)
			}
		}
	})
}
