package ingress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
)

// TestLoadBalancerStatus: "LoadBalancer contains the current status of
// the load-balancer" (IngressStatus): the controller writes the IP of its
// HTTPS listener into status.loadBalancer.ingress of every Ingress it
// serves, clears it when it stops serving one, and leaves Ingresses of
// other classes alone.
func TestLoadBalancerStatus(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, func(c *Config) { c.HTTPSAddr = "127.0.0.1:0" })
	other := &networkingv1.IngressClass{}
	other.Name, other.Spec.Controller = "nginx", "k8s.io/ingress-nginx"
	e.create(classObj("switchboard", true), other)
	e.backendService("shop", "web")
	theirs := ingressObj("shop", "theirs", "theirs.test", pathRule("Prefix", "/", "web", 80))
	theirs.Spec.IngressClassName = ptr.To("nginx")
	e.create(ingressObj("shop", "served", "served.test", pathRule("Prefix", "/", "web", 80)),
		annotated(ingressObj("shop", "refused", "refused.test", pathRule("Prefix", "/", "web", 80)), annotations.SSLRedirect, "maybe"),
		theirs)
	e.settle()

	status := func(name string) []networkingv1.IngressLoadBalancerIngress {
		ing, err := cluster.Get[*networkingv1.Ingress](s, "shop", name)
		if err != nil {
			t.Fatal(err)
		}
		return ing.Status.LoadBalancer.Ingress
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: served %v, refused %v, theirs %v", what, status("served"), status("refused"), status("theirs"))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("status of the served Ingress", func() bool {
		st := status("served")
		return len(st) == 1 && st[0].IP == "127.0.0.1"
	})
	if st := status("refused"); len(st) != 0 {
		t.Errorf("refused Ingress has status %v", st)
	}
	if st := status("theirs"); len(st) != 0 {
		t.Errorf("another class's Ingress has status %v", st)
	}

	// Breaking the served Ingress's annotations takes it out: the status
	// is cleared.
	if _, err := s.UpdateFunc(cluster.KindIngress, "shop", "served", func(o cluster.Object) error {
		o.SetAnnotations(map[string]string{annotations.Prefix + annotations.LimitRPS: "-1"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor("status cleared", func() bool { return len(status("served")) == 0 })
}

// TestPublishAddress: with Config.PublishAddress (the command's
// --publish-status-address, as ingress-nginx's) that address is written,
// not the listener's; with Config.PublishService (--publish-service) the
// Service's addresses are, following it as it changes.
func TestPublishAddress(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   func(*Config)
		svc   *corev1.Service                             // the Service in front, created first
		later func(*corev1.Service)                       // then changed so
		want  [][]networkingv1.IngressLoadBalancerIngress // the status before and after the change
	}{
		{name: "--publish-status-address", cfg: func(c *Config) { c.PublishAddress = "192.0.2.10" },
			want: [][]networkingv1.IngressLoadBalancerIngress{{{IP: "192.0.2.10"}}}},
		{name: "--publish-service: a LoadBalancer's ingress points and external IPs, once it has them",
			cfg: func(c *Config) { c.PublishService = "sys/front"; c.PublishAddress = "" },
			svc: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "sys", Name: "front"},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.20", ExternalIPs: []string{"198.51.100.7"},
					Ports: []corev1.ServicePort{{Port: 443, Protocol: corev1.ProtocolTCP}}}},
			later: func(s *corev1.Service) {
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}, {Hostname: "lb.example.test"}}
			},
			want: [][]networkingv1.IngressLoadBalancerIngress{{{IP: "198.51.100.7"}},
				{{IP: "198.51.100.7"}, {IP: "203.0.113.5"}, {Hostname: "lb.example.test"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			e := startController(t, s, func(c *Config) { c.HTTPSAddr = "127.0.0.1:0"; tc.cfg(c) })
			e.create(classObj("switchboard", true))
			if tc.svc != nil {
				e.create(tc.svc)
			}
			e.backendService("shop", "web")
			e.create(ingressObj("shop", "served", "served.test", pathRule("Prefix", "/", "web", 80)))
			e.settle()
			for i, want := range tc.want {
				if i == 1 {
					if _, err := s.UpdateStatusFunc(cluster.KindService, tc.svc.Namespace, tc.svc.Name, func(o cluster.Object) error {
						tc.later(o.(*corev1.Service))
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				}
				var got []networkingv1.IngressLoadBalancerIngress
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					ing, err := cluster.Get[*networkingv1.Ingress](s, "shop", "served")
					if err != nil {
						t.Fatal(err)
					}
					if got = ing.Status.LoadBalancer.Ingress; reflect.DeepEqual(got, want) {
						break
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("status %+v, want %+v", got, want)
				}
			}
		})
	}
}

// ingress-nginx's statusAddressFromService, type by type.
func TestServiceAddresses(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  corev1.Service
		want []networkingv1.IngressLoadBalancerIngress
	}{
		{"ExternalName: its name", corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "lb.example.test"}},
			[]networkingv1.IngressLoadBalancerIngress{{Hostname: "lb.example.test"}}},
		{"ClusterIP: the cluster IP", corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.20"}},
			[]networkingv1.IngressLoadBalancerIngress{{IP: "10.96.0.20"}}},
		{"NodePort without external IPs: the cluster IP", corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.20"}},
			[]networkingv1.IngressLoadBalancerIngress{{IP: "10.96.0.20"}}},
		{"NodePort with external IPs: those", corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: "10.96.0.20", ExternalIPs: []string{"198.51.100.8", "198.51.100.7"}}},
			[]networkingv1.IngressLoadBalancerIngress{{IP: "198.51.100.7"}, {IP: "198.51.100.8"}}},
		{"LoadBalancer not yet provisioned: nothing", corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "10.96.0.20"}}, nil},
		{"headless ClusterIP: nothing", corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: corev1.ClusterIPNone}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := serviceAddresses(&tc.svc); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestUnreadyEndpointUnderLoad: while clients keep sending requests, one
