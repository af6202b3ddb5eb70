package ingresscmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/ingress"
	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
)

// TestAgainstARealAPIServer: `switchboard ingress --kubeconfig` routes an
// Ingress created on a real kube-apiserver, writes its
// status.loadBalancer there, records an Event there for an Ingress whose
// backend does not exist, stops routing a deleted Ingress, and keeps
// serving across an API server restart.
//
// The API server refuses loopback endpoint addresses ("may not be in the
// loopback range"), and this test sends nothing off the host: the
// endpoint is an address that is never dialled. Routing is checked in the
// controller's routing table and through the real HTTP listener with
// requests that need no backend: a host listed in spec.tls is redirected
// to HTTPS ("requests for it over plain HTTP are redirected"), an unknown
// host gets 404.
func TestAgainstARealAPIServer(t *testing.T) {
	kc := kubetest.Start(t)
	cs := kc.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const endpointIP = "10.244.0.5" // never dialled (see above)

	ns := "inge2e"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.NetworkingV1().IngressClasses().Create(ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "switchboard"},
		Spec:       networkingv1.IngressClassSpec{Controller: routing.ControllerName},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Hand-written: the Service has no selector.
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{endpointIP}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	got := make(chan *ingress.Controller, 1)
	done := make(chan error, 1)
	o := &Options{Kubeconfig: kc.Kubeconfig, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", StatusAddr: "127.0.0.1:0",
		ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second, EjectFor: time.Second,
		ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 32 << 10, MaxHeaders: 100}
	go func() {
		done <- Run(ctx, o, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *ingress.Controller) { got <- c })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	var c *ingress.Controller
	select {
	case c = <-got:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready")
	}
	httpURL := "http://" + c.HTTPAddr().String()
	hc := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer hc.CloseIdleConnections()
	get := func(host, path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, httpURL+path, nil)
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Location")
	}
	await := func(what string, timeout time.Duration, ok func() (bool, string)) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			good, last := ok()
			if good {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after %s; last: %s", what, timeout, last)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// routed: the table sends host+path to the Service's endpoint, and
	// the HTTP listener redirects it to HTTPS (the host is in spec.tls).
	routed := func(host, path string) func() (bool, string) {
		return func() (bool, string) {
			r := c.Table().Match(host, path)
			if r == nil || r.Ingress.Namespace != ns || r.Backend.Service != "web" {
				return false, fmt.Sprintf("route %+v", r)
			}
			code, loc := get(host, path)
			return code == http.StatusPermanentRedirect && strings.HasPrefix(loc, "https://"+host), fmt.Sprint(code, " ", loc)
		}
	}

	newIngress := func(name, host, service string) *networkingv1.Ingress {
		ing, err := cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: networkingv1.IngressSpec{
				IngressClassName: ptr.To("switchboard"),
				TLS:              []networkingv1.IngressTLS{{Hosts: []string{host}}},
				Rules: []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
					Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
						Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: service, Port: networkingv1.ServiceBackendPort{Name: "http"}}}}},
				}}}},
			},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ing
	}

	start := time.Now()
	shop := newIngress("shop", "shop.example.test", "web")
	await("the created Ingress routed", 10*time.Second, routed("shop.example.test", "/cart"))
	t.Logf("a created Ingress was routed %s after the create began", time.Since(start))

	// "status.loadBalancer.ingress ... is a list containing ingress points
	// for the load-balancer": the controller publishes its listener's IP.
	await("status.loadBalancer written to the API server", 10*time.Second, func() (bool, string) {
		ing, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		lb := ing.Status.LoadBalancer.Ingress
		return len(lb) == 1 && lb[0].IP == "127.0.0.1" && ing.Generation == shop.Generation, fmt.Sprintf("%+v generation %d", lb, ing.Generation)
	})

	broken := newIngress("broken", "broken.example.test", "missing")
	await("an Event about the missing backend on the API server", 10*time.Second, func() (bool, string) {
		evs, err := cs.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range evs.Items {
			seen = append(seen, e.Reason+" "+e.InvolvedObject.Name)
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.UID == broken.UID && e.InvolvedObject.Kind == "Ingress" {
				return true, ""
			}
		}
		return false, strings.Join(seen, ", ")
	})

	if err := cs.NetworkingV1().Ingresses(ns).Delete(ctx, "shop", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	await("the deleted Ingress no longer routed", 10*time.Second, func() (bool, string) {
		code, loc := get("shop.example.test", "/cart")
		return c.Table().Match("shop.example.test", "/cart") == nil && code == http.StatusNotFound, fmt.Sprint(code, " ", loc)
	})

	// The API server goes away: routing goes on; when it returns, the
	// controller catches up.
	newIngress("again", "again.example.test", "web")
	await("routed before the restart", 10*time.Second, routed("again.example.test", "/"))
	kc.StopAPIServer()
	await("routed while the API server is down", 5*time.Second, routed("again.example.test", "/x"))
	if err := kc.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	newIngress("late", "late.example.test", "web")
	await("an Ingress created after the restart routed", 30*time.Second, routed("late.example.test", "/"))
}
