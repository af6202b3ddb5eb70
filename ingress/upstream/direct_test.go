package upstream

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// TestDirectSend: the fast path's exchange picks, ejects and retries as
// RoundTrip does, replays on a connection the endpoint closed while idle,
// times out, and gives up when the client is gone.
func TestDirectSend(t *testing.T) {
	ok := func(c net.Conn, br *bufio.Reader) {
		for {
			if _, err := readReq(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}
	live, _ := rawBackend(t, ok)
	closing, closingConns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") // keep-alive announced, then closed
		}
	})
	silent, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) { io.Copy(io.Discard, c) })
	dead := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := ln.Addr().String()
		ln.Close()
		return a
	}()
	write := func(w *bufio.Writer) { w.WriteString("GET / HTTP/1.1\r\nHost: x\r\n\r\n") }

	cases := []struct {
		name      string
		eps       []string
		requests  int
		readTO    time.Duration
		alive     func() bool
		wantErr   error // nil: "ok" answered
		timeout   bool
		ejected   string
		minConns  int32
		connsOf   *atomic.Int32
		wantAddrs string
	}{
		{name: "kept-alive endpoint", eps: []string{live}, requests: 3},
		// "idempotent requests (RFC 9110 9.2.2) are retried on the next
		// endpoint after a connect failure"; the failed one is ejected.
		{name: "connect failure: ejected, next endpoint", eps: []string{dead, live}, requests: 2, ejected: dead},
		{name: "no endpoints", eps: nil, requests: 1, wantErr: ErrNoEndpoints},
		{name: "idle connection closed by the endpoint: replayed", eps: []string{closing}, requests: 3, minConns: 3, connsOf: closingConns},
		{name: "no answer within the read timeout", eps: []string{silent}, requests: 1, readTO: 300 * time.Millisecond, timeout: true},
		{name: "client gone while the endpoint is silent", eps: []string{silent}, requests: 1, alive: func() bool { return false }, wantErr: ErrClientGone},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ejected []string
			tr := NewTransport(Options{ReadTimeout: c.readTO, OnEject: func(_, a string) { ejected = append(ejected, a) }})
			t.Cleanup(tr.CloseIdleConnections)
			p := NewPool("ns/svc:80")
			p.SetEndpoints(c.eps)
			for i := 0; i < c.requests; i++ {
				rec := &Record{}
				dc, err := tr.DirectSend(p, rec, write, c.alive)
				switch {
				case c.wantErr != nil:
					if !errors.Is(err, c.wantErr) {
						t.Fatalf("error %v, want %v", err, c.wantErr)
					}
					continue
				case c.timeout:
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						t.Fatalf("error %v, want a timeout", err)
					}
					continue
				case err != nil:
					t.Fatalf("request %d: %v", i, err)
				}
				if rec.Addr == "" || rec.Addr == dead {
					t.Errorf("recorded endpoint %q", rec.Addr)
				}
				resp, err := http.ReadResponse(dc.Reader(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
					t.Fatalf("body %q %v", b, err)
				}
				dc.Release(true)
				time.Sleep(20 * time.Millisecond) // a closing endpoint has closed by now
			}
			if c.ejected != "" && (len(ejected) != 1 || ejected[0] != c.ejected || !p.Ejected(c.ejected)) {
				t.Errorf("ejected %v, want %s", ejected, c.ejected)
			}
			if c.ejected == "" && len(ejected) > 0 {
				t.Errorf("ejected %v", ejected)
			}
			if c.connsOf != nil && c.connsOf.Load() < c.minConns {
				t.Errorf("%d connections, want at least %d", c.connsOf.Load(), c.minConns)
			}
		})
	}
}
