package nftables

import (
	"context"
	"strings"
	"testing"
)

// TestNetlinkBatchEqualsScript: what Sync sends through netlink and what
// `nft -f` makes of Render's script are the same table, as `nft list
// ruleset` prints it.
func TestNetlinkBatchEqualsScript(t *testing.T) {
	needRoot(t)
	st := allCases()
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	script, err := p.Render(st)
	if err != nil {
		t.Fatal(err)
	}
	var viaNetlink, viaScript string
	inNetns(t, func() {
		if err := p.Sync(context.Background(), st); err != nil {
			t.Errorf("Sync: %v", err)
			return
		}
		viaNetlink = nftCmd(t, nil, "list", "ruleset")
	})
	inNetns(t, func() {
		nftCmd(t, script, "-f", "-")
		viaScript = nftCmd(t, nil, "list", "ruleset")
	})
	if t.Failed() {
		return
	}
	a, b := normalizeListing(viaNetlink), normalizeListing(viaScript)
	if a != b {
		t.Errorf("netlink and nft -f differ:\n%s", lineDiff(b, a))
	}
	if !strings.Contains(a, "svc-ip-3") {
		t.Errorf("listing lacks the shared chain svc-ip-3:\n%s", a)
	}
}

// lineDiff lists lines only in want (-) or only in got (+).
func lineDiff(want, got string) string {
	w := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		w[l]++
	}
	g := map[string]int{}
	for _, l := range strings.Split(got, "\n") {
		g[l]++
	}
	var sb strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if g[l] < w[l] {
			sb.WriteString("- " + l + "\n")
			w[l]--
		}
	}
	w = map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		w[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		if w[l] == 0 {
			sb.WriteString("+ " + l + "\n")
		} else {
			w[l]--
		}
	}
	return sb.String()
}
