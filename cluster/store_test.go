package cluster

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func svc(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}
}

func TestCreateGetUpdate(t *testing.T) {
	s := NewStore()
	o, err := s.Create(svc("web"))
	if err != nil {
		t.Fatal(err)
	}
	if o.GetUID() == "" || o.GetResourceVersion() == "" || o.GetGeneration() != 1 || o.GetCreationTimestamp().Time.IsZero() {
		t.Fatalf("create did not set metadata: %+v", o.(*corev1.Service).ObjectMeta)
	}
	if _, err := s.Create(svc("web")); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create: got %v, want AlreadyExists", err)
	}
	got, err := Get[*corev1.Service](s, "default", "web")
	if err != nil || got.Spec.Ports[0].Port != 80 {
		t.Fatalf("get: %v %v", got, err)
	}
	if got.GetObjectKind().GroupVersionKind().Kind != "Service" {
		t.Fatalf("TypeMeta not set: %v", got.GetObjectKind().GroupVersionKind())
	}

	// Status is written separately and survives spec updates.
	st := got.DeepCopy()
	st.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.9"}}
	if _, err := s.UpdateStatus(st); err != nil {
		t.Fatal(err)
	}
	up := svc("web")
	up.Spec.Ports[0].Port = 81
	o2, err := s.Update(up)
	if err != nil {
		t.Fatal(err)
	}
	if o2.GetGeneration() != 2 {
		t.Errorf("spec change: generation %d, want 2", o2.GetGeneration())
	}
	if len(o2.(*corev1.Service).Status.LoadBalancer.Ingress) != 1 {
		t.Errorf("update dropped status")
	}
	if o2.GetUID() != o.GetUID() {
		t.Errorf("update changed uid")
	}
	// Label-only change keeps generation.
	lab := o2.DeepCopyObject().(*corev1.Service)
	lab.Labels["x"] = "y"
	o3, err := s.Update(lab)
	if err != nil || o3.GetGeneration() != 2 {
		t.Fatalf("label change: gen %d err %v", o3.GetGeneration(), err)
	}
	// Stale resourceVersion conflicts.
	if _, err := s.Update(o2.DeepCopyObject().(Object)); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want Conflict", err)
	}
	// No-op update: no new resourceVersion.
	rv := s.ResourceVersion()
	if _, err := s.Update(o3.DeepCopyObject().(Object)); err != nil || s.ResourceVersion() != rv {
		t.Fatalf("no-op update bumped rv or failed: %v", err)
	}
}

func TestGenerateNameAndApply(t *testing.T) {
	s := NewStore()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "default"}}
	o, err := s.Create(p)
	if err != nil || len(o.GetName()) != len("web-")+5 {
		t.Fatalf("generateName: %q %v", o.GetName(), err)
	}
	_, created, err := s.Apply(svc("a"))
	if err != nil || !created {
		t.Fatal("apply create", err)
	}
	x := svc("a")
	x.Spec.Ports[0].Port = 90
	x.ResourceVersion = "1" // ignored by apply
	o, created, err = s.Apply(x)
	if err != nil || created || o.(*corev1.Service).Spec.Ports[0].Port != 90 {
		t.Fatal("apply update", err, created)
	}
}

