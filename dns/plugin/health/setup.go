// Package health is the health plugin: an HTTP endpoint, /health on
// :8080 by default (CoreDNS's default), that answers 200 "OK" while the
// process runs, with an optional lameduck period that keeps the server
// answering for a while after it was told to stop. It checks itself once
// a second and exports coredns_health_request_duration_seconds and
// coredns_health_request_failures_total. It owns only that endpoint; it
// adds no handler to the chain.
package health

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// DefaultAddr is CoreDNS's default address of /health: port 8080 on every
// address.
const DefaultAddr = ":8080"

func init() { dnsserver.Register("health", setup) }

func setup(c *dnsserver.Controller) error {
	addr, lame, err := parse(c)
	if err != nil {
		return plugin.Error("health", err)
	}
	h := &Health{Addr: addr, Lameduck: lame, log: c.Env.Log().With("plugin", "health"), selfCheck: c.Index == 0}
	h.metrics = metricsFor(c.Env.Registerer)
	inst := c.Instance()
	c.OnStartup(func() error {
		track(inst, h)
		return h.OnStartup()
	})
	c.OnRestart(h.release)
	c.OnFinalShutdown(func() error {
		// Only the first key of a block sleeps: one lameduck per block.
		if c.Index == 0 && h.Lameduck > 0 && h.started() {
			h.log.Info(fmt.Sprintf("Going into lameduck mode for %s", h.Lameduck))
			time.Sleep(h.Lameduck)
		}
		untrack(c.Instance())
		return h.release()
	})
	c.OnRestart(func() error { untrack(c.Instance()); return nil })
	return nil
}

var (
	byInstMu sync.Mutex
	byInst   = map[*dnsserver.Instance]*Health{}
)

func track(inst *dnsserver.Instance, h *Health) {
	byInstMu.Lock()
	defer byInstMu.Unlock()
	if _, ok := byInst[inst]; !ok {
		byInst[inst] = h
	}
}

func untrack(inst *dnsserver.Instance) {
	byInstMu.Lock()
	defer byInstMu.Unlock()
	delete(byInst, inst)
}

// Find returns the first health endpoint of inst (for tests with port
// 0), nil when it has none.
func Find(inst *dnsserver.Instance) *Health {
	byInstMu.Lock()
	defer byInstMu.Unlock()
	return byInst[inst]
}

func parse(c *dnsserver.Controller) (string, time.Duration, error) {
	addr := ""
	dur := time.Duration(0)
	for c.Next() {
		args := c.RemainingArgs()
		switch len(args) {
		case 0:
		case 1:
			addr = args[0]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return "", 0, c.Err(err.Error())
			}
		default:
			return "", 0, c.ArgErr()
		}
		for c.NextBlock() {
			switch c.Val() {
			case "lameduck":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return "", 0, c.ArgErr()
				}
				l, err := time.ParseDuration(args[0])
				if err != nil {
					return "", 0, c.Errf("unable to parse lameduck duration value: '%v' : %v", args[0], err)
				}
				if l < 0 {
					return "", 0, c.Errf("lameduck duration must not be negative: %v", l)
				}
				dur = l
			default:
				return "", 0, c.ArgErr()
			}
		}
	}
	if addr == "" {
		addr = DefaultAddr
	}
	return addr, dur, nil
}
