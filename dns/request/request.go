// Package request gives plugins one view of a query and its client: the
// question's name and type, EDNS0 size and DO bit, the client's address
// and transport, computed once and cached; and the scrubbing that makes an
// answer fit the client (EDNS0 echo, truncation with TC). It is CoreDNS's
// request package with the same semantics. It owns no state beyond the
// query it wraps.
package request

import (
	"net"
	"strings"

	"github.com/miekg/dns"
)

// Request wraps a query and the writer its answer goes to.
type Request struct {
	Req *dns.Msg
	W   dns.ResponseWriter

	// Zone is the zone of the server block that matched (set by the
	// server; plugins may overwrite their own copy).
	Zone string

	size      int  // EDNS0 buffer size (64K over TCP), 0 until computed
	do        bool // DO bit
	family    int8
	name      string
	ip        string
	port      string
	localIP   string
	localPort string
}

// NewWithQuestion returns a request like r with a copy of the query whose
// question is name (made fully qualified) and typ, class IN.
func (r *Request) NewWithQuestion(name string, typ uint16) Request {
	req1 := Request{W: r.W, Req: r.Req.Copy()}
	req1.Req.Question[0] = dns.Question{Name: dns.Fqdn(name), Qclass: dns.ClassINET, Qtype: typ}
	return req1
}

// Name is the question's name in lower case, fully qualified; "." when
// the query has no question.
func (r *Request) Name() string {
	if r.name != "" {
		return r.name
	}
	if r.Req == nil || len(r.Req.Question) == 0 {
		r.name = "."
		return r.name
	}
	r.name = strings.ToLower(dns.Name(r.Req.Question[0].Name).String())
	return r.name
}

// QName is the question's name as the client wrote it; "." without a
// question.
func (r *Request) QName() string {
	if r.Req == nil || len(r.Req.Question) == 0 {
		return "."
	}
	return dns.Name(r.Req.Question[0].Name).String()
}

// QType is the question's type; 0 without a question.
func (r *Request) QType() uint16 {
	if r.Req == nil || len(r.Req.Question) == 0 {
		return 0
	}
	return r.Req.Question[0].Qtype
}

// Type is the question's type as text, e.g. "A"; "" without a question.
func (r *Request) Type() string {
	if r.Req == nil || len(r.Req.Question) == 0 {
		return ""
	}
	return dns.Type(r.Req.Question[0].Qtype).String()
}

// QClass is the question's class; 0 without a question.
func (r *Request) QClass() uint16 {
	if r.Req == nil || len(r.Req.Question) == 0 {
		return 0
	}
	return r.Req.Question[0].Qclass
}

// Class is the question's class as text, e.g. "IN".
func (r *Request) Class() string {
	if r.Req == nil || len(r.Req.Question) == 0 {
		return ""
	}
	return dns.Class(r.Req.Question[0].Qclass).String()
}

// Do tells whether the DO (DNSSEC OK) bit is set.
func (r *Request) Do() bool {
	r.Size()
	return r.do
}

// Len is the query's length in bytes, as packed.
func (r *Request) Len() int { return r.Req.Len() }

// Size is the largest answer the client takes: 65535 over TCP, else the
// EDNS0 buffer size (at least 512), else 512.
func (r *Request) Size() int {
	if r.size != 0 {
		return r.size
	}
	size := uint16(0)
	if o := r.Req.IsEdns0(); o != nil {
		r.do = o.Do()
		size = o.UDPSize()
	}
	switch {
	case r.Proto() == "tcp":
		r.size = dns.MaxMsgSize
	case size < dns.MinMsgSize:
		r.size = dns.MinMsgSize
	default:
		r.size = int(size)
	}
	return r.size
}

// SizeAndDo gives m an OPT record that reflects the query's: the query's
// buffer size and DO bit, version 0, and only the EDNS0 options we support
// (NSID, EXPIRE, COOKIE, TCP-KEEPALIVE, PADDING). It does nothing and
// returns false when the query had no OPT record. As CoreDNS's SizeAndDo,
// it reuses the query's OPT record when m has none.
func (r *Request) SizeAndDo(m *dns.Msg) bool {
	o := r.Req.IsEdns0()
	if o == nil {
		return false
	}
	if mo := m.IsEdns0(); mo != nil {
		mo.Hdr.Name = "."
		mo.Hdr.Rrtype = dns.TypeOPT
		mo.SetVersion(0)
		mo.SetUDPSize(o.UDPSize())
		mo.Hdr.Ttl &= 0xff00 // clear flags
		if o.Do() {
			mo.SetDo()
		}
		return true
	}
	o.Hdr.Name = "."
	o.Hdr.Rrtype = dns.TypeOPT
	o.SetVersion(0)
	o.Hdr.Ttl &= 0xff00 // clear flags
	if len(o.Option) > 0 {
		o.Option = supportedOptions(o.Option)
	}
	m.Extra = append(m.Extra, o)
	return true
}

