package controllers

import (
	"math"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Pod helpers as in k8s.io/kubernetes/pkg/api/v1/pod and
// pkg/controller/controller_utils.go.

func podReadyCondition(pod *corev1.Pod) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// isPodReady: the Pod's Ready condition is True.
func isPodReady(pod *corev1.Pod) bool {
	c := podReadyCondition(pod)
	return c != nil && c.Status == corev1.ConditionTrue
}

// isPodAvailable: "ready for at least minReadySeconds" (upstream
// podutil.IsPodAvailable).
func isPodAvailable(pod *corev1.Pod, minReadySeconds int32, now time.Time) bool {
	if !isPodReady(pod) {
		return false
	}
	c := podReadyCondition(pod)
	d := time.Duration(minReadySeconds) * time.Second
	return minReadySeconds == 0 || (!c.LastTransitionTime.IsZero() && c.LastTransitionTime.Add(d).Before(now))
}

func isPodTerminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// isPodActive is upstream's controller.IsPodActive: not terminal and not
// being deleted.
func isPodActive(pod *corev1.Pod) bool {
	return !isPodTerminal(pod) && pod.DeletionTimestamp == nil
}

// isPodTerminating: being deleted but still running (not terminal).
func isPodTerminating(pod *corev1.Pod) bool {
	return !isPodTerminal(pod) && pod.DeletionTimestamp != nil
}

var podPhaseToOrdinal = map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}

// podDeletionCost is the annotation controller.kubernetes.io/pod-deletion-cost.
const podDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

func deletionCost(pod *corev1.Pod) int32 {
	v, err := strconv.ParseInt(pod.Annotations[podDeletionCost], 10, 32)
	if err != nil {
		return 0
	}
	return int32(v)
}

// activePodsWithRanks sorts pods so that those preferred for deletion come
// first, exactly as upstream's controller.ActivePodsWithRanks (with the
// PodDeletionCost and LogarithmicScaleDown features, both on by default):
//  1. unassigned < assigned;
//  2. Pending < Unknown < Running;
//  3. not ready < ready;
//  4. lower pod-deletion-cost < higher;
//  5. doubled up (more related pods on the same node) < not doubled up;
//  6. been ready for less time < more time (logarithmic buckets);
//  7. more container restarts < fewer;
//  8. newer < older (logarithmic buckets); ties broken by UID.
type activePodsWithRanks struct {
	Pods []*corev1.Pod
	Rank []int
	Now  metav1.Time
}

func (s activePodsWithRanks) Len() int { return len(s.Pods) }
func (s activePodsWithRanks) Swap(i, j int) {
	s.Pods[i], s.Pods[j] = s.Pods[j], s.Pods[i]
	s.Rank[i], s.Rank[j] = s.Rank[j], s.Rank[i]
}

func (s activePodsWithRanks) Less(i, j int) bool {
	pi, pj := s.Pods[i], s.Pods[j]
	if pi.Spec.NodeName != pj.Spec.NodeName && (pi.Spec.NodeName == "" || pj.Spec.NodeName == "") {
		return pi.Spec.NodeName == ""
	}
	if podPhaseToOrdinal[pi.Status.Phase] != podPhaseToOrdinal[pj.Status.Phase] {
		return podPhaseToOrdinal[pi.Status.Phase] < podPhaseToOrdinal[pj.Status.Phase]
	}
	if isPodReady(pi) != isPodReady(pj) {
		return !isPodReady(pi)
	}
	if ci, cj := deletionCost(pi), deletionCost(pj); ci != cj {
		return ci < cj
	}
	if s.Rank[i] != s.Rank[j] {
		return s.Rank[i] > s.Rank[j]
	}
	if isPodReady(pi) && isPodReady(pj) {
		ti, tj := podReadyTime(pi), podReadyTime(pj)
		if !ti.Equal(tj) {
			if s.Now.IsZero() || ti.IsZero() || tj.IsZero() {
				return afterOrZero(ti, tj)
			}
			if d := logarithmicRankDiff(*ti, *tj, s.Now); d != 0 {
				return d < 0
			}
			return pi.UID < pj.UID
		}
	}
	if ri, rj := maxContainerRestarts(pi), maxContainerRestarts(pj); ri != rj {
		return ri > rj
	}
	if !pi.CreationTimestamp.Equal(&pj.CreationTimestamp) {
		if s.Now.IsZero() || pi.CreationTimestamp.IsZero() || pj.CreationTimestamp.IsZero() {
			return afterOrZero(&pi.CreationTimestamp, &pj.CreationTimestamp)
		}
		if d := logarithmicRankDiff(pi.CreationTimestamp, pj.CreationTimestamp, s.Now); d != 0 {
			return d < 0
		}
		return pi.UID < pj.UID
	}
	return false
}

func afterOrZero(t1, t2 *metav1.Time) bool {
	if t1.Time.IsZero() || t2.Time.IsZero() {
		return t1.Time.IsZero()
	}
	return t1.After(t2.Time)
}

func podReadyTime(pod *corev1.Pod) *metav1.Time {
	if c := podReadyCondition(pod); c != nil && c.Status == corev1.ConditionTrue {
		t := c.LastTransitionTime
		return &t
	}
	return &metav1.Time{}
}

func logarithmicRankDiff(t1, t2, now metav1.Time) int64 {
	d1, d2 := now.Sub(t1.Time), now.Sub(t2.Time)
	r1, r2 := int64(-1), int64(-1)
	if d1 > 0 {
		r1 = int64(math.Log2(float64(d1)))
	}
	if d2 > 0 {
		r2 = int64(math.Log2(float64(d2)))
	}
	return r1 - r2
}

func maxContainerRestarts(pod *corev1.Pod) int {
	m := 0
	for _, c := range pod.Status.ContainerStatuses {
		m = max(m, int(c.RestartCount))
	}
	return m
}

// namePrefix is upstream's getPodsPrefix / getEndpointSlicePrefix: the
// owner's name and a dash, unless that is not a valid generateName.
func namePrefix(name string) string {
	prefix := name + "-"
	if len(apivalidation.NameIsDNSSubdomain(prefix, true)) != 0 {
		prefix = name
	}
	return prefix
}

// podFromTemplate is upstream's controller.GetPodFromTemplate.
func podFromTemplate(template *corev1.PodTemplateSpec, owner metav1.Object, gvk schema.GroupVersionKind) *corev1.Pod {
	t := template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Labels:       t.Labels,
			Annotations:  t.Annotations,
			GenerateName: namePrefix(owner.GetName()),
			Namespace:    owner.GetNamespace(),
			Finalizers:   t.Finalizers,
		},
		Spec: t.Spec,
	}
	ref := metav1.NewControllerRef(owner, gvk)
	pod.OwnerReferences = []metav1.OwnerReference{*ref}
	return pod
}

// controlledBy tells whether obj's controller is the owner with uid.
func controlledBy(obj metav1.Object, uid string) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && string(ref.UID) == uid
}
