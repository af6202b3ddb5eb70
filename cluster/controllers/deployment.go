package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// deploymentController rolls Deployments out through ReplicaSets, as
// pkg/controller/deployment does (sync.go, rolling.go, recreate.go,
// progress.go): ReplicaSets named <deployment>-<pod-template-hash>,
// revisions, proportional scaling, RollingUpdate within maxSurge and
// maxUnavailable, Recreate, pause, revisionHistoryLimit and the
// Available/Progressing conditions. Rollback (the deprecated rollbackTo)
// is not supported.
//
// One guard upstream does not have: rolling and recreate decisions wait
// until every ReplicaSet's status has observed its latest spec
// (status.observedGeneration == generation), so that the pod counts they
// rely on are never from before the last scale. Upstream reads informer
// caches and accepts that race; here it would let a rollout briefly go
// below maxUnavailable or above maxSurge.
type deploymentController struct {
	*controller
	store *cluster.Store
	rec   *cluster.Recorder
	now   func() time.Time
}

func newDeploymentController(store *cluster.Store, c *controller, rec *cluster.Recorder) *deploymentController {
	d := &deploymentController{controller: c, store: store, rec: rec, now: time.Now}
	c.sync = d.sync
	return d
}

func (dc *deploymentController) subscribe(st *cluster.Store) []*cluster.Subscription {
	deps := handler{c: dc.controller, initial: true, onAdd: keyOf}
	rss := handler{c: dc.controller,
		onAdd: func(o cluster.Object) []string { return dc.deploymentKeysForRS(o.(*appsv1.ReplicaSet)) },
		onUpd: func(old, o cluster.Object) []string {
			keys := dc.deploymentKeysForRS(o.(*appsv1.ReplicaSet))
			return append(keys, dc.deploymentKeysForRS(old.(*appsv1.ReplicaSet))...)
		},
	}
	// A Recreate rollout waits for the old pods to be gone.
	pods := handler{c: dc.controller, onDel: func(o cluster.Object) []string {
		pod := o.(*corev1.Pod)
		ref := metav1.GetControllerOfNoCopy(pod)
		if ref == nil || ref.Kind != "ReplicaSet" {
			return nil
		}
		rs, err := cluster.Get[*appsv1.ReplicaSet](dc.store, pod.Namespace, ref.Name)
		if err != nil || rs.UID != ref.UID {
			return nil
		}
		return dc.deploymentKeysForRS(rs)
	}}
	return []*cluster.Subscription{
		st.Subscribe(cluster.KindDeployment, deps, 0),
		st.Subscribe(cluster.KindReplicaSet, rss, 0),
		st.Subscribe(cluster.KindPod, pods, 0),
	}
}

// deploymentKeysForRS: the controlling Deployment, or for an orphan every
// Deployment whose selector matches (to adopt it).
func (dc *deploymentController) deploymentKeysForRS(rs *appsv1.ReplicaSet) []string {
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if ref.Kind != "Deployment" {
			return nil
		}
		return []string{cluster.Key(rs.Namespace, ref.Name)}
	}
	var keys []string
	for _, d := range cluster.List[*appsv1.Deployment](dc.store, rs.Namespace, nil) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			continue
		}
		if sel.Matches(labels.Set(rs.Labels)) {
			keys = append(keys, cluster.KeyOf(d))
		}
	}
	return keys
}

func (dc *deploymentController) sync(_ context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	cur, err := cluster.Get[*appsv1.Deployment](dc.store, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	d := cur.DeepCopy()
	defaultDeployment(d)
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		dc.rec.Eventf(cur, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return dc.writeStatus(d, d.Status)
		}
		return nil
	}
	rsList, err := dc.claimReplicaSets(d, sel)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		return dc.syncStatusOnly(d, rsList)
	}
	if err := dc.checkPausedConditions(d); err != nil {
		return err
	}
	if d.Spec.Paused {
		return dc.syncScale(d, rsList)
	}
	scaling, err := dc.isScalingEvent(d, rsList)
	if err != nil {
		return err
	}
	if scaling {
		return dc.syncScale(d, rsList)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return dc.rolloutRecreate(d, rsList)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return dc.rolloutRolling(d, rsList)
	}
	return fmt.Errorf("unexpected deployment strategy type: %s", d.Spec.Strategy.Type)
}

