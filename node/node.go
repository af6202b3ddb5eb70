package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/node/probe"
	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// Defaults of Config.
const (
	DefaultNodeName            = "node-1"
	DefaultBackoffInitial      = 10 * time.Second  // kubelet's initialCrashLoopBackOff
	DefaultBackoffMax          = 300 * time.Second // kubelet's MaxContainerBackOff
	DefaultBackoffReset        = 10 * time.Minute  // kubelet: "eventTime.Sub(lastUpdate) > 600*time.Second"
	DefaultShutdownGracePeriod = 10 * time.Second

	// KubeletVersion is what the Node reports in status.nodeInfo.
	KubeletVersion = "switchboard"

	// resyncPeriod: every pod worker syncs at least this often, as
	// kubelet's --sync-frequency (default 1m). A worker also syncs on
	// every change of its pod, when a process exits, when a probe result
	// changes and when a back-off or retry it scheduled expires, so the
	// resync is only a safety net.
	resyncPeriod = time.Minute
	// heartbeatPeriod is kubelet's nodeStatusUpdateFrequency.
	heartbeatPeriod = 10 * time.Second
	// minimumGracePeriod is kubelet's minimumGracePeriodInSeconds: "A
	// minimal shutdown window for avoiding unnecessary SIGKILLs".
	minimumGracePeriod = 2 * time.Second
)

// Config configures a Node.
type Config struct {
	Store    *cluster.Store
	NodeName string // default "node-1"
	Sandbox  sandbox.Sandbox
	// StateDir holds container logs under
	// StateDir/pods/<namespace>_<pod>_<uid>/<container>/<restartCount>.log
	// (kubelet's /var/log/pods layout, CRI log format) and the process
	// groups the node started under StateDir/pids/.
	StateDir string
	// Executable runs containers whose command[0] is "switchboard";
	// default os.Executable().
	Executable string
	Recorder   *cluster.Recorder // events; nil records none
	Logger     *slog.Logger      // nil: slog.Default()
	Registerer prometheus.Registerer
	// Restart back-off as kubelet's: the first restart is immediate, then
	// BackoffInitial doubling up to BackoffMax; a container that ran
	// cleanly for BackoffReset starts over. Defaults 10s, 300s, 10m.
	BackoffInitial, BackoffMax, BackoffReset time.Duration
	// ShutdownGracePeriod caps each pod's grace period when the node
	// itself stops (Run's context ends); default 10s.
	ShutdownGracePeriod time.Duration
}

// Node is kubelet-lite: it runs the pods bound to one node name.
type Node struct {
	cfg          Config
	log          *slog.Logger
	backoff      *flowcontrol.Backoff
	metrics      *metrics
	probeMetrics *probe.Metrics

	allocOnce sync.Once
	alloc     corev1.ResourceList

	mu       sync.Mutex
	workers  map[types.UID]*podWorker
	stopping bool
	stopCh   chan struct{}
	wg       sync.WaitGroup // pod workers
	ran      bool
	ready    bool // the node has registered and watches pods
}

// New checks cfg and returns a Node; Run starts it.
func New(cfg Config) (*Node, error) {
	if cfg.Store == nil {
		return nil, errors.New("node: Config.Store is required")
	}
	if cfg.Sandbox == nil {
		return nil, errors.New("node: Config.Sandbox is required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("node: Config.StateDir is required")
	}
	if cfg.NodeName == "" {
		cfg.NodeName = DefaultNodeName
	}
	if cfg.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("node: Config.Executable not set and os.Executable failed: %w", err)
		}
		cfg.Executable = exe
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BackoffInitial <= 0 {
		cfg.BackoffInitial = DefaultBackoffInitial
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = DefaultBackoffMax
	}
	if cfg.BackoffMax < cfg.BackoffInitial {
		cfg.BackoffMax = cfg.BackoffInitial
	}
	if cfg.BackoffReset <= 0 {
		cfg.BackoffReset = DefaultBackoffReset
	}
	if cfg.ShutdownGracePeriod <= 0 {
		cfg.ShutdownGracePeriod = DefaultShutdownGracePeriod
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("node: state dir %q: %w", cfg.StateDir, err)
	}
	cfg.StateDir = abs
	for _, d := range []string{cfg.StateDir, filepath.Join(cfg.StateDir, "pods"), filepath.Join(cfg.StateDir, "pids")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("node: state dir: %w", err)
		}
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.NodeName),
		workers: map[types.UID]*podWorker{},
		stopCh:  make(chan struct{}),
	}
	// kubelet: flowcontrol.NewBackOff(base, boMax) with "HasExpiredFunc =
	// func(eventTime, lastUpdate, maxDuration) bool { return
	// eventTime.Sub(lastUpdate) > 600*time.Second }".
	n.backoff = flowcontrol.NewBackOff(cfg.BackoffInitial, cfg.BackoffMax)
	reset := cfg.BackoffReset
	n.backoff.HasExpiredFunc = func(eventTime, lastUpdate time.Time, _ time.Duration) bool {
		return eventTime.Sub(lastUpdate) > reset
	}
	n.metrics = newMetrics(cfg.Registerer, n)
	n.probeMetrics = probe.NewMetrics(cfg.Registerer)
	return n, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.NodeName }

