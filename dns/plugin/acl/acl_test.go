package acl

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func controller(input string, zones []string, reg prometheus.Registerer) *dnsserver.Controller {
	if len(zones) == 0 {
		zones = []string{"."}
	}
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(input)),
		Directive: pluginName,
		Config:    &dnsserver.Config{Zone: zones[0], Zones: zones, Port: "53", Transport: "dns"},
		Env:       &dnsserver.Env{Registerer: reg},
	}
}

// build parses input and wires the ACL in front of a handler that answers
// every query with NOERROR and one A record, as the rest of a chain would.
func build(t *testing.T, input string, zones []string, reg prometheus.Registerer) *ACL {
	t.Helper()
	c := controller(input, zones, reg)
	a, err := parse(c)
	if err != nil {
		t.Fatalf("parse %q: %v", input, err)
	}
	a.metrics = newMetrics(reg)
	a.logger = discardLogger()
	a.Next = answerA
	return a
}

var answerA = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg).SetReply(r)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(10, 0, 0, 1)}}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
})

func remote(ip string) net.Addr {
	host, zone, _ := strings.Cut(ip, "%")
	return &net.UDPAddr{IP: net.ParseIP(host), Zone: zone, Port: 40000}
}

// outcome of one query through the ACL.
type outcome int

const (
	allowed  outcome = iota // passed to the next plugin: NOERROR with its A record
	blocked                 // REFUSED + EDE 15
	filtered                // NOERROR, empty answer + EDE 17
	dropped                 // nothing written
)

func (o outcome) String() string {
	return [...]string{"allowed", "blocked", "filtered", "dropped"}[o]
}

func outcomeOf(t *testing.T, w *dnstest.Writer, rcode int, err error) outcome {
	t.Helper()
	if err != nil {
		t.Fatalf("ServeDNS error: %v", err)
	}
	if w.Msg == nil {
		if rcode != dns.RcodeSuccess {
			t.Fatalf("nothing written but rcode %d returned", rcode)
		}
		return dropped
	}
	ede := func() uint16 {
		opt := w.Msg.IsEdns0()
		if opt == nil {
			t.Fatalf("answer without OPT: %v", w.Msg)
		}
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.InfoCode
			}
		}
		t.Fatalf("answer without EDE option: %v", w.Msg)
		return 0
	}
	switch {
	case w.Msg.Rcode == dns.RcodeRefused:
		if code := ede(); code != dns.ExtendedErrorCodeBlocked {
			t.Errorf("REFUSED with EDE %d, want Blocked (%d)", code, dns.ExtendedErrorCodeBlocked)
		}
		return blocked
	case w.Msg.Rcode == dns.RcodeSuccess && len(w.Msg.Answer) == 0:
		if code := ede(); code != dns.ExtendedErrorCodeFiltered {
			t.Errorf("empty NOERROR with EDE %d, want Filtered (%d)", code, dns.ExtendedErrorCodeFiltered)
		}
		return filtered
	case w.Msg.Rcode == dns.RcodeSuccess && len(w.Msg.Answer) == 1:
		return allowed
	}
	t.Fatalf("unexpected answer %v", w.Msg)
	return 0
}

