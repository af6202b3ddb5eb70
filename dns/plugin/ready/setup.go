// Package ready is the ready plugin: an HTTP endpoint, /ready on :8181 by
// default (CoreDNS's default), that answers 200 "OK" once every plugin of
// the server blocks that enable it is ready (plugins that can say so have
// a Ready() bool method, as CoreDNS's ready.Readiness), and 503 with the
// names of those that are not. It owns only that endpoint; it adds no
// handler to the chain.
package ready

import (
	"net"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// DefaultAddr is CoreDNS's default address of /ready.
const DefaultAddr = ":8181"

// Readiness is implemented by plugins that can tell whether they are
// ready to answer (the kubernetes plugin once it has synced).
type Readiness interface {
	Ready() bool
}

func init() { dnsserver.Register("ready", setup) }

func setup(c *dnsserver.Controller) error {
	addr, keep, err := parse(c)
	if err != nil {
		return plugin.Error("ready", err)
	}
	inst := c.Instance()
	cfg := c.Config
	log := c.Env.Log().With("plugin", "ready")
	var ep *endpoint
	c.OnStartup(func() error {
		var err error
		ep, err = join(inst, addr, keep, log)
		if err != nil {
			return plugin.Error("ready", err)
		}
		for _, h := range cfg.Handlers() {
			if r, ok := h.(Readiness); ok {
				ep.list.add(r, h.Name())
			}
		}
		return nil
	})
	c.OnShutdown(func() error {
		if ep != nil {
			ep.leave()
		}
		return nil
	})
	return nil
}

func parse(c *dnsserver.Controller) (addr string, keepAsking bool, err error) {
	addr = DefaultAddr
	i := 0
	for c.Next() {
		if i > 0 {
			return "", false, plugin.ErrOnce
		}
		i++
		args := c.RemainingArgs()
		switch len(args) {
		case 0:
		case 1:
			addr = args[0]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return "", false, c.Err(err.Error())
			}
		default:
			return "", false, c.ArgErr()
		}
		for c.NextBlock() {
			switch c.Val() {
			case "monitor":
				args := c.RemainingArgs()
				if len(args) != 1 {
					return "", false, c.ArgErr()
				}
				switch args[0] {
				case "until-ready":
					keepAsking = false
				case "continuously":
					keepAsking = true
				default:
					return "", false, c.Errf("monitor type '%s' not supported", args[0])
				}
			default:
				return "", false, c.Errf("unknown property '%s'", c.Val())
			}
		}
	}
	return addr, keepAsking, nil
}
