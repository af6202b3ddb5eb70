package sandbox

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A Fabric joins several node namespaces the way kind's docker network
// joins its node containers: a fabric namespace of its own holds a bridge
// (FabricBridge), every node gets a veth into it with an address from the
// fabric's range, and pod traffic between nodes goes either
//
//   - over a VXLAN overlay (OverlayVXLAN, the default, flannel's vxlan
//     backend): a vxlan link in every node namespace carries the node's
//     pod subnet's network address (/32); for every other node a route to
//     its pod CIDR via its vxlan address (onlink), a permanent neighbour
//     entry with its vxlan MAC, and an FDB entry sending that MAC to its
//     fabric address; or
//   - over plain routes (OverlayHostGW, flannel's host-gw): for every
//     other node a route to its pod CIDR via its fabric address.
//
// Nothing of it is in the host's namespace: the fabric namespace and the
// node namespaces are the caller's and Close removes the fabric namespace
// (the veths' and vxlan links' other ends go with their namespaces).
type Fabric struct {
	cfg   FabricConfig
	path  string
	addrs []netip.Addr
}

// Overlays of a Fabric.
const (
	OverlayVXLAN  = "vxlan"
	OverlayHostGW = "host-gw"
)

// Names and defaults of a Fabric.
const (
	FabricBridge = "fab0"     // in the fabric namespace
	FabricIfName = "fab0"     // a node's veth end in its own namespace
	VXLANIfName  = "sb.vxlan" // a node's vxlan link (flannel: flannel.1)
	DefaultVNI   = 1
	// DefaultVXLANPort is the IANA port (flannel's default too).
	DefaultVXLANPort = 4789
)

// DefaultFabricCIDR is the range of the nodes' fabric addresses.
var DefaultFabricCIDR = netip.MustParsePrefix("172.31.255.0/24")

// FabricNode is one node on a fabric.
type FabricNode struct {
	Name    string       // the node's name (veth names derive from its index)
	NetNS   string       // path of the node's namespace (never the host's)
	PodCIDR netip.Prefix // the node's pod range (its bridge's subnet)
}

// FabricConfig configures CreateFabric.
type FabricConfig struct {
	// Name names the fabric namespace: NodeNamespaceName(Name)+"-fabric".
	Name    string
	Nodes   []FabricNode
	CIDR    netip.Prefix // default DefaultFabricCIDR; node i gets its i+11th address
	Overlay string       // OverlayVXLAN (default) or OverlayHostGW
	VNI     int          // default DefaultVNI
	Port    int          // default DefaultVXLANPort
	MTU     int          // of the fabric links; 0: the kernel's default
}

// FabricNamespaceName is the name of a fabric's namespace.
func FabricNamespaceName(name string) string { return NodeNamespaceName(name) + "-fabric" }

