package standalone

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// The quickstart, for real: every pod gets a distinct IP and answers on
// it, Services get cluster IPs and EndpointSlices with the ready pods, the
// CLI shows it, and Ctrl-C (SIGINT) leaves no process, socket or lock.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	n := startNode(t, "../examples/quickstart")
	pods := n.waitPodsReady("default", 6, 60*time.Second)

	seen := map[string]string{}
	for _, p := range pods {
		ip := p.Status.PodIP
		if ip == "" {
			t.Fatalf("pod %s has no IP", p.Name)
		}
		if other, dup := seen[ip]; dup {
			t.Fatalf("pods %s and %s share IP %s", p.Name, other, ip)
		}
		seen[ip] = p.Name
		switch p.Labels["app"] {
		case "web":
			code, body, err := httpGet("http://" + net.JoinHostPort(ip, "8080") + "/hello")
			if err != nil || code != 200 {
				t.Fatalf("web pod %s at %s: %d %v", p.Name, ip, code, err)
			}
			var answer map[string]any
			if err := json.Unmarshal([]byte(body), &answer); err != nil {
				t.Fatalf("web pod answer is not JSON: %q", body)
			}
			if answer["pod"] != p.Name || answer["podIP"] != ip || answer["path"] != "/hello" {
				t.Errorf("pod %s at %s answered %v", p.Name, ip, answer)
			}
		case "greeter":
			conn, err := grpc.NewClient(net.JoinHostPort(ip, "9090"), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			cancel()
			conn.Close()
			if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("greeter pod %s at %s: %v %v", p.Name, ip, resp, err)
			}
		case "echo":
			for _, proto := range []string{"tcp", "udp"} {
				port := map[string]string{"tcp": "9000", "udp": "9001"}[proto]
				c, err := net.DialTimeout(proto, net.JoinHostPort(ip, port), 2*time.Second)
				if err != nil {
					t.Fatalf("echo %s: %v", proto, err)
				}
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				msg := "ping " + proto
				if _, err := c.Write([]byte(msg)); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 64)
				k, err := c.Read(buf)
				c.Close()
				if err != nil || string(buf[:k]) != msg {
					t.Errorf("echo %s at %s: got %q, %v", proto, ip, buf[:k], err)
				}
			}
		default:
			t.Errorf("unexpected pod %s", p.Name)
		}
	}

	// Services: cluster IPs from the service range; slices with ready
	// endpoints whose port is the pod's named port, resolved.
	svc, err := n.Client.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil || !strings.HasPrefix(svc.Spec.ClusterIP, "127.51.") {
		t.Fatalf("web service cluster IP: %v %v", svc.Spec.ClusterIP, err)
	}
	n.WaitFor(10*time.Second, "3 ready web endpoints", func() bool { r, _ := n.ReadyEndpoints("default", "web"); return r == 3 })
	slices, _ := n.Client.DiscoveryV1().EndpointSlices("default").List(context.Background(), metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
	if len(slices.Items) != 1 || len(slices.Items[0].Ports) != 1 || *slices.Items[0].Ports[0].Port != 8080 {
		t.Errorf("web slices: %+v", slices.Items)
	}
	if r, _ := n.ReadyEndpoints("default", "echo-headless"); r != 1 {
		t.Errorf("headless echo service: %d ready endpoints", r)
	}
	if !strings.Contains(n.Stdout.String(), "6/6 pods ready") {
		t.Errorf("summary missing from the output:\n%s", n.Stdout.String())
	}

	// Cluster DNS at the kube-dns address, answering from the store.
	dnsAddr := n.clusterDNS()
	if got := lookup(t, dnsAddr, "web.default.svc.cluster.local.", mdns.TypeA); len(got) != 1 || got[0] != svc.Spec.ClusterIP {
		t.Errorf("web.default.svc.cluster.local A = %v, want [%s]", got, svc.Spec.ClusterIP)
	}
	var echoIP string
	for _, p := range pods {
		if p.Name == "echo" {
			echoIP = p.Status.PodIP
		}
	}
	if got := lookup(t, dnsAddr, "echo-0.echo-headless.default.svc.cluster.local.", mdns.TypeA); len(got) != 1 || got[0] != echoIP {
		t.Errorf("hostname.subdomain A = %v, want [%s]", got, echoIP)
	}
	if got := lookup(t, dnsAddr, "_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV); len(got) != 1 || got[0] != "0 100 80 web.default.svc.cluster.local." {
		t.Errorf("SRV = %v", got)
	}
	if _, rcode := query(t, dnsAddr, "nope.default.svc.cluster.local.", mdns.TypeA); rcode != mdns.RcodeNameError {
		t.Errorf("unknown service: rcode %s, want NXDOMAIN", mdns.RcodeToString[rcode])
	}
	// The real dig, as a user types it.
	host, port, _ := net.SplitHostPort(dnsAddr)
	if out, err := exec.Command("dig", "@"+host, "-p", port, "+short", "greeter.default.svc.cluster.local").Output(); err != nil {
		t.Errorf("dig: %v", err)
	} else if gs, _ := n.Client.CoreV1().Services("default").Get(context.Background(), "greeter", metav1.GetOptions{}); strings.TrimSpace(string(out)) != gs.Spec.ClusterIP {
		t.Errorf("dig greeter: %q, want %s", out, gs.Spec.ClusterIP)
	}
	// Records follow the store within one second, with no restart.
	created := time.Now()
	newSvc, err := n.Client.CoreV1().Services("default").Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "late"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 81}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.WaitFor(5*time.Second, "DNS to answer for a new service", func() bool {
		got := lookup(t, dnsAddr, "late.default.svc.cluster.local.", mdns.TypeA)
		return len(got) == 1 && got[0] == newSvc.Spec.ClusterIP
	})
	if took := time.Since(created); took > time.Second+200*time.Millisecond {
		t.Errorf("new service answered after %s; the rule is within one second", took)
	}
	if err := n.Client.CoreV1().Services("default").Delete(context.Background(), "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	n.WaitFor(5*time.Second, "DNS to forget a deleted service", func() bool {
		_, rcode := query(t, dnsAddr, "late.default.svc.cluster.local.", mdns.TypeA)
		return rcode == mdns.RcodeNameError
	})
	if took := time.Since(deleted); took > time.Second+200*time.Millisecond {
		t.Errorf("deleted service forgotten after %s; the rule is within one second", took)
	}

	// The service proxy (userspace mode in the loopback sandbox): the
	// cluster IP and the NodePort spread over every ready endpoint, TCP
	// and UDP.
	checkServiceProxy(t, n, svc, pods)
	checkIngress(t, n, pods)

	// The CLI in a second terminal.
	out, err := n.CLI("get", "pods", "-o", "wide")
	if err != nil {
		t.Fatalf("get pods: %v\n%s", err, out)
	}
	for _, p := range pods {
		if !strings.Contains(out, p.Name) || !strings.Contains(out, p.Status.PodIP) {
			t.Errorf("get pods -o wide lacks %s %s:\n%s", p.Name, p.Status.PodIP, out)
		}
	}
	out, err = n.CLI("describe", "pod", "echo")
	if err != nil || !strings.Contains(out, "tcp-socket :9000") && !strings.Contains(out, "tcp-socket") {
		t.Errorf("describe pod echo: %v\n%s", err, out)
	}
	out, err = n.CLI("logs", pods[0].Name, "--tail", "50")
	if err != nil {
		t.Errorf("logs: %v\n%s", err, out)
	}
	// Loopback pods have no namespaces of their own to enter.
	out, err = n.CLI("exec", pods[0].Name, "--", "true")
	if err == nil || !strings.Contains(out, "does not run the netns sandbox") {
		t.Errorf("exec in the loopback sandbox: want an error naming the netns sandbox, got %v\n%s", err, out)
	}

	// Ctrl-C.
	if err := n.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if code := n.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("up exited with %d after SIGINT", code)
	}
	if left := testutil.NodeProcesses(n.Name, ""); len(left) > 0 {
		t.Errorf("processes left after SIGINT: %v", left)
	}
	for _, f := range []string{"api.sock", "lock"} {
		if _, err := os.Stat(filepath.Join(n.StateDir, f)); err == nil {
			t.Errorf("%s left in the state directory after SIGINT", f)
		}
	}
	// The proxy's listeners are gone with it.
	nodePort := net.JoinHostPort(nodeAddr(n), "30080")
	if c, err := net.DialTimeout("tcp", nodePort, time.Second); err == nil {
		c.Close()
		t.Errorf("NodePort %s still accepts connections after SIGINT", nodePort)
	}
}

