// Command ingress is the ingress controller benchmark (issue 5): `wrk`
// against switchboard's ingress controller and against nginx configured as
// the equivalent reverse proxy, both in front of the same loopback backend
// (a small Go HTTP server this program runs), over plain HTTP and over TLS
// (same certificate, same key), and prints requests/s, p50 and p99 with
// the ratios switchboard/nginx.
//
// The equivalent nginx is what ingress-nginx renders for one Ingress, cut
// to the proxy itself: an upstream block with the endpoint and a
// keepalive pool, proxy_pass over HTTP/1.1 with "Connection: ”", the
// client's Host, X-Request-ID, X-Real-IP and X-Forwarded-For/-Host/-Port
// /-Proto set, TLS 1.2+; worker_processes auto (-workers N: N, and
// GOMAXPROCS=N for ours); no access log on either
// side. nginx runs with a configuration file written to a temporary
// directory (prefix, pid file, logs and temp paths there, `daemon off`),
// as a child of this program, and is stopped at the end; no system nginx
// service is touched. switchboard runs in a child process (this binary
// again) through the real `switchboard ingress` code path
// (ingress/ingresscmd) with manifests written to the same directory.
//
//	go run ./bench/ingress [-quick] [-duration 10s] [-connections 64] [-threads 2] [-warmup 2s] [-rounds 3] [-only http|tls] [-workers N]
//
// Needs wrk and nginx (Debian packages wrk and nginx); without them it
// says so and exits 0. Traffic is loopback only. The package owns
// bench/ingress only and changes no ingress code.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/switchboard-dev/switchboard/ingress"
	"github.com/switchboard-dev/switchboard/ingress/certs"
	"github.com/switchboard-dev/switchboard/ingress/ingresscmd"
	"github.com/switchboard-dev/switchboard/internal/spawn"
)

// childEnv set in the environment makes this binary the switchboard
// ingress child: it serves the manifests of the directory named by the
// variable and prints "READY <http> <https>" when it does.
const childEnv = "SWITCHBOARD_BENCH_INGRESS_CHILD"

// profileEnv names the file the child writes its CPU profile to (-cpuprofile).
const profileEnv = "SWITCHBOARD_BENCH_INGRESS_CPUPROFILE"

// tlsHost is the name the TLS runs use: SNI and Host (wrk sends both from
// the URL), covered by the bench certificate. Plain HTTP runs go to
// 127.0.0.1 and match the Ingress rule without host (a TLS host would be
// redirected to HTTPS).
const tlsHost = "localhost"

// Options shape a run.
type Options struct {
	Duration    time.Duration
	Warmup      time.Duration
	Connections int
	Threads     int
	BodyBytes   int
	// Rounds is how many times each proxy is measured per scenario, the
	// two taking turns (switchboard first in odd rounds, nginx first in
	// even ones) so that a change of load on a shared machine does not
	// land on one side only; the table shows medians and the spread of
	// the per-round ratios.
	Rounds int
	// Only limits the run to one scenario: "http" or "tls" ("": both).
	Only string
	// Pace, when set, makes every wrk connection wait this long (whole
	// milliseconds, wrk's script delay()) after each response before its
	// next request: an offered load below saturation, where the
	// latencies show what each proxy adds rather than the queue of a
	// saturated machine.
	Pace time.Duration
	// Workers is how many cores each proxy may use: nginx's
	// worker_processes and our GOMAXPROCS (0: both "auto", one per CPU).
	Workers int
}

// Defaults and what -quick uses.
var (
	Defaults = Options{Duration: 10 * time.Second, Warmup: 2 * time.Second, Connections: 64, Threads: 2, BodyBytes: 64, Rounds: 3}
	Quick    = Options{Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, Connections: 16, Threads: 2, BodyBytes: 64, Rounds: 1}
)

