package e2e

import (
	"net"
	"strings"
	"sync"
	"testing"

	mdns "github.com/miekg/dns"
)

// upstream is the DNS server `forward` sends to: a miekg/dns server the
// test runs on a loopback address of its own (UDP and TCP on one port),
// authoritative for upstream.test. and one reverse name. Nothing of the
// suite ever asks the machine's resolver. It counts the questions it gets.
type upstream struct {
	addr string
	mu   sync.Mutex
	asks map[string]int // "name TYPE" -> count
}

// The upstream's data.
const (
	upstreamZone = "upstream.test."
	upstreamWWW  = "127.66.0.10" // www.upstream.test. A (data only: nothing connects to it)
	upstreamSOA  = "upstream.test. 60 IN SOA ns.upstream.test. hostmaster.upstream.test. 1 7200 1800 86400 60"
	upstreamPTR  = "3.2.1.127.in-addr.arpa." // answered with one-two-three.upstream.test.
)

func startUpstream(t *testing.T, ip string) *upstream {
	t.Helper()
	u := &upstream{asks: map[string]int{}}
	var pc net.PacketConn
	var l net.Listener
	for try := 0; ; try++ {
		var err error
		pc, err = net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatal(err)
		}
		l, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if try == 10 {
			t.Fatalf("upstream: no port free for both UDP and TCP on %s: %v", ip, err)
		}
	}
	u.addr = pc.LocalAddr().String()
	h := mdns.HandlerFunc(u.serve)
	udp := &mdns.Server{PacketConn: pc, Handler: h}
	tcp := &mdns.Server{Listener: l, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return u
}

func (u *upstream) serve(w mdns.ResponseWriter, r *mdns.Msg) {
	m := new(mdns.Msg)
	m.SetReply(r)
	if len(r.Question) != 1 {
		m.Rcode = mdns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	u.mu.Lock()
	u.asks[name+" "+mdns.TypeToString[q.Qtype]]++
	u.mu.Unlock()
	rr := func(s string) mdns.RR {
		x, err := mdns.NewRR(s)
		if err != nil {
			panic(err)
		}
		return x
	}
	switch {
	case name == "www.upstream.test." && q.Qtype == mdns.TypeA:
		m.Answer = []mdns.RR{rr(q.Name + " 300 IN A " + upstreamWWW)}
	case name == "www.upstream.test.":
		m.Ns = []mdns.RR{rr(upstreamSOA)}
	case name == upstreamPTR && q.Qtype == mdns.TypePTR:
		m.Answer = []mdns.RR{rr(q.Name + " 300 IN PTR one-two-three.upstream.test.")}
	case mdns.IsSubDomain(upstreamZone, name):
		m.Rcode = mdns.RcodeNameError
		m.Ns = []mdns.RR{rr(upstreamSOA)}
	default:
		m.Rcode = mdns.RcodeRefused
	}
	_ = w.WriteMsg(m)
}

// asked returns how often the upstream got the question.
func (u *upstream) asked(name, qtype string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.asks[strings.ToLower(name)+" "+qtype]
}