// nodeAddr is the node's address in the loopback sandbox: the pod range's
// first address.
func nodeAddr(n *testNode) string {
	return netip.MustParsePrefix(n.podCIDR).Addr().Next().String()
}

// checkServiceProxy checks the quickstart's services through up's proxy.
func checkServiceProxy(t *testing.T, n *testNode, web *corev1.Service, pods []corev1.Pod) {
	t.Helper()
	webPods := map[string]bool{}
	var echoSvc string
	for _, p := range pods {
		if p.Labels["app"] == "web" {
			webPods[p.Name] = false
		}
	}
	es, err := n.Client.CoreV1().Services("default").Get(context.Background(), "echo", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	echoSvc = es.Spec.ClusterIP
	urls := []string{"http://" + net.JoinHostPort(nodeAddr(n), "30080") + "/"}
	if os.Geteuid() == 0 { // port 80 needs root (or CAP_NET_BIND_SERVICE)
		urls = append(urls, "http://"+net.JoinHostPort(web.Spec.ClusterIP, "80")+"/")
	}
	for _, url := range urls {
		seen := map[string]bool{}
		n.WaitFor(10*time.Second, "the proxy to reach every web pod through "+url, func() bool {
			// A new connection each time: the proxy balances connections.
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get(url)
			if err != nil {
				return false
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body := resp.StatusCode, string(b)
			if code != 200 {
				return false
			}
			var answer map[string]any
			if json.Unmarshal([]byte(body), &answer) == nil {
				if name, _ := answer["pod"].(string); name != "" {
					if _, ok := webPods[name]; !ok {
						t.Fatalf("%s answered by %q, not a web pod", url, name)
					}
					seen[name] = true
				}
			}
			return len(seen) == len(webPods)
		})
	}
	for _, proto := range []string{"tcp", "udp"} {
		port := map[string]string{"tcp": "9000", "udp": "9001"}[proto]
		c, err := net.DialTimeout(proto, net.JoinHostPort(echoSvc, port), 2*time.Second)
		if err != nil {
			t.Fatalf("echo service %s: %v", proto, err)
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		msg := "via the service " + proto
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		k, err := c.Read(buf)
		c.Close()
		if err != nil || !strings.Contains(string(buf[:k]), msg) {
			t.Errorf("echo service %s answered %q, %v", proto, buf[:k], err)
		}
	}
}

// findContainerPID finds the process of one container of a pod by the
// port in its command line.
func findContainerPID(t *testing.T, n *testNode, pod, marker string) int {
	t.Helper()
	var found int
	n.WaitFor(10*time.Second, "the process of "+pod, func() bool {
		for _, pid := range testutil.NodeProcesses(n.Name, pod) {
			if strings.Contains(testutil.Cmdline(pid), marker) {
				found = pid
				return true
			}
		}
		return false
	})
	return found
}

const crashPod = `apiVersion: v1
kind: Pod
metadata:
  name: crashy
spec:
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080"]
`

// Killing a container's process restarts it; the first restart is at
// once, the next only after kubelet's back-off (10s, doubling).
func TestKilledContainerRestartsWithBackoff(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "pod.yaml", crashPod)
	n := startNode(t, dir)
	n.waitPodsReady("default", 1, 30*time.Second)

	restarts := func() int32 {
		if cs := containerStatus(n.Pod("default", "crashy"), "web"); cs != nil {
			return cs.RestartCount
		}
		return -1
	}
	pid := findContainerPID(t, n, "crashy", "8080")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n.WaitFor(10*time.Second, "the first restart", func() bool { return restarts() == 1 })
	cs := containerStatus(n.Pod("default", "crashy"), "web")
	if cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.Signal != int32(syscall.SIGKILL) && cs.LastTerminationState.Terminated.ExitCode != 137 {
		t.Errorf("last state does not record the kill: %+v", cs.LastTerminationState)
	}

	n.waitPodsReady("default", 1, 20*time.Second)
	pid = findContainerPID(t, n, "crashy", "8080")
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// During the back-off the container waits in CrashLoopBackOff.
	n.WaitFor(5*time.Second, "CrashLoopBackOff", func() bool {
		cs := containerStatus(n.Pod("default", "crashy"), "web")
		return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	n.WaitFor(30*time.Second, "the second restart", func() bool { return restarts() == 2 })
	if waited := time.Since(killed); waited < 9*time.Second {
		t.Errorf("second restart after %s; kubelet's back-off is 10s", waited)
	}
	out, _ := n.CLI("describe", "pod", "crashy")
	if !strings.Contains(out, "BackOff") {
		t.Errorf("describe does not show the back-off event:\n%s", out)
	}
}

const twoContainers = `apiVersion: v1
kind: Pod
metadata:
  name: pair
spec:
  containers:
    - name: a
      command: ["switchboard", "demo", "http", "--port", "8080"]
      livenessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
        failureThreshold: 2
    - name: b
      command: ["switchboard", "demo", "http", "--port", "8081"]
      livenessProbe:
        httpGet: {path: /healthz, port: 8081}
        periodSeconds: 1
        failureThreshold: 2
`

// "If the liveness probe fails, the kubelet kills the container": that
// container only, not its neighbours in the pod.
func TestLivenessFailureRestartsOnlyThatContainer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "pod.yaml", twoContainers)
	n := startNode(t, dir)
	pods := n.waitPodsReady("default", 1, 30*time.Second)
	ip := pods[0].Status.PodIP
	// Without a readiness probe the pod is Ready once its processes run,
	// which may be before they listen: retry.
	n.WaitFor(10*time.Second, "container a to take the healthz switch", func() bool {
		code, _, err := httpGet("http://" + net.JoinHostPort(ip, "8080") + "/control/healthz?fail=true")
		return err == nil && code == 200
	})
	n.WaitFor(15*time.Second, "container a to restart", func() bool {
		cs := containerStatus(n.Pod("default", "pair"), "a")
		return cs != nil && cs.RestartCount >= 1
	})
	p := n.Pod("default", "pair")
	if cs := containerStatus(p, "b"); cs == nil || cs.RestartCount != 0 {
		t.Errorf("container b restarted too: %+v", cs)
	}
	// The new instance of a is healthy again (a fresh process: its
	// /healthz switch is back to passing).
	n.WaitFor(15*time.Second, "the new instance of a to answer /healthz", func() bool {
		code, _, err := httpGet("http://" + net.JoinHostPort(ip, "8080") + "/healthz")
		return err == nil && code == 200
	})
	out, _ := n.CLI("describe", "pod", "pair")
	if !strings.Contains(out, "failed liveness probe") {
		t.Errorf("describe does not say why a restarted:\n%s", out)
	}
}

const readinessPod = `apiVersion: v1
kind: Pod
metadata:
  name: ready-flip
  labels: {app: flip}
spec:
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080"]
      readinessProbe:
        httpGet: {path: /readyz, port: 8080}
        periodSeconds: 1
        failureThreshold: 2
---
apiVersion: v1
kind: Service
metadata:
  name: flip
spec:
  selector: {app: flip}
  ports:
    - port: 80
      targetPort: 8080
`

// A readiness failure takes the endpoint's ready condition away within
// periodSeconds × failureThreshold (+1 s), and success brings it back.
func TestReadinessFailureFlipsEndpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "pod.yaml", readinessPod)
	n := startNode(t, dir)
	pods := n.waitPodsReady("default", 1, 30*time.Second)
	ip := pods[0].Status.PodIP
	n.WaitFor(10*time.Second, "a ready endpoint", func() bool { r, _ := n.ReadyEndpoints("default", "flip"); return r == 1 })

	const limit = 1*2*time.Second + time.Second
	flipped := time.Now()
	if code, _, err := httpGet("http://" + net.JoinHostPort(ip, "8080") + "/control/readyz?fail=true"); err != nil || code != 200 {
		t.Fatalf("switching readyz: %d %v", code, err)
	}
	n.WaitFor(10*time.Second, "the endpoint to turn not ready", func() bool {
		r, total := n.ReadyEndpoints("default", "flip")
		return r == 0 && total == 1
	})
	if took := time.Since(flipped); took > limit+500*time.Millisecond { // + the test's own 100ms polling
		t.Errorf("endpoint turned not ready after %s; the rule is within %s", took, limit)
	}
	if code, _, err := httpGet("http://" + net.JoinHostPort(ip, "8080") + "/control/readyz?fail=false"); err != nil || code != 200 {
		t.Fatalf("switching readyz back: %d %v", code, err)
	}
	n.WaitFor(10*time.Second, "the endpoint to be ready again", func() bool { r, _ := n.ReadyEndpoints("default", "flip"); return r == 1 })
}

