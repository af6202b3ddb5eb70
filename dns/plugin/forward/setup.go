package forward

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const maxUpstreams = 15 // CoreDNS's limit of TOs per stanza

func init() { dnsserver.Register("forward", setup) }

func setup(c *dnsserver.Controller) error {
	fs, err := parseForward(c)
	if err != nil {
		return plugin.Error("forward", err)
	}
	for i := range fs {
		f := fs[i]
		if i == len(fs)-1 {
			// The last stanza continues with the next plugin.
			c.AddPlugin(func(next plugin.Handler) plugin.Handler {
				f.Next = next
				return f
			})
		} else {
			// Earlier stanzas continue with the following stanza.
			nextForward := fs[i+1]
			c.AddPlugin(func(plugin.Handler) plugin.Handler {
				f.Next = nextForward
				return f
			})
		}
		c.OnStartup(f.OnStartup)
		c.OnShutdown(f.OnShutdown)
	}
	return nil
}

func envOf(c *dnsserver.Controller) (prometheus.Registerer, *slog.Logger) {
	var reg prometheus.Registerer
	logger := slog.Default()
	if c.Env != nil {
		reg = c.Env.Registerer
		if c.Env.Logger != nil {
			logger = c.Env.Logger
		}
	}
	return reg, logger.With("plugin", "forward")
}

