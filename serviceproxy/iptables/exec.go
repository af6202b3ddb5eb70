package iptables

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// tools names the iptables binaries of one family and backend.
type tools struct {
	restore, save string
	legacy        bool
	ipv6          bool
}

func newTools(ipv6 bool, b Backend) tools {
	prefix := "iptables"
	if ipv6 {
		prefix = "ip6tables"
	}
	if b == BackendLegacy {
		return tools{restore: prefix + "-legacy-restore", save: prefix + "-legacy-save", legacy: true, ipv6: ipv6}
	}
	// iptables-nft (xtables-nft-multi): rules land in nf_tables tables
	// "ip filter" / "ip nat", which iptables-nft-save shows. Named
	// explicitly: Debian's plain iptables-restore is an alternatives
	// link an administrator may have pointed at legacy.
	return tools{restore: prefix + "-nft-restore", save: prefix + "-nft-save", ipv6: ipv6}
}

// restoreError is a failed iptables-restore, with the lines around the one
// it complained about (upstream logs utiliptables.ExtractLines).
type restoreError struct {
	cmd    string
	err    error
	output string
	line   int
	near   string
}

func (e *restoreError) Error() string {
	msg := fmt.Sprintf("%s: %v: %s", e.cmd, e.err, strings.TrimSpace(e.output))
	if e.near != "" {
		msg += "\n" + e.near
	}
	return msg
}

func (e *restoreError) Unwrap() error { return e.err }

// runRestore feeds data to "<restore> --noflush --counters": one atomic
// transaction per table (a failure leaves every table as it was).
func (t tools) runRestore(ctx context.Context, data []byte) error {
	args := []string{"-w", "5"}
	if t.legacy {
		// --wait-interval only means something to the legacy backend
		// (iptables-nft prints "Ignoring deprecated --wait-interval").
		args = append(args, "-W", "100000")
	}
	args = append(args, "--noflush", "--counters")
	cmd := exec.CommandContext(ctx, t.restore, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		re := &restoreError{cmd: t.restore, err: err, output: string(out)}
		if n := parseErrorLine(string(out)); n > 0 {
			re.line = n
			re.near = extractLines(data, n, 3)
		}
		return re
	}
	return nil
}

// runSave returns "<save>" (every table) or "<save> -t table".
func (t tools) runSave(ctx context.Context, table string) ([]byte, error) {
	var args []string
	if table != "" {
		args = []string{"-t", table}
	}
	cmd := exec.CommandContext(ctx, t.save, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s", t.save, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// parseErrorLine finds "line N" in iptables-restore's complaint
// ("line 20: RULE_INSERT failed ..." / "Error occurred at line: 20").
func parseErrorLine(out string) int {
	for _, marker := range []string{"Error occurred at line: ", "line "} {
		if i := strings.Index(out, marker); i >= 0 {
			rest := out[i+len(marker):]
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if n, err := strconv.Atoi(rest[:j]); err == nil {
				return n
			}
		}
	}
	return 0
}

// extractLines is upstream's utiliptables.ExtractLines: the lines around
// line (1-based), numbered.
func extractLines(data []byte, line, count int) string {
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		if n >= line-count && n <= line+count {
			fmt.Fprintf(&b, "%d: %s\n", n, sc.Text())
		}
		if n > line+count {
			break
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// savedTables is iptables-save output: per table, the chains and the rule
// lines.
type savedTables map[string]*savedTable

type savedTable struct {
	chains map[string]bool
	rules  []string
}

// parseSave parses iptables-save output. Comment lines (iptables-nft's
// "# Warning: iptables-legacy tables present") are skipped.
func parseSave(data []byte) savedTables {
	out := savedTables{}
	var cur *savedTable
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" || line[0] == '#':
		case line[0] == '*':
			cur = &savedTable{chains: map[string]bool{}}
			out[line[1:]] = cur
		case cur == nil:
		case line[0] == ':':
			if sp := strings.IndexByte(line, ' '); sp > 1 {
				cur.chains[line[1:sp]] = true
			}
		case strings.HasPrefix(line, "-A "):
			cur.rules = append(cur.rules, line)
		}
	}
	return out
}

func (s savedTables) table(name string) *savedTable {
	if t := s[name]; t != nil {
		return t
	}
	return &savedTable{chains: map[string]bool{}}
}

// hasJump tells whether the table holds the jump rule (as iptables-save
// prints it: the same source chain, target and comment).
func (t *savedTable) hasJump(j jumpChain) bool {
	prefix := "-A " + j.srcChain + " "
	target := " -j " + j.dstChain
	for _, r := range t.rules {
		if !strings.HasPrefix(r, prefix) || !strings.HasSuffix(r, target) {
			continue
		}
		if j.comment != "" && !strings.Contains(r, "--comment "+quote(j.comment)) {
			continue
		}
		return true
	}
	return false
}

// conntrack deletes conntrack entries in the calling thread's network
// namespace by running conntrack(8), as upstream's exec-based
// pkg/util/conntrack did: "conntrack -D ..."; a run that deleted nothing
// is not an error.
func conntrackDelete(ctx context.Context, ipv6 bool, args ...string) error {
	full := append([]string{"-D"}, args...)
	if ipv6 {
		full = append(full, "-f", "ipv6")
	}
	out, err := exec.CommandContext(ctx, "conntrack", full...).CombinedOutput()
	if err != nil {
		// "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted."
		if strings.Contains(string(out), "0 flow entries have been deleted") {
			return nil
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("conntrack %s: %v: %s", strings.Join(full, " "), err, strings.TrimSpace(string(out)))
		}
		return fmt.Errorf("conntrack %s: %w", strings.Join(full, " "), err)
	}
	return nil
}
