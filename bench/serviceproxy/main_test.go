package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/serviceproxy"
)

// envMain makes the test binary run the benchmark's main (for the
// interrupt test); "-child=..." makes it a child, as the benchmark
// starts this same binary again.
const envMain = "SWITCHBOARD_BENCH_SERVICEPROXY_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envMain) != "" || (len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-child=")) {
		os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		t.Skipf("bench/serviceproxy needs root to create network namespaces (running as uid %d)", uid)
	}
}

// table is a printed table: the modes (columns) and, per row label, the
// mode cells and the goal cell.
type table struct {
	modes []string
	rows  map[string][]string
	goals map[string]string
	tail  []string // lines after the table
}

var cellSep = regexp.MustCompile(`\s{2,}`)

func parseTable(t *testing.T, out string) table {
	t.Helper()
	tb := table{rows: map[string][]string{}, goals: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	in, after := false, false
	for sc.Scan() {
		line := sc.Text()
		fields := cellSep.Split(strings.TrimSpace(line), -1)
		switch {
		case !in && !after && len(fields) > 2 && fields[0] == "work":
			in = true
			tb.modes = fields[1 : len(fields)-1]
		case in && strings.TrimSpace(line) == "":
			in, after = false, true
		case in:
			if len(fields) != len(tb.modes)+2 {
				t.Fatalf("row %q has %d cells, want %d (modes %v)", line, len(fields)-1, len(tb.modes)+1, tb.modes)
			}
			tb.rows[fields[0]] = fields[1 : len(fields)-1]
			tb.goals[fields[0]] = fields[len(fields)-1]
		case after && strings.TrimSpace(line) != "":
			tb.tail = append(tb.tail, line)
		}
	}
	if len(tb.modes) == 0 {
		t.Fatalf("no table in:\n%s", out)
	}
	return tb
}

// parseDur reads a duration cell ("198 µs", "1.02 ms", "5.87 s").
func parseDur(s string) (time.Duration, error) {
	num, unit, ok := strings.Cut(s, " ")
	if !ok {
		return 0, fmt.Errorf("%q: no unit", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	scale := map[string]time.Duration{"µs": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[unit]
	if scale == 0 {
		return 0, fmt.Errorf("%q: unknown unit", s)
	}
	return time.Duration(v * float64(scale)), nil
}

func parseMB(s string) (float64, error) {
	num, ok := strings.CutSuffix(s, " MB")
	if !ok {
		return 0, fmt.Errorf("%q: not MB", s)
	}
	return strconv.ParseFloat(num, 64)
}

// TestQuickRun runs `bench/serviceproxy -quick` (as root: real
// namespaces, real rules, real connections) and checks that the table has
// a column for every mode that can run here, every row, and sane figures.
// It asserts no speed: the goals are for the full run to show.
func TestQuickRun(t *testing.T) {
	needRoot(t)
	o, _, err := parseArgs([]string{"-quick"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	results, err := run(context.Background(), o, &out, testWriter{t})
	t.Logf("\n%s", out.String())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	tb := parseTable(t, out.String())

	var want []string // the modes that must have run
	for _, p := range planModes(nil) {
		if p.skip == "" {
			want = append(want, p.name)
		} else if !slices.ContainsFunc(tb.tail, func(l string) bool {
			return strings.HasPrefix(l, p.name+" ") && strings.Contains(l, "skipped: "+p.skip)
		}) {
			t.Errorf("no line %q says why %s was skipped: %q", p.name+" skipped: "+p.skip, p.name, tb.tail)
		}
	}
	for _, m := range []string{"nftables", "iptables", "userspace"} { // the table
		if !slices.Contains(want, m) {
			t.Errorf("mode %s is not registered (serviceproxy/modes/all)", m)
		}
	}
	if !slices.Equal(tb.modes, want) {
		t.Fatalf("table columns %v, want %v", tb.modes, want)
	}
	if len(results) != len(planModes(nil)) {
		t.Errorf("%d results for %d planned modes", len(results), len(planModes(nil)))
	}

	small, large := o.Sizes[0], o.Sizes[len(o.Sizes)-1]
	cells := func(label string) []string {
		t.Helper()
		c, ok := tb.rows[label]
		if !ok {
			t.Fatalf("no row %q in the table", label)
		}
		return c
	}
	durs := func(label string) []time.Duration {
		t.Helper()
		var out []time.Duration
		for i, c := range cells(label) {
			d, err := parseDur(c)
			if err != nil || d <= 0 || d > o.Timeout {
				t.Errorf("%s, %s: %q is not a duration in (0, %s]: %v", label, tb.modes[i], c, o.Timeout, err)
			}
			out = append(out, d)
		}
		return out
	}
	for _, n := range o.Sizes {
		durs(labelFullSync(n, o.Endpoints))
	}
	durs(labelAddOne(large))
	for _, n := range []int{small, large} {
		p50, p99 := durs(labelP50(n)), durs(labelP99(n))
		durs(labelDirect(n))
		for i := range p50 {
			if p99[i] < p50[i] {
				t.Errorf("%s at %d services: p99 %s < p50 %s", tb.modes[i], n, p99[i], p50[i])
			}
			if p99[i] > connTimeout {
				t.Errorf("%s at %d services: p99 %s beyond the per-connection bound %s", tb.modes[i], n, p99[i], connTimeout)
			}
		}
	}
	for _, p := range []string{"p50", "p99"} {
		for i, c := range cells(labelChange(p, small, large)) {
			if v, err := strconv.ParseFloat(strings.TrimSuffix(c, "%"), 64); err != nil || !strings.HasSuffix(c, "%") || v <= -100 {
				t.Errorf("%s change, %s: %q is not a percentage above -100%%", p, tb.modes[i], c)
			}
		}
	}
	for i, c := range cells(labelConns) {
		var conns, failed int
		if _, err := fmt.Sscanf(strings.ReplaceAll(c, ",", ""), "%d (%d)", &conns, &failed); err != nil {
			t.Errorf("%s, %s: %q: %v", labelConns, tb.modes[i], c, err)
			continue
		}
		// Every connection goes to a live echo server through a loaded
		// service: a failure means the mode lost one.
		if conns != 2*o.Conns || failed != 0 {
			t.Errorf("%s: %d connections, %d failed; want %d, 0", tb.modes[i], conns, failed, 2*o.Conns)
		}
	}
	for i, c := range cells(labelPeakRSS) {
		if mb, err := parseMB(c); err != nil || mb < 1 {
			t.Errorf("%s, %s: %q is not a size of at least 1 MB", labelPeakRSS, tb.modes[i], c)
		}
	}
	for i, c := range cells(labelHelperRSS) {
		if mb, err := parseMB(c); c != "none seen" && (err != nil || mb <= 0) {
			t.Errorf("%s, %s: %q is neither a size nor \"none seen\"", labelHelperRSS, tb.modes[i], c)
		}
	}
	// The iptables mode runs iptables-restore: its memory is the helper's.
	if i := slices.Index(tb.modes, "iptables"); i >= 0 && cells(labelHelperRSS)[i] == "none seen" {
		t.Errorf("iptables: no helper process seen")
	}
	if !slices.ContainsFunc(tb.tail, func(l string) bool {
		mb, err := parseMB(strings.TrimPrefix(l, labelBaseline+": peak RSS "))
		return strings.HasPrefix(l, labelBaseline+": peak RSS ") && err == nil && mb >= 1
	}) {
		t.Errorf("no line %q with a size below the table: %q", labelBaseline+": peak RSS", tb.tail)
	}
}

// TestInterruptedRunLeavesNothing runs the benchmark as a program, stops
// it in the middle of the nftables latency run, and checks that the child
// (which holds every namespace the run made, in a mount namespace of its
// own) is gone and that the parent reports the interruption: by Ctrl-C
// (SIGINT to the process group, as a terminal sends it), and by SIGKILL
// of the parent alone (the child must die with it).
func TestInterruptedRunLeavesNothing(t *testing.T) {
	needRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stop  func(parent *os.Process) error
		clean bool // the parent exits by itself, with the table
	}{
		{"Ctrl-C", func(p *os.Process) error { return syscall.Kill(-p.Pid, syscall.SIGINT) }, true},
		{"SIGKILL of the parent", func(p *os.Process) error { return p.Kill() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(exe, "-modes=nftables", "-sizes=100", "-conns=100000", "-timeout=2m")
			cmd.Env = append(os.Environ(), envMain+"=1")
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stdout bytes.Buffer
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Wait() })

			// Wait for the child's pid and its first sync.
			childPid, synced := 0, make(chan struct{})
			var lines syncLines
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					l := sc.Text()
					lines.add(l)
					if _, err := fmt.Sscanf(l, "bench/serviceproxy: measuring nftables (child pid %d)", &childPid); err == nil {
						continue
					}
					if strings.Contains(l, "full sync") {
						close(synced)
					}
				}
			}()
			select {
			case <-synced:
			case <-time.After(time.Minute):
				t.Fatalf("no full sync within a minute:\n%s", lines.String())
			}
			if childPid == 0 {
				t.Fatalf("no child pid in:\n%s", lines.String())
			}
			time.Sleep(300 * time.Millisecond) // inside the latency run
			if err := tc.stop(cmd.Process); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var werr error
			select {
			case werr = <-done:
			case <-time.After(45 * time.Second):
				t.Fatalf("the benchmark did not end within 45 s of the signal:\n%s", lines.String())
			}
			deadline := time.Now().Add(10 * time.Second)
			for processExists(childPid) {
				if time.Now().After(deadline) {
					t.Fatalf("child %d still runs 10 s after the parent ended", childPid)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("stderr:\n%sstdout:\n%s", lines.String(), stdout.String())
			if tc.clean {
				var ee *exec.ExitError
				if !errors.As(werr, &ee) || ee.ExitCode() != 1 {
					t.Errorf("exit: %v, want status 1 (a mode failed)", werr)
				}
				if !strings.Contains(stdout.String(), "nftables   error:") {
					t.Errorf("the table does not report the interruption:\n%s", stdout.String())
				}
			}
		})
	}
}

// processExists tells whether pid is a live process (not a zombie).
func processExists(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

type syncLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLines) add(s string) { l.mu.Lock(); l.b.WriteString(s + "\n"); l.mu.Unlock() }
func (l *syncLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		want    options
		child   string
		wantErr string
	}{
		{name: "defaults: the issue's sizes", args: nil,
			want: options{Sizes: []int{100, 1000, 10000}, Endpoints: 10, Conns: 2000, AddRepeats: 5, Timeout: 15 * time.Minute}},
		{name: "quick", args: []string{"-quick"},
			want: options{Sizes: []int{100, 1000}, Endpoints: 10, Conns: 200, AddRepeats: 3, Timeout: 5 * time.Minute}},
		{name: "explicit flags win over -quick", args: []string{"-quick", "-conns=50", "-sizes=10,20"},
			want: options{Sizes: []int{10, 20}, Endpoints: 10, Conns: 50, AddRepeats: 3, Timeout: 5 * time.Minute}},
		{name: "sizes sorted and deduplicated, modes listed", args: []string{"-sizes=1_000,100,100", "-modes=iptables, nftables,iptables"},
			want: options{Sizes: []int{100, 1000}, Endpoints: 10, Conns: 2000, AddRepeats: 5, Timeout: 15 * time.Minute, Modes: []string{"iptables", "nftables"}}},
		{name: "child", args: []string{"-child=nftables", "-sizes=5", "-v"}, child: "nftables",
			want: options{Sizes: []int{5}, Endpoints: 10, Conns: 2000, AddRepeats: 5, Timeout: 15 * time.Minute, Verbose: true}},
		{name: "zero size", args: []string{"-sizes=0"}, wantErr: "not a positive number"},
		{name: "not a size", args: []string{"-sizes=10k"}, wantErr: "not a positive number"},
		{name: "no endpoints", args: []string{"-endpoints=0"}, wantErr: "-endpoints 0"},
		{name: "no connections", args: []string{"-conns=0"}, wantErr: "-conns 0"},
		{name: "no adds", args: []string{"-adds=0"}, wantErr: "-adds 0"},
		{name: "negative timeout", args: []string{"-timeout=-1s"}, wantErr: "-timeout"},
		{name: "beyond the synthetic address plan", args: []string{"-sizes=2000000"}, wantErr: "10.96.0.0/12"},
		{name: "stray argument", args: []string{"nftables"}, wantErr: "unexpected arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, child, err := parseArgs(tc.args, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(o) != fmt.Sprint(tc.want) || child != tc.child {
				t.Fatalf("got %+v child %q\nwant %+v child %q", o, child, tc.want, tc.child)
			}
			// What a child gets back is the same run (of its one mode).
			back, c, err := parseArgs(o.childArgs("m"), io.Discard)
			o.Modes = nil
			if err != nil || c != "m" || fmt.Sprint(back) != fmt.Sprint(o) {
				t.Fatalf("child args %v parse to %+v %q %v", o.childArgs("m"), back, c, err)
			}
		})
	}
}

