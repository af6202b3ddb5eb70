// Package cluster owns the single source of truth of a Switchboard node:
// the Store of typed Kubernetes objects (k8s.io/api types), with list and
// watch semantics like the API server's (resourceVersion, ADDED/MODIFIED/
// DELETED events, informer-style subscriptions with an initial list and
// resync). Sources fill it (manifest files in cluster/manifests, the
// Kubernetes API later); components subscribe to it and write status back
// through it. Nothing in this package knows which source filled it or
// which component reads it.
package cluster

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	corev1 "k8s.io/api/core/v1"
)

// Event is one change in the store. Old is set for Modified and Deleted
// (for Deleted it is the object as it was last stored; Object is the same
// object with the deletion's resourceVersion).
type Event struct {
	Type            watch.EventType
	Kind            *Kind
	Object          Object
	Old             Object
	ResourceVersion uint64

	barrier chan struct{} // Subscription.Barrier's marker: no object
}

// historySize bounds how far back a watch may start (older resource
// versions answer 410 Gone, as an API server after compaction).
const historySize = 20000

// Store holds objects of every kind in Kinds. Objects returned by Get and
// List are shared with the store and with every other reader: treat them as
// read-only (DeepCopy before changing), exactly as with a client-go
// informer cache. Writes copy their input.
type Store struct {
	now func() time.Time

	mu      sync.RWMutex
	rv      uint64
	objects map[*Kind]map[string]Object
	// byNS indexes objects by namespace then name, so that listing one
	// namespace costs what it holds, not the whole kind (as an
	// informer's namespace index).
	byNS    map[*Kind]map[string]map[string]Object
	history []Event // ring, oldest first once full
	histPos int
	subs    map[*subscriber]struct{}
	admit   []AdmitFunc
	trans   map[*Kind]TransformFunc
}

// TransformFunc trims the store's own copy of an object before it is
// stored, as client-go's cache.TransformFunc (SharedInformer.SetTransform)
// trims what an informer caches: a process that holds objects for one
// reader only keeps what that reader needs. It changes obj in place and
// must be idempotent (the stored object may come back through Update); it
// must leave the name, namespace and the metadata the store manages (uid,
// resourceVersion, generation, timestamps) alone. It runs under the
// store's lock, after admission (which sees the object as written, and the
// stored, trimmed one as old), and must be quick and never call the store.
type TransformFunc func(obj Object)

// SetTransform makes the store apply f to every object of kind k it
// stores from now on (Create, Update, Apply, UpdateStatus and the Func
// forms); nil removes it. Readers then see the trimmed objects: use it
// only where every reader of the store, admission included, needs no
// more than f keeps. Call before writes begin.
func (s *Store) SetTransform(k *Kind, f TransformFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		delete(s.trans, k)
		return
	}
	if s.trans == nil {
		s.trans = map[*Kind]TransformFunc{}
	}
	s.trans[k] = f
}

func (s *Store) transformLocked(k *Kind, o Object) {
	if f := s.trans[k]; f != nil {
		f(o)
	}
}

// Operation names a write for admission.
type Operation string

// The operations an AdmitFunc sees.
const (
	OpCreate Operation = "CREATE"
	OpUpdate Operation = "UPDATE"
	OpDelete Operation = "DELETE"
)

// AdmitFunc is one step of the store's admission chain, the way an API
// server runs defaulting, allocation and validation on every write,
// whichever client makes it. For OpCreate and OpUpdate, obj is the store's
// own copy of the incoming object and may be changed (defaults, allocated
// addresses); old is the stored object (nil on create). For OpDelete, obj
// is nil and old is the object being removed for good (a returned error is
// logged by nobody and ignored: deletions always happen). Status-only
// writes skip admission. An AdmitFunc runs under the store's lock: it must
// be quick and must never call the store.
type AdmitFunc func(op Operation, obj, old Object) error

