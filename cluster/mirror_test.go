package cluster

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func TestMirrorKeepsTheSourcesObject(t *testing.T) {
	s := NewStore()
	created := metav1.NewTime(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC))
	deleting := metav1.NewTime(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	grace := int64(30)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "server-uid", ResourceVersion: "987654",
			Generation: 7, CreationTimestamp: created, Finalizers: []string{"example.com/keep"}},
		Spec:   corev1.PodSpec{NodeName: "node-a"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.9"},
	}
	events := make(chan string, 100)
	sub := s.Subscribe(KindPod, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { events <- "add" },
		UpdateFunc: func(_, _ any) { events <- "update" },
		DeleteFunc: func(any) { events <- "delete" },
	}, 0)
	defer sub.Stop()
	<-sub.Synced()

	cases := []struct {
		name    string
		change  func(p *corev1.Pod)
		created bool
		changed bool
	}{
		{"a new object is created as the source holds it", nil, true, true},
		{"the same object again changes nothing", nil, false, false},
		{"only the source's resourceVersion differs: nothing changes", func(p *corev1.Pod) { p.ResourceVersion = "999999" }, false, false},
		{"a status change is stored (no admission, no status-keeping)", func(p *corev1.Pod) { p.Status.PodIP = "10.0.0.10" }, false, true},
		{"a deletionTimestamp set by the source is kept", func(p *corev1.Pod) { p.DeletionTimestamp = &deleting; p.DeletionGracePeriodSeconds = &grace }, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change(pod)
			}
			beforeRV := s.ResourceVersion()
			got, isNew, err := s.Mirror(pod)
			if err != nil {
				t.Fatal(err)
			}
			if isNew != tc.created {
				t.Errorf("created = %t, want %t", isNew, tc.created)
			}
			if (s.ResourceVersion() != beforeRV) != tc.changed {
				t.Errorf("store RV %s -> %s, changed want %t", beforeRV, s.ResourceVersion(), tc.changed)
			}
			p := got.(*corev1.Pod)
			if p.UID != pod.UID || !p.CreationTimestamp.Equal(&pod.CreationTimestamp) || p.Generation != pod.Generation ||
				p.Status.PodIP != pod.Status.PodIP || !p.DeletionTimestamp.Equal(pod.DeletionTimestamp) {
				t.Errorf("stored %+v\nwant the source's metadata and status %+v", p.ObjectMeta, pod.ObjectMeta)
			}
			if p.ResourceVersion == pod.ResourceVersion {
				t.Errorf("resourceVersion %s is the source's, want the store's own", p.ResourceVersion)
			}
		})
	}

	// The source deleted it: gone at once, whatever its finalizers and
	// its node (the store's own Delete would only mark it).
	if err := s.Unmirror(KindPod, "ns", "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(KindPod, "ns", "p"); err == nil {
		t.Error("the pod is still stored after Unmirror")
	}
	if err := s.Unmirror(KindPod, "ns", "p"); err == nil {
		t.Error("Unmirror of a missing object: want NotFound")
	}
	want := []string{"add", "update", "update", "delete"}
	for i, w := range want {
		select {
		case got := <-events:
			if got != w {
				t.Fatalf("event %d is %s, want %s (events %v)", i, got, w, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d (%s) never came", i, w)
		}
	}
}

func TestMirrorAppliesTheTransform(t *testing.T) {
	s := NewStore()
	s.SetTransform(KindService, func(o Object) { o.SetAnnotations(nil) })
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns", UID: "u",
		Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}"}}}
	got, _, err := s.Mirror(svc)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetAnnotations()) != 0 {
		t.Errorf("annotations %v kept, want the transform to drop them", got.GetAnnotations())
	}
	if len(svc.Annotations) != 1 {
		t.Error("Mirror changed its input")
	}
}
