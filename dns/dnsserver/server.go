package dnsserver

import (
	"context"
	"encoding/binary"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// Server answers the queries of one listen address: it routes each query
// to the server block with the most specific zone, as CoreDNS's
// dnsserver.Server does.
type Server struct {
	// Addr is the server's name in metrics and logs, as CoreDNS's:
	// "dns://:53", or "dns://127.0.0.1:53" with bind.
	Addr string

	listen     string             // host:port to bind
	zones      map[string]*Config // by zone
	ctx        context.Context    // carries Key{} -> this server; the same for every query
	inst       *Instance
	stacktrace bool
	classChaos bool
	set        *listenerSet // set while running
}

// Key is the context key under which a query's context carries the
// *Server answering it.
type Key struct{}

// FromContext returns the server answering the query of ctx, or nil.
func FromContext(ctx context.Context) *Server {
	s, _ := ctx.Value(Key{}).(*Server)
	return s
}

// ServerName returns the "server" metric label of the query of ctx
// ("dns://:53"), or "" outside a server.
func ServerName(ctx context.Context) string {
	if s := FromContext(ctx); s != nil {
		return s.Addr
	}
	return ""
}

// Instance returns the instance the server belongs to.
func (s *Server) Instance() *Instance { return s.inst }

// UDPAddr is the bound UDP address (useful with port 0), nil when not
// listening.
func (s *Server) UDPAddr() net.Addr {
	if s.set == nil || len(s.set.udp) == 0 {
		return nil
	}
	return s.set.udp[0].conn.LocalAddr()
}

// TCPAddr is the bound TCP address, nil when not listening.
func (s *Server) TCPAddr() net.Addr {
	if s.set == nil || s.set.tcp == nil {
		return nil
	}
	return s.set.tcp.Addr()
}

// Monitor receives what a server answers by itself, without a plugin
// chain; the prometheus plugin implements it (CoreDNS reports these under
// the zone "dropped").
type Monitor interface {
	// Dropped reports a query the server answered itself with rcode
	// (REFUSED for a zone it does not serve, SERVFAIL ...); size is the
	// answer's length.
	Dropped(server string, state *request.Request, rcode int, size int, start time.Time)
	// Panic counts a panic recovered while serving.
	Panic()
}

// header is a DNS message header as on the wire.
type header struct {
	id, bits, qdcount, ancount, nscount, arcount uint16
}

const (
	bitQR = 1 << 15
	bitAA = 1 << 10
	bitTC = 1 << 9
	bitRD = 1 << 8
	bitRA = 1 << 7
	bitZ  = 1 << 6
	bitAD = 1 << 5
	bitCD = 1 << 4
)

// accept is miekg/dns's DefaultMsgAcceptFunc: responses are ignored,
// opcodes other than QUERY and NOTIFY are NOTIMP, and a message that is
// not one question (plus at most one answer, one authority and two
// additional records) is FORMERR.
func accept(h header) dns.MsgAcceptAction {
	if h.bits&bitQR != 0 {
		return dns.MsgIgnore
	}
	opcode := int(h.bits>>11) & 0xF
	if opcode != dns.OpcodeQuery && opcode != dns.OpcodeNotify {
		return dns.MsgRejectNotImplemented
	}
	if h.qdcount != 1 || h.ancount > 1 || h.nscount > 1 || h.arcount > 2 {
		return dns.MsgReject
	}
	return dns.MsgAccept
}

func setHeader(m *dns.Msg, h header) {
	m.Id = h.id
	m.Response = h.bits&bitQR != 0
	m.Opcode = int(h.bits>>11) & 0xF
	m.Authoritative = h.bits&bitAA != 0
	m.Truncated = h.bits&bitTC != 0
	m.RecursionDesired = h.bits&bitRD != 0
	m.RecursionAvailable = h.bits&bitRA != 0
	m.Zero = h.bits&bitZ != 0
	m.AuthenticatedData = h.bits&bitAD != 0
	m.CheckingDisabled = h.bits&bitCD != 0
	m.Rcode = int(h.bits & 0xF)
}

// ServePacket answers one query as it came off the wire, the way
// miekg/dns's server does before calling a handler: fewer than 12 bytes
// and responses get no answer; a message that does not unpack or is not
// one question gets FORMERR (other opcodes NOTIMP); everything else goes
// to ServeDNS.
func (s *Server) ServePacket(w dns.ResponseWriter, pkt []byte) {
	if len(pkt) < 12 {
		return // as miekg/dns: never answer what may be an amplification probe
	}
	h := header{
		id:      binary.BigEndian.Uint16(pkt[0:]),
		bits:    binary.BigEndian.Uint16(pkt[2:]),
		qdcount: binary.BigEndian.Uint16(pkt[4:]),
		ancount: binary.BigEndian.Uint16(pkt[6:]),
		nscount: binary.BigEndian.Uint16(pkt[8:]),
		arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
	req := new(dns.Msg)
	action := accept(h)
	if action == dns.MsgAccept {
		// A header that promises a question the message does not hold is
		// malformed too (miekg/dns unpacks it without one, and CoreDNS
		// then answers SERVFAIL; FORMERR is the right answer).
		if err := req.Unpack(pkt); err == nil && len(req.Question) == 1 {
			s.ServeDNS(s.ctx, w, req)
			return
		}
		action = dns.MsgReject
	} else {
		setHeader(req, h)
	}
	if action == dns.MsgIgnore {
		return
	}
	// As miekg/dns's serveDNS: the query itself becomes the answer.
	opcode := req.Opcode
	req.SetRcodeFormatError(req)
	req.Zero = false
	if action == dns.MsgRejectNotImplemented {
		req.Opcode = opcode
		req.Rcode = dns.RcodeNotImplemented
	}
	req.Ns, req.Answer, req.Extra = nil, nil, nil
	// Not reported to the monitor: in CoreDNS miekg/dns answers these
	// before the server sees them, so they are in no metric either.
	w.WriteMsg(req)
}

// ServeDNS routes a query to the chain of the server block with the
// most specific zone (CoreDNS's dnsserver.Server.ServeDNS): no question
// gives SERVFAIL, a class other than IN REFUSED (unless a plugin such as
// forward answers other classes), a wrong EDNS version BADVERS, a zone
// no block serves REFUSED; a code the chain returns without writing
// (SERVFAIL, REFUSED, FORMERR, NOTIMP) is written by the server. Every
// answer is scrubbed to fit the client (EDNS0 echo, TC), and a panic in a
// plugin becomes SERVFAIL and a log line.
func (s *Server) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	if r == nil || len(r.Question) == 0 {
		s.errorAndMetrics(w, r, dns.RcodeServerFailure)
		return
	}
	defer func() {
		if rec := recover(); rec != nil {
			if s.stacktrace {
				s.inst.log.Error("Recovered from panic in server", "server", s.Addr, "panic", rec, "stack", string(debug.Stack()))
			} else {
				s.inst.log.Error("Recovered from panic in server", "server", s.Addr, "panic", rec)
			}
			if m := s.inst.monitor; m != nil {
				m.Panic()
			}
			s.errorAndMetrics(w, r, dns.RcodeServerFailure)
		}
	}()

	if !s.classChaos && r.Question[0].Qclass != dns.ClassINET {
		s.errorAndMetrics(w, r, dns.RcodeRefused)
		return
	}
	if o := r.IsEdns0(); o != nil && o.Version() != 0 {
		w.WriteMsg(badVersion(r))
		return
	}

	// Scrub every answer to fit the client's buffer. Our UDP writer does
	// it itself (no allocation); other writers are wrapped.
	if uw, ok := w.(*udpWriter); ok {
		uw.req = r
	} else {
		w = request.NewScrubWriter(r, w)
	}

	q := r.Question[0].Name
	if hasUpper(q) {
		q = strings.ToLower(q)
	}
	var (
		off       int
		end       bool
		dshandler *Config
	)
	for {
		if h, ok := s.zones[q[off:]]; ok {
			if h.chain == nil { // zone defined, but has no plugins
				s.errorAndMetrics(w, r, dns.RcodeRefused)
				return
			}
			if r.Question[0].Qtype != dns.TypeDS {
				rcode, _ := h.chain.ServeDNS(ctx, w, r)
				if !plugin.ClientWrite(rcode) {
					errorFunc(w, r, rcode)
				}
				return
			}
			// A DS query: keep the handler and look on, as the
			// parent zone answers for DS when we serve it too.
			dshandler = h
		}
		off, end = dns.NextLabel(q, off)
		if end {
			break
		}
	}
	if r.Question[0].Qtype == dns.TypeDS && dshandler != nil {
		rcode, _ := dshandler.chain.ServeDNS(ctx, w, r)
		if !plugin.ClientWrite(rcode) {
			errorFunc(w, r, rcode)
		}
		return
	}
	// Nothing matched: try the root zone as a last resort.
	if h, ok := s.zones["."]; ok && h.chain != nil {
		rcode, _ := h.chain.ServeDNS(ctx, w, r)
		if !plugin.ClientWrite(rcode) {
			errorFunc(w, r, rcode)
		}
		return
	}
	s.errorAndMetrics(w, r, dns.RcodeRefused)
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			return true
		}
	}
	return false
}