// Use appends steps to the admission chain. Call before writes begin.
func (s *Store) Use(steps ...AdmitFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admit = append(s.admit, steps...)
}

func (s *Store) admitLocked(op Operation, obj, old Object) error {
	for _, a := range s.admit {
		if err := a(op, obj, old); err != nil {
			return err
		}
	}
	return nil
}

// NewStore returns an empty store.
func NewStore() *Store {
	s := &Store{
		now:     time.Now,
		objects: map[*Kind]map[string]Object{},
		byNS:    map[*Kind]map[string]map[string]Object{},
		subs:    map[*subscriber]struct{}{},
	}
	for _, k := range Kinds {
		s.objects[k] = map[string]Object{}
		s.byNS[k] = map[string]map[string]Object{}
	}
	return s
}

// ResourceVersion is the store's current resource version.
func (s *Store) ResourceVersion() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return strconv.FormatUint(s.rv, 10)
}

func kindFor(obj Object) (*Kind, error) {
	k := KindOf(obj)
	if k == nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the store holds no objects of type %T", obj))
	}
	return k, nil
}

func notFound(k *Kind, name string) error {
	return apierrors.NewNotFound(k.GVK.GroupVersion().WithResource(k.Resource).GroupResource(), name)
}

// Get returns the stored object (shared: read-only) or a NotFound error.
func (s *Store) Get(k *Kind, namespace, name string) (Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.objects[k][Key(namespace, name)]
	if !ok {
		return nil, notFound(k, name)
	}
	return o, nil
}

// List returns the objects of a kind in a namespace ("" for all) matching
// the selector (nil for all), sorted by namespace and name, and the store's
// resource version at the time of the list. Objects are shared: read-only.
func (s *Store) List(k *Kind, namespace string, sel labels.Selector) ([]Object, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.listLocked(k, namespace, sel), strconv.FormatUint(s.rv, 10)
}

func (s *Store) listLocked(k *Kind, namespace string, sel labels.Selector) []Object {
	// Sorted by key (namespace/name); within one namespace that is by
	// name. The keys sort alongside, so no key is built per comparison.
	objs := s.objects[k]
	if namespace != "" {
		objs = s.byNS[k][namespace]
	}
	type keyed struct {
		key string
		obj Object
	}
	matched := make([]keyed, 0, len(objs))
	for key, o := range objs {
		if sel != nil && !sel.Matches(labels.Set(o.GetLabels())) {
			continue
		}
		matched = append(matched, keyed{key, o})
	}
	sort.Slice(matched, func(i, j int) bool { return matched[i].key < matched[j].key })
	out := make([]Object, len(matched))
	for i := range matched {
		out[i] = matched[i].obj
	}
	return out
}

// putLocked stores o under key (its namespace/name) in both indexes.
func (s *Store) putLocked(k *Kind, key string, o Object) {
	s.objects[k][key] = o
	ns := o.GetNamespace()
	m := s.byNS[k][ns]
	if m == nil {
		m = map[string]Object{}
		s.byNS[k][ns] = m
	}
	m[o.GetName()] = o
}

// dropLocked removes cur, stored under key, from both indexes.
func (s *Store) dropLocked(k *Kind, key string, cur Object) {
	delete(s.objects[k], key)
	ns := cur.GetNamespace()
	if m := s.byNS[k][ns]; m != nil {
		delete(m, cur.GetName())
		if len(m) == 0 {
			delete(s.byNS[k], ns)
		}
	}
}

// Get is the typed form of Store.Get: cluster.Get[*corev1.Pod](s, ns, name).
func Get[T Object](s *Store, namespace, name string) (T, error) {
	var zero T
	k := KindOf(zero)
	if k == nil {
		return zero, fmt.Errorf("the store holds no objects of type %T", zero)
	}
	o, err := s.Get(k, namespace, name)
	if err != nil {
		return zero, err
	}
	return o.(T), nil
}

