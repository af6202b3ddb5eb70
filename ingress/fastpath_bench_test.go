package ingress

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
)

// cannedEndpoint answers every request on a kept-alive connection with
// the same 64-byte response, allocating nothing per request; it returns
// its port.
func cannedEndpoint(b *testing.B) int32 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 64\r\n\r\n" + string(bytes.Repeat([]byte("x"), 64)))
	var wg sync.WaitGroup
	b.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serveCanned(c, resp)
			}()
		}
	}()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// serveCanned writes resp once per request head (GETs: no bodies) read
// from c until c ends.
func serveCanned(c net.Conn, resp []byte) {
	buf := make([]byte, 16<<10)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if i < 0 {
				break
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
			n = copy(buf, buf[i+4:n])
		}
		if n == len(buf) {
			return
		}
	}
}

// exchange sends one GET on c and reads the response to its end
// (Content-Length framing), allocating nothing.
func exchange(c net.Conn, br *bufio.Reader, req []byte) error {
	if _, err := c.Write(req); err != nil {
		return err
	}
	length := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k := []byte("Content-Length: "); bytes.HasPrefix(line, k) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(line[len(k):])))
		}
	}
	if length < 0 {
		return io.ErrUnexpectedEOF
	}
	_, err := br.Discard(length)
	return err
}

// BenchmarkFastPath is one kept-alive GET through the ingress's fast
// path (parse, route, endpoint connection, response copy, metrics) to an
// endpoint answering 64 bytes; client, proxy and endpoint run in this
// process over loopback TCP. The client and the endpoint allocate
// nothing, so allocs/op is the proxy's per request. "conns=1" is one
// connection at a time (latency), "parallel" keeps 8 per CPU busy; the
// "access-log" runs write the JSON access log line of each request (to
// memory), which the others leave off as bench/ingress does.
func BenchmarkFastPath(b *testing.B) {
	for _, log := range []bool{false, true} {
		name := ""
		if log {
			name = ",access-log"
		}
		s := newStore(b)
		e := startController(b, s, func(c *Config) {
			if !log {
				c.AccessLog = nil
			}
		})
		e.create(classObj("switchboard", true))
		port := cannedEndpoint(b)
		e.create(serviceObj("shop", "canned"), sliceObj("shop", "canned", "canned", port, "127.0.0.1"))
		e.create(ingressObj("shop", "canned", "bench.test", pathRule("Prefix", "/", "canned", 80)))
		e.settle()
		req := []byte("GET /item?id=7 HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
		dial := func(b *testing.B) (net.Conn, *bufio.Reader, error) {
			c, err := net.Dial("tcp", e.http)
			if err != nil {
				return nil, nil, err
			}
			br := bufio.NewReader(c)
			return c, br, exchange(c, br, req) // the connections warm
		}

		b.Run("conns=1"+name, func(b *testing.B) {
			c, br, err := dial(b)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			before := e.c.fastHTTP.served.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := exchange(c, br, req); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if got := e.c.fastHTTP.served.Load() - before; got < int64(b.N) {
				b.Fatalf("the fast path served %d of %d requests", got, b.N)
			}
		})
		b.Run("parallel"+name, func(b *testing.B) {
			b.SetParallelism(8)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c, br, err := dial(b)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				for pb.Next() {
					if err := exchange(c, br, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
