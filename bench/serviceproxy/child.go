package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/serviceproxy"
	"github.com/switchboard-dev/switchboard/serviceproxy/iptables"
)

// The child process measures one mode. The parent starts it in a mount
// and a network namespace of its own (Unshareflags) with a parent-death
// signal, so that everything it creates goes away with it, even when it
// is killed: the child mounts a tmpfs on /run/netns before testnet makes
// its namespace files there, and its own network namespace keeps any
// mistake away from the machine's.

// Ports of the echo servers in the "echo" pod: the measured service's
// endpoints are the echo pod's address on ports echoPort..echoPort+E-1, so
// that it has as many endpoints as every other service.
const echoPort = 8080

// servicePort is the synthetic services' port (serviceproxy.SyntheticState).
const servicePort = 80

// Per-connection bound of the latency runs.
const connTimeout = 2 * time.Second

// noopMode is the child's pseudo-mode for the harness's own share of
// memory: a backend that does nothing, the same sizes and adds, no
// connections (nothing would answer them). It is no valid mode name.
const noopMode = ":noop"

type noopBackend struct{}

func (noopBackend) Name() string                                    { return noopMode }
func (noopBackend) Sync(context.Context, *serviceproxy.State) error { return nil }
func (noopBackend) Cleanup(context.Context) error                   { return nil }

// modeResult is what a child reports (JSON on fd 3).
type modeResult struct {
	Mode    string
	Skipped string `json:",omitempty"`
	Err     string `json:",omitempty"`
	Sizes   []sizeResult
	// AddOne is the median time of AddRepeats incremental syncs, each
	// adding one service, at the largest size; AddOneMax the slowest.
	AddOne, AddOneMax time.Duration
	AddAt, AddRepeats int
	// PeakRSS is the child's VmHWM in bytes; HelperPeakRSS the largest
	// VmHWM of the processes it started (see helperWatch), 0 when none
	// was seen; Helper that process's name.
	PeakRSS, HelperPeakRSS int64
	Helper                 string `json:",omitempty"`
}

type sizeResult struct {
	Services int
	FullSync time.Duration
	Latency  *latency `json:",omitempty"` // through the service IP
	Direct   *latency `json:",omitempty"` // straight to the echo pod
}

type latency struct {
	Conns, Failed int
	P50, P99, Max time.Duration
	FirstErr      string `json:",omitempty"`
}

// childMain runs mode's measurement and writes the result to fd 3. It
// returns the exit code.
func childMain(mode string, o options) int {
	res := modeResult{Mode: mode}
	out := os.NewFile(3, "result")
	if out == nil {
		fmt.Fprintln(os.Stderr, "bench/serviceproxy: -child is internal: the result goes to fd 3")
		return 2
	}
	syscall.CloseOnExec(3) // not for nft, iptables-restore & co.
	helpers := watchHelpers()
	err := privateNamespaces()
	if err == nil {
		err = mountNetnsTmpfs()
	}
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		err = measureMode(ctx, mode, o, &res)
	}
	if err != nil {
		res.Err = err.Error()
	}
	res.HelperPeakRSS, res.Helper = helpers.close()
	res.PeakRSS = procVmHWM(os.Getpid())
	if err := json.NewEncoder(out).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "bench/serviceproxy: writing the result:", err)
		return 1
	}
	return 0
}

// privateNamespaces makes sure the parent gave this process mount and
// network namespaces of its own, so that the tmpfs on /run/netns hides
// nothing of the machine's and nothing this process does by mistake
// reaches the machine's network namespace.
func privateNamespaces() error {
	for _, ns := range []string{"mnt", "net"} {
		self, err1 := os.Readlink("/proc/self/ns/" + ns)
		parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", os.Getppid(), ns))
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("-child is internal: %w", err)
		}
		if self == parent {
			return fmt.Errorf("-child is internal: it must run in a %s namespace of its own (the parent starts it so)", ns)
		}
	}
	return nil
}

// mountNetnsTmpfs mounts a tmpfs on /run/netns in this process's private
// mount namespace: testnet's namespace files and bind mounts live there
// and vanish with the process, however it ends.
func mountNetnsTmpfs() error {
	if err := os.MkdirAll(testnet.NetnsDir, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", testnet.NetnsDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=1m"); err != nil {
		return fmt.Errorf("tmpfs on %s in the private mount namespace: %w", testnet.NetnsDir, err)
	}
	return nil
}

