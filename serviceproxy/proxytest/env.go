package proxytest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// Ports every pod of an Env serves (testnet's servers).
const (
	TCPPort  = 8080 // ServeTCP: greets with the pod's name, then echoes
	HTTPPort = 8081 // ServeHTTP: the pod's name; "/clientip" the source address seen
	UDPPort  = 8053 // ServeUDP: the pod's name
)

// NodeName is the name of every Env's node; endpoints made by
// Env.Endpoint are on it, those made by Env.Remote on RemoteNode.
const (
	NodeName   = "node"
	RemoteNode = "other-node"
)

// AskTimeout bounds one question that must be answered.
const AskTimeout = 3 * time.Second

// DropWait is how long a question that must go unanswered (dropped) waits.
const DropWait = time.Second

// Env is one node for one check: the node namespace with the mode's
// backend, pods serving TCPPort, HTTPPort and UDPPort, an optional client
// namespace standing for the outside, and the State the checks edit.
type Env struct {
	T       *testing.T
	Mode    Mode
	Net     *testnet.Net
	Node    *testnet.Host
	Outside *testnet.Host // nil unless asked for (EnvOptions.Outside)
	// Outsiders are the further client namespaces (EnvOptions.Outsiders)
	// by name, each in its own subnet out of testnet.ClientRange.
	Outsiders map[string]*testnet.Host
	Pods      map[string]*testnet.Host
	Backend   serviceproxy.Backend
	// Metrics is the core's metric set handed to the mode, registered on
	// Registry together with the mode's own.
	Metrics  *serviceproxy.Metrics
	Registry *prometheus.Registry
	// State is the desired state: edit it with Set and Remove (or
	// directly: Sync computes what changed).
	State *serviceproxy.State

	applied   *snapshot // the last State applied successfully (nil: none)
	lastState *serviceproxy.State
	failed    bool
	full      bool
	cleaned   bool
}

// EnvOptions shapes an Env.
type EnvOptions struct {
	// Pods are created in order (10.244.0.2, .3, ...), each serving
	// TCPPort, HTTPPort and UDPPort and answering with its name.
	Pods []string
	// Outside adds the client namespace "outside" (testnet client 0,
	// reaching the node at Node.IP, a node IP).
	Outside bool
	// Outsiders are further client namespaces, created after "outside"
	// (which they imply), each in its own /28 of testnet.ClientRange
	// with a default route via the node.
	Outsiders []string
}

// NewEnv builds a node with the mode's backend. Its clean-up (the
// backend's Cleanup inside the node, then the namespaces) is registered
// on t before anything is created.
func NewEnv(t *testing.T, m Mode, opts EnvOptions) *Env {
	t.Helper()
	logw := &logWriter{t: t}
	t.Cleanup(logw.close) // registered first: runs last
	n := testnet.New(t, testnet.Options{NodeName: NodeName})
	e := &Env{T: t, Mode: m, Net: n, Node: n.Node(), Pods: map[string]*testnet.Host{}}
	for _, name := range opts.Pods {
		h := n.AddPod(t, name)
		h.ServeTCP(t, TCPPort)
		h.ServeHTTP(t, HTTPPort)
		h.ServeUDP(t, UDPPort)
		e.Pods[name] = h
	}
	if opts.Outside || len(opts.Outsiders) > 0 {
		e.Outside = n.AddClient(t, "outside")
	}
	e.Outsiders = map[string]*testnet.Host{}
	for _, name := range opts.Outsiders {
		e.Outsiders[name] = n.AddClient(t, name)
	}
	e.Registry = prometheus.NewRegistry()
	e.Metrics = serviceproxy.NewMetrics(e.Registry, m.Name)
	cfg := serviceproxy.ModeConfig{
		NodeName:     NodeName,
		NodeIPs:      n.NodeIPs(),
		ClusterCIDRs: []netip.Prefix{n.PodCIDR()},
		Logger:       slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug})).With("mode", m.Name),
		Metrics:      e.Metrics,
		Registerer:   e.Registry,
	}
	e.Backend = m.New(t, cfg)
	if e.Backend == nil {
		t.Fatalf("proxytest: mode %s: New returned no backend", m.Name)
	}
	t.Cleanup(func() {
		if e.cleaned {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := e.Node.Do(func() error { return e.Backend.Cleanup(ctx) }); err != nil {
			t.Errorf("proxytest: %s Cleanup in the node namespace: %v", m.Name, err)
		}
	})
	e.State = &serviceproxy.State{
		Node:         serviceproxy.Node{Name: NodeName, IPs: n.NodeIPs()},
		ClusterCIDRs: []netip.Prefix{n.PodCIDR()},
		Services:     map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{},
		Endpoints:    map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{},
	}
	return e
}

