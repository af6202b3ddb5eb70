package bind_test

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
)

func init() { dnstest.RegisterAnswer() }

// TestParse follows CoreDNS's bind README: addresses and interface names,
// several directives consolidated, `except` removing addresses.
func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		bind     string
		has, not []string
		err      string
	}{
		{"addresses", "bind 127.0.0.1 ::1", []string{"127.0.0.1", "::1"}, nil, ""},
		{"several directives add up", "bind 127.0.0.1\n bind 127.0.0.2", []string{"127.0.0.1", "127.0.0.2"}, nil, ""},
		{"an interface gives its addresses", "bind lo", []string{"127.0.0.1"}, nil, ""},
		{"except removes", "bind lo 127.0.0.2 {\n except 127.0.0.1\n }", []string{"127.0.0.2"}, []string{"127.0.0.1"}, ""},
		{"nothing to bind", "bind", nil, nil, "at least one address or interface name is expected"},
		{"not an address", "bind example.org", nil, nil, `not a valid IP address or interface name: "example.org"`},
		{"except without addresses", "bind 127.0.0.1 {\n except\n }", nil, nil, "Corefile:3 - Error during parsing: at least one address or interface must be given"},
		{"unknown option", "bind 127.0.0.1 {\n only 1\n }", nil, nil, `Corefile:3 - Error during parsing: invalid option "only"`},
		{"everything excepted", "bind 127.0.0.1 {\n except 127.0.0.1\n }", nil, nil, "no address left"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := dnsserver.NewInstance("Corefile", []byte("example.org:0 {\n "+tc.bind+"\n testanswer\n}\n"), dnsserver.Options{Env: dnstest.QuietEnv()})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin/bind") || !strings.Contains(err.Error(), "Corefile:") {
					t.Fatalf("error %v, want one with %q, plugin/bind and the line", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hosts := inst.Configs[0].ListenHosts
			for _, h := range tc.has {
				if !slices.Contains(hosts, h) {
					t.Errorf("listen hosts %v lack %s", hosts, h)
				}
			}
			for _, h := range tc.not {
				if slices.Contains(hosts, h) {
					t.Errorf("listen hosts %v have %s", hosts, h)
				}
			}
		})
	}
}

// TestBindListens: the server listens on the bound address only.
func TestBindListens(t *testing.T) {
	inst := dnstest.StartInstance(t, "example.org {\n bind 127.0.0.2\n testanswer\n}\n", nil)
	s := inst.Servers()[0]
	if s.Addr != "dns://127.0.0.2:0" {
		t.Errorf("server label %q, want dns://127.0.0.2:0", s.Addr)
	}
	ua := s.UDPAddr().(*net.UDPAddr)
	if !ua.IP.Equal(net.IPv4(127, 0, 0, 2)) {
		t.Fatalf("udp on %v", ua)
	}
	r := dnstest.Exchange(t, "udp", ua.String(), dnstest.Query("example.org.", dns.TypeA))
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("rcode %d", r.Rcode)
	}
	if ta := s.TCPAddr().(*net.TCPAddr); !ta.IP.Equal(net.IPv4(127, 0, 0, 2)) || ta.Port != ua.Port {
		t.Errorf("tcp on %v, want 127.0.0.2 and the UDP port %d", ta, ua.Port)
	}
}
