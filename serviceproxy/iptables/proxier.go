package iptables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// ModeName is the proxy mode this package registers.
const ModeName = "iptables"

// DefaultMasqueradeBit is kube-proxy's --iptables-masquerade-bit default:
// the mark 0x4000.
const DefaultMasqueradeBit = 14

func init() {
	serviceproxy.RegisterMode(ModeName, func(mc serviceproxy.ModeConfig) (serviceproxy.Backend, error) {
		b, err := ParseBackend(mc.IPTablesBackend)
		if err != nil {
			return nil, err
		}
		return New(Config{
			Backend:      b,
			NodeName:     mc.NodeName,
			NodeIPs:      mc.NodeIPs,
			ClusterCIDRs: mc.ClusterCIDRs,
			Logger:       mc.Logger,
			Metrics:      mc.Metrics,
		})
	})
}

// Config configures the iptables backend. The zero value works.
type Config struct {
	// NodeName, NodeIPs and ClusterCIDRs are used when the State leaves
	// its Node.Name, Node.IPs or ClusterCIDRs empty.
	NodeName     string
	NodeIPs      []netip.Addr
	ClusterCIDRs []netip.Prefix
	// MasqueradeAll masquerades all traffic to cluster IPs
	// (--masquerade-all).
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit marking packets for SNAT
	// (--iptables-masquerade-bit); nil means 14 (0x4000).
	MasqueradeBit *int
	// LocalhostNodePorts lets NodePorts answer on 127.0.0.0/8 (IPv4)
	// and sets net.ipv4.conf.all.route_localnet=1
	// (--iptables-localhost-nodeports); nil means true, as upstream.
	LocalhostNodePorts *bool
	// RandomFully adds --random-fully to the MASQUERADE rule; nil means
	// true (iptables ≥ 1.6.2 has it; this machine has 1.8.9).
	RandomFully *bool
	// Backend is auto (or ""), nft or legacy (kube-proxy
	// --iptables-backend). Auto detects it on the first sync in the
	// namespace it programs, as kube-proxy's images do with
	// iptables-wrapper: kubelet's hint chains, else the backend holding
	// more rules, else nft (DetectBackend).
	Backend Backend
	// Legacy is Backend legacy (kept for callers that set it).
	Legacy bool
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics is the core's metric set; may be nil.
	Metrics *serviceproxy.Metrics
}

// Proxier is the iptables mode: kube-proxy's pkg/proxy/iptables on the
// serviceproxy State. It acts on the network namespace of the calling
// thread (run Sync and Cleanup inside the namespace it must program,
// e.g. in testnet's Host.Do).
type Proxier struct {
	cfg           Config
	log           *slog.Logger
	masqueradeBit int

	want Backend // configured: auto, nft or legacy

	mu       sync.Mutex
	backend  Backend         // in use; "" until resolved (auto: on the first sync)
	families [2]*familyState // 0: IPv4, 1: IPv6
	probs    probabilities
}

// familyState is what one family's proxier remembers between syncs.
type familyState struct {
	synced              bool   // a sync succeeded since the last failure
	paramsKey           string // params of the last successful sync
	largeCluster        bool
	activeNAT           map[string]bool // service chains the last sync left active
	conntrackTCPLiberal bool
}

var (
	_ serviceproxy.Backend   = (*Proxier)(nil)
	_ serviceproxy.DryRunner = (*Proxier)(nil)
)

// New builds the backend. It does not touch the kernel.
func New(cfg Config) (*Proxier, error) {
	bit := DefaultMasqueradeBit
	if cfg.MasqueradeBit != nil {
		bit = *cfg.MasqueradeBit
	}
	if bit < 0 || bit > 31 {
		return nil, fmt.Errorf("iptables: masqueradeBit: %d: must be within [0, 31]", bit)
	}
	for i, ip := range cfg.NodeIPs {
		if !ip.IsValid() {
			return nil, fmt.Errorf("iptables: nodeIPs[%d]: invalid address", i)
		}
	}
	for i, c := range cfg.ClusterCIDRs {
		if !c.IsValid() {
			return nil, fmt.Errorf("iptables: clusterCIDRs[%d]: invalid prefix", i)
		}
	}
	want, err := cfg.configuredBackend()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Proxier{cfg: cfg, log: log, masqueradeBit: bit, want: want}, nil
}

