package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
)

var testNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func running(name string, ready bool, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, Ready: ready, RestartCount: restarts,
		State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ago(testNow, time.Minute)}}}
}

func waiting(name, reason string, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, RestartCount: restarts,
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
}

func terminated(name, reason string, exit, signal int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name,
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exit, Signal: signal}}}
}

func podWith(phase corev1.PodPhase, containers []string, inits []string, statuses, initStatuses []corev1.ContainerStatus) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", CreationTimestamp: ago(testNow, 20*time.Minute+30*time.Second)}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c})
	}
	for _, c := range inits {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: c})
	}
	p.Status.Phase = phase
	p.Status.ContainerStatuses = statuses
	p.Status.InitContainerStatuses = initStatuses
	return p
}

// TestPodStatusColumns re-creates printPod's rules for the READY, STATUS
// and RESTARTS columns (pkg/printers/internalversion/printers.go).
func TestPodStatusColumns(t *testing.T) {
	withLastRestart := func(s corev1.ContainerStatus, finished time.Duration) corev1.ContainerStatus {
		s.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(testNow, finished)}
		return s
	}
	sidecar := func(p *corev1.Pod) *corev1.Pod {
		p.Spec.InitContainers[0].RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		return p
	}
	cases := []struct {
		name                    string
		pod                     *corev1.Pod
		ready, status, restarts string
	}{
		{"phase is the status when every container runs and is ready",
			podWith(corev1.PodRunning, []string{"a", "b"}, nil, []corev1.ContainerStatus{running("a", true, 0), running("b", true, 0)}, nil),
			"2/2", "Running", "0"},
		{"READY counts only containers that are ready and running",
			podWith(corev1.PodRunning, []string{"a", "b"}, nil, []corev1.ContainerStatus{running("a", true, 0), running("b", false, 0)}, nil),
			"1/2", "Running", "0"},
		{"a waiting container's reason replaces the phase (ContainerCreating)",
			podWith(corev1.PodPending, []string{"a"}, nil, []corev1.ContainerStatus{waiting("a", "ContainerCreating", 0)}, nil),
			"0/1", "ContainerCreating", "0"},
		{"CrashLoopBackOff with restarts shows the time since the last termination",
			podWith(corev1.PodRunning, []string{"a"}, nil, []corev1.ContainerStatus{withLastRestart(waiting("a", "CrashLoopBackOff", 3), 12*time.Second)}, nil),
			"0/1", "CrashLoopBackOff", "3 (12s ago)"},
		{"restarts of all containers add up; the newest termination counts",
			podWith(corev1.PodRunning, []string{"a", "b"}, nil, []corev1.ContainerStatus{
				withLastRestart(running("a", true, 2), 5*time.Minute), withLastRestart(running("b", true, 1), 90*time.Second)}, nil),
			"2/2", "Running", "3 (90s ago)"},
		{"a terminated container's reason (Completed) replaces the phase",
			podWith(corev1.PodSucceeded, []string{"a"}, nil, []corev1.ContainerStatus{terminated("a", "Completed", 0, 0)}, nil),
			"0/1", "Completed", "0"},
		{"Error from a container that failed",
			podWith(corev1.PodFailed, []string{"a"}, nil, []corev1.ContainerStatus{terminated("a", "Error", 1, 0)}, nil),
			"0/1", "Error", "0"},
		{"terminated without a reason: ExitCode:N",
			podWith(corev1.PodFailed, []string{"a"}, nil, []corev1.ContainerStatus{terminated("a", "", 2, 0)}, nil),
			"0/1", "ExitCode:2", "0"},
		{"terminated by a signal without a reason: Signal:N",
			podWith(corev1.PodFailed, []string{"a"}, nil, []corev1.ContainerStatus{terminated("a", "", 137, 9)}, nil),
			"0/1", "Signal:9", "0"},
		{"Completed goes back to Running while another container runs and the pod is Ready",
			func() *corev1.Pod {
				p := podWith(corev1.PodRunning, []string{"a", "b"}, nil, []corev1.ContainerStatus{running("a", true, 0), terminated("b", "Completed", 0, 0)}, nil)
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
				return p
			}(),
			"1/2", "Running", "0"},
		{"... and to NotReady when the pod is not Ready",
			podWith(corev1.PodRunning, []string{"a", "b"}, nil, []corev1.ContainerStatus{running("a", true, 0), terminated("b", "Completed", 0, 0)}, nil),
			"1/2", "NotReady", "0"},
		{"Init:N/M while init container N runs",
			podWith(corev1.PodPending, []string{"a"}, []string{"i1", "i2"}, []corev1.ContainerStatus{waiting("a", "PodInitializing", 0)},
				[]corev1.ContainerStatus{terminated("i1", "Completed", 0, 0), running("i2", false, 0)}),
			"0/1", "Init:1/2", "0"},
		{"a waiting PodInitializing init container still counts as Init:N/M",
			podWith(corev1.PodPending, []string{"a"}, []string{"i1"}, nil, []corev1.ContainerStatus{waiting("i1", "PodInitializing", 0)}),
			"0/1", "Init:0/1", "0"},
		{"Init:<reason> for a waiting init container",
			podWith(corev1.PodPending, []string{"a"}, []string{"i1"}, nil, []corev1.ContainerStatus{withLastRestart(waiting("i1", "CrashLoopBackOff", 2), 30*time.Second)}),
			"0/1", "Init:CrashLoopBackOff", "2 (30s ago)"},
		{"Init:ExitCode:N for a failed init container without a reason",
			podWith(corev1.PodPending, []string{"a"}, []string{"i1"}, nil, []corev1.ContainerStatus{terminated("i1", "", 3, 0)}),
			"0/1", "Init:ExitCode:3", "0"},
		{"Init:<reason> for a failed init container with one",
			podWith(corev1.PodPending, []string{"a"}, []string{"i1"}, nil, []corev1.ContainerStatus{terminated("i1", "Error", 1, 0)}),
			"0/1", "Init:Error", "0"},
		{"a started restartable init container (sidecar) counts in READY",
			func() *corev1.Pod {
				p := sidecar(podWith(corev1.PodRunning, []string{"a"}, []string{"side"}, []corev1.ContainerStatus{running("a", true, 0)},
					[]corev1.ContainerStatus{func() corev1.ContainerStatus { s := running("side", true, 0); s.Started = ptr.To(true); return s }()}))
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
				return p
			}(),
			"2/2", "Running", "0"},
		{"Terminating while a deletionTimestamp is set on a pod that has not finished",
			func() *corev1.Pod {
				p := podWith(corev1.PodRunning, []string{"a"}, nil, []corev1.ContainerStatus{running("a", true, 0)}, nil)
				p.DeletionTimestamp = ptr.To(metav1.NewTime(testNow))
				return p
			}(),
			"1/1", "Terminating", "0"},
		{"a finished pod being deleted keeps its status",
			func() *corev1.Pod {
				p := podWith(corev1.PodSucceeded, []string{"a"}, nil, []corev1.ContainerStatus{terminated("a", "Completed", 0, 0)}, nil)
				p.DeletionTimestamp = ptr.To(metav1.NewTime(testNow))
				return p
			}(),
			"0/1", "Completed", "0"},
		{"status.reason replaces the phase (Evicted)",
			func() *corev1.Pod {
				p := podWith(corev1.PodFailed, []string{"a"}, nil, nil, nil)
				p.Status.Reason = "Evicted"
				return p
			}(),
			"0/1", "Evicted", "0"},
		{"SchedulingGated from the PodScheduled condition's reason",
			func() *corev1.Pod {
				p := podWith(corev1.PodPending, []string{"a"}, nil, nil, nil)
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}
				return p
			}(),
			"0/1", "SchedulingGated", "0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ready, status, restarts := podStatus(tc.pod, testNow)
			if ready != tc.ready || status != tc.status || restarts != tc.restarts {
				t.Errorf("got READY %q STATUS %q RESTARTS %q, want %q %q %q", ready, status, restarts, tc.ready, tc.status, tc.restarts)
			}
		})
	}
}

