package testnet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Names of the links the harness creates inside the node namespace.
const (
	BridgeName       = "sbbr0" // the pods' bridge; holds the gateway address
	PodLinkPrefix    = "sbp"   // node side of pod N's veth: sbp<N>, a port of sbbr0
	ClientLinkPrefix = "sbc"   // node side of client N's veth: sbc<N>
	PodLinkName      = "eth0"  // the link inside pods and clients
)

// Address plan defaults.
var (
	DefaultPodCIDR = netip.MustParsePrefix("10.244.0.0/24")
	// ClientRange is split into /28s, one per client: client N is
	// 198.51.100.(16N+2), the node's side 198.51.100.(16N+1).
	ClientRange = netip.MustParsePrefix("198.51.100.0/24")
	// ExternalRange is free for tests to use as external / load-balancer
	// IPs; clients route it via the node, the node onto its bridge.
	ExternalRange       = netip.MustParsePrefix("203.0.113.0/24")
	DefaultServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("10.96.0.0/12"), ExternalRange}
)

const clientSubnetBits = 28

// MaxClients is how many clients fit in ClientRange.
const MaxClients = 1 << (clientSubnetBits - 24)

// Options shapes a Net. The zero value is a usable default.
type Options struct {
	// PodCIDR is the pods' subnet (IPv4). Its first address is the
	// gateway on the node's bridge; pods get the following ones.
	// Default 10.244.0.0/24.
	PodCIDR netip.Prefix
	// BrNetfilter: bridged IPv4/IPv6 traffic traverses iptables/nftables
	// in the node (net.bridge.bridge-nf-call-iptables=1), as kube-proxy
	// requires. This is the default: it is on unless DisableBrNetfilter
	// is set, so BrNetfilter=true only documents the wish.
	BrNetfilter bool
	// DisableBrNetfilter turns bridge-nf-call-iptables/ip6tables off in
	// the node namespace.
	DisableBrNetfilter bool
	// NodeName is the node's Host.Name and the last part of its
	// namespace's name. Default "node".
	NodeName string
	// ServiceCIDRs are routed onto the bridge in the node namespace, so
	// that the node's own connections to service IPs get past the route
	// lookup to the OUTPUT hook (the node has no default route). Default
	// DefaultServiceCIDRs (10.96.0.0/12, 203.0.113.0/24). Set to a
	// non-nil empty slice for none.
	ServiceCIDRs []netip.Prefix
	// ClientRoutes are the prefixes a client routes via the node. nil
	// means a default route via the node (pods, service and external IPs
	// all reachable); a non-nil empty slice means only the client's own
	// /28 (node IP of its link) is reachable.
	ClientRoutes []netip.Prefix
}

// TB is the part of testing.TB this package uses; *testing.T and
// *testing.B satisfy it. A program that is not a test (a benchmark
// command) may pass its own: Fatalf and Skipf must not return (testing's
// end the goroutine; a program may panic and recover in the goroutine
// that called New, AddPod, AddClient or a Serve method), and the
// functions given to Cleanup must run, last first, when the program is
// done with the Net, also on failure.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skipf(format string, args ...any)
}

// Net is one node with its pods and clients. Create it with New.
type Net struct {
	id    string
	opts  Options
	node  *Host
	gw    netip.Addr
	nlh   *netlink.Handle // in the node namespace; guarded by mu
	mu    sync.Mutex
	names map[string]bool
	// next pod address, pod and client counters
	nextPod netip.Addr
	podN    int
	clientN int
	pods    []*Host
	clients []*Host
	nodeIPs []netip.Addr
	closed  bool
}

var sweepOnce sync.Once

