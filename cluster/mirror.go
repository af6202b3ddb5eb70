package cluster

import (
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/watch"
)

// Mirror stores a copy of obj as another source of truth holds it (a real
// API server's object, through an informer): created or replaced whole,
// with its uid, timestamps, generation, finalizers and status as given and
// only the resourceVersion the store's own. It skips admission (the source
// admitted it) but applies the kind's transform. A copy equal to the stored
// object (resourceVersion aside) changes nothing and sends no event. The
// returned bool is true when the object was created.
func (s *Store) Mirror(obj Object) (Object, bool, error) {
	k, err := kindFor(obj)
	if err != nil {
		return nil, false, err
	}
	o := copyObject(k, obj)
	if !k.Namespaced {
		o.SetNamespace("")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transformLocked(k, o)
	key := KeyOf(o)
	cur, exists := s.objects[k][key]
	if exists {
		o.SetResourceVersion(cur.GetResourceVersion())
		if apiequality.Semantic.DeepEqual(o, cur) {
			return cur, false, nil
		}
	}
	rv, rvs := s.nextRV()
	o.SetResourceVersion(rvs)
	s.putLocked(k, key, o)
	if exists {
		s.publish(Event{Type: watch.Modified, Kind: k, Object: o, Old: cur, ResourceVersion: rv})
	} else {
		s.publish(Event{Type: watch.Added, Kind: k, Object: o, ResourceVersion: rv})
	}
	return o, !exists, nil
}

// Unmirror removes an object at once, whatever its finalizers or grace
// period: the other source of truth has already deleted it. A missing
// object gives NotFound.
func (s *Store) Unmirror(k *Kind, namespace, name string) error {
	if !k.Namespaced {
		namespace = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := Key(namespace, name)
	cur, ok := s.objects[k][key]
	if !ok {
		return notFound(k, name)
	}
	return s.removeLocked(k, key, cur)
}
