package kubernetes

import (
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/switchboard-dev/switchboard/cluster"
)

// indexOptions are the options that change what the index holds; plugin
// instances with equal options over the same store share one index.
type indexOptions struct {
	selector   labels.Selector // `labels`: Services, EndpointSlices and Pods; nil for all
	nsSelector labels.Selector // `namespace_labels`: Namespaces; nil for all
	endpoints  bool            // false with `noendpoints`
	pods       bool            // `pods verified`
	podNames   bool            // `endpoint_pod_names`
}

func (o indexOptions) String() string {
	sel, nsSel := "<all>", "<all>"
	if o.selector != nil {
		sel = o.selector.String()
	}
	if o.nsSelector != nil {
		nsSel = o.nsSelector.String()
	}
	return fmt.Sprintf("labels=%s namespace_labels=%s endpoints=%t pods=%t endpoint_pod_names=%t", sel, nsSel, o.endpoints, o.pods, o.podNames)
}

// epRef points at one ready address of a slice: what a PTR for an endpoint
// address answers.
type epRef struct {
	slice *epSlice
	i     int32 // index in slice.addrs
}

// epRefs are the ready addresses, in every slice, equal to one IP: the
// first inline (the usual case), the others behind more (a pointer, so
// that the usual entry is 24 bytes rather than 40).
type epRefs struct {
	first epRef
	more  *[]epRef
}

func (r *epRefs) len() int {
	if r.more == nil {
		return 1
	}
	return 1 + len(*r.more)
}

func (r *epRefs) at(i int) epRef {
	if i == 0 {
		return r.first
	}
	return (*r.more)[i-1]
}

func refsOf(list []epRef) epRefs {
	r := epRefs{first: list[0]}
	if len(list) > 1 {
		more := list[1:]
		r.more = &more
	}
	return r
}

// podEntry counts, by namespace, the pods whose Status.PodIP is one
// address; more holds the rare other namespaces (hostNetwork pods).
type podEntry struct {
	podNS
	more *[]podNS
}

type podNS struct {
	ns string
	n  int32
}

func (e *podEntry) has(ns string) bool {
	if e.ns == ns && e.n > 0 {
		return true
	}
	if e.more != nil {
		for _, p := range *e.more {
			if p.ns == ns && p.n > 0 {
				return true
			}
		}
	}
	return false
}

// objName names a namespaced object.
type objName struct{ ns, name string }

// index holds the DNS view of a store. Readers use the cowMaps without
// locks; one builder goroutine applies store events and publishes.
type index struct {
	opts  indexOptions
	store *cluster.Store
	log   *slog.Logger

	namespaces *cowMap[string, struct{}] // existing namespaces matching namespace_labels
	services   *cowMap[string, *service] // by name.ns
	svcByIP    *cowMap[ipKey, []string]  // cluster IP -> service keys, sorted
	epByIP     *cowMap[ipKey, epRefs]    // ready endpoint address -> slices holding it
	podByIP    *cowMap[ipKey, podEntry]  // pods verified: Status.PodIP -> pods
	modified   atomic.Int64              // unix time of the last published change (SOA serial)
	syncedFlag atomic.Bool               // the initial lists are applied and published
	synced     chan struct{}             // closed with syncedFlag
	ver        *versions                 // what Version reads (version.go)

	// builder state, owned by the builder goroutine
	svcObjs     map[string]*corev1.Service
	slicesBySvc map[string][]*epSlice // service key -> its slices
	sliceOwner  map[objName]*epSlice  // ns/slice name -> the slice as indexed
	svcIPs      map[string][]ipKey    // service key -> its cluster IPs as indexed
	dirty       map[string]struct{}
	latency     []*epSlice                     // slices with a trigger time applied in this batch
	bumps       bumps                          // versions to bump once the batch is published
	extOf       map[string][]string            // ExternalName service key -> namespaces its target may name
	extDeps     map[string]map[string]struct{} // namespace -> ExternalName service keys that may point into it

	mu      sync.Mutex
	queue   []event
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	subs    []*cluster.Subscription
	podStop func() // ends the subscription to the store's PodTable, if it has one

	refs int // guarded by registry.mu
}