// badVersion is the answer to an EDNS version other than 0 (RFC 6891
// 6.1.3: BADVERS, with our OPT at version 0).
func badVersion(r *dns.Msg) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(r)
	o := new(dns.OPT)
	o.Hdr.Name = "."
	o.Hdr.Rrtype = dns.TypeOPT
	o.SetVersion(0)
	m.Rcode = dns.RcodeBadVers
	o.SetExtendedRcode(dns.RcodeBadVers)
	m.Extra = []dns.RR{o}
	return m
}

// errorFunc answers r with rcode (and the client's EDNS0), as CoreDNS.
func errorFunc(w dns.ResponseWriter, r *dns.Msg, rc int) {
	answer := new(dns.Msg)
	answer.SetRcode(r, rc)
	state := request.Request{W: w, Req: r}
	state.SizeAndDo(answer)
	w.WriteMsg(answer)
}

// errorAndMetrics answers r with rcode and reports it to the monitor as
// a query no chain saw.
func (s *Server) errorAndMetrics(w dns.ResponseWriter, r *dns.Msg, rc int) {
	answer := new(dns.Msg)
	if r != nil {
		answer.SetRcode(r, rc)
	} else {
		answer.Response = true
		answer.Rcode = rc
	}
	state := request.Request{W: w, Req: r}
	if r != nil {
		state.SizeAndDo(answer)
		if m := s.inst.monitor; m != nil {
			m.Dropped(s.Addr, &state, rc, answer.Len(), time.Now())
		}
	}
	w.WriteMsg(answer)
}
