// Package plugin is the contract between the DNS server and its plugins,
// the same as CoreDNS's: a plugin wraps the next Handler, serves what is
// its own and passes the rest on. Each plugin lives in its own package
// under dns/plugin/NAME with its setup (Corefile parsing), handler,
// metrics, README and tests.
package plugin

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// Handler serves DNS queries. ServeDNS returns the response code it wrote,
// or, when it wrote nothing, the code the server should answer with (see
// ClientWrite); a non-nil error is logged by the errors plugin.
type Handler interface {
	ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error)
	Name() string
}

// Plugin builds a handler around the next one in the chain.
type Plugin func(next Handler) Handler

// HandlerFunc adapts a function to a Handler named "handlerfunc".
type HandlerFunc func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error)

// ServeDNS calls f.
func (f HandlerFunc) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return f(ctx, w, r)
}

// Name implements Handler.
func (f HandlerFunc) Name() string { return "handlerfunc" }

// ErrNoNext is returned when a plugin must pass a query on and there is no
// next plugin.
var ErrNoNext = errors.New("no next plugin found")

// NextOrFailure calls next, or answers SERVFAIL when there is none.
func NextOrFailure(name string, next Handler, ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if next != nil {
		return next.ServeDNS(ctx, w, r)
	}
	return dns.RcodeServerFailure, Error(name, ErrNoNext)
}

// ClientWrite tells whether a handler that returned rcode has already
// written its answer. For SERVFAIL, REFUSED, FORMERR and NOTIMP the server
// writes the answer itself; for every other code the plugin has.
func ClientWrite(rcode int) bool {
	switch rcode {
	case dns.RcodeServerFailure, dns.RcodeRefused, dns.RcodeFormatError, dns.RcodeNotImplemented:
		return false
	}
	return true
}

// Error wraps err with the plugin's name: "plugin/NAME: err".
func Error(name string, err error) error { return fmt.Errorf("%s/%s: %w", "plugin", name, err) }

// Zones are the zones a plugin is authoritative for, fully qualified and
// lower case.
type Zones []string

// Matches returns the longest zone that qname (lower case, fully
// qualified) is in, or "" when none.
func (z Zones) Matches(qname string) string {
	best := ""
	for _, zone := range z {
		if len(zone) > len(best) && IsSubDomain(zone, qname) {
			best = zone
		}
	}
	return best
}

// IsSubDomain tells whether child is parent or below it, ignoring case,
// as dns.IsSubDomain but without allocating for ordinary names (both
// fully qualified, no escapes).
func IsSubDomain(parent, child string) bool {
	if parent == "." {
		return true
	}
	if !plainFqdn(parent) || !plainFqdn(child) {
		return dns.IsSubDomain(parent, child)
	}
	if len(child) < len(parent) {
		return false
	}
	off := len(child) - len(parent)
	if off > 0 && child[off-1] != '.' {
		return false
	}
	return strings.EqualFold(child[off:], parent)
}

// plainFqdn: ends with a dot and has no escape.
func plainFqdn(s string) bool {
	return len(s) > 0 && s[len(s)-1] == '.' && strings.IndexByte(s, '\\') < 0
}

// Normalize makes each zone fully qualified and lower case.
func (z Zones) Normalize() {
	for i := range z {
		z[i] = Host(z[i])
	}
}

// Host normalizes a zone or host name: lower case, fully qualified, with
// a dns:// scheme and a :port removed.
func Host(s string) string {
	s = strings.TrimPrefix(strings.ToLower(s), "dns://")
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[:i], ":") {
		s = s[:i]
	}
	return dns.Fqdn(s)
}

// OriginsFromArgsOrServerBlock returns the zones given as plugin arguments
// (normalized; a CIDR such as 10.0.0.0/24 becomes its reverse zones), or
// the server block's zones when there are none, as CoreDNS plugins do.
// Arguments that are not valid zones are skipped, as CoreDNS does.
func OriginsFromArgsOrServerBlock(args, serverBlockZones []string) []string {
	if len(args) == 0 {
		out := make([]string, len(serverBlockZones))
		copy(out, serverBlockZones)
		return out
	}
	out := make([]string, 0, len(args))
	for _, a := range args {
		out = append(out, NormalizeExact(a)...)
	}
	return out
}

// NormalizeExact turns a zone argument into its zones: a transport scheme
// (dns://, tls://, ...) and a :port are removed, a CIDR becomes its reverse zones (in-addr.arpa or
// ip6.arpa, split on label boundaries), a name becomes lower case and fully
// qualified. Invalid input gives nil.
func NormalizeExact(s string) []string {
	_, s = TransportPrefix(s)
	hosts, _, err := SplitHostPort(s)
	if err != nil {
		return nil
	}
	for i := range hosts {
		hosts[i] = Name(hosts[i]).Normalize()
	}
	return hosts
}

// TransportPrefix splits a "scheme://" prefix off s as CoreDNS's
// plugin/pkg/parse.Transport does: "dns" when there is none.
func TransportPrefix(s string) (trans, addr string) {
	for _, t := range []string{"tls", "dns", "quic", "grpc", "h3", "https", "unix"} {
		if strings.HasPrefix(s, t+"://") {
			return t, s[len(t)+3:]
		}
	}
	return "dns", s
}

// Name is a domain name that can be compared with others.
type Name string

// Matches tells whether child is n or below it.
func (n Name) Matches(child string) bool {
	if dns.Name(n) == dns.Name(child) {
		return true
	}
	return IsSubDomain(string(n), child)
}

// Normalize returns n lower case and fully qualified.
func (n Name) Normalize() string { return strings.ToLower(dns.Fqdn(string(n))) }

