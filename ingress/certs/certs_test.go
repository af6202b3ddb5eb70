package certs

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func tlsSecret(t *testing.T, ns, name, rv string, dnsNames ...string) *corev1.Secret {
	t.Helper()
	c, err := SelfSigned(dnsNames[0], dnsNames, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := PEM(c)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: rv, UID: types.UID("uid-" + name)},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key},
	}
}

func tlsIngress(ns, name string, rules []string, entries ...networkingv1.IngressTLS) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: networkingv1.IngressSpec{TLS: entries}}
	for _, h := range rules {
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: h})
	}
	return ing
}

type secrets map[string]*corev1.Secret

func (s secrets) get(ns, name string) (*corev1.Secret, error) {
	if x := s[ns+"/"+name]; x != nil {
		return x, nil
	}
	return nil, &net.AddrError{Err: "not found"}
}

func cn(c *tls.Certificate) string { return c.Leaf.Subject.CommonName }

func TestBuild(t *testing.T) {
	sec := secrets{
		"shop/shop-tls":  tlsSecret(t, "shop", "shop-tls", "1", "shop.test"),
		"shop/wild-tls":  tlsSecret(t, "shop", "wild-tls", "1", "*.apps.test"),
		"other/shop-tls": tlsSecret(t, "other", "shop-tls", "1", "other-shop.test"),
		"shop/opaque":    {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "opaque"}, Type: corev1.SecretTypeOpaque},
		"shop/broken":    {ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "broken"}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": []byte("x"), "tls.key": []byte("y")}},
		"shop/rules-tls": tlsSecret(t, "shop", "rules-tls", "1", "rules.test"),
	}
	ings := []*networkingv1.Ingress{
		tlsIngress("shop", "a", nil, networkingv1.IngressTLS{Hosts: []string{"shop.test", "*.apps.test"}, SecretName: "shop-tls"}),
		tlsIngress("shop", "b", nil, networkingv1.IngressTLS{Hosts: []string{"*.apps.test"}, SecretName: "wild-tls"}),
		// Younger: the same host with another Secret loses.
		tlsIngress("other", "c", nil, networkingv1.IngressTLS{Hosts: []string{"shop.test"}, SecretName: "shop-tls"}),
		tlsIngress("shop", "d", nil,
			networkingv1.IngressTLS{Hosts: []string{"opaque.test"}, SecretName: "opaque"},
			networkingv1.IngressTLS{Hosts: []string{"broken.test"}, SecretName: "broken"},
			networkingv1.IngressTLS{Hosts: []string{"missing.test"}, SecretName: "missing"}),
		tlsIngress("shop", "e", []string{"rules.test", ""}, networkingv1.IngressTLS{SecretName: "rules-tls"}),
	}
	l, err := NewLoader(nil)
	if err != nil {
		t.Fatal(err)
	}
	tbl, problems := l.Build(ings, sec.get)
	cases := []struct {
		name, want string
		found      bool
	}{
		{"shop.test", "shop.test", true},
		{"x.apps.test", "shop.test", true}, // the older Ingress's Secret for *.apps.test
		{"a.b.apps.test", DefaultCertName, false},
		{"apps.test", DefaultCertName, false},
		{"opaque.test", DefaultCertName, false},
		{"missing.test", DefaultCertName, false},
		{"rules.test", "rules.test", true}, // a TLS entry without hosts covers the rule hosts
		{"", DefaultCertName, false},
	}
	for _, c := range cases {
		got, found := tbl.Lookup(c.name)
		if cn(got) != c.want || found != c.found {
			t.Errorf("Lookup(%q) = %s, %v; want %s, %v", c.name, cn(got), found, c.want, c.found)
		}
	}
	want := []string{`is of type "Opaque"`, "shop/broken", "shop/missing: not found"}
	if len(problems) != len(want) {
		t.Fatalf("problems: %v", problems)
	}
	for i, p := range problems {
		if !strings.Contains(p.String(), want[i]) || !strings.Contains(p.String(), "Ingress shop/d: spec.tls[") {
			t.Errorf("problem %d: %s, want %q", i, p, want[i])
		}
	}

	// Unchanged Secrets are not parsed again; a changed one is.
	again, _ := l.Build(ings, sec.get)
	c1, _ := tbl.Lookup("shop.test")
	c2, _ := again.Lookup("shop.test")
	if c1 != c2 {
		t.Errorf("unchanged Secret parsed again")
	}
	sec["shop/shop-tls"] = tlsSecret(t, "shop", "shop-tls", "2", "shop.test")
	third, _ := l.Build(ings, sec.get)
	if c3, _ := third.Lookup("shop.test"); c3 == c1 {
		t.Errorf("changed Secret not reloaded")
	}
}

// TestHandshake serves the store over a real TLS listener on loopback.
func TestHandshake(t *testing.T) {
	sec := secrets{"ns/s": tlsSecret(t, "ns", "s", "1", "shop.test")}
	l, err := NewLoader(nil)
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore(l.Default())
	tbl, _ := l.Build([]*networkingv1.Ingress{tlsIngress("ns", "i", nil, networkingv1.IngressTLS{Hosts: []string{"shop.test"}, SecretName: "s"})}, sec.get)
	store.Set(tbl)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(store))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	cases := []struct {
		name      string
		sni       string
		max       uint16
		alpn      []string
		wantCN    string
		wantProto string
		fail      bool
	}{
		{"SNI with a Secret", "shop.test", 0, []string{"h2", "http/1.1"}, "shop.test", "h2", false},
		{"SNI, upper case", "SHOP.test", 0, nil, "shop.test", "", false},
		{"unknown SNI gets the default certificate", "other.test", 0, []string{"http/1.1"}, DefaultCertName, "http/1.1", false},
		{"no SNI gets the default certificate", "", 0, nil, DefaultCertName, "", false},
		{"TLS 1.2 accepted", "shop.test", tls.VersionTLS12, nil, "shop.test", "", false},
		{"TLS 1.1 refused", "shop.test", tls.VersionTLS11, nil, "", "", true},
	}
	for _, c := range cases {
		cfg := &tls.Config{InsecureSkipVerify: true, ServerName: c.sni, MaxVersion: c.max, NextProtos: c.alpn}
		if c.max == tls.VersionTLS11 {
			cfg.MinVersion = tls.VersionTLS10
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if c.fail {
			if err == nil {
				conn.Close()
				t.Errorf("%s: handshake succeeded", c.name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		st := conn.ConnectionState()
		conn.Close()
		if got := st.PeerCertificates[0].Subject.CommonName; got != c.wantCN {
			t.Errorf("%s: certificate %q, want %q", c.name, got, c.wantCN)
		}
		if st.NegotiatedProtocol != c.wantProto {
			t.Errorf("%s: ALPN %q, want %q", c.name, st.NegotiatedProtocol, c.wantProto)
		}
	}
}
