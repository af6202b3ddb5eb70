package probe

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// app is a real HTTP server whose /healthz answers with a settable code
// and counts the probes it received.
type app struct {
	code     atomic.Int32
	requests atomic.Int32
	host     string
	port     int
}

func startApp(t testing.TB, code int) *app {
	t.Helper()
	a := &app{}
	a.code.Store(int32(code))
	a.host, a.port = startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.requests.Add(1)
		if c := int(a.code.Load()); c >= 300 && c < 400 {
			w.Header().Set("Location", fmt.Sprintf("http://127.0.0.2:%d/", a.port))
		}
		w.WriteHeader(int(a.code.Load()))
		_, _ = fmt.Fprint(w, "hello")
	}), false)
	return a
}

// container is the node's view of a container, as the worker asks it.
type container struct {
	mu sync.Mutex
	st ContainerState
	ok bool
}

func (c *container) state() (ContainerState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st, c.ok
}

func (c *container) set(f func(*ContainerState)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.st)
	c.ok = true
}

// change is one OnResult call.
type change struct {
	id string
	r  Result
}

type harness struct {
	w       *Worker
	a       *app
	c       *container
	rec     *fakeRecorder
	metrics *Metrics
	reg     *prometheus.Registry
	mu      sync.Mutex
	changes []change
	notify  chan change
}

func (h *harness) list() []change {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]change(nil), h.changes...)
}

// newHarness builds a worker of kind for a running, started container
// "c1" probed with httpGet against a real server answering code.
func newHarness(t testing.TB, kind Kind, code int, tweak func(*corev1.Probe)) *harness {
	t.Helper()
	h := &harness{a: startApp(t, code), c: &container{}, rec: &fakeRecorder{}, reg: prometheus.NewRegistry(), notify: make(chan change, 64)}
	h.metrics = NewMetrics(h.reg)
	h.c.set(func(s *ContainerState) {
		*s = ContainerState{ID: "c1", Running: true, StartedAt: time.Now().Add(-time.Hour), Started: kind != Startup}
	})
	p := httpGetProbe("/healthz", intstr.FromString("http"))
	if tweak != nil {
		tweak(p)
	}
	pod := testPod()
	ctr := &corev1.Container{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(h.a.port)}}}
	h.w = NewWorker(WorkerConfig{
		Kind: kind, Probe: p, Pod: pod, Container: ctr,
		State:  h.c.state,
		Target: func() Target { return Target{Pod: pod, Container: ctr, IP: h.a.host, Exec: shExec} },
		OnResult: func(id string, r Result) {
			h.mu.Lock()
			h.changes = append(h.changes, change{id, r})
			h.mu.Unlock()
			h.notify <- change{id, r}
		},
		Recorder: h.rec,
		Metrics:  h.metrics,
	})
	return h
}

// tick runs n ticks of the worker synchronously.
func (h *harness) tick(n int) {
	for i := 0; i < n; i++ {
		h.w.w.doProbe(context.Background())
	}
}

func TestInitialResults(t *testing.T) {
	t.Parallel()
	// kubelet's worker: "readiness ... initialValue = results.Failure",
	// "liveness ... results.Success", "startup ... results.Unknown"; the
	// value is also published when a container ID is first seen.
	for kind, want := range map[Kind]Result{Readiness: Failure, Liveness: Success, Startup: Unknown} {
		t.Run(string(kind), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, kind, 200, func(p *corev1.Probe) { p.InitialDelaySeconds = 3600 })
			h.c.set(func(s *ContainerState) { s.StartedAt = time.Now() })
			if got := h.w.Result(); got != want {
				t.Fatalf("Result before any tick = %v, want %v", got, want)
			}
			h.tick(3)
			if got, ch := h.w.Result(), h.list(); got != want || !reflect.DeepEqual(ch, []change{{"c1", want}}) {
				t.Fatalf("during initialDelaySeconds: Result = %v, OnResult calls %v; want %v once", got, ch, want)
			}
			if n := h.a.requests.Load(); n != 0 {
				t.Fatalf("%d probes during initialDelaySeconds", n)
			}
		})
	}
}

