package reload_test

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	"github.com/switchboard-dev/switchboard/dns/plugin/reload"
)

func init() {
	dnstest.RegisterAnswer()
	reload.SetMinimums(20*time.Millisecond, 10*time.Millisecond)
}

func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return fmt.Sprint(port)
		}
	}
	t.Fatal("no free port")
	return ""
}

func answer(t *testing.T, addr string) string {
	t.Helper()
	r := dnstest.Exchange(t, "udp", addr, dnstest.Query("example.org.", dns.TypeA))
	if len(r.Answer) == 0 {
		return dns.RcodeToString[r.Rcode]
	}
	return r.Answer[0].(*dns.A).A.String()
}

func waitAnswer(t *testing.T, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for answer(t, addr) != want {
		if time.Now().After(deadline) {
			t.Fatalf("never answered %s (answers %s)", want, answer(t, addr))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReload: a changed Corefile is applied by itself; a comment-only
// change is not a change (the hash is of the parsed blocks); a broken
// Corefile keeps the running one, counts coredns_reload_failed_total
// and logs "Corefile changed but reload failed" (CoreDNS reload README).
func TestReload(t *testing.T) {
	port := freePort(t)
	path := filepath.Join(t.TempDir(), "Corefile")
	cf := func(ip, extra string) []byte {
		return []byte(fmt.Sprintf("example.org:%s {\n bind 127.0.0.1\n reload 50ms 10ms\n testanswer %s\n}\n%s", port, ip, extra))
	}
	write := func(b []byte) {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := prom.NewRegistry()
	logs := &dnstest.SafeBuffer{}
	env := dnstest.QuietEnv()
	env.Registerer = reg
	env.Logger = slog.New(slog.NewTextHandler(logs, nil))
	write(cf("192.0.2.1", ""))
	svc := dnsserver.NewService(path, dnsserver.Options{Env: env})
	t.Cleanup(func() { svc.Stop() })
	b, _ := os.ReadFile(path)
	if err := svc.Start(b); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port
	if got := answer(t, addr); got != "192.0.2.1" {
		t.Fatalf("answer %s", got)
	}
	first := svc.Instance()

	write(cf("192.0.2.1", "# only a comment\n"))
	time.Sleep(300 * time.Millisecond) // several intervals
	if svc.Instance() != first {
		t.Error("a comment-only change reloaded")
	}

	write(cf("192.0.2.2", ""))
	waitAnswer(t, addr, "192.0.2.2")
	sum, _ := reload.Hash(path, cf("192.0.2.2", ""))
	if v := testutil.ToFloat64(versionGauge(t, reg, fmt.Sprintf("%x", sum))); v != 1 {
		t.Errorf("coredns_reload_version_info of the new hash is %v", v)
	}

	write([]byte("example.org:" + port + " {\n bind 127.0.0.1\n reload 50ms 10ms\n nosuchplugin\n}\n"))
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(failedCounter(t, reg)) < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no failed reload counted; log:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := answer(t, addr); got != "192.0.2.2" {
		t.Errorf("after a broken Corefile: %s, want the old answer", got)
	}
	if !strings.Contains(logs.String(), "Corefile changed but reload failed") || !strings.Contains(logs.String(), "Unknown directive 'nosuchplugin'") {
		t.Errorf("the failure is not logged with its reason:\n%s", logs)
	}

	// Fixed again: applied.
	write(cf("192.0.2.3", ""))
	waitAnswer(t, addr, "192.0.2.3")
}

// versionGauge and failedCounter find the reload metrics by name.
func versionGauge(t *testing.T, reg *prom.Registry, value string) prom.Collector {
	return collectorFor(t, reg, "coredns_reload_version_info", value)
}

func failedCounter(t *testing.T, reg *prom.Registry) prom.Collector {
	return collectorFor(t, reg, "coredns_reload_failed_total", "")
}

// collectorFor wraps a gathered value as a collector testutil can read.
func collectorFor(t *testing.T, reg *prom.Registry, name, value string) prom.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prom.NewGauge(prom.GaugeOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := value == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "value" && l.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				g.Set(m.GetCounter().GetValue())
			} else {
				g.Set(m.GetGauge().GetValue())
			}
		}
	}
	return g
}

func TestParse(t *testing.T) {
	reload.SetMinimums(reload.MinInterval, reload.MinJitter)
	defer reload.SetMinimums(20*time.Millisecond, 10*time.Millisecond)
	tests := []struct{ corefile, err string }{
		{"a.test:0 {\n reload\n}\n", ""},
		{"a.test:0 {\n reload 10s\n}\n", ""},
		{"a.test:0 {\n reload 10s 1s\n}\n", ""},
		{"a.test:0 {\n reload 1s\n}\n", "interval value must be greater or equal to 2s"},
		{"a.test:0 {\n reload 10s 500ms\n}\n", "jitter value must be greater or equal to 1s"},
		{"a.test:0 {\n reload soon\n}\n", "invalid duration"},
		{"a.test:0 {\n reload 1 2 3\n}\n", "Wrong argument count"},
	}
	for _, tc := range tests {
		_, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Env: dnstest.QuietEnv()})
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.corefile, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin/reload")) {
			t.Errorf("%q: error %v, want %q", tc.corefile, err, tc.err)
		}
	}
}
