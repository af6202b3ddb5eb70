package dnstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// CoreDNSBinary finds the real CoreDNS used as a differential oracle:
// $SWITCHBOARD_COREDNS, else <module root>/.bin/coredns.
func CoreDNSBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SWITCHBOARD_COREDNS"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, ".bin", "coredns")
			if _, err := os.Stat(p); err != nil {
				t.Skipf("no CoreDNS binary at %s ($SWITCHBOARD_COREDNS unset); ./test.sh installs it", p)
			}
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("module root not found; no CoreDNS binary to compare with")
		}
		dir = parent
	}
}

// FreePort returns a port free for both UDP and TCP on 127.0.0.1.
func FreePort(t testing.TB) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		l, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			l.Close()
			_, port, _ := net.SplitHostPort(addr)
			return port
		}
	}
	t.Fatal("no free port")
	return ""
}

// StartCoreDNS runs the real CoreDNS with corefile, in which "PORT" is
// replaced by a free port, and returns its address once it answers.
func StartCoreDNS(t testing.TB, corefile string) string {
	t.Helper()
	bin := CoreDNSBinary(t)
	port := FreePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(corefile, "PORT", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-conf", conf)
	cmd.Dir = dir
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	t.Cleanup(func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", port)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("ready.invalid.", dns.TypeA), addr); err == nil {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("CoreDNS did not answer on %s:\n%s", addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Summary is what two servers' answers must agree on.
func Summary(m *dns.Msg) string {
	sec := func(rrs []dns.RR) string {
		var out []string
		for _, r := range rrs {
			if o, ok := r.(*dns.OPT); ok {
				for _, e := range o.Option {
					if ede, ok := e.(*dns.EDNS0_EDE); ok {
						out = append(out, fmt.Sprintf("EDE %d", ede.InfoCode))
					}
				}
				continue
			}
			out = append(out, r.String())
		}
		sort.Strings(out)
		return strings.Join(out, "\n  ")
	}
	return fmt.Sprintf("rcode=%s aa=%v tc=%v\nanswer:\n  %s\nauthority:\n  %s\nadditional:\n  %s",
		dns.RcodeToString[m.Rcode], m.Authoritative, m.Truncated, sec(m.Answer), sec(m.Ns), sec(m.Extra))
}