// claimReplicaSets is upstream's getReplicaSetsForDeployment: owned
// ReplicaSets that match, plus matching orphans adopted; owned ones that
// stopped matching are released.
func (dc *deploymentController) claimReplicaSets(d *appsv1.Deployment, sel labels.Selector) ([]*appsv1.ReplicaSet, error) {
	var owned []*appsv1.ReplicaSet
	var errs []error
	for _, rs := range cluster.List[*appsv1.ReplicaSet](dc.store, d.Namespace, nil) {
		ref := metav1.GetControllerOfNoCopy(rs)
		match := sel.Matches(labels.Set(rs.Labels))
		switch {
		case ref != nil && ref.UID != d.UID:
			continue
		case ref != nil && match:
			owned = append(owned, rs)
		case ref != nil:
			if d.DeletionTimestamp != nil {
				continue
			}
			_, err := dc.store.UpdateFunc(cluster.KindReplicaSet, rs.Namespace, rs.Name, func(o cluster.Object) error {
				x := o.(*appsv1.ReplicaSet)
				refs := x.OwnerReferences[:0:0]
				for _, r := range x.OwnerReferences {
					if r.UID != d.UID {
						refs = append(refs, r)
					}
				}
				x.OwnerReferences = refs
				return nil
			})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		case match && d.DeletionTimestamp == nil && rs.DeletionTimestamp == nil:
			o, err := dc.store.UpdateFunc(cluster.KindReplicaSet, rs.Namespace, rs.Name, func(o cluster.Object) error {
				x := o.(*appsv1.ReplicaSet)
				if metav1.GetControllerOfNoCopy(x) != nil || x.UID != rs.UID {
					return errHasController
				}
				x.OwnerReferences = append(x.OwnerReferences, *metav1.NewControllerRef(d, deploymentKind))
				return nil
			})
			if err == nil {
				owned = append(owned, o.(*appsv1.ReplicaSet))
			} else if !errors.Is(err, errHasController) && !apierrors.IsNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	return owned, errors.Join(errs...)
}

// podsByReplicaSet is upstream's getPodMapForDeployment.
func (dc *deploymentController) podsByReplicaSet(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) map[types.UID][]*corev1.Pod {
	m := map[types.UID][]*corev1.Pod{}
	for _, rs := range rsList {
		m[rs.UID] = nil
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return m
	}
	for _, p := range cluster.List[*corev1.Pod](dc.store, d.Namespace, sel) {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			continue
		}
		if _, ok := m[ref.UID]; ok {
			m[ref.UID] = append(m[ref.UID], p)
		}
	}
	return m
}

// getAllReplicaSetsAndSyncRevision returns the new ReplicaSet (created
// when asked and missing) and all old ones.
func (dc *deploymentController) getAllReplicaSetsAndSyncRevision(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	_, allOld := findOldReplicaSets(d, rsList)
	newRS, err := dc.getNewReplicaSet(d, rsList, allOld, create)
	if err != nil {
		return nil, nil, err
	}
	return newRS, allOld, nil
}

// getNewReplicaSet is upstream's: sync the new ReplicaSet's revision and
// annotations, or create it as <name>-<hash> when create is set.
func (dc *deploymentController) getNewReplicaSet(d *appsv1.Deployment, rsList, oldRSs []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, error) {
	existing := findNewReplicaSet(d, rsList)
	newRevision := strconv.FormatInt(maxRevision(oldRSs)+1, 10)
	if existing != nil {
		rsCopy := existing.DeepCopy()
		annotationsUpdated := setNewReplicaSetAnnotations(d, rsCopy, newRevision, true)
		minReadyChanged := rsCopy.Spec.MinReadySeconds != d.Spec.MinReadySeconds
		if annotationsUpdated || minReadyChanged {
			o, err := dc.store.UpdateFunc(cluster.KindReplicaSet, rsCopy.Namespace, rsCopy.Name, func(o cluster.Object) error {
				x := o.(*appsv1.ReplicaSet)
				if x.UID != rsCopy.UID {
					return errGone
				}
				x.Annotations = rsCopy.Annotations
				x.Spec.MinReadySeconds = d.Spec.MinReadySeconds
				return nil
			})
			if err != nil {
				return nil, err
			}
			return o.(*appsv1.ReplicaSet), nil
		}
		if err := dc.setRevision(d, rsCopy.Annotations[RevisionAnnotation]); err != nil {
			return nil, err
		}
		if hasProgressDeadline(d) && getDeploymentCondition(d.Status, appsv1.DeploymentProgressing) == nil {
			c := newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, FoundNewRSReason, fmt.Sprintf("Found new replica set %q", rsCopy.Name))
			setDeploymentCondition(&d.Status, *c)
			if err := dc.writeStatus(d, d.Status); err != nil {
				return nil, err
			}
		}
		return rsCopy, nil
	}
	if !create {
		return nil, nil
	}
	tmpl := *d.Spec.Template.DeepCopy()
	hash := ComputeHash(&tmpl, d.Status.CollisionCount)
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	selector := d.Spec.Selector.DeepCopy()
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	rsLabels := map[string]string{}
	for k, v := range tmpl.Labels {
		rsLabels[k] = v
	}
	newRS := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, deploymentKind)},
			Labels:          rsLabels,
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        ptr.To[int32](0),
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        tmpl,
		},
	}
	n, err := newRSNewReplicas(d, append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS), newRS)
	if err != nil {
		return nil, err
	}
	newRS.Spec.Replicas = ptr.To(n)
	setNewReplicaSetAnnotations(d, newRS, newRevision, false)
	alreadyExists := false
	o, err := dc.store.Create(newRS)
	switch {
	case apierrors.IsAlreadyExists(err):
		alreadyExists = true
		rs, getErr := cluster.Get[*appsv1.ReplicaSet](dc.store, newRS.Namespace, newRS.Name)
		if getErr != nil {
			return nil, getErr
		}
		if controlledBy(rs, string(d.UID)) && equalIgnoreHash(&d.Spec.Template, &rs.Spec.Template) {
			o, err = rs, nil
			break
		}
		// A hash collision: bump collisionCount and try again.
		if d.Status.CollisionCount == nil {
			d.Status.CollisionCount = ptr.To[int32](0)
		}
		*d.Status.CollisionCount++
		if werr := dc.writeStatus(d, d.Status); werr == nil {
			dc.log.Info("hash collision for deployment; bumping collisionCount", "deployment", cluster.KeyOf(d), "collisionCount", *d.Status.CollisionCount)
		}
		return nil, err
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", newRS.Name, err)
		if hasProgressDeadline(d) {
			c := newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, FailedRSCreateReason, msg)
			setDeploymentCondition(&d.Status, *c)
			_ = dc.writeStatus(d, d.Status)
		}
		dc.rec.Eventf(d, corev1.EventTypeWarning, FailedRSCreateReason, "%s", msg)
		return nil, err
	}
	created := o.(*appsv1.ReplicaSet)
	if !alreadyExists && n > 0 {
		dc.rec.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, n)
	}
	if err := dc.setRevision(d, newRevision); err != nil {
		return nil, err
	}
	if !alreadyExists && hasProgressDeadline(d) {
		c := newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, NewReplicaSetReason, fmt.Sprintf("Created new replica set %q", created.Name))
		setDeploymentCondition(&d.Status, *c)
		if err := dc.writeStatus(d, d.Status); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// setRevision writes the revision annotation on the Deployment (upstream
