package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Defaults of the netns sandbox.
var (
	DefaultNetNSPodCIDR = netip.MustParsePrefix("10.244.0.0/16")
)

// Names the netns sandbox uses inside the node namespace.
const (
	// DefaultBridge is the node's bridge (inside the node namespace, so
	// it never meets a host's cni0).
	DefaultBridge = "sb0"
	// NetworkName is the CNI network name of the generated conflist.
	NetworkName = "switchboard"
	// ConflistName is the generated conflist in the node's net.d. The
	// lexically first *.conflist of that directory is used (containerd's
	// rule), so a user's 00-*.conflist (e.g. ours chained with portmap)
	// wins over it.
	ConflistName = "10-switchboard.conflist"
	// podIfName is the pod's interface, as every runtime names it.
	podIfName = "eth0"
)

// DefaultCNIBinDirs are searched after the node's own bin dir for plugins
// a user chains (Debian's containernetworking-plugins, the usual
// /opt/cni/bin).
var DefaultCNIBinDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// NetNSConfig configures a NetNS sandbox.
type NetNSConfig struct {
	// NodeName names the namespaces (NodeNamespaceName).
	NodeName string
	// NodeNetNS is the path of the node's network namespace (created by
	// CreateNamedNetNS). Required, and never the host's own namespace:
	// bridge, veths and routes go there.
	NodeNetNS string
	// StateDir holds the CNI configuration (StateDir/cni/net.d), the
	// plugin bin dir (StateDir/cni/bin), libcni's cache, the IPAM's
	// allocations and the pods' resolv.conf and hosts files.
	StateDir string
	// PodCIDR is the range pods get addresses from; its first address is
	// the node's (the bridge's gateway). Default DefaultNetNSPodCIDR.
	PodCIDR netip.Prefix
	// PluginBinary is the switchboard CNI plugin (a binary that runs the
	// plugin when called as "switchboard" with CNI_COMMAND set: the
	// switchboard binary itself, or cmd/switchboard-cni). Default
	// os.Executable().
	PluginBinary string
	// CNIBinDirs are searched for other plugins after the node's own;
	// default DefaultCNIBinDirs.
	CNIBinDirs []string
	// Chain lists plugins (by type, e.g. "portmap", "bandwidth") that the
	// generated conflist runs after ours, found in CNIBinDirs, each with
	// the capabilities kubelet's runtimes fill in (see ChainCapabilities).
	// The conflist's cniVersion is then the newest every plugin of the
	// chain supports (their VERSION).
	Chain []string
	// Bridge names the node's bridge; default DefaultBridge.
	Bridge string
	MTU    int // 0: the kernel's default
	// DNS is what pods' resolv.conf gets.
	DNS    DNSConfig
	Logger *slog.Logger
}

// NetNS is the sandbox that isolates pods: a node network namespace of the
// node's own holds a bridge (its address is the node's, status.hostIP);
// every pod gets a network namespace attached to that bridge by
// Switchboard's CNI plugin, run through libcni with a conflist the node
// writes into its state directory. A pod's processes start in their pod's
// network namespace, with a mount namespace showing the pod's own
// /etc/resolv.conf and /etc/hosts and a UTS namespace with the pod's
// hostname. hostNetwork pods run in the node namespace.
//
// NetNS owns the node namespace's bridge, the pods' namespaces and the
// files under StateDir/cni and StateDir/sandboxes; it never touches the
// host's own namespace.
type NetNS struct {
	cfg     NetNSConfig
	log     *slog.Logger
	host    netip.Addr
	cni     *libcni.CNIConfig
	confDir string
	binDir  string
	filesD  string

	mu   sync.Mutex
	pods map[types.UID]*netnsPod
}

type netnsPod struct {
	ns     string // path of the pod's namespace ("" for hostNetwork)
	ips    []netip.Addr
	resolv string
	hosts  string
	host   string // UTS hostname
	rt     *libcni.RuntimeConf
	list   *libcni.NetworkConfigList
}

