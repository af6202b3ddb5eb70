// Package dnscmd owns `switchboard dns`: it runs the DNS server from a
// Corefile (CoreDNS's syntax and plugins), optionally with its own
// cluster.Store filled from manifests (or, with --kubeconfig, from a real
// API server through cluster/kubesource) so that the kubernetes plugin has
// services and endpoints, reloads the Corefile on SIGHUP, and stops with
// health's lameduck on SIGINT/SIGTERM. It also holds the default Corefile
// (CoreDNS's kube-dns one) that `switchboard up` uses. It holds no DNS
// logic: the server is dns/dnsserver, the plugins dns/plugin/*.
package dnscmd

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/kubesource"
	"github.com/switchboard-dev/switchboard/cluster/standalonestore"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugins/all" // every plugin
	"github.com/switchboard-dev/switchboard/internal/sigctx"
)

// DefaultZone is the cluster domain of the default Corefile.
const DefaultZone = "cluster.local"

// DefaultServiceCIDR is the service range of the store `dns -f` builds
// (the loopback sandbox's, as `switchboard up`).
var DefaultServiceCIDR = netip.MustParsePrefix("127.96.0.0/16")

// DefaultCorefile is CoreDNS's kube-dns Corefile (the one kubeadm and the
// CoreDNS deployment install) for the cluster domain zone, without loop
// (not a plugin of ours).
func DefaultCorefile(zone string) string {
	if zone == "" {
		zone = DefaultZone
	}
	return `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes ` + zone + ` in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
        max_concurrent 1000
    }
    cache 30
    reload
    loadbalance
}
`
}

// Config configures Run.
type Config struct {
	// Filename is the Corefile's path: read when Corefile is nil, and read
	// again on SIGHUP and by the reload plugin. Errors name it.
	Filename string
	// Corefile is the Corefile's content; nil means read Filename.
	Corefile []byte
	// Port is the port of server block keys that name none (CoreDNS's
	// -dns.port); "" means 53.
	Port string
	// Env is given to every plugin (Store for kubernetes, Registerer and
	// Gatherer for prometheus, Logger).
	Env dnsserver.Env
	// ReloadOnSIGHUP reloads the Corefile from Filename on SIGHUP, as
	// CoreDNS does.
	ReloadOnSIGHUP bool
	// Out receives the startup summary (zones served, as CoreDNS prints
	// them); nil means none.
	Out io.Writer
}

// Run serves DNS from cfg's Corefile until ctx is done, then stops the
// server (health's lameduck delays this). It returns an error when the
// Corefile does not load or an address cannot be bound.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Env.Log()
	corefile := cfg.Corefile
	if corefile == nil {
		b, err := os.ReadFile(cfg.Filename)
		if err != nil {
			return fmt.Errorf("corefile: %w", err)
		}
		corefile = b
	}
	env := cfg.Env
	svc := dnsserver.NewService(cfg.Filename, dnsserver.Options{Port: cfg.Port, Env: &env})
	var hup chan os.Signal
	if cfg.ReloadOnSIGHUP {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	if err := svc.Start(corefile); err != nil {
		return err
	}
	ReleaseLoadMemory()
	if cfg.Out != nil {
		printZones(cfg.Out, svc.Instance())
	}
	var wg sync.WaitGroup
	if cfg.ReloadOnSIGHUP {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					log.Info("SIGHUP: reloading the Corefile", "file", cfg.Filename)
					if cfg.Filename == "" {
						log.Error("SIGHUP: the Corefile has no file to read again")
						continue
					}
					_ = svc.ReloadFile() // a failure is logged; the running config stays
				}
			}
		}()
	}
	<-ctx.Done()
	err := svc.Stop()
	wg.Wait()
	return err
}

// DefaultGOGC is the garbage collector's percent `switchboard dns` runs
// with when the GOGC environment variable is not set (Go's default is
// 100). The server's live heap is mostly the records it holds, which
// change slowly, and its per-query garbage is a few small objects (see
// BenchmarkKubeDNSChain in dns/plugins/all: 5 allocations, about 250
// bytes, per query), so collecting at 1.5x the live heap rather than 2x
// costs little CPU and keeps the resident memory under load 12-19% lower
// (bench/dns). GOGC (e.g. GOGC=100) and GOMEMLIMIT in the environment
// override it as for any Go program.
const DefaultGOGC = 50

// SetGCDefaults applies DefaultGOGC unless GOGC is set in the
// environment. `switchboard dns` calls it at start; nothing else should
// (it is process-wide).
func SetGCDefaults() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(DefaultGOGC)
	}
}

// ReleaseLoadMemory returns the garbage of the initial load (decoded and
// copied objects, event queues, the index's build copies) to the
// operating system at once, rather than over minutes through the
// runtime's background scavenger: Run calls it once the server has
// started (its kubernetes plugin has indexed the store or waited its
// startup timeout).
func ReleaseLoadMemory() { debug.FreeOSMemory() }