func TestPlanModes(t *testing.T) {
	registered := serviceproxy.Modes()
	plans := planModes([]string{"userspace", "nosuchmode", "ipvs", "nftables", "userspace"})
	var names []string
	for _, p := range plans {
		names = append(names, p.name)
	}
	if want := []string{"nftables", "ipvs", "userspace", "nosuchmode"}; !slices.Equal(names, want) {
		t.Fatalf("order %v, want %v (kernel modes first, no repeats)", names, want)
	}
	for _, p := range plans {
		switch {
		case p.name == "nosuchmode" && !strings.Contains(p.skip, "not registered"):
			t.Errorf("unknown mode not skipped: %+v", p)
		case p.name == "ipvs" && ipvsMissing() != "" && p.skip != ipvsMissing():
			t.Errorf("ipvs on a kernel without IPVS: skip %q, want %q", p.skip, ipvsMissing())
		case (p.name == "nftables" || p.name == "userspace") && slices.Contains(registered, p.name) && p.skip != "":
			t.Errorf("registered mode %s skipped: %s", p.name, p.skip)
		}
	}
}

// TestWriteTable prints made-up results and checks the layout: a column
// per mode that ran, the goals beside the figures, the goal check, and
// the skipped and failed modes below.
func TestWriteTable(t *testing.T) {
	o := options{Sizes: []int{100, 1000, 10000}, Endpoints: 10, Conns: 2000, AddRepeats: 5}
	lat := func(p50, p99 time.Duration) *latency {
		return &latency{Conns: 2000, P50: p50, P99: p99, Max: p99}
	}
	ms := time.Millisecond
	results := []modeResult{
		{Mode: "nftables", Sizes: []sizeResult{
			{Services: 100, FullSync: 10 * ms, Latency: lat(100*time.Microsecond, 200*time.Microsecond), Direct: lat(60*time.Microsecond, 90*time.Microsecond)},
			{Services: 1000, FullSync: 50 * ms},
			{Services: 10000, FullSync: 1500 * ms, Latency: lat(105*time.Microsecond, 300*time.Microsecond)},
		}, AddOne: 2 * ms, AddOneMax: 3 * ms, AddAt: 10000, AddRepeats: 5, PeakRSS: 120e6},
		{Mode: "iptables", Sizes: []sizeResult{
			{Services: 100, FullSync: 90 * ms, Latency: lat(100*time.Microsecond, 200*time.Microsecond)},
			{Services: 1000, FullSync: 5 * time.Second},
		}, Err: "1000 services: boom", PeakRSS: 50e6, HelperPeakRSS: 60e6, Helper: "iptables-restore"},
		{Mode: "ipvs", Skipped: "no IPVS here"},
	}
	results[1].Sizes[0].Latency.Failed = 3
	results[1].Sizes[0].Latency.FirstErr = "reset"
	var b bytes.Buffer
	writeTable(&b, o, results, &modeResult{Mode: noopMode, PeakRSS: 30e6})
	tb := parseTable(t, b.String())
	if !slices.Equal(tb.modes, []string{"nftables", "iptables"}) {
		t.Fatalf("columns %v", tb.modes)
	}
	for _, tc := range []struct {
		label string
		cells []string
		goal  string
	}{
		{labelFullSync(100, 10), []string{"10.0 ms", "90.0 ms"}, "-"},
		{labelFullSync(10000, 10), []string{"1.50 s", "-"}, "< 2.00 s"},
		{labelAddOne(10000), []string{"2.00 ms", "-"}, "< 20.0 ms"},
		{labelP50(100), []string{"100 µs", "100 µs"}, "-"},
		{labelP99(10000), []string{"300 µs", "-"}, "-"},
		{labelDirect(100), []string{"60 µs", "-"}, "-"},
		{labelChange("p50", 100, 10000), []string{"+5.0%", "-"}, "<= +10%"},
		{labelChange("p99", 100, 10000), []string{"+50.0%", "-"}, "-"},
		{labelConns, []string{"4,000 (0)", "2,000 (3)"}, "-"},
		{labelPeakRSS, []string{"120.0 MB", "50.0 MB"}, "-"},
		{labelHelperRSS, []string{"none seen", "60.0 MB"}, "-"},
	} {
		if got := tb.rows[tc.label]; !slices.Equal(got, tc.cells) || tb.goals[tc.label] != tc.goal {
			t.Errorf("row %q: %q goal %q, want %q goal %q", tc.label, got, tb.goals[tc.label], tc.cells, tc.goal)
		}
	}
	for _, want := range []string{
		"iptables   error: 1000 services: boom",
		"iptables   largest helper process: iptables-restore",
		labelBaseline + ": peak RSS 30.0 MB",
		"ipvs       skipped: no IPVS here",
		"iptables   3 of 2,000 connections via the service IP failed at 100 services (first: reset)",
		"goal check (nftables): full sync of 10,000 x 10 1.50 s (< 2.00 s) met; one added service 2.00 ms (< 20.0 ms) met; p50 at 10,000 +5.0% of p50 at 100 (<= +10%) met",
	} {
		if !slices.Contains(tb.tail, want) {
			t.Errorf("no line %q below the table:\n%s", want, strings.Join(tb.tail, "\n"))
		}
	}
	// A goal missed says so.
	results[0].AddOne = 25 * ms
	b.Reset()
	writeTable(&b, o, results, nil)
	if !strings.Contains(b.String(), "one added service 25.0 ms (< 20.0 ms) NOT met") {
		t.Errorf("a missed goal is not reported:\n%s", b.String())
	}
}

