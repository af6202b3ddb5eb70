package serviceproxy

import (
	"cmp"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// builtState is a State with an index of its names per service.
type builtState struct {
	st  *State
	idx map[types.NamespacedName][]ServicePortName // service and endpoint names of each service
}

// stateBuilder turns tracker checkouts into States. It keeps the latest
// desired state (built) and the last one the backend applied (applied),
// and computes Changed, Removed and the stale UDP lists of a new State
// against applied. Only the sync goroutine uses it.
type stateBuilder struct {
	node         Node
	clusterCIDRs []netip.Prefix

	built   *builtState
	applied *builtState
	// unapplied are the services rebuilt since applied.
	unapplied map[types.NamespacedName]struct{}
	// triggers are the last-change-trigger-times of slices not yet
	// applied (for the network programming latency).
	triggers   map[types.NamespacedName][]time.Time
	generation uint64
}

func newStateBuilder(node Node, clusterCIDRs []netip.Prefix) *stateBuilder {
	return &stateBuilder{
		node:         node,
		clusterCIDRs: clusterCIDRs,
		built: &builtState{
			st:  &State{Services: map[ServicePortName]*ServicePort{}, Endpoints: map[ServicePortName][]*Endpoint{}},
			idx: map[types.NamespacedName][]ServicePortName{},
		},
		unapplied: map[types.NamespacedName]struct{}{},
		triggers:  map[types.NamespacedName][]time.Time{},
	}
}

// build applies a checkout to the latest desired state and returns the
// State to hand to the backend. The previous States stay untouched.
func (b *stateBuilder) build(c checkout, full bool) *State {
	prev := b.built
	svcs := maps.Clone(prev.st.Services)
	eps := maps.Clone(prev.st.Endpoints)
	idx := maps.Clone(prev.idx)

	for nn, ts := range c.triggers {
		b.triggers[nn] = append(b.triggers[nn], ts...)
	}
	if c.nodeChanged {
		b.node.Labels = c.nodeLabels
		b.node.Zone = c.nodeLabels[corev1.LabelTopologyZone]
		full = true
	}

	for nn, ports := range c.services {
		b.unapplied[nn] = struct{}{}
		for _, name := range idx[nn] {
			delete(svcs, name)
			delete(eps, name)
		}
		var names []ServicePortName
		for name, sp := range ports {
			if old := prev.st.Services[name]; old != nil && reflect.DeepEqual(old, sp) {
				sp = old
			}
			svcs[name] = sp
			names = append(names, name)
		}
		for name, list := range BuildEndpoints(nn, c.slices[nn], b.node.Name, nil) {
			if old, ok := prev.st.Endpoints[name]; ok && endpointsEqual(old, list) {
				list = old
			}
			eps[name] = list
			if ports[name] == nil {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			delete(idx, nn)
		} else {
			slices.SortFunc(names, compareNames)
			idx[nn] = names
		}
	}

	b.generation++
	st := &State{
		Node:         b.node,
		ClusterCIDRs: b.clusterCIDRs,
		Services:     svcs,
		Endpoints:    eps,
		Changed:      map[ServicePortName]bool{},
		Full:         full || b.applied == nil,
		Generation:   b.generation,
	}
	b.built = &builtState{st: st, idx: idx}

	var old *State
	if b.applied != nil {
		old = b.applied.st
	}
	// The names to compare with the applied state: those of the services
	// rebuilt since then, before and after; every name on the first sync.
	check := map[ServicePortName]struct{}{}
	if old == nil {
		for name := range svcs {
			check[name] = struct{}{}
		}
		for name := range eps {
			check[name] = struct{}{}
		}
	} else {
		for nn := range b.unapplied {
			for _, name := range b.applied.idx[nn] {
				check[name] = struct{}{}
			}
			for _, name := range idx[nn] {
				check[name] = struct{}{}
			}
		}
	}
	var oldSvcs map[ServicePortName]*ServicePort
	var oldEps map[ServicePortName][]*Endpoint
	if old != nil {
		oldSvcs, oldEps = old.Services, old.Endpoints
	}
	for name := range check {
		cur, oldSP := svcs[name], oldSvcs[name]
		curEps, prevEps := eps[name], oldEps[name]
		if cur == nil && oldSP != nil {
			st.Removed = append(st.Removed, name)
			if st.RemovedServices == nil {
				st.RemovedServices = map[ServicePortName]*ServicePort{}
			}
			st.RemovedServices[name] = oldSP
		}
		if cur != nil && (cur != oldSP && !reflect.DeepEqual(cur, oldSP) || !endpointsEqual(curEps, prevEps)) {
			st.Changed[name] = true
		}
		if name.Protocol != corev1.ProtocolUDP {
			continue
		}
		// "Find the UDP endpoints that we were sending traffic to in
		// oldEndpointsMap, but are no longer sending to newEndpointsMap."
		// "If the old endpoint wasn't Serving then there can't be stale
		// conntrack entries since there was no traffic sent to it."
		var stale []*Endpoint
		for _, pe := range prevEps {
			if !pe.Serving {
				continue
			}
			if ce := findEndpoint(curEps, pe); ce == nil || !ce.Serving {
				stale = append(stale, pe)
			}
		}
		if len(stale) > 0 {
			if st.StaleUDPEndpoints == nil {
				st.StaleUDPEndpoints = map[ServicePortName][]*Endpoint{}
			}
			st.StaleUDPEndpoints[name] = stale
		}
		// "Detect services that have gone from 0 to non-0 ready
		// endpoints. If there were previously 0 endpoints, but someone
		// tried to connect to it, then a conntrack entry may have been
		// created blackholing traffic to that IP, which should be deleted
		// now."
		if cur != nil && countServing(curEps) > 0 && countServing(prevEps) == 0 {
			st.StaleUDPServices = append(st.StaleUDPServices, name)
		}
	}
	slices.SortFunc(st.Removed, compareNames)
	slices.SortFunc(st.StaleUDPServices, compareNames)
	if st.Full {
		for name := range svcs {
			st.Changed[name] = true
		}
	}
	return st
}

// markApplied records that the backend applied st (the last built State) and
// returns the trigger times it programmed.
func (b *stateBuilder) markApplied(st *State) map[types.NamespacedName][]time.Time {
	if b.built.st != st {
		return nil
	}
	b.applied = b.built
	b.unapplied = map[types.NamespacedName]struct{}{}
	t := b.triggers
	b.triggers = map[types.NamespacedName][]time.Time{}
	return t
}

func compareNames(a, b ServicePortName) int {
	return cmp.Or(
		cmp.Compare(a.Namespace, b.Namespace),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Port, b.Port),
		cmp.Compare(a.Protocol, b.Protocol),
	)
}

// endpointsEqual compares two sorted endpoint lists by value.
func endpointsEqual(a, b []*Endpoint) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 || &a[0] == &b[0] {
		return true
	}
	for i := range a {
		if a[i] != b[i] && !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func findEndpoint(list []*Endpoint, e *Endpoint) *Endpoint {
	i, ok := slices.BinarySearchFunc(list, e, func(x, y *Endpoint) int {
		if c := x.IP.Compare(y.IP); c != 0 {
			return c
		}
		return cmp.Compare(x.Port, y.Port)
	})
	if !ok {
		return nil
	}
	return list[i]
}

func countServing(list []*Endpoint) int {
	n := 0
	for _, e := range list {
		if e.Serving {
			n++
		}
	}
	return n
}

// BuildState returns the State a first sync would hand to a backend for
// the given objects (*corev1.Service, *discoveryv1.EndpointSlice, and this
// node's *corev1.Node; others are ignored): Full, every service port
// Changed. For tests and tools that render without a store.
func BuildState(node Node, clusterCIDRs []netip.Prefix, objs ...any) *State {
	t := newTracker(node.Name, slog.New(slog.DiscardHandler), NewMetrics(nil, ""), func() {}, nil)
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Service:
			t.serviceHandler().OnAdd(o, true)
		case *discoveryv1.EndpointSlice:
			t.sliceHandler().OnAdd(o, true)
		case *corev1.Node:
			t.nodeHandler().OnAdd(o, true)
		}
	}
	b := newStateBuilder(node, clusterCIDRs)
	return b.build(t.checkout(), true)
}
