package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	// Cases from the Kubernetes API reference for command, args and env
	// values: "Variable references $(VAR_NAME) are expanded using the
	// container's environment. If a variable cannot be resolved, the
	// reference in the input string will be unchanged. Double $$ are
	// reduced to a single $, which allows for escaping the $(VAR_NAME)
	// syntax: i.e. "$$(VAR_NAME)" will produce the string literal
	// "$(VAR_NAME)". Escaped references will never be expanded,
	// regardless of whether the variable exists or not."
	vars := map[string]string{"VAR_A": "A", "VAR_B": "B", "EMPTY": ""}
	for _, tc := range []struct{ in, want string }{
		{"$(VAR_A)", "A"},
		{"___$(VAR_A)___", "___A___"},
		{"$(VAR_A)-$(VAR_B)", "A-B"},
		{"$(VAR_DOES_NOT_EXIST)", "$(VAR_DOES_NOT_EXIST)"},
		{"$$(VAR_A)", "$(VAR_A)"},
		{"$$$(VAR_A)", "$A"},
		{"$$$$(VAR_A)", "$$(VAR_A)"},
		{"$$", "$"},
		{"$", "$"},
		{"$VAR_A", "$VAR_A"},
		{"$(VAR_A", "$(VAR_A"},
		{"$()", "$()"},
		{"$(EMPTY)x", "x"},
		{"echo pid=$$", "echo pid=$"},
		{"no refs", "no refs"},
		{"$(VAR_A)$(VAR_A)", "AA"},
		{"trailing $", "trailing $"},
	} {
		if got := expand(tc.in, mappingFor(vars)); got != tc.want {
			t.Errorf("expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEnvFromService(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "redis-primary.v2"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.11", Ports: []corev1.ServicePort{
			{Port: 6379},
			{Name: "metrics-port", Port: 9121, Protocol: corev1.ProtocolUDP},
		}},
	}
	got := map[string]string{}
	for _, e := range envFromService(svc) {
		got[e.Name] = e.Value
	}
	// The names of the Kubernetes docs' "Discovering services":
	// {SVCNAME}_SERVICE_HOST, {SVCNAME}_SERVICE_PORT, "the service name is
	// upper-cased and dashes are converted to underscores", plus the
	// Docker link variables.
	want := map[string]string{
		"REDIS_PRIMARY_V2_SERVICE_HOST":              "10.0.0.11",
		"REDIS_PRIMARY_V2_SERVICE_PORT":              "6379",
		"REDIS_PRIMARY_V2_SERVICE_PORT_METRICS_PORT": "9121",
		"REDIS_PRIMARY_V2_PORT":                      "tcp://10.0.0.11:6379",
		"REDIS_PRIMARY_V2_PORT_6379_TCP":             "tcp://10.0.0.11:6379",
		"REDIS_PRIMARY_V2_PORT_6379_TCP_PROTO":       "tcp",
		"REDIS_PRIMARY_V2_PORT_6379_TCP_PORT":        "6379",
		"REDIS_PRIMARY_V2_PORT_6379_TCP_ADDR":        "10.0.0.11",
		"REDIS_PRIMARY_V2_PORT_9121_UDP":             "udp://10.0.0.11:9121",
		"REDIS_PRIMARY_V2_PORT_9121_UDP_PROTO":       "udp",
		"REDIS_PRIMARY_V2_PORT_9121_UDP_PORT":        "9121",
		"REDIS_PRIMARY_V2_PORT_9121_UDP_ADDR":        "10.0.0.11",
	}
	if len(got) != len(want) {
		t.Errorf("got %d variables, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if envVarName("9lives") != "_9LIVES" {
		t.Errorf("a leading digit gets an underscore: %q", envVarName("9lives"))
	}
}

func TestPodFieldValue(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u-1",
			Labels:      map[string]string{"b": "2", "a": "1"},
			Annotations: map[string]string{"x": `say "hi"`}},
		Spec: corev1.PodSpec{NodeName: "n1", ServiceAccountName: "sa", RestartPolicy: corev1.RestartPolicyAlways},
	}
	net := podNetInfo{}
	for _, tc := range []struct{ path, want, err string }{
		{"metadata.name", "p", ""},
		{"metadata.namespace", "ns", ""},
		{"metadata.uid", "u-1", ""},
		{"metadata.labels['a']", "1", ""},
		{"metadata.labels['missing']", "", ""},
		{"metadata.labels", "a=\"1\"\nb=\"2\"", ""},
		{"metadata.annotations", `x="say \"hi\""`, ""},
		{"spec.nodeName", "n1", ""},
		{"spec.serviceAccountName", "sa", ""},
		{"spec.terminationGracePeriodSeconds", "30", ""},
		{"status.podIP", "", ""},
		{"spec.containers[0].image", "", "field label not supported: spec.containers[0].image"},
	} {
		got, err := podFieldValue(&corev1.ObjectFieldSelector{FieldPath: tc.path}, pod, net)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: err %v, want %q", tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
}

