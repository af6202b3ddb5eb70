package health_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	prom "github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	"github.com/switchboard-dev/switchboard/dns/plugin/health"
)

func init() { dnstest.RegisterAnswer() }

func healthOf(t *testing.T, inst *dnsserver.Instance) *health.Health {
	t.Helper()
	// health adds no handler; find it through its listener: the test
	// Corefiles give it a port of its own, so ask every candidate.
	h := health.Find(inst)
	if h == nil || h.ListenAddr() == nil {
		t.Fatal("no health endpoint")
	}
	return h
}

func get(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestHealth: /health answers 200 "OK" (CoreDNS health README), the self
// check feeds coredns_health_request_duration_seconds, and with lameduck
// the server keeps answering DNS and /health for that long after it was
// told to stop ("lameduck will delay shutdown for DURATION. /health will
// still answer 200 OK").
func TestHealth(t *testing.T) {
	reg := prom.NewRegistry()
	logs := &dnstest.SafeBuffer{}
	env := dnstest.QuietEnv()
	env.Registerer = reg
	env.Logger = newLogger(logs)
	inst := dnstest.StartInstance(t, "example.org {\n bind 127.0.0.1\n health 127.0.0.1:0 {\n  lameduck 1s\n }\n testanswer\n}\n", env)
	h := healthOf(t, inst)
	url := "http://" + h.ListenAddr().String() + "/health"
	code, body, err := get(url)
	if err != nil || code != http.StatusOK || body != "OK" {
		t.Fatalf("GET /health: %d %q %v, want 200 OK", code, body, err)
	}
	if code, _, _ := get("http://" + h.ListenAddr().String() + "/nothing"); code != http.StatusNotFound {
		t.Errorf("GET /nothing: %d, want 404", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.CollectAndCount(reg, "coredns_health_request_duration_seconds") == 0 ||
		histCount(t, reg) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the self check never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}

	udp := dnstest.UDPAddr(t, inst)
	stopped := make(chan error, 1)
	go func() { stopped <- inst.Stop() }()
	for !strings.Contains(logs.String(), "Going into lameduck mode for 1s") {
		select {
		case err := <-stopped:
			t.Fatalf("stopped without lameduck: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	r := dnstest.Exchange(t, "udp", udp, dnstest.Query("example.org.", dns.TypeA))
	if r.Rcode != dns.RcodeSuccess {
		t.Errorf("during lameduck: rcode %d", r.Rcode)
	}
	if code, _, err := get(url); code != http.StatusOK {
		t.Errorf("during lameduck: GET /health %d %v", code, err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(url); err == nil {
		t.Error("/health still answers after stop")
	}
}

func histCount(t *testing.T, reg *prom.Registry) uint64 {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "coredns_health_request_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	return 0
}

// TestHealthSharedAcrossReload: a reload keeps /health answering on the
// same listener (CoreDNS's reload README lists losing it as a bug).
func TestHealthSharedAcrossReload(t *testing.T) {
	svc := dnsserver.NewService("Corefile", dnsserver.Options{Env: dnstest.QuietEnv()})
	t.Cleanup(func() { svc.Stop() })
	// A fixed port is needed to share; take one the kernel gives.
	port := freeTCPPort(t)
	cf := "example.org:0 {\n bind 127.0.0.1\n health 127.0.0.1:" + port + "\n testanswer\n}\n"
	if err := svc.Start([]byte(cf)); err != nil {
		t.Fatal(err)
	}
	url := "http://127.0.0.1:" + port + "/health"
	if code, _, err := get(url); code != 200 {
		t.Fatalf("before reload: %d %v", code, err)
	}
	if err := svc.Reload([]byte(cf + "\n")); err != nil {
		t.Fatal(err)
	}
	if code, _, err := get(url); code != 200 {
		t.Fatalf("after reload: %d %v", code, err)
	}
	if err := svc.Reload([]byte("example.org:0 {\n nosuch\n}\n")); err == nil {
		t.Fatal("broken Corefile loaded")
	}
	if code, _, err := get(url); code != 200 {
		t.Fatalf("after a failed reload: %d %v", code, err)
	}
}

func TestParse(t *testing.T) {
	dnstest.RegisterAnswer()
	tests := []struct {
		corefile, err string
	}{
		{"example.org:0 {\n health\n}\n", ""},
		{"example.org:0 {\n health :8091 {\n  lameduck 5s\n }\n}\n", ""},
		{"example.org:0 {\n health a b\n}\n", "Wrong argument count"},
		{"example.org:0 {\n health nonsense\n}\n", "missing port"},
		{"example.org:0 {\n health {\n  lameduck\n }\n}\n", "Wrong argument count"},
		{"example.org:0 {\n health {\n  lameduck soon\n }\n}\n", "unable to parse lameduck duration"},
		{"example.org:0 {\n health {\n  other 1\n }\n}\n", "Wrong argument count"},
	}
	for _, tc := range tests {
		_, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Env: dnstest.QuietEnv()})
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.corefile, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin/health")) {
			t.Errorf("%q: error %v, want %q", tc.corefile, err, tc.err)
		}
	}
}