// does it through the status subresource, which may change annotations;
// the store's status writes cannot, so this is a metadata update).
func (dc *deploymentController) setRevision(d *appsv1.Deployment, rev string) error {
	if rev == "" || d.Annotations[RevisionAnnotation] == rev {
		return nil
	}
	_, err := dc.store.UpdateFunc(cluster.KindDeployment, d.Namespace, d.Name, func(o cluster.Object) error {
		x := o.(*appsv1.Deployment)
		if x.UID != d.UID {
			return errGone
		}
		if x.Annotations == nil {
			x.Annotations = map[string]string{}
		}
		x.Annotations[RevisionAnnotation] = rev
		return nil
	})
	if err != nil {
		return err
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[RevisionAnnotation] = rev
	return nil
}

// writeStatus stores st as the Deployment's status (and in d).
func (dc *deploymentController) writeStatus(d *appsv1.Deployment, st appsv1.DeploymentStatus) error {
	_, err := dc.store.UpdateStatusFunc(cluster.KindDeployment, d.Namespace, d.Name, func(o cluster.Object) error {
		x := o.(*appsv1.Deployment)
		if x.UID != d.UID {
			return errGone
		}
		x.Status = *st.DeepCopy()
		return nil
	})
	if errors.Is(err, errGone) || apierrors.IsNotFound(err) {
		return nil
	}
	d.Status = st
	return err
}

// scaleReplicaSetAndRecordEvent scales rs to n (no-op when it has n).
func (dc *deploymentController) scaleReplicaSetAndRecordEvent(rs *appsv1.ReplicaSet, n int32, d *appsv1.Deployment) (bool, *appsv1.ReplicaSet, error) {
	if replicas(rs) == n {
		return false, rs, nil
	}
	op := "down"
	if replicas(rs) < n {
		op = "up"
	}
	return dc.scaleReplicaSet(rs, n, d, op)
}

func (dc *deploymentController) scaleReplicaSet(rs *appsv1.ReplicaSet, n int32, d *appsv1.Deployment, op string) (bool, *appsv1.ReplicaSet, error) {
	sizeChanged := replicas(rs) != n
	maxR := *d.Spec.Replicas + maxSurge(d)
	if !sizeChanged && !replicasAnnotationsNeedUpdate(rs, *d.Spec.Replicas, maxR) {
		return false, rs, nil
	}
	from := replicas(rs)
	o, err := dc.store.UpdateFunc(cluster.KindReplicaSet, rs.Namespace, rs.Name, func(o cluster.Object) error {
		x := o.(*appsv1.ReplicaSet)
		if x.UID != rs.UID {
			return errGone
		}
		x.Spec.Replicas = ptr.To(n)
		setReplicasAnnotations(x, *d.Spec.Replicas, maxR)
		return nil
	})
	if err != nil {
		return false, rs, err
	}
	updated := o.(*appsv1.ReplicaSet)
	if sizeChanged {
		dc.log.Info("scaled replica set", "deployment", cluster.KeyOf(d), "replicaset", rs.Name, "from", from, "to", n)
		dc.rec.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled %s replica set %s from %d to %d", op, rs.Name, from, n)
	}
	return sizeChanged, updated, nil
}

// isScalingEvent: some active ReplicaSet was sized for another replica
// count (its desired-replicas annotation differs).
func (dc *deploymentController) isScalingEvent(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) (bool, error) {
	newRS, oldRSs, err := dc.getAllReplicaSetsAndSyncRevision(d, rsList, false)
	if err != nil {
		return false, err
	}
	for _, rs := range filterActiveReplicaSets(append(oldRSs, newRS)) {
		desired, ok := intAnnotation(rs, DesiredReplicasAnnotation)
		if ok && desired != *d.Spec.Replicas {
			return true, nil
		}
	}
	return false, nil
}

// syncScale is upstream's sync(): reconcile a scaling event or a paused
// Deployment without rolling.
func (dc *deploymentController) syncScale(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := dc.getAllReplicaSetsAndSyncRevision(d, rsList, false)
	if err != nil {
		return err
	}
	if err := dc.scale(d, newRS, oldRSs); err != nil {
		return err
	}
	if d.Spec.Paused {
		if err := dc.cleanupDeployment(oldRSs, d); err != nil {
			return err
		}
	}
	return dc.syncDeploymentStatus(append(oldRSs, newRS), newRS, d)
}

func (dc *deploymentController) syncStatusOnly(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := dc.getAllReplicaSetsAndSyncRevision(d, rsList, false)
	if err != nil {
		return err
	}
	return dc.syncDeploymentStatus(append(oldRSs, newRS), newRS, d)
}

// scale is upstream's proportional scaling.
func (dc *deploymentController) scale(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet) error {
	if rs := findActiveOrLatest(newRS, oldRSs); rs != nil {
		if replicas(rs) == *d.Spec.Replicas {
			return nil
		}
		_, _, err := dc.scaleReplicaSetAndRecordEvent(rs, *d.Spec.Replicas, d)
		return err
	}
	if isSaturated(d, newRS) {
		for _, old := range filterActiveReplicaSets(oldRSs) {
			if _, _, err := dc.scaleReplicaSetAndRecordEvent(old, 0, d); err != nil {
				return err
			}
		}
		return nil
	}
	if !isRollingUpdate(d) {
		return nil
	}
	all := filterActiveReplicaSets(append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS))
	allReplicas := specReplicaCount(all)
	allowed := int32(0)
	if *d.Spec.Replicas > 0 {
		allowed = *d.Spec.Replicas + maxSurge(d)
	}
	toAdd := allowed - allReplicas
	op := ""
	switch {
	case toAdd > 0:
		sort.Sort(rsBySizeNewer(all))
		op = "up"
	case toAdd < 0:
		sort.Sort(rsBySizeOlder(all))
		op = "down"
	}
	added := int32(0)
	size := map[string]int32{}
	for _, rs := range all {
		if toAdd != 0 {
			p := getProportion(rs, d, toAdd, added)
			size[rs.Name] = replicas(rs) + p
			added += p
		} else {
			size[rs.Name] = replicas(rs)
		}
	}
	for i, rs := range all {
		if i == 0 && toAdd != 0 {
			size[rs.Name] = max(size[rs.Name]+toAdd-added, 0)
		}
		if _, _, err := dc.scaleReplicaSet(rs, size[rs.Name], d, op); err != nil {
			return err
		}
	}
	return nil
}