// List is the typed form of Store.List.
func List[T Object](s *Store, namespace string, sel labels.Selector) []T {
	var zero T
	k := KindOf(zero)
	if k == nil {
		return nil
	}
	objs, _ := s.List(k, namespace, sel)
	out := make([]T, len(objs))
	for i, o := range objs {
		out[i] = o.(T)
	}
	return out
}

func copyObject(k *Kind, obj Object) Object {
	c := obj.DeepCopyObject().(Object)
	c.GetObjectKind().SetGroupVersionKind(k.GVK)
	return c
}

func (s *Store) nextRV() (uint64, string) {
	s.rv++
	return s.rv, strconv.FormatUint(s.rv, 10)
}

// Create stores a new object. Name may be left empty when GenerateName is
// set. It sets uid, creationTimestamp, generation and resourceVersion, and
// returns the stored object. An existing object gives AlreadyExists.
func (s *Store) Create(obj Object) (Object, error) {
	k, err := kindFor(obj)
	if err != nil {
		return nil, err
	}
	o := copyObject(k, obj)
	if k.Namespaced && o.GetNamespace() == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s %q: the namespace is not set", k.Name(), o.GetName()))
	}
	if !k.Namespaced {
		o.SetNamespace("")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.GetName() == "" {
		if o.GetGenerateName() == "" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s: name or generateName is required", k.Name()))
		}
		for {
			o.SetName(o.GetGenerateName() + utilrand.String(5))
			if _, taken := s.objects[k][KeyOf(o)]; !taken {
				break
			}
		}
	}
	key := KeyOf(o)
	if _, ok := s.objects[k][key]; ok {
		return nil, apierrors.NewAlreadyExists(k.GVK.GroupVersion().WithResource(k.Resource).GroupResource(), o.GetName())
	}
	if err := s.admitLocked(OpCreate, o, nil); err != nil {
		return nil, err
	}
	if KeyOf(o) != key {
		return nil, apierrors.NewBadRequest("admission may not change an object's name or namespace")
	}
	s.transformLocked(k, o)
	if KeyOf(o) != key {
		return nil, apierrors.NewBadRequest("a transform may not change an object's name or namespace")
	}
	o.SetUID(uuid.NewUUID())
	o.SetCreationTimestamp(metav1.NewTime(s.now()))
	o.SetDeletionTimestamp(nil)
	o.SetGeneration(1)
	rv, rvs := s.nextRV()
	o.SetResourceVersion(rvs)
	s.putLocked(k, key, o)
	s.publish(Event{Type: watch.Added, Kind: k, Object: o, ResourceVersion: rv})
	return o, nil
}

// statusOf returns the Status field of an object, if its type has one.
func statusOf(o Object) (reflect.Value, bool) {
	v := reflect.ValueOf(o).Elem().FieldByName("Status")
	return v, v.IsValid()
}

// specEqual compares everything but metadata and status.
func specEqual(a, b Object) bool {
	ac, bc := a.DeepCopyObject().(Object), b.DeepCopyObject().(Object)
	for _, c := range []Object{ac, bc} {
		reflect.ValueOf(c).Elem().FieldByName("ObjectMeta").Set(reflect.ValueOf(metav1.ObjectMeta{}))
		reflect.ValueOf(c).Elem().FieldByName("TypeMeta").Set(reflect.ValueOf(metav1.TypeMeta{}))
		if st, ok := statusOf(c); ok {
			st.Set(reflect.Zero(st.Type()))
		}
	}
	return apiequality.Semantic.DeepEqual(ac, bc)
}

