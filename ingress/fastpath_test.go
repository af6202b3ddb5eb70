package ingress

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// scripted is a raw HTTP/1.1 endpoint answering each request with the
// bytes its path names (so that the tests control framing exactly), and
// recording the request heads it got.
type scripted struct {
	port  int32
	conns atomic.Int32
	// hung receives the path of a "/hang" or "/stream" request when the
	// proxy closes that connection.
	hung  chan string
	mu    sync.Mutex
	heads []*http.Request
}

// scriptedAnswers: path -> raw response; "!close" after the answer
// closes the connection.
var scriptedAnswers = map[string]string{
	"/cl":       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
	"/chunked":  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: done\r\n\r\n",
	"/eof":      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the endpoint closes!close",
	"/close":    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok!close",
	"/silent":   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok!close", // keep-alive announced, closed anyway
	"/304":      "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n",
	"/204":      "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n",
	"/cut":      "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort!close",
	"/cutchunk": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel!close",
	"/badte":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx!close",
	"/badcl":    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!close",
	"/early":    "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"/hop":      "HTTP/1.1 200 OK\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok",
	"/big":      "HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + strings.Repeat("0123456789", 30000),
	"/http10":   "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
}

func startScripted(t *testing.T) *scripted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &scripted{port: int32(ln.Addr().(*net.TCPAddr).Port), hung: make(chan string, 4)}
	var wg sync.WaitGroup
	var open sync.Map
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			open.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer open.Delete(c)
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					s.mu.Lock()
					s.heads = append(s.heads, req)
					s.mu.Unlock()
					if p := req.URL.Path; p == "/hang" || p == "/stream" {
						// No answer (or a first chunk only), until the proxy
						// gives up the connection.
						if p == "/stream" {
							io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
						}
						io.Copy(io.Discard, c)
						s.hung <- p
						return
					}
					ans, ok := scriptedAnswers[req.URL.Path]
					if !ok {
						ans = "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(req.URL.RequestURI())) + "\r\n\r\n" + req.URL.RequestURI()
					}
					body, closeAfter := strings.CutSuffix(ans, "!close")
					if req.Method == http.MethodHead {
						// The endpoint answers HEAD with the head only.
						if i := strings.Index(body, "\r\n\r\n"); i >= 0 {
							body = body[:i+4]
						}
					}
					io.WriteString(c, body)
					if closeAfter {
						return
					}
				}
			}()
		}
	}()
	return s
}

func (s *scripted) last() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.heads) == 0 {
		return nil
	}
	return s.heads[len(s.heads)-1]
}

// fastEnv is a controller with an Ingress "fast.test" routing / to a
// scripted endpoint.
func fastEnv(t *testing.T, tweak func(*Config)) (*env, *scripted) {
	s := newStore(t)
	e := startController(t, s, tweak)
	e.create(classObj("switchboard", true))
	b := startScripted(t)
	e.create(serviceObj("shop", "raw"), sliceObj("shop", "raw", "raw", b.port, "127.0.0.1"))
	e.create(ingressObj("shop", "raw", "fast.test", pathRule("Prefix", "/", "raw", 80)))
	e.settle()
	return e, b
}

