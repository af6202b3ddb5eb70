package file

import (
	"context"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

// TestCoreDNSCases runs CoreDNS 1.14.1's file plugin test tables
// (coredns_cases_test.go) against this plugin.
func TestCoreDNSCases(t *testing.T) {
	tables := []struct {
		name   string
		zone   string
		origin string
		cases  []testCase
	}{
		{"lookup (TestLookup)", dbMiekNL, testzone, dnsTestCases},
		{"wildcard (TestLookupWildcard)", dbDnssexNLSigned, testzone1, wildcardTestCases},
		{"double wildcard (TestLookupDoubleWildcard)", exampleOrg, "example.org.", wildcardDoubleTestCases},
		{"apex wildcard (TestLookupApexWildcard)", apexWildcard, "example.org.", apexWildcardTestCases},
		{"multi wildcard (TestLookupMultiWildcard)", doubleWildcard, "example.org.", multiWildcardTestCases},
		{"delegation (TestLookupDelegation)", dbMiekNLDelegation, testzone, delegationTestCases},
		{"secure delegation (TestLookupSecureDelegation)", exampleOrgSigned, "example.org.", secureDelegationTestCases},
		{"DNSSEC (TestLookupDNSSEC)", dbMiekNLSigned, testzone, dnssecTestCases},
		{"empty non-terminal (TestLookupEnt)", dbMiekENTNL, testzone, entTestCases},
		{"glue (TestLookupGlue)", dbAtoomNetSigned, atoom, atoomTestCases},
		{"DS (TestLookupDS)", dbMiekNLDelegation, testzone, dsTestCases},
	}
	for _, tb := range tables {
		t.Run(tb.name, func(t *testing.T) {
			f := fileFor(t, tb.zone, tb.origin)
			for _, tc := range tb.cases {
				w := &dnstest.Writer{}
				if _, err := f.ServeDNS(context.Background(), w, tc.Msg()); err != nil {
					t.Errorf("%s %s: error %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
					continue
				}
				if err := sortAndCheck(w.Msg, tc); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestLookupApex: CoreDNS's TestLookupApex documents that a zone with
// only SOA and NS answers NXDOMAIN for an A query at the apex ("The
// behavior here is wrong, we should return NODATA, but we do a
// NXDOMAIN"); so do we.
func TestLookupApex(t *testing.T) {
	f := fileFor(t, exampleApexOnly, "example.com.")
	w := &dnstest.Writer{}
	if _, err := f.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion("example.com.", dns.TypeA)); err != nil {
		t.Fatal(err)
	}
	if w.Msg.Rcode != dns.RcodeNameError {
		t.Errorf("rcode %s, want NXDOMAIN as CoreDNS", dns.RcodeToString[w.Msg.Rcode])
	}
}
