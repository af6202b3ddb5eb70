// Package standalone owns `switchboard up`: it turns one host into a
// working cluster node for ordinary Kubernetes manifests. It builds the
// cluster.Store with its admission chain, starts the manifest source, the
// controllers, the node (kubelet-lite) and the local API, prints progress
// and a summary, and on a signal stops them in the right order so that no
// process, lock or socket is left behind. It holds no logic of its own
// beyond that wiring: each part lives in its own package.
package standalone

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/admission"
	"github.com/switchboard-dev/switchboard/cluster/controllers"
	"github.com/switchboard-dev/switchboard/cluster/manifests"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugins/all" // every DNS plugin
	"github.com/switchboard-dev/switchboard/ingress/acme"

	"github.com/switchboard-dev/switchboard/localapi"
	"github.com/switchboard-dev/switchboard/node"
	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// Version is the version reported by the node and the local API.
var Version = "v0.1.0-dev"

// Defaults of the loopback sandbox: every address inside 127.0.0.0/8 is
// local on Linux, so pods and services get addresses of their own without
// root.
var (
	DefaultPodCIDR     = netip.MustParsePrefix("127.244.0.0/16")
	DefaultServiceCIDR = netip.MustParsePrefix("127.96.0.0/16")
)

// Config configures Up.
type Config struct {
	Paths       []string     // manifest files and directories
	StateDir    string       // lock, api.sock, pod logs
	NodeName    string       // default "node-1"
	PodCIDR     netip.Prefix // default DefaultPodCIDR
	ServiceCIDR netip.Prefix // default DefaultServiceCIDR
	APIAddr     string       // also serve the local API on this TCP address (e.g. 127.0.0.1:8001); "" for the socket only
	Executable  string       // the binary pods run for command "switchboard"; default os.Executable()
	// Network is the pod sandbox: NetworkLoopback (default) or
	// NetworkNetNS, which needs NodeNetNS: the node network namespace this
	// process runs in (see runNetNSParent).
	Network string
	// CNIChain lists plugins the netns sandbox's conflist chains after
	// ours (e.g. "portmap" for hostPorts); see sandbox.NetNSConfig.Chain.
	CNIChain  []string
	NodeNetNS string
	// Cluster DNS: the zone (default cluster.local), a Corefile of the
	// user's instead of the kube-dns one, the port (0: 53 when it can be
	// bound, else DefaultUnprivilegedDNSPort), or none at all.
	ClusterDomain string
	Corefile      string
	DNSPort       int
	NoDNS         bool
	// ProxyMode is the service proxy: ProxyAuto (default; userspace in the
	// loopback sandbox), ProxyUserspace or ProxyNone.
	ProxyMode string
	// The ingress controller's listeners (default 127.0.0.1:8080 and
	// 127.0.0.1:8443; port 0 picks a free port); NoIngress turns it off.
	IngressHTTPAddr, IngressHTTPSAddr string
	NoIngress                         bool
	// IngressACME, when not nil, gets the certificates of Ingresses
	// annotated switchboard.dev/acme: "true" from an ACME directory
	// (ingress.Config.ACME; --acme-directory and the other --acme-*
	// flags, the same as `switchboard ingress` takes).
	IngressACME *acme.Config
	// Nodes (netns, several nodes): every node of the cluster, the first
	// being the one this process runs in (NodeName and NodeNetNS are
	// taken from it); PodCIDR is then the cluster's range and each node's
	// PodCIDR a part of it. Overlay names how they are joined (for the
	// output: the parent wires the fabric).
	Nodes   []ClusterNode
	Overlay string
	// PublishedDNS is where the parent of a netns node published cluster
	// DNS on the host ("" none), for the progress output.
	PublishedDNS string
	// ReadyTimeout bounds how long Up waits for every pod before printing
	// the summary anyway. Default 60s.
	ReadyTimeout time.Duration
	Out          io.Writer // progress and summary; default os.Stdout
	Logger       *slog.Logger
}

