// Package kubesource fills a cluster.Store from a real Kubernetes API
// server (cluster mode): one client-go shared informer per kind a
// component asks for, mirroring every add, update and delete into the
// store (which keeps its own resourceVersions; the server's objects are
// otherwise kept as they are, uid and status included), and writes back
// what a component writes into the store that a real component writes to
// the API server: the status of the kinds named in Config.StatusKinds
// (Ingress status.loadBalancer) and core/v1 Events. It also finds the
// client configuration as every Kubernetes component does: --kubeconfig,
// else the in-cluster service account. It holds no component logic and
// must not write spec or metadata of any server object.
package kubesource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"

	"github.com/switchboard-dev/switchboard/cluster"
)

// ErrNoConfig is returned by RESTConfig when there is neither a
// kubeconfig nor an in-cluster service account.
var ErrNoConfig = errors.New("no --kubeconfig given and not running in a cluster (KUBERNETES_SERVICE_HOST and the service account token are missing)")

// RESTConfig returns the client configuration of a component: the
// kubeconfig file when one is named, else the in-cluster configuration
// (KUBERNETES_SERVICE_HOST/PORT and the mounted service account token),
// as every Kubernetes component does; ErrNoConfig when neither exists.
//
// Built-in objects travel as protobuf, as kube-proxy's and CoreDNS's
// clients ask (kube-proxy's --kube-api-content-type default): a list of
// 50,000 pods decodes several times faster and with less garbage than
// its JSON.
func RESTConfig(kubeconfig string) (*rest.Config, error) {
	var c *rest.Config
	var err error
	if kubeconfig != "" {
		if c, err = clientcmd.BuildConfigFromFlags("", kubeconfig); err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		if !InCluster() {
			return nil, ErrNoConfig
		}
		if c, err = rest.InClusterConfig(); err != nil {
			return nil, fmt.Errorf("in-cluster configuration: %w", err)
		}
	}
	c.ContentType = runtime.ContentTypeProtobuf
	c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return c, nil
}

// tokenFile is where the kubelet mounts a pod's service account token.
var tokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// InCluster tells whether the process runs in a pod with a service
// account: KUBERNETES_SERVICE_HOST is set and the token is mounted.
func InCluster() bool {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" || os.Getenv("KUBERNETES_SERVICE_PORT") == "" {
		return false
	}
	_, err := os.Stat(tokenFile)
	return err == nil
}

// TLSSecrets is the field selector of Secrets of type kubernetes.io/tls,
// the only ones an ingress controller reads.
var TLSSecrets = fields.OneTermEqualSelector("type", string(corev1.SecretTypeTLS)).String()

// Config configures New.
type Config struct {
	// REST is the client configuration (RESTConfig finds it).
	REST *rest.Config
	// Kinds are the kinds to watch; each gets one informer.
	Kinds []*cluster.Kind
	// FieldSelectors and LabelSelectors narrow what the server sends of
	// a kind, cutting memory: Secrets of type kubernetes.io/tls only for
	// an ingress controller (TLSSecrets), kube-proxy's own Node only.
	FieldSelectors map[*cluster.Kind]string
	LabelSelectors map[*cluster.Kind]string
	// Transforms trim objects of a kind before the informer caches them
	// (client-go's SharedInformer.SetTransform): the same functions a
	// component installs with cluster.Store.SetTransform. managedFields
	// are always dropped.
	Transforms map[*cluster.Kind]cluster.TransformFunc
	// StatusKinds are kinds whose status the component writes into the
	// store (Ingress); a status that differs from the server's is written
	// to the server's status subresource.
	StatusKinds []*cluster.Kind
	// Events writes the Events the component records into the store
	// (cluster.Recorder) to the server.
	Events bool
	// LeaderOnly writes status and Events only while SetLeader(true)
	// (a replica that holds the leader election Lease); false writes
	// always. What is recorded meanwhile is not written: a follower's
	// Events are dropped and its status is written when it leads.
	LeaderOnly bool
	// Resync is the informers' resync period (0: none).
	Resync time.Duration
	Logger *slog.Logger
}

