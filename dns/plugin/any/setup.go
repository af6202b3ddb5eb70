// Package any is the DNS plugin "any" (CoreDNS 1.14 plugin/any): it
// answers queries of type ANY with a short HINFO record, as RFC 8482
// allows, instead of every record of the name.
//
// It owns only its handler and Corefile parsing; it must not touch the
// server, the chain order or other plugins' state.
package any

import (
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const pluginName = "any"

func init() { dnsserver.Register(pluginName, setup) }

// setup reads "any" (no arguments). CoreDNS never looks at the tokens of
// this directive, so arguments are accepted there and ignored; here too,
// with a warning.
func setup(c *dnsserver.Controller) error {
	for c.Next() {
		if args := c.RemainingArgs(); len(args) > 0 {
			c.Env.Log().Warn("any: arguments ignored", "file", c.File(), "line", c.Line(), "args", args)
		}
		for c.NextBlock() {
			c.Env.Log().Warn("any: block ignored", "file", c.File(), "line", c.Line(), "token", c.Val())
		}
	}
	c.AddPlugin(func(next plugin.Handler) plugin.Handler { return Any{Next: next} })
	return nil
}
