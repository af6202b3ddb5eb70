// Package prometheus is the prometheus plugin: it serves the process's
// metrics on /metrics (default localhost:9153) and counts every query of
// its server block with CoreDNS's server metrics
// (coredns_dns_requests_total, coredns_dns_request_duration_seconds,
// coredns_dns_request_size_bytes, coredns_dns_response_size_bytes,
// coredns_dns_responses_total, coredns_dns_do_requests_total,
// coredns_plugin_enabled, coredns_panics_total, coredns_build_info). It
// also reports the queries the server answers itself (zone "dropped").
// It owns these metrics and their HTTP endpoint; other plugins register
// their own metrics on the same registry (dnsserver.Env.Registerer).
package prometheus

import (
	"fmt"
	"net"
	"sync"

	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// DefaultAddr is where metrics are served without an address, as CoreDNS.
const DefaultAddr = "localhost:9153"

func init() { dnsserver.Register("prometheus", setup) }

var (
	defaultRegOnce sync.Once
	defaultReg     *prom.Registry
)

// registry picks where metrics go and what /metrics serves: the
// environment's registry, or, when it has none, one of the process with
// the Go and process collectors (as CoreDNS's default registry).
func registry(env *dnsserver.Env) (prom.Registerer, prom.Gatherer) {
	reg, gath := env.Registerer, env.Gatherer
	if reg == nil && gath == nil {
		defaultRegOnce.Do(func() {
			defaultReg = prom.NewRegistry()
			defaultReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		})
		return defaultReg, defaultReg
	}
	if gath == nil {
		if g, ok := reg.(prom.Gatherer); ok {
			gath = g
		} else {
			gath = prom.NewRegistry()
		}
	}
	return reg, gath
}

func setup(c *dnsserver.Controller) error {
	addr, err := parse(c)
	if err != nil {
		return plugin.Error("prometheus", err)
	}
	reg, gath := registry(c.Env)
	v := varsFor(reg)
	m := &Metrics{Addr: addr, zones: c.Config.Zones, v: v}
	c.SetMonitor(monitor{v})
	inst := c.Instance()
	cfg := c.Config
	c.OnStartup(func() error {
		bound, release, err := dnsserver.ServeHTTP(m.Addr, "/metrics", promhttp.HandlerFor(gath, promhttp.HandlerOpts{}))
		if err != nil {
			return plugin.Error("prometheus", fmt.Errorf("serving metrics on %s: %w", m.Addr, err))
		}
		m.bound, m.release = bound, release
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.enabledGen != inst { // the first block of a new instance: forget the old one's
			v.pluginEnabled.Reset()
			v.enabledGen = inst
		}
		for _, s := range cfg.ServerAddrs() {
			for _, h := range cfg.Handlers() {
				v.pluginEnabled.WithLabelValues(s, cfg.Zone, "", h.Name()).Set(1)
			}
		}
		return nil
	})
	c.OnShutdown(func() error {
		if m.release != nil {
			m.release()
		}
		return nil
	})
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		m.Next = next
		if next != nil {
			m.next = next.Name()
		}
		return m
	})
	return nil
}

func parse(c *dnsserver.Controller) (string, error) {
	addr := DefaultAddr
	i := 0
	for c.Next() {
		if i > 0 {
			return "", plugin.ErrOnce
		}
		i++
		args := c.RemainingArgs()
		switch len(args) {
		case 0:
		case 1:
			addr = args[0]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return "", c.Err(err.Error())
			}
		default:
			return "", c.ArgErr()
		}
	}
	return addr, nil
}
