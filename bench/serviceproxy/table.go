package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Goals (ANCHORS.md, issue 4), for the nftables mode.
const (
	goalMode        = "nftables"
	goalSize        = 10000
	goalSmall       = 100
	goalFullSync    = 2 * time.Second
	goalAddOne      = 20 * time.Millisecond
	goalLatencyGrow = 0.10
)

const (
	labelWidth = 50
	cellWidth  = 16
)

// Row labels (main_test.go looks for them).
func labelFullSync(n, eps int) string {
	return fmt.Sprintf("full sync, %s services x %d endpoints", fmtInt(n), eps)
}
func labelAddOne(n int) string { return fmt.Sprintf("one added service at %s (median)", fmtInt(n)) }
func labelP50(n int) string {
	return fmt.Sprintf("connect+echo p50 via service IP, %s services", fmtInt(n))
}
func labelP99(n int) string {
	return fmt.Sprintf("connect+echo p99 via service IP, %s services", fmtInt(n))
}
func labelDirect(n int) string {
	return fmt.Sprintf("connect+echo p50 to the pod IP, %s services", fmtInt(n))
}
func labelChange(p string, from, to int) string {
	return fmt.Sprintf("%s change, %s -> %s services", p, fmtInt(from), fmtInt(to))
}

const (
	labelConns     = "connections via service IP (failed)"
	labelPeakRSS   = "peak RSS, the mode's process (VmHWM)"
	labelHelperRSS = "peak RSS, largest helper process"
	labelBaseline  = "harness alone (no-op backend, same nodes, states and adds; no connections)"
)

type row struct {
	label string
	cells []string
	goal  string
}

// writeTable prints the results: one column per mode that ran, a row per
// measurement, the goal beside it; then skipped modes, errors, failed
// connections and the goal check.
func writeTable(w io.Writer, o options, results []modeResult, baseline *modeResult) {
	var ran []modeResult
	for _, r := range results {
		if r.Skipped == "" {
			ran = append(ran, r)
		}
	}
	small, large := slices.Min(o.Sizes), slices.Max(o.Sizes)
	goalSizes := small == goalSmall && large == goalSize

	fmt.Fprintf(w, "bench/serviceproxy: %d endpoints per service, %s connections per latency run, %d CPUs (shared with whatever else runs), kernel %s, %s\n\n",
		o.Endpoints, fmtInt(o.Conns), runtime.NumCPU(), kernelRelease(), time.Now().Format(time.RFC3339))

	var rows []row
	add := func(label, goal string, cell func(r modeResult) string) {
		rw := row{label: label, goal: goal}
		for _, r := range ran {
			rw.cells = append(rw.cells, cell(r))
		}
		rows = append(rows, rw)
	}
	for _, n := range o.Sizes {
		goal := "-"
		if n == goalSize {
			goal = "< " + fmtDur(goalFullSync)
		}
		add(labelFullSync(n, o.Endpoints), goal, func(r modeResult) string {
			if s := r.size(n); s != nil && s.FullSync > 0 {
				return fmtDur(s.FullSync)
			}
			return "-"
		})
	}
	goal := "-"
	if large == goalSize {
		goal = "< " + fmtDur(goalAddOne)
	}
	add(labelAddOne(large), goal, func(r modeResult) string {
		if r.AddRepeats == 0 {
			return "-"
		}
		return fmtDur(r.AddOne)
	})
	latSizes := []int{small}
	if large != small {
		latSizes = append(latSizes, large)
	}
	for _, n := range latSizes {
		add(labelP50(n), "-", func(r modeResult) string { return r.latCell(n, func(l *latency) time.Duration { return l.P50 }) })
		add(labelP99(n), "-", func(r modeResult) string { return r.latCell(n, func(l *latency) time.Duration { return l.P99 }) })
		add(labelDirect(n), "-", func(r modeResult) string {
			if s := r.size(n); s != nil && s.Direct != nil {
				return fmtDur(s.Direct.P50)
			}
			return "-"
		})
	}
	if large != small {
		goal := "-"
		if goalSizes {
			goal = fmt.Sprintf("<= +%.0f%%", goalLatencyGrow*100)
		}
		add(labelChange("p50", small, large), goal, func(r modeResult) string {
			return r.changeCell(small, large, func(l *latency) time.Duration { return l.P50 })
		})
		add(labelChange("p99", small, large), "-", func(r modeResult) string {
			return r.changeCell(small, large, func(l *latency) time.Duration { return l.P99 })
		})
	}
	add(labelConns, "-", func(r modeResult) string {
		conns, failed := 0, 0
		for _, s := range r.Sizes {
			if s.Latency != nil {
				conns += s.Latency.Conns
				failed += s.Latency.Failed
			}
		}
		if conns == 0 {
			return "-"
		}
		return fmt.Sprintf("%s (%d)", fmtInt(conns), failed)
	})
	add(labelPeakRSS, "-", func(r modeResult) string { return fmtMB(r.PeakRSS) })
	add(labelHelperRSS, "-", func(r modeResult) string {
		if r.HelperPeakRSS == 0 {
			return "none seen"
		}
		return fmtMB(r.HelperPeakRSS)
	})

	fmt.Fprintf(w, "%-*s", labelWidth, "work")
	for _, r := range ran {
		fmt.Fprintf(w, " %*s", cellWidth, r.Mode)
	}
	fmt.Fprintf(w, " %*s\n", cellWidth+2, "goal ("+goalMode+")")
	for _, rw := range rows {
		fmt.Fprintf(w, "%-*s", labelWidth, rw.label)
		for _, c := range rw.cells {
			fmt.Fprintf(w, " %*s", cellWidth, c)
		}
		fmt.Fprintf(w, " %*s\n", cellWidth+2, rw.goal)
	}
	fmt.Fprintln(w)
	for _, r := range ran {
		if r.Helper != "" {
			fmt.Fprintf(w, "%-10s largest helper process: %s\n", r.Mode, r.Helper)
		}
	}
	if b := baseline; b != nil {
		if b.Err != "" {
			fmt.Fprintf(w, "%s: error: %s\n", labelBaseline, b.Err)
		} else {
			fmt.Fprintf(w, "%s: peak RSS %s\n", labelBaseline, fmtMB(b.PeakRSS))
		}
	}
	for _, r := range results {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(w, "%-10s skipped: %s\n", r.Mode, r.Skipped)
		case r.Err != "":
			fmt.Fprintf(w, "%-10s error: %s\n", r.Mode, r.Err)
		}
		for _, s := range r.Sizes {
			for _, l := range []struct {
				what string
				l    *latency
			}{{"via the service IP", s.Latency}, {"to the pod IP", s.Direct}} {
				if l.l != nil && l.l.Failed > 0 {
					fmt.Fprintf(w, "%-10s %d of %s connections %s failed at %s services (first: %s)\n", r.Mode, l.l.Failed, fmtInt(l.l.Conns), l.what, fmtInt(s.Services), l.l.FirstErr)
				}
			}
		}
	}
	for _, r := range ran {
		if r.Mode == goalMode && goalSizes {
			fmt.Fprintf(w, "goal check (%s): %s\n", goalMode, strings.Join(r.goalCheck(o.Endpoints), "; "))
		}
	}
}

