package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// EndpointSliceControllerName is the value of the
// endpointslice.kubernetes.io/managed-by label on the slices this
// controller owns; slices with any other value are never touched.
const EndpointSliceControllerName = "endpointslice-controller.k8s.io"

var serviceKind = corev1.SchemeGroupVersion.WithKind("Service")

// endpointSliceController keeps the EndpointSlices of every Service with
// a selector, as pkg/controller/endpointslice with the reconciler of
// staging/src/k8s.io/endpointslice: endpoints grouped into slices by port
// set and address type, at most MaxEndpointsPerSlice each, existing slices
// updated in place and filled before new ones are created, a placeholder
// slice for a Service with no endpoints, and no write at all when nothing
// changed. Services without a selector (and ExternalName ones) are left to
// their users: their slices, like every slice managed by another
// controller, are never touched.
type endpointSliceController struct {
	*controller
	store    *cluster.Store
	rec      *cluster.Recorder
	maxPer   int
	triggers *triggerTimeTracker
	services *serviceSelectors

	changes       *prometheus.CounterVec
	added         *prometheus.HistogramVec
	removed       *prometheus.HistogramVec
	changedPerRun *prometheus.HistogramVec
	syncs         *prometheus.CounterVec
}

func newEndpointSliceController(store *cluster.Store, c *controller, rec *cluster.Recorder, cfg Config) *endpointSliceController {
	e := &endpointSliceController{controller: c, store: store, rec: rec, maxPer: cfg.MaxEndpointsPerSlice, triggers: newTriggerTimeTracker(), services: newServiceSelectors()}
	reg := cfg.Registerer
	e.changes = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "endpoint_slice_controller", Name: "changes", Help: "Number of EndpointSlice changes",
	}, []string{"operation"}))
	e.added = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "endpoint_slice_controller", Name: "endpoints_added_per_sync",
		Help: "Number of endpoints added on each Service sync", Buckets: prometheus.ExponentialBuckets(2, 2, 15),
	}, []string{}))
	e.removed = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "endpoint_slice_controller", Name: "endpoints_removed_per_sync",
		Help: "Number of endpoints removed on each Service sync", Buckets: prometheus.ExponentialBuckets(2, 2, 15),
	}, []string{}))
	e.changedPerRun = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Subsystem: "endpoint_slice_controller", Name: "endpointslices_changed_per_sync",
		Help: "Number of EndpointSlices changed on each Service sync", Buckets: prometheus.ExponentialBuckets(1, 2, 10),
	}, []string{"topology", "traffic_distribution"}))
	e.syncs = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "endpoint_slice_controller", Name: "syncs", Help: "Number of EndpointSlice syncs",
	}, []string{"result"}))
	c.sync = e.sync
	return e
}

func (e *endpointSliceController) subscribe(st *cluster.Store) []*cluster.Subscription {
	// The selector index follows the Services first, then queues them.
	svcs := handler{c: e.controller, initial: true,
		onAdd: func(o cluster.Object) []string {
			e.services.set(o.(*corev1.Service))
			return keyOf(o)
		},
		onDel: func(o cluster.Object) []string {
			e.services.remove(o.GetNamespace(), o.GetName())
			return keyOf(o)
		},
	}
	pods := handler{c: e.controller,
		onAdd: func(o cluster.Object) []string { return e.serviceKeysFor(o.GetNamespace(), o.GetLabels()) },
		onUpd: func(old, o cluster.Object) []string {
			oldPod, pod := old.(*corev1.Pod), o.(*corev1.Pod)
			podChanged, labelsChanged := podEndpointsChanged(oldPod, pod)
			switch {
			case !podChanged && !labelsChanged:
				return nil
			case !labelsChanged:
				return e.serviceKeysFor(pod.Namespace, pod.Labels)
			}
			// Labels changed: the union when the pod changed too, else
			// the services that gained or lost it.
			now := toSet(e.serviceKeysFor(pod.Namespace, pod.Labels))
			before := toSet(e.serviceKeysFor(oldPod.Namespace, oldPod.Labels))
			var keys []string
			for k := range now {
				if podChanged || !before[k] {
					keys = append(keys, k)
				}
			}
			for k := range before {
				if !now[k] {
					keys = append(keys, k)
				}
			}
			return keys
		},
	}
	slices := handler{c: e.controller, onAdd: func(o cluster.Object) []string {
		if o.GetLabels()[discoveryv1.LabelManagedBy] != EndpointSliceControllerName {
			return nil
		}
		if svc := o.GetLabels()[discoveryv1.LabelServiceName]; svc != "" {
			return []string{cluster.Key(o.GetNamespace(), svc)}
		}
		return nil
	}}
	nodes := handler{c: e.controller,
		onAdd: func(cluster.Object) []string { return e.allServiceKeys() },
		onUpd: func(old, o cluster.Object) []string {
			if old.GetLabels()[corev1.LabelTopologyZone] == o.GetLabels()[corev1.LabelTopologyZone] {
				return nil
			}
			return e.allServiceKeys()
		},
	}
	return []*cluster.Subscription{
		st.Subscribe(cluster.KindService, svcs, 0),
		st.Subscribe(cluster.KindPod, pods, 0),
		st.Subscribe(cluster.KindEndpointSlice, slices, 0),
		st.Subscribe(cluster.KindNode, nodes, 0),
	}
}

