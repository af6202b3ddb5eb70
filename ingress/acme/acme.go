// Package acme obtains the certificates of Ingresses annotated
// switchboard.dev/acme: "true" from an ACME directory (RFC 8555, through
// golang.org/x/crypto/acme) and keeps them renewed.
//
// For each spec.tls entry with a secretName of such an Ingress it orders a
// certificate for the entry's hosts (the Ingress's rule hosts when the
// entry names none), answers the HTTP-01 challenges through
// HandleChallenge (which the controller calls on its plain HTTP listener
// before routing and before the redirect to HTTPS) or, with Config.DNS01,
// the DNS-01 challenges through RFC 2136 updates (dns01.go; the only way
// to wildcard names), and writes the result
// as a kubernetes.io/tls Secret through the store, where the controller's
// certificate table picks it up without restart. Certificates are checked
// on an interval and renewed at two thirds of their lifetime; failures are
// retried with exponential back-off and reported as Events on the
// Ingress. The account key is kept in a Secret or a state directory.
//
// It owns the ACME account, the challenge tokens and the Secrets it
// writes (annotated ManagedAnnotation); it never overwrites a Secret that
// someone else made, and it does not route or serve TLS itself.
package acme

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/acme"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/switchboard-dev/switchboard/cluster"
	"github.com/switchboard-dev/switchboard/ingress/annotations"
	"github.com/switchboard-dev/switchboard/ingress/certs"
)

// ChallengePrefix is the path under which HTTP-01 key authorizations are
// served (RFC 8555 section 8.3: "http://{domain}/.well-known/acme-challenge/{token}").
const ChallengePrefix = "/.well-known/acme-challenge/"

// ManagedAnnotation marks the Secrets this package writes; its value is
// the hosts of the certificate, comma-separated.
const ManagedAnnotation = "switchboard.dev/acme-certificate"

// AccountKeyFile is the account key's file in Config.StateDir, and
// AccountKeyData its key in Config.AccountSecret.
const (
	AccountKeyFile = "acme-account.key"
	AccountKeyData = "account.key"
)

// Defaults of Config.
const (
	DefaultCheckInterval = time.Hour
	DefaultMinBackoff    = time.Minute
	DefaultMaxBackoff    = 6 * time.Hour
	DefaultOrderTimeout  = 2 * time.Minute
)

// Config configures a Manager.
type Config struct {
	Store *cluster.Store
	// DirectoryURL is the ACME directory (required), e.g.
	// https://acme-v02.api.letsencrypt.org/directory.
	DirectoryURL string
	// Email is the account's contact (optional).
	Email string
	// AccountSecret, when its Name is set, keeps the account key in this
	// Opaque Secret (key AccountKeyData); else StateDir keeps it in
	// AccountKeyFile; with neither the key lives only in memory.
	AccountSecret types.NamespacedName
	StateDir      string
	// DNS01, when set, answers every authorization with a dns-01
	// challenge through RFC 2136 updates (and allows wildcard hosts);
	// without it authorizations are answered over HTTP-01.
	DNS01 *DNS01
	// HTTPClient talks to the directory (nil: http.DefaultClient); give
	// it the root CA of a test directory.
	HTTPClient *http.Client
	// CheckInterval is how often every certificate is looked at;
	// MinBackoff and MaxBackoff bound the wait after failed orders
	// (doubling from MinBackoff); OrderTimeout bounds one order.
	CheckInterval, MinBackoff, MaxBackoff, OrderTimeout time.Duration

	Logger     *slog.Logger
	Recorder   *cluster.Recorder // nil: no Events
	Registerer prometheus.Registerer
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// want is one certificate to keep: a Secret and its hosts.
type want struct {
	key   types.NamespacedName // the Secret
	hosts []string
	ing   *networkingv1.Ingress // for Events: the oldest Ingress asking
}

type state struct {
	failures int
	retryAt  time.Time
	lastErr  string
}

// Manager obtains and renews certificates. Create it with New, feed it
// the served Ingresses with SetIngresses, and Run it.
type Manager struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	tokens sync.Map // token -> key authorization

	mu    sync.Mutex
	wants map[types.NamespacedName]*want
	kick  chan struct{}

	// owned by Run's goroutine
	client *acme.Client
	states map[types.NamespacedName]*state

	orders *prometheus.CounterVec
	expiry *prometheus.GaugeVec
}

