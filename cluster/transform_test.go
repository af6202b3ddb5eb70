package cluster

import (
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
)

// trimPod is a transform like a DNS-only process installs: it keeps the
// pod's IP of the status and drops the containers and annotations.
func trimPod(o Object) {
	p := o.(*corev1.Pod)
	p.Annotations = nil
	p.Spec.Containers = nil
	p.Status = corev1.PodStatus{PodIP: p.Status.PodIP}
}

func fullPod(ip, image string) *corev1.Pod {
	p := &corev1.Pod{}
	p.Name, p.Namespace = "p", "default"
	p.Annotations = map[string]string{"note": "big"}
	p.Spec.Containers = []corev1.Container{{Name: "c", Image: image}}
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip}
	return p
}

func trimmed(t *testing.T, o Object, ip string) {
	t.Helper()
	p := o.(*corev1.Pod)
	if p.Annotations != nil || p.Spec.Containers != nil || p.Status.Phase != "" || p.Status.PodIP != ip {
		t.Fatalf("not trimmed to pod IP %q: %+v", ip, p)
	}
	if p.UID == "" || p.ResourceVersion == "" || p.CreationTimestamp.IsZero() {
		t.Fatalf("the store's metadata is missing: %+v", p.ObjectMeta)
	}
}

// TestTransform: like client-go's SharedInformer.SetTransform, a transform
// trims what the store keeps on every write path, and readers (Get, List,
// subscriptions) see the trimmed object.
func TestTransform(t *testing.T) {
	s := NewStore()
	s.SetTransform(KindPod, trimPod)
	var mu sync.Mutex
	var seen []*corev1.Pod
	sub := s.Subscribe(KindPod, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { mu.Lock(); seen = append(seen, o.(*corev1.Pod)); mu.Unlock() },
		UpdateFunc: func(_, o any) { mu.Lock(); seen = append(seen, o.(*corev1.Pod)); mu.Unlock() },
	}, 0)
	defer sub.Stop()

	steps := []struct {
		name  string
		write func() (Object, error)
		ip    string
	}{
		{"Create", func() (Object, error) { return s.Create(fullPod("10.0.0.1", "a")) }, "10.0.0.1"},
		{"Update", func() (Object, error) { return s.Update(fullPod("10.0.0.1", "b")) }, "10.0.0.1"},
		{"Apply", func() (Object, error) { o, _, err := s.Apply(fullPod("10.0.0.1", "c")); return o, err }, "10.0.0.1"},
		{"UpdateStatus", func() (Object, error) { return s.UpdateStatus(fullPod("10.0.0.2", "a")) }, "10.0.0.2"},
		{"UpdateStatusFunc", func() (Object, error) {
			return s.UpdateStatusFunc(KindPod, "default", "p", func(o Object) error {
				o.(*corev1.Pod).Status = fullPod("10.0.0.3", "").Status
				return nil
			})
		}, "10.0.0.3"},
	}
	for _, st := range steps {
		o, err := st.write()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		trimmed(t, o, st.ip)
		got, err := Get[*corev1.Pod](s, "default", "p")
		if err != nil {
			t.Fatalf("%s: get: %v", st.name, err)
		}
		trimmed(t, got, st.ip)
	}
	// Only the writes that changed what is kept are events: the updates
	// of the containers (dropped) were no-ops, as on an API server.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("subscriber saw %d events, want 3 (create and two status changes)", len(seen))
	}
	for i, p := range seen {
		trimmed(t, p, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}[i])
	}
	for _, p := range List[*corev1.Pod](s, "", nil) {
		trimmed(t, p, "10.0.0.3")
	}
}

// TestTransformMayNotRename: the key is the store's; a transform that
// changes it is refused, and removing the transform stores objects whole.
func TestTransformMayNotRename(t *testing.T) {
	s := NewStore()
	s.SetTransform(KindPod, func(o Object) { o.SetName("other") })
	if _, err := s.Create(fullPod("10.0.0.1", "a")); !apierrors.IsBadRequest(err) {
		t.Fatalf("renaming transform: got %v, want BadRequest", err)
	}
	s.SetTransform(KindPod, nil)
	o, err := s.Create(fullPod("10.0.0.1", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if len(o.(*corev1.Pod).Spec.Containers) != 1 {
		t.Fatalf("without a transform the pod is stored whole: %+v", o)
	}
}
