package forward

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// healthChecker sends ". IN NS" (or the health_check domain) to an
// upstream, as CoreDNS's pkg/proxy dnsHc: any answer with a header is
// healthy (REFUSED, SERVFAIL, ... included); a network error or timeout is
// a failure.
type healthChecker struct {
	c                *dns.Client
	recursionDesired bool
	domain           string
	proxyName        string
}

func newHealthChecker(proxyName, trans string, recursionDesired bool, domain string) *healthChecker {
	c := &dns.Client{Net: "udp", ReadTimeout: time.Second, WriteTimeout: time.Second}
	if trans == transTLS {
		c.Net = "tcp-tls"
	}
	return &healthChecker{c: c, recursionDesired: recursionDesired, domain: domain, proxyName: proxyName}
}

func (h *healthChecker) setTLSConfig(cfg *tls.Config) {
	h.c.Net = "tcp-tls"
	h.c.TLSConfig = cfg
}

func (h *healthChecker) setTCPTransport() { h.c.Net = "tcp" }

// Check probes p once, counting a failure (and the
// coredns_proxy_healthcheck_failures_total metric) or resetting p's fails.
func (h *healthChecker) Check(p *Proxy) error {
	if err := h.send(p.addr); err != nil {
		p.m.healthcheckFailures.WithLabelValues(p.proxyName, p.addr).Inc()
		p.incrementFails()
		return err
	}
	atomic.StoreUint32(&p.fails, 0)
	return nil
}

func (h *healthChecker) send(addr string) error {
	ping := new(dns.Msg)
	ping.SetQuestion(h.domain, dns.TypeNS)
	ping.RecursionDesired = h.recursionDesired
	m, _, err := h.c.Exchange(ping, addr)
	// Something with a header came back: healthy.
	if err != nil && m != nil && (m.Response || m.Opcode == dns.OpcodeQuery) {
		err = nil
	}
	return err
}

// probe runs one check function at a time, again every interval until it
// succeeds, as CoreDNS's pkg/up.Probe; Stop ends a running loop.
type probe struct {
	mu         sync.Mutex
	inprogress int
	interval   time.Duration
	stop       chan struct{}
	wg         sync.WaitGroup
}

const (
	probeIdle = iota
	probeActive
	probeStopped
)

func newProbe() *probe { return &probe{interval: hcInterval, stop: make(chan struct{})} }

// Do runs f in the background unless a run is already going on.
func (p *probe) Do(f func() error) {
	p.mu.Lock()
	if p.inprogress != probeIdle {
		p.mu.Unlock()
		return
	}
	p.inprogress = probeActive
	interval := p.interval
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		for f() != nil {
			t := time.NewTimer(interval)
			select {
			case <-t.C:
			case <-p.stop:
				t.Stop()
				return
			}
		}
		p.mu.Lock()
		if p.inprogress == probeActive {
			p.inprogress = probeIdle
		}
		p.mu.Unlock()
	}()
}

// Start sets the interval between checks.
func (p *probe) Start(interval time.Duration) {
	p.mu.Lock()
	p.interval = interval
	p.mu.Unlock()
}

// Stop ends health checking for good and waits for a running check.
func (p *probe) Stop() {
	p.mu.Lock()
	if p.inprogress != probeStopped {
		p.inprogress = probeStopped
		close(p.stop)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
