// Command kubedns is the cluster-mode DNS benchmark (issue 7): a real etcd
// and kube-apiserver on loopback (internal/kubetest's, built by
// tools/k8s/build.sh into .bin/), filled with services (one EndpointSlice
// of 5 ready endpoints each) and pods (minimal, valid, Pending: no kubelet
// runs), then `switchboard dns --kubeconfig K --corefile C` and CoreDNS
// 1.14.1 (.bin/coredns, built by ./test.sh) started in turn with the same
// Corefile (the kube-dns one, with `kubeconfig K CONTEXT` in the
// kubernetes block, which our plugin accepts and ignores since the command
// reads the kubeconfig itself), for `pods insecure` and `pods verified`.
// For each it measures, from process start, the time until the ready
// plugin's /ready answers 200 and until the first correct answer (the
// cluster IP) for the last service created; the resident memory then; and
// after a bounded dnsperf run of internal names (when dnsperf is
// installed), the QPS and the resident memory again. It prints a table.
//
//	go run ./bench/kubedns [-services 10000] [-pods 50000] [-pods-mode insecure|verified|both]
//	                       [-quick] [-seconds 10] [-switchboard BIN] [-coredns BIN]
//
// -quick is 1,000 services and 2,000 pods. Everything runs on loopback
// (the DNS servers on 127.71.0.1 and 127.71.0.2); the temporary
// directories and every process are removed at the end. It owns only
// bench/kubedns and touches nothing else.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/bench/internal/benchnode"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
	"github.com/switchboard-dev/switchboard/internal/spawn"
)

const (
	zone       = "cluster.local"
	dnsPort    = "10053"
	readyPort  = "8181"
	perNS      = 100 // services per namespace
	endpoints  = 5   // endpoints per EndpointSlice
	contextKey = "kubetest"
)

// Config is one benchmark run.
type Config struct {
	Services, Pods int
	Modes          []string // "insecure", "verified"
	Seconds        int      // dnsperf run per server; 0 skips dnsperf
	Switchboard    string   // "" builds ./cmd/switchboard into the temp dir
	CoreDNS        string   // "" means .bin/coredns
	Workers        int      // parallel creators
	Log            io.Writer
}

// Server is one DNS server's measurements in one pods mode.
type Server struct {
	Name           string
	Ready, Answer  time.Duration // from process start: /ready 200, first correct answer
	RSSReady       int64         // bytes, once both happened
	RSSPerf        int64         // bytes, after dnsperf (0 when not run)
	QPS            float64
	Lost           int
	PerfSkipReason string
}

// Result is a whole run.
type Result struct {
	Services, Pods int
	Create         time.Duration
	Runs           map[string][2]Server // mode -> switchboard, CoreDNS
	Modes          []string
	Seconds        int
	Peers          []string // kube-apiserver's and etcd's module versions
}

func main() {
	services := flag.Int("services", 10000, "services (each with one EndpointSlice of 5 endpoints)")
	pods := flag.Int("pods", 50000, "pods (minimal, Pending)")
	mode := flag.String("pods-mode", "both", "the kubernetes plugin's pods mode: insecure | verified | both")
	quick := flag.Bool("quick", false, "1,000 services and 2,000 pods")
	seconds := flag.Int("seconds", 10, "seconds of dnsperf per server (0: none)")
	sb := flag.String("switchboard", "", "switchboard binary (default: built from ./cmd/switchboard)")
	cd := flag.String("coredns", "", "CoreDNS binary (default: .bin/coredns or $SWITCHBOARD_COREDNS)")
	workers := flag.Int("workers", 32, "parallel object creators")
	flag.Parse()
	cfg := Config{Services: *services, Pods: *pods, Seconds: *seconds, Switchboard: *sb, CoreDNS: *cd, Workers: *workers, Log: os.Stderr}
	if *quick {
		cfg.Services, cfg.Pods = 1000, 2000
	}
	switch *mode {
	case "insecure", "verified":
		cfg.Modes = []string{*mode}
	case "both":
		cfg.Modes = []string{"insecure", "verified"}
	default:
		fmt.Fprintf(os.Stderr, "bench/kubedns: -pods-mode: want insecure, verified or both, got %q\n", *mode)
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	res, err := Run(ctx, cfg)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/kubedns:", err)
		os.Exit(1)
	}
	res.Print(os.Stdout)
}

// repoRoot is the module's root (this file is bench/kubedns/main.go).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// CoreDNSBinary is $SWITCHBOARD_COREDNS or .bin/coredns; an error says how
// to get it.
func CoreDNSBinary() (string, error) {
	p := os.Getenv("SWITCHBOARD_COREDNS")
	if p == "" {
		p = filepath.Join(kubetest.BinDir(), "coredns")
	}
	if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("CoreDNS not found at %s: run ./test.sh once (it builds it) or set SWITCHBOARD_COREDNS", p)
	}
	return p, nil
}

