package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilio "k8s.io/utils/io"
)

// kubeletHTTPProbe is the httpGet probe as kubelet does it (and as this
// package did before probeTransport): net/http's Client with Timeout
// over kubelet's probe Transport. The equivalence test holds the probe to
// its outcomes and messages.
func kubeletHTTPProbe(req *http.Request, timeout time.Duration) (outcome, string, error) {
	client := &http.Client{Timeout: timeout, Transport: httpTransport(), CheckRedirect: redirectChecker}
	res, err := client.Do(req)
	if err != nil {
		return outcomeFailure, err.Error(), nil
	}
	defer func() { _ = res.Body.Close() }()
	b, err := utilio.ReadAtMost(res.Body, maxReadLength)
	if err != nil && !errors.Is(err, utilio.ErrLimitReached) {
		return outcomeFailure, "", err
	}
	body := string(b)
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			return outcomeWarning, fmt.Sprintf("Probe terminated redirects, Response body: %v", body), nil
		}
		return outcomeSuccess, body, nil
	}
	return outcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// rawServer answers every connection with f on 127.0.0.1:0.
func rawServer(t *testing.T, f func(c net.Conn)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = l.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				f(c)
			}()
		}
	}()
	_, port := splitHostPort(t, l.Addr().String())
	return port
}

// readHead reads a request head.
func readHead(c net.Conn) string {
	var b []byte
	buf := make([]byte, 1024)
	for !strings.Contains(string(b), "\r\n\r\n") {
		n, err := c.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(b)
}

func answer(resp string) func(net.Conn) {
	return func(c net.Conn) {
		readHead(c)
		_, _ = c.Write([]byte(resp))
	}
}

func TestHTTPProbeMatchesKubelets(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		serve func(c net.Conn)
		probe func(p *corev1.HTTPGetAction)
		port  func(t *testing.T) int // instead of serve
		ip    string                 // the pod IP, default 127.0.0.1
	}{
		{name: "closed before any response", serve: func(c net.Conn) { readHead(c) }},
		{name: "not HTTP", serve: answer("SSH-2.0-OpenSSH_9.6\r\n")},
		{name: "cut off in the headers", serve: answer("HTTP/1.1 200 OK\r\nContent-Le")},
		{name: "cut off in the body", serve: answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")},
		{name: "body until close", serve: answer("HTTP/1.1 200 OK\r\n\r\nuntil close")},
		{name: "chunked body", serve: answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")},
		{name: "broken chunked body", serve: answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")},
		{name: "100 Continue then 200", serve: answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")},
		{name: "103 Early Hints then 503", serve: answer("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n")},
		{name: "101 Switching Protocols", serve: answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n")},
		{name: "HTTP/1.0 204", serve: answer("HTTP/1.0 204 No Content\r\n\r\n")},
		{name: "302 without Location", serve: answer("HTTP/1.1 302 Found\r\nContent-Length: 4\r\n\r\nnone")},
		{name: "302 to an unparsable Location", serve: answer("HTTP/1.1 302 Found\r\nLocation: http://[::1\r\nContent-Length: 0\r\n\r\n")},
		{name: "302 to another scheme", serve: answer("HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n")},
		{name: "307 to a closed port on the same host", serve: answer("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/x\r\nContent-Length: 0\r\n\r\n")},
		{name: "an invalid header value goes to the Transport", serve: answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			probe: func(g *corev1.HTTPGetAction) { g.HTTPHeaders = []corev1.HTTPHeader{{Name: "X-Bad", Value: "a\nb"}} }},
		{name: "a user in the URL", serve: answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			probe: func(g *corev1.HTTPGetAction) { g.Path = "//user:secret@ignored/x" }},
		{name: "no answer: the timeout", serve: func(c net.Conn) { readHead(c); time.Sleep(2 * time.Second) }},
		{name: "the connection is never accepted: the timeout", port: func(t *testing.T) int { return fullBacklogPort(t) }},
		{name: "connection refused", port: func(t *testing.T) int { return closedPort(t) }},
		{name: "a host name (dialled by probeDialer)", serve: answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
			probe: func(g *corev1.HTTPGetAction) { g.Host = "localhost" }},
		{name: "a host name, refused", port: func(t *testing.T) int { return closedPort(t) },
			probe: func(g *corev1.HTTPGetAction) { g.Host = "localhost" }},
		{name: "headers but a body that never ends: the timeout", serve: func(c net.Conn) {
			readHead(c)
			_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"))
			time.Sleep(2 * time.Second)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var port int
			if tc.port != nil {
				port = tc.port(t)
			} else {
				port = rawServer(t, tc.serve)
			}
			ip := tc.ip
			if ip == "" {
				ip = "127.0.0.1"
			}
			g := &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(int32(port))}
			if tc.probe != nil {
				tc.probe(g)
			}
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: g}, TimeoutSeconds: 1}

			wantReq, err := newHTTPRequest(context.Background(), g, nil, ip)
			if err != nil {
				t.Fatal(err)
			}
			wo, wout, werr := kubeletHTTPProbe(wantReq, time.Second)
			o, out, gerr := attempt(context.Background(), p, Target{IP: ip}, nil)
			if o != wo || out != wout || fmt.Sprint(gerr) != fmt.Sprint(werr) {
				t.Errorf("probe:   %v %q %v\nkubelet: %v %q %v", o, out, gerr, wo, wout, werr)
			}
		})
	}
}

// TestHTTPProbeIPv6 probes a pod IP that is an IPv6 address (a direct
// socket of family AF_INET6), where the machine has ::1.
func TestHTTPProbeIPv6(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = fmt.Fprint(w, "six") })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	_, port := splitHostPort(t, l.Addr().String())
	p := httpGetProbe("/", intstr.FromInt32(int32(port)))
	if got, msg := Run(context.Background(), p, Target{IP: "::1"}); got != Success || msg != "six" {
		t.Fatalf("Run = %v %q, want Success \"six\"", got, msg)
	}
	l2, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	_, refused := splitHostPort(t, l2.Addr().String())
	_ = l2.Close() // nothing listens there now
	p = httpGetProbe("/", intstr.FromInt32(int32(refused)))
	want := fmt.Sprintf(`Get "http://[::1]:%d/": dial tcp [::1]:%d: connect: connection refused`, refused, refused)
	if got, msg := Run(context.Background(), p, Target{IP: "::1"}); got != Failure || msg != want {
		t.Fatalf("Run = %v %q, want Failure %q", got, msg, want)
	}
}
