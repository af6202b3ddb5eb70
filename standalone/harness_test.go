package standalone

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// binary is the switchboard binary the end-to-end tests run, built once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", binary, "../cmd/switchboard")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building switchboard:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testNode is one `switchboard up` process (testutil.Node) with its own
// state directory, node name and address ranges.
type testNode struct {
	*testutil.Node
	podCIDR string
}

// startNode runs `switchboard up -f dir...` and waits until its local API
// answers /readyz. Everything it started is stopped when the test ends.
func startNode(t *testing.T, paths ...string) *testNode {
	t.Helper()
	return startNodeWith(t, nil, paths...)
}

// startNodeWith is startNode with more flags (given after the harness's
// own, so that they override them).
func startNodeWith(t *testing.T, flags []string, paths ...string) *testNode {
	t.Helper()
	// A private /24 for pods and one for services inside 127.0.0.0/8.
	r := 1 + rand.IntN(250)
	n := &testNode{
		Node:    testutil.NewNode(t, binary, fmt.Sprintf("e2e-%d-%d", os.Getpid(), rand.IntN(1_000_000)), t.TempDir()),
		podCIDR: fmt.Sprintf("127.50.%d.0/24", r),
	}
	args := []string{"up", "--network", "loopback", "--state-dir", n.StateDir, "--node-name", n.Name,
		"--pod-cidr", n.podCIDR, "--service-cidr", fmt.Sprintf("127.51.%d.0/24", r), "--log-level", "debug",
		// The node's own address, free ports: tests run side by side.
		"--ingress-http-addr", fmt.Sprintf("127.50.%d.1:0", r), "--ingress-https-addr", fmt.Sprintf("127.50.%d.1:0", r)}
	args = append(args, flags...)
	for _, p := range paths {
		args = append(args, "-f", p)
	}
	n.Launch(args)
	return n
}

// waitPodsReady waits until want pods of the namespace exist and are all
// Ready, and returns them.
func (n *testNode) waitPodsReady(ns string, want int, timeout time.Duration) []corev1.Pod {
	n.T.Helper()
	var pods []corev1.Pod
	n.WaitFor(timeout, fmt.Sprintf("%d ready pods in %s", want, ns), func() bool {
		pods = n.Pods(ns, "")
		ready := 0
		for i := range pods {
			if testutil.PodReady(&pods[i]) {
				ready++
			}
		}
		return len(pods) == want && ready == want
	})
	return pods
}

func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	if p == nil {
		return nil
	}
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// httpGet fetches a URL with a short timeout.
func httpGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// writeFile writes a manifest into dir atomically (write, then rename), as
// editors do.
func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// clusterDNS returns the address cluster DNS answers on: the kube-dns
// Service's address and the port its EndpointSlice names.
func (n *testNode) clusterDNS() string {
	n.T.Helper()
	svc, err := n.Client.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
	if err != nil {
		n.T.Fatalf("kube-system/kube-dns: %v", err)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "dns" {
			return net.JoinHostPort(svc.Spec.ClusterIP, p.TargetPort.String())
		}
	}
	n.T.Fatal("kube-dns has no dns port")
	return ""
}

// query asks addr over UDP and returns the answer's records as text
// (the rdata only) and the rcode.
func query(t *testing.T, addr, name string, qtype uint16) ([]string, int) {
	t.Helper()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	c := &mdns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("DNS %s %s at %s: %v", name, mdns.TypeToString[qtype], addr, err)
	}
	var out []string
	for _, rr := range r.Answer {
		h := rr.Header().String()
		out = append(out, strings.TrimSpace(strings.TrimPrefix(rr.String(), h)))
	}
	return out, r.Rcode
}

// lookup is query for the records only.
func lookup(t *testing.T, addr, name string, qtype uint16) []string {
	t.Helper()
	out, _ := query(t, addr, name, qtype)
	return out
}