// New creates a node namespace with its bridge and registers its removal
// with t.Cleanup. It skips the test when not running as root.
func New(t TB, opts Options) *Net {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("testnet: creating network namespaces needs root (running as uid %d)", uid)
	}
	if err := opts.setDefaults(); err != nil {
		t.Fatalf("testnet.New: %v", err)
	}
	sweepOnce.Do(func() {
		removed, err := Sweep(time.Hour)
		if len(removed) > 0 {
			t.Logf("testnet: removed stale namespaces %v", removed)
		}
		if err != nil {
			t.Logf("testnet: sweeping stale namespaces: %v", err)
		}
	})
	n := &Net{
		id:    fmt.Sprintf("%dx%s", os.Getpid(), utilrand.String(4)),
		opts:  opts,
		names: map[string]bool{},
	}
	n.gw = opts.PodCIDR.Addr().Next()
	n.nextPod = n.gw.Next()
	n.node = &Host{Name: opts.NodeName, IP: clientNodeIP(0)}
	n.node.NetNS = n.nsName(opts.NodeName)
	n.node.NSPath = filepath.Join(NetnsDir, n.node.NetNS)
	n.node.Prefix = netip.PrefixFrom(n.node.IP, clientSubnetBits)
	n.names[opts.NodeName] = true

	var owned atomic.Bool
	t.Cleanup(func() {
		n.mu.Lock()
		n.closed = true
		if n.nlh != nil {
			n.nlh.Close()
			n.nlh = nil
		}
		n.mu.Unlock()
		if owned.Load() {
			if err := deleteNamed(n.node.NSPath); err != nil {
				t.Errorf("testnet: removing node namespace: %v", err)
			}
		}
	})
	if err := createNamed(n.node.NetNS, &owned); err != nil {
		t.Fatalf("testnet.New: node namespace %s: %v", n.node.NetNS, err)
	}
	if err := n.setupNode(); err != nil {
		t.Fatalf("testnet.New: node namespace %s: %v", n.node.NetNS, err)
	}
	return n
}

func (o *Options) setDefaults() error {
	if !o.PodCIDR.IsValid() {
		o.PodCIDR = DefaultPodCIDR
	}
	if !o.PodCIDR.Addr().Is4() {
		return fmt.Errorf("Options.PodCIDR %s: only IPv4 is supported", o.PodCIDR)
	}
	if o.PodCIDR.Bits() > 30 {
		return fmt.Errorf("Options.PodCIDR %s: too small for a gateway and a pod", o.PodCIDR)
	}
	o.PodCIDR = o.PodCIDR.Masked()
	if o.PodCIDR.Overlaps(ClientRange) {
		return fmt.Errorf("Options.PodCIDR %s overlaps the clients' range %s", o.PodCIDR, ClientRange)
	}
	if o.NodeName == "" {
		o.NodeName = "node"
	}
	if errs := validation.IsDNS1123Label(o.NodeName); len(errs) > 0 {
		return fmt.Errorf("Options.NodeName %q: %s", o.NodeName, strings.Join(errs, "; "))
	}
	if o.ServiceCIDRs == nil {
		o.ServiceCIDRs = DefaultServiceCIDRs
	}
	for i, p := range o.ServiceCIDRs {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("Options.ServiceCIDRs[%d] %s: must be an IPv4 prefix", i, p)
		}
		if p.Overlaps(o.PodCIDR) || p.Overlaps(ClientRange) {
			return fmt.Errorf("Options.ServiceCIDRs[%d] %s: overlaps the pod CIDR %s or the clients' range %s", i, p, o.PodCIDR, ClientRange)
		}
	}
	for i, p := range o.ClientRoutes {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("Options.ClientRoutes[%d] %s: must be an IPv4 prefix", i, p)
		}
	}
	return nil
}

func (n *Net) nsName(name string) string { return Prefix + n.id + "-" + name }

// clientNodeIP is the node's address on client i's link.
func clientNodeIP(i int) netip.Addr {
	b := ClientRange.Addr().As4()
	b[3] = byte(i<<(32-clientSubnetBits) + 1)
	return netip.AddrFrom4(b)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac)
	mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	return mac
}

// withHandle runs f with a netlink handle in the namespace at path.
func withHandle(path string, f func(h *netlink.Handle, fd netns.NsHandle) error) error {
	fd, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", path, err)
	}
	defer h.Close()
	return f(h, fd)
}

