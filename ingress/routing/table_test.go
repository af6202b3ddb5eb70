package routing

import (
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ourClass(name string, isDefault bool) *networkingv1.IngressClass {
	c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: ControllerName}}
	if isDefault {
		c.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	}
	return c
}

type path struct {
	typ, path, svc string
	port           int32
	portName       string
}

func svcBackend(name string, port int32, portName string) networkingv1.IngressBackend {
	b := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name}}
	if portName != "" {
		b.Service.Port.Name = portName
	} else {
		if port == 0 {
			port = 80
		}
		b.Service.Port.Number = port
	}
	return b
}

func ingress(ns, name string, age int, host string, paths ...path) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Minute))},
		Spec:       networkingv1.IngressSpec{IngressClassName: ptr.To("switchboard")},
	}
	if len(paths) > 0 {
		r := networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
		for _, p := range paths {
			r.HTTP.Paths = append(r.HTTP.Paths, networkingv1.HTTPIngressPath{
				Path: p.path, PathType: ptr.To(networkingv1.PathType(p.typ)), Backend: svcBackend(p.svc, p.port, p.portName),
			})
		}
		ing.Spec.Rules = []networkingv1.IngressRule{r}
	}
	return ing
}

func withDefault(ing *networkingv1.Ingress, svc string) *networkingv1.Ingress {
	b := svcBackend(svc, 80, "")
	ing.Spec.DefaultBackend = &b
	return ing
}

func build(ings ...*networkingv1.Ingress) *Table {
	return Build(Input{Classes: []*networkingv1.IngressClass{ourClass("switchboard", false)}, Ingresses: ings})
}

