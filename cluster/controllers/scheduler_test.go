package controllers

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

func bare(ns, name string, f func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec:       podTemplate(nil, "v1").Spec,
	}
	if f != nil {
		f(p)
	}
	return p
}

func podScheduled(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func TestSchedulerFilters(t *testing.T) {
	tests := []struct {
		name     string
		nodes    []*corev1.Node
		pod      func(*corev1.Pod)
		wantNode string // "" means unschedulable
		wantMsg  string
	}{
		{name: "binds to the Ready node", nodes: []*corev1.Node{node("n1", true, nil)}, wantNode: "n1"},
		{name: "kube-scheduler: no nodes available to schedule pods", wantMsg: "no nodes available to schedule pods"},
		{name: "a node whose Ready condition is not True is skipped", nodes: []*corev1.Node{node("n1", false, nil), node("n2", true, nil)}, wantNode: "n2"},
		{name: "kube-scheduler FitError message for a not-ready node", nodes: []*corev1.Node{node("n1", false, nil)},
			wantMsg: "0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }."},
		{name: "nodeSelector against node labels", nodes: []*corev1.Node{node("n1", true, nil), node("n2", true, map[string]string{"disk": "ssd"})},
			pod: func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }, wantNode: "n2"},
		{name: "nodeSelector matching nothing: didn't match Pod's node affinity/selector", nodes: []*corev1.Node{node("n1", true, nil)},
			pod:     func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} },
			wantMsg: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."},
		{name: "required node affinity In", nodes: []*corev1.Node{node("n1", true, map[string]string{"zone": "a"}), node("n2", true, map[string]string{"zone": "b"})},
			pod: func(p *corev1.Pod) {
				p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
					NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"b"}}}}},
				}}}
			}, wantNode: "n2"},
		{name: "a NoSchedule taint without toleration is skipped", nodes: []*corev1.Node{func() *corev1.Node {
			n := node("n1", true, nil)
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
			return n
		}()}, wantMsg: "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."},
		{name: "a tolerated taint is fine", nodes: []*corev1.Node{func() *corev1.Node {
			n := node("n1", true, nil)
			n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
			return n
		}()}, pod: func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "db", Effect: corev1.TaintEffectNoSchedule}}
		}, wantNode: "n1"},
		{name: "an unschedulable (cordoned) node is skipped", nodes: []*corev1.Node{func() *corev1.Node {
			n := node("n1", true, nil)
			n.Spec.Unschedulable = true
			return n
		}()}, wantMsg: "0/1 nodes are available: 1 node(s) were unschedulable."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv(t, testConfig(), nil)
			for _, n := range tc.nodes {
				addNode(t, env.store, n)
			}
			create(t, env.store, bare("default", "p", tc.pod))
			eventually(t, "scheduling decision", func() (bool, string) {
				p, err := cluster.Get[*corev1.Pod](env.store, "default", "p")
				if err != nil {
					return false, err.Error()
				}
				c := podScheduled(p)
				if c == nil {
					return false, "no PodScheduled condition"
				}
				if tc.wantNode != "" {
					return p.Spec.NodeName == tc.wantNode && c.Status == corev1.ConditionTrue, fmt.Sprintf("node %q condition %+v", p.Spec.NodeName, *c)
				}
				return p.Spec.NodeName == "" && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == tc.wantMsg,
					fmt.Sprintf("node %q condition %+v", p.Spec.NodeName, *c)
			})
			p, _ := cluster.Get[*corev1.Pod](env.store, "default", "p")
			evs := cluster.EventsFor(env.store, p)
			want := "FailedScheduling"
			msg := tc.wantMsg
			if tc.wantNode != "" {
				want, msg = "Scheduled", "Successfully assigned default/p to "+tc.wantNode
			}
			found := false
			for _, e := range evs {
				if e.Reason == want && e.Message == msg {
					found = true
				}
			}
			if !found {
				t.Fatalf("no event %s %q among %d events", want, msg, len(evs))
			}
		})
	}
}

func TestSchedulerRetriesWhenNodesChange(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("n1", true, nil))
	create(t, env.store, bare("default", "p", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} }))
	eventually(t, "Unschedulable", func() (bool, string) {
		p, _ := cluster.Get[*corev1.Pod](env.store, "default", "p")
		c := podScheduled(p)
		return c != nil && c.Reason == corev1.PodReasonUnschedulable, fmt.Sprintf("%+v", c)
	})
	if _, err := env.store.UpdateFunc(cluster.KindNode, "", "n1", func(o cluster.Object) error {
		o.SetLabels(map[string]string{"disk": "ssd"})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bound after the node got the label", func() (bool, string) {
		p, _ := cluster.Get[*corev1.Pod](env.store, "default", "p")
		c := podScheduled(p)
		return p.Spec.NodeName == "n1" && c != nil && c.Status == corev1.ConditionTrue, fmt.Sprintf("node %q %+v", p.Spec.NodeName, c)
	})
}

func TestSchedulerSpreadsByLeastPods(t *testing.T) {
	env := newEnv(t, testConfig(), nil)
	addNode(t, env.store, node("n1", true, nil))
	addNode(t, env.store, node("n2", true, nil))
	// One at a time, so each decision sees the previous ones.
	for i := range 6 {
		name := fmt.Sprintf("p%d", i)
		create(t, env.store, bare("default", name, nil))
		eventually(t, name+" bound", func() (bool, string) {
			p, _ := cluster.Get[*corev1.Pod](env.store, "default", name)
			return p.Spec.NodeName != "", "unbound"
		})
	}
	per := map[string]int{}
	for _, p := range listPods(env.store, "default", nil) {
		per[p.Spec.NodeName]++
	}
	if per["n1"] != 3 || per["n2"] != 3 {
		t.Fatalf("pods per node %v, want 3 and 3", per)
	}
}
