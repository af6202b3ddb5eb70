// Package reload is the reload plugin: it checks the Corefile every
// INTERVAL (± JITTER) and, when its parsed content changed (SHA512 of the
// server blocks, so comments and blank lines do not count and imported
// files do), reloads the server with it; a Corefile that fails keeps the
// running one and is logged. Metrics: coredns_reload_failed_total,
// coredns_reload_version_info{hash, value}. It owns only the watching;
// dnsserver swaps the instances.
package reload

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// CoreDNS's defaults and minimums.
const (
	DefaultInterval = 30 * time.Second
	DefaultJitter   = 15 * time.Second
	MinInterval     = 2 * time.Second
	MinJitter       = 1 * time.Second
)

// minInterval is the smallest interval accepted; tests lower it.
var minInterval, minJitter = MinInterval, MinJitter

func init() { dnsserver.Register("reload", setup) }

var (
	mu       sync.Mutex
	watchers = map[*dnsserver.Instance]*watcher{}
)

func setup(c *dnsserver.Controller) error {
	interval, err := parse(c)
	if err != nil {
		return plugin.Error("reload", err)
	}
	inst := c.Instance()
	log := c.Env.Log().With("plugin", "reload")
	m := metricsFor(c.Env.Registerer)
	// One watcher per instance, made by the first block that starts.
	c.OnStartup(func() error {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := watchers[inst]; ok {
			return nil
		}
		w := &watcher{inst: inst, interval: interval, log: log, metrics: m, quit: make(chan struct{})}
		if err := w.start(); err != nil {
			return err
		}
		watchers[inst] = w
		return nil
	})
	c.OnShutdown(func() error {
		mu.Lock()
		w := watchers[inst]
		delete(watchers, inst)
		mu.Unlock()
		if w != nil {
			w.stop()
		}
		return nil
	})
	return nil
}

// parse reads `reload [INTERVAL] [JITTER]` and returns the interval with
// its jitter applied.
func parse(c *dnsserver.Controller) (time.Duration, error) {
	c.Next() // "reload"
	args := c.RemainingArgs()
	if len(args) > 2 {
		return 0, c.ArgErr()
	}
	i := DefaultInterval
	if len(args) > 0 {
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return 0, c.Err(err.Error())
		}
		i = d
	}
	if i < minInterval {
		return 0, c.Errf("interval value must be greater or equal to %v", minInterval)
	}
	j := DefaultJitter
	if len(args) > 1 {
		d, err := time.ParseDuration(args[1])
		if err != nil {
			return 0, c.Err(err.Error())
		}
		j = d
	}
	if j < minJitter {
		return 0, c.Errf("jitter value must be greater or equal to %v", minJitter)
	}
	if j > i/2 {
		j = i / 2
	}
	if c.NextBlock() {
		return 0, c.Err(fmt.Sprintf("unexpected block after reload: %q", c.Val()))
	}
	jitter := time.Duration(rand.Int64N(j.Nanoseconds()) - j.Nanoseconds()/2)
	return i + jitter, nil
}
