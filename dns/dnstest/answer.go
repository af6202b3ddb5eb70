package dnstest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// AnswerDirective is the directive of the test backend plugin that
// RegisterAnswer adds after every real plugin.
const AnswerDirective = "testanswer"

var registerOnce sync.Once

// RegisterAnswer makes the "testanswer" directive available to the
// Corefiles of a test binary: it is appended to dnsserver.Directives (so
// it runs last, as a backend) and registered. Call it from a test's init
// or before building a Corefile; it is idempotent. Syntax:
//
//	testanswer [IP] {
//	    records N     # answer N A records (10.0.x.y) instead of one
//	    rcode NAME    # answer with rcode NAME (SERVFAIL, REFUSED, FORMERR,
//	                  # NOTIMP are returned unwritten: the server writes them);
//	                  # NXDOMAIN and NOERROR-without-data carry an SOA
//	    error TEXT    # also return this error (the errors plugin logs it)
//	    panic         # panic in ServeDNS
//	}
//
// It answers with the question as asked (case kept) and the AA bit.
func RegisterAnswer() {
	registerOnce.Do(func() {
		dnsserver.Directives = append(dnsserver.Directives, AnswerDirective)
		dnsserver.Register(AnswerDirective, setupAnswer)
	})
}

// Answer is the test backend.
type Answer struct {
	IP      net.IP
	Records int
	Rcode   int // -1: answer with records
	Err     error
	Panics  bool
}

func setupAnswer(c *dnsserver.Controller) error {
	a := &Answer{IP: net.IPv4(192, 0, 2, 1), Records: 1, Rcode: -1}
	for c.Next() {
		args := c.RemainingArgs()
		if len(args) > 1 {
			return c.ArgErr()
		}
		if len(args) == 1 {
			a.IP = net.ParseIP(args[0])
			if a.IP == nil {
				return c.Errf("not an IP: %q", args[0])
			}
		}
		for c.NextBlock() {
			switch c.Val() {
			case "records":
				if !c.NextArg() {
					return c.ArgErr()
				}
				n, err := strconv.Atoi(c.Val())
				if err != nil || n < 0 || n > 4096 {
					return c.Errf("bad record count %q", c.Val())
				}
				a.Records = n
			case "rcode":
				if !c.NextArg() {
					return c.ArgErr()
				}
				rc, ok := dns.StringToRcode[c.Val()]
				if !ok {
					return c.Errf("unknown rcode %q", c.Val())
				}
				a.Rcode = rc
			case "error":
				if !c.NextArg() {
					return c.ArgErr()
				}
				a.Err = errors.New(c.Val())
			case "panic":
				a.Panics = true
			default:
				return c.Errf("unknown property %q", c.Val())
			}
		}
	}
	c.AddPlugin(func(next plugin.Handler) plugin.Handler { return a })
	return nil
}

// Name implements plugin.Handler.
func (a *Answer) Name() string { return AnswerDirective }

// ServeDNS implements plugin.Handler.
func (a *Answer) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if a.Panics {
		panic("testanswer was told to panic")
	}
	if a.Rcode >= 0 && !plugin.ClientWrite(a.Rcode) {
		return a.Rcode, a.Err
	}
	state := request.Request{W: w, Req: r}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	if a.Rcode >= 0 {
		m.Rcode = a.Rcode
		m.Ns = []dns.RR{&dns.SOA{
			Hdr: dns.RR_Header{Name: "test.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 30},
			Ns:  "ns.test.", Mbox: "hostmaster.test.", Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: 30,
		}}
		w.WriteMsg(m)
		return a.Rcode, a.Err
	}
	for i := 0; i < a.Records; i++ {
		ip := a.IP
		if a.Records > 1 {
			ip = net.IPv4(10, 0, byte(i/256), byte(i%256))
		}
		m.Answer = append(m.Answer, &dns.A{
			Hdr: dns.RR_Header{Name: state.QName(), Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30},
			A:   ip,
		})
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, a.Err
}

// QuietEnv is an environment whose logger discards everything.
func QuietEnv() *dnsserver.Env {
	return &dnsserver.Env{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// StartInstance builds and starts corefile with keys that name no port
// on a port the kernel picks (one per listen address); it is stopped when
// the test ends. env nil means QuietEnv().
func StartInstance(t testing.TB, corefile string, env *dnsserver.Env) *dnsserver.Instance {
	t.Helper()
	RegisterAnswer()
	if env == nil {
		env = QuietEnv()
	}
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0", Env: env})
	if err != nil {
		t.Fatalf("NewInstance: %v", err)
	}
	t.Cleanup(func() { inst.Stop() })
	if err := inst.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return inst
}

// UDPAddr is the UDP address of the instance's first server.
func UDPAddr(t testing.TB, inst *dnsserver.Instance) string {
	t.Helper()
	a := inst.Servers()[0].UDPAddr()
	if a == nil {
		t.Fatal("server has no UDP address")
	}
	return a.String()
}

// Exchange sends m over network ("udp" or "tcp") to addr and returns the
// answer; an error fails the test.
func Exchange(t testing.TB, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %s %s: %v", network, addr, err)
	}
	return r
}

// Query returns a query for name and qtype with RD set.
func Query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// SafeBuffer is an io.Writer that many goroutines may write to and a
// test read from.
type SafeBuffer struct {
	mu sync.Mutex
	b  []byte
}

// Write appends p.
func (s *SafeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

// String returns what was written.
func (s *SafeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
