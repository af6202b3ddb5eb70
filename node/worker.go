package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// podWorker runs one pod, as kubelet's pod worker: one goroutine per pod,
// level-triggered, syncing the pod's processes to its spec on every change
// of the pod, when a process exits, when a probe result changes, when a
// back-off expires, and at least every resyncPeriod.
type podWorker struct {
	n   *Node
	uid types.UID

	wake chan struct{} // cap 1

	mu sync.Mutex // guards everything below
	// pod is the latest version seen (shared with the store: read-only).
	pod     *corev1.Pod
	removed bool // deleted from the store
	// runtime state
	sandboxUp   bool
	net         sandbox.Network
	startTime   time.Time
	firstSeen   time.Time
	initialized bool
	terminating bool // being stopped: deletion or node shutdown
	terminal    bool // reached Succeeded or Failed; nothing runs
	containers  map[string]*ctrState
	wakeAt      time.Time
	probesOn    bool
	probeStop   context.CancelFunc
	probeWG     sync.WaitGroup
	probes      []*probeHandle
	runningSeen bool // kubelet_pod_start_duration_seconds observed
	// written is the status this worker last found in the store or wrote
	// there: the stored pod it was compared with (a store object is
	// never changed, a new version is a new object), the snapshot and
	// the terminal flag it was generated from, and its phase. A sync
	// whose inputs are all the same skips generating and comparing it.
	written struct {
		pod      *corev1.Pod
		snap     *podSnapshot
		terminal bool
		phase    corev1.PodPhase
	}
}

// ctrState is the node's bookkeeping of one container of the pod (init
// or regular) across its instances.
type ctrState struct {
	name    string
	init    bool // an init container
	sidecar bool // an init container with restartPolicy Always
	cur     *instance
	prev    *instance
	// next is the restart count of the next instance.
	next int32
	// seeded is the restart count carried over from a previous node run.
	seeded int32
	// waiting is kubelet's reason cache: why the container is not running
	// although it should (CrashLoopBackOff, CreateContainerConfigError,
	// RunContainerError, PostStartHookError, ...). Cleared on a start.
	waiting *corev1.ContainerStateWaiting
	// retryAt: a start that failed for its configuration is retried then
	// (or as soon as a ConfigMap or Secret changes).
	retryAt time.Time
	// backoffEventFor is the instance the last BackOff event was about.
	backoffEventFor *instance
}

func newPodWorker(n *Node, p *corev1.Pod) *podWorker {
	w := &podWorker{
		n:          n,
		uid:        p.UID,
		wake:       make(chan struct{}, 1),
		pod:        p,
		containers: map[string]*ctrState{},
		firstSeen:  time.Now(),
	}
	// Carry restart counts over from the stored status (a node restart):
	// kubelet counts restarts across its own restarts.
	seed := func(list []corev1.ContainerStatus) map[string]int32 {
		m := map[string]int32{}
		for _, cs := range list {
			r := cs.RestartCount
			if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
				r++
			}
			m[cs.Name] = r
		}
		return m
	}
	initSeed, seedMap := seed(p.Status.InitContainerStatuses), seed(p.Status.ContainerStatuses)
	for _, c := range p.Spec.InitContainers {
		w.containers[c.Name] = &ctrState{name: c.Name, init: true, sidecar: isSidecar(&c), next: initSeed[c.Name], seeded: initSeed[c.Name]}
	}
	for _, c := range p.Spec.Containers {
		w.containers[c.Name] = &ctrState{name: c.Name, next: seedMap[c.Name], seeded: seedMap[c.Name]}
	}
	for _, cs := range p.Status.InitContainerStatuses {
		// An init container that completed before a node restart is not
		// run again once the pod's regular containers ran.
		if cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
			w.initialized = true
		}
	}
	if len(p.Status.ContainerStatuses) > 0 {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
				w.initialized = true
			}
		}
	}
	if p.Status.StartTime != nil {
		w.startTime = p.Status.StartTime.Time
	}
	// "Pods are not allowed to transition out of terminal phases": a pod
	// that finished (before a node restart) is not run again.
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		w.terminal = true
	}
	return w
}

