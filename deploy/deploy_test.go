package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/switchboard-dev/switchboard/cni/cnicmd"
	"github.com/switchboard-dev/switchboard/dns/dnscmd"
	"github.com/switchboard-dev/switchboard/ingress/ingresscmd"
	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
	"github.com/switchboard-dev/switchboard/serviceproxy/proxycmd"
)

// doc is one YAML document of a manifest file.
type doc struct {
	file string
	idx  int
	obj  *unstructured.Unstructured
}

func (d doc) String() string {
	return fmt.Sprintf("%s document %d (%s %s/%s)", d.file, d.idx, d.obj.GetKind(), d.obj.GetNamespace(), d.obj.GetName())
}

// readDocs decodes every document of every manifest file; an error names
// the file and the document.
func readDocs(t *testing.T) []doc {
	t.Helper()
	var docs []doc
	for _, name := range Names() {
		b, err := fs.ReadFile(Files(), name)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for i := 0; ; i++ {
			u := &unstructured.Unstructured{}
			if err := r.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: document %d: %v", name, i, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			if u.GetKind() == "" || u.GetAPIVersion() == "" {
				t.Fatalf("%s: document %d: no kind or apiVersion", name, i)
			}
			docs = append(docs, doc{name, i, u})
		}
	}
	if len(docs) == 0 {
		t.Fatal("no manifests")
	}
	return docs
}

func find(docs []doc, kind, name string) *unstructured.Unstructured {
	for _, d := range docs {
		if d.obj.GetKind() == kind && d.obj.GetName() == name {
			return d.obj
		}
	}
	return nil
}