// supportedOptions keeps the EDNS0 options CoreDNS echoes by default.
func supportedOptions(o []dns.EDNS0) []dns.EDNS0 {
	n := 0
	for _, opt := range o {
		switch opt.Option() {
		case dns.EDNS0NSID, dns.EDNS0EXPIRE, dns.EDNS0COOKIE, dns.EDNS0TCPKEEPALIVE, dns.EDNS0PADDING:
			o[n] = opt
			n++
		}
	}
	return o[:n]
}

// Scrub fits reply into the client's buffer, as CoreDNS's Scrub: records
// that do not fit are removed and TC set (dns.Msg.Truncate, which
// compresses when that is needed to fit); over UDP an answer larger than
// the fragmentation limits (1480 bytes over IPv4, 1220 over IPv6) is
// compressed.
func (r *Request) Scrub(reply *dns.Msg) *dns.Msg {
	reply.Truncate(r.Size())
	if reply.Compress {
		return reply
	}
	if r.Proto() == "udp" {
		rl := reply.Len()
		if rl > 1480 && r.Family() == 1 {
			reply.Compress = true
		}
		if rl > 1220 && r.Family() == 2 {
			reply.Compress = true
		}
	}
	return reply
}

// Match tells whether reply answers this query: one question with the
// same name (case-insensitive) and type, and the QR bit set.
func (r *Request) Match(reply *dns.Msg) bool {
	if len(reply.Question) != 1 || !reply.Response {
		return false
	}
	if strings.ToLower(reply.Question[0].Name) != r.Name() {
		return false
	}
	return reply.Question[0].Qtype == r.QType()
}

// Clear forgets every cached value (after Req was changed).
func (r *Request) Clear() {
	r.name, r.ip, r.port, r.localIP, r.localPort = "", "", "", "", ""
	r.family, r.size, r.do = 0, 0, false
}

// IP is the client's address (without brackets for IPv6).
func (r *Request) IP() string {
	if r.ip == "" {
		r.ip, r.port = splitAddr(r.W.RemoteAddr())
	}
	return r.ip
}

// Port is the client's port.
func (r *Request) Port() string {
	if r.port == "" {
		r.ip, r.port = splitAddr(r.W.RemoteAddr())
	}
	return r.port
}

// LocalIP is the server's address the query came to.
func (r *Request) LocalIP() string {
	if r.localIP == "" {
		r.localIP, r.localPort = splitAddr(r.W.LocalAddr())
	}
	return r.localIP
}

// LocalPort is the server's port the query came to.
func (r *Request) LocalPort() string {
	if r.localPort == "" {
		r.localIP, r.localPort = splitAddr(r.W.LocalAddr())
	}
	return r.localPort
}

// RemoteAddr is the client's address as host:port.
func (r *Request) RemoteAddr() string { return r.W.RemoteAddr().String() }

// LocalAddr is the server's address as host:port.
func (r *Request) LocalAddr() string { return r.W.LocalAddr().String() }

func splitAddr(a net.Addr) (ip, port string) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return ipString(a.IP, a.Zone), itoa(a.Port)
	case *net.TCPAddr:
		return ipString(a.IP, a.Zone), itoa(a.Port)
	case nil:
		return "", "0"
	}
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String(), "0"
	}
	return host, port
}

func ipString(ip net.IP, zone string) string {
	if zone != "" {
		return ip.String() + "%" + zone
	}
	return ip.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// Family is 1 for IPv4 clients and 2 for IPv6.
func (r *Request) Family() int {
	if r.family != 0 {
		return int(r.family)
	}
	var ip net.IP
	switch a := r.W.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	if ip.To4() != nil {
		r.family = 1
	} else {
		r.family = 2
	}
	return int(r.family)
}

// Proto is "udp" or "tcp".
func (r *Request) Proto() string {
	if r.W == nil {
		return "udp"
	}
	if _, ok := r.W.RemoteAddr().(*net.TCPAddr); ok {
		return "tcp"
	}
	return "udp"
}

// ScrubWriter makes every answer written through it fit the client: it
// applies SizeAndDo and Scrub before writing, as CoreDNS's ScrubWriter.
// The server wraps each query's writer in one, so plugins need not.
type ScrubWriter struct {
	dns.ResponseWriter
	req *dns.Msg
}

// NewScrubWriter returns a ScrubWriter for the query req.
func NewScrubWriter(req *dns.Msg, w dns.ResponseWriter) *ScrubWriter {
	return &ScrubWriter{ResponseWriter: w, req: req}
}

// WriteMsg scrubs m and writes it.
func (s *ScrubWriter) WriteMsg(m *dns.Msg) error {
	state := Request{Req: s.req, W: s.ResponseWriter}
	state.SizeAndDo(m)
	state.Scrub(m)
	return s.ResponseWriter.WriteMsg(m)
}
