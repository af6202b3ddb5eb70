package serviceproxy

import (
	"cmp"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// DefaultClientIPTimeout is the ClientIP session affinity timeout when a
// service sets none: "The value must be >0 && <=86400(for 1 day) if
// ServiceAffinity == "ClientIP". Default value is 10800(for 3 hours)."
const DefaultClientIPTimeout = 10800 * time.Second

// BuildServicePorts turns one Service into its proxied ports, as
// kube-proxy's serviceToServiceMap and newBaseServiceInfo do. It returns
// nil for services kube-proxy skips (ShouldSkipService: "if ClusterIP is
// "None" or empty, skip proxying" and "ServiceTypeExternalName services
// don't get proxied") and for services without a valid cluster IP.
// Addresses that do not parse are left out (logged on log when not nil).
func BuildServicePorts(svc *corev1.Service, log *slog.Logger) map[ServicePortName]*ServicePort {
	if svc == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		return nil
	}
	nn := types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}
	bad := func(field, value string) {
		if log != nil {
			log.Warn("service: ignoring an address that does not parse", "service", nn.String(), "field", field, "value", value)
		}
	}
	rawIPs := svc.Spec.ClusterIPs
	if len(rawIPs) == 0 {
		rawIPs = []string{svc.Spec.ClusterIP}
	}
	var clusterIPs []netip.Addr
	for i, s := range rawIPs {
		if s == corev1.ClusterIPNone || s == "" {
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			bad("spec.clusterIPs["+strconv.Itoa(i)+"]", s)
			continue
		}
		clusterIPs = appendAddr(clusterIPs, a.Unmap())
	}
	if len(clusterIPs) == 0 {
		return nil
	}

	var externalIPs []netip.Addr
	for i, s := range svc.Spec.ExternalIPs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			bad("spec.externalIPs["+strconv.Itoa(i)+"]", s)
			continue
		}
		externalIPs = appendAddr(externalIPs, a.Unmap())
	}
	// "LoadBalancerSourceRanges validation mistakenly allows whitespace
	// padding."
	var sourceRanges []netip.Prefix
	for i, s := range svc.Spec.LoadBalancerSourceRanges {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			bad("spec.loadBalancerSourceRanges["+strconv.Itoa(i)+"]", s)
			continue
		}
		p = unmapPrefix(p).Masked()
		if !slices.Contains(sourceRanges, p) {
			sourceRanges = append(sourceRanges, p)
		}
	}
	// Only VIP-style load balancers: "ing.IP == "" || !proxyutil.IsVIPMode(ing)"
	// is skipped, and an unset ipMode is VIP.
	var lbVIPs []netip.Addr
	for i, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" {
			continue
		}
		if ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP {
			continue
		}
		a, err := netip.ParseAddr(ing.IP)
		if err != nil {
			bad("status.loadBalancer.ingress["+strconv.Itoa(i)+"].ip", ing.IP)
			continue
		}
		lbVIPs = appendAddr(lbVIPs, a.Unmap())
	}

	var sticky time.Duration
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		sticky = DefaultClientIPTimeout
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
			sticky = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
		}
	}
	externalLocal := externalPolicyLocal(svc)
	internalLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
	var hcnp int32
	// NeedsHealthCheck: a LoadBalancer with externalTrafficPolicy Local.
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && externalLocal {
		hcnp = svc.Spec.HealthCheckNodePort
		if hcnp == 0 && log != nil {
			log.Warn("service has no healthcheck nodeport", "service", nn.String())
		}
	}
	var td string
	if svc.Spec.TrafficDistribution != nil {
		td = *svc.Spec.TrafficDistribution
	}

	out := make(map[ServicePortName]*ServicePort, len(svc.Spec.Ports))
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		name := ServicePortName{NamespacedName: nn, Port: p.Name, Protocol: proto}
		out[name] = &ServicePort{
			Name:                     name,
			Type:                     svc.Spec.Type,
			ClusterIPs:               clusterIPs,
			Port:                     p.Port,
			Protocol:                 proto,
			NodePort:                 p.NodePort,
			ExternalIPs:              externalIPs,
			LoadBalancerVIPs:         lbVIPs,
			LoadBalancerSourceRanges: sourceRanges,
			StickyMaxAge:             sticky,
			ExternalPolicyLocal:      externalLocal,
			InternalPolicyLocal:      internalLocal,
			HealthCheckNodePort:      hcnp,
			TrafficDistribution:      td,
		}
	}
	return out
}

