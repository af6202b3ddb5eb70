package forward

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
)

// upstream is a DNS server the test starts on 127.0.0.1 (UDP and TCP on
// the same port) with handler h.
type upstream struct {
	Addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu      sync.Mutex
	queries []seen
}

// seen is one query as the upstream saw it.
type seen struct {
	proto string
	id    uint16
	src   string
	q     dns.Question
	rd    bool
}

func (u *upstream) Seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.queries...)
}

// count returns how many queries for name (not health checks) arrived.
func (u *upstream) count(name string) int {
	n := 0
	for _, s := range u.Seen() {
		if strings.EqualFold(s.q.Name, name) {
			n++
		}
	}
	return n
}

func startUpstream(t testing.TB, h dns.HandlerFunc, opts ...func(*dns.Server)) *upstream {
	t.Helper()
	return startUpstreamOn(t, "127.0.0.1", "0", h, opts...)
}

// startUpstreamOn listens on ip:port (port "0": a free one); opts adjust
// both servers before they start.
func startUpstreamOn(t testing.TB, ip, port string, h dns.HandlerFunc, opts ...func(*dns.Server)) *upstream {
	t.Helper()
	u := &upstream{}
	record := func(w dns.ResponseWriter, r *dns.Msg) {
		proto := "udp"
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			proto = "tcp"
		}
		if len(r.Question) > 0 {
			u.mu.Lock()
			u.queries = append(u.queries, seen{proto: proto, id: r.Id, src: w.RemoteAddr().String(), q: r.Question[0], rd: r.RecursionDesired})
			u.mu.Unlock()
		}
		h(w, r)
	}
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, port))
		if err != nil {
			t.Fatalf("listen udp: %v", err)
		}
		p := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		l, err := net.Listen("tcp", net.JoinHostPort(ip, p))
		if err != nil {
			pc.Close()
			if port != "0" {
				t.Fatalf("listen tcp: %v", err)
			}
			continue
		}
		u.Addr = net.JoinHostPort(ip, p)
		var wg sync.WaitGroup
		wg.Add(2)
		u.udp = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(record), NotifyStartedFunc: wg.Done}
		u.tcp = &dns.Server{Listener: l, Handler: dns.HandlerFunc(record), NotifyStartedFunc: wg.Done}
		for _, o := range opts {
			o(u.udp)
			o(u.tcp)
		}
		go u.udp.ActivateAndServe()
		go u.tcp.ActivateAndServe()
		wg.Wait()
		t.Cleanup(func() {
			u.udp.Shutdown()
			u.tcp.Shutdown()
		})
		return u
	}
	t.Fatal("no free port on 127.0.0.1")
	return nil
}

// answerA answers every query with "NAME 60 IN A ip" (and no records
// for other types). It builds the record directly: the upstream must
// cost little in benchmarks.
func answerA(ip string) dns.HandlerFunc {
	addr := net.ParseIP(ip).To4()
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: addr})
		}
		w.WriteMsg(m)
	}
}

// controller returns what dnsserver gives a plugin's setup for input.
func controller(input string, reg prometheus.Registerer) *dnsserver.Controller {
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(input)),
		Directive: "forward",
		Config:    &dnsserver.Config{Zone: ".", Zones: []string{"."}, Port: "53", Transport: "dns"},
		Env:       &dnsserver.Env{Registerer: reg, Logger: slog.New(slog.DiscardHandler)},
	}
}

// newForward parses input and starts the stanzas; they stop at the end
// of the test.
func newForward(t *testing.T, input string, reg prometheus.Registerer) []*Forward {
	t.Helper()
	fs, err := parseForward(controller(input, reg))
	if err != nil {
		t.Fatalf("parse %q: %v", input, err)
	}
	for i, f := range fs {
		if i < len(fs)-1 {
			f.Next = fs[i+1]
		}
		f.OnStartup()
		t.Cleanup(func() { f.OnShutdown() })
	}
	return fs
}

// writer is a fake client connection: UDP (or TCP) from 127.0.0.1.
type writer struct {
	tcp bool
	msg *dns.Msg
}

func (w *writer) LocalAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *writer) RemoteAddr() net.Addr {
	if w.tcp {
		return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
	}
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
}
func (w *writer) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *writer) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msg = m
	return len(b), nil
}
func (w *writer) Close() error        { return nil }
func (w *writer) TsigStatus() error   { return nil }
func (w *writer) TsigTimersOnly(bool) {}
func (w *writer) Hijack()             {}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// serve runs f on a query and returns what it wrote (nil if nothing),
// its rcode and error.
func serve(f *Forward, w *writer, m *dns.Msg) (*dns.Msg, int, error) {
	rc, err := f.ServeDNS(context.Background(), w, m)
	return w.msg, rc, err
}

// counterValue reads a counter or histogram count with labels from reg.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// eventually polls cond for up to 5s (for background health checks).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