func checkRV(k *Kind, in, cur Object) error {
	if rv := in.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
		return apierrors.NewConflict(k.GVK.GroupVersion().WithResource(k.Resource).GroupResource(), in.GetName(),
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	if uid := in.GetUID(); uid != "" && uid != cur.GetUID() {
		return apierrors.NewConflict(k.GVK.GroupVersion().WithResource(k.Resource).GroupResource(), in.GetName(),
			fmt.Errorf("precondition failed: UID in object meta: %s does not match stored UID %s", uid, cur.GetUID()))
	}
	return nil
}

// Update replaces an object's metadata and spec (its status, uid,
// creationTimestamp and deletionTimestamp are kept). A non-empty
// resourceVersion in obj is a precondition (Conflict when stale). The
// generation is bumped when the spec changed. An update that changes
// nothing is a no-op without an event, as on an API server.
func (s *Store) Update(obj Object) (Object, error) {
	return s.update(obj, false, true)
}

// Apply creates the object or updates it regardless of its resource
// version: what `kubectl apply` and a manifest source mean. The returned
// bool is true when it was created.
func (s *Store) Apply(obj Object) (Object, bool, error) {
	k, err := kindFor(obj)
	if err != nil {
		return nil, false, err
	}
	s.mu.RLock()
	_, exists := s.objects[k][KeyOf(obj)]
	s.mu.RUnlock()
	if !exists {
		o, err := s.Create(obj)
		if !apierrors.IsAlreadyExists(err) {
			return o, err == nil, err
		}
	}
	o, err := s.update(obj, false, false)
	return o, false, err
}

// UpdateStatus replaces only the status of an object; metadata and spec
// stay as stored. A non-empty resourceVersion is a precondition.
func (s *Store) UpdateStatus(obj Object) (Object, error) {
	return s.update(obj, true, true)
}

func (s *Store) update(obj Object, statusOnly, checkVersion bool) (Object, error) {
	k, err := kindFor(obj)
	if err != nil {
		return nil, err
	}
	if !k.Namespaced {
		obj = obj.DeepCopyObject().(Object)
		obj.SetNamespace("")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	key := KeyOf(obj)
	cur, ok := s.objects[k][key]
	if !ok {
		return nil, notFound(k, obj.GetName())
	}
	if checkVersion {
		if err := checkRV(k, obj, cur); err != nil {
			return nil, err
		}
	}
	var o Object
	if statusOnly {
		o = copyObject(k, cur)
		st, ok := statusOf(o)
		if !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%s has no status", k.Name()))
		}
		if _, ok := statusOf(obj); !ok {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("%T has no status", obj))
		}
		st.Set(reflect.ValueOf(obj.DeepCopyObject()).Elem().FieldByName("Status"))
	} else {
		o = copyObject(k, obj)
		o.SetUID(cur.GetUID())
		o.SetCreationTimestamp(cur.GetCreationTimestamp())
		o.SetDeletionTimestamp(cur.GetDeletionTimestamp())
		o.SetDeletionGracePeriodSeconds(cur.GetDeletionGracePeriodSeconds())
		o.SetGeneration(cur.GetGeneration())
		if st, ok := statusOf(o); ok {
			st.Set(reflect.ValueOf(cur.DeepCopyObject()).Elem().FieldByName("Status"))
		}
		if err := s.admitLocked(OpUpdate, o, cur); err != nil {
			return nil, err
		}
		if KeyOf(o) != key {
			return nil, apierrors.NewBadRequest("admission may not change an object's name or namespace")
		}
	}
	s.transformLocked(k, o)
	if KeyOf(o) != key {
		return nil, apierrors.NewBadRequest("a transform may not change an object's name or namespace")
	}
	if !statusOnly && !specEqual(cur, o) {
		o.SetGeneration(cur.GetGeneration() + 1)
	}
	o.SetResourceVersion(cur.GetResourceVersion())
	if apiequality.Semantic.DeepEqual(o, cur) {
		return cur, nil
	}
	// An object being deleted whose last finalizer was just removed goes.
	if o.GetDeletionTimestamp() != nil && len(o.GetFinalizers()) == 0 && !(k == KindPod && podNeedsNode(o)) {
		return cur, s.removeLocked(k, key, cur)
	}
	rv, rvs := s.nextRV()
	o.SetResourceVersion(rvs)
	s.putLocked(k, key, o)
	s.publish(Event{Type: watch.Modified, Kind: k, Object: o, Old: cur, ResourceVersion: rv})
	return o, nil
}

