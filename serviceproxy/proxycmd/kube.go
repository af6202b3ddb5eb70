package proxycmd

import (
	"context"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/kubesource"
)

// LabelServiceProxyName marks Services (and their EndpointSlices) that
// another proxy implements: "service.kubernetes.io/service-proxy-name ...
// kube-proxy ignores services with this label".
const LabelServiceProxyName = "service.kubernetes.io/service-proxy-name"

// ProxyLabelSelector is the label selector kube-proxy lists Services and
// EndpointSlices with: neither another proxy's objects nor the
// EndpointSlices of headless Services (service.kubernetes.io/headless).
func ProxyLabelSelector() string {
	noProxyName, _ := labels.NewRequirement(LabelServiceProxyName, selection.DoesNotExist, nil)
	noHeadless, _ := labels.NewRequirement(corev1.IsHeadlessService, selection.DoesNotExist, nil)
	return labels.NewSelector().Add(*noProxyName, *noHeadless).String()
}

// NewKubeStore builds the proxy's store from a real API server
// (cluster/kubesource) with what kube-proxy's informers watch: Services
// and EndpointSlices (ProxyLabelSelector) and this node's Node only. It
// returns once the caches have synced; the source runs until ctx is done.
func NewKubeStore(ctx context.Context, kubeconfig, nodeName string, log *slog.Logger) (*cluster.Store, error) {
	rc, err := kubesource.RESTConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	sel := ProxyLabelSelector()
	store, _, err := kubesource.Open(ctx, kubesource.Config{
		REST:           rc,
		Kinds:          []*cluster.Kind{cluster.KindService, cluster.KindEndpointSlice, cluster.KindNode},
		LabelSelectors: map[*cluster.Kind]string{cluster.KindService: sel, cluster.KindEndpointSlice: sel},
		FieldSelectors: map[*cluster.Kind]string{cluster.KindNode: fields.OneTermEqualSelector("metadata.name", nodeName).String()},
		Logger:         log,
	}, nil)
	return store, err
}
