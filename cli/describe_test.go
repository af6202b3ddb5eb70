package cli

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"strings"
	"testing"
	"time"
)

func describeAt(t *testing.T, f *fakeAPI, now time.Time, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut syncBuffer
	err := runDescribe(context.Background(), f.opts, &describeFlags{showEvents: true}, args, &out, &errOut, func() time.Time { return now })
	return out.String(), errOut.String(), err
}

// fixedAPI serves the fixtures built at testNow, so that describe's
// times and ages are fixed.
func fixedAPI(t *testing.T) *fakeAPI {
	f := newFakeAPI(t)
	f.add(webPod(testNow), webService(testNow), webSlice(testNow), webDeployment(testNow))
	for _, rs := range webReplicaSets(testNow) {
		f.add(rs)
	}
	for _, e := range podEvents(testNow) {
		f.add(e)
	}
	return f
}

// TestDescribePod checks kubectl's describe layout (pkg/describe
// describePod) for a pod with probes, a restart after a liveness failure
// and aggregated events: "State"/"Last State" with reason, exit code and
// signal, the probe lines "http-get http://:8080/healthz delay=0s
// timeout=1s period=10s #success=1 #failure=3", the Conditions table, and
// the Events table whose repeated event reads "15s (x3 over 2m30s)";
// events about other objects are left out.
func TestDescribePod(t *testing.T) {
	f := fixedAPI(t)
	got, stderr, err := describeAt(t, f, testNow, "pod", "web-7d4b9c-x2x9z")
	if err != nil {
		t.Fatalf("%v: %s", err, stderr)
	}
	want := `Name:         web-7d4b9c-x2x9z
Namespace:    default
Node:         node-1/127.0.0.1
Start Time:   Wed, 01 May 2024 11:40:00 +0000
Labels:       app=web
              pod-template-hash=7d4b9c
Annotations:  <none>
Status:       Running
IP:           127.1.0.5
IPs:
  IP:           127.1.0.5
Controlled By:  ReplicaSet/web-7d4b9c
Containers:
  web:
    Container ID:  switchboard://web-7d4b9c-x2x9z/web/4
    Image:         switchboard
    Image ID:      
    Port:          8080/TCP
    Host Port:     0/TCP
    Command:
      switchboard
      demo
      http
    Args:
      --listen=:8080
    State:          Running
      Started:      Wed, 01 May 2024 11:59:49 +0000
    Last State:     Terminated
      Reason:       Error
      Message:      liveness probe failed
      Exit Code:    137
      Signal:       9
      Started:      Wed, 01 May 2024 11:58:00 +0000
      Finished:     Wed, 01 May 2024 11:59:48 +0000
    Ready:          True
    Restart Count:  3
    Liveness:       http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3
    Readiness:      tcp-socket :http delay=2s timeout=1s period=5s #success=1 #failure=3
    Environment:
      GREETING:  hello
      POD_NAME:  web-7d4b9c-x2x9z (v1:metadata.name)
    Mounts:      <none>
Conditions:
  Type              Status
  PodScheduled      True 
  Initialized       True 
  ContainersReady   True 
  Ready             True 
Volumes:            <none>
QoS Class:          BestEffort
Node-Selectors:     <none>
Tolerations:        <none>
Events:
  Type     Reason     Age                  From     Message
  ----     ------     ----                 ----     -------
  Warning  Unhealthy  15s (x3 over 2m30s)  kubelet  Liveness probe failed: HTTP probe failed with statuscode: 500
  Normal   Killing    12s                  kubelet  Container web failed liveness probe, will be restarted
`
	if got != want {
		t.Errorf("describe pod:\n%s\ndiff:\n%s", got, lineDiff(want, got))
	}
	if r := f.requestsMatching("GET", "/api/v1/namespaces/default/events"); len(r) == 0 || !strings.Contains(r[0].Query, "involvedObject.uid%3Duid-web-pod") {
		t.Errorf("events were not asked for with an involvedObject.uid field selector: %+v", r)
	}
}

