package standalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/nftables"
	_ "github.com/switchboard-dev/switchboard/serviceproxy/userspace" // mode "userspace"
)

// Proxy modes of up.
const (
	ProxyAuto      = "auto"
	ProxyUserspace = "userspace"
	ProxyNone      = "none"
	ProxyNFTables  = "nftables"
)

// chooseProxyMode resolves --proxy-mode. In the loopback sandbox pods
// share the host's network namespace, so a kernel mode (nftables,
// iptables, ipvs) would rewrite the host's own rules: auto picks
// userspace, which needs no root and changes nothing on the host, and the
// kernel modes are refused with the reason. In the netns sandbox the node
// has a namespace of its own: auto picks nftables, programmed there.
func chooseProxyMode(mode string, netns bool) (string, error) {
	if netns {
		switch mode {
		case "", ProxyAuto, ProxyNFTables:
			return ProxyNFTables, nil
		case ProxyNone:
			return ProxyNone, nil
		}
		return "", fmt.Errorf("--proxy-mode %q: the netns sandbox runs auto (nftables in the node namespace), nftables or none", mode)
	}
	switch mode {
	case "", ProxyAuto, ProxyUserspace:
		return ProxyUserspace, nil
	case ProxyNone:
		return ProxyNone, nil
	}
	if slices.Contains(serviceproxy.Modes(), mode) || slices.Contains([]string{"nftables", "iptables", "ipvs"}, mode) {
		return "", fmt.Errorf("--proxy-mode %s: the loopback sandbox runs pods in the host's own network namespace, where a kernel mode would rewrite the host's rules; use auto or userspace here, or --network netns (run `switchboard kube-proxy --mode %s` inside a node network namespace for the other kernel modes)", mode, mode)
	}
	return "", fmt.Errorf("--proxy-mode %q: unknown (auto, userspace, none)", mode)
}

// serviceProxy is up's kube-proxy.
type serviceProxy struct {
	mode    string
	px      *serviceproxy.Proxier
	backend serviceproxy.Backend
}

// newServiceProxy builds the proxy of up: NodePorts answer on the node's
// address; the kube-proxy metrics go to up's registry (served by the local
// API's /metrics); kube-proxy's own :10256 and :10249 servers are off,
// since several nodes may run on one host.
//
// nodeNetNS (the netns sandbox) is the node namespace the nftables mode
// programs. There pods share one bridge: a reply from a pod to a pod on
// the same bridge would go straight back over it, around the node's
// conntrack that undoes the DNAT (the kernel sends bridged traffic
// through netfilter only with br_netfilter, a module whose loading
// changes the host). So traffic to services is masqueraded
// (--masquerade-all): the reply comes back through the node.
func newServiceProxy(mode string, store *cluster.Store, nodeName string, nodeIP netip.Addr, podCIDR netip.Prefix, nodeNetNS string, reg prometheus.Registerer, log *slog.Logger) (*serviceProxy, error) {
	if mode == ProxyNone {
		return nil, nil
	}
	metrics := serviceproxy.NewMetrics(reg, mode)
	var backend serviceproxy.Backend
	var err error
	if mode == ProxyNFTables {
		if nodeNetNS == "" {
			return nil, errors.New("nftables mode needs the node network namespace (--network netns)")
		}
		backend, err = nftables.New(nftables.Config{
			NodeName: nodeName, NodeIPs: []netip.Addr{nodeIP}, ClusterCIDRs: []netip.Prefix{podCIDR},
			MasqueradeAll: true, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			NetNSPath: nodeNetNS, Logger: log.With("component", "kube-proxy"), Metrics: metrics,
		})
	} else {
		backend, err = serviceproxy.NewMode(mode, serviceproxy.ModeConfig{
			NodeName: nodeName, NodeIPs: []netip.Addr{nodeIP}, ClusterCIDRs: []netip.Prefix{podCIDR},
			Logger: log.With("component", "kube-proxy"), Metrics: metrics, Registerer: reg,
		})
	}
	if err != nil {
		return nil, err
	}
	px, err := serviceproxy.New(serviceproxy.Config{
		Store: store, NodeName: nodeName, NodeIPs: []netip.Addr{nodeIP}, ClusterCIDRs: []netip.Prefix{podCIDR},
		Metrics: metrics, Logger: log, Backend: backend,
	})
	if err != nil {
		return nil, err
	}
	return &serviceProxy{mode: mode, px: px, backend: backend}, nil
}

// run runs the proxy until ctx ends, then removes what the backend made
// (userspace: its listeners and any address it added).
func (s *serviceProxy) run(ctx context.Context) error {
	err := s.px.Run(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, s.backend.Cleanup(context.Background()))
}

// describe is the progress line of the proxy.
func (s *serviceProxy) describe(nodeIP netip.Addr) string {
	if s == nil {
		return "service proxy: off (--proxy-mode none)"
	}
	return fmt.Sprintf("service proxy: %s mode (cluster IPs, and NodePorts on %s)", s.mode, nodeIP)
}
