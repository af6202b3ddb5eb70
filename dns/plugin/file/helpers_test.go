package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func asNetError(err error, target *net.Error) bool { return errors.As(err, target) }

// testCase is CoreDNS's test.Case: a query and the exact answer expected.
type testCase struct {
	Qname         string
	Qtype         uint16
	Rcode         int
	Do            bool
	Authoritative bool
	Answer        []dns.RR
	Ns            []dns.RR
	Extra         []dns.RR
}

// Msg is the query of the case (with EDNS0 4096 and DO when Do).
func (c testCase) Msg() *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(c.Qname), c.Qtype)
	if c.Do {
		o := new(dns.OPT)
		o.Hdr.Name = "."
		o.Hdr.Rrtype = dns.TypeOPT
		o.SetDo()
		o.SetUDPSize(4096)
		m.Extra = append(m.Extra, o)
	}
	return m
}

// rr parses one record in presentation format; a bad one panics, as
// CoreDNS's test.A and friends do (test data, never input).
func rr(s string) dns.RR {
	r, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return r
}

// sortAndCheck compares resp with tc as CoreDNS's test.SortAndCheck
// does: the rcode, and each section as a multiset of records compared
// on what CoreDNS's test.Section compares (whole records, except that
// RRSIGs compare covered type, labels and signer, SOAs the primary name
// server, and a TTL of 303 in tc matches any TTL).
func sortAndCheck(resp *dns.Msg, tc testCase) error {
	if resp == nil {
		return fmt.Errorf("%s %s: no answer written", tc.Qname, dns.TypeToString[tc.Qtype])
	}
	if resp.Rcode != tc.Rcode {
		return fmt.Errorf("%s %s: rcode %s, want %s", tc.Qname, dns.TypeToString[tc.Qtype], dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.Rcode])
	}
	for _, s := range []struct {
		name      string
		got, want []dns.RR
	}{{"answer", resp.Answer, tc.Answer}, {"authority", resp.Ns, tc.Ns}, {"additional", resp.Extra, tc.Extra}} {
		g, w := sortedKeys(s.got, s.want), sortedKeys(s.want, nil)
		if !slices.Equal(g, w) {
			return fmt.Errorf("%s %s do=%v: %s section\n%s\nwant\n%s", tc.Qname, dns.TypeToString[tc.Qtype], tc.Do, s.name, strings.Join(g, "\n"), strings.Join(w, "\n"))
		}
	}
	return nil
}

// sortedKeys returns the comparison keys of rrs, sorted. TTLs are left
// out when want has the same record with TTL 303 ("don't care").
func sortedKeys(rrs, want []dns.RR) []string {
	anyTTL := map[string]bool{}
	for _, w := range want {
		if w.Header().Ttl == 303 {
			anyTTL[w.Header().Name+"/"+dns.TypeToString[w.Header().Rrtype]] = true
		}
	}
	out := make([]string, 0, len(rrs))
	for _, r := range rrs {
		if r.Header().Rrtype == dns.TypeOPT {
			continue
		}
		h := r.Header()
		ttl := fmt.Sprint(h.Ttl)
		if h.Ttl == 303 || anyTTL[h.Name+"/"+dns.TypeToString[h.Rrtype]] {
			ttl = "*"
		}
		key := h.Name + " " + ttl + " " + dns.TypeToString[h.Rrtype] + " "
		switch x := r.(type) {
		case *dns.RRSIG:
			key += fmt.Sprintf("%s %d %s", dns.TypeToString[x.TypeCovered], x.Labels, x.SignerName)
		case *dns.SOA:
			key += x.Ns
		default:
			key += strings.TrimPrefix(r.String(), h.String())
		}
		out = append(out, key)
	}
	sort.Strings(out)
	return out
}

// errorHandler answers SERVFAIL, as CoreDNS's test.ErrorHandler.
var errorHandler = plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	w.WriteMsg(m)
	return dns.RcodeServerFailure, nil
})

// fileFor parses zone text for origin and returns a File serving it with
// errorHandler as next.
func fileFor(t testing.TB, text, origin string) *File {
	t.Helper()
	z, err := Parse(strings.NewReader(text), origin, "stdin", 0)
	if err != nil {
		t.Fatalf("parse %s: %v", origin, err)
	}
	return &File{Next: errorHandler, Zones: Zones{Z: map[string]*Zone{origin: z}, Names: []string{origin}}}
}
