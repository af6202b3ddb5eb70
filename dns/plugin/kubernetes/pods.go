package kubernetes

import (
	"net/netip"
	"sort"
	"strings"
	"sync"
	"unique"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/switchboard-dev/switchboard/cluster"
)

// PodTable holds the pods of a store that serves DNS alone in the compact
// form `pods verified` reads, instead of the store holding them as
// corev1.Pod (1,280 bytes each however much a trim drops): per pod its
// namespace and name, its address when it is indexed (Status.PodIP, phase
// not Succeeded, Failed or Unknown) and its labels (interned: the pods of
// one ReplicaSet share them), about 140 bytes with the table's map, as
// CoreDNS's informer keeps an object.Pod. The kubernetes plugin reads it
// in place of the store's Pods for the store it was made for
// (NewPodTable).
//
// It is a client-go cache.ReflectorStore: a cache.Reflector listing and
// watching Pods fills it directly, so no informer cache holds a second
// copy (dnscmd.NewKubeStore does so). Add, Update and Delete take a
// *corev1.Pod (Delete also a cache.DeletedFinalStateUnknown); nothing
// keeps the pod given. It is safe for concurrent use.
//
// A store other components read pods from (`switchboard up`, `dns -f`)
// needs no table: the plugin reads the store's Pods there.
type PodTable struct {
	mu     sync.Mutex
	pods   map[objName]podVal
	subs   map[*podSub]struct{}
	synced chan struct{}
	once   sync.Once
}

// podVal is what the table keeps of one pod besides its name.
type podVal struct {
	ip     ipKey
	listed bool                  // Status.PodIP is an address and the phase lists the pod
	labels unique.Handle[string] // labels.Set.String(); the zero Handle for none
}

// podChange is one change of the table as subscribers see it.
type podChange struct {
	ns             string
	old, new       podVal
	hadOld, hasNew bool
}

type podSub struct{ fn func(podChange) }

var podTables sync.Map // *cluster.Store -> *PodTable

// NewPodTable returns an empty table and makes it the pods the kubernetes
// plugin reads for store (a later call for the same store replaces it):
// write pods into the table then, not into store. Call it before a server
// using store starts. The table is synced (the plugin's readiness waits
// for it) after Replace or MarkSynced.
func NewPodTable(store *cluster.Store) *PodTable {
	t := &PodTable{pods: map[objName]podVal{}, subs: map[*podSub]struct{}{}, synced: make(chan struct{})}
	if store != nil {
		podTables.Store(store, t)
	}
	return t
}

// sourceSynced holds, per store, when the source filling it has synced
// (SetSourceSynced).
var sourceSynced sync.Map // *cluster.Store -> <-chan struct{}

// SetSourceSynced tells the plugin that store is filled by a source (an
// API server's lists) that has synced once synced is closed: until then
// the plugin answers SERVFAIL where it would say NXDOMAIN, and its ready
// readiness is false, as CoreDNS's kubernetes plugin waits for its
// informers. Call it before the plugin starts on the store.
func SetSourceSynced(store *cluster.Store, synced <-chan struct{}) {
	sourceSynced.Store(store, synced)
}

func sourceSyncedOf(store *cluster.Store) <-chan struct{} {
	if ch, ok := sourceSynced.Load(store); ok {
		return ch.(<-chan struct{})
	}
	return nil
}

// PodTableOf is the table NewPodTable made for store, nil if none.
func PodTableOf(store *cluster.Store) *PodTable {
	if t, ok := podTables.Load(store); ok {
		return t.(*PodTable)
	}
	return nil
}

// Add records pod (a *corev1.Pod), or replaces what was recorded under
// its namespace and name.
func (t *PodTable) Add(obj any) error {
	if p, ok := obj.(*corev1.Pod); ok {
		t.mu.Lock()
		t.setLocked(p)
		t.mu.Unlock()
	}
	return nil
}

// Update is Add.
func (t *PodTable) Update(obj any) error { return t.Add(obj) }

// Delete forgets a pod (a *corev1.Pod or a cache.DeletedFinalStateUnknown
// holding one).
func (t *PodTable) Delete(obj any) error {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if p, ok := obj.(*corev1.Pod); ok {
		t.Remove(p.Namespace, p.Name)
	}
	return nil
}

// Remove forgets the pod namespace/name.
func (t *PodTable) Remove(namespace, name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeLocked(objName{namespace, name})
}

