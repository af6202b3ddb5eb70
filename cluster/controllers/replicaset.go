package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// burstReplicas is kube-controller-manager's --concurrent-replicaset-syncs
// companion: at most this many pods are created or deleted per sync.
const burstReplicas = 500

var replicaSetKind = appsv1.SchemeGroupVersion.WithKind("ReplicaSet")

// replicaSetController keeps spec.replicas pods of a ReplicaSet, as
// pkg/controller/replicaset does: it adopts matching orphans, releases
// owned pods that stopped matching, creates pods from the template in slow
// start batches and deletes the surplus in ActivePodsWithRanks order, then
// writes the status.
type replicaSetController struct {
	*controller
	store *cluster.Store
	rec   *cluster.Recorder
	now   func() time.Time
}

func newReplicaSetController(store *cluster.Store, c *controller, rec *cluster.Recorder) *replicaSetController {
	r := &replicaSetController{controller: c, store: store, rec: rec, now: time.Now}
	c.sync = r.sync
	return r
}

func (r *replicaSetController) subscribe(st *cluster.Store) []*cluster.Subscription {
	rss := handler{c: r.controller, initial: true, onAdd: keyOf}
	pods := handler{c: r.controller,
		onAdd: func(o cluster.Object) []string { return r.rsKeysForPod(o.(*corev1.Pod)) },
		onUpd: func(old, o cluster.Object) []string {
			oldPod, pod := old.(*corev1.Pod), o.(*corev1.Pod)
			keys := r.rsKeysForPod(pod)
			if !apiequality.Semantic.DeepEqual(oldPod.Labels, pod.Labels) ||
				!apiequality.Semantic.DeepEqual(metav1.GetControllerOfNoCopy(oldPod), metav1.GetControllerOfNoCopy(pod)) {
				keys = append(keys, r.rsKeysForPod(oldPod)...)
			}
			// A pod that just became ready becomes available after
			// minReadySeconds: look again then (upstream updatePod).
			if !isPodReady(oldPod) && isPodReady(pod) {
				if ref := metav1.GetControllerOfNoCopy(pod); ref != nil && ref.Kind == "ReplicaSet" {
					if rs, err := cluster.Get[*appsv1.ReplicaSet](r.store, pod.Namespace, ref.Name); err == nil && rs.Spec.MinReadySeconds > 0 {
						r.queue.AddAfter(cluster.KeyOf(rs), time.Duration(rs.Spec.MinReadySeconds)*time.Second+time.Second)
					}
				}
			}
			return keys
		},
	}
	return []*cluster.Subscription{
		st.Subscribe(cluster.KindReplicaSet, rss, 0),
		st.Subscribe(cluster.KindPod, pods, 0),
	}
}

// rsKeysForPod: the pod's controlling ReplicaSet, or for an orphan every
// ReplicaSet whose selector matches (to adopt it).
func (r *replicaSetController) rsKeysForPod(pod *corev1.Pod) []string {
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		if ref.Kind != "ReplicaSet" {
			return nil
		}
		return []string{cluster.Key(pod.Namespace, ref.Name)}
	}
	if pod.DeletionTimestamp != nil {
		return nil
	}
	var keys []string
	for _, rs := range cluster.List[*appsv1.ReplicaSet](r.store, pod.Namespace, nil) {
		sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			keys = append(keys, cluster.KeyOf(rs))
		}
	}
	return keys
}

func (r *replicaSetController) sync(_ context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	rs, err := cluster.Get[*appsv1.ReplicaSet](r.store, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || sel.Empty() {
		// Upstream drops invalid selectors (validation refuses them).
		r.log.Warn("ReplicaSet has an invalid or empty selector; ignored", "replicaset", key, "err", err)
		return nil
	}
	pods, err := r.claimPods(rs, sel)
	if err != nil {
		return err
	}
	var manageErr error
	if rs.DeletionTimestamp == nil {
		manageErr = r.manageReplicas(rs, activePods(pods))
		if manageErr != nil {
			r.log.Warn("managing replicas", "replicaset", key, "err", manageErr)
		}
		// Status from what the store holds now: pods just deleted are
		// terminating, pods just created count, so that the Deployment
		// controller never acts on availability that is already gone.
		if pods, err = r.claimPods(rs, sel); err != nil {
			return err
		}
	}
	rs, err = r.updateStatus(rs, pods, manageErr)
	if err != nil {
		return err
	}
	if manageErr != nil {
		return manageErr
	}
	// Pods ready but not yet available: look again once minReadySeconds
	// have passed (upstream does the same).
	if rs != nil && rs.Spec.MinReadySeconds > 0 && rs.Status.ReadyReplicas == ptr.Deref(rs.Spec.Replicas, 1) &&
		rs.Status.AvailableReplicas != ptr.Deref(rs.Spec.Replicas, 1) {
		r.queue.AddAfter(key, time.Duration(rs.Spec.MinReadySeconds)*time.Second)
	}
	return nil
}

func activePods(pods []*corev1.Pod) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if isPodActive(p) {
			out = append(out, p)
		}
	}
	return out
}

