package forward

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// selfSigned writes a CA-less self-signed certificate for name and
// returns its PEM path and the server's tls.Config.
func selfSigned(t *testing.T, name string) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		DNSNames:              []string{name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// "TO ... tls://9.9.9.9 ... DNS-over-TLS", with "tls CA" and
// "tls_servername NAME"; health checks use tcp-tls too.
func TestForwardTLS(t *testing.T) {
	caPath, serverCfg := selfSigned(t, "dns.example")
	l, err := tls.Listen("tcp", "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	srv := &dns.Server{Listener: l, Net: "tcp-tls", Handler: answerA("192.0.2.99"), NotifyStartedFunc: wg.Done}
	go srv.ActivateAndServe()
	wg.Wait()
	t.Cleanup(func() { srv.Shutdown() })
	addr := l.Addr().(*net.TCPAddr).String()

	tests := []struct {
		name    string
		input   string
		wantErr bool
	}{
		{"tls CA with tls_servername", "forward . tls://" + addr + " {\ntls " + caPath + "\ntls_servername dns.example\n}\n", false},
		{"per upstream server name tls://IP%NAME:PORT", "forward . tls://127.0.0.1%dns.example:" + addr[len("127.0.0.1:"):] + " {\ntls " + caPath + "\n}\n", false},
		{"a wrong server name fails verification", "forward . tls://" + addr + " {\ntls " + caPath + "\ntls_servername other.example\n}\n", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newForward(t, tc.input, nil)[0]
			f.timeout = 300 * time.Millisecond
			f.proxies[0].health.c.ReadTimeout = 100 * time.Millisecond
			m, rc, err := serve(f, &writer{}, query("example.org.", dns.TypeA))
			if tc.wantErr {
				if err == nil || rc != dns.RcodeServerFailure {
					t.Fatalf("rcode %d err %v, want a failure", rc, err)
				}
				return
			}
			if err != nil || m == nil || len(m.Answer) != 1 || m.Answer[0].(*dns.A).A.String() != "192.0.2.99" {
				t.Fatalf("answer %v err %v", m, err)
			}
			if err := f.proxies[0].health.send(f.proxies[0].addr); err != nil {
				t.Errorf("health check over TLS: %v", err)
			}
		})
	}
}
