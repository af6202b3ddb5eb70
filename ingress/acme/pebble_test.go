package acme_test

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
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/wfe"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress"
	"github.com/switchboard-dev/switchboard/ingress/acme"
	"github.com/switchboard-dev/switchboard/ingress/acme/acmetest"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/routing"
)

func backend(t *testing.T) int32 {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "shop backend: %s %s", r.Host, r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return int32(srv.Listener.Addr().(*net.TCPAddr).Port)
}

func shopObjects(port int32) []cluster.Object {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shop", Annotations: map[string]string{annotations.Prefix + annotations.ACME: "true"}},
		Spec: networkingv1.IngressSpec{
			TLS: []networkingv1.IngressTLS{{Hosts: []string{"shop.example.test"}, SecretName: "shop-tls"}},
			Rules: []networkingv1.IngressRule{{Host: "shop.example.test", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "shop", Port: networkingv1.ServiceBackendPort{Number: 80}}}}},
			}}}},
		},
	}
	return []cluster.Object{
		&networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "switchboard", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
			Spec: networkingv1.IngressClassSpec{Controller: routing.ControllerName}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shop"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}},
		&discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "shop-1", Labels: map[string]string{discoveryv1.LabelServiceName: "shop"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		},
		ing,
	}
}

// waitSecret waits until the Secret exists with a certificate other than
// the one whose serial is not.
func waitSecret(t *testing.T, s *cluster.Store, name string, not string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if sec, err := cluster.Get[*corev1.Secret](s, "default", name); err == nil {
			if b, _ := pem.Decode(sec.Data[corev1.TLSCertKey]); b != nil {
				if c, err := x509.ParseCertificate(b.Bytes); err == nil && c.SerialNumber.String() != not {
					if sec.Type != corev1.SecretTypeTLS {
						t.Fatalf("Secret %s is of type %q, want %q", name, sec.Type, corev1.SecretTypeTLS)
					}
					return c
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, ev := range cluster.EventsFor(s, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "shop"}}) {
		t.Logf("event %s %s: %s", ev.Type, ev.Reason, ev.Message)
	}
	t.Fatalf("no new certificate in Secret default/%s", name)
	return nil
}

// TestPebbleIssuesAndRenews: an Ingress annotated switchboard.dev/acme
// gets its certificate from pebble (a real ACME server, RFC 8555) which
// validates the HTTP-01 challenge against our HTTP listener; the
// certificate is served by SNI on our HTTPS listener and verifies against
// pebble's root for the host; at two thirds of its lifetime it is renewed.
func TestPebbleIssuesAndRenews(t *testing.T) {
	// Not parallel: pebble reads its switches from the environment.
	// PEBBLE_VA_NOSLEEP: no random wait of up to 5 s before validating;
	// PEBBLE_WFE_NONCEREJECT=0: no deliberately rejected nonces (the
	// client retries those, but they only slow the test).
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	resolver := acmetest.LoopbackDNS(t)

	pebbleLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pebbleLn.Close() })
	directory := "https://" + pebbleLn.Addr().String() + wfe.DirectoryPath
	dirClient := &http.Client{}
	var skew atomic.Int64 // the manager's clock runs ahead by this
	store := cluster.NewStore()
	stateDir := t.TempDir()
	c, err := ingress.New(ingress.Config{
		Store: store, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
		Logger: testLogger(t),
		ACME: &acme.Config{DirectoryURL: directory, Email: "ops@example.test", StateDir: stateDir, HTTPClient: dirClient,
			CheckInterval: time.Minute, MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second,
			Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	httpPort := c.HTTPAddr().(*net.TCPAddr).Port
	peb := acmetest.StartPebble(t, pebbleLn, httpPort, resolver)
	if peb.Directory != directory {
		t.Fatalf("pebble serves %s, want %s", peb.Directory, directory)
	}
	*dirClient = *peb.Client
	roots := peb.Roots

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, o := range shopObjects(backend(t)) {
		if _, err := store.Create(o); err != nil {
			t.Fatal(err)
		}
	}

	first := waitSecret(t, store, "shop-tls", "")
	https := c.HTTPSAddr().String()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true, // each request a new handshake: the certificate served now
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, https)
		},
	}}
	t.Cleanup(client.CloseIdleConnections)
	served := func() *x509.Certificate {
		t.Helper()
		// The table picks the Secret up on the next sync; poll briefly.
		var last error
		for range 100 {
			resp, err := client.Get("https://shop.example.test/cart")
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "shop backend: shop.example.test /cart") {
					t.Fatalf("GET https://shop.example.test/cart: %d %q", resp.StatusCode, body)
				}
				return resp.TLS.PeerCertificates[0]
			}
			last = err
			client.CloseIdleConnections()
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("HTTPS with pebble's root for shop.example.test: %v", last)
		return nil
	}
	leaf := served()
	if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
		// A later sync may already serve a newer one; it must still be the Secret's.
		t.Logf("served serial %s, Secret had %s", leaf.SerialNumber, first.SerialNumber)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "shop.example.test", Roots: roots, Intermediates: intermediates(t, store)}); err != nil {
		t.Fatalf("served certificate does not verify against pebble's root: %v", err)
	}
	// The same name with the system roots must fail: it really is pebble's chain.
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "shop.example.test", Intermediates: intermediates(t, store)}); err == nil {
		t.Fatal("pebble's certificate verified without pebble's root")
	}
	if !hasEvent(store, "Normal", "ACMECertificateIssued") {
		t.Error("no Normal ACMECertificateIssued Event on the Ingress")
	}

	// Renewal: "renew at 2/3 of lifetime". Move the manager's clock past
	// that point; a new certificate replaces the old one in the Secret
	// and on the listener, without restart.
	skew.Store(int64(acme.RenewAt(first).Sub(time.Now()) + time.Minute))
	c.ACME().Trigger()
	waitSecret(t, store, "shop-tls", first.SerialNumber.String())
	skew.Store(0) // back to now: the new certificate is not due
	var cur, got *x509.Certificate
	for range 100 {
		cur, got = secretLeaf(t, store), served()
		if got.SerialNumber.Cmp(cur.SerialNumber) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.SerialNumber.Cmp(cur.SerialNumber) != 0 || got.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("after renewal the listener serves serial %s; Secret has %s, first was %s", got.SerialNumber, cur.SerialNumber, first.SerialNumber)
	}
	if got.NotAfter.Before(first.NotAfter) {
		t.Errorf("renewed certificate ends %s, before the first's %s", got.NotAfter, first.NotAfter)
	}
}