// isSidecar: an init container with restartPolicy Always is a sidecar
// ("restartable init container").
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func (w *podWorker) update(p *corev1.Pod, deleted bool) {
	w.mu.Lock()
	if p.UID == w.uid {
		w.pod = p
		if deleted {
			w.removed = true
		}
	}
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// wakeAtLocked schedules a sync at t (the earliest wins).
func (w *podWorker) wakeAtLocked(t time.Time) {
	if w.wakeAt.IsZero() || t.Before(w.wakeAt) {
		w.wakeAt = t
	}
}

func (w *podWorker) retryConfigErrors() {
	w.mu.Lock()
	any := false
	for _, c := range w.containers {
		if c.waiting != nil && c.waiting.Reason == reasonCreateContainerConfigError {
			c.retryAt = time.Time{}
			any = true
		}
	}
	w.mu.Unlock()
	if any {
		w.poke()
	}
}

func (w *podWorker) current() (*corev1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.removed
}

// run is the worker's loop.
func (w *podWorker) run() {
	defer w.n.wg.Done()
	defer w.n.removeWorker(w)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if w.n.isStopping() {
			w.shutdown()
			return
		}
		done := w.sync()
		w.notifyProbes()
		if done {
			return
		}
		d := resyncPeriod
		w.mu.Lock()
		if !w.wakeAt.IsZero() {
			if until := time.Until(w.wakeAt); until < d {
				d = max(until, time.Millisecond)
			}
			w.wakeAt = time.Time{}
		}
		w.mu.Unlock()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
		select {
		case <-w.wake:
		case <-timer.C:
		case <-w.n.stopCh:
		}
	}
}

// sync does one round; true means the worker is done (the pod is gone).
func (w *podWorker) sync() (done bool) {
	pod, removed := w.current()
	switch {
	case removed:
		// Deleted from the store while running (a forced deletion):
		// kubelet still stops it with the minimum grace.
		w.terminate(pod, 0, -1)
		w.cleanup(pod)
		w.removeLogs(pod)
		return true
	case pod.DeletionTimestamp != nil:
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		} else if pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		w.terminate(pod, grace, -1)
		w.writeStatus(pod, true)
		w.cleanup(pod)
		// The node's final word: remove the pod, with its UID as a
		// precondition (kubelet's status manager does the same).
		err := w.n.cfg.Store.Delete(cluster.KindPod, pod.Namespace, pod.Name, cluster.DeleteOptions{GracePeriodSeconds: ptrInt64(0), UID: pod.UID})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			w.n.log.Warn("removing terminated pod", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
		w.removeLogs(pod)
		return true
	}
	w.mu.Lock()
	terminal := w.terminal
	w.mu.Unlock()
	if terminal {
		return false
	}
	w.syncPod(pod)
	return false
}

// cleanup stops probes and tears the sandbox down (idempotent).
func (w *podWorker) cleanup(pod *corev1.Pod) {
	w.stopProbes()
	w.mu.Lock()
	up := w.sandboxUp
	w.sandboxUp = false
	w.mu.Unlock()
	if up {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := w.n.cfg.Sandbox.Teardown(ctx, pod); err != nil {
			w.n.log.Warn("sandbox teardown", "pod", pod.Namespace+"/"+pod.Name, "err", err)
		}
	}
}

// removeLogs deletes the logs of a pod that is gone, as kubelet's
// garbage collection of /var/log/pods.
func (w *podWorker) removeLogs(pod *corev1.Pod) {
	if err := os.RemoveAll(w.n.podLogDir(pod.Namespace, pod.Name, string(pod.UID))); err != nil {
		w.n.log.Warn("removing pod logs", "pod", pod.Namespace+"/"+pod.Name, "err", err)
	}
}

// shutdown stops the pod because the node stops.
func (w *podWorker) shutdown() {
	pod, _ := w.current()
	w.mu.Lock()
	terminal := w.terminal
	w.mu.Unlock()
	if !terminal {
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = *pod.DeletionGracePeriodSeconds
		} else if pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		w.terminate(pod, grace, w.n.cfg.ShutdownGracePeriod)
		w.writeStatus(pod, false)
	}
	w.cleanup(pod)
}