// New checks the configuration.
func New(cfg Config) (*Manager, error) {
	if cfg.Store == nil {
		return nil, errors.New("acme: Config.Store is required")
	}
	if cfg.DirectoryURL == "" {
		return nil, errors.New("acme: Config.DirectoryURL is required")
	}
	if !strings.HasPrefix(cfg.DirectoryURL, "https://") && !strings.HasPrefix(cfg.DirectoryURL, "http://") {
		return nil, fmt.Errorf("acme: directory URL %q: must be an http(s) URL", cfg.DirectoryURL)
	}
	if cfg.AccountSecret.Name != "" {
		if msgs := validation.IsDNS1123Subdomain(cfg.AccountSecret.Name); len(msgs) > 0 {
			return nil, fmt.Errorf("acme: account Secret name %q: %s", cfg.AccountSecret.Name, strings.Join(msgs, "; "))
		}
		if cfg.AccountSecret.Namespace == "" {
			cfg.AccountSecret.Namespace = metav1.NamespaceDefault
		}
	}
	if cfg.DNS01 != nil {
		d := *cfg.DNS01
		if err := d.Check(); err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
		cfg.DNS01 = &d
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.OrderTimeout <= 0 {
		cfg.OrderTimeout = DefaultOrderTimeout
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, now: cfg.Now, wants: map[types.NamespacedName]*want{},
		kick: make(chan struct{}, 1), states: map[types.NamespacedName]*state{}}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.log = m.log.With("component", "acme")
	if m.now == nil {
		m.now = time.Now
	}
	m.orders = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_acme_orders_total", Help: "ACME certificate orders by result (issued, failed).",
	}, []string{"result"})
	// As cert-manager's certmanager_certificate_expiration_timestamp_seconds.
	m.expiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "switchboard_acme_certificate_expiration_timestamp_seconds", Help: "The notAfter of the ACME certificates managed, by Secret.",
	}, []string{"namespace", "name"})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{m.orders, m.expiry} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("acme: metrics: %w", err)
			}
		}
	}
	return m, nil
}

// HandleChallenge answers an HTTP-01 challenge request for a token of an
// order in progress (200, the key authorization as text/plain) and
// reports true; for any other request it writes nothing and reports false
// (the request is routed as usual, so a backend may answer its own
// challenges).
func (m *Manager) HandleChallenge(w http.ResponseWriter, r *http.Request) bool {
	if m == nil || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		return false
	}
	token, ok := strings.CutPrefix(r.URL.Path, ChallengePrefix)
	if !ok {
		return false
	}
	v, ok := m.tokens.Load(token)
	if !ok {
		return false
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write([]byte(v.(string)))
	}
	return true
}