// TestPathTypeExamples is the "Examples" table of
// https://kubernetes.io/docs/concepts/services-networking/ingress/#examples,
// row by row; every request path of a row is a case.
func TestPathTypeExamples(t *testing.T) {
	P := func(p string) path {
		return path{typ: "Prefix", path: p, svc: "prefix" + strings.ReplaceAll(p, "/", "-")}
	}
	E := func(p string) path {
		return path{typ: "Exact", path: p, svc: "exact" + strings.ReplaceAll(p, "/", "-")}
	}
	cases := []struct {
		row      string // the table's row, quoted
		paths    []path
		requests []string
		want     string // the matching path's service, or "" for no match
	}{
		{"Prefix | / | (all paths) | Yes", []path{P("/")}, []string{"/", "/foo", "/foo/", "/aaa/bbb/ccc", "/x.html"}, "prefix-"},
		{"Exact | /foo | /foo | Yes", []path{E("/foo")}, []string{"/foo"}, "exact-foo"},
		{"Exact | /foo | /bar | No", []path{E("/foo")}, []string{"/bar"}, ""},
		{"Exact | /foo | /foo/ | No", []path{E("/foo")}, []string{"/foo/"}, ""},
		{"Exact | /foo/ | /foo | No", []path{E("/foo/")}, []string{"/foo"}, ""},
		{"Prefix | /foo | /foo, /foo/ | Yes", []path{P("/foo")}, []string{"/foo", "/foo/"}, "prefix-foo"},
		{"Prefix | /foo/ | /foo, /foo/ | Yes", []path{P("/foo/")}, []string{"/foo", "/foo/"}, "prefix-foo-"},
		{"Prefix | /aaa/bb | /aaa/bbb | No", []path{P("/aaa/bb")}, []string{"/aaa/bbb"}, ""},
		{"Prefix | /aaa/bbb | /aaa/bbb | Yes", []path{P("/aaa/bbb")}, []string{"/aaa/bbb"}, "prefix-aaa-bbb"},
		{"Prefix | /aaa/bbb/ | /aaa/bbb | Yes, ignores trailing slash", []path{P("/aaa/bbb/")}, []string{"/aaa/bbb"}, "prefix-aaa-bbb-"},
		{"Prefix | /aaa/bbb | /aaa/bbb/ | Yes, matches trailing slash", []path{P("/aaa/bbb")}, []string{"/aaa/bbb/"}, "prefix-aaa-bbb"},
		{"Prefix | /aaa/bbb | /aaa/bbb/ccc | Yes, matches subpath", []path{P("/aaa/bbb")}, []string{"/aaa/bbb/ccc"}, "prefix-aaa-bbb"},
		{"Prefix | /aaa/bbb | /aaa/bbbxyz | No, does not match string prefix", []path{P("/aaa/bbb")}, []string{"/aaa/bbbxyz"}, ""},
		{"Prefix | /, /aaa | /aaa/ccc | Yes, matches /aaa prefix", []path{P("/"), P("/aaa")}, []string{"/aaa/ccc"}, "prefix-aaa"},
		{"Prefix | /, /aaa, /aaa/bbb | /aaa/bbb | Yes, matches /aaa/bbb prefix", []path{P("/"), P("/aaa"), P("/aaa/bbb")}, []string{"/aaa/bbb"}, "prefix-aaa-bbb"},
		{"Prefix | /, /aaa, /aaa/bbb | /ccc | Yes, matches / prefix", []path{P("/"), P("/aaa"), P("/aaa/bbb")}, []string{"/ccc"}, "prefix-"},
		{"Prefix | /aaa | /ccc | No, uses default backend", []path{P("/aaa")}, []string{"/ccc"}, "default"},
		{"Mixed | /foo (Prefix), /foo (Exact) | /foo | Yes, prefers Exact", []path{P("/foo"), E("/foo")}, []string{"/foo"}, "exact-foo"},
	}
	for _, c := range cases {
		for _, order := range []string{"as listed", "reversed"} {
			ps := append([]path(nil), c.paths...)
			if order == "reversed" {
				for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
					ps[i], ps[j] = ps[j], ps[i]
				}
			}
			ings := []*networkingv1.Ingress{ingress("default", "paths", 0, "foo.bar.com", ps...)}
			if c.want == "default" {
				// "If none of the hosts or paths match the HTTP request in
				// the Ingress objects, the traffic is routed to your
				// default backend."
				ings = append(ings, withDefault(ingress("default", "fallback", 1, ""), "default"))
			}
			tbl := build(ings...)
			if len(tbl.Conflicts)+len(tbl.Problems) > 0 {
				t.Fatalf("%s: conflicts %v problems %v", c.row, tbl.Conflicts, tbl.Problems)
			}
			for _, req := range c.requests {
				r := tbl.Match("foo.bar.com", req)
				got := ""
				if r != nil {
					got = r.Backend.Service
				}
				if got != c.want {
					t.Errorf("%s (%s): request %s matched %q, want %q", c.row, order, req, got, c.want)
				}
			}
		}
	}
}

// TestMultipleMatches: "precedence will be given first to the longest
// matching path. If two paths are still equally matched, precedence will
// be given to paths with an exact path type over prefix path type." Order
// across Ingresses and within one does not matter.
func TestMultipleMatches(t *testing.T) {
	a := ingress("default", "a", 0, "shop.test", path{typ: "Prefix", path: "/", svc: "root"}, path{typ: "Exact", path: "/cart", svc: "cart-exact"})
	b := ingress("default", "b", 1, "shop.test", path{typ: "Prefix", path: "/cart", svc: "cart-prefix"}, path{typ: "ImplementationSpecific", path: "/cart/items", svc: "items"})
	for _, tbl := range []*Table{build(a, b), build(b, a)} {
		for req, want := range map[string]string{
			"/":               "root",
			"/cart":           "cart-exact",
			"/cart/":          "cart-prefix",
			"/cart/items/1":   "items",
			"/cart/itemsx":    "cart-prefix",
			"/carts":          "root",
			"/CART":           "root", // "case sensitive"
			"/cart/items":     "items",
			"/cart/items/../": "cart-prefix", // normalised before matching (see TestMatchAfterNormalisation)
		} {
			p, err := NormalizePath(req)
			if err != nil {
				t.Fatalf("%s: %v", req, err)
			}
			if r := tbl.Match("shop.test", p); r == nil || r.Backend.Service != want {
				t.Errorf("request %s: got %v, want %s", req, r, want)
			}
		}
	}
}

