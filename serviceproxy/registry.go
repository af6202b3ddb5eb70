package serviceproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ModeConfig is what a mode's factory gets to build its Backend. A backend
// acts on the network namespace the process (or the calling goroutine's
// locked OS thread) is in when Sync or Cleanup runs: there is no namespace
// field, run the proxy inside the namespace it must program.
type ModeConfig struct {
	NodeName     string
	NodeIPs      []netip.Addr   // addresses NodePorts answer on (empty: the backend's default)
	ClusterCIDRs []netip.Prefix // pod ranges; traffic from outside them is masqueraded
	Logger       *slog.Logger   // never nil when built through NewMode
	Metrics      *Metrics       // never nil when built through NewMode
	// Registerer is where a mode registers metrics of its own (nil: don't
	// register). The shared kube-proxy metrics are in Metrics.
	Registerer prometheus.Registerer
	// DryRun tells the factory that the backend will only Render (for
	// --dry-run): it must not need root or kernel features.
	DryRun bool
	// IPTablesBackend is the iptables mode's backend (kube-proxy
	// --iptables-backend): "auto" (or ""), "nft" or "legacy". Other
	// modes ignore it.
	IPTablesBackend string
}

// ModeFactory builds a mode's Backend. It must not change the kernel:
// building a backend is side-effect free; only Sync and Cleanup act.
type ModeFactory func(ModeConfig) (Backend, error)

var (
	modesMu sync.RWMutex
	modes   = map[string]ModeFactory{}
)

// RegisterMode makes a proxy mode available by name ("nftables",
// "iptables", "ipvs", "userspace"). Mode packages call it from init;
// serviceproxy/modes/all imports every one. Like database/sql.Register it
// panics when the name is empty, the factory nil or the name taken (a
// programming error, not bad input).
func RegisterMode(name string, f ModeFactory) {
	modesMu.Lock()
	defer modesMu.Unlock()
	if name == "" || f == nil {
		panic("serviceproxy: RegisterMode with an empty name or a nil factory")
	}
	if _, dup := modes[name]; dup {
		panic("serviceproxy: RegisterMode called twice for mode " + name)
	}
	modes[name] = f
}

// Modes lists the registered modes, sorted.
func Modes() []string {
	modesMu.RLock()
	defer modesMu.RUnlock()
	out := make([]string, 0, len(modes))
	for n := range modes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// NewMode builds the backend of a registered mode. A nil Logger becomes
// slog.Default() and a nil Metrics an unregistered set.
func NewMode(name string, cfg ModeConfig) (Backend, error) {
	modesMu.RLock()
	f := modes[name]
	modesMu.RUnlock()
	if f == nil {
		reg := Modes()
		if len(reg) == 0 {
			return nil, fmt.Errorf("proxy mode %q: no mode is registered (import github.com/switchboard-dev/switchboard/serviceproxy/modes/all)", name)
		}
		return nil, fmt.Errorf("proxy mode %q: unknown (registered: %s)", name, strings.Join(reg, ", "))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("mode", name)
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil, name)
	}
	b, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("proxy mode %s: %w", name, err)
	}
	if b == nil {
		return nil, fmt.Errorf("proxy mode %s: the factory returned no backend", name)
	}
	return b, nil
}

// CleanupModes runs Cleanup of every registered mode except those named in
// skip, as kube-proxy removes the other modes' leftovers when it starts
// and removes everything with --cleanup. Every mode is tried; the errors
// are joined, each naming its mode.
func CleanupModes(ctx context.Context, cfg ModeConfig, skip ...string) error {
	var errs []error
	for _, name := range Modes() {
		if contains(skip, name) {
			continue
		}
		b, err := NewMode(name, cfg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := b.Cleanup(ctx); err != nil {
			errs = append(errs, fmt.Errorf("proxy mode %s: cleanup: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
