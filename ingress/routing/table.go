// Package routing owns the ingress controller's routing table: which
// Ingresses belong to switchboard (IngressClass), and, built from those
// validated objects as plain typed Go values, which backend answers a
// request for a host and a normalised path, with the precedence of the
// Kubernetes documentation. There is no configuration language anywhere:
// nothing a user writes is rendered into text that is parsed again.
//
// It owns path and host normalisation (NormalizePath, NormalizeHost) and
// the conflict rule for two Ingresses claiming the same host and path. It
// does not resolve Services to endpoints (ingress/upstream), load
// certificates (ingress/certs) or touch the network; it must not call the
// store.
package routing

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ControllerName is the spec.controller of the IngressClasses switchboard
// implements.
const ControllerName = "switchboard.dev/ingress"

// LegacyClassAnnotation is the deprecated kubernetes.io/ingress.class
// annotation. "Before the IngressClass resource and ingressClassName field
// were added in Kubernetes 1.18, Ingress classes were specified with a
// kubernetes.io/ingress.class annotation": its value is taken as the name
// of an IngressClass, as the field is.
const LegacyClassAnnotation = "kubernetes.io/ingress.class"

// Kind is how a route's path matches a request path.
type Kind uint8

const (
	// Exact: "Matches the URL path exactly and with case sensitivity."
	Exact Kind = iota
	// Prefix: "Matches based on a URL path prefix split by /. Matching is
	// case sensitive and done on a path element by element basis."
	Prefix
)

func (k Kind) String() string {
	if k == Exact {
		return "Exact"
	}
	return "Prefix"
}

// KindOf is the matching of a pathType. ImplementationSpecific is
// switchboard's documented choice: "Implementations can treat this as a
// separate pathType or treat it identically to Prefix or Exact path
// types"; switchboard treats it as Prefix (and an empty path as "/"),
// which is what users of other controllers usually meant by it.
func KindOf(pt *networkingv1.PathType) (Kind, bool) {
	if pt == nil {
		return 0, false
	}
	switch *pt {
	case networkingv1.PathTypeExact:
		return Exact, true
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		return Prefix, true
	}
	return 0, false
}

// Backend is where a route sends a request: a Service port in the
// Ingress's namespace (by number or by name), or a resource reference,
// which switchboard does not serve (the proxy answers it with a clear
// status).
type Backend struct {
	Namespace  string
	Service    string
	PortNumber int32  // service.port.number, or 0
	PortName   string // service.port.name, or ""
	Resource   *corev1.TypedLocalObjectReference
	key        string // Key(), computed once when the table is built
}

func newBackend(ns string, b *networkingv1.IngressBackend) (Backend, error) {
	switch {
	case b == nil:
		return Backend{}, fmt.Errorf("backend is missing")
	case b.Service != nil && b.Resource != nil:
		return Backend{}, fmt.Errorf("backend has both service and resource")
	case b.Resource != nil:
		r := b.Resource.DeepCopy()
		be := Backend{Namespace: ns, Resource: r}
		be.key = be.Key()
		return be, nil
	case b.Service == nil:
		return Backend{}, fmt.Errorf("backend has neither service nor resource")
	case b.Service.Name == "":
		return Backend{}, fmt.Errorf("service.name is required")
	case b.Service.Port.Name != "" && b.Service.Port.Number != 0:
		return Backend{}, fmt.Errorf("service.port has both name and number")
	case b.Service.Port.Name == "" && (b.Service.Port.Number <= 0 || b.Service.Port.Number > 65535):
		return Backend{}, fmt.Errorf("service.port.number %d is not a port", b.Service.Port.Number)
	}
	be := Backend{Namespace: ns, Service: b.Service.Name, PortNumber: b.Service.Port.Number, PortName: b.Service.Port.Name}
	be.key = be.Key()
	return be, nil
}

// Key identifies the backend: "namespace/service:port" for a Service,
// "namespace/Kind.apiGroup/name" for a resource.
func (b Backend) Key() string {
	if b.key != "" {
		return b.key
	}
	if b.Resource != nil {
		g := ""
		if b.Resource.APIGroup != nil && *b.Resource.APIGroup != "" {
			g = "." + *b.Resource.APIGroup
		}
		return b.Namespace + "/" + b.Resource.Kind + g + "/" + b.Resource.Name
	}
	if b.PortName != "" {
		return b.Namespace + "/" + b.Service + ":" + b.PortName
	}
	return fmt.Sprintf("%s/%s:%d", b.Namespace, b.Service, b.PortNumber)
}

