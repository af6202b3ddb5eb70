package ipvs

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"

	libipvs "github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNoIPVS is the reason Sync fails, and the kernel tests skip, on a
// kernel without IPVS: no "IPVS" generic netlink family (the ip_vs module
// is neither built in nor loadable).
var ErrNoIPVS = errors.New("kernel has no IPVS (ip_vs) module")

// ErrNoDummy is the reason Sync fails, and the kernel tests skip, on a
// kernel that cannot create the dummy interface kube-ipvs0 the service
// addresses are bound to.
var ErrNoDummy = errors.New("no dummy link type")

// kernel is what a sync needs of the kernel besides ipset(8) and
// iptables-restore: IPVS through netlink (github.com/moby/ipvs, the
// library kube-proxy uses) and the dummy interface. One kernel value acts
// on the network namespace it was opened in. Tests substitute a fake.
type kernel interface {
	GetServices() ([]*libipvs.Service, error)
	GetDestinations(*libipvs.Service) ([]*libipvs.Destination, error)
	NewService(*libipvs.Service) error
	UpdateService(*libipvs.Service) error
	DelService(*libipvs.Service) error
	NewDestination(*libipvs.Service, *libipvs.Destination) error
	UpdateDestination(*libipvs.Service, *libipvs.Destination) error
	DelDestination(*libipvs.Service, *libipvs.Destination) error
	Flush() error
	SetConfig(*libipvs.Config) error

	// EnsureDummy creates the dummy link when it does not exist. The
	// error wraps ErrNoDummy when the kernel has no dummy link type.
	EnsureDummy(name string) error
	// DeleteDummy removes the link; nil when it does not exist.
	DeleteDummy(name string) error
	// LinkAddrs lists the addresses on the link (nil when it does not
	// exist).
	LinkAddrs(name string) ([]netip.Addr, error)
	AddAddr(name string, a netip.Addr) error
	DelAddr(name string, a netip.Addr) error
	// HostAddrs lists the namespace's addresses except those on the
	// named link (the node's addresses: upstream's
	// GetAllLocalAddressesExcept(kube-ipvs0)), without loopback and IPv6
	// link-local addresses.
	HostAddrs(except string) ([]netip.Addr, error)
	// Sysctl sets a sysctl of the namespace ("net/ipv4/vs/conntrack").
	Sysctl(name, value string) error
	Close()
}

// checkIPVS looks the IPVS generic netlink family up in the calling
// thread's network namespace (the kernel loads ip_vs on demand when it
// can). It is what moby/ipvs' setup does, without its modprobe.
func checkIPVS() error {
	if _, err := netlink.GenlFamilyGet("IPVS"); err != nil {
		return fmt.Errorf("%w (generic netlink family IPVS: %v)", ErrNoIPVS, err)
	}
	return nil
}

// openKernel opens IPVS and netlink handles in the calling thread's
// network namespace. It fails with ErrNoIPVS (before changing anything)
// when the kernel has no IPVS.
func openKernel() (kernel, error) {
	if err := checkIPVS(); err != nil {
		return nil, err
	}
	ih, err := libipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("ipvs netlink handle: %w", err)
	}
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		ih.Close()
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return &realKernel{Handle: ih, nl: nh}, nil
}

// openLinks opens only the netlink part (for Cleanup on a kernel without
// IPVS): the IPVS methods fail with ErrNoIPVS.
func openLinks() (kernel, error) {
	nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return &realKernel{nl: nh}, nil
}

type realKernel struct {
	*libipvs.Handle // nil without IPVS
	nl              *netlink.Handle
}

func (k *realKernel) ipvs() (*libipvs.Handle, error) {
	if k.Handle == nil {
		return nil, ErrNoIPVS
	}
	return k.Handle, nil
}

func (k *realKernel) Flush() error {
	h, err := k.ipvs()
	if err != nil {
		return err
	}
	return h.Flush()
}

func (k *realKernel) Close() {
	if k.Handle != nil {
		k.Handle.Close()
	}
	k.nl.Close()
}

func (k *realKernel) link(name string) (netlink.Link, error) {
	l, err := k.nl.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

func (k *realKernel) EnsureDummy(name string) error {
	l, err := k.link(name)
	if err != nil {
		return err
	}
	if l != nil {
		if l.Type() != "dummy" {
			return fmt.Errorf("link %s exists and is a %s link, not a dummy one", name, l.Type())
		}
		return nil
	}
	err = k.nl.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: name}})
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("%w: creating %s: %v", ErrNoDummy, name, err)
		}
		return fmt.Errorf("creating dummy link %s: %w", name, err)
	}
	return nil
}

