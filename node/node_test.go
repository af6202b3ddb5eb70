package node

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
)

func TestNodeRegistersItself(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	node, err := cluster.Get[*corev1.Node](h.store, "", "test-node")
	if err != nil {
		t.Fatal(err)
	}
	var ready *corev1.NodeCondition
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			ready = &node.Status.Conditions[i]
		}
	}
	if ready == nil || ready.Status != corev1.ConditionTrue {
		t.Errorf("Ready condition = %+v, want True", ready)
	}
	if node.Spec.PodCIDR != h.sb.PodCIDR().String() {
		t.Errorf("spec.podCIDR = %q, want %q", node.Spec.PodCIDR, h.sb.PodCIDR())
	}
	addrs := map[corev1.NodeAddressType]string{}
	for _, a := range node.Status.Addresses {
		addrs[a.Type] = a.Address
	}
	if addrs[corev1.NodeInternalIP] != h.sb.HostIP().String() || addrs[corev1.NodeHostName] != "test-node" {
		t.Errorf("addresses = %v, want InternalIP %s and Hostname test-node", addrs, h.sb.HostIP())
	}
	if q := node.Status.Capacity[corev1.ResourcePods]; q.Value() != 500 {
		t.Errorf("capacity pods = %s, want 500", q.String())
	}
	if q := node.Status.Allocatable[corev1.ResourcePods]; q.Value() != 500 {
		t.Errorf("allocatable pods = %s, want 500", q.String())
	}
	if node.Status.NodeInfo.KubeletVersion != "switchboard" {
		t.Errorf("kubeletVersion = %q", node.Status.NodeInfo.KubeletVersion)
	}

	// A stopped node reports NotReady.
	h.shutdown()
	node, _ = cluster.Get[*corev1.Node](h.store, "", "test-node")
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status != corev1.ConditionFalse {
			t.Errorf("after stop: Ready = %s, want False", c.Status)
		}
	}
}

func TestPodsRunWithDistinctIPs(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	const port = 18080
	names := []string{"web-a", "web-b", "web-c"}
	for _, name := range names {
		h.createPod(&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: ptrInt64(2),
				Containers:                    []corev1.Container{helperContainer("web", port)},
			},
		})
	}
	seen := map[string]string{}
	for _, name := range names {
		p := h.waitPod(name, 10*time.Second, "Ready", func(p *corev1.Pod) bool {
			return condition(p, corev1.PodReady).Status == corev1.ConditionTrue
		})
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !h.sb.PodCIDR().Contains(ip) {
			t.Fatalf("pod %s: podIP %q not in %s", name, p.Status.PodIP, h.sb.PodCIDR())
		}
		if other, dup := seen[p.Status.PodIP]; dup {
			t.Fatalf("pods %s and %s share IP %s", other, name, p.Status.PodIP)
		}
		seen[p.Status.PodIP] = name
		if p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s phase %s, want Running", name, p.Status.Phase)
		}
		if p.Status.HostIP != h.sb.HostIP().String() || len(p.Status.PodIPs) != 1 || p.Status.StartTime == nil {
			t.Errorf("pod %s: hostIP %q podIPs %v startTime %v", name, p.Status.HostIP, p.Status.PodIPs, p.Status.StartTime)
		}
		cs := containerStatus(p, "web")
		if want := fmt.Sprintf("switchboard://%s/web/0", p.UID); cs.ContainerID != want {
			t.Errorf("containerID %q, want %q", cs.ContainerID, want)
		}
		if cs.Started == nil || !*cs.Started || !cs.Ready || cs.Image != "switchboard" {
			t.Errorf("container status %+v: want started, ready, image from spec", cs)
		}
		// Every pod answers on its own address, same port.
		var body string
		h.eventually(5*time.Second, "pod answers", func() bool {
			code, b, err := httpGet(fmt.Sprintf("http://%s:%d/", p.Status.PodIP, port))
			body = b
			return err == nil && code == 200
		})
		if body != name {
			t.Errorf("http://%s:%d/ answered %q, want the pod's name %q", p.Status.PodIP, port, body, name)
		}
		// kubelet's conditions, all True for a running ready pod.
		for _, ct := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady, corev1.PodScheduled} {
			if c := condition(p, ct); c.Status != corev1.ConditionTrue || c.LastTransitionTime.IsZero() {
				t.Errorf("pod %s condition %s = %+v, want True with a lastTransitionTime", name, ct, c)
			}
		}
		if !hasEvent(h, p, "Created", "Created container web") || !hasEvent(h, p, "Started", "Started container web") {
			t.Errorf("pod %s events %v: want Created and Started", name, events(h, p))
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *Config) { c.Registerer = reg }).start()
	h.createPod(shPod("m", "exec sleep 60"))
	h.waitPod("m", 10*time.Second, "running", running("c"))
	h.eventually(5*time.Second, "pod start duration observed", func() bool {
		n, _ := testutil.GatherAndCount(reg, "kubelet_pod_start_duration_seconds")
		return n == 1
	})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP kubelet_running_pods Number of pods that have a running pod sandbox
# TYPE kubelet_running_pods gauge
kubelet_running_pods 1
# HELP kubelet_started_containers_total Cumulative number of containers started
# TYPE kubelet_started_containers_total counter
kubelet_started_containers_total{container_type="container"} 1
`), "kubelet_running_pods", "kubelet_started_containers_total"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(h.node.metrics.startedPods); v != 1 {
		t.Errorf("kubelet_started_pods_total = %v, want 1", v)
	}
}
