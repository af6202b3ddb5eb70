package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/ingress/routing"
)

func service(ns, name string, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Ports: ports}}
}

func slice(ns, svc, name string, portName string, port int32, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func ep(ip string, ready *bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ready}}
}

func TestEndpoints(t *testing.T) {
	web := service("shop", "web",
		corev1.ServicePort{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "admin", Port: 9000, Protocol: corev1.ProtocolTCP},
		corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})
	slices := []*discoveryv1.EndpointSlice{
		slice("shop", "web", "web-a", "http", 8080, ep("127.0.0.2", nil), ep("127.0.0.3", ptr.To(true)), ep("127.0.0.4", ptr.To(false))),
		slice("shop", "web", "web-b", "http", 8080, ep("127.0.0.5", nil), ep("127.0.0.2", nil)), // duplicate across slices
		slice("shop", "web", "web-admin", "admin", 9090, ep("127.0.0.6", nil)),
		slice("other", "web", "web-other-ns", "http", 8080, ep("127.0.0.7", nil)),
		slice("shop", "api", "api-a", "http", 8080, ep("127.0.0.8", nil)),
	}
	be := func(port int32, name string) routing.Backend {
		return routing.Backend{Namespace: "shop", Service: "web", PortNumber: port, PortName: name}
	}
	cases := []struct {
		name string
		b    routing.Backend
		svc  *corev1.Service
		want []string
		err  string
	}{
		{"service.port.number is the Service's port; endpoints carry the pod's", be(80, ""), web, []string{"127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.5:8080"}, ""},
		{"service.port.name", be(0, "admin"), web, []string{"127.0.0.6:9090"}, ""},
		{"ready: nil is ready, false is not", be(80, ""), web, []string{"127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.5:8080"}, ""},
		{"no such port number", be(81, ""), web, nil, "has no TCP port 81"},
		{"no such port name", be(0, "grpc"), web, nil, `has no TCP port named "grpc"`},
		{"UDP ports are not proxied", be(53, ""), web, nil, "has no TCP port 53"},
		{"missing service", be(80, ""), nil, nil, "service shop/web not found"},
		{"ExternalName", be(80, ""), &corev1.Service{ObjectMeta: web.ObjectMeta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}}, nil, "ExternalName"},
	}
	for _, c := range cases {
		got, err := Endpoints(c.b, c.svc, slices)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || !equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	none, err := Endpoints(routing.Backend{Namespace: "shop", Service: "empty", PortNumber: 80}, service("shop", "empty", corev1.ServicePort{Port: 80}), slices)
	if err != nil || len(none) != 0 {
		t.Errorf("service without ready endpoints: %v, %v", none, err)
	}
}

func equal(a, b []string) bool { return slices.Equal(a, b) }

func TestPoolRoundRobinAndEjection(t *testing.T) {
	p := NewPool("ns/svc:80")
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	p.SetEndpoints([]string{"a", "b", "c"})
	count := map[string]int{}
	for i := 0; i < 30; i++ {
		a, _ := p.Pick(nil)
		count[a]++
	}
	if count["a"] != 10 || count["b"] != 10 || count["c"] != 10 {
		t.Errorf("round-robin spread: %v", count)
	}
	p.Eject("b", 10*time.Second)
	for i := 0; i < 10; i++ {
		if a, _ := p.Pick(nil); a == "b" {
			t.Fatalf("ejected endpoint picked")
		}
	}
	now = now.Add(11 * time.Second)
	seen := false
	for i := 0; i < 3; i++ {
		if a, _ := p.Pick(nil); a == "b" {
			seen = true
		}
	}
	if !seen {
		t.Errorf("endpoint not back after its ejection")
	}
	// All ejected: one is tried anyway.
	for _, a := range []string{"a", "b", "c"} {
		p.Eject(a, time.Minute)
	}
	if a, ok := p.Pick([]string{"a"}); !ok || a == "a" {
		t.Errorf("all ejected: Pick = %q, %v", a, ok)
	}
	if _, ok := p.Pick([]string{"a", "b", "c"}); ok {
		t.Errorf("Pick returned an endpoint already tried")
	}
	// A new endpoint list keeps the ejections of endpoints still listed.
	p.SetEndpoints([]string{"c", "d"})
	if !p.Ejected("c") || p.Ejected("a") {
		t.Errorf("ejections after SetEndpoints: c %v a %v", p.Ejected("c"), p.Ejected("a"))
	}
}

