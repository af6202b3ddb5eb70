package probe

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
)

// Event reasons, as kubelet's events.ContainerUnhealthy and
// events.ContainerProbeWarning.
const (
	ReasonUnhealthy    = "Unhealthy"
	ReasonProbeWarning = "ProbeWarning"
)

// worker is kubelet's probe worker for one probe of one container. The
// loop state (containerID, lastResult, resultRun, onHold) belongs to the
// goroutine running run (or to a test calling doProbe); the published
// result is guarded by mu.
type worker struct {
	cfg     WorkerConfig
	spec    corev1.Probe // defaulted copy
	initial Result
	log     *slog.Logger

	// period overrides periodSeconds when > 0 (tests only).
	period time.Duration
	// now is the clock for initialDelaySeconds (tests may replace it).
	now func() time.Time

	// http keeps the httpGet request between attempts.
	http httpCache

	containerID string
	lastResult  Result
	resultRun   int
	onHold      bool

	mu        sync.Mutex
	res       Result
	pubID     string
	published bool

	totalLabels    [3]prometheus.Labels // successful, failed, unknown
	durationLabels prometheus.Labels
	// total caches the prober_probe_total children (resolved on first
	// use, so that a series appears only once counted, as kubelet's):
	// their labels include the pod's UID, so no other worker shares them.
	total [3]prometheus.Counter
	// durationValues are durationLabels' values in the metric's order.
	// That series is looked up at each observation: its labels have no
	// UID, so a worker of an earlier pod of the same name may delete it
	// when it stops, and the lookup creates it again.
	durationValues []string
}

func newWorker(cfg WorkerConfig) *worker {
	w := &worker{cfg: cfg, now: time.Now, log: cfg.Logger}
	if w.log == nil {
		w.log = slog.Default()
	}
	if cfg.Probe != nil {
		w.spec = *cfg.Probe
	}
	// API defaults, in case the probe was not defaulted.
	if w.spec.PeriodSeconds <= 0 {
		w.spec.PeriodSeconds = 10
	}
	if w.spec.SuccessThreshold <= 0 {
		w.spec.SuccessThreshold = 1
	}
	if w.spec.FailureThreshold <= 0 {
		w.spec.FailureThreshold = 3
	}
	// kubelet's initial values: "Readiness probes start as Failure,
	// liveness as Success, startup as Unknown".
	switch cfg.Kind {
	case Readiness:
		w.initial = Failure
	case Liveness:
		w.initial = Success
	default:
		w.initial = Unknown
	}
	w.res = w.initial
	w.lastResult = Unknown

	var name, podName, ns, uid string
	if cfg.Container != nil {
		name = cfg.Container.Name
	}
	if cfg.Pod != nil {
		podName, ns, uid = cfg.Pod.Name, cfg.Pod.Namespace, string(cfg.Pod.UID)
	}
	for i, r := range []string{probeResultSuccessful, probeResultFailed, probeResultUnknown} {
		w.totalLabels[i] = prometheus.Labels{"probe_type": string(cfg.Kind), "result": r, "container": name, "pod": podName, "namespace": ns, "pod_uid": uid}
	}
	w.durationLabels = prometheus.Labels{"probe_type": string(cfg.Kind), "container": name, "pod": podName, "namespace": ns}
	w.durationValues = []string{string(cfg.Kind), name, podName, ns}
	w.log = w.log.With("probeType", string(cfg.Kind), "pod", ns+"/"+podName, "container", name)
	return w
}

func (w *worker) result() Result {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.res
}

func (w *worker) tick() time.Duration {
	if w.period > 0 {
		return w.period
	}
	return time.Duration(w.spec.PeriodSeconds) * time.Second
}

