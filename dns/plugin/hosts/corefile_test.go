package hosts

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
)

// TestCorefile runs hosts from a Corefile in a real server: the file is
// read at startup, checked again every reload interval, and the metrics
// land on the registry given to the server.
func TestCorefile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hosts")
	writeFile(t, path, "10.0.0.1 www.example.org\n")
	reg := prometheus.NewRegistry()
	addr := startWith(t, `example.org {
		bind 127.0.0.1
		hosts `+path+` {
			reload 20ms
			ttl 60
		}
	}`, reg)
	get := func(name string, qt uint16) *dns.Msg {
		t.Helper()
		m, err := dns.Exchange(new(dns.Msg).SetQuestion(name, qt), addr)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := get("www.example.org.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 1 || m.Answer[0].String() != "www.example.org.\t60\tIN\tA\t10.0.0.1" {
		t.Fatalf("answer %v", m)
	}
	// Without fallthrough an unknown name is SERVFAIL (no SOA to give an
	// NXDOMAIN with), written by the server.
	if m := get("nope.example.org.", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("unknown name: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if m := get("1.0.0.10.in-addr.arpa.", dns.TypePTR); m.Rcode != dns.RcodeRefused {
		// The server serves example.org only: the reverse zone is
		// REFUSED by the server before hosts sees it.
		t.Errorf("PTR outside the server's zones: %s, want REFUSED", dns.RcodeToString[m.Rcode])
	}
	writeFile(t, path, "10.0.0.2 www.example.org\n10.0.0.3 other.example.org\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := get("www.example.org.", dns.TypeA)
		if len(m.Answer) == 1 && m.Answer[0].(*dns.A).A.String() == "10.0.0.2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("change not seen: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n, err := testutil.GatherAndCount(reg, "coredns_hosts_entries"); err != nil || n != 1 {
		t.Errorf("coredns_hosts_entries series %d (%v)", n, err)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP coredns_hosts_entries The combined number of entries in hosts and Corefile.
# TYPE coredns_hosts_entries gauge
coredns_hosts_entries{hostsfile="`+path+`"} 4
`), "coredns_hosts_entries"); err != nil {
		t.Error(err)
	}

	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Log("dig not installed; skipping its check (./test.sh installs bind9-dnsutils)")
		return
	}
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, dig, "@"+host, "-p", port, "+tries=1", "+time=2", "+noall", "+answer", "other.example.org", "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	if got := strings.Join(strings.Fields(string(out)), " "); got != "other.example.org. 60 IN A 10.0.0.3" {
		t.Errorf("dig answer %q", got)
	}
}

// startWith builds and starts a server instance from corefile (keys
// without a port get port 0) and returns its first server's UDP address.
func startWith(t *testing.T, corefile string, reg prometheus.Registerer) string {
	t.Helper()
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0", Env: &dnsserver.Env{Registerer: reg, Logger: discardLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	return inst.Servers()[0].UDPAddr().String()
}