// refusingAddr is a loopback address where nothing listens.
func refusingAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return a
}

func backend(t *testing.T, conns *sync.Map) *httptest.Server {
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(b))
	}))
	if conns != nil {
		s.Config.ConnState = func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Store(c.RemoteAddr().String(), true)
			}
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func TestTransportRetriesConnectFailures(t *testing.T) {
	live := backend(t, nil)
	dead := refusingAddr(t)
	liveAddr := strings.TrimPrefix(live.URL, "http://")
	var ejected []string
	tr := NewTransport(Options{OnEject: func(pool, addr string) { ejected = append(ejected, addr) }, ConnectTimeout: 2 * time.Second})
	t.Cleanup(tr.CloseIdleConnections)

	send := func(p *Pool, method, body string) (string, error) {
		var rb io.Reader
		if body != "" {
			rb = strings.NewReader(body)
		}
		req, _ := http.NewRequestWithContext(WithPool(context.Background(), p), method, "http://upstream/x", rb)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), nil
	}
	cases := []struct {
		method, body string
		retried      bool
	}{
		{"GET", "", true},
		{"PUT", "payload", true}, // idempotent, body unread after a failed connect
		{"DELETE", "", true},
		{"POST", "payload", false}, // not idempotent: the client decides
		{"PATCH", "", false},
	}
	for _, c := range cases {
		p := NewPool("ns/svc:80")
		p.SetEndpoints([]string{dead, liveAddr})
		p.next.Store(0) // the dead endpoint first
		ejected = nil
		got, err := send(p, c.method, c.body)
		if c.retried {
			if err != nil || got != c.method+" /x "+c.body {
				t.Errorf("%s: %q, %v; want the live endpoint's answer", c.method, got, err)
			}
		} else {
			var de *DialError
			if !errors.As(err, &de) {
				t.Errorf("%s: %q, %v; want the connect error", c.method, got, err)
			}
		}
		if !slices.Equal(ejected, []string{dead}) || !p.Ejected(dead) {
			t.Errorf("%s: ejected %v", c.method, ejected)
		}
		// While ejected, the dead endpoint is not tried first again.
		for i := 0; i < 4; i++ {
			if _, err := send(p, "GET", ""); err != nil {
				t.Errorf("%s: request after ejection: %v", c.method, err)
			}
		}
		if len(ejected) != 1 {
			t.Errorf("%s: dead endpoint tried again while ejected: %v", c.method, ejected)
		}
	}

	empty := NewPool("ns/empty:80")
	if _, err := send(empty, "GET", ""); !errors.Is(err, ErrNoEndpoints) {
		t.Errorf("empty pool: %v", err)
	}
	allDead := NewPool("ns/dead:80")
	allDead.SetEndpoints([]string{dead, refusingAddr(t)})
	if _, err := send(allDead, "GET", ""); err == nil {
		t.Errorf("all endpoints dead: no error")
	}
}

func TestTransportReusesConnections(t *testing.T) {
	var conns sync.Map
	a, b := backend(t, &conns), backend(t, &conns)
	tr := NewTransport(Options{})
	t.Cleanup(tr.CloseIdleConnections)
	p := NewPool("ns/svc:80")
	p.SetEndpoints([]string{strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")})
	const n = 50
	for i := 0; i < n; i++ {
		req, _ := http.NewRequestWithContext(WithPool(context.Background(), p), "GET", "http://upstream/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	count := 0
	conns.Range(func(_, _ any) bool { count++; return true })
	if count != 2 {
		t.Errorf("%d sequential requests to 2 endpoints opened %d connections, want 2 (kept alive)", n, count)
	}
}

func TestTransportReadTimeout(t *testing.T) {
	stall := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stall:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(stall) })
	tr := NewTransport(Options{ReadTimeout: 100 * time.Millisecond})
	t.Cleanup(tr.CloseIdleConnections)
	p := NewPool("ns/slow:80")
	p.SetEndpoints([]string{strings.TrimPrefix(slow.URL, "http://")})
	req, _ := http.NewRequestWithContext(WithPool(context.Background(), p), "GET", "http://upstream/", nil)
	_, err := tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("slow backend: %v, want a timeout", err)
	}
	if p.Ejected(p.Endpoints()[0]) {
		t.Errorf("a slow answer is not a connect failure: endpoint ejected")
	}
}
