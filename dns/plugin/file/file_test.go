package file

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// An example zone with every kind of answer the README promises.
const dbExampleOrg = `$ORIGIN example.org.
$TTL 3600
@       IN SOA  ns1.example.org. hostmaster.Example.org. 2024010101 7200 3600 1209600 300
        IN NS   ns1.example.org.
        IN NS   ns2.example.net.
        IN MX   10 Mail.example.org.
        IN A    192.0.2.1
ns1     IN A    192.0.2.53
mail    IN A    192.0.2.25
        IN AAAA 2001:db8::25
www     IN CNAME web
web     IN CNAME host
host    IN A    192.0.2.80
out     IN CNAME target.example.net.
dangle  IN CNAME nothere
away    IN CNAME elsewhere.test.
gone    IN CNAME missing.example.net.
*.wild  IN A    192.0.2.99
        IN TXT  "wildcard"
a.b.c   IN A    192.0.2.3
sub     IN NS   ns.sub
ns.sub  IN A    192.0.2.54
_sip._udp IN SRV 0 5 5060 mail
Home\032Media._smb._tcp IN SRV 0 0 445 host
dn      IN DNAME target.example.net.
`

func query(t *testing.T, f plugin.Handler, name string, qtype uint16) (*dns.Msg, int) {
	t.Helper()
	w := &dnstest.Writer{}
	rcode, err := f.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion(name, qtype))
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return w.Msg, rcode
}

