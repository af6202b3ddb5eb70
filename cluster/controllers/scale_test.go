package controllers

import (
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/switchboard-dev/switchboard/cluster"
)

func svcWithSelector(ns, name string, sel map[string]string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Selector: sel}}
}

// The pod -> Services mapping is upstream's getPodServiceMemberships: the
// Services of the pod's namespace whose selector matches its labels.
// "Services without a selector receive no endpoint slices from this
// controller" (pkg/controller/endpointslice), while an empty (non-nil)
// selector selects every pod (labels.Set{}.AsSelectorPreValidated()).
func TestServiceSelectorsIndex(t *testing.T) {
	x := newServiceSelectors()
	x.set(svcWithSelector("a", "web", map[string]string{"app": "web"}))
	x.set(svcWithSelector("a", "web-v2", map[string]string{"app": "web", "v": "2"}))
	x.set(svcWithSelector("a", "manual", nil))
	x.set(svcWithSelector("a", "all", map[string]string{}))
	x.set(svcWithSelector("b", "web", map[string]string{"app": "web"}))
	tests := []struct {
		name   string
		ns     string
		labels labels.Set
		want   []string
	}{
		{"only Services of the pod's namespace", "a", labels.Set{"app": "web"}, []string{"a/all", "a/web"}},
		{"every key of the selector must match", "a", labels.Set{"app": "web", "v": "2"}, []string{"a/all", "a/web", "a/web-v2"}},
		{"a nil selector selects nothing, an empty one everything", "a", labels.Set{"app": "db"}, []string{"a/all"}},
		{"other namespace", "b", labels.Set{"app": "web"}, []string{"b/web"}},
		{"namespace without Services", "c", labels.Set{"app": "web"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := x.matching(tc.ns, tc.labels); !slices.Equal(got, tc.want) {
				t.Fatalf("matching(%s, %v) = %v, want %v", tc.ns, tc.labels, got, tc.want)
			}
		})
	}
	if got, want := x.all(), []string{"a/all", "a/web", "a/web-v2", "b/web"}; !slices.Equal(got, want) {
		t.Fatalf("all() = %v, want %v", got, want)
	}
	// A selector that changes or goes, and a deleted Service.
	x.set(svcWithSelector("a", "web", map[string]string{"app": "api"}))
	x.set(svcWithSelector("a", "all", nil))
	x.remove("a", "web-v2")
	if got, want := x.matching("a", labels.Set{"app": "api"}), []string{"a/web"}; !slices.Equal(got, want) {
		t.Fatalf("after changes: matching = %v, want %v", got, want)
	}
	if got := x.matching("a", labels.Set{"app": "web", "v": "2"}); len(got) != 0 {
		t.Fatalf("after changes: matching = %v, want none", got)
	}
}

// The index follows Services created after the pods, so that a pod
// event reaches a Service of its namespace and only that one.
func TestEndpointSlicePodEventReachesServicesOfItsNamespace(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	for _, ns := range []string{"a", "b"} {
		create(t, env.store, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		create(t, env.store, svcWithSelector(ns, "web", map[string]string{"app": "web"}))
	}
	e := env.endpointSlices()
	eventually(t, "both Services indexed", func() (bool, string) {
		got := e.serviceKeysFor("a", map[string]string{"app": "web"})
		return slices.Equal(got, []string{"a/web"}) && len(e.allServiceKeys()) == 2, fmt.Sprint(got, e.allServiceKeys())
	})
	if err := env.store.Delete(cluster.KindService, "b", "web", cluster.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted Service leaves the index", func() (bool, string) {
		got := e.allServiceKeys()
		return slices.Equal(got, []string{"a/web"}), fmt.Sprint(got)
	})
}