// displayName is how progress lines and the table name a mode.
func displayName(mode string) string {
	if mode == noopMode {
		return "harness alone (no-op backend)"
	}
	return mode
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench/serviceproxy: "+format+"\n", args...)
}

// measureMode loads every size in turn into a fresh node (a full sync),
// keeps the nodes of the smallest and the largest size, measures their
// latencies side by side, then adds services one by one to the largest.
func measureMode(ctx context.Context, mode string, o options, res *modeResult) (err error) {
	small, large := slices.Min(o.Sizes), slices.Max(o.Sizes)
	var kept []*loaded
	defer func() {
		for i := len(kept) - 1; i >= 0; i-- {
			err = errors.Join(err, kept[i].close())
		}
	}()
	for _, n := range o.Sizes {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("stopped before %d services: %w", n, context.Cause(ctx))
		}
		ld, err := load(ctx, mode, o, n)
		if ld != nil && (err == nil || ld.fullSync > 0) {
			res.Sizes = append(res.Sizes, sizeResult{Services: n, FullSync: ld.fullSync})
		}
		if err != nil {
			if ld != nil {
				err = errors.Join(err, ld.close())
			}
			return fmt.Errorf("%d services: %w", n, err)
		}
		progress("%s: %d services x %d endpoints: full sync %s", displayName(mode), n, o.Endpoints, fmtDur(ld.fullSync))
		if n == small || n == large {
			kept = append(kept, ld)
		} else if err := ld.close(); err != nil {
			return fmt.Errorf("%d services: %w", n, err)
		}
	}

	// Latency: every kept node's service IP and, as the floor, its echo
	// pod's own address, one connection to each in turn, so that the
	// machine's other load falls on all alike.
	var targets []target
	for _, ld := range kept {
		if mode == noopMode {
			break
		}
		targets = append(targets,
			target{name: fmt.Sprintf("%d services, straight to the pod %s", ld.n, ld.direct), client: ld.client, addr: ld.direct, want: ld.echoName},
			target{name: fmt.Sprintf("%d services, via %s (%s)", ld.n, ld.vip, ld.measured), client: ld.client, addr: ld.vip, want: ld.echoName})
	}
	lats, err := measureLatencies(ctx, targets, o.Conns)
	if err != nil {
		return err
	}
	for i, ld := range kept[:len(lats)/2] {
		sr := &res.Sizes[slices.IndexFunc(res.Sizes, func(s sizeResult) bool { return s.Services == ld.n })]
		sr.Direct, sr.Latency = lats[2*i], lats[2*i+1]
		progress("%s: %d services: connect+echo via the service IP p50 %s p99 %s, to the pod IP p50 %s p99 %s (%d connections each)",
			mode, ld.n, fmtDur(sr.Latency.P50), fmtDur(sr.Latency.P99), fmtDur(sr.Direct.P50), fmtDur(sr.Direct.P99), sr.Latency.Conns)
	}

	// One added service at a time, at the largest size.
	ld := kept[len(kept)-1]
	times := make([]time.Duration, 0, o.AddRepeats)
	prev := ld.state
	for r := 0; r < o.AddRepeats; r++ {
		next := nextState(prev)
		if _, err := serviceproxy.AddSyntheticService(next, large+r, o.Endpoints); err != nil {
			return err
		}
		d, err := ld.sync(ctx, next)
		if err != nil {
			return fmt.Errorf("%d services: incremental sync adding service %d: %w", large, large+r, err)
		}
		times = append(times, d)
		prev = next
	}
	slices.Sort(times)
	res.AddAt, res.AddRepeats = large, len(times)
	res.AddOne, res.AddOneMax = times[len(times)/2], times[len(times)-1]
	progress("%s: one added service at %d: median %s, max %s (%d adds)", displayName(mode), large, fmtDur(res.AddOne), fmtDur(res.AddOneMax), len(times))
	return nil
}

// loaded is a node namespace with an echo pod, a client pod and a mode's
// backend holding n synthetic services.
type loaded struct {
	n        int
	sc       *scope
	node     *testnet.Host
	client   *testnet.Host
	echoName string
	be       serviceproxy.Backend
	state    *serviceproxy.State
	measured serviceproxy.ServicePortName
	vip      netip.AddrPort // the measured service's cluster IP and port
	direct   netip.AddrPort // one of the echo pod's servers
	fullSync time.Duration
}

// close removes the backend's state and the namespaces.
func (ld *loaded) close() error { return ld.sc.close() }

