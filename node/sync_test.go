package node

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// readyProbed is a pod of one helper container with readiness and
// liveness probes, as the probes benchmark runs them.
func readyProbed(name string, port int) *corev1.Pod {
	c := helperContainer("web", port)
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromString("http")}}, PeriodSeconds: 1}
	}
	c.ReadinessProbe, c.LivenessProbe = probe("/readyz"), probe("/healthz")
	p := shPod(name, "")
	p.Spec.Containers = []corev1.Container{c}
	return p
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// workerOf returns the pod worker of the named pod.
func (h *harness) workerOf(name string) *podWorker {
	h.t.Helper()
	p := h.pod(name)
	w := h.node.workerFor(p.Namespace, p.Name, p.UID)
	if w == nil {
		h.t.Fatalf("no worker for pod %s", name)
	}
	return w
}

// TestStatusKeptAgainstOtherWriters: the worker skips a sync's status
// work when nothing it depends on changed, but a status changed by
// someone else is a new version of the pod, which it corrects (the
// kubelet owns the status of its pods' containers).
func TestStatusKeptAgainstOtherWriters(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	h.createPod(readyProbed("kept", 18091))
	h.waitPod("kept", 15*time.Second, "Ready", podReady)
	w := h.workerOf("kept")
	before := h.pod("kept")
	w.sync() // nothing changed: no write
	if after := h.pod("kept"); after.ResourceVersion != before.ResourceVersion {
		t.Fatalf("a sync with nothing to change wrote the status (rv %s -> %s)", before.ResourceVersion, after.ResourceVersion)
	}

	// Someone else marks the container not ready.
	_, err := h.store.UpdateStatusFunc(cluster.KindPod, before.Namespace, before.Name, func(o cluster.Object) error {
		p := o.(*corev1.Pod)
		p.Status.ContainerStatuses[0].Ready = false
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.waitPod("kept", 5*time.Second, "the node's status back", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].Ready
	})
}

// BenchmarkSteadySync is one sync of a pod worker whose pod is running
// and ready and where nothing changed: what every resync costs.
func BenchmarkSteadySync(b *testing.B) {
	h := newHarness(b).start()
	h.createPod(readyProbed("steady", 18092))
	h.waitPod("steady", 15*time.Second, "Ready", podReady)
	w := h.workerOf("steady")
	w.sync()
	b.ReportAllocs()
	for b.Loop() {
		w.sync()
	}
}
