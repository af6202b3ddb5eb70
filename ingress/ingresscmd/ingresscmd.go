// Package ingresscmd owns `switchboard ingress`: the ingress controller
// (package ingress) run on its own against a store filled from manifests
// (cluster/standalonestore) or from a real API server (--kubeconfig,
// cluster/kubesource), with its listeners, metrics registry and
// JSON access log. It holds no ingress logic and must not start pods.
package ingresscmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/kubesource"
	"github.com/switchboard-dev/switchboard/cluster/standalonestore"
	"github.com/switchboard-dev/switchboard/ingress"
	"github.com/switchboard-dev/switchboard/ingress/acmeflags"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/internal/sigctx"
)

// Options are the command's flags.
type Options struct {
	Paths             []string
	Kubeconfig        string // the root command's --kubeconfig: a real API server instead of -f
	HTTPAddr          string
	HTTPSAddr         string
	StatusAddr        string
	Controller        string
	AccessLog         bool
	ConnectTimeout    time.Duration
	ReadTimeout       time.Duration
	EjectFor          time.Duration
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int
	MaxHeaders        int
	// LoadBalance is the default endpoint choice of Ingresses without
	// the switchboard.dev/load-balance annotation: round_robin or
	// least_request.
	LoadBalance string
	// PublishStatusAddress is the IP written to status.loadBalancer of
	// the served Ingresses (ingress-nginx's --publish-status-address);
	// "" means the listener's, or the host's first non-loopback IPv4
	// address for a listener on all addresses.
	PublishStatusAddress string
	// PublishService ("NAMESPACE/NAME") is the Service in front of the
	// controller whose addresses are published instead (ingress-nginx's
	// --publish-service); PublishStatusAddress wins when both are set.
	PublishService string
	// ACME: certificates for Ingresses annotated switchboard.dev/acme:
	// "true".
	ACME acmeflags.Options
	// LeaderElect elects one replica (a Lease) to write Ingress status
	// and Events when the Ingresses come from an API server; all serve
	// traffic. The flag defaults to true; the zero Options do not elect.
	LeaderElect bool
	Election    LeaderElection
}

// NewCommand returns `switchboard ingress`.
func NewCommand() *cobra.Command { return newCommand(&Options{}) }