func TestFailureThreshold(t *testing.T) {
	t.Parallel()
	// "failureThreshold: After a probe fails failureThreshold times in a
	// row, Kubernetes considers that the overall check has failed."
	h := newHarness(t, Readiness, 200, func(p *corev1.Probe) { p.FailureThreshold = 3 })
	h.tick(1)
	if got := h.w.Result(); got != Success {
		t.Fatalf("after one success (successThreshold 1) Result = %v", got)
	}
	h.a.code.Store(http.StatusServiceUnavailable)
	for i := 1; i <= 2; i++ {
		h.tick(1)
		if got := h.w.Result(); got != Success {
			t.Fatalf("after %d consecutive failures Result = %v, want still Success", i, got)
		}
	}
	h.tick(1)
	if got := h.w.Result(); got != Failure {
		t.Fatalf("after 3 consecutive failures Result = %v, want Failure", got)
	}
	want := []change{{"c1", Failure}, {"c1", Success}, {"c1", Failure}}
	if got := h.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("OnResult calls %v, want %v", got, want)
	}
	// kubelet records Unhealthy on every failed attempt (the recorder
	// aggregates the repeats).
	evs := h.rec.list()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3: %v", len(evs), evs)
	}
	for _, e := range evs {
		if e.eventType != corev1.EventTypeWarning || e.reason != "Unhealthy" || e.msg != "Readiness probe failed: HTTP probe failed with statuscode: 503" || e.obj.GetName() != "web-0" {
			t.Fatalf("event %+v", e)
		}
	}
	// Readiness keeps probing after a Failure: recovery is seen.
	h.a.code.Store(http.StatusOK)
	h.tick(1)
	if got := h.w.Result(); got != Success {
		t.Fatalf("readiness did not recover: %v", got)
	}
}

func TestSuccessThreshold(t *testing.T) {
	t.Parallel()
	// "successThreshold: Minimum consecutive successes for the probe to be
	// considered successful after having failed."
	h := newHarness(t, Readiness, 200, func(p *corev1.Probe) { p.SuccessThreshold = 2 })
	h.tick(1)
	if got := h.w.Result(); got != Failure {
		t.Fatalf("after 1 of 2 successes Result = %v, want Failure", got)
	}
	h.a.code.Store(500)
	h.tick(1) // a failure breaks the run (below failureThreshold 3: no change)
	h.a.code.Store(200)
	h.tick(1)
	if got := h.w.Result(); got != Failure {
		t.Fatalf("success, failure, success: Result = %v, want Failure", got)
	}
	h.tick(1)
	if got := h.w.Result(); got != Success {
		t.Fatalf("after 2 consecutive successes Result = %v, want Success", got)
	}
}

func TestStartupHoldsLivenessAndReadiness(t *testing.T) {
	t.Parallel()
	// "If such a probe is configured, it disables liveness and readiness
	// checks until it succeeds."
	live := newHarness(t, Liveness, 200, nil)
	ready := newHarness(t, Readiness, 200, nil)
	start := newHarness(t, Startup, 503, nil)
	for _, h := range []*harness{live, ready} {
		h.c.set(func(s *ContainerState) { s.Started = false })
	}
	live.tick(3)
	ready.tick(3)
	if live.a.requests.Load() != 0 || ready.a.requests.Load() != 0 {
		t.Fatalf("liveness/readiness probed %d/%d times before the container started", live.a.requests.Load(), ready.a.requests.Load())
	}
	if live.w.Result() != Success || ready.w.Result() != Failure {
		t.Fatalf("held results liveness %v readiness %v, want Success and Failure", live.w.Result(), ready.w.Result())
	}

	start.tick(2) // two failures, below failureThreshold 3
	if got := start.w.Result(); got != Unknown {
		t.Fatalf("startup after 2 failures = %v, want Unknown", got)
	}
	start.a.code.Store(200)
	start.tick(1)
	if got := start.w.Result(); got != Success {
		t.Fatalf("startup after a success = %v", got)
	}
	// The startup worker stops once it has a result, even before the node
	// marks the container started (kubelet #117153).
	n := start.a.requests.Load()
	start.tick(3)
	if start.a.requests.Load() != n {
		t.Fatalf("startup kept probing after it succeeded")
	}

	// The node marks the container started: the others begin.
	for _, h := range []*harness{live, ready} {
		h.c.set(func(s *ContainerState) { s.Started = true })
		h.tick(1)
	}
	if live.a.requests.Load() != 1 || ready.a.requests.Load() != 1 || ready.w.Result() != Success {
		t.Fatalf("after start: liveness %d probes, readiness %d probes result %v", live.a.requests.Load(), ready.a.requests.Load(), ready.w.Result())
	}
}

