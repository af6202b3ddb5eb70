package ingress

import (
	"bytes"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/certs"
)

// selfSignedPEM writes a certificate and key for name; it returns the
// two file paths.
func selfSignedPEM(t *testing.T, name string) [2]string {
	t.Helper()
	c, err := certs.SelfSigned(name, []string{name}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := certs.PEM(c)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := [2]string{filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")}
	writeFile(t, p[0], crt)
	writeFile(t, p[1], key)
	return p
}

// logHas reports whether one line of a log has every part.
func logHas(log string, parts ...string) bool {
	for _, l := range strings.Split(log, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return true
		}
	}
	return false
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func annotated(ing *networkingv1.Ingress, kv ...string) *networkingv1.Ingress {
	if ing.Annotations == nil {
		ing.Annotations = map[string]string{}
	}
	for i := 0; i < len(kv); i += 2 {
		ing.Annotations[annotations.Prefix+kv[i]] = kv[i+1]
	}
	return ing
}

// startTLSBackend is an echo backend speaking HTTPS (backend-protocol
// HTTPS).
func startTLSBackend(t *testing.T, name string) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"backend":"`+name+`","path":"`+r.URL.Path+`","header":{"X-Tls":"`+tls.VersionName(r.TLS.Version)+`"}}`)
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	crt := selfSignedPEM(t, "backend")
	go srv.ServeTLS(ln, crt[0], crt[1])
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// TestAnnotationsWithCurl runs every switchboard.dev annotation through
// the real curl against a running controller: each case is an Ingress on
// a host of its own.
func TestAnnotationsWithCurl(t *testing.T) {
	s := newStore(t)
	var logs syncBuffer
	e := startController(t, s, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	e.create(classObj("switchboard", true))
	for _, svc := range []string{"web", "canary", "slow-svc"} {
		e.backendService("shop", svc)
	}
	// A backend that answers after 2 s (read-timeout).
	slowLn, _ := net.Listen("tcp", "127.0.0.1:0")
	slowSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { slowSrv.Close() })
	go slowSrv.Serve(slowLn)
	e.create(serviceObj("shop", "slow"), sliceObj("shop", "slow", "slow", int32(slowLn.Addr().(*net.TCPAddr).Port), "127.0.0.1"))
	// An HTTPS backend.
	e.create(serviceObj("shop", "secure"), sliceObj("shop", "secure", "secure", startTLSBackend(t, "secure"), "127.0.0.1"))
	// Two endpoints of one service (affinity).
	e.create(serviceObj("shop", "pair"), sliceObj("shop", "pair", "pair-1", startBackend(t, "pair-1"), "127.0.0.1"),
		sliceObj("shop", "pair", "pair-2", startBackend(t, "pair-2"), "127.0.0.1"))
	// htpasswd: alice (bcrypt), bob ({SHA}).
	bc, _ := bcrypt.GenerateFromPassword([]byte("wonderland"), bcrypt.MinCost)
	sha := sha1.Sum([]byte("pw2"))
	e.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "staff"},
		Data: map[string][]byte{"auth": []byte("alice:" + string(bc) + "\nbob:{SHA}" + base64.StdEncoding.EncodeToString(sha[:]) + "\n")}})

	tlsSecret, _ := tlsSecretObj(t, "shop", "noredirect-tls", "noredirect.test")
	e.create(tlsSecret)
	noRedirect := annotated(ingressObj("shop", "noredirect", "noredirect.test", pathRule("Prefix", "/", "web", 80)), annotations.SSLRedirect, "false")
	noRedirect.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"noredirect.test"}, SecretName: "noredirect-tls"}}

	e.create(
		annotated(ingressObj("shop", "rewrite", "rewrite.test", pathRule("Prefix", "/api", "web", 80), pathRule("Exact", "/old", "web", 80)), annotations.RewriteTarget, "/v2"),
		noRedirect,
		annotated(ingressObj("shop", "secure", "secure.test", pathRule("Prefix", "/", "secure", 80)), annotations.BackendProtocol, "HTTPS"),
		annotated(ingressObj("shop", "slow", "slow.test", pathRule("Prefix", "/", "slow", 80)), annotations.ReadTimeout, "500ms", annotations.ConnectTimeout, "1"),
		annotated(ingressObj("shop", "limited", "limited.test", pathRule("Prefix", "/", "web", 80)), annotations.LimitRPS, "0.01", annotations.LimitBurst, "2"),
		ingressObj("shop", "main", "canary.test", pathRule("Prefix", "/", "web", 80)),
		annotated(ingressObj("shop", "canary-header", "canary.test", pathRule("Prefix", "/", "canary", 80)), annotations.Canary, "true", annotations.CanaryByHeader, "X-Canary"),
		ingressObj("shop", "main-w", "weighted.test", pathRule("Prefix", "/", "web", 80)),
		annotated(ingressObj("shop", "canary-w", "weighted.test", pathRule("Prefix", "/", "canary", 80)), annotations.Canary, "true", annotations.CanaryWeight, "50",
			annotations.CanaryByHeader, "X-Env", annotations.CanaryByHeaderValue, "staging"),
		annotated(ingressObj("shop", "sticky", "sticky.test", pathRule("Prefix", "/", "pair", 80)), annotations.Affinity, "cookie", annotations.SessionCookieName, "route", annotations.SessionCookieMaxAge, "600"),
		annotated(ingressObj("shop", "office", "office.test", pathRule("Prefix", "/", "web", 80)), annotations.WhitelistSourceRange, "10.0.0.0/8, 192.168.0.0/16"),
		annotated(ingressObj("shop", "local", "local.test", pathRule("Prefix", "/", "web", 80)), annotations.WhitelistSourceRange, "127.0.0.0/8,::1"),
		annotated(ingressObj("shop", "private", "private.test", pathRule("Prefix", "/", "web", 80)), annotations.AuthType, "basic", annotations.AuthSecret, "staff", annotations.AuthRealm, "Staff only"),
		annotated(ingressObj("shop", "small", "small.test", pathRule("Prefix", "/", "web", 80)), annotations.ProxyBodySize, "1k"),
		// Refused: a bad value, an unknown name, a missing auth Secret.
		annotated(ingressObj("shop", "bad-value", "bad.test", pathRule("Prefix", "/", "web", 80)), annotations.LimitRPS, "fast"),
		annotated(ingressObj("shop", "typo", "typo.test", pathRule("Prefix", "/", "web", 80)), "whitelist-source-ranges", "10.0.0.0/8"),
		annotated(ingressObj("shop", "no-secret", "nosecret.test", pathRule("Prefix", "/", "web", 80)), annotations.AuthType, "basic", annotations.AuthSecret, "missing"),
		annotated(ingressObj("shop", "orphan-canary", "orphan.test", pathRule("Prefix", "/", "canary", 80)), annotations.Canary, "true", annotations.CanaryWeight, "100"),
	)
	e.settle()

	get := func(host, path string, args ...string) curlResult {
		return curl(t, append(args, "--resolve", resolve(host, e.http), url("http", host, e.http, path))...)
	}
	backendOf := func(r curlResult) string {
		if r.code != 200 {
			return "status " + itoa(r.code)
		}
		return r.echo(t).Backend
	}

	t.Run("rewrite-target", func(t *testing.T) {
		for _, c := range []struct{ path, want string }{
			{"/api", "/v2"}, {"/api/", "/v2/"}, {"/api/items/7", "/v2/items/7"}, {"/old", "/v2"},
		} {
			r := get("rewrite.test", c.path)
			if r.code != 200 || r.echo(t).Path != c.want {
				t.Errorf("%s: %d %q, want backend path %q", c.path, r.code, r.body, c.want)
			}
		}
	})
	t.Run("ssl-redirect false", func(t *testing.T) {
		if r := get("noredirect.test", "/"); r.code != 200 {
			t.Errorf("plain HTTP to a TLS host with ssl-redirect false: %d, want 200 (no 308)", r.code)
		}
	})
	t.Run("backend-protocol HTTPS", func(t *testing.T) {
		r := get("secure.test", "/x")
		if r.code != 200 || r.echo(t).Backend != "secure" || r.echo(t).Header["X-Tls"] == "" {
			t.Errorf("HTTPS backend: %d %q", r.code, r.body)
		}
	})
	t.Run("proxy-read-timeout", func(t *testing.T) {
		start := time.Now()
		r := get("slow.test", "/")
		if r.code != http.StatusGatewayTimeout {
			t.Errorf("backend slower than the read timeout: %d, want 504", r.code)
		}
		if d := time.Since(start); d > 1900*time.Millisecond {
			t.Errorf("answered after %v: the 500ms read timeout was not applied", d)
		}
	})
	t.Run("limit-rps with burst", func(t *testing.T) {
		// Burst 2 at 0.01/s: two requests pass, the third is refused
		// (GET: on the fast path), and so is a POST (the net/http path:
		// both paths share the Ingress's buckets).
		var codes []int
		var last curlResult
		for i := 0; i < 3; i++ {
			last = get("limited.test", "/")
			codes = append(codes, last.code)
		}
		if codes[0] != 200 || codes[1] != 200 || codes[2] != http.StatusTooManyRequests || last.headers.Get("Retry-After") != "1" {
			t.Errorf("codes %v, Retry-After %q; want [200 200 429], 1", codes, last.headers.Get("Retry-After"))
		}
		r := get("limited.test", "/", "-d", "x")
		if r.code != http.StatusTooManyRequests || r.headers.Get("Retry-After") != "1" {
			t.Errorf("POST after the burst: %d, Retry-After %q; want 429, 1", r.code, r.headers.Get("Retry-After"))
		}
	})
	t.Run("canary-by-header", func(t *testing.T) {
		for _, c := range []struct{ header, want string }{
			{"", "web"}, {"X-Canary: always", "canary"}, {"X-Canary: never", "web"}, {"X-Canary: maybe", "web"},
		} {
			var args []string
			if c.header != "" {
				args = []string{"-H", c.header}
			}
			if got := backendOf(get("canary.test", "/", args...)); got != c.want {
				t.Errorf("%q: %s, want %s", c.header, got, c.want)
			}
		}
	})
	t.Run("canary-by-header-value and canary-weight", func(t *testing.T) {
		for i := 0; i < 5; i++ {
			if got := backendOf(get("weighted.test", "/", "-H", "X-Env: staging")); got != "canary" {
				t.Fatalf("X-Env: staging: %s, want canary", got)
			}
		}
		// Weight 50: over 60 requests both backends answer (the chance
		// that one of them does not is 2^-59).
		seen := map[string]int{}
		for i := 0; i < 60; i++ {
			seen[backendOf(get("weighted.test", "/"))]++
		}
		if seen["web"] == 0 || seen["canary"] == 0 || len(seen) != 2 {
			t.Errorf("canary-weight 50: %v", seen)
		}
	})
	t.Run("affinity cookie", func(t *testing.T) {
		first := get("sticky.test", "/")
		ck := first.headers.Get("Set-Cookie")
		if first.code != 200 || !strings.HasPrefix(ck, "route=") || !strings.Contains(ck, "Max-Age=600") || !strings.Contains(ck, "HttpOnly") {
			t.Fatalf("first request: %d, Set-Cookie %q", first.code, ck)
		}
		pinned := first.echo(t).Backend
		cookie := strings.SplitN(ck, ";", 2)[0]
		for i := 0; i < 6; i++ {
			r := get("sticky.test", "/", "-H", "Cookie: "+cookie)
			if got := backendOf(r); got != pinned {
				t.Fatalf("request %d with %s: %s, want %s", i, cookie, got, pinned)
			}
			if r.headers.Get("Set-Cookie") != "" {
				t.Errorf("cookie set again although it named a live endpoint: %q", r.headers.Get("Set-Cookie"))
			}
		}
		// Without the cookie the endpoints take turns.
		seen := map[string]bool{}
		for i := 0; i < 4; i++ {
			seen[backendOf(get("sticky.test", "/"))] = true
		}
		if !seen["pair-1"] || !seen["pair-2"] {
			t.Errorf("without the cookie: %v, want both endpoints", seen)
		}
		// A cookie for no endpoint is replaced.
		r := get("sticky.test", "/", "-H", "Cookie: route=0000000000000000")
		if r.code != 200 || !strings.HasPrefix(r.headers.Get("Set-Cookie"), "route=") {
			t.Errorf("stale cookie: %d, Set-Cookie %q", r.code, r.headers.Get("Set-Cookie"))
		}
	})
	t.Run("whitelist-source-range", func(t *testing.T) {
		if r := get("office.test", "/"); r.code != http.StatusForbidden {
			t.Errorf("127.0.0.1 outside 10/8 and 192.168/16: %d, want 403", r.code)
		}
		if r := get("local.test", "/"); r.code != 200 {
			t.Errorf("127.0.0.1 inside 127/8: %d, want 200", r.code)
		}
	})
	t.Run("basic auth", func(t *testing.T) {
		r := get("private.test", "/")
		if r.code != http.StatusUnauthorized || r.headers.Get("WWW-Authenticate") != `Basic realm="Staff only", charset="UTF-8"` {
			t.Errorf("no credentials: %d, WWW-Authenticate %q", r.code, r.headers.Get("WWW-Authenticate"))
		}
		for _, c := range []struct {
			user string
			code int
		}{{"alice:wonderland", 200}, {"alice:wrong", 401}, {"bob:pw2", 200}, {"bob:wonderland", 401}, {"mallory:wonderland", 401}} {
			if r := get("private.test", "/", "-u", c.user); r.code != c.code {
				t.Errorf("-u %s: %d, want %d", c.user, r.code, c.code)
			}
		}
	})
	t.Run("proxy-body-size", func(t *testing.T) {
		dir := t.TempDir()
		small, big := dir+"/small", dir+"/big"
		writeFile(t, small, bytes.Repeat([]byte("a"), 1000))
		writeFile(t, big, bytes.Repeat([]byte("a"), 1025))
		for _, c := range []struct {
			name string
			args []string
			code int
		}{
			{"1000 bytes with Content-Length", []string{"--data-binary", "@" + small}, 200},
			{"1025 bytes with Content-Length", []string{"--data-binary", "@" + big}, 413},
			{"1000 bytes chunked", []string{"--data-binary", "@" + small, "-H", "Transfer-Encoding: chunked"}, 200},
			{"1025 bytes chunked", []string{"--data-binary", "@" + big, "-H", "Transfer-Encoding: chunked"}, 413},
		} {
			if r := get("small.test", "/", c.args...); r.code != c.code {
				t.Errorf("%s: %d, want %d", c.name, r.code, c.code)
			}
		}
	})
	t.Run("the fast path serves the annotated routes it can", func(t *testing.T) {
		// rewrite-target, ssl-redirect, the timeouts, source ranges and
		// proxy-body-size (a GET has no body) are applied on the fast
		// path; affinity, basic auth and HTTPS endpoints take net/http.
		for _, c := range []struct {
			host, path string
			code       int
			fast       bool
		}{
			{"rewrite.test", "/api/items", 200, true},
			{"noredirect.test", "/", 200, true},
			{"slow.test", "/", http.StatusGatewayTimeout, true},
			{"office.test", "/", http.StatusForbidden, true},
			{"local.test", "/", 200, true},
			{"small.test", "/", 200, true},
			{"sticky.test", "/", 200, false},
			{"private.test", "/", http.StatusUnauthorized, false},
			{"secure.test", "/", 200, false},
		} {
			before := e.c.fastHTTP.served.Load()
			r := get(c.host, c.path)
			fast := e.c.fastHTTP.served.Load() > before
			if r.code != c.code || fast != c.fast {
				t.Errorf("%s%s: %d on the fast path %v, want %d, %v", c.host, c.path, r.code, fast, c.code, c.fast)
			}
		}
		// The fast path's 403 is the net/http path's (textError).
		r := get("office.test", "/")
		if r.headers.Get("Content-Type") != "text/plain; charset=utf-8" || r.headers.Get("X-Content-Type-Options") != "nosniff" ||
			r.body != "403 Forbidden: the client address is not in the Ingress's allowed source ranges\n" {
			t.Errorf("403: %v %q", r.headers, r.body)
		}
	})
	t.Run("bad annotations refuse the Ingress, the others keep serving", func(t *testing.T) {
		for _, c := range []struct{ name, host, want string }{
			{"bad-value", "bad.test", "metadata.annotations[switchboard.dev/limit-rps]: Invalid value: \"fast\""},
			{"typo", "typo.test", "switchboard.dev/whitelist-source-ranges"},
			{"no-secret", "nosecret.test", "Secret shop/missing"},
		} {
			if r := get(c.host, "/"); r.code != 404 {
				t.Errorf("%s: %d, want 404 (not served)", c.name, r.code)
			}
			ing, err := cluster.Get[*networkingv1.Ingress](s, "shop", c.name)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ev := range cluster.EventsFor(s, ing) {
				if ev.Type == corev1.EventTypeWarning && ev.Reason == "InvalidAnnotation" && strings.Contains(ev.Message, c.want) {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: no InvalidAnnotation Warning Event containing %q: %v", c.name, c.want, cluster.EventsFor(s, ing))
			}
			if !logHas(logs.String(), "InvalidAnnotation", "Ingress shop/"+c.name+" is not served") {
				t.Errorf("%s: no log line: %s", c.name, logs.String())
			}
		}
		// A canary with no main Ingress is reported, not served.
		if r := get("orphan.test", "/"); r.code != 404 {
			t.Errorf("orphan canary: %d, want 404", r.code)
		}
		if !strings.Contains(logs.String(), "no other Ingress serves") {
			t.Errorf("orphan canary not reported: %s", logs.String())
		}
		if r := get("local.test", "/"); r.code != 200 {
			t.Errorf("a good Ingress beside refused ones: %d", r.code)
		}
	})
	t.Run("fixing the annotation serves the Ingress", func(t *testing.T) {
		if _, err := s.UpdateFunc(cluster.KindIngress, "shop", "bad-value", func(o cluster.Object) error {
			a := o.GetAnnotations()
			a[annotations.Prefix+annotations.LimitRPS] = "100"
			o.SetAnnotations(a)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		e.settle()
		if r := get("bad.test", "/"); r.code != 200 {
			t.Errorf("after the fix: %d, want 200", r.code)
		}
	})
}