// newCommand is NewCommand with the flags bound to o.
func newCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ingress (-f MANIFESTS | --kubeconfig FILE) [--http-addr ADDR] [--https-addr ADDR]",
		Short: "Run the ingress controller for the Ingresses of manifests",
		Long: `ingress serves the Ingresses (networking.k8s.io/v1) whose IngressClass has
spec.controller "` + routing.ControllerName + `" - or that name no class when such a
class carries ingressclass.kubernetes.io/is-default-class: "true" - over HTTP
and HTTPS, straight to the ready endpoints of their backend Services.

It reads Kubernetes manifests (-f, repeatable, files or directories) into a
store of its own: Services get cluster IPs, EndpointSlices follow the pods
that a node runs, and hand-written EndpointSlices are used as they are.
Changes to the files are applied as they happen, without dropping
connections. TLS certificates come from kubernetes.io/tls Secrets named in
spec.tls, chosen by SNI; other names get a generated self-signed
certificate.

/healthz, /readyz and /metrics are served on --status-addr; one JSON line
per request is written to standard output (--access-log=false disables it).

With --kubeconfig (or, without it and without -f, in a pod with a service
account) everything comes from a real Kubernetes API server (Secrets of
type kubernetes.io/tls only), and the controller writes back what an
ingress controller writes: status.loadBalancer of the Ingresses it serves
and Events about the ones it rejects. Replicas elect a leader with a Lease
(--leader-elect, on by default): all serve traffic, only the leader writes
status and Events. /readyz is false until the informer caches have synced.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			ctx, stop := sigctx.Context()
			defer stop()
			if f := cmd.Flag("kubeconfig"); f != nil && o.Kubeconfig == "" {
				o.Kubeconfig = f.Value.String()
			}
			return Run(ctx, o, cmd.OutOrStdout(), slog.Default(), nil)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.Paths, "filename", "f", nil, "manifest file or directory (recursive) with IngressClasses, Ingresses, Services, EndpointSlices and Secrets; repeatable")
	f.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:8080", "address of the plain HTTP listener (\"\" disables it)")
	f.StringVar(&o.HTTPSAddr, "https-addr", "127.0.0.1:8443", "address of the HTTPS listener (\"\" disables it)")
	f.StringVar(&o.StatusAddr, "status-addr", "127.0.0.1:10254", "address of /healthz, /readyz and /metrics (\"\" disables it)")
	f.StringVar(&o.Controller, "controller-class", routing.ControllerName, "the IngressClass spec.controller served")
	f.StringVar(&o.PublishService, "publish-service", "", "NAMESPACE/NAME of the Service in front of the controller: its load-balancer addresses (or external IPs, or cluster IP) are written to the Ingresses' status.loadBalancer, as ingress-nginx's --publish-service")
	f.StringVar(&o.PublishStatusAddress, "publish-status-address", "", "IP written to the Ingresses' status.loadBalancer (default: the HTTPS listener's, or for one on all addresses the host's first non-loopback IPv4 address)")
	f.BoolVar(&o.AccessLog, "access-log", true, "write a JSON access log line per request to standard output")
	f.DurationVar(&o.ConnectTimeout, "upstream-connect-timeout", 5*time.Second, "time to connect to an endpoint")
	f.DurationVar(&o.ReadTimeout, "upstream-read-timeout", 60*time.Second, "time for an endpoint to send the response headers")
	f.DurationVar(&o.EjectFor, "eject-for", 10*time.Second, "how long an endpoint that failed to connect is left out")
	f.DurationVar(&o.ReadHeaderTimeout, "read-header-timeout", ingress.DefaultReadHeaderTimeout, "time a client has to send a request head")
	f.IntVar(&o.MaxHeaderBytes, "max-header-bytes", ingress.DefaultMaxHeaderBytes, "largest request head accepted")
	f.IntVar(&o.MaxHeaders, "max-headers", ingress.DefaultMaxHeaders, "most header fields accepted in a request")
	f.StringVar(&o.LoadBalance, "load-balance", string(annotations.RoundRobin), "how endpoints are picked for Ingresses without the switchboard.dev/load-balance annotation: round_robin or least_request (the fewest requests in flight)")
	acmeflags.Add(f, &o.ACME, "--http-addr", "memory")
	f.BoolVar(&o.LeaderElect, "leader-elect", true, "with an API server: elect one replica (a Lease) to write Ingress status and Events; every replica serves traffic")
	f.StringVar(&o.Election.Namespace, "leader-elect-namespace", "", "namespace of the leader election Lease (default: the pod's namespace, else \"default\")")
	f.StringVar(&o.Election.Name, "leader-elect-resource-name", DefaultLeaseName, "name of the leader election Lease")
	f.DurationVar(&o.Election.LeaseDuration, "leader-elect-lease-duration", DefaultLeaseDuration, "how long followers wait after the last renewal before taking the Lease")
	f.DurationVar(&o.Election.RenewDeadline, "leader-elect-renew-deadline", DefaultRenewDeadline, "how long the leader tries to renew before it gives up the lead")
	f.DurationVar(&o.Election.RetryPeriod, "leader-elect-retry-period", DefaultRetryPeriod, "time between attempts to take or renew the Lease")
	return cmd
}

// Run runs the controller for o until ctx is done. ready, when not nil,
// is called with the controller once it serves (tests use it to learn the
// bound addresses).
func Run(ctx context.Context, o *Options, out io.Writer, log *slog.Logger, ready func(*ingress.Controller)) error {
	if log == nil {
		log = slog.Default()
	}
	fromAPI := o.Kubeconfig != "" || (len(o.Paths) == 0 && kubesource.InCluster())
	switch {
	case fromAPI && len(o.Paths) > 0:
		return errors.New("--kubeconfig and -f: give one source of Ingresses, not both")
	case !fromAPI && len(o.Paths) == 0:
		return errors.New("-f: give the manifests (files or directories) to read Ingresses from, or --kubeconfig")
	}
	if o.HTTPAddr == "" && o.HTTPSAddr == "" {
		return errors.New("--http-addr and --https-addr are both empty: nothing to serve")
	}
	lb, ok := annotations.ParseLoadBalance(o.LoadBalance)
	if o.LoadBalance == "" {
		lb, ok = annotations.RoundRobin, true
	}
	if !ok {
		return fmt.Errorf("--load-balance %q: must be one of %s", o.LoadBalance, strings.Join(annotations.LoadBalances, ", "))
	}
	if o.PublishStatusAddress != "" {
		a, err := netip.ParseAddr(o.PublishStatusAddress)
		if err != nil {
			return fmt.Errorf("--publish-status-address %q: not an IP address", o.PublishStatusAddress)
		}
		o.PublishStatusAddress = a.String()
	}
	if o.PublishService != "" {
		ns, name, ok := strings.Cut(o.PublishService, "/")
		if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1035Label(name)) > 0 {
			return fmt.Errorf("--publish-service %q: want NAMESPACE/NAME of a Service", o.PublishService)
		}
	}
	acmeCfg, err := o.ACME.Config("")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var store *cluster.Store
	if fromAPI {
		// /readyz answers false until the caches have synced.
		stopUnsynced, err := serveUnsynced(o.StatusAddr, reg, log)
		if err != nil {
			return err
		}
		kc := KubeConfig{Kubeconfig: o.Kubeconfig, Logger: log}
		if o.LeaderElect {
			e := o.Election
			kc.Elect = &e
		}
		store, _, err = OpenKube(ctx, kc)
		stopUnsynced()
		if err != nil {
			return err
		}
	} else {
		var problems []error
		var err error
		store, problems, err = standalonestore.New(ctx, standalonestore.Config{Paths: o.Paths, Registerer: reg, Logger: log})
		if err != nil {
			return err
		}
		for _, p := range problems {
			log.Error("manifest problem", "err", p)
		}
	}
	cfg := ingress.Config{
		Store: store, LoadBalance: lb, HTTPAddr: o.HTTPAddr, HTTPSAddr: o.HTTPSAddr, StatusAddr: o.StatusAddr,
		Controller: o.Controller, ConnectTimeout: o.ConnectTimeout, ReadTimeout: o.ReadTimeout, EjectFor: o.EjectFor,
		ReadHeaderTimeout: o.ReadHeaderTimeout, MaxHeaderBytes: o.MaxHeaderBytes, MaxHeaders: o.MaxHeaders,
		PublishAddress: o.PublishStatusAddress,
		PublishService: o.PublishService,
		Registerer:     reg, Gatherer: reg, Logger: log.With("component", "ingress"),
	}
	if o.AccessLog {
		cfg.AccessLog = slog.New(slog.NewJSONHandler(out, nil))
	}
	cfg.ACME = acmeCfg
	c, err := ingress.New(cfg)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-c.Ready():
		log.Info("ingress ready", "http", addr(c.HTTPAddr()), "https", addr(c.HTTPSAddr()), "status", addr(c.StatusAddr()),
			"manifests", strings.Join(o.Paths, ","), "ingresses", len(c.Table().Ingresses))
		if ready != nil {
			ready(c)
		}
	case err := <-errc:
		return err
	}
	err = <-errc
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func addr(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
