package nftables

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// DefaultTable is the name of our tables ("ip switchboard" and "ip6
// switchboard").
const DefaultTable = "switchboard"

// DefaultMasqueradeBit is kube-proxy's --iptables-masquerade-bit default:
// the mark 0x4000 asks for masquerading.
const DefaultMasqueradeBit = 14

// Config configures the nftables backend.
type Config struct {
	// NodeName is this node (endpoints on it are local); State.Node.Name
	// wins when set.
	NodeName string
	// NodeIPs are the addresses NodePorts answer on when State.Node.IPs is
	// empty. When both are empty, NodePorts answer on every local address
	// but loopback, as kube-proxy without --nodeport-addresses.
	NodeIPs []netip.Addr
	// ClusterCIDRs are the pod ranges, used when State.ClusterCIDRs is
	// empty. Traffic to a cluster IP from outside them is masqueraded;
	// with none, it is not (kube-proxy without --cluster-cidr).
	ClusterCIDRs []netip.Prefix
	// MasqueradeAll masquerades all traffic to cluster IPs
	// (--masquerade-all).
	MasqueradeAll bool
	// MasqueradeBit is the mark bit asking for masquerade (0..31); nil
	// means DefaultMasqueradeBit.
	MasqueradeBit *int
	// Table names our tables; default DefaultTable.
	Table string
	// IPFamilies are the families programmed (a table each); default
	// IPv4 and IPv6.
	IPFamilies []corev1.IPFamily
	// NetNSPath, when set, is the network namespace to program (a path
	// such as /var/run/netns/NAME). When empty, Sync and Cleanup act on
	// the namespace of the calling thread: run them inside ns.Do.
	NetNSPath string
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Metrics; nil means none are counted.
	Metrics *serviceproxy.Metrics
}

// Proxier is the nftables Backend. It implements serviceproxy.Backend and
// serviceproxy.DryRunner.
type Proxier struct {
	cfg     Config
	log     *slog.Logger
	fams    []*family
	mark    uint32
	stores  map[*family]*famStore
	globals map[*family]*globals
	strs    *strTable // names in the stores' element values
	synced  bool      // a sync succeeded: the kernel holds what stores say
	failed  bool      // the last sync failed: the next one is full
	// LastTransaction is the script of the last applied transaction (for
	// tests and debugging); kept only when KeepScripts is set.
	keepScripts bool
	last        []byte
	// beforeApply, set by tests only, sees (and may add to) each
	// transaction before it is sent: fault injection for the "failed
	// apply" check (an operation the kernel rejects).
	beforeApply func(*transaction)
}

var (
	_ serviceproxy.Backend   = (*Proxier)(nil)
	_ serviceproxy.DryRunner = (*Proxier)(nil)
)

func init() {
	serviceproxy.RegisterMode("nftables", func(mc serviceproxy.ModeConfig) (serviceproxy.Backend, error) {
		return New(Config{
			NodeName:     mc.NodeName,
			NodeIPs:      mc.NodeIPs,
			ClusterCIDRs: mc.ClusterCIDRs,
			Logger:       mc.Logger,
			Metrics:      mc.Metrics,
		})
	})
}

// New checks the configuration and builds the backend; it does not touch
// the kernel.
func New(cfg Config) (*Proxier, error) {
	p := &Proxier{cfg: cfg, log: cfg.Logger, stores: map[*family]*famStore{}, globals: map[*family]*globals{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.cfg.Table == "" {
		p.cfg.Table = DefaultTable
	}
	if !validName(p.cfg.Table) {
		return nil, fmt.Errorf("nftables: Config.Table %q: must be 1-64 letters, digits, '-' or '_', starting with a letter", p.cfg.Table)
	}
	bit := DefaultMasqueradeBit
	if cfg.MasqueradeBit != nil {
		bit = *cfg.MasqueradeBit
	}
	if bit < 0 || bit > 31 {
		return nil, fmt.Errorf("nftables: Config.MasqueradeBit %d: must be within 0..31", bit)
	}
	p.mark = 1 << uint(bit)
	fams := cfg.IPFamilies
	if len(fams) == 0 {
		fams = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	}
	for i, f := range fams {
		var fam *family
		switch f {
		case corev1.IPv4Protocol:
			fam = fam4
		case corev1.IPv6Protocol:
			fam = fam6
		default:
			return nil, fmt.Errorf("nftables: Config.IPFamilies[%d] %q: must be IPv4 or IPv6", i, f)
		}
		if !slices.Contains(p.fams, fam) {
			p.fams = append(p.fams, fam)
		}
	}
	for i, p := range cfg.ClusterCIDRs {
		if !p.IsValid() {
			return nil, fmt.Errorf("nftables: Config.ClusterCIDRs[%d]: invalid prefix", i)
		}
	}
	return p, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '_')
		if !ok {
			return false
		}
	}
	return true
}

