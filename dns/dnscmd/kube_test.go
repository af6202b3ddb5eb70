package dnscmd

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin/kubernetes"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
)

func TestNeedsPods(t *testing.T) {
	cases := []struct {
		name     string
		corefile string
		want     bool
	}{
		// CoreDNS kubernetes plugin README: "pods POD-MODE ... verified:
		// Return an A record only if there exists a pod in the same
		// namespace with matching IP" - the only mode that needs pods.
		{"pods verified", "cluster.local {\n kubernetes cluster.local {\n  pods verified\n }\n}\n", true},
		{"pods insecure (the default Corefile)", DefaultCorefile(""), false},
		{"pods disabled", "cluster.local {\n kubernetes {\n  pods disabled\n }\n}\n", false},
		{"no kubernetes plugin", ".:53 {\n whoami\n}\n", false},
		{"verified on another line is not the pods mode", "cluster.local {\n kubernetes {\n  pods\n  verified\n }\n}\n", false},
		{"a Corefile that does not parse", "cluster.local {\n kubernetes {\n", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsPods("Corefile", []byte(tc.corefile)); got != tc.want {
				t.Errorf("NeedsPods = %t, want %t", got, tc.want)
			}
		})
	}
}

// TestKubeconfigAndManifestsConflict: one source of services only.
func TestKubeconfigAndManifestsConflict(t *testing.T) {
	root := &cobra.Command{Use: "switchboard", SilenceErrors: true, SilenceUsage: true}
	root.PersistentFlags().String("kubeconfig", "", "")
	root.AddCommand(NewCommand(func() string { return t.TempDir() }))
	root.SetArgs([]string{"dns", "--kubeconfig", "/nonexistent", "-f", t.TempDir()})
	root.SetOut(&bytes.Buffer{})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "--kubeconfig and -f") {
		t.Fatalf("error %v, want one naming --kubeconfig and -f", err)
	}
}

