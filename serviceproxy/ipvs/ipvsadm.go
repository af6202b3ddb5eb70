package ipvs

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// ipvsService is an IPVS service with its destinations, as the kernel
// holds it or as a sync wants it, for printing in "ipvsadm -S -n" form.
type ipvsService struct {
	key       vsKey
	scheduler string
	flags     uint32 // without flagHashed
	timeout   uint32
	dests     []ipvsDest
}

type ipvsDest struct {
	key    rsKey
	weight int
}

// servicesFromModel lists the desired services, every real server with
// weight 1.
func servicesFromModel(m *model) []ipvsService {
	out := make([]ipvsService, 0, len(m.vs))
	for _, v := range m.sortedVS() {
		s := ipvsService{key: v.key, scheduler: v.scheduler, flags: v.flags, timeout: v.timeout}
		for _, r := range v.reals {
			s.dests = append(s.dests, ipvsDest{key: r, weight: 1})
		}
		out = append(out, s)
	}
	return out
}

// servicesFromKernel reads every (non-fwmark) IPVS service of the
// kernel handle's namespace with its destinations.
func servicesFromKernel(k kernel) ([]ipvsService, error) {
	svcs, err := k.GetServices()
	if err != nil {
		return nil, fmt.Errorf("listing IPVS services: %w", err)
	}
	var out []ipvsService
	for _, s := range svcs {
		if s.FWMark != 0 {
			continue
		}
		v := vsFromKernel(s)
		is := ipvsService{key: v.key, scheduler: v.scheduler, flags: v.flags, timeout: v.timeout}
		dests, err := k.GetDestinations(s)
		if err != nil {
			return nil, fmt.Errorf("listing destinations of %s: %w", v.key, err)
		}
		for _, d := range dests {
			is.dests = append(is.dests, ipvsDest{key: rsKeyOf(d), weight: d.Weight})
		}
		sort.Slice(is.dests, func(i, j int) bool { return is.dests[i].key.less(is.dests[j].key) })
		out = append(out, is)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key.less(out[j].key) })
	return out, nil
}

// ipvsadmService is the service part of an ipvsadm rule ("-t ADDR:PORT",
// "-u ...", "--sctp-service ...").
func ipvsadmService(k vsKey) string {
	sw := "-t"
	switch k.Proto {
	case 17:
		sw = "-u"
	case 132:
		sw = "--sctp-service"
	}
	return sw + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// renderIPVSAdm prints services as "ipvsadm -S -n" does: "-A" per
// service (scheduler, "-b" scheduler flags, "-p timeout" when
// persistent), "-a" per destination ("-m": masquerading, the forwarding
// method kube-proxy uses; "-w weight"). Services and destinations are
// sorted by address and port (ipvsadm prints the kernel's hash order).
func renderIPVSAdm(svcs []ipvsService) []byte {
	var b strings.Builder
	for _, s := range svcs {
		name := ipvsadmService(s.key)
		fmt.Fprintf(&b, "-A %s -s %s", name, s.scheduler)
		if s.flags&flagSourceHash != 0 {
			fmt.Fprintf(&b, " -b %s-fallback", s.scheduler)
		}
		if s.flags&flagPersistent != 0 {
			fmt.Fprintf(&b, " -p %d", s.timeout)
		}
		b.WriteByte('\n')
		for _, d := range s.dests {
			fmt.Fprintf(&b, "-a %s -r %s -m -w %d\n", name, d.key, d.weight)
		}
	}
	return []byte(b.String())
}

// toIPVSService is upstream's toIPVSService: the moby/ipvs service of a
// virtual server (netmask /32 or /128).
func toIPVSService(v *virtualServer) *libipvs.Service {
	s := keyService(v.key)
	s.SchedName = v.scheduler
	s.Flags = v.flags
	s.Timeout = v.timeout
	return s
}

// keyService is the moby/ipvs service identifying key (enough to look
// it up, or to list or delete its destinations).
func keyService(k vsKey) *libipvs.Service {
	s := &libipvs.Service{
		Address:  net.IP(k.Addr.AsSlice()),
		Protocol: k.Proto,
		Port:     k.Port,
	}
	if k.Addr.Is4() {
		s.AddressFamily = unix.AF_INET
		s.Netmask = 0xffffffff
	} else {
		s.AddressFamily = unix.AF_INET6
		s.Netmask = 128
	}
	return s
}

// vsFromKernel is upstream's toVirtualServer: the flags lose
// IP_VS_SVC_F_HASHED, "since every service is hashed into the service
// table".
func vsFromKernel(s *libipvs.Service) *virtualServer {
	addr, _ := netip.AddrFromSlice(s.Address)
	if !addr.IsValid() {
		if s.AddressFamily == unix.AF_INET6 {
			addr = netip.IPv6Unspecified()
		} else {
			addr = netip.IPv4Unspecified()
		}
	}
	return &virtualServer{
		key:       vsKey{Proto: s.Protocol, Addr: addr.Unmap(), Port: s.Port},
		scheduler: s.SchedName,
		flags:     s.Flags &^ flagHashed,
		timeout:   s.Timeout,
	}
}

func rsKeyOf(d *libipvs.Destination) rsKey {
	addr, _ := netip.AddrFromSlice(d.Address)
	return rsKey{Addr: addr.Unmap(), Port: d.Port}
}

func toDestination(r rsKey, weight int) *libipvs.Destination {
	d := &libipvs.Destination{Address: net.IP(r.Addr.AsSlice()), Port: r.Port, Weight: weight}
	if r.Addr.Is4() {
		d.AddressFamily = unix.AF_INET
	} else {
		d.AddressFamily = unix.AF_INET6
	}
	return d
}
