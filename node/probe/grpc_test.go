package probe

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
)

// startGRPC serves gRPC on 127.0.0.1:0 until the test ends, with the
// standard health service when withHealth.
func startGRPC(t testing.TB, withHealth bool, uas *uaLog) (*health.Server, string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if md, ok := metadata.FromIncomingContext(ctx); ok && uas != nil {
			uas.add(strings.Join(md.Get("user-agent"), ","))
		}
		return h(ctx, req)
	}))
	t.Cleanup(srv.Stop)
	var hs *health.Server
	if withHealth {
		hs = health.NewServer()
		healthpb.RegisterHealthServer(srv, hs)
	}
	go func() { _ = srv.Serve(l) }()
	host, port := splitHostPort(t, l.Addr().String())
	return hs, host, port
}

type uaLog struct {
	mu  sync.Mutex
	all []string
}

func (u *uaLog) add(s string) { u.mu.Lock(); u.all = append(u.all, s); u.mu.Unlock() }
func (u *uaLog) last() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.all) == 0 {
		return ""
	}
	return u.all[len(u.all)-1]
}

func TestGRPC(t *testing.T) {
	t.Parallel()
	var uas uaLog
	hs, host, port := startGRPC(t, true, &uas)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("payments", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus("orders", healthpb.HealthCheckResponse_SERVING)
	_, plainHost, plainPort := startGRPC(t, false, nil)
	refused := closedPort(t)

	str := func(s string) *string { return &s }
	cases := []struct {
		name    string
		ip      string
		port    int
		service *string
		want    Result
		msg     string
	}{
		{name: "SERVING is success", ip: host, port: port, want: Success, msg: "service healthy"},
		{name: "the service name is sent: SERVING", ip: host, port: port, service: str("orders"), want: Success, msg: "service healthy"},
		{name: "NOT_SERVING is failure: service unhealthy (responded with \"NOT_SERVING\")", ip: host, port: port, service: str("payments"),
			want: Failure, msg: `service unhealthy (responded with "NOT_SERVING")`},
		{name: "an unknown service is failure with the rpc error", ip: host, port: port, service: str("nope"),
			want: Failure, msg: "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"},
		{name: "a server without grpc.health.v1 is failure", ip: plainHost, port: plainPort,
			want: Failure, msg: "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): unknown service grpc.health.v1.Health"},
		{name: "no connection within timeoutSeconds is failure", ip: "127.0.0.1", port: refused,
			want: Failure, msg: fmt.Sprintf("timeout: failed to connect service %q within 1s: context deadline exceeded", fmt.Sprintf("127.0.0.1:%d", refused))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(tc.port), Service: tc.service}}, TimeoutSeconds: 1}
			got, msg := Run(context.Background(), p, Target{Pod: testPod(), IP: tc.ip})
			if got != tc.want || msg != tc.msg {
				t.Fatalf("Run = %v %q, want %v %q", got, msg, tc.want, tc.msg)
			}
		})
	}
	t.Run("user agent is kube-probe/<major>.<minor>", func(t *testing.T) {
		p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port)}}, TimeoutSeconds: 1}
		if got, msg := Run(context.Background(), p, Target{IP: host}); got != Success {
			t.Fatalf("Run = %v %q", got, msg)
		}
		if ua := uas.last(); !strings.HasPrefix(ua, userAgent()+" ") {
			t.Fatalf("user-agent %q, want prefix %q", ua, userAgent())
		}
	})
}