func main() {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(childMain(dir))
	}
	o := Defaults
	quick := flag.Bool("quick", false, "short run ("+Quick.Duration.String()+", "+strconv.Itoa(Quick.Connections)+" connections) unless other flags say otherwise")
	flag.DurationVar(&o.Duration, "duration", o.Duration, "wrk -d of each measured run")
	flag.DurationVar(&o.Warmup, "warmup", o.Warmup, "wrk run before each measured one (not counted; 0: none)")
	flag.IntVar(&o.Connections, "connections", o.Connections, "wrk -c: concurrent connections")
	flag.IntVar(&o.Threads, "threads", o.Threads, "wrk -t")
	flag.IntVar(&o.BodyBytes, "body", o.BodyBytes, "size of the backend's response body in bytes")
	flag.IntVar(&o.Rounds, "rounds", o.Rounds, "measured runs of each proxy per scenario, taking turns (medians and the spread of the per-round ratios are shown)")
	flag.StringVar(&o.Only, "only", "", "run one scenario only: http or tls")
	flag.DurationVar(&o.Pace, "pace", 0, "wait this long (whole ms) on each connection between a response and the next request (0: none, saturation)")
	flag.IntVar(&o.Workers, "workers", 0, "cores per proxy: nginx worker_processes and switchboard GOMAXPROCS (0: auto, one per CPU, for both)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the switchboard side to this file")
	flag.Parse()
	if *cpuprofile != "" {
		abs, err := filepath.Abs(*cpuprofile)
		if err == nil {
			os.Setenv(profileEnv, abs)
		}
	}
	if *quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		q := Quick
		if set["duration"] {
			q.Duration = o.Duration
		}
		if set["warmup"] {
			q.Warmup = o.Warmup
		}
		if set["connections"] {
			q.Connections = o.Connections
		}
		if set["threads"] {
			q.Threads = o.Threads
		}
		if set["rounds"] {
			q.Rounds = o.Rounds
		}
		q.BodyBytes, q.Only, q.Workers, q.Pace = o.BodyBytes, o.Only, o.Workers, o.Pace
		o = q
	}
	if missing := Missing(); missing != "" {
		fmt.Println("bench/ingress: skipped:", missing)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingress:", err)
		os.Exit(1)
	}
}

// Missing names the tools that are not installed ("" when all are).
func Missing() string {
	var m []string
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := lookTool(tool); err != nil {
			m = append(m, tool+" is not installed (apt-get install "+tool+")")
		}
	}
	return strings.Join(m, "; ")
}

// lookTool finds a tool in PATH or in /usr/sbin (nginx lives there and
// /usr/sbin is not in every PATH).
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s not found", name)
}

// Result is one wrk run.
type Result struct {
	Requests  float64       // requests per second
	Total     int64         // requests completed
	CPUPerReq time.Duration // the proxy's CPU time (user+system, all its processes) per request
	// BackendCPUPerReq is the backend's (this process's) CPU time per
	// request: what a bare net/http server costs, for reference.
	BackendCPUPerReq time.Duration
	P50, P99         time.Duration // latency percentiles
	Non2xx           int64         // "Non-2xx or 3xx responses"
	SocketErr        int64         // connect+read+write+timeout errors
}

