package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// seen records what the probed server received.
type seen struct {
	mu       sync.Mutex
	host     string
	ua       string
	accept   string
	custom   string
	query    string
	close    bool
	requests int
}

func TestHTTPGet(t *testing.T) {
	t.Parallel()
	var s seen
	big := strings.Repeat("x", 1<<20)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.host, s.ua, s.accept, s.custom, s.query, s.close = r.Host, r.UserAgent(), r.Header.Get("Accept"), r.Header.Get("X-Custom"), r.URL.RawQuery, r.Close
		s.requests++
		s.mu.Unlock()
		_, _ = fmt.Fprint(w, "ok")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, "body of %d", code)
	})
	mux.HandleFunc("/big/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
		_, _ = fmt.Fprint(w, big)
	})
	mux.HandleFunc("/redirect-same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/final", http.StatusFound)
	})
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) { _, _ = fmt.Fprint(w, "final") })
	var otherHost string
	mux.HandleFunc("/redirect-other", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", otherHost)
		w.WriteHeader(http.StatusMovedPermanently)
		_, _ = fmt.Fprint(w, "moved")
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	host, port := startHTTP(t, mux, false)
	// A redirect target on another loopback host name; the probe must not
	// follow it, so nothing needs to listen there.
	otherHost = fmt.Sprintf("http://127.0.0.2:%d/elsewhere", port)
	refused := closedPort(t)

	named := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	num := intstr.FromInt32(int32(port))

	cases := []struct {
		name      string
		probe     func(p *corev1.Probe)
		container *corev1.Container
		ip        string
		want      Result
		msg       string // exact message, or
		msgRE     string // a pattern for it
		check     func(t *testing.T)
	}{
		{name: "200 is success (200 <= code < 400): the body is the output", want: Success, msg: "ok"},
		{name: "204 is success", probe: path("/status/204"), want: Success, msg: ""},
		{name: "404 is failure (any other code indicates failure): HTTP probe failed with statuscode: 404",
			probe: path("/status/404"), want: Failure, msg: "HTTP probe failed with statuscode: 404"},
		{name: "503 is failure and the message never contains the body (issue.k8s.io/99425)",
			probe: path("/status/503"), want: Failure, msg: "HTTP probe failed with statuscode: 503"},
		{name: "3xx that is not followed is success with a warning: Probe terminated redirects",
			probe: path("/status/300"), want: Success, msg: "Probe terminated redirects, Response body: body of 300"},
		{name: "redirect to the same host is followed",
			probe: path("/redirect-same"), want: Success, msg: "final"},
		{name: "redirect to another host is not followed: success with a warning",
			probe: path("/redirect-other"), want: Success, msg: "Probe terminated redirects, Response body: moved"},
		{name: "same-host redirects stop after 10",
			probe: path("/loop"), want: Failure, msg: `Get "/loop": stopped after 10 redirects`},
		{name: "the body is read up to 10KiB",
			probe: path("/big/200"), want: Success, msg: strings.Repeat("x", 10<<10)},
		{name: "a failure with a large body still says only the status code",
			probe: path("/big/500"), want: Failure, msg: "HTTP probe failed with statuscode: 500"},
		{name: "port by name is looked up in the container's ports",
			probe: func(p *corev1.Probe) { p.HTTPGet.Port = intstr.FromString("http") }, container: named, want: Success, msg: "ok"},
		{name: "a port name that is not a container port is tried as a number",
			probe: func(p *corev1.Probe) { p.HTTPGet.Port = intstr.FromString(strconv.Itoa(port)) }, want: Success, msg: "ok"},
		{name: "an unknown port name is an error",
			probe: func(p *corev1.Probe) { p.HTTPGet.Port = intstr.FromString("nope") }, container: named,
			want: Failure, msg: `strconv.Atoi: parsing "nope": invalid syntax`},
		{name: "port 0 is invalid",
			probe: func(p *corev1.Probe) { p.HTTPGet.Port = intstr.FromInt32(0) }, want: Failure, msg: "invalid port number: 0"},
		{name: "httpGet.host overrides the pod IP",
			probe: func(p *corev1.Probe) { p.HTTPGet.Host = host }, ip: "127.0.0.1.invalid", want: Success, msg: "ok"},
		{name: "connection refused is a failure with the client's error",
			probe: func(p *corev1.Probe) { p.HTTPGet.Port = intstr.FromInt32(int32(refused)) }, want: Failure,
			msg: fmt.Sprintf(`Get "http://%s:%d/": dial tcp %s:%d: connect: connection refused`, host, refused, host, refused)},
		{name: "User-Agent is kube-probe/<major>.<minor> and Accept is */*, keep-alives are off", want: Success, msg: "ok",
			check: func(t *testing.T) {
				s.mu.Lock()
				defer s.mu.Unlock()
				if !regexp.MustCompile(`^kube-probe/1\.[0-9]+$`).MatchString(s.ua) {
					t.Errorf("User-Agent %q, want kube-probe/1.xx", s.ua)
				}
				if s.accept != "*/*" {
					t.Errorf("Accept %q, want */*", s.accept)
				}
				if !s.close {
					t.Errorf("request did not ask to close the connection (DisableKeepAlives)")
				}
			}},
		{name: "httpHeaders are sent and a Host header overrides the request's host",
			probe: func(p *corev1.Probe) {
				p.HTTPGet.Path = "/?from=probe"
				p.HTTPGet.HTTPHeaders = []corev1.HTTPHeader{{Name: "Host", Value: "shop.example"}, {Name: "X-Custom", Value: "yes"}, {Name: "User-Agent", Value: "mine"}, {Name: "Accept", Value: ""}}
			}, want: Success, msg: "ok",
			check: func(t *testing.T) {
				s.mu.Lock()
				defer s.mu.Unlock()
				if s.host != "shop.example" || s.custom != "yes" || s.ua != "mine" || s.accept != "" || s.query != "from=probe" {
					t.Errorf("server saw host=%q X-Custom=%q UA=%q Accept=%q query=%q", s.host, s.custom, s.ua, s.accept, s.query)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := httpGetProbe("/", num)
			if tc.probe != nil {
				tc.probe(p)
			}
			ip := host
			if tc.ip != "" {
				ip = tc.ip
			}
			c := tc.container
			if c == nil {
				c = &corev1.Container{Name: "web"}
			}
			got, msg := Run(context.Background(), p, Target{Pod: testPod(), Container: c, IP: ip})
			if got != tc.want || msg != tc.msg {
				t.Errorf("Run = %v %.200q, want %v %.200q", got, msg, tc.want, tc.msg)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// path sets httpGet.path.
func path(p string) func(*corev1.Probe) {
	return func(pr *corev1.Probe) { pr.HTTPGet.Path = p }
}

func TestHTTPGetHTTPSSelfSigned(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	host, port := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if r.TLS == nil {
			t.Error("request was not over TLS")
		}
		_, _ = fmt.Fprint(w, "secure")
	}), true)
	p := httpGetProbe("/", intstr.FromInt32(int32(port)))
	// "If scheme field is set to HTTPS, the kubelet sends an HTTPS request
	// skipping the certificate verification."
	p.HTTPGet.Scheme = corev1.URISchemeHTTPS
	got, msg := Run(context.Background(), p, Target{IP: host})
	if got != Success || msg != "secure" || n.Load() != 1 {
		t.Fatalf("Run = %v %q after %d requests, want Success \"secure\" after 1", got, msg, n.Load())
	}
}

func TestHTTPGetTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	host, port := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}), false)
	t.Cleanup(func() { close(release) }) // runs before the server closes
	p := httpGetProbe("/slow", intstr.FromInt32(int32(port)))
	got, msg := Run(context.Background(), p, Target{IP: host})
	want := fmt.Sprintf(`Get "http://%s:%d/slow": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, host, port)
	if got != Failure || msg != want {
		t.Fatalf("Run = %v %q, want Failure %q (timeoutSeconds: 1)", got, msg, want)
	}
}

func TestHTTPGetKeepAlivesDisabled(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = fmt.Fprint(w, "ok") })
	host, port := startHTTPConnCount(t, srv, &conns)
	p := httpGetProbe("/", intstr.FromInt32(int32(port)))
	for i := 0; i < 3; i++ {
		if got, msg := Run(context.Background(), p, Target{IP: host}); got != Success {
			t.Fatalf("attempt %d: %v %q", i, got, msg)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("3 probes used %d connections; with keep-alives disabled each opens its own", n)
	}
}

// TestHTTPCacheFreshConnections: a worker builds its httpGet request once
// and keeps it while the pod IP and container are the same, yet every
// attempt still opens a connection of its own ("Connection: close", as
// kubelet's transport with keep-alives disabled).
func TestHTTPCacheFreshConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	var s seen
	srv := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.close, s.ua = r.Close, r.UserAgent()
		s.mu.Unlock()
		_, _ = fmt.Fprint(w, "ok")
	})
	host, port := startHTTPConnCount(t, srv, &conns)
	p := httpGetProbe("/", intstr.FromString("http"))
	ctr := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	var hc httpCache
	first, err := hc.request(p.HTTPGet, ctr, host)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		o, out, err := attempt(context.Background(), p, Target{Container: ctr, IP: host}, &hc)
		if o != outcomeSuccess || out != "ok" || err != nil {
			t.Fatalf("attempt %d: %v %q %v", i, o, out, err)
		}
	}
	if again, _ := hc.request(p.HTTPGet, ctr, host); again != first {
		t.Errorf("the request was built again for the same IP and container")
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("3 attempts used %d connections, want one each", n)
	}
	s.mu.Lock()
	if !s.close || !strings.HasPrefix(s.ua, "kube-probe/") {
		t.Errorf("server saw Close=%v User-Agent=%q", s.close, s.ua)
	}
	s.mu.Unlock()
	// A new pod IP (or another container) builds a new request.
	if other, _ := hc.request(p.HTTPGet, ctr, "127.0.0.2"); other == first || other.req.URL.Host != net.JoinHostPort("127.0.0.2", strconv.Itoa(port)) {
		t.Errorf("request for a new IP: %v", other.req.URL)
	}
	if other, _ := hc.request(p.HTTPGet, ctr.DeepCopy(), "127.0.0.2"); other == first {
		t.Errorf("request kept for another container")
	}
}
