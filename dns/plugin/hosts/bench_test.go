package hosts

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// benchHosts is a hosts plugin with 1000 inline entries that falls
// through to a next plugin doing nothing: hosts sits before kubernetes in
// the chain, so its miss path is paid by every cluster query.
func benchHosts(b *testing.B) *Hosts {
	var sb strings.Builder
	sb.WriteString("hosts {\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, " 10.0.%d.%d host%d.example.org\n", i/250, i%250+1, i)
	}
	sb.WriteString(" fallthrough\n}")
	h, err := parse(controller(sb.String(), nil, nil))
	if err != nil {
		b.Fatal(err)
	}
	h.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) { return 0, nil })
	return h
}

func benchServe(b *testing.B, h *Hosts, name string, qtype uint16) {
	w := &dnstest.Writer{Remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	r := new(dns.Msg).SetQuestion(name, qtype)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(ctx, w, r)
	}
}

func BenchmarkMissFallthrough(b *testing.B) {
	benchServe(b, benchHosts(b), "backend.default.svc.cluster.local.", dns.TypeA)
}

func BenchmarkMissPTR(b *testing.B) {
	benchServe(b, benchHosts(b), "10.0.96.10.in-addr.arpa.", dns.TypePTR)
}

func BenchmarkHitA(b *testing.B) {
	benchServe(b, benchHosts(b), "host500.example.org.", dns.TypeA)
}