// Run runs the benchmark and writes the table to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	dir, err := os.MkdirTemp("", "sb-bench-ingress-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	backend, backendPort, err := startBackend(o.BodyBytes)
	if err != nil {
		return err
	}
	defer backend.Close()

	if err := writeCert(dir); err != nil {
		return err
	}
	if err := writeManifests(dir, backendPort); err != nil {
		return err
	}
	sb, err := startSwitchboard(ctx, dir, o.Workers)
	if err != nil {
		return fmt.Errorf("switchboard ingress: %w", err)
	}
	defer sb.stop()
	ng, err := startNginx(ctx, dir, backendPort, o.Workers)
	if err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	defer ng.stop()

	type scenario struct {
		name string
		url  func(p *proxy) string
	}
	scenarios := []scenario{
		{"HTTP/1.1", func(p *proxy) string { return "http://" + p.http + "/" }},
		{"HTTPS (TLS, HTTP/1.1)", func(p *proxy) string { return "https://" + tlsHost + ":" + portOf(p.https) + "/" }},
	}
	switch o.Only {
	case "":
	case "http":
		scenarios = scenarios[:1]
	case "tls":
		scenarios = scenarios[1:]
	default:
		return fmt.Errorf("-only %q: want http or tls", o.Only)
	}
	proxies := []*proxy{sb, ng}
	rounds := max(1, o.Rounds)
	results := map[string]map[string][]Result{}
	for _, sc := range scenarios {
		results[sc.name] = map[string][]Result{}
		for _, p := range proxies {
			if err := check(ctx, sc.url(p)); err != nil {
				return fmt.Errorf("%s via %s: %w", sc.name, p.name, err)
			}
		}
		for round := 0; round < rounds; round++ {
			order := proxies
			if round%2 == 1 {
				order = []*proxy{ng, sb}
			}
			for _, p := range order {
				u := sc.url(p)
				if o.Warmup > 0 && round == 0 {
					if _, err := wrk(ctx, o, o.Warmup, u); err != nil {
						return err
					}
				}
				cpu0, self0 := groupCPU(p.pgid), selfCPU()
				r, err := wrk(ctx, o, o.Duration, u)
				if err != nil {
					return fmt.Errorf("%s via %s: %w", sc.name, p.name, err)
				}
				if r.Total > 0 {
					r.CPUPerReq = (groupCPU(p.pgid) - cpu0) / time.Duration(r.Total)
					r.BackendCPUPerReq = (selfCPU() - self0) / time.Duration(r.Total)
				}
				results[sc.name][p.name] = append(results[sc.name][p.name], r)
			}
		}
	}

	pace := ""
	if o.Pace > 0 {
		pace = fmt.Sprintf(", each connection pausing %s between requests", o.Pace)
	}
	fmt.Fprintf(out, "bench/ingress: wrk -t%d -c%d -d%s%s (warm-up %s), %d round(s) per proxy taking turns, backend net/http on 127.0.0.1 (%d-byte body), %d CPUs\n",
		o.Threads, o.Connections, o.Duration, pace, o.Warmup, rounds, o.BodyBytes, numCPU())
	gmp := "GOMAXPROCS " + workersConf(o.Workers)
	fmt.Fprintf(out, "switchboard: ingress/ingresscmd in a child process, %s; nginx: %s, worker_processes %s, upstream keepalive 64\n\n", gmp, ng.version, workersConf(o.Workers))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tproxy\treq/s\tp50\tp99\tCPU/req\terrors\t")
	for _, sc := range scenarios {
		med := map[string]Result{}
		for _, p := range proxies {
			med[p.name] = median(results[sc.name][p.name])
			r := med[p.name]
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%d\t\n", sc.name, p.name, r.Requests, fmtDur(r.P50), fmtDur(r.P99), fmtDur(r.CPUPerReq), r.Non2xx+r.SocketErr)
		}
		a, b := med[sb.name], med[ng.name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\t\n", sc.name, "switchboard/nginx", ratio(a.Requests, b.Requests), ratio(float64(a.P50), float64(b.P50)), ratio(float64(a.P99), float64(b.P99)), ratio(float64(a.CPUPerReq), float64(b.CPUPerReq)))
	}
	tw.Flush()
	if rounds > 1 {
		fmt.Fprintln(out, "\nmedians of the rounds; per-round ratios switchboard/nginx (round by round):")
		for _, sc := range scenarios {
			var rps, p99, cpu []string
			for i := range rounds {
				a, b := results[sc.name][sb.name][i], results[sc.name][ng.name][i]
				rps = append(rps, ratio(a.Requests, b.Requests))
				p99 = append(p99, ratio(float64(a.P99), float64(b.P99)))
				cpu = append(cpu, ratio(float64(a.CPUPerReq), float64(b.CPUPerReq)))
			}
			fmt.Fprintf(out, "  %s: req/s %s; p99 %s; CPU/req %s\n", sc.name, strings.Join(rps, " "), strings.Join(p99, " "), strings.Join(cpu, " "))
		}
	}
	fmt.Fprintln(out, "\ngoal: req/s ratio >= 1.00 with p99 ratio <= 1.00 (lower latency is better).")
	fmt.Fprintln(out, "CPU/req: user+system time of the proxy's processes over the run / requests (less noisy than req/s on a shared machine).")
	for _, sc := range scenarios {
		fmt.Fprintf(out, "for reference, the backend (a bare Go net/http server) used %s of CPU per request in the %s runs through switchboard, %s through nginx\n",
			fmtDur(median(results[sc.name][sb.name]).BackendCPUPerReq), sc.name, fmtDur(median(results[sc.name][ng.name]).BackendCPUPerReq))
	}
	return nil
}

