package dnsserver_test

import (
	"encoding/binary"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const routingCorefile = `
example.org {
    bind 127.0.0.1
    testanswer 192.0.2.1
}
sub.example.org {
    bind 127.0.0.1
    testanswer 192.0.2.2
}
10.0.0.0/23 {
    bind 127.0.0.1
    testanswer 192.0.2.3
}
servfail.test {
    bind 127.0.0.1
    testanswer {
        rcode SERVFAIL
    }
}
panic.test {
    bind 127.0.0.1
    testanswer {
        panic
    }
}
many.test {
    bind 127.0.0.1
    testanswer {
        records 200
    }
}
`

// TestRouting checks CoreDNS's zone routing: a query goes to the block
// with the most specific zone on the address; a zone no block serves is
// REFUSED; a code a plugin returns without writing is written by the
// server ("SERVFAIL, REFUSED, FORMERR and NOTIMP ... the server writes").
func TestRouting(t *testing.T) {
	inst := startInstance(t, routingCorefile, nil)
	addr := udpAddr(t, inst)
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer string // the A record's address, "" for none
	}{
		{"apex of a zone", "example.org.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1"},
		{"below a zone", "www.example.org.", dns.TypeA, dns.RcodeSuccess, "192.0.2.1"},
		{"most specific zone wins", "www.sub.example.org.", dns.TypeA, dns.RcodeSuccess, "192.0.2.2"},
		{"zone apex of the child", "sub.example.org.", dns.TypeA, dns.RcodeSuccess, "192.0.2.2"},
		{"a name is case-insensitive (RFC 4343)", "WWW.SUB.Example.ORG.", dns.TypeA, dns.RcodeSuccess, "192.0.2.2"},
		{"DS goes to the parent of a zone we serve (CoreDNS routes DS up)", "sub.example.org.", dns.TypeDS, dns.RcodeSuccess, "192.0.2.1"},
		{"reverse zone from a CIDR key, first /24", "5.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "192.0.2.3"},
		{"reverse zone from a CIDR key, second /24", "5.1.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, "192.0.2.3"},
		{"outside the CIDR is not served", "5.2.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, ""},
		{"foreign zone is REFUSED", "example.com.", dns.TypeA, dns.RcodeRefused, ""},
		{"parent of a zone is REFUSED", "org.", dns.TypeA, dns.RcodeRefused, ""},
		{"unwritten SERVFAIL is written by the server", "x.servfail.test.", dns.TypeA, dns.RcodeServerFailure, ""},
		{"a panic in a plugin becomes SERVFAIL", "x.panic.test.", dns.TypeA, dns.RcodeServerFailure, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, "udp", addr, query(tc.qname, tc.qtype))
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", rcodeName(r.Rcode), rcodeName(tc.rcode))
			}
			if len(r.Question) != 1 || r.Question[0].Name != tc.qname {
				t.Errorf("question %v, want the one asked (%s) with its case", r.Question, tc.qname)
			}
			got := ""
			if len(r.Answer) > 0 {
				got = r.Answer[0].(*dns.A).A.String()
			}
			if got != tc.answer {
				t.Errorf("answer %q, want %q", got, tc.answer)
			}
		})
	}
}

