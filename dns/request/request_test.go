package request

import (
	"net"
	"testing"

	"github.com/miekg/dns"
)

// fakeWriter is a ResponseWriter with a fixed client address.
type fakeWriter struct {
	dns.ResponseWriter
	remote net.Addr
}

func (f fakeWriter) RemoteAddr() net.Addr { return f.remote }
func (f fakeWriter) LocalAddr() net.Addr {
	if _, ok := f.remote.(*net.TCPAddr); ok {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 53), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 53), Port: 53}
}

func udp(ip string, port int) fakeWriter {
	return fakeWriter{remote: &net.UDPAddr{IP: net.ParseIP(ip), Port: port}}
}

func tcp(ip string, port int) fakeWriter {
	return fakeWriter{remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: port}}
}

// TestSize: RFC 6891 6.2.5: a requestor's UDP payload size under 512 is
// treated as 512; no OPT means 512 (RFC 1035 4.2.1); TCP takes 64K.
func TestSize(t *testing.T) {
	tests := []struct {
		name string
		w    fakeWriter
		edns uint16 // 0: no OPT
		do   bool
		size int
	}{
		{"udp without EDNS0", udp("127.0.0.1", 1), 0, false, 512},
		{"udp with 1232", udp("127.0.0.1", 1), 1232, true, 1232},
		{"udp with less than 512", udp("127.0.0.1", 1), 100, false, 512},
		{"tcp", tcp("127.0.0.1", 1), 1232, true, 65535},
	}
	for _, tc := range tests {
		m := new(dns.Msg)
		m.SetQuestion("example.org.", dns.TypeA)
		if tc.edns > 0 {
			m.SetEdns0(tc.edns, tc.do)
		}
		r := Request{Req: m, W: tc.w}
		if r.Size() != tc.size || r.Do() != tc.do {
			t.Errorf("%s: size %d do %v, want %d %v", tc.name, r.Size(), r.Do(), tc.size, tc.do)
		}
	}
}

func TestClient(t *testing.T) {
	tests := []struct {
		w                fakeWriter
		ip, port, proto  string
		family           int
		localIP, localPt string
	}{
		{udp("127.0.0.1", 4000), "127.0.0.1", "4000", "udp", 1, "127.0.0.53", "53"},
		{tcp("::1", 4001), "::1", "4001", "tcp", 2, "127.0.0.53", "53"},
		{udp("::ffff:127.0.0.2", 4002), "127.0.0.2", "4002", "udp", 1, "127.0.0.53", "53"},
	}
	for _, tc := range tests {
		r := Request{Req: new(dns.Msg), W: tc.w}
		if r.IP() != tc.ip || r.Port() != tc.port || r.Proto() != tc.proto || r.Family() != tc.family ||
			r.LocalIP() != tc.localIP || r.LocalPort() != tc.localPt {
			t.Errorf("%v: %s %s %s %d %s %s", tc.w.remote, r.IP(), r.Port(), r.Proto(), r.Family(), r.LocalIP(), r.LocalPort())
		}
	}
}

func TestQuestion(t *testing.T) {
	m := new(dns.Msg)
	m.SetQuestion("WWW.Example.ORG.", dns.TypeAAAA)
	r := Request{Req: m, W: udp("127.0.0.1", 1)}
	if r.Name() != "www.example.org." || r.QName() != "WWW.Example.ORG." || r.Type() != "AAAA" || r.QType() != dns.TypeAAAA ||
		r.Class() != "IN" || r.QClass() != dns.ClassINET {
		t.Errorf("%s %s %s %d %s %d", r.Name(), r.QName(), r.Type(), r.QType(), r.Class(), r.QClass())
	}
	empty := Request{Req: new(dns.Msg), W: udp("127.0.0.1", 1)}
	if empty.Name() != "." || empty.QName() != "." || empty.Type() != "" || empty.QType() != 0 {
		t.Errorf("no question: %q %q %q %d", empty.Name(), empty.QName(), empty.Type(), empty.QType())
	}
	reply := new(dns.Msg)
	reply.SetReply(m)
	if !r.Match(reply) {
		t.Error("reply does not match")
	}
	reply.Question[0].Qtype = dns.TypeA
	if r.Match(reply) {
		t.Error("reply of another type matches")
	}
	nr := r.NewWithQuestion("other.org", dns.TypeMX)
	if nr.QName() != "other.org." || nr.QType() != dns.TypeMX || r.QName() != "WWW.Example.ORG." {
		t.Errorf("NewWithQuestion: %s %d, original %s", nr.QName(), nr.QType(), r.QName())
	}
}

// TestScrub: an answer larger than the client's buffer is cut and TC set
// (RFC 2181 9, RFC 6891 7); the query's OPT comes back with its size and
// DO bit and only the options CoreDNS echoes (RFC 6891 6.1.1: an OPT in
// the query means one in the answer).
func TestScrub(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("many.example.org.", dns.TypeA)
	q.SetEdns0(512, true)
	q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
		&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(10, 0, 0, 0)})
	reply := new(dns.Msg)
	reply.SetReply(q)
	for i := range 100 {
		reply.Answer = append(reply.Answer, &dns.A{Hdr: dns.RR_Header{Name: "many.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	w := NewScrubWriter(q, &capture{ResponseWriter: udp("127.0.0.1", 1)})
	if err := w.WriteMsg(reply); err != nil {
		t.Fatal(err)
	}
	got := w.ResponseWriter.(*capture).m
	b, _ := got.Pack()
	if len(b) > 512 || !got.Truncated || len(got.Answer) >= 100 {
		t.Fatalf("%d bytes, tc %v, %d answers", len(b), got.Truncated, len(got.Answer))
	}
	o := got.IsEdns0()
	if o == nil || o.UDPSize() != 512 || !o.Do() || len(o.Option) != 1 || o.Option[0].Option() != dns.EDNS0COOKIE {
		t.Fatalf("OPT %v", o)
	}

	// Over TCP everything fits.
	reply2 := new(dns.Msg)
	reply2.SetReply(q)
	reply2.Answer = reply.Answer[:0:0]
	for i := range 100 {
		reply2.Answer = append(reply2.Answer, &dns.A{Hdr: dns.RR_Header{Name: "many.example.org.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(10, 0, 0, byte(i))})
	}
	r := Request{Req: q, W: tcp("127.0.0.1", 1)}
	r.Scrub(reply2)
	if reply2.Truncated || len(reply2.Answer) != 100 {
		t.Errorf("tcp: tc %v with %d answers", reply2.Truncated, len(reply2.Answer))
	}
}

type capture struct {
	dns.ResponseWriter
	m *dns.Msg
}

func (c *capture) WriteMsg(m *dns.Msg) error { c.m = m; return nil }
