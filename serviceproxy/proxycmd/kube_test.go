package proxycmd

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

func createService(t *testing.T, cs kubernetes.Interface, ns, name string, labels map[string]string, endpoint string) *corev1.Service {
	t.Helper()
	ctx := context.Background()
	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sliceLabels := map[string]string{discoveryv1.LabelServiceName: name}
	for k, v := range labels {
		sliceLabels[k] = v
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Labels: sliceLabels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{endpoint}, NodeName: ptr.To("n1"),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return svc
}

// TestAgainstARealAPIServer: `switchboard kube-proxy --kubeconfig` proxies
// the Services and EndpointSlices of a real kube-apiserver: --dry-run
// renders them, a running proxy syncs created and deleted ones, ignores
// another proxy's (kube-proxy: "service.kubernetes.io/service-proxy-name
// ... kube-proxy ignores services with this label"), reads only its own
// Node, and keeps running across an API server restart.
func TestAgainstARealAPIServer(t *testing.T) {
	kc := kubetest.Start(t)
	cs := kc.Client
	ctx := context.Background()
	ns := "kpe2e"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2"} {
		if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	web := createService(t, cs, ns, "web", nil, "10.244.0.5")
	createService(t, cs, ns, "other", map[string]string{LabelServiceProxyName: "someone-else"}, "10.244.0.6")

	t.Run("the store holds this node's Node and no other proxy's objects", func(t *testing.T) {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		store, err := NewKubeStore(sctx, kc.Kubeconfig, "n1", quiet())
		if err != nil {
			t.Fatal(err)
		}
		var nodes []string
		for _, n := range cluster.List[*corev1.Node](store, "", nil) {
			nodes = append(nodes, n.Name)
		}
		if strings.Join(nodes, ",") != "n1" {
			t.Errorf("nodes %v, want [n1]", nodes)
		}
		if _, err := cluster.Get[*corev1.Service](store, ns, "other"); err == nil {
			t.Error("a Service labelled service-proxy-name is in the store")
		}
		if _, err := cluster.Get[*discoveryv1.EndpointSlice](store, ns, "other-1"); err == nil {
			t.Error("an EndpointSlice labelled service-proxy-name is in the store")
		}
	})

	t.Run("--dry-run renders the API server's services", func(t *testing.T) {
		var out bytes.Buffer
		if err := Run(ctx, &Options{Mode: "nftables", Kubeconfig: kc.Kubeconfig, DryRun: true, NodeName: "n1"}, &out, quiet()); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s/web:http [%s] 80 -> 10.244.0.5:8080", ns, web.Spec.ClusterIP)
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run:\n%s\nwant a line %q", out.String(), want)
		}
		if strings.Contains(out.String(), "/other:") {
			t.Errorf("dry run shows another proxy's service:\n%s", out.String())
		}
	})

	t.Run("a running proxy follows creates, deletes and an API server restart", func(t *testing.T) {
		for len(fakes.syncs) > 0 {
			<-fakes.syncs
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- Run(rctx, &Options{Mode: "nftables", Kubeconfig: kc.Kubeconfig, NodeName: "n1",
				MinSyncPeriod: 10 * time.Millisecond, SyncPeriod: time.Hour}, io.Discard, quiet())
		}()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			fakes.takeCleanups() // the other kernel modes' cleanup at start
		})
		// await waits for a sync whose state satisfies ok.
		await := func(what string, ok func(*serviceproxy.State) bool) {
			t.Helper()
			timeout := time.After(30 * time.Second)
			for {
				select {
				case st := <-fakes.syncs:
					if ok(st) {
						return
					}
				case err := <-done:
					t.Fatalf("the proxy stopped: %v", err)
				case <-timeout:
					t.Fatalf("no sync with %s", what)
				}
			}
		}
		has := func(name string) func(*serviceproxy.State) bool {
			return func(st *serviceproxy.State) bool {
				for n := range st.Services {
					if strings.HasPrefix(n.String(), ns+"/"+name+":") {
						return true
					}
				}
				return false
			}
		}
		not := func(f func(*serviceproxy.State) bool) func(*serviceproxy.State) bool {
			return func(st *serviceproxy.State) bool { return !f(st) }
		}
		await("web", has("web"))
		start := time.Now()
		createService(t, cs, ns, "late", nil, "10.244.0.7")
		await("the created service", has("late"))
		t.Logf("a created Service was synced %s after the create began", time.Since(start))
		if err := cs.CoreV1().Services(ns).Delete(ctx, "late", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		await("the deleted service gone", not(has("late")))

		kc.StopAPIServer()
		time.Sleep(300 * time.Millisecond)
		if err := kc.StartAPIServer(); err != nil {
			t.Fatal(err)
		}
		createService(t, cs, ns, "after-restart", nil, "10.244.0.8")
		await("the service created after the restart", has("after-restart"))
	})
}
