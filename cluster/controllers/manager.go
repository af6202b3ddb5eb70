package controllers

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/switchboard-dev/switchboard/cluster"
)

// Manager runs every standalone controller on one store, as
// kube-controller-manager (and kube-scheduler) run theirs on an API server.
type Manager struct {
	store       *cluster.Store
	cfg         Config
	log         *slog.Logger
	controllers []runnable
	synced      chan struct{}
	runOnce     sync.Once
}

// runnable is one controller: its queue and workers (controller) and the
// subscriptions that feed the queue.
type runnable interface {
	base() *controller
	subscribe(s *cluster.Store) []*cluster.Subscription
}

// New builds the Manager; nothing runs before Run.
func New(store *cluster.Store, cfg Config) *Manager {
	cfg = cfg.withDefaults()
	m := &Manager{store: store, cfg: cfg, log: cfg.Logger.With("component", "controller-manager"), synced: make(chan struct{})}
	qm := newQueueMetrics(cfg.Registerer)
	host, _ := os.Hostname()
	recorder := func(component string) *cluster.Recorder {
		if cfg.Recorder != nil {
			return cfg.Recorder
		}
		return cluster.NewRecorder(store, component, host)
	}
	mk := func(name string) *controller { return newController(name, cfg, qm) }
	m.controllers = []runnable{
		newScheduler(store, mk("scheduler"), recorder("default-scheduler"), cfg),
		newReplicaSetController(store, mk("replicaset"), recorder("replicaset-controller")),
		newDeploymentController(store, mk("deployment"), recorder("deployment-controller")),
		newEndpointSliceController(store, mk("endpoint_slice"), recorder("endpoint-slice-controller"), cfg),
		newGarbageCollector(store, mk("garbage_collector_attempt_to_delete"), recorder("garbage-collector-controller")),
		newNamespaceController(store, mk("namespace"), recorder("namespace-controller")),
	}
	return m
}

// Synced is closed once every controller has processed, at least once,
// every object that was in the store when Run started.
func (m *Manager) Synced() <-chan struct{} { return m.synced }

// Run starts every controller and blocks until ctx is done; then it stops
// the subscriptions and waits for the workers. Call it once.
func (m *Manager) Run(ctx context.Context) error {
	ran := false
	m.runOnce.Do(func() { ran = true })
	if !ran {
		<-ctx.Done()
		return nil
	}
	var subs []*cluster.Subscription
	var workers sync.WaitGroup
	for _, r := range m.controllers {
		c := r.base()
		own := r.subscribe(m.store)
		subs = append(subs, own...)
		c.start(ctx, &workers)
		go func() {
			for _, s := range own {
				select {
				case <-s.Synced():
				case <-ctx.Done():
					return
				}
			}
			c.listDone()
		}()
	}
	go func() {
		for _, r := range m.controllers {
			select {
			case <-r.base().synced:
			case <-ctx.Done():
				return
			}
		}
		m.log.Info("controllers synced")
		close(m.synced)
	}()
	m.log.Info("controllers started", "workers", m.cfg.Workers)
	<-ctx.Done()
	for _, r := range m.controllers {
		r.base().queue.ShutDown()
	}
	for _, s := range subs {
		s.Stop()
	}
	workers.Wait()
	return nil
}

// controller is the part every controller shares: a rate-limited
// workqueue of keys, its workers, and the bookkeeping behind Synced.
type controller struct {
	name    string
	log     *slog.Logger
	queue   workqueue.TypedRateLimitingInterface[string]
	sync    func(ctx context.Context, key string) error
	workers int

	mu      sync.Mutex
	pending map[string]struct{} // keys of the initial list not yet processed once
	listed  bool
	synced  chan struct{}
	closed  bool
}

func newController(name string, cfg Config, qm *queueMetrics) *controller {
	// As client-go's DefaultTypedControllerRateLimiter, with the per-item
	// back-off capped at one minute instead of 1000 s: a standalone node
	// should retry a failed write soon.
	limiter := workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Minute),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
	return &controller{
		name:    name,
		log:     cfg.Logger.With("controller", name),
		queue:   workqueue.NewTypedRateLimitingQueueWithConfig(limiter, workqueue.TypedRateLimitingQueueConfig[string]{Name: name, MetricsProvider: qm}),
		workers: cfg.Workers,
		pending: map[string]struct{}{},
		synced:  make(chan struct{}),
	}
}

func (c *controller) base() *controller { return c }

// add queues a key.
func (c *controller) add(key string) { c.queue.Add(key) }

// addInitial queues a key of the initial list: Synced waits for it.
func (c *controller) addInitial(key string) {
	c.mu.Lock()
	if !c.listed {
		c.pending[key] = struct{}{}
	}
	c.mu.Unlock()
	c.queue.Add(key)
}

func (c *controller) listDone() {
	c.mu.Lock()
	c.listed = true
	c.checkSyncedLocked()
	c.mu.Unlock()
}

func (c *controller) processed(key string) {
	c.mu.Lock()
	delete(c.pending, key)
	c.checkSyncedLocked()
	c.mu.Unlock()
}

func (c *controller) checkSyncedLocked() {
	if c.listed && len(c.pending) == 0 && !c.closed {
		c.closed = true
		close(c.synced)
	}
}

func (c *controller) start(ctx context.Context, wg *sync.WaitGroup) {
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.processNext(ctx) {
			}
		}()
	}
}

func (c *controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	err := c.sync(ctx, key)
	c.processed(key)
	if err == nil {
		c.queue.Forget(key)
		return true
	}
	if ctx.Err() != nil {
		return true
	}
	c.log.Warn("sync failed; will retry", "key", key, "retries", c.queue.NumRequeues(key), "err", err)
	c.queue.AddRateLimited(key)
	return true
}

// handler turns store events into keys. initial marks the objects of the
// initial list (Synced waits for them); keyFn returns the keys an object
// maps to (none to ignore it).
type handler struct {
	c       *controller
	initial bool // track the initial list of this subscription for Synced
	onAdd   func(obj cluster.Object) []string
	onUpd   func(old, obj cluster.Object) []string
	onDel   func(obj cluster.Object) []string
}

var _ cache.ResourceEventHandler = handler{}

func (h handler) OnAdd(o any, initial bool) {
	obj, ok := o.(cluster.Object)
	if !ok || h.onAdd == nil {
		return
	}
	for _, k := range h.onAdd(obj) {
		if initial && h.initial {
			h.c.addInitial(k)
		} else {
			h.c.add(k)
		}
	}
}

func (h handler) OnUpdate(old, o any) {
	oldObj, ok1 := old.(cluster.Object)
	obj, ok2 := o.(cluster.Object)
	if !ok1 || !ok2 {
		return
	}
	f := h.onUpd
	if f == nil {
		if h.onAdd == nil {
			return
		}
		f = func(_, obj cluster.Object) []string { return h.onAdd(obj) }
	}
	for _, k := range f(oldObj, obj) {
		h.c.add(k)
	}
}

func (h handler) OnDelete(o any) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	obj, ok := o.(cluster.Object)
	if !ok {
		return
	}
	f := h.onDel
	if f == nil {
		f = h.onAdd
	}
	if f == nil {
		return
	}
	for _, k := range f(obj) {
		h.c.add(k)
	}
}

// keyOf is the one-key result for an object.
func keyOf(o cluster.Object) []string { return []string{cluster.KeyOf(o)} }
