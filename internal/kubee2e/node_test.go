package kubee2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/ingress/routing"
	"github.com/switchboard-dev/switchboard/internal/kubetest"
	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/internal/testutil"
)

const (
	ns          = "e2e"
	nodeName    = "n1"
	podPort     = 8080  // every pod serves HTTP here, answering its name
	ingressPort = 18080 // the ingress's plain HTTP listener in the node namespace
)

// component is a switchboard command running in the node namespace.
type component struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.SyncBuffer
	done chan struct{}
	err  error
}

func (c *component) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// startComponent starts bin with args in node's namespace. It is killed
// when t ends (unless it has exited), and its output is logged if t failed.
func startComponent(t *testing.T, node *testnet.Host, name, bin string, args ...string) *component {
	t.Helper()
	c := &component{name: name, cmd: exec.Command(bin, args...), out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	t.Cleanup(func() {
		if c.cmd.Process == nil {
			return
		}
		if !c.exited() {
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", c.name, tail(c.out.String(), 40))
		}
	})
	if err := node.Do(c.cmd.Start); err != nil {
		t.Fatalf("start %s in %s: %v", name, node.NetNS, err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	return c
}

// stop sends SIGTERM and returns the exit error.
func (c *component) stop(t *testing.T) error {
	t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.err
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s did not exit within 15 s of SIGTERM", c.name)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildSwitchboard starts building cmd/switchboard into dir; the returned
// function waits for the build.
func buildSwitchboard(t *testing.T, dir string) (bin string, wait func()) {
	t.Helper()
	bin = filepath.Join(dir, "switchboard")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/switchboard-dev/switchboard/cmd/switchboard")
	var out testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("go build: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	waited := false
	t.Cleanup(func() {
		cancel()
		if !waited {
			<-done
		}
	})
	return bin, func() {
		t.Helper()
		if !waited {
			err, waited = <-done, true
		}
		if err != nil {
			t.Fatalf("building switchboard: %v\n%s", err, out.String())
		}
	}
}

// serviceManifests is a selector-less Service with a fixed cluster IP, a
// hand-written EndpointSlice whose endpoints are the given pods (nothing
// runs an EndpointSlice controller here) and an Ingress of class
// switchboard routing host to it.
func serviceManifests(name, clusterIP, host string, pods ...*testnet.Host) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  clusterIP: %[3]s
  ports: [{name: http, port: 80, targetPort: %[4]d, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: %[1]s, namespace: %[2]s}
spec:
  ingressClassName: switchboard
  rules:
  - host: %[5]s
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: %[1]s, port: {name: http}}}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: %[1]s-1
  namespace: %[2]s
  labels: {kubernetes.io/service-name: %[1]s}
addressType: IPv4
ports: [{name: http, port: %[4]d, protocol: TCP}]
endpoints:
`, name, ns, clusterIP, podPort, host)
	for _, p := range pods {
		fmt.Fprintf(&b, "- addresses: [%q]\n  conditions: {ready: true}\n  nodeName: %s\n  targetRef: {kind: Pod, namespace: %s, name: %s}\n",
			p.IP.String(), nodeName, ns, p.Name)
	}
	return b.String()
}

// httpGet GETs http://addr/ with the given Host header from h's
// namespace, on a fresh connection.
func httpGet(h *testnet.Host, addr netip.AddrPort, host string) (int, string, error) {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return h.DialTCP(ctx, addr)
			},
		},
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr.String()+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, strings.TrimSpace(string(body)), err
}

var digStatus = regexp.MustCompile(`status: ([A-Z]+)`)

// dig asks server for name's A records with dig(1) run in h's namespace
// and returns the response code and the addresses answered.
func dig(h *testnet.Host, server netip.Addr, name string) (string, []string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "dig", "@"+server.String(), "+time=1", "+tries=1", "+noall", "+comments", "+answer", name, "A")
	if err != nil {
		return "", nil, err
	}
	m := digStatus.FindStringSubmatch(string(out))
	if m == nil {
		return "", nil, fmt.Errorf("no status in dig's output:\n%s", out)
	}
	var as []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && !strings.HasPrefix(f[0], ";") && f[3] == "A" {
			as = append(as, f[4])
		}
	}
	return m[1], as, nil
}

// await polls check until it reports success, failing t with the last
// observation after timeout; it logs how long that took.
func await(t *testing.T, what string, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	start := time.Now()
	for {
		ok, last := check()
		if ok {
			t.Logf("%s: after %s", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClusterModeInANodeNamespace runs the built binary's kube-proxy
// (nftables, then iptables), dns and ingress in a node namespace against a
// real kube-apiserver, and follows objects made with kubectl in real
// connections: a client pod reaches the pods behind a Service's cluster
// IP, dig gets the Service's name answered with its cluster IP, and an
// outside client reaches a pod through the ingress by Host header.
// Deleting the objects takes each away again, and after the API server is
// killed and restarted every component is still running and follows a
// change made after the restart.
func TestClusterModeInANodeNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces and runs kube-proxy's nftables/iptables modes in them (run as root, as CI does)")
	}
	for _, tool := range []string{"kubectl", "dig", "nft", "iptables-save"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	bin, waitBuild := buildSwitchboard(t, t.TempDir())
	kc := kubetest.Start(t)
	kubectl := func(stdin string, args ...string) {
		t.Helper()
		if out, err := kc.Kubectl(t, stdin, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}

	n := testnet.New(t, testnet.Options{NodeName: nodeName})
	node := n.Node()
	podA, podB := n.AddPod(t, "pod-a"), n.AddPod(t, "pod-b")
	podA.ServeHTTP(t, podPort)
	podB.ServeHTTP(t, podPort)
	client := n.AddPod(t, "client")      // a pod that uses Services
	outside := n.AddClient(t, "outside") // a machine outside the cluster

	// The API server listens on the host's loopback; the node namespace
	// reaches it on its own loopback through a relay whose listener was
	// created inside it.
	var ln net.Listener
	if err := node.Do(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	nodeKubeconfig := kc.KubeconfigVia(t, ln)
	// The relay is the only way: the API server's own address is not
	// reachable from the node namespace (its loopback is the node's own).
	if c, err := node.DialTCP(context.Background(), netip.MustParseAddrPort(strings.TrimPrefix(kc.URL, "https://"))); err == nil {
		c.Close()
		t.Fatalf("the node namespace reaches the API server at %s without the relay", kc.URL)
	}

	kubectl(fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: %s}
---
apiVersion: v1
kind: Node
metadata: {name: %s}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: switchboard}
spec: {controller: %s}
`, ns, nodeName, routing.ControllerName), "apply", "-f", "-")

	corefile := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(corefile, []byte("cluster.local:53 {\n    kubernetes cluster.local\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitBuild()
	common := []string{"--kubeconfig", nodeKubeconfig, "--log-level", "warn"}
	kubeProxy := func(mode string) *component {
		return startComponent(t, node, "kube-proxy "+mode, bin, append([]string{"kube-proxy", "--mode", mode, "--node-name", nodeName,
			"--cluster-cidr", n.PodCIDR().String(), "--min-sync-period", "100ms",
			"--healthz-bind-address", "", "--metrics-bind-address", "", "--state-dir", t.TempDir()}, common...)...)
	}
	dns := startComponent(t, node, "dns", bin, append([]string{"dns", "--corefile", corefile, "--state-dir", t.TempDir()}, common...)...)
	ing := startComponent(t, node, "ingress", bin, append([]string{"ingress", "--http-addr", fmt.Sprintf("0.0.0.0:%d", ingressPort),
		"--https-addr", "", "--status-addr", "", "--access-log=false", "--upstream-connect-timeout", "1s",
		"--state-dir", t.TempDir()}, common...)...)
	proxy := kubeProxy("nftables")

	dnsServer := n.Gateway() // the node, as the pods see it
	ingressAddr := netip.AddrPortFrom(node.IP, ingressPort)
	running := func() {
		t.Helper()
		for _, c := range []*component{dns, ing, proxy} {
			if c.exited() {
				t.Fatalf("%s exited: %v", c.name, c.err)
			}
		}
	}

	// reachesPods: through ip:80 from h, every pod in want answers (and
	// no other).
	reachesPods := func(h *testnet.Host, ip string, want ...*testnet.Host) func() (bool, string) {
		seen := map[string]bool{}
		return func() (bool, string) {
			code, body, err := httpGet(h, netip.MustParseAddrPort(ip+":80"), "")
			if err != nil || code != http.StatusOK {
				return false, fmt.Sprintf("%d %q %v (seen %v)", code, body, err, seen)
			}
			seen[body] = true
			for _, p := range want {
				if !seen[p.Name] {
					return false, fmt.Sprintf("seen %v", seen)
				}
			}
			return len(seen) == len(want), fmt.Sprintf("seen %v", seen)
		}
	}
	refused := func(h *testnet.Host, ip string) func() (bool, string) {
		return func() (bool, string) {
			code, body, err := httpGet(h, netip.MustParseAddrPort(ip+":80"), "")
			return errors.Is(err, syscall.ECONNREFUSED), fmt.Sprintf("%d %q %v", code, body, err)
		}
	}
	unreachable := func(h *testnet.Host, ip string) func() (bool, string) {
		return func() (bool, string) {
			code, body, err := httpGet(h, netip.MustParseAddrPort(ip+":80"), "")
			return err != nil, fmt.Sprintf("%d %q %v", code, body, err)
		}
	}
	answers := func(name, ip string) func() (bool, string) {
		return func() (bool, string) {
			st, as, err := dig(client, dnsServer, name)
			return err == nil && st == "NOERROR" && strings.Join(as, ",") == ip, fmt.Sprintf("%s %v %v", st, as, err)
		}
	}
	nxdomain := func(name string) func() (bool, string) {
		return func() (bool, string) {
			st, as, err := dig(client, dnsServer, name)
			return err == nil && st == "NXDOMAIN", fmt.Sprintf("%s %v %v", st, as, err)
		}
	}
	ingress := func(host string, wantCode int, bodies ...string) func() (bool, string) {
		return func() (bool, string) {
			code, body, err := httpGet(outside, ingressAddr, host)
			ok := err == nil && code == wantCode
			if ok && len(bodies) > 0 {
				ok = false
				for _, b := range bodies {
					ok = ok || body == b
				}
			}
			return ok, fmt.Sprintf("%d %q %v", code, body, err)
		}
	}
	rules := func(contains bool, what string, args ...string) func() (bool, string) {
		return func() (bool, string) {
			out, err := node.Exec(context.Background(), args...)
			return err == nil && strings.Contains(string(out), what) == contains, fmt.Sprintf("%v\n%s", err, tail(string(out), 20))
		}
	}
	const first = 30 * time.Second // includes the components' start and first sync
	const change = 10 * time.Second

	const webIP, webHost, webName = "10.96.50.10", "web.e2e.test", "web." + ns + ".svc.cluster.local."
	t.Run("nftables: created objects serve, deleted ones stop", func(t *testing.T) {
		kubectl(serviceManifests("web", webIP, webHost, podA, podB), "apply", "-f", "-")
		await(t, "a client pod reaches both pods through the cluster IP", first, reachesPods(client, webIP, podA, podB))
		await(t, "the node itself reaches both pods through the cluster IP", change, reachesPods(node, webIP, podA, podB))
		await(t, "the nftables rules hold the cluster IP", change, rules(true, webIP, "nft", "list", "table", "ip", "switchboard"))
		await(t, "dig answers the Service's name with its cluster IP", first, answers(webName, webIP))
		await(t, "an outside client reaches a pod through the ingress", first, ingress(webHost, http.StatusOK, podA.Name, podB.Name))
		// "status.loadBalancer.ingress ... a list containing ingress points
		// for the load-balancer": written through the relay.
		nodeAddrs := append([]netip.Addr{n.Gateway()}, n.NodeIPs()...)
		var published string
		await(t, "the ingress wrote status.loadBalancer", change, func() (bool, string) {
			out, err := kc.Kubectl(t, "", "get", "-n", ns, "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
			published = strings.TrimSpace(out)
			ip, perr := netip.ParseAddr(published)
			return err == nil && perr == nil && slices.Contains(nodeAddrs, ip), fmt.Sprintf("%q %v (node addresses %v)", out, err, nodeAddrs)
		})
		t.Logf("the ingress published %s", published)

		// kube-proxy rejects traffic to a Service without endpoints (its
		// no-endpoint-services map / KUBE-SERVICES filter chain: ICMP port
		// unreachable, so the connection is refused, not timed out).
		kubectl("", "delete", "-n", ns, "endpointslice", "web-1")
		await(t, "a Service without endpoints refuses connections", change, refused(client, webIP))
		await(t, "the ingress answers 503 for a backend without endpoints", change, ingress(webHost, http.StatusServiceUnavailable))

		kubectl("", "delete", "-n", ns, "service/web", "ingress/web")
		await(t, "dig answers NXDOMAIN for the deleted Service", change, nxdomain(webName))
		await(t, "the ingress answers 404 for the deleted Ingress's host", change, ingress(webHost, http.StatusNotFound))
		await(t, "the nftables rules no longer hold the cluster IP", change, rules(false, webIP, "nft", "list", "table", "ip", "switchboard"))
		await(t, "the cluster IP leads nowhere", change, unreachable(client, webIP))
		running()
		if err := proxy.stop(t); err != nil {
			t.Fatalf("kube-proxy nftables after SIGTERM: %v", err)
		}
	})
	if t.Failed() {
		return
	}

	const lateIP, lateHost, lateName = "10.96.50.20", "late.e2e.test", "late." + ns + ".svc.cluster.local."
	t.Run("iptables: serves, and catches up after an API server restart", func(t *testing.T) {
		proxy = kubeProxy("iptables")
		kubectl(serviceManifests("web", webIP, webHost, podA, podB), "apply", "-f", "-")
		await(t, "a client pod reaches both pods through the cluster IP", first, reachesPods(client, webIP, podA, podB))
		await(t, "the node itself reaches both pods through the cluster IP", change, reachesPods(node, webIP, podA, podB))
		await(t, "the iptables rules hold the cluster IP", change, rules(true, webIP+"/32", "iptables-save", "-t", "nat"))
		// "On start the other kernel modes' rules are removed."
		await(t, "the nftables mode's table is gone", change, func() (bool, string) {
			out, err := node.Exec(context.Background(), "nft", "list", "table", "ip", "switchboard")
			return err != nil, string(out)
		})
		await(t, "dig answers the Service's name", change, answers(webName, webIP))
		await(t, "the ingress routes the Service's host", change, ingress(webHost, http.StatusOK, podA.Name, podB.Name))

		kc.StopAPIServer()
		// The components keep serving what they have.
		await(t, "the cluster IP works while the API server is down", change, reachesPods(client, webIP, podA, podB))
		await(t, "dig answers while the API server is down", change, answers(webName, webIP))
		await(t, "the ingress routes while the API server is down", change, ingress(webHost, http.StatusOK, podA.Name, podB.Name))
		running()
		time.Sleep(time.Second) // let the watches notice and start retrying
		if err := kc.StartAPIServer(); err != nil {
			t.Fatal(err)
		}
		kubectl(serviceManifests("late", lateIP, lateHost, podB), "apply", "-f", "-")
		await(t, "a Service created after the restart reaches its pod", first, reachesPods(client, lateIP, podB))
		await(t, "dig answers a Service created after the restart", first, answers(lateName, lateIP))
		await(t, "the ingress routes an Ingress created after the restart", first, ingress(lateHost, http.StatusOK, podB.Name))
		kubectl("", "delete", "-n", ns, "endpointslice", "late-1")
		await(t, "after the restart, a Service whose endpoints went refuses connections", change, refused(client, lateIP))
		running()
	})
}
