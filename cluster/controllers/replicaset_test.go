package controllers

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

func rankPod(name string, f func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name),
		CreationTimestamp: metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))}}
	p.Spec.NodeName = "n1"
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue,
		LastTransitionTime: metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))}}
	if f != nil {
		f(p)
	}
	return p
}

func TestActivePodsWithRanks(t *testing.T) {
	now := metav1.NewTime(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name        string
		first, last *corev1.Pod // first must be preferred for deletion
		rankFirst   int
		rankLast    int
	}{
		{name: "1. Unassigned < assigned",
			first: rankPod("a", func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodPending }), last: rankPod("b", nil)},
		{name: "2. PodPending < PodUnknown < PodRunning (pending)",
			first: rankPod("a", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }), last: rankPod("b", nil)},
		{name: "2. PodPending < PodUnknown < PodRunning (unknown)",
			first: rankPod("a", func(p *corev1.Pod) { p.Status.Phase = corev1.PodUnknown }), last: rankPod("b", nil)},
		{name: "3. Not ready < ready",
			first: rankPod("a", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }), last: rankPod("b", nil)},
		{name: "4. lower pod-deletion-cost < higher pod-deletion cost",
			first: rankPod("a", func(p *corev1.Pod) { p.Annotations = map[string]string{podDeletionCost: "-5"} }), last: rankPod("b", nil)},
		{name: "5. Doubled up < not doubled up", first: rankPod("a", nil), last: rankPod("b", nil), rankFirst: 3, rankLast: 1},
		{name: "6. Been ready for empty time < less time < more time",
			first: rankPod("a", func(p *corev1.Pod) { p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-time.Minute)) }),
			last: rankPod("b", func(p *corev1.Pod) {
				p.Status.Conditions[0].LastTransitionTime = metav1.NewTime(now.Add(-24 * time.Hour))
			})},
		{name: "7. Pods with containers with higher restart counts < lower restart counts",
			first: rankPod("a", func(p *corev1.Pod) { p.Status.ContainerStatuses = []corev1.ContainerStatus{{RestartCount: 4}} }), last: rankPod("b", nil)},
		{name: "8. Empty creation time pods < newer pods < older pods",
			first: rankPod("a", func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-time.Minute)) }),
			last:  rankPod("b", func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(now.Add(-30 * 24 * time.Hour)) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Both orders in, the same order out.
			for _, in := range [][2]int{{0, 1}, {1, 0}} {
				pods := []*corev1.Pod{tc.first, tc.last}
				ranks := []int{tc.rankFirst, tc.rankLast}
				s := activePodsWithRanks{Pods: []*corev1.Pod{pods[in[0]], pods[in[1]]}, Rank: []int{ranks[in[0]], ranks[in[1]]}, Now: now}
				sort.Sort(s)
				if s.Pods[0] != tc.first {
					t.Fatalf("order %v: %s sorted first, want %s", in, s.Pods[0].Name, tc.first.Name)
				}
			}
		})
	}
}

func replicaSet(ns, name string, n int32, lbls map[string]string) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: podTemplate(lbls, "v1"),
		},
	}
}

