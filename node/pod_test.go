package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

// envOf parses `env` output from a log.
func envOf(log string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(log, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func TestEnvironment(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	mustCreate := func(o cluster.Object) {
		if _, err := h.store.Create(o); err != nil {
			t.Fatal(err)
		}
	}
	mustCreate(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg", Namespace: "default"}, Data: map[string]string{"MODE": "fast", "LEVEL": "3"}})
	mustCreate(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "default"}, Data: map[string][]byte{"TOKEN": []byte("s3cret")}})
	mustCreate(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "my-db", Namespace: "default"}, Spec: corev1.ServiceSpec{
		ClusterIP: "10.96.0.20",
		Ports:     []corev1.ServicePort{{Name: "sql", Port: 5432, Protocol: corev1.ProtocolTCP}, {Name: "metrics", Port: 9187}},
	}})
	mustCreate(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "default"}, Spec: corev1.ServiceSpec{
		ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Port: 80}},
	}})
	mustCreate(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "other"}, Spec: corev1.ServiceSpec{
		ClusterIP: "10.96.0.30", Ports: []corev1.ServicePort{{Port: 80}},
	}})

	p := h.createPod(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "env", Labels: map[string]string{"app": "env"}, Annotations: map[string]string{"note": "hi"}},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: "robot",
			Containers: []corev1.Container{{
				Name:    "c",
				Image:   "busybox",
				Command: []string{"sh", "-c", "env; echo ARGS $0 $1 $2 $3"},
				Args:    []string{"$(GREETING)", "$$(GREETING)", "$(UNKNOWN)", "$(SWITCHBOARD_POD_NAME)"},
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
				},
				EnvFrom: []corev1.EnvFromSource{
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}, Prefix: "CFG_"},
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr.To(true)}},
				},
				Env: []corev1.EnvVar{
					{Name: "GREETING", Value: "hello"},
					{Name: "EXPANDED", Value: "$(GREETING) world on $(MY_DB_SERVICE_HOST)"},
					{Name: "ESCAPED", Value: "$$(GREETING)"},
					{Name: "UNKNOWN_REF", Value: "$(NOPE)"},
					{Name: "CFG_LEVEL", Value: "override"}, // env overrides envFrom
					{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
					{Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
					{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
					{Name: "NOTE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['note']"}}},
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
					{Name: "SA", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.serviceAccountName"}}},
					{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
					{Name: "POD_IPS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIPs"}}},
					{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
					{Name: "HOST_IPS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIPs"}}},
					{Name: "MEM_LIMIT_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
					{Name: "CPU_REQUEST_M", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
					{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "MODE"}}},
					{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "TOKEN"}}},
					{Name: "OPTIONAL_MISSING", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}, Key: "NOPE", Optional: ptr.To(true)}}},
				},
			}},
		},
	})
	p = h.waitPod("env", 10*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	log := h.logs("env", LogOptions{})
	env := envOf(log)
	want := map[string]string{
		"GREETING":                   "hello",
		"EXPANDED":                   "hello world on 10.96.0.20", // "$(VAR_NAME)" expands from earlier variables and service variables
		"ESCAPED":                    "$(GREETING)",               // "$$(VAR_NAME)" is escaped
		"UNKNOWN_REF":                "$(NOPE)",                   // "If a variable cannot be resolved, the reference in the input string will be unchanged"
		"CFG_MODE":                   "fast",                      // envFrom with prefix
		"CFG_LEVEL":                  "override",                  // "Env will override EnvFrom variables"
		"TOKEN":                      "s3cret",
		"POD_NAME":                   "env",
		"POD_NAMESPACE":              "default",
		"POD_UID":                    string(p.UID),
		"APP":                        "env",
		"NOTE":                       "hi",
		"NODE":                       "test-node",
		"SA":                         "robot",
		"POD_IP":                     p.Status.PodIP,
		"POD_IPS":                    p.Status.PodIP,
		"HOST_IP":                    h.sb.HostIP().String(),
		"HOST_IPS":                   h.sb.HostIP().String(),
		"MEM_LIMIT_MI":               "64",
		"CPU_REQUEST_M":              "250",
		"MODE":                       "fast",
		"SECRET":                     "s3cret",
		"HOSTNAME":                   "env",
		"PATH":                       os.Getenv("PATH"),
		EnvPodIP:                     p.Status.PodIP,
		EnvPodName:                   "env",
		EnvPodNamespace:              "default",
		EnvNodeName:                  "test-node",
		"MY_DB_SERVICE_HOST":         "10.96.0.20",
		"MY_DB_SERVICE_PORT":         "5432",
		"MY_DB_SERVICE_PORT_SQL":     "5432",
		"MY_DB_SERVICE_PORT_METRICS": "9187",
		"MY_DB_PORT":                 "tcp://10.96.0.20:5432",
		"MY_DB_PORT_5432_TCP":        "tcp://10.96.0.20:5432",
		"MY_DB_PORT_5432_TCP_PROTO":  "tcp",
		"MY_DB_PORT_5432_TCP_PORT":   "5432",
		"MY_DB_PORT_5432_TCP_ADDR":   "10.96.0.20",
		"MY_DB_PORT_9187_TCP_ADDR":   "10.96.0.20",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"OPTIONAL_MISSING", "HEADLESS_SERVICE_HOST", "ELSEWHERE_SERVICE_HOST"} {
		if _, ok := env[k]; ok {
			t.Errorf("env %s is set, want it absent", k)
		}
	}
	// "Variable references $(VAR_NAME) are expanded using the container's
	// environment" in command and args too.
	if !strings.Contains(log, "ARGS hello $(GREETING) $(UNKNOWN) env\n") {
		t.Errorf("args not expanded as Kubernetes does; log:\n%s", log)
	}
}