// parseForward reads every forward line of the block (each one a
// stanza), as CoreDNS's parseForward.
func parseForward(c *dnsserver.Controller) ([]*Forward, error) {
	reg, logger := envOf(c)
	m := newMetrics(reg)
	var fs []*Forward
	for c.Next() {
		f, err := parseStanza(c, m, logger)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// splitZone splits "host%servername[:port]" into "host[:port]" and the
// TLS server name, as CoreDNS.
func splitZone(host string) (newHost, zone string) {
	newHost = host
	if i := strings.LastIndex(host, "%"); i >= 0 {
		newHost = host[:i]
		zone = host[i+1:]
		if j := strings.LastIndex(zone, ":"); j >= 0 {
			newHost += zone[j:]
			zone = zone[:j]
		}
	}
	return newHost, zone
}

func parseStanza(c *dnsserver.Controller, m *metrics, logger *slog.Logger) (*Forward, error) {
	f := New()
	f.m = m
	f.log = logger

	if !c.Args(&f.from) {
		return nil, c.ArgErr()
	}
	origFrom := f.from
	zones := plugin.NormalizeExact(f.from)
	if len(zones) == 0 {
		return nil, c.Errf("unable to normalize '%s'", f.from)
	}
	f.from = zones[0] // only the first zone of a non-octet CIDR is used
	if len(zones) > 1 {
		logger.Warn("unsupported CIDR notation: expands to multiple zones, using only the first", "from", origFrom, "zone", f.from)
	}

	to := c.RemainingArgs()
	if len(to) == 0 {
		return nil, c.ArgErr()
	}
	toLine := c.Line()
	toHosts, err := hostPortOrFile(to...)
	if err != nil {
		return nil, c.Errf("%v", err)
	}

	for c.NextBlock() {
		if err := parseBlock(c, f); err != nil {
			return nil, err
		}
	}

	if len(toHosts) > maxUpstreams {
		return nil, fmt.Errorf("%s:%d - Error during parsing: more than %d TOs configured: %d", c.File(), toLine, maxUpstreams, len(toHosts))
	}

	tlsServerNames := make([]string, len(toHosts))
	perServerNameProxyCount := map[string]int{}
	transports := make([]string, len(toHosts))
	for i, hostWithZone := range toHosts {
		host, serverName := splitZone(hostWithZone)
		trans, h := plugin.TransportPrefix(host)
		if trans != transDNS && trans != transTLS {
			return nil, fmt.Errorf("%s:%d - Error during parsing: '%s' is not supported as a destination protocol in forward: %s", c.File(), toLine, trans, host)
		}
		if trans == transTLS && serverName != "" {
			if f.tlsServerName != "" {
				return nil, fmt.Errorf("%s:%d - Error during parsing: both forward ('%s') and proxy level ('%s') TLS servernames are set for upstream proxy '%s'", c.File(), toLine, f.tlsServerName, serverName, host)
			}
			tlsServerNames[i] = serverName
			perServerNameProxyCount[serverName]++
		}
		f.proxies = append(f.proxies, NewProxy("forward", h, trans, m))
		transports[i] = trans
	}

	perServerNameTLSConfig := map[string]*tls.Config{}
	if f.tlsServerName != "" {
		f.tlsConfig.ServerName = f.tlsServerName
	} else {
		for serverName, n := range perServerNameProxyCount {
			cfg := f.tlsConfig.Clone()
			cfg.ServerName = serverName
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(n)
			perServerNameTLSConfig[serverName] = cfg
		}
	}
	f.tlsConfig.ClientSessionCache = tls.NewLRUClientSessionCache(len(f.proxies))

	for i, p := range f.proxies {
		if transports[i] == transTLS {
			if cfg, ok := perServerNameTLSConfig[tlsServerNames[i]]; ok {
				p.SetTLSConfig(cfg)
			} else {
				p.SetTLSConfig(f.tlsConfig)
			}
		}
		p.SetExpire(f.expire)
		p.SetMaxIdleConns(f.maxIdleConns)
		p.health.recursionDesired = f.opts.HCRecursionDesired
		if f.opts.ForceTCP && transports[i] != transTLS {
			p.health.setTCPTransport()
		}
		p.health.domain = f.opts.HCDomain
	}
	return f, nil
}

func parseBlock(c *dnsserver.Controller, f *Forward) error {
	switch c.Val() {
	case "except":
		ignore := c.RemainingArgs()
		if len(ignore) == 0 {
			return c.ArgErr()
		}
		for _, name := range ignore {
			f.ignored = append(f.ignored, plugin.NormalizeExact(name)...)
		}
	case "max_fails":
		return uint32Arg(c, &f.maxfails)
	case "max_connect_attempts":
		return uint32Arg(c, &f.maxConnectAttempts)
	case "health_check":
		if err := durationArg(c, &f.hcInterval); err != nil {
			return err
		}
		f.opts.HCDomain = "."
		for c.NextArg() {
			switch opt := c.Val(); opt {
			case "no_rec":
				f.opts.HCRecursionDesired = false
			case "domain":
				if !c.NextArg() {
					return c.ArgErr()
				}
				d := c.Val()
				if _, ok := dns.IsDomainName(d); !ok {
					return c.Errf("health_check: invalid domain name %s", d)
				}
				f.opts.HCDomain = strings.ToLower(dns.Fqdn(d))
			default:
				return c.Errf("health_check: unknown option %s", opt)
			}
		}
	case "force_tcp":
		return flagArg(c, &f.opts.ForceTCP)
	case "prefer_udp":
		return flagArg(c, &f.opts.PreferUDP)
	case "tls":
		args := c.RemainingArgs()
		if len(args) > 3 {
			return c.ArgErr()
		}
		cfg, err := newTLSConfigFromArgs(args...)
		if err != nil {
			return c.Errf("tls: %v", err)
		}
		f.tlsConfig = cfg
	case "tls_servername":
		if !c.NextArg() {
			return c.ArgErr()
		}
		f.tlsServerName = c.Val()
	case "expire":
		return durationArg(c, &f.expire)
	case "max_idle_conns":
		return intArg(c, &f.maxIdleConns)
	case "policy":
		if !c.NextArg() {
			return c.ArgErr()
		}
		switch x := c.Val(); x {
		case "random":
			f.p = &random{}
		case "round_robin":
			f.p = &roundRobin{}
		case "sequential":
			f.p = &sequential{}
		default:
			return c.Errf("unknown policy '%s'", x)
		}
	case "max_concurrent":
		var n int
		if err := intArg(c, &n); err != nil {
			return err
		}
		f.ErrLimitExceeded = errors.New("concurrent queries exceeded maximum " + c.Val())
		f.maxConcurrent = int64(n)
	case "next":
		rcs, err := rcodesArg(c)
		if err != nil {
			return err
		}
		f.nextAlternateRcodes = append(f.nextAlternateRcodes, rcs...)
	case "failfast_all_unhealthy_upstreams":
		return flagArg(c, &f.failfastUnhealthyUpstreams)
	case "failover":
		rcs, err := rcodesArg(c)
		if err != nil {
			return err
		}
		for _, rc := range rcs {
			if rc == dns.RcodeSuccess {
				return c.Errf("NoError cannot be used in failover")
			}
		}
		f.failoverRcodes = append(f.failoverRcodes, rcs...)
	default:
		return c.Errf("unknown property '%s'", c.Val())
	}
	return nil
}

// The option argument parsers below read the property's arguments (the
// property name is c.Val() when called) and name the property in their
// errors, as CoreDNS's setup does.

// uint32Arg reads one unsigned 32-bit number.
func uint32Arg(c *dnsserver.Controller, dst *uint32) error {
	name := c.Val()
	if !c.NextArg() {
		return c.ArgErr()
	}
	n, err := strconv.ParseUint(c.Val(), 10, 32)
	if err != nil {
		return c.Errf("%s: %v", name, err)
	}
	*dst = uint32(n)
	return nil
}

// intArg reads one number that must not be negative.
func intArg(c *dnsserver.Controller, dst *int) error {
	name := c.Val()
	if !c.NextArg() {
		return c.ArgErr()
	}
	n, err := strconv.Atoi(c.Val())
	if err != nil {
		return c.Errf("%s: %v", name, err)
	}
	if n < 0 {
		return c.Errf("%s can't be negative: %d", name, n)
	}
	*dst = n
	return nil
}

// durationArg reads one Go duration that must not be negative.
func durationArg(c *dnsserver.Controller, dst *time.Duration) error {
	name := c.Val()
	if !c.NextArg() {
		return c.ArgErr()
	}
	d, err := time.ParseDuration(c.Val())
	if err != nil {
		return c.Errf("%s: %v", name, err)
	}
	if d < 0 {
		return c.Errf("%s can't be negative: %s", name, d)
	}
	*dst = d
	return nil
}

// flagArg is a property without arguments that switches *dst on.
func flagArg(c *dnsserver.Controller, dst *bool) error {
	if c.NextArg() {
		return c.ArgErr()
	}
	*dst = true
	return nil
}

// rcodesArg reads one or more response codes by name (NXDOMAIN, ...).
func rcodesArg(c *dnsserver.Controller) ([]int, error) {
	args := c.RemainingArgs()
	if len(args) == 0 {
		return nil, c.ArgErr()
	}
	rcs := make([]int, 0, len(args))
	for _, rcode := range args {
		rc, ok := dns.StringToRcode[strings.ToUpper(rcode)]
		if !ok {
			return nil, c.Errf("%s is not a valid rcode", rcode)
		}
		rcs = append(rcs, rc)
	}
	return rcs, nil
}

// hostPortOrFile turns each TO into upstream addresses, as CoreDNS's
// parse.HostPortOrFile: "IP", "IP:port" and "scheme://IP[:port]" (port 53,
// or 853 for tls://), or a resolv.conf-style file whose nameserver lines
// are used with port 53.
func hostPortOrFile(s ...string) ([]string, error) {
	var servers []string
	for _, h := range s {
		trans, host := plugin.TransportPrefix(h)
		if host == "" {
			return servers, fmt.Errorf("invalid address: %q", h)
		}
		if trans == "unix" {
			servers = append(servers, trans+"://"+host)
			continue
		}
		addr, _, err := net.SplitHostPort(host)
		if err != nil {
			if net.ParseIP(stripZone(host)) == nil {
				ss, err := tryFile(host)
				if err == nil {
					servers = append(servers, ss...)
					continue
				}
				return servers, fmt.Errorf("not an IP address or file: %q", host)
			}
			var ss string
			switch trans {
			case transDNS:
				ss = net.JoinHostPort(host, "53")
			case transTLS:
				ss = transTLS + "://" + net.JoinHostPort(host, "853")
			case "quic":
				ss = "quic://" + net.JoinHostPort(host, "853")
			case "grpc":
				ss = "grpc://" + net.JoinHostPort(host, "443")
			case "https", "h3":
				ss = trans + "://" + net.JoinHostPort(host, "443")
			}
			servers = append(servers, ss)
			continue
		}
		if net.ParseIP(stripZone(addr)) == nil {
			ss, err := tryFile(host)
			if err == nil {
				servers = append(servers, ss...)
				continue
			}
			return servers, fmt.Errorf("not an IP address or file: %q", host)
		}
		servers = append(servers, h)
	}
	if len(servers) == 0 {
		return servers, errors.New("no nameservers found")
	}
	return servers, nil
}

func stripZone(host string) string {
	if i := strings.LastIndex(host, "%"); i >= 0 {
		return host[:i]
	}
	return host
}

// tryFile reads the nameservers of a resolv.conf-style file.
func tryFile(s string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(s)
	if err != nil {
		return nil, err
	}
	servers := []string{}
	for _, ns := range cfg.Servers {
		servers = append(servers, net.JoinHostPort(stripZone(ns), cfg.Port))
	}
	return servers, nil
}

// newTLSConfigFromArgs is CoreDNS's pkg/tls.NewTLSConfigFromArgs: no
// argument (system CAs), CA, CERT KEY, or CERT KEY CA.
func newTLSConfigFromArgs(args ...string) (*tls.Config, error) {
	var certPath, keyPath, caPath string
	switch len(args) {
	case 0:
	case 1:
		caPath = args[0]
	case 2:
		certPath, keyPath = args[0], args[1]
	case 3:
		certPath, keyPath, caPath = args[0], args[1], args[2]
	default:
		return nil, fmt.Errorf("maximum of three arguments allowed for TLS config, found %d", len(args))
	}
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		MaxVersion: tls.VersionTLS13,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		},
	}
	if certPath != "" {
		cert, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, fmt.Errorf("could not load TLS cert: %s", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if caPath != "" {
		pem, err := os.ReadFile(filepath.Clean(caPath))
		if err != nil {
			return nil, fmt.Errorf("error reading %s: %s", caPath, err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("could not read root certs from %s", caPath)
		}
		cfg.RootCAs = roots
	}
	return cfg, nil
}
