package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Node is one `switchboard up` process a test runs, with a state
// directory and a node name of its own so that tests run side by side.
// It is read through the node's local API (Client).
type Node struct {
	T        testing.TB
	Binary   string // the switchboard binary
	Name     string // --node-name
	StateDir string // --state-dir
	Cmd      *exec.Cmd
	Stdout   *SyncBuffer
	Stderr   *SyncBuffer
	Exited   chan struct{} // closed when the process has exited
	Client   *kubernetes.Clientset
}

// NewNode is a node not yet launched.
func NewNode(t testing.TB, binary, name, stateDir string) *Node {
	return &Node{T: t, Binary: binary, Name: name, StateDir: stateDir, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, Exited: make(chan struct{})}
}

// Launch runs the binary with args (which name the node's --state-dir
// and --node-name) in a process group of its own, as a shell runs a
// foreground job, and waits until its local API answers /readyz. When the
// test ends the node is stopped with SIGINT, every process of it still
// running fails the test and is killed, and a failed test logs the node's
// output.
func (n *Node) Launch(args []string) {
	t := n.T
	t.Helper()
	n.Cmd = exec.Command(n.Binary, args...)
	n.Cmd.Stdout, n.Cmd.Stderr = n.Stdout, n.Stderr
	n.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t.Cleanup(func() {
		if err := n.Stop(20 * time.Second); err != nil {
			t.Error(err)
		}
		for _, pid := range NodeProcesses(n.Name, "") {
			t.Errorf("process %d (%s) of node %s still running after the node stopped", pid, Cmdline(pid), n.Name)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("node %s stdout:\n%s", n.Name, n.Stdout.String())
			t.Logf("node %s stderr (last 8000 bytes):\n%s", n.Name, Tail(n.Stderr.String(), 8000))
		}
	})
	if err := n.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.Cmd.Wait(); close(n.Exited) }()
	c, hc, err := LocalAPI(filepath.Join(n.StateDir, "api.sock"))
	if err != nil {
		t.Fatal(err)
	}
	n.Client = c
	n.WaitFor(30*time.Second, "the local API to be ready", func() bool { return Ready(hc) })
}

// Stop sends SIGINT (what Ctrl-C sends) and waits for the node to exit;
// after wait it kills it and says so.
func (n *Node) Stop(wait time.Duration) error {
	if n.Cmd == nil || n.Cmd.Process == nil {
		return nil
	}
	select {
	case <-n.Exited:
		return nil
	default:
	}
	_ = n.Cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-n.Exited:
		return nil
	case <-time.After(wait):
		_ = n.Cmd.Process.Kill()
		<-n.Exited
		return fmt.Errorf("node %s did not stop within %s after SIGINT", n.Name, wait)
	}
}

// WaitFor polls cond every 50 ms until it holds; the test fails when
// timeout passes or the node exits first.
func (n *Node) WaitFor(timeout time.Duration, what string, cond func() bool) {
	n.T.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-n.Exited:
			n.T.Fatalf("node exited while waiting for %s", what)
		default:
		}
		if time.Now().After(deadline) {
			n.T.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Pod is the pod (nil when it does not exist).
func (n *Node) Pod(ns, name string) *corev1.Pod {
	p, err := n.Client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	return p
}

// Pods lists the namespace's pods matching the label selector ("" for
// all; nil on error).
func (n *Node) Pods(ns, selector string) []corev1.Pod {
	l, err := n.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil
	}
	return l.Items
}

// Service is a Service the test needs: it fails the test when absent.
func (n *Node) Service(ns, name string) *corev1.Service {
	n.T.Helper()
	s, err := n.Client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		n.T.Fatalf("service %s/%s: %v", ns, name, err)
	}
	return s
}

// ReadyEndpoints counts the endpoints of the service's EndpointSlices,
// and those whose ready condition is true (-1, -1 on error).
func (n *Node) ReadyEndpoints(ns, svc string) (ready, total int) {
	l, err := n.Client.DiscoveryV1().EndpointSlices(ns).List(context.Background(),
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

// CLI runs the switchboard CLI against this node (20 s at most) and
// returns its combined output.
func (n *Node) CLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.Binary, append([]string{"--state-dir", n.StateDir}, args...)...).CombinedOutput()
	return string(out), err
}

// PodReady reports the pod's Ready condition (false while it is being
// deleted).
func PodReady(p *corev1.Pod) bool {
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

// NodeProcesses lists the live processes a node started, found by the
// SWITCHBOARD_NODE_NAME the node puts into every container's environment
// (and SWITCHBOARD_POD_NAME when pod is not empty).
func NodeProcesses(node, pod string) []int {
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
		hasNode, hasPod := false, pod == ""
		for _, v := range strings.Split(string(env), "\x00") {
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

// Cmdline is a process's command line, space-separated.
func Cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
