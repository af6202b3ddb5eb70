package controllers

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// testEnv is a store with the allocator wired and the Manager running.
type testEnv struct {
	t     *testing.T
	store *cluster.Store
	alloc *Allocator
	mgr   *Manager
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	return Config{ServiceCIDR: netip.MustParsePrefix("127.96.0.0/16"), Logger: quietLogger()}
}

// newEnv starts a Manager on a fresh store; before, when set, fills the
// store first (objects the controllers find when they start).
func newEnv(t *testing.T, cfg Config, before func(s *cluster.Store)) *testEnv {
	t.Helper()
	s := cluster.NewStore()
	a, err := NewAllocator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Use(a.Admit)
	if before != nil {
		before(s)
	}
	m := New(s, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() { defer close(done); _ = m.Run(ctx) }()
	select {
	case <-m.Synced():
	case <-time.After(20 * time.Second):
		t.Fatal("manager never synced")
	}
	return &testEnv{t: t, store: s, alloc: a, mgr: m}
}

// endpointSlices is the Manager's EndpointSlice controller.
func (e *testEnv) endpointSlices() *endpointSliceController {
	for _, r := range e.mgr.controllers {
		if c, ok := r.(*endpointSliceController); ok {
			return c
		}
	}
	e.t.Fatal("no EndpointSlice controller")
	return nil
}

// eventually waits (bounded) for cond; it is a wait for a state, not a
// measurement of speed.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg := cond()
		if ok {
			return
		}
		last = msg
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

func create(t *testing.T, s *cluster.Store, o cluster.Object) cluster.Object {
	t.Helper()
	c, err := s.Create(o)
	if err != nil {
		t.Fatalf("create %T %s: %v", o, o.GetName(), err)
	}
	return c
}

func node(name string, ready bool, lbls map[string]string) *corev1.Node {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: st}}},
	}
}

// addNode creates a Node and sets its status (Create keeps status as given).
func addNode(t *testing.T, s *cluster.Store, n *corev1.Node) {
	t.Helper()
	create(t, s, n)
}

func podTemplate(lbls map[string]string, env string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: lbls},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "demo", Command: []string{"switchboard", "demo", "http"},
			Env:   []corev1.EnvVar{{Name: "VERSION", Value: env}},
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		}}},
	}
}

// kubelet is a fake node: it marks pods bound to it Running with a
// loopback IP (a string only: nothing listens) and Ready as told, and
// removes pods being deleted unless told to hold them.
type kubelet struct {
	t     *testing.T
	store *cluster.Store
	node  string
	next  atomic.Uint32

	mu    sync.Mutex
	ready func(*corev1.Pod) bool // readiness for new pods; nil means ready
	hold  map[string]bool        // pod keys whose termination is held
	sub   *cluster.Subscription
}

var ipBlock atomic.Uint32

func startKubelet(t *testing.T, s *cluster.Store, nodeName string) *kubelet {
	t.Helper()
	k := &kubelet{t: t, store: s, node: nodeName, hold: map[string]bool{}}
	k.next.Store(ipBlock.Add(1) << 8)
	k.sub = s.Subscribe(cluster.KindPod, podHandler{k}, 0)
	t.Cleanup(k.sub.Stop)
	return k
}

type podHandler struct{ k *kubelet }

func (h podHandler) OnAdd(o any, _ bool) { h.k.observe(o.(*corev1.Pod)) }
func (h podHandler) OnUpdate(_, o any)   { h.k.observe(o.(*corev1.Pod)) }
func (h podHandler) OnDelete(any)        {}

func (k *kubelet) setReadiness(f func(*corev1.Pod) bool) {
	k.mu.Lock()
	k.ready = f
	k.mu.Unlock()
}

func (k *kubelet) holdTermination(key string, hold bool) {
	k.mu.Lock()
	k.hold[key] = hold
	k.mu.Unlock()
	if !hold {
		ns, name := splitKey(key)
		if p, err := cluster.Get[*corev1.Pod](k.store, ns, name); err == nil {
			k.observe(p)
		}
	}
}

func splitKey(key string) (string, string) {
	for i := range key {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}

func (k *kubelet) observe(p *corev1.Pod) {
	if p.Spec.NodeName != k.node {
		return
	}
	key := cluster.KeyOf(p)
	if p.DeletionTimestamp != nil {
		k.mu.Lock()
		held := k.hold[key]
		k.mu.Unlock()
		if !held {
			err := k.store.Delete(cluster.KindPod, p.Namespace, p.Name, cluster.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), UID: p.UID})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				k.t.Errorf("kubelet: removing %s: %v", key, err)
			}
		}
		return
	}
	if p.Status.PodIP != "" {
		return
	}
	k.mu.Lock()
	readyF := k.ready
	k.mu.Unlock()
	ready := readyF == nil || readyF(p)
	n := k.next.Add(1)
	ip := fmt.Sprintf("127.%d.%d.%d", 100+(n>>16)%100, (n>>8)&0xff, n&0xff)
	_, err := k.store.UpdateStatusFunc(cluster.KindPod, p.Namespace, p.Name, func(o cluster.Object) error {
		x := o.(*corev1.Pod)
		if x.Status.PodIP != "" || x.UID != p.UID {
			return errGone
		}
		x.Status.Phase = corev1.PodRunning
		x.Status.PodIP = ip
		x.Status.PodIPs = []corev1.PodIP{{IP: ip}}
		x.Status.HostIP = "127.0.0.1"
		setReadyConditions(&x.Status, ready)
		return nil
	})
	if err != nil && err != errGone && !apierrors.IsNotFound(err) {
		k.t.Errorf("kubelet: status of %s: %v", key, err)
	}
}

func setReadyConditions(st *corev1.PodStatus, ready bool) {
	s := corev1.ConditionFalse
	if ready {
		s = corev1.ConditionTrue
	}
	setPodCondition(st, corev1.PodCondition{Type: corev1.ContainersReady, Status: s})
	setPodCondition(st, corev1.PodCondition{Type: corev1.PodReady, Status: s})
}

// setReady flips a pod's Ready condition, as a readiness probe would.
func (k *kubelet) setReady(ns, name string, ready bool) {
	k.t.Helper()
	_, err := k.store.UpdateStatusFunc(cluster.KindPod, ns, name, func(o cluster.Object) error {
		setReadyConditions(&o.(*corev1.Pod).Status, ready)
		return nil
	})
	if err != nil {
		k.t.Fatalf("set ready %s/%s: %v", ns, name, err)
	}
}

func listPods(s *cluster.Store, ns string, sel map[string]string) []*corev1.Pod {
	var l labels.Selector
	if sel != nil {
		l = labels.SelectorFromSet(sel)
	}
	return cluster.List[*corev1.Pod](s, ns, l)
}

func countPods(pods []*corev1.Pod, f func(*corev1.Pod) bool) int {
	n := 0
	for _, p := range pods {
		if f(p) {
			n++
		}
	}
	return n
}