func TestStartupFailureHolds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Startup, 500, func(p *corev1.Probe) { p.FailureThreshold = 2 })
	h.tick(2)
	if got := h.w.Result(); got != Failure {
		t.Fatalf("startup after failureThreshold failures = %v", got)
	}
	h.tick(3)
	if n := h.a.requests.Load(); n != 2 {
		t.Fatalf("%d probes; a failed startup probe holds until the container is restarted", n)
	}
}

func TestInitialDelaySeconds(t *testing.T) {
	t.Parallel()
	// kubelet: "Probe disabled for InitialDelaySeconds", counted as
	// int32(time.Since(StartedAt).Seconds()) < initialDelaySeconds.
	h := newHarness(t, Readiness, 200, func(p *corev1.Probe) { p.InitialDelaySeconds = 10 })
	started := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	h.c.set(func(s *ContainerState) { s.StartedAt = started })
	for _, tc := range []struct {
		since time.Duration
		want  int32
	}{{0, 0}, {5 * time.Second, 0}, {9999 * time.Millisecond, 0}, {10 * time.Second, 1}, {11 * time.Second, 2}} {
		h.w.w.now = func() time.Time { return started.Add(tc.since) }
		h.tick(1)
		if got := h.a.requests.Load(); got != tc.want {
			t.Fatalf("%v after start: %d probes so far, want %d", tc.since, got, tc.want)
		}
	}
}

func TestContainerIDChangeResets(t *testing.T) {
	t.Parallel()
	t.Run("liveness holds after Failure until a new container", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Liveness, 500, func(p *corev1.Probe) { p.FailureThreshold = 2 })
		h.tick(2)
		if got := h.w.Result(); got != Failure {
			t.Fatalf("liveness after 2 failures = %v", got)
		}
		// "Stop probing until we see a new container ID."
		h.tick(3)
		if n := h.a.requests.Load(); n != 2 {
			t.Fatalf("%d probes, want 2: liveness must hold after Failure", n)
		}
		h.a.code.Store(200)
		h.c.set(func(s *ContainerState) { s.ID = "c2"; s.StartedAt = time.Now() })
		h.tick(1)
		want := []change{{"c1", Success}, {"c1", Failure}, {"c2", Success}}
		if got := h.list(); !reflect.DeepEqual(got, want) {
			t.Fatalf("OnResult calls %v, want %v", got, want)
		}
		if n := h.a.requests.Load(); n != 3 {
			t.Fatalf("new container not probed: %d probes", n)
		}
	})
	t.Run("readiness counters start over for a new container", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Readiness, 200, func(p *corev1.Probe) { p.SuccessThreshold = 2 })
		h.tick(1) // 1 of 2 successes on c1
		h.c.set(func(s *ContainerState) { s.ID = "c2" })
		h.tick(1) // 1 of 2 on c2
		if got := h.w.Result(); got != Failure {
			t.Fatalf("one success on c1 and one on c2 made %v, want Failure", got)
		}
		h.tick(1)
		if got := h.w.Result(); got != Success {
			t.Fatalf("two successes on c2 made %v", got)
		}
		want := []change{{"c1", Failure}, {"c2", Failure}, {"c2", Success}}
		if got := h.list(); !reflect.DeepEqual(got, want) {
			t.Fatalf("OnResult calls %v, want %v", got, want)
		}
	})
}