// externalPolicyLocal is pkg/api/v1/service's ExternalPolicyLocal: only
// services reachable from outside (NodePort, LoadBalancer, or with
// externalIPs) have an external policy.
func externalPolicyLocal(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer && svc.Spec.Type != corev1.ServiceTypeNodePort && len(svc.Spec.ExternalIPs) == 0 {
		return false
	}
	return svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// BuildEndpoints merges the EndpointSlices of one service (all carrying
// its kubernetes.io/service-name label) into endpoints per service port,
// as kube-proxy's EndpointSliceCache does:
//
//   - only IPv4 and IPv6 slices ("EndpointSlice address type not
//     supported by kube-proxy" otherwise); ports with a nil name or a nil
//     or zero port are ignored;
//   - one endpoint per address[0] and port; conditions: ready nil = true,
//     serving nil = true, terminating nil = false;
//   - an address in several slices is kept once: "we want to prefer the
//     running pod over the terminating one";
//   - IsLocal is nodeName == this node.
//
// Each port's endpoints are sorted by address and port.
func BuildEndpoints(nn types.NamespacedName, epSlices []*discoveryv1.EndpointSlice, nodeName string, log *slog.Logger) map[ServicePortName][]*Endpoint {
	type key struct {
		ip   netip.Addr
		port int32
	}
	bySP := map[ServicePortName]map[key]*Endpoint{}
	for _, s := range epSlices {
		if s == nil || (s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6) {
			continue
		}
		for _, port := range s.Ports {
			if port.Name == nil || port.Port == nil || *port.Port == 0 {
				if log != nil {
					log.Debug("endpointslice: ignoring a port without name or number", "endpointslice", s.Namespace+"/"+s.Name)
				}
				continue
			}
			proto := corev1.ProtocolTCP
			if port.Protocol != nil && *port.Protocol != "" {
				proto = *port.Protocol
			}
			spn := ServicePortName{NamespacedName: nn, Port: *port.Name, Protocol: proto}
			set := bySP[spn]
			if set == nil {
				set = map[key]*Endpoint{}
				bySP[spn] = set
			}
			for i := range s.Endpoints {
				e := &s.Endpoints[i]
				if len(e.Addresses) == 0 {
					continue
				}
				ip, err := netip.ParseAddr(e.Addresses[0])
				if err != nil {
					if log != nil {
						log.Warn("endpointslice: ignoring an endpoint address that does not parse",
							"endpointslice", s.Namespace+"/"+s.Name, "field", "endpoints["+strconv.Itoa(i)+"].addresses[0]", "value", e.Addresses[0])
					}
					continue
				}
				ep := newEndpoint(e, ip.Unmap(), *port.Port, nodeName)
				k := key{ep.IP, ep.Port}
				if _, exists := set[k]; !exists || !ep.Terminating {
					set[k] = ep
				}
			}
		}
	}
	out := make(map[ServicePortName][]*Endpoint, len(bySP))
	for spn, set := range bySP {
		if len(set) == 0 {
			continue
		}
		list := make([]*Endpoint, 0, len(set))
		for _, ep := range set {
			list = append(list, ep)
		}
		slices.SortFunc(list, func(a, b *Endpoint) int {
			if c := a.IP.Compare(b.IP); c != 0 {
				return c
			}
			return cmp.Compare(a.Port, b.Port)
		})
		out[spn] = list
	}
	return out
}

func newEndpoint(e *discoveryv1.Endpoint, ip netip.Addr, port int32, nodeName string) *Endpoint {
	ep := &Endpoint{
		IP:          ip,
		Port:        port,
		Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
		Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
		Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
	}
	if e.NodeName != nil {
		ep.NodeName = *e.NodeName
		ep.IsLocal = nodeName != "" && *e.NodeName == nodeName
	}
	if e.Zone != nil {
		ep.Zone = *e.Zone
	}
	if e.Hints != nil {
		for _, z := range e.Hints.ForZones {
			ep.ZoneHints = append(ep.ZoneHints, z.Name)
		}
		for _, n := range e.Hints.ForNodes {
			ep.NodeHints = append(ep.NodeHints, n.Name)
		}
		ep.ZoneHints = sortedUnique(ep.ZoneHints)
		ep.NodeHints = sortedUnique(ep.NodeHints)
	}
	return ep
}

func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	return slices.Compact(s)
}

