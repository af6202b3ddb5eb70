package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/containernetworking/cni/pkg/invoke"
	cnins "github.com/containernetworking/cni/pkg/ns"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	cniipam "github.com/containernetworking/plugins/pkg/ipam"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/switchboard-dev/switchboard/cni/ipam"
)

// Plugin-specific error codes (100+, "Values of 100+ can be freely used
// for plugin specific errors").
const (
	ErrRangeFull             = ipam.ErrRangeFull // 100
	ErrInterfaceExists  uint = 101
	ErrCheckFailed      uint = 102
	ErrAlreadyAllocated      = ipam.ErrAlreadyAllocated // 103
	ErrNotAllocated          = ipam.ErrNotAllocated     // 104
)

// HostVethPrefix starts the name of every node-side veth of the plugin.
const HostVethPrefix = "sbv"

// HostVethName is the node-side veth name of an attachment: a function of
// (containerID, ifname) alone, so DEL and GC need not enter the
// container's namespace to find it.
func HostVethName(containerID, ifname string) string {
	h := sha256.Sum256([]byte(containerID + "\x00" + ifname))
	return HostVethPrefix + hex.EncodeToString(h[:6])
}

// Funcs are the plugin's CNI commands for skel.PluginMainFuncs.
func Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: Add, Del: Del, Check: Check, GC: GC, Status: Status}
}

func masqBackend() *string { s := "nftables"; return &s }

// Add attaches the container at args.Netns and prints the result.
func Add(args *skel.CmdArgs) (err error) {
	n, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	prev, err := n.prevResult()
	if err != nil {
		return err
	}
	netns, err := openNetNS(args.Netns)
	if err != nil {
		return err
	}
	defer netns.Close()
	if err := netns.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName(args.IfName); err == nil {
			// "If an interface of the requested name already exists in
			// the container, the CNI plugin MUST return with an error."
			return types.NewError(ErrInterfaceExists, "interface already exists",
				fmt.Sprintf("CNI_IFNAME %q exists in %s", args.IfName, args.Netns))
		}
		return nil
	}); err != nil {
		return err
	}
	br, err := ensureBridge(n)
	if err != nil {
		return err
	}

	// From here on, a failure undoes what was done: no address leaks
	// ("If, on ADD, a delegated plugin fails, the upper plugin should
	// execute again with DEL before returning failure").
	hostName := HostVethName(args.ContainerID, args.IfName)
	var allocated, vethMade bool
	defer func() {
		if err == nil {
			return
		}
		if vethMade {
			_ = ip.DelLinkByName(hostName)
		}
		if allocated {
			_ = n.ipamDel(args)
		}
		if n.IPMasq {
			_ = ip.TeardownIPMasqForNetworks(nil, n.Name, args.IfName, args.ContainerID)
		}
	}()
	ipamRes, err := n.ipamAdd(args)
	if err != nil {
		return err
	}
	allocated = true
	if len(ipamRes.IPs) == 0 {
		return types.NewError(types.ErrInvalidNetworkConfig, "IPAM returned no addresses", n.IPAM.Type)
	}

	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return fmt.Errorf("opening the plugin's namespace: %w", err)
	}
	defer hostNS.Close()
	var hostIf, contIf net.Interface
	err = netns.Do(func(ns.NetNS) error {
		var err error
		hostIf, contIf, err = ip.SetupVethWithName(args.IfName, hostName, n.MTU, "", hostNS)
		return err
	})
	if err != nil {
		return fmt.Errorf("creating veth %s/%s: %w", hostName, args.IfName, err)
	}
	vethMade = true
	hostLink, err := netlink.LinkByName(hostName)
	if err != nil {
		return fmt.Errorf("host veth %s: %w", hostName, err)
	}
	if err := netlink.LinkSetMaster(hostLink, br); err != nil {
		return fmt.Errorf("attaching %s to bridge %s: %w", hostName, n.BridgeName, err)
	}
	if n.hairpin() {
		if err := netlink.LinkSetHairpin(hostLink, true); err != nil {
			return fmt.Errorf("hairpin mode on %s: %w", hostName, err)
		}
	}

	result := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if prev != nil {
		// "it MUST handle prevResult by either passing it through, or
		// modifying it appropriately"
		result = prev
	}
	base := len(result.Interfaces)
	result.Interfaces = append(result.Interfaces,
		&current.Interface{Name: n.BridgeName},
		&current.Interface{Name: hostName, Mac: hostIf.HardwareAddr.String(), Mtu: hostIf.MTU},
		&current.Interface{Name: args.IfName, Mac: contIf.HardwareAddr.String(), Mtu: contIf.MTU, Sandbox: args.Netns},
	)
	ours := make([]*current.IPConfig, 0, len(ipamRes.IPs))
	for _, c := range ipamRes.IPs {
		c := c.Copy()
		c.Interface = current.Int(base + 2)
		ours = append(ours, c)
	}
	routes := ipamRes.Routes
	if n.IsDefaultGateway {
		routes = addDefaultRoutes(routes, ours)
	}
	cfg := &current.Result{Interfaces: result.Interfaces, IPs: ours, Routes: routes}
	if err := netns.Do(func(ns.NetNS) error { return cniipam.ConfigureIface(args.IfName, cfg) }); err != nil {
		return fmt.Errorf("configuring %s in %s: %w", args.IfName, args.Netns, err)
	}
	if n.gateway() {
		for _, c := range ours {
			if c.Gateway == nil {
				continue
			}
			gw := &net.IPNet{IP: c.Gateway, Mask: c.Address.Mask}
			if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: gw}); err != nil && !errors.Is(err, syscall.EEXIST) {
				return fmt.Errorf("gateway %s on bridge %s: %w", gw, n.BridgeName, err)
			}
		}
		if err := ip.EnableForward(ours); err != nil {
			return fmt.Errorf("enabling forwarding: %w", err)
		}
	}
	if n.IPMasq {
		nets := make([]*net.IPNet, len(ours))
		for i, c := range ours {
			nets[i] = &c.Address
		}
		if err := ip.SetupIPMasqForNetworks(masqBackend(), nets, n.Name, args.IfName, args.ContainerID); err != nil {
			return fmt.Errorf("ipMasq: %w", err)
		}
	}
	// The bridge's MAC follows its ports; read it after attaching.
	if l, err := netlink.LinkByName(n.BridgeName); err == nil {
		result.Interfaces[base].Mac = l.Attrs().HardwareAddr.String()
	}
	result.IPs = append(result.IPs, ours...)
	result.Routes = append(result.Routes, routes...)
	if !n.DNS.IsEmpty() {
		result.DNS = n.DNS
	} else if !ipamRes.DNS.IsEmpty() {
		result.DNS = ipamRes.DNS
	}
	return types.PrintResult(result, n.CNIVersion)
}

