package dnsserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/caddy/caddyfile"

	"github.com/switchboard-dev/switchboard/dns/plugin"
)

// DefaultPort is the port of a server block key that names none, as
// CoreDNS's; Options.Port overrides it (the command's --dns-port, as
// CoreDNS's -dns.port).
const DefaultPort = "53"

// Options configures how an Instance is built.
type Options struct {
	// Port is the port of keys that name none; "" means DefaultPort.
	Port string
	// Env is given to every plugin; nil means an empty one.
	Env *Env
}

// Instance is one running generation of servers built from one Corefile.
// A reload builds a new Instance and swaps it in.
type Instance struct {
	Corefile        []byte
	Filename        string
	Configs         []*Config
	onStartup       []func() error
	onShutdown      []func() error
	onFinalShutdown []func() error
	onRestart       []func() error

	opts    Options
	env     *Env
	log     *slog.Logger
	servers []*Server
	monitor Monitor
	svc     *Service // the service running this instance; nil when run alone

	inflight atomic.Int64 // queries being served by this instance's chains
	mu       sync.Mutex
	state    int // stateNew, stateRunning, stateStopped
	sets     []*listenerSet
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// NewInstance parses corefile (named filename in errors) and sets up
// every plugin of every server block: it runs each key's directives in
// Directives order and builds each key's chain. Nothing is started: no
// socket is opened and no OnStartup hook has run.
func NewInstance(filename string, corefile []byte, opts Options) (inst *Instance, err error) {
	if opts.Port == "" {
		opts.Port = DefaultPort
	}
	env := opts.Env
	if env == nil {
		env = &Env{}
	}
	inst = &Instance{Corefile: corefile, Filename: filename, opts: opts, env: env, log: env.Log()}
	blocks, err := caddyfile.Parse(filename, bytes.NewReader(corefile), Directives)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%s: no server block", filename)
	}
	lines := keyLines(filename, corefile)
	type block struct {
		sb      caddyfile.ServerBlock
		configs []*Config
	}
	var bs []block
	for _, sb := range blocks {
		b := block{sb: sb}
		var zones []string
		for _, key := range sb.Keys {
			line := lines.find(key)
			zas, err := parseKey(key, opts.Port)
			if err != nil {
				return nil, fmt.Errorf("%s:%d - Error during parsing: server block key %q: %v", filename, line, key, err)
			}
			for _, za := range zas {
				zones = append(zones, za.zone)
				b.configs = append(b.configs, &Config{
					Zone:      za.zone,
					Port:      za.port,
					Transport: "dns",
					Filename:  filename,
					Line:      line,
					key:       za.String(),
				})
			}
		}
		for _, c := range b.configs {
			c.Zones = zones
		}
		bs = append(bs, b)
	}
	for _, b := range bs {
		inst.Configs = append(inst.Configs, b.configs...)
	}

	// Run the setups: directive by directive (so that a plugin's setup
	// sees the Config fields set by the ones before it, as in CoreDNS),
	// block by block, key by key.
	for _, dir := range Directives {
		for _, b := range bs {
			tokens, ok := b.sb.Tokens[dir]
			if !ok {
				continue
			}
			setup, ok := setupFor(dir)
			if !ok {
				return nil, fmt.Errorf("%s:%d - Error during parsing: plugin/%s: this build has no %s plugin", tokenFile(filename, tokens), tokens[0].Line, dir, dir)
			}
			for j, cfg := range b.configs {
				c := &Controller{
					Dispenser: caddyfile.NewDispenserTokens(filename, tokens),
					Directive: dir,
					Config:    cfg,
					Env:       env,
					Key:       cfg.key,
					Index:     j,
					instance:  inst,
				}
				if err := runSetup(setup, c); err != nil {
					return nil, setupError(filename, dir, tokens, err)
				}
			}
		}
	}

	for _, cfg := range inst.Configs {
		cfg.build()
	}
	if err := inst.makeServers(); err != nil {
		return nil, err
	}
	return inst, nil
}

// runSetup calls setup, turning a panic (a bug, but input must never
// crash the process) into an error.
func runSetup(setup SetupFunc, c *Controller) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("setup panicked: %v", r)
		}
	}()
	return setup(c)
}

func tokenFile(filename string, tokens []caddyfile.Token) string {
	if len(tokens) > 0 && tokens[0].File != "" {
		return tokens[0].File
	}
	return filename
}

// setupError makes a setup error name the file, the line and the plugin:
// "Corefile:7 - Error during parsing: plugin/cache: ...". Errors made with
// the Dispenser (ArgErr, Errf) already carry file and line.
func setupError(filename, dir string, tokens []caddyfile.Token, err error) error {
	msg := err.Error()
	file := tokenFile(filename, tokens)
	named := strings.Contains(msg, "plugin/"+dir)
	located := strings.Contains(msg, file+":") || strings.Contains(msg, filename+":")
	switch {
	case located && named:
		return err
	case located:
		return fmt.Errorf("plugin/%s: %w", dir, err)
	case named:
		return fmt.Errorf("%s:%d - Error during parsing: %w", file, tokens[0].Line, err)
	default:
		return fmt.Errorf("%s:%d - Error during parsing: plugin/%s: %w", file, tokens[0].Line, dir, err)
	}
}

