package acme

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/ingress/acme/acmetest"
)

// TestDNS01WithBIND: RFC 8555 section 8.4, "the client provisions a TXT
// resource record ... under the '_acme-challenge' label of the domain"
// and "SHOULD de-provision the resource record" afterwards, here by RFC
// 2136 updates signed with TSIG to a real BIND 9.
func TestDNS01WithBIND(t *testing.T) {
	b := acmetest.StartBIND(t, "example.test")
	ctx := context.Background()
	d := &DNS01{Server: b.Addr, TSIGKey: b.KeyName, TSIGSecret: b.Secret}
	if err := d.Check(); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ domain, name string }{
		{"example.test", "_acme-challenge.example.test"},
		{"shop.example.test", "_acme-challenge.shop.example.test"},
		// A wildcard authorization's identifier is the base domain; the
		// record is the base domain's either way.
		{"*.a.b.example.test", "_acme-challenge.a.b.example.test"},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			if got := ChallengeName(tc.domain); got != tc.name+"." {
				t.Fatalf("ChallengeName = %s, want %s.", got, tc.name)
			}
			cleanup, err := d.Present(ctx, tc.domain, "value-one")
			if err != nil {
				t.Fatal(err)
			}
			// The base domain and its wildcard (two authorizations) can
			// hold records at the same name at once.
			cleanup2, err := d.Present(ctx, tc.domain, "value-two")
			if err != nil {
				t.Fatal(err)
			}
			if got := b.TXT(t, tc.name); len(got) != 2 {
				t.Fatalf("TXT %s = %q, want both values", tc.name, got)
			}
			if err := cleanup(); err != nil {
				t.Fatal(err)
			}
			if got := b.TXT(t, tc.name); len(got) != 1 || got[0] != "value-two" {
				t.Fatalf("after the first cleanup TXT %s = %q, want only value-two", tc.name, got)
			}
			if err := cleanup2(); err != nil {
				t.Fatal(err)
			}
			if got := b.TXT(t, tc.name); len(got) != 0 {
				t.Fatalf("after both cleanups TXT %s = %q, want none", tc.name, got)
			}
		})
	}

	t.Run("propagation wait", func(t *testing.T) {
		w := *d
		w.PropagationWait = 150 * time.Millisecond
		start := time.Now()
		cleanup, err := w.Present(ctx, "wait.example.test", "v")
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited < w.PropagationWait {
			t.Errorf("Present returned after %v, before the propagation wait of %v", waited, w.PropagationWait)
		}
		cleanup()
		// An order that ends during the wait takes its record with it.
		w.PropagationWait = time.Minute
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := w.Present(short, "wait.example.test", "v"); err == nil {
			t.Fatal("Present outlived its context")
		}
		if got := b.TXT(t, "_acme-challenge.wait.example.test"); len(got) != 0 {
			t.Fatalf("record left after the context ended: %q", got)
		}
	})

	refusals := []struct {
		name    string
		d       DNS01
		domain  string
		wantErr string
	}{
		{"a wrong secret", DNS01{Server: b.Addr, TSIGKey: b.KeyName, TSIGSecret: "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nMTI="}, "shop.example.test", "did not accept TSIG key switchboard-acme."},
		{"an unknown key", DNS01{Server: b.Addr, TSIGKey: "someone-else", TSIGSecret: b.Secret}, "shop.example.test", "did not accept TSIG key someone-else."},
		{"no key", DNS01{Server: b.Addr}, "shop.example.test", "REFUSED"},
		{"a zone the server does not serve", DNS01{Server: b.Addr, TSIGKey: b.KeyName, TSIGSecret: b.Secret}, "shop.other.test", "SOA query for _acme-challenge.shop.other.test."},
		{"a name outside the configured zone", DNS01{Server: b.Addr, Zone: "example.test", TSIGKey: b.KeyName, TSIGSecret: b.Secret}, "shop.other.test", "is not in zone example.test."},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			d := tc.d
			if err := d.Check(); err != nil {
				t.Fatal(err)
			}
			_, err := d.Present(ctx, tc.domain, "x")
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Present: %v, want an error with %q", err, tc.wantErr)
			}
			if got := b.TXT(t, ChallengeName(tc.domain)); len(got) != 0 {
				t.Fatalf("a refused update left TXT %q", got)
			}
		})
	}
}

func TestDNS01Check(t *testing.T) {
	cases := []struct {
		name    string
		d       DNS01
		wantErr string
		check   func(DNS01) bool
	}{
		{"defaults", DNS01{Server: "127.0.0.1", TSIGKey: "k", TSIGSecret: "c2VjcmV0"}, "", func(d DNS01) bool {
			return d.Server == "127.0.0.1:53" && d.TSIGKey == "k." && d.TSIGAlgorithm == dns.HmacSHA256 && d.TTL == 60 && d.Timeout == 10*time.Second
		}},
		{"BIND's algorithm names", DNS01{Server: "[::1]:5353", TSIGKey: "k", TSIGSecret: "c2VjcmV0", TSIGAlgorithm: "HMAC-SHA512"}, "", func(d DNS01) bool {
			return d.Server == "[::1]:5353" && d.TSIGAlgorithm == dns.HmacSHA512
		}},
		{"zone made canonical", DNS01{Server: "ns:53", Zone: "Example.TEST"}, "", func(d DNS01) bool { return d.Zone == "example.test." }},
		{"no server", DNS01{}, "DNS01.Server: required", nil},
		{"key without secret", DNS01{Server: "ns:53", TSIGKey: "k"}, "go together", nil},
		{"secret not base64", DNS01{Server: "ns:53", TSIGKey: "k", TSIGSecret: "%%%"}, "not base64", nil},
		{"unknown algorithm", DNS01{Server: "ns:53", TSIGKey: "k", TSIGSecret: "c2VjcmV0", TSIGAlgorithm: "hmac-md4"}, "DNS01.TSIGAlgorithm", nil},
		{"bad zone", DNS01{Server: "ns:53", Zone: "a..b"}, "DNS01.Zone", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.d
			err := d.Check()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("check: %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(d) {
				t.Fatalf("check: %v, %+v", err, d)
			}
		})
	}
}