// logWriter sends the backend's log to the test log until the test ends
// (goroutines of a backend may still log afterwards).
type logWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func (w *logWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// Name is the ServicePortName of service name (namespace "default",
// unnamed port) with protocol proto.
func Name(name string, proto corev1.Protocol) serviceproxy.ServicePortName {
	return serviceproxy.ServicePortName{NamespacedName: types.NamespacedName{Namespace: "default", Name: name}, Protocol: proto}
}

// Pod returns the pod named name; it fails the test when there is none.
func (e *Env) Pod(name string) *testnet.Host {
	e.T.Helper()
	h := e.Pods[name]
	if h == nil {
		e.T.Fatalf("proxytest: no pod %q in this Env", name)
	}
	return h
}

// Endpoint is a ready, serving endpoint on pod's port, on this node.
func (e *Env) Endpoint(pod string, port int32) *serviceproxy.Endpoint {
	e.T.Helper()
	return &serviceproxy.Endpoint{IP: e.Pod(pod).IP, Port: port, Ready: true, Serving: true, NodeName: NodeName, IsLocal: true}
}

// Remote is Endpoint on another node (the pod stands for one elsewhere:
// it is reachable through the node's bridge, as through a pod network).
func (e *Env) Remote(pod string, port int32) *serviceproxy.Endpoint {
	e.T.Helper()
	ep := e.Endpoint(pod, port)
	ep.NodeName, ep.IsLocal = RemoteNode, false
	return ep
}

// Set adds or replaces a service port with its endpoints. Defaults:
// Protocol TCP (from the name when set there), Type ClusterIP.
func (e *Env) Set(svc *serviceproxy.ServicePort, eps ...*serviceproxy.Endpoint) {
	e.T.Helper()
	if svc.Protocol == "" {
		svc.Protocol = cmp.Or(svc.Name.Protocol, corev1.ProtocolTCP)
	}
	if svc.Name.Protocol == "" {
		svc.Name.Protocol = svc.Protocol
	}
	if svc.Type == "" {
		svc.Type = corev1.ServiceTypeClusterIP
	}
	list := slices.Clone(eps)
	// The contract: "sorted by address and port".
	slices.SortFunc(list, func(a, b *serviceproxy.Endpoint) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port))
	})
	e.State.Services[svc.Name] = svc
	e.State.Endpoints[svc.Name] = list
}

// Remove deletes a service port.
func (e *Env) Remove(name serviceproxy.ServicePortName) {
	delete(e.State.Services, name)
	delete(e.State.Endpoints, name)
}

// snapshot holds values (not pointers) of an applied State, to find what
// changed since.
type snapshot struct {
	services  map[serviceproxy.ServicePortName]serviceproxy.ServicePort
	endpoints map[serviceproxy.ServicePortName][]serviceproxy.Endpoint
	// pointers of the applied State, kept when unchanged ("A
	// *ServicePort or []*Endpoint that did not change is the same
	// pointer (slice) in consecutive States").
	svcPtr map[serviceproxy.ServicePortName]*serviceproxy.ServicePort
	epPtr  map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint
}

