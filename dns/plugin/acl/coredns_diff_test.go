package acl

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/any"
)

// TestDifferentialCoreDNS runs the same acl (with any and hosts behind
// it) with the real CoreDNS 1.14 and with ours, and requires the same
// answers, Extended DNS Errors included, and no answer where CoreDNS
// drops.
func TestDifferentialCoreDNS(t *testing.T) {
	dnstest.CoreDNSBinary(t) // skips when there is none
	corefile := `example.org:PORT {
  bind 127.0.0.1
  acl {
    block type A net 127.0.0.0/8
    filter type AAAA net 127.0.0.1
    drop type TXT
    allow type MX net 10.0.0.0/8
  }
  acl a.example.org {
    allow net 127.0.0.1
    block
  }
  any
  hosts {
    10.0.0.1 www.example.org a.example.org
    fallthrough
  }
}
example.net:PORT {
  bind 127.0.0.1
  acl example.net {
    allow net 192.0.2.0/24
    block
  }
  hosts {
    10.0.0.2 www.example.net
  }
}
`
	theirs := dnstest.StartCoreDNS(t, corefile)
	ours := startCorefile(t, strings.ReplaceAll(corefile, ":PORT", ""), prometheus.NewRegistry())

	c := &dns.Client{Timeout: 2 * time.Second}
	short := &dns.Client{Timeout: 300 * time.Millisecond}
	for _, name := range []string{"www.example.org.", "a.example.org.", "x.a.example.org.", "nope.example.org.", "www.example.net."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX, dns.TypeANY, dns.TypeSRV} {
			for _, edns := range []bool{false, true} {
				mk := func() *dns.Msg {
					m := new(dns.Msg).SetQuestion(name, qt)
					if edns {
						m.SetEdns0(1232, false)
					}
					return m
				}
				if qt == dns.TypeTXT && strings.HasSuffix(name, "example.org.") {
					// drop: neither answers (waiting out one query each
					// is enough).
					if name != "www.example.org." || edns {
						continue
					}
					for who, addr := range map[string]string{"CoreDNS": theirs, "ours": ours} {
						_, _, err := short.Exchange(mk(), addr)
						var nerr net.Error
						if err == nil || !errors.As(err, &nerr) || !nerr.Timeout() {
							t.Errorf("%s answered a dropped query %s TXT: %v", who, name, err)
						}
					}
					continue
				}
				want, _, err := c.Exchange(mk(), theirs)
				if err != nil {
					t.Fatalf("CoreDNS %s %s: %v", name, dns.TypeToString[qt], err)
				}
				got, _, err := c.Exchange(mk(), ours)
				if err != nil {
					t.Fatalf("ours %s %s: %v", name, dns.TypeToString[qt], err)
				}
				if g, w := dnstest.Summary(got), dnstest.Summary(want); g != w {
					t.Errorf("%s %s edns=%v differs\nours:\n%s\nCoreDNS:\n%s", name, dns.TypeToString[qt], edns, g, w)
				}
			}
		}
	}
}