// cleanupDeployment deletes the oldest old ReplicaSets beyond
// revisionHistoryLimit that have no replicas.
func (dc *deploymentController) cleanupDeployment(oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment) error {
	if !hasRevisionHistoryLimit(d) {
		return nil
	}
	var cleanable []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs != nil && rs.DeletionTimestamp == nil {
			cleanable = append(cleanable, rs)
		}
	}
	diff := int32(len(cleanable)) - *d.Spec.RevisionHistoryLimit
	if diff <= 0 {
		return nil
	}
	sort.Sort(rsByRevision(cleanable))
	for i := int32(0); i < diff; i++ {
		rs := cleanable[i]
		if rs.Status.Replicas != 0 || replicas(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration || rs.DeletionTimestamp != nil {
			continue
		}
		dc.log.Info("cleaning up old replica set", "deployment", cluster.KeyOf(d), "replicaset", rs.Name)
		if err := dc.store.Delete(cluster.KindReplicaSet, rs.Namespace, rs.Name, cluster.DeleteOptions{UID: rs.UID}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// calculateStatus is upstream's (sync.go).
func calculateStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) appsv1.DeploymentStatus {
	available := availableReplicaCount(all)
	unavailable := max(specReplicaCount(all)-available, 0)
	st := appsv1.DeploymentStatus{
		ObservedGeneration:  d.Generation,
		Replicas:            actualReplicaCount(all),
		UpdatedReplicas:     actualReplicaCount([]*appsv1.ReplicaSet{newRS}),
		ReadyReplicas:       readyReplicaCount(all),
		AvailableReplicas:   available,
		UnavailableReplicas: unavailable,
		TerminatingReplicas: terminatingReplicaCount(all),
		CollisionCount:      d.Status.CollisionCount,
	}
	st.Conditions = append(st.Conditions, d.Status.Conditions...)
	if available >= *d.Spec.Replicas-maxUnavailable(d) {
		setDeploymentCondition(&st, *newDeploymentCondition(appsv1.DeploymentAvailable, corev1.ConditionTrue, MinimumReplicasAvailable, "Deployment has minimum availability."))
	} else {
		setDeploymentCondition(&st, *newDeploymentCondition(appsv1.DeploymentAvailable, corev1.ConditionFalse, MinimumReplicasUnavailable, "Deployment does not have minimum availability."))
	}
	return st
}

func (dc *deploymentController) syncDeploymentStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) error {
	st := calculateStatus(all, newRS, d)
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		return nil
	}
	return dc.writeStatus(d, st)
}

