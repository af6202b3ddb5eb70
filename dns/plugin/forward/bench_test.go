package forward

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
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

// BenchmarkForward: one query round trip through forward to an upstream
// on 127.0.0.1 (UDP), the upstream's own cost included.
func BenchmarkForward(b *testing.B) {
	up := startUpstream(b, answerA("192.0.2.1"))
	fs, err := parseForward(controller("forward . "+up.Addr, nil))
	if err != nil {
		b.Fatal(err)
	}
	f := fs[0]
	f.OnStartup()
	defer f.OnShutdown()
	w := &nullWriter{addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		q := query("example.org.", dns.TypeA)
		for pb.Next() {
			if _, err := f.ServeDNS(context.Background(), w, q); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
