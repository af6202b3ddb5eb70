package acl

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
)

func TestSetup(t *testing.T) {
	tests := []struct {
		name    string
		config  string
		wantErr string // substring of the error; "" means success
	}{
		{"block type A net CIDR", "acl {\n block type A net 192.168.0.0/16\n}", ""},
		{"type * stands for all record types", "acl {\n block type * net 192.168.0.0/16\n}", ""},
		{"net * stands for all source addresses", "acl {\n block type A net *\n}", ""},
		{"allow before block", "acl {\n allow type * net 192.168.1.0/24\n block type * net 192.168.0.0/16\n}", ""},
		{"filter", "acl {\n filter type A net 192.168.0.0/16\n}", ""},
		{"drop", "acl {\n drop type * net 192.168.0.0/16\n}", ""},
		{"zones as arguments", "acl a.example.org b.example.org {\n block type * net 192.168.1.0/24\n}", ""},
		{"used several times per block", "acl a.example.org {\n block net 192.168.1.0/24\n}\nacl b.example.org {\n block net 192.168.2.0/24\n}", ""},
		{"several nets", "acl example.org {\n block type * net 192.168.1.0/24 192.168.3.0/24\n}", ""},
		{"several types", "acl example.org {\n block type TXT ANY CNAME net 192.168.3.0/24\n}", ""},
		{"net before type", "acl {\n block net 10.0.0.0/8 type A\n}", ""},
		{"IPv6 nets", "acl {\n block net 2001:db8::/32 ::1\n}", ""},
		{"action without sections", "acl {\n block\n}", ""},
		{"QTYPE without 'type'", "acl {\n block A net 192.168.0.0/16\n}", `Corefile:2 - Error during parsing: unexpected token "A"; expect 'type | net'`},
		{"empty type section", "acl {\n block type net 192.168.0.0/16\n}", `no token specified in "type" section`},
		{"empty net section", "acl {\n block type A net\n}", `no token specified in "net" section`},
		{"illegal QTYPE", "acl {\n block type ABC net 192.168.0.0/16\n}", `Corefile:2 - Error during parsing: unexpected token "ABC"; expect legal QTYPE`},
		{"illegal action", "acl {\n blck type A net 192.168.0.0/16\n}", `Corefile:2 - Error during parsing: unexpected token "blck"; expect 'allow', 'block', 'filter' or 'drop'`},
		{"illegal CIDR", "acl {\n block type A net 192.168.0/16\n}", `illegal CIDR notation "192.168.0/16"`},
		{"illegal address", "acl {\n block net 300.1.1.1\n}", `Corefile:2 - Error during parsing: illegal CIDR notation "300.1.1.1/32"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := controller(tc.config, nil, nil)
			err := setup(c)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "plugin/acl: ") {
				t.Errorf("error %q, want it to start with plugin/acl: and contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestParsedRules checks what a rule set parses into by its effect on
// queries from a fixed source.
func TestParsedRules(t *testing.T) {
	a := build(t, "acl example.org example.net {\n allow net 10.0.0.1\n block type A AAAA\n}", []string{"."}, nil)
	if len(a.Rules) != 1 {
		t.Fatalf("%d rules, want 1", len(a.Rules))
	}
	if got := a.Rules[0].zones; len(got) != 2 || got[0] != "example.org." || got[1] != "example.net." {
		t.Errorf("zones %v, want [example.org. example.net.]", got)
	}
	p := a.Rules[0].policies
	if len(p) != 2 || p[0].action != actionAllow || p[1].action != actionBlock {
		t.Fatalf("policies %+v, want allow then block", p)
	}
	if !p[0].allTypes || p[0].allNets || len(p[0].nets) != 1 || p[0].nets[0].String() != "10.0.0.1/32" {
		t.Errorf("allow policy %+v, want all types and 10.0.0.1/32", p[0])
	}
	if p[1].allTypes || !p[1].allNets || len(p[1].qtypes) != 2 {
		t.Errorf("block policy %+v, want A and AAAA from every net", p[1])
	}
	w := &dnstest.Writer{}
	if _, err := a.ServeDNS(context.Background(), w, new(dns.Msg).SetQuestion("x.example.net.", dns.TypeAAAA)); err != nil {
		t.Fatal(err)
	}
	if w.Msg == nil || w.Msg.Rcode != dns.RcodeRefused {
		t.Errorf("AAAA from 127.0.0.1 got %v, want REFUSED", w.Msg)
	}
}