// TestHostnameWildcards is the "Hostname wildcards" table of the Ingress
// documentation, plus precise-over-wildcard and host-less rules.
func TestHostnameWildcards(t *testing.T) {
	tbl := build(
		ingress("default", "wild", 0, "*.foo.com", path{typ: "Prefix", path: "/", svc: "wild"}),
		ingress("default", "precise", 1, "bar.foo.com", path{typ: "Prefix", path: "/only", svc: "precise"}),
		ingress("default", "nohost", 2, "", path{typ: "Prefix", path: "/", svc: "nohost"}),
	)
	cases := []struct{ name, host, path, want string }{
		{"*.foo.com | bar.foo.com | Matches based on shared suffix", "baz.foo.com", "/", "wild"},
		{"*.foo.com | baz.bar.foo.com | No match, wildcard only covers a single DNS label", "baz.bar.foo.com", "/", "nohost"},
		{"*.foo.com | foo.com | No match, wildcard only covers a single DNS label", "foo.com", "/", "nohost"},
		{"precise host preferred over the wildcard", "bar.foo.com", "/only/x", "precise"},
		{"requests are first evaluated for a host match: the precise host has no /other, its rules decide", "bar.foo.com", "/other", ""},
		{"host header is matched case-insensitively, without port or trailing dot", NormalizeHost("BAZ.Foo.com.:8080"), "/", "wild"},
		{"If the host is unspecified, the Ingress routes all traffic", "203.0.113.5", "/", "nohost"},
	}
	for _, c := range cases {
		r := tbl.Match(c.host, c.path)
		got := ""
		if r != nil {
			got = r.Backend.Service
		}
		if got != c.want {
			t.Errorf("%s: %s%s matched %q, want %q", c.name, c.host, c.path, got, c.want)
		}
	}
}

func TestIngressClass(t *testing.T) {
	theirs := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "nginx", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}}, Spec: networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"}}
	mk := func(class *string, annotation string) *networkingv1.Ingress {
		ing := ingress("default", "x", 0, "a.test", path{typ: "Prefix", path: "/", svc: "s"})
		ing.Spec.IngressClassName = class
		if annotation != "" {
			ing.Annotations = map[string]string{LegacyClassAnnotation: annotation}
		}
		return ing
	}
	cases := []struct {
		name    string
		classes []*networkingv1.IngressClass
		ing     *networkingv1.Ingress
		want    bool
	}{
		{"ingressClassName names our class", []*networkingv1.IngressClass{ourClass("switchboard", false)}, mk(ptr.To("switchboard"), ""), true},
		{"ingressClassName names another controller's class", []*networkingv1.IngressClass{ourClass("switchboard", true), theirs}, mk(ptr.To("nginx"), ""), false},
		{"ingressClassName names a class that does not exist", []*networkingv1.IngressClass{ourClass("switchboard", true)}, mk(ptr.To("missing"), ""), false},
		{"no class, ours is default: 'new Ingresses without an ingressClassName field specified will be assigned this default IngressClass'", []*networkingv1.IngressClass{ourClass("switchboard", true)}, mk(nil, ""), true},
		{"no class, ours is not default", []*networkingv1.IngressClass{ourClass("switchboard", false)}, mk(nil, ""), false},
		{"no class, only another controller's class is default", []*networkingv1.IngressClass{ourClass("switchboard", false), theirs}, mk(nil, ""), false},
		{"default annotation must be exactly true", []*networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "sb", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "yes"}}, Spec: networkingv1.IngressClassSpec{Controller: ControllerName}}}, mk(nil, ""), false},
		{"deprecated kubernetes.io/ingress.class annotation names our class", []*networkingv1.IngressClass{ourClass("switchboard", false)}, mk(nil, "switchboard"), true},
		{"deprecated annotation names another class; our default does not take it", []*networkingv1.IngressClass{ourClass("switchboard", true)}, mk(nil, "nginx"), false},
	}
	for _, c := range cases {
		if got := Ours(c.ing, c.classes, ""); got != c.want {
			t.Errorf("%s: Ours = %v, want %v", c.name, got, c.want)
		}
		tbl := Build(Input{Classes: c.classes, Ingresses: []*networkingv1.Ingress{c.ing}})
		if served := tbl.Match("a.test", "/") != nil; served != c.want {
			t.Errorf("%s: served = %v, want %v", c.name, served, c.want)
		}
	}
}

