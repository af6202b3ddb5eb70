package acl

import (
	"testing"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// TestMatchZone checks matchZone against plugin.Zones.Matches (CoreDNS's
// semantics) on the same inputs.
func TestMatchZone(t *testing.T) {
	zones := [][]string{
		{"."}, {"example.org."}, {"org.", "example.org."}, {"a.example.org.", "example.org."},
		{"xample.org."}, {"example.org.", "."}, {`a\.example.org.`}, {},
	}
	names := []string{
		".", "org.", "example.org.", "www.example.org.", "a.example.org.", "b.a.example.org.",
		"wwwexample.org.", "xample.org.", `a\.example.org.`, `b.a\.example.org.`, `a\\.example.org.`,
		"example.net.", "rg.",
	}
	for _, zs := range zones {
		for _, n := range names {
			if got, want := matchZone(zs, n), plugin.Zones(zs).Matches(n); got != want {
				t.Errorf("matchZone(%q, %q) = %q, plugin.Zones.Matches = %q", zs, n, got, want)
			}
		}
	}
}
