package userspace

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// benchTargets starts one echo backend and a proxier with one service in
// front of it, and returns both addresses: "direct" is the backend,
// "userspace" the service.
func benchTargets(b *testing.B) map[string]netip.AddrPort {
	sb := newSandbox(b)
	port := sb.freePort()
	backend := netip.AddrPortFrom(sb.ip(10), uint16(port))
	serveTCP(b, "a", backend)
	p, _ := newProxier(b)
	w := newWorld()
	w.set(clusterIPService("bench", corev1.ProtocolTCP, sb.ip(1), port), endpoint(backend))
	w.sync(b, p)
	return map[string]netip.AddrPort{"direct": backend, "userspace": netip.AddrPortFrom(sb.ip(1), uint16(port))}
}

// connectEcho runs b.N short connections to addr: connect, read the
// greeting, send a line and read it back, close; it reports p50/p99.
func connectEcho(b *testing.B, addr netip.AddrPort) {
	lat := make([]time.Duration, 0, b.N)
	for b.Loop() {
		start := time.Now()
		c, err := dialFrom(netip.Addr{}, addr)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(c)
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		if _, err := io.WriteString(c, "ping\n"); err != nil {
			b.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		c.Close()
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// BenchmarkConnectEcho measures one short connection: connect, read the
// greeting, send a line and read it back, close; p50/p99 are reported.
func BenchmarkConnectEcho(b *testing.B) {
	targets := benchTargets(b)
	for _, name := range []string{"direct", "userspace"} {
		addr := targets[name]
		b.Run(name, func(b *testing.B) {
			connectEcho(b, addr)
		})
	}
}

// BenchmarkThroughput streams through one connection to the echo
// backend and back (each byte crosses the proxy twice).
func BenchmarkThroughput(b *testing.B) {
	targets := benchTargets(b)
	const chunk = 256 << 10
	for _, name := range []string{"direct", "userspace"} {
		addr := targets[name]
		b.Run(name, func(b *testing.B) {
			c, err := dialFrom(netip.Addr{}, addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			if _, err := r.ReadString('\n'); err != nil {
				b.Fatal(err)
			}
			out := make([]byte, chunk)
			in := make([]byte, chunk)
			b.SetBytes(chunk)
			b.ResetTimer()
			errc := make(chan error, 1)
			go func() {
				for i := 0; i < b.N; i++ {
					if _, err := c.Write(out); err != nil {
						errc <- err
						return
					}
				}
				errc <- nil
			}()
			for i := 0; i < b.N; i++ {
				if _, err := io.ReadFull(r, in); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// scaleWorld is n TCP services, each on its own loopback address of a
// random 127.A.0.0/16 block, with 10 endpoints each (not listening: a
// sync never connects).
func scaleWorld(b *testing.B, n int) (*world, func(i int) netip.Addr, int32) {
	sb := newSandbox(b)
	port := sb.freePort()
	ipOf := func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{127, sb.base[1], byte(i / 250), byte(i%250 + 1)})
	}
	w := newWorld()
	for i := range n {
		eps := make([]*serviceproxy.Endpoint, 10)
		for e := range eps {
			eps[e] = endpoint(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 244, byte(i / 250), byte(e + 1)}), 8080))
		}
		w.set(clusterIPService(fmt.Sprintf("s%05d", i), corev1.ProtocolTCP, ipOf(i), port), eps...)
	}
	return w, ipOf, port
}

// BenchmarkSync measures a full sync (every listener opened) of 100,
// 1,000 and 10,000 services × 10 endpoints.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			w, _, _ := scaleWorld(b, n)
			for b.Loop() {
				b.StopTimer()
				p, err := New(Config{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				st := *w.st
				st.Full = true
				b.StartTimer()
				if err := p.Sync(b.Context(), &st); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if got := len(p.Addresses()); got != n {
					b.Fatalf("%d listeners, want %d", got, n)
				}
				p.Cleanup(b.Context())
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSyncOneService measures the sync that adds one service (or
// removes it again) to a proxier holding 100, 1,000 or 10,000.
func BenchmarkSyncOneService(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			w, ipOf, port := scaleWorld(b, n)
			p, _ := newProxier(b, func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) })
			w.sync(b, p)
			extra := clusterIPService("extra", corev1.ProtocolTCP, ipOf(n), port)
			time.Sleep(100 * time.Millisecond) // let the accept loops start
			i := 0
			for b.Loop() {
				if i%2 == 0 {
					w.set(extra)
				} else {
					w.remove(extra.Name)
				}
				i++
				w.sync(b, p)
			}
		})
	}
}

// BenchmarkConnectEchoLoaded is BenchmarkConnectEcho through one service
// of a proxier holding 100 or 10,000: per-connection cost must not grow
// with the number of services (one listener each, no lookup).
func BenchmarkConnectEchoLoaded(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			w, ipOf, port := scaleWorld(b, n)
			backend := netip.AddrPortFrom(ipOf(n+1), uint16(port))
			serveTCP(b, "a", backend)
			target := clusterIPService("s00042", corev1.ProtocolTCP, ipOf(42), port)
			w.set(target, endpoint(backend))
			p, _ := newProxier(b, func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) })
			w.sync(b, p)
			addr := netip.AddrPortFrom(ipOf(42), uint16(port))
			connectEcho(b, addr)
		})
	}
}