type event struct {
	kind   uint8
	del    bool
	obj    any
	old    any      // the object an update replaced
	pod    podDelta // evPod: the change, as this index reads it
	synced bool     // the marker queued once every initial list is delivered
}

// podDelta is a pod's change as the index reads it: the addresses under
// which it was and is indexed (ok false: not indexed), in namespace ns.
type podDelta struct {
	ns           string
	oldIP, newIP ipKey
	oldOK, newOK bool
}

const (
	evNamespace uint8 = iota
	evService
	evSlice
	evPod
)

var registry = struct {
	sync.Mutex
	m map[registryKey]*index
}{m: map[registryKey]*index{}}

type registryKey struct {
	store *cluster.Store
	opts  string
}

// acquireIndex returns the running index of store for opts, starting one
// when none runs; release it when done.
func acquireIndex(store *cluster.Store, opts indexOptions, log *slog.Logger) *index {
	key := registryKey{store, opts.String()}
	registry.Lock()
	defer registry.Unlock()
	if x, ok := registry.m[key]; ok {
		x.refs++
		return x
	}
	x := newIndex(store, opts, log)
	x.refs = 1
	registry.m[key] = x
	x.start()
	return x
}

// release drops one reference; the last one stops the index.
func (x *index) release() {
	registry.Lock()
	x.refs--
	last := x.refs == 0
	if last {
		delete(registry.m, registryKey{x.store, x.opts.String()})
	}
	registry.Unlock()
	if last {
		x.shutdown()
	}
}

func newIndex(store *cluster.Store, opts indexOptions, log *slog.Logger) *index {
	if log == nil {
		log = slog.Default()
	}
	ver := newVersions(nsBuckets, keyBuckets)
	if store == nil {
		ver = newVersions(1, 1) // idleIndex: never changes
	}
	return &index{
		ver:         ver,
		bumps:       newBumps(),
		extOf:       map[string][]string{},
		extDeps:     map[string]map[string]struct{}{},
		opts:        opts,
		store:       store,
		log:         log,
		namespaces:  newCowMap[string, struct{}](16, hashString),
		services:    newCowMap[string, *service](256, hashString),
		svcByIP:     newCowMap[ipKey, []string](256, hashIP),
		epByIP:      newCowMap[ipKey, epRefs](256, hashIP),
		podByIP:     newCowMap[ipKey, podEntry](1024, hashIP),
		synced:      make(chan struct{}),
		svcObjs:     map[string]*corev1.Service{},
		slicesBySvc: map[string][]*epSlice{},
		sliceOwner:  map[objName]*epSlice{},
		svcIPs:      map[string][]ipKey{},
		dirty:       map[string]struct{}{},
		wake:        make(chan struct{}, 1),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
	}
}