func TestNotRunningContainer(t *testing.T) {
	t.Parallel()
	ready := newHarness(t, Readiness, 200, nil)
	ready.tick(1)
	ready.c.set(func(s *ContainerState) { s.Running = false })
	ready.tick(2)
	if got := ready.w.Result(); got != Failure || ready.a.requests.Load() != 1 {
		t.Fatalf("readiness of a stopped container = %v after %d probes, want Failure and no probe", got, ready.a.requests.Load())
	}
	live := newHarness(t, Liveness, 200, nil)
	live.c.set(func(s *ContainerState) { s.Running = false })
	live.tick(2)
	if got := live.w.Result(); got != Success || live.a.requests.Load() != 0 {
		t.Fatalf("liveness of a stopped container = %v after %d probes, want Success and no probe", got, live.a.requests.Load())
	}
	gone := newHarness(t, Readiness, 200, nil)
	gone.c.mu.Lock()
	gone.c.ok = false
	gone.c.mu.Unlock()
	gone.tick(2)
	if gone.a.requests.Load() != 0 || len(gone.list()) != 0 {
		t.Fatalf("a container that is gone was probed or reported")
	}
}

func TestTerminatingPod(t *testing.T) {
	t.Parallel()
	// kubelet: "Pod deletion requested, setting probe result to success"
	// for liveness and startup, then stop probing.
	h := newHarness(t, Liveness, 500, func(p *corev1.Probe) { p.FailureThreshold = 1 })
	h.c.set(func(s *ContainerState) { s.Terminating = true })
	h.tick(3)
	if got := h.w.Result(); got != Success || h.a.requests.Load() != 0 {
		t.Fatalf("terminating: liveness %v after %d probes", got, h.a.requests.Load())
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	t.Run("success with a warning records ProbeWarning", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Readiness, http.StatusFound, nil) // redirect to another host
		h.tick(1)
		evs := h.rec.list()
		want := event{h.w.cfg.Pod, corev1.EventTypeWarning, "ProbeWarning", "Readiness probe warning: Probe terminated redirects, Response body: hello"}
		if len(evs) != 1 || evs[0] != want || h.w.Result() != Success {
			t.Fatalf("events %+v result %v, want %+v and Success", evs, h.w.Result(), want)
		}
	})
	t.Run("a handler error records Unhealthy errored and throws the result away", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Liveness, 200, func(p *corev1.Probe) {
			p.HTTPGet.Port = intstr.FromString("metrics")
			p.FailureThreshold = 1
		})
		h.tick(2)
		evs := h.rec.list()
		msg := `Liveness probe errored and resulted in unknown state: strconv.Atoi: parsing "metrics": invalid syntax`
		if len(evs) != 2 || evs[0].reason != "Unhealthy" || evs[0].msg != msg {
			t.Fatalf("events %+v, want 2 × Unhealthy %q", evs, msg)
		}
		if got := h.w.Result(); got != Success {
			t.Fatalf("an errored probe changed liveness to %v", got)
		}
		if got := testutil.CollectAndCount(h.metrics.ProbeTotal); got != 0 {
			t.Fatalf("an errored probe was counted in prober_probe_total (%d series)", got)
		}
	})
	t.Run("successes record nothing", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, Readiness, 200, nil)
		h.tick(3)
		if evs := h.rec.list(); len(evs) != 0 {
			t.Fatalf("events %+v", evs)
		}
	})
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Readiness, 200, nil)
	h.tick(2)
	h.a.code.Store(500)
	h.tick(3)
	labels := func(result string) prometheus.Labels {
		return prometheus.Labels{"probe_type": "Readiness", "result": result, "container": "web", "pod": "web-0", "namespace": "shop", "pod_uid": "uid-1"}
	}
	if got := testutil.ToFloat64(h.metrics.ProbeTotal.With(labels("successful"))); got != 2 {
		t.Errorf("prober_probe_total{result=successful} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(h.metrics.ProbeTotal.With(labels("failed"))); got != 3 {
		t.Errorf("prober_probe_total{result=failed} = %v, want 3", got)
	}
	// kubelet observes the duration of successful probes only.
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var samples uint64
	for _, mf := range mfs {
		if mf.GetName() == "prober_probe_duration_seconds" {
			for _, m := range mf.GetMetric() {
				samples += m.GetHistogram().GetSampleCount()
			}
		}
	}
	if samples != 2 {
		t.Errorf("prober_probe_duration_seconds has %d samples, want 2", samples)
	}
	// A second NewMetrics on the same registry shares the collectors.
	if again := NewMetrics(h.reg); again.ProbeTotal != h.metrics.ProbeTotal {
		t.Errorf("NewMetrics on the same registry did not reuse prober_probe_total")
	}
}