var _ Sandbox = (*NetNS)(nil)

// NewNetNS prepares the sandbox: it removes what a previous run of the
// node left in the state directory (allocations, cache, pod files), writes
// the conflist and the plugin bin dir, and creates the bridge with the
// node's address inside the node namespace. The node namespace itself is
// the caller's (standalone creates it and removes it on stop).
func NewNetNS(cfg NetNSConfig) (*NetNS, error) {
	if cfg.NodeNetNS == "" {
		return nil, errors.New("netns sandbox: NodeNetNS is required (the sandbox never programs the host's namespace)")
	}
	if IsRootNetNS(cfg.NodeNetNS) {
		return nil, fmt.Errorf("netns sandbox: %s is the host's own network namespace; the sandbox needs a node namespace of its own", cfg.NodeNetNS)
	}
	if cfg.StateDir == "" {
		return nil, errors.New("netns sandbox: StateDir is required")
	}
	if cfg.NodeName == "" {
		cfg.NodeName = "node-1"
	}
	if !cfg.PodCIDR.IsValid() {
		cfg.PodCIDR = DefaultNetNSPodCIDR
	}
	cfg.PodCIDR = cfg.PodCIDR.Masked()
	if !cfg.PodCIDR.Addr().Is4() || cfg.PodCIDR.Bits() > 29 {
		return nil, fmt.Errorf("netns sandbox: pod CIDR %s: must be an IPv4 range of /29 or larger", cfg.PodCIDR)
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.CNIBinDirs == nil {
		cfg.CNIBinDirs = DefaultCNIBinDirs
	}
	if cfg.PluginBinary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("netns sandbox: PluginBinary not set and os.Executable failed: %w", err)
		}
		cfg.PluginBinary = exe
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	cfg.StateDir = abs
	s := &NetNS{
		cfg:     cfg,
		log:     cfg.Logger,
		host:    cfg.PodCIDR.Addr().Next(),
		confDir: filepath.Join(abs, "cni", "net.d"),
		binDir:  filepath.Join(abs, "cni", "bin"),
		filesD:  filepath.Join(abs, "sandboxes"),
		pods:    map[types.UID]*netnsPod{},
	}
	// A previous run's state is meaningless now: its namespaces are gone.
	for _, d := range []string{filepath.Join(abs, "cni", "ipam"), filepath.Join(abs, "cni", "cache"), s.filesD, s.binDir} {
		if err := os.RemoveAll(d); err != nil {
			return nil, fmt.Errorf("netns sandbox: %w", err)
		}
	}
	for _, d := range []string{s.confDir, s.binDir, s.filesD} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("netns sandbox: %w", err)
		}
	}
	for _, name := range []string{"switchboard", "switchboard-ipam"} {
		if err := os.Symlink(cfg.PluginBinary, filepath.Join(s.binDir, name)); err != nil {
			return nil, fmt.Errorf("netns sandbox: plugin bin dir: %w", err)
		}
	}
	s.cni = libcni.NewCNIConfigWithCacheDir(append([]string{s.binDir}, cfg.CNIBinDirs...), filepath.Join(abs, "cni", "cache"), nil)
	conf, err := s.conflist()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(s.confDir, ConflistName), conf, 0o644); err != nil {
		return nil, fmt.Errorf("netns sandbox: %w", err)
	}
	if err := InNetNS(cfg.NodeNetNS, s.ensureBridge); err != nil {
		return nil, fmt.Errorf("netns sandbox: bridge %s in %s: %w", cfg.Bridge, cfg.NodeNetNS, err)
	}
	return s, nil
}

