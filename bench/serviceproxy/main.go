// Command serviceproxy is the service proxy benchmark (issue 4): for each
// proxy mode registered with serviceproxy (nftables, iptables, userspace;
// ipvs where the kernel has IPVS), used through serviceproxy.NewMode and
// the Backend interface, it measures
//
//   - the full sync of 100, 1,000 and 10,000 ClusterIP services x 10
//     endpoints (serviceproxy.SyntheticState) into an empty node;
//   - one added service at the largest size (an incremental sync; the
//     median of a few);
//   - TCP connect+echo latency (p50, p99; ~2,000 connections one after
//     the other) from a client pod to an echo pod through the cluster IP
//     of one of the services, with the smallest and the largest number
//     loaded;
//   - the peak memory of the process the mode runs in (VmHWM) and of the
//     largest helper process it started (nft, iptables-restore, ...).
//
// and prints a table with the goals beside the figures (nftables: full
// sync of 10,000 x 10 under 2 s, one added service under 20 ms, connect
// latency at 10,000 within 10% of that at 100).
//
// Everything happens in throwaway network namespaces (internal/testnet:
// a node with a bridge, an echo pod, a client pod), in a child process per
// mode (this binary again, with the internal -child flag) that runs in
// mount and network namespaces of its own and dies with its parent: what
// it creates goes away when it ends, also on Ctrl-C or a crash. Nothing
// touches the machine's own network namespace. It needs root; without
// it, it says so and exits 0.
//
//	go run ./bench/serviceproxy [-quick] [-sizes 100,1000,10000] [-endpoints 10] [-conns 2000] [-adds 5] [-modes nftables,iptables] [-timeout 15m] [-v]
//
// The package owns bench/serviceproxy only; it changes no mode's code and
// never touches the root namespace's rules, routes or links.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/spawn"
	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/ipvs"
	_ "github.com/switchboard-dev/switchboard/serviceproxy/modes/all"
)

// options shape a run; the parent hands them to each child as flags.
type options struct {
	Sizes      []int         // service counts, ascending; a full sync at each
	Endpoints  int           // endpoints per service
	Conns      int           // connections per latency run
	AddRepeats int           // incremental adds timed at the largest size
	Modes      []string      // empty: every registered mode, and ipvs
	Timeout    time.Duration // per mode (child process)
	Verbose    bool
}

// quick is what -quick sets (flags given explicitly still win).
var quick = options{Sizes: []int{100, 1000}, Conns: 200, AddRepeats: 3, Timeout: 5 * time.Minute}

func main() { os.Exit(mainArgs(os.Args[1:], os.Stdout, os.Stderr)) }

// mainArgs is main with its arguments and outputs; it returns the exit code.
func mainArgs(args []string, stdout, stderr io.Writer) int {
	o, child, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "bench/serviceproxy:", err)
		return 2
	}
	if child != "" {
		return childMain(child, o)
	}
	if uid := os.Geteuid(); uid != 0 {
		fmt.Fprintf(stdout, "bench/serviceproxy: needs root (it creates network namespaces and programs nftables/iptables inside them); running as uid %d, nothing measured\n", uid)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "bench/serviceproxy:", err)
		return 1
	}
	return 0
}

