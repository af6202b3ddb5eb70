package proxycmd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testnet"
	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// buildBinary builds cmd/switchboard once per test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchboard")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/switchboard")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building switchboard: %v\n%s", err, out)
	}
	return bin
}

// e2eManifests is a Service with a fixed cluster IP and a hand-written
// EndpointSlice (kube-proxy reads slices; nothing runs the pods here).
func e2eManifests(clusterIP string, eps ...netip.Addr) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: %s
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports: [{name: http, port: 8080, protocol: TCP}]
endpoints:
`, clusterIP)
	for _, ep := range eps {
		fmt.Fprintf(&b, "- addresses: [%q]\n  conditions: {ready: true}\n", ep.String())
	}
	return b.String()
}

// The command as a user runs it: `switchboard kube-proxy --mode M -f DIR`
// in a node namespace. A client pod reaches both endpoints through the
// cluster IP; editing the manifest takes an endpoint away; SIGINT stops
// it cleanly and --cleanup removes its rules.
func TestKubeProxyCommandInANodeNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: builds network namespaces (run as root, as CI does)")
	}
	bin := buildBinary(t)
	for _, tc := range []struct {
		mode  string
		rules []string // what lists our rules in the node namespace
		want  string
	}{
		{"nftables", []string{"nft", "list", "table", "ip", "switchboard"}, "service-ips"},
		{"iptables", []string{"iptables-save", "-t", "nat"}, "KUBE-SERVICES"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			n := testnet.New(t, testnet.Options{})
			a, b, client := n.AddPod(t, "a"), n.AddPod(t, "b"), n.AddPod(t, "client")
			a.ServeTCP(t, 8080)
			b.ServeTCP(t, 8080)
			const clusterIP = "10.96.7.7"
			dir := t.TempDir()
			file := filepath.Join(dir, "web.yaml")
			if err := os.WriteFile(file, []byte(e2eManifests(clusterIP, a.IP, b.IP)), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr testutil.SyncBuffer
			cmd := exec.CommandContext(ctx, bin, "kube-proxy", "--mode", tc.mode, "-f", dir,
				"--cluster-cidr", n.PodCIDR().String(), "--min-sync-period", "100ms",
				"--healthz-bind-address", "", "--metrics-bind-address", "", "--state-dir", t.TempDir())
			cmd.Stderr = &stderr
			exited := make(chan error, 1)
			t.Cleanup(func() {
				cancel() // kills it unless it has exited
				if cmd.Process != nil {
					<-exited
				}
				if t.Failed() {
					t.Logf("kube-proxy stderr:\n%s", stderr.String())
				}
			})
			if err := n.Node().Do(cmd.Start); err != nil {
				t.Fatal(err)
			}
			go func() { exited <- cmd.Wait() }()

			svc := netip.MustParseAddrPort(clusterIP + ":80")
			seen := map[string]bool{}
			deadline := time.Now().Add(20 * time.Second)
			for len(seen) < 2 && time.Now().Before(deadline) {
				if name, err := client.AskTCP(svc, time.Second); err == nil {
					seen[name] = true
				} else {
					time.Sleep(50 * time.Millisecond)
				}
			}
			if !seen[a.Name] || !seen[b.Name] {
				t.Fatalf("through %s reached %v, want both %s and %s", svc, seen, a.Name, b.Name)
			}
			out, err := n.Node().Exec(context.Background(), tc.rules...)
			if err != nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("%s: %v\n%s", strings.Join(tc.rules, " "), err, out)
			}

			// The manifest changes: only b stays.
			if err := os.WriteFile(file, []byte(e2eManifests(clusterIP, b.IP)), 0o644); err != nil {
				t.Fatal(err)
			}
			onlyB := func() bool {
				for range 20 {
					name, err := client.AskTCP(svc, time.Second)
					if err != nil || name != b.Name {
						return false
					}
				}
				return true
			}
			deadline = time.Now().Add(20 * time.Second)
			for !onlyB() {
				if time.Now().After(deadline) {
					t.Fatalf("endpoint %s still reached 20 s after it left the manifest", a.Name)
				}
				time.Sleep(100 * time.Millisecond)
			}

			// SIGINT: exits 0.
			_ = cmd.Process.Signal(syscall.SIGINT)
			select {
			case err := <-exited:
				exited <- err // for the clean-up
				if err != nil {
					t.Fatalf("after SIGINT: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("kube-proxy did not exit within 15 s of SIGINT")
			}

			// --cleanup removes the rules.
			if out, err := n.Node().Exec(context.Background(), bin, "kube-proxy", "--cleanup", "--state-dir", t.TempDir()); err != nil {
				t.Fatalf("--cleanup: %v\n%s", err, out)
			}
			out, _ = n.Node().Exec(context.Background(), tc.rules...)
			if strings.Contains(string(out), tc.want) {
				t.Fatalf("rules left after --cleanup:\n%s", out)
			}
		})
	}
}