func toSet(keys []string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// serviceKeysFor: the Services of a namespace whose selector matches the
// labels (a nil selector matches nothing, an empty one everything). It is
// upstream's getPodServiceMemberships: the Services of the pod's namespace
// only, with their selectors parsed once (its ServiceSelectorCache).
func (e *endpointSliceController) serviceKeysFor(ns string, podLabels map[string]string) []string {
	return e.services.matching(ns, labels.Set(podLabels))
}

func (e *endpointSliceController) allServiceKeys() []string {
	return e.services.all()
}

// serviceSelectors indexes the selectors of the Services that have one,
// by namespace, from the controller's Service subscription, so that a Pod
// event costs the Services of its namespace and no parsing.
type serviceSelectors struct {
	mu   sync.RWMutex
	byNS map[string]map[string]labels.Selector // namespace -> name -> selector
}

func newServiceSelectors() *serviceSelectors {
	return &serviceSelectors{byNS: map[string]map[string]labels.Selector{}}
}

// set records svc's selector, or forgets svc when it has none.
func (x *serviceSelectors) set(svc *corev1.Service) {
	if svc.Spec.Selector == nil {
		x.remove(svc.Namespace, svc.Name)
		return
	}
	sel := labels.ValidatedSetSelector(svc.Spec.Selector)
	x.mu.Lock()
	defer x.mu.Unlock()
	m := x.byNS[svc.Namespace]
	if m == nil {
		m = map[string]labels.Selector{}
		x.byNS[svc.Namespace] = m
	}
	m[svc.Name] = sel
}

func (x *serviceSelectors) remove(ns, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if m := x.byNS[ns]; m != nil {
		delete(m, name)
		if len(m) == 0 {
			delete(x.byNS, ns)
		}
	}
}

// matching returns the keys of the Services of ns selecting set, sorted.
func (x *serviceSelectors) matching(ns string, set labels.Set) []string {
	x.mu.RLock()
	var keys []string
	for name, sel := range x.byNS[ns] {
		if sel.Matches(set) {
			keys = append(keys, cluster.Key(ns, name))
		}
	}
	x.mu.RUnlock()
	sort.Strings(keys)
	return keys
}

// all returns the keys of every Service with a selector, sorted.
func (x *serviceSelectors) all() []string {
	x.mu.RLock()
	var keys []string
	for ns, m := range x.byNS {
		for name := range m {
			keys = append(keys, cluster.Key(ns, name))
		}
	}
	x.mu.RUnlock()
	sort.Strings(keys)
	return keys
}

// podEndpointsChanged is upstream's: (the pod changed in a way that may
// change its endpoint, its labels or hostname/subdomain changed).
func podEndpointsChanged(oldPod, pod *corev1.Pod) (bool, bool) {
	labelsChanged := !apiequality.Semantic.DeepEqual(oldPod.Labels, pod.Labels) ||
		oldPod.Spec.Hostname != pod.Spec.Hostname || oldPod.Spec.Subdomain != pod.Spec.Subdomain
	if (oldPod.DeletionTimestamp == nil) != (pod.DeletionTimestamp == nil) ||
		isPodReady(oldPod) != isPodReady(pod) ||
		isPodTerminal(oldPod) != isPodTerminal(pod) ||
		oldPod.Spec.NodeName != pod.Spec.NodeName ||
		oldPod.Status.PodIP != pod.Status.PodIP ||
		!apiequality.Semantic.DeepEqual(oldPod.Status.PodIPs, pod.Status.PodIPs) ||
		!apiequality.Semantic.DeepEqual(containerPorts(oldPod), containerPorts(pod)) {
		return true, labelsChanged
	}
	return false, labelsChanged
}

func containerPorts(p *corev1.Pod) [][]corev1.ContainerPort {
	var out [][]corev1.ContainerPort
	for _, c := range p.Spec.Containers {
		out = append(out, c.Ports)
	}
	for _, c := range p.Spec.InitContainers {
		out = append(out, c.Ports)
	}
	return out
}

func (e *endpointSliceController) sync(_ context.Context, key string) error {
	err := e.syncService(key)
	if err != nil {
		e.syncs.WithLabelValues("error").Inc()
	} else {
		e.syncs.WithLabelValues("success").Inc()
	}
	return err
}

func (e *endpointSliceController) managedSlices(ns, svcName string) []*discoveryv1.EndpointSlice {
	sel := labels.SelectorFromSet(labels.Set{
		discoveryv1.LabelServiceName: svcName,
		discoveryv1.LabelManagedBy:   EndpointSliceControllerName,
	})
	return cluster.List[*discoveryv1.EndpointSlice](e.store, ns, sel)
}

func (e *endpointSliceController) syncService(key string) error {
	ns, name, _ := strings.Cut(key, "/")
	svc, err := cluster.Get[*corev1.Service](e.store, ns, name)
	if apierrors.IsNotFound(err) {
		// The garbage collector removes the slices too (they are owned
		// by the Service); removing them here keeps them from outliving
		// the Service when it is not running.
		e.triggers.deleteService(key)
		return e.deleteSlices(e.managedSlices(ns, name))
	}
	if err != nil {
		return err
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.Selector == nil {
		// Not ours to manage: slices we made while it had a selector go,
		// slices its user wrote (another managed-by) stay.
		e.triggers.deleteService(key)
		return e.deleteSlices(e.managedSlices(ns, name))
	}
	pods := cluster.List[*corev1.Pod](e.store, ns, labels.ValidatedSetSelector(svc.Spec.Selector))
	existing := e.managedSlices(ns, name)
	trigger := e.triggers.compute(key, svc, pods)
	return e.reconcile(svc, pods, existing, trigger)
}

func (e *endpointSliceController) deleteSlices(slices []*discoveryv1.EndpointSlice) error {
	var errs []error
	for _, s := range slices {
		err := e.store.Delete(cluster.KindEndpointSlice, s.Namespace, s.Name, cluster.DeleteOptions{UID: s.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		e.changes.WithLabelValues("delete").Inc()
	}
	return errors.Join(errs...)
}

// addressTypesFor is upstream's getAddressTypesForService.
func addressTypesFor(svc *corev1.Service) []discoveryv1.AddressType {
	var out []discoveryv1.AddressType
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			out = append(out, discoveryv1.AddressTypeIPv4)
		case corev1.IPv6Protocol:
			out = append(out, discoveryv1.AddressTypeIPv6)
		}
	}
	if len(out) > 0 {
		return out
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		if a, err := netip.ParseAddr(ip); err == nil && a.Is6() && !a.Is4In6() {
			return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv6}
		}
		return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4}
	}
	return []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6}
}

