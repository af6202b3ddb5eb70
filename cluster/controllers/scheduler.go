package controllers

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/switchboard-dev/switchboard/cluster"
)

// defaultSchedulerName is the name pods ask for (spec.schedulerName).
const defaultSchedulerName = corev1.DefaultSchedulerName

// scheduler binds pods without spec.nodeName to a Node, as kube-scheduler
// does with its default profile cut down to what a few nodes need:
// filters NodeUnschedulable, the Ready condition (the not-ready taint),
// TaintToleration (NoSchedule/NoExecute), NodeName, NodeSelector and
// required node affinity; the score is "fewest pods" (spread).
//
// A pod that fits no node is marked once (PodScheduled=False
// Unschedulable, one FailedScheduling event) and parked, as
// kube-scheduler's unschedulable queue: it is tried again when a Node is
// added or changes in a way that may make it fit (labels, taints,
// unschedulable, readiness), or when its own spec changes, never for its
// status or metadata updates.
type scheduler struct {
	*controller
	store    *cluster.Store
	rec      *cluster.Recorder
	attempts *prometheus.CounterVec

	mu     sync.Mutex
	parked map[string]int64 // unschedulable pod key -> generation tried
}

func newScheduler(store *cluster.Store, c *controller, rec *cluster.Recorder, cfg Config) *scheduler {
	s := &scheduler{controller: c, store: store, rec: rec, parked: map[string]int64{}}
	s.attempts = register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Subsystem: "scheduler", Name: "schedule_attempts_total",
		Help: "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
	}, []string{"result", "profile"}))
	c.sync = s.sync
	return s
}

func needsScheduling(p *corev1.Pod) bool {
	return p.Spec.NodeName == "" && p.DeletionTimestamp == nil && !isPodTerminal(p) &&
		(p.Spec.SchedulerName == "" || p.Spec.SchedulerName == defaultSchedulerName)
}

func (s *scheduler) subscribe(st *cluster.Store) []*cluster.Subscription {
	pods := handler{c: s.controller, initial: true,
		onAdd: func(o cluster.Object) []string {
			if p, ok := o.(*corev1.Pod); ok && needsScheduling(p) {
				return keyOf(p)
			}
			return nil
		},
		onUpd: func(_, o cluster.Object) []string {
			p, ok := o.(*corev1.Pod)
			if !ok || !needsScheduling(p) {
				s.unpark(cluster.KeyOf(o))
				return nil
			}
			// A parked pod waits for a node change, or for a new spec
			// (its generation), not for its own status writes.
			if s.isParked(cluster.KeyOf(p), p.Generation) {
				return nil
			}
			return keyOf(p)
		},
		onDel: func(o cluster.Object) []string {
			s.unpark(cluster.KeyOf(o))
			return nil
		},
	}
	// Node changes that may make parked pods fit: retry them all.
	nodes := handler{c: s.controller,
		onAdd: func(cluster.Object) []string { return s.parkedKeys() },
		onUpd: func(old, o cluster.Object) []string {
			if !nodeSchedulingChanged(old.(*corev1.Node), o.(*corev1.Node)) {
				return nil
			}
			return s.parkedKeys()
		},
		onDel: func(cluster.Object) []string { return nil },
	}
	return []*cluster.Subscription{
		st.Subscribe(cluster.KindPod, pods, 0),
		st.Subscribe(cluster.KindNode, nodes, 0),
	}
}

// nodeSchedulingChanged tells whether a Node update may let a pod fit
// that did not: what the filters read (labels, taints, unschedulable,
// the Ready condition), as kube-scheduler's queueing hints for Node
// updates. Heartbeats and other status changes are not.
func nodeSchedulingChanged(old, n *corev1.Node) bool {
	return !apiequality.Semantic.DeepEqual(old.Labels, n.Labels) ||
		!apiequality.Semantic.DeepEqual(old.Spec.Taints, n.Spec.Taints) ||
		old.Spec.Unschedulable != n.Spec.Unschedulable ||
		nodeReady(old) != nodeReady(n)
}

func (s *scheduler) park(key string, generation int64) {
	s.mu.Lock()
	s.parked[key] = generation
	s.mu.Unlock()
}