// Run registers the Node object, runs the pods bound to the node until ctx
// ends, then stops every pod (preStop hooks, SIGTERM, the pod's grace
// period capped by ShutdownGracePeriod, SIGKILL), tears their sandboxes
// down, marks the Node NotReady and returns only when no process it
// started is left. Before anything else it kills the processes a previous
// run on the same StateDir left behind (a crashed node). Run may be called
// once.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.ran {
		n.mu.Unlock()
		return errors.New("node: Run called twice")
	}
	n.ran = true
	n.mu.Unlock()

	if killed := n.killLeftovers(); killed > 0 {
		n.log.Info("killed processes left by a previous run", "processGroups", killed)
	}
	if err := n.register(); err != nil {
		return err
	}

	podSub := n.cfg.Store.Subscribe(cluster.KindPod, cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.onPod(obj.(*corev1.Pod), false) },
		UpdateFunc: func(_, obj any) { n.onPod(obj.(*corev1.Pod), false) },
		DeleteFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				n.onPod(p, true)
			}
		},
	}, 0)
	// A container waiting on a missing ConfigMap or Secret is retried as
	// soon as one changes.
	configChanged := func(any) { n.wakeConfigWaiters() }
	cmSub := n.cfg.Store.Subscribe(cluster.KindConfigMap, cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { configChanged(obj) }, UpdateFunc: func(_, obj any) { configChanged(obj) },
	}, 0)
	secSub := n.cfg.Store.Subscribe(cluster.KindSecret, cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { configChanged(obj) }, UpdateFunc: func(_, obj any) { configChanged(obj) },
	}, 0)
	n.mu.Lock()
	n.ready = true
	n.mu.Unlock()

	hb := time.NewTicker(heartbeatPeriod)
	gc := time.NewTicker(time.Minute)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-hb.C:
			n.heartbeat()
		case <-gc.C:
			n.backoff.GC()
		}
	}
	hb.Stop()
	gc.Stop()
	podSub.Stop()
	cmSub.Stop()
	secSub.Stop()

	n.log.Info("node stopping: stopping every pod", "shutdownGracePeriod", n.cfg.ShutdownGracePeriod)
	n.mu.Lock()
	n.stopping = true
	close(n.stopCh)
	n.mu.Unlock()
	n.wg.Wait()
	n.markNotReady()
	n.log.Info("node stopped")
	return nil
}

// onPod hands a pod to its worker, starting one for a new pod bound here.
func (n *Node) onPod(p *corev1.Pod, deleted bool) {
	if p.Spec.NodeName != n.cfg.NodeName {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	w, ok := n.workers[p.UID]
	if !ok {
		if deleted || n.stopping {
			return
		}
		if p.DeletionTimestamp != nil && (p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed) {
			// Nothing of it runs here; just finish the deletion.
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.finishDeletion(p)
			}()
			return
		}
		w = newPodWorker(n, p)
		n.workers[p.UID] = w
		n.wg.Add(1)
		go w.run()
		return
	}
	w.update(p, deleted)
}

// finishDeletion removes a terminal pod being deleted that no worker runs.
func (n *Node) finishDeletion(p *corev1.Pod) {
	err := n.cfg.Store.Delete(cluster.KindPod, p.Namespace, p.Name, cluster.DeleteOptions{GracePeriodSeconds: ptrInt64(0), UID: p.UID})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		n.log.Warn("deleting pod", "pod", p.Namespace+"/"+p.Name, "err", err)
	}
	_ = os.RemoveAll(n.podLogDir(p.Namespace, p.Name, string(p.UID)))
}

func (n *Node) removeWorker(w *podWorker) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.workers[w.uid] == w {
		delete(n.workers, w.uid)
	}
}

func (n *Node) wakeConfigWaiters() {
	n.mu.Lock()
	ws := make([]*podWorker, 0, len(n.workers))
	for _, w := range n.workers {
		ws = append(ws, w)
	}
	n.mu.Unlock()
	for _, w := range ws {
		w.retryConfigErrors()
	}
}

// workerFor finds the worker of the pod with this namespace and name.
func (n *Node) workerFor(namespace, name string, uid types.UID) *podWorker {
	n.mu.Lock()
	defer n.mu.Unlock()
	if w, ok := n.workers[uid]; ok {
		return w
	}
	return nil
}

