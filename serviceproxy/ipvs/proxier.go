package ipvs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	libipvs "github.com/moby/ipvs"
	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/iptables"
)

// ModeName is the proxy mode this package registers.
const ModeName = "ipvs"

// DefaultMasqueradeBit is kube-proxy's --iptables-masquerade-bit default:
// the mark 0x4000.
const DefaultMasqueradeBit = iptables.DefaultMasqueradeBit

func init() {
	serviceproxy.RegisterMode(ModeName, func(mc serviceproxy.ModeConfig) (serviceproxy.Backend, error) {
		return New(Config{
			NodeName:     mc.NodeName,
			NodeIPs:      mc.NodeIPs,
			ClusterCIDRs: mc.ClusterCIDRs,
			Logger:       mc.Logger,
			Metrics:      mc.Metrics,
		})
	})
}

// Config configures the IPVS backend. The zero value works.
type Config struct {
	// NodeName, NodeIPs and ClusterCIDRs are used when the State leaves
	// its Node.Name, Node.IPs or ClusterCIDRs empty. Without node IPs,
	// NodePorts answer on every address of the namespace except
	// loopback, IPv6 link-local and those on kube-ipvs0 (upstream's
	// default --nodeport-addresses).
	NodeName     string
	NodeIPs      []netip.Addr
	ClusterCIDRs []netip.Prefix
	// Scheduler is the IPVS scheduler (--ipvs-scheduler); "" means "rr".
	Scheduler string
	// MasqueradeAll masquerades all traffic to cluster IPs
	// (--masquerade-all).
	MasqueradeAll bool
	// MasqueradeBit is the fwmark bit marking packets for SNAT
	// (--iptables-masquerade-bit); nil means 14 (0x4000).
	MasqueradeBit *int
	// RandomFully adds --random-fully to the MASQUERADE rule; nil means
	// true (iptables ≥ 1.6.2).
	RandomFully *bool
	// StrictARP sets arp_ignore=1 and arp_announce=2 (--ipvs-strict-arp).
	StrictARP bool
	// ExcludeCIDRs are left alone when stale IPVS services are removed
	// (--ipvs-exclude-cidrs).
	ExcludeCIDRs []netip.Prefix
	// TCPTimeout, TCPFinTimeout and UDPTimeout are the IPVS connection
	// timeouts ("ipvsadm --set"); 0 keeps the kernel's value.
	TCPTimeout, TCPFinTimeout, UDPTimeout time.Duration
	// Legacy uses iptables-legacy (x_tables) instead of Debian's default
	// iptables, which is iptables-nft.
	Legacy bool
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics is the core's metric set; may be nil.
	Metrics *serviceproxy.Metrics
}

// Proxier is the IPVS mode: kube-proxy's pkg/proxy/ipvs on the
// serviceproxy State. It acts on the network namespace of the calling
// thread (run Sync and Cleanup inside the namespace it must program).
type Proxier struct {
	cfg           Config
	log           *slog.Logger
	masqueradeBit int

	// openKernel and hostAddrs are the kernel access (substituted in
	// tests): openKernel fails with ErrNoIPVS on kernels without IPVS;
	// hostAddrs lists the node's addresses for Render.
	openKernel func() (kernel, error)
	openLinks  func() (kernel, error)
	hostAddrs  func() ([]netip.Addr, error)
	tools      tools

	mu        sync.Mutex
	synced    bool   // the last sync succeeded
	paramsKey string // params of the last successful sync
	v6        bool   // the IPv6 family was programmed
	applied   *model // what the last successful sync applied
	graceful  gracefulList
}

var (
	_ serviceproxy.Backend   = (*Proxier)(nil)
	_ serviceproxy.DryRunner = (*Proxier)(nil)
)

