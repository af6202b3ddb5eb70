package ingress

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// TestPathTypeTableWithCurl is the "Examples" table of the Kubernetes
// Ingress documentation (concepts/services-networking/ingress, "Examples")
// run through the real curl against a running controller, over HTTP/1.1
// and over HTTP/2 (TLS, ALPN). Each row is an Ingress for its own host;
// each path goes to its own backend; "No" rows reach the default backend
// (an Ingress without rules): "If none of the hosts or paths match the
// HTTP request in the Ingress objects, the traffic is routed to your
// default backend."
func TestPathTypeTableWithCurl(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", true))
	type p struct{ typ, path string }
	rows := []struct {
		row      string
		paths    []p
		requests []string
		want     string // path type and path of the backend, or "default"
	}{
		{"Prefix | / | (all paths) | Yes", []p{{"Prefix", "/"}}, []string{"/", "/foo", "/aaa/bbb/ccc"}, "Prefix /"},
		{"Exact | /foo | /foo | Yes", []p{{"Exact", "/foo"}}, []string{"/foo"}, "Exact /foo"},
		{"Exact | /foo | /bar | No", []p{{"Exact", "/foo"}}, []string{"/bar"}, "default"},
		{"Exact | /foo | /foo/ | No", []p{{"Exact", "/foo"}}, []string{"/foo/"}, "default"},
		{"Exact | /foo/ | /foo | No", []p{{"Exact", "/foo/"}}, []string{"/foo"}, "default"},
		{"Prefix | /foo | /foo, /foo/ | Yes", []p{{"Prefix", "/foo"}}, []string{"/foo", "/foo/"}, "Prefix /foo"},
		{"Prefix | /foo/ | /foo, /foo/ | Yes", []p{{"Prefix", "/foo/"}}, []string{"/foo", "/foo/"}, "Prefix /foo/"},
		{"Prefix | /aaa/bb | /aaa/bbb | No", []p{{"Prefix", "/aaa/bb"}}, []string{"/aaa/bbb"}, "default"},
		{"Prefix | /aaa/bbb | /aaa/bbb | Yes", []p{{"Prefix", "/aaa/bbb"}}, []string{"/aaa/bbb"}, "Prefix /aaa/bbb"},
		{"Prefix | /aaa/bbb/ | /aaa/bbb | Yes, ignores trailing slash", []p{{"Prefix", "/aaa/bbb/"}}, []string{"/aaa/bbb"}, "Prefix /aaa/bbb/"},
		{"Prefix | /aaa/bbb | /aaa/bbb/ | Yes, matches trailing slash", []p{{"Prefix", "/aaa/bbb"}}, []string{"/aaa/bbb/"}, "Prefix /aaa/bbb"},
		{"Prefix | /aaa/bbb | /aaa/bbb/ccc | Yes, matches subpath", []p{{"Prefix", "/aaa/bbb"}}, []string{"/aaa/bbb/ccc"}, "Prefix /aaa/bbb"},
		{"Prefix | /aaa/bbb | /aaa/bbbxyz | No, does not match string prefix", []p{{"Prefix", "/aaa/bbb"}}, []string{"/aaa/bbbxyz"}, "default"},
		{"Prefix | /, /aaa | /aaa/ccc | Yes, matches /aaa prefix", []p{{"Prefix", "/"}, {"Prefix", "/aaa"}}, []string{"/aaa/ccc"}, "Prefix /aaa"},
		{"Prefix | /, /aaa, /aaa/bbb | /aaa/bbb | Yes, matches /aaa/bbb prefix", []p{{"Prefix", "/"}, {"Prefix", "/aaa"}, {"Prefix", "/aaa/bbb"}}, []string{"/aaa/bbb"}, "Prefix /aaa/bbb"},
		{"Prefix | /, /aaa, /aaa/bbb | /ccc | Yes, matches / prefix", []p{{"Prefix", "/"}, {"Prefix", "/aaa"}, {"Prefix", "/aaa/bbb"}}, []string{"/ccc"}, "Prefix /"},
		{"Prefix | /aaa | /ccc | No, uses default backend", []p{{"Prefix", "/aaa"}}, []string{"/ccc"}, "default"},
		{"Mixed | /foo (Prefix), /foo (Exact) | /foo | Yes, prefers Exact", []p{{"Prefix", "/foo"}, {"Exact", "/foo"}}, []string{"/foo"}, "Exact /foo"},
	}
	// One backend per distinct path type and path; its name says which.
	svcName := func(typ, path string) string {
		return strings.ToLower(typ) + strings.NewReplacer("/", "-s").Replace(path)
	}
	made := map[string]bool{}
	e.backendService("default", "default-backend")
	def := ingressObj("default", "catch-all", "")
	def.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "default-backend", Port: networkingv1.ServiceBackendPort{Name: "http"}}}
	e.create(def)
	for i, r := range rows {
		var paths []networkingv1.HTTPIngressPath
		for _, pp := range r.paths {
			name := svcName(pp.typ, pp.path)
			if !made[name] {
				made[name] = true
				e.backendService("default", name)
			}
			paths = append(paths, pathRule(pp.typ, pp.path, name, 80))
		}
		e.create(ingressObj("default", fmt.Sprintf("row-%d", i), fmt.Sprintf("row%d.paths.test", i), paths...))
	}
	e.settle()
	for i, r := range rows {
		host := fmt.Sprintf("row%d.paths.test", i)
		want := "default-backend"
		if r.want != "default" {
			f := strings.Fields(r.want)
			want = svcName(f[0], f[1])
		}
		for _, req := range r.requests {
			for _, proto := range []struct{ scheme, addr, flag, version string }{
				{"http", e.http, "--http1.1", "1.1"},
				{"https", e.https, "--http2", "2"},
			} {
				res := curl(t, "-k", proto.flag, "--resolve", resolve(host, proto.addr), url(proto.scheme, host, proto.addr, req))
				if res.code != 200 || res.version != proto.version {
					t.Errorf("%s: %s %s: status %d HTTP/%s %s", r.row, proto.scheme, req, res.code, res.version, res.stderr)
					continue
				}
				if got := res.echo(t); got.Backend != want || got.Path != req {
					t.Errorf("%s: %s %s reached %s with path %s, want %s", r.row, proto.scheme, req, got.Backend, got.Path, want)
				}
			}
		}
	}
}

