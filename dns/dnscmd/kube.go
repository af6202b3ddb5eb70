package dnscmd

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	"github.com/coredns/caddy/caddyfile"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

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

// podFieldSelector is the field selector of CoreDNS's pod informer
// (plugin/kubernetes/controller.go, podListFunc): pods that have ended
// or whose state is unknown are never listed.
const podFieldSelector = "status.phase!=Succeeded,status.phase!=Failed,status.phase!=Unknown"

// NewKubeStore builds the DNS server's store from a real API server
// (cluster/kubesource): Services, EndpointSlices and Namespaces, trimmed
// to what the kubernetes plugin reads (kubernetes.TrimStore) before they
// are cached. With cfg.Pods, Pods are listed and watched too (with
// CoreDNS's field selector) by a client-go Reflector straight into a
// kubernetes.PodTable made for the store: about 140 bytes a pod, and no
// informer cache or store copy of the corev1.Pod objects. It returns once
// everything has synced; the sources run until ctx is done.
func NewKubeStore(ctx context.Context, cfg KubeStoreConfig) (*cluster.Store, error) {
	store, synced, err := StartKubeStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-synced:
		return store, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("not synced with the API server: %w", context.Cause(ctx))
	}
}

// StartKubeStore is NewKubeStore without the wait, as `switchboard dns`
// runs: the kubernetes plugin (its startup wait, its answers and its
// `ready` readiness) counts as synced only once the API server's lists
// have arrived (kubernetes.SetSourceSynced), as CoreDNS's plugin waits
// for its informers. synced is closed then.
func StartKubeStore(ctx context.Context, cfg KubeStoreConfig) (store *cluster.Store, synced <-chan struct{}, err error) {
	rc, err := kubesource.RESTConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	var (
		pods *kubernetes.PodTable
		lw   *cache.ListWatch
	)
	if cfg.Pods {
		prc := rest.CopyConfig(rc)
		if prc.UserAgent == "" {
			prc.UserAgent = rest.DefaultKubernetesUserAgent() + " switchboard"
		}
		cs, err := clientset.NewForConfig(prc)
		if err != nil {
			return nil, nil, err
		}
		lw = cache.NewFilteredListWatchFromClient(cs.CoreV1().RESTClient(), "pods", metav1.NamespaceAll,
			func(o *metav1.ListOptions) { o.FieldSelector = podFieldSelector })
	}
	prepare := func(s *cluster.Store) {
		kubernetes.TrimStore(s)
		if lw != nil {
			// Listing at once, alongside the store's source.
			pods = kubernetes.NewPodTable(s)
			r := cache.NewReflectorWithOptions(lw, &corev1.Pod{}, pods, cache.ReflectorOptions{Name: "switchboard dns: pods"})
			go r.RunWithContext(ctx)
		}
	}
	kinds := []*cluster.Kind{cluster.KindNamespace, cluster.KindService, cluster.KindEndpointSlice}
	trims := map[*cluster.Kind]cluster.TransformFunc{
		cluster.KindService:       kubernetes.TrimService,
		cluster.KindEndpointSlice: kubernetes.TrimEndpointSlice,
	}
	store, src, err := kubesource.Begin(ctx, kubesource.Config{
		REST: rc, Kinds: kinds, Transforms: trims, Logger: cfg.Logger,
	}, prepare)
	if err != nil {
		return nil, nil, err
	}
	srcSynced := src.Synced(ctx)
	kubernetes.SetSourceSynced(store, srcSynced)
	all := make(chan struct{})
	go func() {
		for _, ch := range []<-chan struct{}{srcSynced, podsSynced(pods)} {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
		close(all)
	}()
	return store, all, nil
}

// podsSynced is the table's Synced, or a closed channel without a table.
func podsSynced(t *kubernetes.PodTable) <-chan struct{} {
	if t != nil {
		return t.Synced()
	}
	ch := make(chan struct{})
	close(ch)
	return ch
}

// kubeconfigFlag is the root command's --kubeconfig ("" when the command
// runs without one).
func kubeconfigFlag(cmd *cobra.Command) string {
	if f := cmd.Flag("kubeconfig"); f != nil {
		return f.Value.String()
	}
	return ""
}
