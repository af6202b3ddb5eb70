package ingress

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/ingress/routing"
)

// FuzzParseRequestHead: the fast path's request parser never panics, and
// never takes a head net/http would refuse or read differently: a head
// it completes is one http.ReadRequest reads with the same method,
// target, Host and length, and one the guard's limits pass. (Seed corpus
// in testdata/fuzz/FuzzParseRequestHead.)
func FuzzParseRequestHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))
	f.Add([]byte("HEAD /a/../b?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\nTE: trailers\r\n\r\nGET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r fastReq
		n, st := parseRequestHead(b, &r, 100, 32<<10)
		if st != headComplete {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("length %d of %d", n, len(b))
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
		if err != nil {
			t.Fatalf("taken by the fast path, refused by net/http: %v: %q", err, b[:n])
		}
		wantMethod := http.MethodGet
		if r.head {
			wantMethod = http.MethodHead
		}
		if req.Method != wantMethod || req.RequestURI != string(r.target.of(b)) || req.Host != string(r.host.of(b)) {
			t.Fatalf("read differently: %s %s %s vs %v %q %q", req.Method, req.RequestURI, req.Host, r.head, r.target.of(b), r.host.of(b))
		}
		if req.ContentLength > 0 || len(req.TransferEncoding) > 0 || req.Header.Get("Upgrade") != "" || req.Header.Get("Expect") != "" {
			t.Fatalf("a request with a body or an upgrade taken: %q", b[:n])
		}
		if r.close != req.Close {
			t.Fatalf("Connection: close read as %v, net/http %v", r.close, req.Close)
		}
		if esc := req.URL.EscapedPath(); esc != string(r.path.of(b)) {
			t.Fatalf("path %q, net/http's escaped path %q", r.path.of(b), esc)
		}
		if r.plainPath {
			if p, err := routing.NormalizePath(string(r.path.of(b))); err != nil || p != string(r.path.of(b)) {
				t.Fatalf("plain path %q normalises to %q, %v", r.path.of(b), p, err)
			}
		}
		if r.hasQuery != (req.URL.RawQuery != "" || req.URL.ForceQuery) || req.URL.RawQuery != string(r.query.of(b)) {
			t.Fatalf("query %q, net/http's %q", r.query.of(b), req.URL.RawQuery)
		}
		for _, l := range r.keep {
			name, _, _ := strings.Cut(string(l.of(b)), ":")
			for _, d := range append([]string{"host", "connection", "te", "x-request-id"}, dropRequest...) {
				if strings.EqualFold(name, d) {
					t.Fatalf("field %q passed on", name)
				}
			}
		}
	})
}

// FuzzParseResponseHead: the response parser never panics and reads the
// status and length as net/http does for heads both accept.
func FuzzParseResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, X-A\r\n\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 304 Not Modified\r\nDate: x\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r fastResp
		n, st, err := parseResponseHead(b, &r)
		if st != headComplete || err != nil {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("length %d of %d", n, len(b))
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b[:n])), &http.Request{Method: http.MethodGet})
		if err != nil {
			return // net/http is stricter on some heads; the fast path answers them 502 or passes them: both safe
		}
		if resp.StatusCode != r.code {
			t.Fatalf("status %d, net/http %d", r.code, resp.StatusCode)
		}
		bodyAllowed := r.code >= 200 && r.code != 204 && r.code != 304
		if bodyAllowed && r.chunked != (len(resp.TransferEncoding) > 0) {
			t.Fatalf("chunked %v, net/http %v", r.chunked, resp.TransferEncoding)
		}
		if bodyAllowed && !r.chunked && r.length >= 0 && resp.ContentLength != r.length {
			t.Fatalf("length %d, net/http %d", r.length, resp.ContentLength)
		}
	})
}