// Source mirrors API server objects into a store.
type Source struct {
	cfg    Config
	store  *cluster.Store
	log    *slog.Logger
	client kubernetes.Interface
	dyn    dynamic.Interface

	factories []informers.SharedInformerFactory
	informers map[*cluster.Kind]cache.SharedIndexInformer
	synced    []cache.InformerSynced

	status workqueue.TypedRateLimitingInterface[statusKey]
	events workqueue.TypedRateLimitingInterface[string]

	mu      sync.Mutex
	started bool

	leading atomic.Bool // writes status and Events
}

type statusKey struct {
	kind *cluster.Kind
	key  string
}

// New prepares a source writing into store; Run starts it.
func New(store *cluster.Store, cfg Config) (*Source, error) {
	if cfg.REST == nil {
		return nil, errors.New("kubesource: no client configuration")
	}
	if len(cfg.Kinds) == 0 {
		return nil, errors.New("kubesource: no kinds to watch")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	rc := rest.CopyConfig(cfg.REST)
	if rc.UserAgent == "" {
		rc.UserAgent = rest.DefaultKubernetesUserAgent() + " switchboard"
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, store: store, log: log, client: client, dyn: dyn, informers: map[*cluster.Kind]cache.SharedIndexInformer{}}
	s.leading.Store(!cfg.LeaderOnly)
	all := informers.NewSharedInformerFactory(client, cfg.Resync)
	s.factories = append(s.factories, all)
	for _, k := range cfg.Kinds {
		if _, dup := s.informers[k]; dup {
			continue
		}
		f := all
		if fs, ls := cfg.FieldSelectors[k], cfg.LabelSelectors[k]; fs != "" || ls != "" {
			// One factory per narrowed kind: a factory's list options
			// apply to every informer it makes.
			f = informers.NewSharedInformerFactoryWithOptions(client, cfg.Resync, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector, o.LabelSelector = fs, ls
			}))
			s.factories = append(s.factories, f)
		}
		gi, err := f.ForResource(k.GVK.GroupVersion().WithResource(k.Resource))
		if err != nil {
			return nil, fmt.Errorf("kubesource: %s: %w", k.Name(), err)
		}
		inf := gi.Informer()
		if err := inf.SetTransform(s.transform(k)); err != nil {
			return nil, fmt.Errorf("kubesource: %s: %w", k.Name(), err)
		}
		reg, err := inf.AddEventHandler(s.mirrorHandler(k))
		if err != nil {
			return nil, fmt.Errorf("kubesource: %s: %w", k.Name(), err)
		}
		s.informers[k] = inf
		s.synced = append(s.synced, inf.HasSynced, reg.HasSynced)
	}
	return s, nil
}

// SetLeader turns the write-back on (the replica leads) or off (it
// follows) when Config.LeaderOnly is set. On taking the lead every status
// of Config.StatusKinds is compared with the server's again and written
// where it differs.
func (s *Source) SetLeader(on bool) {
	if !s.cfg.LeaderOnly || s.leading.Swap(on) == on || !on {
		return
	}
	s.mu.Lock()
	q := s.status
	s.mu.Unlock()
	if q == nil {
		return
	}
	for _, k := range s.cfg.StatusKinds {
		objs, _ := s.store.List(k, "", nil)
		for _, o := range objs {
			q.Add(statusKey{k, cluster.KeyOf(o)})
		}
	}
}

// Leading tells whether the source writes status and Events now.
func (s *Source) Leading() bool { return s.leading.Load() }

// Client is the source's clientset (for writes the source does not make).
func (s *Source) Client() kubernetes.Interface { return s.client }

// transform drops managedFields (never read, often the largest part of an
// object) and applies the kind's configured trim.
func (s *Source) transform(k *cluster.Kind) cache.TransformFunc {
	trim := s.cfg.Transforms[k]
	return func(obj any) (any, error) {
		o, ok := obj.(cluster.Object)
		if !ok {
			return obj, nil // DeletedFinalStateUnknown and the like
		}
		o.SetManagedFields(nil)
		if trim != nil {
			trim(o)
		}
		return o, nil
	}
}