// sync runs the backend's Sync in the node namespace and times it.
func (ld *loaded) sync(ctx context.Context, st *serviceproxy.State) (time.Duration, error) {
	var d time.Duration
	err := ld.sc.run(func() error {
		return ld.node.Do(func() error {
			start := time.Now()
			err := ld.be.Sync(ctx, st)
			d = time.Since(start)
			return err
		})
	})
	return d, err
}

// load builds a node with an echo pod (a TCP echo server per endpoint
// port) and a client pod, and loads n synthetic services into mode's
// backend with one full sync, timed. One of them, the measured service,
// has the echo pod's ports as its endpoints. On error the caller closes
// what was returned.
func load(ctx context.Context, mode string, o options, n int) (*loaded, error) {
	var logw io.Writer
	if o.Verbose {
		logw = os.Stderr
	}
	ld := &loaded{n: n, sc: newScope(logw)}
	sc := ld.sc
	err := sc.run(func() error {
		tn := testnet.New(sc, testnet.Options{NodeName: serviceproxy.SyntheticNodeName})
		ld.node = tn.Node()
		echo := tn.AddPod(sc, "echo")
		for k := 0; k < o.Endpoints; k++ {
			echo.ServeTCP(sc, echoPort+k)
		}
		ld.echoName = echo.Name
		ld.client = tn.AddPod(sc, "client")

		st := serviceproxy.SyntheticState(n, o.Endpoints)
		st.Node.IPs = tn.NodeIPs()
		st.ClusterCIDRs = append(st.ClusterCIDRs, tn.PodCIDR())
		ld.measured = serviceproxy.SyntheticServiceName(n / 2)
		eps := make([]*serviceproxy.Endpoint, o.Endpoints)
		for k := range eps {
			eps[k] = &serviceproxy.Endpoint{IP: echo.IP, Port: int32(echoPort + k), Ready: true, Serving: true,
				NodeName: serviceproxy.SyntheticNodeName, IsLocal: true}
		}
		st.Endpoints[ld.measured] = eps
		ld.state = st
		ld.vip = netip.AddrPortFrom(st.Services[ld.measured].ClusterIPs[0], servicePort)
		ld.direct = netip.AddrPortFrom(echo.IP, echoPort)

		logger := slog.New(slog.DiscardHandler)
		if o.Verbose {
			logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		}
		var be serviceproxy.Backend = noopBackend{}
		switch mode {
		case noopMode:
		case iptablesLegacy:
			p, err := iptables.New(iptables.Config{Legacy: true,
				NodeName: serviceproxy.SyntheticNodeName, NodeIPs: st.Node.IPs, ClusterCIDRs: st.ClusterCIDRs, Logger: logger,
			})
			if err != nil {
				return err
			}
			be = p
		default:
			var err error
			be, err = serviceproxy.NewMode(mode, serviceproxy.ModeConfig{
				NodeName: serviceproxy.SyntheticNodeName, NodeIPs: st.Node.IPs, ClusterCIDRs: st.ClusterCIDRs, Logger: logger,
			})
			if err != nil {
				return err
			}
		}
		ld.be = be
		// Registered before the first rule is written; run in the node
		// namespace, where the backend acts (removing the namespace would
		// do as well; Cleanup also ends a userspace proxy's goroutines).
		node := ld.node
		sc.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := node.Do(func() error { return be.Cleanup(cctx) }); err != nil {
				sc.Errorf("%s: Cleanup: %v", mode, err)
			}
		})
		return nil
	})
	if err != nil {
		return ld, err
	}
	d, err := ld.sync(ctx, ld.state)
	if err != nil {
		return ld, fmt.Errorf("full sync: %w", err)
	}
	ld.fullSync = d
	return ld, nil
}

// nextState is the State after prev was applied, as the core hands it
// over: the same objects, fresh maps, nothing changed yet, not Full.
func nextState(prev *serviceproxy.State) *serviceproxy.State {
	next := *prev
	next.Services = maps.Clone(prev.Services)
	next.Endpoints = maps.Clone(prev.Endpoints)
	next.Changed = map[serviceproxy.ServicePortName]bool{}
	next.Full = false
	next.Removed, next.RemovedServices = nil, nil
	next.StaleUDPEndpoints, next.StaleUDPServices = nil, nil
	next.Generation++
	return &next
}

