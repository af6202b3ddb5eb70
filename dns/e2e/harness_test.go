// Package e2e is the end-to-end test of cluster DNS, through the path a
// user takes: the real switchboard binary running `switchboard up -f
// MANIFESTS --corefile COREFILE`, asked by the real `dig`. It holds tests
// only (and a README); it owns no code of the server and must not reach
// into the plugins' internals: everything it knows it reads from the
// node's local API, the DNS answers and the /metrics endpoint.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// binary is the switchboard binary under test, built once by TestMain.
var binary string

// digPath is the dig binary ("" when it is not installed).
var digPath string

func TestMain(m *testing.M) {
	if p, err := exec.LookPath("dig"); err == nil {
		digPath = p
	} else {
		// Every test that needs the binary needs dig too and skips.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "switchboard-dns-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/switchboard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building switchboard:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needDig skips the test when dig is missing.
func needDig(t *testing.T) {
	t.Helper()
	if digPath == "" {
		t.Skip("dig is not installed: these tests ask the running server with the real dig (./test.sh installs bind9-dnsutils)")
	}
}

// ranges hands out distinct random third octets, so that the nodes of
// one run (and runs side by side) get /24s of their own inside
// 127.52.0.0/16 (pods), 127.53.0.0/16 (services), 127.54.0.0/16 (the
// test's upstream) and 127.55.0.0/16 (extra client addresses).
var ranges struct {
	sync.Mutex
	used map[int]bool
}

func pickOctet() int {
	ranges.Lock()
	defer ranges.Unlock()
	if ranges.used == nil {
		ranges.used = map[int]bool{}
	}
	for {
		r := 1 + rand.IntN(250)
		if !ranges.used[r] {
			ranges.used[r] = true
			return r
		}
	}
}

// addrs are the addresses of one node, known before it starts so that
// its Corefile can name them: `up` puts cluster DNS on the service CIDR's
// tenth address and the node on the pod CIDR's first.
type addrs struct {
	r        int
	podCIDR  string
	svcCIDR  string
	dnsIP    string // kube-dns cluster IP
	nodeIP   string
	upstream string // the test's upstream DNS server's IP
	client   func(i int) string
}

func newAddrs() addrs {
	r := pickOctet()
	return addrs{
		r:        r,
		podCIDR:  fmt.Sprintf("127.52.%d.0/24", r),
		svcCIDR:  fmt.Sprintf("127.53.%d.0/24", r),
		dnsIP:    fmt.Sprintf("127.53.%d.10", r),
		nodeIP:   fmt.Sprintf("127.52.%d.1", r),
		upstream: fmt.Sprintf("127.54.%d.1", r),
		client:   func(i int) string { return fmt.Sprintf("127.55.%d.%d", r, i) },
	}
}

// node is one `switchboard up` process with a private state directory,
// a unique node name and its own address ranges.
type node struct {
	t        *testing.T
	name     string
	stateDir string
	addrs    addrs
	cmd      *exec.Cmd
	stdout   *testutil.SyncBuffer
	stderr   *testutil.SyncBuffer
	exited   chan struct{}
	client   *kubernetes.Clientset

	dnsAddr string // ip:port of cluster DNS, read from kube-system/kube-dns
	dnsPort string
}

// startNode runs `switchboard up -f manifests --corefile corefile` and
// waits until the local API is ready and kube-dns is registered.
// Everything it started is stopped when the test ends.
func startNode(t *testing.T, a addrs, manifests, corefile string) *node {
	t.Helper()
	n := &node{
		t:        t,
		name:     fmt.Sprintf("dnse2e-%d-%d", os.Getpid(), rand.IntN(1_000_000)),
		stateDir: t.TempDir(),
		addrs:    a,
		stdout:   &testutil.SyncBuffer{},
		stderr:   &testutil.SyncBuffer{},
		exited:   make(chan struct{}),
	}
	args := []string{"up", "--network", "loopback", "--state-dir", n.stateDir, "--node-name", n.name,
		"--pod-cidr", a.podCIDR, "--service-cidr", a.svcCIDR,
		"--log-level", "debug", "-f", manifests, "--corefile", corefile}
	n.cmd = exec.Command(binary, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.stdout, n.stderr
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if err := n.stop(20 * time.Second); err != nil {
			t.Error(err)
		}
		n.killLeftovers()
		if t.Failed() {
			t.Logf("node %s stdout:\n%s", n.name, n.stdout.String())
			t.Logf("node %s stderr (last 8000 bytes):\n%s", n.name, tail(n.stderr.String(), 8000))
		}
	})
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.exited) }()

	sock := filepath.Join(n.stateDir, "api.sock")
	c, hc, err := testutil.LocalAPI(sock)
	if err != nil {
		t.Fatal(err)
	}
	n.client = c
	n.waitFor(30*time.Second, "the local API to be ready", func() bool { return testutil.Ready(hc) })

	// Where cluster DNS answers: the kube-dns Service's cluster IP, and
	// the port its dns port targets (53 as root, 1053 otherwise).
	svc, err := c.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("kube-system/kube-dns: %v", err)
	}
	if svc.Spec.ClusterIP != a.dnsIP {
		t.Fatalf("kube-dns cluster IP %s; the Corefile was written for %s (the service CIDR's tenth address)", svc.Spec.ClusterIP, a.dnsIP)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "dns" {
			n.dnsPort = p.TargetPort.String()
		}
	}
	if n.dnsPort == "" {
		t.Fatal("kube-dns has no dns port")
	}
	n.dnsAddr = net.JoinHostPort(a.dnsIP, n.dnsPort)
	return n
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// stop sends SIGINT (Ctrl-C) and waits for the node to exit.
func (n *node) stop(wait time.Duration) error {
	select {
	case <-n.exited:
		return nil
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-n.exited:
		return nil
	case <-time.After(wait):
		_ = n.cmd.Process.Kill()
		<-n.exited
		return fmt.Errorf("node %s did not stop within %s after SIGINT", n.name, wait)
	}
}