func (e *endpointSliceController) reconcile(svc *corev1.Service, pods []*corev1.Pod, existing []*discoveryv1.EndpointSlice, trigger time.Time) error {
	var errs []error
	supported := map[discoveryv1.AddressType]bool{}
	for _, t := range addressTypesFor(svc) {
		supported[t] = true
	}
	byType := map[discoveryv1.AddressType][]*discoveryv1.EndpointSlice{}
	var toDelete []*discoveryv1.EndpointSlice
	for _, s := range existing {
		if !supported[s.AddressType] {
			toDelete = append(toDelete, s)
			continue
		}
		byType[s.AddressType] = append(byType[s.AddressType], s)
	}
	types := addressTypesFor(svc)
	for _, t := range types {
		if err := e.reconcileByAddressType(svc, pods, byType[t], trigger, t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := e.deleteSlices(toDelete); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type endpointMeta struct {
	ports       []discoveryv1.EndpointPort
	addressType discoveryv1.AddressType
}

func (e *endpointSliceController) reconcileByAddressType(svc *corev1.Service, pods []*corev1.Pod, existing []*discoveryv1.EndpointSlice, trigger time.Time, addressType discoveryv1.AddressType) error {
	var errs []error
	var toCreate, toUpdate, toDelete []*discoveryv1.EndpointSlice

	existingByPorts := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range existing {
		if ownedBy(s, svc) {
			k := portMapKey(s.Ports)
			existingByPorts[k] = append(existingByPorts[k], s)
		} else {
			toDelete = append(toDelete, s)
		}
	}

	desiredMeta := map[string]*endpointMeta{}
	desired := map[string]*endpointSet{}
	nodes := map[string]*corev1.Node{}
	for _, pod := range pods {
		if !shouldPodBeInEndpoints(pod) {
			continue
		}
		ports := endpointPorts(svc, pod)
		k := portMapKey(ports)
		if desired[k] == nil {
			desired[k] = newEndpointSet()
			desiredMeta[k] = &endpointMeta{ports: sortedPorts(ports), addressType: addressType}
		}
		node, seen := nodes[pod.Spec.NodeName]
		if !seen && pod.Spec.NodeName != "" {
			n, err := cluster.Get[*corev1.Node](e.store, "", pod.Spec.NodeName)
			if err == nil {
				node = n
			} else if !apierrors.IsNotFound(err) {
				return err
			}
			nodes[pod.Spec.NodeName] = node
		}
		if node == nil && !svc.Spec.PublishNotReadyAddresses {
			// As upstream: a pod whose Node is missing is left out (and
			// the Service retried), unless publishNotReadyAddresses says
			// to publish it anyway.
			errs = append(errs, fmt.Errorf("skipping Pod %s for Service %s/%s: Node %s Not Found", pod.Name, svc.Namespace, svc.Name, pod.Spec.NodeName))
			continue
		}
		ep := podToEndpoint(pod, node, svc, addressType)
		if len(ep.Addresses) > 0 {
			desired[k].insert(&ep)
		}
	}

	totalAdded, totalRemoved := 0, 0
	keys := make([]string, 0, len(desired))
	for k := range desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c, u, d, added, removed := e.reconcileByPortMapping(svc, existingByPorts[k], desired[k], desiredMeta[k])
		totalAdded += added
		totalRemoved += removed
		toCreate = append(toCreate, c...)
		toUpdate = append(toUpdate, u...)
		toDelete = append(toDelete, d...)
	}
	// Port sets no longer wanted: their slices go.
	for k, slices := range existingByPorts {
		if _, ok := desired[k]; !ok {
			toDelete = append(toDelete, slices...)
		}
	}
	// A Service with no endpoints keeps one empty placeholder slice.
	if len(existing) == len(toDelete) && len(toCreate) == 0 {
		placeholder := newEndpointSlice(svc, &endpointMeta{ports: []discoveryv1.EndpointPort{}, addressType: addressType})
		if len(toDelete) == 1 && isPlaceholder(toDelete[0], placeholder) {
			toDelete = toDelete[:0]
		} else {
			toCreate = append(toCreate, placeholder)
		}
	}
	e.added.WithLabelValues().Observe(float64(totalAdded))
	e.removed.WithLabelValues().Observe(float64(totalRemoved))
	if err := e.finalize(svc, toCreate, toUpdate, toDelete, trigger); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isPlaceholder compares what matters of two placeholder slices:
// namespace, labels, owner references, ports, endpoints, address type.
func isPlaceholder(s, placeholder *discoveryv1.EndpointSlice) bool {
	return s.Namespace == placeholder.Namespace && s.AddressType == placeholder.AddressType &&
		len(s.Endpoints) == 0 && len(s.Ports) == 0 &&
		apiequality.Semantic.DeepEqual(s.Labels, placeholder.Labels) &&
		apiequality.Semantic.DeepEqual(s.OwnerReferences, placeholder.OwnerReferences)
}

// finalize turns creates into updates of slices that would be deleted,
// then writes.
func (e *endpointSliceController) finalize(svc *corev1.Service, toCreate, toUpdate, toDelete []*discoveryv1.EndpointSlice, trigger time.Time) error {
	for i := 0; i < len(toDelete); {
		if len(toCreate) == 0 {
			break
		}
		del := toDelete[i]
		s := toCreate[len(toCreate)-1]
		if del.AddressType == s.AddressType && ownedBy(del, svc) {
			s.Name = del.Name
			s.ResourceVersion = del.ResourceVersion
			toCreate = toCreate[:len(toCreate)-1]
			toUpdate = append(toUpdate, s)
			toDelete = append(toDelete[:i], toDelete[i+1:]...)
		} else {
			i++
		}
	}
	if svc.DeletionTimestamp == nil {
		for _, s := range toCreate {
			addTriggerTimeAnnotation(s, trigger)
			if _, err := e.store.Create(s); err != nil {
				return fmt.Errorf("failed to create EndpointSlice for Service %s/%s: %w", svc.Namespace, svc.Name, err)
			}
			e.changes.WithLabelValues("create").Inc()
		}
	}
	for _, s := range toUpdate {
		addTriggerTimeAnnotation(s, trigger)
		if _, err := e.store.Update(s); err != nil {
			return fmt.Errorf("failed to update %s EndpointSlice for Service %s/%s: %w", s.Name, svc.Namespace, svc.Name, err)
		}
		e.changes.WithLabelValues("update").Inc()
	}
	if err := e.deleteSlices(toDelete); err != nil {
		return fmt.Errorf("failed to delete EndpointSlices of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	if n := len(toCreate) + len(toUpdate) + len(toDelete); n > 0 {
		e.changedPerRun.WithLabelValues("Disabled", "").Observe(float64(n))
	}
	return nil
}

// reconcileByPortMapping is upstream's, step by step:
//  1. drop endpoints no longer desired from existing slices and update
//     changed ones (and the labels mirrored from the Service);
//  2. fill the slices that change anyway with remaining endpoints;
//  3. fit the rest into one unchanged slice with room, else new slices.
func (e *endpointSliceController) reconcileByPortMapping(svc *corev1.Service, existing []*discoveryv1.EndpointSlice, want *endpointSet, meta *endpointMeta) (toCreate, toUpdate, toDelete []*discoveryv1.EndpointSlice, added, removed int) {
	byName := map[string]*discoveryv1.EndpointSlice{}
	unchanged := map[string]bool{}
	update := map[string]bool{}
	del := map[string]bool{}

	for _, s := range existing {
		byName[s.Name] = s
		var keep []discoveryv1.Endpoint
		changed := false
		for i := range s.Endpoints {
			got := want.get(&s.Endpoints[i])
			if got == nil {
				continue
			}
			keep = append(keep, *got)
			if !endpointsEqualBeyondHash(got, &s.Endpoints[i]) {
				changed = true
			}
			want.remove(&s.Endpoints[i])
		}
		newLabels, labelsChanged := sliceLabels(s, svc)
		switch {
		case changed || len(s.Endpoints) != len(keep):
			if len(s.Endpoints) > len(keep) {
				removed += len(s.Endpoints) - len(keep)
			}
			if len(keep) == 0 {
				del[s.Name] = true
			} else {
				c := s.DeepCopy()
				c.Endpoints = keep
				c.Labels = newLabels
				byName[s.Name] = c
				update[s.Name] = true
			}
		case labelsChanged:
			c := s.DeepCopy()
			c.Labels = newLabels
			byName[s.Name] = c
			update[s.Name] = true
		default:
			unchanged[s.Name] = true
		}
	}
	added = want.len()

	// 2. Fill the slices being updated, fullest first.
	if want.len() > 0 && len(update) > 0 {
		var slices []*discoveryv1.EndpointSlice
		for _, n := range sortedKeys(update) {
			slices = append(slices, byName[n])
		}
		sort.SliceStable(slices, func(i, j int) bool { return len(slices[i].Endpoints) > len(slices[j].Endpoints) })
		for _, s := range slices {
			for want.len() > 0 && len(s.Endpoints) < e.maxPer {
				s.Endpoints = append(s.Endpoints, *want.pop())
			}
		}
	}

	// 3. The rest: into the unchanged slice that ends closest to full, or
	// new slices.
	for want.len() > 0 {
		var fill *discoveryv1.EndpointSlice
		if want.len() < e.maxPer && len(unchanged) > 0 {
			var cands []*discoveryv1.EndpointSlice
			for _, n := range sortedKeys(unchanged) {
				cands = append(cands, byName[n])
			}
			fill = sliceToFill(cands, want.len(), e.maxPer)
		}
		if fill == nil {
			fill = newEndpointSlice(svc, meta)
		} else {
			fill = fill.DeepCopy()
			byName[fill.Name] = fill
		}
		for want.len() > 0 && len(fill.Endpoints) < e.maxPer {
			fill.Endpoints = append(fill.Endpoints, *want.pop())
		}
		if fill.Name != "" {
			update[fill.Name] = true
			delete(unchanged, fill.Name)
		} else {
			toCreate = append(toCreate, fill)
		}
	}
	for _, n := range sortedKeys(update) {
		toUpdate = append(toUpdate, byName[n])
	}
	for _, n := range sortedKeys(del) {
		toDelete = append(toDelete, byName[n])
	}
	return toCreate, toUpdate, toDelete, added, removed
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// sliceToFill is upstream's getSliceToFill: the slice closest to full
// after adding n endpoints, or nil when none has room.
func sliceToFill(slices []*discoveryv1.EndpointSlice, n, maxPer int) *discoveryv1.EndpointSlice {
	closest := maxPer
	var best *discoveryv1.EndpointSlice
	for _, s := range slices {
		diff := maxPer - (n + len(s.Endpoints))
		if diff >= 0 && diff < closest {
			closest, best = diff, s
			if diff == 0 {
				return best
			}
		}
	}
	return best
}

func ownedBy(s *discoveryv1.EndpointSlice, svc *corev1.Service) bool {
	for _, o := range s.OwnerReferences {
		if o.UID == svc.UID && o.Kind == "Service" && o.APIVersion == "v1" {
			return true
		}
	}
	return false
}

func newEndpointSlice(svc *corev1.Service, meta *endpointMeta) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Labels:          map[string]string{},
			GenerateName:    namePrefix(svc.Name),
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(svc, serviceKind)},
			Namespace:       svc.Namespace,
		},
		Ports:       meta.ports,
		AddressType: meta.addressType,
		Endpoints:   []discoveryv1.Endpoint{},
	}
	s.Labels, _ = sliceLabels(s, svc)
	return s
}

func isReservedLabel(k string) bool {
	return k == discoveryv1.LabelServiceName || k == discoveryv1.LabelManagedBy || k == corev1.IsHeadlessService
}

// sliceLabels is upstream's setEndpointSliceLabels: the Service's labels
// (but the reserved ones), service.kubernetes.io/headless for headless
// Services, and the service-name and managed-by labels; changed reports
// whether the mirrored Service labels differ from the slice's.
func sliceLabels(s *discoveryv1.EndpointSlice, svc *corev1.Service) (map[string]string, bool) {
	sliceOwn, svcLabels := map[string]string{}, map[string]string{}
	for k, v := range s.Labels {
		if !isReservedLabel(k) {
			sliceOwn[k] = v
		}
	}
	for k, v := range svc.Labels {
		if !isReservedLabel(k) {
			svcLabels[k] = v
		}
	}
	changed := !apiequality.Semantic.DeepEqual(sliceOwn, svcLabels)
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		svcLabels[corev1.IsHeadlessService] = ""
	}
	svcLabels[discoveryv1.LabelServiceName] = svc.Name
	svcLabels[discoveryv1.LabelManagedBy] = EndpointSliceControllerName
	return svcLabels, changed
}