func TestEnableServiceLinksFalse(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "https", Port: 443}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.9", Ports: []corev1.ServicePort{{Port: 80}}}},
	} {
		if _, err := h.store.Create(s); err != nil {
			t.Fatal(err)
		}
	}
	p := shPod("nolinks", "env")
	p.Spec.RestartPolicy = corev1.RestartPolicyNever
	p.Spec.EnableServiceLinks = ptr.To(false)
	h.createPod(p)
	h.waitPod("nolinks", 10*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	env := envOf(h.logs("nolinks", LogOptions{}))
	// "We always want to add environment variables for master services
	// from the default namespace, even if enableServiceLinks is false."
	if env["KUBERNETES_SERVICE_HOST"] != "10.96.0.1" || env["KUBERNETES_SERVICE_PORT"] != "443" {
		t.Errorf("KUBERNETES_SERVICE_HOST/PORT = %q/%q, want 10.96.0.1/443", env["KUBERNETES_SERVICE_HOST"], env["KUBERNETES_SERVICE_PORT"])
	}
	if _, ok := env["WEB_SERVICE_HOST"]; ok {
		t.Error("WEB_SERVICE_HOST set although enableServiceLinks is false")
	}
}

func TestCreateContainerConfigError(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	p := shPod("cfgerr", "echo mode=$MODE; exec sleep 60")
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "MODE", ValueFrom: &corev1.EnvVarSource{
		ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "later"}, Key: "mode"},
	}}}
	h.createPod(p)
	got := h.waitPod("cfgerr", 10*time.Second, "CreateContainerConfigError", func(p *corev1.Pod) bool {
		w := containerStatus(p, "c").State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError"
	})
	// The message is the ConfigMap manager's error, as kubelet shows it.
	if msg := containerStatus(got, "c").State.Waiting.Message; msg != `configmaps "later" not found` {
		t.Errorf("waiting message %q", msg)
	}
	if got.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", got.Status.Phase)
	}
	if !hasEvent(h, got, "Failed", `Error: configmaps "later" not found`) {
		t.Errorf("events %v: want Warning Failed", events(h, got))
	}
	// The key is missing: upstream's message.
	if _, err := h.store.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: "default"}, Data: map[string]string{"other": "x"}}); err != nil {
		t.Fatal(err)
	}
	h.waitPod("cfgerr", 10*time.Second, "missing key message", func(p *corev1.Pod) bool {
		w := containerStatus(p, "c").State.Waiting
		return w != nil && w.Message == "couldn't find key mode in ConfigMap default/later"
	})
	// Once the ConfigMap has the key, the container starts.
	if _, err := h.store.UpdateFunc(cluster.KindConfigMap, "default", "later", func(o cluster.Object) error {
		o.(*corev1.ConfigMap).Data["mode"] = "ready"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.waitPod("cfgerr", 10*time.Second, "running", running("c"))
	h.waitLog("cfgerr", "c", "mode=ready", 5*time.Second)
}

func TestInitContainersRunInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	out := filepath.Join(t.TempDir(), "order")
	script := func(name string, sleep string) corev1.Container {
		return corev1.Container{Name: name, Image: "busybox", Command: []string{"sh", "-c", "sleep " + sleep + "; echo " + name + " >> " + out}}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "init"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrInt64(2),
			InitContainers:                []corev1.Container{script("first", "0.3"), script("second", "0")},
			Containers:                    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sh", "-c", "echo main >> " + out + "; exec sleep 60"}}},
		},
	}
	h.createPod(p)
	// While init runs: "Init containers ... each must complete
	// successfully before the next one starts"; the pod is Pending and
	// regular containers wait in PodInitializing.
	early := h.waitPod("init", 10*time.Second, "first init running", running("first"))
	if early.Status.Phase != corev1.PodPending {
		t.Errorf("phase during init %s, want Pending", early.Status.Phase)
	}
	if w := containerStatus(early, "main").State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("main during init: %+v, want Waiting PodInitializing", containerStatus(early, "main").State)
	}
	if c := condition(early, corev1.PodInitialized); c.Status != corev1.ConditionFalse || c.Reason != "ContainersNotInitialized" {
		t.Errorf("Initialized during init = %+v", c)
	}
	got := h.waitPod("init", 10*time.Second, "main running", running("main"))
	h.eventually(5*time.Second, "main wrote", func() bool {
		b, _ := os.ReadFile(out)
		return strings.Count(string(b), "\n") == 3
	})
	b, _ := os.ReadFile(out)
	if string(b) != "first\nsecond\nmain\n" {
		t.Errorf("order %q, want first, second, main", b)
	}
	if c := condition(got, corev1.PodInitialized); c.Status != corev1.ConditionTrue {
		t.Errorf("Initialized = %+v, want True", c)
	}
	for _, name := range []string{"first", "second"} {
		cs := containerStatus(got, name)
		if cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || !cs.Ready {
			t.Errorf("init container %s: %+v, want Terminated Completed and ready", name, cs)
		}
	}
}

func TestInitContainerFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	mk := func(name string, policy corev1.RestartPolicy) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PodSpec{
				RestartPolicy:                 policy,
				TerminationGracePeriodSeconds: ptrInt64(2),
				InitContainers:                []corev1.Container{{Name: "setup", Image: "busybox", Command: []string{"sh", "-c", "exit 3"}}},
				Containers:                    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"sleep", "60"}}},
			},
		}
	}
	// "If a Pod's init container fails, the kubelet repeatedly restarts
	// that init container until it succeeds. However, if the Pod has a
	// restartPolicy of Never, and an init container fails during startup
	// of that Pod, Kubernetes treats the overall Pod as failed."
	h.createPod(mk("never", corev1.RestartPolicyNever))
	h.createPod(mk("onfailure", corev1.RestartPolicyOnFailure))
	never := h.waitPod("never", 10*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if cs := containerStatus(never, "setup"); cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 {
		t.Errorf("setup: %+v, want terminated with 3", cs.State)
	}
	if cs := containerStatus(never, "main"); cs.State.Waiting == nil {
		t.Errorf("main never ran, status %+v", cs.State)
	}
	onf := h.waitPod("onfailure", 15*time.Second, "init retried twice", func(p *corev1.Pod) bool {
		return containerStatus(p, "setup").RestartCount >= 2
	})
	if onf.Status.Phase != corev1.PodPending {
		t.Errorf("onfailure phase %s, want Pending", onf.Status.Phase)
	}
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	cases := []struct {
		name   string
		policy corev1.RestartPolicy
		exit   int
		phase  corev1.PodPhase // terminal phase, or "" when it restarts
	}{
		// "Never: the container is not restarted"; the phase follows the
		// exit codes: "Succeeded: All containers in the Pod have
		// terminated in success", "Failed: ... at least one container has
		// terminated in failure".
		{"never-ok", corev1.RestartPolicyNever, 0, corev1.PodSucceeded},
		{"never-fail", corev1.RestartPolicyNever, 1, corev1.PodFailed},
		// "OnFailure: Only restarts the container if it exits with an
		// error (non-zero exit status)."
		{"onfailure-ok", corev1.RestartPolicyOnFailure, 0, corev1.PodSucceeded},
		{"onfailure-fail", corev1.RestartPolicyOnFailure, 1, ""},
		// "Always: Automatically restarts the container after any
		// termination."
		{"always-ok", corev1.RestartPolicyAlways, 0, ""},
		{"always-fail", corev1.RestartPolicyAlways, 2, ""},
	}
	// All pods run at once; then each is checked.
	for _, tc := range cases {
		p := shPod(tc.name, "echo run; exit "+strconv.Itoa(tc.exit))
		p.Spec.RestartPolicy = tc.policy
		h.createPod(p)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.phase != "" {
				got := h.waitPod(tc.name, 10*time.Second, "phase "+string(tc.phase), func(p *corev1.Pod) bool { return p.Status.Phase == tc.phase })
				cs := containerStatus(got, "c")
				if cs.RestartCount != 0 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != int32(tc.exit) {
					t.Fatalf("status %+v, want terminated once with %d", cs, tc.exit)
				}
				wantReason, wantCond := "Completed", "PodCompleted"
				if tc.exit != 0 {
					wantReason, wantCond = "Error", "PodFailed"
				}
				if cs.State.Terminated.Reason != wantReason {
					t.Errorf("reason %q, want %q", cs.State.Terminated.Reason, wantReason)
				}
				if c := condition(got, corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != wantCond {
					t.Errorf("Ready = %+v, want False %s", c, wantCond)
				}
				// A finished pod's sandbox is torn down.
				h.waitPod(tc.name, 5*time.Second, "sandbox torn down", func(p *corev1.Pod) bool {
					return condition(p, corev1.PodReadyToStartContainers).Status == corev1.ConditionFalse
				})
				return
			}
			got := h.waitPod(tc.name, 15*time.Second, "restarted twice", func(p *corev1.Pod) bool { return containerStatus(p, "c").RestartCount >= 2 })
			if got.Status.Phase != corev1.PodRunning {
				t.Errorf("phase %s, want Running (restarting)", got.Status.Phase)
			}
			if last := containerStatus(got, "c").LastTerminationState.Terminated; last == nil || last.ExitCode != int32(tc.exit) {
				t.Errorf("lastState %+v, want terminated with %d", last, tc.exit)
			}
		})
	}
}

