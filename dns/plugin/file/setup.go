// Package file is the DNS plugin "file" (CoreDNS 1.14 plugin/file): it
// serves zones from RFC 1035 zone files read with miekg/dns's ZoneParser,
// authoritatively: answers with AA, NXDOMAIN and NODATA with the SOA,
// CNAME chains followed inside the zone (and through the server outside
// it), wildcards, DNAME, delegations with glue, and the DNSSEC records
// the file holds when the query has DO (it signs nothing). It checks the
// file every reload interval and loads it again when the SOA serial
// changed.
//
// It owns only its zones, their reload goroutines, its handler and
// Corefile parsing; it never writes zone files and must not touch the
// server, the chain order or other plugins' state.
package file

import (
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const pluginName = "file"

func init() { dnsserver.Register(pluginName, setup) }

func setup(c *dnsserver.Controller) error {
	f, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	for _, n := range f.Zones.Names {
		z := f.Z[n]
		c.OnStartup(func() error { z.Start(); return nil })
		c.OnShutdown(func() error { z.Stop(); return nil })
	}
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		f.Next = next
		return f
	})
	return nil
}

// parse reads every "file" directive of the block:
//
//	file DBFILE [ZONES...] {
//	    reload DURATION
//	    fallthrough [ZONES...]
//	}
//
// Each file is read now; one that cannot be opened is an error unless
// reload is set (then it is tried again every interval, as CoreDNS does).
func parse(c *dnsserver.Controller) (*File, error) {
	logger := c.Env.Log()
	z := map[string]*Zone{}
	var names []string
	f := &File{}

	var openErr error
	// One value for the whole block, as in CoreDNS: a later directive
	// starts from the interval an earlier one set.
	reload := time.Minute

	for c.Next() {
		if !c.NextArg() {
			return nil, c.ArgErr()
		}
		fileName := c.Val()
		origins := plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.Config.Zones)

		reader, err := os.Open(filepath.Clean(fileName))
		if err != nil {
			openErr = err
		}
		for _, origin := range origins {
			z[origin] = NewZone(origin, fileName)
			if openErr == nil {
				if _, err := reader.Seek(0, 0); err != nil {
					reader.Close()
					return nil, c.Errf("reading %q: %v", fileName, err)
				}
				zone, err := Parse(reader, origin, fileName, 0)
				if err != nil {
					reader.Close()
					return nil, c.Errf("%v", err)
				}
				z[origin] = zone
			}
			names = append(names, origin)
		}
		if reader != nil {
			reader.Close()
		}

		for c.NextBlock() {
			switch c.Val() {
			case "fallthrough":
				f.Fall.SetZonesFromArgs(c.RemainingArgs())
			case "reload":
				t := c.RemainingArgs()
				if len(t) < 1 {
					return nil, c.Errf("reload duration value is expected")
				}
				d, err := time.ParseDuration(t[0])
				if err != nil {
					return nil, c.Errf("invalid reload duration %q: %v", t[0], err)
				}
				if d < 0 {
					return nil, c.Errf("invalid negative reload duration %q", t[0])
				}
				reload = d
			case "upstream":
				// Obsolete, accepted and ignored as CoreDNS does.
				c.RemainingArgs()
			default:
				return nil, c.Errf("unknown property '%s'", c.Val())
			}
		}
		for _, origin := range origins {
			z[origin].ReloadInterval = reload
			z[origin].logger = logger
		}
	}

	if openErr != nil {
		if reload == 0 {
			return nil, c.Errf("%v", openErr)
		}
		logger.Warn("file: failed to open zone file, trying again", "error", openErr, "every", reload)
	}
	f.Zones = Zones{Z: z, Names: names}
	return f, nil
}
