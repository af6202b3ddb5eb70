// Command dns is the cluster DNS benchmark: Switchboard's DNS server and
// CoreDNS 1.14.1 side by side on this machine, same Corefile (CoreDNS's
// kube-dns one), same objects (10,000 services × 10 endpoints, 100,000
// pods), measured with dnsperf (Debian's) in turn:
//
//   - internal: A queries for random services (svc.ns.svc.cluster.local)
//   - external: names forwarded to an upstream this program runs on
//     loopback (never the machine's resolver)
//   - search-path misses: what ndots:5 clients ask first for an external
//     name (name.default.svc.cluster.local, ...), NXDOMAIN
//
// and the resident memory of each server after loading and after the runs.
// Each server is its own process: ours built by this program (-role
// ours), CoreDNS reading the objects through Switchboard's local API,
// served by another process of this program (-role api), as it would read
// a kube-apiserver.
//
//	go run ./bench/dns [-services 10000] [-endpoints 10] [-pods 100000] [-seconds 10]
//
// CoreDNS is taken from .bin/coredns (./test.sh builds it) or
// $SWITCHBOARD_COREDNS.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/bench/internal/benchnode"
	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugins/all"
	"github.com/switchboard-dev/switchboard/localapi"
)

const zone = "cluster.local"

// Addresses on loopback, private to this benchmark.
const (
	oursAddr     = "127.70.0.1"
	corednsAddr  = "127.70.0.2"
	upstreamAddr = "127.70.0.3"
	apiAddr      = "127.70.0.4:18080"
	dnsPort      = "53"
)

func main() {
	role := flag.String("role", "", "internal: ours | api")
	podsMode := flag.String("pods-mode", "insecure", "internal: the kubernetes plugin's pods mode")
	services := flag.Int("services", 10000, "services")
	endpoints := flag.Int("endpoints", 10, "endpoints per service")
	pods := flag.Int("pods", 100000, "pods")
	seconds := flag.Int("seconds", 10, "seconds per dnsperf run")
	flag.Parse()
	g := gen{services: *services, endpoints: *endpoints, pods: *pods}
	var err error
	switch *role {
	case "ours":
		err = serveOurs(g, *podsMode)
	case "api":
		err = serveAPI(g)
	case "":
		err = run(g, *seconds)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/dns:", err)
		os.Exit(1)
	}
}

// gen builds the same objects in every process: namespace nsN (100
// services each), service svcN with a cluster IP and an EndpointSlice of
// `endpoints` ready endpoints, and pods with IPs.
type gen struct{ services, endpoints, pods int }

func (g gen) namespace(i int) string { return fmt.Sprintf("ns%d", i/100) }

func ipOf(base netip.Addr, i int) netip.Addr {
	b := base.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// fill creates the objects; pods only when withPods (DNS watches pods only
// with `pods verified`, so that is all a cluster-mode DNS would hold).
func (g gen) fill(s *cluster.Store, withPods bool) error {
	nss := map[string]bool{}
	for i := 0; i < g.services; i++ {
		nss[g.namespace(i)] = true
	}
	for ns := range nss {
		if _, err := s.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	if _, err := s.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil {
		return err
	}
	svcBase := netip.MustParseAddr("10.96.0.100")
	podBase := netip.MustParseAddr("10.128.0.10")
	for i := 0; i < g.services; i++ {
		ns, name := g.namespace(i), fmt.Sprintf("svc%d", i)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: ipOf(svcBase, i).String(),
				ClusterIPs: []string{ipOf(svcBase, i).String()},
				Ports:      []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
			},
		}
		if _, err := s.Create(svc); err != nil {
			return err
		}
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Namespace: ns,
				Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "bench"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for e := 0; e < g.endpoints; e++ {
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{ipOf(podBase, (i*g.endpoints+e)%max(g.pods, 1)).String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		if _, err := s.Create(sl); err != nil {
			return err
		}
	}
	for i := 0; withPods && i < g.pods; i++ {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", i), Namespace: g.namespace(i % max(g.services, 1))},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Command: []string{"x"}}}},
			Status:     corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ipOf(podBase, i).String(), PodIPs: []corev1.PodIP{{IP: ipOf(podBase, i).String()}}},
		}
		if _, err := s.Create(p); err != nil {
			return err
		}
	}
	return nil
}

