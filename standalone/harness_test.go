package standalone

import (
	"bytes"
	"context"
	"fmt"
	"github.com/switchboard-dev/switchboard/internal/testutil"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// binary is the switchboard binary the end-to-end tests run, built once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", binary, "../cmd/switchboard")
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

// syncBuffer is testutil.SyncBuffer: tests read it while a writer writes.
type syncBuffer = testutil.SyncBuffer

// testNode is one `switchboard up` process with its own state directory,
// node name and address ranges, so that tests run side by side.
type testNode struct {
	t        *testing.T
	name     string
	stateDir string
	podCIDR  string
	cmd      *exec.Cmd
	stdout   *syncBuffer
	stderr   *syncBuffer
	exited   chan struct{}
	client   *kubernetes.Clientset
}

// startNode runs `switchboard up -f dir...` and waits until its local API
// answers /readyz. Everything it started is stopped when the test ends.
func startNode(t *testing.T, paths ...string) *testNode {
	t.Helper()
	// A private /24 for pods and one for services inside 127.0.0.0/8.
	r := 1 + rand.IntN(250)
	n := &testNode{
		t:        t,
		name:     fmt.Sprintf("e2e-%d-%d", os.Getpid(), rand.IntN(1_000_000)),
		stateDir: t.TempDir(),
		podCIDR:  fmt.Sprintf("127.50.%d.0/24", r),
		stdout:   &syncBuffer{},
		stderr:   &syncBuffer{},
		exited:   make(chan struct{}),
	}
	args := []string{"up", "--network", "loopback", "--state-dir", n.stateDir, "--node-name", n.name,
		"--pod-cidr", n.podCIDR, "--service-cidr", fmt.Sprintf("127.51.%d.0/24", r), "--log-level", "debug",
		// The node's own address, free ports: tests run side by side.
		"--ingress-http-addr", fmt.Sprintf("127.50.%d.1:0", r), "--ingress-https-addr", fmt.Sprintf("127.50.%d.1:0", r)}
	for _, p := range paths {
		args = append(args, "-f", p)
	}
	n.launch(args)
	return n
}

// launch runs the binary with args and waits until its local API answers
// /readyz; the node is stopped when the test ends.
func (n *testNode) launch(args []string) {
	t := n.t
	t.Helper()
	n.cmd = exec.Command(binary, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.stdout, n.stderr
	// Its own process group, as a shell gives a foreground job.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		n.stop(20 * time.Second)
		n.killLeftovers()
		if t.Failed() {
			t.Logf("node stdout:\n%s", n.stdout.String())
			t.Logf("node stderr (last 6000 bytes):\n%s", tail(n.stderr.String(), 6000))
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
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// stop sends SIGINT (what Ctrl-C sends) and waits for the node to exit.
func (n *testNode) stop(wait time.Duration) error {
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
		return fmt.Errorf("node did not stop within %s after SIGINT", wait)
	}
}

// podProcesses lists the pids of processes a node started, found by the
// SWITCHBOARD_NODE_NAME the node puts into every container's environment
// (and SWITCHBOARD_POD_NAME when pod is not empty).
func podProcesses(node, pod string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		hasNode, hasPod := false, pod == ""
		for _, v := range vars {
			if v == "SWITCHBOARD_NODE_NAME="+node {
				hasNode = true
			}
			if pod != "" && v == "SWITCHBOARD_POD_NAME="+pod {
				hasPod = true
			}
		}
		if hasNode && hasPod && !isZombie(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

func (n *testNode) killLeftovers() {
	for _, pid := range podProcesses(n.name, "") {
		n.t.Errorf("process %d (%s) of node %s still running after the node stopped", pid, cmdline(pid), n.name)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitFor polls cond every 100ms until it holds or timeout passes.
func (n *testNode) waitFor(timeout time.Duration, what string, cond func() bool) {
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
		time.Sleep(100 * time.Millisecond)
	}
}

func (n *testNode) pods(ns string) []corev1.Pod {
	l, err := n.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return nil
	}
	return l.Items
}

func (n *testNode) pod(ns, name string) *corev1.Pod {
	p, err := n.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

// service is a Service the test needs: it fails the test when absent.
func (n *testNode) service(ns, name string) *corev1.Service {
	n.t.Helper()
	s, err := n.client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		n.t.Fatal(err)
	}
	return s
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

// waitPodsReady waits until want pods of the namespace exist and are all
// Ready, and returns them.
func (n *testNode) waitPodsReady(ns string, want int, timeout time.Duration) []corev1.Pod {
	n.t.Helper()
	var pods []corev1.Pod
	n.waitFor(timeout, fmt.Sprintf("%d ready pods in %s", want, ns), func() bool {
		pods = n.pods(ns)
		ready := 0
		for i := range pods {
			if podReady(&pods[i]) {
				ready++
			}
		}
		return len(pods) == want && ready == want
	})
	return pods
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	if p == nil {
		return nil
	}
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// readyEndpoints counts the ready endpoints in the service's slices.
func (n *testNode) readyEndpoints(ns, svc string) (ready, total int) {
	l, err := n.client.DiscoveryV1().EndpointSlices(ns).List(context.Background(),
		metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + svc})
	if err != nil {
		return -1, -1
	}
	for _, s := range l.Items {
		for _, ep := range s.Endpoints {
			total++
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				ready++
			}
		}
	}
	return ready, total
}

// run runs the switchboard CLI against this node and returns its output.
func (n *testNode) run(args ...string) (string, error) {
	cmd := exec.Command(binary, append([]string{"--state-dir", n.stateDir}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// httpGet fetches a URL with a short timeout.
func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// writeFile writes a manifest into dir atomically (write, then rename), as
// editors do.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// clusterDNS returns the address cluster DNS answers on: the kube-dns
// Service's address and the port its EndpointSlice names.
func (n *testNode) clusterDNS() string {
	n.t.Helper()
	svc, err := n.client.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
	if err != nil {
		n.t.Fatalf("kube-system/kube-dns: %v", err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "dns" {
			return net.JoinHostPort(svc.Spec.ClusterIP, p.TargetPort.String())
		}
	}
	n.t.Fatal("kube-dns has no dns port")
	return ""
}

// query asks addr over UDP and returns the answer's records as text
// (the rdata only) and the rcode.
func query(t *testing.T, addr, name string, qtype uint16) ([]string, int) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	c := &mdns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("DNS %s %s at %s: %v", name, mdns.TypeToString[qtype], addr, err)
	}
	var out []string
	for _, rr := range r.Answer {
		h := rr.Header().String()
		out = append(out, strings.TrimSpace(strings.TrimPrefix(rr.String(), h)))
	}
	return out, r.Rcode
}

// lookup is query for the records only.
func lookup(t *testing.T, addr, name string, qtype uint16) []string {
	t.Helper()
	out, _ := query(t, addr, name, qtype)
	return out
}
