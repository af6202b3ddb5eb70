package admission

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// testAllocator stands in for the service IP allocator that runs after
// Validate in the lead's chain: it gives each new ClusterIP service the
// next address.
func testAllocator() cluster.AdmitFunc {
	next := 10
	return func(op cluster.Operation, obj, old cluster.Object) error {
		s, ok := obj.(*corev1.Service)
		if !ok || op == cluster.OpDelete || s.Spec.Type == corev1.ServiceTypeExternalName || s.Spec.ClusterIP != "" {
			return nil
		}
		ip := fmt.Sprintf("10.96.0.%d", next)
		next++
		s.Spec.ClusterIP, s.Spec.ClusterIPs = ip, []string{ip}
		return nil
	}
}

func TestStoreRunsDefaultAndValidate(t *testing.T) {
	store := cluster.NewStore()
	store.Use(Default, Validate, testAllocator())

	bad := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "admin", Port: 70000}},
		},
	}
	_, err := store.Create(bad)
	if !apierrors.IsInvalid(err) {
		t.Fatalf("an invalid Service must be refused with 422 Invalid, got %v", err)
	}
	if !strings.Contains(err.Error(), "spec.ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive") {
		t.Errorf("the error must name the field path: %v", err)
	}
	if _, err := store.Get(cluster.KindService, "default", "web"); !apierrors.IsNotFound(err) {
		t.Errorf("a refused Service must not be stored: %v", err)
	}

	good := bad.DeepCopy()
	good.Spec.Ports[1].Port = 8081
	stored, err := store.Create(good)
	if err != nil {
		t.Fatalf("a valid Service must be stored: %v", err)
	}
	s := stored.(*corev1.Service)
	if s.Spec.Type != corev1.ServiceTypeClusterIP || s.Spec.SessionAffinity != corev1.ServiceAffinityNone ||
		s.Spec.Ports[0].Protocol != corev1.ProtocolTCP || s.Spec.Ports[1].TargetPort != intstr.FromInt32(8081) {
		t.Errorf("the stored Service lacks defaults: %+v", s.Spec)
	}
	if s.Spec.ClusterIP != "10.96.0.10" {
		t.Fatalf("allocator did not run after validation: %q", s.Spec.ClusterIP)
	}

	// Re-applying the same manifest (no clusterIP) keeps the address and
	// does not bump the generation.
	again, _, err := store.Apply(good.DeepCopy())
	if err != nil {
		t.Fatalf("re-apply: %v", err)
	}
	if again.(*corev1.Service).Spec.ClusterIP != "10.96.0.10" {
		t.Errorf("re-applied Service lost its clusterIP: %q", again.(*corev1.Service).Spec.ClusterIP)
	}
	if again.GetResourceVersion() != stored.GetResourceVersion() {
		t.Errorf("re-applying an unchanged manifest changed the object (rv %s -> %s)", stored.GetResourceVersion(), again.GetResourceVersion())
	}

	// An update that breaks a rule is refused and the old version stays.
	broken := good.DeepCopy()
	broken.Spec.Ports[0].TargetPort = intstr.FromString("not_a_name")
	if _, _, err := store.Apply(broken); !apierrors.IsInvalid(err) {
		t.Fatalf("invalid update: want Invalid, got %v", err)
	}
	cur, err := cluster.Get[*corev1.Service](store, "default", "web")
	if err != nil || cur.Spec.Ports[0].TargetPort != intstr.FromInt32(80) {
		t.Errorf("the last good version must stay: %v %+v", err, cur)
	}

	// Pods get phase Pending and a QoS class on create.
	p := validPod()
	storedPod, err := store.Create(p)
	if err != nil {
		t.Fatalf("create pod: %v", err)
	}
	if sp := storedPod.(*corev1.Pod); sp.Status.Phase != corev1.PodPending || sp.Status.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("pod status on create: %+v", sp.Status)
	}
	// A pod without a command is refused, naming the field.
	p2 := validPod()
	p2.Name, p2.Spec.Containers[0].Command = "web-1", nil
	if _, err := store.Create(p2); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.containers[0].command: Required value") {
		t.Errorf("pod without command: %v", err)
	}
}
