package kubetest

import (
	"context"
	"net"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The harness gives a working API server: the admin token can write, the
// kubeconfig works for kubectl, and the API server comes back on the same
// address with the same data (etcd keeps running) after a restart. A
// kubeconfig from KubeconfigVia reaches it through the relay (here on
// another loopback address, 127.0.0.2, which the serving certificate does
// not name) before and after the restart.
func TestClusterStartsAndRestarts(t *testing.T) {
	c := Start(t)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.KubeconfigVia(t, ln))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rc.Host, "https://127.0.0.2:") {
		t.Fatalf("the relay's kubeconfig names %s, want the relay's address", rc.Host)
	}
	via, err := kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kubetest-harness"}}
	if _, err := c.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a namespace with the admin token: %v", err)
	}
	if out, err := c.Kubectl(t, "", "get", "namespace", "kubetest-harness", "-o", "name"); err != nil || strings.TrimSpace(out) != "namespace/kubetest-harness" {
		t.Errorf("kubectl get namespace: %q, %v", out, err)
	}
	if _, err := via.CoreV1().Namespaces().Get(ctx, "kubetest-harness", metav1.GetOptions{}); err != nil {
		t.Errorf("through the relay: %v", err)
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
	if _, err := via.CoreV1().Namespaces().Get(ctx, "kubetest-harness", metav1.GetOptions{}); err != nil {
		t.Errorf("through the relay after the restart: %v", err)
	}
}