// pidFromLog returns the pid a container printed as "pid=N".
func pidFromLog(t *testing.T, log string) int {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if v, ok := strings.CutPrefix(line, "pid="); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("no pid= line in log %q", log)
	return 0
}

func TestKilledContainerRestartsWithBackoff(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.BackoffInitial = 2 * time.Second; c.BackoffMax = 8 * time.Second }).start()
	p := h.createPod(shPod("crash", "echo pid=$$$$; exec sleep 60"))
	kill := func(restarts int32) time.Time {
		got := h.waitPod("crash", 20*time.Second, "running", func(p *corev1.Pod) bool {
			cs := containerStatus(p, "c")
			return cs.State.Running != nil && cs.RestartCount == restarts
		})
		pid := pidFromLog(t, h.waitLog("crash", "c", "pid=", 5*time.Second))
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v", pid, err)
		}
		_ = got
		return time.Now()
	}
	kill(0)
	// The first restart is immediate ...
	got := h.waitPod("crash", 10*time.Second, "restart 1", func(p *corev1.Pod) bool {
		return containerStatus(p, "c").RestartCount == 1 && containerStatus(p, "c").State.Running != nil
	})
	last := containerStatus(got, "c").LastTerminationState.Terminated
	if last == nil || last.ExitCode != 137 || last.Signal != 9 || last.Reason != "Error" {
		t.Errorf("lastState %+v, want exit 137 (SIGKILL)", last)
	}
	// ... the next one waits the initial back-off (kubelet:
	// "IsInBackOffSince(key, finishedAt)" with 10s doubling, here 2s).
	killed := kill(1)
	waiting := h.waitPod("crash", 5*time.Second, "CrashLoopBackOff", func(p *corev1.Pod) bool {
		w := containerStatus(p, "c").State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff"
	})
	wantMsg := "back-off 2s restarting failed container=c pod=crash_default(" + string(p.UID) + ")"
	if msg := containerStatus(waiting, "c").State.Waiting.Message; msg != wantMsg {
		t.Errorf("waiting message %q, want %q", msg, wantMsg)
	}
	restarted := h.waitPod("crash", 10*time.Second, "restart 2", func(p *corev1.Pod) bool {
		return containerStatus(p, "c").RestartCount == 2 && containerStatus(p, "c").State.Running != nil
	})
	startedAt := containerStatus(restarted, "c").State.Running.StartedAt.Time
	if d := startedAt.Sub(killed); d < 2*time.Second-100*time.Millisecond {
		t.Errorf("second restart after %v, want at least the initial back-off 2s", d)
	}
	if !hasEvent(h, p, "BackOff", "Back-off restarting failed container c in pod crash_default("+string(p.UID)+")") {
		t.Errorf("events %v: want Warning BackOff", events(h, p))
	}
	// The third waits twice as long.
	killed = kill(2)
	restarted = h.waitPod("crash", 15*time.Second, "restart 3", func(p *corev1.Pod) bool {
		return containerStatus(p, "c").RestartCount == 3 && containerStatus(p, "c").State.Running != nil
	})
	if d := containerStatus(restarted, "c").State.Running.StartedAt.Time.Sub(killed); d < 4*time.Second-100*time.Millisecond {
		t.Errorf("third restart after %v, want at least 4s (doubled back-off)", d)
	}
}

func TestStartErrorBacksOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "nocmd"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "x", Command: []string{"no-such-binary-here"}}}},
	}
	p = h.createPod(p)
	got := h.waitPod("nocmd", 10*time.Second, "CrashLoopBackOff", func(p *corev1.Pod) bool {
		w := containerStatus(p, "c").State.Waiting
		return w != nil && w.Reason == "CrashLoopBackOff"
	})
	last := containerStatus(got, "c").LastTerminationState.Terminated
	// containerd reports a process that could not start as exit code 128,
	// reason StartError.
	if last == nil || last.ExitCode != 128 || last.Reason != "StartError" || !strings.Contains(last.Message, `exec: "no-such-binary-here": executable file not found in $PATH`) {
		t.Errorf("lastState %+v", last)
	}
	if !hasEvent(h, p, "Failed", `Error: exec: "no-such-binary-here": executable file not found in $PATH`) {
		t.Errorf("events %v: want Warning Failed", events(h, p))
	}
}

func TestGracefulDeletion(t *testing.T) {
	t.Parallel()
	h := newHarness(t).start()
	marker := filepath.Join(t.TempDir(), "prestop")
	// A process that ignores SIGTERM is killed after the grace period.
	stubborn := shPod("stubborn", "trap 'echo got TERM' TERM; echo pid=$$$$; while true; do sleep 0.1; done")
	stubborn.Spec.TerminationGracePeriodSeconds = ptrInt64(3)
	stubborn.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
		Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo $SWITCHBOARD_POD_NAME > " + marker}},
	}}
	// A process that stops on SIGTERM goes at once.
	polite := shPod("polite", "echo pid=$$$$; exec sleep 60")
	polite.Spec.TerminationGracePeriodSeconds = ptrInt64(30)
	sp := h.createPod(stubborn)
	pp := h.createPod(polite)
	h.waitPod("stubborn", 10*time.Second, "running", running("c"))
	h.waitPod("polite", 10*time.Second, "running", running("c"))
	spid := pidFromLog(t, h.waitLog("stubborn", "c", "pid=", 5*time.Second))
	ppid := pidFromLog(t, h.waitLog("polite", "c", "pid=", 5*time.Second))

	began := time.Now()
	for _, name := range []string{"stubborn", "polite"} {
		if err := h.store.Delete(cluster.KindPod, "default", name, cluster.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	gone := func(name string) func() bool {
		return func() bool {
			_, err := cluster.Get[*corev1.Pod](h.store, "default", name)
			return err != nil
		}
	}
	h.eventually(10*time.Second, "polite pod removed", gone("polite"))
	politeTook := time.Since(began)
	h.eventually(10*time.Second, "stubborn pod removed", gone("stubborn"))
	stubbornTook := time.Since(began)
	// "the kubelet ... triggers forcible shutdown": after
	// terminationGracePeriodSeconds the processes get SIGKILL.
	if stubbornTook < 3*time.Second {
		t.Errorf("stubborn pod removed after %v, before its 3s grace period", stubbornTook)
	}
	if politeTook > 3*time.Second {
		t.Errorf("polite pod took %v although it stops on SIGTERM", politeTook)
	}
	for _, pid := range []int{spid, ppid} {
		if processExists(pid) {
			t.Errorf("process %d still exists after its pod was deleted", pid)
		}
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "stubborn\n" {
		t.Errorf("preStop hook did not run: %q %v", b, err)
	}
	if !hasEvent(h, sp, "Killing", "Stopping container c") || !hasEvent(h, pp, "Killing", "Stopping container c") {
		t.Errorf("events %v / %v: want Normal Killing", events(h, sp), events(h, pp))
	}
	// The address went back to the pool.
	n, err := h.sb.Setup(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "probe-addr"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = h.sb.Teardown(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "probe-addr"}})
	_ = n
}

func TestNodeStopLeavesNoProcess(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.ShutdownGracePeriod = 2 * time.Second }).start()
	// "$$$$" is "$$" after Kubernetes' $(VAR) escaping. One pod whose shell has children (in its process group), one that
	// ignores SIGTERM.
	h.createPod(shPod("family", "sleep 300 & sleep 300 & echo pid=$$$$; wait"))
	stubborn := shPod("stubborn", "trap '' TERM; echo pid=$$$$; while true; do sleep 0.1; done")
	stubborn.Spec.TerminationGracePeriodSeconds = ptrInt64(60)
	h.createPod(stubborn)
	h.waitPod("family", 10*time.Second, "running", running("c"))
	h.waitPod("stubborn", 10*time.Second, "running", running("c"))
	h.waitLog("family", "c", "pid=", 5*time.Second)
	pgids := h.recordedPids()
	if len(pgids) != 2 {
		t.Fatalf("recorded process groups %v, want 2", pgids)
	}
	var members []int
	for _, pg := range pgids {
		st, _, _ := procStat(pg)
		members = append(members, groupMembers(pg, st)...)
	}
	if len(members) < 4 {
		t.Fatalf("group members %v: want both shells and two sleeps", members)
	}
	began := time.Now()
	h.shutdown()
	// The stubborn pod's 60s grace is capped by ShutdownGracePeriod.
	if d := time.Since(began); d > 10*time.Second {
		t.Errorf("node stop took %v", d)
	}
	for _, pid := range members {
		if processExists(pid) {
			t.Errorf("process %d left after the node stopped", pid)
		}
	}
	if left := h.recordedPids(); len(left) != 0 {
		t.Errorf("pid records left: %v", left)
	}
	p := h.pod("stubborn")
	if c := condition(p, corev1.PodReady); c.Status != corev1.ConditionFalse {
		t.Errorf("after node stop Ready = %+v, want False", c)
	}
}