// SplitHostPort splits a server block key or zone argument (without its
// scheme) into its zones and port, as CoreDNS's plugin.SplitHostPort: a
// CIDR is expanded to the reverse zones that cover it ("10.0.0.0/23" gives
// 0.0.10.in-addr.arpa. and 1.0.10.in-addr.arpa.); the port is "" when
// none is given.
func SplitHostPort(s string) (hosts []string, port string, err error) {
	colon := strings.LastIndex(s, ":")
	if colon == len(s)-1 {
		return nil, "", fmt.Errorf("expecting data after last colon: %q", s)
	}
	if colon != -1 {
		if p, err := strconv.Atoi(s[colon+1:]); err == nil {
			if p < 0 || p > math.MaxUint16 {
				return nil, "", fmt.Errorf("port out of range: %q", s)
			}
			port = strconv.Itoa(p)
			s = s[:colon]
		}
	}
	if len(s) > 255 {
		return nil, "", fmt.Errorf("specified zone is too long: %d > 255", len(s))
	}
	if _, ok := dns.IsDomainName(s); !ok {
		return nil, "", fmt.Errorf("zone is not a valid domain name: %s", s)
	}
	// As CoreDNS: fully qualifying must not make the name invalid.
	if _, ok := dns.IsDomainName(dns.Fqdn(s)); !ok {
		return nil, "", fmt.Errorf("zone is not a valid domain name: %s", s)
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return []string{s}, port, nil
	}
	if s[0] == ':' || (s[0] == '0' && strings.Contains(s, ":")) {
		return nil, "", fmt.Errorf("invalid CIDR %s", s)
	}
	return ReverseZones(pfx.Masked()), port, nil
}

// ReverseZones returns the reverse zones covering a network: the prefix
// is widened to the next label boundary (8 bits for IPv4, 4 for IPv6) and
// split into one zone per network of that size, as CoreDNS's cidr.Split
// and cidr.Reverse do.
func ReverseZones(p netip.Prefix) []string {
	boundary := 8
	if p.Addr().Is6() {
		boundary = 4
	}
	bits := p.Bits()
	nbits := (bits + boundary - 1) / boundary * boundary
	count := 1 << (nbits - bits) // at most 2^7 (IPv4) or 2^3 (IPv6)
	out := make([]string, 0, count)
	addr := p.Addr()
	for i := 0; i < count; i++ {
		out = append(out, reverseZone(addr, nbits))
		addr = nextNetwork(addr, nbits)
	}
	return out
}

// reverseZone names the reverse zone of the network at addr with nbits
// (a multiple of the label size).
func reverseZone(addr netip.Addr, nbits int) string {
	var b strings.Builder
	if addr.Is4() {
		a := addr.As4()
		for i := nbits/8 - 1; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(a[i])))
			b.WriteByte('.')
		}
		b.WriteString("in-addr.arpa.")
		return b.String()
	}
	a := addr.As16()
	const hexDigits = "0123456789abcdef"
	for i := nbits/4 - 1; i >= 0; i-- {
		v := a[i/2]
		if i%2 == 0 {
			v >>= 4
		}
		b.WriteByte(hexDigits[v&0xf])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa.")
	return b.String()
}

// nextNetwork returns the address of the network of nbits that follows the
// one at addr.
func nextNetwork(addr netip.Addr, nbits int) netip.Addr {
	if nbits == 0 {
		return addr
	}
	b := addr.AsSlice()
	bit := nbits - 1
	for bit >= 0 {
		i, m := bit/8, byte(1)<<(7-bit%8)
		if b[i]&m == 0 {
			b[i] |= m
			break
		}
		b[i] &^= m
		bit--
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

// ErrOnce is returned when a plugin that may appear once per server block
// appears twice, as CoreDNS's plugin.ErrOnce.
var ErrOnce = errors.New("this plugin can only be used once per Server Block")

// Namespace is the prefix of every metric a plugin exports ("coredns", as
// CoreDNS, so that dashboards and alerts keep working).
const Namespace = "coredns"

// TimeBuckets are CoreDNS's latency buckets: 0.25ms to 8s.
var TimeBuckets = prometheus.ExponentialBuckets(0.00025, 2, 16)

// SlimTimeBuckets are CoreDNS's coarse latency buckets: 0.25ms to 2.5s.
var SlimTimeBuckets = prometheus.ExponentialBuckets(0.00025, 10, 5)

// NativeHistogramBucketFactor is CoreDNS's native histogram bucket factor.
var NativeHistogramBucketFactor = 1.05

// Register registers c on reg and returns the collector to use from then
// on: c itself, or, when an equal collector is already registered (a
// reload registers again on the same registry; several server blocks share
// one), that one, so that counts continue. A nil reg registers nothing and
// returns c. Metrics are never registered on the global registry.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(T); ok {
				return existing
			}
		}
	}
	return c
}

// Versioned is implemented by plugins whose answers follow data that
// changes while the server runs (kubernetes follows the cluster store).
// Version returns a number that changes whenever an answer the plugin
// gives for qname may have changed; 0 means its answers for qname never
// change (names outside its zones). The cache records the number with
// each answer it stores and drops the answer once the number differs, so
// that a change is answered at once rather than when the cached TTL runs
// out.
//
// qname is fully qualified, in any letter case. Version is called on
// every cache hit: it must be lock-free, cheap and must not allocate. A
// plugin changes the number only after the data it stands for is visible
// to its ServeDNS, so that an answer computed after reading a number is
// at least as new as that number.
type Versioned interface {
	Version(qname string) uint64
}