func addTriggerTimeAnnotation(s *discoveryv1.EndpointSlice, t time.Time) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if !t.IsZero() {
		s.Annotations[corev1.EndpointsLastChangeTriggerTime] = t.UTC().Format(time.RFC3339Nano)
	} else {
		delete(s.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
}

// shouldPodBeInEndpoints is upstream's (with terminating pods included):
// not terminal (Succeeded/Failed) and with an IP.
func shouldPodBeInEndpoints(pod *corev1.Pod) bool {
	return !isPodTerminal(pod) && (pod.Status.PodIP != "" || len(pod.Status.PodIPs) > 0)
}

// podToEndpoint is upstream's, with its conditions:
//
//	serving     = the pod is Ready
//	terminating = deletionTimestamp != nil
//	ready       = publishNotReadyAddresses || (serving && !terminating)
func podToEndpoint(pod *corev1.Pod, node *corev1.Node, svc *corev1.Service, addressType discoveryv1.AddressType) discoveryv1.Endpoint {
	serving := isPodReady(pod)
	terminating := pod.DeletionTimestamp != nil
	ready := svc.Spec.PublishNotReadyAddresses || (serving && !terminating)
	ep := discoveryv1.Endpoint{
		Addresses: endpointAddresses(pod, addressType),
		Conditions: discoveryv1.EndpointConditions{
			Ready:       &ready,
			Serving:     &serving,
			Terminating: &terminating,
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if pod.Spec.NodeName != "" {
		n := pod.Spec.NodeName
		ep.NodeName = &n
	}
	if node != nil && node.Labels[corev1.LabelTopologyZone] != "" {
		z := node.Labels[corev1.LabelTopologyZone]
		ep.Zone = &z
	}
	// ShouldSetHostname: "hostname when pod.spec.hostname is set and
	// pod.spec.subdomain equals the Service's name" (same namespace).
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && svc.Namespace == pod.Namespace {
		h := pod.Spec.Hostname
		ep.Hostname = &h
	}
	return ep
}

// endpointAddresses: the pod's IPs of the address type (status.podIPs,
// or status.podIP when a node fills only that), normalised.
func endpointAddresses(pod *corev1.Pod, addressType discoveryv1.AddressType) []string {
	ips := make([]string, 0, len(pod.Status.PodIPs))
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		ips = append(ips, pod.Status.PodIP)
	}
	out := []string{}
	for _, s := range ips {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		a = a.Unmap()
		if a.Is6() == (addressType == discoveryv1.AddressTypeIPv6) {
			out = append(out, a.String())
		}
	}
	return out
}

// endpointPorts is upstream's getEndpointPorts: every Service port whose
// target port resolves for this pod (numbers as they are, names looked up
// in the pod's container ports by name and protocol); a port that does
// not resolve is left out for this pod.
func endpointPorts(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	out := []discoveryv1.EndpointPort{}
	if len(svc.Spec.Ports) == 0 && svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return out
	}
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		num, ok := findPort(pod, sp)
		if !ok {
			continue
		}
		name, proto, port := sp.Name, sp.Protocol, int32(num)
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out = append(out, discoveryv1.EndpointPort{Name: &name, Port: &port, Protocol: &proto, AppProtocol: sp.AppProtocol})
	}
	return out
}