const startupPods = `apiVersion: v1
kind: Pod
metadata:
  name: slow-with-startup
spec:
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080", "--start-delay", "4s"]
      startupProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
        failureThreshold: 10
      livenessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
        failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: slow-without-startup
spec:
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080", "--start-delay", "4s"]
      livenessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
        failureThreshold: 1
`

// "If a startup probe is provided, all other probes are disabled until it
// succeeds": a slow starter survives with one, and is killed by its
// liveness probe without one.
func TestStartupProbeHoldsLiveness(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "pods.yaml", startupPods)
	n := startNode(t, dir)
	n.WaitFor(20*time.Second, "the pod without a startup probe to be restarted by liveness", func() bool {
		cs := containerStatus(n.Pod("default", "slow-without-startup"), "web")
		return cs != nil && cs.RestartCount >= 1
	})
	n.WaitFor(20*time.Second, "the slow pod with a startup probe to be ready", func() bool {
		return testutil.PodReady(n.Pod("default", "slow-with-startup"))
	})
	cs := containerStatus(n.Pod("default", "slow-with-startup"), "web")
	if cs.RestartCount != 0 || cs.Started == nil || !*cs.Started {
		t.Errorf("with a startup probe: restarts %d started %v", cs.RestartCount, cs.Started)
	}
}

