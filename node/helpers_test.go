package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// TestMain lets the test binary double as a container: with
// NODE_TEST_HELPER=1 in its environment it runs a small workload instead
// of the tests (containers whose command[0] is "switchboard" run
// Config.Executable, which the tests set to this binary).
func TestMain(m *testing.M) {
	if os.Getenv("NODE_TEST_HELPER") == "1" {
		helperMain(os.Args[1:])
		return
	}
	os.Exit(m.Run())
}

// helperMain: "http PORT" serves on SWITCHBOARD_POD_IP:PORT: / answers
// with the pod's name, /healthz and /readyz answer 200 until
// /fail/healthz or /fail/readyz is requested (then 500) and again after
// /ok/healthz or /ok/readyz.
func helperMain(args []string) {
	if len(args) < 2 || args[0] != "http" {
		fmt.Fprintln(os.Stderr, "usage: http PORT")
		os.Exit(2)
	}
	var failHealth, failReady atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv("SWITCHBOARD_POD_NAME"))
	})
	check := func(b *atomic.Bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if b.Load() {
				http.Error(w, "failing", http.StatusInternalServerError)
				return
			}
			fmt.Fprint(w, "ok")
		}
	}
	mux.HandleFunc("/healthz", check(&failHealth))
	mux.HandleFunc("/readyz", check(&failReady))
	mux.HandleFunc("/fail/healthz", func(w http.ResponseWriter, r *http.Request) { failHealth.Store(true) })
	mux.HandleFunc("/fail/readyz", func(w http.ResponseWriter, r *http.Request) { failReady.Store(true) })
	mux.HandleFunc("/ok/readyz", func(w http.ResponseWriter, r *http.Request) { failReady.Store(false) })
	addr := net.JoinHostPort(os.Getenv("SWITCHBOARD_POD_IP"), args[1])
	fmt.Println("listening on", addr)
	if err := http.ListenAndServe(addr, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type harness struct {
	t     testing.TB
	store *cluster.Store
	node  *Node
	sb    *sandbox.Loopback
	dir   string
	stop  context.CancelFunc
	done  chan error
	once  sync.Once
}

// testCIDR is a /24 in 127.<100-250>.<x>.0 so that tests in parallel
// packages do not collide.
func testCIDR() netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{127, byte(100 + rand.IntN(151)), byte(rand.IntN(256)), 0}), 24)
}

type harnessOpt func(*Config)

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	sb, err := sandbox.NewLoopback(testCIDR())
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	store := cluster.NewStore()
	h := &harness{t: t, store: store, sb: sb, dir: t.TempDir(), done: make(chan error, 1)}
	cfg := Config{
		Store:               store,
		NodeName:            "test-node",
		Sandbox:             sb,
		StateDir:            h.dir,
		Executable:          exe,
		Recorder:            cluster.NewRecorder(store, "kubelet", "test-node"),
		Logger:              slog.New(slog.NewTextHandler(io.Discard, nil)),
		BackoffInitial:      time.Second,
		BackoffMax:          4 * time.Second,
		ShutdownGracePeriod: 3 * time.Second,
	}
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		o(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.node = n
	return h
}

// start runs the node until the test ends.
func (h *harness) start() *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	h.t.Cleanup(h.shutdown)
	go func() { h.done <- h.node.Run(ctx) }()
	h.eventually(5*time.Second, "node registered", func() bool {
		_, err := cluster.Get[*corev1.Node](h.store, "", h.node.Name())
		return err == nil
	})
	return h
}