// Run runs the benchmark; every process and directory it creates is gone
// when it returns.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Services < 1 || cfg.Pods < 0 {
		return nil, fmt.Errorf("-services must be at least 1 and -pods at least 0 (got %d, %d)", cfg.Services, cfg.Pods)
	}
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	coredns := cfg.CoreDNS
	if coredns == "" {
		var err error
		if coredns, err = CoreDNSBinary(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-kubedns-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sb := cfg.Switchboard
	if sb == "" {
		sb = filepath.Join(dir, "switchboard")
		fmt.Fprintln(cfg.Log, "building switchboard ...")
		cmd := exec.CommandContext(ctx, "go", "build", "-o", sb, "./cmd/switchboard")
		cmd.Dir = repoRoot()
		cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("go build ./cmd/switchboard: %w", err)
		}
	}

	fmt.Fprintln(cfg.Log, "starting etcd and kube-apiserver ...")
	cl, stopCluster, err := kubetest.StartProgram()
	defer stopCluster()
	if err != nil {
		return nil, err
	}
	res := &Result{Services: cfg.Services, Pods: cfg.Pods, Runs: map[string][2]Server{}, Modes: cfg.Modes, Seconds: cfg.Seconds}
	// The binaries are built from their modules, so /version says
	// v0.0.0-master; build.sh writes the module versions beside them.
	for _, b := range []string{"kube-apiserver", "etcd"} {
		v, err := os.ReadFile(filepath.Join(kubetest.BinDir(), b+".version"))
		if err != nil {
			v = []byte(b)
		}
		res.Peers = append(res.Peers, strings.TrimSpace(string(v)))
	}
	t0 := time.Now()
	probeIP, err := fill(ctx, cl.Config, cfg)
	if err != nil {
		return nil, err
	}
	res.Create = time.Since(t0)
	fmt.Fprintf(cfg.Log, "created %d services, %d EndpointSlices, %d pods in %s\n", cfg.Services, cfg.Services, cfg.Pods, res.Create.Round(time.Millisecond))

	queries := filepath.Join(dir, "queries")
	if err := writeQueries(queries, cfg.Services); err != nil {
		return nil, err
	}
	perf := cfg.Seconds > 0
	perfSkip := ""
	if _, err := exec.LookPath("dnsperf"); perf && err != nil {
		perf, perfSkip = false, "dnsperf not installed"
	}
	probe := serviceName(cfg.Services - 1)
	for _, mode := range cfg.Modes {
		cf := filepath.Join(dir, "Corefile."+mode)
		var pair [2]Server
		for i, srv := range []struct{ name, addr string }{{"switchboard", "127.71.0.1"}, {"coredns 1.14.1", "127.71.0.2"}} {
			if err := os.WriteFile(cf+"."+strconv.Itoa(i), []byte(corefile(srv.addr, mode, cl.Kubeconfig)), 0o600); err != nil {
				return nil, err
			}
			args := []string{"dns", "--kubeconfig", cl.Kubeconfig, "--corefile", cf + "." + strconv.Itoa(i)}
			bin := sb
			if i == 1 {
				bin, args = coredns, []string{"-conf", cf + "." + strconv.Itoa(i)}
			}
			fmt.Fprintf(cfg.Log, "pods %s: %s ...\n", mode, srv.name)
			s, err := measure(ctx, measureConfig{
				name: srv.name, bin: bin, args: args, dir: dir, addr: srv.addr,
				probe: probe, want: probeIP, perf: perf, seconds: cfg.Seconds, queries: queries,
			})
			if err != nil {
				return nil, fmt.Errorf("pods %s, %s: %w", mode, srv.name, err)
			}
			s.PerfSkipReason = perfSkip
			pair[i] = s
		}
		res.Runs[mode] = pair
	}
	return res, nil
}

// corefile is CoreDNS's kube-dns Corefile served on addr:dnsPort, with
// ready on addr:8181 and the kubeconfig CoreDNS needs (ours ignores it:
// `switchboard dns --kubeconfig` reads it). No forward: only cluster names
// are asked.
func corefile(addr, podsMode, kubeconfig string) string {
	return fmt.Sprintf(`.:%s {
    bind %s
    errors
    ready %s:%s
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s %s
        pods %s
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loadbalance
}
`, dnsPort, addr, addr, readyPort, zone, kubeconfig, contextKey, podsMode)
}

func namespace(i int) string   { return fmt.Sprintf("ns%d", i/perNS) }
func serviceName(i int) string { return fmt.Sprintf("svc%d.%s.svc.%s.", i, namespace(i), zone) }