// target is where latency connections go: from client to addr, whose
// server greets with want.
type target struct {
	name   string
	client *testnet.Host
	addr   netip.AddrPort
	want   string
}

// measureLatencies opens conns connections to each target (after a few
// unmeasured ones), one at a time, to the targets in turn. Each
// connection: connect, read the greeting ("NAME\n"), send a line, read it
// back, close; the time of all that is what is measured. Each target has
// a goroutine locked in its client's namespace, where the sockets are
// made. It fails when a target takes no connection at all, or when ctx
// ends; single failures are counted. The whole run is bounded: what was
// measured by then is reported.
func measureLatencies(ctx context.Context, targets []target, conns int) ([]*latency, error) {
	const warmup = 20
	if len(targets) == 0 {
		return nil, nil
	}
	type result struct {
		d   time.Duration
		err error
	}
	workers := make([]chan chan result, len(targets))
	done := make(chan error, len(targets))
	for i, tg := range targets {
		req := make(chan chan result)
		workers[i] = req
		go func() {
			err := tg.client.Do(func() error {
				br := bufio.NewReaderSize(nil, 256)
				for reply := range req {
					d, err := connectEcho(ctx, tg.addr, tg.want, br)
					reply <- result{d, err}
				}
				return nil
			})
			if err != nil { // never got into the namespace: answer with that
				for reply := range req {
					reply <- result{0, err}
				}
			}
			done <- err
		}()
	}
	stopWorkers := func() error {
		for _, w := range workers {
			close(w)
		}
		var errs []error
		for range workers {
			errs = append(errs, <-done)
		}
		return errors.Join(errs...)
	}
	ask := func(i int) result {
		reply := make(chan result, 1)
		workers[i] <- reply
		return <-reply
	}

	for i, tg := range targets {
		ok := false
		var last error
		for range warmup {
			if r := ask(i); r.err == nil {
				ok = true
			} else {
				last = r.err
			}
		}
		if !ok {
			return nil, errors.Join(fmt.Errorf("%s: no connection got through in %d tries: %w", tg.name, warmup, last), stopWorkers())
		}
	}
	lats := make([]*latency, len(targets))
	times := make([][]time.Duration, len(targets))
	for i := range lats {
		lats[i] = &latency{}
		times[i] = make([]time.Duration, 0, conns)
	}
	deadline := time.Now().Add(30*time.Second + time.Duration(conns*len(targets))*10*time.Millisecond)
	for c := 0; c < conns && ctx.Err() == nil && time.Now().Before(deadline); c++ {
		for i := range targets {
			r := ask(i)
			lats[i].Conns++
			if r.err != nil {
				lats[i].Failed++
				if lats[i].FirstErr == "" {
					lats[i].FirstErr = r.err.Error()
				}
				continue
			}
			times[i] = append(times[i], r.d)
		}
	}
	if err := stopWorkers(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("latency: stopped after %d connections each: %w", lats[0].Conns, context.Cause(ctx))
	}
	for i, l := range lats {
		if len(times[i]) == 0 {
			return nil, fmt.Errorf("%s: every connection failed (first: %s)", targets[i].name, l.FirstErr)
		}
		slices.Sort(times[i])
		l.P50 = percentile(times[i], 50)
		l.P99 = percentile(times[i], 99)
		l.Max = times[i][len(times[i])-1]
	}
	return lats, nil
}

// connectEcho makes one measured connection from the calling thread's
// namespace.
func connectEcho(ctx context.Context, addr netip.AddrPort, want string, br *bufio.Reader) (time.Duration, error) {
	start := time.Now()
	d := net.Dialer{Timeout: connTimeout}
	c, err := d.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(connTimeout))
	br.Reset(c)
	greeting, err := br.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("greeting: %w", err)
	}
	if greeting != want+"\n" {
		return 0, fmt.Errorf("greeting %q, want %q", greeting, want)
	}
	if _, err := io.WriteString(c, "ping\n"); err != nil {
		return 0, err
	}
	echo, err := br.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("echo: %w", err)
	}
	if echo != "ping\n" {
		return 0, fmt.Errorf("echo %q", echo)
	}
	return time.Since(start), nil
}

// percentile is the nearest-rank percentile p of sorted times.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (len(sorted)*p + 99) / 100 // ceil(n*p/100)
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// decodeResult reads a child's JSON result.
func decodeResult(b []byte) (modeResult, error) {
	var r modeResult
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("the child's result %q: %w", truncate(string(b), 200), err)
	}
	return r, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