func TestResourceFieldValue(t *testing.T) {
	n := &Node{}
	c := &corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
	}}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{*c, {Name: "other"}}}}
	for _, tc := range []struct {
		res, divisor, container, want string
	}{
		// "the value is rounded up": 1.5 CPUs with divisor 1 is 2.
		{"limits.cpu", "", "", "2"},
		{"limits.cpu", "1m", "", "1500"},
		{"requests.cpu", "1m", "", "100"},
		{"limits.memory", "", "", "134217728"},
		{"limits.memory", "1Mi", "", "128"},
		{"requests.memory", "", "", "0"},
	} {
		fs := &corev1.ResourceFieldSelector{Resource: tc.res, ContainerName: tc.container}
		if tc.divisor != "" {
			fs.Divisor = resource.MustParse(tc.divisor)
		}
		got, err := n.resourceFieldValue(fs, pod, c)
		if err != nil || got != tc.want {
			t.Errorf("%s / %s = %q %v, want %q", tc.res, tc.divisor, got, err, tc.want)
		}
	}
	// Without a limit the node's allocatable is the limit.
	got, err := n.resourceFieldValue(&corev1.ResourceFieldSelector{Resource: "limits.cpu", ContainerName: "other"}, pod, c)
	if err != nil || got == "0" || got == "" {
		t.Errorf("limits.cpu without a limit = %q %v, want the node's CPUs", got, err)
	}
	if _, err := n.resourceFieldValue(&corev1.ResourceFieldSelector{Resource: "limits.gpu"}, pod, c); err == nil {
		t.Error("an unsupported resource is an error")
	}
}

func cs(name string, st corev1.ContainerState) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: st}
}

var (
	stRunning = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	stWaiting = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	stOK      = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}
	stFail    = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
)

func TestGetPhase(t *testing.T) {
	two := func(policy corev1.RestartPolicy) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
	}
	withInit := func(policy corev1.RestartPolicy) *corev1.Pod {
		p := two(policy)
		p.Spec.InitContainers = []corev1.Container{{Name: "i"}}
		return p
	}
	crashLoop := corev1.ContainerStatus{Name: "b", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: stFail}
	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		statuses []corev1.ContainerStatus
		terminal bool
		want     corev1.PodPhase
	}{
		{"all running", two(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("a", stRunning), cs("b", stRunning)}, false, corev1.PodRunning},
		{"one waiting", two(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("a", stRunning), cs("b", stWaiting)}, false, corev1.PodPending},
		{"unknown container", two(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("a", stRunning)}, false, corev1.PodPending},
		{"crash loop counts as stopped", two(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("a", stRunning), crashLoop}, false, corev1.PodRunning},
		{"Always, all stopped: restarting", two(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("a", stOK), cs("b", stFail)}, false, corev1.PodRunning},
		{"Never, all succeeded", two(corev1.RestartPolicyNever), []corev1.ContainerStatus{cs("a", stOK), cs("b", stOK)}, false, corev1.PodSucceeded},
		{"Never, one failed", two(corev1.RestartPolicyNever), []corev1.ContainerStatus{cs("a", stOK), cs("b", stFail)}, false, corev1.PodFailed},
		{"OnFailure, one failed: restarting", two(corev1.RestartPolicyOnFailure), []corev1.ContainerStatus{cs("a", stOK), cs("b", stFail)}, false, corev1.PodRunning},
		{"OnFailure, all succeeded", two(corev1.RestartPolicyOnFailure), []corev1.ContainerStatus{cs("a", stOK), cs("b", stOK)}, false, corev1.PodSucceeded},
		{"terminal pod, Always, all succeeded", two(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("a", stOK), cs("b", stOK)}, true, corev1.PodSucceeded},
		{"terminal pod, Always, one failed", two(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("a", stOK), cs("b", stFail)}, true, corev1.PodFailed},
		{"init running", withInit(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("i", stRunning), cs("a", stWaiting), cs("b", stWaiting)}, false, corev1.PodPending},
		{"init failed, Never", withInit(corev1.RestartPolicyNever), []corev1.ContainerStatus{cs("i", stFail), cs("a", stWaiting), cs("b", stWaiting)}, false, corev1.PodFailed},
		{"init failed, OnFailure", withInit(corev1.RestartPolicyOnFailure), []corev1.ContainerStatus{cs("i", stFail), cs("a", stWaiting), cs("b", stWaiting)}, false, corev1.PodPending},
		{"init done", withInit(corev1.RestartPolicyAlways), []corev1.ContainerStatus{cs("i", stOK), cs("a", stRunning), cs("b", stRunning)}, false, corev1.PodRunning},
	} {
		if got := getPhase(tc.pod, tc.statuses, tc.terminal); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestGeneratePodStatusConditions(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Generation: 3},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}},
	}
	custom := corev1.PodCondition{Type: "example.com/custom", Status: corev1.ConditionTrue}
	pod.Status.Conditions = []corev1.PodCondition{custom}
	snap := &podSnapshot{sandboxUp: true, regular: []corev1.ContainerStatus{
		{Name: "a", State: stRunning, Ready: true},
		{Name: "b", State: stRunning, Ready: false},
	}}
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	st := generatePodStatus(pod, snap, false, t0)
	if st.Phase != corev1.PodRunning || st.ObservedGeneration != 3 || st.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("phase %s observedGeneration %d qos %s", st.Phase, st.ObservedGeneration, st.QOSClass)
	}
	got := map[corev1.PodConditionType]corev1.PodCondition{}
	var order []string
	for _, c := range st.Conditions {
		got[c.Type] = c
		order = append(order, string(c.Type))
	}
	// kubelet keeps conditions it does not own and appends its own in
	// this order.
	if strings.Join(order, ",") != "example.com/custom,PodReadyToStartContainers,Initialized,Ready,ContainersReady,PodScheduled" {
		t.Errorf("conditions order %v", order)
	}
	if c := got[corev1.PodReady]; c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotReady" || c.Message != "containers with unready status: [b]" {
		t.Errorf("Ready = %+v", c)
	}
	if got["example.com/custom"].LastTransitionTime != custom.LastTransitionTime {
		t.Errorf("a foreign condition was changed")
	}
	// lastTransitionTime moves only when a condition's status changes.
	pod.Status = st
	snap.regular[1].Ready = true
	t1 := t0.Add(time.Minute)
	st2 := generatePodStatus(pod, snap, false, t1)
	for _, c := range st2.Conditions {
		switch c.Type {
		case corev1.PodReady, corev1.ContainersReady:
			if !c.LastTransitionTime.Time.Equal(t1) || c.Status != corev1.ConditionTrue {
				t.Errorf("%s = %+v, want True since t1", c.Type, c)
			}
		case corev1.PodScheduled, corev1.PodInitialized, corev1.PodReadyToStartContainers:
			if !c.LastTransitionTime.Time.Equal(t0) {
				t.Errorf("%s moved its lastTransitionTime without a change", c.Type)
			}
		}
	}
	// A terminal phase is never left.
	pod.Status.Phase = corev1.PodSucceeded
	if st3 := generatePodStatus(pod, snap, false, t1); st3.Phase != corev1.PodSucceeded {
		t.Errorf("phase left Succeeded for %s", st3.Phase)
	}
}

