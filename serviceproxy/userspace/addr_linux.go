package userspace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// AddrProto is the address protocol (IFA_PROTO, `ip address show proto`)
// that marks the loopback addresses this package added, so that Cleanup
// finds them again in a later process.
const AddrProto = 0x53

const ifaProto = 0xb // IFA_PROTO, Linux ≥ 5.18

var nlSeq atomic.Uint32

// addrRequest adds (or deletes) addr as a host address (/32, /128) on the
// interface, tagged with AddrProto. It runs in the caller's namespace.
func addrRequest(add bool, ifindex int, addr netip.Addr) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink bind: %w", err)
	}
	family, bits := unix.AF_INET, 32
	if addr.Is6() {
		family, bits = unix.AF_INET6, 128
	}
	raw := addr.AsSlice()
	var attrs []byte
	attrs = appendAttr(attrs, unix.IFA_LOCAL, raw)
	attrs = appendAttr(attrs, unix.IFA_ADDRESS, raw)
	if add {
		attrs = appendAttr(attrs, ifaProto, []byte{AddrProto})
		flags := make([]byte, 4)
		binary.NativeEndian.PutUint32(flags, unix.IFA_F_NODAD)
		attrs = appendAttr(attrs, unix.IFA_FLAGS, flags)
	}
	typ, nlflags := uint16(unix.RTM_DELADDR), uint16(unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	if add {
		typ = unix.RTM_NEWADDR
		nlflags |= unix.NLM_F_CREATE | unix.NLM_F_EXCL
	}
	seq := nlSeq.Add(1)
	msg := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfAddrmsg, unix.SizeofNlMsghdr+unix.SizeofIfAddrmsg+len(attrs))
	msg = append(msg, attrs...)
	binary.NativeEndian.PutUint32(msg[0:4], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:6], typ)
	binary.NativeEndian.PutUint16(msg[6:8], nlflags)
	binary.NativeEndian.PutUint32(msg[8:12], seq)
	ifa := msg[unix.SizeofNlMsghdr:]
	ifa[0] = byte(family)
	ifa[1] = byte(bits)
	ifa[2] = 0                      // flags
	ifa[3] = unix.RT_SCOPE_UNIVERSE // as kube-proxy's IPVS mode binds service IPs to kube-ipvs0
	binary.NativeEndian.PutUint32(ifa[4:8], uint32(ifindex))
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("netlink send: %w", err)
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return fmt.Errorf("netlink receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return fmt.Errorf("netlink parse: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq || m.Header.Type != unix.NLMSG_ERROR {
				continue
			}
			if len(m.Data) < 4 {
				return errors.New("netlink: short error message")
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				return unix.Errno(-code)
			}
			return nil
		}
	}
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	hdr := make([]byte, unix.SizeofRtAttr)
	binary.NativeEndian.PutUint16(hdr[0:2], uint16(l))
	binary.NativeEndian.PutUint16(hdr[2:4], typ)
	b = append(b, hdr...)
	b = append(b, data...)
	for len(b)%unix.NLMSG_ALIGNTO != 0 {
		b = append(b, 0)
	}
	return b
}

// taggedAddrs lists the addresses on the interface that carry AddrProto.
func taggedAddrs(ifindex int) ([]netip.Addr, error) {
	rib, err := syscall.NetlinkRIB(unix.RTM_GETADDR, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("netlink dump addresses: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("netlink parse: %w", err)
	}
	var out []netip.Addr
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
			continue
		}
		if int(binary.NativeEndian.Uint32(m.Data[4:8])) != ifindex {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			continue
		}
		var addr netip.Addr
		tagged := false
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_LOCAL, unix.IFA_ADDRESS:
				if ip, ok := netip.AddrFromSlice(a.Value); ok && !addr.IsValid() {
					addr = ip
				}
			case ifaProto:
				tagged = len(a.Value) == 1 && a.Value[0] == AddrProto
			}
		}
		if tagged && addr.IsValid() {
			out = append(out, addr)
		}
	}
	return out, nil
}

func interfaceIndex(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return 0, fmt.Errorf("interface %s: %w", name, err)
	}
	return ifi.Index, nil
}
