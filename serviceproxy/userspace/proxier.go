package userspace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// ModeName is the name the mode registers under.
const ModeName = "userspace"

// AddressMode says when cluster IPs that are not local are added to the
// loopback interface.
type AddressMode int

const (
	// AddressesAuto adds them when the proxier runs in another network
	// namespace than the process's own (Sync called from a thread that
	// entered a namespace a test or sandbox created), never in the
	// process's own namespace (the host, for a node agent).
	AddressesAuto AddressMode = iota
	// AddressesAlways adds them wherever the proxy runs (a real node).
	AddressesAlways
	// AddressesNever leaves them alone: cluster IPs must be local already
	// (127.0.0.0/8 in the loopback sandbox).
	AddressesNever
)

// Defaults.
const (
	DefaultDialTimeout    = 250 * time.Millisecond // upstream's first endpointDialTimeout
	maxDialTimeout        = 2 * time.Second        // upstream's last
	DefaultUDPIdleTimeout = 30 * time.Second       // nf_conntrack_udp_timeout
)

// Config configures a Proxier. The zero value works.
type Config struct {
	Logger     *slog.Logger          // nil: slog.Default()
	Registerer prometheus.Registerer // nil: metrics are not registered
	// NodeIPs are the addresses NodePorts listen on when the State's
	// Node.IPs is empty. With neither, NodePorts are not served.
	NodeIPs []netip.Addr
	// ClusterCIDRs are the pod ranges when the State gives none: pod
	// clients of an externalTrafficPolicy Local service use every
	// endpoint.
	ClusterCIDRs []netip.Prefix
	// Addresses says when non-local cluster IPs are added to Interface.
	Addresses AddressMode
	// Interface takes added service addresses; default "lo".
	Interface string
	// DialTimeout bounds the first connect to an endpoint; each retry
	// doubles it, up to 2 s. Default 250 ms.
	DialTimeout time.Duration
	// UDPIdleTimeout ends a UDP session without traffic either way.
	// Default 30 s.
	UDPIdleTimeout time.Duration
}

func init() {
	serviceproxy.RegisterMode(ModeName, func(mc serviceproxy.ModeConfig) (serviceproxy.Backend, error) {
		return New(Config{
			Logger:       mc.Logger,
			Registerer:   mc.Registerer,
			NodeIPs:      mc.NodeIPs,
			ClusterCIDRs: mc.ClusterCIDRs,
		})
	})
}

type lkey struct {
	ap    netip.AddrPort
	proto corev1.Protocol
}

func (k lkey) String() string { return fmt.Sprintf("%s/%s", k.ap, k.proto) }

type route struct {
	svc  *service
	kind listenerKind
}

// claim is one service port wanting a listener.
type claim struct {
	svc  *service
	kind listenerKind
}

type listener struct {
	key   lkey
	route atomic.Pointer[route]
	tcp   *net.TCPListener
	udp   *udpListener
	ref   *addrRef // the added address it listens on; nil when not ours
}

// addrRef is a service address this proxier added. An address no longer
// wanted stays while TCP connections accepted on it are open (removing
// it would cut them off) and goes when the last one ends.
type addrRef struct {
	conns    atomic.Int64
	removing atomic.Bool
}

func (l *listener) close() {
	if l.tcp != nil {
		l.tcp.Close()
	}
	if l.udp != nil {
		l.udp.close()
	}
}

// Proxier is the userspace Backend.
type Proxier struct {
	cfg Config
	log *slog.Logger
	m   *metrics

	ns     atomic.Pointer[nsRunner] // where listeners live and dials happen
	ctx    context.Context          // cancelled by Cleanup: aborts dials
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops, connections, UDP sessions

	mu          sync.Mutex // Sync and Cleanup
	nsIno       uint64
	services    map[serviceproxy.ServicePortName]*service
	listeners   map[lkey]*listener
	failing     map[lkey]string         // listeners that failed to open: the reason warned about
	warned      map[string]bool         // one-off warnings
	added       map[netip.Addr]*addrRef // addresses this proxier added
	claims      map[lkey][]claim        // service ports wanting each listener
	svcKeys     map[serviceproxy.ServicePortName][]lkey
	addrUse     map[netip.Addr]int // listeners wanted per address
	synced      bool
	lastNodeIPs []netip.Addr
	lastCIDRs   []netip.Prefix
	addrMode    bool // resolved Addresses for the current namespace
	ifindex     int

	connMu sync.Mutex
	conns  map[*tcpPair]struct{}
}