func TestQOSClass(t *testing.T) {
	res := func(req, lim string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{}
		if req != "" {
			r.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(req), corev1.ResourceMemory: resource.MustParse(req + "Mi")}
		}
		if lim != "" {
			r.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(lim), corev1.ResourceMemory: resource.MustParse(lim + "Mi")}
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    corev1.ResourceRequirements
		want corev1.PodQOSClass
	}{
		{"nothing", res("", ""), corev1.PodQOSBestEffort},
		{"limits only (requests default to them)", res("", "1"), corev1.PodQOSGuaranteed},
		{"equal", res("1", "1"), corev1.PodQOSGuaranteed},
		{"requests below limits", res("1", "2"), corev1.PodQOSBurstable},
		{"requests only", res("1", ""), corev1.PodQOSBurstable},
	} {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: tc.r}}}}
		if got := qosClass(p); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestContainerIDRoundTrip(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "abc-123"}}
	id := containerID(pod, "web", 7)
	if id != "switchboard://abc-123/web/7" {
		t.Errorf("id %q", id)
	}
	uid, name, r, ok := parseContainerID(id)
	if !ok || uid != "abc-123" || name != "web" || r != 7 {
		t.Errorf("parse %q = %s %s %d %v", id, uid, name, r, ok)
	}
	for _, bad := range []string{"", "docker://x", "switchboard://a/b", "switchboard://a/b/-1", "switchboard://a/b/x"} {
		if _, _, _, ok := parseContainerID(bad); ok {
			t.Errorf("parse %q succeeded", bad)
		}
	}
}

func TestResolveCommand(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: Config{Executable: "/opt/switchboard"}}
	for _, tc := range []struct{ argv0, path, dir, want, err string }{
		{"switchboard", "", "", "/opt/switchboard", ""},
		{"tool", "/nonexistent:" + dir, "", exe, ""},
		{"tool", "/nonexistent", "", "", `exec: "tool": executable file not found in $PATH`},
		{exe, "", "", exe, ""},
		{"./tool", "", dir, "./tool", ""},
		{plain, "", "", "", "permission denied"},
		{"/no/such/file", "", "", "", "no such file or directory"},
	} {
		got, err := n.resolveCommand(tc.argv0, tc.path, tc.dir)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.argv0, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.argv0, got, err, tc.want)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil || !strings.Contains(err.Error(), "Store") {
		t.Errorf("New without a store: %v", err)
	}
	h := newHarness(t)
	if h.node.cfg.NodeName != "test-node" || h.node.cfg.BackoffReset != DefaultBackoffReset {
		t.Errorf("defaults not applied: %+v", h.node.cfg)
	}
	cfg := h.node.cfg
	cfg.NodeName = ""
	cfg.Registerer = nil
	n, err := New(cfg)
	if err != nil || n.Name() != DefaultNodeName {
		t.Errorf("default node name: %v %v", n, err)
	}
}
