// Package acmetest runs a real ACME server for tests: Let's Encrypt's
// pebble (its WFE, CA and VA, in the test's process, on loopback) and a
// DNS server that resolves every name to 127.0.0.1, so that pebble
// validates HTTP-01 challenges against a listener of the test. It is
// imported by tests only.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// LoopbackDNS answers every A question with 127.0.0.1 (and AAAA with
// nothing), over TCP as pebble's VA asks, so that pebble validates
// http://NAME:PORT/.well-known/acme-challenge/... against a listener on
// loopback. It returns the server's address; it stops when the test ends.
func LoopbackDNS(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0}, A: net.IPv4(127, 0, 0, 1)})
			}
		}
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// Pebble is a running pebble.
type Pebble struct {
	Directory string         // the directory URL (https://ADDR/dir)
	Client    *http.Client   // trusts the directory's TLS certificate
	ServerCA  []byte         // that certificate, PEM (an ACME client's CA file)
	Roots     *x509.CertPool // pebble's issuing root
}

// StartPebble runs pebble's WFE, CA and VA in this process on ln; its VA
// validates HTTP-01 on httpPort, resolving names with resolver (e.g.
// LoopbackDNS). It stops when the test ends. Pebble reads switches from
// the environment: set PEBBLE_VA_NOSLEEP=1 (no random wait before
// validating) and PEBBLE_WFE_NONCEREJECT=0 (no deliberately rejected
// nonces) with t.Setenv first.
func StartPebble(t testing.TB, ln net.Listener, httpPort int, resolver string) *Pebble {
	t.Helper()
	logger := log.New(io.Discard, "pebble ", 0)
	if testing.Verbose() {
		logger = log.New(testWriter{t}, "pebble ", 0)
	}
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "default"}})
	validator := va.New(logger, httpPort, 0, false, resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewUnstartedServer(front.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	return &Pebble{
		Directory: srv.URL + wfe.DirectoryPath,
		Client:    srv.Client(),
		ServerCA:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}),
		Roots:     roots,
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
