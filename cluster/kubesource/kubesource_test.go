package kubesource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
)

// eventually polls cond until it returns nil or the time is up.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRESTConfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	cases := []struct {
		name       string
		kubeconfig string
		wantErr    error
	}{
		// "Without --kubeconfig, in-cluster configuration is used when
		// present (service account token), as every Kubernetes component
		// does" - and an error naming both when it is not.
		{"neither kubeconfig nor in-cluster", "", ErrNoConfig},
		{"a kubeconfig that does not exist", "/nonexistent/kubeconfig", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RESTConfig(tc.kubeconfig)
			if err == nil {
				t.Fatal("want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if tc.kubeconfig != "" && !strings.Contains(err.Error(), tc.kubeconfig) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	if InCluster() {
		t.Error("InCluster() with KUBERNETES_SERVICE_HOST unset")
	}
}

func TestSourceAgainstARealAPIServer(t *testing.T) {
	kc := kubetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cs := kc.Client
	rc, err := RESTConfig(kc.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}

	store, src, err := Open(ctx, Config{
		REST:           rc,
		Kinds:          []*cluster.Kind{cluster.KindNamespace, cluster.KindService, cluster.KindEndpointSlice, cluster.KindSecret, cluster.KindIngress},
		FieldSelectors: map[*cluster.Kind]string{cluster.KindSecret: TLSSecrets},
		StatusKinds:    []*cluster.Kind{cluster.KindIngress},
		Events:         true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !src.HasSynced() {
		t.Fatal("Open returned before the caches synced")
	}
	// What the API server holds from the start (its own "kubernetes"
	// Service in default) is in the store once synced.
	if _, err := cluster.Get[*corev1.Service](store, "default", "kubernetes"); err != nil {
		t.Errorf("the API server's own Service is not in the synced store: %v", err)
	}

	ns := "ks"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("objects are mirrored with the server's uid and removed when deleted", func(t *testing.T) {
		svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eps, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "service and slice mirrored", func() error {
			got, err := cluster.Get[*corev1.Service](store, ns, "web")
			if err != nil {
				return err
			}
			if got.UID != svc.UID || got.Spec.ClusterIP != svc.Spec.ClusterIP || got.Spec.ClusterIP == "" {
				return fmt.Errorf("stored uid %s clusterIP %s, server's %s %s", got.UID, got.Spec.ClusterIP, svc.UID, svc.Spec.ClusterIP)
			}
			if len(got.ManagedFields) != 0 {
				return errors.New("managedFields kept")
			}
			s, err := cluster.Get[*discoveryv1.EndpointSlice](store, ns, "web-1")
			if err != nil {
				return err
			}
			if s.UID != eps.UID {
				return fmt.Errorf("slice uid %s, server's %s", s.UID, eps.UID)
			}
			return nil
		})
		if err := cs.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "deleted service removed", func() error {
			if _, err := cluster.Get[*corev1.Service](store, ns, "web"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("still stored (%v)", err)
			}
			return nil
		})
	})

	t.Run("only kubernetes.io/tls Secrets are listed with the TLSSecrets field selector", func(t *testing.T) {
		for _, sec := range []*corev1.Secret{
			{ObjectMeta: metav1.ObjectMeta{Name: "opaque"}, Type: corev1.SecretTypeOpaque, StringData: map[string]string{"a": "b"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "cert"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: []byte("c"), corev1.TLSPrivateKeyKey: []byte("k")}},
		} {
			if _, err := cs.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, 5*time.Second, "tls secret mirrored", func() error {
			_, err := cluster.Get[*corev1.Secret](store, ns, "cert")
			return err
		})
		if _, err := cluster.Get[*corev1.Secret](store, ns, "opaque"); !apierrors.IsNotFound(err) {
			t.Errorf("the Opaque Secret is in the store: %v", err)
		}
	})

	t.Run("status and events written into the store reach the API server", func(t *testing.T) {
		ing, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: "site"},
			Spec: networkingv1.IngressSpec{DefaultBackend: &networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Number: 80}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "ingress mirrored", func() error {
			_, err := cluster.Get[*networkingv1.Ingress](store, ns, "site")
			return err
		})
		if _, err := store.UpdateStatusFunc(cluster.KindIngress, ns, "site", func(o cluster.Object) error {
			o.(*networkingv1.Ingress).Status.LoadBalancer.Ingress = []networkingv1.IngressLoadBalancerIngress{{IP: "127.0.0.42"}}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		local, _ := cluster.Get[*networkingv1.Ingress](store, ns, "site")
		cluster.NewRecorder(store, "switchboard-ingress", "test").Eventf(local, corev1.EventTypeWarning, "Rejected", "no such backend %s", "web")
		eventually(t, 5*time.Second, "status on the server", func() error {
			got, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "site", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if lb := got.Status.LoadBalancer.Ingress; len(lb) != 1 || lb[0].IP != "127.0.0.42" {
				return fmt.Errorf("status.loadBalancer.ingress %v", lb)
			}
			if got.Generation != ing.Generation {
				return fmt.Errorf("generation %d -> %d: the spec changed", ing.Generation, got.Generation)
			}
			return nil
		})
		eventually(t, 5*time.Second, "event on the server", func() error {
			evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			for _, e := range evs.Items {
				if e.Reason == "Rejected" && e.InvolvedObject.UID == ing.UID && e.Message == "no such backend web" {
					return nil
				}
			}
			return fmt.Errorf("%d events, none Rejected about the ingress", len(evs.Items))
		})
	})

	t.Run("the source catches up after the API server restarts", func(t *testing.T) {
		kc.StopAPIServer()
		time.Sleep(500 * time.Millisecond)
		if err := kc.StartAPIServer(); err != nil {
			t.Fatal(err)
		}
		if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "after-restart"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The reflector backs off while the server is away; it retries
		// within seconds.
		eventually(t, 30*time.Second, "service created after the restart mirrored", func() error {
			_, err := cluster.Get[*corev1.Service](store, ns, "after-restart")
			return err
		})
	})
}