func (b Backend) String() string { return b.Key() }

// Route is one entry of the table: an Ingress's path (or default backend)
// for a host.
type Route struct {
	Ingress  types.NamespacedName
	Host     string // the rule's host as written; "" for any host
	Path     string // as written; "" for a default backend
	PathType networkingv1.PathType
	Kind     Kind
	Default  bool // the Ingress's spec.defaultBackend
	Backend  Backend
	// TLS is true when the Ingress lists the host in spec.tls: requests
	// for it over plain HTTP are redirected to HTTPS.
	TLS bool
	// Canaries are the routes of canary Ingresses (Input.IsCanary) for
	// the same host and path, in age order: the proxy sends part of this
	// route's requests to them.
	Canaries []*Route

	match string // the path compared: for Prefix without trailing '/'
	order int    // position of the owning Ingress in age order
	index int    // position of the path within the Ingress
}

// matches reports whether the normalised request path p matches.
func (r *Route) matches(p string) bool {
	if r.Kind == Exact {
		return p == r.match
	}
	// "A request is a match for path p if every p is an element-wise
	// prefix of p of the request path"; "/" (match "") matches all.
	if r.match == "" {
		return true
	}
	return p == r.match || strings.HasPrefix(p, r.match) && p[len(r.match)] == '/'
}

// Conflict is two Ingresses (or two paths of one) claiming the same host
// and path (or the same default backend): the older Ingress (by
// creationTimestamp, then namespace/name) wins.
type Conflict struct {
	Host     string // "" for any host
	Path     string // "" for a default backend
	Kind     Kind
	Winner   *networkingv1.Ingress
	Loser    *networkingv1.Ingress
	Backend  Backend // the losing route's backend
	WonWith  Backend
	Catchall bool // the conflict is over the controller-wide default backend
}

// Key identifies the conflict, so that a reporter tells it only once.
func (c Conflict) Key() string {
	return fmt.Sprintf("%s|%s|%s|%s|%v|%s/%s|%s/%s", c.Host, c.Kind, c.Path, c.Backend.Key(), c.Catchall,
		c.Loser.Namespace, c.Loser.Name, c.Winner.Namespace, c.Winner.Name)
}

func (c Conflict) String() string {
	what := fmt.Sprintf("host %q path %q (%s)", hostOrAny(c.Host), c.Path, c.Kind)
	switch {
	case c.Catchall:
		what = "the default backend for requests no rule matches"
	case c.Path == "":
		what = fmt.Sprintf("the default backend of host %q", hostOrAny(c.Host))
	}
	if c.Loser == c.Winner {
		return fmt.Sprintf("%s is claimed twice in Ingress %s/%s: the first (backend %s) is used, %s is ignored",
			what, c.Loser.Namespace, c.Loser.Name, c.WonWith, c.Backend)
	}
	return fmt.Sprintf("%s is claimed by Ingress %s/%s and by the older Ingress %s/%s: the older wins (backend %s), %s is ignored",
		what, c.Loser.Namespace, c.Loser.Name, c.Winner.Namespace, c.Winner.Name, c.WonWith, c.Backend)
}

func hostOrAny(h string) string {
	if h == "" {
		return "*"
	}
	return h
}

// Problem is a part of an Ingress that was left out of the table, with
// the reason (the rest of it is used).
type Problem struct {
	Ingress *networkingv1.Ingress
	Field   string
	Reason  string
}

func (p Problem) String() string {
	return fmt.Sprintf("Ingress %s/%s: %s: %s", p.Ingress.Namespace, p.Ingress.Name, p.Field, p.Reason)
}

// hostRoutes are the routes of one host, in precedence order.
type hostRoutes struct {
	paths []*Route
	def   *Route
}

func (h *hostRoutes) match(p string) *Route {
	for _, r := range h.paths {
		if r.matches(p) {
			return r
		}
	}
	return h.def
}

// Table is an immutable routing table. It is built whole from the objects
// on every change and swapped atomically by the controller.
type Table struct {
	exact    map[string]*hostRoutes
	wildcard map[string]*hostRoutes // by the suffix after "*."
	any      *hostRoutes            // rules without host
	catchall *Route                 // defaultBackend of an Ingress without rules

	// Ingresses are the Ingresses switchboard serves, oldest first.
	Ingresses []*networkingv1.Ingress
	// Conflicts are the claims that lost.
	Conflicts []Conflict
	// Problems are parts of Ingresses left out.
	Problems []Problem
}

