package node

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func httpProbe(path string, port int, failureThreshold int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(int32(port))}},
		PeriodSeconds:    1,
		TimeoutSeconds:   1,
		FailureThreshold: failureThreshold,
		SuccessThreshold: 1,
	}
}

func execProbe(failureThreshold int32, cmd ...string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}},
		PeriodSeconds:    1,
		TimeoutSeconds:   2,
		FailureThreshold: failureThreshold,
		SuccessThreshold: 1,
	}
}

func TestLivenessFailureRestartsOnlyThatContainer(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	a, b := helperContainer("a", 18081), helperContainer("b", 18082)
	a.LivenessProbe = httpProbe("/healthz", 18081, 2)
	b.LivenessProbe = httpProbe("/healthz", 18082, 2)
	p := h.createPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "live"},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptrInt64(2), Containers: []corev1.Container{a, b}},
	})
	got := h.waitPod("live", 10*time.Second, "both running", func(p *corev1.Pod) bool {
		return containerStatus(p, "a").State.Running != nil && containerStatus(p, "b").State.Running != nil
	})
	h.eventually(5*time.Second, "a answers", func() bool {
		code, _, err := httpGet(fmt.Sprintf("http://%s:18081/fail/healthz", got.Status.PodIP))
		return err == nil && code == 200
	})
	restarted := h.waitPod("live", 15*time.Second, "a restarted", func(p *corev1.Pod) bool {
		return containerStatus(p, "a").RestartCount == 1 && containerStatus(p, "a").State.Running != nil
	})
	if n := containerStatus(restarted, "b").RestartCount; n != 0 {
		t.Errorf("container b restarted %d times; only a failed its liveness probe", n)
	}
	// kubelet: "Container %s failed liveness probe, will be restarted".
	if !hasEvent(h, p, "Killing", "Container a failed liveness probe, will be restarted") {
		t.Errorf("events %v: want Killing for the liveness failure", events(h, p))
	}
	if !hasEvent(h, p, "Unhealthy", "") {
		t.Errorf("events %v: want the probe's Unhealthy", events(h, p))
	}
	// The new instance is healthy again (its handler state starts fresh).
	time.Sleep(3 * time.Second)
	if n := containerStatus(h.pod("live"), "a").RestartCount; n != 1 {
		t.Errorf("a restarted %d times; the new instance is healthy", n)
	}
}

func TestReadinessFlipsReady(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	c := helperContainer("web", 18083)
	c.ReadinessProbe = httpProbe("/readyz", 18083, 1)
	h.createPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ready"},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptrInt64(2), Containers: []corev1.Container{c}},
	})
	isReady := func(want corev1.ConditionStatus) func(*corev1.Pod) bool {
		return func(p *corev1.Pod) bool { return condition(p, corev1.PodReady).Status == want }
	}
	p := h.waitPod("ready", 10*time.Second, "Ready", isReady(corev1.ConditionTrue))
	readySince := condition(p, corev1.PodReady).LastTransitionTime
	url := fmt.Sprintf("http://%s:18083", p.Status.PodIP)
	if code, _, err := httpGet(url + "/fail/readyz"); err != nil || code != 200 {
		t.Fatalf("switch readiness off: %d %v", code, err)
	}
	// A readiness failure clears Ready within periodSeconds ×
	// failureThreshold (+1 s).
	p = h.waitPod("ready", 3*time.Second, "not Ready", isReady(corev1.ConditionFalse))
	if c := condition(p, corev1.PodReady); c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [web]" {
		t.Errorf("Ready = %+v", c)
	}
	if c := condition(p, corev1.ContainersReady); c.Status != corev1.ConditionFalse || c.Message != "containers with unready status: [web]" {
		t.Errorf("ContainersReady = %+v", c)
	}
	if !condition(p, corev1.PodReady).LastTransitionTime.After(readySince.Time) {
		t.Errorf("lastTransitionTime did not move on the transition")
	}
	if cs := containerStatus(p, "web"); cs.Ready || cs.State.Running == nil || cs.RestartCount != 0 {
		t.Errorf("web %+v: a readiness failure only clears ready", cs)
	}
	if code, _, err := httpGet(url + "/ok/readyz"); err != nil || code != 200 {
		t.Fatalf("switch readiness on: %d %v", code, err)
	}
	h.waitPod("ready", 3*time.Second, "Ready again", isReady(corev1.ConditionTrue))
}