func TestDescribeOtherKinds(t *testing.T) {
	f := fixedAPI(t)
	cases := []struct {
		name string
		args []string
		want []string // lines that must appear, in order
	}{
		{"service: Port, TargetPort and the ready Endpoints of each port from its EndpointSlices",
			[]string{"svc", "web"}, []string{
				"Selector:          app=web",
				"Type:              ClusterIP",
				"IP:                10.96.0.20",
				"Port:              http  80/TCP",
				"TargetPort:        http/TCP",
				"Endpoints:         127.1.0.5:8080",
				"Port:              metrics  9090/TCP",
				"TargetPort:        9090/TCP",
				"Endpoints:         127.1.0.5:9090",
				"Session Affinity:  None",
				"Events:            <none>"}},
		{"deployment: the Replicas line, the strategy, and old and new replica sets",
			[]string{"deployment/web"}, []string{
				"Selector:               app=web",
				"Replicas:               3 desired | 3 updated | 3 total | 2 available | 1 unavailable",
				"StrategyType:           RollingUpdate",
				"RollingUpdateStrategy:  1 max unavailable, 25% max surge",
				"Pod Template:",
				"  Containers:",
				"   web:",
				"   sidecar:",
				"  Available      True    MinimumReplicasAvailable",
				"OldReplicaSets:  web-5f6a7b (0/0 replicas created)",
				"NewReplicaSet:   web-7d4b9c (3/3 replicas created)"}},
		{"replica set: pods counted by phase among those it controls",
			[]string{"rs", "web-7d4b9c"}, []string{
				"Controlled By:  Deployment/web",
				"Replicas:       3 current / 3 desired",
				"Pods Status:    1 Running / 0 Waiting / 0 Succeeded / 0 Failed"}},
		{"endpointslice: ports table and each endpoint's conditions",
			[]string{"endpointslices", "web-abc12"}, []string{
				"AddressType:  IPv4",
				"  http     8080  TCP",
				"  - Addresses:  127.1.0.5",
				"      Ready:    true",
				"    TargetRef:  Pod/web-7d4b9c-x2x9z",
				"  - Addresses:  127.1.0.6",
				"      Ready:    false"}},
		{"a name prefix describes the objects it starts",
			[]string{"pods", "web-7d4b"}, []string{"Name:         web-7d4b9c-x2x9z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, stderr, err := describeAt(t, f, testNow, tc.args...)
			if err != nil {
				t.Fatalf("%v: %s", err, stderr)
			}
			rest := got
			for _, line := range tc.want {
				i := strings.Index(rest, line+"\n")
				if i < 0 {
					t.Fatalf("missing (in order) %q in:\n%s", line, got)
				}
				rest = rest[i+len(line):]
			}
		})
	}
	t.Run("other kinds: metadata, then spec as YAML", func(t *testing.T) {
		np := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: "default", Labels: map[string]string{"team": "a"}},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			},
		}
		f.add(np)
		got, _, err := describeAt(t, f, testNow, "netpol", "deny")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"Name:               deny\n", "Labels:             team=a\n", "API Version:        networking.k8s.io/v1\n",
			"Kind:               NetworkPolicy\n", "Spec:\n  podSelector:\n    matchLabels:\n      app: web\n  policyTypes:\n  - Ingress\n", "Events:  <none>\n"} {
			if !strings.Contains(got, line) {
				t.Errorf("missing %q in:\n%s", line, got)
			}
		}
	})
	t.Run("NotFound without a matching prefix is kubectl's error", func(t *testing.T) {
		_, _, err := describeAt(t, f, testNow, "pod", "nope")
		if err == nil || errorMessage(err) != `Error from server (NotFound): pods "nope" not found` {
			t.Errorf("got %v", err)
		}
	})
}

// lineDiff shows the first differing lines.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}
