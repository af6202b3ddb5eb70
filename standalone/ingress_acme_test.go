package standalone

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/acme/acmetest"
	"github.com/switchboard-dev/switchboard/ingress/acmeflags"
)

// TestUpACMEFlags: `up` takes the ACME flags of `switchboard ingress`
// (ingress/acmeflags) and its ingress controller gets the resulting
// configuration; without --acme-directory there is no ACME manager.
func TestUpACMEFlags(t *testing.T) {
	cmd := NewUpCommand(new(string), func() string { return t.TempDir() }, slog.Default)
	for _, f := range []string{"acme-directory", "acme-email", "acme-state-dir", "acme-ca-file"} {
		if cmd.Flags().Lookup(f) == nil {
			t.Errorf("up: flag --%s missing", f)
		}
	}
	state := t.TempDir()
	for _, c := range []struct {
		args     []string
		wantACME bool
	}{
		{nil, false},
		{[]string{"--acme-directory", "https://127.0.0.1:1/dir", "--acme-email", "ops@example.test"}, true},
	} {
		cmd := NewUpCommand(new(string), func() string { return state }, slog.Default)
		f := cmd.Flags()
		if err := f.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		// What RunE does with the parsed flags.
		var o acmeflags.Options
		o.Directory, _ = f.GetString("acme-directory")
		o.Email, _ = f.GetString("acme-email")
		o.StateDir, _ = f.GetString("acme-state-dir")
		o.CAFile, _ = f.GetString("acme-ca-file")
		ac, err := o.Config(filepath.Join(state, "ingress-acme"))
		if err != nil {
			t.Fatal(err)
		}
		ing, err := newIngress(cluster.NewStore(), Config{IngressHTTPAddr: "127.0.0.1:0", IngressHTTPSAddr: "127.0.0.1:0", NodeName: "node-1", IngressACME: ac},
			prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ing.Run(ctx) // closes the listeners New bound
		if got := ing.ACME() != nil; got != c.wantACME {
			t.Errorf("%v: ACME manager %v, want %v", c.args, got, c.wantACME)
		}
		if c.wantACME && (ac.DirectoryURL != "https://127.0.0.1:1/dir" || ac.Email != "ops@example.test" || ac.StateDir != filepath.Join(state, "ingress-acme")) {
			t.Errorf("%v: config %q %q %q", c.args, ac.DirectoryURL, ac.Email, ac.StateDir)
		}
	}
}

const acmeFixture = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: switchboard
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: switchboard.dev/ingress
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
    - name: web
      command: ["switchboard", "demo", "http", "--port", "8080"]
      env:
        - name: POD_IP
          valueFrom: {fieldRef: {fieldPath: status.podIP}}
      readinessProbe:
        httpGet: {path: /healthz, port: 8080}
        periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    switchboard.dev/acme: "true"
spec:
  tls:
    - hosts: [shop.example.test]
      secretName: shop-tls
  rules:
    - host: shop.example.test
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: web
                port: {name: http}
`

// TestUpACMEWithPebble: `up --acme-directory` gets the certificate of an
// Ingress annotated switchboard.dev/acme from a real ACME server (pebble,
// in this process on loopback), which validates the HTTP-01 challenge
// against up's ingress HTTP listener; the certificate lands in the
// Ingress's kubernetes.io/tls Secret and is served by SNI, verifying
// against pebble's root.
func TestUpACMEWithPebble(t *testing.T) {
	// Not parallel: pebble reads its switches from the environment.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	resolver := acmetest.LoopbackDNS(t)
	// Pebble validates on 127.0.0.1:httpPort (LoopbackDNS's answer), where
	// up's ingress listens for HTTP.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpPort := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	pebbleLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peb := acmetest.StartPebble(t, pebbleLn, httpPort, resolver)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "pebble-ca.pem")
	if err := os.WriteFile(caFile, peb.ServerCA, 0o644); err != nil {
		t.Fatal(err)
	}
	manifests := filepath.Join(dir, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, manifests, "shop.yaml", acmeFixture)
	n := startNodeWith(t, []string{"--ingress-http-addr", fmt.Sprintf("127.0.0.1:%d", httpPort), "--ingress-https-addr", "127.0.0.1:0",
		"--acme-directory", peb.Directory, "--acme-email", "ops@example.test", "--acme-ca-file", caFile}, manifests)
	n.waitPodsReady("default", 1, 60*time.Second)

	var leaf *x509.Certificate
	inter := x509.NewCertPool()
	n.WaitFor(60*time.Second, "the ACME certificate in Secret default/shop-tls", func() bool {
		sec, err := n.Client.CoreV1().Secrets("default").Get(context.Background(), "shop-tls", metav1.GetOptions{})
		if err != nil || sec.Type != corev1.SecretTypeTLS {
			return false
		}
		rest := sec.Data[corev1.TLSCertKey]
		for i := 0; ; i++ {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return false
			}
			if i == 0 {
				leaf = c
			} else {
				inter.AddCert(c)
			}
		}
		return leaf != nil
	})
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "shop.example.test", Roots: peb.Roots, Intermediates: inter}); err != nil {
		t.Fatalf("the Secret's certificate does not verify against pebble's root: %v", err)
	}

	m := regexp.MustCompile(`ingress on http://\S+ and https://(\S+) `).FindStringSubmatch(n.Stdout.String())
	if m == nil {
		t.Fatalf("no ingress line in stdout:\n%s", n.Stdout.String())
	}
	httpsAddr := m[1]
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: peb.Roots},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
		},
	}}
	var body string
	n.WaitFor(20*time.Second, "HTTPS for shop.example.test with pebble's certificate", func() bool {
		resp, err := client.Get("https://shop.example.test/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK && strings.Contains(body, `"pod": "web"`)
	})
}
