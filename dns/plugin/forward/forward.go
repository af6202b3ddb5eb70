// Package forward is the DNS plugin "forward" of Switchboard, a port of
// CoreDNS 1.14.1's plugin/forward (with plugin/pkg/proxy): it sends the
// queries of its FROM zone to upstream resolvers over UDP, TCP or DNS over
// TLS, reuses upstream connections, health checks upstreams after errors
// and picks them by policy. It owns only its package; the server core
// (dns/dnsserver) runs it through the Controller API and it must not touch
// other plugins' state.
package forward

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

const defaultTimeout = 5 * time.Second

// Forward is one "forward FROM TO..." stanza.
type Forward struct {
	concurrent int64 // atomic; first for alignment

	proxies    []*Proxy
	p          Policy
	hcInterval time.Duration

	from    string
	ignored []string

	nextAlternateRcodes []int

	tlsConfig                  *tls.Config
	tlsServerName              string
	maxfails                   uint32
	expire                     time.Duration
	maxIdleConns               int
	maxConcurrent              int64
	failfastUnhealthyUpstreams bool
	failoverRcodes             []int
	maxConnectAttempts         uint32

	opts    Options
	timeout time.Duration // the whole query's deadline, 5s

	// ErrLimitExceeded is returned (with REFUSED) when max_concurrent
	// queries are already in flight.
	ErrLimitExceeded error

	m   *metrics
	log *slog.Logger

	Next plugin.Handler
}

// New returns a Forward with CoreDNS's defaults: FROM ".", max_fails 2,
// expire 10s, policy random, health checks every 0.5s with ". IN NS" RD.
func New() *Forward {
	return &Forward{
		maxfails:   2,
		tlsConfig:  new(tls.Config),
		expire:     defaultExpire,
		p:          new(random),
		from:       ".",
		hcInterval: hcInterval,
		timeout:    defaultTimeout,
		opts:       Options{HCRecursionDesired: true, HCDomain: "."},
		m:          newMetrics(nil),
		log:        slog.Default(),
	}
}

// SetProxy adds an upstream and starts it.
func (f *Forward) SetProxy(p *Proxy) {
	f.proxies = append(f.proxies, p)
	p.Start(f.hcInterval)
}

// Len is the number of upstreams.
func (f *Forward) Len() int { return len(f.proxies) }

// Name implements plugin.Handler.
func (f *Forward) Name() string { return "forward" }

// From is the zone this stanza forwards.
func (f *Forward) From() string { return f.from }

// Proxies returns the upstreams in the order written.
func (f *Forward) Proxies() []*Proxy { return f.proxies }

// OnStartup starts health checking and connection expiry.
func (f *Forward) OnStartup() error {
	for _, p := range f.proxies {
		p.Start(f.hcInterval)
	}
	return nil
}

// OnShutdown stops health checks and closes pooled connections.
func (f *Forward) OnShutdown() error {
	for _, p := range f.proxies {
		p.Stop()
	}
	return nil
}

