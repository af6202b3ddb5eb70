package ingresscmd

import (
	"context"
	"log/slog"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/kubesource"
)

// NewKubeStore builds the controller's store from a real API server
// (cluster/kubesource): IngressClasses, Ingresses, Services,
// EndpointSlices and Secrets of type kubernetes.io/tls (a field selector:
// no other Secret is sent), writing back the Ingress status the controller
// sets and the Events it records. It returns once the caches have synced;
// the source runs until ctx is done.
func NewKubeStore(ctx context.Context, kubeconfig string, log *slog.Logger) (*cluster.Store, error) {
	rc, err := kubesource.RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	store, _, err := kubesource.Open(ctx, kubesource.Config{
		REST: rc,
		Kinds: []*cluster.Kind{cluster.KindIngressClass, cluster.KindIngress, cluster.KindService,
			cluster.KindEndpointSlice, cluster.KindSecret},
		FieldSelectors: map[*cluster.Kind]string{cluster.KindSecret: kubesource.TLSSecrets},
		StatusKinds:    []*cluster.Kind{cluster.KindIngress},
		Events:         true,
		Logger:         log,
	}, nil)
	return store, err
}
