package serviceproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/internal/testnet"
)

// TestRunListensInTheCallersNamespace runs the Proxier inside a node
// namespace (the calling goroutine's OS thread is locked into it) and
// asks its /healthz and the healthCheckNodePort server from a client
// namespace standing for the outside: they must listen in the node
// namespace, on the node's IP, which exists nowhere else.
func TestRunListensInTheCallersNamespace(t *testing.T) {
	n := testnet.New(t, testnet.Options{}) // skips unless root
	client := n.AddClient(t, "lb")
	nodeIP := n.NodeIPs()[0]
	const hcPort = 32100

	store := cluster.NewStore()
	mustCreate(t, store, svcObj("ns", "lb", func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.Ports[0].NodePort = 30080
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.HealthCheckNodePort = hcPort
	}))
	mustCreate(t, store, sliceObj("ns", "lb-1", "lb", discoveryv1.AddressTypeIPv4,
		[]discoveryv1.EndpointPort{epPort("http", 8080, corev1.ProtocolTCP)}, sliceEp("10.244.0.2", onNode("node-a"))))
	be := newFakeBackend("fake")
	p, err := New(Config{
		Store: store, NodeName: "node-a", NodeIPs: []netip.Addr{nodeIP},
		MinSyncPeriod: 5 * time.Millisecond, SyncPeriod: time.Hour,
		HealthzAddr: "0.0.0.0:10256", Logger: quietLog(), Backend: be,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	go func() { done <- n.Node().Do(func() error { return p.Run(ctx) }) }()
	select {
	case <-p.Synced():
	case <-time.After(20 * time.Second):
		t.Fatal("not synced within 20 s")
	}

	// An HTTP client whose sockets are made in the client namespace.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return client.DialTCP(ctx, netip.MustParseAddrPort(addr))
		},
	}}
	ask := func(port int, path string) (int, string) {
		t.Helper()
		resp, err := hc.Get(fmt.Sprintf("http://%s%s", netip.AddrPortFrom(nodeIP, uint16(port)), path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := ask(10256, "/healthz"); code != 200 || !strings.Contains(body, `"nodeEligible": true`) {
		t.Fatalf("/healthz from outside: %d %s", code, body)
	}
	if code, body := ask(hcPort, "/"); code != 200 || !strings.Contains(body, `"localEndpoints": 1`) {
		t.Fatalf("healthCheckNodePort from outside: %d %s", code, body)
	}
}
