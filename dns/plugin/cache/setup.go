package cache

import (
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func init() { dnsserver.Register("cache", setup) }

func setup(c *dnsserver.Controller) error {
	ca, err := cacheParse(c)
	if err != nil {
		return plugin.Error("cache", err)
	}
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		ca.Next = next
		return ca
	})
	// Once the chain is built: follow the versions of the plugins after
	// the cache (kubernetes), so that changed records are not served from
	// the cache until their TTL runs out.
	if cfg := c.Config; cfg != nil {
		c.OnStartup(func() error {
			ca.FollowVersions(cfg.Handlers())
			return nil
		})
	}
	return nil
}

// origins are the zones given as arguments (normalized, CIDRs turned
// into reverse zones) or else the server block's, as CoreDNS's
// plugin.OriginsFromArgsOrServerBlock.
func origins(args, serverBlock []string) []string {
	if len(args) == 0 {
		out := make([]string, len(serverBlock))
		copy(out, serverBlock)
		return out
	}
	var out []string
	for _, a := range args {
		out = append(out, plugin.NormalizeExact(a)...)
	}
	return out
}

func cacheParse(c *dnsserver.Controller) (*Cache, error) {
	ca := New()
	if c.Env != nil {
		ca.metrics = newMetrics(c.Env.Registerer)
		if c.Env.Logger != nil {
			ca.log = c.Env.Logger
		}
	}
	ca.log = ca.log.With("plugin", "cache")
	var blockZones []string
	if c.Config != nil {
		blockZones = c.Config.Zones
	}

	j := 0
	for c.Next() {
		if j > 0 {
			return nil, c.Err("this plugin can only be used once per Server Block")
		}
		j++

		// cache [TTL] [ZONES...]
		args := c.RemainingArgs()
		if len(args) > 0 {
			if ttl, err := strconv.Atoi(args[0]); err == nil {
				if ttl <= 0 {
					return nil, c.Errf("cache TTL can not be zero or negative: %d", ttl)
				}
				ca.pttl = time.Duration(ttl) * time.Second
				ca.nttl = time.Duration(ttl) * time.Second
				args = args[1:]
			}
		}
		zones := origins(args, blockZones)

		for c.NextBlock() {
			switch c.Val() {
			case Success:
				capacity, ttl, minttl, err := capTTLs(c, ca.pcap, ca.pttl, ca.minpttl)
				if err != nil {
					return nil, err
				}
				ca.pcap, ca.pttl, ca.minpttl = capacity, ttl, minttl
			case Denial:
				capacity, ttl, minttl, err := capTTLs(c, ca.ncap, ca.nttl, ca.minnttl)
				if err != nil {
					return nil, err
				}
				ca.ncap, ca.nttl, ca.minnttl = capacity, ttl, minttl
			case "prefetch":
				args := c.RemainingArgs()
				if len(args) == 0 || len(args) > 3 {
					return nil, c.ArgErr()
				}
				amount, err := strconv.Atoi(args[0])
				if err != nil {
					return nil, c.Errf("prefetch: %v", err)
				}
				if amount < 0 {
					return nil, c.Errf("prefetch amount should be positive: %d", amount)
				}
				ca.prefetch = amount
				if len(args) > 1 {
					dur, err := time.ParseDuration(args[1])
					if err != nil {
						return nil, c.Errf("prefetch: %v", err)
					}
					ca.duration = dur
				}
				if len(args) > 2 {
					pct := args[2]
					if pct == "" {
						return nil, c.Err("prefetch: empty percentage")
					}
					if x := pct[len(pct)-1]; x != '%' {
						return nil, c.Errf("last character of percentage should be `%%`, but is: %q", x)
					}
					num, err := strconv.Atoi(pct[:len(pct)-1])
					if err != nil {
						return nil, c.Errf("prefetch: %v", err)
					}
					if num < 10 || num > 90 {
						return nil, c.Errf("percentage should fall in range [10, 90]: %d", num)
					}
					ca.percentage = num
				}
			case "serve_stale":
				args := c.RemainingArgs()
				if len(args) > 2 {
					return nil, c.ArgErr()
				}
				ca.staleUpTo = time.Hour
				if len(args) > 0 {
					d, err := time.ParseDuration(args[0])
					if err != nil {
						return nil, c.Errf("serve_stale: %v", err)
					}
					if d < 0 {
						return nil, c.Err("invalid negative duration for serve_stale")
					}
					ca.staleUpTo = d
				}
				ca.verifyStale = false
				if len(args) > 1 {
					mode := strings.ToLower(args[1])
					if mode != "immediate" && mode != "verify" {
						return nil, c.Errf("invalid value for serve_stale refresh mode: %s", mode)
					}
					ca.verifyStale = mode == "verify"
				}
			case "servfail":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return nil, c.ArgErr()
				}
				d, err := time.ParseDuration(args[0])
				if err != nil {
					return nil, c.Errf("servfail: %v", err)
				}
				if d < 0 {
					return nil, c.Err("invalid negative ttl for servfail")
				}
				if d > 5*time.Minute {
					// RFC 2308 7.1: SERVFAIL must not be cached longer than 5 minutes.
					return nil, c.Err("caching SERVFAIL responses over 5 minutes is not permitted")
				}
				ca.failttl = d
			case "disable":
				args := c.RemainingArgs()
				if len(args) < 1 {
					return nil, c.ArgErr()
				}
				var zones []string
				if len(args) > 1 {
					for _, z := range args[1:] {
						zones = append(zones, strings.ToLower(dns.Fqdn(z)))
					}
				} else {
					zones = []string{"."}
				}
				switch args[0] {
				case Denial:
					ca.nexcept = zones
				case Success:
					ca.pexcept = zones
				default:
					return nil, c.Errf("cache type for disable must be %q or %q", Success, Denial)
				}
			case "keepttl":
				if len(c.RemainingArgs()) != 0 {
					return nil, c.ArgErr()
				}
				ca.keepttl = true
			default:
				return nil, c.ArgErr()
			}
		}

		ca.Zones = zones
		ca.zonesMetricLabel = strings.Join(zones, ",")
		ca.pcache = newStore(ca.pcap)
		ca.ncache = newStore(ca.ncap)
	}
	return ca, nil
}

// capTTLs parses "success|denial CAPACITY [TTL] [MINTTL]".
func capTTLs(c *dnsserver.Controller, capacity int, ttl, minttl time.Duration) (int, time.Duration, time.Duration, error) {
	name := c.Val()
	args := c.RemainingArgs()
	if len(args) == 0 {
		return 0, 0, 0, c.ArgErr()
	}
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return 0, 0, 0, c.Errf("%s: capacity: %v", name, err)
	}
	capacity = n
	if len(args) > 1 {
		t, err := strconv.Atoi(args[1])
		if err != nil {
			return 0, 0, 0, c.Errf("%s: TTL: %v", name, err)
		}
		if t <= 0 {
			return 0, 0, 0, c.Errf("cache TTL can not be zero or negative: %d", t)
		}
		ttl = time.Duration(t) * time.Second
		if len(args) > 2 {
			m, err := strconv.Atoi(args[2])
			if err != nil {
				return 0, 0, 0, c.Errf("%s: MINTTL: %v", name, err)
			}
			if m < 0 {
				return 0, 0, 0, c.Errf("cache min TTL can not be negative: %d", m)
			}
			minttl = time.Duration(m) * time.Second
		}
	}
	return capacity, ttl, minttl, nil
}
