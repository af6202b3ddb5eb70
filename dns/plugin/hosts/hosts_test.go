package hosts

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
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

// TestMain points the default hosts file at a file of the test's own, so
// that no test reads the machine's /etc/hosts.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hosts-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defaultPath = filepath.Join(dir, "default-hosts")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func controller(input string, zones []string, reg prometheus.Registerer) *dnsserver.Controller {
	if len(zones) == 0 {
		zones = []string{"."}
	}
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(input)),
		Directive: pluginName,
		Config:    &dnsserver.Config{Zone: zones[0], Zones: zones, Port: "53", Transport: "dns"},
		Env:       &dnsserver.Env{Registerer: reg, Logger: discardLogger()},
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// nextNX stands for the rest of the chain: NXDOMAIN, written.
var nextNX = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg).SetRcode(r, dns.RcodeNameError)
	w.WriteMsg(m)
	return dns.RcodeNameError, nil
})

// newHosts parses a Corefile directive, reads the file once and chains
// nextNX behind it, as setup and OnStartup do.
func newHosts(t *testing.T, input string, zones []string, reg prometheus.Registerer) *Hosts {
	t.Helper()
	h, err := parse(controller(input, zones, reg))
	if err != nil {
		t.Fatalf("parse %q: %v", input, err)
	}
	h.readHosts()
	h.Next = nextNX
	return h
}

const hostsExample = `
127.0.0.1 localhost localhost.domain
::1 localhost localhost.domain
10.0.0.1 example.org
::FFFF:10.0.0.2 example.com
10.0.0.3 fallthrough-example.org
fe80::1%lo0 zoned.example.org
10.0.0.4 Mixed.Case.example.org # a comment
# 10.0.0.5 commented.example.org
10.0.0.6 multi.example.org
10.0.0.7 multi.example.org
not-an-ip bad.example.org
10.0.0.8
reload 5s
`

func rrs(t *testing.T, lines ...string) []string {
	t.Helper()
	var out []string
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, rr.String())
	}
	return out
}

func strs(rs []dns.RR) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

