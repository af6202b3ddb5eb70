package localapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/version"

	"github.com/switchboard-dev/switchboard/cluster"
)

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()

	t.Run("fresh socket is 0600 and removed on close", func(t *testing.T) {
		p := filepath.Join(dir, "fresh.sock")
		ln, err := ListenUnix(p)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			ln.Close()
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("mode = %v, want a socket with 0600", fi.Mode())
		}
		ln.Close()
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket file still there after close: %v", err)
		}
	})

	t.Run("stale socket nobody answers on is replaced", func(t *testing.T) {
		p := filepath.Join(dir, "stale.sock")
		old, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close() // leaves the file, as a crashed process would
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("setup: %v", err)
		}
		ln, err := ListenUnix(p)
		if err != nil {
			t.Fatalf("stale socket not replaced: %v", err)
		}
		ln.Close()
	})

	t.Run("live socket is left alone", func(t *testing.T) {
		p := filepath.Join(dir, "live.sock")
		live, err := ListenUnix(p)
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		go func() {
			for {
				c, err := live.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		if ln, err := ListenUnix(p); err == nil {
			ln.Close()
			t.Fatal("second listener on a live socket succeeded")
		} else if !strings.Contains(err.Error(), "another process") {
			t.Errorf("error = %v, want it to say another process serves there", err)
		}
	})

	t.Run("a regular file is not removed", func(t *testing.T) {
		p := filepath.Join(dir, "file.sock")
		if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
		if ln, err := ListenUnix(p); err == nil {
			ln.Close()
			t.Fatal("listened over a regular file")
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "data" {
			t.Errorf("regular file changed: %q %v", b, err)
		}
	})

	t.Run("too long a path names the limit", func(t *testing.T) {
		_, err := ListenUnix(filepath.Join(dir, strings.Repeat("x", 120)))
		if err == nil || !strings.Contains(err.Error(), "limit") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestHealthMetricsVersion(t *testing.T) {
	var notReady error = errors.New("pods are still starting")
	ts := newTestServer(t, Options{Ready: func() error { return notReady }, Version: "v0.1.0-dev"})

	for _, p := range []string{"/healthz", "/livez"} {
		r := ts.do(t, "GET", p, "", nil)
		if r.code != 200 || string(r.body) != "ok" {
			t.Errorf("%s = %d %q, want 200 ok", p, r.code, r.body)
		}
	}
	// The API server's readyz: 500 and the failed check's reason.
	r := ts.do(t, "GET", "/readyz", "", nil)
	if r.code != http.StatusInternalServerError || !strings.Contains(string(r.body), "pods are still starting") {
		t.Errorf("/readyz not ready = %d %q", r.code, r.body)
	}
	notReady = nil
	if r := ts.do(t, "GET", "/readyz", "", nil); r.code != 200 || string(r.body) != "ok" {
		t.Errorf("/readyz ready = %d %q", r.code, r.body)
	}

	var v version.Info
	r = ts.do(t, "GET", "/version", "", nil)
	r.into(t, &v)
	if v.Major != "1" || v.Minor == "" || v.Minor == "0" || !strings.HasSuffix(v.GitVersion, "+switchboard.v0.1.0-dev") {
		t.Errorf("/version = %+v", v)
	}

	r = ts.do(t, "GET", "/metrics", "", nil)
	if r.code != 200 || !strings.Contains(string(r.body), `apiserver_request_total{code="200",resource="",subresource="",verb="get"}`) {
		t.Errorf("/metrics lacks the request counter:\n%s", r.body)
	}
	// Every request is logged at Debug with method, path, code and duration.
	if !strings.Contains(ts.logs.String(), "method=GET path=/readyz") || !strings.Contains(ts.logs.String(), "code=500") {
		t.Errorf("request log lacks method/path/code:\n%s", ts.logs.String())
	}
}

func TestDiscovery(t *testing.T) {
	ts := newTestServer(t, Options{})

	var av metav1.APIVersions
	ts.do(t, "GET", "/api", "", nil).into(t, &av)
	if av.Kind != "APIVersions" || len(av.Versions) != 1 || av.Versions[0] != "v1" {
		t.Errorf("/api = %+v", av)
	}

	var gl metav1.APIGroupList
	ts.do(t, "GET", "/apis", "", nil).into(t, &gl)
	got := map[string]string{}
	for _, g := range gl.Groups {
		got[g.Name] = g.PreferredVersion.GroupVersion
	}
	for _, k := range cluster.Kinds {
		if k.GVK.Group != "" && got[k.GVK.Group] != k.GVK.GroupVersion().String() {
			t.Errorf("/apis lacks %s (got %v)", k.GVK.GroupVersion(), got)
		}
	}

	// Every kind is discoverable with the fields kubectl resolves names by.
	for _, k := range cluster.Kinds {
		t.Run(k.Resource, func(t *testing.T) {
			var rl metav1.APIResourceList
			r := ts.do(t, "GET", k.APIPath(), "", nil)
			r.into(t, &rl)
			if rl.Kind != "APIResourceList" || rl.GroupVersion != k.GVK.GroupVersion().String() {
				t.Fatalf("%s = %s", k.APIPath(), r.body)
			}
			res := map[string]metav1.APIResource{}
			for _, ar := range rl.APIResources {
				res[ar.Name] = ar
			}
			ar, ok := res[k.Resource]
			if !ok {
				t.Fatalf("%s lacks %s", k.APIPath(), k.Resource)
			}
			if ar.Kind != k.GVK.Kind || ar.Namespaced != k.Namespaced || ar.SingularName != strings.ToLower(k.GVK.Kind) ||
				strings.Join(ar.ShortNames, ",") != strings.Join(k.ShortNames, ",") || !strings.Contains(strings.Join(ar.Verbs, ","), "watch") {
				t.Errorf("resource = %+v", ar)
			}
			if _, ok := res[k.Resource+"/status"]; ok != hasStatus(k) {
				t.Errorf("%s/status listed = %v, want %v", k.Resource, ok, hasStatus(k))
			}
		})
	}
	var rl metav1.APIResourceList
	ts.do(t, "GET", "/api/v1", "", nil).into(t, &rl)
	foundLog := false
	for _, ar := range rl.APIResources {
		foundLog = foundLog || (ar.Name == "pods/log" && ar.Kind == "Pod")
	}
	if !foundLog {
		t.Error("/api/v1 lacks pods/log")
	}
	var g metav1.APIGroup
	ts.do(t, "GET", "/apis/apps", "", nil).into(t, &g)
	if g.Name != "apps" || g.PreferredVersion.Version != "v1" {
		t.Errorf("/apis/apps = %+v", g)
	}
}

func TestCRUD(t *testing.T) {
	ts := newTestServer(t, Options{})
	base := "/api/v1/namespaces/default/pods"

	// create: 201 with the stored object.
	r := ts.do(t, "POST", base, "application/json", pod("", "web", map[string]string{"app": "web"}))
	if r.code != http.StatusCreated {
		t.Fatalf("create = %d %s", r.code, r.body)
	}
	var created corev1.Pod
	r.into(t, &created)
	if created.Namespace != "default" || created.UID == "" || created.ResourceVersion == "" || created.Kind != "Pod" {
		t.Errorf("created = %+v", created.ObjectMeta)
	}

	// generateName, as kubectl create with metadata.generateName.
	gen := pod("default", "", nil)
	gen.GenerateName = "web-"
	r = ts.do(t, "POST", base, "application/json", gen)
	var genOut corev1.Pod
	r.into(t, &genOut)
	if r.code != http.StatusCreated || !strings.HasPrefix(genOut.Name, "web-") || len(genOut.Name) <= len("web-") {
		t.Errorf("generateName create = %d %s", r.code, genOut.Name)
	}

	// YAML bodies, as curl users may send.
	r = ts.do(t, "POST", "/api/v1/namespaces/default/configmaps", "application/yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  a: b\n")
	if r.code != http.StatusCreated {
		t.Errorf("yaml create = %d %s", r.code, r.body)
	}

	// get
	var got corev1.Pod
	r = ts.do(t, "GET", base+"/web", "", nil)
	r.into(t, &got)
	if r.code != 200 || got.UID != created.UID {
		t.Errorf("get = %d %+v", r.code, got.ObjectMeta)
	}

	// list: a typed list with apiVersion, kind and resourceVersion.
	var list corev1.PodList
	r = ts.do(t, "GET", base, "", nil)
	r.into(t, &list)
	if list.Kind != "PodList" || list.APIVersion != "v1" || list.ResourceVersion != ts.store.ResourceVersion() || len(list.Items) != 2 {
		t.Errorf("list = %s %s rv=%s items=%d", list.APIVersion, list.Kind, list.ResourceVersion, len(list.Items))
	}
	var all corev1.PodList
	ts.do(t, "GET", "/api/v1/pods", "", nil).into(t, &all)
	if len(all.Items) != 2 {
		t.Errorf("all-namespaces list has %d items", len(all.Items))
	}

	// update (PUT) with the current resourceVersion.
	got.Labels["tier"] = "front"
	r = ts.do(t, "PUT", base+"/web", "application/json", &got)
	var updated corev1.Pod
	r.into(t, &updated)
	if r.code != 200 || updated.Labels["tier"] != "front" || updated.ResourceVersion == got.ResourceVersion {
		t.Errorf("update = %d %+v", r.code, updated.ObjectMeta)
	}
	// A stale resourceVersion is a 409 Conflict.
	r = ts.do(t, "PUT", base+"/web", "application/json", &got)
	if st := r.status(t); r.code != http.StatusConflict || st.Reason != metav1.StatusReasonConflict {
		t.Errorf("stale update = %d %+v", r.code, st)
	}

	// status subresource: only the status changes.
	updated.Status.Phase = corev1.PodRunning
	updated.Labels["ignored"] = "yes"
	r = ts.do(t, "PUT", base+"/web/status", "application/json", &updated)
	var st corev1.Pod
	r.into(t, &st)
	if r.code != 200 || st.Status.Phase != corev1.PodRunning || st.Labels["ignored"] != "" {
		t.Errorf("status update = %d phase=%s labels=%v", r.code, st.Status.Phase, st.Labels)
	}
	r = ts.do(t, "GET", base+"/web/status", "", nil)
	if r.code != 200 {
		t.Errorf("get status = %d", r.code)
	}

	// patches
	patches := []struct {
		name, ct, body string
		check          func(p *corev1.Pod) bool
	}{
		{"merge patch (RFC 7386) sets a label", "application/merge-patch+json", `{"metadata":{"labels":{"m":"1"}}}`,
			func(p *corev1.Pod) bool { return p.Labels["m"] == "1" && p.Labels["app"] == "web" }},
		{"merge patch null deletes a label", "application/merge-patch+json", `{"metadata":{"labels":{"m":null}}}`,
			func(p *corev1.Pod) bool { _, ok := p.Labels["m"]; return !ok }},
		{"strategic merge patch merges containers by name", "application/strategic-merge-patch+json",
			`{"spec":{"containers":[{"name":"side","image":"x"}]}}`,
			func(p *corev1.Pod) bool { return len(p.Spec.Containers) == 2 }},
		{"JSON patch (RFC 6902) replaces", "application/json-patch+json", `[{"op":"replace","path":"/metadata/labels/app","value":"api"}]`,
			func(p *corev1.Pod) bool { return p.Labels["app"] == "api" }},
		{"content type parameters are ignored", "application/merge-patch+json; charset=utf-8", `{"metadata":{"annotations":{"a":"b"}}}`,
			func(p *corev1.Pod) bool { return p.Annotations["a"] == "b" }},
	}
	for _, tc := range patches {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "PATCH", base+"/web", tc.ct, tc.body)
			var p corev1.Pod
			r.into(t, &p)
			if r.code != 200 || !tc.check(&p) {
				t.Errorf("patch = %d %s", r.code, r.body)
			}
			stored, _ := cluster.Get[*corev1.Pod](ts.store, "default", "web")
			if !tc.check(stored) {
				t.Errorf("the store does not hold the patched object")
			}
		})
	}
	r = ts.do(t, "PATCH", base+"/web/status", "application/merge-patch+json", `{"status":{"podIP":"127.1.0.5"}}`)
	if r.into(t, &st); r.code != 200 || st.Status.PodIP != "127.1.0.5" || st.Status.Phase != corev1.PodRunning {
		t.Errorf("status patch = %d %+v", r.code, st.Status)
	}
	// A resourceVersion in a patch is a precondition.
	r = ts.do(t, "PATCH", base+"/web", "application/merge-patch+json", `{"metadata":{"resourceVersion":"1","labels":{"x":"y"}}}`)
	if r.code != http.StatusConflict {
		t.Errorf("patch with a stale resourceVersion = %d %s", r.code, r.body)
	}

	// delete of a pod no node runs: gone at once; the answer is the object.
	r = ts.do(t, "DELETE", base+"/web", "", nil)
	var deleted corev1.Pod
	r.into(t, &deleted)
	if r.code != 200 || deleted.Name != "web" {
		t.Errorf("delete = %d %s", r.code, r.body)
	}
	if r := ts.do(t, "GET", base+"/web", "", nil); r.code != 404 {
		t.Errorf("get after delete = %d", r.code)
	}

	// delete of a pod bound to a node is graceful: the answer carries the
	// deletionTimestamp and the grace period asked for.
	bound := pod("default", "bound", nil)
	bound.Spec.NodeName = "node1"
	if _, err := ts.store.Create(bound); err != nil {
		t.Fatal(err)
	}
	r = ts.do(t, "DELETE", base+"/bound?gracePeriodSeconds=7", "", nil)
	r.into(t, &deleted)
	if r.code != 200 || deleted.DeletionTimestamp == nil || deleted.DeletionGracePeriodSeconds == nil || *deleted.DeletionGracePeriodSeconds != 7 {
		t.Errorf("graceful delete = %d %+v", r.code, deleted.ObjectMeta)
	}
	// DeleteOptions in the body win over the query.
	r = ts.do(t, "DELETE", base+"/bound?gracePeriodSeconds=7", "application/json", `{"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0}`)
	if r.code != 200 {
		t.Errorf("forced delete = %d %s", r.code, r.body)
	}
	if _, err := ts.store.Get(cluster.KindPod, "default", "bound"); !apierrors.IsNotFound(err) {
		t.Errorf("forced delete left the pod: %v", err)
	}

	// delete collection with a selector.
	for _, n := range []string{"a", "b", "c"} {
		l := map[string]string{"batch": "1"}
		if n == "c" {
			l = nil
		}
		if _, err := ts.store.Create(pod("default", n, l)); err != nil {
			t.Fatal(err)
		}
	}
	r = ts.do(t, "DELETE", base+"?labelSelector=batch%3D1", "", nil)
	var dl corev1.PodList
	r.into(t, &dl)
	if r.code != 200 || len(dl.Items) != 2 {
		t.Errorf("delete collection = %d, %d items", r.code, len(dl.Items))
	}
	if left := cluster.List[*corev1.Pod](ts.store, "default", nil); len(left) != 2 { // c and the generated one
		t.Errorf("%d pods left, want 2", len(left))
	}

	// Cluster-scoped kinds: namespaces.
	r = ts.do(t, "POST", "/api/v1/namespaces", "application/json", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"team"}}`)
	if r.code != http.StatusCreated {
		t.Errorf("namespace create = %d %s", r.code, r.body)
	}
	r = ts.do(t, "POST", "/apis/apps/v1/namespaces/team/deployments", "application/json", &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d"},
	})
	if r.code != http.StatusCreated {
		t.Errorf("deployment create in the new namespace = %d %s", r.code, r.body)
	}
}

func TestScale(t *testing.T) {
	ts := newTestServer(t, Options{})
	three := int32(3)
	if _, err := ts.store.Create(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       appsv1.DeploymentSpec{Replicas: &three, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.Create(&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "rs"}}); err != nil {
		t.Fatal(err)
	}
	path := "/apis/apps/v1/namespaces/default/deployments/web/scale"
	var sc autoscalingv1.Scale
	ts.do(t, "GET", path, "", nil).into(t, &sc)
	if sc.Kind != "Scale" || sc.APIVersion != "autoscaling/v1" || sc.Spec.Replicas != 3 || sc.Status.Selector != "app=web" {
		t.Errorf("GET scale = %+v", sc)
	}
	cases := []struct {
		name, method, ct string
		body             any
		code             int
		want             int32
	}{
		{"merge patch (kubectl scale)", "PATCH", "application/merge-patch+json", `{"spec":{"replicas":5}}`, 200, 5},
		{"PUT with the current resourceVersion", "PUT", "application/json", func() any { c := sc; c.Spec.Replicas = 2; c.ResourceVersion = ""; return &c }(), 200, 2},
		{"PUT with a stale resourceVersion: 409", "PUT", "application/json", &sc, 409, 2},
		{"negative replicas: 422", "PATCH", "application/merge-patch+json", `{"spec":{"replicas":-1}}`, 422, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.method, path, tc.ct, tc.body)
			if r.code != tc.code {
				t.Errorf("= %d %s", r.code, r.body)
			}
			d, _ := cluster.Get[*appsv1.Deployment](ts.store, "default", "web")
			if *d.Spec.Replicas != tc.want {
				t.Errorf("replicas = %d, want %d", *d.Spec.Replicas, tc.want)
			}
		})
	}
	// An unset replica count reads as Kubernetes' default of 1.
	ts.do(t, "GET", "/apis/apps/v1/namespaces/default/replicasets/rs/scale", "", nil).into(t, &sc)
	if sc.Spec.Replicas != 1 {
		t.Errorf("unset replicas scale = %d", sc.Spec.Replicas)
	}
	if r := ts.do(t, "GET", "/api/v1/namespaces/default/pods/x/scale", "", nil); r.code != 404 {
		t.Errorf("pods/scale = %d", r.code)
	}
}

func TestLimitAndContinue(t *testing.T) {
	ts := newTestServer(t, Options{})
	for i := range 5 {
		if _, err := ts.store.Create(pod("default", fmt.Sprintf("p%d", i), nil)); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	path := "/api/v1/namespaces/default/pods?limit=2"
	firstRV := ""
	for pages := 0; pages < 10; pages++ {
		var l corev1.PodList
		r := ts.do(t, "GET", path, "", nil)
		r.into(t, &l)
		if r.code != 200 {
			t.Fatalf("page = %d %s", r.code, r.body)
		}
		if firstRV == "" {
			firstRV = l.ResourceVersion
		} else if l.ResourceVersion != firstRV {
			t.Errorf("later page reports rv %s, want the first page's %s", l.ResourceVersion, firstRV)
		}
		for _, p := range l.Items {
			names = append(names, p.Name)
		}
		if l.Continue == "" {
			break
		}
		if l.RemainingItemCount == nil || *l.RemainingItemCount <= 0 {
			t.Errorf("remainingItemCount = %v with a continue token", l.RemainingItemCount)
		}
		path = "/api/v1/namespaces/default/pods?limit=2&continue=" + l.Continue
	}
	if strings.Join(names, ",") != "p0,p1,p2,p3,p4" {
		t.Errorf("pages gave %v", names)
	}
	if r := ts.do(t, "GET", "/api/v1/namespaces/default/pods?limit=2&continue=garbage", "", nil); r.code != 400 {
		t.Errorf("bad continue = %d", r.code)
	}
}

func TestSelectors(t *testing.T) {
	ts := newTestServer(t, Options{})
	mk := func(name, nodeName string, phase corev1.PodPhase, labels map[string]string) {
		p := pod("default", name, labels)
		p.Spec.NodeName = nodeName
		o, err := ts.store.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		p = o.DeepCopyObject().(*corev1.Pod)
		p.Status.Phase = phase
		if _, err := ts.store.UpdateStatus(p); err != nil {
			t.Fatal(err)
		}
	}
	mk("a", "n1", corev1.PodRunning, map[string]string{"app": "web", "tier": "front"})
	mk("b", "n2", corev1.PodPending, map[string]string{"app": "web"})
	mk("c", "", corev1.PodPending, map[string]string{"app": "db"})
	if _, err := ts.store.Create(pod("kube-system", "d", map[string]string{"app": "web"})); err != nil {
		t.Fatal(err)
	}
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: "a.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "a"},
		Reason:         "Started", Type: corev1.EventTypeNormal,
	}
	if _, err := ts.store.Create(ev); err != nil {
		t.Fatal(err)
	}
	ev2 := ev.DeepCopy()
	ev2.Name, ev2.InvolvedObject.Name, ev2.Type, ev2.Reason = "b.1", "b", corev1.EventTypeWarning, "Unhealthy"
	if _, err := ts.store.Create(ev2); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, path string
		want       string // names, sorted by namespace/name
	}{
		{"label equality", "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb", "a,b"},
		{"label set-based", "/api/v1/pods?labelSelector=app+in+(web),!tier", "b,d"},
		{"label exists", "/api/v1/pods?labelSelector=tier", "a"},
		{"pods by spec.nodeName (the kubelet's watch)", "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1", "a"},
		{"unscheduled pods: spec.nodeName=", "/api/v1/pods?fieldSelector=spec.nodeName%3D", "c,d"},
		{"status.phase!=", "/api/v1/namespaces/default/pods?fieldSelector=status.phase!%3DPending", "a"},
		{"metadata.name on any kind", "/api/v1/pods?fieldSelector=metadata.name%3Db", "b"},
		{"metadata.namespace", "/api/v1/pods?fieldSelector=metadata.namespace%3Dkube-system", "d"},
		{"both selectors", "/api/v1/pods?labelSelector=app%3Dweb&fieldSelector=spec.nodeName%3Dn2", "b"},
		{"events by involvedObject.name (kubectl describe)", "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Da,involvedObject.kind%3DPod", "a.1"},
		{"events by type", "/api/v1/events?fieldSelector=type%3DWarning", "b.1"},
		{"events by reason", "/api/v1/events?fieldSelector=reason%3DStarted", "a.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "GET", tc.path, "", nil)
			if r.code != 200 {
				t.Fatalf("%d %s", r.code, r.body)
			}
			var l struct {
				Items []struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				} `json:"items"`
			}
			r.into(t, &l)
			var names []string
			for _, it := range l.Items {
				names = append(names, it.Metadata.Name)
			}
			if strings.Join(names, ",") != tc.want {
				t.Errorf("got %v, want %s", names, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ts := newTestServer(t, Options{})
	// An admission step like the store's own validation: Invalid with causes.
	ts.store.Use(func(op cluster.Operation, obj, old cluster.Object) error {
		if obj != nil && obj.GetLabels()["reject"] == "yes" {
			return apierrors.NewInvalid(cluster.KindPod.GVK.GroupKind(), obj.GetName(), field.ErrorList{
				field.Invalid(field.NewPath("metadata", "labels").Key("reject"), "yes", "rejected by the test's admission step"),
			})
		}
		return nil
	})
	if _, err := ts.store.Create(pod("default", "exists", nil)); err != nil {
		t.Fatal(err)
	}
	rejected := pod("default", "bad", map[string]string{"reject": "yes"})

	cases := []struct {
		name, method, path, ct string
		body                   any
		code                   int
		reason                 metav1.StatusReason
		message                string // substring
	}{
		{"unknown path: 404 NotFound", "GET", "/nope", "", nil, 404, metav1.StatusReasonNotFound, "could not find the requested resource"},
		{"unknown resource", "GET", "/api/v1/widgets", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"unknown group", "GET", "/apis/batch/v1/jobs", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"namespaced object without its namespace", "GET", "/api/v1/pods/x", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"cluster-scoped kind under a namespace", "GET", "/api/v1/namespaces/default/nodes", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"unknown subresource", "GET", "/api/v1/namespaces/default/pods/exists/exec", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"status of a kind without status", "GET", "/api/v1/namespaces/default/configmaps/x/status", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"missing object: NotFound names it", "GET", "/api/v1/namespaces/default/pods/ghost", "", nil, 404, metav1.StatusReasonNotFound, `pods "ghost" not found`},
		{"POST on an object: 405", "POST", "/api/v1/namespaces/default/pods/exists", "application/json", "{}", 405, metav1.StatusReasonMethodNotAllowed, ""},
		{"POST to the all-namespaces list: 405", "POST", "/api/v1/pods", "application/json", "{}", 405, metav1.StatusReasonMethodNotAllowed, ""},
		{"PUT on discovery: 405", "PUT", "/api/v1", "", nil, 405, metav1.StatusReasonMethodNotAllowed, ""},
		{"server-side apply: 415", "PATCH", "/api/v1/namespaces/default/pods/exists", "application/apply-patch+yaml", "{}", 415, metav1.StatusReasonUnsupportedMediaType, "application/merge-patch+json"},
		{"CBOR body: 415, so client-go falls back to JSON", "POST", "/api/v1/namespaces/default/pods", "application/cbor", "x", 415, metav1.StatusReasonUnsupportedMediaType, ""},
		{"protobuf body that is not protobuf: 400", "POST", "/api/v1/namespaces/default/pods", "application/vnd.kubernetes.protobuf", "x", 400, metav1.StatusReasonBadRequest, "protobuf"},
		{"malformed JSON: 400", "POST", "/api/v1/namespaces/default/pods", "application/json", "{not json", 400, metav1.StatusReasonBadRequest, ""},
		{"empty body: 400", "POST", "/api/v1/namespaces/default/pods", "application/json", "", 400, metav1.StatusReasonBadRequest, "empty"},
		{"unknown field, strict by default: 400", "POST", "/api/v1/namespaces/default/pods", "application/json",
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"},"spec":{"containerz":[]}}`, 400, metav1.StatusReasonBadRequest, `unknown field "spec.containerz"`},
		{"duplicate field: 400", "POST", "/api/v1/namespaces/default/pods", "application/json",
			`{"metadata":{"name":"x","name":"y"}}`, 400, metav1.StatusReasonBadRequest, `duplicate field "metadata.name"`},
		{"kind of another path: 400", "POST", "/api/v1/namespaces/default/pods", "application/json",
			`{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest, "does not match the expected kind (Pod)"},
		{"apiVersion of another group: 400", "POST", "/api/v1/namespaces/default/pods", "application/json",
			`{"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest, "does not match the expected API version (v1)"},
		{"body namespace differs from the path's: 400", "POST", "/api/v1/namespaces/default/pods", "application/json",
			pod("kube-system", "x", nil), 400, metav1.StatusReasonBadRequest, "namespace of the provided object does not match"},
		{"namespace that does not exist: 404 as NamespaceLifecycle", "POST", "/api/v1/namespaces/nope/pods", "application/json",
			pod("", "x", nil), 404, metav1.StatusReasonNotFound, `namespaces "nope" not found`},
		{"already exists: 409", "POST", "/api/v1/namespaces/default/pods", "application/json",
			pod("default", "exists", nil), 409, metav1.StatusReasonAlreadyExists, `pods "exists" already exists`},
		{"admission Invalid passes through: 422 with causes", "POST", "/api/v1/namespaces/default/pods", "application/json",
			rejected, 422, metav1.StatusReasonInvalid, "rejected by the test's admission step"},
		{"update name differs from the URL's: 400", "PUT", "/api/v1/namespaces/default/pods/exists", "application/json",
			pod("default", "other", nil), 400, metav1.StatusReasonBadRequest, "does not match the name on the URL"},
		{"update of a missing object: 404", "PUT", "/api/v1/namespaces/default/pods/ghost", "application/json",
			pod("default", "ghost", nil), 404, metav1.StatusReasonNotFound, ""},
		{"patch that is not JSON: 400", "PATCH", "/api/v1/namespaces/default/pods/exists", "application/merge-patch+json", "nope", 400, metav1.StatusReasonBadRequest, ""},
		{"JSON patch on a missing path: 422", "PATCH", "/api/v1/namespaces/default/pods/exists", "application/json-patch+json",
			`[{"op":"replace","path":"/spec/nothing/here","value":1}]`, 422, "", ""},
		{"patch that changes the name: 400", "PATCH", "/api/v1/namespaces/default/pods/exists", "application/merge-patch+json",
			`{"metadata":{"name":"renamed"}}`, 400, metav1.StatusReasonBadRequest, "name"},
		{"patch of a missing object: 404", "PATCH", "/api/v1/namespaces/default/pods/ghost", "application/merge-patch+json", "{}", 404, metav1.StatusReasonNotFound, ""},
		{"unsupported field selector: 400 as the API server", "GET", "/api/v1/pods?fieldSelector=spec.foo%3Dx", "", nil, 400, metav1.StatusReasonBadRequest, "field label not supported: spec.foo"},
		{"field selector on a kind with only metadata fields", "GET", "/api/v1/configmaps?fieldSelector=data.x%3Dy", "", nil, 400, metav1.StatusReasonBadRequest, `"data.x" is not a known field selector`},
		{"bad label selector: 400", "GET", "/api/v1/pods?labelSelector=a%3D%3D%3Db", "", nil, 400, metav1.StatusReasonBadRequest, ""},
		{"sendInitialEvents on a list: 422", "GET", "/api/v1/pods?sendInitialEvents=true", "", nil, 422, metav1.StatusReasonInvalid, "sendInitialEvents is forbidden for list"},
		{"sendInitialEvents without bookmarks: 422", "GET", "/api/v1/pods?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan", "", nil, 422, metav1.StatusReasonInvalid, "allowWatchBookmarks must be set"},
		{"list at a version not reached: 504 Too large resource version", "GET", "/api/v1/pods?resourceVersion=999999", "", nil, 504, metav1.StatusReasonTimeout, "Too large resource version"},
		{"bad resourceVersion: 400", "GET", "/api/v1/pods?resourceVersion=abc", "", nil, 400, metav1.StatusReasonBadRequest, ""},
		{"dryRun is refused, not faked", "POST", "/api/v1/namespaces/default/pods?dryRun=All", "application/json", pod("default", "x", nil), 400, metav1.StatusReasonBadRequest, "dryRun"},
		{"bad propagationPolicy: 422", "DELETE", "/api/v1/namespaces/default/pods/exists?propagationPolicy=Sideways", "", nil, 422, metav1.StatusReasonInvalid, "propagationPolicy"},
		{"delete of a missing object: 404", "DELETE", "/api/v1/namespaces/default/pods/ghost", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"delete with a stale resourceVersion precondition: 409", "DELETE", "/api/v1/namespaces/default/pods/exists", "application/json",
			`{"preconditions":{"resourceVersion":"1"}}`, 409, metav1.StatusReasonConflict, "precondition"},
		{"log of a missing pod: 404", "GET", "/api/v1/namespaces/default/pods/ghost/log", "", nil, 404, metav1.StatusReasonNotFound, ""},
		{"log without a LogStreamer: 503", "GET", "/api/v1/namespaces/default/pods/exists/log", "", nil, 503, metav1.StatusReasonServiceUnavailable, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, tc.method, tc.path, tc.ct, tc.body)
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			st := r.status(t)
			if r.code != tc.code || int(st.Code) != tc.code || st.Kind != "Status" || st.APIVersion != "v1" || st.Status != metav1.StatusFailure {
				t.Errorf("got HTTP %d, Status %+v; want %d", r.code, st, tc.code)
			}
			if tc.reason != "" && st.Reason != tc.reason {
				t.Errorf("reason = %q, want %q (%s)", st.Reason, tc.reason, st.Message)
			}
			if !strings.Contains(st.Message, tc.message) {
				t.Errorf("message = %q, want it to contain %q", st.Message, tc.message)
			}
			if tc.code == 422 && tc.reason == metav1.StatusReasonInvalid && (st.Details == nil || len(st.Details.Causes) == 0) {
				t.Errorf("422 without causes: %+v", st)
			}
		})
	}
	if _, err := ts.store.Get(cluster.KindPod, "default", "exists"); err != nil {
		t.Errorf("an error request changed the store: %v", err)
	}
}

