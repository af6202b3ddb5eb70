package kubetest

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The harness gives a working API server: the admin token can write, the
// kubeconfig works for kubectl, and the API server comes back on the same
// address with the same data (etcd keeps running) after a restart.
func TestClusterStartsAndRestarts(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubetest-harness"}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a namespace with the admin token: %v", err)
	}
	if out, err := c.Kubectl(t, "", "get", "namespace", "kubetest-harness", "-o", "name"); err != nil || strings.TrimSpace(out) != "namespace/kubetest-harness" {
		t.Errorf("kubectl get namespace: %q, %v", out, err)
	}
	c.StopAPIServer()
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, "kubetest-harness", metav1.GetOptions{}); err == nil {
		t.Fatal("the API server still answers after StopAPIServer")
	}
	if err := c.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.CoreV1().Namespaces().Get(ctx, "kubetest-harness", metav1.GetOptions{}); err != nil {
		t.Errorf("the namespace is gone after a restart (etcd keeps the data): %v", err)
	}
}