// SetIngresses tells the Manager the Ingresses served that carry the
// annotation (the controller calls it after every sync). Ingresses are
// taken oldest first; each TLS entry with a secretName is one
// certificate, an entry without hosts covers the rule hosts. It returns
// the problems of entries that cannot be ordered.
func (m *Manager) SetIngresses(ings []*networkingv1.Ingress) []certs.Problem {
	ings = slices.Clone(ings)
	sort.SliceStable(ings, func(i, j int) bool {
		a, b := ings[i], ings[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	wants := map[types.NamespacedName]*want{}
	var problems []certs.Problem
	for _, ing := range ings {
		for i, e := range ing.Spec.TLS {
			fld := fmt.Sprintf("spec.tls[%d]", i)
			problem := func(field, reason string) {
				problems = append(problems, certs.Problem{Ingress: ing, Field: field, Reason: reason})
			}
			if e.SecretName == "" {
				problem(fld+".secretName", "required for an ACME certificate ("+annotations.Prefix+annotations.ACME+")")
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
			var ok []string
			for j, h := range hosts {
				h = strings.TrimSuffix(strings.ToLower(h), ".")
				switch {
				case strings.HasPrefix(h, "*.") && m.cfg.DNS01 == nil:
					// HTTP-01 cannot prove a wildcard name: directories
					// (Let's Encrypt, pebble) offer only DNS-01 for them.
					problem(fmt.Sprintf("%s.hosts[%d]", fld, j), fmt.Sprintf("%q: an ACME certificate for a wildcard name needs DNS-01 (--acme-dns01-server)", h))
				case len(validation.IsDNS1123Subdomain(strings.TrimPrefix(h, "*."))) > 0:
					problem(fmt.Sprintf("%s.hosts[%d]", fld, j), fmt.Sprintf("%q: not a DNS name", h))
				case !slices.Contains(ok, h):
					ok = append(ok, h)
				}
			}
			if len(ok) == 0 {
				problem(fld+".hosts", "no host to order an ACME certificate for")
				continue
			}
			key := types.NamespacedName{Namespace: ing.Namespace, Name: e.SecretName}
			if w := wants[key]; w != nil {
				for _, h := range ok {
					if !slices.Contains(w.hosts, h) {
						w.hosts = append(w.hosts, h)
					}
				}
				continue
			}
			wants[key] = &want{key: key, hosts: ok, ing: ing}
		}
	}
	for _, w := range wants {
		sort.Strings(w.hosts)
	}
	m.mu.Lock()
	m.wants = wants
	m.mu.Unlock()
	m.Trigger()
	return problems
}

// Challenge is the challenge type the manager answers: "dns-01" or "http-01".
func (m *Manager) Challenge() string {
	if m.cfg.DNS01 != nil {
		return "dns-01"
	}
	return "http-01"
}

// Trigger asks for a check now.
func (m *Manager) Trigger() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// Manages reports whether the Manager is to obtain the Secret (so that a
// missing Secret is expected, not an error).
func (m *Manager) Manages(namespace, name string) bool {
	if m == nil {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wants[types.NamespacedName{Namespace: namespace, Name: name}] != nil
}

// Run checks the certificates when the Ingresses change and on the
// interval until ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	if d := m.cfg.DNS01; d != nil {
		m.log.Info("ACME certificates from "+m.cfg.DirectoryURL+" over dns-01", "server", d.Server, "zone", d.Zone, "tsig-key", d.TSIGKey)
	} else {
		m.log.Info("ACME certificates from " + m.cfg.DirectoryURL + " over http-01")
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-m.kick:
		case <-t.C:
		}
		next := m.check(ctx)
		wait := min(max(next.Sub(m.now()), time.Second), m.cfg.CheckInterval)
		t.Reset(wait)
	}
}

// check looks at every certificate, orders those due, and returns when
// it next needs to look.
func (m *Manager) check(ctx context.Context) time.Time {
	m.mu.Lock()
	wants := make([]*want, 0, len(m.wants))
	for _, w := range m.wants {
		wants = append(wants, w)
	}
	m.mu.Unlock()
	sort.Slice(wants, func(i, j int) bool { return wants[i].key.String() < wants[j].key.String() })
	now := m.now()
	next := now.Add(m.cfg.CheckInterval)
	for k := range m.states {
		if !slices.ContainsFunc(wants, func(w *want) bool { return w.key == k }) {
			delete(m.states, k)
			m.expiry.DeleteLabelValues(k.Namespace, k.Name)
		}
	}
	for _, w := range wants {
		if ctx.Err() != nil {
			return next
		}
		due, why := m.due(w, now)
		if due.After(now) {
			next = minTime(next, due)
			continue
		}
		st := m.states[w.key]
		if st != nil && st.retryAt.After(now) {
			next = minTime(next, st.retryAt)
			continue
		}
		if why != "" {
			m.log.Info("ordering certificate", "secret", w.key.String(), "hosts", w.hosts, "reason", why)
		}
		notAfter, renewAt, err := m.obtain(ctx, w)
		if ctx.Err() != nil {
			return next
		}
		if err != nil {
			if st == nil {
				st = &state{}
				m.states[w.key] = st
			}
			st.failures++
			backoff := m.cfg.MinBackoff << min(st.failures-1, 20)
			if backoff > m.cfg.MaxBackoff || backoff <= 0 {
				backoff = m.cfg.MaxBackoff
			}
			st.retryAt = m.now().Add(backoff)
			st.lastErr = err.Error()
			next = minTime(next, st.retryAt)
			m.orders.WithLabelValues("failed").Inc()
			msg := fmt.Sprintf("ACME certificate for Secret %s (%s): %v; retrying in %s", w.key, strings.Join(w.hosts, ", "), err, backoff)
			m.log.Warn(msg, "ingress", w.ing.Namespace+"/"+w.ing.Name, "failures", st.failures)
			m.event(w.ing, corev1.EventTypeWarning, "ACMEFailed", msg)
			continue
		}
		delete(m.states, w.key)
		m.orders.WithLabelValues("issued").Inc()
		m.expiry.WithLabelValues(w.key.Namespace, w.key.Name).Set(float64(notAfter.Unix()))
		msg := fmt.Sprintf("ACME certificate for %s stored in Secret %s, valid until %s", strings.Join(w.hosts, ", "), w.key, notAfter.UTC().Format(time.RFC3339))
		m.log.Info(msg, "ingress", w.ing.Namespace+"/"+w.ing.Name)
		m.event(w.ing, corev1.EventTypeNormal, "ACMECertificateIssued", msg)
		// A certificate due again at once (a lifetime shorter than the
		// clock's skew) is not ordered again before MinBackoff.
		next = minTime(next, maxTime(renewAt, m.now().Add(m.cfg.MinBackoff)))
	}
	return next
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (m *Manager) event(ing *networkingv1.Ingress, typ, reason, msg string) {
	if m.cfg.Recorder != nil {
		m.cfg.Recorder.Eventf(ing, typ, reason, "%s", msg)
	}
}

// RenewAt is when a certificate is renewed: at two thirds of its
// lifetime (as certbot and cert-manager do by default).
func RenewAt(c *x509.Certificate) time.Time {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotBefore.Add(life / 3 * 2)
}

// due says when the certificate of w must be ordered (now or earlier:
// now) and why.
func (m *Manager) due(w *want, now time.Time) (time.Time, string) {
	sec, err := cluster.Get[*corev1.Secret](m.cfg.Store, w.key.Namespace, w.key.Name)
	if err != nil {
		return now, "no Secret yet"
	}
	if _, ours := sec.Annotations[ManagedAnnotation]; !ours {
		// Someone else's Secret: never overwritten. Look again later.
		st := m.states[w.key]
		msg := fmt.Sprintf("Secret %s exists and was not made by the ACME manager (no %s annotation): left as it is", w.key, ManagedAnnotation)
		if st == nil || st.lastErr != msg {
			m.states[w.key] = &state{lastErr: msg}
			m.log.Warn(msg, "ingress", w.ing.Namespace+"/"+w.ing.Name)
			m.event(w.ing, corev1.EventTypeWarning, "ACMESecretNotManaged", msg)
		}
		return now.Add(m.cfg.CheckInterval), ""
	}
	leaf, err := parseLeaf(sec)
	if err != nil {
		return now, err.Error()
	}
	m.expiry.WithLabelValues(w.key.Namespace, w.key.Name).Set(float64(leaf.NotAfter.Unix()))
	for _, h := range w.hosts {
		if leaf.VerifyHostname(h) != nil {
			return now, "the certificate does not cover " + h
		}
	}
	renew := RenewAt(leaf)
	if !now.Before(renew) {
		return now, "two thirds of its lifetime have passed (renew at " + renew.UTC().Format(time.RFC3339) + ")"
	}
	return renew, ""
}

func parseLeaf(sec *corev1.Secret) (*x509.Certificate, error) {
	b, _ := pem.Decode(sec.Data[corev1.TLSCertKey])
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("the Secret has no PEM certificate in " + corev1.TLSCertKey)
	}
	return x509.ParseCertificate(b.Bytes)
}

// obtain orders a certificate for w and stores it.
func (m *Manager) obtain(ctx context.Context, w *want) (notAfter, renewAt time.Time, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.OrderTimeout)
	defer cancel()
	cl, err := m.account(ctx)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	order, err := cl.AuthorizeOrder(ctx, acme.DomainIDs(w.hosts...))
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("new order: %w", err)
	}
	// The order's URL: responses to polls carry no Location header, so
	// x/crypto's orders from WaitOrder have an empty URI.
	orderURL := order.URI
	for _, u := range order.AuthzURLs {
		if err := m.authorize(ctx, cl, u); err != nil {
			return time.Time{}, time.Time{}, err
		}
	}
	if order, err = cl.WaitOrder(ctx, orderURL); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("order: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: w.hosts[0]}, DNSNames: w.hosts,
	}, key)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	chain, _, err := cl.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		// CreateOrderCert polls the order at the Location of the finalize
		// response, which RFC 8555 section 7.4 does not require (pebble
		// sends none): poll the order at the URL newOrder gave and fetch
		// the certificate from there.
		o, werr := cl.WaitOrder(ctx, orderURL)
		if werr != nil || o.Status != acme.StatusValid || o.CertURL == "" {
			return time.Time{}, time.Time{}, fmt.Errorf("finalize: %w", err)
		}
		if chain, err = cl.FetchCert(ctx, o.CertURL, true); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("fetch certificate: %w", err)
		}
	}
	if len(chain) == 0 {
		return time.Time{}, time.Time{}, errors.New("finalize: the directory returned no certificate")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("certificate: %w", err)
	}
	for _, h := range w.hosts {
		if err := leaf.VerifyHostname(h); err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("certificate: %w", err)
		}
	}
	var crt []byte
	for _, der := range chain {
		crt = append(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.key.Namespace, Name: w.key.Name,
			Annotations: map[string]string{ManagedAnnotation: strings.Join(w.hosts, ",")}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: crt, corev1.TLSPrivateKeyKey: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})},
	}
	if cur, err := cluster.Get[*corev1.Secret](m.cfg.Store, w.key.Namespace, w.key.Name); err == nil {
		if _, ours := cur.Annotations[ManagedAnnotation]; !ours {
			return time.Time{}, time.Time{}, fmt.Errorf("Secret %s appeared meanwhile without %s: left as it is", w.key, ManagedAnnotation)
		}
	}
	if _, _, err := m.cfg.Store.Apply(sec); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("store Secret %s: %w", w.key, err)
	}
	return leaf.NotAfter, RenewAt(leaf), nil
}

