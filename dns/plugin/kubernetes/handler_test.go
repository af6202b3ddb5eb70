package kubernetes

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/cluster"
)

// TestQueryTable asks every question of every variant of the tables, both
// of the handler directly and through a miekg/dns server over UDP, and
// compares the whole answer: rcode, answer and additional records (name,
// TTL, rdata; as sets) and whether the authority section has the SOA. It
// does so over the fixture as stored whole and as a store with TrimStore's
// transforms keeps it, with its pods in the store and in a PodTable: the
// trims and the compact pods must not change an answer.
func TestQueryTable(t *testing.T) {
	t.Parallel()
	for _, st := range []struct {
		name  string
		store *cluster.Store
	}{
		{"whole", fixtureStore(t)},
		{"trimmed", trimmedFixtureStore(t)},
		{"pod table", compactFixtureStore(t)},
	} {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					t.Parallel()
					k := newPlugin(t, st.store, v.corefile("http://127.0.0.1:1"))
					addr := startServer(t, k)
					for _, c := range v.cases {
						want := answer{rcode: c.rcode, answer: normalize(t, c.answer), extra: normalize(t, c.extra), soa: c.soa}
						direct := answerOf(serve(k, c.name, c.qtype), false)
						if !direct.equal(want) {
							t.Errorf("%s\n%s %s:\n got %s\nwant %s", c.rule, c.name, dns.TypeToString[c.qtype], direct, want)
							continue
						}
						udp := answerOf(exchange(t, addr, c.name, c.qtype, false), false)
						if !udp.equal(want) {
							t.Errorf("%s\n%s %s over UDP:\n got %s\nwant %s", c.rule, c.name, dns.TypeToString[c.qtype], udp, want)
						}
					}
				})
			}
		})
	}
}