// findPort is upstream's FindPort (including sidecar init containers).
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int, bool) {
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	tp := sp.TargetPort
	if tp.Type == intstr.Int && tp.IntVal == 0 && tp.StrVal == "" {
		tp = intstr.FromInt32(sp.Port) // targetPort defaults to port
	}
	switch tp.Type {
	case intstr.Int:
		return tp.IntValue(), true
	case intstr.String:
		match := func(ports []corev1.ContainerPort) (int, bool) {
			for _, p := range ports {
				pp := p.Protocol
				if pp == "" {
					pp = corev1.ProtocolTCP
				}
				if p.Name == tp.StrVal && pp == proto {
					return int(p.ContainerPort), true
				}
			}
			return 0, false
		}
		for _, c := range pod.Spec.Containers {
			if n, ok := match(c.Ports); ok {
				return n, true
			}
		}
		for _, c := range pod.Spec.InitContainers {
			if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
				continue
			}
			if n, ok := match(c.Ports); ok {
				return n, true
			}
		}
	}
	return 0, false
}

func portString(p discoveryv1.EndpointPort) string {
	var b strings.Builder
	if p.Name != nil {
		b.WriteString(*p.Name)
	}
	b.WriteByte('/')
	if p.Port != nil {
		b.WriteString(strconv.Itoa(int(*p.Port)))
	}
	b.WriteByte('/')
	if p.Protocol != nil {
		b.WriteString(string(*p.Protocol))
	}
	b.WriteByte('/')
	if p.AppProtocol != nil {
		b.WriteString(*p.AppProtocol)
	}
	return b.String()
}