func TestConflictsOlderWins(t *testing.T) {
	old := ingress("team-b", "old", 0, "shop.test", path{typ: "Prefix", path: "/api", svc: "old-api"})
	young := ingress("team-a", "young", 5, "shop.test", path{typ: "Prefix", path: "/api/", svc: "young-api"}, path{typ: "Prefix", path: "/web", svc: "young-web"})
	// Same creationTimestamp: namespace/name decides.
	twinA := ingress("ns", "a", 9, "twin.test", path{typ: "Exact", path: "/", svc: "twin-a"})
	twinB := ingress("ns", "b", 9, "twin.test", path{typ: "Exact", path: "/", svc: "twin-b"})
	// Two Ingresses without rules both give the default backend.
	defOld := withDefault(ingress("ns", "def-old", 1, ""), "def-old")
	defNew := withDefault(ingress("ns", "def-new", 2, ""), "def-new")
	for _, in := range [][]*networkingv1.Ingress{{old, young, twinA, twinB, defOld, defNew}, {defNew, twinB, young, defOld, twinA, old}} {
		tbl := build(in...)
		for _, c := range []struct{ host, path, want string }{
			{"shop.test", "/api/x", "old-api"},
			{"shop.test", "/web", "young-web"}, // the rest of the losing Ingress keeps working
			{"twin.test", "/", "twin-a"},
			{"unknown.test", "/", "def-old"},
		} {
			if r := tbl.Match(c.host, c.path); r == nil || r.Backend.Service != c.want {
				t.Errorf("%s%s: got %v, want %s", c.host, c.path, r, c.want)
			}
		}
		if len(tbl.Conflicts) != 3 {
			t.Fatalf("conflicts: %v", tbl.Conflicts)
		}
		losers := map[string]string{}
		for _, c := range tbl.Conflicts {
			losers[c.Loser.Name] = c.Winner.Name
			if !strings.Contains(c.String(), "older") {
				t.Errorf("conflict message %q does not say who wins", c.String())
			}
		}
		if losers["young"] != "old" || losers["b"] != "a" || losers["def-new"] != "def-old" {
			t.Errorf("losers -> winners: %v", losers)
		}
	}
}

func TestBackendsAndDefaults(t *testing.T) {
	ing := ingress("shop", "web", 0, "shop.test",
		path{typ: "Prefix", path: "/byname", svc: "web", portName: "http"},
		path{typ: "Prefix", path: "/bynumber", svc: "web", port: 8080})
	withDefault(ing, "shop-default")
	res := ingress("shop", "static", 1, "static.test")
	res.Spec.Rules = []networkingv1.IngressRule{{Host: "static.test", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
		Path: "/icons", PathType: ptr.To(networkingv1.PathTypeImplementationSpecific),
		Backend: networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{APIGroup: ptr.To("k8s.example.com"), Kind: "StorageBucket", Name: "icon-assets"}},
	}}}}}}
	catchall := withDefault(ingress("other", "catchall", 2, ""), "everything-else")
	tbl := build(ing, res, catchall)
	cases := []struct{ host, path, key string }{
		{"shop.test", "/byname/x", "shop/web:http"},
		{"shop.test", "/bynumber", "shop/web:8080"},
		{"shop.test", "/nothing", "shop/shop-default:80"}, // the Ingress's defaultBackend for its host
		{"static.test", "/icons/a.png", "shop/StorageBucket.k8s.example.com/icon-assets"},
		{"static.test", "/other", "other/everything-else:80"}, // no host default: the controller's
		{"nowhere.test", "/", "other/everything-else:80"},
	}
	for _, c := range cases {
		r := tbl.Match(c.host, c.path)
		if r == nil || r.Backend.Key() != c.key {
			t.Errorf("%s%s: got %v, want backend %s", c.host, c.path, r, c.key)
		}
	}
	if got := len(tbl.Backends()); got != 5 {
		t.Errorf("Backends: %d, want 5: %v", got, tbl.Backends())
	}
}