func TestPercentile(t *testing.T) {
	us := func(n ...int) []time.Duration {
		var out []time.Duration
		for _, v := range n {
			out = append(out, time.Duration(v)*time.Microsecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{"one value", us(7), 50, 7 * time.Microsecond},
		{"one value p99", us(7), 99, 7 * time.Microsecond},
		{"nearest rank p50 of 4", us(1, 2, 3, 4), 50, 2 * time.Microsecond},
		{"nearest rank p99 of 4", us(1, 2, 3, 4), 99, 4 * time.Microsecond},
		{"p50 of 1..100", us(hundred...), 50, 50 * time.Microsecond},
		{"p99 of 1..100", us(hundred...), 99, 99 * time.Microsecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{fmtInt(0), "0"}, {fmtInt(999), "999"}, {fmtInt(1000), "1,000"}, {fmtInt(10000), "10,000"},
		{fmtInt(1234567), "1,234,567"}, {fmtInt(-1000), "-1,000"},
		{fmtDur(85 * time.Microsecond), "85 µs"}, {fmtDur(1020 * time.Microsecond), "1.02 ms"},
		{fmtDur(79600 * time.Microsecond), "79.6 ms"}, {fmtDur(517 * time.Millisecond), "517 ms"},
		{fmtDur(5870 * time.Millisecond), "5.87 s"},
		{fmtMB(0), "-"}, {fmtMB(42_600_000), "42.6 MB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// A scope stands in for *testing.T in testnet: clean-ups run last first,
// also after one panics; Fatalf and Skipf end the function run was given.
func TestScope(t *testing.T) {
	sc := newScope(nil)
	var order []int
	for i := range 3 {
		sc.Cleanup(func() {
			order = append(order, i)
			if i == 1 {
				panic("clean-up 1 fails")
			}
		})
	}
	reached := false
	err := sc.run(func() error {
		sc.Fatalf("testnet.AddPod: %s", "pod CIDR full")
		reached = true
		return nil
	})
	if err == nil || err.Error() != "testnet.AddPod: pod CIDR full" || reached {
		t.Fatalf("Fatalf: run returned %v, code after it reached %v", err, reached)
	}
	if err := sc.run(func() error { sc.Skipf("not root"); return nil }); err == nil || err.Error() != "skipped: not root" {
		t.Fatalf("Skipf: %v", err)
	}
	sc.Errorf("reported %d", 1)
	err = sc.close()
	if !slices.Equal(order, []int{2, 1, 0}) {
		t.Errorf("clean-ups ran in order %v, want [2 1 0]", order)
	}
	if err == nil || !strings.Contains(err.Error(), "reported 1") || !strings.Contains(err.Error(), "clean-up 1 fails") {
		t.Errorf("close: %v, want the Errorf and the panicking clean-up", err)
	}
	if err := sc.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// The child refuses to run (and mount anything) in its parent's
// namespaces, as a person running -child by hand would have it.
func TestChildNeedsPrivateNamespaces(t *testing.T) {
	err := privateNamespaces()
	if err == nil || !strings.Contains(err.Error(), "-child is internal") {
		t.Fatalf("in the test's own namespaces: %v, want a refusal", err)
	}
}

// Without root the benchmark says what it needs and exits 0 (run as
// nobody when the test has root; as itself otherwise).
func TestWithoutRootSaysSoAndExitsZero(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// A copy nobody may run (the build directory is root's alone).
		dir, err := os.MkdirTemp("", "bench-serviceproxy-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		b, err := os.ReadFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		exe = dir + "/bench.test"
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	cmd := exec.Command(exe, "-quick")
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), envMain+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, os.ErrPermission) || (err != nil && strings.Contains(err.Error(), "permission denied")) {
		t.Skipf("cannot run the test binary as nobody: %v", err)
	}
	if err != nil {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "needs root") || regexp.MustCompile(`(?m)^work `).Match(out) {
		t.Fatalf("output %q: want the reason and no table", out)
	}
}