// Up runs a node until ctx is done, then stops everything it started.
func Up(ctx context.Context, cfg Config) error {
	if cfg.NodeName == "" {
		cfg.NodeName = "node-1"
	}
	if cfg.Network == "" {
		cfg.Network = NetworkLoopback
	}
	netnsMode := cfg.Network == NetworkNetNS
	switch {
	case cfg.Network != NetworkLoopback && !netnsMode:
		return fmt.Errorf("--network %q: unknown (loopback, netns)", cfg.Network)
	case netnsMode && cfg.NodeNetNS == "":
		return errors.New("--network netns: no node network namespace (Up runs inside the one `switchboard up` creates)")
	}
	if !cfg.PodCIDR.IsValid() {
		cfg.PodCIDR = DefaultPodCIDR
		if netnsMode {
			cfg.PodCIDR = DefaultNetNSPodCIDR
		}
	}
	if !cfg.ServiceCIDR.IsValid() {
		cfg.ServiceCIDR = DefaultServiceCIDR
		if netnsMode {
			cfg.ServiceCIDR = DefaultNetNSServiceCIDR
		}
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "cluster.local"
	}
	if cfg.IngressHTTPAddr == "" {
		cfg.IngressHTTPAddr = DefaultIngressHTTPAddr
	}
	if cfg.IngressHTTPSAddr == "" {
		cfg.IngressHTTPSAddr = DefaultIngressHTTPSAddr
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Paths) == 0 {
		return errors.New("no manifests: pass -f FILE_OR_DIR (for example -f examples/quickstart)")
	}
	for _, p := range cfg.Paths {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("manifests: %w", err)
		}
	}
	if cfg.PodCIDR.Overlaps(cfg.ServiceCIDR) {
		return fmt.Errorf("the pod CIDR %s overlaps the service CIDR %s", cfg.PodCIDR, cfg.ServiceCIDR)
	}
	proxyMode, err := chooseProxyMode(cfg.ProxyMode, netnsMode)
	if err != nil {
		return err
	}
	start := time.Now()
	p := &progress{out: cfg.Out, start: start}

	lock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return err
	}
	defer lock.release()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store := cluster.NewStore()
	alloc, err := controllers.NewAllocator(controllers.Config{ServiceCIDR: cfg.ServiceCIDR, Logger: log})
	if err != nil {
		return err
	}
	store.Use(admission.Default, admission.Validate, alloc.Admit)
	for _, ns := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease} {
		if _, err := store.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}

	// Nodes: one, or (netns, --nodes N) several sharing this store, each
	// with its own namespace, sandbox, pod CIDR, kubelet and proxy; this
	// process runs in the first one's namespace.
	multi := len(cfg.Nodes) > 1
	if multi {
		if !netnsMode {
			return errors.New("several nodes need --network netns")
		}
		cfg.NodeName, cfg.NodeNetNS = cfg.Nodes[0].Name, cfg.Nodes[0].NetNS
	} else {
		cfg.Nodes = []ClusterNode{{Name: cfg.NodeName, NetNS: cfg.NodeNetNS, PodCIDR: cfg.PodCIDR}}
	}
	var members []*member
	for i, cn := range cfg.Nodes {
		m := &member{ClusterNode: cn, stateDir: cfg.StateDir, reg: reg}
		if multi {
			m.stateDir = filepath.Join(cfg.StateDir, "nodes", cn.Name)
			m.reg = prometheus.WrapRegistererWith(prometheus.Labels{"node": cn.Name}, reg)
		}
		if netnsMode {
			var dnsIPs []netip.Addr
			if !cfg.NoDNS {
				dnsIPs = []netip.Addr{alloc.DNSServiceIP()}
			}
			nsb, err := sandbox.NewNetNS(sandbox.NetNSConfig{
				NodeName:     cn.Name,
				NodeNetNS:    cn.NetNS,
				StateDir:     m.stateDir,
				PodCIDR:      cn.PodCIDR,
				PluginBinary: cfg.Executable,
				Chain:        cfg.CNIChain,
				DNS:          sandbox.DNSConfig{ClusterDNS: dnsIPs, ClusterDomain: cfg.ClusterDomain},
				Logger:       log.With("component", "sandbox", "node", cn.Name),
			})
			if err != nil {
				return fmt.Errorf("node %s: %w", cn.Name, err)
			}
			defer func() { _ = nsb.Close(context.Background()) }()
			m.sb = nsb
		} else {
			lsb, err := sandbox.NewLoopback(cfg.PodCIDR)
			if err != nil {
				return err
			}
			m.sb = lsb
		}
		n, err := node.New(node.Config{
			Store:      store,
			NodeName:   cn.Name,
			Sandbox:    m.sb,
			StateDir:   m.stateDir,
			Executable: cfg.Executable,
			Recorder:   cluster.NewRecorder(store, "kubelet", cn.Name),
			Logger:     log.With("component", "node"),
			Registerer: m.reg,
		})
		if err != nil {
			return fmt.Errorf("node %s: %w", cn.Name, err)
		}
		m.n = n
		if i > 0 {
			// The first node's proxy is built below, with the others'
			// output.
			if m.proxy, err = newServiceProxy(proxyMode, store, cn.Name, m.sb.HostIP(), cfg.PodCIDR, cn.NetNS, m.reg, log.With("node", cn.Name)); err != nil {
				return fmt.Errorf("node %s: service proxy: %w", cn.Name, err)
			}
		}
		members = append(members, m)
	}
	sb, n := members[0].sb, members[0].n
	mgr := controllers.New(store, controllers.Config{
		ServiceCIDR: cfg.ServiceCIDR,
		Logger:      log,
		Registerer:  reg,
		Recorder:    cluster.NewRecorder(store, "controller-manager", cfg.NodeName),
	})
	src := manifests.NewSource(store, cfg.Paths, manifests.Options{
		Logger:     log.With("component", "manifests"),
		Registerer: reg,
	})

	proxy, err := newServiceProxy(proxyMode, store, cfg.NodeName, sb.HostIP(), cfg.PodCIDR, cfg.NodeNetNS, members[0].reg, log)
	if err != nil {
		return fmt.Errorf("service proxy: %w", err)
	}

	if netnsMode {
		for _, m := range members {
			p.printf("node %s (netns sandbox in network namespace %s, node address %s, pods %s, services %s)", m.Name, m.NetNS, m.sb.HostIP(), m.sb.PodCIDR(), cfg.ServiceCIDR)
		}
		if multi {
			p.printf("%d nodes joined by a %s overlay; cluster pod range %s", len(members), cfg.Overlay, cfg.PodCIDR)
		}
	} else {
		p.printf("node %s (loopback sandbox, pods %s, services %s)", cfg.NodeName, cfg.PodCIDR, cfg.ServiceCIDR)
	}
	var dnsSvc *dnsserver.Service
	if !cfg.NoDNS {
		svcIP, nodeIP := alloc.DNSServiceIP(), sb.HostIP()
		var port int
		var corefile []byte
		if netnsMode {
			// The service proxy DNATs the kube-dns Service to the node
			// address, where the server listens (port 53: we are root).
			port = cfg.DNSPort
			if port == 0 {
				port = 53
			}
			corefile = []byte(nodeCorefile(cfg.ClusterDomain, nodeIP, port))
		} else {
			port = chooseDNSPort(svcIP, cfg.DNSPort)
			corefile = []byte(clusterCorefile(cfg.ClusterDomain, svcIP, nodeIP, port))
		}
		name := "Corefile (built in)"
		if cfg.Corefile != "" {
			if corefile, err = readCorefile(cfg.Corefile); err != nil {
				return err
			}
			name = cfg.Corefile
		}
		if err := registerKubeDNS(store, svcIP, nodeIP, cfg.NodeName, port, netnsMode && proxy != nil); err != nil {
			return err
		}
		dnsSvc = dnsserver.NewService(name, dnsserver.Options{Port: strconv.Itoa(port), Env: &dnsserver.Env{
			Store: store, Registerer: reg, Gatherer: reg, Logger: log.With("component", "dns"),
		}})
		if err := dnsSvc.Start(corefile); err != nil {
			return fmt.Errorf("cluster DNS: %w", err)
		}
		if netnsMode {
			p.printf("cluster DNS on %s:%d in the node namespace, Service kube-system/kube-dns %s:53 (pods' nameserver)", nodeIP, port, svcIP)
			if cfg.PublishedDNS != "" {
				p.printf("cluster DNS published on the host at %s (%s)", cfg.PublishedDNS, digHintAt(cfg.PublishedDNS, cfg.ClusterDomain))
			}
		} else {
			p.printf("cluster DNS on %s:%d and %s:%d (%s)", svcIP, port, nodeIP, port, digHint(svcIP, port, cfg.ClusterDomain))
		}
	}

	// Readiness of the whole node, for /readyz.
	var readyMu sync.Mutex
	readyErr := errors.New("starting")
	setReady := func(err error) { readyMu.Lock(); readyErr = err; readyMu.Unlock() }
	api := localapi.New(store, localapi.Options{
		Logs:       logsByNode(store, members),
		Gatherer:   reg,
		Registerer: reg,
		Ready:      func() error { readyMu.Lock(); defer readyMu.Unlock(); return readyErr },
		Logger:     log.With("component", "localapi"),
		Version:    Version,
		Profiling:  true,
	})
	sockPath := filepath.Join(cfg.StateDir, "api.sock")
	var listeners []net.Listener
	ul, err := localapi.ListenUnix(sockPath)
	if err != nil {
		stopDNS(dnsSvc)
		return fmt.Errorf("local API socket: %w", err)
	}
	listeners = append(listeners, ul)
	if cfg.APIAddr != "" {
		tl, err := net.Listen("tcp", cfg.APIAddr)
		if err != nil {
			ul.Close()
			stopDNS(dnsSvc)
			return fmt.Errorf("local API address %s: %w", cfg.APIAddr, err)
		}
		listeners = append(listeners, tl)
	}

	// Components run under their own contexts so that they stop in order:
	// the manifest source and the controllers first (nothing new is
	// created), then the node (every process stopped), then the API.
	var wg sync.WaitGroup
	run := func(name string, ctx context.Context, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("component stopped", "component", name, "err", err)
			}
		}()
	}
	apiCtx, stopAPI := context.WithCancel(context.Background())
	var apiWG sync.WaitGroup
	for _, l := range listeners {
		apiWG.Add(1)
		go func() {
			defer apiWG.Done()
			if err := localapi.Serve(apiCtx, l, api); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, context.Canceled) {
				log.Error("local API", "err", err)
			}
		}()
	}
	p.printf("state directory %s; local API on %s", cfg.StateDir, sockPath)
	if cfg.APIAddr != "" {
		p.printf("local API also on http://%s", listeners[1].Addr())
	}

	ctrlCtx, stopCtrl := context.WithCancel(context.Background())
	nodeCtx, stopNode := context.WithCancel(context.Background())
	var nodeWG sync.WaitGroup
	nodeWG.Add(1)
	go func() {
		defer nodeWG.Done()
		if err := n.Run(nodeCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("node stopped", "err", err)
		}
	}()
	for _, m := range members[1:] {
		nodeWG.Add(1)
		go func() {
			defer nodeWG.Done()
			if err := m.n.Run(nodeCtx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("node stopped", "node", m.Name, "err", err)
			}
		}()
		if m.proxy != nil {
			nodeWG.Add(1)
			go func() {
				defer nodeWG.Done()
				if err := m.proxy.run(nodeCtx); err != nil {
					log.Error("service proxy stopped", "node", m.Name, "err", err)
				}
			}()
		}
	}
	run("controllers", ctrlCtx, mgr.Run)
	// The proxy stops with the node: connections through it keep working
	// while pods get their grace period.
	if proxy != nil {
		nodeWG.Add(1)
		go func() {
			defer nodeWG.Done()
			if err := proxy.run(nodeCtx); err != nil {
				log.Error("service proxy stopped", "err", err)
			}
		}()
	}
	p.printf("%s", proxy.describe(sb.HostIP()))
	if !cfg.NoIngress {
		ing, err := newIngress(store, cfg, reg, log)
		if err != nil {
			// A taken port must not stop the node: say so and go on.
			p.printf("ingress: off: %v (choose --ingress-http-addr/--ingress-https-addr, or --no-ingress)", err)
		} else {
			nodeWG.Add(1)
			go func() {
				defer nodeWG.Done()
				if err := ing.Run(nodeCtx); err != nil && !errors.Is(err, context.Canceled) {
					log.Error("ingress stopped", "err", err)
				}
			}()
			p.printf("ingress on http://%s and https://%s (%s)", ing.HTTPAddr(), ing.HTTPSAddr(), ingressHint(ing))
		}
	}

	problems := src.Load(ctrlCtx)
	objs := src.Objects()
	p.printf("loaded %s: %d objects, %d problems", joinPaths(cfg.Paths), objs, len(problems))
	for _, e := range problems {
		p.printf("  problem: %v", e)
	}
	run("manifests", ctrlCtx, src.Run)

	select {
	case <-mgr.Synced():
	case <-ctx.Done():
	}
	setReady(nil)

	watchCtx, stopWatch := context.WithCancel(ctx)
	allReady := p.followPods(watchCtx, store, cfg.ReadyTimeout)
	select {
	case <-allReady:
		printSummary(cfg.Out, store, time.Since(start))
	case <-ctx.Done():
	}

	<-ctx.Done()
	stopWatch()
	fmt.Fprintln(cfg.Out, "stopping: every pod gets its grace period ...")
	stopCtrl()
	wg.Wait()
	stopDNS(dnsSvc)
	stopNode()
	nodeWG.Wait()
	stopAPI()
	apiWG.Wait()
	_ = os.Remove(sockPath)
	fmt.Fprintln(cfg.Out, "stopped")
	return nil
}