// run probes at every tick of periodSeconds until ctx is done, as
// kubelet's worker.run; with Jitter it first waits a random part of the
// period ("If kubelet restarted the probes could be started in rapid
// succession. Let the worker wait for a random portion of tickerPeriod
// before probing.").
//
// The ticks are kubelet's time.Ticker's: start + k*period, a tick missed
// while a probe ran is delivered at once and the others are dropped;
// with WorkerConfig.Align, start is moved to the next multiple of Align.
// With WorkerConfig.Changed, a tick whose only possible outcome is the
// previous one (the worker is held, the container is not running or not
// started) is not waited for: the worker sleeps until the container's
// state changes, then takes the first tick after the change, which is
// the tick at which kubelet's worker would have seen it.
func (w *worker) run(ctx context.Context) {
	defer w.deleteMetrics()
	if w.cfg.Probe == nil {
		w.log.Warn("probe worker has no probe; not probing")
		<-ctx.Done()
		return
	}
	period := w.tick()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	sleepUntil := func(t time.Time) bool {
		d := time.Until(t)
		if d <= 0 {
			return ctx.Err() == nil
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		}
	}
	if w.cfg.Jitter && !sleepUntil(time.Now().Add(time.Duration(rand.Float64()*float64(period)))) {
		return
	}
	tk := newTicks(time.Now(), period, w.cfg.Align)
	last := tk.start // the latest tick consumed
	for ctx.Err() == nil {
		idle := w.doProbe(ctx)
		var next time.Time
		if idle && w.cfg.Changed != nil {
			// Nothing but a change of the container can make the next
			// tick differ from this one. The safety net looks again now
			// and then, as the ticks would.
			safety := time.NewTimer(idleRecheck * period)
			select {
			case <-ctx.Done():
			case <-w.cfg.Changed:
			case <-safety.C:
			}
			safety.Stop()
			next = tk.after(time.Now())
		} else {
			next = tk.next(last, time.Now())
		}
		if !sleepUntil(next) {
			return
		}
		last = tk.consumed(time.Now())
	}
}

// ticks are the instants of kubelet's time.Ticker started at start:
// start + k*period, k >= 1.
type ticks struct {
	start  time.Time
	period time.Duration
}

// newTicks starts ticks at now or, with align > 0, at the next multiple of
// align on the wall clock (keeping now's monotonic reading).
func newTicks(now time.Time, period, align time.Duration) ticks {
	if align > 0 {
		if off := now.Sub(now.Truncate(align)); off > 0 {
			now = now.Add(align - off)
		}
	}
	return ticks{start: now, period: period}
}

// after is the first tick strictly after t.
func (k ticks) after(t time.Time) time.Time {
	if t.Before(k.start) {
		return k.start.Add(k.period)
	}
	return k.start.Add((t.Sub(k.start)/k.period + 1) * k.period)
}

// next is when a ticker whose tick last was received last delivers the
// next one to a receiver arriving at now: at once if a tick passed in
// between (a ticker keeps one), else at the next tick.
func (k ticks) next(last, now time.Time) time.Time {
	if t := last.Add(k.period); t.After(now) {
		return t
	}
	return now
}

// consumed is the latest tick at or before now (or start): receiving at
// now takes the pending tick, and a ticker drops those it could not
// deliver.
func (k ticks) consumed(now time.Time) time.Time {
	return k.after(now).Add(-k.period)
}

// idleRecheck is, in periods, how long a worker waiting for a change of
// its container goes without looking again (a safety net: the node
// signals every change).
const idleRecheck = 10

// doProbe is one tick of kubelet's worker.doProbe. It reports whether
// the worker is idle: it returned without probing for a reason only a
// change of the container's state can undo (held, the container not
// there, not running or not started, a startup probe done).
func (w *worker) doProbe(ctx context.Context) (idle bool) {
	defer func() {
		// kubelet eats panics in doProbe and keeps going.
		if r := recover(); r != nil {
			w.log.Error("probe worker recovered from a panic", "panic", r)
			idle = false
		}
	}()
	if w.cfg.Probe == nil || w.cfg.State == nil {
		return true
	}
	start := time.Now()
	st, ok := w.cfg.State()
	if !ok || st.ID == "" {
		// "Either the container has not been created yet, or it was
		// deleted": wait for more information.
		return true
	}
	if st.ID != w.containerID {
		// A new container instance: start over from the initial value and
		// "We've got a new container; resume probing."
		w.containerID = st.ID
		w.lastResult, w.resultRun = Unknown, 0
		w.onHold = false
		w.publish(st.ID, w.initial)
	}
	if w.onHold {
		// "Worker is on hold until there is a new container."
		return true
	}
	if !st.Running {
		// "Non-running container probed": not ready.
		if w.cfg.Kind == Readiness {
			w.publish(st.ID, Failure)
		}
		return true
	}
	if st.Terminating && (w.cfg.Kind == Liveness || w.cfg.Kind == Startup) {
		// "Pod deletion requested, setting probe result to success" and
		// stop probing this container.
		w.publish(st.ID, Success)
		w.onHold = true
		return true
	}
	// "Probe disabled for InitialDelaySeconds", counted in whole seconds
	// from when the container started running.
	if int32(w.now().Sub(st.StartedAt).Seconds()) < w.spec.InitialDelaySeconds {
		return false
	}
	if st.Started {
		// "Stop probing for startup once container has started."
		if w.cfg.Kind == Startup {
			return true
		}
	} else if w.cfg.Kind != Startup {
		// "Disable other probes until container has started."
		return true
	}

	var t Target
	if w.cfg.Target != nil {
		t = w.cfg.Target()
	}
	if t.Pod == nil {
		t.Pod = w.cfg.Pod
	}
	if t.Container == nil {
		t.Container = w.cfg.Container
	}
	o, out, err := attemptWithRetries(ctx, &w.spec, t, &w.http)
	if ctx.Err() != nil {
		// A probe cut short by the worker stopping: throw away the result.
		return false
	}
	result := w.record(o, out, err)
	if err != nil {
		// "Prober error, throw away the result."
		return false
	}
	w.count(result, time.Since(start))

	if w.lastResult == result {
		w.resultRun++
	} else {
		w.lastResult = result
		w.resultRun = 1
	}
	if (result == Failure && w.resultRun < int(w.spec.FailureThreshold)) ||
		(result == Success && w.resultRun < int(w.spec.SuccessThreshold)) {
		// "Success or failure is below threshold - leave the probe state
		// unchanged."
		return false
	}
	w.publish(st.ID, result)

	if (w.cfg.Kind == Liveness && result == Failure) || w.cfg.Kind == Startup {
		// "The container fails a liveness/startup check, it will need to
		// be restarted. Stop probing until we see a new container ID."
		// A startup probe also stops once it has succeeded (#117153).
		w.onHold = true
		w.resultRun = 0
	}
	return w.onHold
}

