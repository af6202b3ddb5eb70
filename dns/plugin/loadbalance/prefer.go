package loadbalance

import (
	"net"

	"github.com/miekg/dns"
)

// reorderPreferredSubnets puts the addresses of the prefer subnets first
// (in the order the subnets are written) in the answer and additional
// sections, as CoreDNS: CNAMEs, addresses, MX, then the rest.
func reorderPreferredSubnets(msg *dns.Msg, subnets []*net.IPNet) *dns.Msg {
	msg.Answer = reorderRecords(msg.Answer, subnets)
	msg.Extra = reorderRecords(msg.Extra, subnets)
	return msg
}

func reorderRecords(records []dns.RR, subnets []*net.IPNet) []dns.RR {
	var cname, address, mx, rest []dns.RR
	for _, r := range records {
		switch r.Header().Rrtype {
		case dns.TypeCNAME:
			cname = append(cname, r)
		case dns.TypeA, dns.TypeAAAA:
			address = append(address, r)
		case dns.TypeMX:
			mx = append(mx, r)
		default:
			rest = append(rest, r)
		}
	}
	out := append([]dns.RR{}, cname...)
	out = append(out, sortBySubnetPriority(address, subnets)...)
	out = append(out, mx...)
	return append(out, rest...)
}

func sortBySubnetPriority(records []dns.RR, subnets []*net.IPNet) []dns.RR {
	matched := make([]dns.RR, 0, len(records))
	seen := make([]bool, len(records))
	for _, subnet := range subnets {
		for i, r := range records {
			if seen[i] {
				continue
			}
			if ip := extractIP(r); ip != nil && subnet.Contains(ip) {
				matched = append(matched, r)
				seen[i] = true
			}
		}
	}
	for i, r := range records {
		if !seen[i] {
			matched = append(matched, r)
		}
	}
	return matched
}

func extractIP(rr dns.RR) net.IP {
	switch r := rr.(type) {
	case *dns.A:
		return r.A
	case *dns.AAAA:
		return r.AAAA
	}
	return nil
}
