package standalone

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/switchboard-dev/switchboard/internal/testutil"
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
  name: published
spec:
  containers:
    - name: web
      image: switchboard/demo
      command: ["switchboard", "demo", "http", "--port", "8080"]
      env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
      ports: [{name: http, containerPort: 8080, hostPort: 18080}]
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
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: switchboard
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: switchboard.dev/ingress
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  ingressClassName: switchboard
  tls:
    - hosts: [shop.example.test]
  rules:
    - host: shop.example.test
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: web
                port: {name: http}
`

// hostState is what the host's namespace shows of networking: the
// nftables ruleset and the links.
type hostState struct{ ruleset, links string }

func rootNetState(t *testing.T) hostState {
	t.Helper()
	r, err := exec.Command("nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list ruleset: %v\n%s", err, r)
	}
	l, err := exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link: %v\n%s", err, l)
	}
	return hostState{string(r), string(l)}
}

// checkNothingRemains checks, after an `up` stopped, that no namespace or
// mount of node base (or of its nodes base-1..N and fabric) is left and
// that the host's ruleset and links are as they were before it started.
func checkNothingRemains(t *testing.T, base string, before hostState) {
	t.Helper()
	if left := nodeNamespaces(base); len(left) > 0 {
		t.Errorf("namespaces left: %v", left)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), sandbox.NodeNamespaceName(base)) {
		t.Errorf("mounts left:\n%s", mi)
	}
	after := rootNetState(t)
	if after.ruleset != before.ruleset {
		t.Errorf("the host's nftables ruleset changed:\nbefore:\n%s\nafter:\n%s", before.ruleset, after.ruleset)
	}
	if after.links != before.links {
		t.Errorf("the host's links changed:\nbefore:\n%s\nafter:\n%s", before.links, after.links)
	}
	if pids := testutil.NodeProcesses(base, ""); len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
}

// newNetNSNode is a node (not yet launched) named PREFIX<pid>-<random>,
// whose namespaces are removed when the test ends, whatever happened.
func newNetNSNode(t *testing.T, prefix string) *testNode {
	n := &testNode{Node: testutil.NewNode(t, binary, fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%100000, rand.IntN(100000)), t.TempDir())}
	t.Cleanup(func() { _, _ = sandbox.RemoveNodeNamespaces(n.Name) })
	return n
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
	for tool, pkg := range map[string]string{"dig": "bind9-dnsutils", "nft": "nftables", "ip": "iproute2", "nsenter": "util-linux", "getent": "libc-bin", "curl": "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: apt-get install %s", tool, pkg)
		}
	}
	before := rootNetState(t)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), []byte(netnsFixture), 0o644); err != nil {
		t.Fatal(err)
	}
	n := newNetNSNode(t, "ns")
	// What a crashed run leaves: the next start removes it.
	leftover, err := sandbox.CreateNamedNetNS(sandbox.NodeNamespaceName(n.Name) + "-p-leftover")
	if err != nil {
		t.Fatal(err)
	}
	// Published on a host loopback address of this test's own, free
	// ports: tests run side by side.
	hostIP := fmt.Sprintf("127.53.%d.%d", rand.IntN(250), 1+rand.IntN(250))
	n.Launch([]string{"up", "--network", "netns", "--state-dir", n.StateDir, "--node-name", n.Name, "--log-level", "debug",
		"--ingress-http-addr", hostIP + ":0", "--ingress-https-addr", hostIP + ":0",
		"--api-addr", hostIP + ":0", "--dns-publish-addr", hostIP + ":0", "--cni-chain", "portmap", "-f", dir})
	n.waitPodsReady("default", 4, 60*time.Second)
	n.WaitFor(30*time.Second, "both web endpoints ready", func() bool { r, _ := n.ReadyEndpoints("default", "web"); return r == 2 })
	if _, err := os.Stat(leftover); !os.IsNotExist(err) || !strings.Contains(n.Stdout.String(), "removed 1 network namespaces a previous run") {
		t.Errorf("the leftover namespace %s should be removed at start (stat: %v); stdout:\n%s", leftover, err, n.Stdout.String())
	}
	web, dnsSvc := n.Service("default", "web"), n.Service("kube-system", "kube-dns")
	client := n.Pod("default", "client")
	pids := testutil.NodeProcesses(n.Name, "client")
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
			for _, p := range n.Pods("default", "") {
				if strings.HasPrefix(p.Name, "web-") && strings.Contains(got, `"pod": "`+p.Name+`"`) {
					seen[p.Name] = true
				}
			}
		}
		if len(seen) == 0 {
			t.Fatal("no answer named a web pod")
		}
		t.Logf("answers from %d web pods", len(seen))
		out, err := exec.Command("ip", "netns", "exec", sandbox.NodeNamespaceName(n.Name), "nft", "list", "tables").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "table ip switchboard") {
			t.Fatalf("node namespace tables: %v\n%s", err, out)
		}
	})

	// The reference portmap, chained by --cni-chain, gets the pod's
	// hostPort as containerd passes it (the portMappings capability) and
	// DNATs the node address's port 18080 to the pod.
	t.Run("hostPort through the chained portmap plugin", func(t *testing.T) {
		conf, err := os.ReadFile(filepath.Join(n.StateDir, "cni", "net.d", sandbox.ConflistName))
		if err != nil || !strings.Contains(string(conf), `"type": "portmap"`) {
			t.Fatalf("generated conflist (%v):\n%s", err, conf)
		}
		node := n.Pod("default", "published")
		var got []byte
		for i := 0; i < 20; i++ {
			got, err = exec.Command("ip", "netns", "exec", sandbox.NodeNamespaceName(n.Name), "curl", "-sS", "-m", "3", "http://"+node.Status.HostIP+":18080/").CombinedOutput()
			if err == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if err != nil || !strings.Contains(string(got), `"pod": "published"`) {
			t.Fatalf("curl node address:18080: %v: %s", err, got)
		}
	})

	t.Run("switchboard exec enters the pod's namespaces", func(t *testing.T) {
		want := fmt.Sprintf("search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5\n", dnsSvc.Spec.ClusterIP)
		var webPod *corev1.Pod
		for _, p := range n.Pods("default", "") {
			if strings.HasPrefix(p.Name, "web-") {
				webPod = &p
				break
			}
		}
		if webPod == nil {
			t.Fatal("no web pod")
		}
		for _, tc := range []struct {
			name    string
			args    []string
			want    string
			fields  bool   // compare the words only (getent pads with spaces)
			wantErr string // substring of the output when it must fail
			code    int
		}{
			// "nameserver = cluster DNS, search <ns>.svc.<zone> svc.<zone> <zone>, options ndots:5"
			{name: "resolv.conf is kubelet's", args: []string{"client", "--", "cat", "/etc/resolv.conf"}, want: want},
			{name: "the pod's hostname", args: []string{"client", "--", "hostname"}, want: "client\n"},
			{name: "the pod's network", args: []string{"client", "--", "getent", "hosts", "web"}, want: web.Spec.ClusterIP + " web.default.svc.cluster.local", fields: true},
			{name: "the container's environment", args: []string{webPod.Name, "-c", "web", "--", "printenv", "POD_IP"}, want: webPod.Status.PodIP + "\n"},
			{name: "the command's exit status", args: []string{"client", "--", "sh", "-c", "exit 3"}, code: 3},
			// kubectl: "container %s is not valid for pod %s"
			{name: "unknown container", args: []string{"client", "-c", "nope", "--", "true"}, wantErr: "container nope is not valid for pod client", code: 1},
			{name: "unknown pod", args: []string{"nope", "--", "true"}, wantErr: `pods "nope" not found`, code: 1},
			{name: "no --", args: []string{"client", "true"}, wantErr: "POD -- COMMAND", code: 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				cmd := exec.Command(binary, append([]string{"--state-dir", n.StateDir, "exec"}, tc.args...)...)
				var stdout, stderr strings.Builder
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != tc.code {
					t.Fatalf("exit status %d, want %d; stdout %q stderr %q", code, tc.code, stdout.String(), stderr.String())
				}
				if tc.wantErr != "" && !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("stderr %q, want it to contain %q", stderr.String(), tc.wantErr)
				}
				got := stdout.String()
				if tc.fields {
					got = strings.Join(strings.Fields(got), " ")
				}
				if tc.wantErr == "" && got != tc.want && tc.code == 0 {
					t.Fatalf("stdout %q, want %q (stderr %q)", stdout.String(), tc.want, stderr.String())
				}
			})
		}
	})

	var publishedAddrs []string
	t.Run("published on the host's loopback", func(t *testing.T) {
		out := n.Stdout.String()
		find := func(re string) string {
			t.Helper()
			m := regexp.MustCompile(re).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no %q in stdout:\n%s", re, out)
			}
			return m[1]
		}
		httpsAddr := find(`ingress on http://\S+ and https://(\S+) `)
		httpAddr := find(`ingress on http://(\S+) and`)
		apiAddr := find(`local API also on http://(\S+)`)
		dnsAddr := find(`cluster DNS published on the host at (\S+) `)
		publishedAddrs = []string{httpsAddr, httpAddr, apiAddr, dnsAddr}
		for _, a := range publishedAddrs {
			if h, _, _ := net.SplitHostPort(a); h != hostIP {
				t.Fatalf("published address %s, want one on %s", a, hostIP)
			}
		}
		t.Run("ingress HTTPS with curl --resolve (the README's line)", func(t *testing.T) {
			_, port, _ := net.SplitHostPort(httpsAddr)
			seen := map[string]bool{}
			for i := 0; i < 10 && len(seen) < 2; i++ {
				got, err := exec.Command("curl", "-sS", "-k", "-m", "5", "--resolve", "shop.example.test:"+port+":"+hostIP,
					"https://shop.example.test:"+port+"/").CombinedOutput()
				if err != nil {
					t.Fatalf("curl: %v: %s", err, got)
				}
				for _, p := range n.Pods("default", "") {
					if strings.HasPrefix(p.Name, "web-") && strings.Contains(string(got), `"pod": "`+p.Name+`"`) {
						seen[p.Name] = true
					}
				}
			}
			if len(seen) == 0 {
				t.Fatal("no answer through the published ingress named a web pod")
			}
		})
		t.Run("ingress HTTP redirects to HTTPS (308)", func(t *testing.T) {
			_, port, _ := net.SplitHostPort(httpAddr)
			got, err := exec.Command("curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", "shop.example.test:"+port+":"+hostIP,
				"http://shop.example.test:"+port+"/").CombinedOutput()
			if err != nil || string(got) != "308" {
				t.Fatalf("curl http: %v: %q, want 308", err, got)
			}
		})
		t.Run("local API", func(t *testing.T) {
			code, body, err := httpGet("http://" + apiAddr + "/api/v1/namespaces/default/pods/client")
			if err != nil || code != 200 || !strings.Contains(body, `"name":"client"`) {
				t.Fatalf("GET pod client: %d %v\n%s", code, err, body)
			}
		})
		t.Run("cluster DNS over UDP and TCP (dig)", func(t *testing.T) {
			h, port, _ := net.SplitHostPort(dnsAddr)
			for _, proto := range []string{"+notcp", "+tcp"} {
				got, err := exec.Command("dig", "+short", "+time=3", "+tries=2", proto, "@"+h, "-p", port, "web.default.svc.cluster.local").CombinedOutput()
				if err != nil || strings.TrimSpace(string(got)) != web.Spec.ClusterIP {
					t.Fatalf("dig %s: %v: %q, want %s", proto, err, got, web.Spec.ClusterIP)
				}
			}
		})
	})

	if err := n.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Run("nothing remains after stop", func(t *testing.T) {
		checkNothingRemains(t, n.Name, before)
		for _, a := range publishedAddrs {
			if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
				c.Close()
				t.Errorf("published address %s still accepts connections", a)
			}
		}
	})
}
