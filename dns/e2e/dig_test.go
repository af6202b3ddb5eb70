package e2e

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// errTimeout is dig's "no servers could be reached" (exit status 9).
var errTimeout = errors.New("no answer (dig timed out)")

// digResult is dig's output, parsed: the last answer it printed (after a
// TCP retry, the TCP answer).
type digResult struct {
	out        string // dig's whole output
	status     string // NOERROR, NXDOMAIN, ...
	flags      []string
	ede        []string // "15 (Blocked)"
	answer     []string // records, fields joined by one space
	authority  []string
	additional []string
	retriedTCP bool // dig said ";; Truncated, retrying in TCP mode."
}

func (r digResult) flag(f string) bool { return slices.Contains(r.flags, f) }

// dig runs the real dig against server (ip:port) with args after the
// fixed ones: no cookie (CoreDNS-style servers do not require them), one
// try, a 2 second wait. A reply that never comes is errTimeout.
func dig(t *testing.T, server string, args ...string) (digResult, error) {
	t.Helper()
	host, port, ok := strings.Cut(server, ":")
	if !ok {
		t.Fatalf("dig: server %q is not ip:port", server)
	}
	full := append([]string{"@" + host, "-p", port, "+nocookie", "+tries=1", "+time=2"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, digPath, full...).CombinedOutput()
	res := parseDig(string(out))
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 9 {
			return res, errTimeout
		}
		return res, fmt.Errorf("dig %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	if res.status == "" {
		return res, fmt.Errorf("dig %s printed no answer:\n%s", strings.Join(full, " "), out)
	}
	return res, nil
}

// parseDig reads dig's default output.
func parseDig(out string) digResult {
	r := digResult{out: out}
	var section *[]string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ";; Truncated, retrying in TCP mode"):
			r.retriedTCP = true
		case strings.HasPrefix(line, ";; Got answer:"):
			// A later answer (the TCP retry) replaces an earlier one.
			r = digResult{out: out, retriedTCP: r.retriedTCP}
			section = nil
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			if i := strings.Index(line, "status: "); i >= 0 {
				s := line[i+len("status: "):]
				if j := strings.IndexByte(s, ','); j >= 0 {
					s = s[:j]
				}
				r.status = s
			}
		case strings.HasPrefix(line, ";; flags:"):
			f := strings.TrimPrefix(line, ";; flags:")
			if j := strings.IndexByte(f, ';'); j >= 0 {
				f = f[:j]
			}
			r.flags = strings.Fields(f)
		case strings.HasPrefix(line, "; EDE: "):
			r.ede = append(r.ede, strings.TrimSpace(strings.TrimPrefix(line, "; EDE: ")))
		case line == ";; ANSWER SECTION:":
			section = &r.answer
		case line == ";; AUTHORITY SECTION:":
			section = &r.authority
		case line == ";; ADDITIONAL SECTION:":
			section = &r.additional
		case strings.TrimSpace(line) == "":
			section = nil
		case strings.HasPrefix(line, ";"):
			// comments, the question, the OPT pseudosection
		default:
			if section != nil {
				*section = append(*section, strings.Join(strings.Fields(line), " "))
			}
		}
	}
	return r
}

// ttlRule says how a record's TTL is compared with the expected one.
type ttlRule int

const (
	ttlUnset  ttlRule = iota
	ttlExact          // the TTL the plugin writes
	ttlAtMost         // a cache in front: it counts down from at most this
)

// sameRecords compares records (owner TTL class type rdata, single
// spaces) as sets. In want, an rdata field "*" matches anything (the SOA
// serial, which is the time of the last change). TTLs follow rule.
func sameRecords(got, want []string, rule ttlRule) bool {
	if len(got) != len(want) {
		return false
	}
	g := slices.Clone(got)
	used := make([]bool, len(g))
	for _, w := range want {
		found := false
		for i := range g {
			if !used[i] && recordMatches(g[i], w, rule) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func recordMatches(got, want string, rule ttlRule) bool {
	gf, wf := strings.Fields(got), strings.Fields(want)
	if len(gf) != len(wf) || len(gf) < 4 {
		return false
	}
	for i := range wf {
		if i == 1 {
			gt, err1 := strconv.ParseUint(gf[1], 10, 32)
			wt, err2 := strconv.ParseUint(wf[1], 10, 32)
			if err1 != nil || err2 != nil {
				return false
			}
			if rule == ttlAtMost && gt > wt || rule != ttlAtMost && gt != wt {
				return false
			}
			continue
		}
		if wf[i] == "*" && i >= 4 {
			continue
		}
		if gf[i] != wf[i] {
			return false
		}
	}
	return true
}

func TestParseDig(t *testing.T) {
	out := `
; <<>> DiG 9.18.49 <<>> @127.0.0.1 -p 53 many.default.svc.cluster.local +noedns
;; Truncated, retrying in TCP mode.
;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1
;; flags: qr aa tc rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 0

;; ANSWER SECTION:
x.	30	IN	A	127.0.0.1

;; Got answer:
;; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 2
;; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 0

;; OPT PSEUDOSECTION:
; EDNS: version: 0, flags:; udp: 1232
; EDE: 15 (Blocked)
;; QUESTION SECTION:
;x.				IN	A

;; AUTHORITY SECTION:
cluster.local.		30	IN	SOA	ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30

;; Query time: 0 msec
`
	r := parseDig(out)
	if !r.retriedTCP || r.status != "NXDOMAIN" || !r.flag("aa") || r.flag("tc") || len(r.answer) != 0 ||
		!slices.Equal(r.ede, []string{"15 (Blocked)"}) ||
		!sameRecords(r.authority, []string{"cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. * 7200 1800 86400 30"}, ttlExact) {
		t.Errorf("parsed %+v", r)
	}
	for _, tc := range []struct {
		got, want string
		rule      ttlRule
		match     bool
	}{
		{"a. 30 IN A 127.0.0.1", "a. 30 IN A 127.0.0.1", ttlExact, true},
		{"a. 29 IN A 127.0.0.1", "a. 30 IN A 127.0.0.1", ttlExact, false},
		{"a. 29 IN A 127.0.0.1", "a. 30 IN A 127.0.0.1", ttlAtMost, true},
		{"a. 31 IN A 127.0.0.1", "a. 30 IN A 127.0.0.1", ttlAtMost, false},
		{"a. 30 IN A 127.0.0.2", "a. 30 IN A 127.0.0.1", ttlExact, false},
		{"a. 30 IN A 127.0.0.2", "a. 30 IN A *", ttlExact, true},
		{"b. 30 IN A 127.0.0.1", "* 30 IN A 127.0.0.1", ttlExact, false},
	} {
		if got := recordMatches(tc.got, tc.want, tc.rule); got != tc.match {
			t.Errorf("recordMatches(%q, %q, %d) = %v", tc.got, tc.want, tc.rule, got)
		}
	}
}
