// Package proxycmd owns `switchboard kube-proxy`: it runs the service
// proxy (serviceproxy.Proxier) with one registered mode against a store
// of its own, filled from manifests as `switchboard dns -f` does
// (cluster/standalonestore) or from a real API server (--kubeconfig,
// cluster/kubesource), renders one sync with --dry-run, and removes
// every mode's rules with --cleanup. It holds no proxy logic (that is
// serviceproxy and its mode packages) and imports no mode: the binary
// blank-imports serviceproxy/modes/all so that the modes register
// themselves.
package proxycmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/kubesource"
	"github.com/switchboard-dev/switchboard/cluster/standalonestore"
	"github.com/switchboard-dev/switchboard/internal/sigctx"
	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// KernelModes are the modes that program the kernel; starting in one mode
// removes the others' leftovers, as kube-proxy does (their rules would
// catch service traffic first).
var KernelModes = []string{"nftables", "iptables", "ipvs"}

// DefaultServiceCIDR is the range cluster IPs of the -f store come from
// in the kernel modes (kube-apiserver's --service-cluster-ip-range
// default); the userspace mode uses the loopback sandbox's
// (standalonestore.DefaultServiceCIDR) so that it needs no root.
var DefaultServiceCIDR = netip.MustParsePrefix("10.96.0.0/12")

// Options are the command's flags.
type Options struct {
	Mode          string
	Paths         []string
	Kubeconfig    string // the root command's --kubeconfig: a real API server instead of -f
	NodeName      string
	ClusterCIDRs  []string
	NodeIPs       []string
	ServiceCIDR   string
	DryRun        bool
	Cleanup       bool
	MinSyncPeriod time.Duration
	SyncPeriod    time.Duration
	HealthzAddr   string
	MetricsAddr   string
	// IPTablesBackend is --iptables-backend: auto, nft or legacy.
	IPTablesBackend string
}