func typed[T any](t *testing.T, u *unstructured.Unstructured, what string) T {
	t.Helper()
	var v T
	if u == nil {
		t.Fatalf("%s: missing", what)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &v); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// TestContents checks what the manifests must agree on with the code.
func TestContents(t *testing.T) {
	docs := readDocs(t)
	cases := []struct {
		name  string
		check func(t *testing.T)
	}{
		{"the ConfigMap holds `switchboard dns --print-default-corefile`", func(t *testing.T) {
			cm := typed[corev1.ConfigMap](t, find(docs, "ConfigMap", "switchboard-dns"), "ConfigMap switchboard-dns")
			if got, want := strings.TrimSpace(cm.Data["Corefile"]), strings.TrimSpace(dnscmd.DefaultCorefile(dnscmd.DefaultZone)); got != want {
				t.Errorf("Corefile:\n%s\nwant:\n%s", got, want)
			}
		}},
		{"the IngressClass names the controller the ingress serves", func(t *testing.T) {
			ic := typed[networkingv1.IngressClass](t, find(docs, "IngressClass", "switchboard"), "IngressClass switchboard")
			if ic.Spec.Controller != routing.ControllerName {
				t.Errorf("spec.controller %q, want %q", ic.Spec.Controller, routing.ControllerName)
			}
		}},
		{"every namespaced object is in switchboard-system", func(t *testing.T) {
			for _, d := range docs {
				switch d.obj.GetKind() {
				case "Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass":
					if d.obj.GetNamespace() != "" {
						t.Errorf("%s: cluster-scoped with a namespace", d)
					}
				default:
					if d.obj.GetNamespace() != "switchboard-system" {
						t.Errorf("%s: namespace %q", d, d.obj.GetNamespace())
					}
				}
			}
		}},
		{"every switchboard container's args are flags its command takes", func(t *testing.T) {
			root := &cobra.Command{Use: "switchboard"}
			root.PersistentFlags().String("kubeconfig", "", "")
			root.AddCommand(dnscmd.NewCommand(func() string { return "" }), proxycmd.NewCommand(), ingresscmd.NewCommand(), cnicmd.NewCommand())
			n := 0
			for _, d := range docs {
				podSpec, found, _ := unstructured.NestedMap(d.obj.Object, "spec", "template", "spec")
				if !found {
					continue
				}
				spec := typed[corev1.PodSpec](t, &unstructured.Unstructured{Object: podSpec}, d.String())
				for _, c := range append(spec.InitContainers, spec.Containers...) {
					if !strings.Contains(c.Image, "switchboard") || len(c.Command) > 0 {
						continue // a shell script (the CNI install) or another image
					}
					n++
					sub, rest, err := root.Find(c.Args)
					if err != nil || sub == root {
						t.Errorf("%s: container %s: args %q name no switchboard command (%v)", d, c.Name, c.Args, err)
						continue
					}
					if err := sub.ParseFlags(rest); err != nil {
						t.Errorf("%s: container %s: args %q: %v", d, c.Name, c.Args, err)
					}
				}
			}
			if n < 3 {
				t.Errorf("checked %d switchboard containers, want the DNS, kube-proxy and ingress ones", n)
			}
		}},
		{"no RBAC rule grants every verb or resource (least privilege)", func(t *testing.T) {
			for _, d := range docs {
				if k := d.obj.GetKind(); k != "ClusterRole" && k != "Role" {
					continue
				}
				rules, _, _ := unstructured.NestedSlice(d.obj.Object, "rules")
				for i, r := range rules {
					m, _ := r.(map[string]any)
					for _, f := range []string{"verbs", "resources", "apiGroups"} {
						vals, _, _ := unstructured.NestedStringSlice(m, f)
						for _, v := range vals {
							if v == "*" {
								t.Errorf("%s: rules[%d].%s has *", d, i, f)
							}
						}
					}
					verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
					res, _, _ := unstructured.NestedStringSlice(m, "resources")
					for _, v := range verbs {
						if (v == "delete" || v == "deletecollection") || (v != "list" && v != "watch" && v != "get" && slicesHas(res, "secrets")) {
							t.Errorf("%s: rules[%d] lets it %s %v", d, i, v, res)
						}
					}
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.check)
	}
}

func slicesHas(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestServerSideDryRun sends every manifest to a real kube-apiserver with
// dryRun=All: "The request is still processed as typical request: the
// fields are defaulted, the object is validated, it goes through the
// validation admission chain, and through the mutating admission chain,
// and then the final object is returned to the user as it normally
// would, without being persisted" (Kubernetes API concepts, Dry-run).
// Namespaced objects need their namespace to exist (NamespaceLifecycle
// admission), so the Namespaces are dry-run first and then created.
func TestServerSideDryRun(t *testing.T) {
	kc := kubetest.Start(t)
	ctx := context.Background()
	docs := readDocs(t)
	for _, d := range docs {
		if d.obj.GetKind() != "Service" {
			continue
		}
		ip, _, _ := unstructured.NestedString(d.obj.Object, "spec", "clusterIP")
		if ip == "" {
			continue
		}
		if a, err := netip.ParseAddr(ip); err != nil || !netip.MustParsePrefix(kubetest.ServiceCIDR).Contains(a) {
			t.Fatalf("%s: clusterIP %s is outside the test API server's range %s; the test would not validate it", d, ip, kubetest.ServiceCIDR)
		}
	}
	dc, err := discovery.NewDiscoveryClientForConfig(kc.Config)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(kc.Config)
	if err != nil {
		t.Fatal(err)
	}
	resourceOf := func(d doc) dynamic.ResourceInterface {
		t.Helper()
		gvk := d.obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: the API server does not serve %s: %v", d, gvk, err)
		}
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			return dyn.Resource(m.Resource).Namespace(d.obj.GetNamespace())
		}
		return dyn.Resource(m.Resource)
	}
	// Strict field validation: an unknown or duplicated field is an
	// error, not a warning.
	dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict, FieldManager: "deploy-test"}
	for _, d := range docs {
		if d.obj.GetKind() != "Namespace" {
			continue
		}
		if _, err := resourceOf(d).Create(ctx, d.obj, dry); err != nil {
			t.Errorf("%s: server-side dry-run: %v", d, err)
			continue
		}
		if _, err := resourceOf(d).Create(ctx, d.obj, metav1.CreateOptions{FieldManager: "deploy-test"}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("%s: create: %v", d, err)
		}
	}
	n := 0
	for _, d := range docs {
		if d.obj.GetKind() == "Namespace" {
			n++
		}
	}
	for _, d := range docs {
		if d.obj.GetKind() == "Namespace" {
			continue
		}
		t.Run(d.file+"/"+d.obj.GetKind()+"/"+d.obj.GetName(), func(t *testing.T) {
			got, err := resourceOf(d).Create(ctx, d.obj, dry)
			if onlyPrivilegedForbidden(err) {
				// internal/kubetest's API server runs without
				// --allow-privileged=true (kubeadm and kind set it):
				// everything else of the object is still validated.
				t.Logf("%s: %v; the API server does not allow privileged containers: validating the rest without them", d, err)
				got, err = resourceOf(d).Create(ctx, withoutPrivileged(d.obj), dry)
			}
			if err != nil {
				t.Fatalf("%s: server-side dry-run: %v", d, err)
			}
			if ts := got.GetCreationTimestamp(); got.GetUID() == "" && ts.IsZero() {
				t.Errorf("%s: the dry-run answer is not a created object: %v", d, got.Object)
			}
			// Dry-run persists nothing.
			if _, err := resourceOf(d).Get(ctx, d.obj.GetName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: after a dry-run, get: %v (want NotFound)", d, err)
			}
		})
		n++
	}
	t.Logf("%d objects in %d files sent to server-side dry-run", n, len(Names()))
}

// onlyPrivilegedForbidden tells whether err is the API server refusing
// privileged containers ("disallowed by cluster policy", the
// --allow-privileged flag) and nothing else.
func onlyPrivilegedForbidden(err error) bool {
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil || len(st.Status().Details.Causes) == 0 {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Type != metav1.CauseType(field.ErrorTypeForbidden) || !strings.HasSuffix(c.Field, ".securityContext.privileged") {
			return false
		}
	}
	return true
}

// withoutPrivileged is a copy of a workload with securityContext.privileged
// removed from every container of its pod template.
func withoutPrivileged(u *unstructured.Unstructured) *unstructured.Unstructured {
	u = u.DeepCopy()
	for _, f := range []string{"containers", "initContainers"} {
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", f)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				unstructured.RemoveNestedField(m, "securityContext", "privileged")
			}
		}
		if cs != nil {
			_ = unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", f)
		}
	}
	return u
}