// checkPausedConditions is upstream's: a Progressing condition with
// reason DeploymentPaused / DeploymentResumed.
func (dc *deploymentController) checkPausedConditions(d *appsv1.Deployment) error {
	if !hasProgressDeadline(d) {
		return nil
	}
	cond := getDeploymentCondition(d.Status, appsv1.DeploymentProgressing)
	if cond != nil && cond.Reason == TimedOutReason {
		return nil
	}
	pausedExists := cond != nil && cond.Reason == PausedDeployReason
	switch {
	case d.Spec.Paused && !pausedExists:
		setDeploymentCondition(&d.Status, *newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, PausedDeployReason, "Deployment is paused"))
	case !d.Spec.Paused && pausedExists:
		setDeploymentCondition(&d.Status, *newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionUnknown, ResumedDeployReason, "Deployment is resumed"))
	default:
		return nil
	}
	return dc.writeStatus(d, d.Status)
}

// syncRolloutStatus is upstream's (progress.go): status plus the
// Progressing condition, and a requeue when a rollout may time out.
func (dc *deploymentController) syncRolloutStatus(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) error {
	st := calculateStatus(all, newRS, d)
	if !hasProgressDeadline(d) {
		removeDeploymentCondition(&st, appsv1.DeploymentProgressing)
	}
	cur := getDeploymentCondition(d.Status, appsv1.DeploymentProgressing)
	complete := st.Replicas == st.UpdatedReplicas && cur != nil && cur.Reason == NewRSAvailableReason
	if hasProgressDeadline(d) && !complete {
		switch {
		case deploymentComplete(d, &st):
			msg := fmt.Sprintf("Deployment %q has successfully progressed.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has successfully progressed.", newRS.Name)
			}
			setDeploymentCondition(&st, *newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, NewRSAvailableReason, msg))
		case deploymentProgressing(d, &st):
			msg := fmt.Sprintf("Deployment %q is progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q is progressing.", newRS.Name)
			}
			c := newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReplicaSetUpdatedReason, msg)
			if cur != nil {
				if cur.Status == corev1.ConditionTrue {
					c.LastTransitionTime = cur.LastTransitionTime
				}
				removeDeploymentCondition(&st, appsv1.DeploymentProgressing)
			}
			setDeploymentCondition(&st, *c)
		case deploymentTimedOut(d, &st, dc.now()):
			msg := fmt.Sprintf("Deployment %q has timed out progressing.", d.Name)
			if newRS != nil {
				msg = fmt.Sprintf("ReplicaSet %q has timed out progressing.", newRS.Name)
			}
			setDeploymentCondition(&st, *newDeploymentCondition(appsv1.DeploymentProgressing, corev1.ConditionFalse, TimedOutReason, msg))
		}
	}
	// ReplicaFailure conditions of the ReplicaSets surface on the Deployment.
	if c := replicaFailure(all, newRS); c != nil {
		setDeploymentCondition(&st, *c)
	} else {
		removeDeploymentCondition(&st, appsv1.DeploymentReplicaFailure)
	}
	if apiequality.Semantic.DeepEqual(d.Status, st) {
		dc.requeueStuckDeployment(d, st)
		return nil
	}
	return dc.writeStatus(d, st)
}

