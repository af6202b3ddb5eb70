package loadbalance

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func init() { dnsserver.Register("loadbalance", setup) }

// lbConfig is what the loadbalance line asks for.
type lbConfig struct {
	shuffle       func(*dns.Msg) *dns.Msg
	weighted      *weightedRR
	preferSubnets []*net.IPNet
	roundRobin    bool
}

func setup(c *dnsserver.Controller) error {
	lb, err := parse(c)
	if err != nil {
		return plugin.Error("loadbalance", err)
	}
	if lb.weighted != nil {
		w := lb.weighted
		c.OnStartup(func() error {
			if err := w.onStartup(); err != nil {
				return plugin.Error("loadbalance", err)
			}
			return nil
		})
		c.OnShutdown(w.onShutdown)
	}
	h := lb.handler()
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// handler builds the plugin from the configuration.
func (lb *lbConfig) handler() *LoadBalance {
	shuffle := lb.shuffle
	if len(lb.preferSubnets) > 0 {
		original, subnets := shuffle, lb.preferSubnets
		shuffle = func(res *dns.Msg) *dns.Msg { return reorderPreferredSubnets(original(res), subnets) }
	}
	return &LoadBalance{shuffle: shuffle, wireRR: lb.roundRobin && len(lb.preferSubnets) == 0}
}

func parse(c *dnsserver.Controller) (*lbConfig, error) {
	logger := slog.Default()
	if c.Env != nil && c.Env.Logger != nil {
		logger = c.Env.Logger
	}
	logger = logger.With("plugin", "loadbalance")
	lb := &lbConfig{}
	for c.Next() {
		args := c.RemainingArgs()
		if len(args) == 0 {
			lb.shuffle, lb.roundRobin = randomShuffle, true
		} else {
			switch args[0] {
			case randomShufflePolicy:
				if len(args) > 1 {
					return nil, c.Errf("unknown property for %s", args[0])
				}
				lb.shuffle, lb.roundRobin = randomShuffle, true
			case weightedRoundRobinPolicy:
				if len(args) < 2 {
					return nil, c.Err("missing weight file argument")
				}
				if len(args) > 2 {
					return nil, c.Err("unexpected argument(s)")
				}
				reload := 30 * time.Second
				for c.NextBlock() {
					switch c.Val() {
					case "reload":
						t := c.RemainingArgs()
						if len(t) < 1 {
							return nil, c.Err("reload duration value is missing")
						}
						if len(t) > 1 {
							return nil, c.Err("unexpected argument")
						}
						var err error
						if reload, err = time.ParseDuration(t[0]); err != nil || reload < 0 {
							return nil, c.Errf("invalid reload duration '%s'", t[0])
						}
					default:
						return nil, c.Errf("unknown property '%s'", c.Val())
					}
				}
				w := newWeightedRR(args[1], reload, logger)
				*lb = lbConfig{weighted: w, shuffle: func(res *dns.Msg) *dns.Msg { return weightedShuffle(res, w) }}
			default:
				return nil, c.Err(fmt.Sprintf("unknown policy: %s", args[0]))
			}
		}
		for c.NextBlock() {
			switch c.Val() {
			case "prefer":
				for _, cidr := range c.RemainingArgs() {
					_, subnet, err := net.ParseCIDR(cidr)
					if err != nil {
						return nil, c.Errf("invalid CIDR %q: %v", cidr, err)
					}
					lb.preferSubnets = append(lb.preferSubnets, subnet)
				}
			default:
				return nil, c.Errf("unknown property '%s'", c.Val())
			}
		}
	}
	return lb, nil
}
