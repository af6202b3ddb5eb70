package manifests

import (
	"context"
	"fmt"
	sbtest "github.com/switchboard-dev/switchboard/internal/testutil"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/admission"
)

// syncBuffer is testutil.SyncBuffer: tests read it while a writer writes.
type syncBuffer = sbtest.SyncBuffer

type fixture struct {
	t     *testing.T
	dir   string
	store *cluster.Store
	src   *Source
	logs  *syncBuffer
	reg   *prometheus.Registry
}

// newFixture makes a temp dir and a store wired with the API server's
// defaulting and validation, as the node wires it.
func newFixture(t *testing.T) *fixture {
	store := cluster.NewStore()
	store.Use(admission.Default, admission.Validate)
	return &fixture{t: t, dir: t.TempDir(), store: store, logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
}

func (f *fixture) path(rel string) string { return filepath.Join(f.dir, rel) }

func (f *fixture) write(rel, content string) {
	f.t.Helper()
	p := f.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// writeAtomic saves as editors do: a temporary file renamed over the
// original.
func (f *fixture) writeAtomic(rel, content string) {
	f.t.Helper()
	tmp := f.path(rel + ".swp~")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path(rel)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) source(paths ...string) *Source {
	if len(paths) == 0 {
		paths = []string{f.dir}
	}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.src = NewSource(f.store, paths, Options{Logger: log, Registerer: f.reg, Debounce: 20 * time.Millisecond,
		Recorder: cluster.NewRecorder(f.store, "manifests", "test")})
	return f.src
}

// run loads and starts watching; the watcher stops when the test ends.
func (f *fixture) run() []error {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	errs := f.src.Load(ctx)
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("Run: %v", err)
		}
	})
	go func() { done <- f.src.Run(ctx) }()
	return errs
}

// eventually polls cond; the bound only keeps a broken test from hanging.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting: %s\nerrors: %v\nlogs:\n%s", what, f.src.Errors(), f.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *fixture) get(k *cluster.Kind, ns, name string) cluster.Object {
	o, err := f.store.Get(k, ns, name)
	if err != nil {
		return nil
	}
	return o
}

func (f *fixture) exists(k *cluster.Kind, ns, name string) bool { return f.get(k, ns, name) != nil }

func (f *fixture) servicePort(name string) int32 {
	o := f.get(cluster.KindService, "default", name)
	if o == nil {
		return 0
	}
	return o.(*corev1.Service).Spec.Ports[0].Port
}

func errorStrings(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}

func service(name string, port int) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %s
spec:
  selector: {app: %s}
  ports:
  - port: %d
`, name, name, port)
}

func podManifest(name, ns string, args ...string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
  labels: {app: %s}
spec:
  containers:
  - name: app
    command: ["sleep"]
    args: ["%s"]
`, name, ns, name, strings.Join(args, `", "`))
}

func TestSourceInitialLoad(t *testing.T) {
	f := newFixture(t)
	f.write("app/web.yaml", service("web", 80)+"---\n"+podManifest("web-0", "default", "100"))
	f.write("app/config.json", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"k":"v"}}`)
	f.write("team/api.yaml", podManifest("api", "team", "100"))
	f.write("crd.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
	f.source()
	if errs := f.run(); len(errs) != 0 {
		t.Fatalf("problems: %s", errorStrings(errs))
	}
	for _, o := range []struct {
		k        *cluster.Kind
		ns, name string
	}{
		{cluster.KindService, "default", "web"},
		{cluster.KindPod, "default", "web-0"},
		{cluster.KindConfigMap, "default", "cfg"},
		{cluster.KindPod, "team", "api"},
		{cluster.KindNamespace, "", "default"}, // namespaces in use are created
		{cluster.KindNamespace, "", "team"},
	} {
		if !f.exists(o.k, o.ns, o.name) {
			t.Errorf("%s %s/%s not applied", o.k.Name(), o.ns, o.name)
		}
	}
	// The store's admission defaulted what the source applied.
	svc := f.get(cluster.KindService, "default", "web").(*corev1.Service)
	if svc.Spec.Ports[0].Protocol != corev1.ProtocolTCP || svc.Spec.Ports[0].TargetPort.IntValue() != 80 {
		t.Errorf("service not defaulted: %+v", svc.Spec.Ports)
	}
	if !strings.Contains(f.logs.String(), "skipping documents of a kind this node does not serve") {
		t.Errorf("unknown kinds must be logged: %s", f.logs.String())
	}
	if got := testutil.ToFloat64(f.src.docsGauge.WithLabelValues("applied")); got != 4 {
		t.Errorf("switchboard_manifest_documents{result=applied} = %v, want 4", got)
	}
	if got := testutil.ToFloat64(f.src.docsGauge.WithLabelValues("skipped")); got != 1 {
		t.Errorf("switchboard_manifest_documents{result=skipped} = %v, want 1", got)
	}
	for _, name := range []string{"switchboard_manifest_documents", "switchboard_manifest_reload_total"} {
		if n, err := testutil.GatherAndCount(f.reg, name); err != nil || n == 0 {
			t.Errorf("metric %s not registered: %v", name, err)
		}
	}
}

// What the API server sets is ignored in a manifest (e.g. one saved with
// kubectl get -o yaml): status, uid, resourceVersion.
func TestSourceIgnoresServerFields(t *testing.T) {
	f := newFixture(t)
	f.write("saved.yaml", `apiVersion: v1