// CreateFabric creates the fabric namespace and wires every node into it.
// On failure everything it created is removed.
func CreateFabric(cfg FabricConfig) (_ *Fabric, err error) {
	if cfg.Name == "" {
		return nil, errors.New("fabric: Name is required")
	}
	if !cfg.CIDR.IsValid() {
		cfg.CIDR = DefaultFabricCIDR
	}
	cfg.CIDR = cfg.CIDR.Masked()
	switch cfg.Overlay {
	case "":
		cfg.Overlay = OverlayVXLAN
	case OverlayVXLAN, OverlayHostGW:
	default:
		return nil, fmt.Errorf("fabric: overlay %q: unknown (%s, %s)", cfg.Overlay, OverlayVXLAN, OverlayHostGW)
	}
	if cfg.VNI == 0 {
		cfg.VNI = DefaultVNI
	}
	if cfg.Port == 0 {
		cfg.Port = DefaultVXLANPort
	}
	if !cfg.CIDR.Addr().Is4() || cfg.CIDR.Bits() > 30 {
		return nil, fmt.Errorf("fabric: CIDR %s: must be an IPv4 range of /30 or larger", cfg.CIDR)
	}
	f := &Fabric{cfg: cfg}
	a := cfg.CIDR.Addr()
	for i := 0; i < 11; i++ {
		a = a.Next()
	}
	for i, n := range cfg.Nodes {
		if n.NetNS == "" || IsRootNetNS(n.NetNS) {
			return nil, fmt.Errorf("fabric: nodes[%d] (%s): netns %q: a node namespace of its own is required", i, n.Name, n.NetNS)
		}
		if !n.PodCIDR.IsValid() || !n.PodCIDR.Addr().Is4() {
			return nil, fmt.Errorf("fabric: nodes[%d] (%s): podCIDR %s: an IPv4 range is required", i, n.Name, n.PodCIDR)
		}
		for j := 0; j < i; j++ {
			if cfg.Nodes[j].PodCIDR.Overlaps(n.PodCIDR) {
				return nil, fmt.Errorf("fabric: nodes[%d] (%s): podCIDR %s overlaps nodes[%d]'s %s", i, n.Name, n.PodCIDR, j, cfg.Nodes[j].PodCIDR)
			}
		}
		if !cfg.CIDR.Contains(a) || a == lastAddr(cfg.CIDR.Masked()) {
			return nil, fmt.Errorf("fabric: CIDR %s is too small for %d nodes", cfg.CIDR, len(cfg.Nodes))
		}
		f.addrs = append(f.addrs, a)
		a = a.Next()
	}
	path, err := CreateNamedNetNS(FabricNamespaceName(cfg.Name))
	if err != nil {
		return nil, fmt.Errorf("fabric: %w", err)
	}
	f.path = path
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	if err := InNetNS(path, f.ensureBridge); err != nil {
		return nil, fmt.Errorf("fabric: bridge %s: %w", FabricBridge, err)
	}
	for i := range cfg.Nodes {
		if err := f.attach(i); err != nil {
			return nil, fmt.Errorf("fabric: node %s: %w", cfg.Nodes[i].Name, err)
		}
	}
	for i := range cfg.Nodes {
		if err := InNetNS(cfg.Nodes[i].NetNS, func() error { return f.routes(i) }); err != nil {
			return nil, fmt.Errorf("fabric: node %s: %s routes: %w", cfg.Nodes[i].Name, cfg.Overlay, err)
		}
	}
	return f, nil
}

// NetNS is the path of the fabric namespace.
func (f *Fabric) NetNS() string { return f.path }

// NodeIP is node i's fabric address.
func (f *Fabric) NodeIP(i int) netip.Addr { return f.addrs[i] }

// Overlay is the overlay in use.
func (f *Fabric) Overlay() string { return f.cfg.Overlay }

func (f *Fabric) ensureBridge() error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name = FabricBridge
	attrs.MTU = f.cfg.MTU
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	l, err := netlink.LinkByName(FabricBridge)
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// attach creates node i's veth: one end in the fabric namespace on the
// bridge, the other in the node namespace with the node's fabric address.
func (f *Fabric) attach(i int) error {
	fabEnd := fmt.Sprintf("n%d", i+1)
	nodeNS, err := os.Open(f.cfg.Nodes[i].NetNS)
	if err != nil {
		return err
	}
	defer nodeNS.Close()
	return InNetNS(f.path, func() error {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = fabEnd
		attrs.MTU = f.cfg.MTU
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: FabricIfName, PeerNamespace: netlink.NsFd(int(nodeNS.Fd()))}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("veth %s: %w", fabEnd, err)
		}
		l, err := netlink.LinkByName(fabEnd)
		if err != nil {
			return err
		}
		br, err := netlink.LinkByName(FabricBridge)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetMaster(l, br); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		return InNetNS(f.cfg.Nodes[i].NetNS, func() error {
			l, err := netlink.LinkByName(FabricIfName)
			if err != nil {
				return err
			}
			addr := &netlink.Addr{IPNet: &net.IPNet{IP: f.addrs[i].AsSlice(), Mask: net.CIDRMask(f.cfg.CIDR.Bits(), 32)}}
			if err := netlink.AddrReplace(l, addr); err != nil {
				return err
			}
			return netlink.LinkSetUp(l)
		})
	})
}

// vxlanMAC is node i's vxlan MAC: locally administered, derived from its
// fabric address so that every node computes every other's.
func (f *Fabric) vxlanMAC(i int) net.HardwareAddr {
	b := f.addrs[i].As4()
	return net.HardwareAddr{0x0a, 0x58, b[0], b[1], b[2], b[3]}
}

