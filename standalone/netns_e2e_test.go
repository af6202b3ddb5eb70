package standalone

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/node/sandbox"
)

const netnsFixture = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: switchboard/demo
          command: ["switchboard", "demo", "http", "--port", "8080"]
          env:
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
          ports: [{name: http, containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: http}
            periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata:
  name: client
spec:
  hostAliases:
    - ip: 10.1.2.3
      hostnames: [alias.example]
  containers:
    - name: sh
      image: busybox
      command: ["sleep", "3600"]
`

// rootNetState is what the host's namespace shows of networking: the
// nftables ruleset, the links and the named namespaces of a node.
func rootNetState(t *testing.T) (ruleset, links string) {
	t.Helper()
	r, err := exec.Command("nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v\n%s", err, r)
	}
	l, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v\n%s", err, l)
	}
	return string(r), string(l)
}

func nodeNamespaces(node string) []string {
	var out []string
	entries, _ := os.ReadDir(sandbox.NetnsDir)
	base := sandbox.NodeNamespaceName(node)
	for _, e := range entries {
		if e.Name() == base || strings.HasPrefix(e.Name(), base+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestUpNetNS runs `switchboard up --network netns` and checks a pod's
// view from inside its namespaces (entered with nsenter, as `kubectl
// exec` would run a command there).
func TestUpNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--network netns needs root (network namespaces, nftables, bind mounts)")
	}
	for tool, pkg := range map[string]string{"nft": "nftables", "ip": "iproute2", "nsenter": "util-linux", "getent": "libc-bin", "curl": "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install %s", tool, pkg)
		}
	}
	rulesBefore, linksBefore := rootNetState(t)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(netnsFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	n := &testNode{
		t:        t,
		name:     fmt.Sprintf("ns%d-%d", os.Getpid()%100000, rand.IntN(100000)),
		stateDir: t.TempDir(),
		stdout:   &syncBuffer{},
		stderr:   &syncBuffer{},
		exited:   make(chan struct{}),
	}
	t.Cleanup(func() {
		// Whatever happened, nothing of the node stays.
		_, _ = sandbox.RemoveNodeNamespaces(n.name)
	})
	// What a crashed run leaves: the next start removes it.
	leftover, err := sandbox.CreateNamedNetNS(sandbox.NodeNamespaceName(n.name) + "-p-leftover")
	if err != nil {
		t.Fatal(err)
	}
	n.launch([]string{"up", "--network", "netns", "--state-dir", n.stateDir, "--node-name", n.name, "--log-level", "debug", "-f", dir})
	n.waitPodsReady("default", 3, 60*time.Second)
	n.waitFor(30*time.Second, "both web endpoints ready", func() bool { r, _ := n.readyEndpoints("default", "web"); return r == 2 })
	if _, err := os.Stat(leftover); !os.IsNotExist(err) || !strings.Contains(n.stdout.String(), "removed 1 network namespaces a previous run") {
		t.Errorf("the leftover namespace %s should be removed at start (stat: %v); stdout:\n%s", leftover, err, n.stdout.String())
	}
	web, err := n.client.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dnsSvc, err := n.client.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	client := n.pod("default", "client")
	pids := podProcesses(n.name, "client")
	if len(pids) == 0 {
		t.Fatal("no process of pod client")
	}
	inPod := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		full := append([]string{"-t", fmt.Sprint(pids[0]), "-n", "-m", "-u", "--"}, args...)
		out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
		return string(out), err
	}

	t.Run("resolv.conf is kubelet's (ClusterFirst)", func(t *testing.T) {
		got, err := inPod("cat", "/etc/resolv.conf")
		if err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		// "search <ns>.svc.<zone> svc.<zone> <zone>", nameserver = the
		// cluster DNS Service, "options ndots:5".
		want := fmt.Sprintf("search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n", dnsSvc.Spec.ClusterIP)
		if got != want {
			t.Fatalf("got\n%q\nwant\n%q", got, want)
		}
	})
	t.Run("hosts and hostname are the pod's", func(t *testing.T) {
		got, err := inPod("cat", "/etc/hosts")
		if err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		for _, line := range []string{client.Status.PodIP + "\tclient\n", "10.1.2.3\talias.example\n"} {
			if !strings.Contains(got, line) {
				t.Errorf("/etc/hosts lacks %q:\n%s", line, got)
			}
		}
		h, err := inPod("hostname")
		if err != nil || strings.TrimSpace(h) != "client" {
			t.Errorf("hostname %q (%v), want client", h, err)
		}
	})
	t.Run("getent hosts web resolves through cluster DNS", func(t *testing.T) {
		got, err := inPod("getent", "hosts", "web")
		if err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		f := strings.Fields(got)
		if len(f) < 2 || f[0] != web.Spec.ClusterIP || f[1] != "web.default.svc.cluster.local" {
			t.Fatalf("getent hosts web: %q, want %s web.default.svc.cluster.local", got, web.Spec.ClusterIP)
		}
	})
	t.Run("HTTP to the service by name through the nftables proxy", func(t *testing.T) {
		seen := map[string]bool{}
		for i := 0; i < 20 && len(seen) < 2; i++ {
			got, err := inPod("curl", "-sS", "-m", "5", "http://web/")
			if err != nil {
				t.Fatalf("curl http://web/: %v: %s", err, got)
			}
			for _, p := range n.pods("default") {
				if strings.HasPrefix(p.Name, "web-") && strings.Contains(got, `"pod": "`+p.Name+`"`) {
					seen[p.Name] = true
				}
			}
		}
		if len(seen) == 0 {
			t.Fatal("no answer named a web pod")
		}
		t.Logf("answers from %d web pods", len(seen))
		out, err := exec.Command("ip", "netns", "exec", sandbox.NodeNamespaceName(n.name), "nft", "list", "tables").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "table ip switchboard") {
			t.Fatalf("node namespace tables: %v\n%s", err, out)
		}
	})

	if err := n.stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Run("nothing remains after stop", func(t *testing.T) {
		if left := nodeNamespaces(n.name); len(left) > 0 {
			t.Errorf("namespaces left: %v", left)
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if strings.Contains(string(mi), sandbox.NodeNamespaceName(n.name)) {
			t.Errorf("mounts left:\n%s", mi)
		}
		rulesAfter, linksAfter := rootNetState(t)
		if rulesAfter != rulesBefore {
			t.Errorf("the host's nftables ruleset changed:\nbefore:\n%s\nafter:\n%s", rulesBefore, rulesAfter)
		}
		if linksAfter != linksBefore {
			t.Errorf("the host's links changed:\nbefore:\n%s\nafter:\n%s", linksBefore, linksAfter)
		}
		if pids := podProcesses(n.name, ""); len(pids) > 0 {
			t.Errorf("processes left: %v", pids)
		}
	})
}
