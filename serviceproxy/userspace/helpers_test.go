package userspace

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// sandbox is one test's own block of loopback addresses, 127.A.B.0/24
// with random A and B, so parallel tests (of this and other packages)
// never share an address.
type sandbox struct {
	t    testing.TB
	base [3]byte
}

func newSandbox(t testing.TB) *sandbox {
	return &sandbox{t: t, base: [3]byte{127, byte(rand.IntN(250) + 2), byte(rand.IntN(256))}}
}

// ip is 127.A.B.host.
func (s *sandbox) ip(host byte) netip.Addr {
	return netip.AddrFrom4([4]byte{s.base[0], s.base[1], s.base[2], host})
}

// freePort finds a TCP and UDP port free on the sandbox's addresses.
func (s *sandbox) freePort() int32 {
	s.t.Helper()
	for range 100 {
		port := int32(20000 + rand.IntN(30000))
		ok := true
		for _, network := range []string{"tcp", "udp"} {
			addr := netip.AddrPortFrom(s.ip(1), uint16(port)).String()
			if network == "tcp" {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					ok = false
					break
				}
				l.Close()
			} else {
				c, err := net.ListenPacket("udp", addr)
				if err != nil {
					ok = false
					break
				}
				c.Close()
			}
		}
		if ok {
			return port
		}
	}
	s.t.Fatal("no free port")
	return 0
}

// serveTCP runs an echo server on addr that first sends "name\n".
func serveTCP(t testing.TB, name string, addr netip.AddrPort) {
	t.Helper()
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatalf("backend %s: %v", name, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.WriteString(c, name+"\n")
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
}

// serveUDP answers every datagram with "name:" and the datagram.
func serveUDP(t testing.TB, name string, addr netip.AddrPort) (stop func()) {
	t.Helper()
	c, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		t.Fatalf("backend %s: %v", name, err)
	}
	done := make(chan struct{})
	var once sync.Once
	stop = func() { once.Do(func() { c.Close(); <-done }) }
	t.Cleanup(stop)
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			c.WriteTo(append([]byte(name+":"), buf[:n]...), from)
		}
	}()
	return stop
}

// dialFrom connects to addr from the local address src (invalid: any).
func dialFrom(src netip.Addr, addr netip.AddrPort) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// askTCP connects and reads the backend's name.
func askTCP(src netip.Addr, addr netip.AddrPort) (string, error) {
	c, err := dialFrom(src, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// askUDP sends one datagram from a connected socket (which accepts
// replies only from addr itself) and returns the name in the answer.
func askUDP(addr netip.AddrPort, timeout time.Duration) (string, error) {
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	return askUDPOn(c, timeout)
}

func askUDPOn(c net.Conn, timeout time.Duration) (string, error) {
	if _, err := c.Write([]byte("ping")); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 1024)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	name, rest, ok := strings.Cut(string(buf[:n]), ":")
	if !ok || rest != "ping" {
		return "", fmt.Errorf("unexpected answer %q", buf[:n])
	}
	return name, nil
}

func spn(name string, proto corev1.Protocol) serviceproxy.ServicePortName {
	return serviceproxy.ServicePortName{
		NamespacedName: types.NamespacedName{Namespace: "default", Name: name},
		Port:           "p",
		Protocol:       proto,
	}
}

type epOpt func(*serviceproxy.Endpoint)

func notReady(e *serviceproxy.Endpoint) { e.Ready, e.Serving = false, false }
func terminating(e *serviceproxy.Endpoint) {
	e.Ready, e.Serving, e.Terminating = false, true, true
}
func local(e *serviceproxy.Endpoint) { e.IsLocal, e.NodeName = true, "node-a" }

func endpoint(ap netip.AddrPort, opts ...epOpt) *serviceproxy.Endpoint {
	e := &serviceproxy.Endpoint{IP: ap.Addr(), Port: int32(ap.Port()), Ready: true, Serving: true, NodeName: "node-b"}
	for _, o := range opts {
		o(e)
	}
	return e
}

// world is a State under construction.
type world struct {
	st   *serviceproxy.State
	prev map[serviceproxy.ServicePortName]bool
}

func newWorld(nodeIPs ...netip.Addr) *world {
	return &world{st: &serviceproxy.State{
		Node:      serviceproxy.Node{Name: "node-a", IPs: nodeIPs},
		Services:  map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{},
		Endpoints: map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{},
		Changed:   map[serviceproxy.ServicePortName]bool{},
		Full:      true,
	}}
}

func (w *world) set(sp *serviceproxy.ServicePort, eps ...*serviceproxy.Endpoint) {
	w.st.Services[sp.Name] = sp
	w.st.Endpoints[sp.Name] = eps
	w.st.Changed[sp.Name] = true
}

func (w *world) remove(name serviceproxy.ServicePortName) {
	delete(w.st.Services, name)
	delete(w.st.Endpoints, name)
	w.st.Removed = append(w.st.Removed, name)
}

// sync hands the state to p, then starts a new incremental round.
func (w *world) sync(t testing.TB, p *Proxier) {
	t.Helper()
	if err := p.Sync(context.Background(), w.st); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	next := *w.st
	next.Changed = map[serviceproxy.ServicePortName]bool{}
	next.Removed = nil
	next.Full = false
	next.Generation++
	w.st = &next
}

func clusterIPService(name string, proto corev1.Protocol, ip netip.Addr, port int32) *serviceproxy.ServicePort {
	return &serviceproxy.ServicePort{
		Name:       spn(name, proto),
		Type:       corev1.ServiceTypeClusterIP,
		ClusterIPs: []netip.Addr{ip},
		Port:       port,
		Protocol:   proto,
	}
}

// newProxier builds a proxier with its own registry, cleaned up at the end.
func newProxier(t testing.TB, mutate ...func(*Config)) (*Proxier, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{Registerer: reg, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	for _, m := range mutate {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Cleanup(ctx); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return p, reg
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func counterValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			if m.Gauge != nil {
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

// isReset tells whether err is a connection reset (a TCP RST), as
// opposed to a timeout or an unreachable address.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET)
}
