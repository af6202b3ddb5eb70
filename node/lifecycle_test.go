package node

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

func TestPostStartHooks(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	// An HTTP hook target on loopback.
	var hits atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/started" {
			hits.Add(1)
		}
	})}
	t.Cleanup(func() { srv.Close() })
	go srv.Serve(ln)
	port := ln.Addr().(*net.TCPAddr).Port

	marker := filepath.Join(t.TempDir(), "poststart")
	ok := shPod("hooks", "exec sleep 60")
	ok.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo $SWITCHBOARD_POD_NAME > " + marker}},
	}}
	ok.Spec.Containers = append(ok.Spec.Containers, corev1.Container{
		Name: "web", Image: "x", Command: []string{"sleep", "60"},
		Lifecycle: &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
			HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Port: intstr.FromInt(port), Path: "/started"},
		}},
	})
	h.createPod(ok)
	h.waitPod("hooks", 10*time.Second, "running", func(p *corev1.Pod) bool {
		return containerStatus(p, "c").State.Running != nil && containerStatus(p, "web").State.Running != nil
	})
	h.eventually(5*time.Second, "exec hook ran", func() bool {
		b, _ := os.ReadFile(marker)
		return string(b) == "hooks\n"
	})
	h.eventually(5*time.Second, "http hook ran", func() bool { return hits.Load() == 1 })

	// "If a PostStart hook fails, it kills the Container", which is then
	// restarted per the restart policy.
	bad := shPod("badhook", "exec sleep 60")
	bad.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 7"}},
	}}
	p := h.createPod(bad)
	h.waitPod("badhook", 15*time.Second, "restarted after the hook failed", func(p *corev1.Pod) bool {
		return containerStatus(p, "c").RestartCount >= 1
	})
	if !hasEvent(h, p, "FailedPostStartHook", "") {
		t.Errorf("events %v: want FailedPostStartHook", events(h, p))
	}
	if !hasEvent(h, p, "Killing", "FailedPostStartHook") {
		t.Errorf("events %v: want Killing FailedPostStartHook", events(h, p))
	}
}

func TestSidecarInitContainer(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	out := filepath.Join(t.TempDir(), "order")
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "sidecar"},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptrInt64(2),
			// A sidecar is an init container with restartPolicy Always:
			// it keeps running beside the main container, and the pod
			// completes when the main container does. "The kubelet
			// waits for a sidecar's startup probe to succeed before it
			// starts the next container", so the sidecar's line comes
			// first (its process merely running would not promise that).
			InitContainers: []corev1.Container{{
				Name: "proxy", Image: "x", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Command: []string{"sh", "-c", "echo proxy >> " + out + "; exec sleep 600"},
				StartupProbe: &corev1.Probe{
					ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"grep", "-q", "proxy", out}}},
					PeriodSeconds:    1,
					TimeoutSeconds:   1,
					SuccessThreshold: 1,
					FailureThreshold: 10,
				},
			}},
			Containers: []corev1.Container{{
				Name: "job", Image: "x",
				Command: []string{"sh", "-c", "echo job >> " + out + "; sleep 0.5"},
			}},
		},
	}
	h.createPod(p)
	h.waitPod("sidecar", 15*time.Second, "both running", func(p *corev1.Pod) bool {
		return containerStatus(p, "proxy").State.Running != nil && containerStatus(p, "job").State.Running != nil
	})
	got := h.waitPod("sidecar", 15*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if cs := containerStatus(got, "proxy"); cs.State.Terminated == nil {
		t.Errorf("sidecar %+v: stopped once the main container completed", cs.State)
	}
	b, _ := os.ReadFile(out)
	if string(b) != "proxy\njob\n" {
		t.Errorf("order %q, want the sidecar first", b)
	}
}

func TestTerminalPodIsNotRunAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A pod that finished before the node (re)started stays finished.
	p := shPod("done", "echo ran; exit 0")
	p.Spec.NodeName = "test-node"
	p.Namespace = "default"
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	created, err := h.store.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	st := created.(*corev1.Pod).DeepCopy()
	st.Status.Phase = corev1.PodSucceeded
	if _, err := h.store.UpdateStatus(st); err != nil {
		t.Fatal(err)
	}
	// A pod that was running when the node stopped is started again, its
	// restart count carried on.
	r := shPod("again", "exec sleep 60")
	r.Spec.NodeName, r.Namespace = "test-node", "default"
	created, err = h.store.Create(r)
	if err != nil {
		t.Fatal(err)
	}
	st = created.(*corev1.Pod).DeepCopy()
	st.Status.Phase = corev1.PodRunning
	st.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c", RestartCount: 4, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	if _, err := h.store.UpdateStatus(st); err != nil {
		t.Fatal(err)
	}
	h.start()
	got := h.waitPod("again", 10*time.Second, "running again", func(p *corev1.Pod) bool {
		cs := containerStatus(p, "c")
		return cs.State.Running != nil && cs.ContainerID != ""
	})
	if n := containerStatus(got, "c").RestartCount; n != 5 {
		t.Errorf("restartCount %d, want 5 (4 before the node restarted, plus this start)", n)
	}
	time.Sleep(300 * time.Millisecond)
	done := h.pod("done")
	if done.Status.Phase != corev1.PodSucceeded || len(done.Status.ContainerStatuses) != 0 {
		t.Errorf("the finished pod was touched: %s", describeStatus(done))
	}
	// Deleting it removes it at once (nothing runs).
	if err := h.store.Delete(cluster.KindPod, "default", "done", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.eventually(5*time.Second, "removed", func() bool {
		_, err := cluster.Get[*corev1.Pod](h.store, "default", "done")
		return err != nil
	})
}

func TestDefinitionChangeRestarts(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	p := h.createPod(shPod("changing", "echo v1; exec sleep 60"))
	h.waitLog("changing", "c", "v1", 10*time.Second)
	if _, err := h.store.UpdateFunc(cluster.KindPod, "default", "changing", func(o cluster.Object) error {
		o.(*corev1.Pod).Spec.Containers[0].Command = []string{"sh", "-c", "echo v2; exec sleep 60"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.waitLog("changing", "c", "v2", 10*time.Second)
	// kubelet: "Container %s definition changed", restarted whatever the
	// restart policy.
	if !hasEvent(h, p, "Killing", "Container c definition changed, will be restarted") {
		t.Errorf("events %v", events(h, p))
	}
}

func TestTerminationMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	msgFile := filepath.Join(t.TempDir(), "termination-log")
	// terminationMessagePath: "the file ... into which the container's
	// termination message will be written".
	byFile := shPod("byfile", "echo 'all done' > "+msgFile+"; exit 0")
	byFile.Spec.RestartPolicy = corev1.RestartPolicyNever
	byFile.Spec.Containers[0].TerminationMessagePath = msgFile
	// FallbackToLogsOnError: "use the last chunk of container log output
	// if the termination message file is empty and the container exited
	// with an error".
	byLog := shPod("bylog", "echo first; echo 'it broke'; exit 3")
	byLog.Spec.RestartPolicy = corev1.RestartPolicyNever
	byLog.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log"
	byLog.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	h.createPod(byFile)
	h.createPod(byLog)
	for name, want := range map[string]string{"byfile": "all done\n", "bylog": "first\nit broke\n"} {
		p := h.waitPod(name, 10*time.Second, "terminated", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
		})
		if got := containerStatus(p, "c").State.Terminated.Message; got != want {
			t.Errorf("%s: termination message %q, want %q", name, got, want)
		}
	}
}
