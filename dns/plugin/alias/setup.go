// Package alias is the DNS plugin "alias", after the external CoreDNS
// plugin github.com/serverwentdown/alias: CNAME flattening at the zone
// apex. It wraps the writer of the plugins after it (file, hosts,
// kubernetes, forward) and, in an answer whose authority section names
// the zone by its NS records, replaces the CNAME chain that starts at the
// apex with the records it ends in, owned by the apex, with the smallest
// TTL of the chain.
//
// It owns only its handler and Corefile parsing; it changes only the
// answers that pass through it (copies of their records) and must not
// touch the server, the chain order or other plugins' state.
package alias

import (
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const pluginName = "alias"

func init() { dnsserver.Register(pluginName, setup) }

// setup reads "alias", which takes no arguments.
func setup(c *dnsserver.Controller) error {
	for c.Next() {
		if c.NextArg() {
			return plugin.Error(pluginName, c.ArgErr())
		}
		if c.NextBlock() {
			return plugin.Error(pluginName, c.Errf("unexpected block: alias takes no options"))
		}
	}
	c.AddPlugin(func(next plugin.Handler) plugin.Handler { return Alias{Next: next} })
	return nil
}