// build chains the plugins of a key in Directives order, the first
// directive outermost, and records each handler by name.
func (c *Config) build() {
	c.handlers = map[string]plugin.Handler{}
	var stack plugin.Handler
	for i := len(Directives) - 1; i >= 0; i-- {
		ps := c.plugins[Directives[i]]
		for j := len(ps) - 1; j >= 0; j-- {
			stack = ps[j](stack)
			if stack == nil {
				continue
			}
			c.handlers[stack.Name()] = stack
			c.order = append([]plugin.Handler{stack}, c.order...)
			if _, ok := EnableChaos[stack.Name()]; ok {
				c.chaos = true
			}
		}
	}
	c.chain = stack
}

// EnableChaos names the plugins that answer queries of a class other than
// IN; without one of them in the chain, the server refuses such queries,
// as CoreDNS.
var EnableChaos = map[string]struct{}{
	"chaos":   {},
	"forward": {},
	"proxy":   {},
}

// zoneAddr is one zone of a key and the port it is served on.
type zoneAddr struct {
	zone    string
	port    string
	address string // the listen host, for the overlap check
}

func (z zoneAddr) String() string {
	s := "dns://" + z.zone + ":" + z.port
	if z.address != "" {
		s += " on " + z.address
	}
	return s
}

// parseKey reads a server block key: [dns://]ZONE[:PORT], where ZONE may
// be a CIDR (expanded to its reverse zones).
func parseKey(key, defPort string) ([]zoneAddr, error) {
	k := key
	if i := strings.Index(k, "://"); i >= 0 {
		scheme := k[:i]
		if scheme != "dns" {
			return nil, fmt.Errorf("transport %s:// is not supported (only dns://)", scheme)
		}
		k = k[i+3:]
	}
	hosts, port, err := plugin.SplitHostPort(k)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if _, _, err := plugin.SplitHostPort(strings.ToLower(dnsFqdn(h))); err != nil {
			return nil, err
		}
	}
	if port == "" {
		port = defPort
	}
	out := make([]zoneAddr, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, zoneAddr{zone: plugin.Name(h).Normalize(), port: port})
	}
	return out, nil
}

