package plugin

import (
	"strings"
	"testing"
)

// TestLongestZone checks LongestZone against Zones.Matches (CoreDNS's
// semantics) on the same inputs.
func TestLongestZone(t *testing.T) {
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
			want := Zones(zs).Matches(n)
			if got := LongestZone(zs, n); got != want {
				t.Errorf("LongestZone(%q, %q) = %q, Zones.Matches = %q", zs, n, got, want)
			}
			// Questions as asked, in any case, match as their lower case.
			if got := LongestZoneFold(zs, strings.ToUpper(n)); got != want {
				t.Errorf("LongestZoneFold(%q, %q) = %q, want %q", zs, strings.ToUpper(n), got, want)
			}
		}
	}
}