func replicaFailure(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) *appsv1.DeploymentCondition {
	conv := func(c appsv1.ReplicaSetCondition) *appsv1.DeploymentCondition {
		return &appsv1.DeploymentCondition{Type: appsv1.DeploymentConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, LastUpdateTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message}
	}
	if newRS != nil {
		for _, c := range newRS.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return conv(c)
			}
		}
		return nil
	}
	for _, rs := range all {
		if rs == nil {
			continue
		}
		for _, c := range rs.Status.Conditions {
			if c.Type == appsv1.ReplicaSetReplicaFailure {
				return conv(c)
			}
		}
	}
	return nil
}

// requeueStuckDeployment looks at a rollout again when its progress
// deadline may have passed.
func (dc *deploymentController) requeueStuckDeployment(d *appsv1.Deployment, st appsv1.DeploymentStatus) {
	cur := getDeploymentCondition(d.Status, appsv1.DeploymentProgressing)
	if !hasProgressDeadline(d) || cur == nil || deploymentComplete(d, &st) || cur.Reason == TimedOutReason {
		return
	}
	// Upstream requeues rate-limited when less than a second is left,
	// which spins (the successful sync resets the back-off); a delay of
	// the time left plus a second is enough.
	after := cur.LastUpdateTime.Add(time.Duration(*d.Spec.ProgressDeadlineSeconds) * time.Second).Sub(dc.now())
	dc.queue.AddAfter(cluster.KeyOf(d), max(after, 0)+time.Second)
}

