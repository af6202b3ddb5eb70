package controllers

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/switchboard-dev/switchboard/cluster"
)

// namespaceFinalizer is the finalizer the namespace lifecycle uses
// ("kubernetes", in spec.finalizers upstream). The store only knows
// metadata.finalizers, so the controller puts it in both: deleting a
// Namespace then marks it (deletionTimestamp, phase Terminating) instead
// of removing it, and the controller removes the finalizer once the
// namespace is empty.
const namespaceFinalizer = string(corev1.FinalizerKubernetes)

// contentRetry is how soon a terminating namespace is looked at again
// while objects in it (pods stopping gracefully) are still going.
const contentRetry = 500 * time.Millisecond

// namespaceController empties deleted namespaces, as
// pkg/controller/namespace does: it sets status.phase Active on live
// namespaces (with the finalizer), and for a namespace being deleted sets
// phase Terminating, deletes every namespaced object in it (owners before
// what they own: Deployments, ReplicaSets, then Pods), and removes the
// finalizer when nothing is left, which lets the store remove it. A
// namespace removed without the finalizer (deleted before the controller
// saw it) is emptied all the same.
type namespaceController struct {
	*controller
	store *cluster.Store
	rec   *cluster.Recorder

	mu      sync.Mutex
	removed map[string]bool // namespaces seen deleted whose content may remain
}

func newNamespaceController(store *cluster.Store, c *controller, rec *cluster.Recorder) *namespaceController {
	n := &namespaceController{controller: c, store: store, rec: rec, removed: map[string]bool{}}
	c.sync = n.sync
	return n
}

func (n *namespaceController) subscribe(st *cluster.Store) []*cluster.Subscription {
	h := handler{c: n.controller, initial: true, onAdd: keyOf,
		onDel: func(o cluster.Object) []string {
			n.mu.Lock()
			n.removed[o.GetName()] = true
			n.mu.Unlock()
			return keyOf(o)
		}}
	return []*cluster.Subscription{st.Subscribe(cluster.KindNamespace, h, 0)}
}

func (n *namespaceController) sync(_ context.Context, name string) error {
	ns, err := cluster.Get[*corev1.Namespace](n.store, "", name)
	if apierrors.IsNotFound(err) {
		n.mu.Lock()
		gone := n.removed[name]
		n.mu.Unlock()
		if !gone {
			return nil
		}
		left, err := n.deleteContent(name)
		if err != nil {
			return err
		}
		if left > 0 {
			n.queue.AddAfter(name, contentRetry)
			return nil
		}
		n.mu.Lock()
		delete(n.removed, name)
		n.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	n.mu.Lock()
	delete(n.removed, name)
	n.mu.Unlock()
	if ns.DeletionTimestamp == nil {
		return n.ensureActive(ns)
	}
	if ns.Status.Phase != corev1.NamespaceTerminating {
		_, err := n.store.UpdateStatusFunc(cluster.KindNamespace, "", name, func(o cluster.Object) error {
			o.(*corev1.Namespace).Status.Phase = corev1.NamespaceTerminating
			return nil
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	left, err := n.deleteContent(name)
	if err != nil {
		return err
	}
	if left > 0 {
		n.queue.AddAfter(name, contentRetry)
		return nil
	}
	n.log.Info("namespace is empty; finalizing", "namespace", name)
	_, err = n.store.UpdateFunc(cluster.KindNamespace, "", name, func(o cluster.Object) error {
		x := o.(*corev1.Namespace)
		x.Finalizers = slices.DeleteFunc(x.Finalizers, func(f string) bool { return f == namespaceFinalizer })
		x.Spec.Finalizers = slices.DeleteFunc(x.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
		return nil
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// ensureActive gives a live namespace its finalizer and phase Active.
func (n *namespaceController) ensureActive(ns *corev1.Namespace) error {
	if !slices.Contains(ns.Finalizers, namespaceFinalizer) || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		_, err := n.store.UpdateFunc(cluster.KindNamespace, "", ns.Name, func(o cluster.Object) error {
			x := o.(*corev1.Namespace)
			if x.DeletionTimestamp != nil {
				return errGone
			}
			if !slices.Contains(x.Finalizers, namespaceFinalizer) {
				x.Finalizers = append(x.Finalizers, namespaceFinalizer)
			}
			if !slices.Contains(x.Spec.Finalizers, corev1.FinalizerKubernetes) {
				x.Spec.Finalizers = append(x.Spec.Finalizers, corev1.FinalizerKubernetes)
			}
			return nil
		})
		if err != nil && !apierrors.IsNotFound(err) && !errors.Is(err, errGone) {
			return err
		}
	}
	if ns.Status.Phase != corev1.NamespaceActive {
		_, err := n.store.UpdateStatusFunc(cluster.KindNamespace, "", ns.Name, func(o cluster.Object) error {
			x := o.(*corev1.Namespace)
			if x.DeletionTimestamp != nil {
				return errGone
			}
			x.Status.Phase = corev1.NamespaceActive
			return nil
		})
		if err != nil && !apierrors.IsNotFound(err) && !errors.Is(err, errGone) {
			return err
		}
	}
	return nil
}

// deleteContent deletes every namespaced object in the namespace, in the
// store's kind order with owners (Deployment, ReplicaSet) before Pods,
// and returns how many objects are still there.
func (n *namespaceController) deleteContent(ns string) (int, error) {
	left := 0
	var errs []error
	for _, k := range cluster.Kinds {
		if !k.Namespaced {
			continue
		}
		objs, _ := n.store.List(k, ns, nil)
		for _, o := range objs {
			left++
			if o.GetDeletionTimestamp() != nil {
				continue
			}
			err := n.store.Delete(k, ns, o.GetName(), cluster.DeleteOptions{UID: o.GetUID()})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				errs = append(errs, err)
			}
		}
	}
	if left > 0 {
		// Count again: most objects went at once.
		left = 0
		for _, k := range cluster.Kinds {
			if k.Namespaced {
				objs, _ := n.store.List(k, ns, nil)
				left += len(objs)
			}
		}
	}
	return left, errors.Join(errs...)
}