func TestFieldValidationLevels(t *testing.T) {
	ts := newTestServer(t, Options{})
	body := `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"%s"},"dataz":{}}`
	cases := []struct {
		param   string
		code    int
		warning bool
	}{
		{"", 400, false}, // Strict is this server's default
		{"?fieldValidation=Strict", 400, false},
		{"?fieldValidation=Warn", 201, true},
		{"?fieldValidation=Ignore", 201, false},
		{"?fieldValidation=Loose", 400, false},
	}
	for i, tc := range cases {
		t.Run("fieldValidation="+tc.param, func(t *testing.T) {
			r := ts.do(t, "POST", "/api/v1/namespaces/default/configmaps"+tc.param, "application/json", fmt.Sprintf(body, fmt.Sprint("cm", i)))
			if r.code != tc.code {
				t.Errorf("code = %d %s", r.code, r.body)
			}
			if w := r.header.Get("Warning"); (w != "") != tc.warning || (tc.warning && !strings.Contains(w, `dataz`)) {
				t.Errorf("Warning = %q", w)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	fl := &fakeLogs{
		lines: map[string][]string{
			"default/web/main": {"one", "two", "three"},
			"default/web/side": {"side"},
		},
		more: make(chan string),
	}
	ts := newTestServer(t, Options{Logs: fl})
	if _, err := ts.store.Create(pod("default", "web", nil)); err != nil {
		t.Fatal(err)
	}
	base := "/api/v1/namespaces/default/pods/web/log"
	cases := []struct {
		name, query string
		code        int
		want        string
	}{
		{"whole log", "", 200, "one\ntwo\nthree\n"},
		{"container", "?container=side", 200, "side\n"},
		{"tailLines", "?tailLines=1", 200, "three\n"},
		{"timestamps", "?tailLines=1&timestamps=true", 200, "2024-01-01T00:00:00Z three\n"},
		{"limitBytes cuts the stream", "?limitBytes=6", 200, "one\ntw"},
		{"streamer error keeps its Status", "?container=nope", 400, "container nope is not valid"},
		{"negative tailLines: 422 (ValidatePodLogOptions)", "?tailLines=-1", 422, "must be greater than or equal to 0"},
		{"sinceSeconds and sinceTime together: 422", "?sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z", 422, "at most one of"},
		{"sinceSeconds 0: 422", "?sinceSeconds=0", 422, "must be greater than 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.do(t, "GET", base+tc.query, "", nil)
			if r.code != tc.code || !strings.Contains(string(r.body), tc.want) {
				t.Errorf("= %d %q, want %d %q", r.code, r.body, tc.code, tc.want)
			}
			if tc.code == 200 && (string(r.body) != tc.want || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain")) {
				t.Errorf("body %q (%s), want exactly %q as text/plain", r.body, r.header.Get("Content-Type"), tc.want)
			}
		})
	}

	t.Run("follow streams each line as it is written", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://localhost"+base+"?follow=true&tailLines=1", nil)
		resp, err := ts.unix.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := make([]byte, 64)
		read := func(want string) {
			t.Helper()
			got := ""
			for !strings.HasSuffix(got, "\n") {
				n, err := resp.Body.Read(buf)
				got += string(buf[:n])
				if err != nil {
					t.Fatalf("read after %q: %v", got, err)
				}
			}
			if got != want {
				t.Errorf("read %q, want %q", got, want)
			}
		}
		read("three\n")
		fl.more <- "four" // only sent once the first line arrived: the stream is live
		read("four\n")
		fl.more <- "five"
		read("five\n")
	})

	t.Run("a panic in the streamer is a 500 Status and the server lives on", func(t *testing.T) {
		r := ts.do(t, "GET", base+"?container=panic", "", nil)
		if st := r.status(t); r.code != 500 || st.Reason != metav1.StatusReasonInternalError {
			t.Errorf("= %d %+v", r.code, st)
		}
		if r := ts.do(t, "GET", base+"?container=side", "", nil); r.code != 200 {
			t.Errorf("after the panic: %d", r.code)
		}
	})
}

func TestTCPAndPretty(t *testing.T) {
	ts := newTestServer(t, Options{})
	req, _ := http.NewRequest("GET", ts.tcpURL+"/api/v1/namespaces", nil)
	req.Header.Set("User-Agent", "curl/8.0")
	// A client asking for a Table or protobuf only still gets JSON.
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var l corev1.NamespaceList
	if err := json.Unmarshal(b, &l); err != nil || resp.StatusCode != 200 || len(l.Items) != 2 {
		t.Fatalf("over TCP: %d %v %s", resp.StatusCode, err, b)
	}
	if !strings.Contains(string(b), "\n  \"kind\": \"NamespaceList\"") {
		t.Errorf("curl gets indented JSON, as from the API server; got %.80s", b)
	}
}

func TestProfilingEndpoint(t *testing.T) {
	on := httptest.NewServer(New(cluster.NewStore(), Options{Profiling: true}))
	defer on.Close()
	off := httptest.NewServer(New(cluster.NewStore(), Options{}))
	defer off.Close()
	for _, c := range []struct {
		url  string
		want int
	}{
		{on.URL + "/debug/pprof/", 200},
		{on.URL + "/debug/pprof/goroutine?debug=1", 200},
		{off.URL + "/debug/pprof/", 404},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d, want %d", c.url, resp.StatusCode, c.want)
		}
	}
}