func TestRoutingWithCurl(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", false), &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec:       networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"},
	})
	for _, n := range []string{"wild", "precise", "public", "admin", "old", "young", "byname", "classless", "nginx-only"} {
		e.backendService("shop", n)
	}
	e.create(serviceObj("shop", "noendpoints"))
	mk := func(name, host string, paths ...networkingv1.HTTPIngressPath) *networkingv1.Ingress {
		ing := ingressObj("shop", name, host, paths...)
		ing.Spec.IngressClassName = ptr.To("switchboard")
		return ing
	}
	byName := pathRule("Prefix", "/byname", "byname", 0)
	byName.Backend.Service.Port = networkingv1.ServiceBackendPort{Name: "http"}
	resource := networkingv1.HTTPIngressPath{Path: "/icons", PathType: ptr.To(networkingv1.PathTypeImplementationSpecific),
		Backend: networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("k8s.example.com"), Kind: "StorageBucket", Name: "icon-assets"}}}
	e.create(mk("wild", "*.apps.test", pathRule("Prefix", "/", "wild", 80)))
	e.create(mk("precise", "one.apps.test", pathRule("Prefix", "/", "precise", 80)))
	e.create(mk("site", "site.test",
		pathRule("Prefix", "/public", "public", 80), pathRule("Exact", "/admin", "admin", 80),
		byName, resource,
		pathRule("Prefix", "/missing", "no-such-service", 80), pathRule("Prefix", "/empty", "noendpoints", 80),
		pathRule("Prefix", "/badport", "public", 8080)))
	e.create(mk("old", "claim.test", pathRule("Prefix", "/api", "old", 80)))
	time.Sleep(2 * time.Millisecond) // distinct creationTimestamps
	young := mk("young", "claim.test", pathRule("Prefix", "/api/", "young", 80), pathRule("Exact", "/mine", "young", 80))
	e.create(young)
	classless := ingressObj("shop", "classless", "classless.test", pathRule("Prefix", "/", "classless", 80))
	nginxOnly := ingressObj("shop", "nginx-only", "nginx.test", pathRule("Prefix", "/", "nginx-only", 80))
	nginxOnly.Spec.IngressClassName = ptr.To("nginx")
	e.create(classless, nginxOnly)
	e.settle()

	cases := []struct {
		name, host, path string
		extra            []string
		code             int
		backend, gotPath string
	}{
		{"*.apps.test | two.apps.test: matches based on shared suffix", "two.apps.test", "/x", nil, 200, "wild", "/x"},
		{"*.apps.test | a.b.apps.test: wildcard only covers a single DNS label", "a.b.apps.test", "/", nil, 404, "", ""},
		{"*.apps.test | apps.test: wildcard only covers a single DNS label", "apps.test", "/", nil, 404, "", ""},
		{"a precise host is preferred over the wildcard", "one.apps.test", "/", nil, 200, "precise", "/"},
		{"Host header case and trailing dot do not matter", "SITE.test.", "/public/a", nil, 200, "public", "/public/a"},
		{"service port by name", "site.test", "/byname/x", nil, 200, "byname", "/byname/x"},
		{"resource backend: 501, said clearly", "site.test", "/icons/a.png", nil, 501, "", ""},
		{"missing service: 503", "site.test", "/missing", nil, 503, "", ""},
		{"service without endpoints: 503", "site.test", "/empty", nil, 503, "", ""},
		{"service has no such port: 503", "site.test", "/badport", nil, 503, "", ""},
		{"no rule and no default backend: 404", "site.test", "/private", nil, 404, "", ""},
		{"encoded dot-segments are resolved before matching", "site.test", "/public/%2e%2e/admin", []string{"--path-as-is"}, 200, "admin", "/admin"},
		{"dot-segments cannot leave the matched prefix", "site.test", "/public/../private", []string{"--path-as-is"}, 404, "", ""},
		{"double slashes are merged before matching", "site.test", "//public//a", []string{"--path-as-is"}, 200, "public", "/public/a"},
		{"an encoded slash is refused", "site.test", "/public%2F..%2Fadmin", []string{"--path-as-is"}, 400, "", ""},
		{"climbing above the root is refused", "site.test", "/public/../../etc/passwd", []string{"--path-as-is"}, 400, "", ""},
		{"Exact /admin does not match /admin/ even through dot-segments", "site.test", "/admin/.", []string{"--path-as-is"}, 404, "", ""},
		{"the query string is passed as is", "site.test", "/public/q?a=1&b=%2F", nil, 200, "public", "/public/q"},
		{"conflict: the older Ingress wins /api", "claim.test", "/api/x", nil, 200, "old", "/api/x"},
		{"conflict: the rest of the younger Ingress serves", "claim.test", "/mine", nil, 200, "young", "/mine"},
		{"no class and our class is not default: not ours", "classless.test", "/", nil, 404, "", ""},
		{"another controller's class: not ours", "nginx.test", "/", nil, 404, "", ""},
	}
	for _, c := range cases {
		args := append([]string{"--http1.1", "--resolve", resolve(c.host, e.http)}, c.extra...)
		res := curl(t, append(args, url("http", c.host, e.http, c.path))...)
		if res.code != c.code {
			t.Errorf("%s: status %d, want %d (%s%s)", c.name, res.code, c.code, res.body, res.stderr)
			continue
		}
		if c.backend != "" {
			got := res.echo(t)
			if got.Backend != c.backend || got.Path != c.gotPath {
				t.Errorf("%s: reached %s path %s, want %s path %s", c.name, got.Backend, got.Path, c.backend, c.gotPath)
			}
			if strings.Contains(c.path, "?") && got.Query != "a=1&b=%2F" {
				t.Errorf("%s: query %q", c.name, got.Query)
			}
		}
	}
	// The 501 says what it is.
	if res := curl(t, "--resolve", resolve("site.test", e.http), url("http", "site.test", e.http, "/icons/x")); !strings.Contains(res.body, "StorageBucket resource backend") {
		t.Errorf("501 body: %q", res.body)
	}

	// The conflict is reported on the younger Ingress as a Warning Event.
	var found bool
	stored, err := cluster.Get[*networkingv1.Ingress](s, "shop", "young")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range cluster.EventsFor(s, stored) {
		if ev.Type == corev1.EventTypeWarning && ev.Reason == "Conflict" && strings.Contains(ev.Message, "shop/old") && ev.Source.Component == Component {
			found = true
		}
	}
	if !found {
		t.Errorf("no Conflict event on shop/young: %v", cluster.EventsFor(s, stored))
	}

	// Our class becomes the default: the class-less Ingress is served,
	// without restart.
	if _, err := s.UpdateFunc(cluster.KindIngressClass, "", "switchboard", func(o cluster.Object) error {
		o.SetAnnotations(map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if res := curl(t, "--resolve", resolve("classless.test", e.http), url("http", "classless.test", e.http, "/")); res.code != 200 || res.echo(t).Backend != "classless" {
		t.Errorf("class-less Ingress with our class default: %d %s", res.code, res.body)
	}
	if res := curl(t, "--resolve", resolve("nginx.test", e.http), url("http", "nginx.test", e.http, "/")); res.code != 404 {
		t.Errorf("nginx Ingress served by us: %d", res.code)
	}
}

func TestTLSWithCurl(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	dir := t.TempDir()
	shopSecret, shopPEM := tlsSecretObj(t, "shop", "shop-tls", "shop.test")
	wildSecret, wildPEM := tlsSecretObj(t, "shop", "wild-tls", "*.apps.test")
	shopCA := filepath.Join(dir, "shop.pem")
	wildCA := filepath.Join(dir, "wild.pem")
	os.WriteFile(shopCA, shopPEM, 0o600)
	os.WriteFile(wildCA, wildPEM, 0o600)
	e.create(classObj("switchboard", true), shopSecret, wildSecret)
	e.backendService("shop", "web")
	e.backendService("shop", "plain")
	shop := ingressObj("shop", "shop", "shop.test", pathRule("Prefix", "/", "web", 80))
	shop.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"shop.test"}, SecretName: "shop-tls"}}
	apps := ingressObj("shop", "apps", "*.apps.test", pathRule("Prefix", "/", "web", 80))
	apps.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"*.apps.test"}, SecretName: "wild-tls"}}
	plain := ingressObj("shop", "plain", "plain.test", pathRule("Prefix", "/", "plain", 80))
	e.create(shop, apps, plain)
	e.settle()

	httpsPort := e.port(e.https)
	cases := []struct {
		name     string
		args     []string
		code     int
		version  string
		location string
		exit     int
	}{
		{"the Secret's certificate for shop.test, verified by curl, HTTP/2 by ALPN",
			[]string{"--cacert", shopCA, "--http2", "--resolve", resolve("shop.test", e.https), url("https", "shop.test", e.https, "/")}, 200, "2", "", 0},
		{"HTTP/1.1 over TLS when asked",
			[]string{"--cacert", shopCA, "--http1.1", "--resolve", resolve("shop.test", e.https), url("https", "shop.test", e.https, "/")}, 200, "1.1", "", 0},
		{"wildcard Secret for x.apps.test",
			[]string{"--cacert", wildCA, "--resolve", resolve("x.apps.test", e.https), url("https", "x.apps.test", e.https, "/")}, 200, "2", "", 0},
		{"an unknown name gets the default certificate (not the shop's: verification fails)",
			[]string{"--cacert", shopCA, "--resolve", resolve("plain.test", e.https), url("https", "plain.test", e.https, "/")}, 0, "", "", 60},
		{"the default certificate serves with -k",
			[]string{"-k", "--resolve", resolve("plain.test", e.https), url("https", "plain.test", e.https, "/")}, 200, "2", "", 0},
		{"HTTP to HTTPS: 308 for a host with TLS, path and query kept",
			[]string{"--http1.1", "--resolve", resolve("shop.test", e.http), url("http", "shop.test", e.http, "/cart?item=1")}, 308, "1.1", "https://shop.test:" + httpsPort + "/cart?item=1", 0},
		{"308 keeps the method: curl -L re-sends the POST over HTTPS",
			[]string{"-L", "-k", "--http1.1", "-d", "x=1", "--resolve", resolve("shop.test", e.http), "--resolve", resolve("shop.test", e.https), url("http", "shop.test", e.http, "/post")}, 200, "1.1", "", 0},
		{"no redirect for a host without TLS",
			[]string{"--resolve", resolve("plain.test", e.http), url("http", "plain.test", e.http, "/")}, 200, "1.1", "", 0},
		{"421 when the Host is not covered by the certificate of the SNI name",
			[]string{"-k", "--http2", "-H", "Host: plain.test", "--resolve", resolve("shop.test", e.https), url("https", "shop.test", e.https, "/")}, 421, "2", "", 0},
		{"no 421 between names of one certificate",
			[]string{"-k", "--http2", "-H", "Host: b.apps.test", "--resolve", resolve("a.apps.test", e.https), url("https", "a.apps.test", e.https, "/")}, 200, "2", "", 0},
		{"TLS 1.1 is refused",
			[]string{"-k", "--tlsv1.1", "--tls-max", "1.1", "--resolve", resolve("shop.test", e.https), url("https", "shop.test", e.https, "/")}, 0, "", "", 35},
	}
	for _, c := range cases {
		res := curl(t, c.args...)
		if res.exit != c.exit || res.code != c.code || c.version != "" && res.version != c.version {
			t.Errorf("%s: exit %d status %d HTTP/%s, want exit %d status %d HTTP/%s (%s)", c.name, res.exit, res.code, res.version, c.exit, c.code, c.version, res.stderr)
			continue
		}
		if c.location != "" && res.headers.Get("Location") != c.location {
			t.Errorf("%s: Location %q, want %q", c.name, res.headers.Get("Location"), c.location)
		}
		if strings.Contains(c.name, "POST") {
			if got := res.echo(t); got.Method != "POST" || got.Body != "x=1" || got.Header["X-Forwarded-Proto"] != "https" {
				t.Errorf("%s: backend saw %+v", c.name, got)
			}
		}
	}

	// A changed Secret is served without restart.
	newSecret, newPEM := tlsSecretObj(t, "shop", "shop-tls", "shop.test")
	newCA := filepath.Join(dir, "new.pem")
	os.WriteFile(newCA, newPEM, 0o600)
	e.apply(newSecret)
	e.settle()
	if res := curl(t, "--cacert", newCA, "--resolve", resolve("shop.test", e.https), url("https", "shop.test", e.https, "/")); res.code != 200 {
		t.Errorf("renewed certificate not served: exit %d %s", res.exit, res.stderr)
	}
}