func TestServeDNS(t *testing.T) {
	tests := []struct {
		name   string
		config string
		zones  []string
		qname  string
		qtype  uint16
		source string
		want   outcome
	}{
		{"block returns status code of REFUSED", `acl example.org {
			block type A net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeA, "192.168.0.2", blocked},
		{"a query not matched by any rules will be allowed (other net)", `acl example.org {
			block type A net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeA, "192.167.0.2", allowed},
		{"a query not matched by any rules will be allowed (other type)", `acl example.org {
			block type A net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeAAAA, "192.168.0.2", allowed},
		{"a query not matched by any rules will be allowed (other zone)", `acl example.org {
			block type A net 192.168.0.0/16
		}`, nil, "www.example.net.", dns.TypeA, "192.168.0.2", allowed},
		{"type * stands for all record types", `acl example.org {
			block type * net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeMX, "192.168.0.2", blocked},
		{"net * stands for all possible source IP addresses", `acl example.org {
			block type A net *
		}`, nil, "www.example.org.", dns.TypeA, "10.9.8.7", blocked},
		{"omitted type QTYPE matches all kinds of DNS queries", `acl {
			block net 192.168.0.0/16
		}`, []string{"example.org."}, "www.example.org.", dns.TypeTXT, "192.168.3.4", blocked},
		{"single IP address is supported", `acl example.org {
			block type A net 192.168.1.1
		}`, nil, "www.example.org.", dns.TypeA, "192.168.1.1", blocked},
		{"single IP address matches only itself", `acl example.org {
			block type A net 192.168.1.1
		}`, nil, "www.example.org.", dns.TypeA, "192.168.1.2", allowed},
		{"filter returns an empty set NOERROR", `acl example.org {
			filter type A net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeA, "192.168.0.2", filtered},
		{"drop returns no response to the client", `acl example.org {
			drop net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeA, "192.168.0.2", dropped},
		{"allow only listed nets then block: listed net allowed", `acl {
			allow net 192.168.0.0/24 192.168.1.0/24
			block
		}`, []string{"."}, "www.example.org.", dns.TypeA, "192.168.1.9", allowed},
		{"allow only listed nets then block: others refused", `acl {
			allow net 192.168.0.0/24 192.168.1.0/24
			block
		}`, []string{"."}, "www.example.org.", dns.TypeA, "10.0.0.1", blocked},
		{"first match wins: allow before block", `acl {
			allow net 192.168.1.0/24
			block net 192.168.0.0/16
		}`, nil, "example.org.", dns.TypeA, "192.168.1.7", allowed},
		{"first match wins: rest of the block net refused", `acl {
			allow net 192.168.1.0/24
			block net 192.168.0.0/16
		}`, nil, "example.org.", dns.TypeA, "192.168.2.7", blocked},
		{"first match wins: block before drop", `acl example.org {
			block net 192.168.1.0/24
			drop net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeA, "192.168.1.1", blocked},
		{"first match wins: drop for the wider net", `acl example.org {
			block net 192.168.1.0/24
			drop net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeA, "192.168.2.1", dropped},
		{"ZONES: block towards a.example.org", `acl a.example.org {
			block net 192.168.1.0/24
		}`, []string{"example.org."}, "a.example.org.", dns.TypeA, "192.168.1.2", blocked},
		{"ZONES: b.example.org is not protected", `acl a.example.org {
			block net 192.168.1.0/24
		}`, []string{"example.org."}, "b.example.org.", dns.TypeA, "192.168.1.2", allowed},
		{"If ZONES is empty, the zones from the configuration block are used", `acl {
			block net 192.168.1.0/24
		}`, []string{"example.org."}, "example.net.", dns.TypeA, "192.168.1.2", allowed},
		{"several acl directives: the first whose zone matches decides", `acl a.example.org {
			block net 192.168.1.0/24
		}
		acl example.org {
			allow net 192.168.1.0/24
		}`, []string{"example.org."}, "x.a.example.org.", dns.TypeA, "192.168.1.2", blocked},
		{"several acl directives: later rule applies when the first allows", `acl example.org {
			allow net 192.168.1.0/24
		}
		acl a.example.org {
			block net 192.168.1.0/24
		}`, []string{"example.org."}, "a.example.org.", dns.TypeA, "192.168.1.2", allowed},
		{"several types", `acl example.org {
			block type TXT ANY CNAME net 192.168.3.0/24
		}`, nil, "example.org.", dns.TypeCNAME, "192.168.3.1", blocked},
		{"IPv6: block", `acl example.org {
			block type A net 2001:db8:abcd:0012::0/64
		}`, nil, "www.example.org.", dns.TypeA, "2001:db8:abcd:0012::1", blocked},
		{"IPv6: other net allowed", `acl example.org {
			block type A net 2001:db8:abcd:0012::0/64
		}`, nil, "www.example.org.", dns.TypeA, "2001:db8:abcd:0013::1", allowed},
		{"IPv6: single address", `acl example.org {
			block net 2001:db8::1
		}`, nil, "www.example.org.", dns.TypeA, "2001:db8::1", blocked},
		{"IPv6 source with zone (address%ifname)", `acl example.org {
			block type A net fe80::/64
		}`, nil, "www.example.org.", dns.TypeA, "fe80::1%eth0", blocked},
		{"IPv4 net does not match IPv6 source", `acl example.org {
			block net 0.0.0.0/0
		}`, nil, "www.example.org.", dns.TypeA, "2001:db8::1", allowed},
		{"IPv4-mapped IPv6 source counts as IPv4", `acl example.org {
			block net 192.168.0.0/16
		}`, nil, "www.example.org.", dns.TypeA, "::ffff:192.168.5.5", blocked},
		{"names are matched case-insensitively", `acl example.org {
			block net 192.168.0.0/16
		}`, nil, "WWW.Example.ORG.", dns.TypeA, "192.168.5.5", blocked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := build(t, tc.config, tc.zones, nil)
			w := &dnstest.Writer{Remote: remote(tc.source)}
			r := new(dns.Msg).SetQuestion(tc.qname, tc.qtype)
			rcode, err := a.ServeDNS(context.Background(), w, r)
			if got := outcomeOf(t, w, rcode, err); got != tc.want {
				t.Errorf("query %s %s from %s: %v, want %v", tc.qname, dns.TypeToString[tc.qtype], tc.source, got, tc.want)
			}
		})
	}
}

func TestUnparsableSourceIsBlocked(t *testing.T) {
	// CoreDNS: "if the parsing did not return a proper response then we
	// simply return 'actionBlock' to block the query".
	a := build(t, "acl {\n allow net *\n}", nil, nil)
	w := &dnstest.Writer{Remote: badAddr{}}
	rcode, err := a.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion("example.org.", dns.TypeA))
	if got := outcomeOf(t, w, rcode, err); got != blocked {
		t.Errorf("got %v, want blocked", got)
	}
}

type badAddr struct{}

func (badAddr) Network() string { return "x" }
func (badAddr) String() string  { return "not-an-address" }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	a := build(t, `acl example.org {
		block type A net 192.168.1.0/24
		filter type AAAA net 192.168.1.0/24
		drop type TXT net 192.168.1.0/24
	}`, []string{"example.org."}, reg)
	queries := []struct {
		qtype  uint16
		source string
	}{
		{dns.TypeA, "192.168.1.1"}, {dns.TypeA, "192.168.1.2"},
		{dns.TypeAAAA, "192.168.1.1"},
		{dns.TypeTXT, "192.168.1.1"}, {dns.TypeTXT, "192.168.1.3"}, {dns.TypeTXT, "192.168.1.4"},
		{dns.TypeA, "10.0.0.1"},
	}
	for _, q := range queries {
		w := &dnstest.Writer{Remote: remote(q.source)}
		if _, err := a.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion("www.example.org.", q.qtype)); err != nil {
			t.Fatal(err)
		}
	}
	// A second ACL on the same registry (another block, a reload) shares
	// the counters instead of failing to register.
	b := build(t, "acl {\n block\n}", []string{"example.net."}, reg)
	if _, err := b.ServeDNS(context.Background(), &dnstest.Writer{}, new(dns.Msg).SetQuestion("example.net.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}

	want := map[string]map[string]int{
		"coredns_acl_blocked_requests_total":  {"example.org.": 2, "example.net.": 1},
		"coredns_acl_filtered_requests_total": {"example.org.": 1},
		"coredns_acl_dropped_requests_total":  {"example.org.": 3},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			// Outside a server (no dnsserver.Key in the context) the
			// server label is empty; TestCorefile checks it in a server.
			if v, ok := labels["server"]; !ok || v != "" {
				t.Errorf("%s server label %q present=%v, want empty", mf.GetName(), v, ok)
			}
			if v, ok := labels["view"]; !ok || v != "" {
				t.Errorf("%s view label %q present=%v, want empty", mf.GetName(), v, ok)
			}
			if mf.GetName() == "coredns_acl_allowed_requests_total" {
				if _, ok := labels["zone"]; ok {
					t.Errorf("allowed counter has a zone label; CoreDNS's has {server, view}")
				}
				if got := m.GetCounter().GetValue(); got != 1 {
					t.Errorf("allowed = %v, want 1", got)
				}
				continue
			}
			if got, want := int(m.GetCounter().GetValue()), want[mf.GetName()][labels["zone"]]; got != want {
				t.Errorf("%s{zone=%q} = %d, want %d", mf.GetName(), labels["zone"], got, want)
			}
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("metric %s not registered", name)
		}
	}
	if n := testutil.CollectAndCount(a.metrics.allowed, "coredns_acl_allowed_requests_total"); n != 1 {
		t.Errorf("allowed series = %d, want 1", n)
	}
}

// TestRealServer serves an acl chain on a loopback UDP socket and asks it
// with a real client: block is REFUSED, filter an empty NOERROR, allow
// reaches the next plugin, and drop never answers.
func TestRealServer(t *testing.T) {
	a := build(t, `acl example.org {
		block type A net 127.0.0.0/8
		filter type AAAA net 127.0.0.0/8
		drop type TXT net 127.0.0.1
		allow net *
	}`, nil, nil)
	addr := dnstest.ServeHandler(t, a)

	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	tests := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		nans  int
	}{
		{"block returns status code of REFUSED", "www.example.org.", dns.TypeA, dns.RcodeRefused, 0},
		{"filter returns an empty set NOERROR", "www.example.org.", dns.TypeAAAA, dns.RcodeSuccess, 0},
		{"allow passes to the next plugin", "www.example.org.", dns.TypeMX, dns.RcodeSuccess, 1},
		{"other zones are not subject to the rules", "www.example.net.", dns.TypeA, dns.RcodeSuccess, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := c.Exchange(new(dns.Msg).SetQuestion(tc.qname, tc.qtype), addr)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rcode != tc.rcode || len(m.Answer) != tc.nans {
				t.Errorf("rcode %s with %d answers, want %s with %d", dns.RcodeToString[m.Rcode], len(m.Answer), dns.RcodeToString[tc.rcode], tc.nans)
			}
		})
	}
	t.Run("drop returns no response to the client", func(t *testing.T) {
		short := &dns.Client{Net: "udp", Timeout: 300 * time.Millisecond}
		m, _, err := short.Exchange(new(dns.Msg).SetQuestion("www.example.org.", dns.TypeTXT), addr)
		var nerr net.Error
		if err == nil || !asNetError(err, &nerr) || !nerr.Timeout() {
			t.Fatalf("got answer %v, err %v; want a timeout", m, err)
		}
	})
}

// TestDig asks with the real dig: block shows "status: REFUSED" with the
// Extended DNS Error 15 (Blocked), filter "status: NOERROR" with EDE 17
// (Filtered) and no answer.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed (Debian bind9-dnsutils; ./test.sh installs it)")
	}
	a := build(t, `acl example.org {
		block type A net 127.0.0.1
		filter type AAAA net 127.0.0.1
	}`, nil, nil)
	host, port, _ := net.SplitHostPort(dnstest.ServeHandler(t, a))
	tests := []struct {
		name string
		qt   string
		want []string
	}{
		{"block returns status code of REFUSED", "A", []string{"status: REFUSED", "EDE: 15 (Blocked)", "ANSWER: 0"}},
		{"filter returns an empty set NOERROR", "AAAA", []string{"status: NOERROR", "EDE: 17 (Filtered)", "ANSWER: 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, dig, "@"+host, "-p", port, "+tries=1", "+time=2", "www.example.org", tc.qt).CombinedOutput()
			if err != nil {
				t.Fatalf("dig: %v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("dig output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
