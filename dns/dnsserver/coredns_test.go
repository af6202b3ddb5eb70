package dnsserver_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// summary is what the server itself decides about an answer: the header,
// the question echoed and the OPT record.
func summary(b []byte) string {
	if b == nil {
		return "no answer"
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return "does not unpack: " + err.Error()
	}
	s := fmt.Sprintf("rcode=%s opcode=%d qr=%v aa=%v tc=%v rd=%v ra=%v cd=%v question=%v",
		dns.RcodeToString[m.Rcode], m.Opcode, m.Response, m.Authoritative, m.Truncated,
		m.RecursionDesired, m.RecursionAvailable, m.CheckingDisabled, m.Question)
	if o := m.IsEdns0(); o != nil {
		s += fmt.Sprintf(" opt(udp=%d do=%v version=%d)", o.UDPSize(), o.Do(), o.Version())
	}
	return s
}

// TestSameAsCoreDNS sends the same packets to CoreDNS 1.14.1 and to us
// and compares what the server (not a plugin) answers: REFUSED for a
// zone not served, FORMERR and NOTIMP for malformed queries, BADVERS,
// the EDNS0 echo, the question as asked, silence for responses. It needs
// the CoreDNS binary ($SWITCHBOARD_COREDNS or <module>/.bin/coredns).
func TestSameAsCoreDNS(t *testing.T) {
	bin := corednsBinary()
	if bin == "" {
		t.Skip("no CoreDNS binary ($SWITCHBOARD_COREDNS or .bin/coredns; ./test.sh installs it)")
	}
	theirs := startCoreDNS(t, bin, "example.org:%s {\n bind 127.0.0.1\n whoami\n}\n")
	inst := startInstance(t, "example.org {\n bind 127.0.0.1\n testanswer\n}\n", nil)
	ours := udpAddr(t, inst)

	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hdr := func(bits, qd, an, ns, ar uint16, rest ...byte) []byte {
		b := make([]byte, 12, 12+len(rest))
		binary.BigEndian.PutUint16(b[0:], 4242)
		binary.BigEndian.PutUint16(b[2:], bits)
		binary.BigEndian.PutUint16(b[4:], qd)
		binary.BigEndian.PutUint16(b[6:], an)
		binary.BigEndian.PutUint16(b[8:], ns)
		binary.BigEndian.PutUint16(b[10:], ar)
		return append(b, rest...)
	}
	edns := func(name string, size uint16, do bool, version uint8) []byte {
		m := query(name, dns.TypeA)
		m.SetEdns0(size, do)
		m.IsEdns0().SetVersion(version)
		return pack(m)
	}
	chaos := query("example.org.", dns.TypeTXT)
	chaos.Question[0].Qclass = dns.ClassCHAOS
	cd := query("example.com.", dns.TypeAAAA)
	cd.CheckingDisabled = true
	good := pack(query("example.org.", dns.TypeA))
	two := append(hdr(0, 2, 0, 0, 0), good[12:]...)
	two = append(two, good[12:]...)

	tests := []struct {
		name string
		pkt  []byte
		// differs documents a deliberate difference; "" means the same.
		differs string
	}{
		{"zone not served", pack(query("example.com.", dns.TypeA)), ""},
		{"zone not served keeps the question's case", pack(query("WwW.ExAmPlE.CoM.", dns.TypeMX)), ""},
		{"zone not served with CD", pack(cd), ""},
		{"EDNS0 echo on REFUSED", edns("example.com.", 1232, true, 0), ""},
		{"EDNS0 small buffer", edns("example.com.", 100, false, 0), ""},
		{"EDNS version 1 is BADVERS", edns("example.org.", 1232, false, 1), ""},
		{"class CH without a CH plugin", pack(chaos), ""},
		{"two questions", two, ""},
		{"no question", hdr(0, 0, 0, 0, 0), ""},
		{"opcode UPDATE", hdr(5<<11, 1, 0, 0, 0), ""},
		{"opcode STATUS", hdr(2<<11|1<<8, 1, 0, 0, 0), ""},
		{"garbage question", hdr(1<<8, 1, 0, 0, 0, 0xc0, 0xff, 0, 1, 0, 1), ""},
		{"a response", hdr(1<<15, 1, 0, 0, 0), ""},
		{"a runt", []byte{1, 2, 3, 4, 5}, ""},
		{"header promises a question it lacks", hdr(1<<8, 1, 0, 0, 0),
			"CoreDNS answers SERVFAIL (miekg/dns unpacks it without a question); we answer FORMERR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wait := 2 * time.Second
			if tc.pkt[2]&0x80 != 0 || len(tc.pkt) < 12 {
				wait = 300 * time.Millisecond // no answer is expected
			}
			a := summary(rawExchange(t, theirs, tc.pkt, wait))
			b := summary(rawExchange(t, ours, tc.pkt, wait))
			if tc.differs != "" {
				if a == b {
					t.Errorf("expected a difference (%s), both: %s", tc.differs, a)
				}
				t.Logf("deliberate difference: %s\n coredns: %s\n ours:    %s", tc.differs, a, b)
				return
			}
			if a != b {
				t.Errorf("\ncoredns: %s\nours:    %s", a, b)
			}
		})
	}
}
