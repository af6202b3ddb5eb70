package kubernetes

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// TestTrims: each trim keeps what the plugin reads and is idempotent (a
// store applies it again to an object that comes back through Update).
// What the answers need is tested by the query tables over a trimmed store.
func TestTrims(t *testing.T) {
	meta := metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "7", Labels: map[string]string{"app": "x"},
		Annotations: map[string]string{"big": "yes"}, OwnerReferences: []metav1.OwnerReference{{Name: "rs"}}}
	trigger := map[string]string{"big": "yes", corev1.EndpointsLastChangeTriggerTime: "2026-01-01T00:00:00Z"}
	cases := []struct {
		name string
		trim cluster.TransformFunc
		in   cluster.Object
		want cluster.Object
	}{
		{"pod: namespace, labels, phase and podIP (CoreDNS's object.Pod), node and grace for the store", TrimPod,
			&corev1.Pod{ObjectMeta: meta,
				Spec: corev1.PodSpec{NodeName: "n", TerminationGracePeriodSeconds: ptr.To(int64(30)),
					Containers: []corev1.Container{{Name: "c", Image: "i"}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", PodIPs: []corev1.PodIP{{IP: "10.0.0.1"}},
					Conditions: []corev1.PodCondition{{Type: corev1.PodReady}}}},
			&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "7", Labels: map[string]string{"app": "x"}},
				Spec:   corev1.PodSpec{NodeName: "n", TerminationGracePeriodSeconds: ptr.To(int64(30))},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1"}}},
		{"service: type, cluster IPs, external name, ports' name, protocol and number", TrimService,
			&corev1.Service{ObjectMeta: meta, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1",
				ClusterIPs: []string{"10.96.0.1"}, Selector: map[string]string{"app": "x"},
				Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, NodePort: 30080}}}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "7", Labels: map[string]string{"app": "x"}},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"},
					Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}}}},
		{"slice: ports; ready endpoints (nil is ready) with addresses, hostname, target name; the trigger time", TrimEndpointSlice,
			&discoveryv1.EndpointSlice{ObjectMeta: func() metav1.ObjectMeta { m := meta; m.Annotations = trigger; return m }(),
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(80))}},
				Endpoints: []discoveryv1.Endpoint{
					{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
					{Addresses: []string{"10.0.0.2"}, Hostname: ptr.To("h"), NodeName: ptr.To("n"),
						Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true)},
						TargetRef:  &corev1.ObjectReference{Kind: "Pod", Name: "p", UID: "pu"}},
					{Addresses: []string{"10.0.0.3"}},
				}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns", UID: "u", ResourceVersion: "7", Labels: map[string]string{"app": "x"},
				Annotations: map[string]string{corev1.EndpointsLastChangeTriggerTime: "2026-01-01T00:00:00Z"}},
				AddressType: discoveryv1.AddressTypeIPv4,
				Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(80))}},
				Endpoints: []discoveryv1.Endpoint{
					{Addresses: []string{"10.0.0.2"}, Hostname: ptr.To("h"), TargetRef: &corev1.ObjectReference{Name: "p"}},
					{Addresses: []string{"10.0.0.3"}},
				}}},
		{"slice without a ready endpoint", TrimEndpointSlice,
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"},
				Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}}}},
			&discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "ns"}}},
		{"another kind is left alone", TrimPod,
			&corev1.Service{ObjectMeta: meta}, &corev1.Service{ObjectMeta: meta}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.trim(c.in)
			if !apiequality.Semantic.DeepEqual(c.in, c.want) {
				t.Fatalf("trimmed to\n%+v\nwant\n%+v", c.in, c.want)
			}
			again := c.in.DeepCopyObject().(cluster.Object)
			c.trim(again)
			if !apiequality.Semantic.DeepEqual(again, c.want) {
				t.Fatalf("not idempotent: trimmed again to\n%+v", again)
			}
		})
	}
}