// start subscribes to the kinds the options need and runs the builder.
func (x *index) start() {
	go x.run()
	kinds := []struct {
		k  *cluster.Kind
		ev uint8
	}{{cluster.KindNamespace, evNamespace}, {cluster.KindService, evService}}
	if x.opts.endpoints {
		kinds = append(kinds, struct {
			k  *cluster.Kind
			ev uint8
		}{cluster.KindEndpointSlice, evSlice})
	}
	var podsSynced <-chan struct{}
	if x.opts.pods {
		if t := PodTableOf(x.store); t != nil {
			podsSynced = t.Synced()
			x.podStop = t.subscribe(func(c podChange) {
				d := podDelta{ns: c.ns}
				if c.hadOld {
					d.oldIP, d.oldOK = c.old.ip, x.tablePodIndexed(c.old)
				}
				if c.hasNew {
					d.newIP, d.newOK = c.new.ip, x.tablePodIndexed(c.new)
				}
				x.push(event{kind: evPod, pod: d, del: !c.hasNew})
			})
		} else {
			x.subs = append(x.subs, x.store.Subscribe(cluster.KindPod, cache.ResourceEventHandlerFuncs{
				AddFunc: func(o any) { x.push(event{kind: evPod, pod: x.storePodDelta(nil, o)}) },
				UpdateFunc: func(old, o any) {
					x.push(event{kind: evPod, pod: x.storePodDelta(old, o)})
				},
				DeleteFunc: func(o any) {
					if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
						o = d.Obj
					}
					x.push(event{kind: evPod, pod: x.storePodDelta(o, nil), del: true})
				},
			}, 0))
		}
	}
	for _, kd := range kinds {
		ev := kd.ev
		x.subs = append(x.subs, x.store.Subscribe(kd.k, cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { x.push(event{kind: ev, obj: o}) },
			UpdateFunc: func(old, o any) { x.push(event{kind: ev, obj: o, old: old}) },
			DeleteFunc: func(o any) {
				if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				x.push(event{kind: ev, obj: o, del: true})
			},
		}, 0))
	}
	subs := x.subs
	srcSynced := sourceSyncedOf(x.store)
	go func() {
		for _, s := range subs {
			select {
			case <-s.Synced():
			case <-x.stop:
				return
			}
		}
		if srcSynced != nil {
			select {
			case <-srcSynced:
			case <-x.stop:
				return
			}
			// The store holds the source's lists now; the index counts
			// as synced once it has been given them too.
			for _, s := range subs {
				select {
				case <-s.Barrier():
				case <-x.stop:
					return
				}
			}
		}
		if podsSynced != nil {
			select {
			case <-podsSynced:
			case <-x.stop:
				return
			}
		}
		x.push(event{synced: true})
	}()
}

func (x *index) shutdown() {
	for _, s := range x.subs {
		s.Stop()
	}
	if x.podStop != nil {
		x.podStop()
	}
	close(x.stop)
	<-x.done
}