func (s *scheduler) unpark(key string) {
	s.mu.Lock()
	delete(s.parked, key)
	s.mu.Unlock()
}

func (s *scheduler) isParked(key string, generation int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.parked[key]
	return ok && g == generation
}

// parkedKeys returns the keys of the unschedulable pods, sorted.
func (s *scheduler) parkedKeys() []string {
	s.mu.Lock()
	keys := make([]string, 0, len(s.parked))
	for k := range s.parked {
		keys = append(keys, k)
	}
	s.mu.Unlock()
	sort.Strings(keys)
	return keys
}

var errAlreadyBound = errors.New("pod is already bound")

func (s *scheduler) sync(_ context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	pod, err := cluster.Get[*corev1.Pod](s.store, ns, name)
	if apierrors.IsNotFound(err) {
		s.unpark(key)
		return nil
	}
	if err != nil {
		return err
	}
	if !needsScheduling(pod) {
		s.unpark(key)
		return nil
	}
	nodes := cluster.List[*corev1.Node](s.store, "", nil)
	node, reasons := s.pick(pod, nodes)
	if node == "" {
		msg := unschedulableMessage(len(nodes), reasons)
		s.attempts.WithLabelValues("unschedulable", defaultSchedulerName).Inc()
		// Parked before the status write, so that the write's own
		// event does not bring it back.
		s.park(key, pod.Generation)
		changed := false
		_, err := s.store.UpdateStatusFunc(cluster.KindPod, ns, name, func(o cluster.Object) error {
			p := o.(*corev1.Pod)
			changed = setPodCondition(&p.Status, corev1.PodCondition{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
				Reason: corev1.PodReasonUnschedulable, Message: msg,
			})
			return nil
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if changed {
			s.log.Info("pod is unschedulable", "pod", key, "reason", msg)
			s.rec.Eventf(pod, corev1.EventTypeWarning, "FailedScheduling", "%s", msg)
		}
		return nil // retried when nodes change
	}
	s.unpark(key)
	_, err = s.store.UpdateFunc(cluster.KindPod, ns, name, func(o cluster.Object) error {
		p := o.(*corev1.Pod)
		if p.Spec.NodeName != "" {
			return errAlreadyBound
		}
		p.Spec.NodeName = node
		return nil
	})
	if errors.Is(err, errAlreadyBound) || apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		s.attempts.WithLabelValues("error", defaultSchedulerName).Inc()
		return fmt.Errorf("binding pod %s to node %s: %w", key, node, err)
	}
	_, err = s.store.UpdateStatusFunc(cluster.KindPod, ns, name, func(o cluster.Object) error {
		setPodCondition(&o.(*corev1.Pod).Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue})
		return nil
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	s.attempts.WithLabelValues("scheduled", defaultSchedulerName).Inc()
	s.rec.Eventf(pod, corev1.EventTypeNormal, "Scheduled", "Successfully assigned %s/%s to %s", ns, name, node)
	return nil
}

// setPodCondition sets a condition, keeping lastTransitionTime when the
// status does not change; it reports whether anything changed.
func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) bool {
	now := metav1.NewTime(time.Now())
	for i := range st.Conditions {
		cur := &st.Conditions[i]
		if cur.Type != c.Type {
			continue
		}
		if cur.Status == c.Status && cur.Reason == c.Reason && cur.Message == c.Message {
			return false
		}
		if cur.Status != c.Status {
			cur.LastTransitionTime = now
		}
		cur.Status, cur.Reason, cur.Message = c.Status, c.Reason, c.Message
		cur.LastProbeTime = metav1.Time{}
		return true
	}
	c.LastTransitionTime = now
	st.Conditions = append(st.Conditions, c)
	return true
}

// pick filters the nodes and scores the survivors; it returns the chosen
// node, or "" and the count of nodes per failure reason.
func (s *scheduler) pick(pod *corev1.Pod, nodes []*corev1.Node) (string, map[string]int) {
	reasons := map[string]int{}
	var fit []*corev1.Node
	for _, n := range nodes {
		if r := nodeFilter(pod, n); r != "" {
			reasons[r]++
			continue
		}
		fit = append(fit, n)
	}
	if len(fit) == 0 {
		return "", reasons
	}
	if len(fit) == 1 {
		return fit[0].Name, nil // nothing to score
	}
	// Score: fewest non-terminal pods bound to the node, then name.
	count := map[string]int{}
	for _, p := range cluster.List[*corev1.Pod](s.store, "", nil) {
		if p.Spec.NodeName != "" && !isPodTerminal(p) {
			count[p.Spec.NodeName]++
		}
	}
	sort.SliceStable(fit, func(i, j int) bool {
		ci, cj := count[fit[i].Name], count[fit[j].Name]
		if ci != cj {
			return ci < cj
		}
		return fit[i].Name < fit[j].Name
	})
	return fit[0].Name, nil
}

// The failure reasons, in kube-scheduler's words.
const (
	reasonUnschedulable = "node(s) were unschedulable"
	reasonNotReady      = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
	reasonNodeName      = "node(s) didn't match the requested node name"
	reasonSelector      = "node(s) didn't match Pod's node affinity/selector"
)

func nodeFilter(pod *corev1.Pod, n *corev1.Node) string {
	if !nodeReady(n) {
		return reasonNotReady
	}
	if n.Spec.Unschedulable && !tolerates(pod, &corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}) {
		return reasonUnschedulable
	}
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !tolerates(pod, t) {
			return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
		}
	}
	if !nodeMatchesSelector(pod, n) {
		return reasonSelector
	}
	return ""
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func tolerates(pod *corev1.Pod, t *corev1.Taint) bool {
	for i := range pod.Spec.Tolerations {
		if pod.Spec.Tolerations[i].ToleratesTaint(logr.Discard(), t, true) {
			return true
		}
	}
	return false
}