// TestAges checks the AGE cell: kubectl's translateTimestampSince.
func TestAges(t *testing.T) {
	cases := []struct {
		name string
		ts   metav1.Time
		want string
	}{
		{"a zero timestamp is <unknown>", metav1.Time{}, "<unknown>"},
		{"seconds up to two minutes", ago(testNow, 119*time.Second), "119s"},
		{"minutes and seconds below ten minutes", ago(testNow, 5*time.Minute+30*time.Second), "5m30s"},
		{"whole minutes below three hours", ago(testNow, 20*time.Minute+30*time.Second), "20m"},
		{"hours and minutes below eight hours", ago(testNow, 3*time.Hour+5*time.Minute), "3h5m"},
		{"days and hours below eight days", ago(testNow, 50*time.Hour), "2d2h"},
		{"a clock a little ahead still reads 0s", metav1.NewTime(testNow.Add(time.Second)), "0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := translateTimestampSince(tc.ts, testNow); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// cells splits tabwriter output into rows of cells (columns are at
// least three spaces apart; cells themselves hold at most single spaces).
func cells(out string) [][]string {
	var rows [][]string
	sep := regexp.MustCompile(`\s{2,}`)
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		rows = append(rows, sep.Split(strings.TrimSpace(line), -1))
	}
	return rows
}

func TestTables(t *testing.T) {
	pod := webPod(testNow)
	other := webPod(testNow)
	other.Name, other.Namespace = "db-0", "data"
	other.Status.ContainerStatuses[0].RestartCount = 0
	other.Status.ContainerStatuses[0].LastTerminationState = corev1.ContainerState{}
	svc := webService(testNow)
	nodePortSvc := webService(testNow)
	nodePortSvc.Name = "web-np"
	nodePortSvc.Spec.Type = corev1.ServiceTypeNodePort
	nodePortSvc.Spec.Ports[0].NodePort = 30080
	lb := webService(testNow)
	lb.Name = "web-lb"
	lb.Spec.Type = corev1.ServiceTypeLoadBalancer
	lb.Spec.Selector = nil
	cases := []struct {
		name string
		kind *cluster.Kind
		objs []cluster.Object
		opts printOpts
		want [][]string
	}{
		{"pods: NAME READY STATUS RESTARTS AGE", cluster.KindPod, []cluster.Object{pod}, printOpts{},
			[][]string{{"NAME", "READY", "STATUS", "RESTARTS", "AGE"}, {"web-7d4b9c-x2x9z", "1/1", "Running", "3 (12s ago)", "20m"}}},
		{"pods -o wide adds IP NODE NOMINATED NODE READINESS GATES", cluster.KindPod, []cluster.Object{pod}, printOpts{wide: true},
			[][]string{{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"},
				{"web-7d4b9c-x2x9z", "1/1", "Running", "3 (12s ago)", "20m", "127.1.0.5", "node-1", "<none>", "<none>"}}},
		{"-A puts NAMESPACE first", cluster.KindPod, []cluster.Object{other, pod}, printOpts{withNamespace: true},
			[][]string{{"NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"},
				{"data", "db-0", "1/1", "Running", "0", "20m"},
				{"default", "web-7d4b9c-x2x9z", "1/1", "Running", "3 (12s ago)", "20m"}}},
		{"--show-labels adds LABELS, --no-headers drops the header", cluster.KindPod, []cluster.Object{pod}, printOpts{showLabels: true, noHeaders: true},
			[][]string{{"web-7d4b9c-x2x9z", "1/1", "Running", "3 (12s ago)", "20m", "app=web,pod-template-hash=7d4b9c"}}},
		{"services: ports as port[:nodePort]/protocol, LoadBalancer without address is <pending>", cluster.KindService,
			[]cluster.Object{svc, nodePortSvc, lb}, printOpts{wide: true},
			[][]string{{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"},
				{"web", "ClusterIP", "10.96.0.20", "<none>", "80/TCP,9090/TCP", "20m", "app=web"},
				{"web-np", "NodePort", "10.96.0.20", "<none>", "80:30080/TCP,9090/TCP", "20m", "app=web"},
				{"web-lb", "LoadBalancer", "10.96.0.20", "<pending>", "80/TCP,9090/TCP", "20m", "<none>"}}},
		{"endpointslices: ADDRESSTYPE PORTS ENDPOINTS", cluster.KindEndpointSlice, []cluster.Object{webSlice(testNow)}, printOpts{},
			[][]string{{"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}, {"web-abc12", "IPv4", "8080,9090", "127.1.0.5,127.1.0.6", "20m"}}},
		{"deployments -o wide: READY ready/desired, CONTAINERS IMAGES SELECTOR", cluster.KindDeployment, []cluster.Object{webDeployment(testNow)}, printOpts{wide: true},
			[][]string{{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"},
				{"web", "2/3", "3", "2", "20m", "web,sidecar", "switchboard,busybox", "app=web"}}},
		{"replicasets: DESIRED CURRENT READY", cluster.KindReplicaSet, []cluster.Object{webReplicaSets(testNow)[0]}, printOpts{},
			[][]string{{"NAME", "DESIRED", "CURRENT", "READY", "AGE"}, {"web-7d4b9c", "3", "3", "3", "10m"}}},
		{"several kinds name rows kind/name", cluster.KindDeployment, []cluster.Object{webDeployment(testNow)}, printOpts{withKind: true},
			[][]string{{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"}, {"deployment.apps/web", "2/3", "3", "2", "20m"}}},
		{"events: LAST SEEN TYPE REASON OBJECT MESSAGE", cluster.KindEvent, []cluster.Object{podEvents(testNow)[0]}, printOpts{},
			[][]string{{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"},
				{"15s", "Warning", "Unhealthy", "pod/web-7d4b9c-x2x9z", "Liveness probe failed: HTTP probe failed with statuscode: 500"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			tc.opts.now = testNow
			if err := printTable(&b, tc.kind, tc.objs, tc.opts); err != nil {
				t.Fatal(err)
			}
			got := cells(b.String())
			if len(got) != len(tc.want) {
				t.Fatalf("got %d rows, want %d:\n%s", len(got), len(tc.want), b.String())
			}
			for i := range got {
				if strings.Join(got[i], "|") != strings.Join(tc.want[i], "|") {
					t.Errorf("row %d:\n got %q\nwant %q\n%s", i, got[i], tc.want[i], b.String())
				}
			}
		})
	}
}