func (x *index) push(e event) {
	x.mu.Lock()
	x.queue = append(x.queue, e)
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

func (x *index) run() {
	defer close(x.done)
	for {
		select {
		case <-x.stop:
			return
		case <-x.wake:
		}
		x.mu.Lock()
		batch := x.queue
		x.queue = nil
		x.mu.Unlock()
		x.applyBatch(batch)
	}
}

// applyBatch applies events in order, rebuilds the services they touched
// from the whole state held (level-triggered) and publishes the result.
func (x *index) applyBatch(batch []event) {
	syncedNow := false
	for _, e := range batch {
		switch {
		case e.synced:
			syncedNow = true
		case e.kind == evNamespace:
			x.applyNamespace(e)
		case e.kind == evService:
			x.applyService(e)
		case e.kind == evSlice:
			x.applySlice(e)
		case e.kind == evPod:
			x.applyPod(e)
		}
	}
	for key := range x.dirty {
		x.rebuild(key)
		x.bumps.keys[key] = struct{}{}
	}
	x.dirty = emptied(x.dirty)
	nsChanged := x.namespaces.publish()
	svcChanged := x.services.publish()
	ipsChanged := x.svcByIP.publish()
	ipsChanged = x.epByIP.publish() || ipsChanged
	changed := x.podByIP.publish() || ipsChanged || nsChanged || svcChanged
	if changed {
		x.modified.Store(time.Now().Unix())
	}
	x.observeLatency()
	firstSync := syncedNow && !x.syncedFlag.Load()
	if firstSync {
		x.syncedFlag.Store(true) // NXDOMAIN instead of SERVFAIL from now on
	}
	x.bumpVersions(changed, nsChanged, firstSync)
	if firstSync {
		close(x.synced)
	}
}

func (x *index) selected(o any) bool {
	if x.opts.selector == nil {
		return true
	}
	m, ok := o.(cluster.Object)
	return ok && x.opts.selector.Matches(labels.Set(m.GetLabels()))
}

func (x *index) applyNamespace(e event) {
	ns, ok := e.obj.(*corev1.Namespace)
	if !ok {
		return
	}
	_, had := x.namespaces.pending(ns.Name)
	if e.del || (x.opts.nsSelector != nil && !x.opts.nsSelector.Matches(labels.Set(ns.Labels))) {
		if had {
			x.namespaces.del(ns.Name)
			x.bumps.ns[ns.Name] = struct{}{}
		}
		return
	}
	if !had {
		x.namespaces.set(ns.Name, struct{}{})
		x.bumps.ns[ns.Name] = struct{}{}
	}
}

// applyService records the Service; a Service that stops matching the
// `labels` selector goes away, as a watch with a label selector reports it.
func (x *index) applyService(e event) {
	svc, ok := e.obj.(*corev1.Service)
	if !ok {
		return
	}
	key := svcKeyOf(svc.Name, svc.Namespace)
	if e.del || !x.selected(svc) {
		delete(x.svcObjs, key)
	} else {
		x.svcObjs[key] = svc
	}
	x.dirty[key] = struct{}{}
}

func (x *index) applySlice(e event) {
	es, ok := e.obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	name := objName{es.Namespace, es.Name}
	if old, ok := x.sliceOwner[name]; ok {
		delete(x.sliceOwner, name)
		list := x.slicesBySvc[old.svcKey]
		for i, s := range list {
			if s == old {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(x.slicesBySvc, old.svcKey)
		} else {
			x.slicesBySvc[old.svcKey] = list
		}
		x.unindexSlice(old)
		x.dirty[old.svcKey] = struct{}{}
	}
	if e.del || !x.selected(es) || es.Labels[discoveryv1.LabelServiceName] == "" {
		return
	}
	s := newEpSlice(es, x.opts.podNames)
	x.sliceOwner[name] = s
	x.slicesBySvc[s.svcKey] = append(x.slicesBySvc[s.svcKey], s)
	x.indexSlice(s)
	x.dirty[s.svcKey] = struct{}{}
	if !s.trigger.IsZero() {
		x.latency = append(x.latency, s)
	}
}

func (x *index) indexSlice(s *epSlice) {
	for i := range s.addrs {
		k := ipKeyOf(s.addrs[i].ip)
		x.touchIP(k)
		ref := epRef{s, int32(i)}
		old, ok := x.epByIP.pending(k)
		if !ok {
			x.epByIP.set(k, epRefs{first: ref})
			continue
		}
		more := make([]epRef, old.len()-1, old.len())
		for j := 1; j < old.len(); j++ {
			more[j-1] = old.at(j)
		}
		more = append(more, ref)
		x.epByIP.set(k, epRefs{first: old.first, more: &more})
	}
}

func (x *index) unindexSlice(s *epSlice) {
	for i := range s.addrs {
		k := ipKeyOf(s.addrs[i].ip)
		old, ok := x.epByIP.pending(k)
		if !ok {
			continue
		}
		x.touchIP(k)
		var refs []epRef
		for j := 0; j < old.len(); j++ {
			if r := old.at(j); r.slice != s {
				refs = append(refs, r)
			}
		}
		if len(refs) == 0 {
			x.epByIP.del(k)
		} else if len(refs) != old.len() {
			x.epByIP.set(k, refsOf(refs))
		}
	}
}

// applyPod indexes Status.PodIP for `pods verified`, as CoreDNS's pod
// informer lists pods: those in phase Succeeded, Failed or Unknown are not
// listed (its field selector), nor those the `labels` selector leaves out.
// An update moves the pod from the old object's address to the new one's.
func (x *index) applyPod(e event) {
	d := e.pod
	if d.oldOK && d.newOK && d.oldIP == d.newIP {
		return
	}
	if d.oldOK {
		x.countPod(d.oldIP, d.ns, -1)
	}
	if d.newOK {
		x.countPod(d.newIP, d.ns, 1)
	}
}

// storePodDelta is the change from old to obj (store Pods; nil for none).
func (x *index) storePodDelta(old, obj any) podDelta {
	var d podDelta
	if p, ok := old.(*corev1.Pod); ok {
		d.ns = p.Namespace
		d.oldIP, d.oldOK = listedIP(p)
		d.oldOK = d.oldOK && x.selected(p)
	}
	if p, ok := obj.(*corev1.Pod); ok {
		d.ns = p.Namespace
		d.newIP, d.newOK = listedIP(p)
		d.newOK = d.newOK && x.selected(p)
	}
	return d
}

// tablePodIndexed tells whether a pod of a PodTable is indexed.
func (x *index) tablePodIndexed(v podVal) bool {
	if !v.listed {
		return false
	}
	return x.opts.selector == nil || x.opts.selector.Matches(labelsOf(v.labels))
}

// countPod adds d to the pods of namespace ns at address k.
func (x *index) countPod(k ipKey, ns string, d int32) {
	x.bumps.pods[ns] = struct{}{}
	e, ok := x.podByIP.pending(k)
	if !ok {
		if d > 0 {
			x.podByIP.set(k, podEntry{podNS: podNS{ns, d}})
		}
		return
	}
	list := []podNS{e.podNS}
	if e.more != nil {
		list = append(list, *e.more...)
	}
	found := false
	for i := range list {
		if list[i].ns == ns {
			list[i].n += d
			found = true
		}
	}
	if !found && d > 0 {
		list = append(list, podNS{ns, d})
	}
	kept := list[:0]
	for _, p := range list {
		if p.n > 0 {
			kept = append(kept, p)
		}
	}
	if len(kept) == 0 {
		x.podByIP.del(k)
		return
	}
	n := podEntry{podNS: kept[0]}
	if len(kept) > 1 {
		more := append([]podNS(nil), kept[1:]...)
		n.more = &more
	}
	x.podByIP.set(k, n)
}

// rebuild recomputes the records of one service key from the Service and
// slices held, and its cluster-IP reverse entries.
func (x *index) rebuild(key string) {
	obj := x.svcObjs[key]
	var ips []ipKey
	if obj == nil {
		x.services.del(key)
		x.trackExternal(key, nil)
	} else {
		s := newService(obj, x.slicesBySvc[key])
		x.services.set(key, s)
		x.trackExternal(key, s)
		for _, a := range s.clusterIPs {
			ips = append(ips, ipKeyOf(a.ip))
		}
	}
	old := x.svcIPs[key]
	if equalKeys(old, ips) {
		return
	}
	for _, k := range old {
		x.touchIP(k)
		list, _ := x.svcByIP.pending(k)
		var n []string
		for _, s := range list {
			if s != key {
				n = append(n, s)
			}
		}
		if len(n) == 0 {
			x.svcByIP.del(k)
		} else {
			x.svcByIP.set(k, n)
		}
	}
	for _, k := range ips {
		x.touchIP(k)
		list, _ := x.svcByIP.pending(k)
		n := make([]string, 0, len(list)+1)
		for _, s := range list {
			if s != key {
				n = append(n, s)
			}
		}
		n = append(n, key)
		sort.Strings(n)
		x.svcByIP.set(k, n)
	}
	if len(ips) == 0 {
		delete(x.svcIPs, key)
	} else {
		x.svcIPs[key] = ips
	}
}

func equalKeys(a, b []ipKey) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// observeLatency records coredns_kubernetes_dns_programming_duration_seconds
// for the slices applied in this batch, now that they are served. As in
// CoreDNS, only slices of a headless service with the
// endpoints.kubernetes.io/last-change-trigger-time annotation (set by the
// EndpointSlice controller, so: a headless service with a selector) count.
func (x *index) observeLatency() {
	for _, s := range x.latency {
		if svc, ok := x.services.get(s.svcKey); ok && svc.kind == kindHeadless {
			programmingLatency.WithLabelValues("headless_with_selector").Observe(time.Since(s.trigger).Seconds())
		}
	}
	x.latency = x.latency[:0]
}

// namespace reports whether a namespace exists (and matches namespace_labels).
func (x *index) namespace(ns string) bool {
	_, ok := x.namespaces.get(ns)
	return ok
}
