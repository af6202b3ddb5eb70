package standalone

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/cluster"
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