// Name is "nftables".
func (p *Proxier) Name() string { return "nftables" }

// KeepScripts makes Sync keep the script of each applied transaction,
// returned by LastScript (tests, debugging).
func (p *Proxier) KeepScripts(on bool) { p.keepScripts = on }

// LastScript is the nft script equivalent to the last applied transaction
// (nil unless KeepScripts).
func (p *Proxier) LastScript() []byte { return p.last }

// globalsFor computes what the skeleton of family f depends on.
func (p *Proxier) globalsFor(f *family, state *serviceproxy.State) *globals {
	g := &globals{masqMark: p.mark, masqueradeAll: p.cfg.MasqueradeAll, nodeName: p.cfg.NodeName}
	if state.Node.Name != "" {
		g.nodeName = state.Node.Name
	}
	g.zone = state.Node.Zone
	cidrs := state.ClusterCIDRs
	if len(cidrs) == 0 {
		cidrs = p.cfg.ClusterCIDRs
	}
	for _, c := range cidrs {
		if c.IsValid() && c.Addr().Is4In6() && c.Bits() >= 96 {
			c = netip.PrefixFrom(c.Addr().Unmap(), c.Bits()-96)
		}
		if c.IsValid() && f.has(c.Addr()) {
			g.clusterCIDRs = append(g.clusterCIDRs, c.Masked())
		}
	}
	g.clusterCIDRs = normalizePrefixes(g.clusterCIDRs)
	ips := state.Node.IPs
	if len(ips) == 0 {
		ips = p.cfg.NodeIPs
	}
	for _, ip := range ips {
		ip = ip.Unmap()
		if !f.has(ip) {
			continue
		}
		if !g.nodeIP.IsValid() {
			g.nodeIP = ip
		}
		// "--nodeport-addresses includes localhost but localhost
		// NodePorts are not supported"
		if ip.IsLoopback() || slices.Contains(g.nodePortIPs, ip) {
			continue
		}
		g.nodePortIPs = append(g.nodePortIPs, ip)
	}
	slices.SortFunc(g.nodePortIPs, netip.Addr.Compare)
	return g
}

