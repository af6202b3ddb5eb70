package loadbalance

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

type nullWriter struct{ addr net.Addr }

func (w *nullWriter) LocalAddr() net.Addr         { return w.addr }
func (w *nullWriter) RemoteAddr() net.Addr        { return w.addr }
func (w *nullWriter) WriteMsg(*dns.Msg) error     { return nil }
func (w *nullWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nullWriter) Close() error                { return nil }
func (w *nullWriter) TsigStatus() error           { return nil }
func (w *nullWriter) TsigTimersOnly(bool)         {}
func (w *nullWriter) Hijack()                     {}

// BenchmarkRoundRobin: four A records written as packed bytes (a cache
// hit) and as a message.
func BenchmarkRoundRobin(b *testing.B) {
	m := answerWith("svc.example.", dns.TypeA, dns.RcodeSuccess, []dns.RR{
		rr("svc.example. 30 IN A 10.0.0.1"), rr("svc.example. 30 IN A 10.0.0.2"), rr("svc.example. 30 IN A 10.0.0.3"), rr("svc.example. 30 IN A 10.0.0.4")}, nil)
	m.SetEdns0(1232, false)
	m.Compress = true
	packed, _ := m.Pack()
	q := new(dns.Msg)
	q.SetQuestion("svc.example.", dns.TypeA)
	w := &nullWriter{addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}}

	b.Run("raw", func(b *testing.B) {
		lb := (&lbConfig{shuffle: randomShuffle, roundRobin: true}).handler()
		lb.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			w.Write(packed)
			return 0, nil
		})
		b.ReportAllocs()
		for b.Loop() {
			lb.ServeDNS(context.Background(), w, q)
		}
	})
	b.Run("msg", func(b *testing.B) {
		lb := (&lbConfig{shuffle: randomShuffle, roundRobin: true}).handler()
		lb.Next = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			w.WriteMsg(m)
			return 0, nil
		})
		b.ReportAllocs()
		for b.Loop() {
			lb.ServeDNS(context.Background(), w, q)
		}
	})
}
