// Package standalonestore builds the cluster.Store of a command that runs
// one component on its own from manifests (`switchboard dns -f`,
// `switchboard kube-proxy -f`): a store with the admission chain
// `switchboard up` uses (defaults, validation, ClusterIP and NodePort
// allocation), the manifests loaded and watched, and the controllers
// running (so that EndpointSlices follow). It owns no component logic and
// must not start pods, proxies or servers.
package standalonestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/admission"
	"github.com/switchboard-dev/switchboard/cluster/controllers"
	"github.com/switchboard-dev/switchboard/cluster/manifests"
)

// DefaultServiceCIDR is the service range when Config.ServiceCIDR is
// unset: the loopback sandbox's, as `switchboard up`.
var DefaultServiceCIDR = netip.MustParsePrefix("127.96.0.0/16")

// Config configures New.
type Config struct {
	Paths       []string     // manifest files and directories
	ServiceCIDR netip.Prefix // default DefaultServiceCIDR
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
}

// New builds the store, loads the manifests and runs the manifest source
// and the controllers until ctx is done. It returns once the controllers
// have synced, with the store and the problems the manifests had (each
// names its file); the store is usable with the good objects.
func New(ctx context.Context, cfg Config) (*cluster.Store, []error, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = DefaultServiceCIDR
	}
	for _, p := range cfg.Paths {
		if _, err := os.Stat(p); err != nil {
			return nil, nil, fmt.Errorf("manifests: %w", err)
		}
	}
	store := cluster.NewStore()
	alloc, err := controllers.NewAllocator(controllers.Config{ServiceCIDR: cfg.ServiceCIDR, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	store.Use(admission.Default, admission.Validate, alloc.Admit)
	for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		if _, err := store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return nil, nil, fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	mgr := controllers.New(store, controllers.Config{ServiceCIDR: cfg.ServiceCIDR, Logger: log, Registerer: cfg.Registerer})
	src := manifests.NewSource(store, cfg.Paths, manifests.Options{Logger: log.With("component", "manifests"), Registerer: cfg.Registerer})
	go func() {
		if err := mgr.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("controllers stopped", "err", err)
		}
	}()
	problems := src.Load(ctx)
	go func() {
		if err := src.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("manifest source stopped", "err", err)
		}
	}()
	select {
	case <-mgr.Synced():
	case <-ctx.Done():
	}
	return store, problems, nil
}