// claimPods is upstream's PodControllerRefManager.ClaimPods: it returns
// the pods the ReplicaSet owns after adopting matching orphans and
// releasing owned pods whose labels no longer match.
func (r *replicaSetController) claimPods(rs *appsv1.ReplicaSet, sel labels.Selector) ([]*corev1.Pod, error) {
	var owned []*corev1.Pod
	var errs []error
	for _, pod := range cluster.List[*corev1.Pod](r.store, rs.Namespace, nil) {
		ref := metav1.GetControllerOfNoCopy(pod)
		match := sel.Matches(labels.Set(pod.Labels))
		if ref != nil {
			if ref.UID != rs.UID {
				continue // owned by someone else
			}
			if match {
				owned = append(owned, pod)
				continue
			}
			if rs.DeletionTimestamp != nil {
				continue
			}
			if err := r.release(rs, pod); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if rs.DeletionTimestamp != nil || !match || pod.DeletionTimestamp != nil {
			continue
		}
		adopted, err := r.adopt(rs, pod)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if adopted != nil {
			owned = append(owned, adopted)
		}
	}
	return owned, errors.Join(errs...)
}

var errHasController = errors.New("object already has a controller")

func (r *replicaSetController) adopt(rs *appsv1.ReplicaSet, pod *corev1.Pod) (*corev1.Pod, error) {
	o, err := r.store.UpdateFunc(cluster.KindPod, pod.Namespace, pod.Name, func(o cluster.Object) error {
		p := o.(*corev1.Pod)
		if p.UID != pod.UID || metav1.GetControllerOfNoCopy(p) != nil || p.DeletionTimestamp != nil {
			return errHasController
		}
		p.OwnerReferences = append(p.OwnerReferences, *metav1.NewControllerRef(rs, replicaSetKind))
		return nil
	})
	if errors.Is(err, errHasController) || apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adopting pod %s: %w", cluster.KeyOf(pod), err)
	}
	r.log.Info("adopted orphan pod", "replicaset", cluster.KeyOf(rs), "pod", pod.Name)
	return o.(*corev1.Pod), nil
}

func (r *replicaSetController) release(rs *appsv1.ReplicaSet, pod *corev1.Pod) error {
	_, err := r.store.UpdateFunc(cluster.KindPod, pod.Namespace, pod.Name, func(o cluster.Object) error {
		p := o.(*corev1.Pod)
		refs := p.OwnerReferences[:0:0]
		for _, ref := range p.OwnerReferences {
			if ref.UID != rs.UID {
				refs = append(refs, ref)
			}
		}
		p.OwnerReferences = refs
		return nil
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("releasing pod %s: %w", cluster.KeyOf(pod), err)
	}
	r.log.Info("released pod that no longer matches", "replicaset", cluster.KeyOf(rs), "pod", pod.Name)
	return nil
}

// manageReplicas creates or deletes pods to reach spec.replicas.
func (r *replicaSetController) manageReplicas(rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	want := int(ptr.Deref(rs.Spec.Replicas, 1))
	diff := len(active) - want
	switch {
	case diff < 0:
		n := min(-diff, burstReplicas)
		_, err := slowStartBatch(n, 1, func() error {
			pod := podFromTemplate(&rs.Spec.Template, rs, replicaSetKind)
			created, err := r.store.Create(pod)
			if err != nil {
				r.rec.Eventf(rs, corev1.EventTypeWarning, "FailedCreate", "Error creating: %v", err)
				return err
			}
			r.rec.Eventf(rs, corev1.EventTypeNormal, "SuccessfulCreate", "Created pod: %s", created.GetName())
			return nil
		})
		return err
	case diff > 0:
		n := min(diff, burstReplicas)
		var errs []error
		for _, pod := range r.podsToDelete(rs, active, n) {
			err := r.store.Delete(cluster.KindPod, pod.Namespace, pod.Name, cluster.DeleteOptions{UID: pod.UID})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				r.rec.Eventf(rs, corev1.EventTypeWarning, "FailedDelete", "Error deleting: %v", err)
				errs = append(errs, err)
				continue
			}
			r.rec.Eventf(rs, corev1.EventTypeNormal, "SuccessfulDelete", "Deleted pod: %s", pod.Name)
		}
		return errors.Join(errs...)
	}
	return nil
}

