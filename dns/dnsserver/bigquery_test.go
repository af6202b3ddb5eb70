package dnsserver_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

// padded returns a query for example.org A grown to about size bytes with
// an EDNS0 padding option (RFC 7830).
func padded(size int) *dns.Msg {
	m := dnstest.Query("example.org.", dns.TypeA)
	m.SetEdns0(4096, false)
	pad := &dns.EDNS0_PADDING{Padding: make([]byte, size-m.Len()-4)}
	m.IsEdns0().Option = append(m.IsEdns0().Option, pad)
	return m
}

// UDP queries are read into a 4 KiB buffer: one that fits is answered, a
// larger one (which no resolver sends: EDNS0 sizes stop at 4096) is
// dropped unread, and over TCP any size is answered.
func TestUDPQuerySizeLimit(t *testing.T) {
	inst := dnstest.StartInstance(t, "example.org {\n bind 127.0.0.1\n testanswer\n}\n", dnstest.QuietEnv())
	udp := dnstest.UDPAddr(t, inst)
	tcp := inst.Servers()[0].TCPAddr().String()

	fits := padded(4000)
	if r := dnstest.Exchange(t, "udp", udp, fits); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("a 4000-byte query: %s", dns.RcodeToString[r.Rcode])
	}

	big := padded(5000)
	raw, err := big.Pack()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(raw); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 512)
	if n, err := c.Read(buf); err == nil {
		t.Fatalf("a %d-byte UDP query was answered (%d bytes); it must be dropped", len(raw), n)
	} else if !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("reading: %v", err)
	}
	// The server keeps serving, and TCP takes the big query.
	if r := dnstest.Exchange(t, "udp", udp, dnstest.Query("example.org.", dns.TypeA)); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after the big query: %s", dns.RcodeToString[r.Rcode])
	}
	if r := dnstest.Exchange(t, "tcp", tcp, big); r.Rcode != dns.RcodeSuccess {
		t.Fatalf("the big query over TCP: %s", dns.RcodeToString[r.Rcode])
	}
}
