package standalonestore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/controllers"
)

// writeBenchManifests writes services × podsPer pods as a Deployment's
// would be: namespace nsN holds 100 services, service svcI selects
// app=svcI, and its pods carry that label and a named container port.
func writeBenchManifests(tb testing.TB, dir string, services, podsPer int) {
	tb.Helper()
	write := func(name string, n int, doc func(w *bufio.Writer, i int)) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			tb.Fatal(err)
		}
		w := bufio.NewWriter(f)
		for i := 0; i < n; i++ {
			doc(w, i)
		}
		if err := w.Flush(); err != nil {
			tb.Fatal(err)
		}
		if err := f.Close(); err != nil {
			tb.Fatal(err)
		}
	}
	write("services.yaml", services, func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, `---
apiVersion: v1
kind: Service
metadata:
  name: svc%d
  namespace: ns%d
spec:
  selector:
    app: svc%d
  ports:
  - name: http
    port: 80
    targetPort: http
`, i, i/100, i)
	})
	write("pods.yaml", services*podsPer, func(w *bufio.Writer, i int) {
		svc := i / podsPer
		fmt.Fprintf(w, `---
apiVersion: v1
kind: Pod
metadata:
  name: pod%d
  namespace: ns%d
  labels:
    app: svc%d
    pod-template-hash: 5d8f7c9b4
spec:
  containers:
  - name: app
    image: registry.example.com/team/app:1.4.2
    command: ["app"]
    ports:
    - name: http
      containerPort: 8080
`, i, svc/100, svc)
	})
}

// BenchmarkLoad is `switchboard dns -f DIR` over services × 10 pods: the
// time New takes to load and sync, and the live heap afterwards
// (live-MB, after a forced GC, store and manifest source included).
func BenchmarkLoad(b *testing.B) {
	for _, services := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d/pods=%d", services, services*10), func(b *testing.B) {
			dir := b.TempDir()
			writeBenchManifests(b, dir, services, 10)
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			var live uint64
			b.ResetTimer()
			for range b.N {
				ctx, cancel := context.WithCancel(context.Background())
				store, problems, err := New(ctx, Config{Paths: []string{dir}, Logger: log})
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				if len(problems) > 0 {
					cancel()
					b.Fatalf("problems: %v", problems[0])
				}
				waitSlices(b, store, services)
				b.StopTimer()
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				live = ms.HeapAlloc
				runtime.KeepAlive(store)
				cancel()
				b.StartTimer()
			}
			b.ReportMetric(float64(live)/(1<<20), "live-MB")
		})
	}
}

// waitSlices waits until every Service has its managed EndpointSlice.
func waitSlices(tb testing.TB, store *cluster.Store, services int) {
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelManagedBy: controllers.EndpointSliceControllerName})
	deadline := time.Now().Add(30 * time.Minute)
	for {
		if n := len(cluster.List[*discoveryv1.EndpointSlice](store, "", sel)); n >= services {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("EndpointSlices never caught up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = corev1.PodRunning