func TestServeDNS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts")
	writeFile(t, path, hostsExample)

	tests := []struct {
		name      string
		config    string
		qname     string
		qtype     uint16
		rcode     int  // what ServeDNS returns
		written   bool // whether hosts (or next) wrote an answer
		fromNext  bool // the answer is the next plugin's NXDOMAIN
		answer    []string
		wantAuthz bool
	}{
		{"A from the file", "hosts " + path, "example.org.", dns.TypeA, 0, true, false, []string{"example.org. 3600 IN A 10.0.0.1"}, true},
		{"IPv4-mapped IPv6 address is an A record", "hosts " + path, "example.com.", dns.TypeA, 0, true, false, []string{"example.com. 3600 IN A 10.0.0.2"}, true},
		{"AAAA from the file", "hosts " + path, "localhost.", dns.TypeAAAA, 0, true, false, []string{"localhost. 3600 IN AAAA ::1"}, true},
		{"IPv6 zone is discarded", "hosts " + path, "zoned.example.org.", dns.TypeAAAA, 0, true, false, []string{"zoned.example.org. 3600 IN AAAA fe80::1"}, true},
		{"names are case-insensitive; answer owner is the lower-case qname", "hosts " + path, "MIXED.case.Example.org.", dns.TypeA, 0, true, false, []string{"mixed.case.example.org. 3600 IN A 10.0.0.4"}, true},
		{"several lines for one name give several records in file order", "hosts " + path, "multi.example.org.", dns.TypeA, 0, true, false, []string{"multi.example.org. 3600 IN A 10.0.0.6", "multi.example.org. 3600 IN A 10.0.0.7"}, true},
		{"PTR records are generated automatically", "hosts " + path, "1.0.0.10.in-addr.arpa.", dns.TypePTR, 0, true, false, []string{"1.0.0.10.in-addr.arpa. 3600 IN PTR example.org."}, true},
		{"PTR for an IPv4-mapped entry", "hosts " + path, "2.0.0.10.in-addr.arpa.", dns.TypePTR, 0, true, false, []string{"2.0.0.10.in-addr.arpa. 3600 IN PTR example.com."}, true},
		{"PTR lists every name of the address", "hosts " + path, "1.0.0.127.in-addr.arpa.", dns.TypePTR, 0, true, false, []string{"1.0.0.127.in-addr.arpa. 3600 IN PTR localhost.", "1.0.0.127.in-addr.arpa. 3600 IN PTR localhost.domain."}, true},
		{"PTR in ip6.arpa", "hosts " + path, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", dns.TypePTR, 0, true, false, []string{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa. 3600 IN PTR localhost.", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa. 3600 IN PTR localhost.domain."}, true},
		{"PTR zones don't need to be specified in Origins", "hosts " + path + " example.org", "1.0.0.10.in-addr.arpa.", dns.TypePTR, 0, true, false, []string{"1.0.0.10.in-addr.arpa. 3600 IN PTR example.org."}, true},
		{"PTR without an entry goes to the next plugin regardless of fallthrough", "hosts " + path, "9.9.9.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, true, true, nil, false},
		{"NODATA: the name has an A record but no AAAA", "hosts " + path, "example.org.", dns.TypeAAAA, 0, true, false, nil, true},
		{"NODATA for other types of a known name", "hosts " + path, "example.org.", dns.TypeMX, 0, true, false, nil, true},
		{"unknown name without fallthrough is SERVFAIL (no SOA for NXDOMAIN)", "hosts " + path, "nope.example.org.", dns.TypeA, dns.RcodeServerFailure, false, false, nil, false},
		{"fallthrough: unknown name goes to the next plugin", "hosts " + path + " {\n fallthrough\n}", "nope.example.org.", dns.TypeA, dns.RcodeNameError, true, true, nil, false},
		{"Only on NXDOMAIN we will fallthrough", "hosts " + path + " {\n fallthrough\n}", "fallthrough-example.org.", dns.TypeAAAA, 0, true, false, nil, true},
		{"fallthrough ZONES: only queries for those zones fall through", "hosts " + path + " {\n fallthrough example.net\n}", "nope.example.org.", dns.TypeA, dns.RcodeServerFailure, false, false, nil, false},
		{"fallthrough ZONES: a listed zone falls through", "hosts " + path + " {\n fallthrough example.org\n}", "nope.example.org.", dns.TypeA, dns.RcodeNameError, true, true, nil, false},
		{"names outside ZONES go to the next plugin regardless of fallthrough", "hosts " + path + " example.net", "example.org.", dns.TypeA, dns.RcodeNameError, true, true, nil, false},
		{"entries outside ZONES are not loaded", "hosts " + path + " example.org", "1.0.0.127.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, true, true, nil, false},
		{"ttl changes the TTL of forward records", "hosts " + path + " {\n ttl 60\n}", "example.org.", dns.TypeA, 0, true, false, []string{"example.org. 60 IN A 10.0.0.1"}, true},
		{"ttl changes the TTL of reverse records", "hosts " + path + " {\n ttl 60\n}", "1.0.0.10.in-addr.arpa.", dns.TypePTR, 0, true, false, []string{"1.0.0.10.in-addr.arpa. 60 IN PTR example.org."}, true},
		{"no_reverse disables the generation of in-addr.arpa entries", "hosts " + path + " {\n no_reverse\n}", "1.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, true, true, nil, false},
		{"INLINE entries are served", "hosts " + filepath.Join(dir, "absent") + " {\n 10.1.1.1 inline.example.org\n fallthrough\n}", "inline.example.org.", dns.TypeA, 0, true, false, []string{"inline.example.org. 3600 IN A 10.1.1.1"}, true},
		{"INLINE entries come after the file's", "hosts " + path + " {\n 10.0.0.9 example.org\n}", "example.org.", dns.TypeA, 0, true, false, []string{"example.org. 3600 IN A 10.0.0.1", "example.org. 3600 IN A 10.0.0.9"}, true},
		{"INLINE PTR", "hosts " + path + " {\n 10.1.1.1 inline.example.org\n}", "1.1.1.10.in-addr.arpa.", dns.TypePTR, 0, true, false, []string{"1.1.1.10.in-addr.arpa. 3600 IN PTR inline.example.org."}, true},
		{"a line without names is skipped", "hosts " + path, "8.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, true, true, nil, false},
		{"comments are discarded", "hosts " + path + " {\n fallthrough\n}", "commented.example.org.", dns.TypeA, dns.RcodeNameError, true, true, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHosts(t, tc.config, nil, nil)
			w := &dnstest.Writer{}
			r := new(dns.Msg).SetQuestion(tc.qname, tc.qtype)
			rcode, err := h.ServeDNS(context.Background(), w, r)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[rcode], dns.RcodeToString[tc.rcode])
			}
			if (w.Msg != nil) != tc.written {
				t.Fatalf("written %v, want %v (%v)", w.Msg != nil, tc.written, w.Msg)
			}
			if w.Msg == nil {
				return
			}
			if tc.fromNext {
				if w.Msg.Rcode != dns.RcodeNameError {
					t.Errorf("expected the next plugin's NXDOMAIN, got %v", w.Msg)
				}
				return
			}
			if w.Msg.Rcode != dns.RcodeSuccess || w.Msg.Authoritative != tc.wantAuthz {
				t.Errorf("rcode %d aa %v, want NOERROR aa %v", w.Msg.Rcode, w.Msg.Authoritative, tc.wantAuthz)
			}
			if got, want := strs(w.Msg.Answer), rrs(t, tc.answer...); !slices.Equal(got, want) {
				t.Errorf("answer\n%v\nwant\n%v", got, want)
			}
			if len(w.Msg.Ns) != 0 || len(w.Msg.Extra) != 0 {
				t.Errorf("unexpected authority/additional: %v", w.Msg)
			}
		})
	}
}

// TestAnswersAreFresh: a later plugin changing an answer's records (the
// cache sets TTLs, alias renames) must not change the data.
func TestAnswersAreFresh(t *testing.T) {
	h := newHosts(t, "hosts {\n 10.0.0.1 a.example.org\n}", nil, nil)
	for i := 0; i < 2; i++ {
		w := &dnstest.Writer{}
		if _, err := h.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion("a.example.org.", dns.TypeA)); err != nil {
			t.Fatal(err)
		}
		if got := w.Msg.Answer[0].String(); got != "a.example.org.\t3600\tIN\tA\t10.0.0.1" {
			t.Fatalf("round %d: %q", i, got)
		}
		w.Msg.Answer[0].Header().Ttl = 1
		w.Msg.Answer[0].Header().Name = "changed."
	}
}