// conflist is the generated CNI configuration.
func (s *NetNS) conflist() ([]byte, error) {
	plugin := map[string]any{
		"type":        "switchboard",
		"bridge":      s.cfg.Bridge,
		"isGateway":   true,
		"hairpinMode": true,
		"ipam": map[string]any{
			"type":    "switchboard-ipam",
			"ranges":  [][]map[string]string{{{"subnet": s.cfg.PodCIDR.String(), "gateway": s.host.String()}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": filepath.Join(s.cfg.StateDir, "cni", "ipam"),
		},
	}
	if s.cfg.MTU > 0 {
		plugin["mtu"] = s.cfg.MTU
	}
	plugins := []any{plugin}
	version := "1.1.0"
	if len(s.cfg.Chain) > 0 {
		var versions [][]string
		for _, name := range s.cfg.Chain {
			if name == "" || strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
				return nil, fmt.Errorf("netns sandbox: chained CNI plugin %q: not a plugin name", name)
			}
			info, err := s.cni.GetVersionInfo(context.Background(), name)
			if err != nil {
				return nil, fmt.Errorf("netns sandbox: chained CNI plugin %q (searched %s): %w", name, strings.Join(s.cfg.CNIBinDirs, ", "), err)
			}
			versions = append(versions, info.SupportedVersions())
			p := map[string]any{"type": name}
			if caps := ChainCapabilities[name]; len(caps) > 0 {
				m := map[string]bool{}
				for _, c := range caps {
					m[c] = true
				}
				p["capabilities"] = m
			}
			plugins = append(plugins, p)
		}
		if version = commonCNIVersion(versions); version == "" {
			return nil, fmt.Errorf("netns sandbox: chained CNI plugins %v: none of CNI %s is supported by all of them", s.cfg.Chain, strings.Join(conflistVersions, ", "))
		}
	}
	b, err := json.MarshalIndent(map[string]any{
		"cniVersion": version,
		"name":       NetworkName,
		"plugins":    plugins,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ChainCapabilities are the runtime capabilities a chained plugin is
// given in the generated conflist, as kubelet's runtimes fill them:
// portMappings from the containers' hostPorts.
var ChainCapabilities = map[string][]string{
	"portmap": {"portMappings"},
}

// conflistVersions are the CNI versions the generated conflist may
// declare, newest first (our plugin speaks all of them).
var conflistVersions = []string{"1.1.0", "1.0.0"}

// commonCNIVersion is the newest of conflistVersions in every list ("":
// none).
func commonCNIVersion(supported [][]string) string {
	for _, v := range conflistVersions {
		all := true
		for _, list := range supported {
			if !slices.Contains(list, v) {
				all = false
				break
			}
		}
		if all {
			return v
		}
	}
	return ""
}

// portMappings is the portMappings capability argument of a pod, as
// kubelet's runtimes (containerd, CRI-O) build it from the containers'
// ports that have a hostPort.
func portMappings(pod *corev1.Pod) []map[string]any {
	var out []map[string]any
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.HostPort == 0 {
				continue
			}
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			out = append(out, map[string]any{
				"hostPort":      p.HostPort,
				"containerPort": p.ContainerPort,
				"protocol":      strings.ToLower(string(proto)),
				"hostIP":        p.HostIP,
			})
		}
	}
	return out
}

// ensureBridge creates the bridge with the node's address, up (in the
// node namespace), so that the node's address exists before the first
// pod: cluster DNS listens there.
func (s *NetNS) ensureBridge() error {
	l, err := netlink.LinkByName(s.cfg.Bridge)
	if err != nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = s.cfg.Bridge
		attrs.MTU = s.cfg.MTU
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return err
		}
		if l, err = netlink.LinkByName(s.cfg.Bridge); err != nil {
			return err
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: s.host.AsSlice(), Mask: net.CIDRMask(s.cfg.PodCIDR.Bits(), 32)}}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return err
	}
	return netlink.LinkSetUp(l)
}

// Name is "netns".
func (s *NetNS) Name() string { return "netns" }

// PodCIDR is the range pod addresses come from.
func (s *NetNS) PodCIDR() netip.Prefix { return s.cfg.PodCIDR }