func (k *realKernel) DeleteDummy(name string) error {
	l, err := k.link(name)
	if err != nil || l == nil {
		return err
	}
	if l.Type() != "dummy" {
		return fmt.Errorf("link %s is a %s link, not the dummy one this mode creates: left alone", name, l.Type())
	}
	if err := k.nl.LinkDel(l); err != nil {
		return fmt.Errorf("deleting link %s: %w", name, err)
	}
	return nil
}

func (k *realKernel) LinkAddrs(name string) ([]netip.Addr, error) {
	l, err := k.link(name)
	if err != nil || l == nil {
		return nil, err
	}
	list, err := k.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	out := make([]netip.Addr, 0, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

func hostIPNet(a netip.Addr) *net.IPNet {
	return netlink.NewIPNet(net.IP(a.AsSlice()))
}

func (k *realKernel) AddAddr(name string, a netip.Addr) error {
	l, err := k.link(name)
	if err != nil {
		return err
	}
	if l == nil {
		return fmt.Errorf("binding %s: link %s does not exist", a, name)
	}
	addr := &netlink.Addr{IPNet: hostIPNet(a)}
	if a.Is6() {
		// A dummy link is down: skip duplicate address detection so that
		// the address is usable at once.
		addr.Flags = unix.IFA_F_NODAD
	}
	if err := k.nl.AddrAdd(l, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("binding %s to %s: %w", a, name, err)
	}
	return nil
}

func (k *realKernel) DelAddr(name string, a netip.Addr) error {
	l, err := k.link(name)
	if err != nil || l == nil {
		return err
	}
	if err := k.nl.AddrDel(l, &netlink.Addr{IPNet: hostIPNet(a)}); err != nil &&
		!errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("unbinding %s from %s: %w", a, name, err)
	}
	return nil
}

func (k *realKernel) HostAddrs(except string) ([]netip.Addr, error) {
	skip := -1
	l, err := k.link(except)
	if err != nil {
		return nil, err
	}
	if l != nil {
		skip = l.Attrs().Index
	}
	list, err := k.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	return filterHostAddrs(list, skip), nil
}

// filterHostAddrs is upstream's isValidForSet on the addresses not on
// link skip: no loopback, no IPv6 link-local.
func filterHostAddrs(list []netlink.Addr, skip int) []netip.Addr {
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, a := range list {
		if a.LinkIndex == skip {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if ip.IsLoopback() || ip.Is6() && ip.IsLinkLocalUnicast() || seen[ip] {
			continue
		}
		seen[ip] = true
		out = append(out, ip)
	}
	return out
}

func (k *realKernel) Sysctl(name, value string) error { return ensureSysctl(name, value) }

// ensureSysctl sets a sysctl of the calling thread's network namespace
// (name as "net/ipv4/ip_forward") when it has another value.
func ensureSysctl(name, value string) error {
	path := "/proc/sys/" + name
	cur, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", strings.ReplaceAll(name, "/", "."), err)
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(name, "/", "."), value, err)
	}
	return nil
}

// Probe tells whether this kernel can run the IPVS mode: it creates a
// throwaway network namespace (on a thread of its own, which ends with
// the namespace; nothing is mounted, so "ip netns list" never shows it),
// looks up the IPVS generic netlink family and creates a dummy link
// there. The error wraps ErrNoIPVS and/or ErrNoDummy (both are
// checked), naming what is missing. It needs CAP_SYS_ADMIN and CAP_NET_ADMIN (root).
func Probe() error {
	errc := make(chan error, 1)
	go func() {
		// The thread is never unlocked: it exits with this goroutine,
		// taking the namespace with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("ipvs probe: creating a network namespace: %w", err)
			return
		}
		var errs []error
		if err := checkIPVS(); err != nil {
			errs = append(errs, err)
		}
		nh, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			errc <- errors.Join(append(errs, fmt.Errorf("ipvs probe: netlink handle: %w", err))...)
			return
		}
		defer nh.Close()
		err = nh.LinkAdd(&netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: DummyDevice}})
		switch {
		case errors.Is(err, unix.EOPNOTSUPP):
			errs = append(errs, fmt.Errorf("%w: creating %s: %v", ErrNoDummy, DummyDevice, err))
		case err != nil:
			errs = append(errs, fmt.Errorf("ipvs probe: creating dummy link %s: %w", DummyDevice, err))
		}
		errc <- errors.Join(errs...)
	}()
	return <-errc
}