// openNetNS opens CNI_NETNS: code 3 when it does not exist, 4 when it is
// not a network namespace or is the plugin's own.
func openNetNS(path string) (ns.NetNS, error) {
	netns, err := ns.GetNS(path)
	if err != nil {
		var notExist ns.NSPathNotExistErr
		if errors.As(err, &notExist) {
			return nil, types.NewError(types.ErrUnknownContainer, "container network namespace does not exist", "CNI_NETNS="+path)
		}
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "invalid CNI_NETNS", fmt.Sprintf("CNI_NETNS=%s: %v", path, err))
	}
	if same, terr := cnins.CheckNetNS(path); terr == nil && same {
		netns.Close()
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, "invalid CNI_NETNS", "CNI_NETNS is the plugin's own network namespace: "+path)
	}
	return netns, nil
}

func addDefaultRoutes(routes []*types.Route, ips []*current.IPConfig) []*types.Route {
	have := map[int]bool{}
	for _, r := range routes {
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			have[family(r.Dst.IP)] = true
		}
	}
	for _, c := range ips {
		f := family(c.Address.IP)
		if have[f] || c.Gateway == nil {
			continue
		}
		have[f] = true
		dst := net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
		if f == 6 {
			dst = net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
		}
		routes = append(routes, &types.Route{Dst: dst, GW: c.Gateway})
	}
	return routes
}

func family(a net.IP) int {
	if a.To4() != nil {
		return 4
	}
	return 6
}

