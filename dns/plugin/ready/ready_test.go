package ready_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/dns/plugin"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	"github.com/switchboard-dev/switchboard/dns/plugin/ready"
)

// slow is a plugin that says whether it is ready through Ready(), as
// CoreDNS's ready.Readiness; its readiness is set by the test.
type slow struct {
	name string
	ok   *atomic.Bool
}

func (s slow) Name() string { return s.name }
func (s slow) Ready() bool  { return s.ok.Load() }
func (s slow) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return dns.RcodeRefused, nil
}

var slowA, slowB atomic.Bool

func init() {
	dnstest.RegisterAnswer()
	for _, n := range []string{"slowa", "slowb"} {
		flag := &slowA
		if n == "slowb" {
			flag = &slowB
		}
		dnsserver.Directives = append(dnsserver.Directives, n)
		dnsserver.Register(n, func(c *dnsserver.Controller) error {
			for c.Next() {
			}
			c.AddPlugin(func(next plugin.Handler) plugin.Handler { return slow{name: n, ok: flag} })
			return nil
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReady: /ready is 503 with the names of the plugins not ready, 200
// "OK" once all are; with "monitor until-ready" a plugin that was ready
// once is not asked again, with "continuously" it is (CoreDNS ready
// README). Every block that enables ready adds its plugins.
func TestReady(t *testing.T) {
	for _, mode := range []string{"until-ready", "continuously"} {
		t.Run(mode, func(t *testing.T) {
			slowA.Store(false)
			slowB.Store(false)
			cf := `
a.test {
    bind 127.0.0.1
    ready 127.0.0.1:0 {
        monitor ` + mode + `
    }
    slowa
}
b.test {
    bind 127.0.0.1
    ready 127.0.0.1:0
    slowb
}
c.test {
    bind 127.0.0.1
    testanswer
}
`
			inst := dnstest.StartInstance(t, cf, nil)
			addr := ready.ListenAddr(inst, "127.0.0.1:0")
			if addr == nil {
				t.Fatal("no /ready endpoint")
			}
			url := "http://" + addr.String() + "/ready"
			if code, body := get(t, url); code != 503 || body != "slowa,slowb" {
				t.Fatalf("none ready: %d %q, want 503 \"slowa,slowb\"", code, body)
			}
			slowB.Store(true)
			if code, body := get(t, url); code != 503 || body != "slowa" {
				t.Fatalf("slowb ready: %d %q, want 503 \"slowa\"", code, body)
			}
			slowA.Store(true)
			if code, body := get(t, url); code != 200 || body != "OK" {
				t.Fatalf("all ready: %d %q, want 200 OK", code, body)
			}
			slowA.Store(false)
			code, body := get(t, url)
			if mode == "until-ready" && (code != 200 || body != "OK") {
				t.Fatalf("until-ready after a relapse: %d %q, want 200 OK", code, body)
			}
			if mode == "continuously" && (code != 503 || body != "slowa") {
				t.Fatalf("continuously after a relapse: %d %q, want 503 slowa", code, body)
			}
		})
	}
}

func TestReadyGoneAfterStop(t *testing.T) {
	inst := dnstest.StartInstance(t, "a.test {\n bind 127.0.0.1\n ready 127.0.0.1:0\n testanswer\n}\n", nil)
	addr := ready.ListenAddr(inst, "127.0.0.1:0")
	if code, _ := get(t, "http://"+addr.String()+"/ready"); code != 200 {
		t.Fatalf("no plugin to wait for: %d, want 200", code)
	}
	inst.Stop()
	if _, err := http.Get("http://" + addr.String() + "/ready"); err == nil {
		t.Fatal("/ready answers after stop")
	}
}

func TestParse(t *testing.T) {
	tests := []struct{ corefile, err string }{
		{"a.test:0 {\n ready\n}\n", ""},
		{"a.test:0 {\n ready :8191 {\n  monitor continuously\n }\n}\n", ""},
		{"a.test:0 {\n ready a b\n}\n", "Wrong argument count"},
		{"a.test:0 {\n ready nonsense\n}\n", "missing port"},
		{"a.test:0 {\n ready {\n  monitor sometimes\n }\n}\n", "monitor type 'sometimes' not supported"},
		{"a.test:0 {\n ready\n ready\n}\n", "only be used once"},
	}
	for _, tc := range tests {
		_, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Env: dnstest.QuietEnv()})
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.corefile, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin/ready")) {
			t.Errorf("%q: error %v, want %q", tc.corefile, err, tc.err)
		}
	}
}
