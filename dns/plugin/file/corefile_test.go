package file

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
)

// startCorefile builds and starts a server instance from corefile (keys
// without a port get port 0) and returns its first server's UDP address.
func startCorefile(t *testing.T, corefile string) string {
	t.Helper()
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{
		Port: "0",
		Env:  &dnsserver.Env{Logger: discardLogger()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	return inst.Servers()[0].UDPAddr().String()
}

const dbExampleNet = `$ORIGIN example.net.
$TTL 300
@       IN SOA ns.example.net. h.example.net. 1 7200 3600 1209600 300
        IN NS  ns.example.net.
ns      IN A   192.0.2.153
target  IN A   198.51.100.7
`

// TestCorefile serves two zones from files in one server and asks with a
// real client: answers are authoritative, and a CNAME to the other zone
// is followed through the server, as CoreDNS's upstream does.
func TestCorefile(t *testing.T) {
	dir := t.TempDir()
	org, net := filepath.Join(dir, "db.example.org"), filepath.Join(dir, "db.example.net")
	if err := os.WriteFile(org, []byte(dbExampleOrg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(net, []byte(dbExampleNet), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := startCorefile(t, `example.org {
		bind 127.0.0.1
		file `+org+`
	}
	example.net {
		bind 127.0.0.1
		file `+net+`
	}`)

	ex := func(name string, qt uint16) *dns.Msg {
		t.Helper()
		m, err := dns.Exchange(new(dns.Msg).SetQuestion(name, qt), addr)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := ex("out.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 2 || m.Answer[1].String() != "target.example.net.\t300\tIN\tA\t198.51.100.7" {
		t.Errorf("CNAME to another zone of the server: %v", m)
	}
	m = ex("nope.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
		t.Errorf("NXDOMAIN: %v", m)
	}
	// A CNAME out of every zone the server has: the server refuses the
	// target; CoreDNS's file takes any rcode but NXDOMAIN and SERVFAIL
	// as success and answers the CNAME alone, NOERROR.
	m = ex("away.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.CNAME).Target != "elsewhere.test." {
		t.Errorf("CNAME out of the server's zones: %v", m)
	}
	// The target's NXDOMAIN is the answer's rcode.
	m = ex("gone.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeNameError || len(m.Answer) != 1 {
		t.Errorf("CNAME to a missing name of the other zone: %v", m)
	}
}

// TestDig checks the answers with the real dig: flags, sections and
// DNSSEC records with +dnssec.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed (Debian bind9-dnsutils; ./test.sh installs it)")
	}
	dir := t.TempDir()
	signed := filepath.Join(dir, "db.miek.nl.signed")
	if err := os.WriteFile(signed, []byte(dbMiekNLSigned), 0o644); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(startCorefile(t, "miek.nl {\n bind 127.0.0.1\n file "+signed+"\n}"))
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, dig, append([]string{"@" + host, "-p", port, "+tries=1", "+time=2"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tests := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"authoritative answer (AA)", []string{"a.miek.nl", "A"}, []string{"status: NOERROR", "flags: qr aa rd;", "a.miek.nl.\t\t1800\tIN\tA\t139.162.196.78", "AUTHORITY: 4"}, []string{"RRSIG"}},
		{"DNSSEC records returned as present with DO", []string{"+dnssec", "a.miek.nl", "A"}, []string{"status: NOERROR", "RRSIG\tA 8 3 1800"}, nil},
		{"NXDOMAIN with the SOA", []string{"nope.miek.nl", "A"}, []string{"status: NXDOMAIN", "AUTHORITY: 1", "miek.nl.\t\t1800\tIN\tSOA"}, nil},
		{"NXDOMAIN with DO proves it with NSEC", []string{"+dnssec", "nope.miek.nl", "A"}, []string{"status: NXDOMAIN", "\tNSEC\t"}, nil},
		{"NODATA with the SOA", []string{"a.miek.nl", "MX"}, []string{"status: NOERROR", "ANSWER: 0", "AUTHORITY: 1"}, nil},
		{"TCP", []string{"+tcp", "a.miek.nl", "AAAA"}, []string{"status: NOERROR", "2a01:7e00::f03c:91ff:fef1:6735"}, nil},
		{"question case preserved", []string{"A.MIEK.nl", "A"}, []string{";A.MIEK.nl.\t\t\tIN\tA", "a.miek.nl.\t\t1800\tIN\tA"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("dig output lacks %q:\n%s", w, out)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(out, n) {
					t.Errorf("dig output has %q:\n%s", n, out)
				}
			}
		})
	}
}

// TestCorefileReload: the zone file changed on disk with a new SOA serial
// is answered after the next reload tick; a change that keeps the serial
// is not ("reload the zone if the SOA version changes").
func TestCorefileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	writeZone(t, path, 10, "192.0.2.1")
	addr := startCorefile(t, "example.org {\n bind 127.0.0.1\n file "+path+" {\n reload 20ms\n }\n}")
	get := func() string {
		m, err := dns.Exchange(new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA), addr)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Answer) != 1 {
			t.Fatalf("answer %v", m)
		}
		return m.Answer[0].(*dns.A).A.String()
	}
	if got := get(); got != "192.0.2.1" {
		t.Fatalf("initial answer %s", got)
	}
	// Same serial: never loaded. Checked after a newer serial went in,
	// so that the test waits for something that does happen.
	writeZone(t, path, 10, "192.0.2.2")
	time.Sleep(100 * time.Millisecond) // five reload ticks
	if got := get(); got != "192.0.2.1" {
		t.Errorf("a change without a new SOA serial was loaded: %s", got)
	}
	writeZone(t, path, 11, "192.0.2.3")
	deadline := time.Now().Add(10 * time.Second)
	for get() != "192.0.2.3" {
		if time.Now().After(deadline) {
			t.Fatalf("new serial not loaded: %s", get())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