func appendAddr(list []netip.Addr, a netip.Addr) []netip.Addr {
	if slices.Contains(list, a) {
		return list
	}
	return append(list, a)
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix into its IPv4 prefix.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// nodeInfo is what the tracker keeps of this proxy's Node object.
type nodeInfo struct {
	exists   bool
	labels   map[string]string
	eligible bool // not deleted, not tainted ToBeDeletedByClusterAutoscaler
}

// ToBeDeletedTaint is the Cluster Autoscaler's taint: a node carrying it is
// not eligible for load-balancer traffic (/healthz answers 503).
const ToBeDeletedTaint = "ToBeDeletedByClusterAutoscaler"

// tracker follows Services, EndpointSlices and this node's Node object
// from the store (as kube-proxy's ServiceChangeTracker,
// EndpointsChangeTracker and node handler do) and remembers which
// services changed since the last checkout. It is level-triggered: it keeps
// the current objects, not a list of events; a checkout hands out the
// current state of every service that changed.
type tracker struct {
	nodeName  string
	log       *slog.Logger
	m         *Metrics
	startTime time.Time
	onChange  func()              // a change needs a sync
	onNode    func(eligible bool) // this node's eligibility changed

	mu       sync.Mutex
	svcPorts map[types.NamespacedName]map[ServicePortName]*ServicePort
	slices   map[types.NamespacedName]map[string]*discoveryv1.EndpointSlice
	dirty    map[types.NamespacedName]struct{}
	// pending counts for the *_changes_pending gauges
	svcDirty  map[types.NamespacedName]struct{}
	epPending int
	triggers  map[types.NamespacedName][]time.Time
	node      nodeInfo
	nodeDirty bool
}

func newTracker(nodeName string, log *slog.Logger, m *Metrics, onChange func(), onNode func(bool)) *tracker {
	return &tracker{
		nodeName:  nodeName,
		log:       log,
		m:         m,
		startTime: time.Now(),
		onChange:  onChange,
		onNode:    onNode,
		svcPorts:  map[types.NamespacedName]map[ServicePortName]*ServicePort{},
		slices:    map[types.NamespacedName]map[string]*discoveryv1.EndpointSlice{},
		dirty:     map[types.NamespacedName]struct{}{},
		svcDirty:  map[types.NamespacedName]struct{}{},
		triggers:  map[types.NamespacedName][]time.Time{},
		node:      nodeInfo{eligible: true},
	}
}

// serviceUpdate handles a Service event; cur nil means deleted.
func (t *tracker) serviceUpdate(nn types.NamespacedName, cur *corev1.Service) {
	ports := BuildServicePorts(cur, t.log)
	t.m.ServiceChangesTotal.Inc()
	t.mu.Lock()
	prev, had := t.svcPorts[nn]
	if (had || ports == nil) && reflect.DeepEqual(prev, ports) {
		t.mu.Unlock()
		return
	}
	if ports == nil {
		delete(t.svcPorts, nn)
	} else {
		t.svcPorts[nn] = ports
	}
	t.dirty[nn] = struct{}{}
	t.svcDirty[nn] = struct{}{}
	t.m.ServiceChangesPending.Set(float64(len(t.svcDirty)))
	t.mu.Unlock()
	t.onChange()
}

// sliceKey returns the service an EndpointSlice belongs to.
func sliceService(s *discoveryv1.EndpointSlice) (types.NamespacedName, bool) {
	name := s.Labels[discoveryv1.LabelServiceName]
	if name == "" || s.Namespace == "" || s.Name == "" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: s.Namespace, Name: name}, true
}

