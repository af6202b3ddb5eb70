// Command startup is the start-up benchmark: the time from starting
// `switchboard up` to 100 pods (the demo HTTP server with a readiness
// probe) all Ready, over several runs.
//
//	go run ./bench/startup [-pods 100] [-runs 3]
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/switchboard-dev/switchboard/bench/internal/benchnode"
)

func manifest(pods int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: many
spec:
  replicas: %d
  selector:
    matchLabels: {app: many}
  template:
    metadata:
      labels: {app: many}
    spec:
      containers:
        - name: web
          command: ["switchboard", "demo", "http", "--port", "8080", "--quiet"]
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: many
spec:
  selector: {app: many}
  ports: [{port: 80, targetPort: 8080}]
`, pods)
}

func main() {
	pods := flag.Int("pods", 100, "pods to start")
	runs := flag.Int("runs", 3, "runs")
	flag.Parse()
	dir, err := os.MkdirTemp("", "switchboard-bench-startup-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	bin, err := benchnode.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var times []time.Duration
	for i := 0; i < *runs; i++ {
		rd := fmt.Sprintf("%s/run%d", dir, i)
		n, err := benchnode.Start(bin, rd, manifest(*pods))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		took, err := n.WaitReady(*pods, 3*time.Minute, nil)
		stopErr := n.Stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if stopErr != nil {
			fmt.Fprintln(os.Stderr, "stop:", stopErr)
		}
		fmt.Fprintf(os.Stderr, "run %d: %.2fs\n", i+1, took.Seconds())
		times = append(times, took)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fmt.Printf("bench/startup: %d pods (demo http, readiness probe at 1s), %d runs, %s\n\n", *pods, *runs, time.Now().Format(time.RFC3339))
	fmt.Printf("%-40s %12s %12s %12s\n", "work", "min", "median", "max")
	fmt.Printf("%-40s %11.2fs %11.2fs %11.2fs\n", "up → all pods Ready", times[0].Seconds(), times[len(times)/2].Seconds(), times[len(times)-1].Seconds())
}
