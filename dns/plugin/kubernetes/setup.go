package kubernetes

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func init() { dnsserver.Register(pluginName, setup) }

func setup(c *dnsserver.Controller) error {
	var log *slog.Logger
	if c.Env != nil {
		log = c.Env.Logger
	}
	if log == nil {
		log = slog.Default()
	}
	k, err := parse(c, log)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	if c.Env == nil || c.Env.Store == nil {
		return plugin.Error(pluginName, c.Errf("no cluster store in this process: the plugin serves the objects of the node's store "+
			"(switchboard up, or switchboard dns with manifests); reading a remote API server is not supported"))
	}
	store := c.Env.Store
	if err := registerMetrics(c.Env.Registerer); err != nil {
		return plugin.Error(pluginName, err)
	}
	cfg := c.Config
	c.OnStartup(func() error {
		if cfg != nil {
			k.listenHosts = cfg.ListenHosts
		}
		return k.Start(store)
	})
	c.OnShutdown(func() error {
		k.Stop()
		return nil
	})
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		k.Next = next
		return k
	})
	return nil
}

// parse reads the directive as CoreDNS's kubernetesParse/ParseStanza.
// Options for reaching an API server (endpoint, tls, kubeconfig,
// apiserver_*) are checked and then ignored: records come from the
// process's store.
func parse(c *dnsserver.Controller, log *slog.Logger) (*Kubernetes, error) {
	if log == nil {
		log = slog.Default()
	}
	var k *Kubernetes
	for i := 0; c.Next(); i++ {
		if i > 0 {
			return nil, c.Errf("this plugin can only be used once per Server Block")
		}
		var err error
		if k, err = parseStanza(c, log); err != nil {
			return nil, err
		}
	}
	if k == nil {
		return nil, c.ArgErr()
	}
	return k, nil
}

func parseStanza(c *dnsserver.Controller, log *slog.Logger) (*Kubernetes, error) {
	var blockZones []string
	if c.Config != nil {
		blockZones = c.Config.Zones
	}
	zones, err := normalizeZones(c.RemainingArgs(), blockZones)
	if err != nil {
		return nil, c.Err(err.Error())
	}
	k := New(zones)
	k.log = log
	if k.primary == "" {
		return nil, c.Errf("non-reverse zone name must be used")
	}
	ignored := func(what string) {
		log.Info("kubernetes: option ignored: records come from this process's cluster store", "option", what, "file", c.File(), "line", c.Line())
	}
	for c.NextBlock() {
		opt := c.Val()
		args := c.RemainingArgs()
		switch opt {
		case "endpoint_pod_names":
			if len(args) > 0 {
				return nil, c.ArgErr()
			}
			k.opts.podNames = true
		case "pods":
			if len(args) != 1 {
				return nil, c.ArgErr()
			}
			switch args[0] {
			case "disabled":
				k.podMode = podsDisabled
			case "insecure":
				k.podMode = podsInsecure
			case "verified":
				k.podMode = podsVerified
			default:
				return nil, c.Errf("wrong value for pods: %s,  must be one of: disabled, verified, insecure", args[0])
			}
		case "namespaces":
			if len(args) == 0 {
				return nil, c.ArgErr()
			}
			for _, a := range args {
				k.namespaces[a] = struct{}{}
			}
		case "endpoint":
			if len(args) == 0 {
				return nil, c.ArgErr()
			}
			ignored(opt)
		case "tls":
			if len(args) != 3 {
				return nil, c.ArgErr()
			}
			ignored(opt)
		case "kubeconfig":
			if len(args) != 1 && len(args) != 2 {
				return nil, c.ArgErr()
			}
			ignored(opt)
		case "labels", "namespace_labels":
			if len(args) == 0 {
				return nil, c.ArgErr()
			}
			expr := strings.Join(args, " ")
			ls, err := metav1.ParseToLabelSelector(expr)
			if err != nil {
				return nil, c.Errf("unable to parse %s selector value: '%v': %v", opt, expr, err)
			}
			sel, err := metav1.LabelSelectorAsSelector(ls)
			if err != nil {
				return nil, c.Errf("unable to parse %s selector value: '%v': %v", opt, expr, err)
			}
			if opt == "labels" {
				k.opts.selector = sel
			} else {
				k.opts.nsSelector = sel
			}
		case "fallthrough":
			if len(args) == 0 {
				k.fall = []string{"."}
				break
			}
			fz, err := normalizeZones(args, nil)
			if err != nil {
				return nil, c.Err(err.Error())
			}
			k.fall = fz
		case "ttl":
			if len(args) == 0 {
				return nil, c.ArgErr()
			}
			t, err := strconv.Atoi(args[0])
			if err != nil {
				return nil, c.Errf("ttl: %v", err)
			}
			if t < 0 || t > 3600 {
				return nil, c.Errf("ttl must be in range [0, 3600]: %d", t)
			}
			k.ttl = uint32(t)
		case "noendpoints":
			if len(args) != 0 {
				return nil, c.ArgErr()
			}
			k.opts.endpoints = false
		case "ignore":
			// CoreDNS accepts a bare "ignore" and does nothing with it.
			if len(args) > 0 {
				if args[0] != "empty_service" {
					return nil, c.Errf("unable to parse ignore value: '%v'", args[0])
				}
				k.ignoreEmpty = true
			}
		case "multicluster":
			return nil, c.Errf("multicluster is not supported (there are no ServiceImports in a Switchboard store)")
		case "startup_timeout":
			if len(args) == 0 {
				return nil, c.ArgErr()
			}
			d, err := time.ParseDuration(args[0])
			if err != nil {
				return nil, c.Errf("failed to parse startup_timeout: %v, %s", args[0], err)
			}
			k.startupTimeout = d
		case "apiserver_qps":
			if len(args) != 1 {
				return nil, c.ArgErr()
			}
			qps, err := strconv.ParseFloat(args[0], 32)
			if err != nil {
				return nil, c.Errf("invalid apiserver_qps %q: %v", args[0], err)
			}
			if qps < 0 {
				return nil, c.Errf("apiserver_qps must be >= 0")
			}
			ignored(opt)
		case "apiserver_burst", "apiserver_max_inflight":
			if len(args) != 1 {
				return nil, c.ArgErr()
			}
			n, err := strconv.Atoi(args[0])
			if err != nil {
				return nil, c.Errf("invalid %s %q: %v", opt, args[0], err)
			}
			if n < 0 {
				return nil, c.Errf("%s must be >= 0", opt)
			}
			ignored(opt)
		default:
			return nil, c.Errf("unknown property '%s'", opt)
		}
	}
	if len(k.namespaces) != 0 && k.opts.nsSelector != nil {
		return nil, c.Errf("namespaces and namespace_labels cannot both be set")
	}
	k.opts.pods = k.podMode == podsVerified
	return k, nil
}

