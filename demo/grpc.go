package demo

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// GRPCConfig configures the gRPC demo server.
type GRPCConfig struct {
	Addr     string   // host:port; port 0 picks one
	Services []string // named services reported besides the overall ("")
	// NotServing starts every status at NOT_SERVING.
	NotServing bool
	// Toggle flips every status between SERVING and NOT_SERVING on each
	// receive (the command feeds it SIGUSR1).
	Toggle   <-chan struct{}
	Logger   *slog.Logger        // nil: slog.Default()
	OnListen func(addr net.Addr) // called once the listener is open
}

// RunGRPC serves grpc.health.v1 (the protocol of Kubernetes' grpc probes)
// until ctx ends, then stops gracefully and returns nil.
func RunGRPC(ctx context.Context, cfg GRPCConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(ctx, req)
			attrs := []any{"method", info.FullMethod, "code", status.Code(err).String()}
			if hc, ok := req.(*healthpb.HealthCheckRequest); ok {
				attrs = append(attrs, "service", hc.GetService())
			}
			if r, ok := resp.(*healthpb.HealthCheckResponse); ok {
				attrs = append(attrs, "status", r.GetStatus().String())
			}
			log.Info("rpc", attrs...)
			return resp, err
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			log.Info("stream", "method", info.FullMethod)
			err := h(srv, ss)
			log.Info("stream ended", "method", info.FullMethod, "code", status.Code(err).String())
			return err
		}),
	)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)

	var mu sync.Mutex
	serving := !cfg.NotServing
	set := func() {
		st := healthpb.HealthCheckResponse_SERVING
		if !serving {
			st = healthpb.HealthCheckResponse_NOT_SERVING
		}
		for _, svc := range append([]string{""}, cfg.Services...) {
			hs.SetServingStatus(svc, st)
		}
		log.Info("health status", "status", st.String(), "services", cfg.Services)
	}
	set()

	log.Info("demo grpc listening", "addr", ln.Addr().String())
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	for {
		select {
		case err := <-errc:
			return err
		case <-cfg.Toggle:
			mu.Lock()
			serving = !serving
			set()
			mu.Unlock()
		case <-ctx.Done():
			log.Info("shutting down")
			hs.Shutdown() // every status NOT_SERVING, so watchers learn at once
			srv.GracefulStop()
			if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				return err
			}
			return nil
		}
	}
}

func newGRPCCommand() *cobra.Command {
	var (
		host string
		port int
		cfg  GRPCConfig
	)
	cmd := &cobra.Command{
		Use:   "grpc",
		Short: "Serve the gRPC health service (grpc.health.v1); SIGUSR1 toggles SERVING/NOT_SERVING",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			addr, err := hostPort(host, port)
			if err != nil {
				return err
			}
			cfg.Addr = addr
			cfg.Logger = newLogger(cmd.OutOrStdout())
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGUSR1)
			defer signal.Stop(sigs)
			toggle := make(chan struct{})
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			go func() {
				for {
					select {
					case <-sigs:
						select {
						case toggle <- struct{}{}:
						case <-ctx.Done():
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			cfg.Toggle = toggle
			return RunGRPC(ctx, cfg)
		},
	}
	addrFlags(cmd, &host, &port, 9090)
	cmd.Flags().StringArrayVar(&cfg.Services, "service", nil, "a service name to report besides the overall status (repeatable)")
	cmd.Flags().BoolVar(&cfg.NotServing, "not-serving", false, "start NOT_SERVING")
	return cmd
}
