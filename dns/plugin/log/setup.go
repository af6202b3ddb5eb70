// Package log is the log plugin: one line per query in CoreDNS's Common
// Log Format (or a format of placeholders), for the names and classes of
// answers (success, denial, error) asked, written as CoreDNS writes it:
// "[INFO] " and the line, to standard output (dnsserver.Env.QueryLog).
// It owns only the query log; other logging goes through slog.
package log

import (
	"io"
	"os"
	"strings"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/plugin"
)

func init() { dnsserver.Register("log", setup) }

func setup(c *dnsserver.Controller) error {
	rules, err := parse(c)
	if err != nil {
		return plugin.Error("log", err)
	}
	var out io.Writer = os.Stdout
	if c.Env.QueryLog != nil {
		out = c.Env.QueryLog
	}
	l := &Logger{Rules: rules, out: newLineWriter(out)}
	c.AddPlugin(func(next plugin.Handler) plugin.Handler {
		l.Next = next
		return l
	})
	return nil
}

// parse reads `log [NAMES...] [FORMAT] { class CLASSES... }`, as CoreDNS's
// logParse (with its quirk: a single argument is a name, never a format).
func parse(c *dnsserver.Controller) ([]Rule, error) {
	var rules []Rule
	for c.Next() {
		args := c.RemainingArgs()
		length := len(rules)
		switch len(args) {
		case 0:
			rules = append(rules, Rule{NameScope: ".", Format: compile(DefaultLogFormat)})
		case 1:
			rules = append(rules, Rule{NameScope: dns.Fqdn(args[0]), Format: compile(DefaultLogFormat)})
		default:
			format := DefaultLogFormat
			if strings.Contains(args[len(args)-1], "{") {
				format = args[len(args)-1]
				format = strings.ReplaceAll(format, "{common}", CommonLogFormat)
				format = strings.ReplaceAll(format, "{combined}", CombinedLogFormat)
				args = args[:len(args)-1]
			}
			f := compile(format)
			for _, s := range args {
				rules = append(rules, Rule{NameScope: dns.Fqdn(s), Format: f})
			}
		}
		classes := map[Class]bool{}
		for c.NextBlock() {
			switch c.Val() {
			case "class":
				cargs := c.RemainingArgs()
				if len(cargs) == 0 {
					return nil, c.ArgErr()
				}
				for _, a := range cargs {
					cls, err := ClassFromString(a)
					if err != nil {
						return nil, c.Err(err.Error())
					}
					classes[cls] = true
				}
			default:
				return nil, c.ArgErr()
			}
		}
		if len(classes) == 0 {
			classes[All] = true
		}
		for i := len(rules) - 1; i >= length; i-- {
			rules[i].Class = classes
		}
	}
	return rules, nil
}
