package standalone

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/internal/testutil"
	"github.com/switchboard-dev/switchboard/node/sandbox"
)

// nodesFixture places one web pod on every node: by nodeName, by
// nodeSelector on the kubernetes.io/hostname label, and by nodeName again.
const nodesFixture = `apiVersion: v1
kind: Pod
metadata:
  name: p1
  labels: {app: web}
spec:
  nodeName: NODE-1
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080"]
      readinessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: p2
  labels: {app: web}
spec:
  nodeSelector: {kubernetes.io/hostname: NODE-2}
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080"]
      readinessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: p3
  labels: {app: web}
spec:
  nodeName: NODE-3
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080"]
      readinessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
`

// TestUpNetNSNodes runs `up --network netns --nodes 3` in both overlay
// modes: every pod reaches the pods on the two other nodes by pod IP (and
// the service by name through cluster DNS on the first node), the
// NodePort of every node leads to pods on the other nodes too
// (externalTrafficPolicy Cluster: "kube-proxy ... forwards to any
// endpoint"), and after exit nothing of the cluster remains on the host.
func TestUpNetNSNodes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--network netns needs root (network namespaces, nftables, bind mounts)")
	}
	for _, overlay := range []string{sandbox.OverlayVXLAN, sandbox.OverlayHostGW} {
		t.Run(overlay, func(t *testing.T) {
			before := rootNetState(t)
			base := fmt.Sprintf("m%d-%d", os.Getpid()%100000, rand.IntN(100000))
			var names []string
			for i := 1; i <= 3; i++ {
				names = append(names, fmt.Sprintf("%s-%d", base, i))
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(strings.ReplaceAll(nodesFixture, "NODE", base)), 0o644); err != nil {
				t.Fatal(err)
			}
			n := &testNode{Node: testutil.NewNode(t, binary, base, t.TempDir())}
			t.Cleanup(func() {
				for _, name := range names {
					_, _ = sandbox.RemoveNodeNamespaces(name)
					for _, pid := range testutil.NodeProcesses(name, "") {
						t.Errorf("process %d (%s) of node %s left", pid, testutil.Cmdline(pid), name)
					}
				}
				_ = sandbox.RemoveNamedNetNS(filepath.Join(sandbox.NetnsDir, sandbox.FabricNamespaceName(base)))
			})
			hostIP := fmt.Sprintf("127.54.%d.%d", rand.IntN(250), 1+rand.IntN(250))
			n.Launch([]string{"up", "--network", "netns", "--nodes", "3", "--overlay", overlay, "--node-name", base,
				"--state-dir", n.StateDir, "--log-level", "debug",
				"--ingress-http-addr", hostIP + ":0", "--ingress-https-addr", hostIP + ":0", "--dns-publish-addr", hostIP + ":0", "-f", dir})
			pods := n.waitPodsReady("default", 3, 60*time.Second)

			nodes := map[string]netip.Prefix{}
			for _, name := range names {
				node, err := n.Client.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("get node %s: %v", name, err)
				}
				cidr, err := netip.ParsePrefix(node.Spec.PodCIDR)
				if err != nil {
					t.Fatalf("node %s: spec.podCIDR %q: %v", name, node.Spec.PodCIDR, err)
				}
				for _, other := range nodes {
					if other.Overlaps(cidr) {
						t.Fatalf("node %s: podCIDR %s overlaps %s", name, cidr, other)
					}
				}
				nodes[name] = cidr
			}
			ips := map[string]string{}
			for _, p := range pods {
				want := strings.Replace(p.Name, "p", base+"-", 1)
				if p.Spec.NodeName != want {
					t.Fatalf("pod %s on node %q, want %s", p.Name, p.Spec.NodeName, want)
				}
				if !nodes[want].Contains(netip.MustParseAddr(p.Status.PodIP)) {
					t.Fatalf("pod %s has IP %s, outside its node's podCIDR %s", p.Name, p.Status.PodIP, nodes[want])
				}
				ips[p.Name] = p.Status.PodIP
			}
			for _, from := range []string{"p1", "p2", "p3"} {
				for _, to := range []string{"p1", "p2", "p3"} {
					if from == to {
						continue
					}
					out, err := exec.Command(binary, "--state-dir", n.StateDir, "exec", from, "--", "curl", "-sS", "-m", "5", "http://"+ips[to]+":8080/").CombinedOutput()
					if err != nil || !strings.Contains(string(out), `"pod": "`+to+`"`) {
						t.Errorf("%s -> %s (%s): %v\n%s", from, to, ips[to], err, out)
					}
				}
			}
			// Cluster DNS runs on the first node; the service proxy on
			// every node.
			for _, from := range []string{"p1", "p2", "p3"} {
				// Each node's proxy follows the EndpointSlices on its own
				// schedule: until it has them, the service rejects.
				seen := map[string]bool{}
				var lastErr string
				deadline := time.Now().Add(20 * time.Second)
				for tries := 0; tries < 15 && len(seen) < 3 && time.Now().Before(deadline); {
					out, err := exec.Command(binary, "--state-dir", n.StateDir, "exec", from, "--", "curl", "-sS", "-m", "5", "http://web/").CombinedOutput()
					if err != nil {
						lastErr = fmt.Sprintf("%v: %s", err, out)
						time.Sleep(200 * time.Millisecond)
						continue
					}
					tries++
					for _, p := range []string{"p1", "p2", "p3"} {
						if strings.Contains(string(out), `"pod": "`+p+`"`) {
							seen[p] = true
						}
					}
				}
				t.Logf("%s reached %d of the 3 web pods through the service", from, len(seen))
				if len(seen) < 2 {
					t.Errorf("%s -> http://web/ reached only %v (last error: %s)", from, seen, lastErr)
				}
			}

			// The NodePort on each node's address, asked from p1: with
			// externalTrafficPolicy Cluster every node forwards to
			// endpoints on any node (SNAT to the node's address).
			for _, p := range pods {
				node, addr := p.Spec.NodeName, p.Status.HostIP
				seen := map[string]bool{}
				var lastErr string
				for tries := 0; tries < 20 && len(seen) < 2; tries++ {
					out, err := exec.Command(binary, "--state-dir", n.StateDir, "exec", "p1", "--", "curl", "-sS", "-m", "5", "http://"+addr+":30080/").CombinedOutput()
					if err != nil {
						lastErr = fmt.Sprintf("%v: %s", err, out)
						time.Sleep(200 * time.Millisecond)
						continue
					}
					for _, q := range pods {
						if strings.Contains(string(out), `"pod": "`+q.Name+`"`) {
							seen[q.Name] = true
						}
					}
				}
				if len(seen) < 2 {
					t.Errorf("NodePort %s:30080 (node %s) reached only %v; want pods on other nodes too (last error: %s)", addr, node, seen, lastErr)
				}
			}

			if err := n.Stop(30 * time.Second); err != nil {
				t.Fatal(err)
			}
			checkNothingRemains(t, base, before)
		})
	}
}