// median is the result whose figures are each the median of the runs'
// (errors are summed).
func median(rs []Result) Result {
	if len(rs) == 0 {
		return Result{}
	}
	mid := func(f func(Result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	out := Result{
		Requests:         mid(func(r Result) float64 { return r.Requests }),
		Total:            int64(mid(func(r Result) float64 { return float64(r.Total) })),
		CPUPerReq:        time.Duration(mid(func(r Result) float64 { return float64(r.CPUPerReq) })),
		BackendCPUPerReq: time.Duration(mid(func(r Result) float64 { return float64(r.BackendCPUPerReq) })),
		P50:              time.Duration(mid(func(r Result) float64 { return float64(r.P50) })),
		P99:              time.Duration(mid(func(r Result) float64 { return float64(r.P99) })),
	}
	for _, r := range rs {
		out.Non2xx += r.Non2xx
		out.SocketErr += r.SocketErr
	}
	return out
}

func numCPU() int {
	n := 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		n = strings.Count(string(b), "\nprocessor")
		if strings.HasPrefix(string(b), "processor") {
			n++
		}
	}
	return n
}

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fus", float64(d)/float64(time.Microsecond))
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// groupCPU is the user+system CPU time of the processes of process group
// pgid (from /proc/PID/stat; clock ticks of 10ms).
func groupCPU(pgid int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The fields after the command name (in parentheses): state ppid
		// pgrp ... utime(14) stime(15).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g != pgid {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// startBackend serves a fixed body on 127.0.0.1.
func startBackend(size int) (*http.Server, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, 0, err
	}
	body := []byte(strings.Repeat("x", max(size-1, 0)) + "\n")
	clen := strconv.Itoa(len(body))
	srv := &http.Server{
		Addr: ln.Addr().String(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain"}
			h["Content-Length"] = []string{clen}
			w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	return srv, ln.Addr().(*net.TCPAddr).Port, nil
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// insecureTLS is for the readiness check only: the bench certificate is
// self-signed.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

// check makes one request through a proxy and wants a 200.
func check(ctx context.Context, u string) error {
	tr := &http.Transport{Proxy: nil, TLSClientConfig: insecureTLS(),
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			h, p, _ := net.SplitHostPort(addr)
			if h == tlsHost {
				addr = net.JoinHostPort("127.0.0.1", p)
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	defer tr.CloseIdleConnections()
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			last = err
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		last = fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	return last
}

var (
	reqsRe    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	totalRe   = regexp.MustCompile(`(\d+) requests in `)
	pctRe     = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s|m)\s*$`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	socketsRe = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrk runs wrk --latency against u for d and parses its report.
func wrk(ctx context.Context, o Options, d time.Duration, u string) (Result, error) {
	path, err := lookTool("wrk")
	if err != nil {
		return Result{}, err
	}
	secs := max(int((d+time.Second-1)/time.Second), 1)
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	args := []string{"--latency", "-t" + strconv.Itoa(o.Threads), "-c" + strconv.Itoa(o.Connections),
		"-d" + strconv.Itoa(secs) + "s", "--timeout", "5s"}
	if o.Pace > 0 {
		f, err := os.CreateTemp("", "sb-bench-pace-*.lua")
		if err != nil {
			return Result{}, err
		}
		defer os.Remove(f.Name())
		ms := max(1, int(o.Pace/time.Millisecond))
		fmt.Fprintf(f, "function delay()\n  return %d\nend\n", ms)
		f.Close()
		args = append(args, "-s", f.Name())
	}
	cmd := exec.CommandContext(ctx, path, append(args, u)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return Result{}, fmt.Errorf("wrk %s: %v: %s", u, err, b)
	}
	return parseWrk(string(b))
}

// parseWrk reads wrk's --latency report.
func parseWrk(s string) (Result, error) {
	var r Result
	m := reqsRe.FindStringSubmatch(s)
	if m == nil {
		return r, fmt.Errorf("wrk report without Requests/sec: %q", s)
	}
	r.Requests, _ = strconv.ParseFloat(m[1], 64)
	if m := totalRe.FindStringSubmatch(s); m != nil {
		r.Total, _ = strconv.ParseInt(m[1], 10, 64)
	}
	for _, m := range pctRe.FindAllStringSubmatch(s, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[m[3]]
		d := time.Duration(v * float64(unit))
		if m[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("wrk report without the 50%% and 99%% latencies: %q", s)
	}
	if m := non2xxRe.FindStringSubmatch(s); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := socketsRe.FindStringSubmatch(s); m != nil {
		for _, x := range m[1:] {
			n, _ := strconv.ParseInt(x, 10, 64)
			r.SocketErr += n
		}
	}
	return r, nil
}

// proxy is a running reverse proxy under test.
type proxy struct {
	name        string
	pgid        int    // process group (CPU accounting)
	http, https string // 127.0.0.1:port
	version     string
	stop        func()
}

// startProc starts cmd in its own process group, dying with this process,
// and returns a stop function that sends sig and waits (then kills).
func startProc(cmd *exec.Cmd, sig syscall.Signal) (func(), error) {
	// (the process group id is cmd.Process.Pid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := spawn.Start(cmd); err != nil { // Pdeathsig: from a thread that never ends
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	return func() {
		cmd.Process.Signal(sig)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}, nil
}

// startSwitchboard runs this binary as the ingress child over dir.
func startSwitchboard(ctx context.Context, dir string, workers int) (*proxy, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if workers > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(workers))
	}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stop, err := startProc(cmd, syscall.SIGTERM)
	if err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			stop()
			return nil, errors.New("the child exited before serving")
		}
		f := strings.Fields(l)
		return &proxy{name: "switchboard", pgid: cmd.Process.Pid, http: f[1], https: f[2], stop: stop}, nil
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	stop()
	return nil, errors.New("the child did not become ready")
}

// childMain serves the manifests of dir through ingresscmd.Run until
// SIGTERM.
func childMain(dir string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if prof := os.Getenv(profileEnv); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/ingress child:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench/ingress child:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	o := &ingresscmd.Options{Paths: []string{filepath.Join(dir, "manifests")}, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
		ReadHeaderTimeout: ingress.DefaultReadHeaderTimeout, MaxHeaderBytes: ingress.DefaultMaxHeaderBytes, MaxHeaders: ingress.DefaultMaxHeaders}
	err := ingresscmd.Run(ctx, o, io.Discard, log, func(c *ingress.Controller) {
		fmt.Printf("READY %s %s\n", c.HTTPAddr(), c.HTTPSAddr())
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingress child:", err)
		return 1
	}
	return 0
}

// writeCert writes the certificate both proxies serve for tlsHost.
func writeCert(dir string) error {
	c, err := certs.SelfSigned(tlsHost, []string{tlsHost}, 24*time.Hour)
	if err != nil {
		return err
	}
	crt, key, err := certs.PEM(c)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), crt, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600)
}

// writeManifests writes the objects switchboard serves: a default
// IngressClass, the backend Service with a hand-written EndpointSlice,
// the TLS Secret and one Ingress (rule for tlsHost with TLS, rule without
// host for plain HTTP).
func writeManifests(dir string, backendPort int) error {
	crt, err := os.ReadFile(filepath.Join(dir, "tls.crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(dir, "tls.key"))
	if err != nil {
		return err
	}
	b64 := base64Std
	m := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: switchboard
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: switchboard.dev/ingress
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-1
  namespace: default
  labels: {kubernetes.io/service-name: backend}
addressType: IPv4
ports: [{name: http, port: %d, protocol: TCP}]
endpoints: [{addresses: [127.0.0.1], conditions: {ready: true}}]
---
apiVersion: v1
kind: Secret
metadata: {name: bench-tls, namespace: default}
type: kubernetes.io/tls
data:
  tls.crt: %s
  tls.key: %s
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench, namespace: default}
spec:
  tls: [{hosts: [%s], secretName: bench-tls}]
  rules:
  - host: %s
    http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: backend, port: {number: 80}}}}]
  - http:
      paths: [{path: /, pathType: Prefix, backend: {service: {name: backend, port: {number: 80}}}}]
`, backendPort, b64(crt), b64(key), tlsHost, tlsHost)
	md := filepath.Join(dir, "manifests")
	if err := os.MkdirAll(md, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(md, "bench.yaml"), []byte(m), 0o644)
}

// freePort picks a free loopback port for nginx.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// nginxConf is the equivalent reverse proxy: what ingress-nginx renders
// for one Ingress, cut to the proxying itself.
const nginxConf = `# written by bench/ingress; removed at the end of the run
daemon off;
master_process on;
worker_processes {{workers}};
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events {
    worker_connections 4096;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path {{dir}}/client_body;
    proxy_temp_path {{dir}}/proxy;
    fastcgi_temp_path {{dir}}/fastcgi;
    uwsgi_temp_path {{dir}}/uwsgi;
    scgi_temp_path {{dir}}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    server_tokens off;

    upstream backend {
        server 127.0.0.1:{{backend}};
        keepalive 64;
    }
    server {
        listen {{http}} default_server;
        listen {{https}} ssl default_server;
        server_name ` + tlsHost + ` _;
        ssl_certificate {{dir}}/tls.crt;
        ssl_certificate_key {{dir}}/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_session_cache shared:SSL:10m;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Request-ID $request_id;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 5s;
            proxy_read_timeout 60s;
            proxy_buffering on;
        }
    }
}
`

// workersConf is nginx's worker_processes value for -workers.
func workersConf(n int) string {
	if n <= 0 {
		return "auto"
	}
	return strconv.Itoa(n)
}

// startNginx writes the configuration to dir and runs nginx with it.
func startNginx(ctx context.Context, dir string, backendPort, workers int) (*proxy, error) {
	path, err := lookTool("nginx")
	if err != nil {
		return nil, err
	}
	httpAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	httpsAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{backend}}", strconv.Itoa(backendPort), "{{http}}", httpAddr, "{{https}}", httpsAddr, "{{workers}}", workersConf(workers)).Replace(nginxConf)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	ver, _ := exec.Command(path, "-v").CombinedOutput()
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(ver)), "nginx version: "))
	if out, err := exec.CommandContext(ctx, path, "-t", "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t: %v: %s", err, out)
	}
	cmd := exec.Command(path, "-p", dir, "-c", cf, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// SIGQUIT: graceful shutdown of master and workers.
	stop, err := startProc(cmd, syscall.SIGQUIT)
	if err != nil {
		return nil, err
	}
	return &proxy{name: "nginx", pgid: cmd.Process.Pid, http: httpAddr, https: httpsAddr, version: version, stop: stop}, nil
}