// authorize answers the challenge of one authorization (dns-01 with
// Config.DNS01, http-01 otherwise) and waits for it to be valid.
func (m *Manager) authorize(ctx context.Context, cl *acme.Client, url string) error {
	z, err := cl.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	if z.Status == acme.StatusValid {
		return nil
	}
	typ := m.Challenge()
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == typ {
			chal = c
		}
	}
	if chal == nil {
		return fmt.Errorf("authorization for %s: the directory offers no %s challenge", z.Identifier.Value, typ)
	}
	if typ == "dns-01" {
		value, err := cl.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			return err
		}
		cleanup, err := m.cfg.DNS01.Present(ctx, z.Identifier.Value, value)
		if err != nil {
			return fmt.Errorf("dns-01 for %s: %w", z.Identifier.Value, err)
		}
		defer func() {
			if err := cleanup(); err != nil {
				m.log.Warn("dns-01 record not removed", "domain", z.Identifier.Value, "err", err)
			}
		}()
	} else {
		resp, err := cl.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		m.tokens.Store(chal.Token, resp)
		defer m.tokens.Delete(chal.Token)
	}
	if _, err := cl.Accept(ctx, chal); err != nil {
		return fmt.Errorf("accept %s challenge for %s: %w", typ, z.Identifier.Value, err)
	}
	if _, err := cl.WaitAuthorization(ctx, z.URI); err != nil {
		return fmt.Errorf("authorization for %s: %w", z.Identifier.Value, err)
	}
	return nil
}

