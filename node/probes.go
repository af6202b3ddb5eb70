package node

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/node/probe"
)

// ensureProbes starts one probe worker per probe of each container (and
// sidecar) of the pod, once, as kubelet's prober manager AddPod. Workers
// read the container's state from the node's bookkeeping and report
// result changes back through onProbeResult.
func (w *podWorker) ensureProbes(pod *corev1.Pod) {
	w.mu.Lock()
	if w.probesOn {
		w.mu.Unlock()
		return
	}
	w.probesOn = true
	ctx, cancel := context.WithCancel(context.Background())
	w.probeStop = cancel
	w.mu.Unlock()

	var specs []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if isSidecar(&pod.Spec.InitContainers[i]) {
			specs = append(specs, pod.Spec.InitContainers[i].DeepCopy())
		}
	}
	for i := range pod.Spec.Containers {
		specs = append(specs, pod.Spec.Containers[i].DeepCopy())
	}
	for _, spec := range specs {
		for _, p := range []struct {
			kind  probe.Kind
			probe *corev1.Probe
		}{
			{probe.Startup, spec.StartupProbe},
			{probe.Readiness, spec.ReadinessProbe},
			{probe.Liveness, spec.LivenessProbe},
		} {
			if p.probe == nil {
				continue
			}
			kind := p.kind
			name := spec.Name
			changed := make(chan struct{}, 1)
			w.mu.Lock()
			w.probes = append(w.probes, &probeHandle{container: name, changed: changed})
			w.mu.Unlock()
			wk := probe.NewWorker(probe.WorkerConfig{
				Kind:      kind,
				Probe:     defaultProbe(p.probe),
				Pod:       pod,
				Container: spec,
				State:     func() (probe.ContainerState, bool) { return w.probeState(name) },
				Target:    func() probe.Target { return w.probeTarget(name, spec) },
				OnResult:  func(id string, r probe.Result) { w.onProbeResult(name, kind, id, r) },
				Recorder:  recorderOrNil(w.n),
				Metrics:   w.n.probeMetrics,
				Logger:    w.n.log,
				Changed:   changed,
				Align:     probeAlign,
			})
			w.probeWG.Add(1)
			go func() {
				defer w.probeWG.Done()
				wk.Run(ctx)
			}()
		}
	}
}

// probeAlign is the grid the phases of the node's probe workers are moved
// to (probe.WorkerConfig.Align): probes then run in batches, a few per
// second, instead of at as many instants as there are probes, which is
// most of what a probe costs the node (each wake-up of an idle process
// costs more CPU than the probe's own work). The first attempt of each
// worker is not delayed; later ones shift by less than probeAlign once.
const probeAlign = 100 * time.Millisecond

// recorderOrNil avoids handing the probe package a non-nil interface
// holding a nil *cluster.Recorder.
func recorderOrNil(n *Node) probe.Recorder {
	if n.cfg.Recorder == nil {
		return nil
	}
	return n.cfg.Recorder
}

// defaultProbe applies the API defaults a pod written straight to the
// store may lack: timeoutSeconds 1, periodSeconds 10, successThreshold 1,
// failureThreshold 3.
func defaultProbe(p *corev1.Probe) *corev1.Probe {
	c := p.DeepCopy()
	if c.TimeoutSeconds <= 0 {
		c.TimeoutSeconds = 1
	}
	if c.PeriodSeconds <= 0 {
		c.PeriodSeconds = 10
	}
	if c.SuccessThreshold <= 0 {
		c.SuccessThreshold = 1
	}
	if c.FailureThreshold <= 0 {
		c.FailureThreshold = 3
	}
	return c
}

func (w *podWorker) stopProbes() {
	w.mu.Lock()
	stop := w.probeStop
	w.probeStop = nil
	w.mu.Unlock()
	if stop != nil {
		stop()
		w.probeWG.Wait()
	}
}

// probeHandle is the pod worker's side of one probe worker: the channel
// that tells it its container's state changed, and the state it was last
// told about.
type probeHandle struct {
	container string
	changed   chan struct{}
	last      probe.ContainerState
	lastOK    bool
}

// notifyProbes signals every probe worker whose container's state (as
// probeState answers it) changed since it was last signalled. It is called
// after each change of what probeState reads: an instance started, failed
// to start or exited, a startup result, the pod terminating, and after
// every sync. It may be called from any goroutine.
func (w *podWorker) notifyProbes() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range w.probes {
		st, ok := w.probeStateLocked(p.container)
		if ok == p.lastOK && st == p.last {
			continue
		}
		p.last, p.lastOK = st, ok
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
}

func (w *podWorker) probeState(name string) (probe.ContainerState, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.probeStateLocked(name)
}

func (w *podWorker) probeStateLocked(name string) (probe.ContainerState, bool) {
	c := w.containers[name]
	if c == nil || c.cur == nil {
		return probe.ContainerState{}, false
	}
	inst := c.cur
	running := !inst.isExited() && inst.pid > 0
	return probe.ContainerState{
		ID:          inst.id,
		Running:     running,
		StartedAt:   inst.startedAt,
		Started:     running && (inst.spec.StartupProbe == nil || inst.startupOK),
		Terminating: w.terminating || w.pod.DeletionTimestamp != nil,
	}, true
}

func (w *podWorker) probeTarget(name string, spec *corev1.Container) probe.Target {
	w.mu.Lock()
	pod := w.pod
	ip := ""
	if len(w.net.IPs) > 0 {
		ip = w.net.IPs[0].String()
	}
	var inst *instance
	if c := w.containers[name]; c != nil {
		inst = c.cur
	}
	w.mu.Unlock()
	t := probe.Target{Pod: pod, Container: spec, IP: ip}
	if inst != nil {
		t.Exec = func(ctx context.Context, cmd []string) ([]byte, int, error) {
			return w.execInContainer(ctx, pod, inst, cmd)
		}
	}
	return t
}

// onProbeResult acts on a changed probe result, as kubelet's sync loop on
// the liveness, readiness and startup managers' updates: readiness sets
// the container's ready flag; a liveness or startup Failure has the
// container killed and restarted (per restartPolicy) on the next sync; a
// startup Success marks it started.
func (w *podWorker) onProbeResult(name string, kind probe.Kind, id string, r probe.Result) {
	w.mu.Lock()
	c := w.containers[name]
	if c == nil || c.cur == nil || c.cur.id != id {
		w.mu.Unlock()
		return
	}
	inst := c.cur
	switch kind {
	case probe.Readiness:
		inst.ready = r == probe.Success
	case probe.Liveness:
		inst.livenessFailed = r == probe.Failure
	case probe.Startup:
		inst.startupOK = r == probe.Success
		inst.startupFailed = r == probe.Failure
	}
	w.mu.Unlock()
	if kind == probe.Startup {
		w.notifyProbes() // Started changed
	}
	w.poke()
}
