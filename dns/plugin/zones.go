package plugin

import "strings"

// LongestZone returns the longest of zones that qname is in (both lower
// case and fully qualified), or "". It is Zones.Matches without the
// allocation of dns.IsSubDomain's label split: the query path of acl,
// file and hosts.
func LongestZone(zones []string, qname string) string { return longestZone(zones, qname, false) }

// LongestZoneFold is LongestZone for a qname of any case (the zones lower
// case): the cache's, which keys on the question as asked.
func LongestZoneFold(zones []string, qname string) string { return longestZone(zones, qname, true) }

func longestZone(zones []string, qname string, fold bool) string {
	best := ""
	for _, z := range zones {
		if len(z) > len(best) && inZone(z, qname, fold) {
			best = z
		}
	}
	return best
}

// InZone tells whether name equals zone or is below it, label-wise (both
// lower case and fully qualified; an escaped dot does not end a label).
func InZone(zone, name string) bool { return inZone(zone, name, false) }

func inZone(zone, name string, fold bool) bool {
	if zone == "." {
		return true
	}
	if len(name) < len(zone) {
		return false
	}
	if tail := name[len(name)-len(zone):]; tail != zone && !(fold && strings.EqualFold(tail, zone)) {
		return false
	}
	if len(name) == len(zone) {
		return true
	}
	i := len(name) - len(zone) - 1
	if name[i] != '.' {
		return false
	}
	// The dot must not be an escaped one ("a\.example.org." is one label
	// "a.example" under "org.").
	n := 0
	for j := i - 1; j >= 0 && name[j] == '\\'; j-- {
		n++
	}
	return n%2 == 0
}

// Fall is CoreDNS's fall.F: the zones for which a plugin passes a query
// it has no answer for to the next plugin. The zero value never falls
// through.
type Fall struct {
	Zones []string
}

// Through tells whether qname (lower case, fully qualified) falls
// through.
func (f Fall) Through(qname string) bool { return LongestZone(f.Zones, qname) != "" }

// SetZonesFromArgs sets the zones to args, or to the root zone when
// there are none: "If [ZONES...] is omitted, then fallthrough happens for
// all zones for which the plugin is authoritative."
func (f *Fall) SetZonesFromArgs(args []string) {
	if len(args) == 0 {
		f.Zones = []string{"."}
		return
	}
	f.Zones = make([]string, 0, len(args))
	for _, a := range args {
		f.Zones = append(f.Zones, Host(a))
	}
}