// shutdown stops the node and waits for Run to return.
func (h *harness) shutdown() {
	h.once.Do(func() {
		h.stop()
		select {
		case err := <-h.done:
			if err != nil {
				h.t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			h.t.Errorf("Run did not return within 30s of its context ending")
		}
	})
}

func (h *harness) eventually(timeout time.Duration, what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) createPod(p *corev1.Pod) *corev1.Pod {
	h.t.Helper()
	if p.Namespace == "" {
		p.Namespace = "default"
	}
	p.Spec.NodeName = h.node.Name()
	if p.Spec.RestartPolicy == "" {
		p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	o, err := h.store.Create(p)
	if err != nil {
		h.t.Fatal(err)
	}
	return o.(*corev1.Pod)
}

func (h *harness) pod(name string) *corev1.Pod {
	h.t.Helper()
	p, err := cluster.Get[*corev1.Pod](h.store, "default", name)
	if err != nil {
		h.t.Fatalf("get pod %s: %v", name, err)
	}
	return p
}

// waitPod waits until cond holds for the pod and returns it.
func (h *harness) waitPod(name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	h.t.Helper()
	var last *corev1.Pod
	deadline := time.Now().Add(timeout)
	for {
		p, err := cluster.Get[*corev1.Pod](h.store, "default", name)
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for pod %s: %s; last status:\n%s", timeout, name, what, describeStatus(last))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeStatus(p *corev1.Pod) string {
	if p == nil {
		return "(no pod)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s ip=%s\n", p.Status.Phase, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, "  condition %s=%s %s %s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			fmt.Fprintf(&b, "  container %s restarts=%d ready=%v state=%s last=%s\n", cs.Name, cs.RestartCount, cs.Ready, stateString(cs.State), stateString(cs.LastTerminationState))
		}
	}
	return b.String()
}

func stateString(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running"
	case s.Waiting != nil:
		return "Waiting(" + s.Waiting.Reason + ": " + s.Waiting.Message + ")"
	case s.Terminated != nil:
		return fmt.Sprintf("Terminated(%s exit=%d)", s.Terminated.Reason, s.Terminated.ExitCode)
	}
	return "-"
}

func containerStatus(p *corev1.Pod, name string) corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for _, cs := range list {
			if cs.Name == name {
				return cs
			}
		}
	}
	return corev1.ContainerStatus{}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

func running(name string) func(*corev1.Pod) bool {
	return func(p *corev1.Pod) bool { return containerStatus(p, name).State.Running != nil }
}

// logs returns a container's log as StreamLogs writes it.
func (h *harness) logs(pod string, opts LogOptions) string {
	h.t.Helper()
	var b strings.Builder
	if err := h.node.StreamLogs(context.Background(), "default", pod, opts, &b); err != nil {
		h.t.Fatalf("logs of %s: %v", pod, err)
	}
	return b.String()
}

// waitLog waits until the container's current log contains s.
func (h *harness) waitLog(pod, container, s string, timeout time.Duration) string {
	h.t.Helper()
	var out string
	var err error
	deadline := time.Now().Add(timeout)
	for {
		var b strings.Builder
		err = h.node.StreamLogs(context.Background(), "default", pod, LogOptions{Container: container}, &b)
		out = b.String()
		if err == nil && strings.Contains(out, s) {
			return out
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %v waiting for the log of %s/%s to contain %q: have %q, %v", timeout, pod, container, s, out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func events(h *harness, p *corev1.Pod) []string {
	var out []string
	for _, e := range cluster.EventsFor(h.store, p) {
		out = append(out, e.Type+" "+e.Reason+" "+e.Message)
	}
	return out
}

func hasEvent(h *harness, p *corev1.Pod, reason, message string) bool {
	for _, e := range cluster.EventsFor(h.store, p) {
		if e.Reason == reason && (message == "" || e.Message == message) {
			return true
		}
	}
	return false
}

// recordedPids lists the process groups the node recorded.
func (h *harness) recordedPids() []int {
	entries, _ := os.ReadDir(filepath.Join(h.dir, "pids"))
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// processExists: the process is alive (a zombie is dead, only not yet
// reaped by its parent or init).
func processExists(pid int) bool {
	_, _, state, ok := procStatState(pid)
	return ok && state != 'Z' && state != 'X'
}

func shPod(name, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrInt64(2),
			Containers:                    []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sh", "-c", script}}},
		},
	}
}

func helperContainer(name string, port int) corev1.Container {
	return corev1.Container{
		Name:    name,
		Image:   "switchboard",
		Command: []string{"switchboard", "http", strconv.Itoa(port)},
		Env:     []corev1.EnvVar{{Name: "NODE_TEST_HELPER", Value: "1"}},
		Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
	}
}

func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}