func TestLeftoversOfACrashedNodeAreKilled(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// A process group as a crashed node would leave it: recorded, alive.
	spawn := func(reap bool) *exec.Cmd {
		cmd := exec.Command("sh", "-c", "sleep 300 & exec sleep 300")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			if reap {
				_ = cmd.Wait()
			}
		})
		return cmd
	}
	left := spawn(false) // reaped below
	h.eventually(5*time.Second, "child started", func() bool {
		st, _, _ := procStat(left.Process.Pid)
		return len(groupMembers(left.Process.Pid, st)) == 2
	})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "default", UID: "old-uid"}}
	h.node.recordPid(pod, "c", left.Process.Pid)
	st, _, _ := procStat(left.Process.Pid)
	members := groupMembers(left.Process.Pid, st)

	// A record whose start time does not match is a reused PID: not ours.
	other := spawn(true)
	h.node.recordPid(pod, "c2", other.Process.Pid)
	path := filepath.Join(h.dir, "pids", strconv.Itoa(other.Process.Pid))
	data, _ := os.ReadFile(path)
	data = []byte(strings.Replace(string(data), `"startTime":`, `"startTime":1`, 1))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// The test is the leftover's parent: reap it as init would once the
	// node killed it.
	exited := make(chan struct{})
	go func() { _ = left.Wait(); close(exited) }()
	h.start()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the leftover process group was not killed")
	}
	for _, pid := range members {
		h.eventually(5*time.Second, "leftover member gone", func() bool { return !processExists(pid) })
	}
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Errorf("a process whose start time does not match the record was killed: %v", err)
	}
	if left := h.recordedPids(); len(left) != 0 {
		t.Errorf("records left after cleanup: %v", left)
	}
}