// Name is "iptables".
func (p *Proxier) Name() string { return ModeName }

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// paramsFor computes one family's parameters from the state and config.
func (p *Proxier) paramsFor(state *serviceproxy.State, ipv6 bool, conntrackTCPLiberal bool) params {
	pr := params{
		ipv6:                ipv6,
		masqueradeAll:       p.cfg.MasqueradeAll,
		masqueradeMark:      masqueradeMark(p.masqueradeBit),
		randomFully:         boolOr(p.cfg.RandomFully, true),
		conntrackTCPLiberal: conntrackTCPLiberal,
		nodeName:            state.Node.Name,
		zone:                state.Node.Zone,
	}
	if pr.nodeName == "" {
		pr.nodeName = p.cfg.NodeName
	}
	match := func(a netip.Addr) bool { return a.IsValid() && a.Unmap().Is6() == ipv6 }
	cidrs := state.ClusterCIDRs
	if len(cidrs) == 0 {
		cidrs = p.cfg.ClusterCIDRs
	}
	for _, c := range cidrs {
		// Upstream's ClusterCIDR detector takes one CIDR per family.
		if c.IsValid() && match(c.Addr()) {
			pr.localCIDR = c.Masked()
			break
		}
	}
	nodeIPs := state.Node.IPs
	if len(nodeIPs) == 0 {
		nodeIPs = p.cfg.NodeIPs
	}
	containsLoopback := len(nodeIPs) == 0
	for _, ip := range nodeIPs {
		if !match(ip) {
			continue
		}
		ip = ip.Unmap()
		if !pr.nodeIP.IsValid() && !ip.IsLoopback() {
			pr.nodeIP = ip
		}
		if ip.IsLoopback() {
			containsLoopback = true
		}
		pr.nodePortAddrs = append(pr.nodePortAddrs, ip)
	}
	if len(nodeIPs) > 0 && pr.nodePortAddrs == nil {
		// Node IPs were given, none of this family: NodePorts answer
		// on none of its addresses.
		pr.nodePortAddrs = []netip.Addr{}
	}
	// "If the nodePortAddresses doesn't contain loopback, disable
	// localhostNodePorts"; IPv6 never has them.
	pr.localhostNodePorts = !ipv6 && boolOr(p.cfg.LocalhostNodePorts, true) && containsLoopback
	return pr
}

// familiesOf tells which families the state needs: IPv4 always, IPv6 when
// a service or the node has an IPv6 address, or an earlier sync
// programmed IPv6 (its rules must then be kept up to date or removed).
func (p *Proxier) needsIPv6(state *serviceproxy.State) bool {
	return p.families[1] != nil || state.HasIPv6()
}