// ---- the sync of a running pod (kubelet's SyncPod) ----

type startKind int

const (
	startRegular startKind = iota
	startInit
)

type startAction struct {
	spec *corev1.Container
	c    *ctrState
	kind startKind
	// ref is the newest exited instance when the sync began: the start
	// point of the back-off check (kubelet's doBackOff).
	ref *instance
}

type killAction struct {
	spec    *corev1.Container
	c       *ctrState
	inst    *instance
	message string
	reason  killReason
}

type podActions struct {
	kill    []killAction
	start   []startAction
	killPod bool
}

type killReason int

const (
	killOther killReason = iota
	killLiveness
	killStartup
	killPostStart
)

// shouldRestart is kubecontainer.ShouldContainerBeRestarted for a regular
// container.
func shouldRestart(pod *corev1.Pod, c *ctrState) bool {
	if pod.DeletionTimestamp != nil {
		return false // "Once a pod has been marked deleted, it should not be restarted"
	}
	if c.cur == nil {
		return true // "If the container was never started before, we should start it."
	}
	if !c.cur.isExited() {
		return false
	}
	if c.sidecar {
		return true
	}
	switch pod.Spec.RestartPolicy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return c.cur.exitCode != 0
	}
	return true
}

// newestExited is the latest exited instance, the start point of the
// back-off ("Use the finished time of the latest exited container as the
// start point to calculate whether to do back-off.").
func (c *ctrState) newestExited() *instance {
	if c.cur != nil && c.cur.isExited() {
		return c.cur
	}
	if c.prev != nil && c.prev.isExited() {
		return c.prev
	}
	return nil
}

// computeActions is kubelet's computePodActions on the node's bookkeeping.
// Called with w.mu held.
func (w *podWorker) computeActionsLocked(pod *corev1.Pod) podActions {
	var a podActions
	now := time.Now()
	restartOnFailure := pod.Spec.RestartPolicy != corev1.RestartPolicyNever
	start := func(spec *corev1.Container, c *ctrState, kind startKind) {
		if c.waiting != nil && c.waiting.Reason == reasonCreateContainerConfigError && now.Before(c.retryAt) {
			w.wakeAtLocked(c.retryAt) // a sync woken earlier must not lose the retry
			return
		}
		a.start = append(a.start, startAction{spec: spec, c: c, kind: kind, ref: c.newestExited()})
	}
	// probeKill kills a running instance that failed its liveness or
	// startup probe or whose definition changed, and restarts it when
	// restart (or the definition changed).
	probeKill := func(spec *corev1.Container, c *ctrState, restart bool, kind startKind) (killed, restarted bool) {
		inst := c.cur
		if inst == nil || inst.isExited() || inst.killing {
			return false, false
		}
		var msg string
		var reason killReason
		// The spec comparison is done once per version of the pod.
		changed := false
		if inst.checkedAgainst != pod {
			changed = !containerSpecEqual(spec, inst.spec)
			if !changed {
				inst.checkedAgainst = pod
			}
		}
		switch {
		case changed:
			msg = fmt.Sprintf("Container %s definition changed", spec.Name)
			restart = true // "Restart regardless of the restart policy because the container spec changed."
		case inst.livenessFailed:
			msg = fmt.Sprintf("Container %s failed liveness probe", spec.Name)
			reason = killLiveness
		case inst.startupFailed:
			msg = fmt.Sprintf("Container %s failed startup probe", spec.Name)
			reason = killStartup
		default:
			return false, false
		}
		// "We need to kill the container, but if we also want to restart
		// the container afterwards, make the intent clear in the message."
		if restart {
			msg += ", will be restarted"
			start(spec, c, kind)
		}
		a.kill = append(a.kill, killAction{spec: spec, c: c, inst: inst, message: msg, reason: reason})
		return true, restart
	}

	// Init containers, in order: "each must complete successfully before
	// the next one starts"; sidecars (restartPolicy Always) must have
	// started.
	if !w.initialized {
		for i := range pod.Spec.InitContainers {
			spec := &pod.Spec.InitContainers[i]
			c := w.containers[spec.Name]
			if c == nil {
				continue
			}
			inst := c.cur
			if c.sidecar {
				switch {
				case inst == nil || inst.isExited():
					start(spec, c, startInit)
					return a
				case killedNow(probeKill(spec, c, true, startInit)):
					return a
				case !w.startedLocked(spec, inst):
					return a
				}
				continue
			}
			switch {
			case inst != nil && inst.isExited() && inst.exitCode == 0:
				continue
			case inst != nil && !inst.isExited():
				return a // still running
			case inst != nil && inst.isExited():
				// "If the init container failed and the pod's restart
				// policy is Never, the pod fails"; otherwise it is retried
				// with back-off.
				if !restartOnFailure {
					a.killPod = true
					return a
				}
			}
			start(spec, c, startInit)
			return a
		}
		w.initialized = true
	}

	// Sidecars keep running for the pod's whole life, whatever the
	// pod's restartPolicy.
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		c := w.containers[spec.Name]
		if c == nil || !c.sidecar {
			continue
		}
		if c.cur == nil || c.cur.isExited() {
			start(spec, c, startInit)
			continue
		}
		probeKill(spec, c, true, startInit)
	}

	// "Number of running containers to keep."
	keep, toStart := 0, 0
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		c := w.containers[spec.Name]
		if c == nil {
			continue
		}
		if c.cur == nil || c.cur.isExited() {
			if shouldRestart(pod, c) {
				toStart++
				start(spec, c, startRegular)
			}
			continue
		}
		if c.cur.killing {
			keep++
			continue
		}
		if killed, restarted := probeKill(spec, c, restartOnFailure, startRegular); killed {
			if restarted {
				toStart++
			}
			continue
		}
		keep++
	}
	if keep == 0 && toStart == 0 {
		a.killPod = true
	}
	return a
}

