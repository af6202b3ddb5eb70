package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/kubetest"
)

// TestQuick runs the benchmark at -quick size (1,000 services, 2,000 pods)
// against the real etcd and kube-apiserver, both pods modes, with a short
// dnsperf run when dnsperf is installed. It checks that every measurement
// was taken (each server answered the last service's cluster IP and
// reported ready), never how fast: speed is for the benchmark's table.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the quick benchmark starts etcd, kube-apiserver and two DNS servers")
	}
	if m := kubetest.Missing(); m != "" {
		t.Skipf("no real API server: %s not built (./test.sh builds them with tools/k8s/build.sh)", m)
	}
	if _, err := CoreDNSBinary(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build ./cmd/switchboard")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var log bytes.Buffer
	res, err := Run(ctx, Config{Services: 1000, Pods: 2000, Modes: []string{"insecure", "verified"}, Seconds: 2, Workers: 16, Log: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, mode := range res.Modes {
		for _, s := range res.Runs[mode] {
			// The ready plugin: "the HTTP endpoint ... will return 200 OK
			// when all plugins that have signaled readiness are ready"
			// (coredns.io/plugins/ready); the kubernetes plugin signals it
			// once its caches have synced.
			if s.Ready <= 0 || s.Answer <= 0 {
				t.Errorf("pods %s, %s: ready after %v, answered after %v", mode, s.Name, s.Ready, s.Answer)
			}
			if s.RSSReady <= 0 {
				t.Errorf("pods %s, %s: no RSS read when ready", mode, s.Name)
			}
			if s.PerfSkipReason == "" && (s.QPS <= 0 || s.RSSPerf <= 0) {
				t.Errorf("pods %s, %s: dnsperf ran but gave QPS %.0f, RSS %d", mode, s.Name, s.QPS, s.RSSPerf)
			}
		}
	}
	var out bytes.Buffer
	res.Print(&out)
	for _, want := range []string{"pods insecure", "pods verified", "start to /ready 200", "switchboard", "coredns 1.14.1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