const goodPod = `apiVersion: v1
kind: Pod
metadata:
  name: steady
spec:
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080"]
`

const badDocs = `apiVersion: v1
kind: ConfigMap
metadata:
  name: fine
data: {a: b}
---
apiVersion: v1
kind: Service
metadata:
  name: broken
spec:
  selector: {app: x}
  ports:
    - port: 70000
`

// A bad document in a watched directory is reported with its file and
// field; the rest of that file and the running pods carry on.
func TestBadDocumentIsReportedAlone(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "pod.yaml", goodPod)
	n := startNode(t, dir)
	pods := n.waitPodsReady("default", 1, 30*time.Second)

	writeFile(t, dir, "extra.yaml", badDocs)
	n.WaitFor(10*time.Second, "the error report", func() bool {
		log := n.Stderr.String()
		return strings.Contains(log, "extra.yaml") && strings.Contains(log, "spec.ports[0].port")
	})
	n.WaitFor(10*time.Second, "the good document of the same file", func() bool {
		_, err := n.Client.CoreV1().ConfigMaps("default").Get(context.Background(), "fine", metav1.GetOptions{})
		return err == nil
	})
	if _, err := n.Client.CoreV1().Services("default").Get(context.Background(), "broken", metav1.GetOptions{}); err == nil {
		t.Error("the bad Service was stored")
	}
	if code, _, err := httpGet("http://" + net.JoinHostPort(pods[0].Status.PodIP, "8080") + "/"); err != nil || code != 200 {
		t.Errorf("running pod stopped answering: %d %v", code, err)
	}
	if p := n.Pod("default", "steady"); !testutil.PodReady(p) {
		t.Error("running pod is no longer ready")
	}
}

