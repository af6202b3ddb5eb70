package ingresscmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/ingress"
	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func awaitT(t *testing.T, what string, timeout time.Duration, ok func() (bool, string)) {
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

// startRun runs the command's Run for o until the returned cancel is
// called (also when the test ends) and returns the controller once it
// serves.
func startRun(t *testing.T, o *Options) (*ingress.Controller, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan *ingress.Controller, 1)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, io.Discard, quietLog(), func(c *ingress.Controller) { got <- c }) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case c := <-got:
		return c, stop
	case err := <-done:
		stopped = true
		t.Fatalf("Run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready")
	}
	return nil, nil
}

// seed creates a namespace, our IngressClass, a Service with a
// hand-written EndpointSlice and an Ingress routed to it.
func seed(t *testing.T, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}))
	must(cs.NetworkingV1().IngressClasses().Create(ctx, &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: "switchboard"},
		Spec:       networkingv1.IngressClassSpec{Controller: routing.ControllerName},
	}, metav1.CreateOptions{}))
	must(cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}))
	// Never dialled: the API server refuses loopback endpoints.
	must(cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.0.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}, metav1.CreateOptions{}))
	must(cs.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: networkingv1.IngressSpec{
			IngressClassName: ptr.To("switchboard"),
			Rules: []networkingv1.IngressRule{{Host: "shop.example.test", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "web", Port: networkingv1.ServiceBackendPort{Name: "http"}}}}},
			}}}},
		},
	}, metav1.CreateOptions{}))
}

func kubeOptions(kubeconfig, ip string) *Options {
	return &Options{Kubeconfig: kubeconfig, HTTPAddr: ip + ":0", HTTPSAddr: ip + ":0", StatusAddr: "",
		ConnectTimeout: time.Second, ReadTimeout: 5 * time.Second, EjectFor: time.Second,
		ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 32 << 10, MaxHeaders: 100}
}

// TestLeaderElection: two replicas against a real API server. Both
// serve the Ingress; only the holder of the Lease writes its
// status.loadBalancer (each replica publishes its own listener IP:
// 127.0.0.1 and 127.0.0.2, so the status tells who wrote it). When the
// leader stops it releases the Lease ("ReleaseOnCancel should be set
// true if the lock should be released when the run context is
// cancelled", client-go leaderelection) and the other takes over and
// writes its own address.
func TestLeaderElection(t *testing.T) {
	kc := kubetest.Start(t)
	cs := kc.Client
	ctx := context.Background()
	const ns, leaseNS = "elect", "elect-lease"
	seed(t, cs, ns)
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	election := func(id string) LeaderElection {
		return LeaderElection{Namespace: leaseNS, Identity: id,
			LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 200 * time.Millisecond}
	}
	holder := func() string {
		l, err := cs.CoordinationV1().Leases(leaseNS).Get(ctx, DefaultLeaseName, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return fmt.Sprint("no holder: ", err)
		}
		return *l.Spec.HolderIdentity
	}
	status := func() string {
		ing, err := cs.NetworkingV1().Ingresses(ns).Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return err.Error()
		}
		s := ""
		for _, x := range ing.Status.LoadBalancer.Ingress {
			s += x.IP + " "
		}
		return s
	}

	oa := kubeOptions(kc.Kubeconfig, "127.0.0.1")
	oa.LeaderElect, oa.Election = true, election("a")
	a, stopA := startRun(t, oa)
	awaitT(t, "a holds the Lease", 10*time.Second, func() (bool, string) { h := holder(); return h == "a", h })
	awaitT(t, "the leader a writes its address", 10*time.Second, func() (bool, string) { s := status(); return s == "127.0.0.1 ", s })

	ob := kubeOptions(kc.Kubeconfig, "127.0.0.2")
	ob.LeaderElect, ob.Election = true, election("b")
	b, _ := startRun(t, ob)
	for name, c := range map[string]*ingress.Controller{"a": a, "b": b} {
		if r := c.Table().Match("shop.example.test", "/"); r == nil || r.Backend.Service != "web" {
			t.Errorf("replica %s does not route the Ingress: %+v", name, r)
		}
	}
	// b follows: over several of its retry periods (and after its store
	// held the Ingress with a's address, which its controller replaces
	// with its own), the Lease stays a's and the status a's address.
	for i := 0; i < 10; i++ {
		time.Sleep(200 * time.Millisecond)
		if h, s := holder(), status(); h != "a" || s != "127.0.0.1 " {
			t.Fatalf("with a leading, holder %q status %q", h, s)
		}
	}

	stopA()
	awaitT(t, "b takes over the Lease", 10*time.Second, func() (bool, string) { h := holder(); return h == "b", h })
	awaitT(t, "the new leader b writes its address", 10*time.Second, func() (bool, string) { s := status(); return s == "127.0.0.2 ", s })
}

// TestReadyzWaitsForSync: "/readyz false until the caches have synced"
// (issue 7). The API server is down when the controller starts: /healthz
// answers ok, /readyz 503; when the API server comes up the caches sync
// and /readyz answers ok.
func TestReadyzWaitsForSync(t *testing.T) {
	kc := kubetest.Start(t)
	kc.StopAPIServer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	statusAddr := "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	o := kubeOptions(kc.Kubeconfig, "127.0.0.1")
	o.StatusAddr = statusAddr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o, io.Discard, quietLog(), nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	code := func(path string) (int, string) {
		resp, err := hc.Get("http://" + statusAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	awaitT(t, "the status listener answers before sync", 10*time.Second, func() (bool, string) {
		c, body := code("/healthz")
		return c == http.StatusOK, fmt.Sprint(c, body)
	})
	if c, body := code("/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("/readyz before sync: %d %s, want 503", c, body)
	}
	if err := kc.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	awaitT(t, "/readyz ok once synced", 60*time.Second, func() (bool, string) {
		c, body := code("/readyz")
		return c == http.StatusOK, fmt.Sprint(c, body)
	})
}
