package acme

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNS01 answers dns-01 challenges (RFC 8555 section 8.4: a TXT record
// "_acme-challenge.<domain>" holding the key authorization's digest) by
// dynamic updates (RFC 2136) to the zone's primary server, signed with a
// TSIG key (RFC 8945) when one is given: what cert-manager's rfc2136
// solver does, and what BIND, Knot, PowerDNS and Windows DNS accept.
// DNS-01 is the only way to certificates for wildcard names ("*.example.com":
// directories offer no HTTP-01 for them) and for hosts the directory cannot
// reach over HTTP.
type DNS01 struct {
	// Server is the primary's address, host:port (port 53 when missing).
	Server string
	// Zone is the zone to update; "" finds it by asking Server for the
	// SOA of the challenge name (the zone apex is the SOA's owner).
	Zone string
	// TSIGKey names the TSIG key and TSIGSecret is its secret, base64 (as
	// in BIND's key statement and tsig-keygen's output); TSIGAlgorithm is
	// one of dns.HmacSHA256 (the default), dns.HmacSHA512, dns.HmacSHA1...
	// No key: updates are sent unsigned (a server that allows updates by
	// address).
	TSIGKey, TSIGSecret, TSIGAlgorithm string
	// TTL of the TXT records (default 60 s); Timeout of each exchange
	// with the server (default 10 s).
	TTL     uint32
	Timeout time.Duration
	// PropagationWait is how long to wait after the primary answers the
	// record before the directory is asked to validate: the time the
	// zone's secondaries take to follow (NOTIFY and IXFR), since the
	// directory may ask any of them. 0: the primary is the only server.
	PropagationWait time.Duration
}

// tsigAlgorithms are the HMACs miekg/dns signs with, by the names BIND
// and RFC 8945 give them.
var tsigAlgorithms = map[string]string{
	"hmac-sha1": dns.HmacSHA1, "hmac-sha224": dns.HmacSHA224, "hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384, "hmac-sha512": dns.HmacSHA512,
}

// FieldError is a DNS01 field Check refuses.
type FieldError struct {
	Field  string // "Server", "Zone", "TSIGKey", "TSIGSecret", "TSIGAlgorithm"
	Reason string
}

func (e *FieldError) Error() string { return "DNS01." + e.Field + ": " + e.Reason }

// Check fills the defaults and checks the fields; an error is a
// *FieldError.
func (d *DNS01) Check() error {
	if d.Server == "" {
		return &FieldError{"Server", "required"}
	}
	if _, _, err := net.SplitHostPort(d.Server); err != nil {
		d.Server = net.JoinHostPort(d.Server, "53")
	}
	if host, port, err := net.SplitHostPort(d.Server); err != nil || host == "" || port == "" {
		return &FieldError{"Server", fmt.Sprintf("%q: want host[:port]", d.Server)}
	}
	if d.Zone != "" {
		if _, ok := dns.IsDomainName(d.Zone); !ok {
			return &FieldError{"Zone", fmt.Sprintf("%q: not a domain name", d.Zone)}
		}
		d.Zone = dns.CanonicalName(d.Zone)
	}
	if (d.TSIGKey == "") != (d.TSIGSecret == "") {
		return &FieldError{"TSIGKey", "TSIGKey and TSIGSecret go together"}
	}
	if d.TSIGKey != "" {
		if _, ok := dns.IsDomainName(d.TSIGKey); !ok {
			return &FieldError{"TSIGKey", fmt.Sprintf("%q: not a key name", d.TSIGKey)}
		}
		d.TSIGKey = dns.CanonicalName(d.TSIGKey)
		if _, err := base64.StdEncoding.DecodeString(d.TSIGSecret); err != nil {
			return &FieldError{"TSIGSecret", "not base64: " + err.Error()}
		}
		alg := strings.ToLower(strings.TrimSuffix(d.TSIGAlgorithm, "."))
		if alg == "" {
			alg = "hmac-sha256"
		}
		a, ok := tsigAlgorithms[alg]
		if !ok {
			return &FieldError{"TSIGAlgorithm", fmt.Sprintf("%q: want one of hmac-sha1, hmac-sha224, hmac-sha256, hmac-sha384, hmac-sha512", d.TSIGAlgorithm)}
		}
		d.TSIGAlgorithm = a
	}
	if d.PropagationWait < 0 {
		return &FieldError{"PropagationWait", "negative"}
	}
	if d.TTL == 0 {
		d.TTL = 60
	}
	if d.Timeout <= 0 {
		d.Timeout = 10 * time.Second
	}
	return nil
}

// ChallengeName is the TXT record's name for an identifier (RFC 8555
// section 8.4; for a wildcard authorization the identifier is the base
// domain, without "*.").
func ChallengeName(domain string) string {
	return dns.CanonicalName("_acme-challenge." + strings.TrimPrefix(domain, "*."))
}

func (d *DNS01) client() *dns.Client {
	c := &dns.Client{Net: "tcp", Timeout: d.Timeout}
	if d.TSIGKey != "" {
		c.TsigSecret = map[string]string{d.TSIGKey: d.TSIGSecret}
	}
	return c
}

// exchange sends m and wants NOERROR; a refusal names the server's rcode
// (NOTAUTH for a key it does not know or a bad signature, REFUSED for an
// update it does not allow).
func (d *DNS01) exchange(ctx context.Context, m *dns.Msg, what string) (*dns.Msg, error) {
	if d.TSIGKey != "" && m.Opcode == dns.OpcodeUpdate {
		m.SetTsig(d.TSIGKey, d.TSIGAlgorithm, 300, time.Now().Unix())
	}
	r, _, err := d.client().ExchangeContext(ctx, m, d.Server)
	if errors.Is(err, dns.ErrAuth) {
		return nil, fmt.Errorf("%s at %s: the server did not accept TSIG key %s (unknown to it, or another secret or algorithm): %w", what, d.Server, d.TSIGKey, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s at %s: %w", what, d.Server, err)
	}
	if r.Rcode != dns.RcodeSuccess && !(m.Opcode == dns.OpcodeQuery && r.Rcode == dns.RcodeNameError) {
		return nil, fmt.Errorf("%s at %s: %s", what, d.Server, dns.RcodeToString[r.Rcode])
	}
	return r, nil
}

// zoneOf is the zone holding name: Zone, or the owner of the SOA the
// server gives for name (in the answer at the apex, in the authority
// section below it).
func (d *DNS01) zoneOf(ctx context.Context, name string) (string, error) {
	if d.Zone != "" {
		if !dns.IsSubDomain(d.Zone, name) {
			return "", fmt.Errorf("%s is not in zone %s", name, d.Zone)
		}
		return d.Zone, nil
	}
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeSOA)
	r, err := d.exchange(ctx, m, "SOA query for "+name)
	if err != nil {
		return "", err
	}
	for _, rr := range append(r.Answer, r.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, name) {
			return dns.CanonicalName(soa.Hdr.Name), nil
		}
	}
	return "", fmt.Errorf("SOA query for %s at %s: no SOA in the answer (is the server authoritative for it?)", name, d.Server)
}