func TestExecWorker(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Liveness, 200, func(p *corev1.Probe) {
		p.HTTPGet = nil
		p.Exec = &corev1.ExecAction{Command: []string{"sh", "-c", "echo not alive; exit 1"}}
		p.FailureThreshold = 2
	})
	h.tick(1)
	if got := h.w.Result(); got != Success {
		t.Fatalf("after 1 of 2 failures = %v", got)
	}
	h.tick(1)
	if got := h.w.Result(); got != Failure {
		t.Fatalf("after 2 failures = %v", got)
	}
	if evs := h.rec.list(); len(evs) != 2 || evs[1].msg != "Liveness probe failed: not alive\n" {
		t.Fatalf("events %+v", evs)
	}
}

func TestRunLoop(t *testing.T) {
	t.Parallel()
	for _, jitter := range []bool{false, true} {
		t.Run(fmt.Sprintf("jitter=%v", jitter), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Readiness, 200, nil)
			h.w.w.cfg.Jitter = jitter
			h.w.w.period = 20 * time.Millisecond
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			t.Cleanup(func() { cancel(); <-done })
			go func() { defer close(done); h.w.Run(ctx) }()

			waitFor(t, h, change{"c1", Failure})
			waitFor(t, h, change{"c1", Success})
			h.a.code.Store(503)
			waitFor(t, h, change{"c1", Failure})
			if h.w.Result() != Failure {
				t.Fatalf("Result = %v", h.w.Result())
			}
			cancel()
			<-done
			// The worker's series are removed when it stops, as kubelet.
			if n := testutil.CollectAndCount(h.metrics.ProbeTotal); n != 0 {
				t.Fatalf("%d prober_probe_total series left after the worker stopped", n)
			}
		})
	}
}

