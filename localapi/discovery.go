package localapi

import (
	"net/http"
	"reflect"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/version"

	"github.com/switchboard-dev/switchboard/cluster"
)

// verbs of every resource: the full set an API server's generic registry
// serves.
var resourceVerbs = metav1.Verbs{"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}

// categories as the API server declares them (kubectl get all).
var categories = map[*cluster.Kind][]string{
	cluster.KindPod:        {"all"},
	cluster.KindService:    {"all"},
	cluster.KindDeployment: {"all"},
	cluster.KindReplicaSet: {"all"},
}

// hasStatus tells whether a kind has a status subresource: every kind
// whose type has a Status field.
func hasStatus(k *cluster.Kind) bool {
	t := reflect.TypeOf(k.New()).Elem()
	_, ok := t.FieldByName("Status")
	return ok
}

func servesGroupVersion(gv schema.GroupVersion) bool {
	for _, k := range cluster.Kinds {
		if k.GVK.GroupVersion() == gv {
			return true
		}
	}
	return false
}

// resourceList is the APIResourceList of one group/version, built from
// cluster.Kinds (resources sorted by name, as the API server lists them).
func resourceList(gv schema.GroupVersion) *metav1.APIResourceList {
	l := &metav1.APIResourceList{
		TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
		GroupVersion: gv.String(),
		APIResources: []metav1.APIResource{},
	}
	for _, k := range cluster.Kinds {
		if k.GVK.GroupVersion() != gv {
			continue
		}
		l.APIResources = append(l.APIResources, metav1.APIResource{
			Name:         k.Resource,
			SingularName: strings.ToLower(k.GVK.Kind),
			Namespaced:   k.Namespaced,
			Kind:         k.GVK.Kind,
			Verbs:        resourceVerbs,
			ShortNames:   k.ShortNames,
			Categories:   categories[k],
		})
		if hasStatus(k) {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name: k.Resource + "/status", Namespaced: k.Namespaced, Kind: k.GVK.Kind,
				Verbs: metav1.Verbs{"get", "patch", "update"},
			})
		}
		if hasScale(k) {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name: k.Resource + "/scale", Namespaced: k.Namespaced, Group: "autoscaling", Version: "v1", Kind: "Scale",
				Verbs: metav1.Verbs{"get", "patch", "update"},
			})
		}
		if k == cluster.KindPod {
			l.APIResources = append(l.APIResources, metav1.APIResource{
				Name: "pods/log", Namespaced: true, Kind: "Pod", Verbs: metav1.Verbs{"get"},
			})
		}
	}
	sort.SliceStable(l.APIResources, func(i, j int) bool { return l.APIResources[i].Name < l.APIResources[j].Name })
	return l
}

// apiVersions answers /api (the legacy core group).
func apiVersions(r *http.Request) *metav1.APIVersions {
	return &metav1.APIVersions{
		TypeMeta: metav1.TypeMeta{Kind: "APIVersions"},
		Versions: []string{"v1"},
		ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{
			{ClientCIDR: "0.0.0.0/0", ServerAddress: r.Host},
		},
	}
}

// groups lists the named API groups served, sorted by name.
func groups() []metav1.APIGroup {
	byName := map[string]*metav1.APIGroup{}
	var names []string
	for _, k := range cluster.Kinds {
		if k.GVK.Group == "" {
			continue
		}
		g, ok := byName[k.GVK.Group]
		if !ok {
			g = &metav1.APIGroup{
				TypeMeta: metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
				Name:     k.GVK.Group,
			}
			byName[k.GVK.Group] = g
			names = append(names, k.GVK.Group)
		}
		gvd := metav1.GroupVersionForDiscovery{GroupVersion: k.GVK.GroupVersion().String(), Version: k.GVK.Version}
		found := false
		for _, v := range g.Versions {
			found = found || v == gvd
		}
		if !found {
			g.Versions = append(g.Versions, gvd)
			if g.PreferredVersion.Version == "" {
				g.PreferredVersion = gvd
			}
		}
	}
	sort.Strings(names)
	out := make([]metav1.APIGroup, 0, len(names))
	for _, n := range names {
		out = append(out, *byName[n])
	}
	return out
}

func apiGroupList() *metav1.APIGroupList {
	gs := groups()
	for i := range gs {
		gs[i].TypeMeta = metav1.TypeMeta{}
	}
	return &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: gs}
}

func apiGroup(name string) *metav1.APIGroup {
	for _, g := range groups() {
		if g.Name == name {
			return &g
		}
	}
	return nil
}

func rootPaths() *metav1.RootPaths {
	paths := []string{"/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v3", "/readyz", "/version"}
	for _, g := range groups() {
		paths = append(paths, "/apis/"+g.Name)
		for _, v := range g.Versions {
			paths = append(paths, "/apis/"+v.GroupVersion)
		}
	}
	sort.Strings(paths)
	return &metav1.RootPaths{Paths: paths}
}

// apiLevel is the Kubernetes version whose API types are served: the
// version of the k8s.io/api module built in (v0.X.Y serves Kubernetes
// 1.X.Y).
func apiLevel() (major, minor, patch string) {
	// Test binaries carry no dependency versions: they report the level
	// this package was last checked against.
	major, minor, patch = "1", "37", "2"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	for _, m := range bi.Deps {
		if m.Path != "k8s.io/api" {
			continue
		}
		v := m.Version
		if m.Replace != nil {
			v = m.Replace.Version
		}
		parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
		if len(parts) == 3 {
			minor = parts[1]
			patch = strings.SplitN(parts[2], "-", 2)[0]
		}
	}
	return
}

var notBuildMeta = regexp.MustCompile(`[^0-9A-Za-z.-]+`)

// version answers /version: the Kubernetes API level served, with
// Switchboard's own version as semver build metadata (the way
// distributions report theirs, e.g. v1.30.2+k3s1).
func (s *server) version() *version.Info {
	major, minor, patch := apiLevel()
	git := "v" + major + "." + minor + "." + patch + "+switchboard"
	if v := strings.Trim(notBuildMeta.ReplaceAllString(s.opts.Version, "-"), ".-"); v != "" {
		git += "." + v
	}
	return &version.Info{
		Major:        major,
		Minor:        minor,
		GitVersion:   git,
		GitTreeState: "clean",
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
	}
}