// TestClassRefused: CoreDNS refuses classes other than IN unless a
// plugin that serves them (forward, chaos) is in the chain.
func TestClassRefused(t *testing.T) {
	inst := startInstance(t, routingCorefile, nil)
	m := query("example.org.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	r := exchange(t, "udp", udpAddr(t, inst), m)
	if r.Rcode != dns.RcodeRefused {
		t.Fatalf("rcode %s, want REFUSED", rcodeName(r.Rcode))
	}
}

// rawExchange sends b over UDP and returns the answer, or nil when none
// comes within wait.
func rawExchange(t *testing.T, addr string, b []byte, wait time.Duration) []byte {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// TestMalformed checks what miekg/dns (and so CoreDNS) answers to bad
// messages: FORMERR for a header that is not one question or a message
// that does not unpack, NOTIMP for other opcodes, and silence for
// responses and runts (any answer could amplify an attack).
func TestMalformed(t *testing.T) {
	inst := startInstance(t, routingCorefile, nil)
	addr := udpAddr(t, inst)
	good, _ := query("example.org.", dns.TypeA).Pack()
	hdr := func(id, bits, qd, an, ns, ar uint16, rest ...byte) []byte {
		b := make([]byte, 12, 12+len(rest))
		binary.BigEndian.PutUint16(b[0:], id)
		binary.BigEndian.PutUint16(b[2:], bits)
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		binary.BigEndian.PutUint16(b[8:], ns)
		binary.BigEndian.PutUint16(b[10:], ar)
		return append(b, rest...)
	}
	twoQuestions := append(hdr(7, 0, 2, 0, 0, 0), good[12:]...)
	twoQuestions = append(twoQuestions, good[12:]...)
	tests := []struct {
		name  string
		pkt   []byte
		rcode int // -1: no answer
	}{
		{"no question is FORMERR", hdr(1, 0, 0, 0, 0, 0), dns.RcodeFormatError},
		{"two questions are FORMERR", twoQuestions, dns.RcodeFormatError},
		{"a question that is cut short is FORMERR", append(hdr(2, 0, 1, 0, 0, 0), good[12:20]...), dns.RcodeFormatError},
		{"garbage after a header is FORMERR", hdr(3, 0, 1, 0, 0, 0, 0xff, 0xff, 0xff), dns.RcodeFormatError},
		{"opcode UPDATE is NOTIMP", hdr(4, 5<<11, 1, 0, 0, 0), dns.RcodeNotImplemented},
		{"a response gets no answer", hdr(5, 1<<15, 1, 0, 0, 0), -1},
		{"fewer than 12 bytes get no answer", []byte{1, 2, 3}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wait := 5 * time.Second
			if tc.rcode < 0 {
				wait = 300 * time.Millisecond
			}
			b := rawExchange(t, addr, tc.pkt, wait)
			if tc.rcode < 0 {
				if b != nil {
					t.Fatalf("got an answer of %d bytes, want none", len(b))
				}
				return
			}
			if b == nil {
				t.Fatal("no answer")
			}
			m := new(dns.Msg)
			if err := m.Unpack(b); err != nil {
				t.Fatalf("answer does not unpack: %v", err)
			}
			if m.Rcode != tc.rcode || !m.Response {
				t.Fatalf("rcode %s (qr %v), want %s", rcodeName(m.Rcode), m.Response, rcodeName(tc.rcode))
			}
			if m.Id != binary.BigEndian.Uint16(tc.pkt) {
				t.Errorf("id %d, want the query's", m.Id)
			}
		})
	}
	// The server still answers.
	r := exchange(t, "udp", addr, query("example.org.", dns.TypeA))
	if r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after malformed queries: rcode %s", rcodeName(r.Rcode))
	}
}