func (s *Source) mirrorHandler(k *cluster.Kind) cache.ResourceEventHandler {
	put := func(obj any) {
		o, ok := obj.(cluster.Object)
		if !ok {
			return
		}
		if _, _, err := s.store.Mirror(o); err != nil {
			s.log.Error("cannot mirror an object into the store", "kind", k.Name(), "object", cluster.KeyOf(o), "err", err)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { put(obj) },
		UpdateFunc: func(_, obj any) { put(obj) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			o, ok := obj.(cluster.Object)
			if !ok {
				return
			}
			if err := s.store.Unmirror(k, o.GetNamespace(), o.GetName()); err != nil && !apierrors.IsNotFound(err) {
				s.log.Error("cannot remove an object from the store", "kind", k.Name(), "object", cluster.KeyOf(o), "err", err)
			}
		},
	}
}

// HasSynced is true once every informer has listed its kind and the
// store holds what was listed (a component's /readyz waits for it).
func (s *Source) HasSynced() bool {
	for _, f := range s.synced {
		if !f() {
			return false
		}
	}
	return true
}

// WaitForSync blocks until HasSynced or ctx is done.
func (s *Source) WaitForSync(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), s.synced...) {
		return fmt.Errorf("kubesource: caches not synced: %w", context.Cause(ctx))
	}
	return nil
}

// Start starts the informers and the write-back workers in the
// background; they stop when ctx is done.
func (s *Source) Start(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	for _, f := range s.factories {
		f.Start(ctx.Done())
	}
	for _, k := range s.cfg.StatusKinds {
		if s.informers[k] == nil {
			s.log.Warn("status write-back asked for a kind that is not watched", "kind", k.Name())
			continue
		}
		if s.status == nil {
			s.status = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[statusKey](),
				workqueue.TypedRateLimitingQueueConfig[statusKey]{Name: "kubesource-status"})
		}
		k := k
		enqueue := func(obj any) {
			if o, ok := obj.(cluster.Object); ok {
				s.status.Add(statusKey{k, cluster.KeyOf(o)})
			}
		}
		sub := s.store.Subscribe(k, cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
		}, 0)
		go func() { <-ctx.Done(); sub.Stop() }()
	}
	if s.status != nil {
		go func() { <-ctx.Done(); s.status.ShutDown() }()
		go s.statusWorker(ctx)
	}
	if s.cfg.Events {
		s.events = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "kubesource-events"})
		enqueue := func(obj any) {
			if o, ok := obj.(cluster.Object); ok {
				s.events.Add(cluster.KeyOf(o))
			}
		}
		sub := s.store.Subscribe(cluster.KindEvent, cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
		}, 0)
		go func() { <-ctx.Done(); sub.Stop(); s.events.ShutDown() }()
		go s.eventWorker(ctx)
	}
}

// Open builds a store for one component, lets prepare install its
// transforms (cluster.Store.SetTransform) before anything is written,
// starts a source filling it from the API server and waits until it has
// synced (or ctx is done). The source runs until ctx is done.
func Open(ctx context.Context, cfg Config, prepare func(*cluster.Store)) (*cluster.Store, *Source, error) {
	store, src, err := Begin(ctx, cfg, prepare)
	if err != nil {
		return nil, nil, err
	}
	if err := src.WaitForSync(ctx); err != nil {
		return nil, nil, err
	}
	src.log.Info("caches synced", "server", cfg.REST.Host)
	return store, src, nil
}

// Begin is Open without the wait: the store fills while the caller goes
// on (a DNS server answers, and its readiness says it has not synced);
// Synced tells when it has.
func Begin(ctx context.Context, cfg Config, prepare func(*cluster.Store)) (*cluster.Store, *Source, error) {
	store := cluster.NewStore()
	if prepare != nil {
		prepare(store)
	}
	src, err := New(store, cfg)
	if err != nil {
		return nil, nil, err
	}
	src.log.Info("listing from the API server", "server", cfg.REST.Host, "kinds", kindNames(cfg.Kinds))
	src.Start(ctx)
	go func() { <-ctx.Done(); src.shutdown() }()
	return store, src, nil
}

// Synced is closed once the source has synced (HasSynced); it stays open
// if ctx ends first.
func (s *Source) Synced(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		if s.WaitForSync(ctx) == nil {
			s.log.Info("caches synced")
			close(ch)
		}
	}()
	return ch
}

