package acl

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// BenchmarkAllowed is the cost acl adds to a query it lets through: a
// few rules checked, then the next plugin.
func BenchmarkAllowed(b *testing.B) {
	c := controller(`acl example.org {
		block net 192.168.0.0/16 10.0.0.0/8
		filter type AAAA net 172.16.0.0/12
	}
	acl {
		allow net 127.0.0.0/8
		block
	}`, []string{"."}, nil)
	a, err := parse(c)
	if err != nil {
		b.Fatal(err)
	}
	a.metrics = newMetrics(nil)
	a.logger = discardLogger()
	a.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		return dns.RcodeSuccess, nil
	})
	w := &dnstest.Writer{Remote: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}}
	r := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.ServeDNS(ctx, w, r); err != nil {
			b.Fatal(err)
		}
	}
}