// NewCommand returns `switchboard kube-proxy`.
func NewCommand() *cobra.Command {
	o := &Options{}
	cmd := &cobra.Command{
		Use:   "kube-proxy --mode nftables|iptables|ipvs|userspace (-f MANIFESTS | --kubeconfig FILE) [flags]",
		Short: "Run the service proxy (kube-proxy) for services and EndpointSlices of manifests",
		Long: `kube-proxy programs this node so that Service addresses (cluster IPs,
NodePorts, external IPs, load-balancer IPs) reach their endpoints, as
Kubernetes' kube-proxy does, in one of its modes: nftables, iptables, ipvs
or userspace (Go proxies; no root needed in the loopback sandbox).

It reads Kubernetes manifests (-f, repeatable, files or directories) into a
store of its own: services get cluster IPs, EndpointSlices follow the pods,
and hand-written EndpointSlices are used as they are. Changes to the files
are applied as they happen.

--dry-run prints what one sync would apply (the nft script, the
iptables-restore input, ...) and changes nothing. --cleanup removes the
rules of every mode and exits. On start the other kernel modes' rules are
removed, as kube-proxy does.

/healthz and /livez are served on --healthz-bind-address, /metrics on
--metrics-bind-address (kube-proxy's kubeproxy_* metrics); "" disables
either.

With --kubeconfig (or, without it and without -f, in a pod with a service
account) Services, EndpointSlices and this node's Node come from a real
Kubernetes API server, as kube-proxy's informers watch them (without the
objects labelled service.kubernetes.io/service-proxy-name, which belong to
another proxy); the proxy starts once the caches have synced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			ctx, stop := sigctx.Context()
			defer stop()
			if f := cmd.Flag("kubeconfig"); f != nil && o.Kubeconfig == "" {
				o.Kubeconfig = f.Value.String()
			}
			return Run(ctx, o, cmd.OutOrStdout(), slog.Default())
		},
	}
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&o.Mode, "mode", "iptables", "proxy mode: "+strings.Join(modeNames(), ", ")+" (kube-proxy's default on Linux is iptables)")
	f.StringArrayVarP(&o.Paths, "filename", "f", nil, "manifest file or directory (recursive) with Services and EndpointSlices; repeatable")
	f.StringVar(&o.NodeName, "node-name", strings.ToLower(host), "this node's name: endpoints on it are local (kube-proxy's --hostname-override)")
	f.StringSliceVar(&o.ClusterCIDRs, "cluster-cidr", nil, "pod range(s); traffic from outside them to cluster IPs is masqueraded (comma-separated or repeated)")
	f.StringSliceVar(&o.NodeIPs, "node-ip", nil, "address(es) NodePorts and health check ports answer on (default: every local address)")
	f.StringVar(&o.ServiceCIDR, "service-cidr", "", "range cluster IPs of the -f store come from (default "+DefaultServiceCIDR.String()+", "+standalonestore.DefaultServiceCIDR.String()+" in userspace mode)")
	f.BoolVar(&o.DryRun, "dry-run", false, "print what one sync would apply and exit, changing nothing (no root needed)")
	f.BoolVar(&o.Cleanup, "cleanup", false, "remove the rules of every mode and exit")
	f.DurationVar(&o.MinSyncPeriod, "min-sync-period", serviceproxy.DefaultMinSyncPeriod, "least time between syncs; changes in between are applied together")
	f.DurationVar(&o.SyncPeriod, "sync-period", serviceproxy.DefaultSyncPeriod, "longest time between (full) syncs")
	f.StringVar(&o.HealthzAddr, "healthz-bind-address", serviceproxy.DefaultHealthzAddr, "address of /healthz and /livez (\"\" disables)")
	f.StringVar(&o.MetricsAddr, "metrics-bind-address", serviceproxy.DefaultMetricsAddr, "address of /metrics (\"\" disables)")
	f.StringVar(&o.IPTablesBackend, "iptables-backend", "auto", "iptables mode: auto, nft or legacy; auto uses the backend that already holds rules (kubelet's KUBE-IPTABLES-HINT, else more rules), nft when none, as kube-proxy's images (iptables-wrapper)")
	return cmd
}

func modeNames() []string {
	if m := serviceproxy.Modes(); len(m) > 0 {
		return m
	}
	return []string{"nftables", "iptables", "ipvs", "userspace"}
}

// parsed are the checked flags.
type parsed struct {
	nodeIPs      []netip.Addr
	clusterCIDRs []netip.Prefix
	serviceCIDR  netip.Prefix
}

func parse(o *Options) (parsed, error) {
	var p parsed
	for _, s := range o.NodeIPs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return p, fmt.Errorf("--node-ip %q: %w", s, err)
		}
		p.nodeIPs = append(p.nodeIPs, a.Unmap())
	}
	for _, s := range o.ClusterCIDRs {
		c, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return p, fmt.Errorf("--cluster-cidr %q: %w", s, err)
		}
		p.clusterCIDRs = append(p.clusterCIDRs, c.Masked())
	}
	switch {
	case o.ServiceCIDR != "":
		c, err := netip.ParsePrefix(o.ServiceCIDR)
		if err != nil {
			return p, fmt.Errorf("--service-cidr %q: %w", o.ServiceCIDR, err)
		}
		p.serviceCIDR = c.Masked()
	case o.Mode == "userspace":
		p.serviceCIDR = standalonestore.DefaultServiceCIDR
	default:
		p.serviceCIDR = DefaultServiceCIDR
	}
	switch strings.ToLower(strings.TrimSpace(o.IPTablesBackend)) {
	case "", "auto", "nft", "legacy":
	default:
		return p, fmt.Errorf("--iptables-backend %q: must be auto, nft or legacy", o.IPTablesBackend)
	}
	if o.MinSyncPeriod < 0 || o.SyncPeriod < 0 {
		return p, errors.New("--min-sync-period and --sync-period must not be negative")
	}
	return p, nil
}

// Run does what the command does with o, until ctx is done: --cleanup,
// --dry-run (writing the rendering to out), or the proxy.
func Run(ctx context.Context, o *Options, out io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	p, err := parse(o)
	if err != nil {
		return err
	}
	mc := serviceproxy.ModeConfig{NodeName: o.NodeName, NodeIPs: p.nodeIPs, ClusterCIDRs: p.clusterCIDRs, Logger: log, IPTablesBackend: o.IPTablesBackend}
	if o.Cleanup {
		if len(serviceproxy.Modes()) == 0 {
			return errors.New("--cleanup: no mode is registered")
		}
		if err := serviceproxy.CleanupModes(ctx, mc); err != nil {
			return fmt.Errorf("--cleanup: %w", err)
		}
		log.Info("removed the rules of every mode", "modes", strings.Join(serviceproxy.Modes(), ","))
		return nil
	}
	if !slices.Contains(serviceproxy.Modes(), o.Mode) {
		if len(serviceproxy.Modes()) == 0 {
			return fmt.Errorf("--mode %q: no mode is registered in this binary", o.Mode)
		}
		return fmt.Errorf("--mode %q: unknown mode (registered: %s)", o.Mode, strings.Join(serviceproxy.Modes(), ", "))
	}
	fromAPI := o.Kubeconfig != "" || (len(o.Paths) == 0 && kubesource.InCluster())
	switch {
	case fromAPI && len(o.Paths) > 0:
		return errors.New("--kubeconfig and -f: give one source of Services and EndpointSlices, not both")
	case !fromAPI && len(o.Paths) == 0:
		return errors.New("-f: give the manifests (files or directories) to read Services and EndpointSlices from, or --kubeconfig")
	}

	reg := prometheus.NewRegistry()
	if !o.DryRun {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	var store *cluster.Store
	if fromAPI {
		if store, err = NewKubeStore(ctx, o.Kubeconfig, o.NodeName, log); err != nil {
			return err
		}
	} else {
		var problems []error
		store, problems, err = standalonestore.New(ctx, standalonestore.Config{Paths: o.Paths, ServiceCIDR: p.serviceCIDR, Registerer: reg, Logger: log})
		if err != nil {
			return err
		}
		for _, pr := range problems {
			log.Error("manifest problem", "err", pr)
		}
	}
	metrics := serviceproxy.NewMetrics(reg, o.Mode)
	mc.Metrics, mc.Registerer, mc.DryRun = metrics, reg, o.DryRun
	backend, err := serviceproxy.NewMode(o.Mode, mc)
	if err != nil {
		return err
	}
	cfg := serviceproxy.Config{
		Store: store, NodeName: o.NodeName, NodeIPs: p.nodeIPs, ClusterCIDRs: p.clusterCIDRs,
		MinSyncPeriod: o.MinSyncPeriod, SyncPeriod: o.SyncPeriod,
		Gatherer: reg, Metrics: metrics, Logger: log, Backend: backend,
	}
	if o.DryRun {
		dr, ok := backend.(serviceproxy.DryRunner)
		if !ok {
			return fmt.Errorf("--dry-run: mode %s cannot render its rules", o.Mode)
		}
		px, err := serviceproxy.New(cfg)
		if err != nil {
			return err
		}
		st, err := px.Snapshot(ctx)
		if err != nil {
			return err
		}
		b, err := dr.Render(st)
		if err != nil {
			return fmt.Errorf("--dry-run: mode %s: %w", o.Mode, err)
		}
		_, err = out.Write(b)
		return err
	}

	// As kube-proxy: remove what the other kernel modes left behind.
	var skip []string
	for _, m := range serviceproxy.Modes() {
		if m == o.Mode || !slices.Contains(KernelModes, m) {
			skip = append(skip, m)
		}
	}
	cmc := mc
	cmc.Metrics, cmc.Registerer = nil, nil
	if err := serviceproxy.CleanupModes(ctx, cmc, skip...); err != nil {
		log.Warn("removing other modes' rules", "err", err)
	}

	cfg.HealthzAddr, cfg.MetricsAddr = o.HealthzAddr, o.MetricsAddr
	px, err := serviceproxy.New(cfg)
	if err != nil {
		return err
	}
	if fromAPI {
		log.Info("starting kube-proxy", "mode", o.Mode, "node", o.NodeName, "kubeconfig", o.Kubeconfig)
	} else {
		log.Info("starting kube-proxy", "mode", o.Mode, "node", o.NodeName, "manifests", strings.Join(o.Paths, ","))
	}
	return px.Run(ctx)
}
