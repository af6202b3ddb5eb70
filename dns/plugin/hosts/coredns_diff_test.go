package hosts

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

// TestDifferentialCoreDNS serves one hosts file and inline entries from
// the same Corefile with the real CoreDNS 1.14 and with ours, and
// requires the same answers to the same queries.
func TestDifferentialCoreDNS(t *testing.T) {
	dnstest.CoreDNSBinary(t) // skips when there is none
	path := filepath.Join(t.TempDir(), "hosts")
	writeFile(t, path, hostsExample)
	corefile := `example.org:PORT {
  bind 127.0.0.1
  hosts ` + path + ` {
    10.1.1.1 inline.example.org
    ttl 123
  }
}
example.net:PORT {
  bind 127.0.0.1
  hosts ` + path + ` example.net {
    fallthrough
  }
}
in-addr.arpa:PORT ip6.arpa:PORT {
  bind 127.0.0.1
  hosts ` + path + ` {
    no_reverse
  }
}
.:PORT {
  bind 127.0.0.1
  hosts ` + path + `
}
0.0.10.in-addr.arpa:PORT {
  bind 127.0.0.1
  hosts ` + path + `
}
`
	theirs := dnstest.StartCoreDNS(t, corefile)
	ours := startInstance(t, strings.ReplaceAll(corefile, ":PORT", ""))

	names := []string{"example.org.", "EXAMPLE.com.", "localhost.", "zoned.example.org.", "mixed.case.example.org.", "multi.example.org.",
		"nope.example.org.", "inline.example.org.", "fallthrough-example.org.", "nope.example.net.", "1.0.0.10.in-addr.arpa.",
		"2.0.0.10.in-addr.arpa.", "9.0.0.10.in-addr.arpa.", "1.0.0.127.in-addr.arpa.",
		"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa."}
	c := &dns.Client{Timeout: 2 * time.Second}
	for _, name := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR, dns.TypeMX} {
			want, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qt), theirs)
			if err != nil {
				t.Fatalf("CoreDNS %s %s: %v", name, dns.TypeToString[qt], err)
			}
			got, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, qt), ours)
			if err != nil {
				t.Fatalf("ours %s %s: %v", name, dns.TypeToString[qt], err)
			}
			if g, w := dnstest.Summary(got), dnstest.Summary(want); g != w {
				t.Errorf("%s %s differs\nours:\n%s\nCoreDNS:\n%s", name, dns.TypeToString[qt], g, w)
			}
		}
	}
}

func startInstance(t *testing.T, corefile string) string {
	t.Helper()
	return startWith(t, corefile, prometheus.NewRegistry())
}