// fill creates the namespaces, services (cluster IPs allocated by the API
// server), their EndpointSlices and the pods with cfg.Workers parallel
// clients without client-side rate limit, speaking protobuf. It returns
// the cluster IP of the last service.
func fill(ctx context.Context, base *rest.Config, cfg Config) (string, error) {
	rc := rest.CopyConfig(base)
	rc.QPS, rc.Burst = -1, 0 // no client-side rate limit
	rc.ContentType = "application/vnd.kubernetes.protobuf"
	rc.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	rc.Timeout = 60 * time.Second
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", err
	}
	nss := (cfg.Services + perNS - 1) / perNS
	if err := parallel(ctx, cfg.Workers, nss, "namespaces", cfg.Log, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace(i * perNS)}}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", err
	}
	var probeIP atomic.Value
	if err := parallel(ctx, cfg.Workers, cfg.Services, "services", cfg.Log, func(ctx context.Context, i int) error {
		ns, name := namespace(i), fmt.Sprintf("svc%d", i)
		svc, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // a retried create that had succeeded
			svc, err = cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		}
		if err != nil {
			return err
		}
		if i == cfg.Services-1 {
			probeIP.Store(svc.Spec.ClusterIP)
		}
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: ns,
				Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench-kubedns"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for e := 0; e < endpoints; e++ {
			n := i*endpoints + e // 10.128.0.0/10 holds 4M addresses
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 128+n>>16, n>>8&0xff, n&0xff)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		_, err = cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, sl, metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", err
	}
	if err := parallel(ctx, cfg.Workers, cfg.Pods, "pods", cfg.Log, func(ctx context.Context, i int) error {
		ns := namespace(i % cfg.Services)
		_, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", i), Namespace: ns, Labels: map[string]string{"app": "bench"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/app:1"}}},
		}, metav1.CreateOptions{})
		return err
	}); err != nil {
		return "", err
	}
	ip, _ := probeIP.Load().(string)
	if ip == "" {
		return "", errors.New("the last service got no cluster IP")
	}
	return ip, nil
}

// parallel calls f(i) for i in [0,n) on workers goroutines, retrying
// throttling and server timeouts, treating AlreadyExists (a retry of a
// create that had succeeded) as done, and printing progress.
func parallel(ctx context.Context, workers, n int, what string, log io.Writer, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(workers, max(n, 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				var err error
				for try := 0; try < 8; try++ {
					if err = f(ctx, i); err == nil || apierrors.IsAlreadyExists(err) {
						err = nil
						break
					}
					if !apierrors.IsTooManyRequests(err) && !apierrors.IsServerTimeout(err) && !apierrors.IsTimeout(err) && !isConnErr(err) {
						break
					}
					time.Sleep(time.Duration(50<<try) * time.Millisecond)
				}
				if err != nil {
					cancel(fmt.Errorf("%s #%d: %w", what, i, err))
					return
				}
				done.Add(1)
			}
		}()
	}
	stopProgress := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				fmt.Fprintf(log, "  %s: %d/%d\n", what, done.Load(), n)
			}
		}
	}()
	wg.Wait()
	close(stopProgress)
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func isConnErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset")
}

// writeQueries writes dnsperf's input: A queries for random services.
func writeQueries(path string, services int) error {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&b, "%s A\n", serviceName(r.IntN(services)))
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

type measureConfig struct {
	name, bin string
	args      []string
	dir, addr string
	probe     string // a name to ask
	want      string // the address it must answer
	perf      bool
	seconds   int
	queries   string
}

