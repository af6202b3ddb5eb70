// Package acmeflags owns the ACME flags that `switchboard ingress`
// (ingress/ingresscmd) and `switchboard up` (standalone) share, and turns
// them into the ingress controller's acme.Config. It parses and checks
// flags only: the ACME work is ingress/acme's.
package acmeflags

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	neturl "net/url"
	"os"
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
}

// Add adds --acme-directory, --acme-email, --acme-state-dir and
// --acme-ca-file to f. httpFlag names the flag of the listener that
// answers the HTTP-01 challenges, stateDefault says where the account
// key goes without --acme-state-dir (for the help text).
func Add(f *pflag.FlagSet, o *Options, httpFlag, stateDefault string) {
	f.StringVar(&o.Directory, "acme-directory", "", "ACME directory URL: Ingresses annotated switchboard.dev/acme: \"true\" get their spec.tls certificates from it (HTTP-01 on "+httpFlag+"); \"\" turns ACME off")
	f.StringVar(&o.Email, "acme-email", "", "contact e-mail of the ACME account")
	f.StringVar(&o.StateDir, "acme-state-dir", "", "directory keeping the ACME account key (default: "+stateDefault+")")
	f.StringVar(&o.CAFile, "acme-ca-file", "", "PEM roots the ACME directory's HTTPS certificate chains to, besides the system's (e.g. pebble's test CA)")
}

// Config is the ingress controller's ACME configuration of the flags
// (ingress.Config.ACME): nil without --acme-directory. stateDir is the
// account key's directory when --acme-state-dir is not given ("": in
// memory, or a Secret). The CA file is read now: an error names the flag.
func (o Options) Config(stateDir string) (*acme.Config, error) {
	if o.Directory == "" {
		for _, f := range []struct{ name, v string }{{"--acme-email", o.Email}, {"--acme-state-dir", o.StateDir}, {"--acme-ca-file", o.CAFile}} {
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
