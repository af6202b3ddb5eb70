package cache

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// transportPrefix splits a "scheme://" prefix off s as CoreDNS's
// plugin/pkg/parse.Transport does; "dns" when there is none.
func transportPrefix(s string) (trans, addr string) {
	for _, t := range []string{"tls", "dns", "quic", "grpc", "h3", "https", "unix"} {
		if strings.HasPrefix(s, t+"://") {
			return t, s[len(t)+3:]
		}
	}
	return "dns", s
}

// normalizeExact returns the zone(s) written as s: lower case, fully
// qualified, with a transport prefix and a :port removed, and a CIDR
// (10.0.0.0/8, fd00::/7) turned into its reverse zones, as CoreDNS's
// plugin.Host(s).NormalizeExact does. Nil when s is not a domain name.
func normalizeExact(s string) []string {
	_, s = transportPrefix(s)
	hosts, err := splitHostPort(s)
	if err != nil {
		return nil
	}
	for i := range hosts {
		hosts[i] = strings.ToLower(dns.Fqdn(hosts[i]))
	}
	return hosts
}

// splitHostPort is CoreDNS's plugin.SplitHostPort without the port.
func splitHostPort(s string) ([]string, error) {
	colon := strings.LastIndex(s, ":")
	if colon == len(s)-1 {
		return nil, fmt.Errorf("expecting data after last colon: %q", s)
	}
	if colon != -1 {
		if _, err := strconv.Atoi(s[colon+1:]); err == nil {
			s = s[:colon]
		}
	}
	if len(s) > 255 {
		return nil, fmt.Errorf("specified zone is too long: %d > 255", len(s))
	}
	if _, ok := dns.IsDomainName(s); !ok {
		return nil, fmt.Errorf("zone is not a valid domain name: %s", s)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return []string{s}, nil
	}
	if s[0] == ':' || (s[0] == '0' && strings.Contains(s, ":")) {
		return nil, fmt.Errorf("invalid CIDR %s", s)
	}
	return reverseZones(p.Masked()), nil
}

// reverseZones splits p into prefixes on reverse-name boundaries (8 bits
// for IPv4, 4 for IPv6) and returns the reverse zone of each, as
// CoreDNS's pkg/cidr Split and Reverse do.
func reverseZones(p netip.Prefix) []string {
	boundary := 8
	if p.Addr().Is6() {
		boundary = 4
	}
	bits := p.Bits()
	newBits := (bits + boundary - 1) / boundary * boundary
	n := 1 << (newBits - bits)
	var out []string
	addr := p.Addr()
	for range n {
		out = append(out, reverseZone(addr, newBits, boundary))
		// next subnet of newBits
		next, ok := addSubnet(addr, newBits)
		if !ok {
			break
		}
		addr = next
	}
	return out
}

func addSubnet(a netip.Addr, bits int) (netip.Addr, bool) {
	b := a.AsSlice()
	// add 1 at bit position bits-1
	i := (bits - 1) / 8
	inc := byte(1) << (7 - uint((bits-1)%8))
	for ; i >= 0; i-- {
		sum := uint16(b[i]) + uint16(inc)
		b[i] = byte(sum)
		if sum < 256 {
			r, _ := netip.AddrFromSlice(b)
			return r, true
		}
		inc = 1
	}
	return netip.Addr{}, false
}

func reverseZone(a netip.Addr, bits, digit int) string {
	r, err := dns.ReverseAddr(a.String())
	if err != nil {
		return ""
	}
	total := a.BitLen()
	skip := (total - bits) / digit
	off := 0
	for range skip {
		var end bool
		off, end = dns.NextLabel(r, off)
		if end {
			break
		}
	}
	return r[off:]
}
