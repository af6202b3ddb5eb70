// Package git is the DNS plugin "git", after the external CoreDNS plugin
// git (github.com/miekg/coredns-git and its forks): it clones a git
// repository into a directory and pulls it every interval, so that zone
// files served by the file plugin from that directory are deployed with a
// git push. It uses go-git; no git binary is needed.
//
// It adds no handler to the chain. It owns only the directories it is
// told to clone into and its pull goroutines; it must not touch the
// server, the chain order or other plugins' state.
package git

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const pluginName = "git"

// DefaultInterval is the time between pulls when none is given.
const DefaultInterval = time.Hour

func init() { dnsserver.Register(pluginName, setup) }

// setup reads the repositories, prepares their directories and pulls
// each once (cloning it the first time), so that the file plugin, set up
// after git, finds the files; then pulls every interval while the
// servers run. A block with several keys does this once.
func setup(c *dnsserver.Controller) error {
	repos, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	if c.Index > 0 {
		return nil // once per server block
	}
	for _, r := range repos {
		if err := r.Prepare(); err != nil {
			return plugin.Error(pluginName, fmt.Errorf("%s:%d - %w", c.File(), c.Line(), err))
		}
		if err := r.Pull(); err != nil {
			return plugin.Error(pluginName, fmt.Errorf("%s:%d - %w", c.File(), c.Line(), err))
		}
	}
	var services []*service
	c.OnStartup(func() error {
		for _, r := range repos {
			services = append(services, r.start())
		}
		return nil
	})
	c.OnShutdown(func() error {
		for _, s := range services {
			s.halt()
		}
		services = nil
		return nil
	})
	return nil
}

// parse reads every "git" directive of the block:
//
//	git REPO [PATH]
//	git [REPO PATH] {
//	    repo      REPO
//	    path      PATH
//	    branch    BRANCH
//	    interval  INTERVAL
//	    args      ARGS
//	    pull_args PULL_ARGS
//	    key       KEY
//	}
func parse(c *dnsserver.Controller) ([]*Repo, error) {
	logger := c.Env.Log()
	var repos []*Repo
	for c.Next() {
		r := &Repo{Branch: "master", Interval: DefaultInterval, singleBranch: true, logger: logger}
		line := c.Line()
		args := c.RemainingArgs()
		switch len(args) {
		case 2:
			r.Path = clonePath(args[1])
			fallthrough
		case 1:
			r.URL = args[0]
		case 0:
		default:
			return nil, c.ArgErr()
		}
		for c.NextBlock() {
			switch c.Val() {
			case "repo":
				if !c.NextArg() {
					return nil, c.ArgErr()
				}
				r.URL = c.Val()
			case "path":
				if !c.NextArg() {
					return nil, c.ArgErr()
				}
				r.Path = clonePath(c.Val())
			case "branch":
				if !c.NextArg() {
					return nil, c.ArgErr()
				}
				r.Branch = c.Val()
			case "key":
				if !c.NextArg() {
					return nil, c.ArgErr()
				}
				r.KeyPath = c.Val()
			case "interval":
				if !c.NextArg() {
					return nil, c.ArgErr()
				}
				d, ok, err := parseInterval(c.Val())
				if err != nil {
					return nil, c.Errf("%v", err)
				}
				if ok {
					r.Interval = d
				}
				if gap := r.Interval; gap > 0 && gap < minPullGap && !isSeconds(c.Val()) {
					// A Go duration below the upstream minimum: the
					// user asked for it; do not throttle.
					r.minGap = gap
				}
			case "args", "clone_args":
				r.CloneArgs = c.RemainingArgs()
				if err := r.parseArgs(r.CloneArgs, c.Val()); err != nil {
					return nil, c.Errf("%v", err)
				}
			case "pull_args":
				r.PullArgs = c.RemainingArgs()
				if err := r.parseArgs(r.PullArgs, c.Val()); err != nil {
					return nil, c.Errf("%v", err)
				}
			default:
				return nil, c.ArgErr()
			}
		}
		if r.URL == "" {
			return nil, fmt.Errorf("%s:%d - Error during parsing: no URL set", c.File(), line)
		}
		if r.Path == "" {
			return nil, fmt.Errorf("%s:%d - Error during parsing: no path set", c.File(), line)
		}
		u, err := endpointURL(r.URL, r.KeyPath != "")
		if err != nil {
			return nil, fmt.Errorf("%s:%d - Error during parsing: %w", c.File(), line, err)
		}
		r.URL = u
		if r.KeyPath != "" {
			if _, err := r.auth(); err != nil {
				return nil, fmt.Errorf("%s:%d - Error during parsing: %w", c.File(), line, err)
			}
		}
		repos = append(repos, r)
	}
	return repos, nil
}

// clonePath makes PATH absolute: relative paths are taken from the
// working directory (there is no root plugin).
func clonePath(s string) string {
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return filepath.Clean(s)
	}
	return abs
}

func isSeconds(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}

// parseInterval reads INTERVAL: "the number of seconds between pulls;
// default is 3600 (1 hour), minimum 5. An interval of -1 disables
// periodic pull." A Go duration ("30s", "1m", "500ms") is accepted too.
// ok is false when the value leaves the default (0).
func parseInterval(s string) (time.Duration, bool, error) {
	if n, err := strconv.Atoi(s); err == nil {
		switch {
		case n < 0:
			return -1, true, nil
		case n == 0:
			return 0, false, nil
		}
		return time.Duration(n) * time.Second, true, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, false, fmt.Errorf("invalid interval %q: a number of seconds or a duration", s)
	}
	if d < 0 {
		return -1, true, nil
	}
	if d == 0 {
		return 0, false, nil
	}
	return d, true, nil
}
