package kubernetes

import (
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

var (
	fuzzOnce   sync.Once
	fuzzPlugin *Kubernetes
)

// FuzzServeDNS asks the plugin (pods verified, endpoint_pod_names, every
// zone kind) arbitrary names and types: it must never panic, and whatever
// it writes answers the question asked and packs.
func FuzzServeDNS(f *testing.F) {
	for _, v := range variants {
		for _, c := range v.cases {
			f.Add(c.name, c.qtype)
		}
	}
	for _, s := range []string{"", ".", "..", "svc.", "a..b.cluster.local.", "-.default.pod.cluster.local.",
		"--.default.pod.cluster.local.", "1-2-3-4-5.default.pod.cluster.local.", "ffff-ffff-ffff-ffff-ffff-ffff-ffff-ffff.default.pod.cluster.local.",
		"_._.svc.default.svc.cluster.local.", "\\..cluster.local.", "x\\.y.default.svc.cluster.local.", "ns.dns.cluster.local.",
		"1.2.3.4.5.in-addr.arpa.", "256.0.0.1.in-addr.arpa.", "01.0.0.10.in-addr.arpa.", strings.Repeat("f.", 32) + "ip6.arpa.",
		strings.Repeat("0.", 31) + "ip6.arpa.", "dns-version.in-addr.arpa.", "CLUSTER.LOCAL."} {
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypePTR, dns.TypeTXT, dns.TypeNS, dns.TypeSOA, dns.TypeANY} {
			f.Add(s, t)
		}
	}
	f.Fuzz(func(t *testing.T, name string, qtype uint16) {
		fuzzOnce.Do(func() {
			store := fixtureStore(t)
			k, err := parse(controller(t, ". {\n kubernetes cluster.local in-addr.arpa ip6.arpa 10.0.0.0/23 {\n pods verified\n endpoint_pod_names\n }\n}\n"), dnstest.QuietEnv().Log())
			if err != nil {
				t.Fatal(err)
			}
			k.listenHosts = []string{"127.0.0.1"}
			if err := k.Start(store); err != nil {
				t.Fatal(err)
			}
			fuzzPlugin = k // kept for the whole fuzzing process
		})
		m := serve(fuzzPlugin, name, qtype)
		if len(m.Question) != 1 || m.Question[0].Name != name || m.Question[0].Qtype != qtype {
			t.Fatalf("the answer to %q %d has question %v", name, qtype, m.Question)
		}
		if _, err := m.Pack(); err != nil && dns.IsFqdn(name) {
			if _, ok := dns.IsDomainName(name); ok {
				t.Fatalf("the answer to %q %d does not pack: %v\n%v", name, qtype, err, m)
			}
		}
	})
}