// UpdateFunc reads the current object, lets f change a copy of it and
// stores the result with Update semantics, all under the store's lock, so
// that concurrent writers never conflict. f must be quick and must not call
// the store. f returning an error aborts without a change.
func (s *Store) UpdateFunc(k *Kind, namespace, name string, f func(Object) error) (Object, error) {
	return s.mutate(k, namespace, name, f, false)
}

// UpdateStatusFunc is UpdateFunc for the status only.
func (s *Store) UpdateStatusFunc(k *Kind, namespace, name string, f func(Object) error) (Object, error) {
	return s.mutate(k, namespace, name, f, true)
}

func (s *Store) mutate(k *Kind, namespace, name string, f func(Object) error, statusOnly bool) (Object, error) {
	for {
		cur, err := s.Get(k, namespace, name)
		if err != nil {
			return nil, err
		}
		c := copyObject(k, cur)
		if err := f(c); err != nil {
			return nil, err
		}
		c.SetResourceVersion(cur.GetResourceVersion())
		o, err := s.update(c, statusOnly, true)
		if apierrors.IsConflict(err) {
			continue
		}
		return o, err
	}
}

// DeleteOptions are the options of Delete.
type DeleteOptions struct {
	// GracePeriodSeconds overrides the object's own grace period (pods).
	// Zero deletes at once.
	GracePeriodSeconds *int64
	// UID, when set, must match the stored object's.
	UID types.UID
}

