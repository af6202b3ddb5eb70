// Package benchnode runs a real `switchboard up` for the benchmarks under
// bench/: it builds the binary, writes generated manifests, starts the
// node with a private state directory and address ranges, waits for pods,
// and reads the node process's own CPU time and memory from /proc.
package benchnode

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Node is a running `switchboard up`.
type Node struct {
	Dir     string
	Cmd     *exec.Cmd
	Client  *kubernetes.Clientset
	Started time.Time
	log     *os.File
}

// Build compiles the switchboard binary into dir.
func Build(dir string) (string, error) {
	bin := filepath.Join(dir, "switchboard")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/switchboard")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

// Start writes manifest into a new directory under dir and runs `up` on it.
func Start(bin, dir, manifest string) (*Node, error) {
	mdir := filepath.Join(dir, "manifests")
	if err := os.MkdirAll(mdir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(mdir, "bench.yaml"), []byte(manifest), 0o644); err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "state")
	logf, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		return nil, err
	}
	n := &Node{Dir: dir, log: logf}
	n.Cmd = exec.Command(bin, "up", "--network", "loopback", "-f", mdir, "--state-dir", state, "--node-name", "bench",
		"--pod-cidr", "127.60.0.0/16", "--service-cidr", "127.61.0.0/16", "--ready-timeout", "10m", "--log-level", "warn")
	n.Cmd.Stdout, n.Cmd.Stderr = logf, logf
	n.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sock := filepath.Join(state, "api.sock")
	cfg := &rest.Config{Host: "http://localhost", QPS: 1000, Burst: 1000,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}
	n.Client, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	n.Started = time.Now()
	if err := n.Cmd.Start(); err != nil {
		return nil, err
	}
	return n, nil
}

// WaitReady waits until want pods exist and are Ready; it returns how long
// that took from Start.
func (n *Node) WaitReady(want int, timeout time.Duration, progress func(ready, total int)) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	last := -1
	for time.Now().Before(deadline) {
		l, err := n.Client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
		if err == nil {
			ready := 0
			for i := range l.Items {
				for _, c := range l.Items[i].Status.Conditions {
					if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
						ready++
					}
				}
			}
			if progress != nil && ready != last {
				progress(ready, len(l.Items))
				last = ready
			}
			if len(l.Items) == want && ready == want {
				return time.Since(n.Started), nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return 0, fmt.Errorf("not %d ready pods after %s (see %s)", want, timeout, n.log.Name())
}

// Stop sends SIGINT and waits for the node to exit.
func (n *Node) Stop() error {
	_ = n.Cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- n.Cmd.Wait() }()
	select {
	case err := <-done:
		n.log.Close()
		return err
	case <-time.After(60 * time.Second):
		_ = syscall.Kill(-n.Cmd.Process.Pid, syscall.SIGKILL)
		n.log.Close()
		return fmt.Errorf("node did not stop within 60s")
	}
}

// Usage is CPU time and resident memory of one process.
type Usage struct {
	CPU time.Duration
	RSS int64 // bytes
}

// ProcUsage reads /proc/PID/stat (utime+stime) and /proc/PID/status (VmRSS).
func ProcUsage(pid int) (Usage, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Usage{}, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// fields after "(comm) ": state is f[0]; utime is field 14 => f[11], stime f[12]
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	const clkTck = 100 // sysconf(_SC_CLK_TCK) on Linux
	u := Usage{CPU: time.Duration(ut+st) * time.Second / clkTck}
	st2, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(st2), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			u.RSS = kb * 1024
		}
	}
	return u, nil
}

// ChildrenUsage sums the usage of every process whose environment names
// this node (the pods' processes).
func ChildrenUsage(node string) (Usage, int) {
	entries, _ := os.ReadDir("/proc")
	var total Usage
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !strings.Contains(string(env), "SWITCHBOARD_NODE_NAME="+node+"\x00") {
			continue
		}
		u, err := ProcUsage(pid)
		if err != nil {
			continue
		}
		total.CPU += u.CPU
		total.RSS += u.RSS
		n++
	}
	return total, n
}