// corefile is CoreDNS's kube-dns Corefile, bound to addr, forwarding to
// the benchmark's loopback upstream. extra goes into the kubernetes block.
func corefile(addr, podsMode, extra string) string {
	return fmt.Sprintf(`.:%s {
    bind %s
    errors
    kubernetes %s in-addr.arpa ip6.arpa {
        pods %s
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
%s    }
    forward . %s:%s {
        max_concurrent 1000
    }
    cache 30
    loadbalance
}
`, dnsPort, addr, zone, podsMode, extra, upstreamAddr, dnsPort)
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	<-ch
}

func serveOurs(g gen, podsMode string) error {
	s := cluster.NewStore()
	if err := g.fill(s, podsMode == "verified"); err != nil {
		return err
	}
	if os.Getenv("SWITCHBOARD_BENCH_PPROF") != "" {
		go func() { _ = http.ListenAndServe(oursAddr+":6060", nil) }() // net/http/pprof's handlers
	}
	svc := dnsserver.NewService("Corefile", dnsserver.Options{Port: dnsPort, Env: &dnsserver.Env{Store: s}})
	if err := svc.Start([]byte(corefile(oursAddr, podsMode, ""))); err != nil {
		return err
	}
	fmt.Println("ready")
	waitSignal()
	return svc.Stop()
}