func sliceRelevantEqual(a, b *discoveryv1.EndpointSlice) bool {
	return a.AddressType == b.AddressType && reflect.DeepEqual(a.Endpoints, b.Endpoints) && reflect.DeepEqual(a.Ports, b.Ports)
}

// sliceUpdate handles an EndpointSlice event; remove means deleted.
func (t *tracker) sliceUpdate(s *discoveryv1.EndpointSlice, remove bool) {
	if s.AddressType != discoveryv1.AddressTypeIPv4 && s.AddressType != discoveryv1.AddressTypeIPv6 {
		return
	}
	nn, ok := sliceService(s)
	if !ok {
		t.log.Debug("endpointslice without the kubernetes.io/service-name label: ignored", "endpointslice", s.Namespace+"/"+s.Name)
		return
	}
	t.m.EndpointChangesTotal.Inc()
	t.mu.Lock()
	set := t.slices[nn]
	old, had := set[s.Name]
	changed := false
	switch {
	case remove:
		if had {
			delete(set, s.Name)
			if len(set) == 0 {
				delete(t.slices, nn)
			}
			changed = true
			// "In case of Endpoints deletion, the LastChangeTriggerTime
			// annotation is by-definition coming from the time of last
			// update, which is not what we want to measure."
			delete(t.triggers, nn)
		}
	default:
		if set == nil {
			set = map[string]*discoveryv1.EndpointSlice{}
			t.slices[nn] = set
		}
		set[s.Name] = s
		changed = !had || !sliceRelevantEqual(old, s)
		if changed {
			if ts := lastChangeTriggerTime(s.Annotations); !ts.IsZero() && ts.After(t.startTime) {
				t.triggers[nn] = append(t.triggers[nn], ts)
			}
		}
	}
	if changed {
		t.dirty[nn] = struct{}{}
		t.epPending++
		t.m.EndpointChangesPending.Set(float64(t.epPending))
	}
	t.mu.Unlock()
	if changed {
		t.onChange()
	}
}

func lastChangeTriggerTime(ann map[string]string) time.Time {
	v, ok := ann[corev1.EndpointsLastChangeTriggerTime]
	if !ok {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}
	}
	return ts
}

// nodeUpdate handles an event of this proxy's Node; cur nil means deleted.
func (t *tracker) nodeUpdate(cur *corev1.Node) {
	ni := nodeInfo{eligible: false}
	if cur != nil {
		ni.exists = true
		ni.labels = cur.Labels
		ni.eligible = cur.DeletionTimestamp.IsZero()
		for _, taint := range cur.Spec.Taints {
			if taint.Key == ToBeDeletedTaint {
				ni.eligible = false
			}
		}
	}
	t.mu.Lock()
	labelsChanged := !reflect.DeepEqual(t.node.labels, ni.labels) && !(len(t.node.labels) == 0 && len(ni.labels) == 0)
	eligChanged := t.node.eligible != ni.eligible
	t.node = ni
	if labelsChanged {
		t.nodeDirty = true
	}
	t.mu.Unlock()
	if eligChanged && t.onNode != nil {
		t.onNode(ni.eligible)
	}
	if labelsChanged {
		t.onChange()
	}
}

// checkout is the state of every service that changed since the last
// checkout.
type checkout struct {
	services    map[types.NamespacedName]map[ServicePortName]*ServicePort // nil value: no proxied ports
	slices      map[types.NamespacedName][]*discoveryv1.EndpointSlice
	triggers    map[types.NamespacedName][]time.Time
	nodeLabels  map[string]string
	nodeChanged bool
}