func (n *Net) setupNode() error {
	nodeSysctls := map[string]string{
		"net.ipv4.ip_forward": "1",
		// A proxied connection between two pods on the bridge is routed
		// in and out of sbbr0; an ICMP redirect would teach the client
		// pod to bypass the node (and the DNAT) for the service IP.
		"net.ipv4.conf.all.send_redirects":     "0",
		"net.ipv4.conf.default.send_redirects": "0",
	}
	brnf := "1"
	if n.opts.DisableBrNetfilter {
		brnf = "0"
	}
	// Order matters only for "default" (set before links exist).
	if err := n.node.Do(func() error {
		for _, k := range []string{"net.ipv4.conf.all.send_redirects", "net.ipv4.conf.default.send_redirects", "net.ipv4.ip_forward"} {
			if err := writeSysctl(k, nodeSysctls[k]); err != nil {
				return err
			}
		}
		for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"} {
			if err := writeSysctl(k, brnf); err != nil {
				if brnf == "0" && errors.Is(err, os.ErrNotExist) {
					continue
				}
				return fmt.Errorf("%w (is br_netfilter available?)", err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	fd, err := netns.GetFromPath(n.node.NSPath)
	if err != nil {
		return err
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		h.Close()
		return errors.New("cleaned up")
	}
	n.nlh = h
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	la := netlink.NewLinkAttrs()
	la.Name = BridgeName
	la.HardwareAddr = randomMAC() // fixed: a bridge's MAC otherwise follows its ports
	la.Flags = net.FlagUp
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil {
		return fmt.Errorf("add bridge %s: %w", BridgeName, err)
	}
	br, err := h.LinkByName(BridgeName)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(br, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(n.gw, n.opts.PodCIDR.Bits()))}); err != nil {
		return fmt.Errorf("address %s on %s: %w", n.gw, BridgeName, err)
	}
	for _, p := range n.opts.ServiceCIDRs {
		r := &netlink.Route{LinkIndex: br.Attrs().Index, Dst: ipNet(p.Masked()), Scope: netlink.SCOPE_LINK}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("route %s dev %s: %w", p, BridgeName, err)
		}
	}
	// Client 0's link is made now so that the node's IP exists before any
	// client does; its peer waits in the node namespace, down.
	if err := n.addClientVeth(0); err != nil {
		return err
	}
	n.nodeIPs = append(n.nodeIPs, clientNodeIP(0))
	return nil
}

// addClientVeth creates sbc<i> (up, with the node's address on client
// i's subnet) and its peer sbc<i>p, both in the node namespace. n.mu held.
func (n *Net) addClientVeth(i int) error {
	h := n.nlh
	la := netlink.NewLinkAttrs()
	la.Name = fmt.Sprintf("%s%d", ClientLinkPrefix, i)
	la.Flags = net.FlagUp
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: la.Name + "p"}); err != nil {
		return fmt.Errorf("add veth %s: %w", la.Name, err)
	}
	l, err := h.LinkByName(la.Name)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(clientNodeIP(i), clientSubnetBits))}); err != nil {
		return fmt.Errorf("address on %s: %w", la.Name, err)
	}
	return nil
}

// Node is the node namespace, where a proxy runs. Its IP is the node
// side of client 0's link (198.51.100.1); NodeIPs lists all node IPs.
func (n *Net) Node() *Host { return n.node }

// ID is the random part of this Net's namespace names (sbt-<ID>-<name>).
func (n *Net) ID() string { return n.id }

// Gateway is the node's address on the bridge, the pods' default gateway
// (the pod CIDR's first address).
func (n *Net) Gateway() netip.Addr { return n.gw }

// PodCIDR is the pods' subnet.
func (n *Net) PodCIDR() netip.Prefix { return n.opts.PodCIDR }

// NodeIPs are the node's addresses on its client links in address order,
// client 0's (Node().IP, there from New on) first. The Gateway is not one.
func (n *Net) NodeIPs() []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	ips := append([]netip.Addr(nil), n.nodeIPs...)
	slices.SortFunc(ips, netip.Addr.Compare)
	return ips
}

// Pods lists the pods added so far, in creation order.
func (n *Net) Pods() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.pods...)
}

// Clients lists the clients added so far, in creation order.
func (n *Net) Clients() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.clients...)
}

// reserve claims a host name for this Net.
func (n *Net) reserve(kind, name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return fmt.Errorf("%s name %q: %s", kind, name, strings.Join(errs, "; "))
	}
	if n.names[name] {
		return fmt.Errorf("%s name %q: already used in this Net", kind, name)
	}
	if n.closed {
		return errors.New("the Net has been cleaned up")
	}
	n.names[name] = true
	return nil
}

