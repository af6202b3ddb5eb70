package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/switchboard-dev/switchboard/cluster"
)

// TestClientGoTyped drives the API with client-go's typed clientset over
// the unix socket, as the CLI and later components do.
func TestClientGoTyped(t *testing.T) {
	ts := newTestServer(t, Options{})
	cs, err := kubernetes.NewForConfig(ts.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pods := cs.CoreV1().Pods("default")

	created, err := pods.Create(ctx, pod("", "web", map[string]string{"app": "web"}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pods.Create(ctx, pod("", "web", nil), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	if _, err := cs.CoreV1().Pods("nope").Create(ctx, pod("", "x", nil), metav1.CreateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("create in a missing namespace: %v, want NotFound", err)
	}
	list, err := cs.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil || len(list.Items) != 1 || list.Items[0].UID != created.UID {
		t.Fatalf("list: %v %+v", err, list)
	}
	created.Status.Phase = corev1.PodRunning
	if st, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil || st.Status.Phase != corev1.PodRunning {
		t.Errorf("UpdateStatus: %v", err)
	}
	p, err := pods.Patch(ctx, "web", types.StrategicMergePatchType, []byte(`{"metadata":{"labels":{"v":"2"}}}`), metav1.PatchOptions{})
	if err != nil || p.Labels["v"] != "2" {
		t.Errorf("Patch: %v %v", err, p)
	}
	if _, err := pods.Get(ctx, "ghost", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Get missing: %v", err)
	}

	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: p.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := pods.Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-w.ResultChan():
		if ev.Type != "DELETED" || ev.Object.(*corev1.Pod).Name != "web" {
			t.Errorf("watch event %s %v", ev.Type, ev.Object)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}

	// Discovery as kubectl uses it.
	groups, resources, err := cs.Discovery().ServerGroupsAndResources()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rl := range resources {
		for _, r := range rl.APIResources {
			if !strings.Contains(r.Name, "/") {
				n++
			}
		}
	}
	if n != len(cluster.Kinds) || len(groups) < 2 {
		t.Errorf("discovery found %d resources in %d groups, want %d", n, len(groups), len(cluster.Kinds))
	}
	if v, err := cs.Discovery().ServerVersion(); err != nil || v.Major != "1" {
		t.Errorf("ServerVersion: %v %v", v, err)
	}
}

// TestClientGoDynamic lists and watches through the dynamic client.
func TestClientGoDynamic(t *testing.T) {
	ts := newTestServer(t, Options{})
	dc, err := dynamic.NewForConfig(ts.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	d := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web"},
		"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app": "web"}},
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "web"}},
				"spec":     map[string]any{"containers": []any{map[string]any{"name": "main", "image": "x"}}},
			},
		},
	}}
	if _, err := dc.Resource(gvr).Namespace("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := dc.Resource(gvr).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil || len(l.Items) != 1 || l.GetKind() != "DeploymentList" {
		t.Fatalf("dynamic list: %v %v", err, l)
	}
	if _, ok := ts.store.Get(cluster.KindDeployment, "default", "web"); ok != nil {
		t.Errorf("deployment not in the store: %v", ok)
	}
	w, err := dc.Resource(gvr).Namespace("default").Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case ev := <-w.ResultChan():
		if ev.Type != "ADDED" {
			t.Errorf("dynamic watch: %s", ev.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no dynamic watch event")
	}
}