func TestProblemsLeaveTheRestWorking(t *testing.T) {
	ing := ingress("default", "mixed", 0, "ok.test",
		path{typ: "Prefix", path: "/good", svc: "good"},
		path{typ: "Prefix", path: "/a/../b", svc: "dots"},
		path{typ: "Exact", path: "relative", svc: "rel"},
		path{typ: "Regex", path: "/x", svc: "regex"},
		path{typ: "Prefix", path: "/noport", svc: "noport", port: -1},
	)
	ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: "*", IngressRuleValue: ing.Spec.Rules[0].IngressRuleValue})
	tbl := build(ing)
	if r := tbl.Match("ok.test", "/good"); r == nil || r.Backend.Service != "good" {
		t.Fatalf("good path not served: %v", r)
	}
	want := []string{
		"spec.rules[0].http.paths[1].path", "spec.rules[0].http.paths[2].path",
		"spec.rules[0].http.paths[3].pathType", "spec.rules[0].http.paths[4].backend", "spec.rules[1].host",
	}
	if len(tbl.Problems) != len(want) {
		t.Fatalf("problems: %v", tbl.Problems)
	}
	for i, p := range tbl.Problems {
		if p.Field != want[i] || !strings.Contains(p.String(), "default/mixed") {
			t.Errorf("problem %d: %s, want field %s", i, p, want[i])
		}
	}
}

func TestNormalizePath(t *testing.T) {
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{"/", "/", nil},
		{"/foo", "/foo", nil},
		{"/foo/", "/foo/", nil},
		{"//foo///bar", "/foo/bar", nil},
		{"/foo/./bar", "/foo/bar", nil},
		{"/foo/bar/..", "/foo/", nil},
		{"/foo/bar/../", "/foo/", nil},
		{"/public/../admin", "/admin", nil},
		{"/public/%2e%2e/admin", "/admin", nil},       // encoded dot-segments
		{"/public/%2E%2e/admin", "/admin", nil},       // in any case
		{"/public/.%2e/admin", "/admin", nil},         // half encoded
		{"/%61dmin", "/admin", nil},                   // an encoded letter is the letter
		{"/a%20b", "/a b", nil},                       // decoded once, as Ingress paths are written
		{"/a%252e%252e/x", "/a%2e%2e/x", nil},         // decoded once only
		{"/public%2F..%2Fadmin", "", ErrEncodedSlash}, // an encoded slash would be a separator behind us
		{"/public%2f..%2fadmin", "", ErrEncodedSlash},
		{"/public%5C..%5Cadmin", "", ErrEncodedSlash},
		{"/public\\..\\admin", "", ErrEncodedSlash},
		{"/..", "", ErrAboveRoot},
		{"/a/../../etc/passwd", "", ErrAboveRoot},
		{"/%2e%2e/etc", "", ErrAboveRoot},
		{"/bad%zz", "", ErrBadEscape},
		{"/bad%2", "", ErrBadEscape},
		{"/nul%00byte", "", ErrControlChar},
		{"/crlf%0d%0aX-Injected:1", "", ErrControlChar},
		{"relative", "", ErrNotAbsolute},
		{"*", "", ErrNotAbsolute},
	}
	for _, c := range cases {
		got, err := NormalizePath(c.in)
		if !errors.Is(err, c.err) || got != c.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
}

// TestMatchAfterNormalisation: a request cannot reach a path it should
// not by encoding dot-segments or doubling slashes: "/public/..%2f" style
// requests are matched on the path the backend will see.
func TestMatchAfterNormalisation(t *testing.T) {
	tbl := build(ingress("default", "site", 0, "site.test",
		path{typ: "Prefix", path: "/public", svc: "public"},
		path{typ: "Exact", path: "/admin", svc: "admin"},
	))
	cases := []struct{ req, want string }{
		{"/public/a", "public"},
		{"/public/%2e%2e/admin", "admin"}, // goes where the backend would serve it, no further
		{"/public/../private", ""},        // not under /public any more: no route
		{"//public//a", "public"},
		{"/admin/", ""}, // Exact /admin does not match /admin/
		{"/admin/.", ""},
		{"/admin//", ""},
		{"/public/%2e%2e/%2e%2e/x", ""}, // refused (above the root)
	}
	for _, c := range cases {
		got := ""
		if p, err := NormalizePath(c.req); err == nil {
			if r := tbl.Match("site.test", p); r != nil {
				got = r.Backend.Service
			}
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.req, got, c.want)
		}
	}
}