// newHost registers a namespace's removal on t and creates it.
func (n *Net) newHost(t TB, name string) (*Host, error) {
	h := &Host{Name: name, NetNS: n.nsName(name)}
	h.NSPath = filepath.Join(NetnsDir, h.NetNS)
	var owned atomic.Bool
	t.Cleanup(func() {
		if owned.Load() {
			if err := deleteNamed(h.NSPath); err != nil {
				t.Errorf("testnet: removing namespace of %s: %v", name, err)
			}
		}
	})
	if err := createNamed(h.NetNS, &owned); err != nil {
		return nil, err
	}
	return h, nil
}

// AddPod creates a pod namespace attached to the node's bridge, with the
// next free address of the pod CIDR and a default route via the gateway.
// Its removal is registered on t.
func (n *Net) AddPod(t TB, name string) *Host {
	t.Helper()
	n.mu.Lock()
	err := n.reserve("pod", name)
	ip, idx := n.nextPod, n.podN
	if err == nil {
		if !n.opts.PodCIDR.Contains(ip) || !n.opts.PodCIDR.Contains(ip.Next()) { // keep the broadcast address free
			err = fmt.Errorf("pod %q: pod CIDR %s is full", name, n.opts.PodCIDR)
		} else {
			n.nextPod = ip.Next()
			n.podN++
		}
	}
	n.mu.Unlock()
	if err != nil {
		t.Fatalf("testnet.AddPod: %v", err)
	}
	h, err := n.newHost(t, name)
	if err == nil {
		h.IP = ip
		h.Prefix = netip.PrefixFrom(ip, n.opts.PodCIDR.Bits())
		h.Gateway = n.gw
		h.HostLink = fmt.Sprintf("%s%d", PodLinkPrefix, idx)
		err = n.setupPod(h)
	}
	if err != nil {
		t.Fatalf("testnet.AddPod %q: %v", name, err)
	}
	n.mu.Lock()
	n.pods = append(n.pods, h)
	n.mu.Unlock()
	return h
}

func (n *Net) setupPod(p *Host) error {
	return withHandle(p.NSPath, func(ph *netlink.Handle, fd netns.NsHandle) error {
		n.mu.Lock()
		err := func() error {
			if n.closed {
				return errors.New("the Net has been cleaned up")
			}
			h := n.nlh
			br, err := h.LinkByName(BridgeName)
			if err != nil {
				return err
			}
			la := netlink.NewLinkAttrs()
			la.Name = p.HostLink
			la.Flags = net.FlagUp
			la.MasterIndex = br.Attrs().Index
			if err := h.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: PodLinkName, PeerNamespace: netlink.NsFd(fd)}); err != nil {
				return fmt.Errorf("add veth %s: %w", la.Name, err)
			}
			l, err := h.LinkByName(la.Name)
			if err != nil {
				return err
			}
			// Hairpin: a pod reaching itself through a service gets its
			// own packets back through its bridge port.
			if err := h.LinkSetHairpin(l, true); err != nil {
				return fmt.Errorf("hairpin on %s: %w", la.Name, err)
			}
			return nil
		}()
		n.mu.Unlock()
		if err != nil {
			return err
		}
		return n.bringUp(fd, p.HostLink, func() error {
			return configureInside(ph, p.Prefix, p.Gateway, nil)
		})
	})
}

// bringUp runs up, which brings eth0 up in the namespace fd (and with it
// the carrier of hostLink in the node), and waits until the kernel
// reports eth0, hostLink and, if it was not yet, the bridge up.
func (n *Net) bringUp(fd netns.NsHandle, hostLink string, up func() error) error {
	inside, err := watchLinks(fd)
	if err != nil {
		return err
	}
	defer inside.close()
	nodeFD, err := netns.GetFromPath(n.node.NSPath)
	if err != nil {
		return err
	}
	defer nodeFD.Close()
	node, err := watchLinks(nodeFD)
	if err != nil {
		return err
	}
	defer node.close()
	nodeLinks := []string{hostLink}
	if strings.HasPrefix(hostLink, PodLinkPrefix) {
		n.mu.Lock()
		br, err := n.nlh.LinkByName(BridgeName)
		n.mu.Unlock()
		if err != nil {
			return err
		}
		if br.Attrs().OperState != netlink.OperUp {
			nodeLinks = append(nodeLinks, BridgeName)
		}
	}
	if err := up(); err != nil {
		return err
	}
	if err := inside.waitUp(PodLinkName); err != nil {
		return err
	}
	return node.waitUp(nodeLinks...)
}