// allObserved: every ReplicaSet's status reflects its latest spec.
func allObserved(rss []*appsv1.ReplicaSet) bool {
	for _, rs := range rss {
		if rs != nil && rs.Status.ObservedGeneration < rs.Generation {
			return false
		}
	}
	return true
}

// rolloutRolling is upstream's (rolling.go).
func (dc *deploymentController) rolloutRolling(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	// Wait for the ReplicaSet controller (its status write requeues us)
	// before creating or scaling anything.
	newRS, oldRSs, err := dc.getAllReplicaSetsAndSyncRevision(d, rsList, allObserved(rsList))
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	if newRS == nil || !allObserved(all) {
		return dc.syncRolloutStatus(all, newRS, d)
	}
	scaledUp, err := dc.reconcileNewReplicaSet(all, newRS, d)
	if err != nil {
		return err
	}
	if scaledUp {
		return dc.syncRolloutStatus(all, newRS, d)
	}
	scaledDown, err := dc.reconcileOldReplicaSets(all, filterActiveReplicaSets(oldRSs), newRS, d)
	if err != nil {
		return err
	}
	if scaledDown {
		return dc.syncRolloutStatus(all, newRS, d)
	}
	if deploymentComplete(d, &d.Status) {
		if err := dc.cleanupDeployment(oldRSs, d); err != nil {
			return err
		}
	}
	return dc.syncRolloutStatus(all, newRS, d)
}

func (dc *deploymentController) reconcileNewReplicaSet(all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	if replicas(newRS) == *d.Spec.Replicas {
		return false, nil
	}
	if replicas(newRS) > *d.Spec.Replicas {
		scaled, _, err := dc.scaleReplicaSetAndRecordEvent(newRS, *d.Spec.Replicas, d)
		return scaled, err
	}
	n, err := newRSNewReplicas(d, all, newRS)
	if err != nil {
		return false, err
	}
	scaled, _, err := dc.scaleReplicaSetAndRecordEvent(newRS, n, d)
	return scaled, err
}

