package ingresscmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/kubesource"
)

// Leader election defaults: the Lease's name, and kube-controller-manager's
// timings (--leader-elect-lease-duration 15s, --leader-elect-renew-deadline
// 10s, --leader-elect-retry-period 2s).
const (
	DefaultLeaseName     = "switchboard-ingress-leader"
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// LeaderElection configures the Lease-based leader election of replicas:
// all serve traffic; only the Lease's holder writes Ingress status and
// Events.
type LeaderElection struct {
	// Namespace of the Lease; "": the pod's (POD_NAMESPACE, else the
	// service account's namespace), else "default".
	Namespace string
	// Name of the Lease; "": DefaultLeaseName.
	Name string
	// Identity of this replica; "": hostname_random.
	Identity string
	// Timings; zero: the defaults above.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// KubeConfig configures OpenKube.
type KubeConfig struct {
	Kubeconfig string
	// Elect, when not nil, makes the write-back wait for the Lease.
	Elect  *LeaderElection
	Logger *slog.Logger
}

// NewKubeStore builds the controller's store from a real API server
// (cluster/kubesource): IngressClasses, Ingresses, Services,
// EndpointSlices and Secrets of type kubernetes.io/tls (a field selector:
// no other Secret is sent), writing back the Ingress status the controller
// sets and the Events it records. It returns once the caches have synced;
// the source runs until ctx is done.
func NewKubeStore(ctx context.Context, kubeconfig string, log *slog.Logger) (*cluster.Store, error) {
	store, _, err := OpenKube(ctx, KubeConfig{Kubeconfig: kubeconfig, Logger: log})
	return store, err
}

// OpenKube is NewKubeStore with leader election: with cfg.Elect the
// source writes status and Events only while this replica holds the
// Lease (elected in the background until ctx is done).
func OpenKube(ctx context.Context, cfg KubeConfig) (*cluster.Store, *kubesource.Source, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rc, err := kubesource.RESTConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	store, src, err := kubesource.Open(ctx, kubesource.Config{
		REST: rc,
		Kinds: []*cluster.Kind{cluster.KindIngressClass, cluster.KindIngress, cluster.KindService,
			cluster.KindEndpointSlice, cluster.KindSecret},
		FieldSelectors: map[*cluster.Kind]string{cluster.KindSecret: kubesource.TLSSecrets},
		StatusKinds:    []*cluster.Kind{cluster.KindIngress},
		Events:         true,
		LeaderOnly:     cfg.Elect != nil,
		Logger:         log,
	}, nil)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Elect != nil {
		le, err := newElector(*cfg.Elect, src, log)
		if err != nil {
			return nil, nil, err
		}
		go le(ctx)
	}
	return store, src, nil
}

// saNamespaceFile is where the kubelet mounts the pod's namespace.
var saNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// podNamespace is the namespace the process runs in, "" outside a pod.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile(saNamespaceFile); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// newElector returns the election loop: it campaigns for the Lease,
// turns the source's write-back on while it holds it, and campaigns again
// when it loses it, until ctx is done (then it releases the Lease, so
// that another replica takes over at once).
func newElector(e LeaderElection, src *kubesource.Source, log *slog.Logger) (func(context.Context), error) {
	if e.Namespace == "" {
		if e.Namespace = podNamespace(); e.Namespace == "" {
			e.Namespace = "default"
		}
	}
	if e.Name == "" {
		e.Name = DefaultLeaseName
	}
	if e.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("leader election identity: %w", err)
		}
		e.Identity = host + "_" + string(uuid.NewUUID())
	}
	if e.LeaseDuration == 0 {
		e.LeaseDuration = DefaultLeaseDuration
	}
	if e.RenewDeadline == 0 {
		e.RenewDeadline = DefaultRenewDeadline
	}
	if e.RetryPeriod == 0 {
		e.RetryPeriod = DefaultRetryPeriod
	}
	cs := src.Client()
	lock, err := resourcelock.New(resourcelock.LeasesResourceLock, e.Namespace, e.Name, cs.CoreV1(), cs.CoordinationV1(),
		resourcelock.ResourceLockConfig{Identity: e.Identity})
	if err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	lec := leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   e.LeaseDuration,
		RenewDeadline:   e.RenewDeadline,
		RetryPeriod:     e.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            "switchboard-ingress",
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				log.Info("leading: writing Ingress status and Events", "lease", e.Namespace+"/"+e.Name, "identity", e.Identity)
				src.SetLeader(true)
			},
			OnStoppedLeading: func() {
				if src.Leading() {
					log.Info("no longer leading: status and Events left to the leader", "lease", e.Namespace+"/"+e.Name, "identity", e.Identity)
				}
				src.SetLeader(false)
			},
			OnNewLeader: func(id string) {
				if id != e.Identity {
					log.Info("following", "leader", id, "lease", e.Namespace+"/"+e.Name)
				}
			},
		},
	}
	// Validate once, so that bad timings are an error of the command.
	if _, err := leaderelection.NewLeaderElector(lec); err != nil {
		return nil, fmt.Errorf("leader election: %w", err)
	}
	return func(ctx context.Context) {
		for ctx.Err() == nil {
			le, err := leaderelection.NewLeaderElector(lec)
			if err != nil {
				log.Error("leader election", "err", err)
				return
			}
			le.Run(ctx) // returns when the lead is lost or ctx is done
		}
	}, nil
}

// serveUnsynced serves /healthz (ok), /readyz (503: the caches have not
// synced) and /metrics on addr while the store is being listed; the
// returned function stops it, freeing addr for the controller's status
// listener. An empty addr serves nothing.
func serveUnsynced(addr string, g prometheus.Gatherer, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--status-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "informer caches not synced yet")
	})
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("status listener before sync", "err", err)
		}
	}()
	log.Info("waiting for the informer caches; /readyz is false until they sync", "status", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}
