// Package acl is the DNS plugin "acl" (CoreDNS 1.14 plugin/acl): it
// allows, blocks (REFUSED), filters (NOERROR, empty answer) or drops (no
// answer) queries by query type and client source network, per zone,
// with rules evaluated in order and the first match winning.
//
// It owns only its own handler, Corefile parsing and metrics; it must not
// touch the server, the chain order or other plugins' state.
package acl

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const pluginName = "acl"

func init() { dnsserver.Register(pluginName, setup) }

func setup(c *dnsserver.Controller) error {
	a, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	var reg prometheus.Registerer
	if c.Env != nil {
		reg = c.Env.Registerer
	}
	a.metrics = newMetrics(reg)
	a.logger = c.Env.Log()
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		a.Next = next
		return a
	})
	return nil
}

// parse reads every "acl" directive of the block:
//
//	acl [ZONES...] {
//	    ACTION [type QTYPE...] [net SOURCE...]
//	}
func parse(c *dnsserver.Controller) (*ACL, error) {
	a := &ACL{}
	for c.Next() {
		r := rule{}
		args := c.RemainingArgs()
		r.zones = plugin.OriginsFromArgsOrServerBlock(args, c.Config.Zones)

		for c.NextBlock() {
			p := policy{}
			switch strings.ToLower(c.Val()) {
			case "allow":
				p.action = actionAllow
			case "block":
				p.action = actionBlock
			case "filter":
				p.action = actionFilter
			case "drop":
				p.action = actionDrop
			default:
				return nil, c.Errf("unexpected token %q; expect 'allow', 'block', 'filter' or 'drop'", c.Val())
			}

			hasType, hasNet := false, false
			remaining := c.RemainingArgs()
			for len(remaining) > 0 {
				if !isPreservedIdentifier(remaining[0]) {
					return nil, c.Errf("unexpected token %q; expect 'type | net'", remaining[0])
				}
				section := strings.ToLower(remaining[0])
				i := 1
				var tokens []string
				for ; i < len(remaining) && !isPreservedIdentifier(remaining[i]); i++ {
					tokens = append(tokens, remaining[i])
				}
				remaining = remaining[i:]
				if len(tokens) == 0 {
					return nil, c.Errf("no token specified in %q section", section)
				}
				switch section {
				case "type":
					hasType = true
					for _, token := range tokens {
						if token == "*" {
							p.allTypes = true
							break
						}
						qtype, ok := dns.StringToType[token]
						if !ok {
							return nil, c.Errf("unexpected token %q; expect legal QTYPE", token)
						}
						p.qtypes = append(p.qtypes, qtype)
					}
				case "net":
					hasNet = true
					for _, token := range tokens {
						if token == "*" {
							p.allNets = true
							break
						}
						token = normalize(token)
						prefix, err := netip.ParsePrefix(token)
						if err != nil {
							return nil, c.Errf("illegal CIDR notation %q", token)
						}
						p.nets = append(p.nets, prefix.Masked())
					}
				}
			}
			// "The default behavior for an omitted `type QTYPE...` is to match
			// all kinds of DNS queries (same as `type *`)."
			if !hasType {
				p.allTypes = true
			}
			// An omitted net section matches every source address.
			if !hasNet {
				p.allNets = true
			}
			r.policies = append(r.policies, p)
		}
		a.Rules = append(a.Rules, r)
	}
	return a, nil
}

func isPreservedIdentifier(token string) bool {
	id := strings.ToLower(token)
	return id == "type" || id == "net"
}

// normalize appends /32 to a single IPv4 address and /128 to an IPv6 one.
func normalize(raw string) string {
	if strings.IndexByte(raw, '/') >= 0 {
		return raw
	}
	if strings.IndexByte(raw, ':') >= 0 {
		return raw + "/128"
	}
	return raw + "/32"
}
