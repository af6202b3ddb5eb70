// Command probes is the probe benchmark: 250 pods of the demo HTTP server,
// each with a liveness, a readiness and a startup probe at a 1 s period,
// run by a real `switchboard up`. It prints the node process's own CPU use
// and memory over a measured window (the pods' processes are shown apart).
// Goal (ANCHORS.md): under 5% of one core. kubelet cannot run on this
// machine, so there is no peer column; the goal stands in for it.
//
//	go run ./bench/probes [-pods 250] [-window 30s]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/switchboard-dev/switchboard/bench/internal/benchnode"
)

func manifest(pods int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: probed
spec:
  replicas: %d
  selector:
    matchLabels: {app: probed}
  template:
    metadata:
      labels: {app: probed}
    spec:
      containers:
        - name: web
          command: ["switchboard", "demo", "http", "--port", "8080", "--quiet"]
          ports: [{name: http, containerPort: 8080}]
          startupProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
            failureThreshold: 30
          livenessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
          readinessProbe:
            httpGet: {path: /readyz, port: http}
            periodSeconds: 1
`, pods)
}

func main() {
	pods := flag.Int("pods", 250, "pods to run")
	window := flag.Duration("window", 30*time.Second, "measurement window once every pod is ready")
	flag.Parse()
	if err := run(*pods, *window); err != nil {
		fmt.Fprintln(os.Stderr, "bench/probes:", err)
		os.Exit(1)
	}
}

func run(pods int, window time.Duration) error {
	dir, err := os.MkdirTemp("", "switchboard-bench-probes-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := benchnode.Build(dir)
	if err != nil {
		return err
	}
	n, err := benchnode.Start(bin, dir, manifest(pods))
	if err != nil {
		return err
	}
	defer n.Stop()
	fmt.Fprintf(os.Stderr, "starting %d pods with 3 probes each at a 1s period ...\n", pods)
	took, err := n.WaitReady(pods, 5*time.Minute, func(r, t int) { fmt.Fprintf(os.Stderr, "\r%d/%d ready", r, t) })
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second) // settle: startup probes are done, steady probing
	pid := n.Cmd.Process.Pid
	u0, err := benchnode.ProcUsage(pid)
	if err != nil {
		return err
	}
	c0, _ := benchnode.ChildrenUsage("bench")
	t0 := time.Now()
	time.Sleep(window)
	u1, err := benchnode.ProcUsage(pid)
	if err != nil {
		return err
	}
	c1, nproc := benchnode.ChildrenUsage("bench")
	el := time.Since(t0)
	nodeCPU := float64(u1.CPU-u0.CPU) / float64(el) * 100
	podCPU := float64(c1.CPU-c0.CPU) / float64(el) * 100
	probesPerSec := float64(pods * 2) // liveness + readiness each second once started
	fmt.Printf("bench/probes: %d pods x 3 probes (startup done; liveness+readiness at 1s), window %s, %s\n\n", pods, window, time.Now().Format(time.RFC3339))
	fmt.Printf("%-44s %14s %14s\n", "work", "switchboard", "goal")
	fmt.Printf("%-44s %13.2f%% %13s\n", "node process CPU (% of one core)", nodeCPU, "< 5%")
	fmt.Printf("%-44s %11.1f MB %14s\n", "node process RSS", float64(u1.RSS)/1e6, "-")
	fmt.Printf("%-44s %14.0f %14s\n", "probe attempts per second", probesPerSec, "-")
	fmt.Printf("%-44s %11.1f µs %14s\n", "node CPU per probe attempt", float64(u1.CPU-u0.CPU)/float64(time.Microsecond)/(probesPerSec*el.Seconds()), "-")
	fmt.Printf("%-44s %13.2fs %14s\n", "time to all pods ready", took.Seconds(), "-")
	fmt.Printf("%-44s %13.2f%% %14s\n", "the pods' own processes CPU (% of one core)", podCPU, "-")
	fmt.Printf("%-52s %11.1f MB %14s\n", fmt.Sprintf("pods' RSS summed (%d processes, shared pages in each)", nproc), float64(c1.RSS)/1e6, "-")
	return nil
}