// killLeftovers fails the test for every process of the node still
// running after it stopped (found by SWITCHBOARD_NODE_NAME, which the
// node puts into every container's environment), and kills it.
func (n *node) killLeftovers() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), "SWITCHBOARD_NODE_NAME="+n.name) {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			s := string(stat)
			if i := strings.LastIndexByte(s, ')'); i > 0 && i+2 < len(s) && s[i+2] == 'Z' {
				continue
			}
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		n.t.Errorf("process %d (%s) of node %s still running after the node stopped", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), n.name)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func (n *node) waitFor(timeout time.Duration, what string, cond func() bool) {
	n.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-n.exited:
			n.t.Fatalf("node exited while waiting for %s", what)
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pod returns the pod (nil when it does not exist).
func (n *node) pod(ns, name string) *corev1.Pod {
	p, err := n.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

func (n *node) podsWithLabel(ns, selector string) []corev1.Pod {
	l, err := n.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil
	}
	return l.Items
}

func podReady(p *corev1.Pod) bool {
	if p == nil || p.DeletionTimestamp != nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyEndpoints counts the endpoints whose ready condition is true in the
// service's EndpointSlices.
func (n *node) readyEndpoints(ns, svc string) int {
	l, err := n.client.DiscoveryV1().EndpointSlices(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return -1
	}
	ready := 0
	for _, s := range l.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				ready++
			}
		}
	}
	return ready
}

// clusterIP reads a Service's cluster IP from the local API.
func (n *node) clusterIP(ns, name string) string {
	n.t.Helper()
	svc, err := n.client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		n.t.Fatalf("service %s/%s: %v", ns, name, err)
	}
	if net.ParseIP(svc.Spec.ClusterIP) == nil {
		n.t.Fatalf("service %s/%s has no cluster IP (%q)", ns, name, svc.Spec.ClusterIP)
	}
	return svc.Spec.ClusterIP
}

// cli runs the switchboard CLI against this node.
func (n *node) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--state-dir", n.stateDir}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// metrics fetches the Prometheus text the prometheus plugin serves.
func metrics(addr string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return b.String(), nil
}

// metricSum adds up the samples of a metric whose labels contain every
// one of the given `name="value"` pairs; found says whether any matched.
func metricSum(text, name string, labels ...string) (sum float64, found bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line[:sp], l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// writeFile writes content to path atomically (write, then rename), as
// editors and deployment tools do.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
