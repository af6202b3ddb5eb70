package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/cluster/admission"
	"github.com/switchboard-dev/switchboard/ingress/certs"
	"github.com/switchboard-dev/switchboard/ingress/routing"
)

// echo is what a test backend answers: who it is and what it received.
type echo struct {
	Backend string            `json:"backend"`
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	RawPath string            `json:"rawPath"`
	Query   string            `json:"query"`
	Host    string            `json:"host"`
	Body    string            `json:"body"`
	Header  map[string]string `json:"header"`
}

// startBackend starts a named echo backend on loopback and returns its
// port.
func startBackend(t testing.TB, name string) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e := echo{Backend: name, Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, Query: r.URL.RawQuery, Host: r.Host, Body: string(b), Header: map[string]string{}}
		for k := range r.Header {
			e.Header[k] = strings.Join(r.Header.Values(k), ",")
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e)
	}), ReadHeaderTimeout: 5 * time.Second}
	t.Cleanup(func() { srv.Close() })
	go srv.Serve(ln)
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// accessLogHas waits up to 5 s until the access log holds every one of
// subs: a request's line is written at its end (an upgraded connection's
// when it closes), which can be just after the client saw its answer.
func (e *env) accessLogHas(subs ...string) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		log, all := e.access.String(), true
		for _, s := range subs {
			all = all && strings.Contains(log, s)
		}
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// doOK sends req and reads the whole answer: an error unless it is a 200.
func doOK(c *http.Client, req *http.Request) error {
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// env is a store, a running controller and its addresses.
type env struct {
	t      testing.TB
	store  *cluster.Store
	c      *Controller
	reg    *prometheus.Registry
	access *syncBuffer
	http   string // 127.0.0.1:port
	https  string
	status string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newStore(t testing.TB) *cluster.Store {
	s := cluster.NewStore()
	s.Use(admission.Default, admission.Validate)
	for _, ns := range []string{"default", "shop", "other"} {
		if _, err := s.Create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func startController(t testing.TB, s *cluster.Store, tweak func(*Config)) *env {
	t.Helper()
	e := &env{t: t, store: s, reg: prometheus.NewRegistry(), access: &syncBuffer{}}
	cfg := Config{
		Store: s, HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", StatusAddr: "127.0.0.1:0",
		Registerer: e.reg, AccessLog: slog.New(slog.NewJSONHandler(e.access, nil)),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		EjectFor: time.Minute,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-c.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("controller not ready")
	}
	e.c = c
	if a := c.HTTPAddr(); a != nil {
		e.http = a.String()
	}
	if a := c.HTTPSAddr(); a != nil {
		e.https = a.String()
	}
	if a := c.StatusAddr(); a != nil {
		e.status = a.String()
	}
	return e
}

func (e *env) port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// settle waits until the controller's routing table reflects the store:
// every change triggers a sync; a probe Ingress with a unique host shows
// when the syncs after a change are done.
var probeSeq int

func (e *env) settle() {
	e.t.Helper()
	probeSeq++
	host := fmt.Sprintf("probe-%d.settle.test", probeSeq)
	ing := ingressObj("default", fmt.Sprintf("settle-%d", probeSeq), host, pathRule("Exact", "/", "settle-none", 80))
	ing.Spec.IngressClassName = ptr.To("switchboard")
	e.create(ing)
	deadline := time.Now().Add(10 * time.Second)
	probed := func() bool {
		r := e.c.Table().Match(host, "/")
		return r != nil && r.Ingress.Name == ing.Name
	}
	for !probed() {
		if time.Now().After(deadline) {
			e.t.Fatal("routing table did not follow the store")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := e.store.Delete(cluster.KindIngress, "default", ing.Name, cluster.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	for probed() {
		if time.Now().After(deadline) {
			e.t.Fatal("routing table did not follow the store")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (e *env) create(objs ...cluster.Object) {
	e.t.Helper()
	for _, o := range objs {
		if _, err := e.store.Create(o); err != nil {
			e.t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

func (e *env) apply(objs ...cluster.Object) {
	e.t.Helper()
	for _, o := range objs {
		if _, _, err := e.store.Apply(o); err != nil {
			e.t.Fatalf("apply %T %s: %v", o, o.GetName(), err)
		}
	}
}

// backendService creates a Service "name" (port 80 named http) and an
// EndpointSlice pointing at a new echo backend named after the service.
func (e *env) backendService(ns, name string) {
	e.t.Helper()
	port := startBackend(e.t, name)
	e.create(serviceObj(ns, name), sliceObj(ns, name, name, port, "127.0.0.1"))
}

func serviceObj(ns, name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}
}

func sliceObj(ns, svc, name string, port int32, ips ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	for _, ip := range ips {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	return s
}

func classObj(name string, isDefault bool) *networkingv1.IngressClass {
	c := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: routing.ControllerName}}
	if isDefault {
		c.Annotations = map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}
	}
	return c
}

func pathRule(typ, path, svc string, port int32) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(networkingv1.PathType(typ)),
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: port}}}}
}

func ingressObj(ns, name, host string, paths ...networkingv1.HTTPIngressPath) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if len(paths) > 0 {
		ing.Spec.Rules = []networkingv1.IngressRule{{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}}
	}
	return ing
}

func tlsSecretObj(t *testing.T, ns, name string, hosts ...string) (*corev1.Secret, []byte) {
	t.Helper()
	c, err := certs.SelfSigned(hosts[0], hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := certs.PEM(c)
	if err != nil {
		t.Fatal(err)
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: key}}, crt
}

// curlResult is what curl reports.
type curlResult struct {
	code    int
	version string // "1.1", "2"
	body    string
	headers http.Header
	exit    int
	stderr  string
}

func (r curlResult) echo(t *testing.T) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("backend answer %q (status %d): %v", r.body, r.code, err)
	}
	return e
}

// curl runs the real curl with args (the URL among them) and returns the
// status, HTTP version, headers and body.
func curl(t *testing.T, args ...string) curlResult {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (apt-get install curl)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const marker = "\n--curl-write-out--"
	full := append([]string{"-sS", "--noproxy", "*", "-D", "-", "-w", marker + "%{http_code} %{http_version}"}, args...)
	cmd := exec.CommandContext(ctx, "curl", full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := curlResult{stderr: errb.String(), headers: http.Header{}}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("curl: %v", err)
	}
	s := out.String()
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return r
	}
	fmt.Sscanf(s[i+len(marker):], "%d %s", &r.code, &r.version)
	s = s[:i]
	// With -L several header blocks come first; the last one is the answer.
	for {
		j := strings.Index(s, "\r\n\r\n")
		if j < 0 {
			break
		}
		block := s[:j]
		rest := s[j+4:]
		lines := strings.Split(block, "\r\n")
		if !strings.HasPrefix(lines[0], "HTTP/") {
			break
		}
		r.headers = http.Header{}
		for _, l := range lines[1:] {
			if k, v, ok := strings.Cut(l, ":"); ok {
				r.headers.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
		}
		s = rest
		if !strings.HasPrefix(s, "HTTP/") {
			break
		}
	}
	r.body = s
	return r
}

// resolve is curl's --resolve for host on the address's port.
func resolve(host, addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("%s:%s:127.0.0.1", host, p)
}

func url(scheme, host, addr, path string) string {
	_, p, _ := net.SplitHostPort(addr)
	return scheme + "://" + host + ":" + p + path
}

func itoa(i int) string { return strconv.Itoa(i) }