// Render returns what a first Sync of state would feed to
// iptables-restore on a node without any of our rules: the IPv4 input,
// and, when the state has IPv6 service or node addresses, a line
// "# ip6tables-restore" followed by the IPv6 input.
func (p *Proxier) Render(state *serviceproxy.State) ([]byte, error) {
	if state == nil {
		return nil, errors.New("iptables: render: no state")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.renderFresh(state, false)
	if p.needsIPv6(state) {
		out = append(out, "# ip6tables-restore\n"...)
		out = append(out, p.renderFresh(state, true)...)
	}
	return out, nil
}

// RenderFamily returns the iptables-restore (ipv6: ip6tables-restore)
// input a first Sync of state would apply.
func (p *Proxier) RenderFamily(state *serviceproxy.State, ipv6 bool) ([]byte, error) {
	if state == nil {
		return nil, errors.New("iptables: render: no state")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.renderFresh(state, ipv6), nil
}

func (p *Proxier) renderFresh(state *serviceproxy.State, ipv6 bool) []byte {
	pr := p.paramsFor(state, ipv6, false)
	req := &renderRequest{params: pr, state: state, probs: &p.probs}
	req.jumps = append(req.jumps, iptablesJumpChains...)
	req.jumps = append(req.jumps, iptablesKubeletJumpChains...)
	if !pr.localhostNodePorts {
		req.declareFilterChains = []string{kubeletFirewallChain}
	}
	return render(req).data
}

// Sync renders state and applies it with one iptables-restore --noflush
// per family (ip6tables-restore for IPv6). See the package comment.
func (p *Proxier) Sync(ctx context.Context, state *serviceproxy.State) error {
	if state == nil {
		return errors.New("iptables: sync: no state")
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	var errs []error
	if err := p.syncFamily(ctx, state, false); err != nil {
		errs = append(errs, err)
	}
	if p.needsIPv6(state) {
		if err := p.syncFamily(ctx, state, true); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Finish housekeeping, clear stale conntrack entries for UDP
	// Services.
	p.cleanStaleConntrack(ctx, state)
	return nil
}

func (p *Proxier) syncFamily(ctx context.Context, state *serviceproxy.State, ipv6 bool) (err error) {
	idx := 0
	family := "IPv4"
	if ipv6 {
		idx, family = 1, "IPv6"
	}
	fs := p.families[idx]
	if fs == nil {
		fs = &familyState{}
		p.families[idx] = fs
	}
	t := newTools(ipv6, p.resolveBackend(ctx))
	start := time.Now()

	pr := p.paramsFor(state, ipv6, fs.conntrackTCPLiberal)
	doFullSync := state.Full || !fs.synced || fs.paramsKey != pr.key()

	req := &renderRequest{params: pr, state: state, probs: &p.probs, previousNAT: fs.activeNAT}
	if doFullSync {
		if err := p.prepareFullSync(ctx, t, fs, req); err != nil {
			fs.synced = false
			return fmt.Errorf("iptables (%s): %w", family, err)
		}
	} else {
		req.partial = true
		req.changed = state.Changed
	}
	res := render(req)
	if req.partial && res.largeCluster != fs.largeCluster {
		// The comments of every endpoint rule change with large
		// cluster mode: rewrite every chain.
		req.partial = false
		res = render(req)
		doFullSync = true
	}

	defer func() {
		p.observeSync(ipv6, !doFullSync, time.Since(start), err == nil, res)
	}()
	if err := t.runRestore(ctx, res.data); err != nil {
		// "proxier.serviceChanges and proxier.endpointChanges have
		// already been flushed, so we've lost the state needed to be
		// able to do a partial sync."
		fs.synced = false
		p.log.Error("Failed to execute iptables-restore", "ipFamily", family, "err", err)
		return fmt.Errorf("iptables (%s): %w", family, err)
	}
	fs.synced = true
	fs.paramsKey = pr.key()
	fs.largeCluster = res.largeCluster
	fs.activeNAT = res.activeNAT
	p.log.Debug("SyncProxyRules complete", "ipFamily", family, "fullSync", doFullSync,
		"numServices", res.services, "numEndpoints", res.endpoints,
		"numFilterRules", res.filterRules, "numNATRules", res.natRules,
		"deletedChains", res.deletedChains, "elapsed", time.Since(start))
	return nil
}

// prepareFullSync does what upstream does before a full sync's restore:
// the sysctls, and the check of the jump rules from the built-in chains
// (upstream's EnsureChain/EnsureRule calls; here one iptables-save whose
// output also lists the existing chains, so that stale service chains
// are deleted and missing jumps are inserted by the same restore).
func (p *Proxier) prepareFullSync(ctx context.Context, t tools, fs *familyState, req *renderRequest) error {
	if !t.ipv6 {
		if req.localhostNodePorts {
			// "Set the route_localnet sysctl we need for exposing
			// NodePorts on loopback addresses"
			if err := ensureSysctl("net/ipv4/conf/all/route_localnet", "1"); err != nil {
				return err
			}
		}
	}
	// "If it's non-zero, we mark only out of window RST segments as
	// INVALID": then no DROP rule for INVALID packets is installed.
	liberal := false
	if v, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"); err == nil {
		liberal = strings.TrimSpace(string(v)) != "0"
	}
	if liberal != req.conntrackTCPLiberal {
		req.conntrackTCPLiberal = liberal
	}
	fs.conntrackTCPLiberal = liberal

	data, err := t.runSave(ctx, "")
	if err != nil {
		return err
	}
	saved := parseSave(data)
	nat, filter := saved.table("nat"), saved.table("filter")
	req.existingNAT = nat.chains
	for _, j := range append(append([]jumpChain{}, iptablesJumpChains...), iptablesKubeletJumpChains...) {
		tbl := filter
		if j.table == "nat" {
			tbl = nat
		}
		if !tbl.hasJump(j) {
			req.jumps = append(req.jumps, j)
		}
	}
	if !req.localhostNodePorts && !filter.chains[kubeletFirewallChain] {
		req.declareFilterChains = []string{kubeletFirewallChain}
	}
	return nil
}

// ensureSysctl sets a sysctl of the calling thread's network namespace
// when it has another value.
func ensureSysctl(name, value string) error {
	path := "/proc/sys/" + name
	cur, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sysctl %s: %w", strings.ReplaceAll(name, "/", "."), err)
	}
	if strings.TrimSpace(string(cur)) == value {
		return nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(name, "/", "."), value, err)
	}
	return nil
}

// cleanStaleConntrack is upstream's conntrack clean-up after a sync, for
// UDP service ports: entries towards removed endpoints (by service IP
// and by NodePort), and entries of services that had no endpoint before
// and have one now (they may hold the verdict of the REJECT rule).
func (p *Proxier) cleanStaleConntrack(ctx context.Context, state *serviceproxy.State) {
	lookup := func(name serviceproxy.ServicePortName) *serviceproxy.ServicePort {
		if svc := state.Services[name]; svc != nil {
			return svc
		}
		return state.RemovedServices[name]
	}
	var errs []error
	for name, eps := range state.StaleUDPEndpoints {
		svc := lookup(name)
		if svc == nil || svc.Protocol != corev1.ProtocolUDP {
			continue
		}
		for _, ep := range eps {
			if ep == nil || !ep.IP.IsValid() {
				continue
			}
			v6 := ep.IP.Unmap().Is6()
			epIP := ep.IP.Unmap().String()
			for _, ip := range serviceIPs(svc) {
				if ip.Unmap().Is6() != v6 {
					continue
				}
				errs = append(errs, conntrackDelete(ctx, v6, "--orig-dst", ip.Unmap().String(), "--dst-nat", epIP, "-p", "udp"))
			}
			if svc.NodePort != 0 {
				errs = append(errs, conntrackDelete(ctx, v6, "-p", "udp", "--dport", fmt.Sprint(svc.NodePort), "--dst-nat", epIP))
			}
		}
	}
	for _, name := range state.StaleUDPServices {
		svc := lookup(name)
		if svc == nil || svc.Protocol != corev1.ProtocolUDP {
			continue
		}
		for _, ip := range serviceIPs(svc) {
			errs = append(errs, conntrackDelete(ctx, ip.Unmap().Is6(), "--orig-dst", ip.Unmap().String(), "-p", "udp"))
		}
		if svc.NodePort != 0 {
			for _, v6 := range ipFamiliesOf(svc.ClusterIPs) {
				errs = append(errs, conntrackDelete(ctx, v6, "-p", "udp", "--dport", fmt.Sprint(svc.NodePort)))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		p.log.Error("Failed to clear stale UDP conntrack entries", "err", err)
	}
}

// ipFamiliesOf lists the families (false: IPv4, true: IPv6) of ips.
func ipFamiliesOf(ips []netip.Addr) []bool {
	var v4, v6 bool
	for _, ip := range ips {
		if ip.Unmap().Is6() {
			v6 = true
		} else {
			v4 = true
		}
	}
	var out []bool
	if v4 {
		out = append(out, false)
	}
	if v6 {
		out = append(out, true)
	}
	return out
}

func serviceIPs(svc *serviceproxy.ServicePort) []netip.Addr {
	out := make([]netip.Addr, 0, len(svc.ClusterIPs)+len(svc.ExternalIPs)+len(svc.LoadBalancerVIPs))
	out = append(out, svc.ClusterIPs...)
	out = append(out, svc.ExternalIPs...)
	out = append(out, svc.LoadBalancerVIPs...)
	return out
}

// Cleanup removes every chain and rule this mode creates, in both
// families, in the calling thread's network namespace (upstream's
// CleanupLeftovers): the jumps from the built-in chains, then the
// top-level and per-service chains, with one restore per family.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	// The backend in use; under auto before any sync (--cleanup), both:
	// our chains may be left in either.
	backends := []Backend{p.backend}
	if p.backend == "" {
		backends = []Backend{p.want}
		if p.want == BackendAuto {
			backends = []Backend{BackendNFT, BackendLegacy}
		}
	}
	for _, b := range backends {
		for _, ipv6 := range []bool{false, true} {
			err := cleanupFamily(ctx, newTools(ipv6, b))
			if err != nil && len(backends) > 1 && errors.Is(err, exec.ErrNotFound) {
				continue // that backend's tools are not installed: nothing of ours there
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	p.families = [2]*familyState{}
	return errors.Join(errs...)
}

// cleanupTopChains are the top-level chains per table.
var cleanupTopChains = map[string][]string{
	"nat":    {kubeServicesChain, kubeNodePortsChain, kubePostroutingChain, kubeMarkMasqChain, kubeProxyCanaryChain},
	"filter": {kubeServicesChain, kubeExternalServicesChain, kubeForwardChain, kubeNodePortsChain, kubeProxyFirewallChain, kubeProxyCanaryChain, kubeletFirewallChain},
}

// cleanupInput returns the restore input removing our rules and chains
// from the saved tables, or nil when there is nothing to remove.
func cleanupInput(saved savedTables) []byte {
	return cleanupInputFor(saved, cleanupTopChains, func(table, chain string) bool {
		return table == "nat" && isServiceChainName(chain)
	})
}

// cleanupInputFor returns the restore input removing the chains named in
// top (per table) and those extra selects (may be nil), with every rule
// of other chains jumping to them, or nil when there is nothing to
// remove.
func cleanupInputFor(saved savedTables, top map[string][]string, extra func(table, chain string) bool) []byte {
	var out strings.Builder
	for _, table := range []string{"filter", "nat"} {
		st := saved[table]
		if st == nil {
			continue
		}
		ours := map[string]bool{}
		for _, c := range top[table] {
			if st.chains[c] {
				ours[c] = true
			}
		}
		if extra != nil {
			for c := range st.chains {
				if extra(table, c) {
					ours[c] = true
				}
			}
		}
		var dels []string
		for _, r := range st.rules {
			// Rules of other chains jumping to ours: the jumps from the
			// built-in chains (and anything else referencing them,
			// which would keep -X from succeeding).
			chain := strings.Fields(r)[1]
			if ours[chain] {
				continue
			}
			i := strings.LastIndex(r, " -j ")
			if i < 0 {
				continue
			}
			target := strings.Fields(r[i+4:])
			if len(target) > 0 && ours[target[0]] {
				dels = append(dels, "-D"+r[2:])
			}
		}
		if len(ours) == 0 && len(dels) == 0 {
			continue
		}
		names := make([]string, 0, len(ours))
		for c := range ours {
			names = append(names, c)
		}
		sort.Strings(names)
		out.WriteString("*" + table + "\n")
		for _, c := range names {
			out.WriteString(makeChainLine(c) + "\n") // flush
		}
		for _, d := range dels {
			out.WriteString(d + "\n")
		}
		for _, c := range names {
			out.WriteString("-X " + c + "\n") // delete
		}
		out.WriteString("COMMIT\n")
	}
	if out.Len() == 0 {
		return nil
	}
	return []byte(out.String())
}

func cleanupFamily(ctx context.Context, t tools) error {
	data, err := t.runSave(ctx, "")
	if err != nil {
		return err
	}
	input := cleanupInput(parseSave(data))
	if input == nil {
		return nil
	}
	return t.runRestore(ctx, input)
}