var _ serviceproxy.Backend = (*Proxier)(nil)

// New builds a Proxier. It opens nothing: Sync does, in the network
// namespace of the calling thread.
func New(cfg Config) (*Proxier, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Interface == "" {
		cfg.Interface = "lo"
	}
	if cfg.DialTimeout < 0 || cfg.UDPIdleTimeout < 0 {
		return nil, errors.New("userspace: DialTimeout and UDPIdleTimeout must not be negative")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.UDPIdleTimeout == 0 {
		cfg.UDPIdleTimeout = DefaultUDPIdleTimeout
	}
	for i, ip := range cfg.NodeIPs {
		if !ip.IsValid() {
			return nil, fmt.Errorf("userspace: NodeIPs[%d]: invalid address", i)
		}
	}
	p := &Proxier{
		cfg:       cfg,
		log:       cfg.Logger,
		m:         newMetrics(cfg.Registerer),
		services:  map[serviceproxy.ServicePortName]*service{},
		listeners: map[lkey]*listener{},
		failing:   map[lkey]string{},
		warned:    map[string]bool{},
		added:     map[netip.Addr]*addrRef{},
		claims:    map[lkey][]claim{},
		svcKeys:   map[serviceproxy.ServicePortName][]lkey{},
		addrUse:   map[netip.Addr]int{},
		conns:     map[*tcpPair]struct{}{},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p, nil
}

// Name is "userspace".
func (p *Proxier) Name() string { return ModeName }

// processNetNS is the process's own network namespace, read while the
// package initialises (on the main thread, before any goroutine could
// have moved a thread elsewhere; /proc/self/ns/net later follows the main
// thread, which a locked goroutine may have taken into a namespace).
var processNetNS, processNetNSErr = netnsInode("/proc/thread-self/ns/net")

func netnsInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// bindNamespace makes the proxier work in the calling thread's network
// namespace: the first Sync decides; later ones must run in the same one.
func (p *Proxier) bindNamespace() error {
	ino, err := netnsInode("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("userspace: the calling thread's network namespace: %w", err)
	}
	if p.nsIno != 0 {
		if ino != p.nsIno {
			return fmt.Errorf("userspace: Sync called from another network namespace (inode %d) than the first one (%d)", ino, p.nsIno)
		}
		return nil
	}
	self, err := processNetNS, processNetNSErr
	if err != nil {
		return fmt.Errorf("userspace: the process's network namespace: %w", err)
	}
	runner := &nsRunner{fd: -1}
	if ino != self {
		if runner, err = newNSRunner("/proc/thread-self/ns/net"); err != nil {
			return fmt.Errorf("userspace: %w", err)
		}
	}
	switch p.cfg.Addresses {
	case AddressesAlways:
		p.addrMode = true
	case AddressesNever:
		p.addrMode = false
	default:
		p.addrMode = ino != self
	}
	if p.addrMode {
		idx, err := interfaceIndex(p.cfg.Interface)
		if err != nil {
			runner.close()
			return fmt.Errorf("userspace: %w", err)
		}
		p.ifindex = idx
	}
	p.nsIno = ino
	p.ns.Store(runner)
	return nil
}

// Sync opens the listeners the state needs, closes those it no longer
// needs (their established connections go on), and gives every service
// port its new endpoints, used by new connections. Without State.Full only
// the service ports in Changed and Removed are looked at (a change of the
// node's IPs or the cluster CIDRs makes it full).
func (p *Proxier) Sync(ctx context.Context, st *serviceproxy.State) error {
	if st == nil {
		return errors.New("userspace: Sync: nil state")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	if p.ctx.Err() != nil { // used again after Cleanup
		p.ctx, p.cancel = context.WithCancel(context.Background())
	}
	if err := p.bindNamespace(); err != nil {
		return err
	}
	nodeIPs := st.Node.IPs
	if len(nodeIPs) == 0 {
		nodeIPs = p.cfg.NodeIPs
	}
	full := st.Full || !p.synced || !slices.Equal(nodeIPs, p.lastNodeIPs) || !slices.Equal(st.ClusterCIDRs, p.lastCIDRs)
	p.synced = true
	p.lastNodeIPs = slices.Clone(nodeIPs)
	p.lastCIDRs = slices.Clone(st.ClusterCIDRs)

	affected := map[lkey]struct{}{}
	var changedUDP []*service
	update := func(name serviceproxy.ServicePortName) {
		sp := st.Services[name]
		old := p.services[name]
		if sp != nil && sp.Protocol != corev1.ProtocolTCP && sp.Protocol != corev1.ProtocolUDP {
			p.warnOnce("proto/"+name.String(), "service port not proxied: the userspace mode handles TCP and UDP only",
				"service", name.String(), "protocol", sp.Protocol)
			sp = nil
		}
		if old != nil {
			p.unclaim(name, affected)
		}
		if sp == nil {
			if old != nil {
				delete(p.services, name)
				p.m.forget(old.label, old.protocol)
			}
			return
		}
		s := old
		if s == nil {
			s = &service{name: name, label: name.String(), protocol: string(sp.Protocol)}
			s.m = p.m.forService(s.label, s.protocol)
			p.services[name] = s
		}
		b := newBalance(st, sp, st.Endpoints[name], p.cfg.ClusterCIDRs)
		s.bal.Store(b)
		s.expireAffinity(b)
		if sp.Protocol == corev1.ProtocolUDP && old != nil {
			changedUDP = append(changedUDP, s)
		}
		p.claim(s, sp, nodeIPs, affected)
	}
	if full {
		for name := range st.Services {
			update(name)
		}
		for name := range p.services {
			if st.Services[name] == nil {
				update(name)
			}
		}
	} else {
		for name := range st.Changed {
			update(name)
		}
		for _, name := range st.Removed {
			update(name)
		}
	}

	// Apply the claims: close, retarget or open the affected listeners;
	// retry the ones that failed before.
	for k := range affected {
		p.apply(k)
	}
	for k := range p.failing {
		if _, done := affected[k]; !done {
			p.apply(k)
		}
	}
	// Remove the addresses no listener needs any more, once the
	// connections accepted on them have ended.
	check := func(a netip.Addr, ref *addrRef) {
		if p.addrUse[a] > 0 {
			ref.removing.Store(false)
			return
		}
		ref.removing.Store(true)
		if ref.conns.Load() == 0 {
			p.delAddr(a)
		}
	}
	if full {
		for a, ref := range p.added {
			check(a, ref)
		}
	} else {
		for k := range affected {
			if ref := p.added[k.ap.Addr()]; ref != nil {
				check(k.ap.Addr(), ref)
			}
		}
	}
	// UDP sessions to endpoints that are gone end now, as kube-proxy
	// flushes "conntrack entries of removed UDP endpoints".
	for name := range st.StaleUDPEndpoints {
		if s := p.services[name]; s != nil && !slices.Contains(changedUDP, s) {
			changedUDP = append(changedUDP, s)
		}
	}
	for _, s := range changedUDP {
		for _, k := range p.svcKeys[s.name] {
			if l := p.listeners[k]; l != nil && l.udp != nil && l.route.Load().svc == s {
				l.udp.dropStale(s.bal.Load())
			}
		}
	}
	p.m.listeners.Set(float64(len(p.listeners)))
	return nil
}

// claim records the listeners a service port wants: its cluster IPs, its
// NodePort on every node IP, its external and load-balancer IPs.
func (p *Proxier) claim(s *service, sp *serviceproxy.ServicePort, nodeIPs []netip.Addr, affected map[lkey]struct{}) {
	var keys []lkey
	add := func(ip netip.Addr, port int32, kind listenerKind) {
		if !ip.IsValid() || port <= 0 || port > 65535 {
			return
		}
		k := lkey{netip.AddrPortFrom(ip.Unmap(), uint16(port)), sp.Protocol}
		if slices.Contains(keys, k) {
			return
		}
		keys = append(keys, k)
		if len(p.claims[k]) == 0 {
			p.addrUse[k.ap.Addr()]++
		}
		p.claims[k] = append(p.claims[k], claim{s, kind})
		affected[k] = struct{}{}
	}
	for _, ip := range sp.ClusterIPs {
		add(ip, sp.Port, kindClusterIP)
	}
	if sp.NodePort != 0 {
		if len(nodeIPs) == 0 {
			p.warnOnce("nodeips", "no node IPs known: NodePorts are not served")
		}
		for _, ip := range nodeIPs {
			add(ip, sp.NodePort, kindNodePort)
		}
	}
	for _, ip := range sp.ExternalIPs {
		add(ip, sp.Port, kindExternalIP)
	}
	for _, ip := range sp.LoadBalancerVIPs {
		add(ip, sp.Port, kindLoadBalancer)
	}
	p.svcKeys[s.name] = keys
}

// unclaim drops a service port's claims.
func (p *Proxier) unclaim(name serviceproxy.ServicePortName, affected map[lkey]struct{}) {
	for _, k := range p.svcKeys[name] {
		cl := slices.DeleteFunc(p.claims[k], func(c claim) bool { return c.svc.name == name })
		affected[k] = struct{}{}
		if len(cl) > 0 {
			p.claims[k] = cl
			continue
		}
		delete(p.claims, k)
		a := k.ap.Addr()
		if p.addrUse[a]--; p.addrUse[a] <= 0 {
			delete(p.addrUse, a)
		}
	}
	delete(p.svcKeys, name)
}

// apply brings one listener in line with its claims. Two service ports
// claiming the same address: the first by name gets it, and the clash is
// logged once.
func (p *Proxier) apply(k lkey) {
	cl := p.claims[k]
	l := p.listeners[k]
	if len(cl) == 0 {
		if l != nil {
			l.close()
			delete(p.listeners, k)
		}
		delete(p.failing, k)
		return
	}
	win := cl[0]
	for _, c := range cl[1:] {
		if c.svc.label < win.svc.label {
			win = c
		}
	}
	if len(cl) > 1 {
		for _, c := range cl {
			if c != win {
				p.warnOnce("clash/"+k.String()+"/"+c.svc.label, "two service ports want the same address; the first by name gets it",
					"address", k.String(), "service", win.svc.label, "ignored", c.svc.label)
			}
		}
	}
	rt := route{win.svc, win.kind}
	if l != nil {
		if cur := l.route.Load(); *cur != rt {
			l.route.Store(&rt)
		}
		return
	}
	p.open(k, rt)
}

func (p *Proxier) warnOnce(key, msg string, args ...any) {
	if p.warned[key] {
		return
	}
	p.warned[key] = true
	p.log.Warn(msg, args...)
}

// open opens one listener; failures are logged once per listener and
// reason, counted, and retried on the next sync.
func (p *Proxier) open(k lkey, rt route) {
	l, err := p.listen(k)
	// In address mode, external and load-balancer IPs are added like
	// cluster IPs, as kube-proxy's IPVS mode binds cluster, external and
	// load-balancer ingress IPs to its dummy kube-ipvs0 (syncService with
	// bindAddr true for each): packets routed to the node for them are
	// then delivered locally.
	if err != nil && errors.Is(err, syscall.EADDRNOTAVAIL) && rt.kind != kindNodePort && p.addrMode {
		if aerr := p.addAddr(k.ap.Addr()); aerr != nil {
			err = fmt.Errorf("%w (adding it to %s: %v)", err, p.cfg.Interface, aerr)
		} else {
			l, err = p.listen(k)
		}
	}
	if err != nil {
		reason := "other"
		switch {
		case errors.Is(err, syscall.EACCES):
			reason = "permission"
		case errors.Is(err, syscall.EADDRINUSE):
			reason = "in_use"
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			reason = "not_local"
		}
		if p.failing[k] == reason {
			return
		}
		p.failing[k] = reason
		p.m.bindFailures.WithLabelValues(rt.svc.label, rt.svc.protocol, reason).Inc()
		args := []any{"service", rt.svc.label, "address", k.String(), "kind", rt.kind.String(), "err", err}
		switch reason {
		case "permission":
			p.log.Warn("cannot listen on a privileged port: it needs root or CAP_NET_BIND_SERVICE (or a lower net.ipv4.ip_unprivileged_port_start); the port is not served and not remapped", args...)
		case "not_local":
			if rt.kind == kindExternalIP || rt.kind == kindLoadBalancer {
				p.log.Info("address is not local to this node: not served by the userspace proxy", args...)
			} else {
				p.log.Warn("address is not local to this node: not served", args...)
			}
		default:
			p.log.Warn("cannot listen on a service address", args...)
		}
		return
	}
	delete(p.failing, k)
	r := rt
	l.route.Store(&r)
	l.ref = p.added[k.ap.Addr()]
	p.listeners[k] = l
	p.wg.Add(1)
	if l.tcp != nil {
		go p.serveTCP(l)
	} else {
		go p.serveUDP(l)
	}
}

func (p *Proxier) listen(k lkey) (*listener, error) {
	l := &listener{key: k}
	network := "tcp4"
	if k.ap.Addr().Is6() {
		network = "tcp6"
	}
	err := p.ns.Load().do(func() error {
		var lc net.ListenConfig
		switch k.proto {
		case corev1.ProtocolTCP:
			ln, err := lc.Listen(context.Background(), network, k.ap.String())
			if err != nil {
				return err
			}
			l.tcp = ln.(*net.TCPListener)
		case corev1.ProtocolUDP:
			pc, err := lc.ListenPacket(context.Background(), "udp"+network[3:], k.ap.String())
			if err != nil {
				return err
			}
			l.udp = &udpListener{conn: pc.(*net.UDPConn), sessions: map[netip.AddrPort]*udpSession{}}
		default:
			return fmt.Errorf("protocol %s not supported", k.proto)
		}
		return nil
	})
	return l, err
}

func (p *Proxier) addAddr(a netip.Addr) error {
	err := p.ns.Load().do(func() error { return addrRequest(true, p.ifindex, a) })
	if errors.Is(err, unix.EEXIST) {
		return nil // someone else's: leave it to them
	}
	if err != nil {
		return err
	}
	p.added[a] = &addrRef{}
	p.log.Debug("added service address", "address", a, "interface", p.cfg.Interface)
	return nil
}

// reapAddrs removes the unwanted addresses whose last connection ended.
func (p *Proxier) reapAddrs() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ns.Load() == nil {
		return
	}
	for a, ref := range p.added {
		if ref.removing.Load() && ref.conns.Load() == 0 {
			p.delAddr(a)
		}
	}
}

func (p *Proxier) delAddr(a netip.Addr) {
	err := p.ns.Load().do(func() error { return addrRequest(false, p.ifindex, a) })
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) {
		p.log.Warn("cannot remove service address", "address", a, "interface", p.cfg.Interface, "err", err)
		return
	}
	delete(p.added, a)
}

// Cleanup closes every listener, UDP session and TCP connection and
// removes the service addresses tagged AddrProto from the interface, in
// the proxier's namespace and in the calling thread's. The Proxier may be
// synced again afterwards.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cancel()
	for k, l := range p.listeners {
		l.close()
		delete(p.listeners, k)
	}
	p.connMu.Lock()
	for c := range p.conns {
		c.abort()
	}
	p.connMu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("userspace: waiting for connections to close: %w", ctx.Err()))
	}
	for a := range p.added {
		p.delAddr(a)
	}
	for a := range p.added {
		errs = append(errs, fmt.Errorf("userspace: address %s on %s not removed", a, p.cfg.Interface))
	}
	// Leftovers of an earlier process, in the caller's namespace.
	if idx, err := interfaceIndex(p.cfg.Interface); err == nil {
		if addrs, err := taggedAddrs(idx); err == nil {
			for _, a := range addrs {
				if err := addrRequest(false, idx, a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					errs = append(errs, fmt.Errorf("userspace: remove address %s from %s: %w", a, p.cfg.Interface, err))
				}
			}
		} else if !errors.Is(err, os.ErrPermission) {
			errs = append(errs, fmt.Errorf("userspace: %w", err))
		}
	}
	if r := p.ns.Swap(nil); r != nil {
		r.close()
	}
	p.nsIno = 0
	p.synced = false
	clear(p.services)
	clear(p.claims)
	clear(p.svcKeys)
	clear(p.addrUse)
	clear(p.failing)
	clear(p.warned)
	p.m.listeners.Set(0)
	return errors.Join(errs...)
}

// Addresses returns the listeners open now, sorted ("ip:port/PROTO"),
// for status output and tests.
func (p *Proxier) Addresses() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.listeners))
	for k := range p.listeners {
		out = append(out, k.String())
	}
	slices.Sort(out)
	return out
}
