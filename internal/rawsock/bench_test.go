//go:build linux

package rawsock

import (
	"net"
	"testing"
)

// BenchmarkPingPong is one request/response exchange of 64 bytes over
// loopback TCP, the client side through net's Read and Write or through
// raw ones; the echo server is the same in both.
func BenchmarkPingPong(b *testing.B) {
	for _, mode := range []string{"net", "raw"} {
		b.Run(mode, func(b *testing.B) {
			c, s := pair(b)
			go func() {
				buf := make([]byte, 64)
				for {
					n, err := s.Read(buf)
					if err != nil {
						return
					}
					s.Write(buf[:n])
				}
			}()
			var conn net.Conn = c
			if mode == "net" {
				conn = c.TCPConn
			}
			msg, buf := make([]byte, 64), make([]byte, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				conn.Write(msg)
				for got := 0; got < len(msg); {
					n, err := conn.Read(buf[got:])
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
		})
	}
}
