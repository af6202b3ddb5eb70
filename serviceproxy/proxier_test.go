package serviceproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
)

// fakeBackend records every Sync; fail decides whether call n (1-based)
// fails; block, when set, is waited on by call n == blockAt.
type fakeBackend struct {
	name     string
	fail     func(n int) bool
	blockAt  int
	block    chan struct{}
	states   chan *State
	calls    atomic.Int32
	inflight atomic.Int32
	overlap  atomic.Bool
}

func newFakeBackend(name string) *fakeBackend {
	return &fakeBackend{name: name, states: make(chan *State, 100)}
}

func (f *fakeBackend) Name() string { return f.name }

func (f *fakeBackend) Sync(ctx context.Context, st *State) error {
	if f.inflight.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.inflight.Add(-1)
	n := int(f.calls.Add(1))
	if n == f.blockAt && f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.states <- st
	if f.fail != nil && f.fail(n) {
		return fmt.Errorf("sync %d: injected failure", n)
	}
	return nil
}

func (f *fakeBackend) Cleanup(context.Context) error { return nil }

func (f *fakeBackend) Render(st *State) ([]byte, error) {
	var b strings.Builder
	for _, n := range sortedNames(st) {
		fmt.Fprintf(&b, "%s %v\n", n, st.Services[n].ClusterIPs)
	}
	return []byte(b.String()), nil
}

func sortedNames(st *State) []ServicePortName {
	var out []ServicePortName
	for n := range st.Services {
		out = append(out, n)
	}
	sortNames(out)
	return out
}

func sortNames(ns []ServicePortName) {
	for i := 1; i < len(ns); i++ {
		for j := i; j > 0 && compareNames(ns[j], ns[j-1]) < 0; j-- {
			ns[j], ns[j-1] = ns[j-1], ns[j]
		}
	}
}

