// Package errors is the errors plugin: it logs the errors the plugins
// after it return, in CoreDNS's format ("RCODE NAME TYPE: ERROR"),
// optionally consolidating the ones that match a regular expression into
// one line per period, and can turn on stack traces for recovered panics.
// It logs through the environment's slog logger (attribute
// plugin=errors). It owns only that logging.
package errors

import (
	"log/slog"
	"regexp"
	"time"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

const maxRegexpLen = 10000

func init() { dnsserver.Register("errors", setup) }

func setup(c *dnsserver.Controller) error {
	h, err := parse(c)
	if err != nil {
		return plugin.Error("errors", err)
	}
	c.OnShutdown(func() error {
		h.stop()
		return nil
	})
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		h.Next = next
		return h
	})
	return nil
}

func parse(c *dnsserver.Controller) (*Handler, error) {
	log := c.Env.Log().With("plugin", "errors")
	h := &Handler{log: log}
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		args := c.RemainingArgs()
		switch len(args) {
		case 0:
		case 1:
			if args[0] != "stdout" {
				return nil, c.Errf("invalid log file: %s", args[0])
			}
		default:
			return nil, c.ArgErr()
		}
		for c.NextBlock() {
			switch c.Val() {
			case "stacktrace":
				if len(c.RemainingArgs()) != 0 {
					return nil, c.ArgErr()
				}
				c.Config.Stacktrace = true
			case "consolidate":
				p, err := parseConsolidate(c, log)
				if err != nil {
					return nil, err
				}
				h.patterns = append(h.patterns, p)
			default:
				return nil, c.SyntaxErr("Unknown field " + c.Val())
			}
		}
	}
	return h, nil
}

func parseConsolidate(c *dnsserver.Controller, log *slog.Logger) (*pattern, error) {
	args := c.RemainingArgs()
	if len(args) < 2 || len(args) > 4 {
		return nil, c.ArgErr()
	}
	period, err := time.ParseDuration(args[0])
	if err != nil {
		return nil, c.Err(err.Error())
	}
	if period <= 0 {
		return nil, c.Errf("consolidate period must be positive: %s", args[0])
	}
	if len(args[1]) > maxRegexpLen {
		return nil, c.Errf("regex pattern too long: %d > %d", len(args[1]), maxRegexpLen)
	}
	re, err := regexp.Compile(args[1])
	if err != nil {
		return nil, c.Err(err.Error())
	}
	level := slog.LevelError
	levelSet, showFirst := false, false
	for _, a := range args[2:] {
		if l, ok := levels[a]; ok {
			if levelSet {
				return nil, c.Errf("multiple log levels specified in consolidate")
			}
			if showFirst {
				return nil, c.Errf("log level must come before show_first in consolidate")
			}
			level, levelSet = l, true
			continue
		}
		if a == "show_first" {
			showFirst = true
			continue
		}
		return nil, c.Errf("unknown option in consolidate: %s", a)
	}
	return &pattern{period: period, re: re, level: level, showFirst: showFirst, log: log}, nil
}

var levels = map[string]slog.Level{
	"warning": slog.LevelWarn,
	"error":   slog.LevelError,
	"info":    slog.LevelInfo,
	"debug":   slog.LevelDebug,
}
