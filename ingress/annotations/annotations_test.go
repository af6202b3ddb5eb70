package annotations

import (
	"crypto/sha1"
	"encoding/base64"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"k8s.io/utils/ptr"
)

func TestParse(t *testing.T) {
	a := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	sb := func(n string) string { return Prefix + n }
	cases := []struct {
		name    string
		ann     map[string]string
		want    *Config
		wantErr string // substring of the error list
	}{
		{"no annotations", nil, &Config{}, ""},
		{"other prefixes are ignored", a("nginx.ingress.kubernetes.io/rewrite-target", "/$1"), &Config{}, ""},
		{"unknown switchboard annotation", a(sb("rewrite-targte"), "/"), nil, `metadata.annotations[switchboard.dev/rewrite-targte]: Unsupported value`},
		{"rewrite-target", a(sb(RewriteTarget), "/api"), &Config{RewriteTarget: "/api"}, ""},
		{"rewrite-target relative", a(sb(RewriteTarget), "api"), nil, "must begin with '/'"},
		{"rewrite-target capture group", a(sb(RewriteTarget), "/$1"), nil, "plain path"},
		{"rewrite-target dot-segment", a(sb(RewriteTarget), "/a/../b"), nil, "dot-segments"},
		{"ssl-redirect false", a(sb(SSLRedirect), "false"), &Config{SSLRedirect: ptr.To(false)}, ""},
		{"ssl-redirect yes", a(sb(SSLRedirect), "yes"), nil, `must be "true" or "false"`},
		{"backend-protocol GRPC", a(sb(BackendProtocol), "GRPC"), &Config{BackendProtocol: GRPC}, ""},
		{"backend-protocol https lower case", a(sb(BackendProtocol), "https"), &Config{BackendProtocol: HTTPS}, ""},
		{"backend-protocol FCGI", a(sb(BackendProtocol), "FCGI"), nil, "Unsupported value"},
		{"timeouts in seconds and as durations", a(sb(ConnectTimeout), "3", sb(ReadTimeout), "1500ms"), &Config{ConnectTimeout: 3 * time.Second, ReadTimeout: 1500 * time.Millisecond}, ""},
		{"timeout zero", a(sb(ReadTimeout), "0"), nil, "from 1 to 3600 seconds"},
		{"timeout negative duration", a(sb(ConnectTimeout), "-1s"), nil, "above 0"},
		{"timeout words", a(sb(ConnectTimeout), "soon"), nil, "whole seconds"},
		{"rate limit with default burst (5x, as ingress-nginx)", a(sb(LimitRPS), "2"), &Config{RateLimit: &RateLimit{RPS: 2, Burst: 10}}, ""},
		{"rate limit with burst", a(sb(LimitRPS), "0.5", sb(LimitBurst), "3"), &Config{RateLimit: &RateLimit{RPS: 0.5, Burst: 3}}, ""},
		{"rate limit zero", a(sb(LimitRPS), "0"), nil, "greater than 0"},
		{"rate limit NaN", a(sb(LimitRPS), "NaN"), nil, "number of requests"},
		{"burst without rps", a(sb(LimitBurst), "3"), nil, "limit-burst needs limit-rps"},
		{"canary by header and weight", a(sb(Canary), "true", sb(CanaryByHeader), "x-canary", sb(CanaryWeight), "20"),
			&Config{Canary: &CanaryRule{Header: "X-Canary", Weight: 20}}, ""},
		{"canary header value", a(sb(Canary), "true", sb(CanaryByHeader), "X-Env", sb(CanaryByHeaderValue), "staging"),
			&Config{Canary: &CanaryRule{Header: "X-Env", HeaderValue: "staging"}}, ""},
		{"canary weight above 100", a(sb(Canary), "true", sb(CanaryWeight), "101"), nil, "from 0 to 100"},
		{"canary settings without canary", a(sb(CanaryWeight), "10"), nil, `needs switchboard.dev/canary: "true"`},
		{"canary header value without header", a(sb(Canary), "true", sb(CanaryByHeaderValue), "x"), nil, "needs canary-by-header"},
		{"canary bad header name", a(sb(Canary), "true", sb(CanaryByHeader), "x canary"), nil, "canary-by-header"},
		{"affinity cookie", a(sb(Affinity), "cookie", sb(SessionCookieName), "route", sb(SessionCookieMaxAge), "60"),
			&Config{Affinity: &CookieAffinity{Name: "route", MaxAge: time.Minute}}, ""},
		{"affinity default cookie name", a(sb(Affinity), "cookie"), &Config{Affinity: &CookieAffinity{Name: DefaultCookieName}}, ""},
		{"affinity ip-hash", a(sb(Affinity), "ip"), nil, "Unsupported value"},
		{"cookie name with ';'", a(sb(Affinity), "cookie", sb(SessionCookieName), "a;b"), nil, "cookie name"},
		{"source ranges", a(sb(WhitelistSourceRange), "10.0.0.0/8, 127.0.0.1,::1/128"),
			&Config{SourceRanges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}}, ""},
		{"source range host bits are masked", a(sb(WhitelistSourceRange), "10.1.2.3/8"), &Config{SourceRanges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, ""},
		{"source range garbage", a(sb(WhitelistSourceRange), "10.0.0.0/33"), nil, "is not a CIDR"},
		{"source range empty", a(sb(WhitelistSourceRange), " , "), nil, "at least one"},
		{"basic auth", a(sb(AuthType), "basic", sb(AuthSecret), "users", sb(AuthRealm), "shop staff"),
			&Config{BasicAuth: &BasicAuth{Secret: "users", Realm: "shop staff"}}, ""},
		{"basic auth without secret", a(sb(AuthType), "basic"), nil, "needs the name of a Secret"},
		{"basic auth secret in another namespace", a(sb(AuthType), "basic", sb(AuthSecret), "other/users"), nil, "name of a Secret in the Ingress's namespace"},
		{"auth-secret without auth-type", a(sb(AuthSecret), "users"), nil, "need auth-type: basic"},
		{"auth-type digest", a(sb(AuthType), "digest", sb(AuthSecret), "users"), nil, "Unsupported value"},
		{"realm with a quote", a(sb(AuthType), "basic", sb(AuthSecret), "users", sb(AuthRealm), `a"b`), nil, "printable"},
		{"body size nginx units", a(sb(ProxyBodySize), "8m"), &Config{BodySizeLimit: 8 << 20}, ""},
		{"body size Ki", a(sb(ProxyBodySize), "512Ki"), &Config{BodySizeLimit: 512 << 10}, ""},
		{"body size 0 is unlimited", a(sb(ProxyBodySize), "0"), &Config{}, ""},
		{"body size milli is not a size", a(sb(ProxyBodySize), "1.5m"), nil, "size in bytes"},
		{"acme true", a(sb(ACME), "true"), &Config{ACME: true}, ""},
		{"acme false", a(sb(ACME), "false"), &Config{}, ""},
		{"acme must be a bool", a(sb(ACME), "yes"), nil, "true"},
		// Envoy's LEAST_REQUEST / nginx's least_conn; ingress-nginx's
		// load-balance annotation names round_robin as its default.
		{"load-balance least_request", a(sb(LoadBalanceName), "least_request"), &Config{LoadBalance: LeastRequest}, ""},
		{"load-balance round_robin", a(sb(LoadBalanceName), "round_robin"), &Config{LoadBalance: RoundRobin}, ""},
		{"load-balance ewma is not supported", a(sb(LoadBalanceName), "ewma"), nil, `metadata.annotations[switchboard.dev/load-balance]: Unsupported value: "ewma": supported values: "round_robin", "least_request"`},
		{"load-balance is spelled exactly", a(sb(LoadBalanceName), "LEAST_REQUEST"), nil, "Unsupported value"},
		{"two bad annotations are both reported", a(sb(SSLRedirect), "no", sb(CanaryWeight), "x"), nil, "ssl-redirect"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, errs := Parse(c.ann)
			if c.wantErr != "" {
				if errs == nil || !strings.Contains(errs.ToAggregate().Error(), c.wantErr) {
					t.Fatalf("errors %v, want one containing %q", errs, c.wantErr)
				}
				if got != nil {
					t.Errorf("config %+v returned with errors", got)
				}
				return
			}
			if errs != nil {
				t.Fatalf("errors: %v", errs.ToAggregate())
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestAllowedFrom(t *testing.T) {
	c, errs := Parse(map[string]string{Prefix + WhitelistSourceRange: "127.0.0.0/30,::1"})
	if errs != nil {
		t.Fatal(errs)
	}
	for _, x := range []struct {
		addr string
		want bool
	}{{"127.0.0.1", true}, {"127.0.0.3", true}, {"127.0.0.4", false}, {"::1", true}, {"::ffff:127.0.0.2", true}, {"10.0.0.1", false}} {
		if got := c.AllowedFrom(netip.MustParseAddr(x.addr)); got != x.want {
			t.Errorf("%s: allowed %v, want %v", x.addr, got, x.want)
		}
	}
	if !(&Config{}).AllowedFrom(netip.MustParseAddr("10.0.0.1")) {
		t.Error("no ranges must allow all")
	}
}

func TestHtpasswd(t *testing.T) {
	bc, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	sum := sha1.Sum([]byte("pw2"))
	data := "# staff\nalice:" + string(bc) + "\nbob:{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	h, err := ParseHtpasswd([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pw string
		want     bool
	}{{"alice", "s3cret", true}, {"alice", "s3cret", true}, {"alice", "wrong", false}, {"bob", "pw2", true}, {"bob", "s3cret", false}, {"carol", "s3cret", false}, {"", "", false}} {
		if got := h.Check(c.user, c.pw); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.pw, got, c.want)
		}
	}
	for _, bad := range []struct{ data, want string }{
		{"", "no users"},
		{"alice", "line 1: want user:hash"},
		{"alice:$apr1$abc$def", "MD5"},
		{"alice:plain", "unsupported hash"},
		{"alice:{SHA}xx", "bad {SHA} hash"},
		{"alice:$2y$10$short", "bad bcrypt hash"},
		{"a:" + string(bc) + "\na:" + string(bc), "listed twice"},
	} {
		if _, err := ParseHtpasswd([]byte(bad.data)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseHtpasswd(%q) = %v, want %q", bad.data, err, bad.want)
		}
	}
}

// FuzzParse: no annotation set makes Parse panic, and what it accepts is
// consistent (every error has a field path under metadata.annotations; an
// accepted config's values are in range).
func FuzzParse(f *testing.F) {
	for _, s := range [][2]string{{RewriteTarget, "/a/b"}, {LimitRPS, "1e3"}, {LimitBurst, "7"}, {CanaryWeight, "50"},
		{WhitelistSourceRange, "10.0.0.0/8,::1"}, {ProxyBodySize, "10m"}, {ConnectTimeout, "1.5s"}, {SessionCookieName, "c"}, {BackendProtocol, "grpc"}, {LoadBalanceName, "least_request"}} {
		f.Add(s[0], s[1], Canary, "true")
		f.Add(s[0], s[1], Affinity, "cookie")
	}
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		c, errs := Parse(map[string]string{Prefix + k1: v1, Prefix + k2: v2})
		for _, e := range errs {
			if !strings.HasPrefix(e.Field, "metadata.annotations[") {
				t.Fatalf("error without the annotation's path: %v", e)
			}
		}
		if errs != nil {
			return
		}
		if c.RateLimit != nil && (c.RateLimit.RPS <= 0 || c.RateLimit.Burst < 1) {
			t.Fatalf("rate limit out of range: %+v", c.RateLimit)
		}
		if c.Canary != nil && (c.Canary.Weight < 0 || c.Canary.Weight > 100) {
			t.Fatalf("canary weight out of range: %+v", c.Canary)
		}
		if _, ok := ParseLoadBalance(string(c.LoadBalance)); c.LoadBalance != "" && !ok {
			t.Fatalf("load-balance out of range: %q", c.LoadBalance)
		}
		if c.BodySizeLimit < 0 || c.ConnectTimeout < 0 || c.ReadTimeout < 0 {
			t.Fatalf("negative limit: %+v", c)
		}
		if c.RewriteTarget != "" && checkTarget(c.RewriteTarget) != nil {
			t.Fatalf("bad rewrite target accepted: %q", c.RewriteTarget)
		}
	})
}