func sortedPorts(ports []discoveryv1.EndpointPort) []discoveryv1.EndpointPort {
	out := append([]discoveryv1.EndpointPort{}, ports...)
	sort.SliceStable(out, func(i, j int) bool { return portString(out[i]) < portString(out[j]) })
	return out
}

// portMapKey identifies a set of ports regardless of order (upstream's
// PortMapKey).
func portMapKey(ports []discoveryv1.EndpointPort) string {
	var parts []string
	for _, p := range sortedPorts(ports) {
		parts = append(parts, portString(p))
	}
	return strings.Join(parts, ",")
}

// endpointsEqualBeyondHash is upstream's: what the set key does not cover.
func endpointsEqualBeyondHash(a, b *discoveryv1.Endpoint) bool {
	strEq := func(x, y *string) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	boolEq := func(x, y *bool) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	if !strEq(a.NodeName, b.NodeName) || !strEq(a.Zone, b.Zone) ||
		!boolEq(a.Conditions.Ready, b.Conditions.Ready) || !boolEq(a.Conditions.Serving, b.Conditions.Serving) ||
		!boolEq(a.Conditions.Terminating, b.Conditions.Terminating) {
		return false
	}
	if (a.TargetRef == nil) != (b.TargetRef == nil) {
		return false
	}
	if a.TargetRef != nil {
		x, y := *a.TargetRef, *b.TargetRef
		x.ResourceVersion, y.ResourceVersion = "", ""
		if x != y {
			return false
		}
	}
	return true
}