// account returns the registered client, loading or creating the account
// key first.
func (m *Manager) account(ctx context.Context) (*acme.Client, error) {
	if m.client != nil {
		return m.client, nil
	}
	key, err := m.accountKey()
	if err != nil {
		return nil, fmt.Errorf("account key: %w", err)
	}
	cl := &acme.Client{Key: key, DirectoryURL: m.cfg.DirectoryURL, HTTPClient: m.cfg.HTTPClient, UserAgent: "switchboard-ingress"}
	acct := &acme.Account{}
	if m.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + m.cfg.Email}
	}
	if _, err := cl.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil, fmt.Errorf("register account at %s: %w", m.cfg.DirectoryURL, err)
	}
	m.client = cl
	return cl, nil
}

func (m *Manager) accountKey() (crypto.Signer, error) {
	switch {
	case m.cfg.AccountSecret.Name != "":
		s := m.cfg.AccountSecret
		if sec, err := cluster.Get[*corev1.Secret](m.cfg.Store, s.Namespace, s.Name); err == nil {
			return parseKey(sec.Data[AccountKeyData], "Secret "+s.String()+" key "+AccountKeyData)
		} else if !apierrors.IsNotFound(err) {
			return nil, err
		}
		key, pemKey, err := newKey()
		if err != nil {
			return nil, err
		}
		_, err = m.cfg.Store.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name},
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{AccountKeyData: pemKey}})
		if err != nil {
			return nil, fmt.Errorf("Secret %s: %w", s, err)
		}
		return key, nil
	case m.cfg.StateDir != "":
		p := filepath.Join(m.cfg.StateDir, AccountKeyFile)
		if b, err := os.ReadFile(p); err == nil {
			return parseKey(b, p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		key, pemKey, err := newKey()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(m.cfg.StateDir, 0o700); err != nil {
			return nil, err
		}
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, pemKey, 0o600); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		return key, nil
	default:
		m.log.Warn("no state directory or Secret for the ACME account key: a new account is registered on every start")
		key, _, err := newKey()
		return key, err
	}
}

func newKey() (crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseKey(b []byte, where string) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", where)
	}
	var k any
	var err error
	switch blk.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", where, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not a signing key", where, k)
	}
	return s, nil
}