func TestPodGracefulDelete(t *testing.T) {
	s := NewStore()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "n1", TerminationGracePeriodSeconds: ptr.To[int64](5)}}
	if _, err := s.Create(p); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(KindPod, "default", "p", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(KindPod, "default", "p")
	if err != nil {
		t.Fatal("bound pod must stay until its node removes it:", err)
	}
	if got.GetDeletionTimestamp() == nil || *got.GetDeletionGracePeriodSeconds() != 5 {
		t.Fatalf("deletion not marked: %v", got.GetDeletionTimestamp())
	}
	if err := s.Delete(KindPod, "default", "p", DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(KindPod, "default", "p"); !apierrors.IsNotFound(err) {
		t.Fatalf("after grace 0: %v", err)
	}
	// Unscheduled pods go at once.
	if _, err := s.Create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "default"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(KindPod, "default", "q", DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(KindPod, "default", "q"); !apierrors.IsNotFound(err) {
		t.Fatalf("unscheduled pod: %v", err)
	}
}

func TestFinalizers(t *testing.T) {
	s := NewStore()
	x := svc("f")
	x.Finalizers = []string{"example.com/hold"}
	s.Create(x)
	s.Delete(KindService, "default", "f", DeleteOptions{})
	o, err := s.Get(KindService, "default", "f")
	if err != nil || o.GetDeletionTimestamp() == nil {
		t.Fatal("finalizer must hold the object", err)
	}
	if _, err := s.UpdateFunc(KindService, "default", "f", func(o Object) error { o.SetFinalizers(nil); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(KindService, "default", "f"); !apierrors.IsNotFound(err) {
		t.Fatal("object must go with its last finalizer", err)
	}
}

func TestWatchFromResourceVersion(t *testing.T) {
	s := NewStore()
	s.Create(svc("a"))
	_, rv := s.List(KindService, "", nil)
	s.Create(svc("b"))
	s.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}})
	s.Delete(KindService, "default", "a", DeleteOptions{})

	w, err := s.Watch(KindService, WatchOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	want := []struct {
		typ  watch.EventType
		name string
	}{{watch.Added, "b"}, {watch.Deleted, "a"}}
	for _, x := range want {
		select {
		case e := <-w.ResultChan():
			if e.Type != x.typ || e.Object.(Object).GetName() != x.name {
				t.Fatalf("got %s %s, want %s %s", e.Type, e.Object.(Object).GetName(), x.typ, x.name)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("timeout")
		}
	}
	// Live events after the replay.
	s.Create(svc("d"))
	if e := <-w.ResultChan(); e.Type != watch.Added || e.Object.(Object).GetName() != "d" {
		t.Fatalf("live event: %v", e)
	}
}

func TestWatchSelectorTransitions(t *testing.T) {
	s := NewStore()
	s.Create(svc("a"))
	w, _ := s.Watch(KindService, WatchOptions{Selector: labels.SelectorFromSet(labels.Set{"tier": "x"})})
	defer w.Stop()
	s.UpdateFunc(KindService, "default", "a", func(o Object) error { o.GetLabels()["tier"] = "x"; return nil })
	s.UpdateFunc(KindService, "default", "a", func(o Object) error { delete(o.GetLabels(), "tier"); return nil })
	for _, want := range []watch.EventType{watch.Added, watch.Deleted} {
		if e := <-w.ResultChan(); e.Type != want {
			t.Fatalf("got %s want %s", e.Type, want)
		}
	}
}

type recorder struct{ ch chan string }

func (r recorder) OnAdd(o any, initial bool) {
	r.ch <- map[bool]string{true: "initial ", false: "add "}[initial] + o.(Object).GetName()
}
func (r recorder) OnUpdate(old, o any) { r.ch <- "update " + o.(Object).GetName() }
func (r recorder) OnDelete(o any)      { r.ch <- "delete " + o.(Object).GetName() }

func TestSubscribe(t *testing.T) {
	s := NewStore()
	s.Create(svc("a"))
	r := recorder{ch: make(chan string, 10)}
	sub := s.Subscribe(KindService, r, 0)
	defer sub.Stop()
	s.Create(svc("b"))
	s.UpdateFunc(KindService, "default", "b", func(o Object) error { o.GetLabels()["v"] = "2"; return nil })
	s.Delete(KindService, "default", "a", DeleteOptions{})
	for _, want := range []string{"initial a", "add b", "update b", "delete a"} {
		select {
		case got := <-r.ch:
			if got != want {
				t.Fatalf("got %q want %q", got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("timeout waiting for", want)
		}
	}
	if !sub.HasSynced() {
		t.Fatal("not synced")
	}
}

// A client-go shared informer runs on the store as on an API server.
func TestClientGoInformer(t *testing.T) {
	s := NewStore()
	s.Create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d1", Namespace: "default"}})
	inf := cache.NewSharedIndexInformer(s.ListWatch(KindDeployment), &appsv1.Deployment{}, 0, cache.Indexers{})
	stop := make(chan struct{})
	defer close(stop)
	go inf.Run(stop)
	if !cache.WaitForCacheSync(stop, inf.HasSynced) {
		t.Fatal("no sync")
	}
	s.Create(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "d2", Namespace: "default"}})
	deadline := time.Now().Add(2 * time.Second)
	for len(inf.GetStore().ListKeys()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("informer has %v", inf.GetStore().ListKeys())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRecorderAggregates(t *testing.T) {
	s := NewStore()
	p, _ := s.Create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}})
	r := NewRecorder(s, "kubelet", "node1")
	r.Eventf(p, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s", "c")
	r.Eventf(p, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s", "c")
	evs := EventsFor(s, p)
	if len(evs) != 1 || evs[0].Count != 2 {
		t.Fatalf("events: %d, count %v", len(evs), evs)
	}
}

func TestAdmissionChain(t *testing.T) {
	s := NewStore()
	var released []string
	s.Use(func(op Operation, obj, old Object) error {
		switch op {
		case OpCreate, OpUpdate:
			sv := obj.(*corev1.Service)
			if sv.Spec.Type == "" {
				sv.Spec.Type = corev1.ServiceTypeClusterIP // a default
			}
			if sv.Spec.Ports[0].Port > 65535 {
				return apierrors.NewBadRequest("port out of range")
			}
		case OpDelete:
			released = append(released, old.GetName())
		}
		return nil
	})
	o, err := s.Create(svc("a"))
	if err != nil || o.(*corev1.Service).Spec.Type != corev1.ServiceTypeClusterIP {
		t.Fatalf("default not applied: %v", err)
	}
	bad := svc("a")
	bad.Spec.Ports[0].Port = 70000
	if _, err := s.Update(bad); err == nil {
		t.Fatal("admission error not returned")
	}
	if got, _ := Get[*corev1.Service](s, "default", "a"); got.Spec.Ports[0].Port != 80 {
		t.Fatal("rejected update changed the object")
	}
	s.Delete(KindService, "default", "a", DeleteOptions{})
	if len(released) != 1 {
		t.Fatal("delete not seen by admission")
	}
}

// Barrier closes only after the handler has been given every change made
// before it (the order a source's "synced" must keep behind its lists).
func TestSubscriptionBarrier(t *testing.T) {
	s := NewStore()
	gate := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	sub := s.Subscribe(KindConfigMap, cache.ResourceEventHandlerFuncs{
		AddFunc: func(o any) {
			<-gate // a slow handler
			mu.Lock()
			seen = append(seen, o.(*corev1.ConfigMap).Name)
			mu.Unlock()
		},
	}, 0)
	defer sub.Stop()
	var want []string
	for i := range 5 {
		name := fmt.Sprintf("cm-%d", i)
		want = append(want, name)
		if _, err := s.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}); err != nil {
			t.Fatal(err)
		}
	}
	b := sub.Barrier()
	select {
	case <-b:
		t.Fatal("the barrier closed before the handler was given the changes made before it")
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	select {
	case <-b:
	case <-time.After(10 * time.Second):
		t.Fatal("the barrier never closed")
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, want) {
		t.Fatalf("the handler had %v when the barrier closed, want %v", seen, want)
	}
}
