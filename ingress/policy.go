package ingress

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/upstream"
)

// policy is what the switchboard.dev/* annotations of one Ingress ask
// of its requests, ready to apply: the parsed annotations, the loaded
// htpasswd data, the rate limiter. A policy is kept across syncs while
// its annotations (and auth Secret) do not change, so that limiter state
// and verified credentials survive unrelated changes.
type policy struct {
	cfg     *annotations.Config
	auth    *annotations.Htpasswd
	limiter *ipLimiter
	proto   upstream.Protocol
	// balance is the load-balance annotation's choice (ownBalance: set);
	// without it the controller's default applies.
	balance    upstream.Balance
	ownBalance bool
	// fast: the fast path may serve the Ingress's requests (it applies
	// rewrite-target, ssl-redirect, the timeouts, limit-rps, the source
	// ranges and load-balance as the net/http path does; a GET or HEAD
	// without body never meets proxy-body-size, and acme concerns
	// certificates only). Cookie affinity, basic auth and other backend
	// protocols stay on the net/http path.
	fast        bool
	fingerprint string
}

// refusal is an Ingress left out for its annotations.
type refusal struct {
	ing *networkingv1.Ingress
	msg string
}

// policies parses the annotations of the Ingresses and returns the
// accepted Ingresses, their policies (reusing old ones that did not
// change) and the refused Ingresses with the reason.
func buildPolicies(s *cluster.Store, ings []*networkingv1.Ingress, old map[types.NamespacedName]*policy) ([]*networkingv1.Ingress, map[types.NamespacedName]*policy, []refusal) {
	var ok []*networkingv1.Ingress
	var refused []refusal
	out := map[types.NamespacedName]*policy{}
	for _, ing := range ings {
		nn := types.NamespacedName{Namespace: ing.Namespace, Name: ing.Name}
		fp := fingerprint(ing.Annotations)
		if fp == "" {
			ok = append(ok, ing)
			continue
		}
		cfg, errs := annotations.Parse(ing.Annotations)
		if errs != nil {
			refused = append(refused, refusal{ing, fmt.Sprintf("Ingress %s/%s is not served: bad annotation: %s", ing.Namespace, ing.Name, errs.ToAggregate().Error())})
			continue
		}
		var secret *corev1.Secret
		if cfg.BasicAuth != nil {
			sec, err := cluster.Get[*corev1.Secret](s, ing.Namespace, cfg.BasicAuth.Secret)
			if err != nil {
				refused = append(refused, refusal{ing, fmt.Sprintf("Ingress %s/%s is not served: metadata.annotations[%s%s]: Secret %s/%s: %v",
					ing.Namespace, ing.Name, annotations.Prefix, annotations.AuthSecret, ing.Namespace, cfg.BasicAuth.Secret, err)})
				continue
			}
			secret = sec
			fp += "|secret=" + string(sec.UID) + "/" + sec.ResourceVersion
		}
		if p := old[nn]; p != nil && p.fingerprint == fp {
			out[nn] = p
			ok = append(ok, ing)
			continue
		}
		p := &policy{cfg: cfg, fingerprint: fp}
		if secret != nil {
			h, err := annotations.ParseHtpasswd(secret.Data[annotations.HtpasswdKey])
			if err != nil {
				refused = append(refused, refusal{ing, fmt.Sprintf("Ingress %s/%s is not served: metadata.annotations[%s%s]: Secret %s/%s key %q: %v",
					ing.Namespace, ing.Name, annotations.Prefix, annotations.AuthSecret, ing.Namespace, cfg.BasicAuth.Secret, annotations.HtpasswdKey, err)})
				continue
			}
			p.auth = h
		}
		if cfg.RateLimit != nil {
			p.limiter = newIPLimiter(*cfg.RateLimit)
		}
		switch cfg.BackendProtocol {
		case annotations.HTTPS:
			p.proto = upstream.HTTPS
		case annotations.GRPC, annotations.H2C:
			p.proto = upstream.H2C
		}
		if cfg.LoadBalance != "" {
			p.balance, p.ownBalance = toBalance(cfg.LoadBalance), true
		}
		p.fast = p.proto == upstream.HTTP1 && cfg.Affinity == nil && cfg.BasicAuth == nil && cfg.Canary == nil
		out[nn] = p
		ok = append(ok, ing)
	}
	return ok, out, refused
}

// toBalance is the upstream spelling of a load-balance value.
func toBalance(lb annotations.LoadBalance) upstream.Balance {
	if lb == annotations.LeastRequest {
		return upstream.LeastRequest
	}
	return upstream.RoundRobin
}

// fingerprint is the switchboard annotations of an object, in order ("" when
// there are none).
func fingerprint(ann map[string]string) string {
	var keys []string
	for k := range ann {
		if strings.HasPrefix(k, annotations.Prefix) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%q=%q;", k, ann[k])
	}
	return b.String()
}

// ipLimiter is a token bucket per client address. Addresses idle for a
// while are forgotten when the table grows (bounded memory).
type ipLimiter struct {
	rl annotations.RateLimit
	mu sync.Mutex
	m  map[netip.Addr]*limEntry
}

type limEntry struct {
	lim  *rate.Limiter
	last time.Time
}

const (
	limiterMaxClients = 100000
	limiterIdle       = 5 * time.Minute
)

func newIPLimiter(rl annotations.RateLimit) *ipLimiter {
	return &ipLimiter{rl: rl, m: map[netip.Addr]*limEntry{}}
}

// allow takes a token for the client.
func (l *ipLimiter) allow(a netip.Addr, now time.Time) bool {
	l.mu.Lock()
	e := l.m[a]
	if e == nil {
		if len(l.m) >= limiterMaxClients {
			for k, v := range l.m {
				if now.Sub(v.last) > limiterIdle {
					delete(l.m, k)
				}
			}
			if len(l.m) >= limiterMaxClients {
				clear(l.m) // under a flood of addresses: forget rather than grow
			}
		}
		e = &limEntry{lim: rate.NewLimiter(rate.Limit(l.rl.RPS), l.rl.Burst)}
		l.m[a] = e
	}
	e.last = now
	ok := e.lim.AllowN(now, 1)
	l.mu.Unlock()
	return ok
}
