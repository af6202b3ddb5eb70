package cache

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func controller(input string, reg prometheus.Registerer, zones ...string) *dnsserver.Controller {
	if len(zones) == 0 {
		zones = []string{"."}
	}
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(input)),
		Directive: "cache",
		Config:    &dnsserver.Config{Zone: zones[0], Zones: zones, Port: "53", Transport: "dns"},
		Env:       &dnsserver.Env{Registerer: reg, Logger: slog.New(slog.DiscardHandler)},
	}
}

// clock is a fake time for TTL tests.
type clock struct{ t atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.t.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.t.Load()).UTC() }
func (c *clock) advance(d time.Duration) { c.t.Add(int64(d)) }

// backend is the next plugin: it answers with what answer returns and
// counts the queries.
type backend struct {
	calls  atomic.Int64
	answer func(r *dns.Msg) *dns.Msg
}

func (b *backend) handler() plugin.Handler {
	return plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		b.calls.Add(1)
		m := b.answer(r)
		if m == nil {
			return dns.RcodeServerFailure, nil
		}
		w.WriteMsg(m)
		return m.Rcode, nil
	})
}

// newCache parses input and wires a backend.
func newCache(t testing.TB, input string, reg prometheus.Registerer, b *backend) (*Cache, *clock) {
	t.Helper()
	ca, err := cacheParse(controller(input, reg))
	if err != nil {
		t.Fatalf("parse %q: %v", input, err)
	}
	clk := newClock()
	ca.now = clk.now
	ca.Next = b.handler()
	return ca, clk
}

func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

// reply builds the answer to r with the given sections.
func reply(r *dns.Msg, rcode int, answer, ns, extra []dns.RR) *dns.Msg {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.Answer, m.Ns, m.Extra = answer, ns, extra
	return m
}

// writer is a fake client connection recording what it got.
type writer struct {
	tcp    bool
	raw    []byte
	msg    *dns.Msg
	writes int
	viaRaw bool
	remote net.Addr
	local  net.Addr
}

func newWriter(tcp bool) *writer {
	w := &writer{tcp: tcp}
	if tcp {
		w.remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
		w.local = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	} else {
		w.remote = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40212}
		w.local = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
	}
	return w
}

func (w *writer) LocalAddr() net.Addr  { return w.local }
func (w *writer) RemoteAddr() net.Addr { return w.remote }
func (w *writer) WriteMsg(m *dns.Msg) error {
	w.writes++
	w.viaRaw = false
	w.msg = m
	return nil
}
func (w *writer) Write(b []byte) (int, error) {
	w.writes++
	w.viaRaw = true
	w.raw = append(w.raw[:0], b...)
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

func ask(t testing.TB, c *Cache, w *writer, q *dns.Msg) *dns.Msg {
	t.Helper()
	if _, err := c.ServeDNS(context.Background(), w, q); err != nil {
		t.Fatalf("ServeDNS: %v", err)
	}
	return w.msg
}

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
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
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
