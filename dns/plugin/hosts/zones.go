package hosts

// matchZone returns the longest of zones that qname is in (both lower
// case and fully qualified), or "". It is plugin.Zones.Matches without the
// allocation of dns.IsSubDomain's label split.
func matchZone(zones []string, qname string) string {
	best := ""
	for _, z := range zones {
		if len(z) > len(best) && inZone(z, qname) {
			best = z
		}
	}
	return best
}

// inZone tells whether name equals zone or is below it, label-wise.
func inZone(zone, name string) bool {
	if zone == "." {
		return true
	}
	if len(name) < len(zone) || name[len(name)-len(zone):] != zone {
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
