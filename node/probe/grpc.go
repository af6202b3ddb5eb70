package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// grpcProbe calls grpc.health.v1.Health/Check for service on host:port
// over plaintext within timeout, as kubelet's gRPC prober: "If the
// service's status is SERVING the probe succeeds"; any other status or any
// error is a failure with upstream's message ("service unhealthy
// (responded with \"NOT_SERVING\")", "timeout: failed to connect service
// ...", "error: this server does not implement the grpc health protocol
// ...").
func grpcProbe(ctx context.Context, host, service string, port int, timeout time.Duration) (outcome, string, error) {
	opts := []grpc.DialOption{
		grpc.WithUserAgent(userAgent()),
		grpc.WithBlock(), //nolint:staticcheck // kubelet blocks until connected or timed out
		grpc.WithTransportCredentials(insecure.NewCredentials()), // credentials are not supported, as upstream
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return sharedDialer.DialContext(ctx, "tcp", addr)
		}),
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	addr := net.JoinHostPort(host, strconv.Itoa(port))
	conn, err := grpc.DialContext(ctx, addr, opts...) //nolint:staticcheck // see WithBlock
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return outcomeFailure, fmt.Sprintf("timeout: failed to connect service %q within %v: %+v", addr, timeout, err), nil
		}
		return outcomeFailure, fmt.Sprintf("error: failed to connect service at %q: %+v", addr, err), nil
	}
	defer func() { _ = conn.Close() }()

	resp, err := healthpb.NewHealthClient(conn).Check(metadata.NewOutgoingContext(ctx, make(metadata.MD)), &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if stat, ok := status.FromError(err); ok {
			switch stat.Code() {
			case codes.Unimplemented:
				return outcomeFailure, fmt.Sprintf("error: this server does not implement the grpc health protocol (grpc.health.v1.Health): %s", stat.Message()), nil
			case codes.DeadlineExceeded:
				return outcomeFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", timeout), nil
			}
		}
		return outcomeFailure, fmt.Sprintf("error: health rpc probe failed: %+v", err), nil
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return outcomeFailure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String()), nil
	}
	return outcomeSuccess, "service healthy", nil
}
