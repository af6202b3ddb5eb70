package node

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the node's, named as kubelet's.
type metrics struct {
	startedPods             prometheus.Counter
	startedContainers       *prometheus.CounterVec
	startedContainersErrors *prometheus.CounterVec
	podStartDuration        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, n *Node) *metrics {
	m := &metrics{
		startedPods: prometheus.NewCounter(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "started_pods_total",
			Help: "Cumulative number of pods started",
		}),
		startedContainers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "started_containers_total",
			Help: "Cumulative number of containers started",
		}, []string{"container_type"}),
		startedContainersErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "kubelet", Name: "started_containers_errors_total",
			Help: "Cumulative number of errors when starting containers",
		}, []string{"code", "container_type"}),
		podStartDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Subsystem: "kubelet", Name: "pod_start_duration_seconds",
			Help:    "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
			Buckets: []float64{0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600},
		}),
	}
	if reg != nil {
		m.startedPods = register(reg, m.startedPods)
		m.startedContainers = register(reg, m.startedContainers)
		m.startedContainersErrors = register(reg, m.startedContainersErrors)
		m.podStartDuration = register(reg, m.podStartDuration)
		// Gauges read from the node's bookkeeping when scraped. A second
		// node on the same registry keeps the first one's.
		_ = reg.Register(&runningCollector{n: n})
	}
	return m
}

// register registers c, or returns the identical collector already there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

var (
	runningPodsDesc = prometheus.NewDesc("kubelet_running_pods",
		"Number of pods that have a running pod sandbox", nil, nil)
	runningContainersDesc = prometheus.NewDesc("kubelet_running_containers",
		"Number of containers currently running", []string{"container_state"}, nil)
)

// runningCollector reports kubelet_running_pods and
// kubelet_running_containers{container_state} from the pod workers.
type runningCollector struct{ n *Node }

func (c *runningCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runningPodsDesc
	ch <- runningContainersDesc
}

func (c *runningCollector) Collect(ch chan<- prometheus.Metric) {
	pods, running, exited := 0, 0, 0
	for _, w := range c.n.allWorkers() {
		w.mu.Lock()
		if w.sandboxUp {
			pods++
		}
		for _, ct := range w.containers {
			if ct.cur == nil {
				continue
			}
			if ct.cur.isExited() {
				exited++
			} else {
				running++
			}
		}
		w.mu.Unlock()
	}
	ch <- prometheus.MustNewConstMetric(runningPodsDesc, prometheus.GaugeValue, float64(pods))
	ch <- prometheus.MustNewConstMetric(runningContainersDesc, prometheus.GaugeValue, float64(running), "running")
	ch <- prometheus.MustNewConstMetric(runningContainersDesc, prometheus.GaugeValue, float64(exited), "exited")
}