// rawClient is one client connection speaking HTTP/1.1 by hand.
type rawClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one response (to a request with the method) and its body.
func (rc *rawClient) read(method string) (*http.Response, string, error) {
	resp, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func get(path string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: fast.test\r\n" + strings.Join(extra, "") + "\r\n"
}

// eof reports whether the server closed the connection (nothing more
// comes).
func (rc *rawClient) eof() bool {
	rc.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := rc.br.ReadByte()
	return err == io.EOF
}

func TestFastPathFraming(t *testing.T) {
	e, b := fastEnv(t, nil)
	cases := []struct {
		name       string
		method     string
		path       string
		code       int
		body       string
		header     map[string]string // "": must be absent
		trailer    map[string]string
		clientOpen bool // a second request on the connection is answered
	}{
		{name: "Content-Length body passed", method: "GET", path: "/cl", code: 200, body: "hello",
			header: map[string]string{"Content-Length": "5", "Content-Type": "text/plain"}, clientOpen: true},
		{name: "chunked body passed with extensions and trailer fields", method: "GET", path: "/chunked", code: 200, body: "hello world",
			trailer: map[string]string{"X-T": "done"}, clientOpen: true},
		// RFC 9112 section 6.3: "Otherwise, ... the message body length
		// is determined by the number of octets received prior to the
		// server closing the connection"; the client gets it chunked and
		// keeps its connection.
		{name: "body delimited by the endpoint's close", method: "GET", path: "/eof", code: 200, body: "until the endpoint closes", clientOpen: true},
		// Connection is hop-by-hop (RFC 9110 section 7.6.1): the
		// endpoint's close does not close the client's connection.
		{name: "endpoint answers Connection: close", method: "GET", path: "/close", code: 200, body: "ok", header: map[string]string{"Connection": ""}, clientOpen: true},
		{name: "endpoint closes a kept-alive connection", method: "GET", path: "/silent", code: 200, body: "ok", clientOpen: true},
		// RFC 9110 section 9.3.2: "The server SHOULD send the same header
		// fields in response to a HEAD request as it would have sent if
		// the request method had been GET"; no body follows.
		{name: "HEAD keeps Content-Length without a body", method: "HEAD", path: "/cl", code: 200, body: "", header: map[string]string{"Content-Length": "5"}, clientOpen: true},
		// RFC 9110 section 15.4.5: "A 304 response is terminated by the
		// end of the header section; it cannot contain content".
		{name: "304 without a body", method: "GET", path: "/304", code: 304, body: "", header: map[string]string{"Etag": `"v1"`}, clientOpen: true},
		{name: "204 without a body", method: "GET", path: "/204", code: 204, body: "", header: map[string]string{"X-A": "1"}, clientOpen: true},
		{name: "hop-by-hop response fields dropped", method: "GET", path: "/hop", code: 200, body: "ok",
			header: map[string]string{"X-Secret": "", "Keep-Alive": "", "Proxy-Connection": "", "Upgrade": "", "X-Kept": "yes"}, clientOpen: true},
		{name: "large body", method: "GET", path: "/big", code: 200, body: strings.Repeat("0123456789", 30000), clientOpen: true},
		{name: "HTTP/1.0 endpoint", method: "GET", path: "/http10", code: 200, body: "ok", clientOpen: true},
		// net/http's Transport refuses these heads; the client gets 502.
		{name: "unsupported transfer coding", method: "GET", path: "/badte", code: 502, body: "502 Bad Gateway: the backend did not answer\n", clientOpen: true},
		{name: "conflicting Content-Length", method: "GET", path: "/badcl", code: 502, body: "502 Bad Gateway: the backend did not answer\n", clientOpen: true},
		{name: "interim response not asked for", method: "GET", path: "/early", code: 502, body: "502 Bad Gateway: the backend did not answer\n", clientOpen: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.c.fastHTTP.served.Load()
			rc := dialRaw(t, e.http)
			rc.send(c.method + " " + c.path + " HTTP/1.1\r\nHost: fast.test\r\n\r\n")
			resp, body, err := rc.read(c.method)
			if err != nil {
				t.Fatalf("response: %v", err)
			}
			if resp.StatusCode != c.code || body != c.body {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, c.code, c.body)
			}
			for k, v := range c.header {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for k, v := range c.trailer {
				if got := resp.Trailer.Get(k); got != v {
					t.Errorf("trailer %s = %q, want %q", k, got, v)
				}
			}
			if resp.Header.Get("Date") == "" {
				t.Errorf("no Date")
			}
			if c.clientOpen {
				rc.send(get("/cl"))
				resp, body, err := rc.read("GET")
				if err != nil || resp.StatusCode != 200 || body != "hello" {
					t.Errorf("second request on the connection: %v %v %q", err, resp, body)
				}
			}
			if e.c.fastHTTP.served.Load() == before {
				t.Errorf("not served by the fast path")
			}
		})
	}
	if n := b.conns.Load(); n >= int32(2*len(cases)) {
		t.Errorf("endpoint connections not reused: %d connections for %d requests", n, 2*len(cases))
	}
}

// TestFastPathCutResponses: a response the endpoint cuts short must not
// look complete to the client: the connection is closed.
func TestFastPathCutResponses(t *testing.T) {
	e, _ := fastEnv(t, nil)
	for _, path := range []string{"/cut", "/cutchunk"} {
		t.Run(path, func(t *testing.T) {
			rc := dialRaw(t, e.http)
			rc.send(get(path))
			resp, _, err := rc.read("GET")
			if err == nil {
				t.Fatalf("a cut body read as complete (%v)", resp)
			}
			if !rc.eof() {
				t.Errorf("connection left open after a cut response")
			}
		})
	}
}