func TestForwardedHeadersWithCurl(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", true))
	e.backendService("shop", "web")
	e.create(ingressObj("shop", "web", "shop.test", pathRule("Prefix", "/", "web", 80)))
	e.settle()
	idRE := regexp.MustCompile(`^[0-9a-f]{32}$`)
	for _, c := range []struct {
		scheme, addr, flag string
	}{{"http", e.http, "--http1.1"}, {"https", e.https, "--http2"}} {
		res := curl(t, "-k", c.flag, "--resolve", resolve("shop.test", c.addr),
			"-H", "X-Forwarded-For: 203.0.113.9", "-H", "X-Forwarded-Host: evil.test",
			"-H", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			url(c.scheme, "shop.test", c.addr, "/a"))
		got := res.echo(t)
		want := map[string]string{
			"X-Forwarded-For":   "127.0.0.1", // the client; a client's own X-Forwarded-For is not trusted
			"X-Forwarded-Proto": c.scheme,
			"X-Forwarded-Host":  "shop.test:" + e.port(c.addr),
			"X-Forwarded-Port":  e.port(c.addr),
			"X-Real-Ip":         "127.0.0.1",
			"Traceparent":       "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		}
		for k, v := range want {
			if got.Header[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.scheme, k, got.Header[k], v)
			}
		}
		if got.Host != "shop.test:"+e.port(c.addr) {
			t.Errorf("%s: backend Host %q", c.scheme, got.Host)
		}
		if !idRE.MatchString(got.Header["X-Request-Id"]) {
			t.Errorf("%s: X-Request-Id %q not created", c.scheme, got.Header["X-Request-Id"])
		}
	}
	res := curl(t, "-H", "X-Request-ID: client-chosen-1", "--resolve", resolve("shop.test", e.http), url("http", "shop.test", e.http, "/"))
	if got := res.echo(t).Header["X-Request-Id"]; got != "client-chosen-1" {
		t.Errorf("X-Request-Id from the client not kept: %q", got)
	}

	// The access log has one JSON line per request with the fields. The
	// line is written once the response is out (as nginx logs at the
	// request's end), so it may come just after curl has its answer.
	var line map[string]any
	for deadline := time.Now().Add(5 * time.Second); line == nil && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(e.access.String()))
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["request_id"] == "client-chosen-1" {
				line = m
			}
		}
	}
	if line == nil {
		t.Fatalf("no access log line for the request: %s", e.access.String())
	}
	for _, k := range []string{"time", "client", "host", "method", "path", "status", "bytes", "duration", "upstream", "request_id", "ingress", "service"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access log line lacks %q: %v", k, line)
		}
	}
	if line["status"] != float64(200) || line["ingress"] != "shop/web" || !strings.HasPrefix(line["upstream"].(string), "127.0.0.1:") {
		t.Errorf("access log line: %v", line)
	}

	// Metrics, health and readiness on the status listener.
	get := func(p string) (int, string) {
		resp, err := http.Get("http://" + e.status + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz: %d", code)
	}
	_, m := get("/metrics")
	for _, want := range []string{
		`ingress_controller_requests{host="shop.test",ingress="web",method="GET",namespace="shop",path="/",service="web",status="200"} 3`,
		`ingress_controller_request_duration_seconds_bucket{host="shop.test",ingress="web",method="GET",namespace="shop",path="/",service="web",status="200",le="+Inf"} 3`,
		`ingress_controller_backend_endpoints{backend="shop/web:80"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestEndpointsFollowTheStore: endpoints come from EndpointSlices (not the
// cluster IP), round-robin, changes apply without restart, and an endpoint
// that refuses connections is ejected while GETs still succeed.
func TestEndpointsFollowTheStore(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", true))
	a, b := startBackend(t, "a"), startBackend(t, "b")
	dead := func() int32 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		return int32(p)
	}()
	// Two slices of one Service, with different ports (as with two pod
	// templates): 127.0.0.1:a and 127.0.0.1:b.
	e.create(serviceObj("shop", "web"), sliceObj("shop", "web", "web-a", a, "127.0.0.1"), sliceObj("shop", "web", "web-b", b, "127.0.0.1"))
	e.create(ingressObj("shop", "web", "shop.test", pathRule("Prefix", "/", "web", 80)))
	e.settle()
	hits := func(n int) map[string]int {
		got := map[string]int{}
		for i := 0; i < n; i++ {
			res := curl(t, "--resolve", resolve("shop.test", e.http), url("http", "shop.test", e.http, "/"))
			if res.code != 200 {
				t.Fatalf("request %d: %d %s", i, res.code, res.body)
			}
			got[res.echo(t).Backend]++
		}
		return got
	}
	if got := hits(6); got["a"] != 3 || got["b"] != 3 {
		t.Errorf("round-robin over two endpoints: %v", got)
	}
	// b becomes unready: only a.
	unready := sliceObj("shop", "web", "web-b", b, "127.0.0.1")
	unready.Endpoints[0].Conditions.Ready = ptr.To(false)
	e.apply(unready)
	e.settle()
	if got := hits(4); got["a"] != 4 {
		t.Errorf("after b went unready: %v", got)
	}
	// A third endpoint that refuses connections: every GET still succeeds.
	e.create(sliceObj("shop", "web", "web-dead", dead, "127.0.0.1"))
	e.settle()
	if got := hits(6); got["a"] != 6 {
		t.Errorf("with a dead endpoint: %v", got)
	}
	_, m := func() (int, string) {
		resp, err := http.Get("http://" + e.status + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}()
	if !strings.Contains(m, `ingress_controller_upstream_ejections_total{backend="shop/web:80"} 1`) {
		t.Errorf("dead endpoint not ejected exactly once: %s", grep(m, "ejections"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDefences: request smuggling, header limits and slow heads.
func TestDefences(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, func(c *Config) {
		c.ReadHeaderTimeout = 300 * time.Millisecond
		c.MaxHeaders = 50
		c.MaxHeaderBytes = 8 << 10
	})
	e.create(classObj("switchboard", true))
	e.backendService("shop", "web")
	e.create(ingressObj("shop", "web", "shop.test", pathRule("Prefix", "/", "web", 80)))
	e.settle()

	raw := func(req string) string {
		c, err := net.DialTimeout("tcp", e.http, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, req)
		b, _ := io.ReadAll(c)
		return string(b)
	}
	smuggle := "POST / HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: shop.test\r\n\r\n"
	if got := raw(smuggle); !strings.HasPrefix(got, "HTTP/1.1 400 ") || strings.Contains(got, `"backend"`) {
		t.Errorf("Content-Length with Transfer-Encoding: %q", got)
	}
	// Slowloris: a head that never ends is cut off by ReadHeaderTimeout.
	if got := raw("GET / HTTP/1.1\r\nHost: shop.test\r\nX-Slow: 1\r\n"); strings.Contains(got, "200 OK") {
		t.Errorf("incomplete head answered: %q", got)
	}
	var many []string
	for i := 0; i < 60; i++ {
		many = append(many, "-H", fmt.Sprintf("X-H%d: v", i))
	}
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"too many header fields over HTTP/1.1", append([]string{"--http1.1", "--resolve", resolve("shop.test", e.http)}, append(many, url("http", "shop.test", e.http, "/"))...), 400},
		{"too many header fields over HTTP/2", append([]string{"-k", "--http2", "--resolve", resolve("shop.test", e.https)}, append(many, url("https", "shop.test", e.https, "/"))...), 431},
		{"a head over MaxHeaderBytes", []string{"-H", "X-Big: " + strings.Repeat("x", 16<<10), "--resolve", resolve("shop.test", e.http), url("http", "shop.test", e.http, "/")}, 431},
		{"within the limits", []string{"--resolve", resolve("shop.test", e.http), url("http", "shop.test", e.http, "/")}, 200},
	}
	for _, c := range cases {
		if res := curl(t, c.args...); res.code != c.code {
			t.Errorf("%s: status %d, want %d (%s)", c.name, res.code, c.code, res.stderr)
		}
	}

	// Bodies pass the guard intact: Content-Length (curl sends "Expect:
	// 100-continue" for large ones) and chunked, several per connection.
	body := filepath.Join(t.TempDir(), "body")
	os.WriteFile(body, []byte(strings.Repeat("0123456789abcdef", 64<<10)), 0o600) // 1 MiB
	for _, extra := range [][]string{nil, {"-H", "Transfer-Encoding: chunked"}} {
		// Two uploads on one connection: the second is only understood if
		// the guard followed the framing of the first body.
		u := url("http", "shop.test", e.http, "/upload")
		args := append([]string{"-sS", "--noproxy", "*", "--http1.1", "--resolve", resolve("shop.test", e.http), "--data-binary", "@" + body,
			"-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n"}, extra...)
		out, err := exec.Command("curl", append(args, u, u)...).Output()
		if err != nil {
			t.Fatalf("curl: %v", err)
		}
		if got, want := string(out), "200 1\n200 0\n"; got != want {
			t.Errorf("two uploads %v on one connection: %q, want %q", extra, got, want)
		}
	}
	res := curl(t, "--http1.1", "--resolve", resolve("shop.test", e.http), "--data-binary", "@"+body, "-H", "Transfer-Encoding: chunked", url("http", "shop.test", e.http, "/upload"))
	if got := res.echo(t); got.Body != strings.Repeat("0123456789abcdef", 64<<10) || got.Method != "POST" {
		t.Errorf("chunked upload: %d bytes, %s", len(got.Body), got.Method)
	}
}
