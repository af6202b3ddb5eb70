package guard

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs a net/http server behind the guard on loopback; the handler
// echoes method, path and body length.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %d", r.Method, r.URL.Path, len(b))
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	go srv.Serve(&Listener{Listener: ln, MaxHeaders: 20})
	return ln.Addr().String()
}

// exchange writes raw bytes and reads every response until the server
// closes the connection (each request asks to close after the last).
func exchange(t *testing.T, addr, raw string) []string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var out []string
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return out
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out = append(out, fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b))))
		if resp.Close {
			return out
		}
	}
}

func TestGuard(t *testing.T) {
	addr := serve(t)
	const get = "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	many := "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: 1\r\n", 25) + "\r\n"
	cases := []struct {
		name string
		raw  string
		want []string
	}{
		{"plain request", get, []string{"200 GET /last 0"}},
		{"Content-Length body, then a pipelined request",
			"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" + get,
			[]string{"200 POST /a 5", "200 GET /last 0"}},
		{"chunked body with extensions and trailers, then a pipelined request",
			"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-Trailer: y\r\n\r\n" + get,
			[]string{"200 POST /c 8", "200 GET /last 0"}},
		{"a body that looks like a smuggling head is only a body",
			"POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 61\r\n\r\nGET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n" + get,
			[]string{"200 POST /b 61", "200 GET /last 0"}},
		// RFC 9112 section 6.1: "A server MAY reject a request that
		// contains both Content-Length and Transfer-Encoding ... the
		// server MUST close the connection after responding".
		{"Content-Length and Transfer-Encoding: refused, connection closed",
			"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get,
			[]string{"400 400 Bad Request"}},
		{"Transfer-Encoding first, Content-Length second: refused",
			"POST /s HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n0\r\n\r\n" + get,
			[]string{"400 400 Bad Request"}},
		// When the refused request follows others on the connection,
		// net/http learns of it in its background read and closes the
		// connection without an answer: the requests before it are
		// served, it and everything after it are not.
		{"smuggling attempt after a good request on the same connection",
			"GET /first HTTP/1.1\r\nHost: a\r\n\r\nPOST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get,
			[]string{"200 GET /first 0"}},
		{"too many header fields", many, []string{"400 400 Bad Request"}},
	}
	for _, c := range cases {
		got := exchange(t, addr, c.raw)
		if len(got) == len(c.want)+1 && got[len(got)-1] == "400 400 Bad Request" {
			got = got[:len(c.want)] // the 400 of a refused pipelined request may come or not
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestGuardSplitReads feeds a request one byte at a time.
func TestGuardSplitReads(t *testing.T) {
	addr := serve(t)
	for _, raw := range []string{
		"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
		"POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		for i := 0; i < len(raw); i++ {
			if _, err := c.Write([]byte{raw[i]}); err != nil {
				break
			}
		}
		b, _ := io.ReadAll(c)
		c.Close()
		s := string(b)
		smuggle := strings.Contains(raw, "Content-Length")
		if smuggle != strings.Contains(s, "400 Bad Request") || !smuggle && strings.Count(s, "200 OK") != 2 {
			t.Errorf("byte-wise %q: got %q", raw[:20], s)
		}
	}
}

func FuzzGuard(f *testing.F) {
	f.Add("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
	f.Add("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		c := &Conn{maxHeaders: 10, maxHead: 4096}
		c.feed([]byte(in)) // must not panic or loop
		c2 := &Conn{maxHeaders: 10, maxHead: 4096}
		for i := 0; i < len(in) && c2.st != sRefused; i++ {
			if e := c2.feed([]byte{in[i]}); e != nil {
				c2.st = sRefused
			}
		}
	})
}