// nodeMatchesSelector: spec.nodeSelector and
// requiredDuringSchedulingIgnoredDuringExecution node affinity (terms are
// ORed, expressions inside a term ANDed), as the NodeAffinity plugin.
func nodeMatchesSelector(pod *corev1.Pod, n *corev1.Node) bool {
	if len(pod.Spec.NodeSelector) > 0 && !labels.SelectorFromSet(pod.Spec.NodeSelector).Matches(labels.Set(n.Labels)) {
		return false
	}
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return true
	}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
			continue // an empty term matches no objects
		}
		if termMatches(term, n) {
			return true
		}
	}
	return false
}

func termMatches(term corev1.NodeSelectorTerm, n *corev1.Node) bool {
	for _, r := range term.MatchExpressions {
		if !requirementMatches(r, labels.Set(n.Labels)) {
			return false
		}
	}
	for _, r := range term.MatchFields {
		if r.Key != "metadata.name" || !requirementMatches(r, labels.Set{"metadata.name": n.Name}) {
			return false
		}
	}
	return true
}

func requirementMatches(r corev1.NodeSelectorRequirement, set labels.Set) bool {
	var op selection.Operator
	switch r.Operator {
	case corev1.NodeSelectorOpIn:
		op = selection.In
	case corev1.NodeSelectorOpNotIn:
		op = selection.NotIn
	case corev1.NodeSelectorOpExists:
		op = selection.Exists
	case corev1.NodeSelectorOpDoesNotExist:
		op = selection.DoesNotExist
	case corev1.NodeSelectorOpGt:
		op = selection.GreaterThan
	case corev1.NodeSelectorOpLt:
		op = selection.LessThan
	default:
		return false
	}
	req, err := labels.NewRequirement(r.Key, op, r.Values)
	if err != nil {
		return false
	}
	return req.Matches(set)
}

// unschedulableMessage is kube-scheduler's FitError message:
// "0/3 nodes are available: 1 node(s) ..., 2 node(s) ...".
func unschedulableMessage(total int, reasons map[string]int) string {
	if total == 0 {
		return "no nodes available to schedule pods"
	}
	var parts []string
	for r, n := range reasons {
		parts = append(parts, strconv.Itoa(n)+" "+r)
	}
	sort.Strings(parts)
	return fmt.Sprintf("0/%d nodes are available: %s.", total, strings.Join(parts, ", "))
}