// TestEDNS: an OPT in the query gets one in the answer with the
// client's buffer size and DO bit (CoreDNS's SizeAndDo); none without;
// a version other than 0 is BADVERS (RFC 6891 6.1.3).
func TestEDNS(t *testing.T) {
	inst := startInstance(t, routingCorefile, nil)
	addr := udpAddr(t, inst)

	r := exchange(t, "udp", addr, query("example.org.", dns.TypeA))
	if r.IsEdns0() != nil {
		t.Errorf("answer to a query without EDNS0 has an OPT record")
	}

	m := query("example.org.", dns.TypeA)
	m.SetEdns0(1232, true)
	r = exchange(t, "udp", addr, m)
	o := r.IsEdns0()
	if o == nil {
		t.Fatal("no OPT in the answer to an EDNS0 query")
	}
	if o.UDPSize() != 1232 || !o.Do() || o.Version() != 0 {
		t.Errorf("OPT size %d do %v version %d, want 1232 true 0", o.UDPSize(), o.Do(), o.Version())
	}

	m = query("example.org.", dns.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	r = exchange(t, "udp", addr, m)
	if r.Rcode != dns.RcodeBadVers {
		t.Errorf("EDNS version 1: rcode %s, want BADVERS", rcodeName(r.Rcode))
	}
}

// TestTruncation: an answer that does not fit the client's UDP size is
// cut and TC set; over TCP it comes whole (RFC 1035 4.2.1, RFC 7766).
func TestTruncation(t *testing.T) {
	inst := startInstance(t, routingCorefile, nil)
	addr := udpAddr(t, inst)
	for _, size := range []uint16{0, 512, 1232} {
		m := query("many.test.", dns.TypeA)
		if size > 0 {
			m.SetEdns0(size, false)
		}
		b, _ := m.Pack()
		raw := rawExchange(t, addr, b, 5*time.Second)
		if raw == nil {
			t.Fatalf("size %d: no answer", size)
		}
		limit := int(size)
		if limit == 0 {
			limit = 512
		}
		if len(raw) > limit {
			t.Errorf("size %d: answer is %d bytes", size, len(raw))
		}
		r := new(dns.Msg)
		if err := r.Unpack(raw); err != nil {
			t.Fatal(err)
		}
		if !r.Truncated || len(r.Answer) >= 200 {
			t.Errorf("size %d: tc %v with %d answers, want tc and fewer than 200", size, r.Truncated, len(r.Answer))
		}
	}
	r := exchange(t, "tcp", inst.Servers()[0].TCPAddr().String(), query("many.test.", dns.TypeA))
	if r.Truncated || len(r.Answer) != 200 {
		t.Errorf("tcp: tc %v with %d answers, want all 200", r.Truncated, len(r.Answer))
	}
}

// TestDig uses dig as the client: it retries over TCP after a truncated
// UDP answer and shows the question as asked.
func TestDig(t *testing.T) {
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig is not installed (bind9-dnsutils; ./test.sh installs it)")
	}
	inst := startInstance(t, routingCorefile, nil)
	host, port, _ := net.SplitHostPort(udpAddr(t, inst))
	run := func(args ...string) string {
		t.Helper()
		base := []string{"@" + host, "-p", port, "+time=5", "+tries=1"}
		out, err := exec.Command(dig, append(base, args...)...).CombinedOutput()
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
		{"udp answer keeps the question's case", []string{"WwW.Example.ORG", "A", "+noedns"},
			[]string{"status: NOERROR", ";WwW.Example.ORG.\t\tIN\tA", "WwW.Example.ORG.\t30\tIN\tA\t192.0.2.1"}, nil},
		{"foreign zone refused", []string{"example.com", "A"}, []string{"status: REFUSED"}, nil},
		{"truncated answer with +ignore", []string{"many.test", "A", "+ignore", "+bufsize=512"},
			[]string{"flags: qr aa tc rd;"}, []string{"ANSWER: 200"}},
		{"dig retries over TCP and gets everything", []string{"many.test", "A", "+bufsize=512"},
			[]string{"ANSWER: 200", "(TCP)"}, []string{" tc "}},
		{"+tcp gets everything", []string{"many.test", "A", "+tcp"}, []string{"ANSWER: 200"}, nil},
		{"EDNS0 is answered with the client's size", []string{"example.org", "A", "+bufsize=1400"},
			[]string{"; EDNS: version: 0, flags:; udp: 1400"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := run(tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("dig output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out, w) {
					t.Errorf("dig output has %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestWildcardAnswersFromQueriedAddress: a server on all addresses answers
// from the address the query was sent to (a connected client drops
// anything else), here 127.0.0.2 and 127.0.0.3.
func TestWildcardAnswersFromQueriedAddress(t *testing.T) {
	inst := startInstance(t, "example.org {\n testanswer\n}\n", nil)
	_, port, _ := net.SplitHostPort(udpAddr(t, inst))
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		t.Run(ip, func(t *testing.T) {
			r := exchange(t, "udp", net.JoinHostPort(ip, port), query("example.org.", dns.TypeA))
			if r.Rcode != dns.RcodeSuccess {
				t.Fatalf("rcode %s", rcodeName(r.Rcode))
			}
		})
	}
	if _, err := net.ResolveUDPAddr("udp6", "[::1]:0"); err == nil {
		if c, err := net.ListenPacket("udp6", "[::1]:0"); err == nil {
			c.Close()
			r := exchange(t, "udp", net.JoinHostPort("::1", port), query("example.org.", dns.TypeA))
			if r.Rcode != dns.RcodeSuccess {
				t.Fatalf("::1: rcode %s", rcodeName(r.Rcode))
			}
		}
	}
}