// ServeDNS implements plugin.Handler with CoreDNS's algorithm: try the
// upstreams in policy order, skipping those down (more than max_fails
// failed health checks) unless all are, until one answers or 5s pass.
func (f *Forward) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	if !f.match(&state) {
		return plugin.NextOrFailure(f.Name(), f.Next, ctx, w, r)
	}

	if f.maxConcurrent > 0 {
		count := atomic.AddInt64(&f.concurrent, 1)
		defer atomic.AddInt64(&f.concurrent, -1)
		if count > f.maxConcurrent {
			f.m.maxConcurrentRejects.Inc()
			return dns.RcodeRefused, f.ErrLimitExceeded
		}
	}

	fails := 0
	failovers := 0
	var upstreamErr error
	i := 0
	list := f.List()
	deadline := time.Now().Add(f.timeout)
	connectAttempts := uint32(0)

	for time.Now().Before(deadline) && ctx.Err() == nil && (f.maxConnectAttempts == 0 || connectAttempts < f.maxConnectAttempts) {
		if i >= len(list) {
			i = 0
			fails = 0
		}
		proxy := list[i]
		i++
		if proxy.Down(f.maxfails) {
			fails++
			if fails < len(f.proxies) {
				continue
			}
			f.m.healthcheckBroken.Inc()
			if f.failfastUnhealthyUpstreams {
				break
			}
			// All upstreams are down: assume health checking is broken and
			// try a random one.
			proxy = (&random{}).List(f.proxies)[0]
		}

		var (
			ret *dns.Msg
			err error
		)
		opts := f.opts
		for {
			ret, err = proxy.Connect(ctx, &state, opts)
			if err == ErrCachedClosed { // the upstream closed a pooled TCP conn
				continue
			}
			// Truncated over UDP with prefer_udp: ask again over TCP.
			if ret != nil && ret.Truncated && !opts.ForceTCP && opts.PreferUDP {
				opts.ForceTCP = true
				continue
			}
			break
		}

		upstreamErr = err
		if err != nil {
			if f.maxfails != 0 {
				proxy.Healthcheck()
			}
			if f.maxConnectAttempts > 0 {
				connectAttempts++
				if connectAttempts >= f.maxConnectAttempts {
					break
				}
			}
			if fails < len(f.proxies) {
				continue
			}
			break
		}

		// An answer to another question: FORMERR, as CoreDNS.
		if !match(&state, ret) {
			formerr := new(dns.Msg)
			formerr.SetRcode(r, dns.RcodeFormatError)
			w.WriteMsg(formerr)
			return 0, nil
		}

		// failover: another upstream for these rcodes, until every
		// upstream has been asked; then the last answer is returned (as
		// the README says; CoreDNS 1.14.1's loop resets its count at the
		// end of the list and retries until the 5s deadline instead).
		tryNext := false
		for _, rc := range f.failoverRcodes {
			if rc == ret.Rcode && failovers+1 < len(f.proxies) {
				tryNext = true
			}
		}
		if tryNext {
			failovers++
			fails++
			continue
		}

		for _, rc := range f.nextAlternateRcodes {
			if rc == ret.Rcode && f.Next != nil {
				if _, ok := f.Next.(*Forward); ok {
					return plugin.NextOrFailure(f.Name(), f.Next, ctx, w, r)
				}
			}
		}

		w.WriteMsg(ret)
		return 0, nil
	}

	if upstreamErr != nil {
		return dns.RcodeServerFailure, upstreamErr
	}
	return dns.RcodeServerFailure, ErrNoHealthy
}

// match is CoreDNS's request.Match: one question, the QR bit, the same
// name (case-insensitively) and type.
func match(state *request.Request, reply *dns.Msg) bool {
	if len(reply.Question) != 1 || !reply.Response {
		return false
	}
	if !strings.EqualFold(reply.Question[0].Name, state.Name()) {
		return false
	}
	return reply.Question[0].Qtype == state.QType()
}

func nameMatches(zone, child string) bool {
	if strings.EqualFold(zone, child) {
		return true
	}
	return dns.IsSubDomain(zone, child)
}

func (f *Forward) match(state *request.Request) bool {
	name := state.Name()
	return nameMatches(f.from, name) && f.isAllowedDomain(name)
}

func (f *Forward) isAllowedDomain(name string) bool {
	if strings.EqualFold(name, f.from) {
		return true
	}
	for _, ignore := range f.ignored {
		if nameMatches(ignore, name) {
			return false
		}
	}
	return true
}

// ForceTCP tells whether TCP is used for UDP clients too.
func (f *Forward) ForceTCP() bool { return f.opts.ForceTCP }

// PreferUDP tells whether UDP is used for TCP clients too.
func (f *Forward) PreferUDP() bool { return f.opts.PreferUDP }

// List orders the upstreams for one query by the policy.
func (f *Forward) List() []*Proxy { return f.p.List(f.proxies) }