func (r modeResult) size(n int) *sizeResult {
	for i := range r.Sizes {
		if r.Sizes[i].Services == n {
			return &r.Sizes[i]
		}
	}
	return nil
}

func (r modeResult) latCell(n int, f func(*latency) time.Duration) string {
	if s := r.size(n); s != nil && s.Latency != nil {
		return fmtDur(f(s.Latency))
	}
	return "-"
}

func (r modeResult) change(from, to int, f func(*latency) time.Duration) (float64, bool) {
	a, b := r.size(from), r.size(to)
	if a == nil || b == nil || a.Latency == nil || b.Latency == nil || f(a.Latency) <= 0 {
		return 0, false
	}
	return float64(f(b.Latency)-f(a.Latency)) / float64(f(a.Latency)), true
}

func (r modeResult) changeCell(from, to int, f func(*latency) time.Duration) string {
	c, ok := r.change(from, to, f)
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", c*100)
}

// goalCheck says, for each goal, the figure and whether it is met.
func (r modeResult) goalCheck(eps int) []string {
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	var out []string
	if s := r.size(goalSize); s != nil && s.FullSync > 0 {
		out = append(out, fmt.Sprintf("full sync of %s x %d %s (< %s) %s", fmtInt(goalSize), eps, fmtDur(s.FullSync), fmtDur(goalFullSync), met(s.FullSync < goalFullSync)))
	}
	if r.AddRepeats > 0 && r.AddAt == goalSize {
		out = append(out, fmt.Sprintf("one added service %s (< %s) %s", fmtDur(r.AddOne), fmtDur(goalAddOne), met(r.AddOne < goalAddOne)))
	}
	if c, ok := r.change(goalSmall, goalSize, func(l *latency) time.Duration { return l.P50 }); ok {
		out = append(out, fmt.Sprintf("p50 at %s %+.1f%% of p50 at %s (<= +%.0f%%) %s", fmtInt(goalSize), c*100, fmtInt(goalSmall), goalLatencyGrow*100, met(c <= goalLatencyGrow)))
	}
	if len(out) == 0 {
		out = append(out, "no figures")
	}
	return out
}

// fmtDur prints a duration with three significant digits in a unit that
// suits it.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func fmtMB(b int64) string {
	if b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}

// fmtInt prints n with thousands separators (10,000).
func fmtInt(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}