// ensureBridge returns the bridge, creating it (up, with the MTU) if
// missing. Concurrent ADDs may race to create it; the loser finds it.
func ensureBridge(n *NetConf) (netlink.Link, error) {
	l, err := netlink.LinkByName(n.BridgeName)
	if err == nil {
		if _, ok := l.(*netlink.Bridge); !ok {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, "invalid network config",
				fmt.Sprintf("bridge: %q exists and is a %s, not a bridge", n.BridgeName, l.Type()))
		}
	} else {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return nil, fmt.Errorf("looking up bridge %s: %w", n.BridgeName, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.BridgeName
		attrs.MTU = n.MTU
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, syscall.EEXIST) {
			return nil, fmt.Errorf("creating bridge %s: %w", n.BridgeName, err)
		}
		if l, err = netlink.LinkByName(n.BridgeName); err != nil {
			return nil, fmt.Errorf("looking up bridge %s: %w", n.BridgeName, err)
		}
	}
	if n.PromiscMode && l.Attrs().Promisc == 0 {
		if err := netlink.SetPromiscOn(l); err != nil {
			return nil, fmt.Errorf("promiscuous mode on %s: %w", n.BridgeName, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("setting bridge %s up: %w", n.BridgeName, err)
		}
	}
	return l, nil
}

// ipamAdd allocates in-process or through the delegated IPAM plugin.
func (n *NetConf) ipamAdd(args *skel.CmdArgs) (*current.Result, error) {
	if n.inProcessIPAM() {
		return ipam.Allocate(n.IPAMConf, args.ContainerID, args.IfName)
	}
	r, err := cniipam.ExecAdd(n.IPAM.Type, args.StdinData)
	if err != nil {
		return nil, err
	}
	return current.NewResultFromResult(r)
}

func (n *NetConf) ipamDel(args *skel.CmdArgs) error {
	if n.inProcessIPAM() {
		return ipam.Release(n.IPAMConf, args.ContainerID, args.IfName)
	}
	return cniipam.ExecDel(n.IPAM.Type, args.StdinData)
}

// Del undoes Add. It succeeds when nothing is left to undo and does not
// need the container's namespace: "the bridge plugin should delegate the
// DEL action to the IPAM plugin and clean up its own resources even if the
// container network namespace and/or container network interface no
// longer exist".
func Del(args *skel.CmdArgs) error {
	n, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	var errs []error
	if err := n.ipamDel(args); err != nil {
		errs = append(errs, err)
	}
	if err := ip.DelLinkByName(HostVethName(args.ContainerID, args.IfName)); err != nil && !errors.Is(err, ip.ErrLinkNotFound) {
		errs = append(errs, err)
	}
	if n.IPMasq {
		if err := ip.TeardownIPMasqForNetworks(nil, n.Name, args.IfName, args.ContainerID); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// Check verifies the attachment described by prevResult.
func Check(args *skel.CmdArgs) error {
	n, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	prev, err := n.prevResult()
	if err != nil {
		return err
	}
	if prev == nil {
		// "The plugin must consult the prevResult to determine the
		// expected interfaces and addresses."
		return types.NewError(types.ErrInvalidNetworkConfig, "CHECK needs prevResult", "the runtime must include the result of the preceding ADD")
	}
	fail := func(format string, a ...any) error {
		return types.NewError(ErrCheckFailed, "attachment check failed", fmt.Sprintf(format, a...))
	}
	contIdx := -1
	for i, iface := range prev.Interfaces {
		if iface.Name == args.IfName && iface.Sandbox == args.Netns {
			contIdx = i
		}
	}
	if contIdx < 0 {
		return fail("prevResult has no interface %q with sandbox %q", args.IfName, args.Netns)
	}
	var ours []*current.IPConfig
	var want []net.IP
	for _, c := range prev.IPs {
		if c.Interface != nil && *c.Interface == contIdx {
			ours = append(ours, c)
			want = append(want, c.Address.IP)
		}
	}
	if n.inProcessIPAM() {
		err = ipam.Check(n.IPAMConf, args.ContainerID, args.IfName, want)
	} else {
		err = cniipam.ExecCheck(n.IPAM.Type, args.StdinData)
	}
	if err != nil {
		return err
	}
	br, err := netlink.LinkByName(n.BridgeName)
	if err != nil {
		return fail("bridge %s: %v", n.BridgeName, err)
	}
	if br.Attrs().Flags&net.FlagUp == 0 {
		return fail("bridge %s is down", n.BridgeName)
	}
	hostName := HostVethName(args.ContainerID, args.IfName)
	hl, err := netlink.LinkByName(hostName)
	if err != nil {
		return fail("host veth %s: %v", hostName, err)
	}
	if hl.Attrs().MasterIndex != br.Attrs().Index {
		return fail("host veth %s is not a port of bridge %s", hostName, n.BridgeName)
	}
	if hl.Attrs().OperState == netlink.OperDown {
		return fail("host veth %s is down", hostName)
	}
	if n.hairpin() {
		if pi, err := netlink.LinkGetProtinfo(hl); err != nil || !pi.Hairpin {
			return fail("hairpin mode is off on %s (%v)", hostName, err)
		}
	}
	if n.gateway() {
		addrs, err := netlink.AddrList(br, netlink.FAMILY_ALL)
		if err != nil {
			return fail("addresses of %s: %v", n.BridgeName, err)
		}
		for _, c := range ours {
			if c.Gateway == nil {
				continue
			}
			found := false
			for _, a := range addrs {
				found = found || a.IP.Equal(c.Gateway)
			}
			if !found {
				return fail("gateway %s missing on bridge %s", c.Gateway, n.BridgeName)
			}
		}
	}
	netns, err := openNetNS(args.Netns)
	if err != nil {
		return err
	}
	defer netns.Close()
	var routes []*types.Route
	for _, r := range prev.Routes {
		for _, c := range ours {
			if r.GW != nil && (&net.IPNet{IP: c.Address.IP.Mask(c.Address.Mask), Mask: c.Address.Mask}).Contains(r.GW) {
				routes = append(routes, r)
				break
			}
		}
	}
	return netns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(args.IfName)
		if err != nil {
			return fail("%s in %s: %v", args.IfName, args.Netns, err)
		}
		if _, ok := l.(*netlink.Veth); !ok {
			return fail("%s in %s is a %s, not a veth", args.IfName, args.Netns, l.Type())
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			return fail("%s in %s is down", args.IfName, args.Netns)
		}
		if mac := prev.Interfaces[contIdx].Mac; mac != "" && !strings.EqualFold(mac, l.Attrs().HardwareAddr.String()) {
			return fail("%s has MAC %s, prevResult says %s", args.IfName, l.Attrs().HardwareAddr, mac)
		}
		if err := ip.ValidateExpectedInterfaceIPs(args.IfName, ours); err != nil {
			return fail("%v", err)
		}
		if err := ip.ValidateExpectedRoute(routes); err != nil {
			return fail("%v", err)
		}
		return nil
	})
}