func TestFastPathConnectionSemantics(t *testing.T) {
	e, b := fastEnv(t, nil)

	t.Run("pipelined requests answered in order", func(t *testing.T) {
		rc := dialRaw(t, e.http)
		rc.send(get("/cl") + get("/chunked") + "HEAD /cl HTTP/1.1\r\nHost: fast.test\r\n\r\n" + get("/p?q=1"))
		for _, want := range []struct{ method, body string }{{"GET", "hello"}, {"GET", "hello world"}, {"HEAD", ""}, {"GET", "/p?q=1"}} {
			resp, body, err := rc.read(want.method)
			if err != nil || resp.StatusCode != 200 || body != want.body {
				t.Fatalf("pipelined %s: %v %v %q, want %q", want.method, err, resp, body, want.body)
			}
		}
	})
	t.Run("Connection: close from the client", func(t *testing.T) {
		rc := dialRaw(t, e.http)
		rc.send(get("/cl", "Connection: close\r\n"))
		resp, body, err := rc.read("GET")
		if err != nil || body != "hello" || !resp.Close {
			t.Fatalf("%v %v %q", err, resp, body)
		}
		if !rc.eof() {
			t.Errorf("connection not closed")
		}
	})
	t.Run("HTTP/1.0 goes to net/http and is closed", func(t *testing.T) {
		rc := dialRaw(t, e.http)
		rc.send("GET /cl HTTP/1.0\r\nHost: fast.test\r\n\r\n")
		resp, body, err := rc.read("GET")
		if err != nil || body != "hello" || resp.StatusCode != 200 {
			t.Fatalf("%v %v %q", err, resp, body)
		}
		if !rc.eof() {
			t.Errorf("HTTP/1.0 connection without keep-alive not closed")
		}
	})
	t.Run("a body hands the connection to net/http, which serves the rest", func(t *testing.T) {
		rc := dialRaw(t, e.http)
		rc.send(get("/cl"))
		if resp, body, err := rc.read("GET"); err != nil || body != "hello" {
			t.Fatalf("%v %v %q", err, resp, body)
		}
		rc.send("POST /post HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 3\r\n\r\nabc" + get("/chunked"))
		if resp, body, err := rc.read("POST"); err != nil || body != "/post" {
			t.Fatalf("POST after the fast path: %v %v %q", err, resp, body)
		}
		if resp, body, err := rc.read("GET"); err != nil || body != "hello world" {
			t.Fatalf("GET after the hand-off: %v %v %q", err, resp, body)
		}
	})
	t.Run("request head to the endpoint", func(t *testing.T) {
		rc := dialRaw(t, e.http)
		rc.send(get("/head?a=b&c",
			"Connection: keep-alive\r\nKeep-Alive: 300\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\n",
			"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Host: evil.test\r\nX-Forwarded-Proto: https\r\nForwarded: for=1.2.3.4\r\nX-Real-IP: 1.2.3.4\r\n",
			"X-Request-ID: abc-1\r\nX-Request-ID: second\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nUser-Agent: raw/1\r\nX-Multi: 1\r\nX-Multi: 2\r\n"))
		if resp, _, err := rc.read("GET"); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v", err, resp)
		}
		got := b.last()
		want := map[string]string{
			"Connection": "", "Keep-Alive": "", "Proxy-Connection": "", "Forwarded": "",
			"Te":              "trailers",
			"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "fast.test", "X-Forwarded-Proto": "http",
			"X-Forwarded-Port": e.port(e.http), "X-Real-Ip": "127.0.0.1",
			"X-Request-Id": "abc-1", "Traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"User-Agent": "raw/1", "X-Multi": "1,2",
		}
		for k, v := range want {
			if g := strings.Join(got.Header.Values(k), ","); g != v {
				t.Errorf("endpoint got %s = %q, want %q", k, g, v)
			}
		}
		if got.Host != "fast.test" || got.RequestURI != "/head?a=b&c" {
			t.Errorf("endpoint got Host %q, target %q", got.Host, got.RequestURI)
		}
	})
	t.Run("paths normalised as on the net/http path", func(t *testing.T) {
		for _, c := range []struct{ target, want string }{
			{"/a/../n1", "/n1"},
			{"/a//b/./c/", "/a/b/c/"},
			{"/%61b%20c", "/ab%20c"},
			{"/x!y(z)*", "/x%21y%28z%29%2A"},
			{"/q?x=%zz;y", "/q?x=%zz;y"},
		} {
			rc := dialRaw(t, e.http)
			rc.send(get(c.target))
			resp, body, err := rc.read("GET")
			if err != nil || resp.StatusCode != 200 || body != c.want {
				t.Errorf("%s: %v %v %q, want %q", c.target, err, resp, body, c.want)
			}
		}
		// Refused by the net/http path (400): the fast path hands them over.
		for _, target := range []string{"/a%2Fb", "/../etc", "/a%zz"} {
			rc := dialRaw(t, e.http)
			rc.send(get(target))
			if resp, _, err := rc.read("GET"); err != nil || resp.StatusCode != 400 {
				t.Errorf("%s: %v %v, want 400", target, err, resp)
			}
		}
	})
	t.Run("X-Request-ID created when absent", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 3; i++ {
			rc := dialRaw(t, e.http)
			rc.send(get("/id", "X-Request-ID: bad value\r\n"))
			if _, _, err := rc.read("GET"); err != nil {
				t.Fatal(err)
			}
			id := b.last().Header.Get("X-Request-Id")
			if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
				t.Errorf("request id %q", id)
			}
			seen[id] = true
		}
	})
}

