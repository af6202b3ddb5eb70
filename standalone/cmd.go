package standalone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/ingress/acmeflags"
	"github.com/switchboard-dev/switchboard/internal/sigctx"
	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// NewUpCommand returns `switchboard up`. stateDir points at the root
// command's --state-dir value (resolved to a default when empty).
func NewUpCommand(stateDir *string, defaultStateDir func() string, logger func() *slog.Logger) *cobra.Command {
	var (
		paths        []string
		nodeName     string
		podCIDR      string
		serviceCIDR  string
		apiAddr      string
		network      string
		readyTimeout time.Duration
		clusterDom   string
		corefile     string
		dnsPort      int
		noDNS        bool
		proxyMode    string
		ingHTTP      string
		ingHTTPS     string
		noIngress    bool
		ingACME      acmeflags.Options
		dnsPublish   string
		publishedDNS string
		nodes        int
		overlay      string
		cniChain     []string
	)
	cmd := &cobra.Command{
		Use:   "up -f FILE_OR_DIR [-f ...]",
		Short: "Run the manifests' pods on this host as a one-node cluster",
		Long: `up turns this host into a one-node cluster for ordinary Kubernetes manifests:
every pod runs as local processes with an IP of its own, probes run as kubelet
runs them, Deployments roll, Services get cluster IPs and EndpointSlices follow
pod readiness. The manifests are watched: edit, add or delete files and the
node follows. Ctrl-C stops everything.

Pods run their containers' command and args as host processes; images are
not pulled. A command "switchboard" runs this binary (see switchboard demo).

As root, up runs the netns sandbox (below) unless --network loopback is
given; as any other user, the loopback sandbox.

The loopback sandbox needs no root: pods get addresses in 127.244.0.0/16 and
services in 127.96.0.0/16 (all of 127.0.0.0/8 is local on Linux). The service
proxy (userspace mode here) listens on every cluster IP and port, and on the
node address for NodePorts, and spreads connections over ready endpoints.

The netns sandbox (root; --network netns) runs the node in a network namespace of its own
(sb-NODE, see "ip netns list"), the way kind puts a node in a container, and
every pod in its own network namespace attached to the node's bridge by the
switchboard CNI plugin (conflist in STATE_DIR/cni/net.d; the lexically first
.conflist there is used, so a chain with portmap can be added), with the
pod's own /etc/resolv.conf (cluster DNS, kubelet's search list, ndots:5),
/etc/hosts and hostname. The service proxy runs in nftables mode inside the
node namespace and cluster DNS listens on the node address there. The host's
own routes, links and rules are never changed; everything is removed on exit,
and the next start removes what a crash left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pc, err := netip.ParsePrefix(podCIDR)
			if err != nil {
				return fmt.Errorf("--pod-cidr: %w", err)
			}
			sc, err := netip.ParsePrefix(serviceCIDR)
			if err != nil {
				return fmt.Errorf("--service-cidr: %w", err)
			}
			var nodeNetNS string
			var clusterNodes []ClusterNode
			auto := network == NetworkAuto
			if auto {
				network = autoNetwork()
			}
			switch network {
			case NetworkLoopback:
				if nodes > 1 {
					return errors.New("--nodes: several nodes need the netns sandbox (--network netns, as root)")
				}
			case NetworkNetNS:
				// The loopback defaults do not apply: Up picks the
				// netns ones.
				if !cmd.Flags().Changed("pod-cidr") {
					pc = netip.Prefix{}
				}
				if !cmd.Flags().Changed("service-cidr") {
					sc = netip.Prefix{}
				}
				path, child, err := childNodeNetNS()
				if err != nil {
					return err
				}
				if !child {
					cmd.SilenceUsage = true
					spec, err := clusterSpec(nodeName, cmd.Flags().Changed("node-name"), nodes, pc, overlay)
					if err != nil {
						return err
					}
					pc = spec.nodes[0].PodCIDR
					if auto {
						fmt.Fprintln(cmd.OutOrStdout(), "running as root: the netns sandbox (--network loopback runs the rootless one)")
					}
					req := publishRequest{API: apiAddr}
					if !noIngress {
						req.IngressHTTP, req.IngressHTTPS = ingHTTP, ingHTTPS
					}
					if !noDNS {
						req.DNS, req.DNSTarget = dnsPublish, nodeDNSTarget(pc, dnsPort)
					}
					return runNetNSParent(spec, req, logger(), cmd.OutOrStdout(), cmd.ErrOrStderr())
				}
				nodeNetNS = path
				if clusterNodes, err = childClusterNodes(); err != nil {
					return err
				}
				// Listen inside the node namespace on the addresses
				// the parent published on the host.
				got, err := childPublished()
				if err != nil {
					return err
				}
				if got != nil {
					if got.IngressOff != "" {
						noIngress = true
					} else if got.IngressHTTP != "" {
						ingHTTP, ingHTTPS = got.IngressHTTP, got.IngressHTTPS
					}
					if got.API != "" {
						apiAddr = got.API
					}
					publishedDNS = got.DNS
				}
			default:
				return fmt.Errorf("--network %q: unknown (auto, loopback, netns)", network)
			}
			dir := *stateDir
			if dir == "" {
				dir = defaultStateDir()
			}
			ctx, stop := sigctx.Context()
			defer stop()
			if nodeNetNS != "" {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				watchParent(cancel)
			}
			cmd.SilenceUsage = true
			ingressACME, err := ingACME.Config(filepath.Join(dir, "ingress-acme"))
			if err != nil {
				return err
			}
			return Up(ctx, Config{
				Paths:            paths,
				StateDir:         dir,
				NodeName:         nodeName,
				PodCIDR:          pc.Masked(),
				ServiceCIDR:      sc.Masked(),
				Network:          network,
				NodeNetNS:        nodeNetNS,
				APIAddr:          apiAddr,
				ReadyTimeout:     readyTimeout,
				ClusterDomain:    clusterDom,
				Corefile:         corefile,
				DNSPort:          dnsPort,
				NoDNS:            noDNS,
				ProxyMode:        proxyMode,
				IngressHTTPAddr:  ingHTTP,
				IngressHTTPSAddr: ingHTTPS,
				NoIngress:        noIngress,
				IngressACME:      ingressACME,
				PublishedDNS:     publishedDNS,
				Nodes:            clusterNodes,
				Overlay:          overlay,
				CNIChain:         cniChain,
				Out:              cmd.OutOrStdout(),
				Logger:           logger(),
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&paths, "filename", "f", nil, "manifest file or directory (recursive); repeatable")
	f.StringVar(&nodeName, "node-name", "node-1", "name of this node")
	f.StringVar(&podCIDR, "pod-cidr", DefaultPodCIDR.String(), "range of pod addresses")
	f.StringVar(&serviceCIDR, "service-cidr", DefaultServiceCIDR.String(), "range of service cluster IPs (its tenth address is cluster DNS)")
	f.StringVar(&apiAddr, "api-addr", "", "also serve the local API on this TCP address, e.g. 127.0.0.1:8001 (--network netns: published on the host)")
	f.StringVar(&network, "network", NetworkAuto, "pod sandbox: auto (netns as root, else loopback), loopback (no root needed) or netns (root: the node in a network namespace of its own, every pod in its own, through the CNI plugin; pods 10.244.0.0/16 and services 10.96.0.0/16 unless set)")
	f.IntVar(&nodes, "nodes", 1, "--network netns: run this many nodes (namespaces sb-NAME-1..N joined by a bridge in sb-NAME-fabric, NAME being --node-name, default \"node\" then), each with a /24 of the pod range")
	f.StringSliceVar(&cniChain, "cni-chain", nil, "netns sandbox: CNI plugins the node's conflist runs after ours, from /usr/lib/cni or /opt/cni/bin (e.g. portmap: containers' hostPorts on the node address)")
	f.StringVar(&overlay, "overlay", sandbox.OverlayVXLAN, "--nodes N: how pods reach pods on other nodes: vxlan (an overlay) or host-gw (routes)")
	f.StringVar(&clusterDom, "cluster-domain", "cluster.local", "the cluster's DNS domain")
	f.StringVar(&corefile, "corefile", "", "serve cluster DNS with this Corefile instead of the built-in kube-dns one")
	f.IntVar(&dnsPort, "dns-port", 0, "port of cluster DNS (default 53 when it can be bound, else 1053)")
	f.BoolVar(&noDNS, "no-dns", false, "do not run cluster DNS")
	f.StringVar(&dnsPublish, "dns-publish-addr", DefaultDNSPublishAddr, "--network netns: publish cluster DNS (UDP and TCP) on this host address (port 0: a free port; \"\": not at all)")
	f.StringVar(&ingHTTP, "ingress-http-addr", DefaultIngressHTTPAddr, "ingress controller's HTTP address (port 0: a free port)")
	f.StringVar(&ingHTTPS, "ingress-https-addr", DefaultIngressHTTPSAddr, "ingress controller's HTTPS address (port 0: a free port)")
	f.BoolVar(&noIngress, "no-ingress", false, "do not run the ingress controller")
	acmeflags.Add(f, &ingACME, "--ingress-http-addr", "STATE_DIR/ingress-acme")
	f.StringVar(&proxyMode, "proxy-mode", ProxyAuto, "service proxy: auto (userspace in the loopback sandbox, nftables in the netns sandbox), userspace, nftables (netns only), none")
	f.DurationVar(&readyTimeout, "ready-timeout", 60*time.Second, "print the summary after this long even if not every pod is ready")
	return cmd
}

// autoNetwork is the sandbox of `--network auto`: netns as root (and in
// the child a netns parent started), the rootless loopback one otherwise.
func autoNetwork() string {
	if os.Geteuid() == 0 || os.Getenv(EnvNodeNetNS) != "" {
		return NetworkNetNS
	}
	return NetworkLoopback
}

// clusterSpec is the nodes of `up --network netns`: one named name, or
// (--nodes N) name-1..name-N ("node-1".. when --node-name is not set),
// node i getting the i-th /24 of the pod range.
func clusterSpec(name string, nameSet bool, n int, podCIDR netip.Prefix, overlay string) (parentSpec, error) {
	if n < 1 || n > 64 {
		return parentSpec{}, fmt.Errorf("--nodes %d: between 1 and 64", n)
	}
	if overlay != sandbox.OverlayVXLAN && overlay != sandbox.OverlayHostGW {
		return parentSpec{}, fmt.Errorf("--overlay %q: unknown (vxlan, host-gw)", overlay)
	}
	if !podCIDR.IsValid() {
		podCIDR = DefaultNetNSPodCIDR
	}
	if n == 1 {
		return parentSpec{nodes: []ClusterNode{{Name: name, PodCIDR: podCIDR}}, cluster: name, overlay: overlay}, nil
	}
	if !nameSet {
		name = "node"
	}
	spec := parentSpec{cluster: name, overlay: overlay}
	for i := 0; i < n; i++ {
		cidr, err := sandbox.SplitPodCIDR(podCIDR, 24, i)
		if err != nil {
			return parentSpec{}, fmt.Errorf("--pod-cidr %s for %d nodes: %w", podCIDR, n, err)
		}
		spec.nodes = append(spec.nodes, ClusterNode{Name: fmt.Sprintf("%s-%d", name, i+1), PodCIDR: cidr})
	}
	return spec, nil
}
