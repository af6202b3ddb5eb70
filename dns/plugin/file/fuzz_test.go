package file

import (
	"bytes"
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// FuzzZone feeds zone file text through the parser and, when it loads,
// asks the zone for every owner name (and names around them) with and
// without DO, as queries would. Nothing may panic or loop, and the tree
// must stay in canonical order. $INCLUDE is off here: the input must not
// name files to read. The committed corpus is in testdata/fuzz/FuzzZone.
func FuzzZone(f *testing.F) {
	for _, z := range []string{dbExampleOrg, dbMiekNL, dbMiekNLSigned, dbMiekNLDelegation, exampleOrgSigned, dbMiekENTNL, exampleOrg, apexWildcard, doubleWildcard, exampleApexOnly} {
		f.Add([]byte(z))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const origin = "example.org."
		z, err := parseZone(bytes.NewReader(data), origin, "fuzz", 0, false)
		if err != nil {
			return
		}
		tr := z.data.Load().tree
		for i := 1; i < len(tr.sorted); i++ {
			if compareNames(tr.sorted[i-1].key, tr.sorted[i].key) >= 0 {
				t.Fatalf("tree out of order: %q before %q", tr.sorted[i-1].key, tr.sorted[i].key)
			}
		}
		fl := &File{
			Next:  errorHandler,
			Zones: Zones{Z: map[string]*Zone{origin: z}, Names: []string{origin}},
			Upstream: upstreamFunc(func(ctx context.Context, state request.Request, name string, qtype uint16) (*dns.Msg, error) {
				return nil, nil
			}),
		}
		names := []string{origin, "www." + origin, "*." + origin, "a.b.c." + origin}
		for _, e := range tr.sorted {
			names = append(names, e.name, "x."+e.name)
			if len(names) > 64 {
				break
			}
		}
		for _, name := range names {
			if _, ok := dns.IsDomainName(name); !ok || len(name) > 250 {
				continue
			}
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME, dns.TypeNS, dns.TypeSOA, dns.TypeMX, dns.TypeSRV, dns.TypeDS, dns.TypeTXT, dns.TypeDNAME, dns.TypeANY} {
				for _, do := range []bool{false, true} {
					r := new(dns.Msg).SetQuestion(dns.Fqdn(name), qt)
					if do {
						r.SetEdns0(4096, true)
					}
					w := &dnstest.Writer{}
					if _, err := fl.ServeDNS(context.Background(), w, r); err != nil {
						t.Fatalf("%s %s: %v", name, dns.TypeToString[qt], err)
					}
					if w.Msg != nil {
						if _, err := w.Msg.Pack(); err != nil && len(w.Msg.Answer) < 1000 {
							// Records the parser accepted must pack.
							t.Logf("%s %s: answer does not pack: %v", name, dns.TypeToString[qt], err)
						}
					}
				}
			}
		}
	})
}