// endpointSet is upstream's EndpointSet: endpoints keyed by addresses,
// hostname and target namespace/name. pop hands them out in key order so
// that slices come out the same every time.
type endpointSet struct {
	m      map[string]*discoveryv1.Endpoint
	sorted []string
	next   int
}

func newEndpointSet() *endpointSet { return &endpointSet{m: map[string]*discoveryv1.Endpoint{}} }

func endpointKey(ep *discoveryv1.Endpoint) string {
	addrs := append([]string(nil), ep.Addresses...)
	sort.Strings(addrs)
	var b strings.Builder
	b.WriteString(strings.Join(addrs, ","))
	b.WriteByte('|')
	if ep.Hostname != nil {
		b.WriteString(*ep.Hostname)
	}
	b.WriteByte('|')
	if ep.TargetRef != nil {
		b.WriteString(ep.TargetRef.Namespace + "/" + ep.TargetRef.Name)
	}
	return b.String()
}

func (s *endpointSet) insert(ep *discoveryv1.Endpoint) {
	s.m[endpointKey(ep)] = ep
	s.sorted = nil
}
func (s *endpointSet) get(ep *discoveryv1.Endpoint) *discoveryv1.Endpoint {
	return s.m[endpointKey(ep)]
}
func (s *endpointSet) remove(ep *discoveryv1.Endpoint) {
	delete(s.m, endpointKey(ep))
	s.sorted = nil
}
func (s *endpointSet) len() int { return len(s.m) }