func takeSnapshot(st *serviceproxy.State) *snapshot {
	s := &snapshot{
		services:  map[serviceproxy.ServicePortName]serviceproxy.ServicePort{},
		endpoints: map[serviceproxy.ServicePortName][]serviceproxy.Endpoint{},
		svcPtr:    map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{},
		epPtr:     map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{},
	}
	for n, sp := range st.Services {
		s.services[n] = *sp
		s.svcPtr[n] = sp
	}
	for n, list := range st.Endpoints {
		vals := make([]serviceproxy.Endpoint, len(list))
		for i, ep := range list {
			vals[i] = *ep
		}
		s.endpoints[n] = vals
		s.epPtr[n] = list
	}
	return s
}

func endpointValues(list []*serviceproxy.Endpoint) []serviceproxy.Endpoint {
	out := make([]serviceproxy.Endpoint, len(list))
	for i, ep := range list {
		out[i] = *ep
	}
	return out
}

func countServing(list []serviceproxy.Endpoint) int {
	n := 0
	for _, ep := range list {
		if ep.Serving {
			n++
		}
	}
	return n
}

// ForceFull makes the next Sync a full one (as the core's periodic resync).
func (e *Env) ForceFull() { e.full = true }

// NextState builds the State the next Sync hands to the backend, as the
// core does: Full on the first sync and after a failure, else Changed,
// Removed and the stale UDP lists relative to the last applied State.
func (e *Env) NextState() *serviceproxy.State {
	cur := e.State
	st := &serviceproxy.State{
		Node:         cur.Node,
		ClusterCIDRs: cur.ClusterCIDRs,
		Services:     map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{},
		Endpoints:    map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{},
		Changed:      map[serviceproxy.ServicePortName]bool{},
		Full:         e.applied == nil || e.failed || e.full,
	}
	if e.lastState != nil {
		st.Generation = e.lastState.Generation + 1
	}
	old := e.applied
	if old == nil {
		old = takeSnapshot(&serviceproxy.State{})
	}
	names := map[serviceproxy.ServicePortName]bool{}
	for n := range cur.Services {
		names[n] = true
	}
	for n := range cur.Endpoints {
		names[n] = true
	}
	for n := range old.services {
		names[n] = true
	}
	for n := range old.endpoints {
		names[n] = true
	}
	for n := range names {
		sp, eps := cur.Services[n], cur.Endpoints[n]
		oldSP, hadSP := old.services[n]
		oldEps := old.endpoints[n]
		curEps := endpointValues(eps)
		svcSame := sp != nil && hadSP && reflect.DeepEqual(*sp, oldSP)
		epsSame := reflect.DeepEqual(curEps, oldEps) || len(curEps) == 0 && len(oldEps) == 0
		if sp != nil {
			if svcSame {
				sp = old.svcPtr[n]
			}
			st.Services[n] = sp
		}
		if eps != nil || oldEps != nil {
			if epsSame && old.epPtr[n] != nil {
				eps = old.epPtr[n]
			}
			if eps != nil {
				st.Endpoints[n] = eps
			}
		}
		if sp == nil && hadSP {
			st.Removed = append(st.Removed, n)
			if st.RemovedServices == nil {
				st.RemovedServices = map[serviceproxy.ServicePortName]*serviceproxy.ServicePort{}
			}
			st.RemovedServices[n] = old.svcPtr[n]
		}
		if sp != nil && (!svcSame || !epsSame || st.Full) {
			st.Changed[n] = true
		}
		if n.Protocol != corev1.ProtocolUDP {
			continue
		}
		// "Find the UDP endpoints that we were sending traffic to in
		// oldEndpointsMap, but are no longer sending to newEndpointsMap."
		var stale []*serviceproxy.Endpoint
		for _, pe := range oldEps {
			if !pe.Serving {
				continue
			}
			gone := true
			for _, ce := range curEps {
				if ce.IP == pe.IP && ce.Port == pe.Port && ce.Serving {
					gone = false
				}
			}
			if gone {
				v := pe
				stale = append(stale, &v)
			}
		}
		if len(stale) > 0 {
			if st.StaleUDPEndpoints == nil {
				st.StaleUDPEndpoints = map[serviceproxy.ServicePortName][]*serviceproxy.Endpoint{}
			}
			st.StaleUDPEndpoints[n] = stale
		}
		// "Detect services that have gone from 0 to non-0 ready endpoints."
		if sp != nil && countServing(curEps) > 0 && countServing(oldEps) == 0 {
			st.StaleUDPServices = append(st.StaleUDPServices, n)
		}
	}
	slices.SortFunc(st.Removed, compareNames)
	slices.SortFunc(st.StaleUDPServices, compareNames)
	return st
}