// normalizeZones is CoreDNS's OriginsFromArgsOrServerBlock with
// NormalizeExact: each argument lower-cased and fully qualified, a CIDR
// turned into its reverse zones (split on octet, or for IPv6 nibble,
// boundaries); without arguments, the server block's zones.
func normalizeZones(args, block []string) ([]string, error) {
	if len(args) == 0 {
		out := make([]string, len(block))
		copy(out, block)
		return out, nil
	}
	var out []string
	for _, a := range args {
		z, err := normalizeZone(a)
		if err != nil {
			return nil, err
		}
		out = append(out, z...)
	}
	return out, nil
}

func normalizeZone(s string) ([]string, error) {
	s = strings.TrimPrefix(strings.ToLower(s), "dns://")
	if i := strings.LastIndexByte(s, ':'); i >= 0 && i < len(s)-1 && !strings.Contains(s[:i], ":") {
		if _, err := strconv.Atoi(s[i+1:]); err == nil {
			s = s[:i]
		}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		if _, ok := dns.IsDomainName(s); !ok {
			return nil, fmt.Errorf("zone is not a valid domain name: %s", s)
		}
		return []string{dns.Fqdn(s)}, nil
	}
	return reverseZones(p.Masked()), nil
}

// reverseZones lists the reverse zones covering p, each on a label
// boundary (8 bits for IPv4, 4 for IPv6).
func reverseZones(p netip.Prefix) []string {
	boundary := 8
	if p.Addr().Is6() {
		boundary = 4
	}
	size := (p.Bits() + boundary - 1) / boundary * boundary
	n := 1 << (size - p.Bits())
	var out []string
	a := p.Addr()
	for i := 0; i < n; i++ {
		out = append(out, reverseZone(a, size, boundary))
		a = nextPrefixAddr(a, size)
	}
	return out
}

// reverseZone names the reverse zone of the first size bits of a.
func reverseZone(a netip.Addr, size, boundary int) string {
	b := a.AsSlice()
	var labels []string
	if boundary == 8 {
		for i := size/8 - 1; i >= 0; i-- {
			labels = append(labels, strconv.Itoa(int(b[i])))
		}
		return strings.Join(append(labels, "in-addr", "arpa"), ".") + "."
	}
	for i := size/4 - 1; i >= 0; i-- {
		nib := b[i/2] >> 4
		if i%2 == 1 {
			nib = b[i/2] & 0xf
		}
		labels = append(labels, strconv.FormatUint(uint64(nib), 16))
	}
	return strings.Join(append(labels, "ip6", "arpa"), ".") + "."
}

// nextPrefixAddr adds 1 at bit position size (counted from the left) of a.
func nextPrefixAddr(a netip.Addr, size int) netip.Addr {
	b := a.AsSlice()
	bit := size - 1
	for bit >= 0 {
		i, shift := bit/8, 7-bit%8
		v := uint(b[i]>>shift) & 1
		if v == 0 {
			b[i] |= 1 << shift
			break
		}
		b[i] &^= 1 << shift
		bit--
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}
