package cache

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDnsperf measures queries per second through the real server with
// dnsperf (Debian package), here and in CoreDNS 1.14.1 with the same
// plugins, both against an upstream on 127.0.0.1. It only runs with
// SWITCHBOARD_DNSPERF=1 (it takes about a minute and both cores); the
// figures are logged, nothing is asserted about speed.
func TestDnsperf(t *testing.T) {
	if os.Getenv("SWITCHBOARD_DNSPERF") == "" {
		t.Skip("set SWITCHBOARD_DNSPERF=1 to measure with dnsperf")
	}
	dnsperf, err := exec.LookPath("dnsperf")
	if err != nil {
		t.Skip("dnsperf is not installed")
	}
	dir := t.TempDir()
	files := map[string]string{
		"hits":        strings.Repeat("svc.example A\n", 100),
		"search-path": strings.Repeat("www.google.com.default.svc.cluster.local A\nwww.google.com.svc.cluster.local A\nwww.google.com.cluster.local A\n", 30),
		"forward":     "",
	}
	var fw strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&fw, "fwd%d.example A\n", i) // all different: forwarded
	}
	files["forward"] = fw.String()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(s server, file string) string {
		host, port, _ := strings.Cut(s.udp, ":")
		out, err := exec.Command(dnsperf, "-s", host, "-p", port, "-d", filepath.Join(dir, file), "-l", "8", "-c", "20", "-q", "200").CombinedOutput()
		if err != nil {
			t.Fatalf("dnsperf: %v\n%s", err, out)
		}
		m := regexp.MustCompile(`Queries per second:\s+([0-9.]+)`).FindSubmatch(out)
		lat := regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`).FindSubmatch(out)
		if m == nil || lat == nil {
			t.Fatalf("dnsperf output: %s", out)
		}
		return fmt.Sprintf("%s qps, avg latency %s s", m[1], lat[1])
	}
	up := &upstreamAnswers{counts: map[string]int{}}
	upAddr := serveDNS(t, up)
	body := "  loadbalance\n  cache\n  forward . " + upAddr
	ours := startServer(t, body, nil)
	fwdOnly := startServer(t, "  forward . "+upAddr, nil)
	for _, f := range []string{"hits", "search-path"} {
		t.Logf("switchboard %-12s %s", f, run(ours, f))
	}
	t.Logf("switchboard %-12s %s", "forward", run(fwdOnly, "forward"))
	if os.Getenv("SWITCHBOARD_COREDNS") != "" || coreDNSAvailable() {
		theirs := startCoreDNS(t, body)
		theirsFwd := startCoreDNS(t, "  forward . "+upAddr)
		for _, f := range []string{"hits", "search-path"} {
			t.Logf("coredns     %-12s %s", f, run(theirs, f))
		}
		t.Logf("coredns     %-12s %s", "forward", run(theirsFwd, "forward"))
	}
}

func coreDNSAvailable() bool {
	dir, _ := os.Getwd()
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			_, err := os.Stat(filepath.Join(dir, ".bin", "coredns"))
			return err == nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return false
		}
		dir = parent
	}
}