func serveAPI(g gen) error {
	s := cluster.NewStore()
	if err := g.fill(s, true); err != nil {
		return err
	}
	l, err := net.Listen("tcp", apiAddr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { waitSignal(); cancel() }()
	fmt.Println("ready")
	return localapi.Serve(ctx, l, localapi.New(s, localapi.Options{}))
}

// upstream answers every question with one A record, like an external
// resolver that knows everything, on loopback.
func upstream() (*mdns.Server, error) {
	h := mdns.HandlerFunc(func(w mdns.ResponseWriter, r *mdns.Msg) {
		m := new(mdns.Msg)
		m.SetReply(r)
		if len(r.Question) == 1 && r.Question[0].Qtype == mdns.TypeA {
			m.Answer = []mdns.RR{&mdns.A{Hdr: mdns.RR_Header{Name: r.Question[0].Name, Rrtype: mdns.TypeA, Class: mdns.ClassINET, Ttl: 300}, A: net.IPv4(192, 0, 2, 1)}}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", net.JoinHostPort(upstreamAddr, dnsPort))
	if err != nil {
		return nil, err
	}
	srv := &mdns.Server{PacketConn: pc, Handler: h}
	go func() { _ = srv.ActivateAndServe() }()
	return srv, nil
}

// child starts this program with a role and waits for its "ready" line.
func child(role string, g gen, extra ...string) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-role", role, "-services", strconv.Itoa(g.services), "-endpoints", strconv.Itoa(g.endpoints), "-pods", strconv.Itoa(g.pods)}, extra...)
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start: %q %v", role, line, err)
	}
	return cmd, nil
}

func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func corednsBinary() (string, error) {
	if p := os.Getenv("SWITCHBOARD_COREDNS"); p != "" {
		return p, nil
	}
	p, _ := filepath.Abs(".bin/coredns")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("CoreDNS not found at %s: run ./test.sh once (it builds it) or set SWITCHBOARD_COREDNS", p)
	}
	return p, nil
}

// waitAnswer waits until addr answers name with NOERROR.
func waitAnswer(addr, name string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &mdns.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		m := new(mdns.Msg)
		m.SetQuestion(name, mdns.TypeA)
		r, _, err := c.Exchange(m, net.JoinHostPort(addr, dnsPort))
		if err == nil && r.Rcode == mdns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer %s within %s", addr, name, timeout)
}

// queryFiles writes the dnsperf input of each workload.
func queryFiles(dir string, g gen) (map[string]string, error) {
	files := map[string]string{}
	write := func(name string, lines []string) error {
		p := filepath.Join(dir, name)
		files[name] = p
		return os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var internal, external, search []string
	for i := 0; i < 20000; i++ {
		k := r.IntN(g.services)
		internal = append(internal, fmt.Sprintf("svc%d.%s.svc.%s A", k, g.namespace(k), zone))
		host := fmt.Sprintf("host%d.example%d.com", r.IntN(1000), r.IntN(10))
		external = append(external, host+" A")
		// ndots:5 from a pod in namespace default tries these first.
		suffix := []string{"default.svc." + zone, "svc." + zone, zone}[i%3]
		search = append(search, host+"."+suffix+" A")
	}
	if err := write("internal", internal); err != nil {
		return nil, err
	}
	if err := write("external", external); err != nil {
		return nil, err
	}
	return files, write("search-miss", search)
}

var (
	qpsRe  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	latRe  = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	lostRe = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
)

type perf struct {
	qps, latMs float64
	lost       int
}

func dnsperf(addr, file string, seconds int) (perf, error) {
	out, err := exec.Command("dnsperf", "-s", addr, "-p", dnsPort, "-d", file, "-l", strconv.Itoa(seconds),
		"-c", "4", "-q", "200", "-t", "2").CombinedOutput()
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	var p perf
	if m := qpsRe.FindSubmatch(out); m != nil {
		p.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	if m := latRe.FindSubmatch(out); m != nil {
		l, _ := strconv.ParseFloat(string(m[1]), 64)
		p.latMs = l * 1000
	}
	if m := lostRe.FindSubmatch(out); m != nil {
		p.lost, _ = strconv.Atoi(string(m[1]))
	}
	return p, nil
}

func run(g gen, seconds int) error {
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return fmt.Errorf("dnsperf not found: apt-get install dnsperf (./test.sh installs it)")
	}
	if _, err := corednsBinary(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "switchboard-bench-dns-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	up, err := upstream()
	if err != nil {
		return err
	}
	defer up.Shutdown()
	files, err := queryFiles(dir, g)
	if err != nil {
		return err
	}

	api, err := child("api", g)
	if err != nil {
		return err
	}
	defer stop(api)

	fmt.Fprintf(os.Stderr, "pods insecure (kube-dns's default): loading %d services × %d endpoints ...\n", g.services, g.endpoints)
	pr, err := startPair(g, dir, "insecure")
	if err != nil {
		return err
	}
	defer pr.stop()
	ours, cd := pr.ours, pr.coredns
	oursReady, corednsReady := pr.oursReady, pr.corednsReady
	memOurs0, _ := benchnode.ProcUsage(ours.Process.Pid)
	memCD0, _ := benchnode.ProcUsage(cd.Process.Pid)

	workloads := []string{"internal", "external", "search-miss"}
	results := map[string][2]perf{}
	for _, w := range workloads {
		for i, addr := range []string{oursAddr, corednsAddr} {
			fmt.Fprintf(os.Stderr, "dnsperf %s against %s (%ds) ...\n", w, []string{"switchboard", "coredns"}[i], seconds)
			p, err := dnsperf(addr, files[w], seconds)
			if err != nil {
				return err
			}
			r := results[w]
			r[i] = p
			results[w] = r
		}
	}
	if dst := os.Getenv("SWITCHBOARD_BENCH_PPROF"); dst != "" {
		if err := saveProfile("http://"+oursAddr+":6060/debug/pprof/heap", dst); err != nil {
			fmt.Fprintln(os.Stderr, "heap profile:", err)
		} else {
			fmt.Fprintln(os.Stderr, "heap profile of our server saved to", dst)
		}
	}
	memOurs1, _ := benchnode.ProcUsage(ours.Process.Pid)
	memCD1, _ := benchnode.ProcUsage(cd.Process.Pid)

	pr.stop()
	fmt.Fprintf(os.Stderr, "pods verified: both servers watch the %d pods too ...\n", g.pods)
	prv, err := startPair(g, dir, "verified")
	if err != nil {
		return err
	}
	defer prv.stop()
	memOursV0, _ := benchnode.ProcUsage(prv.ours.Process.Pid)
	memCDV0, _ := benchnode.ProcUsage(prv.coredns.Process.Pid)
	pv := [2]perf{}
	for i, addr := range []string{oursAddr, corednsAddr} {
		if pv[i], err = dnsperf(addr, files["internal"], seconds); err != nil {
			return err
		}
	}
	memOursV1, _ := benchnode.ProcUsage(prv.ours.Process.Pid)
	memCDV1, _ := benchnode.ProcUsage(prv.coredns.Process.Pid)
	prv.stop()

	fmt.Printf("bench/dns: %d services × %d endpoints, %d pods; dnsperf -c 4 -q 200, %ds per run, sharing the machine's cores; %s\n\n",
		g.services, g.endpoints, g.pods, seconds, time.Now().Format(time.RFC3339))
	fmt.Printf("%-34s %14s %14s %8s\n", "work", "switchboard", "coredns 1.14", "ratio")
	for _, w := range workloads {
		r := results[w]
		fmt.Printf("%-34s %14.0f %14.0f %7.2fx\n", w+" QPS", r[0].qps, r[1].qps, r[0].qps/r[1].qps)
		fmt.Printf("%-34s %13.2fms %13.2fms %7.2fx\n", w+" average latency", r[0].latMs, r[1].latMs, r[1].latMs/r[0].latMs)
		if r[0].lost+r[1].lost > 0 {
			fmt.Printf("%-34s %14d %14d\n", w+" queries lost", r[0].lost, r[1].lost)
		}
	}
	mb := func(b int64) float64 { return float64(b) / (1 << 20) }
	fmt.Printf("%-34s %12.1fMB %12.1fMB %7.2fx\n", "RSS after loading", mb(memOurs0.RSS), mb(memCD0.RSS), float64(memCD0.RSS)/float64(memOurs0.RSS))
	fmt.Printf("%-34s %12.1fMB %12.1fMB %7.2fx\n", "RSS after the runs", mb(memOurs1.RSS), mb(memCD1.RSS), float64(memCD1.RSS)/float64(memOurs1.RSS))
	fmt.Printf("%-34s %13.1fs %13.1fs\n", "time to first answer", oursReady.Seconds(), corednsReady.Seconds())
	fmt.Printf("\nwith pods verified (both servers watch the %d pods):\n", g.pods)
	fmt.Printf("%-34s %14.0f %14.0f %7.2fx\n", "internal QPS", pv[0].qps, pv[1].qps, pv[0].qps/pv[1].qps)
	fmt.Printf("%-34s %12.1fMB %12.1fMB %7.2fx\n", "RSS after loading", mb(memOursV0.RSS), mb(memCDV0.RSS), float64(memCDV0.RSS)/float64(memOursV0.RSS))
	fmt.Printf("%-34s %12.1fMB %12.1fMB %7.2fx\n", "RSS after the run", mb(memOursV1.RSS), mb(memCDV1.RSS), float64(memCDV1.RSS)/float64(memOursV1.RSS))
	fmt.Printf("%-34s %13.1fs %13.1fs\n", "time to first answer", prv.oursReady.Seconds(), prv.corednsReady.Seconds())
	fmt.Printf("\nratio: QPS and memory as switchboard's advantage (>1 is better for switchboard); CoreDNS's published memory model gives (pods+services)/1000+54 = %.0f MB\n",
		float64(g.pods+g.services)/1000+54)
	return nil
}

// saveProfile fetches a pprof profile to a file (SWITCHBOARD_BENCH_PPROF).
func saveProfile(url, dst string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// pair is our server and CoreDNS, started with the same Corefile.
type pair struct {
	ours, coredns           *exec.Cmd
	oursReady, corednsReady time.Duration
}

func (p *pair) stop() {
	stop(p.ours)
	stop(p.coredns)
	p.ours, p.coredns = nil, nil
}

// startPair starts both servers with the kube-dns Corefile in podsMode and
// waits until each answers for the last service.
func startPair(g gen, dir, podsMode string) (*pair, error) {
	coredns, err := corednsBinary()
	if err != nil {
		return nil, err
	}
	p := &pair{}
	probe := fmt.Sprintf("svc%d.%s.svc.%s.", g.services-1, g.namespace(g.services-1), zone)
	t0 := time.Now()
	if p.ours, err = child("ours", g, "-pods-mode", podsMode); err != nil {
		return nil, err
	}
	if err := waitAnswer(oursAddr, probe, 5*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	p.oursReady = time.Since(t0)
	cf := filepath.Join(dir, "Corefile."+podsMode)
	if err := os.WriteFile(cf, []byte(corefile(corednsAddr, podsMode, "        endpoint http://"+apiAddr+"\n")), 0o644); err != nil {
		p.stop()
		return nil, err
	}
	t1 := time.Now()
	p.coredns = exec.Command(coredns, "-conf", cf)
	if err := p.coredns.Start(); err != nil {
		p.coredns = nil
		p.stop()
		return nil, err
	}
	if err := waitAnswer(corednsAddr, probe, 5*time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	p.corednsReady = time.Since(t1)
	return p, nil
}
