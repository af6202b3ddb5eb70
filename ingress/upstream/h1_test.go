package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawBackend serves each connection with handle (a hand-written HTTP/1.1
// server, to make the endpoint misbehave exactly as a case needs) and
// counts connections.
func rawBackend(t *testing.T, handle func(c net.Conn, br *bufio.Reader)) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = &atomic.Int32{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				handle(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String(), conns
}

func readReq(br *bufio.Reader) (*http.Request, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, r.Body)
	return r, nil
}

func get(t *testing.T, tr *Transport, p *Pool, ctx context.Context, method string) (string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(WithPool(ctx, p), method, "http://upstream/x", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestDirectPathStaleConnection: an endpoint that closes a kept-alive
// connection between two requests. As net/http's Transport: a request
// that can be replayed (no body) is sent again on a new connection; the
// endpoint is not ejected (it did not refuse a connection).
func TestDirectPathStaleConnection(t *testing.T) {
	// Answers one request per connection, announcing keep-alive, then
	// closes: the second request on the connection meets EOF.
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := readReq(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(20 * time.Millisecond)
	})
	tr := NewTransport(Options{})
	t.Cleanup(tr.CloseIdleConnections)
	p := NewPool("ns/flaky:80")
	p.SetEndpoints([]string{addr})
	for i := 0; i < 3; i++ {
		got, err := get(t, tr, p, context.Background(), "GET")
		if err != nil || got != "ok" {
			t.Fatalf("request %d: %q, %v", i, got, err)
		}
		time.Sleep(50 * time.Millisecond) // the endpoint has closed it by now
	}
	if n := conns.Load(); n < 3 {
		t.Errorf("%d connections for 3 requests to an endpoint closing each: a closed one was used", n)
	}
	if p.Ejected(addr) {
		t.Error("endpoint ejected for closing an idle connection")
	}
}

// TestDirectPathClientGone: a client that leaves during a long response
// body makes the proxy close the endpoint connection at once (not read
// the rest of the body), and the connection is not reused.
func TestDirectPathClientGone(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	addr, conns := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readReq(br)
			if err != nil {
				return
			}
			if r.URL.Path == "/x" && r.Method == "POST" {
				// a long body: the head and some bytes, then nothing
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nfirst")
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	tr := NewTransport(Options{})
	t.Cleanup(tr.CloseIdleConnections)
	p := NewPool("ns/long:80")
	p.SetEndpoints([]string{addr})

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(WithPool(ctx, p), "POST", "http://upstream/x", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first bytes %q, %v", buf, err)
	}
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, resp.Body); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("reading the body after the client left: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the body read did not end when the request was cancelled")
	}
	closed := make(chan struct{})
	go func() { resp.Body.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("closing an unfinished body drained it")
	}
	if got, err := get(t, tr, p, context.Background(), "GET"); err != nil || got != "ok" {
		t.Fatalf("next request: %q, %v", got, err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the aborted one is not reused)", n)
	}
}

// TestDirectPathKeepAliveRules: "Connection: close" in a response, and a
// response without body (204, HEAD), decide whether the connection goes
// back to the idle list (RFC 9112 section 9.3 and 6.3).
func TestDirectPathKeepAliveRules(t *testing.T) {
	cases := []struct {
		name      string
		method    string
		answer    string
		wantConns int32 // for 3 requests
	}{
		{"Content-Length body is kept alive", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1},
		{"chunked body is kept alive", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 1},
		{"204 has no body and is kept alive", "GET", "HTTP/1.1 204 No Content\r\n\r\n", 1},
		{"HEAD response has no body", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", 1},
		{"Connection: close is honoured", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 3},
		{"HTTP/1.0 without keep-alive closes", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, conns := rawBackend(t, func(conn net.Conn, br *bufio.Reader) {
				for {
					if _, err := readReq(br); err != nil {
						return
					}
					io.WriteString(conn, c.answer)
				}
			})
			tr := NewTransport(Options{})
			t.Cleanup(tr.CloseIdleConnections)
			p := NewPool("ns/ka:80")
			p.SetEndpoints([]string{addr})
			for i := 0; i < 3; i++ {
				if _, err := get(t, tr, p, context.Background(), c.method); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if n := conns.Load(); n != c.wantConns {
				t.Errorf("%d connections for 3 requests, want %d", n, c.wantConns)
			}
		})
	}
}

// TestDirectPathEligibility: requests with a body, upgrades, Expect:
// 100-continue and non-http schemes go through net/http's Transport.
func TestDirectPathEligibility(t *testing.T) {
	cases := []struct {
		scheme string
		header string
		body   string
		want   bool
	}{
		{"http", "", "", true},
		{"http", "", "payload", false},
		{"http", "Upgrade", "", false},
		{"http", "Expect", "", false},
		{"https", "", "", false},
	}
	for _, c := range cases {
		var body io.Reader
		if c.body != "" {
			body = strings.NewReader(c.body)
		}
		req, _ := http.NewRequest("GET", c.scheme+"://upstream/", body)
		if c.header != "" {
			req.Header.Set(c.header, "x")
		}
		if got := h1Eligible(req); got != c.want {
			t.Errorf("%s with %q and body %q: eligible %v, want %v", c.scheme, c.header, c.body, got, c.want)
		}
	}
}

// TestPerRequestReadTimeout: Record.ReadTimeout (proxy-read-timeout)
// bounds the wait for the response head on every path: the direct one
// (no body) and net/http's (a body); it does not cut a response body that
// started in time.
func TestPerRequestReadTimeout(t *testing.T) {
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	addr, _ := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			r, err := readReq(br)
			if err != nil {
				return
			}
			switch r.URL.Path {
			case "/slow-head":
				select {
				case <-slow:
				case <-time.After(5 * time.Second):
				}
				return
			case "/slow-body":
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
				time.Sleep(300 * time.Millisecond)
				io.WriteString(c, "cd")
			}
		}
	})
	tr := NewTransport(Options{})
	t.Cleanup(tr.CloseIdleConnections)
	p := NewPool("ns/slow:80")
	p.SetEndpoints([]string{addr})
	for _, c := range []struct {
		name, method, path, body string
		timeout                  bool
	}{
		{"direct path, slow head", "GET", "/slow-head", "", true},
		{"net/http path, slow head", "POST", "/slow-head", "x", true},
		{"direct path, slow body", "GET", "/slow-body", "", false},
		{"net/http path, slow body", "POST", "/slow-body", "x", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body io.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			}
			rec := &Record{ReadTimeout: 150 * time.Millisecond}
			req, _ := http.NewRequestWithContext(WithRecord(WithPool(context.Background(), p), rec), c.method, "http://upstream"+c.path, body)
			start := time.Now()
			resp, err := tr.RoundTrip(req)
			if c.timeout {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("%v, want a timeout", err)
				}
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("timed out after %v", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "abcd" {
				t.Errorf("body %q, %v: a body that started in time was cut", b, err)
			}
		})
	}
}
