package kubernetes

import (
	"net/netip"
	"strings"
)

// reverseAddr is CoreDNS's dnsutil.ExtractAddressFromReverse without the
// allocations: d.c.b.a.in-addr.arpa. is a.b.c.d when there are exactly four
// decimal labels that form an address; an ip6.arpa. name must have 32
// one-digit hexadecimal labels. An IPv4-mapped IPv6 address is returned as
// IPv4, as net.IP.String prints it.
func reverseAddr(name string) (netip.Addr, bool) {
	switch {
	case strings.HasSuffix(name, ".in-addr.arpa."):
		return parseReverse4(name[:len(name)-len(".in-addr.arpa.")])
	case strings.HasSuffix(name, ".ip6.arpa."):
		return parseReverse6(name[:len(name)-len(".ip6.arpa.")])
	}
	return netip.Addr{}, false
}

// parseReverse4 reads the labels before .in-addr.arpa.: d.c.b.a is
// a.b.c.d.
func parseReverse4(s string) (netip.Addr, bool) {
	var b [4]byte
	field := 3
	n, digits := 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || field < 0 {
				return netip.Addr{}, false
			}
			b[field] = byte(n)
			field--
			n, digits = 0, 0
			continue
		}
		c := s[i]
		if c < '0' || c > '9' || (digits == 1 && n == 0) {
			return netip.Addr{}, false
		}
		n = n*10 + int(c-'0')
		digits++
		if n > 255 {
			return netip.Addr{}, false
		}
	}
	if field != -1 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// parseReverse6 reads the 32 nibble labels before .ip6.arpa. (hexadecimal
// digits in either case).
func parseReverse6(s string) (netip.Addr, bool) {
	if len(s) != 63 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for i := 0; i < 32; i++ {
		c := s[2*i]
		if i < 31 && s[2*i+1] != '.' {
			return netip.Addr{}, false
		}
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return netip.Addr{}, false
		}
		nib := 31 - i // the first label is the last nibble
		if nib%2 == 0 {
			b[nib/2] |= v << 4
		} else {
			b[nib/2] |= v
		}
	}
	return netip.AddrFrom16(b).Unmap(), true
}

// ptrTargets is CoreDNS's serviceRecordForIP: the first service (by
// namespace/name) whose cluster IPs include ip, else every ready endpoint
// with that address, named in the primary zone. With `namespaces` set,
// only those namespaces count.
func (k *Kubernetes) ptrTargets(ip netip.Addr, dst []string) []string {
	key := ipKeyOf(ip)
	if keys, ok := k.ix().svcByIP.get(key); ok {
		for _, sk := range keys {
			if len(k.namespaces) > 0 && !k.exposed(sk[strings.IndexByte(sk, '.')+1:]) {
				continue
			}
			return append(dst, k.inPrimary(sk, ""))
		}
	}
	refs, ok := k.ix().epByIP.get(key)
	if !ok {
		return dst
	}
	for i := 0; i < refs.len(); i++ {
		r := refs.at(i)
		if len(k.namespaces) > 0 && !k.exposed(r.slice.ns) {
			continue
		}
		t := k.inPrimary(r.slice.svcKey, r.slice.addrs[r.i].host)
		dup := false
		for _, d := range dst {
			if d == t {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, t)
		}
	}
	return dst
}

// inPrimary names [host.]<service>.<ns>.svc.<primary zone> (svcKey is
// <service>.<ns>) in one allocation.
func (k *Kubernetes) inPrimary(svcKey, host string) string {
	zone := k.primary
	if zone == "." {
		zone = ""
	}
	if host == "" {
		return svcKey + ".svc." + zone
	}
	return host + "." + svcKey + ".svc." + zone
}