func (s *endpointSet) pop() *discoveryv1.Endpoint {
	if s.sorted == nil {
		s.sorted = make([]string, 0, len(s.m))
		for k := range s.m {
			s.sorted = append(s.sorted, k)
		}
		sort.Strings(s.sorted)
		s.next = 0
	}
	for s.next < len(s.sorted) {
		k := s.sorted[s.next]
		s.next++
		if ep, ok := s.m[k]; ok {
			delete(s.m, k)
			return ep
		}
	}
	return nil
}

// triggerTimeTracker is a cut-down upstream TriggerTimeTracker: the
// endpoints.kubernetes.io/last-change-trigger-time of a sync is the
// earliest change (a pod's Ready transition, the Service's creation) not
// yet published.
type triggerTimeTracker struct {
	mu   sync.Mutex
	seen map[string]*svcTriggers
}

type svcTriggers struct {
	service time.Time
	pods    map[string]time.Time
}

func newTriggerTimeTracker() *triggerTimeTracker {
	return &triggerTimeTracker{seen: map[string]*svcTriggers{}}
}

func podTriggerTime(p *corev1.Pod) time.Time {
	if c := podReadyCondition(p); c != nil {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

func (t *triggerTimeTracker) compute(key string, svc *corev1.Service, pods []*corev1.Pod) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.seen[key]
	var earliest time.Time
	note := func(x time.Time) {
		if !x.IsZero() && (earliest.IsZero() || x.Before(earliest)) {
			earliest = x
		}
	}
	svcTime := svc.CreationTimestamp.Time
	if st == nil || !st.service.Equal(svcTime) {
		note(svcTime)
	}
	now := map[string]time.Time{}
	for _, p := range pods {
		pt := podTriggerTime(p)
		now[p.Name] = pt
		if st == nil || !st.pods[p.Name].Equal(pt) {
			note(pt)
		}
	}
	t.seen[key] = &svcTriggers{service: svcTime, pods: now}
	return earliest
}

func (t *triggerTimeTracker) deleteService(key string) {
	t.mu.Lock()
	delete(t.seen, key)
	t.mu.Unlock()
}