// routes programs node i's routes to the other nodes' pod CIDRs (inside
// node i's namespace).
func (f *Fabric) routes(i int) error {
	// Forwarding between the pods' bridge and the fabric.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("ip_forward: %w", err)
	}
	if f.cfg.Overlay == OverlayHostGW {
		dev, err := netlink.LinkByName(FabricIfName)
		if err != nil {
			return err
		}
		for j, n := range f.cfg.Nodes {
			if j == i {
				continue
			}
			r := &netlink.Route{LinkIndex: dev.Attrs().Index, Dst: prefixNet(n.PodCIDR), Gw: f.addrs[j].AsSlice()}
			if err := netlink.RouteReplace(r); err != nil {
				return fmt.Errorf("route %s via %s: %w", n.PodCIDR, f.addrs[j], err)
			}
		}
		return nil
	}
	under, err := netlink.LinkByName(FabricIfName)
	if err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = VXLANIfName
	attrs.HardwareAddr = f.vxlanMAC(i)
	if f.cfg.MTU > 0 {
		attrs.MTU = f.cfg.MTU - 50 // the VXLAN header's 50 bytes
	}
	vx := &netlink.Vxlan{
		LinkAttrs:    attrs,
		VxlanId:      f.cfg.VNI,
		VtepDevIndex: under.Attrs().Index,
		SrcAddr:      f.addrs[i].AsSlice(),
		Port:         f.cfg.Port,
		Learning:     false,
	}
	if err := netlink.LinkAdd(vx); err != nil {
		return fmt.Errorf("vxlan %s: %w", VXLANIfName, err)
	}
	l, err := netlink.LinkByName(VXLANIfName)
	if err != nil {
		return err
	}
	// flannel: the vxlan device carries the subnet's network address.
	own := f.cfg.Nodes[i].PodCIDR.Masked().Addr()
	if err := netlink.AddrReplace(l, &netlink.Addr{IPNet: &net.IPNet{IP: own.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
		return err
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	for j, n := range f.cfg.Nodes {
		if j == i {
			continue
		}
		gw := n.PodCIDR.Masked().Addr()
		mac := f.vxlanMAC(j)
		if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: gw.AsSlice(), HardwareAddr: mac}); err != nil {
			return fmt.Errorf("neighbour %s: %w", gw, err)
		}
		if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, State: netlink.NUD_PERMANENT,
			IP: f.addrs[j].AsSlice(), HardwareAddr: mac}); err != nil {
			return fmt.Errorf("fdb %s dst %s: %w", mac, f.addrs[j], err)
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: prefixNet(n.PodCIDR), Gw: gw.AsSlice(), Flags: int(netlink.FLAG_ONLINK)}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("route %s via %s onlink: %w", n.PodCIDR, gw, err)
		}
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// Close removes the fabric namespace (its bridge and the fabric ends of
// the veths with it; the node ends go too) and the vxlan links in the node
// namespaces. Removing what is already gone is not an error.
func (f *Fabric) Close() error {
	var errs []error
	for _, n := range f.cfg.Nodes {
		if _, err := os.Stat(n.NetNS); err != nil {
			continue
		}
		err := InNetNS(n.NetNS, func() error {
			for _, name := range []string{VXLANIfName, FabricIfName} {
				if l, err := netlink.LinkByName(name); err == nil {
					if err := netlink.LinkDel(l); err != nil {
						return fmt.Errorf("%s: %w", name, err)
					}
				}
			}
			return nil
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", n.Name, err))
		}
	}
	if f.path != "" {
		errs = append(errs, RemoveNamedNetNS(f.path))
	}
	return errors.Join(errs...)
}

// SplitPodCIDR is node i's pod range: the i-th subnet of size bits of the
// cluster's range (kube-controller-manager's --node-cidr-mask-size, 24 by
// default for IPv4).
func SplitPodCIDR(cluster netip.Prefix, bits, i int) (netip.Prefix, error) {
	cluster = cluster.Masked()
	if !cluster.Addr().Is4() || bits < cluster.Bits() || bits > 30 {
		return netip.Prefix{}, fmt.Errorf("pod CIDR %s: cannot split into /%d subnets", cluster, bits)
	}
	n := 1 << (bits - cluster.Bits())
	if i < 0 || i >= n {
		return netip.Prefix{}, fmt.Errorf("pod CIDR %s has %d subnets of /%d; node %d has none", cluster, n, bits, i)
	}
	b := cluster.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i) << (32 - bits)
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), bits), nil
}
