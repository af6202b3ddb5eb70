// Package e2e is the end-to-end test of cluster DNS, through the path a
// user takes: the real switchboard binary running `switchboard up -f
// MANIFESTS --corefile COREFILE`, asked by the real `dig`. It holds tests
// only (and a README); it owns no code of the server and must not reach
// into the plugins' internals: everything it knows it reads from the
// node's local API, the DNS answers and the /metrics endpoint.
package e2e

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// binary is the switchboard binary under test, built once by TestMain.
var binary string

// digPath is the dig binary ("" when it is not installed).
var digPath string

func TestMain(m *testing.M) {
	if p, err := exec.LookPath("dig"); err == nil {
		digPath = p
	} else {
		// Every test that needs the binary needs dig too and skips.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "switchboard-dns-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "switchboard")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/switchboard")
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

// needDig skips the test when dig is missing.
func needDig(t *testing.T) {
	t.Helper()
	if digPath == "" {
		t.Skip("dig is not installed: these tests ask the running server with the real dig (./test.sh installs bind9-dnsutils)")
	}
}

// ranges hands out distinct random third octets, so that the nodes of
// one run (and runs side by side) get /24s of their own inside
// 127.52.0.0/16 (pods), 127.53.0.0/16 (services), 127.54.0.0/16 (the
// test's upstream) and 127.55.0.0/16 (extra client addresses).
var ranges struct {
	sync.Mutex
	used map[int]bool
}

func pickOctet() int {
	ranges.Lock()
	defer ranges.Unlock()
	if ranges.used == nil {
		ranges.used = map[int]bool{}
	}
	for {
		r := 1 + rand.IntN(250)
		if !ranges.used[r] {
			ranges.used[r] = true
			return r
		}
	}
}

// addrs are the addresses of one node, known before it starts so that
// its Corefile can name them: `up` puts cluster DNS on the service CIDR's
// tenth address and the node on the pod CIDR's first.
type addrs struct {
	r        int
	podCIDR  string
	svcCIDR  string
	dnsIP    string // kube-dns cluster IP
	nodeIP   string
	upstream string // the test's upstream DNS server's IP
	client   func(i int) string
}

func newAddrs() addrs {
	r := pickOctet()
	return addrs{
		r:        r,
		podCIDR:  fmt.Sprintf("127.52.%d.0/24", r),
		svcCIDR:  fmt.Sprintf("127.53.%d.0/24", r),
		dnsIP:    fmt.Sprintf("127.53.%d.10", r),
		nodeIP:   fmt.Sprintf("127.52.%d.1", r),
		upstream: fmt.Sprintf("127.54.%d.1", r),
		client:   func(i int) string { return fmt.Sprintf("127.55.%d.%d", r, i) },
	}
}

// node is one `switchboard up` process (testutil.Node) with a private
// state directory, a unique node name and its own address ranges.
type node struct {
	*testutil.Node
	addrs addrs

	dnsAddr string // ip:port of cluster DNS, read from kube-system/kube-dns
	dnsPort string
}

// startNode runs `switchboard up -f manifests --corefile corefile` and
// waits until the local API is ready and kube-dns is registered.
// Everything it started is stopped when the test ends.
func startNode(t *testing.T, a addrs, manifests, corefile string) *node {
	t.Helper()
	n := &node{
		Node:  testutil.NewNode(t, binary, fmt.Sprintf("dnse2e-%d-%d", os.Getpid(), rand.IntN(1_000_000)), t.TempDir()),
		addrs: a,
	}
	n.Launch([]string{"up", "--network", "loopback", "--state-dir", n.StateDir, "--node-name", n.Name,
		"--pod-cidr", a.podCIDR, "--service-cidr", a.svcCIDR,
		"--log-level", "debug", "-f", manifests, "--corefile", corefile})

	// Where cluster DNS answers: the kube-dns Service's cluster IP, and
	// the port its dns port targets (53 as root, 1053 otherwise).
	svc := n.Service("kube-system", "kube-dns")
	if svc.Spec.ClusterIP != a.dnsIP {
		t.Fatalf("kube-dns cluster IP %s; the Corefile was written for %s (the service CIDR's tenth address)", svc.Spec.ClusterIP, a.dnsIP)
	}
	for _, p := range svc.Spec.Ports {
		if p.Name == "dns" {
			n.dnsPort = p.TargetPort.String()
		}
	}
	if n.dnsPort == "" {
		t.Fatal("kube-dns has no dns port")
	}
	n.dnsAddr = net.JoinHostPort(a.dnsIP, n.dnsPort)
	return n
}

// readyEndpoints counts the endpoints whose ready condition is true in the
// service's EndpointSlices.
func (n *node) readyEndpoints(ns, svc string) int {
	ready, _ := n.ReadyEndpoints(ns, svc)
	return ready
}

// clusterIP reads a Service's cluster IP from the local API.
func (n *node) clusterIP(ns, name string) string {
	n.T.Helper()
	svc := n.Service(ns, name)
	if net.ParseIP(svc.Spec.ClusterIP) == nil {
		n.T.Fatalf("service %s/%s has no cluster IP (%q)", ns, name, svc.Spec.ClusterIP)
	}
	return svc.Spec.ClusterIP
}

// metrics fetches the Prometheus text the prometheus plugin serves.
func metrics(addr string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return b.String(), nil
}

// metricSum adds up the samples of a metric whose labels contain every
// one of the given `name="value"` pairs; found says whether any matched.
func metricSum(text, name string, labels ...string) (sum float64, found bool) {
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(line[:sp], l) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// writeFile writes content to path atomically (write, then rename), as
// editors and deployment tools do.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
