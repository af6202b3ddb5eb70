package dnscmd

import (
	"bytes"
	"context"
	"log/slog"

	"github.com/coredns/caddy/caddyfile"
	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/kubesource"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin/kubernetes"
)

// NeedsPods tells whether a Corefile's kubernetes plugin answers
// `pods verified`, the only mode that reads Pods (CoreDNS's kubernetes
// plugin watches pods only then): a store from the API server lists Pods
// only when it is true. A Corefile that does not parse needs none (the
// server reports its error).
func NeedsPods(filename string, corefile []byte) bool {
	blocks, err := caddyfile.Parse(filename, bytes.NewReader(corefile), dnsserver.Directives)
	if err != nil {
		return false
	}
	for _, b := range blocks {
		toks := b.Tokens["kubernetes"]
		for i := 0; i+1 < len(toks); i++ {
			if toks[i].Text == "pods" && toks[i+1].Text == "verified" && toks[i+1].Line == toks[i].Line {
				return true
			}
		}
	}
	return false
}

// KubeStoreConfig configures NewKubeStore.
type KubeStoreConfig struct {
	Kubeconfig string // "" means the in-cluster configuration
	Pods       bool   // list Pods too (`pods verified`)
	Logger     *slog.Logger
}

// NewKubeStore builds the DNS server's store from a real API server
// (cluster/kubesource): Services, EndpointSlices and Namespaces, and Pods
// only when cfg.Pods, trimmed to what the kubernetes plugin reads
// (kubernetes.TrimStore) before they are cached. It returns once the
// caches have synced; the source runs until ctx is done.
func NewKubeStore(ctx context.Context, cfg KubeStoreConfig) (*cluster.Store, error) {
	rc, err := kubesource.RESTConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, err
	}
	kinds := []*cluster.Kind{cluster.KindNamespace, cluster.KindService, cluster.KindEndpointSlice}
	trims := map[*cluster.Kind]cluster.TransformFunc{
		cluster.KindService:       kubernetes.TrimService,
		cluster.KindEndpointSlice: kubernetes.TrimEndpointSlice,
	}
	if cfg.Pods {
		kinds = append(kinds, cluster.KindPod)
		trims[cluster.KindPod] = kubernetes.TrimPod
	}
	store, _, err := kubesource.Open(ctx, kubesource.Config{
		REST: rc, Kinds: kinds, Transforms: trims, Logger: cfg.Logger,
	}, kubernetes.TrimStore)
	return store, err
}

// kubeconfigFlag is the root command's --kubeconfig ("" when the command
// runs without one).
func kubeconfigFlag(cmd *cobra.Command) string {
	if f := cmd.Flag("kubeconfig"); f != nil {
		return f.Value.String()
	}
	return ""
}