func (dc *deploymentController) reconcileOldReplicaSets(all, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment) (bool, error) {
	if specReplicaCount(oldRSs) == 0 {
		return false, nil
	}
	allPods := specReplicaCount(all)
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	newUnavailable := replicas(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := allPods - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	// Clean up unhealthy replicas first, otherwise they block the rollout
	// (kubernetes#16737).
	oldRSs, cleaned, err := dc.cleanupUnhealthyReplicas(oldRSs, d, maxScaledDown)
	if err != nil {
		return false, nil
	}
	all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	scaledDown, err := dc.scaleDownOldReplicaSetsForRollingUpdate(all, oldRSs, d)
	if err != nil {
		return false, nil
	}
	return cleaned+scaledDown > 0, nil
}

func (dc *deploymentController) cleanupUnhealthyReplicas(oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, maxCleanup int32) ([]*appsv1.ReplicaSet, int32, error) {
	sort.Sort(rsByCreationTimestamp(oldRSs))
	var total int32
	for i, rs := range oldRSs {
		if total >= maxCleanup {
			break
		}
		if replicas(rs) == 0 || replicas(rs) == rs.Status.AvailableReplicas {
			continue
		}
		down := min(maxCleanup-total, replicas(rs)-rs.Status.AvailableReplicas)
		n := replicas(rs) - down
		if n > replicas(rs) {
			return nil, 0, fmt.Errorf("when cleaning up unhealthy replicas, got invalid request to scale down %s/%s %d -> %d", rs.Namespace, rs.Name, replicas(rs), n)
		}
		_, updated, err := dc.scaleReplicaSetAndRecordEvent(rs, n, d)
		if err != nil {
			return nil, total, err
		}
		total += down
		oldRSs[i] = updated
	}
	return oldRSs, total, nil
}

func (dc *deploymentController) scaleDownOldReplicaSetsForRollingUpdate(all, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment) (int32, error) {
	minAvailable := *d.Spec.Replicas - maxUnavailable(d)
	available := availableReplicaCount(all)
	if available <= minAvailable {
		return 0, nil
	}
	sort.Sort(rsByCreationTimestamp(oldRSs))
	var total int32
	want := available - minAvailable
	for _, rs := range oldRSs {
		if total >= want {
			break
		}
		if replicas(rs) == 0 {
			continue
		}
		down := min(replicas(rs), want-total)
		n := replicas(rs) - down
		if n > replicas(rs) {
			return 0, fmt.Errorf("when scaling down old RS, got invalid request to scale down %s/%s %d -> %d", rs.Namespace, rs.Name, replicas(rs), n)
		}
		if _, _, err := dc.scaleReplicaSetAndRecordEvent(rs, n, d); err != nil {
			return total, err
		}
		total += down
	}
	return total, nil
}

// rolloutRecreate is upstream's (recreate.go): scale the old ReplicaSets
// to zero, wait until none of their pods runs, then scale up the new one.
func (dc *deploymentController) rolloutRecreate(d *appsv1.Deployment, rsList []*appsv1.ReplicaSet) error {
	newRS, oldRSs, err := dc.getAllReplicaSetsAndSyncRevision(d, rsList, false)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	scaledDown := false
	for _, rs := range filterActiveReplicaSets(oldRSs) {
		scaled, _, err := dc.scaleReplicaSetAndRecordEvent(rs, 0, d)
		if err != nil {
			return err
		}
		scaledDown = scaledDown || scaled
	}
	if scaledDown || !allObserved(all) {
		return dc.syncRolloutStatus(all, newRS, d)
	}
	if oldPodsRunning(newRS, oldRSs, dc.podsByReplicaSet(d, rsList)) {
		return dc.syncRolloutStatus(all, newRS, d)
	}
	if newRS == nil {
		newRS, oldRSs, err = dc.getAllReplicaSetsAndSyncRevision(d, rsList, true)
		if err != nil {
			return err
		}
		all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	}
	if _, _, err := dc.scaleReplicaSetAndRecordEvent(newRS, *d.Spec.Replicas, d); err != nil {
		return err
	}
	if deploymentComplete(d, &d.Status) {
		if err := dc.cleanupDeployment(oldRSs, d); err != nil {
			return err
		}
	}
	return dc.syncRolloutStatus(all, newRS, d)
}

// oldPodsRunning: an old ReplicaSet still has replicas, or one of its
// pods is not in a terminal phase (terminating pods still run).
func oldPodsRunning(newRS *appsv1.ReplicaSet, oldRSs []*appsv1.ReplicaSet, pods map[types.UID][]*corev1.Pod) bool {
	if actualReplicaCount(oldRSs) > 0 {
		return true
	}
	for uid, list := range pods {
		if newRS != nil && newRS.UID == uid {
			continue
		}
		for _, p := range list {
			if !isPodTerminal(p) {
				return true
			}
		}
	}
	return false
}