func TestReadinessGates(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	p := shPod("gated", "exec sleep 60")
	p.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}}
	h.createPod(p)
	got := h.waitPod("gated", 10*time.Second, "running", running("c"))
	got = h.waitPod("gated", 5*time.Second, "ContainersReady", func(p *corev1.Pod) bool {
		return condition(p, corev1.ContainersReady).Status == corev1.ConditionTrue
	})
	// "corresponding condition of pod readiness gate %q does not exist."
	if c := condition(got, corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != "ReadinessGatesNotReady" ||
		c.Message != `corresponding condition of pod readiness gate "example.com/lb" does not exist.` {
		t.Errorf("Ready = %+v", c)
	}
}

func TestExecAndStartupProbes(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	dir := t.TempDir()
	started, healthy := filepath.Join(dir, "started"), filepath.Join(dir, "healthy")
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := corev1.Container{
		Name: "app", Image: "x", Command: []string{"sleep", "600"},
		Env: []corev1.EnvVar{{Name: "HEALTH_FILE", Value: healthy}},
		// The startup probe holds liveness until it succeeds.
		StartupProbe: execProbe(30, "test", "-e", started),
		// An exec probe runs in the container's environment.
		LivenessProbe: execProbe(1, "sh", "-c", `test -e "$HEALTH_FILE"`),
	}
	p := h.createPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "startup"},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptrInt64(2), Containers: []corev1.Container{c}},
	})
	got := h.waitPod("startup", 10*time.Second, "running", running("app"))
	time.Sleep(1500 * time.Millisecond)
	got = h.pod("startup")
	if cs := containerStatus(got, "app"); cs.Started == nil || *cs.Started || cs.Ready {
		t.Errorf("before the startup probe succeeds: started=%v ready=%v, want false/false", cs.Started, cs.Ready)
	}
	// Liveness is not probed before startup succeeded: breaking health
	// now does not restart the container.
	if err := os.Remove(healthy); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if n := containerStatus(h.pod("startup"), "app").RestartCount; n != 0 {
		t.Fatalf("restarted %d times before the startup probe succeeded", n)
	}
	if err := os.WriteFile(started, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Now started, and the failing liveness probe restarts it.
	got = h.waitPod("startup", 10*time.Second, "restarted by liveness", func(p *corev1.Pod) bool {
		return containerStatus(p, "app").RestartCount >= 1
	})
	if !hasEvent(h, p, "Killing", "Container app failed liveness probe, will be restarted") {
		t.Errorf("events %v", events(h, p))
	}
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got = h.waitPod("startup", 10*time.Second, "started and ready", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "app")
		return cs.State.Running != nil && cs.Started != nil && *cs.Started && cs.Ready
	})
	_ = got
}

func TestStartupProbeFailureRestarts(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	c := corev1.Container{Name: "slow", Image: "x", Command: []string{"sleep", "600"}, StartupProbe: execProbe(2, "false")}
	p := h.createPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "never-starts"},
		Spec:       corev1.PodSpec{TerminationGracePeriodSeconds: ptrInt64(2), Containers: []corev1.Container{c}},
	})
	h.waitPod("never-starts", 15*time.Second, "restarted", func(p *corev1.Pod) bool {
		return containerStatus(p, "slow").RestartCount >= 1
	})
	if !hasEvent(h, p, "Killing", "Container slow failed startup probe, will be restarted") {
		t.Errorf("events %v", events(h, p))
	}
}