// ClusterNode is one node of a several-node cluster.
type ClusterNode struct {
	Name    string       `json:"name"`
	NetNS   string       `json:"netns"`
	PodCIDR netip.Prefix `json:"podCIDR"`
}

// member is one node this process runs.
type member struct {
	ClusterNode
	stateDir string
	reg      prometheus.Registerer
	sb       nodeSandbox
	n        *node.Node
	proxy    *serviceProxy
}

// nodeLogs serves pods/log from the node the pod is bound to.
type nodeLogs struct {
	store *cluster.Store
	nodes map[string]*node.Node
	first *node.Node
}

func logsByNode(store *cluster.Store, members []*member) localapi.LogStreamer {
	if len(members) == 1 {
		return members[0].n
	}
	l := &nodeLogs{store: store, nodes: map[string]*node.Node{}, first: members[0].n}
	for _, m := range members {
		l.nodes[m.Name] = m.n
	}
	return l
}

func (l *nodeLogs) StreamLogs(ctx context.Context, namespace, pod string, opts node.LogOptions, w io.Writer) error {
	n := l.first
	if p, err := cluster.Get[*corev1.Pod](l.store, namespace, pod); err == nil {
		if m := l.nodes[p.Spec.NodeName]; m != nil {
			n = m
		}
	}
	return n.StreamLogs(ctx, namespace, pod, opts, w)
}

// nodeSandbox is what up needs of a sandbox.
type nodeSandbox interface {
	sandbox.Sandbox
	HostIP() netip.Addr
}

func joinPaths(p []string) string {
	s := ""
	for i, x := range p {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s
}

func stopDNS(s *dnsserver.Service) {
	if s != nil {
		_ = s.Stop()
	}
}