// TestFastPathLimits: heads the fast path does not take are answered by
// net/http as before.
func TestFastPathLimits(t *testing.T) {
	e, _ := fastEnv(t, func(c *Config) {
		c.MaxHeaders = 20
		c.MaxHeaderBytes = 16 << 10
		c.ReadHeaderTimeout = 300 * time.Millisecond
	})
	many := ""
	for i := 0; i < 25; i++ {
		many += fmt.Sprintf("X-H%d: v\r\n", i)
	}
	cases := []struct {
		name string
		req  string
		code int
	}{
		{"too many header fields (guard)", get("/cl", many), 400},
		{"a head over MaxHeaderBytes", get("/cl", "X-Big: "+strings.Repeat("x", 24<<10)+"\r\n"), 431},
		{"a head larger than the fast path's buffer, within MaxHeaderBytes", get("/cl", "X-Big: "+strings.Repeat("x", 10<<10)+"\r\n"), 200},
		{"Content-Length with Transfer-Encoding", "GET /cl HTTP/1.1\r\nHost: fast.test\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"no Host", "GET /cl HTTP/1.1\r\n\r\n", 400},
		{"two Host fields", "GET /cl HTTP/1.1\r\nHost: fast.test\r\nHost: b.test\r\n\r\n", 400},
		{"bad field name", "GET /cl HTTP/1.1\r\nHost: fast.test\r\nBad Name: x\r\n\r\n", 400},
		{"unknown host", "GET /cl HTTP/1.1\r\nHost: nowhere.test\r\n\r\n", 404},
		{"bare LF line ends (net/http accepts them)", "GET /cl HTTP/1.1\nHost: fast.test\n\n", 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rc := dialRaw(t, e.http)
			rc.send(c.req)
			// Only the head: net/http closes the connection after its
			// refusals with the request unread, which may reset it.
			resp, err := http.ReadResponse(rc.br, nil)
			if err != nil || resp.StatusCode != c.code {
				t.Errorf("%v %v, want %d", err, resp, c.code)
			}
		})
	}
	t.Run("slow head cut by ReadHeaderTimeout", func(t *testing.T) {
		rc := dialRaw(t, e.http)
		rc.send("GET /cl HTTP/1.1\r\nHost: fast.test\r\n")
		if !rc.eof() {
			t.Errorf("an incomplete head kept the connection")
		}
	})
}

func TestFastPathTLS(t *testing.T) {
	e, b := fastEnv(t, nil)
	c, err := tls.Dial("tcp", e.https, &tls.Config{InsecureSkipVerify: true, ServerName: "fast.test", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawClient{t: t, c: c, br: bufio.NewReader(c)}
	for i := 0; i < 2; i++ {
		rc.send(get("/chunked"))
		if resp, body, err := rc.read("GET"); err != nil || body != "hello world" {
			t.Fatalf("%v %v %q", err, resp, body)
		}
	}
	if got := b.last().Header.Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto %q", got)
	}
	if e.c.fastHTTPS.served.Load() < 2 {
		t.Errorf("TLS requests not served by the fast path")
	}
	// A host without a rule: 404 from the net/http path after the
	// hand-off, on the same TLS connection.
	rc.send("GET / HTTP/1.1\r\nHost: other.test\r\n\r\n")
	if resp, _, err := rc.read("GET"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("%v %v", err, resp)
	}
}

// TestFastPathClientGone: a client that leaves while its request waits on
// the endpoint (for the head, or in the middle of a streamed body) makes
// the proxy close the endpoint connection within about AliveEvery, as a
// cancelled request does on the net/http path; the request is counted
// with nginx's 499 when no response was started.
func TestFastPathClientGone(t *testing.T) {
	e, b := fastEnv(t, nil)
	for _, path := range []string{"/hang", "/stream"} {
		t.Run(path, func(t *testing.T) {
			rc := dialRaw(t, e.http)
			rc.send(get(path))
			if path == "/stream" {
				resp, err := http.ReadResponse(rc.br, nil)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 5)
				if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first" {
					t.Fatalf("first chunk: %q %v", buf, err)
				}
			} else {
				time.Sleep(100 * time.Millisecond) // the request reaches the endpoint
			}
			rc.c.Close()
			select {
			case got := <-b.hung:
				if got != path {
					t.Errorf("closed %s, want %s", got, path)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the endpoint connection stayed open after the client left")
			}
		})
	}
	resp, err := http.Get("http://" + e.status + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	if want := `ingress_controller_requests{host="fast.test",ingress="raw",method="GET",namespace="shop",path="/",service="raw",status="499"} 1`; !strings.Contains(string(m), want) {
		t.Errorf("metrics lack %s:\n%s", want, grep(string(m), "ingress_controller_requests{"))
	}
}
