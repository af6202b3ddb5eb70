// Package annotations owns the switchboard.dev/* annotations of an
// Ingress: each is parsed into a typed value and validated, and an
// Ingress with an unknown or malformed one is refused as a whole (the
// controller reports it and keeps serving the others). Values are never
// rendered into any text that is parsed again.
//
// It parses strings only: it does not read Secrets (the controller loads
// the basic-auth Secret and hands its data to ParseHtpasswd), route, or
// touch the network.
package annotations

import (
	"fmt"
	"math"
	"net/netip"
	"net/textproto"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Prefix is the prefix of every switchboard annotation.
const Prefix = "switchboard.dev/"

// The annotations (after Prefix), named as ingress-nginx names its
// equivalents under nginx.ingress.kubernetes.io/.
const (
	RewriteTarget        = "rewrite-target"
	SSLRedirect          = "ssl-redirect"
	BackendProtocol      = "backend-protocol"
	ConnectTimeout       = "proxy-connect-timeout"
	ReadTimeout          = "proxy-read-timeout"
	LimitRPS             = "limit-rps"
	LimitBurst           = "limit-burst"
	Canary               = "canary"
	CanaryByHeader       = "canary-by-header"
	CanaryByHeaderValue  = "canary-by-header-value"
	CanaryWeight         = "canary-weight"
	Affinity             = "affinity"
	SessionCookieName    = "session-cookie-name"
	SessionCookieMaxAge  = "session-cookie-max-age"
	WhitelistSourceRange = "whitelist-source-range"
	AuthType             = "auth-type"
	AuthSecret           = "auth-secret"
	AuthRealm            = "auth-realm"
	ProxyBodySize        = "proxy-body-size"
	// ACME asks for the certificates of the Ingress's spec.tls entries
	// from the controller's ACME directory (ingress/acme).
	ACME = "acme"
	// LoadBalanceName chooses how the endpoints of the Ingress's backends
	// are picked (ingress-nginx's load-balance).
	LoadBalanceName        = "load-balance"
	DefaultCookieName      = "SWITCHBOARD_AFFINITY"
	DefaultAuthRealm       = "Authentication Required"
	DefaultBurstMultiplier = 5
)

// Known lists every annotation name (after Prefix).
var Known = []string{RewriteTarget, SSLRedirect, BackendProtocol, ConnectTimeout, ReadTimeout, LimitRPS, LimitBurst,
	Canary, CanaryByHeader, CanaryByHeaderValue, CanaryWeight, Affinity, SessionCookieName, SessionCookieMaxAge,
	WhitelistSourceRange, AuthType, AuthSecret, AuthRealm, ProxyBodySize, ACME, LoadBalanceName}

// LoadBalance is how a request's endpoint is picked (load-balance).
type LoadBalance string

const (
	// RoundRobin takes the ready endpoints in turn (the default).
	RoundRobin LoadBalance = "round_robin"
	// LeastRequest takes the endpoint with the fewest requests in flight
	// (Envoy's LEAST_REQUEST, nginx's least_conn).
	LeastRequest LoadBalance = "least_request"
)

// LoadBalances lists the values of load-balance.
var LoadBalances = []string{string(RoundRobin), string(LeastRequest)}

// ParseLoadBalance accepts exactly round_robin and least_request (the
// annotation's and the controller flag's values).
func ParseLoadBalance(v string) (LoadBalance, bool) {
	switch lb := LoadBalance(v); lb {
	case RoundRobin, LeastRequest:
		return lb, true
	}
	return "", false
}

// Protocol is how the proxy talks to the backend (backend-protocol).
type Protocol string

const (
	// HTTP is HTTP/1.1 over plain TCP (the default).
	HTTP Protocol = "HTTP"
	// HTTPS is HTTP/1.1 or HTTP/2 over TLS; the endpoint's certificate is
	// not verified (endpoints are pod IPs that no certificate names; as
	// ingress-nginx's proxy-ssl-verify "off" default).
	HTTPS Protocol = "HTTPS"
	// GRPC is gRPC over HTTP/2 without TLS (h2c, prior knowledge).
	GRPC Protocol = "GRPC"
	// H2C is HTTP/2 without TLS (prior knowledge).
	H2C Protocol = "H2C"
)

// RateLimit is a token bucket per client IP: RPS requests per second on
// average, bursts of up to Burst.
type RateLimit struct {
	RPS   float64
	Burst int
}

// CanaryRule sends part of the traffic of the main Ingress's host and
// path to this (canary) Ingress's backend: requests whose Header has
// HeaderValue (or, without HeaderValue, the value "always"; "never" keeps
// a request off the canary), else Weight percent of the requests.
type CanaryRule struct {
	Header      string // canonical form; "" for none
	HeaderValue string
	Weight      int // 0..100
}

// CookieAffinity pins a client to an endpoint with a cookie.
type CookieAffinity struct {
	Name   string
	MaxAge time.Duration // 0: a session cookie
}

// BasicAuth asks for HTTP basic authentication against the htpasswd data
// of a Secret in the Ingress's namespace (key "auth").
type BasicAuth struct {
	Secret string
	Realm  string
}

// Config is the parsed annotations of one Ingress. Zero fields are
// unset.
type Config struct {
	// RewriteTarget replaces the matched part of the path: for a Prefix
	// path, the matched prefix (the rest is appended); for Exact, the
	// whole path. "" leaves the path as it is.
	RewriteTarget string
	// SSLRedirect: nil means true (plain HTTP to a TLS host gets 308).
	SSLRedirect     *bool
	BackendProtocol Protocol // "" means HTTP
	ConnectTimeout  time.Duration
	ReadTimeout     time.Duration
	RateLimit       *RateLimit
	Canary          *CanaryRule // this Ingress is a canary
	Affinity        *CookieAffinity
	// SourceRanges are the client addresses allowed (403 for others);
	// empty allows all.
	SourceRanges []netip.Prefix
	BasicAuth    *BasicAuth
	// BodySizeLimit is the largest request body accepted (413 beyond);
	// 0 means no limit.
	BodySizeLimit int64
	// ACME: the certificates of spec.tls (entries with a secretName) are
	// obtained from an ACME directory and stored in those Secrets.
	ACME bool
	// LoadBalance picks the endpoints; "" leaves it to the controller's
	// default.
	LoadBalance LoadBalance
}

// Redirect reports whether plain HTTP requests to a TLS host of the
// Ingress are redirected.
func (c *Config) Redirect() bool { return c == nil || c.SSLRedirect == nil || *c.SSLRedirect }

// AllowedFrom reports whether a client address passes SourceRanges.
func (c *Config) AllowedFrom(a netip.Addr) bool {
	if c == nil || len(c.SourceRanges) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range c.SourceRanges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Parse parses the switchboard.dev/* annotations of an object (others are
// ignored). Every problem is reported, each with the annotation's field
// path (metadata.annotations[switchboard.dev/...]) and the reason.
func Parse(ann map[string]string) (*Config, field.ErrorList) {
	c := &Config{}
	var errs field.ErrorList
	root := field.NewPath("metadata", "annotations")
	get := func(name string) (string, *field.Path, bool) {
		v, ok := ann[Prefix+name]
		return strings.TrimSpace(v), root.Key(Prefix + name), ok
	}
	// Unknown names under our prefix are refused: a typo must not
	// silently drop a protection such as auth or a source range.
	var names []string
	for k := range ann {
		if n, ok := strings.CutPrefix(k, Prefix); ok && !slices.Contains(Known, n) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		errs = append(errs, field.NotSupported(root.Key(k), k, prefixed(Known)))
	}

	if v, p, ok := get(RewriteTarget); ok {
		if err := checkTarget(v); err != nil {
			errs = append(errs, field.Invalid(p, v, err.Error()))
		} else {
			c.RewriteTarget = v
		}
	}
	if v, p, ok := get(SSLRedirect); ok {
		b, err := parseBool(v)
		if err != nil {
			errs = append(errs, field.Invalid(p, v, err.Error()))
		} else {
			c.SSLRedirect = &b
		}
	}
	if v, p, ok := get(BackendProtocol); ok {
		switch pr := Protocol(strings.ToUpper(v)); pr {
		case HTTP, HTTPS, GRPC, H2C:
			c.BackendProtocol = pr
		default:
			errs = append(errs, field.NotSupported(p, v, []string{string(HTTP), string(HTTPS), string(GRPC), string(H2C)}))
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Duration
	}{{ConnectTimeout, &c.ConnectTimeout}, {ReadTimeout, &c.ReadTimeout}} {
		if v, p, ok := get(t.name); ok {
			d, err := parseTimeout(v)
			if err != nil {
				errs = append(errs, field.Invalid(p, v, err.Error()))
			} else {
				*t.dst = d
			}
		}
	}

	rps, rpsPath, hasRPS := get(LimitRPS)
	burst, burstPath, hasBurst := get(LimitBurst)
	if hasRPS {
		r, err := strconv.ParseFloat(rps, 64)
		switch {
		case err != nil || math.IsNaN(r) || math.IsInf(r, 0):
			errs = append(errs, field.Invalid(rpsPath, rps, "must be a number of requests per second"))
		case r <= 0 || r > 1e6:
			errs = append(errs, field.Invalid(rpsPath, rps, "must be greater than 0 and at most 1000000"))
		default:
			c.RateLimit = &RateLimit{RPS: r, Burst: max(1, int(math.Ceil(r*DefaultBurstMultiplier)))}
		}
	}
	if hasBurst {
		b, err := strconv.Atoi(burst)
		switch {
		case !hasRPS:
			errs = append(errs, field.Required(rpsPath, "limit-burst needs limit-rps"))
		case err != nil || b < 1 || b > 1e6:
			errs = append(errs, field.Invalid(burstPath, burst, "must be a whole number from 1 to 1000000"))
		case c.RateLimit != nil:
			c.RateLimit.Burst = b
		}
	}

	canary, canaryPath, isCanary := get(Canary)
	if isCanary {
		b, err := parseBool(canary)
		if err != nil {
			errs = append(errs, field.Invalid(canaryPath, canary, err.Error()))
		} else if b {
			c.Canary = &CanaryRule{}
		}
	}
	for _, n := range []string{CanaryByHeader, CanaryByHeaderValue, CanaryWeight} {
		v, p, ok := get(n)
		if !ok {
			continue
		}
		if c.Canary == nil {
			switch {
			case !isCanary:
				errs = append(errs, field.Required(canaryPath, n+" needs "+Prefix+Canary+": \"true\""))
			case canary == "false":
				// inert settings are almost certainly not what was meant
				errs = append(errs, field.Invalid(p, v, "needs "+Prefix+Canary+": \"true\""))
			}
			continue
		}
		switch n {
		case CanaryByHeader:
			if msgs := validation.IsHTTPHeaderName(v); len(msgs) > 0 {
				errs = append(errs, field.Invalid(p, v, strings.Join(msgs, "; ")))
			} else {
				c.Canary.Header = textproto.CanonicalMIMEHeaderKey(v)
			}
		case CanaryByHeaderValue:
			if v == "" || len(v) > 256 || strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				errs = append(errs, field.Invalid(p, v, "must be a non-empty header value without control characters, at most 256 bytes"))
			} else {
				c.Canary.HeaderValue = v
			}
		case CanaryWeight:
			w, err := strconv.Atoi(v)
			if err != nil || w < 0 || w > 100 {
				errs = append(errs, field.Invalid(p, v, "must be a whole number from 0 to 100 (percent of requests)"))
			} else {
				c.Canary.Weight = w
			}
		}
	}
	if c.Canary != nil && c.Canary.HeaderValue != "" && c.Canary.Header == "" {
		errs = append(errs, field.Required(root.Key(Prefix+CanaryByHeader), "canary-by-header-value needs canary-by-header"))
	}

	aff, affPath, hasAff := get(Affinity)
	if hasAff {
		if aff != "cookie" {
			errs = append(errs, field.NotSupported(affPath, aff, []string{"cookie"}))
		} else {
			c.Affinity = &CookieAffinity{Name: DefaultCookieName}
		}
	}
	if v, p, ok := get(SessionCookieName); ok {
		switch {
		case !hasAff:
			errs = append(errs, field.Required(affPath, "session-cookie-name needs affinity: cookie"))
		case !cookieNameRe.MatchString(v):
			errs = append(errs, field.Invalid(p, v, "must be a cookie name (RFC 6265 token: letters, digits and !#$%&'*+-.^_`|~), at most 64 characters"))
		case c.Affinity != nil:
			c.Affinity.Name = v
		}
	}
	if v, p, ok := get(SessionCookieMaxAge); ok {
		n, err := strconv.Atoi(v)
		switch {
		case !hasAff:
			errs = append(errs, field.Required(affPath, "session-cookie-max-age needs affinity: cookie"))
		case err != nil || n < 1 || n > 400*24*3600:
			// RFC 6265bis: user agents cap Max-Age at 400 days.
			errs = append(errs, field.Invalid(p, v, "must be a whole number of seconds from 1 to 34560000 (400 days)"))
		case c.Affinity != nil:
			c.Affinity.MaxAge = time.Duration(n) * time.Second
		}
	}

	if v, p, ok := get(WhitelistSourceRange); ok {
		ranges, err := ParseSourceRanges(v)
		if err != nil {
			errs = append(errs, field.Invalid(p, v, err.Error()))
		} else {
			c.SourceRanges = ranges
		}
	}

	at, atPath, hasAuth := get(AuthType)
	secret, secretPath, hasSecret := get(AuthSecret)
	realm, realmPath, hasRealm := get(AuthRealm)
	if hasAuth {
		if at != "basic" {
			errs = append(errs, field.NotSupported(atPath, at, []string{"basic"}))
		} else if !hasSecret || secret == "" {
			errs = append(errs, field.Required(secretPath, "auth-type basic needs the name of a Secret with an htpasswd file under key \"auth\""))
		} else if msgs := validation.IsDNS1123Subdomain(secret); len(msgs) > 0 {
			errs = append(errs, field.Invalid(secretPath, secret, "must be the name of a Secret in the Ingress's namespace: "+strings.Join(msgs, "; ")))
		} else {
			c.BasicAuth = &BasicAuth{Secret: secret, Realm: DefaultAuthRealm}
		}
	} else if hasSecret || hasRealm {
		errs = append(errs, field.Required(atPath, "auth-secret and auth-realm need auth-type: basic"))
	}
	if hasRealm && c.BasicAuth != nil {
		if realm == "" || len(realm) > 128 || strings.ContainsAny(realm, "\"\\") || strings.ContainsFunc(realm, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			errs = append(errs, field.Invalid(realmPath, realm, "must be 1 to 128 printable characters without '\"' or '\\'"))
		} else {
			c.BasicAuth.Realm = realm
		}
	}

	if v, p, ok := get(ProxyBodySize); ok {
		n, err := ParseSize(v)
		if err != nil {
			errs = append(errs, field.Invalid(p, v, err.Error()))
		} else {
			c.BodySizeLimit = n
		}
	}
	if v, p, ok := get(ACME); ok {
		b, err := parseBool(v)
		if err != nil {
			errs = append(errs, field.Invalid(p, v, err.Error()))
		} else {
			c.ACME = b
		}
	}
	if v, p, ok := get(LoadBalanceName); ok {
		if lb, ok := ParseLoadBalance(v); ok {
			c.LoadBalance = lb
		} else {
			errs = append(errs, field.NotSupported(p, v, LoadBalances))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

var cookieNameRe = regexp.MustCompile("^[A-Za-z0-9!#$%&'*+\\-.^_`|~]{1,64}$")

func prefixed(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = Prefix + n
	}
	return out
}

// parseBool accepts exactly "true" and "false" (as ingress-nginx's
// annotation parser does for its boolean annotations).
func parseBool(v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf(`must be "true" or "false"`)
}

// parseTimeout accepts whole seconds ("5", as ingress-nginx's proxy
// timeouts) or a Go duration ("1.5s", "500ms"), above 0 and at most an
// hour.
func parseTimeout(v string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 || n > 3600 {
			return 0, fmt.Errorf("must be from 1 to 3600 seconds")
		}
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf(`must be whole seconds ("5") or a duration ("1.5s", "500ms")`)
		}
	}
	if d <= 0 || d > time.Hour {
		return 0, fmt.Errorf("must be above 0 and at most 1h")
	}
	return d, nil
}

// checkTarget: a rewrite target is an absolute path in normal form:
// begins with '/', no "//", no dot-segments, no '%', '\', '?', '#', '$'
// or control characters (no capture-group references: switchboard
// matches paths without regular expressions).
func checkTarget(v string) error {
	if !strings.HasPrefix(v, "/") {
		return fmt.Errorf("must begin with '/'")
	}
	if len(v) > 1024 {
		return fmt.Errorf("must be at most 1024 bytes")
	}
	if strings.ContainsAny(v, "%\\?#$") || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("must be a plain path: no '%%', '\\', '?', '#', '$', spaces or control characters")
	}
	for _, seg := range strings.Split(v[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("must not contain dot-segments")
		}
	}
	if strings.Contains(v, "//") {
		return fmt.Errorf("must not contain \"//\"")
	}
	return nil
}

// ParseSourceRanges parses a comma-separated list of CIDRs or addresses
// ("10.0.0.0/8, 192.168.1.7, ::1/128"), as whitelist-source-range.
func ParseSourceRanges(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR: %v", s, err)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("must list at least one CIDR or IP address")
	}
	if len(out) > 1000 {
		return nil, fmt.Errorf("at most 1000 ranges")
	}
	return out, nil
}

// ParseSize parses a body size as nginx writes it: bytes, or with a
// binary suffix k/K, m/M, g/G (1024-based, as nginx's client_max_body_size),
// or Ki, Mi, Gi. "0" means no limit.
func ParseSize(v string) (int64, error) {
	m := sizeRe.FindStringSubmatch(v)
	if m == nil {
		return 0, fmt.Errorf(`must be a size in bytes with an optional suffix k, m or g (1024-based; "8m", "512k", "1048576")`)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("too large")
	}
	mult := int64(1)
	switch strings.ToLower(strings.TrimSuffix(m[2], "i")) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	}
	if n > math.MaxInt64/mult || n*mult > 1<<40 {
		return 0, fmt.Errorf("must be at most 1Ti")
	}
	return n * mult, nil
}

var sizeRe = regexp.MustCompile(`^([0-9]{1,13})([kKmMgG]i?)?$`)