// configureInside brings lo and eth0 up, puts addr on eth0 and adds routes
// via gw: a default route when routes is nil, else one per prefix.
func configureInside(h *netlink.Handle, addr netip.Prefix, gw netip.Addr, routes []netip.Prefix) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	eth, err := h.LinkByName(PodLinkName)
	if err != nil {
		return err
	}
	if err := h.AddrAdd(eth, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr, PodLinkName, err)
	}
	if err := h.LinkSetUp(eth); err != nil {
		return fmt.Errorf("%s up: %w", PodLinkName, err)
	}
	if routes == nil {
		routes = []netip.Prefix{{}}
	}
	for _, p := range routes {
		r := &netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.AsSlice()}
		if p.IsValid() {
			r.Dst = ipNet(p.Masked())
		}
		if err := h.RouteAdd(r); err != nil {
			return fmt.Errorf("route %v via %s: %w", p, gw, err)
		}
	}
	return nil
}

// AddClient creates an "outside" namespace linked to the node by its own
// veth pair and /28 out of 198.51.100.0/24 (client N: 198.51.100.16N+2,
// node side 16N+1, a node IP), with a default route via the node (or
// Options.ClientRoutes). Its removal is registered on t.
func (n *Net) AddClient(t TB, name string) *Host {
	t.Helper()
	n.mu.Lock()
	err := n.reserve("client", name)
	idx := n.clientN
	if err == nil {
		if idx >= MaxClients {
			err = fmt.Errorf("client %q: at most %d clients fit in %s", name, MaxClients, ClientRange)
		} else {
			n.clientN++
		}
	}
	n.mu.Unlock()
	if err != nil {
		t.Fatalf("testnet.AddClient: %v", err)
	}
	h, err := n.newHost(t, name)
	if err == nil {
		nodeIP := clientNodeIP(idx)
		h.IP = nodeIP.Next()
		h.Prefix = netip.PrefixFrom(h.IP, clientSubnetBits)
		h.Gateway = nodeIP
		h.HostLink = fmt.Sprintf("%s%d", ClientLinkPrefix, idx)
		err = n.setupClient(h, idx)
	}
	if err != nil {
		t.Fatalf("testnet.AddClient %q: %v", name, err)
	}
	n.mu.Lock()
	n.clients = append(n.clients, h)
	n.mu.Unlock()
	return h
}

func (n *Net) setupClient(c *Host, idx int) error {
	return withHandle(c.NSPath, func(ch *netlink.Handle, fd netns.NsHandle) error {
		n.mu.Lock()
		err := func() error {
			if n.closed {
				return errors.New("the Net has been cleaned up")
			}
			if idx > 0 { // client 0's veth was made by New
				if err := n.addClientVeth(idx); err != nil {
					return err
				}
				n.nodeIPs = append(n.nodeIPs, c.Gateway)
			}
			peer, err := n.nlh.LinkByName(c.HostLink + "p")
			if err != nil {
				return err
			}
			if err := n.nlh.LinkSetNsFd(peer, int(fd)); err != nil {
				return fmt.Errorf("move %s into %s: %w", peer.Attrs().Name, c.NetNS, err)
			}
			return nil
		}()
		n.mu.Unlock()
		if err != nil {
			return err
		}
		peer, err := ch.LinkByName(c.HostLink + "p")
		if err != nil {
			return err
		}
		if err := ch.LinkSetName(peer, PodLinkName); err != nil {
			return fmt.Errorf("rename %s to %s: %w", peer.Attrs().Name, PodLinkName, err)
		}
		return n.bringUp(fd, c.HostLink, func() error {
			return configureInside(ch, c.Prefix, c.Gateway, n.opts.ClientRoutes)
		})
	})
}