// of two endpoints turns unready in its EndpointSlice ("ready indicates
// that this endpoint is prepared to receive traffic"), and its server
// then shuts down gracefully, as a terminating pod does. Not one request
// fails: the routing table stops sending new requests to the endpoint as
// soon as the store says so, and requests in flight finish.
func TestUnreadyEndpointUnderLoad(t *testing.T) {
	s := newStore(t)
	e := startController(t, s, nil)
	e.create(classObj("switchboard", true))

	var served [2]atomic.Int64
	var srvs [2]*http.Server
	var ports [2]int32
	for i := range srvs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srvs[i] = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			time.Sleep(time.Millisecond) // requests are in flight at the flip
			served[i].Add(1)
			fmt.Fprintf(w, "pod-%d", i)
		}), ReadHeaderTimeout: 5 * time.Second}
		t.Cleanup(func() { srvs[i].Close() })
		go srvs[i].Serve(ln)
		ports[i] = int32(ln.Addr().(*net.TCPAddr).Port)
	}
	e.create(serviceObj("shop", "web"), sliceObj("shop", "web", "web-0", ports[0], "127.0.0.1"), sliceObj("shop", "web", "web-1", ports[1], "127.0.0.1"),
		ingressObj("shop", "web", "load.test", pathRule("Prefix", "/", "web", 80)))
	e.settle()

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var total, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: dialTo(e.http), MaxIdleConnsPerHost: 8}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				method, body := http.MethodGet, io.Reader(nil)
				if i%3 == 0 {
					method, body = http.MethodPost, bytes.NewReader([]byte("order")) // not idempotent: never retried
				}
				req, _ := http.NewRequest(method, "http://load.test/", body)
				err := doOK(client, req)
				total.Add(1)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}

	waitServed := func(i int, n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for served[i].Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("endpoint %d served %d requests, want %d", i, served[i].Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitServed(0, 50)
	waitServed(1, 50)
	// Endpoint 1 turns unready.
	if _, err := s.UpdateFunc(cluster.KindEndpointSlice, "shop", "web-1", func(o cluster.Object) error {
		o.(*discoveryv1.EndpointSlice).Endpoints[0].Conditions.Ready = ptr.To(false)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(e.c.snap.Load().pools["shop/web:80"].Endpoints()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the unready endpoint stayed in the pool")
		}
		time.Sleep(2 * time.Millisecond)
	}
	atFlip := served[1].Load()
	waitServed(0, served[0].Load()+100) // a while of traffic with the endpoint unready but alive
	// Then its pod goes away gracefully (in-flight requests finish).
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srvs[1].Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	waitServed(0, served[0].Load()+100)
	stop()
	wg.Wait()

	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed (first: %v)", failed.Load(), total.Load(), firstErr.Load())
	}
	// At most the requests in flight at the flip (one per client) reach
	// the endpoint after the table dropped it.
	if n := served[1].Load() - atFlip; n > 6 {
		t.Errorf("the unready endpoint served %d requests after the routing table dropped it", n)
	}
	t.Logf("%d requests, %d failed; endpoint 0 served %d, endpoint 1 %d", total.Load(), failed.Load(), served[0].Load(), served[1].Load())
}
