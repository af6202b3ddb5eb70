package serviceproxy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Put fills what a Service defaults ("Protocol ... Default is TCP",
// "type ... Defaults to ClusterIP") and marks the port changed.
func TestPutDefaults(t *testing.T) {
	for _, tc := range []struct {
		name      string
		svc       ServicePort
		wantProto corev1.Protocol
		wantType  corev1.ServiceType
	}{
		{"empty: TCP ClusterIP", ServicePort{Name: ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}}, corev1.ProtocolTCP, corev1.ServiceTypeClusterIP},
		{"UDP NodePort kept", ServicePort{Name: ServicePortName{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}, Protocol: corev1.ProtocolUDP, Type: corev1.ServiceTypeNodePort}, corev1.ProtocolUDP, corev1.ServiceTypeNodePort},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := NewState("n1")
			svc := tc.svc
			ep := &Endpoint{}
			st.Put(&svc, ep)
			got := st.Services[svc.Name]
			if got == nil || got.Protocol != tc.wantProto || got.Name.Protocol != tc.wantProto || got.Type != tc.wantType {
				t.Fatalf("stored %+v, want protocol %s type %s", got, tc.wantProto, tc.wantType)
			}
			if !st.Changed[svc.Name] || len(st.Endpoints[svc.Name]) != 1 || !st.Full || st.Node.Name != "n1" {
				t.Fatalf("state %+v", st)
			}
		})
	}
}