func secretLeaf(t *testing.T, s *cluster.Store) *x509.Certificate {
	t.Helper()
	sec, err := cluster.Get[*corev1.Secret](s, "default", "shop-tls")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(sec.Data[corev1.TLSCertKey])
	if b == nil {
		t.Fatal("Secret default/shop-tls has no PEM certificate")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func intermediates(t *testing.T, s *cluster.Store) *x509.CertPool {
	t.Helper()
	sec, err := cluster.Get[*corev1.Secret](s, "default", "shop-tls")
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	rest := sec.Data[corev1.TLSCertKey]
	for i := 0; ; i++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if i == 0 {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pool.AddCert(c)
	}
	return pool
}

func hasEvent(s *cluster.Store, typ, reason string) bool {
	ing, err := cluster.Get[*networkingv1.Ingress](s, "default", "shop")
	if err != nil {
		return false
	}
	for _, ev := range cluster.EventsFor(s, ing) {
		if ev.Type == typ && ev.Reason == reason {
			return true
		}
	}
	return false
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestPebbleDNS01Wildcard: "*.shop.example.test" can only be proven over
// DNS-01 (RFC 8555 section 7.1.3: wildcard authorizations). With a real
// BIND 9 as the zone's primary (RFC 2136 updates signed with TSIG) and as
// pebble's resolver, an Ingress for the wildcard and its base name gets
// one certificate for both; pebble never reaches an HTTP listener (its
// HTTP-01 port has none), the records are gone afterwards, and a name
// under the wildcard is served by SNI with a chain to pebble's root.
func TestPebbleDNS01Wildcard(t *testing.T) {
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	bind := acmetest.StartBIND(t, "example.test")

	pebbleLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pebbleLn.Close() })
	noHTTP, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	noHTTPPort := noHTTP.Addr().(*net.TCPAddr).Port
	noHTTP.Close() // HTTP-01 would be refused here
	peb := acmetest.StartPebble(t, pebbleLn, noHTTPPort, bind.Addr)

	store := cluster.NewStore()
	c, err := ingress.New(ingress.Config{
		Store: store, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", Logger: testLogger(t),
		ACME: &acme.Config{DirectoryURL: peb.Directory, HTTPClient: peb.Client, MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second,
			DNS01: &acme.DNS01{Server: bind.Addr, TSIGKey: bind.KeyName, TSIGSecret: bind.Secret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	objs := shopObjects(backend(t))
	ing := objs[len(objs)-1].(*networkingv1.Ingress)
	ing.Spec.TLS[0].Hosts = []string{"*.shop.example.test", "shop.example.test"}
	ing.Spec.Rules[0].Host = "*.shop.example.test"
	for _, o := range objs {
		if _, err := store.Create(o); err != nil {
			t.Fatal(err)
		}
	}

	leaf := waitSecret(t, store, "shop-tls", "")
	if want := []string{"*.shop.example.test", "shop.example.test"}; !sameNames(leaf.DNSNames, want) {
		t.Fatalf("certificate names %v, want %v", leaf.DNSNames, want)
	}
	if got := bind.TXT(t, "_acme-challenge.shop.example.test"); len(got) != 0 {
		t.Errorf("challenge records left in the zone: %q", got)
	}
	https := c.HTTPSAddr().String()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: peb.Roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, https)
		},
	}}
	t.Cleanup(client.CloseIdleConnections)
	var last error
	for range 100 {
		resp, err := client.Get("https://a.shop.example.test/cart")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != "shop backend: a.shop.example.test /cart" {
				t.Fatalf("GET https://a.shop.example.test/cart: %d %q", resp.StatusCode, body)
			}
			if _, err := resp.TLS.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: "a.shop.example.test", Roots: peb.Roots, Intermediates: intermediates(t, store)}); err != nil {
				t.Fatal(err)
			}
			last = nil
			break
		}
		last = err
		client.CloseIdleConnections()
		time.Sleep(50 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("HTTPS for a.shop.example.test with pebble's root: %v", last)
	}
}

func sameNames(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