// podNeedsNode tells whether deleting a pod must wait for its node to stop
// it: the API server deletes unscheduled and finished pods at once, and
// marks the others with a deletionTimestamp for the kubelet.
func podNeedsNode(o Object) bool {
	p := o.(*corev1.Pod)
	return p.Spec.NodeName != "" && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// Delete removes an object. Pods bound to a node and objects with
// finalizers are marked with a deletionTimestamp instead (graceful
// deletion); the node removes a pod with GracePeriodSeconds 0 once its
// containers have stopped, and an object goes when its last finalizer is
// removed.
func (s *Store) Delete(k *Kind, namespace, name string, opts DeleteOptions) error {
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
	if opts.UID != "" && opts.UID != cur.GetUID() {
		return apierrors.NewConflict(k.GVK.GroupVersion().WithResource(k.Resource).GroupResource(), name,
			fmt.Errorf("precondition failed: UID in precondition: %s, UID in object meta: %s", opts.UID, cur.GetUID()))
	}
	graceful := len(cur.GetFinalizers()) > 0
	var grace int64
	if k == KindPod && podNeedsNode(cur) {
		p := cur.(*corev1.Pod)
		grace = corev1.DefaultTerminationGracePeriodSeconds
		if p.Spec.TerminationGracePeriodSeconds != nil {
			grace = *p.Spec.TerminationGracePeriodSeconds
		}
		if opts.GracePeriodSeconds != nil {
			grace = *opts.GracePeriodSeconds
		}
		// A pod already being deleted may only have its grace shortened.
		if cur.GetDeletionGracePeriodSeconds() != nil && *cur.GetDeletionGracePeriodSeconds() < grace {
			grace = *cur.GetDeletionGracePeriodSeconds()
		}
		// Grace 0 from the node is the final removal; from anyone else
		// while the pod still runs it is a forced deletion (kubectl
		// delete --force --grace-period=0), which removes it too.
		graceful = grace > 0
	}
	if !graceful {
		return s.removeLocked(k, key, cur)
	}
	if cur.GetDeletionTimestamp() != nil && (k != KindPod || *cur.GetDeletionGracePeriodSeconds() == grace) {
		return nil // already being deleted
	}
	o := copyObject(k, cur)
	now := metav1.NewTime(s.now().Add(time.Duration(grace) * time.Second))
	if cur.GetDeletionTimestamp() != nil && cur.GetDeletionTimestamp().Before(&now) {
		now = *cur.GetDeletionTimestamp()
	}
	o.SetDeletionTimestamp(&now)
	o.SetDeletionGracePeriodSeconds(&grace)
	rv, rvs := s.nextRV()
	o.SetResourceVersion(rvs)
	s.putLocked(k, key, o)
	s.publish(Event{Type: watch.Modified, Kind: k, Object: o, Old: cur, ResourceVersion: rv})
	return nil
}

func (s *Store) removeLocked(k *Kind, key string, cur Object) error {
	_ = s.admitLocked(OpDelete, nil, cur)
	s.dropLocked(k, key, cur)
	o := copyObject(k, cur)
	rv, rvs := s.nextRV()
	o.SetResourceVersion(rvs)
	s.publish(Event{Type: watch.Deleted, Kind: k, Object: o, Old: cur, ResourceVersion: rv})
	return nil
}

// publish records an event in the history and queues it for every
// subscriber of its kind. Called with s.mu held, so events reach every
// subscriber in resource-version order.
func (s *Store) publish(e Event) {
	if len(s.history) < historySize {
		s.history = append(s.history, e)
	} else {
		s.history[s.histPos] = e
		s.histPos = (s.histPos + 1) % historySize
	}
	for sub := range s.subs {
		if sub.kind == e.Kind {
			sub.push(e)
		}
	}
}

// subscriber is an unbounded FIFO of events for one reader, so that a slow
// reader never blocks writers.
type subscriber struct {
	kind   *Kind
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

func newSubscriber(k *Kind) *subscriber {
	return &subscriber{kind: k, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (sub *subscriber) push(e Event) {
	sub.mu.Lock()
	sub.queue = append(sub.queue, e)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// next blocks for the next batch of events; nil when stopped.
func (sub *subscriber) next() []Event {
	for {
		sub.mu.Lock()
		if sub.closed {
			sub.mu.Unlock()
			return nil
		}
		if len(sub.queue) > 0 {
			q := sub.queue
			sub.queue = nil
			sub.mu.Unlock()
			return q
		}
		sub.mu.Unlock()
		select {
		case <-sub.wake:
		case <-sub.done:
		}
	}
}

func (s *Store) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
	sub.mu.Lock()
	if !sub.closed {
		sub.closed = true
		close(sub.done)
	}
	sub.mu.Unlock()
}

// Subscription is a running informer-style subscription.
type Subscription struct {
	s      *Store
	sub    *subscriber
	synced chan struct{}
	ended  chan struct{}
}

// HasSynced is true once the initial list has been delivered.
func (x *Subscription) HasSynced() bool {
	select {
	case <-x.synced:
		return true
	default:
		return false
	}
}

// Synced is closed once the initial list has been delivered.
func (x *Subscription) Synced() <-chan struct{} { return x.synced }

// Barrier is closed once the handler has been given every change the
// store made before the call (so a caller that knows the store holds
// something can wait until the handler has seen it too).
func (x *Subscription) Barrier() <-chan struct{} {
	ch := make(chan struct{})
	x.sub.push(Event{barrier: ch})
	return ch
}

// Stop ends the subscription and waits until the handler has returned
// for the last time.
func (x *Subscription) Stop() {
	x.s.unsubscribe(x.sub)
	<-x.ended
}

// Subscribe delivers every object of kind k to h as client-go's shared
// informers do: OnAdd(obj, true) for each object present now, then
// OnAdd/OnUpdate/OnDelete for each change, in order, from one goroutine.
// With resync > 0, OnUpdate(obj, obj) is called for every object each
// resync period. Handlers get shared objects: read-only.
func (s *Store) Subscribe(k *Kind, h cache.ResourceEventHandler, resync time.Duration) *Subscription {
	sub := newSubscriber(k)
	s.mu.Lock()
	initial := s.listLocked(k, "", nil)
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	x := &Subscription{s: s, sub: sub, synced: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(x.ended)
		for _, o := range initial {
			h.OnAdd(o, true)
		}
		close(x.synced)
		var tick <-chan time.Time
		if resync > 0 {
			t := time.NewTicker(resync)
			defer t.Stop()
			tick = t.C
		}
		events := make(chan []Event)
		go func() {
			defer close(events)
			for {
				b := sub.next()
				if b == nil {
					return
				}
				select {
				case events <- b:
				case <-sub.done:
					return
				}
			}
		}()
		for {
			select {
			case batch, ok := <-events:
				if !ok {
					return
				}
				for _, e := range batch {
					if e.barrier != nil {
						close(e.barrier)
						continue
					}
					switch e.Type {
					case watch.Added:
						h.OnAdd(e.Object, false)
					case watch.Modified:
						h.OnUpdate(e.Old, e.Object)
					case watch.Deleted:
						h.OnDelete(e.Object)
					}
				}
			case <-tick:
				objs, _ := s.List(k, "", nil)
				for _, o := range objs {
					h.OnUpdate(o, o)
				}
			case <-sub.done:
				return
			}
		}
	}()
	return x
}

// WatchOptions select what a Watch delivers.
type WatchOptions struct {
	Namespace       string          // "" for all namespaces
	Selector        labels.Selector // nil for all
	ResourceVersion string          // "" or "0": start with the current state as ADDED events
	// Filter, when set, is a further condition an object must meet (a
	// field selector), applied like Selector: an object that stops or
	// starts meeting it is sent as DELETED or ADDED.
	Filter func(Object) bool
	// SendInitialEvents sends the current state as ADDED events followed
	// by a BOOKMARK annotated k8s.io/initial-events-end, as an API server
	// does for client-go's streaming lists (WatchList).
	SendInitialEvents bool
}

// Watch streams changes of one kind as watch.Events, like the API server's
// watch: from ResourceVersion N it replays every change after N (410 Gone
// when N is older than the history kept); without one it first sends the
// current objects as ADDED. An object that stops matching the selector is
// sent as DELETED, one that starts matching as ADDED.
func (s *Store) Watch(k *Kind, opts WatchOptions) (watch.Interface, error) {
	sub := newSubscriber(k)
	var start []Event
	s.mu.Lock()
	if opts.SendInitialEvents || opts.ResourceVersion == "" || opts.ResourceVersion == "0" {
		for _, o := range s.listLocked(k, opts.Namespace, opts.Selector) {
			start = append(start, Event{Type: watch.Added, Kind: k, Object: o})
		}
		if opts.SendInitialEvents {
			bm := k.New()
			bm.SetResourceVersion(strconv.FormatUint(s.rv, 10))
			bm.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
			start = append(start, Event{Type: watch.Bookmark, Kind: k, Object: bm})
		}
	} else {
		from, err := strconv.ParseUint(opts.ResourceVersion, 10, 64)
		if err != nil {
			s.mu.Unlock()
			return nil, apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q", opts.ResourceVersion))
		}
		if from > s.rv {
			s.mu.Unlock()
			return nil, apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", from, s.rv), 1)
		}
		hist := append(append([]Event{}, s.history[s.histPos:]...), s.history[:s.histPos]...)
		if len(hist) == historySize && hist[0].ResourceVersion > from+1 {
			s.mu.Unlock()
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", from, hist[0].ResourceVersion-1))
		}
		for _, e := range hist {
			if e.ResourceVersion > from && e.Kind == k {
				start = append(start, e)
			}
		}
	}
	s.subs[sub] = struct{}{}
	s.mu.Unlock()

	w := &watcher{s: s, sub: sub, out: make(chan watch.Event), opts: opts}
	go w.run(start)
	return w, nil
}

type watcher struct {
	s    *Store
	sub  *subscriber
	out  chan watch.Event
	opts WatchOptions
	once sync.Once
}

func (w *watcher) Stop()                          { w.once.Do(func() { w.s.unsubscribe(w.sub) }) }
func (w *watcher) ResultChan() <-chan watch.Event { return w.out }

func (w *watcher) matches(o Object) bool {
	if o == nil {
		return false
	}
	if w.opts.Namespace != "" && o.GetNamespace() != w.opts.Namespace {
		return false
	}
	if w.opts.Filter != nil && !w.opts.Filter(o) {
		return false
	}
	return w.opts.Selector == nil || w.opts.Selector.Matches(labels.Set(o.GetLabels()))
}

// translate turns a store event into what a filtered watch shows.
func (w *watcher) translate(e Event) (watch.Event, bool) {
	switch e.Type {
	case watch.Bookmark:
		return watch.Event{Type: watch.Bookmark, Object: e.Object}, true
	case watch.Added:
		return watch.Event{Type: watch.Added, Object: e.Object}, w.matches(e.Object)
	case watch.Deleted:
		return watch.Event{Type: watch.Deleted, Object: e.Object}, w.matches(e.Object)
	default:
		was, is := w.matches(e.Old), w.matches(e.Object)
		switch {
		case was && is:
			return watch.Event{Type: watch.Modified, Object: e.Object}, true
		case is:
			return watch.Event{Type: watch.Added, Object: e.Object}, true
		case was:
			return watch.Event{Type: watch.Deleted, Object: e.Object}, true
		}
	}
	return watch.Event{}, false
}

func (w *watcher) run(start []Event) {
	defer close(w.out)
	send := func(batch []Event) bool {
		for _, e := range batch {
			we, ok := w.translate(e)
			if !ok {
				continue
			}
			select {
			case w.out <- we:
			case <-w.sub.done:
				return false
			}
		}
		return true
	}
	if !send(start) {
		return
	}
	for {
		b := w.sub.next()
		if b == nil || !send(b) {
			return
		}
	}
}

// ListWatch adapts one kind of the store to client-go's cache.ListerWatcher,
// so that a client-go informer (cache.NewSharedIndexInformer) runs on the
// store exactly as it runs on an API server.
func (s *Store) ListWatch(k *Kind) cache.ListerWatcher {
	return &listWatch{s: s, k: k}
}

type listWatch struct {
	s *Store
	k *Kind
}

func (lw *listWatch) List(opts metav1.ListOptions) (runtime.Object, error) {
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	objs, rv := lw.s.List(lw.k, "", sel)
	return ToList(lw.k, objs, rv), nil
}

func (lw *listWatch) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	sel, err := labels.Parse(opts.LabelSelector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return lw.s.Watch(lw.k, WatchOptions{Selector: sel, ResourceVersion: opts.ResourceVersion,
		SendInitialEvents: opts.SendInitialEvents != nil && *opts.SendInitialEvents})
}

// ToList builds a typed list object (e.g. *corev1.PodList) holding copies
// of objs, with its resourceVersion set.
func ToList(k *Kind, objs []Object, rv string) runtime.Object {
	l := k.NewList()
	items := reflect.ValueOf(l).Elem().FieldByName("Items")
	slice := reflect.MakeSlice(items.Type(), len(objs), len(objs))
	for i, o := range objs {
		c := copyObject(k, o)
		slice.Index(i).Set(reflect.ValueOf(c).Elem())
	}
	items.Set(slice)
	reflect.ValueOf(l).Elem().FieldByName("ListMeta").Set(reflect.ValueOf(metav1.ListMeta{ResourceVersion: rv}))
	return l
}