func TestServeDNS(t *testing.T) {
	f := fileFor(t, dbExampleOrg, "example.org.")
	soa := rr("example.org. 3600 IN SOA ns1.example.org. hostmaster.example.org. 2024010101 7200 3600 1209600 300")
	ns := []dns.RR{rr("example.org. 3600 IN NS ns1.example.org."), rr("example.org. 3600 IN NS ns2.example.net.")}
	tests := []struct {
		name string
		tc   testCase
		aa   bool
	}{
		{"authoritative answer with the apex NS in authority", testCase{Qname: "example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{rr("example.org. 3600 IN A 192.0.2.1")}, Ns: ns}, true},
		{"SOA at the apex; SOA names are lower-cased", testCase{Qname: "example.org.", Qtype: dns.TypeSOA,
			Answer: []dns.RR{soa}, Ns: ns}, true},
		{"NS at the apex with glue in additional", testCase{Qname: "example.org.", Qtype: dns.TypeNS,
			Answer: ns, Extra: []dns.RR{rr("ns1.example.org. 3600 IN A 192.0.2.53")}}, true},
		{"MX with the in-zone target's addresses in additional; MX target lower-cased", testCase{Qname: "example.org.", Qtype: dns.TypeMX,
			Answer: []dns.RR{rr("example.org. 3600 IN MX 10 mail.example.org.")}, Ns: ns,
			Extra: []dns.RR{rr("mail.example.org. 3600 IN A 192.0.2.25"), rr("mail.example.org. 3600 IN AAAA 2001:db8::25")}}, true},
		{"SRV with additional", testCase{Qname: "_sip._udp.example.org.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{rr("_sip._udp.example.org. 3600 IN SRV 0 5 5060 mail.example.org.")}, Ns: ns,
			Extra: []dns.RR{rr("mail.example.org. 3600 IN A 192.0.2.25"), rr("mail.example.org. 3600 IN AAAA 2001:db8::25")}}, true},
		{"SRV owner keeps its case (DNS-SD instance names)", testCase{Qname: `home\032media._smb._tcp.example.org.`, Qtype: dns.TypeSRV,
			Answer: []dns.RR{rr(`Home\032Media._smb._tcp.example.org. 3600 IN SRV 0 0 445 host.example.org.`)}, Ns: ns,
			Extra: []dns.RR{rr("host.example.org. 3600 IN A 192.0.2.80")}}, true},
		{"NXDOMAIN with the SOA in authority", testCase{Qname: "nope.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{soa}}, true},
		{"NODATA with the SOA in authority", testCase{Qname: "host.example.org.", Qtype: dns.TypeAAAA,
			Ns: []dns.RR{soa}}, true},
		{"empty non-terminal is NODATA (NOERROR with SOA)", testCase{Qname: "b.c.example.org.", Qtype: dns.TypeA,
			Ns: []dns.RR{soa}}, true},
		{"CNAME chain followed inside the zone", testCase{Qname: "www.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{rr("www.example.org. 3600 IN CNAME web.example.org."), rr("web.example.org. 3600 IN CNAME host.example.org."), rr("host.example.org. 3600 IN A 192.0.2.80")}, Ns: ns}, true},
		{"CNAME query returns the CNAME only", testCase{Qname: "www.example.org.", Qtype: dns.TypeCNAME,
			Answer: []dns.RR{rr("www.example.org. 3600 IN CNAME web.example.org.")}, Ns: ns}, true},
		{"wildcard synthesizes the query name", testCase{Qname: "x.wild.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{rr("x.wild.example.org. 3600 IN A 192.0.2.99")}, Ns: ns}, true},
		{"wildcard several labels deep", testCase{Qname: "y.x.wild.example.org.", Qtype: dns.TypeTXT,
			Answer: []dns.RR{rr(`y.x.wild.example.org. 3600 IN TXT "wildcard"`)}, Ns: ns}, true},
		{"wildcard NODATA", testCase{Qname: "x.wild.example.org.", Qtype: dns.TypeMX,
			Ns: []dns.RR{soa}}, true},
		{"delegation: NS in authority, glue in additional, not authoritative", testCase{Qname: "www.sub.example.org.", Qtype: dns.TypeA,
			Ns: []dns.RR{rr("sub.example.org. 3600 IN NS ns.sub.example.org.")}, Extra: []dns.RR{rr("ns.sub.example.org. 3600 IN A 192.0.2.54")}}, false},
		{"delegation at the cut itself", testCase{Qname: "sub.example.org.", Qtype: dns.TypeA,
			Ns: []dns.RR{rr("sub.example.org. 3600 IN NS ns.sub.example.org.")}, Extra: []dns.RR{rr("ns.sub.example.org. 3600 IN A 192.0.2.54")}}, false},
		{"DNAME synthesizes a CNAME (query for the CNAME)", testCase{Qname: "a.dn.example.org.", Qtype: dns.TypeCNAME,
			Answer: []dns.RR{rr("dn.example.org. 3600 IN DNAME target.example.net."), rr("a.dn.example.org. 3600 IN CNAME a.target.example.net.")}, Ns: ns}, true},
		{"case-insensitive names; the zone's owner names in the answer", testCase{Qname: "HOST.Example.ORG.", Qtype: dns.TypeA,
			Answer: []dns.RR{rr("host.example.org. 3600 IN A 192.0.2.80")}, Ns: ns}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, rcode := query(t, f, tc.tc.Qname, tc.tc.Qtype)
			if rcode != dns.RcodeSuccess {
				t.Fatalf("returned rcode %d; the plugin writes its answers", rcode)
			}
			if err := sortAndCheck(m, tc.tc); err != nil {
				t.Error(err)
			}
			if m.Authoritative != tc.aa {
				t.Errorf("AA = %v, want %v", m.Authoritative, tc.aa)
			}
			if m.Question[0].Name != tc.tc.Qname {
				t.Errorf("question %q, want the client's %q", m.Question[0].Name, tc.tc.Qname)
			}
		})
	}
}

// TestExternalCNAME: a CNAME to a name outside the zone is resolved
// through the server (CoreDNS's upstream); without a server that lookup
// fails and the CNAME is answered with SERVFAIL ("the rcode in the
// response should be the rcode received from the target lookup. RFC 6604
// section 3").
func TestExternalCNAME(t *testing.T) {
	f := fileFor(t, dbExampleOrg, "example.org.")
	m, _ := query(t, f, "out.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeServerFailure || len(m.Answer) != 1 || m.Answer[0].(*dns.CNAME).Target != "target.example.net." {
		t.Errorf("no server: %v, want the CNAME with SERVFAIL", m)
	}

	// With an upstream: its answer follows the CNAME, its rcode is kept.
	f.Upstream = upstreamFunc(func(ctx context.Context, state request.Request, name string, qtype uint16) (*dns.Msg, error) {
		m := new(dns.Msg).SetQuestion(name, qtype)
		if name == "target.example.net." {
			m.Answer = []dns.RR{rr("target.example.net. 60 IN A 198.51.100.1")}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		return m, nil
	})
	m, _ = query(t, f, "out.example.org.", dns.TypeA)
	if err := sortAndCheck(m, testCase{Answer: []dns.RR{rr("out.example.org. 3600 IN CNAME target.example.net."), rr("target.example.net. 60 IN A 198.51.100.1")},
		Ns: []dns.RR{rr("example.org. 3600 IN NS ns1.example.org."), rr("example.org. 3600 IN NS ns2.example.net.")}}); err != nil {
		t.Error(err)
	}
	// An in-zone target that does not exist goes to the upstream too
	// (the server would route it back here): NXDOMAIN with the CNAME.
	m, _ = query(t, f, "dangle.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeNameError || len(m.Answer) != 1 {
		t.Errorf("dangling CNAME: %v, want NXDOMAIN with the CNAME", m)
	}
	// DNAME: the synthesized CNAME's target is looked up.
	m, _ = query(t, f, "target.dn.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeNameError || len(m.Answer) != 2 {
		t.Errorf("DNAME: %v", m)
	}
}

type upstreamFunc func(ctx context.Context, state request.Request, name string, qtype uint16) (*dns.Msg, error)

func (u upstreamFunc) Lookup(ctx context.Context, state request.Request, name string, qtype uint16) (*dns.Msg, error) {
	return u(ctx, state, name, qtype)
}

// TestCNAMELoop: a CNAME loop through the upstream ends in SERVFAIL after
// 8 rounds instead of recursing forever.
func TestCNAMELoop(t *testing.T) {
	f := fileFor(t, "$ORIGIN example.org.\n@ IN SOA ns. h. 1 1 1 1 1\na IN CNAME b.example.net.\n", "example.org.")
	calls := 0
	f.Upstream = upstreamFunc(func(ctx context.Context, state request.Request, name string, qtype uint16) (*dns.Msg, error) {
		calls++
		// The upstream sends the query back through the same zone.
		w := &nonWriter{ResponseWriter: &dnstest.Writer{}}
		r := state.Req.Copy()
		r.Question[0].Name = "a.example.org."
		rcode, err := f.ServeDNS(ctx, w, r)
		if err != nil {
			return nil, err
		}
		if !plugin.ClientWrite(rcode) { // what the server does
			w.WriteMsg(new(dns.Msg).SetRcode(r, rcode))
		}
		return w.Msg, nil
	})
	m, rcode := query(t, f, "a.example.org.", dns.TypeA)
	if calls != 9 {
		t.Errorf("%d upstream lookups; CoreDNS bails out on the 9th time round", calls)
	}
	if m == nil && rcode != dns.RcodeServerFailure || m != nil && m.Rcode != dns.RcodeServerFailure {
		t.Errorf("loop answered %v rcode %d, want SERVFAIL", m, rcode)
	}
}

func TestTransferRefused(t *testing.T) {
	f := fileFor(t, dbExampleOrg, "example.org.")
	for _, qt := range []uint16{dns.TypeAXFR, dns.TypeIXFR} {
		if m, rcode := query(t, f, "example.org.", qt); m != nil || rcode != dns.RcodeRefused {
			t.Errorf("%s: %v %d, want REFUSED from the server (no transfer plugin)", dns.TypeToString[qt], m, rcode)
		}
	}
}

func TestNotZone(t *testing.T) {
	f := fileFor(t, dbExampleOrg, "example.org.")
	// With a next plugin the query goes there...
	if m, rcode := query(t, f, "example.net.", dns.TypeA); m == nil || rcode != dns.RcodeServerFailure || m.Rcode != dns.RcodeServerFailure {
		t.Errorf("other zone with next: %v %d, want the next plugin's SERVFAIL", m, rcode)
	}
	// ..."If no next plugin is configured, it's more correct to return
	// REFUSED as file acts as an authoritative server".
	f.Next = nil
	if m, rcode := query(t, f, "example.net.", dns.TypeA); m != nil || rcode != dns.RcodeRefused {
		t.Errorf("other zone without next: %v %d, want REFUSED", m, rcode)
	}
	// A zone name without data (a nil zone) is SERVFAIL, never a panic.
	f.Z["example.org."] = nil
	if _, rcode := query(t, f, "www.example.org.", dns.TypeA); rcode != dns.RcodeServerFailure {
		t.Errorf("nil zone: rcode %d, want SERVFAIL", rcode)
	}
	// A zone whose file is not read yet (no SOA) is SERVFAIL.
	f.Z["example.org."] = NewZone("example.org.", "missing")
	if _, rcode := query(t, f, "www.example.org.", dns.TypeA); rcode != dns.RcodeServerFailure {
		t.Errorf("empty zone: rcode %d, want SERVFAIL", rcode)
	}
}

// TestFallthrough is CoreDNS's TestLookupFallthrough: "If zone matches
// and no record can be generated, pass request to the next plugin".
func TestFallthrough(t *testing.T) {
	tests := []struct {
		fall  []string
		qname string
		rcode int
	}{
		{[]string{"."}, "doesnotexist.miek.nl.", dns.RcodeServerFailure},
		{[]string{"."}, "x.miek.nl.", dns.RcodeServerFailure},
		{[]string{"a.miek.nl."}, "a.miek.nl.", dns.RcodeSuccess},
		{[]string{"a.miek.nl."}, "doesnotexist.miek.nl.", dns.RcodeNameError},
		{[]string{"a.miek.nl."}, "passthrough.a.miek.nl.", dns.RcodeServerFailure},
		{[]string{"x.miek.nl."}, "x.miek.nl.", dns.RcodeServerFailure},
		{[]string{"x.miek.nl."}, "wildcard.x.miek.nl.", dns.RcodeSuccess},
	}
	for _, tc := range tests {
		f := fileFor(t, dbMiekNL, testzone)
		f.Fall = plugin.Fall{Zones: tc.fall}
		m, _ := query(t, f, tc.qname, dns.TypeA)
		if m.Rcode != tc.rcode {
			t.Errorf("fallthrough %v, %s: %s, want %s", tc.fall, tc.qname, dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode])
		}
	}
}

func TestNoDataResult(t *testing.T) {
	f := fileFor(t, dbMiekNL, testzone)
	for _, name := range []string{"a.miek.nl.", "wildcard.nodata.miek.nl."} {
		state := request.Request{W: &dnstest.Writer{}, Req: new(dns.Msg).SetQuestion(name, dns.TypeMX)}
		if _, _, _, res := f.Z[testzone].Lookup(context.Background(), state, name, nil); res != NoData {
			t.Errorf("%s MX: result %d, want NoData", name, res)
		}
	}
}

func TestClosestEncloser(t *testing.T) {
	z, err := Parse(strings.NewReader(dbMiekNL), testzone, "stdin", 0)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, out string }{
		{"miek.nl.", "miek.nl."},
		{"www.miek.nl.", "www.miek.nl."},
		{"blaat.miek.nl.", "miek.nl."},
		{"blaat.www.miek.nl.", "www.miek.nl."},
		{"www.blaat.miek.nl.", "miek.nl."},
		{"blaat.a.miek.nl.", "a.miek.nl."},
		{"blaat.z.a.miek.nl.", "a.miek.nl."},
	}
	tr := z.data.Load().tree
	for _, tc := range tests {
		ce, _ := z.closestEncloser(tr, tc.in)
		if ce == nil || ce.Name() != tc.out {
			t.Errorf("closest encloser of %s: %v, want %s", tc.in, ce, tc.out)
		}
	}
}

func TestNameFromRight(t *testing.T) {
	z := NewZone("example.org.", "stdin")
	tests := []struct {
		in       string
		labels   int
		shot     bool
		expected string
	}{
		{"example.org.", 0, false, "example.org."},
		{"a.example.org.", 0, false, "example.org."},
		{"a.example.org.", 1, false, "a.example.org."},
		{"a.example.org.", 2, true, "a.example.org."},
		{"a.b.example.org.", 2, false, "a.b.example.org."},
	}
	for _, tc := range tests {
		got, shot := z.nameFromRight(tc.in, tc.labels)
		if got != tc.expected || shot != tc.shot {
			t.Errorf("nameFromRight(%q, %d) = %q %v, want %q %v", tc.in, tc.labels, got, shot, tc.expected, tc.shot)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, zone, origin, want string
	}{
		{"no SOA", "$ORIGIN example.org.\nwww IN A 192.0.2.1\n", "example.org.", `file "stdin" has no SOA record for origin example.org.`},
		{"syntax error names the line", "$ORIGIN example.org.\n@ IN SOA ns. h. 1 1 1 1 1\n# invalid comment\n", "example.org.", `"invalid"`},
		{"malformed SOA", "@ IN SOA ns. h. abc 1 1 1 1\n", "example.org.", "bad SOA zone parameter"},
		{"SOA serial too large", "@ IN SOA ns. h. 202512200817 1 1 1 1\n", "example.org.", "bad SOA zone parameter"},
		{"NSEC3PARAM is not supported", "miek.nl. 1800 IN SOA linode.atoom.net. miek.miek.nl. 1460175181 14400 3600 604800 14400\nmiek.nl. 0 IN NSEC3PARAM 1 0 5 A3DEBC9CC4F695C7\n", "miek.nl", "NSEC3 zone is not supported"},
		{"NSEC3 is not supported", "example.org. 1800 IN SOA sns.dns.icann.org. noc.dns.icann.org. 2016082508 7200 3600 1209600 3600\naub8v9ce95ie18spjubsr058h41n7pa5.example.org. 284 IN NSEC3 1 1 5 D0CBEAAF0AC77314 AUB95P93VPKP55G6U5S4SGS7LS61ND85 NS SOA TXT RRSIG DNSKEY NSEC3PARAM\n", "example.org.", "NSEC3 zone is not supported"},
		{"an unchanged serial loads nothing", reloadZone, "miek.nl.", "no change in SOA serial"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serial := int64(0)
			if strings.HasPrefix(tc.name, "an unchanged") {
				serial = 1460175181
			}
			_, err := Parse(strings.NewReader(tc.zone), tc.origin, "stdin", serial)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

const reloadZone = `miek.nl.		1627	IN	SOA	linode.atoom.net. miek.miek.nl. 1460175181 14400 3600 604800 14400
miek.nl.		1627	IN	NS	ext.ns.whyscream.net.
miek.nl.		1627	IN	NS	omval.tednet.nl.
`

// TestInclude: $INCLUDE is allowed, as CoreDNS allows it.
func TestInclude(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "inc")
	if err := os.WriteFile(inc, []byte("foo\tIN\tA\t127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	z, err := Parse(strings.NewReader("$ORIGIN example.org.\n@ IN SOA sns.dns.icann.org. noc.dns.icann.org. 2017042766 7200 3600 1209600 3600\n$INCLUDE "+inc+"\n"), "example.org.", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := z.data.Load().tree.Search("foo.example.org."); !ok {
		t.Error("included record not found")
	}
}

// TestAnswersAreCopies: later plugins may change the records of an
// answer (TTLs, owner names) without changing the zone.
func TestAnswersAreCopies(t *testing.T) {
	f := fileFor(t, dbExampleOrg, "example.org.")
	for i := 0; i < 2; i++ {
		m, _ := query(t, f, "host.example.org.", dns.TypeA)
		if got := m.Answer[0].String(); got != "host.example.org.\t3600\tIN\tA\t192.0.2.80" || m.Ns[0].Header().Ttl != 3600 {
			t.Fatalf("round %d: %q %v", i, got, m.Ns)
		}
		m.Answer[0].Header().Ttl = 1
		m.Answer[0].Header().Name = "changed."
		m.Ns[0].Header().Ttl = 1
	}
}

func TestCanonicalOrder(t *testing.T) {
	// RFC 4034 section 6.1's example order.
	names := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.", `\001.z.example.`, "*.z.example.", `\200.z.example.`}
	for i := 0; i+1 < len(names); i++ {
		a, b := canon(names[i]), canon(names[i+1])
		if compareNames(a, b) >= 0 || compareNames(b, a) <= 0 {
			t.Errorf("%s should sort before %s", names[i], names[i+1])
		}
	}
	if compareNames(canon("A.Example."), canon("a.example.")) != 0 {
		t.Error("names differing in case must compare equal")
	}
	if canon(`\097.example.org.`) != "a.example.org." {
		t.Errorf("canon(\\097.example.org.) = %q", canon(`\097.example.org.`))
	}
}