kind: Pod
metadata:
  name: saved
  uid: 0b7c3f5e-0000-0000-0000-000000000000
  resourceVersion: "12345"
  creationTimestamp: "2024-01-01T00:00:00Z"
spec:
  containers:
  - name: app
    command: [sleep, "100"]
status:
  phase: Running
  podIP: 10.0.0.9
`)
	f.source()
	if errs := f.run(); len(errs) != 0 {
		t.Fatal(errorStrings(errs))
	}
	p := f.get(cluster.KindPod, "default", "saved").(*corev1.Pod)
	if p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" || p.UID == "0b7c3f5e-0000-0000-0000-000000000000" {
		t.Errorf("server-set fields must come from the store: uid %s status %+v", p.UID, p.Status)
	}
}

// "One bad document is rejected alone; everything else is applied."
func TestSourceBadDocumentRejectedAlone(t *testing.T) {
	f := newFixture(t)
	f.write("x.yaml", service("first", 80)+"---\n"+service("web", 70000)+"---\n"+service("last", 81))
	f.source(f.path("x.yaml"))
	errs := f.run()
	if !f.exists(cluster.KindService, "default", "first") || !f.exists(cluster.KindService, "default", "last") {
		t.Fatalf("the good documents must be applied")
	}
	if f.exists(cluster.KindService, "default", "web") {
		t.Fatalf("the bad document must be rejected")
	}
	want := f.path("x.yaml") + ": document 2 (line 10) Service default/web: spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"
	// targetPort defaults to port, so it is reported too.
	if len(errs) != 2 || errs[0].Error() != want || errs[1].(*Error).Field != "spec.ports[0].targetPort" {
		t.Fatalf("problems:\n%s\nwant first:\n%s", errorStrings(errs), want)
	}
	e := errs[0].(*Error)
	if e.FieldLine != 17 {
		t.Errorf("the problem's field is on line 17, got %d", e.FieldLine)
	}
	logs := f.logs.String()
	for _, attr := range []string{"level=ERROR", "file=" + f.path("x.yaml"), "document=2", "field=spec.ports[0].port", "reason=\"Invalid value: 70000"} {
		if !strings.Contains(logs, attr) {
			t.Errorf("the log line lacks %s:\n%s", attr, logs)
		}
	}
	if got := testutil.ToFloat64(f.src.docsGauge.WithLabelValues("rejected")); got != 1 {
		t.Errorf("switchboard_manifest_documents{result=rejected} = %v", got)
	}
}

// "When a changed document is bad, the last good version of that object
// stays in force."
func TestSourceEditToBadKeepsLastGood(t *testing.T) {
	f := newFixture(t)
	f.write("web.yaml", service("web", 80)+"---\n"+service("other", 81))
	f.source()
	f.run()
	if f.servicePort("web") != 80 {
		t.Fatalf("initial load")
	}

	// Invalid for the API: the old version stays, the problem stands.
	f.writeAtomic("web.yaml", service("web", 70000)+"---\n"+service("other", 82))
	f.eventually("the good document in the same file is applied", func() bool { return f.servicePort("other") == 82 })
	if got := f.servicePort("web"); got != 80 {
		t.Fatalf("the last good version must stay, port is %d", got)
	}
	if s := errorStrings(f.src.Errors()); !strings.Contains(s, "spec.ports[0].port: Invalid value: 70000") {
		t.Fatalf("problem not reported: %s", s)
	}
	evs := cluster.EventsFor(f.store, f.get(cluster.KindService, "default", "web"))
	if len(evs) == 0 || evs[len(evs)-1].Reason != "ManifestInvalid" {
		t.Errorf("a rejected change is recorded as an event on the object: %+v", evs)
	}

	// Not even YAML: still nothing is deleted.
	f.write("web.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n spec: [\n---\n"+service("other", 82))
	f.eventually("the YAML error is reported", func() bool {
		return strings.Contains(errorStrings(f.src.Errors()), "invalid YAML")
	})
	if f.servicePort("web") != 80 || f.servicePort("other") != 82 {
		t.Fatalf("objects of a bad document must be kept")
	}

	// Fixed: applied, and the problem is gone.
	f.write("web.yaml", service("web", 8080)+"---\n"+service("other", 82))
	f.eventually("the fixed version is applied", func() bool { return f.servicePort("web") == 8080 })
	f.eventually("no problems stand", func() bool { return len(f.src.Errors()) == 0 })
}

func TestSourceRemovedDocumentAndFileDeleteObjects(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", service("one", 80)+"---\n"+service("two", 81))
	f.write("b.yaml", service("three", 82))
	f.source()
	f.run()
	for _, n := range []string{"one", "two", "three"} {
		if !f.exists(cluster.KindService, "default", n) {
			t.Fatalf("%s not applied", n)
		}
	}
	f.write("a.yaml", service("one", 80))
	f.eventually("a document removed from its file deletes its object", func() bool {
		return !f.exists(cluster.KindService, "default", "two")
	})
	if !f.exists(cluster.KindService, "default", "one") {
		t.Fatalf("the remaining document's object must stay")
	}
	if err := os.Remove(f.path("b.yaml")); err != nil {
		t.Fatal(err)
	}
	f.eventually("a deleted file deletes its objects", func() bool {
		return !f.exists(cluster.KindService, "default", "three")
	})
	if !f.exists(cluster.KindService, "default", "one") {
		t.Fatalf("objects of other files must stay")
	}
}

func TestSourceNewSubdirectoryPickedUp(t *testing.T) {
	f := newFixture(t)
	f.write("base.yaml", service("base", 80))
	f.source()
	f.run()
	// A directory tree created after the watch started, then a file in it.
	if err := os.MkdirAll(f.path("new/deeper"), 0o755); err != nil {
		t.Fatal(err)
	}
	f.write("new/deeper/late.yml", service("late", 81))
	f.eventually("a file in a new subdirectory is applied", func() bool { return f.exists(cluster.KindService, "default", "late") })
	// And changes inside it are watched too.
	f.write("new/deeper/late.yml", service("late", 91))
	f.eventually("a change in the new subdirectory is applied", func() bool { return f.servicePort("late") == 91 })
	if err := os.RemoveAll(f.path("new")); err != nil {
		t.Fatal(err)
	}
	f.eventually("removing the directory deletes its objects", func() bool { return !f.exists(cluster.KindService, "default", "late") })
}

// "Duplicate objects: the first by (path, index) order wins, the second
// gets an error naming where the first is."
func TestSourceDuplicateObject(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", service("web", 80))
	f.write("b.yaml", service("other", 90)+"---\n"+service("web", 81))
	f.source()
	errs := f.run()
	if got := f.servicePort("web"); got != 80 {
		t.Fatalf("the first definition must win, port %d", got)
	}
	want := f.path("b.yaml") + ": document 2 (line 10) Service default/web: duplicate: Service default/web is already defined in " +
		f.path("a.yaml") + " document 1 (line 1); this definition is ignored"
	if errorStrings(errs) != want {
		t.Fatalf("problems:\n%s\nwant:\n%s", errorStrings(errs), want)
	}
	// Removing the first definition lets the second take over.
	if err := os.Remove(f.path("a.yaml")); err != nil {
		t.Fatal(err)
	}
	f.eventually("the remaining definition is applied", func() bool { return f.servicePort("web") == 81 })
	f.eventually("the duplicate problem is gone", func() bool { return len(f.src.Errors()) == 0 })
}

// Pod specs are immutable: a changed pod is deleted and created again.
func TestSourcePodSpecChangeRecreatesPod(t *testing.T) {
	f := newFixture(t)
	f.write("pod.yaml", podManifest("worker", "default", "100"))
	f.source()
	f.run()
	first := f.get(cluster.KindPod, "default", "worker")
	if first == nil {
		t.Fatalf("pod not created: %v", f.src.Errors())
	}
	// A metadata-only change updates the pod in place.
	f.write("pod.yaml", strings.Replace(podManifest("worker", "default", "100"), "labels: {app: worker}", "labels: {app: worker, tier: back}", 1))
	f.eventually("labels updated in place", func() bool {
		p := f.get(cluster.KindPod, "default", "worker")
		return p != nil && p.GetLabels()["tier"] == "back"
	})
	if f.get(cluster.KindPod, "default", "worker").GetUID() != first.GetUID() {
		t.Fatalf("a label change must not recreate the pod\n%s", f.logs.String())
	}
	f.write("pod.yaml", strings.Replace(podManifest("worker", "default", "200"), "labels: {app: worker}", "labels: {app: worker, tier: back}", 1))
	f.eventually("the pod is recreated with the new spec", func() bool {
		p := f.get(cluster.KindPod, "default", "worker")
		return p != nil && p.GetUID() != first.GetUID() && p.(*corev1.Pod).Spec.Containers[0].Args[0] == "200"
	})
	if !strings.Contains(f.logs.String(), "pod spec changed; recreating") {
		t.Errorf("recreation must be logged")
	}
	if len(f.src.Errors()) != 0 {
		t.Errorf("problems: %s", errorStrings(f.src.Errors()))
	}
}

// A pod a node runs is deleted gracefully: the source waits for it to be
// gone before creating the new version.
func TestSourcePodRecreateWaitsForGracefulDeletion(t *testing.T) {
	f := newFixture(t)
	f.write("pod.yaml", podManifest("bound", "default", "100"))
	f.source()
	f.run()
	old, err := cluster.Get[*corev1.Pod](f.store, "default", "bound")
	if err != nil {
		t.Fatal(err)
	}
	// Play the node: bind the pod, so that deleting it is graceful.
	if _, err := f.store.UpdateFunc(cluster.KindPod, "default", "bound", func(o cluster.Object) error {
		o.(*corev1.Pod).Spec.NodeName = "node-1"
		return nil
	}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	f.write("pod.yaml", podManifest("bound", "default", "200"))
	f.eventually("the old pod is being deleted", func() bool {
		p := f.get(cluster.KindPod, "default", "bound")
		return p != nil && p.GetDeletionTimestamp() != nil
	})
	if p := f.get(cluster.KindPod, "default", "bound"); p.GetUID() != old.UID {
		t.Fatalf("the new pod must wait for the old one to be gone")
	}
	// The node finishes: final removal with grace period 0.
	zero := int64(0)
	if err := f.store.Delete(cluster.KindPod, "default", "bound", cluster.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	f.eventually("the new version is created once the old pod is gone", func() bool {
		p := f.get(cluster.KindPod, "default", "bound")
		return p != nil && p.GetUID() != old.UID && p.(*corev1.Pod).Spec.Containers[0].Args[0] == "200"
	})
}

// "Only delete objects this source created from files."
func TestSourceNeverDeletesObjectsOfOthers(t *testing.T) {
	f := newFixture(t)
	// Created by someone else (a controller, the local API) before the
	// source starts, and also defined in a file.
	if _, err := f.store.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "default"}, Data: map[string]string{"by": "api"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	f.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared}\ndata: {by: file}\n---\n"+service("mine", 80))
	f.source()
	f.run()
	cm := f.get(cluster.KindConfigMap, "default", "shared").(*corev1.ConfigMap)
	if cm.Data["by"] != "file" {
		t.Fatalf("the file's version must be applied: %v", cm.Data)
	}
	f.write("cm.yaml", "# emptied\n")
	f.eventually("the source's own object is deleted", func() bool { return !f.exists(cluster.KindService, "default", "mine") })
	if !f.exists(cluster.KindConfigMap, "default", "shared") || !f.exists(cluster.KindConfigMap, "default", "theirs") {
		t.Fatalf("objects created by others must never be deleted")
	}
}

// An object deleted by someone else while its document is unchanged comes
// back at the next reload, and the source does not delete an object that
// replaced its own.
func TestSourceRecreatesObjectsDeletedByOthers(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", service("web", 80))
	f.write("b.yaml", service("other", 81))
	f.source()
	f.run()
	if err := f.store.Delete(cluster.KindService, "default", "web", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.write("b.yaml", service("other", 82))
	f.eventually("web is applied again", func() bool { return f.servicePort("web") == 80 })

	// Replace "other" behind the source's back, then drop it from the file.
	if err := f.store.Delete(cluster.KindService, "default", "other", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 99}}}}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.path("b.yaml")); err != nil {
		t.Fatal(err)
	}
	f.eventually("the reload happened", func() bool { return testutil.ToFloat64(f.src.docsGauge.WithLabelValues("applied")) == 1 })
	if f.servicePort("other") != 99 {
		t.Fatalf("an object that replaced the source's own must not be deleted")
	}
}

func TestSourceSingleFileRenameSave(t *testing.T) {
	f := newFixture(t)
	f.write("only.yaml", service("web", 80))
	f.write("ignored.yaml", service("ignored", 80))
	f.source(f.path("only.yaml"))
	f.run()
	if f.exists(cluster.KindService, "default", "ignored") {
		t.Fatalf("only the named file is read")
	}
	for port := 81; port <= 83; port++ {
		f.writeAtomic("only.yaml", service("web", port))
		f.eventually(fmt.Sprintf("rename-save %d applied", port), func() bool { return f.servicePort("web") == int32(port) })
	}
	if f.exists(cluster.KindService, "default", "ignored") {
		t.Fatalf("a file beside the named one must not be read")
	}
}

func TestSourceMissingPathReported(t *testing.T) {
	f := newFixture(t)
	f.source(f.path("later.yaml"))
	errs := f.run()
	if s := errorStrings(errs); !strings.Contains(s, "later.yaml: cannot read: no such file or directory") {
		t.Fatalf("problems: %s", s)
	}
	f.write("later.yaml", service("late", 80))
	f.eventually("a file created later is picked up", func() bool { return f.exists(cluster.KindService, "default", "late") })
	f.eventually("the problem is gone", func() bool { return len(f.src.Errors()) == 0 })
}

func TestSourceAppliesInKindOrder(t *testing.T) {
	f := newFixture(t)
	// Pods first in the file, their namespace last.
	f.write("all.yaml", podManifest("p", "ordered", "1")+"---\n"+service("s", 80)+
		"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ordered\n  labels: {from: file}\n")
	var order []string
	var mu sync.Mutex
	f.store.Use(func(op cluster.Operation, obj, old cluster.Object) error {
		if op == cluster.OpCreate {
			mu.Lock()
			order = append(order, cluster.KindOf(obj).Name())
			mu.Unlock()
		}
		return nil
	})
	f.source()
	if errs := f.run(); len(errs) != 0 {
		t.Fatal(errorStrings(errs))
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, ","); got != "Namespace,Namespace,Service,Pod" {
		t.Errorf("apply order %s, want namespaces, then services, then pods", got)
	}
	ns := f.get(cluster.KindNamespace, "", "ordered")
	if ns == nil || ns.GetLabels()["from"] != "file" {
		t.Errorf("the namespace defined in the file is the one applied: %v", ns)
	}
	if _, err := f.store.Get(cluster.KindNamespace, "", "default"); apierrors.IsNotFound(err) {
		t.Errorf("the default namespace, used by the service, is created")
	}
}
