package kubernetes

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// DNSSchemaVersion is the version of the Kubernetes DNS specification
// served in the dns-version TXT record.
const DNSSchemaVersion = "1.1.0"

const (
	pluginName = "kubernetes"

	defaultTTL            = 5
	defaultStartupTimeout = 5 * time.Second
	dnsVersionTTL         = 28800 // the specification's example TTL, as CoreDNS serves it
)

// The pods modes.
const (
	podsDisabled uint8 = iota
	podsInsecure
	podsVerified
)

// Upstreamer resolves a name outside this plugin's zones: the target of an
// ExternalName service. Without one, the plugin asks the DNS server that
// is answering the query again through its whole chain (found in the
// query's context), as CoreDNS's upstream does; outside a server it
// answers the CNAME alone, as CoreDNS does when nothing resolves the target.
type Upstreamer interface {
	Lookup(ctx context.Context, state request.Request, name string, typ uint16) (*dns.Msg, error)
}

// Kubernetes is the plugin's handler: one per server block.
type Kubernetes struct {
	Next     plugin.Handler
	Zones    []string // normalized, the first non-reverse one is the primary zone
	Upstream Upstreamer

	primary        string // the zone PTR targets are named in
	ttl            uint32
	podMode        uint8
	namespaces     map[string]struct{} // `namespaces`; empty: every namespace
	fall           []string            // `fallthrough` zones; nil: never
	ignoreEmpty    bool
	startupTimeout time.Duration
	listenHosts    []string
	opts           indexOptions
	log            *slog.Logger

	zoneNames []zoneNames // per Zones entry
	idx       atomic.Pointer[index]
	held      *index // the index acquired by Start, released by Stop
	localIPs  []netip.Addr
}

// zoneNames are the names synthesized for one zone, computed once.
type zoneNames struct {
	nsName     string // ns.dns.<zone>
	hostmaster string // hostmaster.<zone>
}

// New returns a Kubernetes for zones (normalized) with CoreDNS's defaults:
// pods disabled, ttl 5, endpoints watched, no fallthrough.
func New(zones []string) *Kubernetes {
	k := &Kubernetes{
		Zones:          zones,
		ttl:            defaultTTL,
		namespaces:     map[string]struct{}{},
		startupTimeout: defaultStartupTimeout,
		opts:           indexOptions{endpoints: true},
	}
	k.idx.Store(idleIndex)
	k.initZones()
	return k
}

// idleIndex answers for a Kubernetes that has not started: empty and never
// synced, so that every name error becomes SERVFAIL, as CoreDNS answers
// before its informers have synced.
var idleIndex = newIndex(nil, indexOptions{}, nil)

func (k *Kubernetes) initZones() {
	k.zoneNames = make([]zoneNames, len(k.Zones))
	k.primary = ""
	for i, z := range k.Zones {
		k.zoneNames[i] = zoneNames{nsName: joinZone("ns.dns.", z), hostmaster: joinZone("hostmaster.", z)}
		if k.primary == "" && !isReverse(z) {
			k.primary = z
		}
	}
}

func joinZone(prefix, zone string) string {
	if zone == "." {
		return prefix
	}
	return prefix + zone
}

// Name implements plugin.Handler.
func (k *Kubernetes) Name() string { return pluginName }

// Ready reports whether the initial lists of every kind the plugin
// watches have been delivered and indexed (the ready plugin asks it).
func (k *Kubernetes) Ready() bool { return k.ix().syncedFlag.Load() }

// ix is the index lookups read.
func (k *Kubernetes) ix() *index { return k.idx.Load() }

// Start builds (or joins) the record index of store and waits until its
// initial lists are indexed or the startup timeout passes; as CoreDNS,
// it then serves anyway, answering SERVFAIL for names it cannot yet deny.
func (k *Kubernetes) Start(store *cluster.Store) error {
	if store == nil {
		return errors.New("no cluster store to read Services and EndpointSlices from")
	}
	if k.log == nil {
		k.log = slog.Default()
	}
	if k.held != nil {
		return errors.New("already started")
	}
	k.localIPs = boundIPs(k.listenHosts)
	k.held = acquireIndex(store, k.opts, k.log)
	k.idx.Store(k.held)
	t := time.NewTimer(k.startupTimeout)
	defer t.Stop()
	select {
	case <-k.held.synced:
	case <-t.C:
		k.log.Warn("kubernetes: starting server with an unsynced store", "startup_timeout", k.startupTimeout)
	}
	return nil
}

// Stop releases the index (its builder stops when no other server block
// uses it). Queries still arriving (a lameduck period) are answered from
// the records as they were, as CoreDNS answers from its informers' caches.
func (k *Kubernetes) Stop() {
	if k.held != nil {
		k.held.release()
		k.held = nil
	}
}

// boundIPs are the addresses the NS records name, as CoreDNS's boundIPs:
// the server's listen addresses, or every interface address when it
// listens on all of them, loopback left out. Unlike CoreDNS, a plain
// address from `bind` counts (CoreDNS parses them as CIDRs, so they
// never do).
func boundIPs(hosts []string) []netip.Addr {
	if len(hosts) == 0 || hosts[0] == "" {
		hosts = nil
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil
		}
		for _, a := range addrs {
			hosts = append(hosts, a.String())
		}
	}
	var ips []netip.Addr
	for _, h := range hosts {
		ip, err := netip.ParseAddr(h)
		if err != nil {
			p, err := netip.ParsePrefix(h)
			if err != nil {
				continue
			}
			ip = p.Addr()
		}
		ip = ip.Unmap().WithZone("")
		if ip.IsLoopback() || !ip.IsValid() {
			continue
		}
		ips = append(ips, ip)
	}
	return ips
}

// exposed is CoreDNS's namespaceExposed: the namespace is listed by
// `namespaces` (when given) and exists (matching namespace_labels).
func (k *Kubernetes) exposed(ns string) bool {
	if len(k.namespaces) > 0 {
		if _, ok := k.namespaces[ns]; !ok {
			return false
		}
	}
	return k.ix().namespace(ns)
}

// fallsThrough reports whether a name error for name goes to the next plugin.
func (k *Kubernetes) fallsThrough(name string) bool {
	return k.fall != nil && plugin.Zones(k.fall).Matches(name) != ""
}
