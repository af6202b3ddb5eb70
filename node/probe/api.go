// Package probe owns Kubernetes container probes as kubelet runs them:
// the handlers (httpGet, tcpSocket, exec, grpc), one worker per probe per
// container with kubelet's timing and thresholds, the Unhealthy events and
// the prober_probe_total metrics. It does not start, stop or restart
// containers: it reports results and the node (package node) acts on them.
package probe

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

// Kind is the kind of a probe, as kubelet's probeType.
type Kind string

// The three probe kinds.
const (
	Liveness  Kind = "Liveness"
	Readiness Kind = "Readiness"
	Startup   Kind = "Startup"
)

// Result is a probe outcome, as kubelet's results.Result.
type Result int

// Results. Unknown is the state before the first decisive attempt.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	}
	return "Unknown"
}

// Target is where one probe attempt goes: the pod's IP, and a way to run a
// command in the container's context for exec probes.
type Target struct {
	Pod       *corev1.Pod
	Container *corev1.Container
	IP        string // pod IP: the default host of httpGet, tcpSocket and grpc
	// Exec runs cmd in the container's context (its environment, its
	// sandbox) and returns combined output and exit code; it must honour
	// ctx (the probe's timeout) by killing what it started. A command
	// that ran returns err nil (or an *exec.ExitError, or any error with
	// exitCode > 0); any other error means it could not be run, which
	// kubelet treats as a probe error, not a failure.
	Exec func(ctx context.Context, cmd []string) (output []byte, exitCode int, err error)
}

// Run executes one attempt of p against t, with p's timeout, and returns
// the result and a message in kubelet's words (e.g. "HTTP probe failed
// with statuscode: 503"). It never panics on a malformed probe: that is a
// Failure with the reason.
func Run(ctx context.Context, p *corev1.Probe, t Target) (Result, string) {
	return runProbe(ctx, p, t)
}

// ContainerState is what a worker needs to know of its container at each
// tick; the node answers it from its own bookkeeping.
type ContainerState struct {
	ID        string    // changes on every restart of the container
	Running   bool      // the process is running
	StartedAt time.Time // when this instance started running
	Started   bool      // the startup probe has succeeded (or there is none)
	// Terminating: the pod is being deleted. Liveness and startup workers
	// then report Success and stop probing this container, as kubelet
	// does on graceful shutdown. Optional; false keeps probing.
	Terminating bool
}

// Recorder is what workers need of cluster.Recorder.
type Recorder interface {
	Eventf(obj cluster.Object, eventType, reason, format string, args ...any)
}

// WorkerConfig configures one probe worker.
type WorkerConfig struct {
	Kind      Kind
	Probe     *corev1.Probe // defaulted: periodSeconds etc. already set
	Pod       *corev1.Pod
	Container *corev1.Container
	// State is called at every tick; ok=false means the container is gone
	// (the worker then waits for a new one).
	State func() (ContainerState, bool)
	// Target is called for each attempt.
	Target func() Target
	// OnResult is called when the result for container id changes, after
	// thresholds: Success after successThreshold consecutive successes,
	// Failure after failureThreshold consecutive failures. After a Failure
	// of a liveness or startup probe the worker holds until the container
	// ID changes (the node restarts the container), as kubelet does; a
	// startup worker also stops once it has succeeded (kubelet #117153).
	// When a new container ID is first seen, OnResult(id, initial value)
	// is called (Readiness Failure, Liveness Success, Startup Unknown);
	// a readiness worker reports Failure for a container that is not
	// running. It is called from the worker's goroutine; keep it quick.
	OnResult func(id string, r Result)
	Recorder Recorder     // Unhealthy events; may be nil
	Metrics  *Metrics     // may be nil
	Logger   *slog.Logger // may be nil
	// Jitter delays the first attempt by a random part of the period, as
	// kubelet does just after it starts. Default false.
	Jitter bool
	// Changed, when set, is signalled (a non-blocking send; a buffer of
	// one suffices) after every change of what State answers. The worker
	// then does not wake at every period while only such a change can
	// alter the outcome of its next tick (held after a failure or after
	// its startup probe succeeded, container not there, not running or
	// not started): it waits for the signal and resumes at the first
	// period tick after it, the tick at which polling would have seen
	// the change. Without it the worker polls State at every tick.
	Changed <-chan struct{}
	// Align, when > 0, moves the phase of the worker's ticks to the next
	// multiple of Align on the wall clock: the first attempt still runs
	// at once and the period is unchanged, but the later attempts come
	// up to Align later than period after the first. Workers with the
	// same Align then probe at shared instants, so a node running many
	// probes wakes once for several of them rather than once each. 0
	// keeps kubelet's ticks: every period from when the worker started.
	Align time.Duration
}

// Worker runs one probe of one container until stopped.
type Worker struct {
	cfg WorkerConfig
	w   *worker
}

// NewWorker returns a worker; call Run to start it.
func NewWorker(cfg WorkerConfig) *Worker { return &Worker{cfg: cfg, w: newWorker(cfg)} }

// Run probes every periodSeconds until ctx is done.
func (w *Worker) Run(ctx context.Context) { w.w.run(ctx) }

// Result is the current result for the current container instance:
// Readiness starts as Failure, Liveness as Success, Startup as Unknown,
// as kubelet's initial values.
func (w *Worker) Result() Result { return w.w.result() }

// Metrics are the prober metrics, named as kubelet's.
type Metrics struct {
	ProbeTotal    *prometheus.CounterVec   // prober_probe_total{probe_type,result,container,pod,namespace,pod_uid}
	ProbeDuration *prometheus.HistogramVec // prober_probe_duration_seconds{probe_type,container,pod,namespace}
}

// NewMetrics creates the metrics and registers them on reg when not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics { return newMetrics(reg) }
