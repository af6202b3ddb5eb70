package file

import "github.com/switchboard-dev/switchboard/dns/plugin"

// fall is CoreDNS's fall.F: the zones for which a plugin passes a query
// it has no answer for to the next plugin. The zero value never falls
// through.
type fall struct {
	zones []string
}

// through tells whether qname (lower case, fully qualified) falls through.
func (f fall) through(qname string) bool { return matchZone(f.zones, qname) != "" }

// setZonesFromArgs sets the zones to args, or to the root zone when
// there are none: "If [ZONES...] is omitted, then fallthrough happens for
// all zones for which the plugin is authoritative."
func (f *fall) setZonesFromArgs(args []string) {
	if len(args) == 0 {
		f.zones = []string{"."}
		return
	}
	f.zones = make([]string, 0, len(args))
	for _, a := range args {
		f.zones = append(f.zones, plugin.Host(a))
	}
}
