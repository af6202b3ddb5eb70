// Package acmeflags owns the ACME flags that `switchboard ingress`
// (ingress/ingresscmd) and `switchboard up` (standalone) share, and turns
// them into the ingress controller's acme.Config. It parses and checks
// flags only: the ACME work is ingress/acme's.
package acmeflags

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/switchboard-dev/switchboard/ingress/acme"
)

// Options are the ACME flags of `switchboard ingress` and `switchboard
// up`: certificates for Ingresses annotated switchboard.dev/acme: "true"
// from Directory ("" turns ACME off), the account's contact e-mail, where
// the account key is kept, and extra roots that the directory's HTTPS
// certificate chains to (a test CA such as pebble's).
type Options struct {
	Directory, Email, StateDir, CAFile string
	// DNS-01 through RFC 2136 updates: the zone's primary, the zone ("":
	// found by SOA), the TSIG key's name, algorithm and the file holding
	// its base64 secret.
	DNS01Server, DNS01Zone, TSIGKey, TSIGAlgorithm, TSIGSecretFile string
	DNS01Wait                                                      time.Duration
}

// Add adds --acme-directory, --acme-email, --acme-state-dir and
// --acme-ca-file to f. httpFlag names the flag of the listener that
// answers the HTTP-01 challenges, stateDefault says where the account
// key goes without --acme-state-dir (for the help text).
func Add(f *pflag.FlagSet, o *Options, httpFlag, stateDefault string) {
	f.StringVar(&o.Directory, "acme-directory", "", "ACME directory URL: Ingresses annotated switchboard.dev/acme: \"true\" get their spec.tls certificates from it (HTTP-01 on "+httpFlag+", or DNS-01 with --acme-dns01-server); \"\" turns ACME off")
	f.StringVar(&o.Email, "acme-email", "", "contact e-mail of the ACME account")
	f.StringVar(&o.StateDir, "acme-state-dir", "", "directory keeping the ACME account key (default: "+stateDefault+")")
	f.StringVar(&o.CAFile, "acme-ca-file", "", "PEM roots the ACME directory's HTTPS certificate chains to, besides the system's (e.g. pebble's test CA)")
	f.StringVar(&o.DNS01Server, "acme-dns01-server", "", "answer ACME challenges over DNS-01 (needed for wildcard hosts) by RFC 2136 updates to this primary DNS server, HOST[:PORT]")
	f.StringVar(&o.DNS01Zone, "acme-dns01-zone", "", "the zone the DNS-01 records go in (default: found by asking --acme-dns01-server for the SOA)")
	f.StringVar(&o.TSIGKey, "acme-dns01-tsig-key", "", "name of the TSIG key that signs the DNS-01 updates (none: unsigned)")
	f.StringVar(&o.TSIGAlgorithm, "acme-dns01-tsig-algorithm", "hmac-sha256", "the TSIG key's algorithm: hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224 or hmac-sha1")
	f.StringVar(&o.TSIGSecretFile, "acme-dns01-tsig-secret-file", "", "file holding the TSIG key's secret, base64 (as in BIND's key statement)")
	f.DurationVar(&o.DNS01Wait, "acme-dns01-propagation-wait", 0, "wait this long after the primary answers a DNS-01 record before validation, for the zone's secondaries to follow")
}

// Config is the ingress controller's ACME configuration of the flags
// (ingress.Config.ACME): nil without --acme-directory. stateDir is the
// account key's directory when --acme-state-dir is not given ("": in
// memory, or a Secret). The CA file is read now: an error names the flag.
func (o Options) Config(stateDir string) (*acme.Config, error) {
	if o.Directory == "" {
		for _, f := range []struct{ name, v string }{{"--acme-email", o.Email}, {"--acme-state-dir", o.StateDir}, {"--acme-ca-file", o.CAFile}, {"--acme-dns01-server", o.DNS01Server}} {
			if f.v != "" {
				return nil, fmt.Errorf("%s needs --acme-directory", f.name)
			}
		}
		return nil, nil
	}
	if u, err := neturl.Parse(o.Directory); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("--acme-directory %q: must be an http(s) URL (RFC 8555: the directory is fetched with GET)", o.Directory)
	}
	ac := &acme.Config{DirectoryURL: o.Directory, Email: o.Email, StateDir: o.StateDir}
	if ac.StateDir == "" {
		ac.StateDir = stateDir
	}
	if err := o.dns01(ac); err != nil {
		return nil, err
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--acme-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--acme-ca-file %s: no PEM certificate in it", o.CAFile)
		}
		ac.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	return ac, nil
}

// dns01 sets ac.DNS01 from the --acme-dns01-* flags; errors name the flag.
func (o Options) dns01(ac *acme.Config) error {
	if o.DNS01Server == "" {
		for _, f := range []struct{ name, v string }{{"--acme-dns01-zone", o.DNS01Zone}, {"--acme-dns01-tsig-key", o.TSIGKey}, {"--acme-dns01-tsig-secret-file", o.TSIGSecretFile}} {
			if f.v != "" {
				return fmt.Errorf("%s needs --acme-dns01-server", f.name)
			}
		}
		if o.DNS01Wait != 0 {
			return fmt.Errorf("--acme-dns01-propagation-wait needs --acme-dns01-server")
		}
		return nil
	}
	if (o.TSIGKey == "") != (o.TSIGSecretFile == "") {
		return fmt.Errorf("--acme-dns01-tsig-key and --acme-dns01-tsig-secret-file go together")
	}
	d := &acme.DNS01{Server: o.DNS01Server, Zone: o.DNS01Zone, TSIGKey: o.TSIGKey, TSIGAlgorithm: o.TSIGAlgorithm, PropagationWait: o.DNS01Wait}
	if o.TSIGSecretFile != "" {
		b, err := os.ReadFile(o.TSIGSecretFile)
		if err != nil {
			return fmt.Errorf("--acme-dns01-tsig-secret-file: %w", err)
		}
		d.TSIGSecret = strings.TrimSpace(string(b))
	}
	if err := d.Check(); err != nil {
		var fe *acme.FieldError
		if !errors.As(err, &fe) {
			return err
		}
		flag := map[string]string{"Server": "--acme-dns01-server", "Zone": "--acme-dns01-zone", "TSIGKey": "--acme-dns01-tsig-key",
			"TSIGSecret": "--acme-dns01-tsig-secret-file " + o.TSIGSecretFile, "TSIGAlgorithm": "--acme-dns01-tsig-algorithm", "PropagationWait": "--acme-dns01-propagation-wait"}[fe.Field]
		return fmt.Errorf("%s: %s", flag, fe.Reason)
	}
	ac.DNS01 = d
	return nil
}