// Replace makes list (of *corev1.Pod) the table's whole content, as a
// reflector's (re)list does, and marks the table synced.
func (t *PodTable) Replace(list []any, _ string) error {
	t.mu.Lock()
	keep := make(map[objName]struct{}, len(list))
	for _, o := range list {
		if p, ok := o.(*corev1.Pod); ok {
			keep[objName{p.Namespace, p.Name}] = struct{}{}
			t.setLocked(p)
		}
	}
	for k := range t.pods {
		if _, ok := keep[k]; !ok {
			t.removeLocked(k)
		}
	}
	t.mu.Unlock()
	t.MarkSynced()
	return nil
}

// Resync does nothing (cache.ReflectorStore).
func (t *PodTable) Resync() error { return nil }

// MarkSynced tells that the table holds every pod of its source (a filler
// that does not call Replace calls it once done).
func (t *PodTable) MarkSynced() { t.once.Do(func() { close(t.synced) }) }

// Synced is closed once the table is synced.
func (t *PodTable) Synced() <-chan struct{} { return t.synced }

// Len is the number of pods held.
func (t *PodTable) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pods)
}

func (t *PodTable) setLocked(p *corev1.Pod) {
	v := podVal{labels: internLabels(p.Labels)}
	v.ip, v.listed = listedIP(p)
	k := objName{p.Namespace, p.Name}
	old, had := t.pods[k]
	if had && old == v {
		return
	}
	// Interned, and copied so that the key never keeps the decoded
	// object's memory alive (a map assignment stores the key given).
	k = objName{unique.Make(p.Namespace).Value(), strings.Clone(p.Name)}
	t.pods[k] = v
	t.notifyLocked(podChange{ns: k.ns, old: old, new: v, hadOld: had, hasNew: true})
}

func (t *PodTable) removeLocked(k objName) {
	old, had := t.pods[k]
	if !had {
		return
	}
	delete(t.pods, k)
	t.notifyLocked(podChange{ns: k.ns, old: old, hadOld: true})
}

func (t *PodTable) notifyLocked(c podChange) {
	for s := range t.subs {
		s.fn(c)
	}
}

// subscribe calls fn with every pod held (as additions), then with every
// change, in order; fn runs under the table's lock and must be quick. The
// returned func stops the calls.
func (t *PodTable) subscribe(fn func(podChange)) (stop func()) {
	s := &podSub{fn}
	t.mu.Lock()
	for k, v := range t.pods {
		fn(podChange{ns: k.ns, new: v, hasNew: true})
	}
	t.subs[s] = struct{}{}
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.subs, s)
		t.mu.Unlock()
	}
}

// listedIP is the address under which `pods verified` finds a pod, if
// any. As CoreDNS's pod informer lists pods with the field selector
// status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown,
// pods in those phases are not found; nor is a pod without an address.
func listedIP(p *corev1.Pod) (ipKey, bool) {
	switch p.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodUnknown:
		return ipKey{}, false
	}
	if p.Status.PodIP == "" {
		return ipKey{}, false
	}
	ip, err := netip.ParseAddr(p.Status.PodIP)
	if err != nil || ip.Zone() != "" {
		return ipKey{}, false
	}
	return ipKeyOf(ip), true
}

// internLabels is a label set as one interned string, labels.Set.String()
// (sorted key=value pairs joined by commas: neither a key nor a value
// may hold '=' or ',').
func internLabels(m map[string]string) unique.Handle[string] {
	if len(m) == 0 {
		return unique.Handle[string]{}
	}
	pairs := make([]string, 0, len(m))
	for k, v := range m {
		pairs = append(pairs, k+"="+v)
	}
	sort.Strings(pairs)
	return unique.Make(strings.Join(pairs, ","))
}

// labelString is an interned label set read by a labels.Selector.
type labelString string

func labelsOf(h unique.Handle[string]) labelString {
	if h == (unique.Handle[string]{}) {
		return ""
	}
	return labelString(h.Value())
}

// Lookup implements labels.Labels.
func (s labelString) Lookup(key string) (string, bool) {
	rest := string(s)
	for rest != "" {
		pair := rest
		if i := strings.IndexByte(rest, ','); i >= 0 {
			pair, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		if k, v, ok := strings.Cut(pair, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Has implements labels.Labels.
func (s labelString) Has(key string) bool { _, ok := s.Lookup(key); return ok }

// Get implements labels.Labels.
func (s labelString) Get(key string) string { v, _ := s.Lookup(key); return v }

var _ labels.Labels = labelString("")
var _ cache.ReflectorStore = (*PodTable)(nil)