// next waits for the backend's next Sync (failing the test after a long
// deadline: this is a liveness bound, not a speed assertion).
func (f *fakeBackend) next(t *testing.T) *State {
	t.Helper()
	select {
	case st := <-f.states:
		return st
	case <-time.After(20 * time.Second):
		t.Fatal("no Sync within 20 s")
		return nil
	}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type proxyRun struct {
	p    *Proxier
	reg  *prometheus.Registry
	done chan error
}

func startProxier(t *testing.T, store *cluster.Store, be Backend, mut func(*Config)) *proxyRun {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := Config{
		Store: store, NodeName: "node-a",
		MinSyncPeriod: 5 * time.Millisecond, SyncPeriod: time.Hour,
		Registerer: reg, Gatherer: reg, Logger: quietLog(), Backend: be,
	}
	if mut != nil {
		mut(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &proxyRun{p: p, reg: reg, done: make(chan error, 1)}
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	go func() { r.done <- p.Run(ctx) }()
	return r
}

func mustCreate(t *testing.T, s *cluster.Store, o cluster.Object) {
	t.Helper()
	if _, err := s.Create(o); err != nil {
		t.Fatal(err)
	}
}

func TestRunnerCoalescesChangesWhileSyncing(t *testing.T) {
	store := cluster.NewStore()
	mustCreate(t, store, svcObj("ns", "svc-0", nil))
	be := newFakeBackend("fake")
	be.blockAt, be.block = 2, make(chan struct{})
	r := startProxier(t, store, be, nil)

	first := be.next(t)
	if !first.Full || len(first.Services) != 1 {
		t.Fatalf("first sync: Full=%v services=%d", first.Full, len(first.Services))
	}
	// Sync 2 starts with svc-1 and blocks; svc-2..svc-5 arrive meanwhile:
	// "Run requests that would violate the minInterval are coalesced and
	// run at the next opportunity".
	mustCreate(t, store, svcObj("ns", "svc-1", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.11", []string{"10.96.0.11"} }))
	for be.calls.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	for i := 2; i <= 5; i++ {
		ip := fmt.Sprintf("10.96.0.1%d", i)
		mustCreate(t, store, svcObj("ns", fmt.Sprintf("svc-%d", i), func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = ip, []string{ip} }))
	}
	// Let the tracker see the four creations before releasing sync 2.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.p.tracker.mu.Lock()
		n := len(r.p.tracker.svcPorts)
		r.p.tracker.mu.Unlock()
		if n == 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(be.block)
	second := be.next(t)
	third := be.next(t)
	if second.Full || len(second.Services) != 2 {
		t.Fatalf("second sync: Full=%v services=%d", second.Full, len(second.Services))
	}
	if third.Full || len(third.Services) != 6 || len(third.Changed) != 4 || third.Generation != 3 {
		t.Fatalf("third sync: Full=%v services=%d changed=%d generation=%d: the four changes must come in one sync",
			third.Full, len(third.Services), len(third.Changed), third.Generation)
	}
	if be.overlap.Load() {
		t.Fatal("two Syncs ran at once")
	}
}

func TestRunnerRetriesFailedSyncsFull(t *testing.T) {
	store := cluster.NewStore()
	mustCreate(t, store, svcObj("ns", "web", nil))
	be := newFakeBackend("nftables")
	// Calls 1 and 2 fail, 3 succeeds; call 4 (a partial one) fails, 5
	// retries.
	be.fail = func(n int) bool { return n == 1 || n == 2 || n == 4 }
	r := startProxier(t, store, be, nil)

	for i := 1; i <= 3; i++ {
		st := be.next(t)
		if !st.Full {
			t.Fatalf("call %d: Full=false (the first sync and the retries after a failure are Full)", i)
		}
	}
	select {
	case <-r.p.Synced():
	case <-time.After(20 * time.Second):
		t.Fatal("not Synced after a successful sync")
	}
	if got := testutil.ToFloat64(r.p.m.SyncFailuresTotal); got != 2 {
		t.Fatalf("kubeproxy_sync_proxy_rules_failures_total = %v, want 2", got)
	}
	if r.p.State() == nil || r.p.State().Generation != 3 {
		t.Fatalf("State() = %+v, want generation 3", r.p.State())
	}

	mustCreate(t, store, svcObj("ns", "web2", func(s *corev1.Service) { s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.96.0.20", []string{"10.96.0.20"} }))
	partial := be.next(t)
	retry := be.next(t)
	if partial.Full || len(partial.Changed) != 1 {
		t.Fatalf("call 4: Full=%v Changed=%d", partial.Full, len(partial.Changed))
	}
	if !retry.Full || len(retry.Changed) != 2 {
		t.Fatalf("call 5 (retry after a failure): Full=%v Changed=%d, want Full with every service port", retry.Full, len(retry.Changed))
	}
	if got := testutil.ToFloat64(r.p.m.SyncFailuresTotal); got != 3 {
		t.Fatalf("failures = %v, want 3", got)
	}
	if be.overlap.Load() {
		t.Fatal("two Syncs ran at once")
	}
}

func TestRunnerPeriodicResyncIsFull(t *testing.T) {
	store := cluster.NewStore()
	mustCreate(t, store, svcObj("ns", "web", nil))
	be := newFakeBackend("fake")
	startProxier(t, store, be, func(c *Config) { c.SyncPeriod = 30 * time.Millisecond })
	be.next(t)
	// Nothing changes: "The function will be run at least once per
	// maxInterval", and each periodic resync is Full.
	st := be.next(t)
	if !st.Full || st.Generation != 2 || len(st.Changed) != 1 {
		t.Fatalf("periodic sync: Full=%v generation=%d changed=%d", st.Full, st.Generation, len(st.Changed))
	}
}

func TestRunnerBackoff(t *testing.T) {
	r := newRunner(time.Second, 30*time.Second, nil)
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, r.backoff(n))
	}
	want := []time.Duration{1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff = %v, want %v (MinSyncPeriod doubling, at most SyncPeriod)", got, want)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	store := cluster.NewStore()
	be := newFakeBackend("fake")
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no store", Config{Backend: be}, "Store"},
		{"no backend", Config{Store: store}, "Backend"},
		{"negative min", Config{Store: store, Backend: be, MinSyncPeriod: -1}, "MinSyncPeriod"},
		{"sync period below min sync period (BoundedFrequencyRunner: maxInterval must be >= minInterval)", Config{Store: store, Backend: be, MinSyncPeriod: time.Minute, SyncPeriod: time.Second}, "SyncPeriod"},
		{"bad healthz address", Config{Store: store, Backend: be, HealthzAddr: "10256"}, "HealthzAddr"},
		{"metrics without gatherer", Config{Store: store, Backend: be, MetricsAddr: "127.0.0.1:0"}, "Gatherer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestMetricNames(t *testing.T) {
	core := []string{
		"kubeproxy_sync_proxy_rules_duration_seconds",
		"kubeproxy_sync_full_proxy_rules_duration_seconds",
		"kubeproxy_sync_partial_proxy_rules_duration_seconds",
		"kubeproxy_network_programming_duration_seconds",
		"kubeproxy_sync_proxy_rules_last_timestamp_seconds",
		"kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
		"kubeproxy_sync_proxy_rules_endpoint_changes_total",
		"kubeproxy_sync_proxy_rules_service_changes_total",
		"kubeproxy_sync_proxy_rules_endpoint_changes_pending",
		"kubeproxy_sync_proxy_rules_service_changes_pending",
		"kubeproxy_sync_proxy_rules_no_local_endpoints_total",
	}
	for _, tc := range []struct {
		mode    string
		with    []string
		without []string
	}{
		{"nftables", []string{"kubeproxy_sync_proxy_rules_nftables_sync_failures_total"}, []string{"kubeproxy_sync_proxy_rules_iptables_restore_failures_total"}},
		{"iptables", []string{"kubeproxy_sync_proxy_rules_iptables_restore_failures_total"}, []string{"kubeproxy_sync_proxy_rules_nftables_sync_failures_total"}},
		{"ipvs", []string{"kubeproxy_sync_proxy_rules_iptables_restore_failures_total"}, []string{"kubeproxy_sync_proxy_rules_nftables_sync_failures_total"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			store := cluster.NewStore()
			mustCreate(t, store, svcObj("ns", "web", nil))
			be := newFakeBackend(tc.mode)
			r := startProxier(t, store, be, nil)
			be.next(t)
			<-r.p.Synced()
			mfs, err := r.reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			have := map[string]bool{}
			for _, mf := range mfs {
				have[mf.GetName()] = true
			}
			for _, n := range append(append([]string{}, core...), tc.with...) {
				if !have[n] {
					t.Errorf("metric %s not registered", n)
				}
			}
			for _, n := range tc.without {
				if have[n] {
					t.Errorf("metric %s registered in mode %s (upstream registers it for other modes only)", n, tc.mode)
				}
			}
			// Building the metrics twice on one registry reuses them.
			m2 := NewMetrics(r.reg, tc.mode)
			if m2.ServiceChangesTotal != r.p.m.ServiceChangesTotal {
				t.Error("a second NewMetrics on the same registry made new collectors")
			}
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyHealthServer(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	m := NewMetrics(nil, "")
	h := newProxyHealth(time.Minute, m)
	h.now = clock

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); serveHTTP(ctx, ln, h.handler(), quietLog(), "healthz") }()
	base := "http://" + ln.Addr().String()

	type body struct {
		LastUpdated  string `json:"lastUpdated"`
		CurrentTime  string `json:"currentTime"`
		NodeEligible *bool  `json:"nodeEligible"`
	}
	check := func(path string, wantCode int, wantEligible *bool) body {
		t.Helper()
		code, text := get(t, base+path)
		var b body
		if err := json.Unmarshal([]byte(text), &b); err != nil {
			t.Fatalf("%s: body %q: %v", path, text, err)
		}
		if code != wantCode {
			t.Fatalf("%s: %d, want %d (%s)", path, code, wantCode, text)
		}
		if b.CurrentTime == "" || (wantEligible != nil && (b.NodeEligible == nil || *b.NodeEligible != *wantEligible)) {
			t.Fatalf("%s: body %s", path, text)
		}
		return b
	}
	yes, no := true, false
	// "The proxy is healthy while it's starting up".
	check("/healthz", 200, &yes)
	check("/livez", 200, nil)
	// "There's an unprocessed update queued, but it's not late yet".
	h.QueuedUpdate()
	advance(30 * time.Second)
	check("/healthz", 200, &yes)
	// Queued longer than the health timeout: 503.
	advance(31 * time.Second)
	check("/healthz", 503, &yes)
	check("/livez", 503, nil)
	h.Updated()
	b := check("/healthz", 200, &yes)
	// "the returned lastUpdated value is "recent" if the server is healthy"
	if b.LastUpdated != b.CurrentTime {
		t.Fatalf("lastUpdated %s != currentTime %s", b.LastUpdated, b.CurrentTime)
	}
	// A node tainted ToBeDeletedByClusterAutoscaler: /healthz fails,
	// /livez (the proxy itself) does not.
	h.SetNodeEligible(false)
	check("/healthz", 503, &no)
	check("/livez", 200, nil)
	if got := testutil.ToFloat64(m.ProxyHealthzTotal.WithLabelValues("503")); got != 2 {
		t.Fatalf("kubeproxy_proxy_healthz_total{code=503} = %v, want 2", got)
	}
}

// loopbackIP returns a 127.x.y.z address unlikely to be used by another
// test running at the same time.
func loopbackIP() netip.Addr {
	n := time.Now().UnixNano()
	return netip.AddrFrom4([4]byte{127, byte(100 + n%100), byte(n >> 8), byte(1 + (n>>16)%250)})
}

// freePort finds a port free on ip.
func freePort(t *testing.T, ip netip.Addr) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

type fixedHealth bool

func (f *fixedHealth) IsHealthy() bool { return bool(*f) }

func TestServiceHealthServers(t *testing.T) {
	ip := loopbackIP()
	port := freePort(t, ip)
	healthy := fixedHealth(true)
	s := newServiceHealth([]netip.Addr{ip}, &healthy, quietLog())
	t.Cleanup(s.Close)
	nn := spn("lb", "", "").NamespacedName
	url := fmt.Sprintf("http://%s/", netip.AddrPortFrom(ip, uint16(port)))

	if err := s.SyncServices(map[types.NamespacedName]int32{nn: port}); err != nil {
		t.Fatal(err)
	}
	type hcBody struct {
		Service struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"service"`
		LocalEndpoints      int  `json:"localEndpoints"`
		ServiceProxyHealthy bool `json:"serviceProxyHealthy"`
	}
	check := func(wantCode, wantEps int, wantHealthy bool) {
		t.Helper()
		code, text := get(t, url)
		var b hcBody
		if err := json.Unmarshal([]byte(text), &b); err != nil {
			t.Fatalf("body %q: %v", text, err)
		}
		if code != wantCode || b.LocalEndpoints != wantEps || b.ServiceProxyHealthy != wantHealthy || b.Service.Namespace != "ns" || b.Service.Name != "lb" {
			t.Fatalf("%d %s, want %d with %d endpoints, healthy %v", code, text, wantCode, wantEps, wantHealthy)
		}
	}
	// "If there are 0 endpoints for a service, it returns a 503 "Service
	// Unavailable" error (telling LBs not to use this node). If there are
	// 1 or more endpoints, it returns a 200 "OK"."
	check(503, 0, true)
	s.SyncEndpoints(map[types.NamespacedName]int{nn: 2})
	check(200, 2, true)
	healthy = false
	check(503, 2, false)
	healthy = true
	// Services that are gone are closed.
	if err := s.SyncServices(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", netip.AddrPortFrom(ip, uint16(port)).String(), 5*time.Second); err == nil {
		t.Fatal("healthcheck port still open after its service went")
	}
	// A port that cannot be bound is an error naming the service, retried
	// on the next call.
	blocker, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	busy := int32(blocker.Addr().(*net.TCPAddr).Port)
	err = s.SyncServices(map[types.NamespacedName]int32{nn: busy})
	if err == nil || !strings.Contains(err.Error(), "ns/lb") {
		t.Fatalf("err = %v", err)
	}
	blocker.Close()
	if err := s.SyncServices(map[types.NamespacedName]int32{nn: busy}); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestProxierHealthCheckNodePortAndHealthz(t *testing.T) {
	ip := loopbackIP()
	hcPort := freePort(t, ip)
	store := cluster.NewStore()
	lb := svcObj("ns", "lb", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = hcPort
	})
	mustCreate(t, store, lb)
	slice := sliceObj("ns", "lb-1", "lb", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)},
		sliceEp("10.0.0.1", onNode("node-a")), sliceEp("10.0.0.2", onNode("node-b")))
	mustCreate(t, store, slice)
	mustCreate(t, store, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}})
	be := newFakeBackend("fake")
	r := startProxier(t, store, be, func(c *Config) {
		c.NodeIPs = []netip.Addr{ip}
		c.HealthzAddr = netip.AddrPortFrom(ip, 0).String()
		c.MetricsAddr = netip.AddrPortFrom(ip, 0).String()
	})
	be.next(t)
	<-r.p.Synced()

	hcURL := fmt.Sprintf("http://%s/", netip.AddrPortFrom(ip, uint16(hcPort)))
	if code, text := get(t, hcURL); code != 200 || !strings.Contains(text, `"localEndpoints": 1`) {
		t.Fatalf("healthCheckNodePort: %d %s", code, text)
	}
	if code, text := get(t, "http://"+r.p.HealthzAddr().String()+"/healthz"); code != 200 || !strings.Contains(text, `"nodeEligible": true`) {
		t.Fatalf("/healthz: %d %s", code, text)
	}
	if code, text := get(t, "http://"+r.p.MetricsAddr().String()+"/metrics"); code != 200 || !strings.Contains(text, "kubeproxy_sync_proxy_rules_last_timestamp_seconds") {
		t.Fatalf("/metrics: %d", code)
	}
	if code, text := get(t, "http://"+r.p.MetricsAddr().String()+"/proxyMode"); code != 200 || text != "fake" {
		t.Fatalf("/proxyMode: %d %q", code, text)
	}

	// The local endpoint goes: the node must be taken out of the load
	// balancer (503), and kubeproxy_sync_proxy_rules_no_local_endpoints_total
	// {traffic_policy="external"} counts the service.
	s2 := slice.DeepCopy()
	s2.Endpoints = s2.Endpoints[1:]
	if _, err := store.Update(s2); err != nil {
		t.Fatal(err)
	}
	be.next(t)
	waitFor(t, func() bool { code, _ := get(t, hcURL); return code == 503 })
	if got := testutil.ToFloat64(r.p.m.SyncProxyRulesNoLocalEndpointsTotal.WithLabelValues("external")); got != 1 {
		t.Fatalf("no_local_endpoints_total{external} = %v, want 1", got)
	}
	// The service goes: its healthcheck server closes.
	if err := store.Delete(cluster.KindService, "ns", "lb", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	be.next(t)
	waitFor(t, func() bool { return len(r.p.HealthCheckPorts()) == 0 })
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(ip, uint16(hcPort)).String(), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("healthCheckNodePort still open after the service was deleted")
	}
}

// waitFor polls cond until it holds (a liveness bound of 20 s, not a speed
// assertion).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSnapshot(t *testing.T) {
	store := cluster.NewStore()
	mustCreate(t, store, svcObj("ns", "web", nil))
	be := newFakeBackend("fake")
	p, err := New(Config{Store: store, NodeName: "node-a", Backend: be, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || len(st.Services) != 1 || be.calls.Load() != 0 {
		t.Fatalf("Snapshot: Full=%v services=%d backend calls=%d", st.Full, len(st.Services), be.calls.Load())
	}
	out, err := be.Render(st)
	if err != nil || !strings.Contains(string(out), "ns/web:http") {
		t.Fatalf("render %q %v", out, err)
	}
}

func TestNetworkProgrammingLatencyAndChangeCounters(t *testing.T) {
	store := cluster.NewStore()
	mustCreate(t, store, svcObj("ns", "web", nil))
	be := newFakeBackend("fake")
	r := startProxier(t, store, be, nil)
	be.next(t)
	<-r.p.Synced()
	svcChanges := testutil.ToFloat64(r.p.m.ServiceChangesTotal)

	// An EndpointSlice carrying endpoints.kubernetes.io/last-change-trigger-time
	// (as the EndpointSlice controller writes it): the sync that programs
	// it observes kubeproxy_network_programming_duration_seconds once.
	sl := sliceObj("ns", "web-1", "web", discoveryv1.AddressTypeIPv4, []discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)}, sliceEp("10.0.0.1"))
	sl.Annotations = map[string]string{corev1.EndpointsLastChangeTriggerTime: time.Now().UTC().Format(time.RFC3339Nano)}
	mustCreate(t, store, sl)
	be.next(t)
	waitFor(t, func() bool { return histogramCount(t, r.reg, "kubeproxy_network_programming_duration_seconds") == 1 })
	if got := testutil.ToFloat64(r.p.m.EndpointChangesTotal); got != 1 {
		t.Fatalf("kubeproxy_sync_proxy_rules_endpoint_changes_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.p.m.EndpointChangesPending); got != 0 {
		t.Fatalf("kubeproxy_sync_proxy_rules_endpoint_changes_pending = %v after the sync, want 0", got)
	}
	if got := testutil.ToFloat64(r.p.m.ServiceChangesTotal); got != svcChanges {
		t.Fatalf("service changes %v → %v without a service change", svcChanges, got)
	}
	if histogramCount(t, r.reg, "kubeproxy_sync_partial_proxy_rules_duration_seconds") != 1 ||
		histogramCount(t, r.reg, "kubeproxy_sync_full_proxy_rules_duration_seconds") != 1 ||
		histogramCount(t, r.reg, "kubeproxy_sync_proxy_rules_duration_seconds") != 2 {
		t.Fatal("one full and one partial sync must be observed")
	}
}

func histogramCount(t *testing.T, g prometheus.Gatherer, name string) uint64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var n uint64
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
			return n
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}