func rsStatus(t *testing.T, s *cluster.Store, ns, name string) appsv1.ReplicaSetStatus {
	t.Helper()
	rs, err := cluster.Get[*appsv1.ReplicaSet](s, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return rs.Status
}

func scaleRS(t *testing.T, s *cluster.Store, ns, name string, n int32) {
	t.Helper()
	if _, err := s.UpdateFunc(cluster.KindReplicaSet, ns, name, func(o cluster.Object) error {
		o.(*appsv1.ReplicaSet).Spec.Replicas = ptr.To(n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func waitRS(t *testing.T, s *cluster.Store, ns, name string, replicas, ready int32) {
	t.Helper()
	eventually(t, fmt.Sprintf("ReplicaSet %s with %d replicas, %d ready", name, replicas, ready), func() (bool, string) {
		rs, err := cluster.Get[*appsv1.ReplicaSet](s, ns, name)
		if err != nil {
			return false, err.Error()
		}
		st := rs.Status
		return st.ObservedGeneration == rs.Generation && st.Replicas == replicas && st.ReadyReplicas == ready && st.AvailableReplicas == ready,
			fmt.Sprintf("%+v", st)
	})
}

func TestReplicaSetScaleUpAndDown(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	lbls := map[string]string{"app": "web"}
	rs := create(t, env.store, replicaSet("default", "web", 3, lbls)).(*appsv1.ReplicaSet)
	waitRS(t, env.store, "default", "web", 3, 3)

	pods := listPods(env.store, "default", lbls)
	if len(pods) != 3 {
		t.Fatalf("%d pods", len(pods))
	}
	for _, p := range pods {
		ref := metav1.GetControllerOf(p)
		if !strings.HasPrefix(p.Name, "web-") || len(p.Name) != len("web-")+5 {
			t.Errorf("pod name %q: want generateName web- and 5 characters", p.Name)
		}
		if ref == nil || ref.UID != rs.UID || ref.Kind != "ReplicaSet" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
			t.Errorf("pod %s ownerReference %+v", p.Name, ref)
		}
		if p.Labels["app"] != "web" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
	}
	st := rsStatus(t, env.store, "default", "web")
	if st.FullyLabeledReplicas != 3 {
		t.Errorf("fullyLabeledReplicas %d", st.FullyLabeledReplicas)
	}

	// Scale down to 2 while one pod is not ready: "Not ready < ready",
	// the not-ready pod goes first.
	victim := pods[1]
	k.setReady("default", victim.Name, false)
	waitRS(t, env.store, "default", "web", 3, 2)
	scaleRS(t, env.store, "default", "web", 2)
	waitRS(t, env.store, "default", "web", 2, 2)
	for _, p := range listPods(env.store, "default", lbls) {
		if p.UID == victim.UID {
			t.Fatalf("the not-ready pod %s survived the scale-down", victim.Name)
		}
	}
	var created, deleted int
	for _, e := range cluster.EventsFor(env.store, rs) {
		switch e.Reason {
		case "SuccessfulCreate":
			created += int(e.Count)
		case "SuccessfulDelete":
			deleted += int(e.Count)
			if e.Message != "Deleted pod: "+victim.Name {
				t.Errorf("delete event %q", e.Message)
			}
		}
	}
	if created != 3 || deleted != 1 {
		t.Errorf("events: %d SuccessfulCreate, %d SuccessfulDelete", created, deleted)
	}

	scaleRS(t, env.store, "default", "web", 5)
	waitRS(t, env.store, "default", "web", 5, 5)
	scaleRS(t, env.store, "default", "web", 0)
	waitRS(t, env.store, "default", "web", 0, 0)
	eventually(t, "pods gone", func() (bool, string) {
		n := len(listPods(env.store, "default", lbls))
		return n == 0, fmt.Sprintf("%d pods", n)
	})
}

func TestReplicaSetAdoptsOrphans(t *testing.T) {
	lbls := map[string]string{"app": "web"}
	env := newEnv(t, testConfig(), func(s *cluster.Store) {
		create(t, s, bare("default", "orphan", func(p *corev1.Pod) { p.Labels = lbls }))
		create(t, s, bare("default", "other", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "other"} }))
	})
	addNode(t, env.store, node("node-1", true, nil))
	startKubelet(t, env.store, "node-1")
	rs := create(t, env.store, replicaSet("default", "web", 2, lbls)).(*appsv1.ReplicaSet)
	waitRS(t, env.store, "default", "web", 2, 2)
	orphan, _ := cluster.Get[*corev1.Pod](env.store, "default", "orphan")
	if ref := metav1.GetControllerOf(orphan); ref == nil || ref.UID != rs.UID {
		t.Fatalf("matching orphan not adopted: %+v", ref)
	}
	other, _ := cluster.Get[*corev1.Pod](env.store, "default", "other")
	if metav1.GetControllerOf(other) != nil {
		t.Fatal("non-matching pod adopted")
	}
	if n := len(listPods(env.store, "default", lbls)); n != 2 {
		t.Fatalf("%d pods, want the orphan plus one", n)
	}
}

func TestReplicaSetIgnoresTerminatingPods(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	lbls := map[string]string{"app": "web"}
	create(t, env.store, replicaSet("default", "web", 2, lbls))
	waitRS(t, env.store, "default", "web", 2, 2)
	p := listPods(env.store, "default", lbls)[0]
	k.holdTermination(cluster.KeyOf(p), true)
	if err := env.store.Delete(cluster.KindPod, "default", p.Name, cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// "pods being deleted (deletionTimestamp) don't count": a replacement
	// is created while the old pod still terminates.
	eventually(t, "replacement while the old pod terminates", func() (bool, string) {
		st := rsStatus(t, env.store, "default", "web")
		all := listPods(env.store, "default", lbls)
		return st.Replicas == 2 && st.ReadyReplicas == 2 && ptr.Deref(st.TerminatingReplicas, 0) == 1 && len(all) == 3,
			fmt.Sprintf("status %+v, %d pods", st, len(all))
	})
	k.holdTermination(cluster.KeyOf(p), false)
	eventually(t, "terminated pod gone", func() (bool, string) {
		st := rsStatus(t, env.store, "default", "web")
		return ptr.Deref(st.TerminatingReplicas, 0) == 0 && len(listPods(env.store, "default", lbls)) == 2, fmt.Sprintf("%+v", st)
	})
}

func TestReplicaSetMinReadySeconds(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	startKubelet(t, env.store, "node-1")
	lbls := map[string]string{"app": "web"}
	rs := replicaSet("default", "web", 1, lbls)
	rs.Spec.MinReadySeconds = 1
	create(t, env.store, rs)
	// "availableReplicas: ready for at least minReadySeconds".
	eventually(t, "ready but not yet available", func() (bool, string) {
		st := rsStatus(t, env.store, "default", "web")
		return st.ReadyReplicas == 1, fmt.Sprintf("%+v", st)
	})
	pod := listPods(env.store, "default", lbls)[0]
	readySince := podReadyCondition(pod).LastTransitionTime.Time
	st := rsStatus(t, env.store, "default", "web")
	if st.AvailableReplicas == 1 && time.Since(readySince) < time.Second {
		t.Fatalf("available before minReadySeconds: %+v", st)
	}
	eventually(t, "available after minReadySeconds", func() (bool, string) {
		st := rsStatus(t, env.store, "default", "web")
		return st.AvailableReplicas == 1, fmt.Sprintf("%+v", st)
	})
}
