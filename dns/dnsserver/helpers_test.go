package dnsserver_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	"github.com/switchboard-dev/switchboard/dns/dnstest"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
)

// The tests use dnstest's backend plugin "testanswer", which runs after
// every real plugin and answers A queries with the addresses it is given.
func init() { dnstest.RegisterAnswer() }

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func quietEnv() *dnsserver.Env {
	return &dnsserver.Env{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// startInstance builds and starts corefile; keys without a port get a
// port the kernel picks (shared by the blocks on one address).
func startInstance(t testing.TB, corefile string, env *dnsserver.Env) *dnsserver.Instance {
	t.Helper()
	if env == nil {
		env = quietEnv()
	}
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0", Env: env})
	if err != nil {
		t.Fatalf("NewInstance: %v", err)
	}
	t.Cleanup(func() { inst.Stop() })
	if err := inst.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return inst
}

// udpAddr is the UDP address of the instance's first server.
func udpAddr(t testing.TB, inst *dnsserver.Instance) string {
	t.Helper()
	a := inst.Servers()[0].UDPAddr()
	if a == nil {
		t.Fatal("server has no UDP address")
	}
	return a.String()
}

func exchange(t *testing.T, network, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("exchange %s %s: %v", network, addr, err)
	}
	return r
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprint(rc)
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}