// Match finds the route of a request: host is NormalizeHost'd, path is
// NormalizePath'd. "Incoming requests are first evaluated for a host
// match, then routed to the backend associated with the matching
// IngressRuleValue": a precise host is preferred over a wildcard host, and
// a wildcard over rules without a host; within the chosen host "precedence
// will be given first to the longest matching path. If two paths are still
// equally matched, precedence will be given to paths with an exact path
// type over prefix path type." When no path of the host matches, the
// host's default backend (spec.defaultBackend of an Ingress with rules for
// it) answers, then the controller's default backend (spec.defaultBackend
// of an Ingress without rules): "If none of the hosts or paths match the
// HTTP request in the Ingress objects, the traffic is routed to your
// default backend." nil means nothing matched (404).
func (t *Table) Match(host, path string) *Route {
	if t == nil {
		return nil
	}
	h := t.hostRoutes(host)
	if h != nil {
		if r := h.match(path); r != nil {
			return r
		}
	}
	return t.catchall
}

func (t *Table) hostRoutes(host string) *hostRoutes {
	if h := t.exact[host]; h != nil {
		return h
	}
	// "Wildcard matches require the HTTP host header is equal to the
	// suffix of the wildcard rule": the wildcard covers exactly one label.
	if i := strings.IndexByte(host, '.'); i > 0 {
		if h := t.wildcard[host[i+1:]]; h != nil {
			return h
		}
	}
	return t.any
}

// Routes lists every route of the table (for status and tests), by host
// then precedence.
func (t *Table) Routes() []*Route {
	var out []*Route
	add := func(h *hostRoutes) {
		if h == nil {
			return
		}
		out = append(out, h.paths...)
		if h.def != nil {
			out = append(out, h.def)
		}
	}
	for _, k := range sortedKeys(t.exact) {
		add(t.exact[k])
	}
	for _, k := range sortedKeys(t.wildcard) {
		add(t.wildcard[k])
	}
	add(t.any)
	if t.catchall != nil {
		out = append(out, t.catchall)
	}
	return out
}

