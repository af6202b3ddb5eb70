package controllers

import (
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/admission"
)

// The admission chain `up` uses (defaults, validation, allocation) accepts
// what the API server accepts on a single-stack cluster: "a headless
// Service without a selector" is defaulted to RequireDualStack
// [IPv4, IPv6] and allocates nothing, so the family checks do not apply.
func TestHeadlessWithoutSelectorOnSingleStack(t *testing.T) {
	a, err := NewAllocator(Config{ServiceCIDR: netip.MustParsePrefix("10.96.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	s := cluster.NewStore()
	s.Use(admission.Default, admission.Validate, a.Admit)
	for _, c := range []struct {
		name     string
		selector map[string]string
	}{
		{"no-selector", nil},
		{"with-selector", map[string]string{"app": "db"}},
	} {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: "default"},
			Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: c.selector, Ports: []corev1.ServicePort{{Port: 5432}}},
		}
		o, err := s.Create(svc)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := o.(*corev1.Service).Spec.ClusterIP; got != corev1.ClusterIPNone {
			t.Errorf("%s: clusterIP %q, want None", c.name, got)
		}
	}
}