// record turns an attempt into kubelet's results.Result and records the
// events kubelet's prober.probe records: Unhealthy "<Kind> probe failed:
// <output>" on a failure, Unhealthy "<Kind> probe errored and resulted in
// <state> state: <error>" when the handler could not run, ProbeWarning
// "<Kind> probe warning: <output>" on a success with a warning.
func (w *worker) record(o outcome, out string, err error) Result {
	if err != nil {
		w.log.Debug("Probe errored", "probeResult", o.String(), "err", err)
		w.event(corev1.EventTypeWarning, ReasonUnhealthy, "%s probe errored and resulted in %s state: %s", w.cfg.Kind, o, err)
		return Failure
	}
	switch o {
	case outcomeSuccess:
		w.log.Debug("Probe succeeded")
		return Success
	case outcomeWarning:
		w.log.Debug("Probe succeeded with a warning", "output", out)
		w.event(corev1.EventTypeWarning, ReasonProbeWarning, "%s probe warning: %s", w.cfg.Kind, out)
		return Success
	case outcomeFailure:
		w.log.Debug("Probe failed", "output", out)
		w.event(corev1.EventTypeWarning, ReasonUnhealthy, "%s probe failed: %s", w.cfg.Kind, out)
		return Failure
	}
	w.log.Debug("Probe unknown without error")
	return Failure
}

func (w *worker) event(eventType, reason, format string, args ...any) {
	if w.cfg.Recorder == nil || w.cfg.Pod == nil {
		return
	}
	w.cfg.Recorder.Eventf(w.cfg.Pod, eventType, reason, format, args...)
}

// count updates prober_probe_total and, as kubelet, observes
// prober_probe_duration_seconds for successful (and unknown) attempts.
func (w *worker) count(r Result, d time.Duration) {
	m := w.cfg.Metrics
	if m == nil {
		return
	}
	var i int
	switch r {
	case Success:
		i = 0
	case Failure:
		i = 1
	default:
		i = 2
	}
	if m.ProbeTotal != nil {
		c := w.total[i]
		if c == nil {
			c = m.ProbeTotal.With(w.totalLabels[i])
			w.total[i] = c
		}
		c.Inc()
	}
	if r != Failure && m.ProbeDuration != nil {
		m.ProbeDuration.WithLabelValues(w.durationValues...).Observe(d.Seconds())
	}
}

// deleteMetrics drops this worker's series when it stops, as kubelet.
func (w *worker) deleteMetrics() {
	m := w.cfg.Metrics
	if m == nil {
		return
	}
	if m.ProbeTotal != nil {
		for i, l := range w.totalLabels {
			m.ProbeTotal.Delete(l)
			w.total[i] = nil
		}
	}
	if m.ProbeDuration != nil {
		m.ProbeDuration.Delete(w.durationLabels)
	}
}

// publish sets the result for container id and calls OnResult when it
// changed, as kubelet's results manager sends an update only on a change.
func (w *worker) publish(id string, r Result) {
	w.mu.Lock()
	changed := !w.published || w.pubID != id || w.res != r
	w.res, w.pubID, w.published = r, id, true
	w.mu.Unlock()
	if changed {
		w.log.Debug("probe result changed", "containerID", id, "result", r.String())
		if w.cfg.OnResult != nil {
			w.cfg.OnResult(id, r)
		}
	}
}