// TestAgainstARealAPIServer: `switchboard dns --kubeconfig` answers for a
// Service and EndpointSlice created on a real kube-apiserver, NXDOMAIN once
// deleted, watches Pods for `pods verified`, and survives an API server
// restart, catching up when it returns.
func TestAgainstARealAPIServer(t *testing.T) {
	kc := kubetest.Start(t)
	cs := kc.Client
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	corefile := "cluster.local {\n bind 127.0.0.1\n kubernetes cluster.local {\n  pods verified\n }\n}\n"
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := NewKubeStore(ctx, KubeStoreConfig{Kubeconfig: kc.Kubeconfig, Pods: NeedsPods(path, []byte(corefile)), Logger: dnstest.QuietEnv().Logger})
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	env := *dnstest.QuietEnv()
	env.Store = store
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Config{Filename: path, Port: port, Env: env}) }()
	t.Cleanup(func() { cancel(); <-done })

	addr := "127.0.0.1:" + port
	c := &dns.Client{Timeout: time.Second}
	// await asks name until check accepts the answer, and returns how long
	// that took.
	await := func(name string, qtype uint16, what string, check func(*dns.Msg) bool) time.Duration {
		t.Helper()
		start := time.Now()
		var last *dns.Msg
		for time.Since(start) < 10*time.Second {
			r, _, err := c.Exchange(dnstest.Query(name, qtype), addr)
			if err == nil {
				last = r
				if check(r) {
					return time.Since(start)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: %s never came; last answer %v", name, what, last)
		return 0
	}
	isA := func(ip string) func(*dns.Msg) bool {
		return func(r *dns.Msg) bool {
			return r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == ip
		}
	}
	nx := func(r *dns.Msg) bool { return r.Rcode == dns.RcodeNameError }

	ns := "dnse2e"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	await("web."+ns+".svc.cluster.local.", dns.TypeA, "NXDOMAIN before the service exists", nx)

	svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	took := await("web."+ns+".svc.cluster.local.", dns.TypeA, "the cluster IP", isA(svc.Spec.ClusterIP))
	t.Logf("a created Service was answered %s after the create returned", took)

	// A headless service's records are its EndpointSlices' addresses
	// (Kubernetes DNS spec: "a set of A records ... one for each ready
	// endpoint").
	if _, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "db-1", Labels: map[string]string{discoveryv1.LabelServiceName: "db"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.2.3"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](5432)}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	await("db."+ns+".svc.cluster.local.", dns.TypeA, "the endpoint address", isA("10.1.2.3"))

	// pods verified: "Return an A record only if there exists a pod in the
	// same namespace with matching IP".
	podName := "10-1-9-9." + ns + ".pod.cluster.local."
	await(podName, dns.TypeA, "NXDOMAIN without such a pod", nx)
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example.invalid/none"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.1.9.9", PodIPs: []corev1.PodIP{{IP: "10.1.9.9"}}}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	await(podName, dns.TypeA, "the pod's address", isA("10.1.9.9"))
	// A pod that has failed is no longer listed (CoreDNS's pod informer:
	// field selector status.phase!=Failed, so the watch deletes it).
	pod, err = cs.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodFailed
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	await(podName, dns.TypeA, "NXDOMAIN once the pod has failed", nx)
	if kubernetes.PodTableOf(store) == nil || len(cluster.List[*corev1.Pod](store, "", nil)) != 0 {
		t.Errorf("pods verified: want the pods in the store's PodTable and none in the store")
	}

	if err := cs.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	took = await("web."+ns+".svc.cluster.local.", dns.TypeA, "NXDOMAIN after the delete", nx)
	t.Logf("a deleted Service was NXDOMAIN %s after the delete returned", took)

	// The API server goes away: answers go on from the store; when it
	// returns, the source catches up.
	kc.StopAPIServer()
	await("db."+ns+".svc.cluster.local.", dns.TypeA, "the endpoint address while the API server is down", isA("10.1.2.3"))
	if err := kc.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	again, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "again"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		r, _, err := c.Exchange(dnstest.Query("again."+ns+".svc.cluster.local.", dns.TypeA), addr)
		if err == nil && isA(again.Spec.ClusterIP)(r) {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("a Service created after the API server's restart is not answered: %v %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := cluster.Get[*corev1.Service](store, ns, "again"); err != nil {
		t.Error(err)
	}
}

// TestReadyWaitsForSync: readiness false until the caches have synced
// (issue 7), as CoreDNS's ready plugin ("reports 200 OK once all plugins
// that support readiness are ready") waits for its kubernetes plugin's
// informers. The API server is down when `switchboard dns --kubeconfig`
// starts: health says OK, the server answers once the kubernetes plugin's
// startup_timeout has passed ("kubernetes: starting server with unsynced
// Kubernetes API" in CoreDNS), ready says 503, and a cluster name is
// SERVFAIL (not yet known), not NXDOMAIN; once the API server is up, ready
// says OK and the Service created before is answered.
func TestReadyWaitsForSync(t *testing.T) {
	kc := kubetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := kc.Client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "early"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	early, err := kc.Client.CoreV1().Services("default").Get(ctx, "early", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc.StopAPIServer()

	port, healthPort, readyPort := freePort(t), freePort(t), freePort(t)
	corefile := "cluster.local {\n bind 127.0.0.1\n kubernetes cluster.local {\n  startup_timeout 1s\n }\n health 127.0.0.1:" + healthPort + "\n ready 127.0.0.1:" + readyPort + "\n}\n"
	store, synced, err := StartKubeStore(ctx, KubeStoreConfig{Kubeconfig: kc.Kubeconfig, Logger: dnstest.QuietEnv().Logger})
	if err != nil {
		t.Fatal(err)
	}
	env := *dnstest.QuietEnv()
	env.Store = store
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Filename: "Corefile", Corefile: []byte(corefile), Port: port, Env: env})
	}()
	t.Cleanup(func() { cancel(); <-done })

	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	status := func(port, path string) int {
		resp, err := hc.Get("http://127.0.0.1:" + port + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := &dns.Client{Timeout: time.Second}
	rcode := func() int {
		r, _, err := c.Exchange(dnstest.Query("early.default.svc.cluster.local.", dns.TypeA), "127.0.0.1:"+port)
		if err != nil {
			return -1
		}
		return r.Rcode
	}
	wait := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(timeout); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	wait("health to answer before sync", 10*time.Second, func() bool { return status(healthPort, "/health") == http.StatusOK })
	wait("DNS answers after the startup timeout", 10*time.Second, func() bool { return rcode() != -1 })
	if got := status(readyPort, "/ready"); got != http.StatusServiceUnavailable {
		t.Fatalf("/ready before sync: %d, want 503", got)
	}
	if got := rcode(); got != dns.RcodeServerFailure {
		t.Fatalf("a cluster name before sync: rcode %s, want SERVFAIL", dns.RcodeToString[got])
	}
	select {
	case <-synced:
		t.Fatal("synced while the API server is down")
	default:
	}

	if err := kc.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	wait("/ready 200 once synced", 60*time.Second, func() bool { return status(readyPort, "/ready") == http.StatusOK })
	r, _, err := c.Exchange(dnstest.Query("early.default.svc.cluster.local.", dns.TypeA), "127.0.0.1:"+port)
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != early.Spec.ClusterIP {
		t.Fatalf("once ready: %v %v, want %s", r, err, early.Spec.ClusterIP)
	}
	if got := rcode(); got != dns.RcodeSuccess {
		t.Fatalf("rcode %s", dns.RcodeToString[got])
	}
}
