package file

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

func benchFile(b *testing.B, name string, qtype uint16, do bool) {
	f := fileFor(b, dbMiekNLSigned, testzone)
	w := &dnstest.Writer{Remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	r := new(dns.Msg).SetQuestion(name, qtype)
	if do {
		r.SetEdns0(4096, true)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.ServeDNS(ctx, w, r)
	}
}

func BenchmarkLookupA(b *testing.B)        { benchFile(b, "a.miek.nl.", dns.TypeA, false) }
func BenchmarkLookupCNAME(b *testing.B)    { benchFile(b, "www.miek.nl.", dns.TypeA, false) }
func BenchmarkLookupNXDOMAIN(b *testing.B) { benchFile(b, "nope.miek.nl.", dns.TypeA, false) }
func BenchmarkLookupDNSSEC(b *testing.B)   { benchFile(b, "nope.miek.nl.", dns.TypeA, true) }

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strings.NewReader(dbMiekNLSigned), testzone, "stdin", 0); err != nil {
			b.Fatal(err)
		}
	}
}
