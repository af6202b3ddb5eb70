package dnsserver_test

import (
	"io"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/errors"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/health"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/log"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/prometheus"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/ready"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/reload"
)

// fuzzReg is shared by every fuzz run (plugins keep their metrics per
// registry).
var fuzzReg = prometheus.NewRegistry()

// fuzzEnv is an environment that writes nothing anywhere.
func fuzzEnv() *dnsserver.Env {
	env := quietEnv()
	env.Registerer, env.Gatherer = fuzzReg, fuzzReg
	env.QueryLog = io.Discard
	return env
}

// corefileSeeds are Corefiles of every shape the server reads.
var corefileSeeds = []string{
	routingCorefile,
	"example.org {\n testanswer\n}\n",
	"dns://example.org:1053 example.net {\n bind 127.0.0.1 ::1 {\n  except ::1\n }\n log . {combined} {\n  class denial error\n }\n errors {\n  consolidate 5m \".* i/o timeout$\" warning show_first\n  stacktrace\n }\n testanswer 192.0.2.1 {\n  records 3\n }\n}\n",
	"(snip) {\n log\n}\n{$HOME}.test {\n import snip\n prometheus localhost:9153\n health :8080 {\n  lameduck 5s\n }\n ready :8181 {\n  monitor continuously\n }\n reload 10s 2s\n testanswer\n}\n",
	"10.0.0.0/23 fd00::/62 {\n testanswer\n}\n",
	". {\n # comment\n testanswer \"192.0.2.9\"\n}\n",
	"a.test {\n testanswer {\n  rcode NXDOMAIN\n  error \"x y\"\n }\n}\nb.test {\n testanswer {\n  panic\n }\n}\n",
	"example.org {\n}\n",
	"example.org\ntestanswer\n",
	"example.org {\n unknown\n}\n",
	"example.org {\n testanswer {\n",
	"tls://example.org {\n testanswer\n}\n",
	"example.org:99999 {\n}\n",
}

// FuzzCorefile: reading and setting up any Corefile text returns an
// instance or an error, never a panic (nothing is started: setups open no
// socket).
func FuzzCorefile(f *testing.F) {
	for _, s := range corefileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, corefile string) {
		// import reads files: keep it to the snippets and files of this
		// directory, never a device or a file elsewhere.
		if strings.Contains(corefile, "import") && strings.ContainsAny(corefile, "/*?[\\") {
			t.Skip("import of a path outside the test directory")
		}
		inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0", Env: fuzzEnv()})
		if err == nil && inst == nil {
			t.Fatal("no instance and no error")
		}
		if err != nil && !strings.Contains(err.Error(), "Corefile") && !strings.Contains(err.Error(), "plugin/") {
			t.Fatalf("error names neither the file nor the plugin: %v", err)
		}
	})
}

// captureWriter packs what it is given, as a socket writer would.
type captureWriter struct {
	tcp   bool
	wrote [][]byte
}

func (w *captureWriter) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}

func (w *captureWriter) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}

func (w *captureWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *captureWriter) Write(b []byte) (int, error) {
	w.wrote = append(w.wrote, append([]byte(nil), b...))
	return len(b), nil
}
func (w *captureWriter) Close() error        { return nil }
func (w *captureWriter) TsigStatus() error   { return nil }
func (w *captureWriter) TsigTimersOnly(bool) {}
func (w *captureWriter) Hijack()             {}
func (w *captureWriter) Network() string     { return "udp" }

const fuzzQueryCorefile = `
example.org {
    prometheus 127.0.0.1:0
    errors
    log
    testanswer {
        records 40
    }
}
sub.example.org 10.0.0.0/24 {
    testanswer
}
servfail.test {
    errors
    testanswer {
        rcode SERVFAIL
        error "boom"
    }
}
panic.test {
    testanswer {
        panic
    }
}
`

// querySeeds are wire queries of the shapes that matter.
func querySeeds() [][]byte {
	var out [][]byte
	add := func(m *dns.Msg) {
		b, err := m.Pack()
		if err == nil {
			out = append(out, b)
		}
	}
	add(query("example.org.", dns.TypeA))
	add(query("WWW.Sub.Example.ORG.", dns.TypeAAAA))
	add(query("sub.example.org.", dns.TypeDS))
	add(query("5.0.0.10.in-addr.arpa.", dns.TypePTR))
	add(query("example.com.", dns.TypeA))
	add(query("x.servfail.test.", dns.TypeA))
	add(query("x.panic.test.", dns.TypeA))
	m := query("example.org.", dns.TypeA)
	m.SetEdns0(512, true)
	add(m)
	m = query("example.org.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	add(m)
	m = query("example.org.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	add(m)
	out = append(out, []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []byte{1, 2, 3}, []byte{0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	return out
}

// FuzzQuery: any bytes through the server's packet path (the one UDP
// uses) with a small chain: no panic, and every answer is a valid
// message (FORMERR or NOTIMP for what does not parse, an answer to the
// question otherwise).
func FuzzQuery(f *testing.F) {
	for _, s := range querySeeds() {
		f.Add(s)
	}
	inst, err := dnsserver.NewInstance("Corefile", []byte(fuzzQueryCorefile), dnsserver.Options{Port: "0", Env: fuzzEnv()})
	if err != nil {
		f.Fatal(err)
	}
	srv := inst.Servers()[0]
	f.Fuzz(func(t *testing.T, pkt []byte) {
		w := &captureWriter{}
		srv.ServePacket(w, pkt)
		if len(w.wrote) > 1 {
			t.Fatalf("%d answers to one query", len(w.wrote))
		}
		if len(w.wrote) == 0 {
			return // runts and responses get none
		}
		r := new(dns.Msg)
		if err := r.Unpack(w.wrote[0]); err != nil {
			t.Fatalf("answer does not unpack: %v", err)
		}
		if !r.Response || r.Id != uint16(pkt[0])<<8|uint16(pkt[1]) {
			t.Fatalf("answer is not a response to the query: qr %v id %d", r.Response, r.Id)
		}
		q := new(dns.Msg)
		if q.Unpack(pkt) != nil || len(q.Question) != 1 {
			if r.Rcode != dns.RcodeFormatError && r.Rcode != dns.RcodeNotImplemented {
				t.Fatalf("a malformed query got %s", dns.RcodeToString[r.Rcode])
			}
			return
		}
		if len(r.Question) == 1 && r.Question[0] != q.Question[0] && r.Rcode != dns.RcodeFormatError && r.Rcode != dns.RcodeNotImplemented {
			t.Fatalf("question %v answered as %v", q.Question[0], r.Question[0])
		}
	})
}
