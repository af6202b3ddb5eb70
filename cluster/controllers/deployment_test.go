package controllers

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

func deployment(ns, name string, n int32, strategy appsv1.DeploymentStrategy) *appsv1.Deployment {
	lbls := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(n),
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: podTemplate(lbls, "v1"),
			Strategy: strategy,
		},
	}
}

func rolling(surge, unavailable intstr.IntOrString) appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}}
}

func getDeployment(t *testing.T, s *cluster.Store, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := cluster.Get[*appsv1.Deployment](s, ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitComplete waits until the Deployment's status says every replica is
// updated, ready and available, and only the new pods are left.
func waitComplete(t *testing.T, s *cluster.Store, ns, name, version string) {
	t.Helper()
	eventually(t, fmt.Sprintf("deployment %s complete at %s", name, version), func() (bool, string) {
		d := getDeployment(t, s, ns, name)
		want := *d.Spec.Replicas
		st := d.Status
		if st.ObservedGeneration != d.Generation || st.UpdatedReplicas != want || st.Replicas != want ||
			st.AvailableReplicas != want || st.ReadyReplicas != want || st.UnavailableReplicas != 0 {
			return false, fmt.Sprintf("status %+v", st)
		}
		pods := listPods(s, ns, d.Spec.Selector.MatchLabels)
		if len(pods) != int(want) {
			return false, fmt.Sprintf("%d pods", len(pods))
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Env[0].Value != version {
				return false, "old pod " + p.Name
			}
		}
		c := getDeploymentCondition(st, appsv1.DeploymentProgressing)
		return c != nil && c.Reason == NewRSAvailableReason, fmt.Sprintf("progressing %+v", c)
	})
}

func setVersion(t *testing.T, s *cluster.Store, ns, name, version string) {
	t.Helper()
	if _, err := s.UpdateFunc(cluster.KindDeployment, ns, name, func(o cluster.Object) error {
		o.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Env[0].Value = version
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// podWatcher keeps its own model of a deployment's pods from the store's
// events, in order, and checks an invariant at every state it sees.
type podWatcher struct {
	mu     sync.Mutex
	pods   map[string]*corev1.Pod
	sel    labels.Selector
	check  func(pods map[string]*corev1.Pod) string
	errs   []string
	states int
	sub    *cluster.Subscription
}

func watchPods(t *testing.T, s *cluster.Store, sel map[string]string, check func(map[string]*corev1.Pod) string) *podWatcher {
	w := &podWatcher{pods: map[string]*corev1.Pod{}, sel: labels.SelectorFromSet(sel), check: check}
	for _, p := range listPods(s, "", sel) {
		w.pods[cluster.KeyOf(p)] = p
	}
	w.sub = s.Subscribe(cluster.KindPod, w, 0)
	t.Cleanup(w.sub.Stop)
	<-w.sub.Synced()
	return w
}

func (w *podWatcher) apply(p *corev1.Pod, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if deleted || !w.sel.Matches(labels.Set(p.Labels)) {
		delete(w.pods, cluster.KeyOf(p))
	} else {
		w.pods[cluster.KeyOf(p)] = p
	}
	w.states++
	if msg := w.check(w.pods); msg != "" {
		w.errs = append(w.errs, msg)
	}
}

func (w *podWatcher) OnAdd(o any, _ bool) { w.apply(o.(*corev1.Pod), false) }
func (w *podWatcher) OnUpdate(_, o any)   { w.apply(o.(*corev1.Pod), false) }
func (w *podWatcher) OnDelete(o any)      { w.apply(o.(*corev1.Pod), true) }

func (w *podWatcher) result() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.errs...), w.states
}

func running(p *corev1.Pod) bool { return p.DeletionTimestamp == nil && !isPodTerminal(p) }

func TestDeploymentCreateAndScale(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	startKubelet(t, env.store, "node-1")
	d := create(t, env.store, deployment("default", "web", 3, appsv1.DeploymentStrategy{})).(*appsv1.Deployment)
	waitComplete(t, env.store, "default", "web", "v1")

	// "ReplicaSets named <deployment>-<pod-template-hash>", hash from the
	// template (fnv32a + SafeEncodeString), label added to selector and
	// template, revision annotation.
	hash := ComputeHash(&d.Spec.Template, nil)
	rs, err := cluster.Get[*appsv1.ReplicaSet](env.store, "default", "web-"+hash)
	if err != nil {
		t.Fatalf("ReplicaSet web-%s: %v", hash, err)
	}
	if rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Spec.Template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash ||
		rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey] != hash {
		t.Errorf("pod-template-hash missing: selector %v template %v labels %v", rs.Spec.Selector.MatchLabels, rs.Spec.Template.Labels, rs.Labels)
	}
	if rs.Annotations[RevisionAnnotation] != "1" || getDeployment(t, env.store, "default", "web").Annotations[RevisionAnnotation] != "1" {
		t.Errorf("revision annotations: rs %q", rs.Annotations[RevisionAnnotation])
	}
	if ref := metav1.GetControllerOf(rs); ref == nil || ref.UID != d.UID {
		t.Errorf("rs controller %+v", ref)
	}
	for _, p := range listPods(env.store, "default", map[string]string{"app": "web"}) {
		if !strings.HasPrefix(p.Name, "web-"+hash+"-") {
			t.Errorf("pod name %s, want web-%s-xxxxx", p.Name, hash)
		}
	}
	cur := getDeployment(t, env.store, "default", "web")
	if c := getDeploymentCondition(cur.Status, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != MinimumReplicasAvailable {
		t.Errorf("Available condition %+v", c)
	}
	wantEvent := func(msg string) {
		t.Helper()
		for _, e := range cluster.EventsFor(env.store, d) {
			if e.Reason == "ScalingReplicaSet" && e.Message == msg {
				return
			}
		}
		t.Errorf("no ScalingReplicaSet event %q", msg)
	}
	wantEvent(fmt.Sprintf("Scaled up replica set web-%s from 0 to 3", hash))

	for _, n := range []int32{5, 2} {
		if _, err := env.store.UpdateFunc(cluster.KindDeployment, "default", "web", func(o cluster.Object) error {
			o.(*appsv1.Deployment).Spec.Replicas = ptr.To(n)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		waitComplete(t, env.store, "default", "web", "v1")
	}
	wantEvent(fmt.Sprintf("Scaled up replica set web-%s from 3 to 5", hash))
	wantEvent(fmt.Sprintf("Scaled down replica set web-%s from 5 to 2", hash))
}

func TestDeploymentRollingUpdate(t *testing.T) {
	tests := []struct {
		name        string
		replicas    int32
		surge       intstr.IntOrString
		unavailable intstr.IntOrString
		// resolved as upstream's ResolveFenceposts: percentages round up
		// for surge, down for unavailable.
		maxSurge, maxUnavailable int32
	}{
		{"defaults 25%/25% of 4: surge 1, unavailable 1", 4, intstr.FromString("25%"), intstr.FromString("25%"), 1, 1},
		{"surge 1, unavailable 0: never below replicas", 3, intstr.FromInt32(1), intstr.FromInt32(0), 1, 0},
		{"surge 0, unavailable 1: never above replicas", 3, intstr.FromInt32(0), intstr.FromInt32(1), 0, 1},
		{"percentages round: 30% of 5 surges 2, 30% of 5 leaves 1 unavailable", 5, intstr.FromString("30%"), intstr.FromString("30%"), 2, 1},
		{"surge 10% of 3 rounds up to 1, unavailable 10% rounds down to 0", 3, intstr.FromString("10%"), intstr.FromString("10%"), 1, 0},
		{"both zero after rounding: upstream sets maxUnavailable to 1", 3, intstr.FromString("0%"), intstr.FromString("10%"), 0, 1},
		{"large surge and unavailable", 6, intstr.FromInt32(3), intstr.FromInt32(2), 3, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, u, _ := resolveFenceposts(&tc.surge, &tc.unavailable, tc.replicas)
			if s != tc.maxSurge || u != tc.maxUnavailable {
				t.Fatalf("resolveFenceposts = %d, %d; want %d, %d", s, u, tc.maxSurge, tc.maxUnavailable)
			}
			env := newEnv(t, testConfig(), nil)
			addNode(t, env.store, node("node-1", true, nil))
			startKubelet(t, env.store, "node-1")
			create(t, env.store, deployment("default", "web", tc.replicas, rolling(tc.surge, tc.unavailable)))
			waitComplete(t, env.store, "default", "web", "v1")

			minReady := int(tc.replicas - tc.maxUnavailable)
			maxTotal := int(tc.replicas + tc.maxSurge)
			w := watchPods(t, env.store, map[string]string{"app": "web"}, func(pods map[string]*corev1.Pod) string {
				var list []*corev1.Pod
				for _, p := range pods {
					list = append(list, p)
				}
				ready := countPods(list, func(p *corev1.Pod) bool { return running(p) && isPodReady(p) })
				total := countPods(list, running)
				if ready < minReady {
					return fmt.Sprintf("%d ready pods < replicas-maxUnavailable = %d", ready, minReady)
				}
				if total > maxTotal {
					return fmt.Sprintf("%d pods > replicas+maxSurge = %d", total, maxTotal)
				}
				return ""
			})
			for _, v := range []string{"v2", "v3"} {
				setVersion(t, env.store, "default", "web", v)
				waitComplete(t, env.store, "default", "web", v)
			}
			errs, states := w.result()
			if len(errs) > 0 {
				t.Fatalf("invariant broken in %d of %d observed states; first: %s", len(errs), states, errs[0])
			}
			if states < int(tc.replicas)*2 {
				t.Fatalf("only %d states observed", states)
			}
			d := getDeployment(t, env.store, "default", "web")
			if d.Annotations[RevisionAnnotation] != "3" {
				t.Errorf("revision %q after two rollouts", d.Annotations[RevisionAnnotation])
			}
		})
	}
}

// "driven by readiness": new pods that never become ready hold the
// rollout at maxSurge/maxUnavailable; when they become ready it goes on.
func TestDeploymentRollingUpdateWaitsForReadiness(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	create(t, env.store, deployment("default", "web", 3, rolling(intstr.FromInt32(1), intstr.FromInt32(0))))
	waitComplete(t, env.store, "default", "web", "v1")
	k.setReadiness(func(p *corev1.Pod) bool { return p.Spec.Containers[0].Env[0].Value != "v2" })
	setVersion(t, env.store, "default", "web", "v2")
	eventually(t, "one unready surge pod, three old ready", func() (bool, string) {
		d := getDeployment(t, env.store, "default", "web")
		st := d.Status
		c := getDeploymentCondition(st, appsv1.DeploymentProgressing)
		return st.ObservedGeneration == d.Generation && st.UpdatedReplicas == 1 && st.Replicas == 4 && st.AvailableReplicas == 3 &&
			st.UnavailableReplicas == 1 && c != nil && c.Reason == ReplicaSetUpdatedReason, fmt.Sprintf("%+v", st)
	})
	pods := listPods(env.store, "default", map[string]string{"app": "web"})
	if n := countPods(pods, func(p *corev1.Pod) bool { return running(p) && isPodReady(p) }); n != 3 {
		t.Fatalf("%d ready pods while the new one is not ready", n)
	}
	k.setReadiness(nil)
	for _, p := range pods {
		if p.Spec.Containers[0].Env[0].Value == "v2" {
			k.setReady(p.Namespace, p.Name, true)
		}
	}
	waitComplete(t, env.store, "default", "web", "v2")
}

// progressDeadlineSeconds: "the deployment controller will retry ...
// reported in the deployment status as ProgressDeadlineExceeded".
func TestDeploymentProgressDeadline(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	k.setReadiness(func(*corev1.Pod) bool { return false })
	d := deployment("default", "web", 1, appsv1.DeploymentStrategy{})
	d.Spec.ProgressDeadlineSeconds = ptr.To[int32](1)
	create(t, env.store, d)
	eventually(t, "ProgressDeadlineExceeded", func() (bool, string) {
		x := getDeployment(t, env.store, "default", "web")
		c := getDeploymentCondition(x.Status, appsv1.DeploymentProgressing)
		a := getDeploymentCondition(x.Status, appsv1.DeploymentAvailable)
		return c != nil && c.Status == corev1.ConditionFalse && c.Reason == TimedOutReason &&
			a != nil && a.Status == corev1.ConditionFalse && a.Reason == MinimumReplicasUnavailable, fmt.Sprintf("%+v", x.Status.Conditions)
	})
}

func TestDeploymentRecreate(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	k := startKubelet(t, env.store, "node-1")
	create(t, env.store, deployment("default", "web", 3, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}))
	waitComplete(t, env.store, "default", "web", "v1")
	// Old pods linger while terminating: Recreate must still wait.
	for _, p := range listPods(env.store, "default", map[string]string{"app": "web"}) {
		k.holdTermination(cluster.KeyOf(p), true)
	}
	w := watchPods(t, env.store, map[string]string{"app": "web"}, func(pods map[string]*corev1.Pod) string {
		old, cur := 0, 0
		for _, p := range pods {
			if p.Spec.Containers[0].Env[0].Value == "v1" {
				old++
			} else {
				cur++
			}
		}
		if old > 0 && cur > 0 {
			return fmt.Sprintf("%d old and %d new pods at once", old, cur)
		}
		return ""
	})
	setVersion(t, env.store, "default", "web", "v2")
	eventually(t, "old pods terminating, no new pod", func() (bool, string) {
		pods := listPods(env.store, "default", map[string]string{"app": "web"})
		return len(pods) == 3 && countPods(pods, func(p *corev1.Pod) bool { return p.DeletionTimestamp != nil }) == 3, fmt.Sprintf("%d pods", len(pods))
	})
	for _, p := range listPods(env.store, "default", map[string]string{"app": "web"}) {
		k.holdTermination(cluster.KeyOf(p), false)
	}
	waitComplete(t, env.store, "default", "web", "v2")
	if errs, _ := w.result(); len(errs) > 0 {
		t.Fatalf("Recreate ran old and new pods together: %s", errs[0])
	}
}

func TestDeploymentPausedAndHistoryLimit(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("node-1", true, nil))
	startKubelet(t, env.store, "node-1")
	d := deployment("default", "web", 2, appsv1.DeploymentStrategy{})
	d.Spec.RevisionHistoryLimit = ptr.To[int32](1)
	create(t, env.store, d)
	waitComplete(t, env.store, "default", "web", "v1")

	// Paused: a template change makes no new ReplicaSet.
	if _, err := env.store.UpdateFunc(cluster.KindDeployment, "default", "web", func(o cluster.Object) error {
		x := o.(*appsv1.Deployment)
		x.Spec.Paused = true
		x.Spec.Template.Spec.Containers[0].Env[0].Value = "v2"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "paused condition", func() (bool, string) {
		x := getDeployment(t, env.store, "default", "web")
		c := getDeploymentCondition(x.Status, appsv1.DeploymentProgressing)
		return x.Status.ObservedGeneration == x.Generation && c != nil && c.Reason == PausedDeployReason, fmt.Sprintf("%+v", c)
	})
	if n := len(cluster.List[*appsv1.ReplicaSet](env.store, "default", nil)); n != 1 {
		t.Fatalf("%d ReplicaSets while paused", n)
	}
	if _, err := env.store.UpdateFunc(cluster.KindDeployment, "default", "web", func(o cluster.Object) error {
		o.(*appsv1.Deployment).Spec.Paused = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitComplete(t, env.store, "default", "web", "v2")
	setVersion(t, env.store, "default", "web", "v3")
	waitComplete(t, env.store, "default", "web", "v3")
	// revisionHistoryLimit 1: the new ReplicaSet and one old one remain.
	eventually(t, "old ReplicaSets cleaned up", func() (bool, string) {
		rss := cluster.List[*appsv1.ReplicaSet](env.store, "default", nil)
		var revs []string
		for _, rs := range rss {
			revs = append(revs, rs.Annotations[RevisionAnnotation])
		}
		return len(rss) == 2, fmt.Sprintf("revisions %v", revs)
	})
}

func TestComputeHash(t *testing.T) {
	a := podTemplate(map[string]string{"app": "web"}, "v1")
	b := podTemplate(map[string]string{"app": "web"}, "v2")
	ha, hb := ComputeHash(&a, nil), ComputeHash(&b, nil)
	if ha == hb || ha != ComputeHash(a.DeepCopy(), nil) {
		t.Fatalf("hashes %s %s: must differ by template and be stable", ha, hb)
	}
	if ComputeHash(&a, ptr.To[int32](1)) == ha {
		t.Fatal("collisionCount must change the hash")
	}
	// rand.SafeEncodeString: only "bcdfghjklmnpqrstvwxz2456789".
	for _, c := range ha {
		if !strings.ContainsRune("bcdfghjklmnpqrstvwxz2456789", c) {
			t.Fatalf("hash %s has %q", ha, c)
		}
	}
}