func (t *tracker) checkout() checkout {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := checkout{
		services:    make(map[types.NamespacedName]map[ServicePortName]*ServicePort, len(t.dirty)),
		slices:      make(map[types.NamespacedName][]*discoveryv1.EndpointSlice, len(t.dirty)),
		triggers:    t.triggers,
		nodeLabels:  t.node.labels,
		nodeChanged: t.nodeDirty,
	}
	for nn := range t.dirty {
		c.services[nn] = t.svcPorts[nn]
		set := t.slices[nn]
		list := make([]*discoveryv1.EndpointSlice, 0, len(set))
		for _, s := range set {
			list = append(list, s)
		}
		// A stable order, so that a duplicate address resolves the same
		// way every time.
		slices.SortFunc(list, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
		c.slices[nn] = list
	}
	t.dirty = map[types.NamespacedName]struct{}{}
	t.svcDirty = map[types.NamespacedName]struct{}{}
	t.epPending = 0
	t.triggers = map[types.NamespacedName][]time.Time{}
	t.nodeDirty = false
	t.m.ServiceChangesPending.Set(0)
	t.m.EndpointChangesPending.Set(0)
	return c
}

// LabelServiceProxyName marks a Service (and its EndpointSlices) served by
// another proxy: kube-proxy watches both kinds with the label selector
// "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
// (cmd/kube-proxy/app/server.go), so an object with either label is, for
// it, not there at all.
const LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// selected reports whether kube-proxy's label selector selects an object
// with these labels.
func selected(labels map[string]string) bool {
	if _, ok := labels[LabelServiceProxyName]; ok {
		return false
	}
	_, headless := labels[corev1.IsHeadlessService]
	return !headless
}

// handlers returns the store event handlers feeding t.
func (t *tracker) serviceHandler() cache.ResourceEventHandler {
	update := func(s *corev1.Service) {
		nn := types.NamespacedName{Namespace: s.Namespace, Name: s.Name}
		if !selected(s.Labels) {
			t.serviceUpdate(nn, nil) // labelled away: as a delete
			return
		}
		t.serviceUpdate(nn, s)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*corev1.Service); ok {
				update(s)
			}
		},
		UpdateFunc: func(_, obj any) {
			if s, ok := obj.(*corev1.Service); ok {
				update(s)
			}
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*corev1.Service); ok {
				t.serviceUpdate(types.NamespacedName{Namespace: s.Namespace, Name: s.Name}, nil)
			}
		},
	}
}

func (t *tracker) sliceHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
				t.sliceUpdate(s, !selected(s.Labels))
			}
		},
		UpdateFunc: func(oldObj, obj any) {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				return
			}
			// A slice moved to another service: remove it from the old one.
			if old, ok := oldObj.(*discoveryv1.EndpointSlice); ok && old != s {
				on, ok1 := sliceService(old)
				nn, ok2 := sliceService(s)
				if ok1 && (!ok2 || on != nn) {
					t.sliceUpdate(old, true)
				}
			}
			t.sliceUpdate(s, !selected(s.Labels))
		},
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			if s, ok := obj.(*discoveryv1.EndpointSlice); ok {
				t.sliceUpdate(s, true)
			}
		},
	}
}

func (t *tracker) nodeHandler() cache.ResourceEventHandler {
	mine := func(obj any) (*corev1.Node, bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		n, ok := obj.(*corev1.Node)
		return n, ok && t.nodeName != "" && n.Name == t.nodeName
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if n, ok := mine(obj); ok {
				t.nodeUpdate(n)
			}
		},
		UpdateFunc: func(_, obj any) {
			if n, ok := mine(obj); ok {
				t.nodeUpdate(n)
			}
		},
		DeleteFunc: func(obj any) {
			if _, ok := mine(obj); ok {
				t.nodeUpdate(nil)
			}
		},
	}
}
