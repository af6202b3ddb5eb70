package ipvs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// kernelSet is a set found in the kernel (ipset list -t).
type kernelSet struct {
	setType string
	family  string // "inet", "inet6"; "" for bitmap sets
}

// setFamily is the family word of a set type in one family.
func setFamily(setType string, ipv6 bool) string {
	if setType == bitmapPort {
		return ""
	}
	if ipv6 {
		return "inet6"
	}
	return "inet"
}

// maxElemFor is upstream's maxelem (65536), raised to the next power of
// two for sets that would not fit (KUBE-LOOP-BACK holds every local
// endpoint).
func maxElemFor(n int) int {
	m := defaultMaxElem
	for m < n {
		m *= 2
	}
	return m
}

// createLine is the "create" command of upstream's runner.createSet
// (without -exist: the sync knows which sets exist).
func createLine(name, setType string, ipv6 bool, entries int) string {
	if setType == bitmapPort {
		return "create " + name + " " + setType + " range " + defaultPortRange
	}
	return fmt.Sprintf("create %s %s family %s hashsize %d maxelem %d", name, setType, setFamily(setType, ipv6), defaultHashSize, maxElemFor(entries))
}

// setsRequest is one sync's ipset work.
type setsRequest struct {
	m *model
	// existing are the sets in the kernel (by name). A fresh node has
	// none.
	existing map[string]kernelSet
	// previous are the entries the last successful sync applied, per
	// family and set index; nil (or a nil family) means unknown: every
	// set of the family is rewritten.
	previous [2][][]string
}

// renderSets writes the "ipset restore" input of a sync, or nil when no
// set changes. Sets that do not exist yet are created and filled
// directly (nothing refers to them yet). A set that exists and must
// change is rebuilt in a temporary set that is then swapped with it
// ("ipset swap" is atomic) and destroyed, so that packets see the old or
// the new members, never a half-filled set; all swaps come after all
// additions, so a failed restore leaves every live set as it was.
func renderSets(req *setsRequest) ([]byte, error) {
	var pre, fill, swap, post bytes.Buffer
	for _, fm := range req.m.fams {
		if fm == nil {
			continue
		}
		fi := famIndex(fm.ipv6)
		for i, info := range ipsetInfo {
			live := familySetName(info.name, fm.ipv6)
			tmp := tempSetName(i, fm.ipv6)
			if _, left := req.existing[tmp]; left {
				// Left by a sync that failed half-way.
				pre.WriteString("destroy " + tmp + "\n")
			}
			entries := fm.sets[i]
			ks, exists := req.existing[live]
			if exists {
				if want := setFamily(info.setType, fm.ipv6); ks.setType != info.setType || ks.family != want {
					return nil, fmt.Errorf("ipset %s exists with type %s family %q, this mode needs type %s family %q: remove it first (kube-proxy --cleanup)",
						live, ks.setType, ks.family, info.setType, want)
				}
				if prev := req.previous[fi]; prev != nil && equalStrings(prev[i], entries) {
					continue
				}
				fill.WriteString(createLine(tmp, info.setType, fm.ipv6, len(entries)) + "\n")
				writeAdds(&fill, tmp, entries)
				swap.WriteString("swap " + tmp + " " + live + "\n")
				post.WriteString("destroy " + tmp + "\n")
				continue
			}
			fill.WriteString(createLine(live, info.setType, fm.ipv6, len(entries)) + "\n")
			writeAdds(&fill, live, entries)
		}
	}
	if pre.Len()+fill.Len()+swap.Len()+post.Len() == 0 {
		return nil, nil
	}
	out := make([]byte, 0, pre.Len()+fill.Len()+swap.Len()+post.Len())
	out = append(out, pre.Bytes()...)
	out = append(out, fill.Bytes()...)
	out = append(out, swap.Bytes()...)
	out = append(out, post.Bytes()...)
	return out, nil
}

func writeAdds(b *bytes.Buffer, set string, entries []string) {
	for _, e := range entries {
		b.WriteString("add ")
		b.WriteString(set)
		b.WriteByte(' ')
		b.WriteString(e)
		b.WriteByte('\n')
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ourSetNames lists every set name this mode may create: the live sets
// of both families and the temporary ones.
func ourSetNames() map[string]bool {
	out := map[string]bool{}
	for i, info := range ipsetInfo {
		for _, v6 := range []bool{false, true} {
			out[familySetName(info.name, v6)] = true
			out[tempSetName(i, v6)] = true
		}
	}
	return out
}

// ipsetRestoreError is a failed "ipset restore", with the lines around
// the one it complained about.
type ipsetRestoreError struct {
	err    error
	output string
	near   string
}

func (e *ipsetRestoreError) Error() string {
	msg := fmt.Sprintf("ipset restore: %v: %s", e.err, strings.TrimSpace(e.output))
	if e.near != "" {
		msg += "\n" + e.near
	}
	return msg
}

func (e *ipsetRestoreError) Unwrap() error { return e.err }

var ipsetErrorLine = regexp.MustCompile(`Error in line (\d+)`)

// runIPSetRestore feeds data to "ipset restore" in the calling thread's
// network namespace.
func runIPSetRestore(ctx context.Context, data []byte) error {
	cmd := exec.CommandContext(ctx, "ipset", "restore")
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	if err != nil {
		re := &ipsetRestoreError{err: err, output: string(out)}
		if m := ipsetErrorLine.FindStringSubmatch(string(out)); m != nil {
			n, _ := strconv.Atoi(m[1])
			re.near = nearLines(data, n, 3)
		}
		return re
	}
	return nil
}

// nearLines returns the lines around line (1-based), numbered.
func nearLines(data []byte, line, count int) string {
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

// listSets runs "ipset list -t" (headers only) in the calling thread's
// network namespace and returns the sets. When the ipset command is not
// installed there can be no set of ours: the result is empty and
// missing is true.
func listSets(ctx context.Context) (sets map[string]kernelSet, missing bool, err error) {
	cmd := exec.CommandContext(ctx, "ipset", "list", "-t")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return map[string]kernelSet{}, true, nil
		}
		return nil, false, fmt.Errorf("ipset list -t: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return parseSetHeaders(out), false, nil
}

// parseSetHeaders parses "ipset list -t" output.
func parseSetHeaders(out []byte) map[string]kernelSet {
	sets := map[string]kernelSet{}
	var name string
	var cur kernelSet
	flush := func() {
		if name != "" {
			sets[name] = cur
		}
		name, cur = "", kernelSet{}
	}
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Name: "):
			flush()
			name = strings.TrimSpace(strings.TrimPrefix(line, "Name: "))
		case strings.HasPrefix(line, "Type: "):
			cur.setType = strings.TrimSpace(strings.TrimPrefix(line, "Type: "))
		case strings.HasPrefix(line, "Header: "):
			f := strings.Fields(strings.TrimPrefix(line, "Header: "))
			for i := 0; i+1 < len(f); i++ {
				if f[i] == "family" {
					cur.family = f[i+1]
				}
			}
		}
	}
	flush()
	return sets
}