// printZones prints what CoreDNS prints at start: one "ZONE:PORT" line per
// zone (with " on ADDR" when bound).
func printZones(w io.Writer, inst *dnsserver.Instance) {
	var lines []string
	for _, c := range inst.Configs {
		l := c.Zone + ":" + c.Port
		if len(c.ListenHosts) > 0 {
			l += " on " + strings.Join(c.ListenHosts, ", ")
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// StoreConfig configures NewStore.
type StoreConfig struct {
	Paths       []string     // manifest files and directories
	ServiceCIDR netip.Prefix // default DefaultServiceCIDR
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
}

// NewStore builds a cluster.Store with the admission chain `switchboard
// up` uses (defaults, validation, ClusterIP allocation), loads the
// manifests and runs the manifest source and the controllers (so that
// EndpointSlices exist) until ctx is done. It returns the store and the
// problems the manifests had (each names its file); the store is usable
// with the good objects. It is cluster/standalonestore.New.
func NewStore(ctx context.Context, cfg StoreConfig) (*cluster.Store, []error, error) {
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = DefaultServiceCIDR
	}
	return standalonestore.New(ctx, standalonestore.Config{
		Paths: cfg.Paths, ServiceCIDR: cfg.ServiceCIDR, Registerer: cfg.Registerer, Logger: cfg.Logger,
	})
}

// NewCommand returns `switchboard dns`. stateDir is the root command's
// state directory (unused for now: the DNS server keeps no state).
func NewCommand(stateDir func() string) *cobra.Command {
	_ = stateDir
	var (
		corefile    string
		paths       []string
		port        int
		printOnly   bool
		zone        string
		serviceCIDR string
	)
	cmd := &cobra.Command{
		Use:   "dns [--corefile FILE] [-f MANIFESTS ... | --kubeconfig FILE] [--dns-port N]",
		Short: "Run the cluster DNS server (CoreDNS-compatible) from a Corefile",
		Long: `dns runs a DNS server configured by a Corefile, with CoreDNS's syntax and
plugins (` + strings.Join(dnsserver.Registered(), ", ") + `).
Plugins run in CoreDNS's order, not in the order written.

Without --corefile it serves the default Corefile (CoreDNS's kube-dns one,
see --print-default-corefile). With -f it reads Kubernetes manifests into a
store of its own (services get cluster IPs, EndpointSlices follow) so that
the kubernetes plugin answers for them. SIGHUP reloads the Corefile; a
Corefile that fails keeps the running one.

With --kubeconfig (or, without it and without -f, in a pod with a service
account) the records come from a real Kubernetes API server: Services,
EndpointSlices and Namespaces are watched, Pods only when the Corefile says
"pods verified" (held in a compact table of about 140 bytes a pod, not as
Pod objects). As CoreDNS, the server starts answering once the lists have
arrived, or after the kubernetes plugin's startup_timeout (5 s) without
them; until they arrive, names it cannot know yet are SERVFAIL and the
ready plugin answers 503.

The garbage collector runs with GOGC=50 (Go's default is 100: the heap
may grow to twice what is live) unless GOGC is set in the environment;
GOMEMLIMIT applies as for any Go program.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printOnly {
				_, err := io.WriteString(cmd.OutOrStdout(), DefaultCorefile(zone))
				return err
			}
			cmd.SilenceUsage = true
			SetGCDefaults()
			log := slog.Default()
			ctx, stop := sigctx.Context()
			defer stop()

			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			env := dnsserver.Env{Registerer: reg, Gatherer: reg, Logger: log}
			kubeconfig := kubeconfigFlag(cmd)
			if kubeconfig != "" && len(paths) > 0 {
				return fmt.Errorf("--kubeconfig and -f: give one source of services, not both")
			}
			if kubeconfig != "" || (len(paths) == 0 && kubesource.InCluster()) {
				// Cluster mode: the records come from the API server.
				name, text := corefile, []byte(nil)
				if corefile == "" {
					name, text = "Corefile (default)", []byte(DefaultCorefile(zone))
				} else if b, err := os.ReadFile(corefile); err == nil {
					text = b
				}
				store, _, err := StartKubeStore(ctx, KubeStoreConfig{Kubeconfig: kubeconfig, Pods: NeedsPods(name, text), Logger: log})
				if err != nil {
					return err
				}
				env.Store = store
			}
			if len(paths) > 0 {
				sc, err := netip.ParsePrefix(serviceCIDR)
				if err != nil {
					return fmt.Errorf("--service-cidr: %w", err)
				}
				store, problems, err := NewStore(ctx, StoreConfig{Paths: paths, ServiceCIDR: sc.Masked(), Registerer: reg, Logger: log})
				if err != nil {
					return err
				}
				for _, p := range problems {
					log.Error("manifest problem", "err", p)
				}
				env.Store = store
			}
			cfg := Config{Filename: corefile, Env: env, ReloadOnSIGHUP: true, Out: cmd.OutOrStdout()}
			if corefile == "" {
				cfg.Filename = "Corefile (default)"
				cfg.Corefile = []byte(DefaultCorefile(zone))
				cfg.ReloadOnSIGHUP = false
			}
			if port > 0 {
				cfg.Port = fmt.Sprint(port)
			}
			return Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&corefile, "corefile", "", "the Corefile (default: the kube-dns Corefile of --print-default-corefile)")
	f.StringArrayVarP(&paths, "filename", "f", nil, "manifest file or directory (recursive) to serve records for; repeatable")
	f.IntVar(&port, "dns-port", 0, "port of server blocks that name none (CoreDNS's -dns.port; default 53)")
	f.BoolVar(&printOnly, "print-default-corefile", false, "print the default Corefile and exit")
	f.StringVar(&zone, "cluster-domain", DefaultZone, "cluster domain of the default Corefile")
	f.StringVar(&serviceCIDR, "service-cidr", DefaultServiceCIDR.String(), "range of service cluster IPs of the store built from -f")
	return cmd
}