func killedNow(killed, _ bool) bool { return killed }

// containerSpecEqual tells whether a running instance still matches the
// spec (kubelet compares a hash of the container without its resources).
func containerSpecEqual(a, b *corev1.Container) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := *a, *b
	x.Resources, y.Resources = corev1.ResourceRequirements{}, corev1.ResourceRequirements{}
	x.ResizePolicy, y.ResizePolicy = nil, nil
	return apiequality.Semantic.DeepEqual(x, y)
}

func (w *podWorker) syncPod(pod *corev1.Pod) {
	n := w.n
	w.mu.Lock()
	up := w.sandboxUp
	w.mu.Unlock()
	if !up {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		net, err := n.cfg.Sandbox.Setup(ctx, pod)
		cancel()
		if err != nil {
			n.event(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "Failed to create pod sandbox: %v", err)
			n.log.Warn("sandbox setup failed", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			w.mu.Lock()
			w.wakeAtLocked(time.Now().Add(n.cfg.BackoffInitial))
			w.mu.Unlock()
			w.writeStatus(pod, false)
			return
		}
		w.mu.Lock()
		w.sandboxUp, w.net = true, net
		if w.startTime.IsZero() {
			w.startTime = time.Now()
		}
		w.mu.Unlock()
		n.metrics.startedPods.Inc()
	}
	w.ensureProbes(pod)

	w.mu.Lock()
	acts := w.computeActionsLocked(pod)
	for _, k := range acts.kill {
		k.inst.killing = true
	}
	w.mu.Unlock()

	// Kill what must not run (probe failures, changed definitions).
	for _, k := range acts.kill {
		grace := containerGrace(pod, k.spec, k.reason)
		w.killInstance(pod, k.spec, k.inst, k.message, grace, -1)
	}
	// Start what must run.
	for _, s := range acts.start {
		if n.isStopping() {
			return
		}
		if cur, _ := w.current(); cur != nil && cur.DeletionTimestamp != nil {
			break
		}
		w.startWithBackoff(pod, s)
	}
	if acts.killPod {
		// Nothing is left to run: stop what remains (sidecars) and let
		// the phase become terminal.
		w.killAll(pod, containerGrace(pod, nil, killOther), -1, false)
	}
	phase := w.writeStatus(pod, false)
	if phase == corev1.PodSucceeded || phase == corev1.PodFailed {
		w.mu.Lock()
		w.terminal = true
		w.mu.Unlock()
		w.killAll(pod, containerGrace(pod, nil, killOther), -1, false)
		w.cleanup(pod)
		w.writeStatus(pod, false)
		n.log.Info("pod finished", "pod", pod.Namespace+"/"+pod.Name, "phase", phase)
	}
}

// containerGrace is kubelet's setTerminationGracePeriod: the pod's
// deletionGracePeriodSeconds, else its terminationGracePeriodSeconds, for
// a liveness or startup kill the probe's terminationGracePeriodSeconds
// when set.
func containerGrace(pod *corev1.Pod, spec *corev1.Container, reason killReason) int64 {
	if pod.DeletionGracePeriodSeconds != nil {
		return *pod.DeletionGracePeriodSeconds
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if spec != nil {
		switch reason {
		case killLiveness:
			if spec.LivenessProbe != nil && spec.LivenessProbe.TerminationGracePeriodSeconds != nil {
				return *spec.LivenessProbe.TerminationGracePeriodSeconds
			}
		case killStartup:
			if spec.StartupProbe != nil && spec.StartupProbe.TerminationGracePeriodSeconds != nil {
				return *spec.StartupProbe.TerminationGracePeriodSeconds
			}
		}
	}
	return grace
}

// startWithBackoff is kubelet's doBackOff then startContainer.
func (w *podWorker) startWithBackoff(pod *corev1.Pod, s startAction) {
	n := w.n
	if s.ref != nil {
		key := backoffKey(pod, s.spec.Name)
		if n.backoff.IsInBackOffSince(key, s.ref.finishedAt) {
			d := n.backoff.Get(key)
			w.mu.Lock()
			s.c.waiting = &corev1.ContainerStateWaiting{
				Reason:  reasonCrashLoopBackOff,
				Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s", d, s.spec.Name, formatPod(pod)),
			}
			w.wakeAtLocked(s.ref.finishedAt.Add(d))
			emit := s.c.backoffEventFor != s.ref
			s.c.backoffEventFor = s.ref
			w.mu.Unlock()
			if emit {
				n.event(pod, corev1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s", s.spec.Name, formatPod(pod))
			}
			return
		}
		n.backoff.Next(key, s.ref.finishedAt)
	}
	w.startContainer(pod, s.spec, s.c, s.kind)
}

// backoffKey identifies a container for the back-off: pod UID and
// container name.
func backoffKey(pod *corev1.Pod, container string) string {
	return string(pod.UID) + "/" + container
}

// formatPod is kubelet's format.Pod: name_namespace(uid).
func formatPod(pod *corev1.Pod) string {
	return fmt.Sprintf("%s_%s(%s)", pod.Name, pod.Namespace, pod.UID)
}

// killAll stops every running container of the pod: regular containers
// in parallel, then sidecars and a running init container with what is
// left of the grace period (sidecars outlive the containers they serve).
func (w *podWorker) killAll(pod *corev1.Pod, grace int64, hardCap time.Duration, shutdown bool) {
	type target struct {
		spec *corev1.Container
		inst *instance
	}
	var main, side []target
	w.mu.Lock()
	for i := range pod.Spec.Containers {
		spec := &pod.Spec.Containers[i]
		if c := w.containers[spec.Name]; c != nil && c.cur != nil && !c.cur.isExited() {
			main = append(main, target{spec, c.cur})
		}
	}
	for i := range pod.Spec.InitContainers {
		spec := &pod.Spec.InitContainers[i]
		if c := w.containers[spec.Name]; c != nil && c.cur != nil && !c.cur.isExited() {
			side = append(side, target{spec, c.cur})
		}
	}
	w.mu.Unlock()
	began := time.Now()
	run := func(ts []target, g int64) {
		var wg sync.WaitGroup
		for _, t := range ts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.killInstance(pod, t.spec, t.inst, "", g, hardCap)
			}()
		}
		wg.Wait()
	}
	run(main, grace)
	left := grace - int64(time.Since(began).Seconds())
	run(side, left)
}

// terminate stops the pod's processes: kubelet's SyncTerminatingPod. The
// liveness and startup probes stand down first; grace is the pod's grace
// period, hardCap (when >= 0) caps it for a node shutdown.
func (w *podWorker) terminate(pod *corev1.Pod, grace int64, hardCap time.Duration) {
	w.mu.Lock()
	w.terminating = true
	w.mu.Unlock()
	w.notifyProbes()
	w.killAll(pod, grace, hardCap, hardCap >= 0)
	w.stopProbes()
}

// ---- status ----

// writeStatus generates the pod's status from the node's bookkeeping and
// writes it when it changed; it returns the phase.
func (w *podWorker) writeStatus(pod *corev1.Pod, podIsTerminal bool) corev1.PodPhase {
	w.mu.Lock()
	snap := w.snapshotLocked(pod)
	w.mu.Unlock()

	// Most syncs change nothing: compare with the stored status first
	// and write only a change (the store's objects are read-only, and
	// generatePodStatus does not modify its input).
	stored, err := cluster.Get[*corev1.Pod](w.n.cfg.Store, pod.Namespace, pod.Name)
	if err != nil || stored.UID != w.uid {
		return snap.phaseHint(pod, podIsTerminal)
	}
	// The status is a function of the stored pod, the snapshot and the
	// terminal flag (the time only stamps a condition whose status
	// changed): with the same three as last time, it is the same again.
	if last := &w.written; last.pod == stored && last.terminal == podIsTerminal && last.snap.equal(snap) {
		return last.phase
	}
	if st := generatePodStatus(stored, snap, podIsTerminal, time.Now()); apiequality.Semantic.DeepEqual(st, stored.Status) {
		w.remember(stored, snap, podIsTerminal, st.Phase)
		w.noteWritten(&stored.Status)
		return st.Phase
	}

	var written corev1.PodStatus
	errSkip := errors.New("skip")
	o, err := w.n.cfg.Store.UpdateStatusFunc(cluster.KindPod, pod.Namespace, pod.Name, func(o cluster.Object) error {
		p := o.(*corev1.Pod)
		if p.UID != w.uid {
			return errSkip
		}
		p.Status = generatePodStatus(p, snap, podIsTerminal, time.Now())
		written = p.Status
		return nil
	})
	if err != nil {
		if err != errSkip && !apierrors.IsNotFound(err) {
			w.n.log.Warn("writing pod status", "pod", pod.Namespace+"/"+pod.Name, "err", err)
			// Try again soon rather than at the next resync.
			w.mu.Lock()
			w.wakeAtLocked(time.Now().Add(time.Second))
			w.mu.Unlock()
		}
		return snap.phaseHint(pod, podIsTerminal)
	}
	if p, ok := o.(*corev1.Pod); ok {
		w.remember(p, snap, podIsTerminal, written.Phase)
	}
	w.noteWritten(&written)
	return written.Phase
}

// remember records the inputs of the status now in the store.
func (w *podWorker) remember(stored *corev1.Pod, snap *podSnapshot, terminal bool, phase corev1.PodPhase) {
	w.written.pod, w.written.snap, w.written.terminal, w.written.phase = stored, snap, terminal, phase
}

// noteWritten observes kubelet_pod_start_duration_seconds the first time
// the pod is seen Running.
func (w *podWorker) noteWritten(st *corev1.PodStatus) {
	w.mu.Lock()
	observe := st.Phase == corev1.PodRunning && !w.runningSeen
	if observe {
		w.runningSeen = true
	}
	first := w.firstSeen
	w.mu.Unlock()
	if observe {
		w.n.metrics.podStartDuration.Observe(time.Since(first).Seconds())
	}
}

// podSnapshot is what the status is generated from.
type podSnapshot struct {
	sandboxUp bool
	podIPs    []netip.Addr
	hostIP    netip.Addr
	startTime time.Time
	init      []corev1.ContainerStatus
	regular   []corev1.ContainerStatus
}

// equal tells whether two snapshots would generate the same status (nil
// equals nothing).
func (s *podSnapshot) equal(o *podSnapshot) bool {
	if s == nil || o == nil {
		return false
	}
	return s.sandboxUp == o.sandboxUp && s.hostIP == o.hostIP && s.startTime.Equal(o.startTime) &&
		slices.Equal(s.podIPs, o.podIPs) &&
		apiequality.Semantic.DeepEqual(s.init, o.init) && apiequality.Semantic.DeepEqual(s.regular, o.regular)
}

func (s *podSnapshot) phaseHint(pod *corev1.Pod, terminal bool) corev1.PodPhase {
	all := append(append([]corev1.ContainerStatus{}, s.regular...), s.init...)
	return getPhase(pod, all, terminal)
}

// snapshotLocked is kubelet's convertToAPIContainerStatuses plus the
// prober's UpdatePodStatus, from the node's bookkeeping.
func (w *podWorker) snapshotLocked(pod *corev1.Pod) *podSnapshot {
	s := &podSnapshot{sandboxUp: w.sandboxUp, startTime: w.startTime}
	s.podIPs = w.net.IPs
	s.hostIP = w.net.HostIP
	hasInit := len(pod.Spec.InitContainers) > 0
	for i := range pod.Spec.InitContainers {
		s.init = append(s.init, w.containerStatusLocked(pod, &pod.Spec.InitContainers[i], hasInit))
	}
	for i := range pod.Spec.Containers {
		s.regular = append(s.regular, w.containerStatusLocked(pod, &pod.Spec.Containers[i], hasInit))
	}
	return s
}

func (w *podWorker) containerStatusLocked(pod *corev1.Pod, spec *corev1.Container, hasInit bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image}
	c := w.containers[spec.Name]
	// "Set all container statuses to default waiting state."
	def := &corev1.ContainerStateWaiting{Reason: reasonContainerCreating}
	if hasInit {
		def = &corev1.ContainerStateWaiting{Reason: reasonPodInitializing}
	}
	started := false
	if c == nil {
		cs.State.Waiting = def
		cs.Started = &started
		return cs
	}
	cs.RestartCount = c.seeded
	if c.prev != nil {
		cs.LastTerminationState.Terminated = c.prev.terminatedState()
	}
	inst := c.cur
	switch {
	case inst == nil:
		cs.State.Waiting = def
	case !inst.isExited():
		cs.RestartCount = inst.restartCount
		cs.ContainerID = inst.id
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metaTime(inst.startedAt)}
		started = w.startedLocked(spec, inst)
	default:
		cs.RestartCount = inst.restartCount
		cs.ContainerID = inst.id
		cs.State.Terminated = inst.terminatedState()
	}
	// "If a container should be restarted in next syncpod, it is
	// *Waiting*", with the reason of the last failed start.
	// "If the init container is terminated with exit code 0, it won't be
	// restarted."
	doneInit := c.init && !c.sidecar && inst != nil && inst.isExited() && inst.exitCode == 0
	if c.waiting != nil && !doneInit && shouldRestart(pod, c) {
		if cs.State.Terminated != nil {
			cs.LastTerminationState = cs.State
		}
		cs.State = corev1.ContainerState{Waiting: c.waiting.DeepCopy()}
	}
	cs.Started = &started
	switch {
	case c.init && !c.sidecar:
		// "regular init container": ready once it exited 0.
		cs.Ready = cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0
	case cs.State.Running != nil && started:
		cs.Ready = spec.ReadinessProbe == nil || inst.ready
	}
	return cs
}

// startedLocked: "Without a startup probe a running container is
// started"; with one, once it succeeded.
func (w *podWorker) startedLocked(spec *corev1.Container, inst *instance) bool {
	if inst == nil || inst.isExited() {
		return false
	}
	return spec.StartupProbe == nil || inst.startupOK
}