func compareNames(a, b serviceproxy.ServicePortName) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
}

// Sync hands the next State to the backend inside the node namespace.
// On success that State becomes the applied one; on failure the next
// Sync is full, as the core's runner retries.
func (e *Env) Sync() error {
	e.T.Helper()
	st := e.NextState()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := e.Node.Do(func() error { return e.Backend.Sync(ctx, st) })
	e.lastState = st
	if err != nil {
		e.failed = true
		return err
	}
	e.applied, e.failed, e.full = takeSnapshot(st), false, false
	return nil
}

// MustSync is Sync failing the test on error.
func (e *Env) MustSync() {
	e.T.Helper()
	if err := e.Sync(); err != nil {
		e.T.Fatalf("proxytest: %s Sync: %v", e.Mode.Name, err)
	}
}

// LastState is the State handed to the backend by the last Sync.
func (e *Env) LastState() *serviceproxy.State { return e.lastState }

// Cleanup runs the backend's Cleanup in the node namespace now (the Env's
// own clean-up then does nothing).
func (e *Env) Cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := e.Node.Do(func() error { return e.Backend.Cleanup(ctx) })
	if err == nil {
		e.cleaned = true
	}
	return err
}

// --- asking ---

// Addr is ip:port.
func Addr(ip string, port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(ip), uint16(port))
}

// AskMany connects n times from h to addr and counts who answered. Every
// connection must be answered.
func (e *Env) AskMany(h *testnet.Host, addr netip.AddrPort, n int) map[string]int {
	e.T.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		name, err := h.AskTCP(addr, AskTimeout)
		if err != nil {
			e.T.Fatalf("%s -> %s, connection %d of %d: %v (answers so far %v)", h.Name, addr, i+1, n, err, got)
		}
		got[name]++
	}
	return got
}

// ClientIP asks the HTTP server behind addr which source address it sees.
func (e *Env) ClientIP(h *testnet.Host, addr netip.AddrPort) (netip.Addr, error) {
	body, err := h.AskHTTP(addr, "/"+testnet.ClientIPRequest, AskTimeout)
	if err != nil {
		return netip.Addr{}, err
	}
	ap, err := netip.ParseAddrPort(body)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("answer %q: %w", body, err)
	}
	return ap.Addr(), nil
}

// IsRefused tells whether err is "connection refused" (an ICMP port
// unreachable or a TCP reset answering the SYN).
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// IsTimeout tells whether err is a timeout (nothing answered).
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ETIMEDOUT) || errors.As(err, &ne) && ne.Timeout()
}

// UDPConn is a connected UDP socket in a namespace, kept across syncs (a
// client that keeps its source port, hence its conntrack entry).
type UDPConn struct {
	c net.Conn
}

// DialUDP opens a connected UDP socket from h to addr, closed when the
// test ends.
func (e *Env) DialUDP(h *testnet.Host, addr netip.AddrPort) *UDPConn {
	e.T.Helper()
	c, err := h.DialUDP(context.Background(), addr)
	if err != nil {
		e.T.Fatalf("%s: dial udp %s: %v", h.Name, addr, err)
	}
	e.T.Cleanup(func() { c.Close() })
	return &UDPConn{c: c}
}

// Ask sends one datagram and returns the answer.
func (u *UDPConn) Ask(timeout time.Duration) (string, error) {
	_ = u.c.SetDeadline(time.Now().Add(timeout))
	if _, err := u.c.Write([]byte("name?")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := u.c.Read(buf)
	return string(buf[:n]), err
}

// LocalAddr is the socket's address.
func (u *UDPConn) LocalAddr() netip.AddrPort {
	ap, _ := netip.ParseAddrPort(u.c.LocalAddr().String())
	return ap
}