func dnsFqdn(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// keyPositions finds the line of each server block key by walking the
// Corefile's tokens at brace depth 0.
type keyPositions struct {
	toks []caddyfile.Token
	next int
}

func keyLines(filename string, corefile []byte) *keyPositions {
	d := caddyfile.NewDispenser(filename, bytes.NewReader(corefile))
	kp := &keyPositions{}
	depth := 0
	for d.Next() {
		switch d.Val() {
		case "{":
			depth++
		case "}":
			if depth > 0 {
				depth--
			}
		default:
			if depth == 0 {
				kp.toks = append(kp.toks, caddyfile.Token{Text: d.Val(), Line: d.Line()})
			}
		}
	}
	return kp
}

func (kp *keyPositions) find(key string) int {
	for i := kp.next; i < len(kp.toks); i++ {
		t := strings.TrimSuffix(kp.toks[i].Text, ",")
		if t == key {
			kp.next = i + 1
			return kp.toks[i].Line
		}
	}
	return 0
}

// makeServers groups the keys by listen address and checks that no zone
// is served twice on one address, as CoreDNS.
func (i *Instance) makeServers() error {
	type group struct {
		addr    string // canonical host:port
		configs []*Config
	}
	groups := map[string]*group{}
	var order []string
	checker := newOverlap()
	for _, c := range i.Configs {
		hosts := c.ListenHosts
		if len(hosts) == 0 {
			hosts = []string{""}
		}
		for _, h := range hosts {
			za := zoneAddr{zone: c.Zone, port: c.Port, address: h}
			if exist, overlap := checker.registerAndCheck(za); exist != nil {
				return fmt.Errorf("%s:%d - Error during parsing: cannot serve %s - it is already defined", c.Filename, c.Line, za)
			} else if overlap != nil {
				return fmt.Errorf("%s:%d - Error during parsing: cannot serve %s - zone overlap listener capacity with %s", c.Filename, c.Line, za, overlap)
			}
			addr, err := canonicalAddr(h, c.Port)
			if err != nil {
				return fmt.Errorf("%s:%d - Error during parsing: listen address %q: %v", c.Filename, c.Line, h, err)
			}
			g, ok := groups[addr]
			if !ok {
				g = &group{addr: addr}
				groups[addr] = g
				order = append(order, addr)
			}
			g.configs = append(g.configs, c)
		}
	}
	for _, addr := range order {
		g := groups[addr]
		s := &Server{
			Addr:   "dns://" + g.addr,
			listen: g.addr,
			zones:  map[string]*Config{},
			inst:   i,
		}
		for _, c := range g.configs {
			s.zones[c.Zone] = c
			if c.Stacktrace {
				s.stacktrace = true
			}
			if c.chaos {
				s.classChaos = true
			}
		}
		s.ctx = context.WithValue(context.Background(), Key{}, s)
		i.servers = append(i.servers, s)
	}
	return nil
}

// canonicalAddr joins host and port the way CoreDNS labels servers:
// ":53" for all addresses, "127.0.0.1:53", "[::1]:53".
func canonicalAddr(host, port string) (string, error) {
	if host == "" {
		return ":" + port, nil
	}
	h, zone, _ := strings.Cut(host, "%")
	a, err := netip.ParseAddr(h)
	if err != nil {
		return "", fmt.Errorf("not an IP address")
	}
	if zone != "" {
		a = a.WithZone(zone)
	}
	return net.JoinHostPort(a.String(), port), nil
}

// overlap is CoreDNS's zone overlap check: one zone may be served once
// per address, and a zone served on all addresses may not also be served
// on one of them.
type overlap struct {
	registered map[zoneAddr]zoneAddr
	unbound    map[zoneAddr]zoneAddr
}

func newOverlap() *overlap {
	return &overlap{registered: map[zoneAddr]zoneAddr{}, unbound: map[zoneAddr]zoneAddr{}}
}

func (o *overlap) registerAndCheck(z zoneAddr) (exist, over *zoneAddr) {
	if e, ok := o.registered[z]; ok {
		return &e, nil
	}
	uz := zoneAddr{zone: z.zone, port: z.port}
	if already, ok := o.unbound[uz]; ok {
		if z.address == "" {
			return nil, &already
		}
		if _, ok := o.registered[uz]; ok {
			return nil, &uz
		}
	}
	o.registered[z] = z
	o.unbound[uz] = z
	return nil, nil
}

// Servers returns the servers of the instance, one per listen address.
func (i *Instance) Servers() []*Server { return i.servers }

// Env returns the environment the instance was built with.
func (i *Instance) Env() *Env { return i.env }

// Start runs the OnStartup hooks, then listens on every server's address
// and serves. Addresses an instance already running in this process
// listens on are taken over (the same sockets now answer from this
// instance's chains), which is how a reload drops no query. When a hook
// or a listener fails, everything started is undone (OnShutdown runs)
// and the error returned.
func (i *Instance) Start() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state != stateNew {
		return errors.New("dnsserver: instance already started")
	}
	for _, f := range i.onStartup {
		if err := safeHook(f); err != nil {
			i.state = stateStopped
			i.runHooks(i.onShutdown)
			i.runHooks(i.onRestart)
			return err
		}
	}
	sets, err := acquire(i.servers)
	if err != nil {
		i.state = stateStopped
		i.runHooks(i.onShutdown)
		i.runHooks(i.onRestart)
		return err
	}
	i.sets = sets
	i.state = stateRunning
	for _, s := range i.servers {
		i.log.Info("serving", "server", s.Addr, "udp", s.UDPAddr(), "tcp", s.TCPAddr(), "zones", s.zoneNames())
	}
	return nil
}

// Stop ends the instance for good: it runs the OnShutdown and then the
// OnFinalShutdown hooks while the servers still answer (health's lameduck
// delays the end here), then closes every listener it does not share with
// a newer instance and waits for the queries in flight.
func (i *Instance) Stop() error {
	return i.stop(true)
}

// stop ends the instance; final is false when a reload replaced it.
func (i *Instance) stop(final bool) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state != stateRunning {
		i.state = stateStopped
		return nil
	}
	i.state = stateStopped
	var errs []error
	if !final {
		// The new instance answers already; let the queries still in
		// our chains finish before the plugins stop.
		i.waitInflight(5 * time.Second)
	}
	errs = append(errs, i.runHooks(i.onShutdown)...)
	if final {
		errs = append(errs, i.runHooks(i.onFinalShutdown)...)
	} else {
		errs = append(errs, i.runHooks(i.onRestart)...)
	}
	release(i.sets)
	i.sets = nil
	return errors.Join(errs...)
}

func (i *Instance) waitInflight(max time.Duration) {
	deadline := time.Now().Add(max)
	for i.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
}

func (i *Instance) runHooks(fs []func() error) []error {
	var errs []error
	for _, f := range fs {
		if err := safeHook(f); err != nil {
			i.log.Error("shutdown hook failed", "err", err)
			errs = append(errs, err)
		}
	}
	return errs
}

func safeHook(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("hook panicked: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// Reload replaces this instance with one built from corefile, through the
// Service that runs it (see Service.Reload).
func (i *Instance) Reload(corefile []byte) error {
	if i.svc == nil {
		return errors.New("dnsserver: this instance is not run by a Service; nothing to reload")
	}
	return i.svc.reloadFrom(i, corefile)
}

// zoneNames lists the zones a server answers, sorted.
func (s *Server) zoneNames() []string {
	out := make([]string, 0, len(s.zones))
	for z := range s.zones {
		out = append(out, z)
	}
	sort.Strings(out)
	return out
}