func (n *Node) allWorkers() []*podWorker {
	n.mu.Lock()
	defer n.mu.Unlock()
	ws := make([]*podWorker, 0, len(n.workers))
	for _, w := range n.workers {
		ws = append(ws, w)
	}
	return ws
}

func (n *Node) isStopping() bool {
	select {
	case <-n.stopCh:
		return true
	default:
		return false
	}
}

// event records an event about obj if a recorder is configured.
func (n *Node) event(obj cluster.Object, eventType, reason, format string, args ...any) {
	if n.cfg.Recorder == nil {
		return
	}
	n.cfg.Recorder.Eventf(obj, eventType, reason, format, args...)
}

// ---- the Node object ----

func (n *Node) hostIP() string {
	if l, ok := n.cfg.Sandbox.(interface{ HostIP() netip.Addr }); ok {
		return l.HostIP().String()
	}
	return ""
}

func (n *Node) nodeObject() *corev1.Node {
	cidr := n.cfg.Sandbox.PodCIDR()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.cfg.NodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname":       n.cfg.NodeName,
				"kubernetes.io/os":             runtime.GOOS,
				"kubernetes.io/arch":           runtime.GOARCH,
				"node.switchboard.dev/sandbox": n.cfg.Sandbox.Name(),
			},
		},
	}
	if cidr.IsValid() {
		node.Spec.PodCIDR = cidr.String()
		node.Spec.PodCIDRs = []string{cidr.String()}
	}
	return node
}

func (n *Node) nodeStatus(old *corev1.NodeStatus, ready bool) corev1.NodeStatus {
	now := metav1.Now()
	cond := corev1.NodeCondition{
		Type:              corev1.NodeReady,
		Status:            corev1.ConditionTrue,
		Reason:            "KubeletReady",
		Message:           "kubelet is posting ready status",
		LastHeartbeatTime: now,
	}
	if !ready {
		cond.Status = corev1.ConditionFalse
		cond.Reason = "KubeletNotReady"
		cond.Message = "node is shutting down"
	}
	cond.LastTransitionTime = now
	if old != nil {
		for _, c := range old.Conditions {
			if c.Type == corev1.NodeReady && c.Status == cond.Status {
				cond.LastTransitionTime = c.LastTransitionTime
			}
		}
	}
	alloc := n.allocatable()
	st := corev1.NodeStatus{
		Capacity:    alloc.DeepCopy(),
		Allocatable: alloc.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions:  []corev1.NodeCondition{cond},
		NodeInfo: corev1.NodeSystemInfo{
			KubeletVersion:          KubeletVersion,
			ContainerRuntimeVersion: "switchboard://" + n.cfg.Sandbox.Name(),
			OperatingSystem:         runtime.GOOS,
			Architecture:            runtime.GOARCH,
			MachineID:               readTrim("/etc/machine-id"),
			BootID:                  readTrim("/proc/sys/kernel/random/boot_id"),
			KernelVersion:           readTrim("/proc/sys/kernel/osrelease"),
		},
	}
	if ip := n.hostIP(); ip != "" {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.cfg.NodeName})
	return st
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(trimSpace(b))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// register creates or updates the Node object and marks it Ready.
func (n *Node) register() error {
	want := n.nodeObject()
	_, err := n.cfg.Store.Create(want)
	if apierrors.IsAlreadyExists(err) {
		_, err = n.cfg.Store.UpdateFunc(cluster.KindNode, "", n.cfg.NodeName, func(o cluster.Object) error {
			node := o.(*corev1.Node)
			if node.Labels == nil {
				node.Labels = map[string]string{}
			}
			for k, v := range want.Labels {
				node.Labels[k] = v
			}
			node.Spec.PodCIDR, node.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("node: registering Node %q: %w", n.cfg.NodeName, err)
	}
	return n.writeNodeStatus(true)
}

func (n *Node) writeNodeStatus(ready bool) error {
	_, err := n.cfg.Store.UpdateStatusFunc(cluster.KindNode, "", n.cfg.NodeName, func(o cluster.Object) error {
		node := o.(*corev1.Node)
		node.Status = n.nodeStatus(&node.Status, ready)
		return nil
	})
	return err
}

func (n *Node) heartbeat() {
	if err := n.writeNodeStatus(true); err != nil {
		if apierrors.IsNotFound(err) {
			// Someone deleted the Node: register again, as kubelet does.
			err = n.register()
		}
		if err != nil {
			n.log.Warn("node heartbeat", "err", err)
		}
	}
}

func (n *Node) markNotReady() {
	if err := n.writeNodeStatus(false); err != nil && !apierrors.IsNotFound(err) {
		n.log.Warn("marking node not ready", "err", err)
	}
}

func ptrInt64(v int64) *int64 { return &v }