// Backends lists the distinct service and resource backends the table
// routes to.
func (t *Table) Backends() []Backend {
	seen := map[string]bool{}
	var out []Backend
	for _, r := range t.Routes() {
		for _, x := range append([]*Route{r}, r.Canaries...) {
			if k := x.Backend.Key(); !seen[k] {
				seen[k] = true
				out = append(out, x.Backend)
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Input is what a table is built from: every IngressClass and Ingress.
type Input struct {
	Classes   []*networkingv1.IngressClass
	Ingresses []*networkingv1.Ingress
	// Controller is the spec.controller of the classes served; default
	// ControllerName.
	Controller string
	// IsCanary tells the canary Ingresses: their paths (and default
	// backends) claim nothing; each is attached to the route of another
	// Ingress for the same host and path (Route.Canaries), or reported
	// as a Problem when there is none. nil: no canaries.
	IsCanary func(*networkingv1.Ingress) bool
}

// Ours reports whether switchboard serves the Ingress: its class
// (spec.ingressClassName, or the deprecated kubernetes.io/ingress.class
// annotation) names an IngressClass whose spec.controller is ours, or it
// names no class and one of our classes carries
// ingressclass.kubernetes.io/is-default-class: "true" ("new Ingresses
// without an ingressClassName field specified will be assigned this
// default IngressClass").
func Ours(ing *networkingv1.Ingress, classes []*networkingv1.IngressClass, controller string) bool {
	if controller == "" {
		controller = ControllerName
	}
	name := ""
	if ing.Spec.IngressClassName != nil {
		name = *ing.Spec.IngressClassName
	} else if a, ok := ing.Annotations[LegacyClassAnnotation]; ok {
		name = a
	}
	for _, c := range classes {
		if c.Spec.Controller != controller {
			continue
		}
		if name != "" && c.Name == name {
			return true
		}
		if name == "" && IsDefaultClass(c) {
			return true
		}
	}
	return false
}

// IsDefaultClass reports whether the class carries the default-class
// annotation with the value "true".
func IsDefaultClass(c *networkingv1.IngressClass) bool {
	return c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true"
}

// Older orders Ingresses by age: creationTimestamp, then namespace/name.
func Older(a, b *networkingv1.Ingress) bool {
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	if a.Namespace != b.Namespace {
		return a.Namespace < b.Namespace
	}
	return a.Name < b.Name
}

// Build makes the table of the Ingresses switchboard serves. Parts of an
// Ingress that are invalid are left out and listed in Problems (the
// admission chain refuses them already; this keeps the table safe with
// any store); the rest keeps working.
func Build(in Input) *Table {
	t := &Table{exact: map[string]*hostRoutes{}, wildcard: map[string]*hostRoutes{}}
	for _, ing := range in.Ingresses {
		if ing.DeletionTimestamp == nil && Ours(ing, in.Classes, in.Controller) {
			t.Ingresses = append(t.Ingresses, ing)
		}
	}
	slices.SortStableFunc(t.Ingresses, func(a, b *networkingv1.Ingress) int {
		switch {
		case Older(a, b):
			return -1
		case Older(b, a):
			return 1
		}
		return 0
	})
	claims := map[string]*Route{} // host|kind|match -> winner
	owner := map[*Route]*networkingv1.Ingress{}
	isCanary := func(ing *networkingv1.Ingress) bool { return in.IsCanary != nil && in.IsCanary(ing) }
	for order, ing := range t.Ingresses {
		if !isCanary(ing) {
			t.add(ing, order, claims, owner, false)
		}
	}
	for order, ing := range t.Ingresses {
		if isCanary(ing) {
			t.add(ing, order, claims, owner, true)
		}
	}
	sortRoutes := func(h *hostRoutes) {
		slices.SortStableFunc(h.paths, func(a, b *Route) int {
			// longest first; then Exact before Prefix; then age.
			if d := len(b.match) - len(a.match); d != 0 {
				return d
			}
			if a.Kind != b.Kind {
				return int(a.Kind) - int(b.Kind)
			}
			if a.order != b.order {
				return a.order - b.order
			}
			return a.index - b.index
		})
	}
	for _, h := range t.exact {
		sortRoutes(h)
	}
	for _, h := range t.wildcard {
		sortRoutes(h)
	}
	if t.any != nil {
		sortRoutes(t.any)
	}
	return t
}

func (t *Table) hostFor(host string) *hostRoutes {
	var m map[string]*hostRoutes
	key := host
	switch {
	case host == "":
		if t.any == nil {
			t.any = &hostRoutes{}
		}
		return t.any
	case strings.HasPrefix(host, "*."):
		m, key = t.wildcard, host[2:]
	default:
		m = t.exact
	}
	h := m[key]
	if h == nil {
		h = &hostRoutes{}
		m[key] = h
	}
	return h
}

func (t *Table) add(ing *networkingv1.Ingress, order int, claims map[string]*Route, owner map[*Route]*networkingv1.Ingress, canary bool) {
	ns := ing.Namespace
	claim := func(key string, r *Route, put func()) {
		if canary {
			if w, ok := claims[key]; ok {
				w.Canaries = append(w.Canaries, r)
				return
			}
			what := fmt.Sprintf("host %q path %q (%s)", hostOrAny(r.Host), r.Path, r.Kind)
			if r.Default {
				what = fmt.Sprintf("the default backend of host %q", hostOrAny(r.Host))
			}
			t.Problems = append(t.Problems, Problem{Ingress: ing, Field: "metadata.annotations[switchboard.dev/canary]",
				Reason: "no other Ingress serves " + what + " for this canary to share"})
			return
		}
		if w, ok := claims[key]; ok {
			t.Conflicts = append(t.Conflicts, Conflict{
				Host: r.Host, Path: r.Path, Kind: r.Kind, Winner: owner[w], Loser: ing,
				Backend: r.Backend, WonWith: w.Backend, Catchall: key == "catchall",
			})
			return
		}
		claims[key] = r
		owner[r] = ing
		put()
	}
	name := types.NamespacedName{Namespace: ns, Name: ing.Name}
	var def *Backend
	if ing.Spec.DefaultBackend != nil {
		b, err := newBackend(ns, ing.Spec.DefaultBackend)
		if err != nil {
			t.Problems = append(t.Problems, Problem{Ingress: ing, Field: "spec.defaultBackend", Reason: err.Error()})
		} else {
			def = &b
		}
	}
	if len(ing.Spec.Rules) == 0 {
		if def != nil {
			r := &Route{Ingress: name, Default: true, Backend: *def, order: order, TLS: tlsCovers(ing, "")}
			claim("catchall", r, func() { t.catchall = r })
		}
		return
	}
	for i, rule := range ing.Spec.Rules {
		host := strings.ToLower(rule.Host)
		if err := checkHost(host); err != nil {
			t.Problems = append(t.Problems, Problem{Ingress: ing, Field: fmt.Sprintf("spec.rules[%d].host", i), Reason: err.Error()})
			continue
		}
		tls := tlsCovers(ing, host)
		if def != nil {
			r := &Route{Ingress: name, Host: host, Default: true, Backend: *def, order: order, index: -1, TLS: tls}
			claim(host+"|default", r, func() { t.hostFor(host).def = r })
		}
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			fld := fmt.Sprintf("spec.rules[%d].http.paths[%d]", i, j)
			kind, ok := KindOf(p.PathType)
			if !ok {
				t.Problems = append(t.Problems, Problem{Ingress: ing, Field: fld + ".pathType", Reason: "must be Exact, Prefix or ImplementationSpecific"})
				continue
			}
			path := p.Path
			if path == "" && *p.PathType == networkingv1.PathTypeImplementationSpecific {
				path = "/"
			}
			if err := checkPath(path); err != nil {
				t.Problems = append(t.Problems, Problem{Ingress: ing, Field: fld + ".path", Reason: err.Error()})
				continue
			}
			b, err := newBackend(ns, &p.Backend)
			if err != nil {
				t.Problems = append(t.Problems, Problem{Ingress: ing, Field: fld + ".backend", Reason: err.Error()})
				continue
			}
			match := path
			if kind == Prefix {
				// "/foo/" and "/foo" are the same prefix: "ignores
				// trailing slash".
				match = strings.TrimRight(path, "/")
			}
			r := &Route{Ingress: name, Host: host, Path: p.Path, PathType: *p.PathType, Kind: kind, Backend: b,
				TLS: tls, match: match, order: order, index: i*1000 + j}
			claim(host+"|"+kind.String()+"|"+match, r, func() {
				h := t.hostFor(host)
				h.paths = append(h.paths, r)
			})
		}
	}
}

// checkHost: "Host can be "precise" which is a domain name without the
// terminating dot of a network host (e.g. "foo.bar.com") or "wildcard",
// which is a domain name prefixed with a single wildcard label (e.g.
// "*.foo.com"). The wildcard character '*' must appear by itself as the
// first DNS label and matches only a single label. You cannot have a
// wildcard label by itself (e.g. Host == "*")."
func checkHost(h string) error {
	if h == "" {
		return nil
	}
	rest := h
	if strings.HasPrefix(h, "*.") {
		rest = h[2:]
	}
	if rest == "" || strings.Contains(rest, "*") {
		return fmt.Errorf("%q: the wildcard '*' must be the whole first label, followed by a domain", h)
	}
	if strings.HasSuffix(rest, ".") || strings.HasPrefix(rest, ".") || strings.Contains(rest, "..") {
		return fmt.Errorf("%q is not a DNS name", h)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("%q is not a DNS name (character %q)", h, c)
		}
	}
	return nil
}

// checkPath: "Paths must begin with a '/'". A path that normalisation
// would change (dot-segments, "//") could never be matched and is refused,
// as the API server refuses it for Exact and Prefix.
func checkPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q must begin with '/'", p)
	}
	n, err := NormalizePath(escapeForCheck(p))
	if err != nil {
		return fmt.Errorf("%q: %v", p, err)
	}
	if n != p {
		return fmt.Errorf("%q is not in normal form (it would be %q): requests are matched after normalisation", p, n)
	}
	return nil
}

// escapeForCheck escapes '%' so that a path written with a literal '%' is
// checked as written.
func escapeForCheck(p string) string { return strings.ReplaceAll(p, "%", "%25") }

// tlsCovers reports whether the Ingress's spec.tls lists host (exactly, or
// through a wildcard entry covering it); a TLS entry without hosts covers
// every host of the Ingress. For host "" (any host) only an entry without
// hosts counts.
func tlsCovers(ing *networkingv1.Ingress, host string) bool {
	for _, t := range ing.Spec.TLS {
		if len(t.Hosts) == 0 {
			return true
		}
		for _, h := range t.Hosts {
			if HostMatches(strings.ToLower(h), host) {
				return true
			}
		}
	}
	return false
}

// HostMatches reports whether a rule or TLS host (precise or "*.suffix")
// covers the request host, by the documented wildcard rule (one label).
// A wildcard pattern also covers the same wildcard written as host.
func HostMatches(pattern, host string) bool {
	if pattern == "" || host == "" {
		return false
	}
	if pattern == host {
		return true
	}
	if suf, ok := strings.CutPrefix(pattern, "*."); ok {
		i := strings.IndexByte(host, '.')
		return i > 0 && host[:i] != "*" && host[i+1:] == suf
	}
	return false
}
