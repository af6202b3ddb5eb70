package errors_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/errors"
)

func init() { dnstest.RegisterAnswer() }

func start(t *testing.T, errorsBlock string) (string, *dnstest.SafeBuffer, *dnsserver.Instance) {
	t.Helper()
	logs := &dnstest.SafeBuffer{}
	env := dnstest.QuietEnv()
	env.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cf := `
example.org {
    bind 127.0.0.1
    errors ` + errorsBlock + `
    testanswer {
        rcode SERVFAIL
        error "read udp 10.0.0.1:53->10.0.0.2:53: i/o timeout"
    }
}
other.org {
    bind 127.0.0.1
    errors ` + errorsBlock + `
    testanswer {
        rcode SERVFAIL
        error "Failed to reach upstream"
    }
}
`
	inst := dnstest.StartInstance(t, cf, env)
	return dnstest.UDPAddr(t, inst), logs, inst
}

func waitLog(t *testing.T, logs *dnstest.SafeBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", want, logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestErrorsLogged: every error is logged as CoreDNS does,
// "RCODE NAME TYPE: ERROR", at ERROR level.
func TestErrorsLogged(t *testing.T) {
	addr, logs, _ := start(t, "")
	r := dnstest.Exchange(t, "udp", addr, dnstest.Query("X.Example.org.", dns.TypeA))
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %d", r.Rcode)
	}
	waitLog(t, logs, `level=ERROR msg="2 x.example.org. A: read udp 10.0.0.1:53->10.0.0.2:53: i/o timeout" plugin=errors`)
}

// TestConsolidate: errors that match a consolidate pattern are counted
// and reported once per period ("N errors like 'RE' occurred in last
// D"), at the pattern's level; others are logged one by one; with
// show_first the first of a period is logged too (CoreDNS errors README).
func TestConsolidate(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		addr, logs, _ := start(t, "{\n consolidate 300ms \".* i/o timeout$\" warning\n }")
		for range 4 {
			dnstest.Exchange(t, "udp", addr, dnstest.Query("x.example.org.", dns.TypeA))
		}
		dnstest.Exchange(t, "udp", addr, dnstest.Query("x.other.org.", dns.TypeA))
		waitLog(t, logs, `level=WARN msg="4 errors like '.* i/o timeout$' occurred in last 300ms" plugin=errors`)
		waitLog(t, logs, `level=ERROR msg="2 x.other.org. A: Failed to reach upstream"`)
		if strings.Contains(logs.String(), "x.example.org. A") {
			t.Errorf("a consolidated error was logged by itself:\n%s", logs)
		}
	})
	t.Run("show_first", func(t *testing.T) {
		addr, logs, _ := start(t, "{\n consolidate 300ms \".* i/o timeout$\" info show_first\n }")
		for range 3 {
			dnstest.Exchange(t, "udp", addr, dnstest.Query("x.example.org.", dns.TypeA))
		}
		waitLog(t, logs, `level=INFO msg="3 errors like '.* i/o timeout$' occurred in last 300ms"`)
		if n := strings.Count(logs.String(), "x.example.org. A: read udp"); n != 1 {
			t.Errorf("%d single lines, want the first only:\n%s", n, logs)
		}
	})
	t.Run("pending counts are written at stop", func(t *testing.T) {
		addr, logs, inst := start(t, "{\n consolidate 1h \".* i/o timeout$\"\n }")
		dnstest.Exchange(t, "udp", addr, dnstest.Query("x.example.org.", dns.TypeA))
		dnstest.Exchange(t, "udp", addr, dnstest.Query("y.example.org.", dns.TypeA))
		inst.Stop()
		waitLog(t, logs, `level=ERROR msg="2 errors like '.* i/o timeout$' occurred in last 1h0m0s"`)
	})
}

// TestStacktrace: "stacktrace" makes the server log the stack of a
// recovered panic.
func TestStacktrace(t *testing.T) {
	logs := &dnstest.SafeBuffer{}
	env := dnstest.QuietEnv()
	env.Logger = slog.New(slog.NewTextHandler(logs, nil))
	inst := dnstest.StartInstance(t, "example.org {\n bind 127.0.0.1\n errors {\n  stacktrace\n }\n testanswer {\n  panic\n }\n}\n", env)
	r := dnstest.Exchange(t, "udp", dnstest.UDPAddr(t, inst), dnstest.Query("example.org.", dns.TypeA))
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode %d, want SERVFAIL", r.Rcode)
	}
	waitLog(t, logs, "Recovered from panic in server")
	waitLog(t, logs, "goroutine ")
}

func TestParse(t *testing.T) {
	tests := []struct{ corefile, err string }{
		{"a.test:0 {\n errors\n}\n", ""},
		{"a.test:0 {\n errors stdout\n}\n", ""},
		{"a.test:0 {\n errors {\n  consolidate 5m \".* i/o timeout$\" warning show_first\n  consolidate 30s \"^Failed to .+\"\n }\n}\n", ""},
		{"a.test:0 {\n errors /var/log/x\n}\n", "invalid log file"},
		{"a.test:0 {\n errors\n errors\n}\n", "only be used once"},
		{"a.test:0 {\n errors {\n  consolidate 5m\n }\n}\n", "Wrong argument count"},
		{"a.test:0 {\n errors {\n  consolidate soon x\n }\n}\n", "invalid duration"},
		{"a.test:0 {\n errors {\n  consolidate 1m \"(\"\n }\n}\n", "missing closing )"},
		{"a.test:0 {\n errors {\n  consolidate 1m x loud\n }\n}\n", "unknown option in consolidate: loud"},
		{"a.test:0 {\n errors {\n  consolidate 1m x error warning\n }\n}\n", "multiple log levels"},
		{"a.test:0 {\n errors {\n  consolidate 1m x show_first error\n }\n}\n", "log level must come before show_first"},
		{"a.test:0 {\n errors {\n  bogus\n }\n}\n", "Unknown field bogus"},
	}
	for _, tc := range tests {
		_, err := dnsserver.NewInstance("Corefile", []byte(tc.corefile), dnsserver.Options{Env: dnstest.QuietEnv()})
		if tc.err == "" && err != nil {
			t.Errorf("%q: %v", tc.corefile, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "plugin/errors")) {
			t.Errorf("%q: error %v, want %q", tc.corefile, err, tc.err)
		}
	}
}
