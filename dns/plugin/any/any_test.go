package any

import (
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// next answers with one TXT record so that passing on is visible.
var next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg).SetReply(r)
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 5}, Txt: []string{"next"}}}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
})

func TestServeDNS(t *testing.T) {
	tests := []struct {
		name     string
		qname    string
		qtype    uint16
		wantType uint16
	}{
		{"ANY is answered with a short HINFO reply (RFC 8482)", "example.org.", dns.TypeANY, dns.TypeHINFO},
		{"ANY keeps the question's case", "ExAmPle.ORG.", dns.TypeANY, dns.TypeHINFO},
		{"A passes to the next plugin", "example.org.", dns.TypeA, dns.TypeTXT},
		{"TXT passes to the next plugin", "example.org.", dns.TypeTXT, dns.TypeTXT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &dnstest.Writer{}
			rcode, err := Any{Next: next}.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion(tc.qname, tc.qtype))
			if err != nil || rcode != dns.RcodeSuccess {
				t.Fatalf("rcode %d err %v", rcode, err)
			}
			if w.Msg == nil || len(w.Msg.Answer) != 1 || w.Msg.Answer[0].Header().Rrtype != tc.wantType {
				t.Fatalf("answer %v, want one %s", w.Msg, dns.TypeToString[tc.wantType])
			}
			if tc.wantType != dns.TypeHINFO {
				return
			}
			h := w.Msg.Answer[0].(*dns.HINFO)
			if h.Hdr.Name != tc.qname || h.Hdr.Ttl != 8482 || h.Hdr.Class != dns.ClassINET || h.Cpu != "ANY obsoleted" || h.Os != "See RFC 8482" {
				t.Errorf("HINFO %v, want %s 8482 IN HINFO \"ANY obsoleted\" \"See RFC 8482\"", h, tc.qname)
			}
			if !w.Msg.Response || w.Msg.Rcode != dns.RcodeSuccess {
				t.Errorf("header %v", w.Msg.MsgHdr)
			}
		})
	}
}

func TestNoQuestionPassesOn(t *testing.T) {
	rcode, err := Any{}.ServeDNS(context.Background(), &dnstest.Writer{}, new(dns.Msg))
	if rcode != dns.RcodeServerFailure || err == nil {
		t.Errorf("no question and no next: rcode %d err %v, want SERVFAIL and an error", rcode, err)
	}
}

func TestSetup(t *testing.T) {
	for _, in := range []string{"any", "any extra args"} {
		c := &dnsserver.Controller{
			Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(in)),
			Directive: pluginName,
			Config:    &dnsserver.Config{Zone: ".", Zones: []string{"."}},
			Env:       &dnsserver.Env{Logger: discardLogger()},
		}
		if err := setup(c); err != nil {
			t.Errorf("setup(%q): %v", in, err)
		}
	}
}

// TestDig: `dig ANY example.org` against a real server shows the README's
// answer line "example.org.  8482 IN HINFO "ANY obsoleted" "See RFC 8482"".
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig not installed (Debian bind9-dnsutils; ./test.sh installs it)")
	}
	host, port, _ := net.SplitHostPort(dnstest.ServeHandler(t, Any{Next: next}))
	for _, tcp := range []bool{false, true} {
		args := []string{"@" + host, "-p", port, "+tries=1", "+time=2", "+noall", "+answer", "ANY", "example.org"}
		if tcp {
			args = append(args, "+tcp")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("dig: %v\n%s", err, out)
		}
		got := strings.Join(strings.Fields(string(out)), " ")
		if want := `example.org. 8482 IN HINFO "ANY obsoleted" "See RFC 8482"`; got != want {
			t.Errorf("tcp=%v: dig answer %q, want %q", tcp, got, want)
		}
	}
}

func BenchmarkPassOn(b *testing.B) {
	a := Any{Next: plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) { return 0, nil })}
	r := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
	w := &dnstest.Writer{}
	b.ReportAllocs()
	for b.Loop() {
		a.ServeDNS(context.Background(), w, r)
	}
}