func parseArgs(args []string, stderr io.Writer) (options, string, error) {
	fs := flag.NewFlagSet("bench/serviceproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizes := fs.String("sizes", "100,1000,10000", "service counts (comma-separated); full sync at each, latency at the smallest and the largest, added services at the largest")
	eps := fs.Int("endpoints", 10, "endpoints per service")
	conns := fs.Int("conns", 2000, "connections per latency run")
	adds := fs.Int("adds", 5, "incremental syncs, each adding one service, at the largest size (the median is shown)")
	modes := fs.String("modes", "", "modes to measure (comma-separated; default: every registered mode, and ipvs)")
	timeout := fs.Duration("timeout", 15*time.Minute, "bound on each mode's measurement")
	isQuick := fs.Bool("quick", false, "sizes 100 and 1,000, 200 connections, 3 adds (for tests)")
	verbose := fs.Bool("v", false, "log the harness and the modes' warnings to stderr")
	child := fs.String("child", "", "internal: measure this mode in this process (the parent starts it)")
	fs.Usage = func() { // -child is left out
		fmt.Fprintf(fs.Output(), "usage: go run ./bench/serviceproxy [flags] (as root)\n")
		fs.VisitAll(func(f *flag.Flag) {
			if f.Name == "child" {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(fs.Output(), "  -%s\n    \t%s", strings.TrimSpace(f.Name+" "+name), usage)
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
				fmt.Fprintf(fs.Output(), " (default %s)", f.DefValue)
			}
			fmt.Fprintln(fs.Output())
		})
	}
	if err := fs.Parse(args); err != nil {
		return options{}, "", err
	}
	if fs.NArg() > 0 {
		return options{}, "", fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o := options{Endpoints: *eps, Conns: *conns, AddRepeats: *adds, Timeout: *timeout, Verbose: *verbose}
	var err error
	if o.Sizes, err = parseSizes(*sizes); err != nil {
		return o, "", err
	}
	if *isQuick {
		if !set["sizes"] {
			o.Sizes = quick.Sizes
		}
		if !set["conns"] {
			o.Conns = quick.Conns
		}
		if !set["adds"] {
			o.AddRepeats = quick.AddRepeats
		}
		if !set["timeout"] {
			o.Timeout = quick.Timeout
		}
	}
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); m != "" && !slices.Contains(o.Modes, m) {
			o.Modes = append(o.Modes, m)
		}
	}
	switch {
	case o.Endpoints < 1 || o.Endpoints > 100:
		return o, "", fmt.Errorf("-endpoints %d: must be 1 to 100", o.Endpoints)
	case o.Conns < 1 || o.Conns > 100000:
		return o, "", fmt.Errorf("-conns %d: must be 1 to 100,000", o.Conns)
	case o.AddRepeats < 1 || o.AddRepeats > 100:
		return o, "", fmt.Errorf("-adds %d: must be 1 to 100", o.AddRepeats)
	case o.Timeout <= 0:
		return o, "", fmt.Errorf("-timeout %s: must be positive", o.Timeout)
	}
	if err := serviceproxy.CheckSyntheticSize(slices.Max(o.Sizes)+o.AddRepeats, o.Endpoints); err != nil {
		return o, "", fmt.Errorf("-sizes/-endpoints/-adds: %w", err)
	}
	return o, *child, nil
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.ReplaceAll(strings.TrimSpace(f), "_", "")
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-sizes %q: %q is not a positive number", s, f)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// childArgs are the flags that make a child measure mode with o.
func (o options) childArgs(mode string) []string {
	sizes := make([]string, len(o.Sizes))
	for i, n := range o.Sizes {
		sizes[i] = strconv.Itoa(n)
	}
	args := []string{"-child=" + mode, "-sizes=" + strings.Join(sizes, ","), "-endpoints=" + strconv.Itoa(o.Endpoints),
		"-conns=" + strconv.Itoa(o.Conns), "-adds=" + strconv.Itoa(o.AddRepeats), "-timeout=" + o.Timeout.String()}
	if o.Verbose {
		args = append(args, "-v")
	}
	return args
}

// modeOrder puts the kernel modes first.
var modeOrder = []string{"nftables", "iptables", iptablesLegacy, "ipvs", "userspace"}

// iptablesLegacy is the iptables mode with the x_tables backend
// (iptables-legacy-restore): Debian's iptables is iptables-nft, whose
// restore slows down with rules x chains (kube-proxy's layout at 10,000
// services is 110,000 chains), so both backends are measured.
const iptablesLegacy = "iptables-legacy"

type modePlan struct{ name, skip string }

// planModes lists the modes to measure and why some are skipped.
func planModes(want []string) []modePlan {
	registered := serviceproxy.Modes()
	if len(want) == 0 {
		want = append(slices.Clone(registered), "ipvs")
		if slices.Contains(registered, "iptables") {
			want = append(want, iptablesLegacy)
		}
	}
	rank := func(m string) int {
		if i := slices.Index(modeOrder, m); i >= 0 {
			return i
		}
		return len(modeOrder)
	}
	want = slices.Clone(want)
	slices.SortStableFunc(want, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	want = slices.Compact(want)
	var plans []modePlan
	for _, m := range want {
		p := modePlan{name: m}
		if m == "ipvs" {
			p.skip = ipvsMissing()
		}
		if p.skip == "" && m == iptablesLegacy {
			if _, err := exec.LookPath("iptables-legacy-restore"); err != nil {
				p.skip = "iptables-legacy-restore not found"
			}
		} else if p.skip == "" && !slices.Contains(registered, m) {
			p.skip = fmt.Sprintf("mode %q is not registered (serviceproxy/modes/all does not import it; registered: %s)", m, strings.Join(registered, ", "))
		}
		plans = append(plans, p)
	}
	return plans
}

// ipvsMissing says why this kernel cannot run the IPVS mode (the mode's
// own probe, in a throwaway namespace), or "" when it can.
func ipvsMissing() string {
	if err := ipvs.Probe(); err != nil {
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return ""
}

// run measures every planned mode, each in a child process, and prints
// the table. The error names the modes that failed.
func run(ctx context.Context, o options, stdout, stderr io.Writer) ([]modeResult, error) {
	var results []modeResult
	var failed []string
	for _, p := range planModes(o.Modes) {
		if p.skip != "" {
			results = append(results, modeResult{Mode: p.name, Skipped: p.skip})
			continue
		}
		if ctx.Err() != nil {
			results = append(results, modeResult{Mode: p.name, Err: "not run: interrupted"})
			failed = append(failed, p.name)
			continue
		}
		r := runChild(ctx, p.name, o, stderr)
		if r.Err != "" {
			failed = append(failed, p.name)
		}
		results = append(results, r)
	}
	// The harness's own share of the memory figures.
	var base *modeResult
	if ctx.Err() == nil {
		b := runChild(ctx, noopMode, o, stderr)
		base = &b
	}
	writeTable(stdout, o, results, base)
	if len(failed) > 0 {
		return results, fmt.Errorf("modes with errors: %s", strings.Join(failed, ", "))
	}
	return results, nil
}

// runChild runs this binary with -child=mode in mount and network
// namespaces of its own, killed if this process dies, and reads its
// result from fd 3. Ctrl-C reaches it (same process group); a cancelled
// ctx or an overrun of o.Timeout sends it SIGTERM, then SIGKILL after a
// grace period.
func runChild(ctx context.Context, mode string, o options, stderr io.Writer) modeResult {
	fail := func(err error) modeResult { return modeResult{Mode: mode, Err: err.Error()} }
	exe, err := os.Executable()
	if err != nil {
		return fail(fmt.Errorf("finding this program to run it again: %w", err))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(err)
	}
	defer r.Close()
	// A mode's own bound, plus time to clean up.
	wctx, cancel := context.WithTimeout(ctx, o.Timeout+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(wctx, exe, o.childArgs(mode)...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.ExtraFiles = []*os.File{w} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A private mount namespace (Go makes / private in it) for the
		// tmpfs on /run/netns, a private network namespace, and death
		// with this process.
		Unshareflags: unix.CLONE_NEWNS | unix.CLONE_NEWNET,
		Pdeathsig:    syscall.SIGKILL,
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err = spawn.Start(cmd) // Pdeathsig: from a thread that never ends
	w.Close()
	if err != nil {
		return fail(fmt.Errorf("starting the child: %w", err))
	}
	fmt.Fprintf(stderr, "bench/serviceproxy: measuring %s (child pid %d) ...\n", displayName(mode), cmd.Process.Pid)
	data := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
		data <- b
	}()
	werr := cmd.Wait()
	var b []byte
	select {
	case b = <-data:
	case <-time.After(5 * time.Second): // a grandchild kept fd 3: give up on it
	}
	res, derr := decodeResult(b)
	switch {
	case derr != nil && werr != nil:
		return fail(fmt.Errorf("the child failed: %v (no result: %v)", werr, derr))
	case derr != nil:
		return fail(derr)
	}
	if res.Mode != mode {
		return fail(fmt.Errorf("the child measured %q, not %q", res.Mode, mode))
	}
	if werr != nil && res.Err == "" {
		res.Err = fmt.Sprintf("the child: %v", werr)
	}
	return res
}