// kube-scheduler: a pod that fits no node gets one PodScheduled=False
// (Unschedulable) condition and one FailedScheduling event, and waits in
// the unschedulable queue: its own status and metadata updates do not
// retry it, Node changes that may make it fit do, Node heartbeats do not.
func TestSchedulerParksUnschedulablePods(t *testing.T) {
	cfg := testConfig()
	cfg.Workers = 1 // keys are synced in the order their events came
	env := newEnv(t, cfg, nil)
	var s *scheduler
	for _, r := range env.mgr.controllers {
		if c, ok := r.(*scheduler); ok {
			s = c
		}
	}
	attempts := func() int {
		return int(testutil.ToFloat64(s.attempts.WithLabelValues("unschedulable", defaultSchedulerName)))
	}
	unschedulable := func(name, msg string) {
		t.Helper()
		eventually(t, name+" unschedulable", func() (bool, string) {
			p, _ := cluster.Get[*corev1.Pod](env.store, "default", name)
			c := podScheduled(p)
			return c != nil && c.Reason == corev1.PodReasonUnschedulable && c.Message == msg, fmt.Sprintf("%+v", c)
		})
	}
	failedScheduling := func(name string) int {
		p, _ := cluster.Get[*corev1.Pod](env.store, "default", name)
		n := 0
		for _, e := range cluster.EventsFor(env.store, p) {
			if e.Reason == "FailedScheduling" {
				n += int(e.Count)
			}
		}
		return n
	}
	// barrier creates a pod and waits for its decision: with one worker,
	// any key queued before it has been synced by then.
	barrier := func(name, msg string) {
		t.Helper()
		create(t, env.store, bare("default", name, nil))
		unschedulable(name, msg)
	}

	const noNodes = "no nodes available to schedule pods"
	create(t, env.store, bare("default", "p", nil))
	unschedulable("p", noNodes)
	for i := range 3 {
		if _, err := env.store.UpdateFunc(cluster.KindPod, "default", "p", func(o cluster.Object) error {
			o.SetLabels(map[string]string{"app": "p", "round": fmt.Sprint(i)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := env.store.UpdateStatusFunc(cluster.KindPod, "default", "p", func(o cluster.Object) error {
			o.(*corev1.Pod).Status.Message = fmt.Sprint("round ", i)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	barrier("q", noNodes)
	if got := attempts(); got != 2 {
		t.Errorf("unschedulable attempts = %d, want 2 (one per pod; updates of a parked pod do not retry it)", got)
	}
	if got := failedScheduling("p"); got != 1 {
		t.Errorf("FailedScheduling events for p = %d, want 1", got)
	}

	// A Node appears (not Ready): both parked pods are tried again.
	notReady := "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."
	addNode(t, env.store, node("n1", false, nil))
	unschedulable("p", notReady)
	unschedulable("q", notReady)
	// A heartbeat (a status change the filters do not read) retries nothing.
	if _, err := env.store.UpdateStatusFunc(cluster.KindNode, "", "n1", func(o cluster.Object) error {
		n := o.(*corev1.Node)
		n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	barrier("r", notReady)
	if got := attempts(); got != 5 {
		t.Errorf("unschedulable attempts = %d, want 5 (p and q once more for the new Node, r once)", got)
	}
	// The Node becomes Ready: every parked pod is bound.
	if _, err := env.store.UpdateStatusFunc(cluster.KindNode, "", "n1", func(o cluster.Object) error {
		setNodeReady(o.(*corev1.Node))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"p", "q", "r"} {
		eventually(t, name+" bound", func() (bool, string) {
			p, _ := cluster.Get[*corev1.Pod](env.store, "default", name)
			return p.Spec.NodeName == "n1", "unbound"
		})
	}
	s.mu.Lock()
	parked := len(s.parked)
	s.mu.Unlock()
	if parked != 0 {
		t.Errorf("%d pods still parked after binding", parked)
	}
}

func setNodeReady(n *corev1.Node) {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			n.Status.Conditions[i].Status = corev1.ConditionTrue
		}
	}
}
