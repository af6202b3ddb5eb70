package sandbox

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// DefaultLoopbackCIDR is the pod range of a Loopback sandbox when none is
// given. On Linux the whole of 127.0.0.0/8 is routed to the lo interface
// (the kernel's "local 127.0.0.0/8 dev lo" route), so a process may bind
// any of these addresses without root and without adding an address.
var DefaultLoopbackCIDR = netip.MustParsePrefix("127.244.0.0/16")

// Loopback is the sandbox for running without root: pods share the host's
// network namespace, and each gets its own address from a range inside
// 127.0.0.0/8, so that two pods may both listen on port 8080. The node's
// own address (status.hostIP, the Node's InternalIP) is the range's first
// address (network+1); pods get addresses from network+2 upward, handed
// out round-robin like CNI's host-local IPAM so that a released address is
// not reused at once. The broadcast address of the range is never used.
// Pods with spec.hostNetwork get the node's address.
//
// Nothing isolates pods from each other or from the host: a process may
// still bind 0.0.0.0 or another pod's address. That is the price of
// needing no privileges; the netns sandbox isolates.
type Loopback struct {
	prefix netip.Prefix
	host   netip.Addr
	first  netip.Addr // network+2
	last   netip.Addr // broadcast-1

	mu     sync.Mutex
	byUID  map[types.UID]netip.Addr
	inUse  map[netip.Addr]types.UID
	cursor netip.Addr // last address handed out
}

var _ Sandbox = (*Loopback)(nil)

// NewLoopback returns a loopback sandbox handing out addresses from
// podCIDR; the zero Prefix means DefaultLoopbackCIDR. The range must be
// IPv4, inside 127.0.0.0/8, and hold at least one pod address (/30 or
// larger).
func NewLoopback(podCIDR netip.Prefix) (*Loopback, error) {
	if !podCIDR.IsValid() {
		podCIDR = DefaultLoopbackCIDR
	}
	podCIDR = podCIDR.Masked()
	if !podCIDR.Addr().Is4() {
		return nil, fmt.Errorf("loopback sandbox: pod CIDR %s: must be an IPv4 range inside 127.0.0.0/8 (IPv6 has a single loopback address)", podCIDR)
	}
	if !netip.MustParsePrefix("127.0.0.0/8").Contains(podCIDR.Addr()) || podCIDR.Bits() < 8 {
		return nil, fmt.Errorf("loopback sandbox: pod CIDR %s: must lie inside 127.0.0.0/8, the range Linux routes to lo", podCIDR)
	}
	if podCIDR.Bits() > 30 {
		return nil, fmt.Errorf("loopback sandbox: pod CIDR %s: too small, a /30 or larger is needed (network+1 is the node, pods start at network+2)", podCIDR)
	}
	host := podCIDR.Addr().Next()
	first := host.Next()
	last := lastAddr(podCIDR).Prev()
	return &Loopback{
		prefix: podCIDR,
		host:   host,
		first:  first,
		last:   last,
		byUID:  map[types.UID]netip.Addr{},
		inUse:  map[netip.Addr]types.UID{},
		cursor: first.Prev(),
	}, nil
}

// lastAddr is the broadcast address of an IPv4 prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := 32 - p.Bits()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Name is "loopback".
func (l *Loopback) Name() string { return "loopback" }

// PodCIDR is the range pod addresses come from.
func (l *Loopback) PodCIDR() netip.Prefix { return l.prefix }

// HostIP is the node's address: the range's network+1.
func (l *Loopback) HostIP() netip.Addr { return l.host }

// Setup hands the pod an address, or returns the one it already has.
func (l *Loopback) Setup(ctx context.Context, pod *corev1.Pod) (Network, error) {
	if pod == nil {
		return Network{}, fmt.Errorf("loopback sandbox: no pod")
	}
	if pod.Spec.HostNetwork {
		return Network{IPs: []netip.Addr{l.host}, HostIP: l.host}, nil
	}
	if pod.UID == "" {
		return Network{}, fmt.Errorf("loopback sandbox: pod %s/%s has no uid", pod.Namespace, pod.Name)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.byUID[pod.UID]; ok {
		return Network{IPs: []netip.Addr{a}, HostIP: l.host}, nil
	}
	// Round-robin from the address after the last one handed out.
	size := 1<<(32-l.prefix.Bits()) - 3 // minus network, node and broadcast
	a := l.cursor
	found := false
	for i := 0; i < size; i++ {
		a = a.Next()
		if !a.IsValid() || a.Compare(l.last) > 0 || a.Compare(l.first) < 0 {
			a = l.first
		}
		if _, taken := l.inUse[a]; !taken {
			found = true
			break
		}
	}
	if !found {
		return Network{}, fmt.Errorf("loopback sandbox: no free address left in %s for pod %s/%s (%d in use)", l.prefix, pod.Namespace, pod.Name, len(l.inUse))
	}
	l.cursor = a
	l.byUID[pod.UID] = a
	l.inUse[a] = pod.UID
	return Network{IPs: []netip.Addr{a}, HostIP: l.host}, nil
}

// Prepare does nothing: a loopback pod's processes run in the host's
// network namespace and find their address in SWITCHBOARD_POD_IP and the
// downward API.
func (l *Loopback) Prepare(pod *corev1.Pod, cmd *exec.Cmd) error { return nil }

// Teardown releases the pod's address.
func (l *Loopback) Teardown(ctx context.Context, pod *corev1.Pod) error {
	if pod == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.byUID[pod.UID]; ok {
		delete(l.byUID, pod.UID)
		delete(l.inUse, a)
	}
	return nil
}
