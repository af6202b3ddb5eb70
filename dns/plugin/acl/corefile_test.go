package acl

import (
	"net"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/hosts"
)

// startCorefile builds and starts a dnsserver instance from corefile with
// every key on port 0, and returns the UDP address of its first server.
func startCorefile(t *testing.T, corefile string, reg prometheus.Registerer) string {
	t.Helper()
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{
		Port: "0",
		Env:  &dnsserver.Env{Registerer: reg, Logger: discardLogger()},
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

// TestCorefile runs acl from a Corefile in a real server, in front of
// hosts, and checks the answers and the metrics with their server label.
func TestCorefile(t *testing.T) {
	reg := prometheus.NewRegistry()
	addr := startCorefile(t, `example.org {
		bind 127.0.0.1
		acl {
			block type A net 127.0.0.0/8
			drop type TXT
		}
		hosts {
			10.0.0.1 www.example.org
			fallthrough
		}
	}`, reg)
	_, port, _ := net.SplitHostPort(addr)
	server := "dns://127.0.0.1:" + "0"

	m, err := dns.Exchange(new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA), addr)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeRefused {
		t.Errorf("A from 127.0.0.1: %s, want REFUSED (block)", dns.RcodeToString[m.Rcode])
	}
	m, err = dns.Exchange(new(dns.Msg).SetQuestion("www.example.org.", dns.TypeAAAA), addr)
	if err != nil {
		t.Fatal(err)
	}
	if m.Rcode != dns.RcodeSuccess || !m.Authoritative {
		t.Errorf("AAAA from 127.0.0.1: %v, want hosts' NODATA (allowed)", m)
	}
	if got := testutil.ToFloat64(newMetrics(reg).blocked.WithLabelValues(server, "example.org.", "")); got != 1 {
		t.Errorf(`coredns_acl_blocked_requests_total{server=%q,zone="example.org.",view=""} = %v, want 1 (port %s)`, server, got, port)
	}
	if got := testutil.ToFloat64(newMetrics(reg).allowed.WithLabelValues(server, "")); got != 1 {
		t.Errorf(`coredns_acl_allowed_requests_total{server=%q,view=""} = %v, want 1`, server, got)
	}
}
