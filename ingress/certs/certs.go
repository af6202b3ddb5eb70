// Package certs owns the ingress controller's server certificates: the
// kubernetes.io/tls Secrets named by the spec.tls of the Ingresses served,
// indexed by host (precise and one-label wildcard), chosen by SNI through
// a tls.Config GetCertificate that reads an atomically swapped table (a
// changed Secret is served without restart), and a generated self-signed
// default certificate for names no Secret covers. It also fixes the TLS
// settings (TLS 1.2+, modern AEAD suites, HTTP/2 by ALPN).
//
// It does not route requests or read the store: the controller passes the
// Ingresses and a Secret getter.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/switchboard-dev/switchboard/ingress/routing"
)

// DefaultCertName is the subject of the generated default certificate
// (ingress-nginx calls its own "Kubernetes Ingress Controller Fake
// Certificate").
const DefaultCertName = "Switchboard Ingress Default Certificate"

// Problem is a TLS entry of an Ingress that could not be used.
type Problem struct {
	Ingress *networkingv1.Ingress
	Field   string
	Reason  string
}

func (p Problem) String() string {
	return fmt.Sprintf("Ingress %s/%s: %s: %s", p.Ingress.Namespace, p.Ingress.Name, p.Field, p.Reason)
}

// Table maps server names to certificates. It is immutable.
type Table struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // by the suffix after "*."
	def      *tls.Certificate
}

// Lookup returns the certificate for a server name (NormalizeHost'd):
// a precise entry, else a wildcard entry covering the name (one label),
// else the default certificate (found false).
func (t *Table) Lookup(name string) (cert *tls.Certificate, found bool) {
	if c := t.exact[name]; c != nil {
		return c, true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if c := t.wildcard[name[i+1:]]; c != nil {
			return c, true
		}
	}
	return t.def, false
}

// Hosts is the number of names with a certificate.
func (t *Table) Hosts() int { return len(t.exact) + len(t.wildcard) }

// SecretGetter returns a Secret (nil, error when missing).
type SecretGetter func(namespace, name string) (*corev1.Secret, error)

// Loader builds tables, keeping parsed key pairs of unchanged Secrets
// (by uid and resourceVersion) so that a rebuild does not parse them
// again.
type Loader struct {
	mu    sync.Mutex
	cache map[string]cached // namespace/name -> parsed
	def   *tls.Certificate
}

type cached struct {
	version string
	cert    *tls.Certificate
	err     error
}

// NewLoader returns a loader whose tables fall back to def (nil: a
// self-signed certificate is generated).
func NewLoader(def *tls.Certificate) (*Loader, error) {
	if def == nil {
		var err error
		if def, err = SelfSigned(DefaultCertName, nil, 365*24*time.Hour); err != nil {
			return nil, err
		}
	}
	return &Loader{cache: map[string]cached{}, def: def}, nil
}

// Default is the default certificate.
func (l *Loader) Default() *tls.Certificate { return l.def }

// Build makes the table of the Ingresses served (oldest first: for a host
// named by two Ingresses with different Secrets the older wins, as for
// paths). A TLS entry without hosts covers the hosts of the Ingress's
// rules. A missing or malformed Secret is a Problem and its hosts get the
// default certificate.
func (l *Loader) Build(ings []*networkingv1.Ingress, get SecretGetter) (*Table, []Problem) {
	t := &Table{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}, def: l.def}
	var problems []Problem
	used := map[string]bool{}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ing := range ings {
		for i, e := range ing.Spec.TLS {
			fld := fmt.Sprintf("spec.tls[%d]", i)
			if e.SecretName == "" {
				// No Secret: the hosts are served with the default
				// certificate (and still redirected to HTTPS).
				continue
			}
			key := ing.Namespace + "/" + e.SecretName
			used[key] = true
			cert, err := l.load(key, ing.Namespace, e.SecretName, get)
			if err != nil {
				problems = append(problems, Problem{Ingress: ing, Field: fld + ".secretName", Reason: err.Error()})
				continue
			}
			hosts := e.Hosts
			if len(hosts) == 0 {
				for _, r := range ing.Spec.Rules {
					if r.Host != "" {
						hosts = append(hosts, r.Host)
					}
				}
			}
			for _, h := range hosts {
				h = strings.ToLower(h)
				m, k := t.exact, h
				if s, ok := strings.CutPrefix(h, "*."); ok {
					m, k = t.wildcard, s
				}
				if _, taken := m[k]; !taken {
					m[k] = cert
				}
			}
		}
	}
	for k := range l.cache {
		if !used[k] {
			delete(l.cache, k)
		}
	}
	return t, problems
}

func (l *Loader) load(key, ns, name string, get SecretGetter) (*tls.Certificate, error) {
	s, err := get(ns, name)
	if err != nil || s == nil {
		delete(l.cache, key)
		return nil, fmt.Errorf("secret %s: not found", key)
	}
	version := string(s.UID) + "/" + s.ResourceVersion
	if c, ok := l.cache[key]; ok && c.version == version && s.ResourceVersion != "" {
		return c.cert, c.err
	}
	cert, err := parseSecret(s)
	l.cache[key] = cached{version: version, cert: cert, err: err}
	return cert, err
}

// parseSecret: "The TLS secret must contain keys named tls.crt and
// tls.key that contain the certificate and private key to use for TLS",
// of type kubernetes.io/tls.
func parseSecret(s *corev1.Secret) (*tls.Certificate, error) {
	key := s.Namespace + "/" + s.Name
	if s.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("secret %s is of type %q, not %q", key, s.Type, corev1.SecretTypeTLS)
	}
	crt, k := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
	if len(crt) == 0 || len(k) == 0 {
		return nil, fmt.Errorf("secret %s: data must have %s and %s", key, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
	}
	cert, err := tls.X509KeyPair(crt, k)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %v", key, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("secret %s: %s: %v", key, corev1.TLSCertKey, err)
		}
	}
	return &cert, nil
}

// Store holds the current table for GetCertificate.
type Store struct{ t atomic.Pointer[Table] }

// NewStore returns a store serving the default certificate until the
// first Set.
func NewStore(def *tls.Certificate) *Store {
	s := &Store{}
	s.t.Store(&Table{def: def})
	return s
}

// Set swaps the table in.
func (s *Store) Set(t *Table) { s.t.Store(t) }

// Table is the current table.
func (s *Store) Table() *Table { return s.t.Load() }

// GetCertificate chooses the certificate by SNI (the default one without
// SNI or for unknown names).
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, _ := s.t.Load().Lookup(routing.NormalizeHost(hello.ServerName))
	if c == nil {
		return nil, errors.New("no certificate")
	}
	return c, nil
}

// ServerConfig is the TLS configuration of the HTTPS listener: TLS 1.2
// and 1.3 only, for TLS 1.2 only ECDHE with AEAD suites (Mozilla's
// "intermediate" list), HTTP/2 and HTTP/1.1 offered by ALPN.
func ServerConfig(s *Store) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// SelfSigned generates an ECDSA P-256 self-signed certificate with the
// common name cn and the DNS names given, valid for the duration.
func SelfSigned(cn string, dnsNames []string, valid time.Duration) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Switchboard"}},
		DNSNames:              dnsNames,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// PEM encodes a certificate chain and its private key as the tls.crt and
// tls.key of a kubernetes.io/tls Secret.
func PEM(c *tls.Certificate) (crt, key []byte, err error) {
	for _, der := range c.Certificate {
		crt = append(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	k, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return nil, nil, err
	}
	return crt, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), nil
}