func kindNames(ks []*cluster.Kind) string {
	var b []byte
	for i, k := range ks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k.Resource...)
	}
	return string(b)
}

func (s *Source) shutdown() {
	for _, f := range s.factories {
		f.Shutdown()
	}
}

// Run starts the source and blocks until ctx is done.
func (s *Source) Run(ctx context.Context) error {
	s.Start(ctx)
	<-ctx.Done()
	s.shutdown()
	return ctx.Err()
}

func (s *Source) statusWorker(ctx context.Context) {
	for {
		key, quit := s.status.Get()
		if quit {
			return
		}
		var err error
		if s.leading.Load() {
			err = s.syncStatus(ctx, key)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("cannot write status to the API server; retrying", "kind", key.kind.Name(), "object", key.key, "err", err)
			s.status.AddRateLimited(key)
		} else {
			s.status.Forget(key)
		}
		s.status.Done(key)
	}
}

// statusOf returns the Status field of an object.
func statusOf(o cluster.Object) (any, bool) {
	v := reflect.ValueOf(o).Elem().FieldByName("Status")
	if !v.IsValid() {
		return nil, false
	}
	return v.Interface(), true
}

// syncStatus writes the store's status of one object to the server when
// it differs from the server's (the informer's cached object): a merge
// patch of the status subresource, which touches nothing else.
func (s *Source) syncStatus(ctx context.Context, key statusKey) error {
	k := key.kind
	ns, name, err := cache.SplitMetaNamespaceKey(key.key)
	if err != nil {
		return nil
	}
	local, err := s.store.Get(k, ns, name)
	if err != nil {
		return nil // gone
	}
	serverObj, ok, err := s.informers[k].GetIndexer().GetByKey(key.key)
	if err != nil || !ok {
		return nil // not (yet) on the server as far as we know
	}
	server, ok := serverObj.(cluster.Object)
	if !ok || server.GetUID() != local.GetUID() {
		return nil
	}
	want, ok := statusOf(local)
	if !ok {
		return nil
	}
	have, _ := statusOf(server)
	if apiequality.Semantic.DeepEqual(want, have) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": local.GetUID()},
		"status":   want,
	})
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	gvr := k.GVK.GroupVersion().WithResource(k.Resource)
	_, err = s.dyn.Resource(gvr).Namespace(ns).Patch(cctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "switchboard"}, "status")
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil // deleted, or replaced by another object of the same name
	}
	return err
}

func (s *Source) eventWorker(ctx context.Context) {
	for {
		key, quit := s.events.Get()
		if quit {
			return
		}
		var err error
		if s.leading.Load() {
			err = s.syncEvent(ctx, key)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("cannot write an Event to the API server; retrying", "event", key, "err", err)
			s.events.AddRateLimited(key)
		} else {
			s.events.Forget(key)
		}
		s.events.Done(key)
	}
}

// syncEvent creates the store's Event on the server, or brings the
// server's copy up to date (count, lastTimestamp, message), as client-go's
// event recorder does for a repeated event.
func (s *Source) syncEvent(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	local, err := cluster.Get[*corev1.Event](s.store, ns, name)
	if err != nil {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev := local.DeepCopy()
	ev.ObjectMeta = metav1.ObjectMeta{Name: ev.Name, Namespace: ev.Namespace, Labels: ev.Labels, Annotations: ev.Annotations}
	evs := s.client.CoreV1().Events(ns)
	_, err = evs.Create(cctx, ev, metav1.CreateOptions{FieldManager: "switchboard"})
	if !apierrors.IsAlreadyExists(err) {
		if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) && isTerminatingNS(err) {
			return nil // the namespace is gone or going
		}
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"count": ev.Count, "lastTimestamp": ev.LastTimestamp, "message": ev.Message,
	})
	if err != nil {
		return err
	}
	_, err = evs.Patch(cctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "switchboard"})
	return err
}

func isTerminatingNS(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) && st.Status().Details != nil {
		for _, c := range st.Status().Details.Causes {
			if c.Type == corev1.NamespaceTerminatingCause {
				return true
			}
		}
	}
	return false
}