// waitFor waits for the next OnResult call and checks it.
func waitFor(t *testing.T, h *harness, want change) {
	t.Helper()
	select {
	case got := <-h.notify:
		if got != want {
			t.Fatalf("OnResult %v, want %v", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no OnResult %v (calls so far %v)", want, h.list())
	}
}

func TestRunNilProbe(t *testing.T) {
	t.Parallel()
	// kubelet: a nil probe is a success; a worker without a probe idles.
	if got, msg := Run(context.Background(), nil, Target{}); got != Success || msg != "" {
		t.Fatalf("Run(nil) = %v %q", got, msg)
	}
	got, msg := Run(context.Background(), &corev1.Probe{}, Target{Pod: testPod(), Container: &corev1.Container{Name: "web"}})
	if want := "missing probe handler for web-0_shop(uid-1):web"; got != Failure || msg != want {
		t.Fatalf("Run(no handler) = %v %q, want Failure %q", got, msg, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	NewWorker(WorkerConfig{Kind: Liveness}).Run(ctx) // returns, does not panic
}

func TestTicks(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	sec := time.Second

	// newTicks: kubelet's ticker starts when the worker does; with Align
	// the phase moves to the next multiple of Align (never earlier).
	for _, tc := range []struct {
		name  string
		now   time.Time
		align time.Duration
		want  time.Time
	}{
		{"no align: the ticker's own phase", at(1234), 0, at(1234)},
		{"aligned up to the next 100ms", at(1234), 100 * time.Millisecond, at(1300)},
		{"already on the grid: unchanged", at(1300), 100 * time.Millisecond, at(1300)},
		{"just past the grid: almost a full step", at(1301), 100 * time.Millisecond, at(1400)},
	} {
		if got := newTicks(tc.now, sec, tc.align).start; !got.Equal(tc.want) {
			t.Errorf("newTicks %s: start %v, want %v", tc.name, got.Sub(base), tc.want.Sub(base))
		}
	}

	k := ticks{start: at(0), period: sec}
	for _, tc := range []struct {
		name                       string
		last, now                  time.Time
		wantNext, wantAfter, wantC time.Time
	}{
		// A probe that ends before the next tick waits for it.
		{"waits for the next tick", at(0), at(300), at(1000), at(1000), at(0)},
		// "a ticker keeps one tick": a tick that passed while the probe
		// ran is delivered at once, the ones before it are dropped.
		{"a missed tick is delivered at once", at(0), at(1500), at(1500), at(2000), at(1000)},
		{"several missed ticks: one, at once", at(0), at(3700), at(3700), at(4000), at(3000)},
		{"on a tick exactly", at(1000), at(2000), at(2000), at(3000), at(2000)},
		// Before the (aligned) start: the first tick is start+period.
		{"before start", at(0), at(-50), at(1000), at(1000), at(0)},
	} {
		if got := k.next(tc.last, tc.now); !got.Equal(tc.wantNext) {
			t.Errorf("%s: next = %v, want %v", tc.name, got.Sub(base), tc.wantNext.Sub(base))
		}
		if got := k.after(tc.now); !got.Equal(tc.wantAfter) {
			t.Errorf("%s: after = %v, want %v", tc.name, got.Sub(base), tc.wantAfter.Sub(base))
		}
		if tc.now.After(k.start) || tc.now.Equal(k.start) {
			if got := k.consumed(tc.now); !got.Equal(tc.wantC) {
				t.Errorf("%s: consumed = %v, want %v", tc.name, got.Sub(base), tc.wantC.Sub(base))
			}
		}
	}
}

// TestChangedStopsPollingWhileHeld: with WorkerConfig.Changed a worker held
// after a liveness failure ("Stop probing until we see a new container
// ID") does not look at its container at every tick; it looks again once
// told of a change, and resumes probing the new container.
func TestChangedStopsPollingWhileHeld(t *testing.T) {
	t.Parallel()
	for _, withChanged := range []bool{false, true} {
		t.Run(fmt.Sprintf("changed=%v", withChanged), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Liveness, 500, func(p *corev1.Probe) { p.FailureThreshold = 1 })
			var calls atomic.Int32
			state := h.w.w.cfg.State
			h.w.w.cfg.State = func() (ContainerState, bool) { calls.Add(1); return state() }
			changed := make(chan struct{}, 1)
			if withChanged {
				h.w.w.cfg.Changed = changed
			}
			const period = 20 * time.Millisecond
			h.w.w.period = period
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			t.Cleanup(func() { cancel(); <-done })
			go func() { defer close(done); h.w.Run(ctx) }()

			waitFor(t, h, change{"c1", Success})
			waitFor(t, h, change{"c1", Failure}) // held from here on
			before := calls.Load()
			time.Sleep(5 * period)
			polled := calls.Load() - before
			if withChanged && polled > 1 {
				t.Errorf("held worker looked at its container %d times in 5 periods, want at most 1", polled)
			}
			if !withChanged && polled < 2 {
				t.Errorf("held worker without Changed looked at its container %d times in 5 periods; it polls at every tick", polled)
			}

			// The node restarts the container and says so: the new one
			// starts as Success and is probed (and fails again).
			h.c.set(func(s *ContainerState) { s.ID = "c2" })
			changed <- struct{}{}
			waitFor(t, h, change{"c2", Success})
			waitFor(t, h, change{"c2", Failure})
			if n := h.a.requests.Load(); n != 2 {
				t.Fatalf("%d probes, want 2 (one per container)", n)
			}
		})
	}
}
