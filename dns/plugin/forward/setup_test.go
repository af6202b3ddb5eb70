package forward

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func TestSetup(t *testing.T) {
	def := Options{HCRecursionDesired: true, HCDomain: "."}
	tests := []struct {
		name      string
		input     string
		wantErr   string // substring; "" = no error
		from      string
		to        []string
		ignored   []string
		maxfails  uint32
		opts      Options
		stanzas   int
		check     func(t *testing.T, f *Forward)
		errorLine string // "Corefile:N" the error must name
	}{
		{name: "forward FROM TO: plain address gets port 53", input: "forward . 127.0.0.1", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def},
		{name: "health_check DURATION domain FQDN sets the health check name", input: "forward . 127.0.0.1 {\nhealth_check 0.5s domain example.org\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: Options{HCRecursionDesired: true, HCDomain: "example.org."},
			check: func(t *testing.T, f *Forward) {
				if f.hcInterval != 500*time.Millisecond {
					t.Errorf("hcInterval = %v", f.hcInterval)
				}
				if d := f.proxies[0].health.domain; d != "example.org." {
					t.Errorf("health check domain %q", d)
				}
			}},
		{name: "health_check no_rec clears RD of the health check", input: "forward . 127.0.0.1 {\nhealth_check 1s no_rec\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: Options{HCDomain: "."},
			check: func(t *testing.T, f *Forward) {
				if f.proxies[0].health.recursionDesired {
					t.Error("health check would set RD")
				}
			}},
		{name: "except IGNORED_NAMES", input: "forward . 127.0.0.1 {\nexcept miek.nl example.ORG\n}\n", from: ".", to: []string{"127.0.0.1:53"}, ignored: []string{"miek.nl.", "example.org."}, maxfails: 2, opts: def},
		{name: "max_fails INTEGER", input: "forward . 127.0.0.1 {\nmax_fails 3\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 3, opts: def},
		{name: "max_fails 0: never marked down", input: "forward . 127.0.0.1 {\nmax_fails 0\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 0, opts: def},
		{name: "force_tcp makes health checks use TCP too", input: "forward . 127.0.0.1 {\nforce_tcp\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: Options{ForceTCP: true, HCRecursionDesired: true, HCDomain: "."},
			check: func(t *testing.T, f *Forward) {
				if f.proxies[0].health.c.Net != "tcp" {
					t.Errorf("health check net %q", f.proxies[0].health.c.Net)
				}
			}},
		{name: "prefer_udp", input: "forward . 127.0.0.1 {\nprefer_udp\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: Options{PreferUDP: true, HCRecursionDesired: true, HCDomain: "."}},
		{name: "force_tcp and prefer_udp: both kept, force_tcp takes precedence at query time", input: "forward . 127.0.0.1 {\nforce_tcp\nprefer_udp\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: Options{PreferUDP: true, ForceTCP: true, HCRecursionDesired: true, HCDomain: "."}},
		{name: "address with port", input: "forward . 127.0.0.1:8080", from: ".", to: []string{"127.0.0.1:8080"}, maxfails: 2, opts: def},
		{name: "IPv6 with port", input: "forward . [::1]:53", from: ".", to: []string{"::1:53"}, maxfails: 2, opts: def},
		{name: "dns:// prefix", input: "forward example.org dns://127.0.0.1:5300", from: "example.org.", to: []string{"127.0.0.1:5300"}, maxfails: 2, opts: def},
		{name: "FROM in CIDR notation: only the first reverse zone is used", input: "forward 10.9.3.0/18 127.0.0.1", from: "0.9.10.in-addr.arpa.", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def},
		{name: "two forward lines: two stanzas chained", input: "forward . ::1\nforward com ::2", from: ".", to: []string{"::1:53"}, maxfails: 2, opts: def, stanzas: 2},
		{name: "expire DURATION", input: "forward . 127.0.0.1 {\nexpire 20s\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if f.proxies[0].transport.expire != 20*time.Second {
					t.Errorf("expire = %v", f.proxies[0].transport.expire)
				}
			}},
		{name: "policy sequential", input: "forward . 127.0.0.1 127.0.0.2 {\npolicy sequential\n}\n", from: ".", to: []string{"127.0.0.1:53", "127.0.0.2:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if f.p.String() != "sequential" {
					t.Errorf("policy %s", f.p)
				}
			}},
		{name: "the default policy is random", input: "forward . 127.0.0.1", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if f.p.String() != "random" {
					t.Errorf("policy %s", f.p)
				}
			}},
		{name: "max_concurrent MAX", input: "forward . 127.0.0.1 {\nmax_concurrent 1000\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if f.maxConcurrent != 1000 || f.ErrLimitExceeded == nil {
					t.Errorf("maxConcurrent %d %v", f.maxConcurrent, f.ErrLimitExceeded)
				}
			}},
		{name: "next RCODE...", input: "forward . 127.0.0.1 {\nnext NXDOMAIN servfail\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if !reflect.DeepEqual(f.nextAlternateRcodes, []int{dns.RcodeNameError, dns.RcodeServerFailure}) {
					t.Errorf("next %v", f.nextAlternateRcodes)
				}
			}},
		{name: "failover RCODE...", input: "forward . 127.0.0.1 {\nfailover SERVFAIL REFUSED\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if !reflect.DeepEqual(f.failoverRcodes, []int{dns.RcodeServerFailure, dns.RcodeRefused}) {
					t.Errorf("failover %v", f.failoverRcodes)
				}
			}},
		{name: "failfast_all_unhealthy_upstreams", input: "forward . 127.0.0.1 {\nfailfast_all_unhealthy_upstreams\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if !f.failfastUnhealthyUpstreams {
					t.Error("not set")
				}
			}},
		{name: "max_idle_conns and max_connect_attempts", input: "forward . 127.0.0.1 {\nmax_idle_conns 5\nmax_connect_attempts 2\n}\n", from: ".", to: []string{"127.0.0.1:53"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if f.proxies[0].transport.maxIdleConns != 5 || f.maxConnectAttempts != 2 {
					t.Errorf("max_idle_conns %d max_connect_attempts %d", f.proxies[0].transport.maxIdleConns, f.maxConnectAttempts)
				}
			}},
		{name: "tls:// upstream gets port 853 and tls_servername", input: "forward . tls://127.0.0.1 {\ntls_servername dns.example\n}\n", from: ".", to: []string{"127.0.0.1:853"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				cfg := f.proxies[0].transport.tlsConfig
				if cfg == nil || cfg.ServerName != "dns.example" {
					t.Errorf("tls config %+v", cfg)
				}
				if f.proxies[0].health.c.Net != "tcp-tls" {
					t.Errorf("health check net %q", f.proxies[0].health.c.Net)
				}
			}},
		{name: "per upstream TLS server name: tls://IP%NAME:PORT", input: "forward . tls://127.0.0.1%dns.example:10853", from: ".", to: []string{"127.0.0.1:10853"}, maxfails: 2, opts: def,
			check: func(t *testing.T, f *Forward) {
				if cfg := f.proxies[0].transport.tlsConfig; cfg == nil || cfg.ServerName != "dns.example" {
					t.Errorf("tls config %+v", cfg)
				}
			}},

		// errors
		{name: "TO neither an IP nor a file", input: "forward . a27.0.0.1", wantErr: "not an IP", errorLine: "Corefile:1"},
		{name: "unknown property", input: "forward . 127.0.0.1 {\nblaatl\n}\n", wantErr: "unknown property", errorLine: "Corefile:2"},
		{name: "health_check domain without FQDN", input: "forward . 127.0.0.1 {\nhealth_check 0.5s domain\n}\n", wantErr: "Wrong argument count or unexpected line ending after 'domain'", errorLine: "Corefile:2"},
		{name: "health_check negative", input: "forward . 127.0.0.1 {\nhealth_check -1s\n}\n", wantErr: "can't be negative"},
		{name: "health_check unknown option", input: "forward . 127.0.0.1 {\nhealth_check 1s bogus\n}\n", wantErr: "unknown option bogus"},
		{name: "https:// is not a destination protocol of forward", input: "forward . https://127.0.0.1 \n", wantErr: "'https' is not supported as a destination protocol in forward: https://127.0.0.1"},
		{name: "FROM not a domain name", input: "forward xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx 127.0.0.1 \n", wantErr: "unable to normalize 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"},
		{name: "no TO", input: "forward .", wantErr: "Wrong argument count"},
		{name: "no FROM", input: "forward", wantErr: "Wrong argument count"},
		{name: "max_fails not a number", input: "forward . 127.0.0.1 {\nmax_fails many\n}\n", wantErr: "max_fails", errorLine: "Corefile:2"},
		{name: "expire negative", input: "forward . 127.0.0.1 {\nexpire -1s\n}\n", wantErr: "expire can't be negative"},
		{name: "unknown policy", input: "forward . 127.0.0.1 {\npolicy fastest\n}\n", wantErr: "unknown policy 'fastest'"},
		{name: "max_concurrent negative", input: "forward . 127.0.0.1 {\nmax_concurrent -1\n}\n", wantErr: "max_concurrent can't be negative"},
		{name: "next with a bad rcode", input: "forward . 127.0.0.1 {\nnext NOPE\n}\n", wantErr: "not a valid rcode"},
		{name: "failover: NOERROR cannot be used", input: "forward . 127.0.0.1 {\nfailover NOERROR\n}\n", wantErr: "NoError cannot be used in failover"},
		{name: "force_tcp takes no argument", input: "forward . 127.0.0.1 {\nforce_tcp yes\n}\n", wantErr: "Wrong argument count"},
		{name: "tls with a missing CA file", input: "forward . tls://127.0.0.1 {\ntls /nonexistent/ca.pem\n}\n", wantErr: "error reading /nonexistent/ca.pem"},
		{name: "tls_servername clashes with per upstream name", input: "forward . tls://127.0.0.1%a.example {\ntls_servername b.example\n}\n", wantErr: "both forward ('b.example') and proxy level ('a.example') TLS servernames are set"},
		{name: "the number of upstreams is limited to 15", input: "forward . " + strings.Repeat("127.0.0.1 ", 16), wantErr: "more than 15 TOs configured: 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := parseForward(controller(tc.input, nil))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("want error containing %q", tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				if tc.errorLine != "" && !strings.Contains(err.Error(), tc.errorLine) {
					t.Errorf("error %q does not name %s", err, tc.errorLine)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.stanzas
			if want == 0 {
				want = 1
			}
			if len(fs) != want {
				t.Fatalf("%d stanzas, want %d", len(fs), want)
			}
			f := fs[0]
			if f.from != tc.from {
				t.Errorf("from %q, want %q", f.from, tc.from)
			}
			var to []string
			for _, p := range f.proxies {
				to = append(to, strings.Replace(p.addr, "[::1]", "::1", 1))
			}
			if !reflect.DeepEqual(to, tc.to) {
				t.Errorf("to %q, want %q", to, tc.to)
			}
			if tc.ignored != nil && !reflect.DeepEqual(f.ignored, tc.ignored) {
				t.Errorf("ignored %q, want %q", f.ignored, tc.ignored)
			}
			if f.maxfails != tc.maxfails {
				t.Errorf("maxfails %d, want %d", f.maxfails, tc.maxfails)
			}
			if f.opts != tc.opts {
				t.Errorf("opts %+v, want %+v", f.opts, tc.opts)
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

// "TO ... or a resolv.conf-style file": the nameserver lines are the
// upstreams, on port 53.
func TestSetupResolvConf(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		want    []string
		wantErr string
	}{
		{"nameservers in order", "# a comment\nsearch example.org\nnameserver 127.0.0.1\nnameserver ::1\noptions ndots:5\n", []string{"127.0.0.1:53", "[::1]:53"}, ""},
		{"no nameserver", "search example.org\n", nil, "no nameservers found"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "resolv"+string(rune('a'+i))+".conf")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			fs, err := parseForward(controller("forward . "+path, nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range fs[0].proxies {
				got = append(got, p.addr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("upstreams %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSplitZone(t *testing.T) {
	tests := []struct{ in, host, zone string }{
		{"tls://127.0.0.1%example.net:854", "tls://127.0.0.1:854", "example.net"},
		{"tls://127.0.0.1%example.net", "tls://127.0.0.1", "example.net"},
		{"tls://127.0.0.1:854", "tls://127.0.0.1:854", ""},
		{"dns://127.0.0.1", "dns://127.0.0.1", ""},
		{"foo%bar:baz", "foo:baz", "bar"},
	}
	for _, tc := range tests {
		host, zone := splitZone(tc.in)
		if host != tc.host || zone != tc.zone {
			t.Errorf("splitZone(%q) = %q, %q; want %q, %q", tc.in, host, zone, tc.host, tc.zone)
		}
	}
}

// "Domains using CIDR notation that expand to multiple reverse zones are
// not fully supported; only the first expanded zone is used."
func TestNormalizeExact(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"Example.ORG", []string{"example.org."}},
		{"example.org:53", []string{"example.org."}},
		{"dns://example.org", []string{"example.org."}},
		{"10.0.0.0/8", []string{"10.in-addr.arpa."}},
		{"10.9.3.0/24", []string{"3.9.10.in-addr.arpa."}},
		{"10.9.3.0/23", []string{"2.9.10.in-addr.arpa.", "3.9.10.in-addr.arpa."}},
		{"fc00::/7", []string{"c.f.ip6.arpa.", "d.f.ip6.arpa."}},
		{"fd00::/15", []string{"0.0.d.f.ip6.arpa.", "1.0.d.f.ip6.arpa."}},
	}
	for _, tc := range tests {
		if got := plugin.NormalizeExact(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("plugin.NormalizeExact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSetup: any forward line parses or fails with an error, never a
// panic.
func FuzzSetup(f *testing.F) {
	for _, s := range []string{
		"forward . 127.0.0.1",
		"forward example.org dns://127.0.0.1:5300 tls://[::1]%name:853 {\nexcept a b\nforce_tcp\nprefer_udp\nexpire 1s\nmax_fails 3\npolicy sequential\nhealth_check 1s no_rec domain x.\nmax_concurrent 10\nnext NXDOMAIN\nfailover SERVFAIL\ntls_servername n\n}",
		"forward 10.0.0.0/7 127.0.0.1:1 {\nmax_idle_conns 2\nmax_connect_attempts 1\nfailfast_all_unhealthy_upstreams\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		fs, err := parseForward(controller(input, nil))
		if err == nil {
			for _, fw := range fs {
				fw.OnShutdown()
			}
		}
	})
}
