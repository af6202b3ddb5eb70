package plugin

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// TestSplitHostPort follows CoreDNS's plugin.SplitHostPort: a CIDR key
// becomes the reverse zones covering it, widened to label boundaries.
func TestSplitHostPort(t *testing.T) {
	tests := []struct {
		in    string
		hosts []string
		port  string
		err   bool
	}{
		{"example.org", []string{"example.org"}, "", false},
		{"example.org:1053", []string{"example.org"}, "1053", false},
		{".:53", []string{"."}, "53", false},
		{"10.0.0.0/24", []string{"0.0.10.in-addr.arpa."}, "", false},
		{"10.0.0.0/23:53", []string{"0.0.10.in-addr.arpa.", "1.0.10.in-addr.arpa."}, "53", false},
		{"10.0.0.0/8", []string{"10.in-addr.arpa."}, "", false},
		{"192.168.0.0/15", []string{"168.192.in-addr.arpa.", "169.192.in-addr.arpa."}, "", false},
		{"0.0.0.0/0", []string{"in-addr.arpa."}, "", false},
		{"fd00::/64", []string{reverseLabels("fd00::", 16)}, "", false},
		{"fd00::/62", []string{reverseLabels("fd00::", 16), reverseLabels("fd00:0:0:1::", 16),
			reverseLabels("fd00:0:0:2::", 16), reverseLabels("fd00:0:0:3::", 16)}, "", false},
		{"example.org:", nil, "", true},
		{"exa..mple.org", nil, "", true},
		{"example.org:70000", nil, "", true},
	}
	for _, tc := range tests {
		hosts, port, err := SplitHostPort(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%s: error %v", tc.in, err)
			continue
		}
		if !slices.Equal(hosts, tc.hosts) || port != tc.port {
			t.Errorf("%s: %v %q, want %v %q", tc.in, hosts, port, tc.hosts, tc.port)
		}
	}
}

// reverseLabels is dns.ReverseAddr(ip) without its first n labels, as
// CoreDNS's cidr.Reverse computes a zone.
func reverseLabels(ip string, n int) string {
	r, _ := dns.ReverseAddr(ip)
	off := 0
	for range n {
		off, _ = dns.NextLabel(r, off)
	}
	return r[off:]
}

func TestReverseZonesCount(t *testing.T) {
	// CoreDNS widens to the next label: at most 128 IPv4 and 8 IPv6 zones.
	if n := len(ReverseZones(netip.MustParsePrefix("10.0.0.0/9"))); n != 128 {
		t.Errorf("/9: %d zones, want 128", n)
	}
	if n := len(ReverseZones(netip.MustParsePrefix("fd00::/61"))); n != 8 {
		t.Errorf("/61: %d zones, want 8", n)
	}
}

func TestOriginsFromArgsOrServerBlock(t *testing.T) {
	block := []string{"cluster.local.", "example.org."}
	if got := OriginsFromArgsOrServerBlock(nil, block); !slices.Equal(got, block) {
		t.Errorf("no args: %v", got)
	}
	got := OriginsFromArgsOrServerBlock([]string{"Cluster.Local", "10.0.0.0/24", "dns://x.test:53", "bad..zone"}, block)
	want := []string{"cluster.local.", "0.0.10.in-addr.arpa.", "x.test."}
	if !slices.Equal(got, want) {
		t.Errorf("args: %v, want %v", got, want)
	}
}

// TestIsSubDomain agrees with miekg/dns's IsSubDomain (case-insensitive,
// label boundaries) without its allocations.
func TestIsSubDomain(t *testing.T) {
	cases := [][2]string{
		{"example.org.", "example.org."}, {"example.org.", "www.example.org."}, {"example.org.", "WWW.EXAMPLE.ORG."},
		{"example.org.", "wwwexample.org."}, {"example.org.", "org."}, {".", "anything."}, {"org.", "example.org."},
		{"example.org.", `a\.example.org.`}, {"sub.example.org.", "example.org."}, {"b.c.", "a.b.c."},
	}
	for _, c := range cases {
		if got, want := IsSubDomain(c[0], c[1]), dns.IsSubDomain(c[0], c[1]); got != want {
			t.Errorf("IsSubDomain(%q, %q) = %v, dns says %v", c[0], c[1], got, want)
		}
	}
	z := Zones{"example.org.", "sub.example.org.", "."}
	if got := z.Matches("a.SUB.example.org."); got != "sub.example.org." {
		t.Errorf("Matches: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { z.Matches("www.sub.example.org.") }); n != 0 {
		t.Errorf("Matches allocates %v times", n)
	}
}

func TestNextOrFailure(t *testing.T) {
	rc, err := NextOrFailure("x", nil, t.Context(), nil, nil)
	if rc != dns.RcodeServerFailure || !errors.Is(err, ErrNoNext) || err.Error() != "plugin/x: no next plugin found" {
		t.Errorf("%d %v", rc, err)
	}
	for rc, want := range map[int]bool{dns.RcodeSuccess: true, dns.RcodeNameError: true, dns.RcodeServerFailure: false, dns.RcodeRefused: false, dns.RcodeFormatError: false, dns.RcodeNotImplemented: false} {
		if ClientWrite(rc) != want {
			t.Errorf("ClientWrite(%d) = %v", rc, !want)
		}
	}
}

// TestRegister: registering twice (a reload) gives the first collector
// back, so counts continue.
func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	c1 := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	c1.Inc()
	c2 := Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "x_total", Help: "x"}))
	if c1 != c2 {
		t.Fatal("second registration did not return the first collector")
	}
	if c3 := Register[prometheus.Counter](nil, c1); c3 != c1 {
		t.Fatal("nil registry changed the collector")
	}
}
