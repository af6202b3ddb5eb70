package forward

import (
	"log/slog"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
)

// startServer runs the real server core with body as the plugins of a
// ".:0" block on 127.0.0.1 and returns its UDP and TCP addresses.
func startServer(t *testing.T, body string, reg prometheus.Registerer) (udp, tcp string) {
	t.Helper()
	corefile := ".:0 {\n  bind 127.0.0.1\n" + body + "\n}\n"
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0",
		Env: &dnsserver.Env{Registerer: reg, Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatalf("%s: %v", corefile, err)
	}
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	s := inst.Servers()[0]
	return s.UDPAddr().String(), s.TCPAddr().String()
}

// Several forward lines in a server block: "a CoreDNS server configured
// with multiple forward plugins in a server block will evaluate those
// forward plugins in the order they are listed", and "next NXDOMAIN"
// hands the query to the next one. Through the real server and sockets.
func TestServerBlockWithSeveralForwards(t *testing.T) {
	nx := startUpstream(t, func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		w.WriteMsg(m)
	})
	lab := startUpstream(t, answerA("192.0.2.10"))
	rest := startUpstream(t, answerA("192.0.2.20"))
	udp, tcp := startServer(t, "  forward lab.example.local "+lab.Addr+"\n  forward . "+nx.Addr+" {\n    next NXDOMAIN\n  }\n  forward . "+rest.Addr, nil)

	tests := []struct {
		name string
		net  string
		want string
	}{
		{"host.lab.example.local.", "udp", "192.0.2.10"},
		{"host.lab.example.local.", "tcp", "192.0.2.10"},
		{"www.example.org.", "udp", "192.0.2.20"}, // NXDOMAIN from the first, then the next forward
		{"www.example.org.", "tcp", "192.0.2.20"},
	}
	for _, tc := range tests {
		t.Run(tc.net+" "+tc.name, func(t *testing.T) {
			addr := udp
			if tc.net == "tcp" {
				addr = tcp
			}
			c := &dns.Client{Net: tc.net, Timeout: 3 * time.Second}
			q := query(tc.name, dns.TypeA)
			m, _, err := c.Exchange(q, addr)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != tc.want {
				t.Fatalf("answer %v", m)
			}
			if m.Id != q.Id {
				t.Errorf("ID %d, want %d", m.Id, q.Id)
			}
		})
	}
	if nx.count("www.example.org.") != 2 || nx.count("host.lab.example.local.") != 0 {
		t.Errorf("the NXDOMAIN upstream saw %d / %d queries", nx.count("www.example.org."), nx.count("host.lab.example.local."))
	}
}
