// Package hosts is the DNS plugin "hosts" (CoreDNS 1.14 plugin/hosts): it
// serves A, AAAA and PTR records from an /etc/hosts style file and from
// entries inlined in the Corefile, reads the file again when it changes,
// and passes on what it has no entry for when told to fall through.
//
// It owns only its handler, its reload goroutine, Corefile parsing and
// metrics; it never writes the hosts file and must not touch the server,
// the chain order or other plugins' state.
package hosts

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const pluginName = "hosts"

// defaultPath is the file read when the directive names none. A variable
// so that tests never read the machine's own /etc/hosts.
var defaultPath = "/etc/hosts"

func init() { dnsserver.Register(pluginName, setup) }

func setup(c *dnsserver.Controller) error {
	h, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	c.OnStartup(func() error {
		h.readHosts()
		h.startReload()
		return nil
	})
	c.OnShutdown(func() error {
		h.stopReload()
		return nil
	})
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

// reloader is the goroutine that checks the file every reload interval.
type reloader struct {
	mu   sync.Mutex
	stop chan struct{}
	done chan struct{}
}

// startReload starts checking the file every reload interval ("A time of
// zero seconds disables the feature").
func (h *Hosts) startReload() {
	if h.options.reload == 0 {
		return
	}
	h.rl.mu.Lock()
	defer h.rl.mu.Unlock()
	if h.rl.stop != nil {
		return
	}
	stop, done := make(chan struct{}), make(chan struct{})
	h.rl.stop, h.rl.done = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(h.options.reload)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				h.readHosts()
			}
		}
	}()
}

// stopReload stops the goroutine and waits for it.
func (h *Hosts) stopReload() {
	h.rl.mu.Lock()
	defer h.rl.mu.Unlock()
	if h.rl.stop == nil {
		return
	}
	close(h.rl.stop)
	<-h.rl.done
	h.rl.stop, h.rl.done = nil, nil
}

// parse reads the directive:
//
//	hosts [FILE [ZONES...]] {
//	    [INLINE]
//	    ttl SECONDS
//	    no_reverse
//	    reload DURATION
//	    fallthrough [ZONES...]
//	}
func parse(c *dnsserver.Controller) (*Hosts, error) {
	logger := c.Env.Log()
	var reg prometheus.Registerer
	if c.Env != nil {
		reg = c.Env.Registerer
	}
	h := &Hosts{Hostsfile: &Hostsfile{
		path:    defaultPath,
		inline:  newHostMap(),
		options: newOptions(),
		metrics: newMetrics(reg),
		logger:  logger,
	}}

	var inline []string
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, c.Errf("this plugin can only be used once per Server Block")
		}
		i++

		args := c.RemainingArgs()
		if len(args) >= 1 {
			h.path = args[0]
			args = args[1:]
			s, err := os.Stat(h.path)
			if err != nil {
				if !os.IsNotExist(err) {
					return nil, c.Errf("unable to access hosts file '%s': %v", h.path, err)
				}
				logger.Warn("hosts: file does not exist", "file", h.path)
			}
			if s != nil && s.IsDir() {
				logger.Warn("hosts: hosts file is a directory", "file", h.path)
			}
		}
		h.Origins = plugin.OriginsFromArgsOrServerBlock(args, c.Config.Zones)

		for c.NextBlock() {
			switch c.Val() {
			case "fallthrough":
				h.Fall.SetZonesFromArgs(c.RemainingArgs())
			case "no_reverse":
				h.options.autoReverse = false
			case "ttl":
				remaining := c.RemainingArgs()
				if len(remaining) < 1 {
					return nil, c.Errf("ttl needs a time in second")
				}
				ttl, err := strconv.Atoi(remaining[0])
				if err != nil {
					return nil, c.Errf("ttl needs a number of second")
				}
				if ttl <= 0 || ttl > 65535 {
					return nil, c.Errf("ttl provided is invalid")
				}
				h.options.ttl = uint32(ttl)
			case "reload":
				remaining := c.RemainingArgs()
				if len(remaining) != 1 {
					return nil, c.Errf("reload needs a duration (zero seconds to disable)")
				}
				reload, err := time.ParseDuration(remaining[0])
				if err != nil {
					return nil, c.Errf("invalid duration for reload '%s'", remaining[0])
				}
				if reload < 0 {
					return nil, c.Errf("invalid negative duration for reload '%s'", remaining[0])
				}
				h.options.reload = reload
			default:
				// "If there are any lines before fallthrough then all of
				// them will be treated as the additional content for
				// hosts file."
				if len(h.Fall.Zones) == 0 {
					line := strings.Join(append([]string{c.Val()}, c.RemainingArgs()...), " ")
					inline = append(inline, line)
					continue
				}
				return nil, c.Errf("unknown property '%s'", c.Val())
			}
		}
	}
	h.initInline(inline)
	return h, nil
}