func rollingDeployment(version string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: roll
spec:
  replicas: 4
  selector:
    matchLabels: {app: roll}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: roll}
    spec:
      containers:
        - name: web
          command: ["switchboard", "demo", "http", "--port", "8080"]
          env:
            - {name: VERSION, value: "%s"}
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: roll
spec:
  selector: {app: roll}
  ports:
    - port: 80
      targetPort: 8080
`, version)
}

// A template change rolls the pods without ever dropping below
// replicas − maxUnavailable ready endpoints.
func TestRollingUpdateKeepsEndpoints(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "roll.yaml", rollingDeployment("v1"))
	n := startNode(t, dir)
	before := n.waitPodsReady("default", 4, 45*time.Second)
	n.WaitFor(10*time.Second, "4 ready endpoints", func() bool { r, _ := n.ReadyEndpoints("default", "roll"); return r == 4 })

	// Watch every slice change from here on.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := n.Client.DiscoveryV1().EndpointSlices("default").Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=roll"})
	if err != nil {
		t.Fatal(err)
	}
	type state struct{ ready int }
	states := make(chan state, 1000)
	go func() {
		slices := map[string]*discoveryv1.EndpointSlice{}
		for e := range w.ResultChan() {
			s, ok := e.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			if e.Type == watch.Deleted {
				delete(slices, s.Name)
			} else {
				slices[s.Name] = s
			}
			r := 0
			for _, s := range slices {
				for _, ep := range s.Endpoints {
					if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
						r++
					}
				}
			}
			states <- state{r}
		}
		close(states)
	}()

	writeFile(t, dir, "roll.yaml", rollingDeployment("v2"))
	old := map[string]bool{}
	for _, p := range before {
		old[p.Name] = true
	}
	n.WaitFor(90*time.Second, "the rollout to finish", func() bool {
		pods := n.Pods("default", "")
		if len(pods) != 4 {
			return false
		}
		for i := range pods {
			if old[pods[i].Name] || !testutil.PodReady(&pods[i]) {
				return false
			}
		}
		r, total := n.ReadyEndpoints("default", "roll")
		return r == 4 && total == 4
	})
	for _, p := range n.Pods("default", "") {
		if p.Spec.Containers[0].Env[0].Value != "v2" {
			t.Errorf("pod %s runs %s", p.Name, p.Spec.Containers[0].Env[0].Value)
		}
	}
	cancel()
	minReady, events := 4, 0
	for s := range states {
		events++
		if s.ready < minReady {
			minReady = s.ready
		}
	}
	if events == 0 {
		t.Fatal("no slice changes seen during the rollout")
	}
	if minReady < 4-1 {
		t.Errorf("ready endpoints dropped to %d during the rollout; replicas − maxUnavailable = 3", minReady)
	}
	t.Logf("rollout: %d slice changes, at least %d ready endpoints throughout", events, minReady)
}

// checkIngress checks the quickstart's Ingress through up's controller:
// shop.example.test over HTTPS (the generated certificate) reaches a web
// pod; plain HTTP is redirected with 308.
func checkIngress(t *testing.T, n *testNode, pods []corev1.Pod) {
	t.Helper()
	m := regexp.MustCompile(`ingress on http://(\S+) and https://(\S+) `).FindStringSubmatch(n.Stdout.String())
	if m == nil {
		t.Fatalf("no ingress line in the output:\n%s", n.Stdout.String())
	}
	dialTo := func(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
		return func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
	}
	c := &http.Client{
		Timeout: 3 * time.Second,
		Transport: &http.Transport{
			DialContext:     dialTo(m[2]),
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "shop.example.test"},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var body string
	n.WaitFor(10*time.Second, "the ingress to answer for shop.example.test", func() bool {
		resp, err := c.Get("https://shop.example.test/ingress")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return resp.StatusCode == 200
	})
	var answer map[string]any
	if err := json.Unmarshal([]byte(body), &answer); err != nil || answer["path"] != "/ingress" {
		t.Fatalf("ingress answer %q: %v", body, err)
	}
	found := false
	for _, p := range pods {
		found = found || (p.Labels["app"] == "web" && answer["pod"] == p.Name)
	}
	if !found {
		t.Errorf("ingress answered by %v, not a web pod", answer["pod"])
	}
	plain := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: dialTo(m[1])},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := plain.Get("http://shop.example.test/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect || !strings.HasPrefix(resp.Header.Get("Location"), "https://shop.example.test") {
		t.Errorf("plain HTTP: %d Location %q, want 308 to https://shop.example.test", resp.StatusCode, resp.Header.Get("Location"))
	}
}