func TestHostMatches(t *testing.T) {
	cases := []struct {
		pattern, host string
		want          bool
	}{
		{"foo.bar.com", "foo.bar.com", true},
		{"foo.bar.com", "bar.com", false},
		{"*.foo.com", "bar.foo.com", true},
		{"*.foo.com", "baz.bar.foo.com", false},
		{"*.foo.com", "foo.com", false},
		{"*.foo.com", "*.foo.com", true},
		{"*.foo.com", ".foo.com", false},
	}
	for _, c := range cases {
		if got := HostMatches(c.pattern, c.host); got != c.want {
			t.Errorf("HostMatches(%q, %q) = %v", c.pattern, c.host, got)
		}
	}
}

func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/", "//x//y/", "/a%2fb", "/caf%C3%A9/", "/x/./y/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := NormalizePath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, "\\") {
			t.Fatalf("NormalizePath(%q) = %q", in, p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("NormalizePath(%q) = %q keeps a dot-segment", in, p)
			}
		}
		// Normal form is a fixed point (after escaping what was decoded).
		if q, err := NormalizePath(escapeForCheck(p)); err != nil || q != p {
			t.Fatalf("NormalizePath(%q) = %q, again %q, %v", in, p, q, err)
		}
	})
}

// TestCanaries: a canary Ingress's paths claim nothing; each attaches to
// the route of another Ingress with the same host, match kind and path
// (the canary may be older), or is a Problem when there is none.
func TestCanaries(t *testing.T) {
	main := ingress("shop", "main", 5, "shop.test", path{typ: "Prefix", path: "/", svc: "web"}, path{typ: "Exact", path: "/pay", svc: "pay"})
	c1 := ingress("shop", "c1", 1, "shop.test", path{typ: "Prefix", path: "/", svc: "web-next"})
	c2 := ingress("shop", "c2", 9, "shop.test", path{typ: "Prefix", path: "/pay", svc: "pay-next"}) // Prefix /pay: no such main path
	canary := map[string]bool{"c1": true, "c2": true}
	tbl := Build(Input{Classes: []*networkingv1.IngressClass{ourClass("switchboard", true)}, Ingresses: []*networkingv1.Ingress{main, c1, c2},
		IsCanary: func(ing *networkingv1.Ingress) bool { return canary[ing.Name] }})
	cases := []struct {
		path, backend string
		canaries      []string
	}{
		{"/", "shop/web:80", []string{"shop/web-next:80"}},
		{"/pay", "shop/pay:80", nil},
		{"/pay/x", "shop/web:80", []string{"shop/web-next:80"}},
	}
	for _, c := range cases {
		r := tbl.Match("shop.test", c.path)
		if r == nil || r.Backend.Key() != c.backend {
			t.Fatalf("%s: %v, want %s", c.path, r, c.backend)
		}
		var got []string
		for _, cr := range r.Canaries {
			got = append(got, cr.Backend.Key())
		}
		if strings.Join(got, ",") != strings.Join(c.canaries, ",") {
			t.Errorf("%s: canaries %v, want %v", c.path, got, c.canaries)
		}
	}
	if len(tbl.Conflicts) != 0 {
		t.Errorf("canaries reported as conflicts: %v", tbl.Conflicts)
	}
	if len(tbl.Problems) != 1 || tbl.Problems[0].Ingress != c2 || !strings.Contains(tbl.Problems[0].Reason, `path "/pay" (Prefix)`) {
		t.Errorf("problems %v, want one for c2's Prefix /pay", tbl.Problems)
	}
	var keys []string
	for _, b := range tbl.Backends() {
		keys = append(keys, b.Key())
	}
	if !strings.Contains(strings.Join(keys, ","), "shop/web-next:80") {
		t.Errorf("Backends %v lacks the canary's backend (it needs a pool)", keys)
	}
}
