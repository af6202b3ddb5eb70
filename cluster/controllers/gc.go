package controllers

import (
	"context"
	"errors"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
)

// garbageCollector deletes objects whose owners are gone, as
// pkg/controller/garbagecollector does for background cascading deletion:
// an object all of whose ownerReferences point to absent owners (not
// found, or found with another UID) is deleted; one with some absent
// owners loses those references. Owners of kinds the store does not hold
// cannot be verified and count as present. Every object is checked when
// the collector starts, and dependents again whenever an owner goes.
// Foreground deletion and the orphan finalizer are not implemented.
type garbageCollector struct {
	*controller
	store *cluster.Store
	rec   *cluster.Recorder

	mu         sync.Mutex
	dependents map[types.UID]map[string]bool // owner uid -> dependent keys
	ownersOf   map[string][]types.UID        // dependent key -> owner uids
}

func newGarbageCollector(store *cluster.Store, c *controller, rec *cluster.Recorder) *garbageCollector {
	g := &garbageCollector{controller: c, store: store, rec: rec,
		dependents: map[types.UID]map[string]bool{}, ownersOf: map[string][]types.UID{}}
	c.sync = g.sync
	return g
}

// gcKey names an object of any kind: "Kind/namespace/name".
func gcKey(k *cluster.Kind, o cluster.Object) string {
	return k.Name() + "/" + o.GetNamespace() + "/" + o.GetName()
}

func (g *garbageCollector) subscribe(st *cluster.Store) []*cluster.Subscription {
	var subs []*cluster.Subscription
	for _, k := range cluster.Kinds {
		if k == cluster.KindEvent {
			continue
		}
		h := handler{c: g.controller, initial: true,
			onAdd: func(o cluster.Object) []string {
				key := gcKey(k, o)
				g.index(key, o.GetOwnerReferences())
				if len(o.GetOwnerReferences()) > 0 {
					return []string{key}
				}
				return nil
			},
			onUpd: func(old, o cluster.Object) []string {
				key := gcKey(k, o)
				g.index(key, o.GetOwnerReferences())
				var keys []string
				if !ownerUIDsEqual(old.GetOwnerReferences(), o.GetOwnerReferences()) && len(o.GetOwnerReferences()) > 0 {
					keys = append(keys, key)
				}
				// An owner that has just been marked for deletion is
				// still present: nothing to do until it is removed.
				return keys
			},
			onDel: func(o cluster.Object) []string {
				g.index(gcKey(k, o), nil)
				return g.dependentsOf(o.GetUID())
			},
		}
		subs = append(subs, st.Subscribe(k, h, 0))
	}
	return subs
}

func ownerUIDsEqual(a, b []metav1.OwnerReference) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].UID != b[i].UID {
			return false
		}
	}
	return true
}

func (g *garbageCollector) index(key string, refs []metav1.OwnerReference) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, uid := range g.ownersOf[key] {
		if d := g.dependents[uid]; d != nil {
			delete(d, key)
			if len(d) == 0 {
				delete(g.dependents, uid)
			}
		}
	}
	delete(g.ownersOf, key)
	for _, r := range refs {
		if g.dependents[r.UID] == nil {
			g.dependents[r.UID] = map[string]bool{}
		}
		g.dependents[r.UID][key] = true
		g.ownersOf[key] = append(g.ownersOf[key], r.UID)
	}
}

func (g *garbageCollector) dependentsOf(uid types.UID) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var keys []string
	for k := range g.dependents[uid] {
		keys = append(keys, k)
	}
	return keys
}

func lookupKind(name string) *cluster.Kind {
	for _, k := range cluster.Kinds {
		if k.Name() == name {
			return k
		}
	}
	return nil
}

// ownerPresent: the owner exists with the UID the reference names; an
// owner of a kind the store does not hold counts as present.
func (g *garbageCollector) ownerPresent(dependent cluster.Object, ref metav1.OwnerReference) bool {
	k := cluster.LookupGVK(ref.APIVersion, ref.Kind)
	if k == nil {
		return true
	}
	ns := ""
	if k.Namespaced {
		ns = dependent.GetNamespace()
		if ns == "" {
			// A cluster-scoped dependent cannot have a namespaced owner.
			return false
		}
	}
	owner, err := g.store.Get(k, ns, ref.Name)
	if err != nil {
		return !apierrors.IsNotFound(err)
	}
	return owner.GetUID() == ref.UID
}

var errOwnersChanged = errors.New("owner references changed")

func (g *garbageCollector) sync(_ context.Context, key string) error {
	kindName, rest, _ := strings.Cut(key, "/")
	ns, name, _ := strings.Cut(rest, "/")
	k := lookupKind(kindName)
	if k == nil {
		return nil
	}
	obj, err := g.store.Get(k, ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	refs := obj.GetOwnerReferences()
	if len(refs) == 0 {
		return nil
	}
	var absent []types.UID
	for _, r := range refs {
		if !g.ownerPresent(obj, r) {
			absent = append(absent, r.UID)
		}
	}
	switch {
	case len(absent) == 0:
		return nil
	case len(absent) == len(refs):
		if obj.GetDeletionTimestamp() != nil {
			return nil // already being deleted
		}
		g.log.Info("deleting object whose owners are gone", "object", cluster.Describe(obj))
		err := g.store.Delete(k, ns, name, cluster.DeleteOptions{UID: obj.GetUID()})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		return nil
	default:
		// Remove the dangling references, keep the object.
		gone := map[types.UID]bool{}
		for _, u := range absent {
			gone[u] = true
		}
		_, err := g.store.UpdateFunc(k, ns, name, func(o cluster.Object) error {
			if o.GetUID() != obj.GetUID() {
				return errOwnersChanged
			}
			var keep []metav1.OwnerReference
			for _, r := range o.GetOwnerReferences() {
				if !gone[r.UID] {
					keep = append(keep, r)
				}
			}
			o.SetOwnerReferences(keep)
			return nil
		})
		if err != nil && !apierrors.IsNotFound(err) && !errors.Is(err, errOwnersChanged) {
			return err
		}
		return nil
	}
}