func TestLookupStaticAddrIsACopy(t *testing.T) {
	h := newHosts(t, "hosts {\n ::1 localhost\n 127.0.0.1 localhost\n}", nil, nil)
	got := h.LookupStaticAddr("::1")
	if !slices.Equal(got, []string{"localhost."}) {
		t.Fatalf("LookupStaticAddr(::1) = %v", got)
	}
	got[0] = "junk"
	if again := h.LookupStaticAddr("::1"); !slices.Equal(again, []string{"localhost."}) {
		t.Errorf("data changed through a returned slice: %v", again)
	}
	ips := h.LookupStaticHostV4("LOCALHOST.")
	if len(ips) != 1 || !ips[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("LookupStaticHostV4 = %v", ips)
	}
}

func TestReverseNames(t *testing.T) {
	tests := []struct {
		name string
		want string // "" = not a reverse name of an address
	}{
		{"54.119.58.176.in-addr.arpa.", "176.58.119.54"},
		{"1.0.0.127.in-addr.arpa.", "127.0.0.1"},
		{"0.0.0.0.in-addr.arpa.", "0.0.0.0"},
		{"256.0.0.10.in-addr.arpa.", ""},
		{"01.0.0.10.in-addr.arpa.", ""},
		{"0.0.10.in-addr.arpa.", ""},
		{"1.0.0.0.10.in-addr.arpa.", ""},
		{"in-addr.arpa.", ""},
		{"b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "2001:db8::567:89ab"},
		{"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "::1"},
		{"1.0.0.0.0.0.a.0.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", "10.0.0.1"},
		{"g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa.", ""},
		{"0.0.ip6.arpa.", ""},
		{"example.org.", ""},
	}
	for _, tc := range tests {
		a, ok := addrFromReverse(tc.name)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("addrFromReverse(%q) = %q, want %q", tc.name, got, tc.want)
		}
		// The same as CoreDNS's slower way.
		s, sok := slowReverse(tc.name)
		sgot := ""
		if sok {
			sgot = s.String()
		}
		if sgot != got {
			t.Errorf("slowReverse(%q) = %q, fast path %q", tc.name, sgot, got)
		}
	}
}

// TestReload: "It checks the file for changes and updates the zones
// accordingly" and "Should the file be deleted, any inlined content will
// continue to be served. When the file is restored, it will then again be
// used." Observed through a real server and client.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hosts")
	writeFile(t, path, "10.0.0.1 a.example.org\n")
	reg := prometheus.NewRegistry()
	h := newHosts(t, "hosts "+path+" {\n reload 20ms\n 10.9.9.9 inline.example.org\n fallthrough\n}", nil, reg)
	h.startReload()
	t.Cleanup(h.stopReload)
	addr := dnstest.ServeHandler(t, h)

	query := func(name string) []string {
		m, err := dns.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, rr := range m.Answer {
			out = append(out, rr.(*dns.A).A.String())
		}
		return out
	}
	waitFor := func(name string, want []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := query(name)
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: answer %v, want %v", name, got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("a.example.org.", []string{"10.0.0.1"})
	if got := testutil.ToFloat64(h.metrics.entries.WithLabelValues(path)); got != 4 {
		t.Errorf("coredns_hosts_entries = %v, want 4 (2 file + 2 inline)", got)
	}
	st, _ := os.Stat(path)
	if got, want := testutil.ToFloat64(h.metrics.reloadTime), float64(st.ModTime().UnixNano())/1e9; got != want {
		t.Errorf("coredns_hosts_reload_timestamp_seconds = %v, want the file's mtime %v", got, want)
	}

	writeFile(t, path, "10.0.0.2 a.example.org\n10.0.0.3 b.example.org\n")
	waitFor("a.example.org.", []string{"10.0.0.2"})
	waitFor("b.example.org.", []string{"10.0.0.3"})
	if got := testutil.ToFloat64(h.metrics.entries.WithLabelValues(path)); got != 6 {
		t.Errorf("coredns_hosts_entries = %v, want 6", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor("inline.example.org.", []string{"10.9.9.9"})
	writeFile(t, path, "10.0.0.4 c.example.org\n")
	waitFor("c.example.org.", []string{"10.0.0.4"})
	waitFor("inline.example.org.", []string{"10.9.9.9"})

	out, err := testutil.GatherAndCount(reg, "coredns_hosts_entries", "coredns_hosts_reload_timestamp_seconds")
	if err != nil || out != 2 {
		t.Errorf("registered series = %d (%v), want 2", out, err)
	}
}

func TestStopReloadIsIdempotent(t *testing.T) {
	h := newHosts(t, "hosts {\n reload 10ms\n}", nil, nil)
	h.startReload()
	h.startReload()
	h.stopReload()
	h.stopReload()
	h0 := newHosts(t, "hosts {\n reload 0\n}", nil, nil)
	h0.startReload() // "A time of zero seconds disables the feature"
	if h0.rl.stop != nil {
		t.Error("reload 0 started a goroutine")
	}
}
