// Package dnsserver owns the DNS server of Switchboard: it turns a
// Corefile (CoreDNS's syntax, parsed by CoreDNS's own caddyfile parser)
// into server blocks, sets up each key's plugins in the fixed order of
// Directives (CoreDNS's plugin.cfg order, not the order written), builds
// the chains, listens on UDP and TCP, and routes each query to the block
// with the most specific zone, answering malformed and unserved queries
// itself as CoreDNS does. It runs instances (Instance) and replaces them
// on reload without dropping a query (Service), and shares plugins' HTTP
// endpoints across reloads (ServeHTTP). Plugins register their setup here
// (Register) and receive a Controller while the Corefile is read. It holds
// no plugin logic and must not import any plugin.
package dnsserver

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync"

	"github.com/coredns/caddy/caddyfile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// Directives lists every plugin in the order its handler runs in a chain,
// as CoreDNS's plugin.cfg orders them (the external plugins git and alias
// placed where their own READMEs ask). Only names listed here may appear
// in a Corefile; it lists exactly the plugins Switchboard has (CoreDNS
// plugins we do not have, such as loop or bufsize, are unknown directives).
// A test binary may append a test-only directive before registering it
// (dnstest.RegisterAnswer adds "testanswer" this way).
var Directives = []string{
	"reload",
	"bind",
	"ready",
	"health",
	"prometheus",
	"errors",
	"log",
	"acl",
	"any",
	"loadbalance",
	"cache",
	"git",
	"alias",
	"hosts",
	"kubernetes",
	"file",
	"forward",
}

// SetupFunc reads a plugin's lines of a server block and configures it.
type SetupFunc func(c *Controller) error

var (
	regMu    sync.RWMutex
	registry = map[string]SetupFunc{}
)

// Register makes a plugin's setup known under its directive name. Plugins
// call it from init; a name missing from Directives panics at init, which
// is a programming error, never an input one.
func Register(name string, setup SetupFunc) {
	regMu.Lock()
	defer regMu.Unlock()
	found := false
	for _, d := range Directives {
		if d == name {
			found = true
		}
	}
	if !found {
		panic(fmt.Sprintf("dnsserver: plugin %q is not in Directives", name))
	}
	registry[name] = setup
}

// setupFor returns the registered setup of a directive.
func setupFor(name string) (SetupFunc, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	f, ok := registry[name]
	return f, ok
}

// Registered lists the directive names that have a setup, sorted.
func Registered() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []string
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Env is what the process gives every server and plugin: the store the
// kubernetes plugin reads, where metrics go, and the logger.
type Env struct {
	Store      *cluster.Store        // nil when no source of cluster objects runs
	Registerer prometheus.Registerer // nil: no metrics registered
	Gatherer   prometheus.Gatherer   // what the prometheus plugin serves
	Logger     *slog.Logger
	// QueryLog is where the log plugin writes its query lines (CoreDNS
	// writes them to standard output); nil means os.Stdout.
	QueryLog io.Writer
}

// Log returns the environment's logger, slog.Default() when unset.
func (e *Env) Log() *slog.Logger {
	if e == nil || e.Logger == nil {
		return slog.Default()
	}
	return e.Logger
}

// Config is one server block key after setup: its zone and address and
// the plugins to chain.
type Config struct {
	Zone        string   // this key's zone, normalized ("." for the root)
	Zones       []string // every zone of the block (its keys), normalized
	Port        string   // "53" unless the key says otherwise
	ListenHosts []string // from bind; empty = all addresses
	Transport   string   // "dns"
	Filename    string   // the Corefile the block came from
	Line        int      // the line of the block's first key (0 when unknown)
	// Stacktrace makes the server log a stack trace with a recovered
	// panic (the errors plugin's stacktrace option).
	Stacktrace bool

	plugins  map[string][]plugin.Plugin // by directive
	handlers map[string]plugin.Handler  // built chain members, by name
	order    []plugin.Handler           // built chain members, first first
	chain    plugin.Handler             // the first handler; nil without plugins
	chaos    bool                       // a plugin that answers CH class queries is in the chain
	key      string                     // the normalized key, dns://zone:port
}

// Handler returns the built handler of a plugin in this block's chain (nil
// when the block has none), as CoreDNS's dnsserver.GetConfig(c).Handler
// does; used after the chain is built, e.g. by ready and health to find the
// plugins they ask.
func (c *Config) Handler(name string) plugin.Handler { return c.handlers[name] }

// Handlers returns every built handler of the chain, in chain order.
func (c *Config) Handlers() []plugin.Handler {
	return append([]plugin.Handler(nil), c.order...)
}

// ServerAddrs returns the metric label of every address this key is
// served on, as CoreDNS's "server" label: "dns://:53" without bind,
// "dns://127.0.0.1:53" with it.
func (c *Config) ServerAddrs() []string {
	hosts := c.ListenHosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, c.Transport+"://"+net.JoinHostPort(h, c.Port))
	}
	return out
}

// Controller is what a plugin's setup gets: the Corefile tokens of its
// directive (a caddyfile.Dispenser: Next, NextArg, NextBlock, Val,
// RemainingArgs, ArgErr, Errf, File, Line ...), the server block it is in,
// the process environment, and the hooks to run at start and stop.
type Controller struct {
	caddyfile.Dispenser
	Directive string
	Config    *Config // the server block being set up (one per key)
	Env       *Env
	Key       string // the server block key being set up, e.g. "cluster.local:53"
	Index     int    // which key of the block (0 for the first); plugins that must run once per block check it

	instance *Instance
}

// AddPlugin adds p to this block's chain, in the directive's place.
func (c *Controller) AddPlugin(p plugin.Plugin) {
	if c.Config.plugins == nil {
		c.Config.plugins = map[string][]plugin.Plugin{}
	}
	c.Config.plugins[c.Directive] = append(c.Config.plugins[c.Directive], p)
}

// OnStartup runs f once every server block is set up, before serving; an
// error aborts the start (or the reload, which keeps the old servers).
func (c *Controller) OnStartup(f func() error) {
	dir := c.Directive
	c.instance.onStartup = append(c.instance.onStartup, func() error {
		err := f()
		if err != nil && !strings.Contains(err.Error(), "plugin/"+dir) {
			err = plugin.Error(dir, err)
		}
		return err
	})
}

// OnShutdown runs f when the servers of this instance stop: at exit, and
// after a reload's new instance has taken over (or when a reload fails
// after this instance's OnStartup ran).
func (c *Controller) OnShutdown(f func() error) {
	c.instance.onShutdown = append(c.instance.onShutdown, f)
}

// OnRestart runs f when this instance ends without the process ending: a
// reload replaced it (after its OnShutdown hooks), or its start failed.
// Plugins that hold something until the process ends (health's listener)
// release it here and in OnFinalShutdown, as CoreDNS's OnRestart.
func (c *Controller) OnRestart(f func() error) {
	c.instance.onRestart = append(c.instance.onRestart, f)
}

// OnFinalShutdown runs f only when the process stops, not on reload; the
// servers keep answering while it runs (health's lameduck sleeps here).
func (c *Controller) OnFinalShutdown(f func() error) {
	c.instance.onFinalShutdown = append(c.instance.onFinalShutdown, f)
}

// Instance returns the instance being set up: plugins that act on the
// whole instance (reload, prometheus) keep it.
func (c *Controller) Instance() *Instance { return c.instance }

// SetMonitor makes m receive what the servers of this instance answer
// themselves (queries no chain serves, panics); the prometheus plugin
// sets it. The last one set wins.
func (c *Controller) SetMonitor(m Monitor) { c.instance.monitor = m }