// podsToDelete is upstream's getPodsToDelete: rank the pods by the number
// of active related pods (of ReplicaSets with the same controller) on
// their node and sort them with ActivePodsWithRanks.
func (r *replicaSetController) podsToDelete(rs *appsv1.ReplicaSet, pods []*corev1.Pod, n int) []*corev1.Pod {
	pods = append([]*corev1.Pod(nil), pods...)
	if n < len(pods) {
		onNode := map[string]int{}
		for _, p := range r.relatedPods(rs) {
			if isPodActive(p) {
				onNode[p.Spec.NodeName]++
			}
		}
		ranks := make([]int, len(pods))
		for i, p := range pods {
			ranks[i] = onNode[p.Spec.NodeName]
		}
		sort.Sort(activePodsWithRanks{Pods: pods, Rank: ranks, Now: metav1.NewTime(r.now())})
	}
	return pods[:n]
}

// relatedPods: the pods of every ReplicaSet controlled by the same owner
// (the Deployment), or of this ReplicaSet alone.
func (r *replicaSetController) relatedPods(rs *appsv1.ReplicaSet) []*corev1.Pod {
	related := []*appsv1.ReplicaSet{rs}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		related = nil
		for _, o := range cluster.List[*appsv1.ReplicaSet](r.store, rs.Namespace, nil) {
			if controlledBy(o, string(ref.UID)) {
				related = append(related, o)
			}
		}
	}
	seen := map[string]bool{}
	var out []*corev1.Pod
	for _, o := range related {
		sel, err := metav1.LabelSelectorAsSelector(o.Spec.Selector)
		if err != nil {
			continue
		}
		for _, p := range cluster.List[*corev1.Pod](r.store, o.Namespace, sel) {
			if !seen[string(p.UID)] {
				seen[string(p.UID)] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// slowStartBatch is upstream's: call fn count times in batches of 1, 2,
// 4, ... and stop at the first batch with an error, so that a pod the API
// refuses is not attempted a hundred times.
func slowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining, successes := count, 0
	for batch := min(remaining, initial); batch > 0; batch = min(2*batch, remaining) {
		var firstErr error
		for range batch {
			if err := fn(); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			successes++
		}
		if firstErr != nil {
			return successes, firstErr
		}
		remaining -= batch
	}
	return successes, nil
}

// calculateRSStatus is upstream's calculateStatus (replica_set_utils.go).
func calculateRSStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, manageErr error, now time.Time) appsv1.ReplicaSetStatus {
	st := *rs.Status.DeepCopy()
	tmpl := labels.Set(rs.Spec.Template.Labels).AsSelectorPreValidated()
	var active, fully, ready, available, terminating int32
	for _, p := range pods {
		if isPodTerminating(p) {
			terminating++
		}
		if !isPodActive(p) {
			continue
		}
		active++
		if tmpl.Matches(labels.Set(p.Labels)) {
			fully++
		}
		if isPodReady(p) {
			ready++
			if isPodAvailable(p, rs.Spec.MinReadySeconds, now) {
				available++
			}
		}
	}
	failure := -1
	for i, c := range st.Conditions {
		if c.Type == appsv1.ReplicaSetReplicaFailure {
			failure = i
		}
	}
	switch {
	case manageErr != nil && failure < 0:
		reason := ""
		if diff := int(active) - int(ptr.Deref(rs.Spec.Replicas, 1)); diff < 0 {
			reason = "FailedCreate"
		} else if diff > 0 {
			reason = "FailedDelete"
		}
		st.Conditions = append(st.Conditions, appsv1.ReplicaSetCondition{
			Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
			LastTransitionTime: metav1.NewTime(now), Reason: reason, Message: manageErr.Error(),
		})
	case manageErr == nil && failure >= 0:
		st.Conditions = append(st.Conditions[:failure], st.Conditions[failure+1:]...)
	}
	st.Replicas = active
	st.FullyLabeledReplicas = fully
	st.ReadyReplicas = ready
	st.AvailableReplicas = available
	st.TerminatingReplicas = ptr.To(terminating)
	st.ObservedGeneration = rs.Generation
	return st
}

func (r *replicaSetController) updateStatus(rs *appsv1.ReplicaSet, pods []*corev1.Pod, manageErr error) (*appsv1.ReplicaSet, error) {
	st := calculateRSStatus(rs, pods, manageErr, r.now())
	if apiequality.Semantic.DeepEqual(rs.Status, st) {
		return rs, nil
	}
	o, err := r.store.UpdateStatusFunc(cluster.KindReplicaSet, rs.Namespace, rs.Name, func(o cluster.Object) error {
		cur := o.(*appsv1.ReplicaSet)
		if cur.UID != rs.UID {
			return errGone
		}
		if cur.Generation != rs.Generation {
			st.ObservedGeneration = min(st.ObservedGeneration, cur.Generation)
		}
		cur.Status = st
		return nil
	})
	if errors.Is(err, errGone) || apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("updating status of ReplicaSet %s: %w", cluster.KeyOf(rs), err)
	}
	return o.(*appsv1.ReplicaSet), nil
}

// errGone aborts a read-modify-write when the object was replaced.
var errGone = errors.New("object was replaced")
