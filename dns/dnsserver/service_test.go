package dnsserver_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
)

// freePort finds a port free for both UDP and TCP on 127.0.0.1.
func freePort(t testing.TB) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return fmt.Sprint(port)
	}
	t.Fatal("no free port")
	return ""
}

func answerCorefile(port, ip string) string {
	return fmt.Sprintf("example.org:%s {\n    bind 127.0.0.1\n    testanswer %s\n}\n", port, ip)
}

// hammer sends queries in a loop from several clients until stop is
// closed, and counts answers by address and failures.
type hammer struct {
	mu       sync.Mutex
	byAnswer map[string]int
	failures []string
	sent     atomic.Int64
	wg       sync.WaitGroup
	stop     chan struct{}
}

func startHammer(t *testing.T, addr string, clients int) *hammer {
	h := &hammer{byAnswer: map[string]int{}, stop: make(chan struct{})}
	for i := range clients {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			network := "udp"
			if i%4 == 3 {
				network = "tcp"
			}
			// A lost query shows as a timeout; 5s keeps a loaded machine
			// from looking like one.
			c := &dns.Client{Net: network, Timeout: 5 * time.Second}
			for {
				select {
				case <-h.stop:
					return
				default:
				}
				h.sent.Add(1)
				r, _, err := c.Exchange(query("www.example.org.", dns.TypeA), addr)
				h.mu.Lock()
				switch {
				case err != nil:
					h.failures = append(h.failures, network+": "+err.Error())
				case r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1:
					h.failures = append(h.failures, network+": "+rcodeName(r.Rcode))
				default:
					h.byAnswer[r.Answer[0].(*dns.A).A.String()]++
				}
				h.mu.Unlock()
			}
		}()
	}
	t.Cleanup(h.end)
	return h
}

func (h *hammer) end() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.wg.Wait()
}

func (h *hammer) count(ip string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byAnswer[ip]
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadDropsNothing: clients query in a loop while the Corefile is
// reloaded again and again; the new configuration answers and no query
// fails (CoreDNS reload README: "you should not see any loss of service").
func TestReloadDropsNothing(t *testing.T) {
	port := freePort(t)
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(answerCorefile(port, "192.0.2.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	svc := dnsserver.NewService(path, dnsserver.Options{Env: quietEnv()})
	t.Cleanup(func() { svc.Stop() })
	if err := svc.Start([]byte(answerCorefile(port, "192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	h := startHammer(t, "127.0.0.1:"+port, 8)
	waitFor(t, "first answers", func() bool { return h.count("192.0.2.1") > 50 })

	for i := 2; i <= 21; i++ {
		ip := fmt.Sprintf("192.0.2.%d", i)
		if err := os.WriteFile(path, []byte(answerCorefile(port, ip)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := svc.ReloadFile(); err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		waitFor(t, "answers from "+ip, func() bool { return h.count(ip) > 10 })
	}
	h.end()
	if len(h.failures) > 0 {
		t.Fatalf("%d of %d queries failed during reloads: %s", len(h.failures), h.sent.Load(), strings.Join(h.failures[:min(5, len(h.failures))], "; "))
	}
}

// TestReloadBrokenKeepsOld: a Corefile that does not load leaves the
// running one answering, and the error says why (CoreDNS reload README:
// "Even if the new Corefile has an error, CoreDNS will continue to run
// the old config").
func TestReloadBrokenKeepsOld(t *testing.T) {
	port := freePort(t)
	logs := &logBuffer{}
	env := quietEnv()
	env.Logger = newTextLogger(logs)
	svc := dnsserver.NewService("Corefile", dnsserver.Options{Env: env})
	t.Cleanup(func() { svc.Stop() })
	if err := svc.Start([]byte(answerCorefile(port, "192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + port
	h := startHammer(t, addr, 4)
	waitFor(t, "first answers", func() bool { return h.count("192.0.2.1") > 20 })
	before := svc.Instance()

	broken := []struct {
		name, corefile, want string
	}{
		{"syntax", "example.org:" + port + " {\n  testanswer {\n", "Unexpected EOF"},
		{"unknown plugin", "example.org:" + port + " {\n  nosuch\n}\n", "Unknown directive 'nosuch'"},
		{"plugin error", "example.org:" + port + " {\n  testanswer x y\n}\n", "plugin/testanswer"},
		{"address in use by someone else", "example.org:" + port + " {\n  bind 127.0.0.1\n  testanswer\n}\nother.org:" + occupiedPort(t) + " {\n  bind 127.0.0.1\n  testanswer\n}\n", "address already in use"},
	}
	for _, tc := range broken {
		t.Run(tc.name, func(t *testing.T) {
			err := svc.Reload([]byte(tc.corefile))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reload error %v, want one with %q", err, tc.want)
			}
			if svc.Instance() != before {
				t.Fatal("the running instance was replaced")
			}
			n := h.count("192.0.2.1")
			waitFor(t, "old configuration answering", func() bool { return h.count("192.0.2.1") > n+10 })
		})
	}
	if !strings.Contains(logs.String(), "reload failed") {
		t.Errorf("the failure is not logged:\n%s", logs)
	}
	h.end()
	if len(h.failures) > 0 {
		t.Fatalf("%d queries failed, first: %s", len(h.failures), h.failures[0])
	}
}

// occupiedPort returns a port someone else (not SO_REUSEPORT) holds on
// 127.0.0.1 for UDP until the test ends.
func occupiedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return fmt.Sprint(c.LocalAddr().(*net.UDPAddr).Port)
}

// TestStopClosesSockets: after Stop the port is free again.
func TestStopClosesSockets(t *testing.T) {
	port := freePort(t)
	inst, err := dnsserver.NewInstance("Corefile", []byte(answerCorefile(port, "192.0.2.1")), dnsserver.Options{Env: quietEnv()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	exchange(t, "udp", "127.0.0.1:"+port, query("example.org.", dns.TypeA))
	if err := inst.Stop(); err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("port still taken after Stop: %v", err)
	}
	c.Close()
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatalf("tcp port still taken after Stop: %v", err)
	}
	l.Close()
}
