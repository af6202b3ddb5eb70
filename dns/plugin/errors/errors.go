package errors

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/plugin"
	"github.com/switchboard-dev/switchboard/dns/request"
)

// Handler logs the errors of the rest of the chain.
type Handler struct {
	Next     plugin.Handler
	patterns []*pattern
	stopped  atomic.Bool
	log      *slog.Logger
}

// pattern consolidates the errors that match re: the first starts a
// period, at its end one line says how many there were.
type pattern struct {
	period    time.Duration
	re        *regexp.Regexp
	level     slog.Level
	showFirst bool
	log       *slog.Logger

	count atomic.Uint32
	mu    sync.Mutex
	timer *time.Timer
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return "errors" }

// ServeDNS implements plugin.Handler.
func (h *Handler) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	rcode, err := plugin.NextOrFailure(h.Name(), h.Next, ctx, w, r)
	if err == nil {
		return rcode, err
	}
	strErr := err.Error()
	state := request.Request{W: w, Req: r}
	level := slog.LevelError
	for _, p := range h.patterns {
		if !p.re.MatchString(strErr) {
			continue
		}
		if h.consolidate(p) {
			return rcode, err
		}
		level = p.level
		break
	}
	h.log.Log(ctx, level, fmt.Sprintf("%d %s %s: %s", rcode, state.Name(), state.Type(), strErr))
	return rcode, err
}

// consolidate counts one error of p; it returns false when the error
// must be logged now (the plugin is stopping, or show_first and it is
// the first of its period).
func (h *Handler) consolidate(p *pattern) bool {
	if h.stopped.Load() {
		return false
	}
	if p.count.Add(1) == 1 {
		t := time.AfterFunc(p.period, p.flush)
		p.mu.Lock()
		p.timer = t
		p.mu.Unlock()
		if h.stopped.Load() && t.Stop() {
			p.flush()
		}
		return !p.showFirst
	}
	return true
}

// flush writes the period's summary line.
func (p *pattern) flush() {
	n := p.count.Swap(0)
	if n == 0 {
		return
	}
	if n > 1 || !p.showFirst {
		p.log.Log(context.Background(), p.level, fmt.Sprintf("%d errors like '%s' occurred in last %s", n, p.re.String(), p.period))
	}
}

// stop writes what is pending and logs every later error at once.
func (h *Handler) stop() {
	h.stopped.Store(true)
	for _, p := range h.patterns {
		p.mu.Lock()
		t := p.timer
		p.mu.Unlock()
		if t != nil && t.Stop() {
			p.flush()
		}
	}
}