// HostIP is the node's address: the bridge's, the range's network+1.
func (s *NetNS) HostIP() netip.Addr { return s.host }

// NodeNetNS is the path of the node's network namespace.
func (s *NetNS) NodeNetNS() string { return s.cfg.NodeNetNS }

// ConfDir is the node's CNI configuration directory.
func (s *NetNS) ConfDir() string { return s.confDir }

// loadConflist is the lexically first *.conflist of the conf dir.
func (s *NetNS) loadConflist() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(s.confDir, []string{".conflist"})
	if err != nil {
		return nil, fmt.Errorf("CNI config %s: %w", s.confDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("CNI config %s: no .conflist", s.confDir)
	}
	sort.Strings(files)
	list, err := libcni.ConfListFromFile(files[0])
	if err != nil {
		return nil, fmt.Errorf("CNI config %s: %w", files[0], err)
	}
	return list, nil
}

// PodNetNS is the path of a pod's network namespace ("" when the pod has
// none: unknown, or hostNetwork).
func (s *NetNS) PodNetNS(uid types.UID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pods[uid]; p != nil {
		return p.ns
	}
	return ""
}

// Setup creates the pod's network namespace and attaches it through CNI
// ADD, writes its resolv.conf and hosts files, or returns what it has for
// the pod already.
func (s *NetNS) Setup(ctx context.Context, pod *corev1.Pod) (Network, error) {
	if pod == nil {
		return Network{}, errors.New("netns sandbox: no pod")
	}
	if pod.UID == "" {
		return Network{}, fmt.Errorf("netns sandbox: pod %s/%s has no uid", pod.Namespace, pod.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pods[pod.UID]; p != nil {
		return Network{IPs: p.ips, HostIP: s.host}, nil
	}
	p := &netnsPod{}
	dir := filepath.Join(s.filesD, string(pod.UID))
	fail := func(err error) (Network, error) {
		s.release(ctx, p)
		_ = os.RemoveAll(dir)
		return Network{}, fmt.Errorf("netns sandbox: pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	if pod.Spec.HostNetwork {
		p.ips = []netip.Addr{s.host}
	} else {
		path, err := CreateNamedNetNS(podNamespaceName(s.cfg.NodeName, string(pod.UID)))
		if err != nil {
			return fail(err)
		}
		p.ns = path
		list, err := s.loadConflist()
		if err != nil {
			return fail(err)
		}
		p.list = list
		p.rt = &libcni.RuntimeConf{
			ContainerID: string(pod.UID),
			NetNS:       path,
			IfName:      podIfName,
			// The CNI_ARGS kubelet's runtimes pass.
			Args: [][2]string{
				{"IgnoreUnknown", "1"},
				{"K8S_POD_NAMESPACE", pod.Namespace},
				{"K8S_POD_NAME", pod.Name},
				{"K8S_POD_INFRA_CONTAINER_ID", string(pod.UID)},
				{"K8S_POD_UID", string(pod.UID)},
			},
		}
		if pm := portMappings(pod); len(pm) > 0 {
			p.rt.CapabilityArgs = map[string]any{"portMappings": pm}
		}
		var res cnitypes.Result
		err = InNetNS(s.cfg.NodeNetNS, func() error {
			var err error
			res, err = s.cni.AddNetworkList(ctx, list, p.rt)
			return err
		})
		if err != nil {
			return fail(fmt.Errorf("CNI ADD: %w", err))
		}
		r, err := current.NewResultFromResult(res)
		if err != nil {
			return fail(fmt.Errorf("CNI ADD result: %w", err))
		}
		for _, ipc := range r.IPs {
			if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
				p.ips = append(p.ips, a.Unmap())
			}
		}
		if len(p.ips) == 0 {
			return fail(errors.New("CNI ADD returned no address"))
		}
		sortFamilies(p.ips, s.cfg.PodCIDR.Addr().Is4())
		p.host = kernelHostname(pod, s.cfg.DNS.ClusterDomain)
		p.hosts = filepath.Join(dir, "hosts")
		if err := os.WriteFile(p.hosts, []byte(HostsFile(pod, p.ips, s.cfg.DNS.ClusterDomain)), 0o644); err != nil {
			return fail(err)
		}
	}
	resolv, err := ResolvConf(pod, s.cfg.DNS)
	if err != nil {
		return fail(err)
	}
	p.resolv = filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(p.resolv, []byte(resolv), 0o644); err != nil {
		return fail(err)
	}
	if err := writePodNamespaces(dir, s.podNamespaces(p)); err != nil {
		return fail(err)
	}
	s.pods[pod.UID] = p
	s.log.Debug("pod sandbox ready", "pod", pod.Namespace+"/"+pod.Name, "netns", p.ns, "ips", p.ips)
	return Network{IPs: p.ips, HostIP: s.host}, nil
}

// sortFamilies puts the primary family first.
func sortFamilies(ips []netip.Addr, v4First bool) {
	sort.SliceStable(ips, func(i, j int) bool { return ips[i].Is4() == v4First && ips[j].Is4() != v4First })
}

// Prepare makes cmd start inside the pod's namespaces through the helper
// (see ExecHelperName).
func (s *NetNS) Prepare(pod *corev1.Pod, cmd *exec.Cmd) error {
	if pod == nil {
		return errors.New("netns sandbox: no pod")
	}
	s.mu.Lock()
	p := s.pods[pod.UID]
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("netns sandbox: pod %s/%s has no sandbox", pod.Namespace, pod.Name)
	}
	pn := s.podNamespaces(p)
	spec := execSpec{NetNS: pn.NetNS, Hostname: pn.Hostname, Resolv: pn.ResolvConf, Hosts: pn.Hosts, Path: cmd.Path, Argv: cmd.Args}
	if len(spec.Argv) == 0 {
		spec.Argv = []string{cmd.Path}
	}
	spec.wrap(cmd, "/proc/self/exe")
	return nil
}

// podNamespaces is what a process of the pod enters.
func (s *NetNS) podNamespaces(p *netnsPod) PodNamespaces {
	pn := PodNamespaces{NetNS: p.ns, Hostname: p.host, ResolvConf: p.resolv, Hosts: p.hosts}
	if pn.NetNS == "" {
		// hostNetwork: the node's namespace, which the node may not be
		// running in itself.
		pn.NetNS = s.cfg.NodeNetNS
	}
	return pn
}

// Teardown runs CNI DEL and removes the pod's namespace and files.
func (s *NetNS) Teardown(ctx context.Context, pod *corev1.Pod) error {
	if pod == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pods[pod.UID]
	if p == nil {
		return nil
	}
	err := s.release(ctx, p)
	delete(s.pods, pod.UID)
	return errors.Join(err, os.RemoveAll(filepath.Join(s.filesD, string(pod.UID))))
}

// release runs DEL (tolerated by the plugin even when the namespace is
// gone) and removes the namespace.
func (s *NetNS) release(ctx context.Context, p *netnsPod) error {
	var errs []error
	if p.rt != nil && p.list != nil {
		if err := InNetNS(s.cfg.NodeNetNS, func() error { return s.cni.DelNetworkList(ctx, p.list, p.rt) }); err != nil {
			errs = append(errs, fmt.Errorf("CNI DEL: %w", err))
		}
	}
	if p.ns != "" {
		errs = append(errs, RemoveNamedNetNS(p.ns))
	}
	return errors.Join(errs...)
}

// Close tears down every pod sandbox still set up (the node calls
// Teardown for each pod it stops; this is the safety net).
func (s *NetNS) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for uid, p := range s.pods {
		errs = append(errs, s.release(ctx, p))
		delete(s.pods, uid)
	}
	return errors.Join(errs...)
}
