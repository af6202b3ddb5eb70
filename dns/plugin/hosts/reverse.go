package hosts

import (
	"net"
	"net/netip"
	"strings"
)

// netipKey is an address as a map key: IPv4-mapped IPv6 addresses are
// IPv4 (as net.IP.String() makes them in CoreDNS), zones dropped.
type netipKey = netip.Addr

func keyOf(ip net.IP) netipKey {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

const (
	ip4arpa = ".in-addr.arpa."
	ip6arpa = ".ip6.arpa."
)

// addrFromReverse turns a reverse name (lower case) into its address, as
// CoreDNS's dnsutil.ExtractAddressFromReverse does: "54.119.58.176.in-addr.arpa."
// is 176.58.119.54. ok is false when the name is not a reverse name of a
// whole address. The usual forms are read without allocating; others go
// the CoreDNS way.
func addrFromReverse(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ip4arpa):
		s := name[:len(name)-len(ip4arpa)]
		var b [4]byte
		i := 3
		for {
			dot := strings.IndexByte(s, '.')
			label := s
			if dot >= 0 {
				label = s[:dot]
			}
			if i < 0 {
				return netip.Addr{}, false
			}
			v, ok := octet(label)
			if !ok {
				return slowReverse(name)
			}
			b[i] = v
			i--
			if dot < 0 {
				break
			}
			s = s[dot+1:]
		}
		if i != -1 {
			return netip.Addr{}, false
		}
		return netip.AddrFrom4(b), true
	case strings.HasSuffix(name, ip6arpa):
		s := name[:len(name)-len(ip6arpa)]
		if len(s) != 63 {
			return slowReverse(name)
		}
		var b [16]byte
		for n := 0; n < 32; n++ {
			c := s[2*n]
			if n < 31 && s[2*n+1] != '.' {
				return slowReverse(name)
			}
			v, ok := nibble(c)
			if !ok {
				return slowReverse(name)
			}
			// nibble n counts from the lowest: byte 15-n/2.
			pos := 15 - n/2
			if n%2 == 0 {
				b[pos] |= v
			} else {
				b[pos] |= v << 4
			}
		}
		return netip.AddrFrom16(b).Unmap(), true
	}
	return netip.Addr{}, false
}

func octet(s string) (byte, bool) {
	if len(s) == 0 || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	if v > 255 {
		return 0, false
	}
	return byte(v), true
}

func nibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// slowReverse is CoreDNS's ExtractAddressFromReverse followed by
// net.ParseIP, for the forms the fast path does not read.
func slowReverse(name string) (netip.Addr, bool) {
	var s string
	v6 := false
	switch {
	case strings.HasSuffix(name, ip4arpa):
		s = strings.TrimSuffix(name, ip4arpa)
	case strings.HasSuffix(name, ip6arpa):
		s = strings.TrimSuffix(name, ip6arpa)
		v6 = true
	default:
		return netip.Addr{}, false
	}
	labels := strings.Split(s, ".")
	for i := range len(labels) / 2 {
		j := len(labels) - i - 1
		labels[i], labels[j] = labels[j], labels[i]
	}
	var ip net.IP
	if !v6 {
		ip = net.ParseIP(strings.Join(labels, ".")).To4()
	} else {
		var groups []string
		for i := range len(labels) / 4 {
			groups = append(groups, strings.Join(labels[i*4:i*4+4], ""))
		}
		ip = net.ParseIP(strings.Join(groups, ":")).To16()
	}
	if ip == nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
