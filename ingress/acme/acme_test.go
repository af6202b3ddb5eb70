package acme

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/switchboard-dev/switchboard/cluster"
)

func ing(name string, tls ...networkingv1.IngressTLS) *networkingv1.Ingress {
	return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: networkingv1.IngressSpec{TLS: tls, Rules: []networkingv1.IngressRule{{Host: "rule.example.test"}}}}
}

func TestSetIngresses(t *testing.T) {
	cases := []struct {
		name    string
		tls     networkingv1.IngressTLS
		hosts   []string // of the Secret "s"; nil: none wanted
		problem string
		dns01   bool // the manager answers DNS-01
	}{
		{"hosts of the entry", networkingv1.IngressTLS{Hosts: []string{"B.example.test", "a.example.test"}, SecretName: "s"}, []string{"a.example.test", "b.example.test"}, "", false},
		// "A TLS entry without hosts covers the Ingress's rule hosts" (ingress README, as certs).
		{"no hosts: the rule hosts", networkingv1.IngressTLS{SecretName: "s"}, []string{"rule.example.test"}, "", false},
		{"no secretName", networkingv1.IngressTLS{Hosts: []string{"a.example.test"}}, nil, "secretName", false},
		{"wildcard needs DNS-01", networkingv1.IngressTLS{Hosts: []string{"*.example.test"}, SecretName: "s"}, nil, "needs DNS-01 (--acme-dns01-server)", false},
		{"wildcard with DNS-01", networkingv1.IngressTLS{Hosts: []string{"*.example.test", "example.test"}, SecretName: "s"}, []string{"*.example.test", "example.test"}, "", true},
		{"wildcard not over a DNS name", networkingv1.IngressTLS{Hosts: []string{"*.a_b..test"}, SecretName: "s"}, nil, "not a DNS name", true},
		{"not a DNS name", networkingv1.IngressTLS{Hosts: []string{"a_b..test"}, SecretName: "s"}, nil, "not a DNS name", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Store: cluster.NewStore(), DirectoryURL: "https://127.0.0.1:1/dir"}
			if c.dns01 {
				cfg.DNS01 = &DNS01{Server: "127.0.0.1:1"}
			}
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			probs := m.SetIngresses([]*networkingv1.Ingress{ing("shop", c.tls)})
			if c.problem == "" && len(probs) > 0 || c.problem != "" && (len(probs) == 0 || !strings.Contains(probs[0].String(), c.problem)) {
				t.Fatalf("problems %v, want one with %q", probs, c.problem)
			}
			w := m.wants[typesNN("s")]
			if c.hosts == nil {
				if w != nil {
					t.Fatalf("wanted %v, want nothing", w.hosts)
				}
				return
			}
			if w == nil || strings.Join(w.hosts, ",") != strings.Join(c.hosts, ",") {
				t.Fatalf("wanted %v, want %v", w, c.hosts)
			}
			if !m.Manages("default", "s") || m.Manages("default", "other") {
				t.Fatal("Manages disagrees with the entries")
			}
		})
	}
}

func TestHandleChallenge(t *testing.T) {
	m, err := New(Config{Store: cluster.NewStore(), DirectoryURL: "https://127.0.0.1:1/dir"})
	if err != nil {
		t.Fatal(err)
	}
	m.tokens.Store("tok", "tok.thumb")
	cases := []struct {
		method, path string
		handled      bool
		body         string
	}{
		{"GET", ChallengePrefix + "tok", true, "tok.thumb"},
		{"HEAD", ChallengePrefix + "tok", true, ""},
		{"GET", ChallengePrefix + "other", false, ""}, // routed: a backend may answer its own
		{"POST", ChallengePrefix + "tok", false, ""},
		{"GET", "/tok", false, ""},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		got := m.HandleChallenge(rec, httptest.NewRequest(c.method, c.path, nil))
		if got != c.handled || (got && (rec.Code != http.StatusOK || rec.Body.String() != c.body)) {
			t.Errorf("%s %s: handled %v, %d %q; want %v %q", c.method, c.path, got, rec.Code, rec.Body.String(), c.handled, c.body)
		}
	}
}

// A directory that cannot be reached: the order fails, a Warning Event
// is written, and the next try waits MinBackoff, then twice as long.
func TestBackoffAndEvent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := "http://" + ln.Addr().String() + "/dir"
	ln.Close() // nothing listens there now
	s := cluster.NewStore()
	obj, err := s.Create(ing("shop", networkingv1.IngressTLS{Hosts: []string{"a.example.test"}, SecretName: "s"}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	m, err := New(Config{Store: s, DirectoryURL: dir, Recorder: cluster.NewRecorder(s, "test", "host"),
		MinBackoff: time.Minute, MaxBackoff: 3 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	m.SetIngresses([]*networkingv1.Ingress{obj.(*networkingv1.Ingress)})
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 3 * time.Minute, 3 * time.Minute} {
		next := m.check(context.Background())
		if got := next.Sub(now); got != want {
			t.Fatalf("failure %d: next try in %s, want %s", i+1, got, want)
		}
		if again := m.check(context.Background()); !again.Equal(next) {
			t.Fatalf("failure %d: checked before the back-off ended, next %s", i+1, again)
		}
		now = next
	}
	var warned bool
	for _, ev := range cluster.EventsFor(s, obj) {
		warned = warned || (ev.Type == corev1.EventTypeWarning && ev.Reason == "ACMEFailed")
	}
	if !warned {
		t.Fatal("no Warning ACMEFailed Event")
	}
}

func typesNN(name string) types.NamespacedName {
	return types.NamespacedName{Namespace: "default", Name: name}
}