// TestInformer runs a client-go shared informer through the HTTP API and
// checks that its cache follows the store.
func TestInformer(t *testing.T) {
	ts := newTestServer(t, Options{})
	cs, err := kubernetes.NewForConfig(ts.restConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		if _, err := ts.store.Create(pod("default", n, nil)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var seen []string
	record := func(s string) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	for _, tc := range []struct {
		name  string
		field fields.Selector
		want  []string // the informer's keys at the end
	}{
		{"all pods", fields.Everything(), []string{"default/b", "default/c"}},
		{"pods of node1 (field selector)", fields.OneTermEqualSelector("spec.nodeName", "node1"), []string{"default/c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", metav1.NamespaceAll, tc.field)
			inf := cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
			if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc:    func(o any) { record("add " + o.(*corev1.Pod).Name) },
				UpdateFunc: func(_, o any) { record("update " + o.(*corev1.Pod).Name) },
				DeleteFunc: func(o any) { record("delete") },
			}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { inf.RunWithContext(ctx); close(done) }()
			defer func() { cancel(); <-done }()
			if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
				t.Fatal("informer did not sync")
			}
			// Changes after the sync reach the cache through the watch.
			if _, err := ts.store.Create(pod("default", "c", nil)); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatal(err)
			}
			if _, err := ts.store.UpdateFunc(cluster.KindPod, "default", "c", func(o cluster.Object) error {
				o.(*corev1.Pod).Spec.NodeName = "node1"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := ts.store.Delete(cluster.KindPod, "default", "a", cluster.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Fatal(err)
			}
			keys := func() []string {
				k := inf.GetStore().ListKeys()
				sort.Strings(k)
				return k
			}
			if err := eventually(func() bool {
				c, ok, _ := inf.GetStore().GetByKey("default/c")
				return strings.Join(keys(), ",") == strings.Join(tc.want, ",") && ok && c.(*corev1.Pod).Spec.NodeName == "node1"
			}); err != nil {
				t.Errorf("informer cache %v, want %v", keys(), tc.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 {
		t.Error("no handler calls")
	}
}

// TestKubectl runs the real kubectl against the TCP listener.
func TestKubectl(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; this test runs `kubectl get pods -A -o json` against the local API when it is")
	}
	ts := newTestServer(t, Options{Logs: &fakeLogs{lines: map[string][]string{"default/web/main": {"line 1", "line 2"}}}})
	for _, p := range []*corev1.Pod{pod("default", "web", map[string]string{"app": "web"}), pod("kube-system", "dns", nil)} {
		if _, err := ts.store.Create(p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ts.store.Create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	kubeconfig := filepath.Join(home, "config")
	if err := os.WriteFile(kubeconfig, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) []byte {
		t.Helper()
		out, err := kubectlRun(ts, kubectl, home, kubeconfig, args...)
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return out
	}

	var l struct {
		Kind  string       `json:"kind"`
		Items []corev1.Pod `json:"items"`
	}
	out := run("get", "pods", "-A", "-o", "json")
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("kubectl output is not JSON: %v\n%s", err, out)
	}
	var names []string
	for _, p := range l.Items {
		names = append(names, p.Namespace+"/"+p.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "default/web,kube-system/dns" {
		t.Errorf("kubectl get pods -A: %v", names)
	}
	// Short names and groups resolve through discovery.
	if out := strings.TrimSpace(string(run("get", "deploy", "-n", "default", "-o", "name"))); out != "deployment.apps/web" {
		t.Errorf("kubectl get deploy -o name = %q", out)
	}
	if out := strings.TrimSpace(string(run("get", "po", "-l", "app=web", "-o", "jsonpath={.items[*].metadata.name}"))); out != "web" {
		t.Errorf("kubectl get po -l app=web = %q", out)
	}

	// Writes: kubectl validates through the server (fieldValidation=Strict,
	// found in /openapi/v3), applies with strategic merge patches, scales
	// through the scale subresource and reads logs.
	manifest := filepath.Join(home, "cm.yaml")
	write := func(data string) {
		t.Helper()
		if err := os.WriteFile(manifest, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\n"+data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("data:\n  a: \"1\"\n")
	run("apply", "-f", manifest)
	write("data:\n  a: \"2\"\n")
	run("apply", "-f", manifest)
	if cm, err := cluster.Get[*corev1.ConfigMap](ts.store, "default", "cfg"); err != nil || cm.Data["a"] != "2" || cm.Annotations[corev1.LastAppliedConfigAnnotation] == "" {
		t.Errorf("after kubectl apply twice: %v %+v", err, cm)
	}
	write("datta:\n  a: \"3\"\n")
	if out, err := kubectlRun(ts, kubectl, home, kubeconfig, "apply", "-f", manifest); err == nil || !strings.Contains(string(out), `unknown field "datta"`) {
		t.Errorf("kubectl apply with a typo: %v\n%s", err, out)
	}
	run("label", "pod", "web", "tier=front")
	run("scale", "deployment", "web", "--replicas=3")
	if d, _ := cluster.Get[*appsv1.Deployment](ts.store, "default", "web"); d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("kubectl scale did not set replicas: %+v", d.Spec.Replicas)
	}
	if out := string(run("logs", "web", "--tail=1")); out != "line 2\n" {
		t.Errorf("kubectl logs --tail=1 = %q", out)
	}
	run("delete", "-f", manifest)
	run("delete", "pod", "web", "--wait=true")
	if _, err := ts.store.Get(cluster.KindConfigMap, "default", "cfg"); !apierrors.IsNotFound(err) {
		t.Errorf("kubectl delete -f left the ConfigMap: %v", err)
	}
}

func kubectlRun(ts *testServer, kubectl, home, kubeconfig string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args = append([]string{"--server", ts.tcpURL, "--cache-dir", filepath.Join(home, "cache"), "--request-timeout", "20s"}, args...)
	cmd := exec.CommandContext(ctx, kubectl, args...)
	cmd.Env = append(os.Environ(), "HOME="+home, "KUBECONFIG="+kubeconfig)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}