// Present adds the TXT record value at ChallengeName(domain) and returns
// the function that removes exactly that record again (within Timeout of
// its own, whatever became of ctx). It returns once the server answers
// the record and PropagationWait has passed.
func (d *DNS01) Present(ctx context.Context, domain, value string) (cleanup func() error, err error) {
	name := ChallengeName(domain)
	zone, err := d.zoneOf(ctx, name)
	if err != nil {
		return nil, err
	}
	rr := &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: d.TTL}, Txt: []string{value}}
	add := new(dns.Msg)
	add.SetUpdate(zone)
	add.Insert([]dns.RR{rr})
	if _, err := d.exchange(ctx, add, "update of zone "+zone+" adding "+name+" TXT"); err != nil {
		return nil, err
	}
	cleanup = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), d.Timeout)
		defer cancel()
		del := new(dns.Msg)
		del.SetUpdate(zone)
		del.Remove([]dns.RR{rr})
		_, err := d.exchange(ctx, del, "update of zone "+zone+" removing "+name+" TXT")
		return err
	}
	// The primary answers its own updates at once; this catches a server
	// that took the update and serves another view.
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeTXT)
	r, err := d.exchange(ctx, q, "TXT query for "+name)
	if err == nil && !hasTXT(r, value) {
		err = fmt.Errorf("TXT query for %s at %s: the record just added is not answered", name, d.Server)
	}
	if err == nil && d.PropagationWait > 0 {
		select {
		case <-time.After(d.PropagationWait):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	return cleanup, nil
}

func hasTXT(r *dns.Msg, value string) bool {
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			return true
		}
	}
	return false
}
