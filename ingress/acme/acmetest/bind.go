package acmetest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnstest"
	"github.com/switchboard-dev/switchboard/internal/spawn"
	"github.com/switchboard-dev/switchboard/internal/testutil"
)

// BIND is a running ISC BIND 9 `named`: the primary of one zone that
// takes RFC 2136 updates signed with a TSIG key, on loopback. Pebble's VA
// can use it as its resolver for dns-01 validation (it is authoritative
// for the zone and answers A questions in it with 127.0.0.1).
type BIND struct {
	Addr    string // 127.0.0.1:port, UDP and TCP
	Zone    string // the zone, e.g. "example.test." (a trailing dot)
	KeyName string // the TSIG key allowed to update the zone
	Secret  string // its secret, base64
}

// StartBIND runs named (Debian package bind9) for zone with a fresh
// hmac-sha256 key; it stops when the test ends. The test is skipped,
// saying so, when named is not installed.
func StartBIND(t testing.TB, zone string) *BIND {
	t.Helper()
	named, err := exec.LookPath("named")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/named"); serr != nil {
			t.Skip("named is not installed (apt-get install bind9): no DNS server to answer dns-01 with")
		}
		named = "/usr/sbin/named"
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	b := &BIND{Zone: dns.CanonicalName(zone), KeyName: "switchboard-acme.", Secret: base64.StdEncoding.EncodeToString(secret)}
	dir := t.TempDir()
	port := dnstest.FreePort(t)
	b.Addr = net.JoinHostPort("127.0.0.1", port)
	// The zone, key and secret are this function's own values (the zone
	// comes from the test), not user input.
	conf := fmt.Sprintf(`options {
  directory %[1]q;
  pid-file %[2]q;
  listen-on port %[3]s { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  notify no;
  dnssec-validation no;
};
controls { };
key %[4]q { algorithm hmac-sha256; secret %[5]q; };
zone %[6]q { type primary; file "zone.db"; allow-update { key %[4]q; }; };
`, dir, filepath.Join(dir, "named.pid"), port, strings.TrimSuffix(b.KeyName, "."), b.Secret, strings.TrimSuffix(b.Zone, "."))
	zoneData := fmt.Sprintf("$TTL 60\n@ IN SOA ns.%[1]s hostmaster.%[1]s 1 60 60 600 60\n@ IN NS ns.%[1]s\nns IN A 127.0.0.1\n* IN A 127.0.0.1\n", b.Zone)
	for name, data := range map[string]string{"named.conf": conf, "zone.db": zoneData} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(named, "-g", "-c", filepath.Join(dir, "named.conf"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	log := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := spawn.Start(cmd); err != nil {
		t.Fatalf("named: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := new(dns.Msg)
		m.SetQuestion(b.Zone, dns.TypeSOA)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, _, err := (&dns.Client{Net: "tcp"}).ExchangeContext(ctx, m, b.Addr)
		cancel()
		if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return b
		}
		select {
		case <-exited:
			t.Fatalf("named exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("named did not answer for %s on %s: %v\n%s", b.Zone, b.Addr, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TXT asks the server for the TXT strings at name (each record's strings
// joined).
func (b *BIND) TXT(t testing.TB, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 5 * time.Second}).Exchange(m, b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, rr := range r.Answer {
		if x, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(x.Txt, ""))
		}
	}
	return out
}