// measure starts one server and measures it, then stops it.
func measure(ctx context.Context, mc measureConfig) (Server, error) {
	s := Server{Name: mc.name}
	logPath := filepath.Join(mc.dir, strings.Fields(mc.name)[0]+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return s, err
	}
	defer lf.Close()
	cmd := exec.Command(mc.bin, mc.args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = mc.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := spawn.Start(cmd); err != nil {
		return s, err
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second): // health's lameduck, if any
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}()
	fail := func(err error) (Server, error) {
		b, _ := os.ReadFile(logPath)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		return s, fmt.Errorf("%w\nlast lines of its output:\n%s", err, strings.Join(lines, "\n"))
	}

	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	dc := &mdns.Client{Timeout: 500 * time.Millisecond}
	readyURL := "http://" + net.JoinHostPort(mc.addr, readyPort) + "/ready"
	dnsAddr := net.JoinHostPort(mc.addr, dnsPort)
	deadline := time.Now().Add(10 * time.Minute)
	var lastAnswer string
	for s.Ready == 0 || s.Answer == 0 {
		select {
		case <-exited:
			return fail(fmt.Errorf("exited before it was ready: %v", waitErr))
		case <-ctx.Done():
			return s, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("not ready after 10 minutes (ready %v, answer %v; last answer %s)", s.Ready, s.Answer, lastAnswer))
		}
		if s.Ready == 0 {
			if resp, err := hc.Get(readyURL); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					s.Ready = time.Since(t0)
				}
			}
		}
		if s.Answer == 0 {
			m := new(mdns.Msg)
			m.SetQuestion(mc.probe, mdns.TypeA)
			if r, _, err := dc.Exchange(m, dnsAddr); err == nil {
				lastAnswer = mdns.RcodeToString[r.Rcode]
				for _, rr := range r.Answer {
					if a, ok := rr.(*mdns.A); ok && a.A.String() == mc.want {
						s.Answer = time.Since(t0)
					}
				}
			} else {
				lastAnswer = err.Error()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	u, err := benchnode.ProcUsage(cmd.Process.Pid)
	if err != nil {
		return fail(err)
	}
	s.RSSReady = u.RSS
	if !mc.perf {
		return s, nil
	}
	out, err := exec.CommandContext(ctx, "dnsperf", "-s", mc.addr, "-p", dnsPort, "-d", mc.queries,
		"-l", strconv.Itoa(mc.seconds), "-c", "4", "-q", "200", "-t", "2").CombinedOutput()
	if err != nil {
		return fail(fmt.Errorf("dnsperf: %v\n%s", err, out))
	}
	if m := qpsRe.FindSubmatch(out); m != nil {
		s.QPS, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := lostRe.FindSubmatch(out); m != nil {
		s.Lost, _ = strconv.Atoi(string(m[1]))
	}
	if u, err = benchnode.ProcUsage(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	s.RSSPerf = u.RSS
	return s, nil
}

var (
	qpsRe  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	lostRe = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
)

// Print writes the table.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "bench/kubedns: %d services (1 EndpointSlice × %d endpoints each), %d pods (Pending), %d namespaces; %s on loopback; objects created in %s (%.0f objects/s); %s\n",
		r.Services, endpoints, r.Pods, (r.Services+perNS-1)/perNS, strings.Join(r.Peers, " + "), r.Create.Round(100*time.Millisecond),
		float64(2*r.Services+r.Pods)/r.Create.Seconds(), time.Now().Format(time.RFC3339))
	mb := func(b int64) string {
		if b == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1fMB", float64(b)/(1<<20))
	}
	ratio := func(ours, theirs float64) string {
		if ours == 0 || theirs == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", theirs/ours)
	}
	for _, mode := range r.Modes {
		p := r.Runs[mode]
		a, b := p[0], p[1]
		fmt.Fprintf(w, "\npods %s\n", mode)
		fmt.Fprintf(w, "%-40s %14s %14s %8s\n", "", a.Name, b.Name, "ratio")
		fmt.Fprintf(w, "%-40s %13.2fs %13.2fs %8s\n", "start to /ready 200", a.Ready.Seconds(), b.Ready.Seconds(), ratio(a.Ready.Seconds(), b.Ready.Seconds()))
		fmt.Fprintf(w, "%-40s %13.2fs %13.2fs %8s\n", "start to first correct answer", a.Answer.Seconds(), b.Answer.Seconds(), ratio(a.Answer.Seconds(), b.Answer.Seconds()))
		fmt.Fprintf(w, "%-40s %14s %14s %8s\n", "RSS when ready", mb(a.RSSReady), mb(b.RSSReady), ratio(float64(a.RSSReady), float64(b.RSSReady)))
		if a.RSSPerf > 0 {
			fmt.Fprintf(w, "%-40s %14s %14s %8s\n", fmt.Sprintf("RSS after %ds of dnsperf", r.Seconds), mb(a.RSSPerf), mb(b.RSSPerf), ratio(float64(a.RSSPerf), float64(b.RSSPerf)))
			fmt.Fprintf(w, "%-40s %14.0f %14.0f %8s\n", "dnsperf QPS (internal names, -c 4 -q 200)", a.QPS, b.QPS, ratio(b.QPS, a.QPS))
			if a.Lost+b.Lost > 0 {
				fmt.Fprintf(w, "%-40s %14d %14d\n", "queries lost", a.Lost, b.Lost)
			}
		} else if a.PerfSkipReason != "" {
			fmt.Fprintf(w, "(no dnsperf run: %s)\n", a.PerfSkipReason)
		}
	}
	fmt.Fprintf(w, "\nratio: switchboard's advantage (>1 is better for switchboard); CoreDNS's published memory model gives (pods+services)/1000+54 = %.0f MB\n",
		float64(r.Pods+r.Services)/1000+54)
}