// normalizePrefixes sorts prefixes and drops those inside another (an
// interval set cannot hold overlapping ranges).
func normalizePrefixes(in []netip.Prefix) []netip.Prefix {
	slices.SortFunc(in, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	var out []netip.Prefix
	for _, p := range in {
		if len(out) > 0 && out[len(out)-1].Overlaps(p) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// buildStore renders every service port of the state for family f.
func buildStore(f *family, g *globals, strs *strTable, state *serviceproxy.State) *famStore {
	svcs, eps := 0, 0
	for n, sp := range state.Services {
		if slices.ContainsFunc(sp.ClusterIPs, f.has) {
			svcs++
			for _, e := range state.Endpoints[n] {
				if e != nil && f.has(e.IP) {
					eps++
				}
			}
		}
	}
	s := newFamStore(f, g, strs)
	s.presize(svcs, eps)
	s.building = true
	defer func() { s.building = false }()
	b := newBuilder(f, g, strs)
	names := make([]serviceproxy.ServicePortName, 0, len(state.Services))
	for n := range state.Services {
		names = append(names, n)
	}
	slices.SortFunc(names, comparePortNames)
	for _, n := range names {
		if c := b.service(n, state.Services[n], state.Endpoints[n]); c != nil {
			s.setService(n, c)
		}
	}
	return s
}

// Render prints the nft script that a first sync of state applies: it
// deletes and recreates our tables with everything in them.
func (p *Proxier) Render(state *serviceproxy.State) ([]byte, error) {
	if state == nil {
		return nil, errors.New("nftables: Render: nil state")
	}
	t := &transaction{table: p.cfg.Table, strs: newStrTable()}
	now := time.Now()
	for _, f := range p.fams {
		buildStore(f, p.globalsFor(f, state), t.strs, state).fullTx(t, true, nil, nil, now)
	}
	return t.script(), nil
}

func (p *Proxier) nsFd() (int, func(), error) {
	if p.cfg.NetNSPath == "" {
		return 0, func() {}, nil
	}
	fh, err := os.Open(p.cfg.NetNSPath)
	if err != nil {
		return 0, nil, fmt.Errorf("nftables: network namespace: %w", err)
	}
	return int(fh.Fd()), func() { fh.Close() }, nil
}

// Sync renders state and applies it as one netlink transaction: in full
// (first sync, State.Full, after a failure, or when node addresses,
// cluster CIDRs or topology labels changed), or else only the changes of
// State.Changed and State.Removed.
func (p *Proxier) Sync(ctx context.Context, state *serviceproxy.State) error {
	if state == nil {
		return errors.New("nftables: Sync: nil state")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, closeFd, err := p.nsFd()
	if err != nil {
		return err
	}
	defer closeFd()
	start := time.Now()
	gl := map[*family]*globals{}
	full := state.Full || p.failed || !p.synced
	for _, f := range p.fams {
		gl[f] = p.globalsFor(f, state)
		if old := p.globals[f]; old == nil || !old.equal(gl[f]) {
			full = true
		}
	}
	t := &transaction{table: p.cfg.Table, strs: p.strs}
	if full {
		t.strs = newStrTable()
	}
	stores := map[*family]*famStore{}
	for _, f := range p.fams {
		if full {
			s := buildStore(f, gl[f], t.strs, state)
			fresh := !p.synced
			var kchains, ksets []string
			if !fresh {
				var found bool
				kchains, ksets, found, err = listTable(fd, f, p.cfg.Table)
				if err != nil {
					p.fail()
					return fmt.Errorf("nftables: %w", err)
				}
				fresh = !found
				if old := p.stores[f]; old != nil {
					// keep the stale chains' ages across full syncs
					for name, cs := range old.chains {
						if !cs.staleSince.IsZero() {
							s.chains[name] = &chainState{def: cs.def, exists: true, staleSince: cs.staleSince}
						}
					}
				}
			}
			s.fullTx(t, fresh, kchains, ksets, start)
			stores[f] = s
			continue
		}
		s := p.stores[f]
		b := newBuilder(f, gl[f], t.strs)
		names := make([]serviceproxy.ServicePortName, 0, len(state.Changed)+len(state.Removed))
		for n := range state.Changed {
			names = append(names, n)
		}
		names = append(names, state.Removed...)
		slices.SortFunc(names, comparePortNames)
		for _, n := range slices.Compact(names) {
			s.setService(n, b.service(n, state.Services[n], state.Endpoints[n]))
		}
		s.incrementalTx(t, start)
		stores[f] = s
	}
	built := time.Since(start)
	if p.beforeApply != nil {
		p.beforeApply(t)
	}
	if err := applyNetlink(fd, t); err != nil {
		p.fail()
		return err
	}
	for _, f := range p.fams {
		if full {
			stores[f].committedFull(start)
		} else {
			stores[f].committed(start)
		}
	}
	p.stores, p.globals, p.strs, p.synced, p.failed = stores, gl, t.strs, true, false
	if p.keepScripts {
		p.last = t.script()
	}
	p.log.Debug("nftables sync", "full", full, "apply", time.Since(start)-built, "generation", state.Generation, "services", len(state.Services),
		"transaction", t.summary(), "build", built, "elapsed", time.Since(start))

	// "Finish housekeeping, clear stale conntrack entries for UDP Services"
	if n, err := flushConntrack(fd, staleFilters(state)); err != nil {
		p.log.Warn("nftables: deleting stale UDP conntrack entries", "err", err)
	} else if n > 0 {
		p.log.Debug("nftables: deleted stale UDP conntrack entries", "count", n)
	}
	return nil
}

func (p *Proxier) fail() {
	p.failed = true
	if p.cfg.Metrics != nil && p.cfg.Metrics.NFTablesSyncFailuresTotal != nil {
		p.cfg.Metrics.NFTablesSyncFailuresTotal.Inc()
	}
}

// Cleanup deletes our tables (both families) where they exist.
func (p *Proxier) Cleanup(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fd, closeFd, err := p.nsFd()
	if err != nil {
		return err
	}
	defer closeFd()
	if err := deleteTables(fd, p.cfg.Table); err != nil {
		if p.cfg.Metrics != nil && p.cfg.Metrics.NFTablesCleanupFailuresTotal != nil {
			p.cfg.Metrics.NFTablesCleanupFailuresTotal.Inc()
		}
		return fmt.Errorf("nftables: cleanup: %w", err)
	}
	p.stores, p.globals, p.synced = map[*family]*famStore{}, map[*family]*globals{}, false
	return nil
}