// New builds the backend. It does not touch the kernel, and does not
// fail on a kernel without IPVS (Sync does, naming what is missing; see
// Probe): building a backend is side-effect free, and Cleanup must work
// everywhere.
func New(cfg Config) (*Proxier, error) {
	bit := DefaultMasqueradeBit
	if cfg.MasqueradeBit != nil {
		bit = *cfg.MasqueradeBit
	}
	if bit < 0 || bit > 31 {
		return nil, fmt.Errorf("ipvs: masqueradeBit: %d: must be within [0, 31]", bit)
	}
	if cfg.Scheduler != "" && !slices.Contains(knownSchedulers, cfg.Scheduler) {
		return nil, fmt.Errorf("ipvs: scheduler: %q: unknown IPVS scheduler (known: %s)", cfg.Scheduler, strings.Join(knownSchedulers, ", "))
	}
	for i, ip := range cfg.NodeIPs {
		if !ip.IsValid() {
			return nil, fmt.Errorf("ipvs: nodeIPs[%d]: invalid address", i)
		}
	}
	for i, c := range cfg.ClusterCIDRs {
		if !c.IsValid() {
			return nil, fmt.Errorf("ipvs: clusterCIDRs[%d]: invalid prefix", i)
		}
	}
	for i, c := range cfg.ExcludeCIDRs {
		if !c.IsValid() {
			return nil, fmt.Errorf("ipvs: excludeCIDRs[%d]: invalid prefix", i)
		}
	}
	for name, d := range map[string]time.Duration{"tcpTimeout": cfg.TCPTimeout, "tcpFinTimeout": cfg.TCPFinTimeout, "udpTimeout": cfg.UDPTimeout} {
		if d < 0 {
			return nil, fmt.Errorf("ipvs: %s: %v: must not be negative", name, d)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	p := &Proxier{cfg: cfg, log: log, masqueradeBit: bit, graceful: gracefulList{}, openKernel: openKernel,
		openLinks: openLinks, tools: execTools{legacy: cfg.Legacy, log: log}}
	p.hostAddrs = func() ([]netip.Addr, error) {
		k, err := p.openLinks()
		if err != nil {
			return nil, err
		}
		defer k.Close()
		return k.HostAddrs(DummyDevice)
	}
	return p, nil
}

// Name is "ipvs".
func (p *Proxier) Name() string { return ModeName }

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// paramsFor computes the parameters of a sync from the state, the
// config and the node's addresses.
func (p *Proxier) paramsFor(state *serviceproxy.State, hostAddrs []netip.Addr) params {
	pr := params{
		nodeName:       state.Node.Name,
		zone:           state.Node.Zone,
		scheduler:      p.cfg.Scheduler,
		masqueradeAll:  p.cfg.MasqueradeAll,
		masqueradeMark: masqueradeMark(p.masqueradeBit),
		randomFully:    boolOr(p.cfg.RandomFully, true),
		hostAddrs:      map[netip.Addr]bool{},
	}
	if pr.nodeName == "" {
		pr.nodeName = p.cfg.NodeName
	}
	if pr.scheduler == "" {
		pr.scheduler = DefaultScheduler
	}
	cidrs := state.ClusterCIDRs
	if len(cidrs) == 0 {
		cidrs = p.cfg.ClusterCIDRs
	}
	for _, c := range cidrs {
		// Upstream's ClusterCIDR detector takes one CIDR per family.
		if !c.IsValid() {
			continue
		}
		fi := famIndex(isV6(c.Addr()))
		if !pr.localCIDR[fi].IsValid() {
			pr.localCIDR[fi] = c.Masked()
		}
	}
	for _, a := range hostAddrs {
		pr.hostAddrs[a.Unmap()] = true
	}
	nodeIPs := state.Node.IPs
	if len(nodeIPs) == 0 {
		nodeIPs = p.cfg.NodeIPs
	}
	if len(nodeIPs) == 0 {
		// upstream's nodePortAddresses.MatchAll(): every local address
		// except those on kube-ipvs0.
		nodeIPs = hostAddrs
	}
	for _, ip := range nodeIPs {
		if !ip.IsValid() {
			continue
		}
		ip = ip.Unmap()
		pr.hostAddrs[ip] = true
		if ip.IsLoopback() || ip.IsUnspecified() {
			continue
		}
		fi := famIndex(ip.Is6())
		if !pr.nodeIP[fi].IsValid() {
			pr.nodeIP[fi] = ip
		}
		if !slices.Contains(pr.nodePortIPs[fi], ip) {
			pr.nodePortIPs[fi] = append(pr.nodePortIPs[fi], ip)
		}
	}
	pr.ipv6 = p.v6 || state.HasIPv6()
	return pr
}

// Render returns what a first Sync of state would apply on a node
// without any of this mode's state, in three sections: "# ipvsadm -S -n"
// (the virtual and real servers, as that command prints them), "# ipset
// restore" (the input fed to "ipset restore") and "# iptables-restore"
// (the input fed to "iptables-restore --noflush", with the jumps from the
// built-in chains), then "# ip6tables-restore" when the state has IPv6
// addresses. The addresses bound on kube-ipvs0 are the members of
// KUBE-IPVS-IPS. The node's addresses (for NodePorts without node IPs,
// and to tell which external IPs are local) are read from the calling
// thread's network namespace, as Sync reads them; this needs no root.
func (p *Proxier) Render(state *serviceproxy.State) ([]byte, error) {
	if state == nil {
		return nil, errors.New("ipvs: render: no state")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	hostAddrs, err := p.hostAddrs()
	if err != nil {
		return nil, fmt.Errorf("ipvs: render: the node's addresses: %w", err)
	}
	pr := p.paramsFor(state, hostAddrs)
	m := buildModel(state, &pr)
	sets, err := renderSets(&setsRequest{m: m})
	if err != nil {
		return nil, fmt.Errorf("ipvs: render: %w", err)
	}
	var out bytes.Buffer
	out.WriteString("# ipvsadm -S -n\n")
	out.Write(renderIPVSAdm(servicesFromModel(m)))
	out.WriteString("# ipset restore\n")
	out.Write(sets)
	out.WriteString("# iptables-restore\n")
	out.Write(withJumps(m.fams[0].rules, iptablesJumpChain))
	if m.fams[1] != nil {
		out.WriteString("# ip6tables-restore\n")
		out.Write(withJumps(m.fams[1].rules, iptablesJumpChain))
	}
	return out.Bytes(), nil
}

// Sync renders state and applies it in the calling thread's network
// namespace: the ipsets with one "ipset restore", the iptables rules with
// one iptables-restore --noflush per family, then the IPVS virtual and
// real servers and the addresses on kube-ipvs0 through netlink. See the
// package comment.
func (p *Proxier) Sync(ctx context.Context, state *serviceproxy.State) (err error) {
	if state == nil {
		return errors.New("ipvs: sync: no state")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	defer func() {
		if err != nil {
			p.synced = false
		}
	}()

	k, err := p.openKernel()
	if err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	defer k.Close()
	// "make sure dummy interface exists in the system where ipvs Proxier
	// will bind service address on it"
	if err := k.EnsureDummy(DummyDevice); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	hostAddrs, err := k.HostAddrs(DummyDevice)
	if err != nil {
		return fmt.Errorf("ipvs: the node's addresses: %w", err)
	}
	pr := p.paramsFor(state, hostAddrs)
	key := pr.key()
	full := state.Full || !p.synced || p.applied == nil || key != p.paramsKey
	if full {
		if err := p.prepareKernel(k); err != nil {
			return fmt.Errorf("ipvs: %w", err)
		}
	}
	m := buildModel(state, &pr)

	// ipsets: one restore.
	req := &setsRequest{m: m}
	if full {
		existing, _, err := p.tools.listSets(ctx)
		if err != nil {
			return fmt.Errorf("ipvs: %w", err)
		}
		req.existing = existing
	} else {
		req.existing = map[string]kernelSet{}
		for _, fm := range p.applied.fams {
			if fm == nil {
				continue
			}
			for _, info := range ipsetInfo {
				req.existing[familySetName(info.name, fm.ipv6)] = kernelSet{setType: info.setType, family: setFamily(info.setType, fm.ipv6)}
			}
			req.previous[famIndex(fm.ipv6)] = fm.sets
		}
	}
	data, err := renderSets(req)
	if err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}
	if data != nil {
		if err := p.tools.ipsetRestore(ctx, data); err != nil {
			return fmt.Errorf("ipvs: %w", err)
		}
	}

	// iptables: one restore per family.
	for _, fm := range m.fams {
		if fm == nil {
			continue
		}
		rules := fm.rules
		if full {
			save, err := p.tools.iptablesSave(ctx, fm.ipv6)
			if err != nil {
				return fmt.Errorf("ipvs: %w", err)
			}
			rules = withJumps(rules, missingJumps(save))
		} else if prev := p.applied.fams[famIndex(fm.ipv6)]; prev != nil && bytes.Equal(prev.rules, rules) {
			continue
		}
		if err := p.tools.iptablesRestore(ctx, rules, fm.ipv6); err != nil {
			if mt := p.cfg.Metrics; mt != nil && mt.IPTablesRestoreFailuresTotal != nil {
				mt.IPTablesRestoreFailuresTotal.Inc()
			}
			return fmt.Errorf("ipvs: %w", err)
		}
	}

	// IPVS and kube-ipvs0.
	if err := p.syncIPVS(k, m, full); err != nil {
		return fmt.Errorf("ipvs: %w", err)
	}

	p.tools.cleanConntrack(ctx, state)

	p.applied = m
	p.paramsKey = key
	p.v6 = pr.ipv6
	p.synced = true
	return nil
}

// prepareKernel sets the sysctls upstream's NewProxier sets ("In IPVS
// proxy mode, the following flags need to be set") and the IPVS
// timeouts. net/ipv4/vs/conn_reuse_mode is left as it is: "Left as-is"
// on kernels from 5.9 on (kubernetes issue 93297), which has every
// kernel this runs on.
func (p *Proxier) prepareKernel(k kernel) error {
	set := [][2]string{
		{"net/ipv4/vs/conntrack", "1"},
		{"net/ipv4/vs/expire_nodest_conn", "1"},
		{"net/ipv4/vs/expire_quiescent_template", "1"},
		{"net/ipv4/ip_forward", "1"},
	}
	if p.cfg.StrictARP {
		set = append(set, [2]string{"net/ipv4/conf/all/arp_ignore", "1"}, [2]string{"net/ipv4/conf/all/arp_announce", "2"})
	}
	for _, s := range set {
		if err := k.Sysctl(s[0], s[1]); err != nil {
			return err
		}
	}
	if p.cfg.TCPTimeout > 0 || p.cfg.TCPFinTimeout > 0 || p.cfg.UDPTimeout > 0 {
		// "This is the equivalent to running ipvsadm --set, a value of 0
		// indicates the current system timeout should be preserved"
		if err := k.SetConfig(&libipvs.Config{TimeoutTCP: p.cfg.TCPTimeout, TimeoutTCPFin: p.cfg.TCPFinTimeout, TimeoutUDP: p.cfg.UDPTimeout}); err != nil {
			p.log.Error("Failed to configure IPVS timeouts", "err", err)
		}
	}
	return nil
}

func (p *Proxier) excluded(a netip.Addr) bool {
	for _, c := range p.cfg.ExcludeCIDRs {
		if c.Contains(a) {
			return true
		}
	}
	return false
}

// syncIPVS applies the virtual servers, their real servers and the
// addresses on kube-ipvs0. A full sync compares with the kernel's IPVS
// table; a partial one with what the last sync applied, touching only
// the virtual servers that differ. Errors do not stop it (as upstream,
// which logs them); they are returned joined, and the next sync is full.
func (p *Proxier) syncIPVS(k kernel, m *model, full bool) error {
	var errs []error
	if err := p.graceful.process(k); err != nil {
		errs = append(errs, err)
	}

	var current map[vsKey]*virtualServer // full sync: the kernel's services
	if full {
		svcs, err := k.GetServices()
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("listing IPVS services: %w", err))...)
		}
		current = make(map[vsKey]*virtualServer, len(svcs))
		for _, s := range svcs {
			if s.FWMark != 0 {
				continue // not a kube-proxy service
			}
			v := vsFromKernel(s)
			current[v.key] = v
		}
	}

	for _, vs := range m.sortedVS() {
		var have *virtualServer
		if full {
			have = current[vs.key]
		} else if prev := p.applied.vs[vs.key]; prev != nil {
			if prev.sameService(vs) && prev.sameReals(vs) {
				continue
			}
			have = prev
		}
		if err := p.syncVirtualServer(k, vs, have); err != nil {
			errs = append(errs, err)
		}
	}

	// Bind the service addresses, then remove "superfluous addresses from
	// the dummy device".
	bound, err := k.LinkAddrs(DummyDevice)
	if err != nil {
		errs = append(errs, err)
	} else {
		have := make(map[netip.Addr]bool, len(bound))
		for _, a := range bound {
			have[a] = true
		}
		for _, a := range sortedAddrs(m.binds) {
			if !have[a] {
				if err := k.AddAddr(DummyDevice, a); err != nil {
					errs = append(errs, err)
				}
			}
		}
		for _, a := range bound {
			if !m.binds[a] {
				if err := k.DelAddr(DummyDevice, a); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}

	// cleanLegacyService: the virtual servers not wanted any more.
	var stale []vsKey
	if full {
		for key := range current {
			if m.vs[key] == nil && !p.excluded(key.Addr) {
				stale = append(stale, key)
			}
		}
	} else {
		for key := range p.applied.vs {
			if m.vs[key] == nil {
				stale = append(stale, key)
			}
		}
	}
	sort.Slice(stale, func(i, j int) bool { return stale[i].less(stale[j]) })
	for _, key := range stale {
		p.graceful.forgetVS(key)
		if err := k.DelService(keyService(key)); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting IPVS service %s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT)
}

func sortedAddrs(set map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// syncVirtualServer is upstream's syncService and syncEndpoint for one
// virtual server: it is created (or updated when its scheduler, flags or
// timeout changed), its wanted real servers are added with weight 1 (a
// real server on its way out that is wanted again gets weight 1 back),
// and the others are deleted gracefully. have is what the kernel holds
// (nil when the service does not exist).
func (p *Proxier) syncVirtualServer(k kernel, vs *virtualServer, have *virtualServer) error {
	svc := toIPVSService(vs)
	switch {
	case have == nil:
		if err := k.NewService(svc); err != nil {
			if !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("adding IPVS service %s (%s): %w", vs.key, vs.owner, err)
			}
			if err := k.UpdateService(svc); err != nil {
				return fmt.Errorf("updating IPVS service %s (%s): %w", vs.key, vs.owner, err)
			}
		}
	case !have.sameService(vs):
		// "IPVS service was changed, update the existing one. During
		// updates, service VIP will not go down"
		if err := k.UpdateService(svc); err != nil {
			return fmt.Errorf("updating IPVS service %s (%s): %w", vs.key, vs.owner, err)
		}
	}
	dests, err := k.GetDestinations(svc)
	if err != nil {
		return fmt.Errorf("listing the real servers of %s (%s): %w", vs.key, vs.owner, err)
	}
	cur := make(map[rsKey]*libipvs.Destination, len(dests))
	for _, d := range dests {
		cur[rsKeyOf(d)] = d
	}
	var errs []error
	want := make(map[rsKey]bool, len(vs.reals))
	for _, rs := range vs.reals {
		want[rs] = true
		delete(p.graceful, gracefulKey{vs.key, rs})
		d := cur[rs]
		switch {
		case d == nil:
			if err := k.NewDestination(svc, toDestination(rs, 1)); err != nil && !errors.Is(err, unix.EEXIST) {
				errs = append(errs, fmt.Errorf("adding real server %s to %s (%s): %w", rs, vs.key, vs.owner, err))
			}
		case d.Weight != 1:
			if err := k.UpdateDestination(svc, toDestination(rs, 1)); err != nil {
				errs = append(errs, fmt.Errorf("updating real server %s of %s (%s): %w", rs, vs.key, vs.owner, err))
			}
		}
	}
	for _, d := range dests {
		rs := rsKeyOf(d)
		if want[rs] || p.graceful[gracefulKey{vs.key, rs}] {
			continue
		}
		if err := p.graceful.gracefulDelete(k, vs.key, d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Cleanup removes everything this mode creates, in the calling thread's
// network namespace (upstream's CleanupLeftovers): every IPVS service
// ("Clear all ipvs rules", when the kernel has IPVS), the dummy link
// kube-ipvs0, the iptables chains and jumps of both families, then the
// ipsets ("We should call it after cleaning up iptables since we can NOT
// delete ip set which is still referenced by iptables"). The chains this
// mode shares with the iptables mode (KUBE-SERVICES, KUBE-POSTROUTING,
// KUBE-MARK-MASQ, KUBE-FORWARD, KUBE-PROXY-FIREWALL) are removed only
// from a family whose tables hold one of this mode's own chains.
func (p *Proxier) Cleanup(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.synced, p.applied, p.paramsKey, p.v6 = false, nil, "", false
	p.graceful = gracefulList{}

	var errs []error
	k, err := p.openKernel()
	switch {
	case errors.Is(err, ErrNoIPVS):
		// No IPVS: no virtual server can exist; the link may.
		k, err = p.openLinks()
		if err != nil {
			errs = append(errs, err)
		}
	case err != nil:
		errs = append(errs, err)
	default:
		if err := k.Flush(); err != nil {
			errs = append(errs, fmt.Errorf("flushing IPVS services: %w", err))
		}
	}
	if k != nil {
		if err := k.DeleteDummy(DummyDevice); err != nil {
			errs = append(errs, err)
		}
		k.Close()
	}

	for _, ipv6 := range []bool{false, true} {
		if err := p.cleanupIPTables(ctx, ipv6); err != nil {
			errs = append(errs, err)
		}
	}

	existing, missing, err := p.tools.listSets(ctx)
	if err != nil {
		errs = append(errs, err)
	} else if !missing {
		ours := ourSetNames()
		var names []string
		for name := range existing {
			if ours[name] {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		if len(names) > 0 {
			var b strings.Builder
			for _, n := range names {
				b.WriteString("destroy " + n + "\n")
			}
			if err := p.tools.ipsetRestore(ctx, []byte(b.String())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cleanupIPTables removes one family's chains and jumps.
func (p *Proxier) cleanupIPTables(ctx context.Context, ipv6 bool) error {
	save, err := p.tools.iptablesSave(ctx, ipv6)
	if err != nil {
		return err
	}
	chains := savedChains(save)
	ours := false
	for table, list := range ipvsOnlyChains {
		for _, c := range list {
			if chains[table][c] {
				ours = true
			}
		}
	}
	if !ours {
		return nil
	}
	return p.tools.removeChains(ctx, ipv6, iptablesChains)
}
