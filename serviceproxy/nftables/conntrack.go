package nftables

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// Stale UDP conntrack entries are deleted through netlink with
// github.com/vishvananda/netlink (the library kube-proxy's
// pkg/proxy/conntrack uses): one dump of the table per family and a delete
// per matching flow, instead of one `conntrack -D` process per filter.
// The rules are kube-proxy's pkg/proxy/conntrack/cleanup.go:
//
//   - "After a UDP endpoint is removed we must flush any conntrack entries
//     for it so that if the same client keeps sending, the packets will get
//     routed to a new endpoint": entries to the service's cluster, external
//     and load-balancer IPs (and its NodePort) DNATed to the endpoint.
//   - "When a service has no endpoints and we drop traffic to it, conntrack
//     may create "black hole" entries for that IP+port. When the service
//     gets endpoints we need to delete those entries": entries to the IPs
//     (and NodePort) of UDP services that got their first endpoint.
//   - Entries to the cluster IPs of deleted UDP services.

type ctFilter struct {
	origDst  netip.Addr // zero: any
	replySrc netip.Addr // zero: any
	dport    uint16     // zero: any
}

func (c ctFilter) build() (*netlink.ConntrackFilter, error) {
	f := &netlink.ConntrackFilter{}
	if err := f.AddProtocol(unix.IPPROTO_UDP); err != nil {
		return nil, err
	}
	if c.origDst.IsValid() {
		if err := f.AddIP(netlink.ConntrackOrigDstIP, net.IP(c.origDst.AsSlice())); err != nil {
			return nil, err
		}
	}
	if c.replySrc.IsValid() {
		if err := f.AddIP(netlink.ConntrackReplySrcIP, net.IP(c.replySrc.AsSlice())); err != nil {
			return nil, err
		}
	}
	if c.dport != 0 {
		if err := f.AddPort(netlink.ConntrackOrigDstPort, c.dport); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// staleFilters computes the conntrack filters of one sync, by family.
func staleFilters(state *serviceproxy.State) map[*family][]ctFilter {
	out := map[*family][]ctFilter{}
	seen := map[ctFilter]bool{}
	put := func(a netip.Addr, c ctFilter) {
		f := fam4
		if !a.Unmap().Is4() {
			f = fam6
		}
		if !seen[c] {
			seen[c] = true
			out[f] = append(out[f], c)
		}
	}
	svcIPs := func(svc *serviceproxy.ServicePort) []netip.Addr {
		var ips []netip.Addr
		ips = append(ips, svc.ClusterIPs...)
		ips = append(ips, svc.ExternalIPs...)
		return append(ips, svc.LoadBalancerVIPs...)
	}
	lookup := func(n serviceproxy.ServicePortName) *serviceproxy.ServicePort {
		if s := state.Services[n]; s != nil {
			return s
		}
		return state.RemovedServices[n]
	}
	for n, eps := range state.StaleUDPEndpoints {
		svc := lookup(n)
		if svc == nil || svc.Protocol != corev1.ProtocolUDP {
			continue
		}
		for _, e := range eps {
			if e == nil || !e.IP.IsValid() {
				continue
			}
			ep := e.IP.Unmap()
			if svc.NodePort > 0 && svc.NodePort < 65536 {
				put(ep, ctFilter{replySrc: ep, dport: uint16(svc.NodePort)})
			}
			for _, ip := range svcIPs(svc) {
				ip = ip.Unmap()
				if ip.Is4() == ep.Is4() {
					put(ep, ctFilter{origDst: ip, replySrc: ep})
				}
			}
		}
	}
	for _, n := range state.StaleUDPServices {
		svc := state.Services[n]
		if svc == nil || svc.Protocol != corev1.ProtocolUDP {
			continue
		}
		for _, ip := range svcIPs(svc) {
			put(ip, ctFilter{origDst: ip.Unmap()})
		}
		if svc.NodePort > 0 && svc.NodePort < 65536 {
			for _, ip := range svc.ClusterIPs {
				put(ip, ctFilter{dport: uint16(svc.NodePort)})
			}
		}
	}
	for _, n := range state.Removed {
		svc := state.RemovedServices[n]
		if svc == nil || svc.Protocol != corev1.ProtocolUDP {
			continue
		}
		for _, ip := range svc.ClusterIPs {
			put(ip, ctFilter{origDst: ip.Unmap()})
		}
	}
	return out
}

// flushConntrack deletes the entries matching the filters; it returns how
// many it deleted.
func flushConntrack(nsFd int, filters map[*family][]ctFilter) (uint, error) {
	if len(filters) == 0 {
		return 0, nil
	}
	var h *netlink.Handle
	var err error
	if nsFd > 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(nsFd), unix.NETLINK_NETFILTER)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_NETFILTER)
	}
	if err != nil {
		return 0, fmt.Errorf("conntrack netlink: %w", err)
	}
	defer h.Close()
	var total uint
	for _, f := range []*family{fam4, fam6} {
		fs := filters[f]
		if len(fs) == 0 {
			continue
		}
		custom := make([]netlink.CustomConntrackFilter, 0, len(fs))
		for _, c := range fs {
			nf, err := c.build()
			if err != nil {
				return total, err
			}
			custom = append(custom, nf)
		}
		fam := netlink.InetFamily(unix.AF_INET)
		if f == fam6 {
			fam = netlink.InetFamily(unix.AF_INET6)
		}
		n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, fam, custom...)
		total += n
		if err != nil {
			return total, fmt.Errorf("deleting %s conntrack entries: %w", f.name, err)
		}
	}
	return total, nil
}
