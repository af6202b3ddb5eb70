package kubernetes

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

// The trims are cluster.TransformFuncs for a store that holds objects for
// this plugin alone (a DNS server fed by a source that owns the objects,
// as CoreDNS's informers are fed by an API server). They keep what the
// plugin reads, as CoreDNS's object.ToPod, object.ToService and
// object.EndpointSliceToEndpoints keep what its kubernetes plugin reads,
// plus what the store itself uses (name, namespace, uid, resourceVersion,
// generation, timestamps, finalizers, and for pods the node name and grace
// period its graceful deletion reads). Answers do not change: the query
// tables run over a trimmed store too (TestQueryTable).
//
// Never install them on a store other components read (`switchboard up`
// runs pods and needs them whole; the controllers of a standalone store
// read a Service's selector and a Pod's spec and conditions; admission
// validates updates against the stored object).

// TrimStore installs TrimPod, TrimService and TrimEndpointSlice on s. Call
// it before anything is written.
func TrimStore(s *cluster.Store) {
	s.SetTransform(cluster.KindPod, TrimPod)
	s.SetTransform(cluster.KindService, TrimService)
	s.SetTransform(cluster.KindEndpointSlice, TrimEndpointSlice)
}

// trimMeta keeps the metadata the plugin (labels, for `labels`) and the
// store read.
func trimMeta(m *metav1.ObjectMeta) {
	*m = metav1.ObjectMeta{
		Name:                       m.Name,
		GenerateName:               m.GenerateName,
		Namespace:                  m.Namespace,
		UID:                        m.UID,
		ResourceVersion:            m.ResourceVersion,
		Generation:                 m.Generation,
		CreationTimestamp:          m.CreationTimestamp,
		DeletionTimestamp:          m.DeletionTimestamp,
		DeletionGracePeriodSeconds: m.DeletionGracePeriodSeconds,
		Labels:                     m.Labels,
		Finalizers:                 m.Finalizers,
	}
}

// TrimPod keeps of a Pod what `pods verified` reads (namespace, labels,
// phase and Status.PodIP, as CoreDNS's object.Pod keeps PodIP) and what
// the store's graceful deletion reads (nodeName, grace period).
func TrimPod(obj cluster.Object) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	trimMeta(&p.ObjectMeta)
	p.Spec = corev1.PodSpec{
		NodeName:                      p.Spec.NodeName,
		TerminationGracePeriodSeconds: p.Spec.TerminationGracePeriodSeconds,
	}
	p.Status = corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP}
}

// TrimService keeps of a Service what its records are made of: type,
// cluster IPs, external name and the ports' names, protocols and numbers.
func TrimService(obj cluster.Object) {
	s, ok := obj.(*corev1.Service)
	if !ok {
		return
	}
	trimMeta(&s.ObjectMeta)
	var ports []corev1.ServicePort
	if len(s.Spec.Ports) > 0 {
		ports = make([]corev1.ServicePort, len(s.Spec.Ports))
		for i, p := range s.Spec.Ports {
			ports[i] = corev1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port}
		}
	}
	s.Spec = corev1.ServiceSpec{
		Type:         s.Spec.Type,
		ClusterIP:    s.Spec.ClusterIP,
		ClusterIPs:   s.Spec.ClusterIPs,
		ExternalName: s.Spec.ExternalName,
		Ports:        ports,
	}
	s.Status = corev1.ServiceStatus{}
}

// TrimEndpointSlice keeps of an EndpointSlice its ports and, of its ready
// endpoints (a nil ready condition counts as ready), the addresses,
// hostname and target pod name; not-ready endpoints are dropped, as
// CoreDNS's EndpointSliceToEndpoints drops them. It keeps the
// last-change-trigger-time annotation the programming latency metric
// reads.
func TrimEndpointSlice(obj cluster.Object) {
	es, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return
	}
	trigger, hasTrigger := es.Annotations[corev1.EndpointsLastChangeTriggerTime]
	trimMeta(&es.ObjectMeta)
	if hasTrigger {
		es.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: trigger}
	}
	// In place: the store's copy is the transform's own.
	eps := es.Endpoints[:0]
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		if r := ep.Conditions.Ready; r != nil && !*r {
			continue
		}
		t := discoveryv1.Endpoint{Addresses: ep.Addresses, Hostname: ep.Hostname}
		if ep.TargetRef != nil && ep.TargetRef.Name != "" {
			t.TargetRef = ep.TargetRef
			if *t.TargetRef != (corev1.ObjectReference{Name: ep.TargetRef.Name}) {
				t.TargetRef = &corev1.ObjectReference{Name: ep.TargetRef.Name}
			}
		}
		eps = append(eps, t)
	}
	clear(es.Endpoints[len(eps):]) // drop what the removed entries pointed at
	if len(eps) == 0 {
		eps = nil
	}
	es.Endpoints = eps
}