// GC removes what belongs to attachments not in cni.dev/valid-attachments:
// their addresses (in-process IPAM, or the delegated IPAM's GC), their
// host veths on the bridge, and their masquerade rules. It goes on after
// an error and reports all of them.
func GC(args *skel.CmdArgs) error {
	n, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	var errs []error
	if n.inProcessIPAM() {
		if err := ipam.GC(n.IPAMConf, n.ValidAttachments); err != nil {
			errs = append(errs, err)
		}
	} else if err := invoke.DelegateGC(context.TODO(), n.IPAM.Type, args.StdinData, nil); err != nil {
		errs = append(errs, err)
	}
	keep := map[string]bool{}
	for _, a := range n.ValidAttachments {
		keep[HostVethName(a.ContainerID, a.IfName)] = true
	}
	if br, err := netlink.LinkByName(n.BridgeName); err == nil {
		links, err := netlink.LinkList()
		if err != nil {
			errs = append(errs, fmt.Errorf("listing links: %w", err))
		}
		for _, l := range links {
			a := l.Attrs()
			if a.MasterIndex != br.Attrs().Index || !strings.HasPrefix(a.Name, HostVethPrefix) || keep[a.Name] || l.Type() != "veth" {
				continue
			}
			if err := netlink.LinkDel(l); err != nil {
				errs = append(errs, fmt.Errorf("deleting stale veth %s: %w", a.Name, err))
			}
		}
	}
	if n.IPMasq {
		if err := ip.GCIPMasqForNetwork(n.Name, n.ValidAttachments); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

// Status reports whether ADD can be served (code 50 when not), and code
// 51 when the bridge is gone while addresses are allocated (existing
// containers have lost connectivity). It asks a delegated IPAM plugin
// for its STATUS too.
func Status(args *skel.CmdArgs) error {
	n, err := ParseConfig(args.StdinData)
	if err != nil {
		return err
	}
	if !n.inProcessIPAM() {
		return cniipam.ExecStatus(n.IPAM.Type, args.StdinData)
	}
	if _, err := netlink.LinkByName(n.BridgeName); err != nil {
		if held, aerr := ipam.Allocated(n.IPAMConf); aerr == nil && len(held) > 0 {
			return types.NewError(types.ErrLimitedConnectivity, "bridge missing",
				fmt.Sprintf("bridge %s is gone while %d addresses are allocated", n.BridgeName, len(held)))
		}
	}
	return ipam.Status(n.IPAMConf)
}
