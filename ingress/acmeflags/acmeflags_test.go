package acmeflags

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchboard-dev/switchboard/ingress/acme"
)

// TestConfig: the flags, parsed as a command line, become the controller's
// acme.Config (or a clear error naming the flag).
func TestConfig(t *testing.T) {
	// A directory served over HTTPS by a test certificate: --acme-ca-file
	// with that certificate must make the client trust it.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") }))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(dir, "tsig.secret")
	if err := os.WriteFile(secretFile, []byte("c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		stateDir string // Config's default
		wantNil  bool
		wantErr  string
		wantDir  string
		wantMail string
		wantKey  string // StateDir
		trustsCA bool
		wantDNS  *acme.DNS01 // nil: no DNS-01
	}{
		{name: "no flags: ACME off", wantNil: true},
		{name: "e-mail without directory", args: []string{"--acme-email", "ops@example.test"}, wantErr: "--acme-email needs --acme-directory"},
		{name: "CA file without directory", args: []string{"--acme-ca-file", caFile}, wantErr: "--acme-ca-file needs --acme-directory"},
		{name: "directory not a URL", args: []string{"--acme-directory", "pebble:14000"}, wantErr: `--acme-directory "pebble:14000": must be an http(s) URL`},
		{name: "directory, e-mail, state directory", args: []string{"--acme-directory", "https://acme.example.test/dir", "--acme-email", "ops@example.test", "--acme-state-dir", "/var/lib/acme"},
			stateDir: "/default", wantDir: "https://acme.example.test/dir", wantMail: "ops@example.test", wantKey: "/var/lib/acme"},
		{name: "the caller's state directory by default", args: []string{"--acme-directory", "https://acme.example.test/dir"}, stateDir: "/state/ingress-acme",
			wantDir: "https://acme.example.test/dir", wantKey: "/state/ingress-acme"},
		{name: "CA file trusted", args: []string{"--acme-directory", srv.URL + "/dir", "--acme-ca-file", caFile}, wantDir: srv.URL + "/dir", trustsCA: true},
		{name: "CA file missing", args: []string{"--acme-directory", srv.URL, "--acme-ca-file", filepath.Join(dir, "missing.pem")}, wantErr: "--acme-ca-file: open"},
		{name: "CA file without PEM", args: []string{"--acme-directory", srv.URL, "--acme-ca-file", junk}, wantErr: "no PEM certificate"},
		{name: "DNS-01 server without directory", args: []string{"--acme-dns01-server", "ns.example.test"}, wantErr: "--acme-dns01-server needs --acme-directory"},
		{name: "DNS-01 key without server", args: []string{"--acme-directory", srv.URL, "--acme-dns01-tsig-key", "k"}, wantErr: "--acme-dns01-tsig-key needs --acme-dns01-server"},
		{name: "DNS-01 key without secret", args: []string{"--acme-directory", srv.URL, "--acme-dns01-server", "ns.example.test", "--acme-dns01-tsig-key", "k"}, wantErr: "go together"},
		{name: "DNS-01 secret file missing", args: []string{"--acme-directory", srv.URL, "--acme-dns01-server", "ns.example.test", "--acme-dns01-tsig-key", "k", "--acme-dns01-tsig-secret-file", filepath.Join(dir, "missing")}, wantErr: "--acme-dns01-tsig-secret-file: open"},
		{name: "DNS-01 secret not base64", args: []string{"--acme-directory", srv.URL, "--acme-dns01-server", "ns.example.test", "--acme-dns01-tsig-key", "k", "--acme-dns01-tsig-secret-file", junk}, wantErr: "--acme-dns01-tsig-secret-file " + junk + ": not base64"},
		{name: "DNS-01 bad algorithm", args: []string{"--acme-directory", srv.URL, "--acme-dns01-server", "ns.example.test", "--acme-dns01-tsig-key", "k", "--acme-dns01-tsig-secret-file", secretFile, "--acme-dns01-tsig-algorithm", "md5"}, wantErr: `--acme-dns01-tsig-algorithm: "md5": want one of`},
		{name: "DNS-01 wait without server", args: []string{"--acme-directory", srv.URL, "--acme-dns01-propagation-wait", "30s"}, wantErr: "--acme-dns01-propagation-wait needs --acme-dns01-server"},
		{name: "DNS-01 negative wait", args: []string{"--acme-directory", srv.URL, "--acme-dns01-server", "ns.example.test", "--acme-dns01-propagation-wait", "-1s"}, wantErr: "--acme-dns01-propagation-wait: negative"},
		{name: "DNS-01", args: []string{"--acme-directory", srv.URL, "--acme-dns01-server", "127.0.0.1:5353", "--acme-dns01-zone", "example.test", "--acme-dns01-tsig-key", "acme", "--acme-dns01-tsig-secret-file", secretFile, "--acme-dns01-propagation-wait", "20s"},
			wantDir: srv.URL, wantDNS: &acme.DNS01{Server: "127.0.0.1:5353", Zone: "example.test.", TSIGKey: "acme.", TSIGSecret: "c2VjcmV0", TSIGAlgorithm: "hmac-sha256.", TTL: 60, Timeout: 10 * time.Second, PropagationWait: 20 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := pflag.NewFlagSet("test", pflag.ContinueOnError)
			var o Options
			Add(f, &o, "--http-addr", "memory")
			if err := f.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			ac, err := o.Config(c.stateDir)
			switch {
			case c.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case c.wantNil:
				if ac != nil {
					t.Fatalf("config %+v, want none", ac)
				}
				return
			case ac == nil:
				t.Fatal("no config")
			}
			if ac.DirectoryURL != c.wantDir || ac.Email != c.wantMail || ac.StateDir != c.wantKey {
				t.Errorf("config %q %q %q, want %q %q %q", ac.DirectoryURL, ac.Email, ac.StateDir, c.wantDir, c.wantMail, c.wantKey)
			}
			if c.wantDNS == nil && ac.DNS01 != nil || c.wantDNS != nil && (ac.DNS01 == nil || *ac.DNS01 != *c.wantDNS) {
				t.Errorf("DNS01 %+v, want %+v", ac.DNS01, c.wantDNS)
			}
			if c.trustsCA {
				if ac.HTTPClient == nil {
					t.Fatal("no HTTP client for the CA file")
				}
				resp, err := ac.HTTPClient.Get(srv.URL + "/dir")
				if err != nil {
					t.Fatalf("directory with the CA file's root: %v", err)
				}
				resp.Body.Close()
				// Without the file the test certificate is not trusted.
				if resp, err := (&http.Client{}).Get(srv.URL + "/dir"); err == nil {
					resp.Body.Close()
					t.Error("the test certificate was trusted without the CA file")
				}
			} else if ac.HTTPClient != nil {
				t.Errorf("HTTP client without a CA file")
			}
		})
	}
}
