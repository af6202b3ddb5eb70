package file

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy/caddyfile"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
)

func controller(input string, zones []string) *dnsserver.Controller {
	if len(zones) == 0 {
		zones = []string{"."}
	}
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(input)),
		Directive: pluginName,
		Config:    &dnsserver.Config{Zone: zones[0], Zones: zones, Port: "53", Transport: "dns"},
		Env:       &dnsserver.Env{Logger: discardLogger()},
	}
}

func TestParseDirective(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "db.example.org")
	if err := os.WriteFile(db, []byte(dbExampleOrg), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "db.bad")
	if err := os.WriteFile(bad, []byte("$ORIGIN example.org.\nwww IN A 192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "db.missing")

	tests := []struct {
		name    string
		input   string
		zones   []string
		wantErr string
		names   []string
		reload  time.Duration
		fall    []string
	}{
		{"DBFILE with the zones from the configuration block", "file " + db, []string{"example.org."}, "", []string{"example.org."}, time.Minute, nil},
		{"ZONES", "file " + db + " Example.ORG", nil, "", []string{"example.org."}, time.Minute, nil},
		{"reload", "file " + db + " example.org {\n reload 30s\n}", nil, "", []string{"example.org."}, 30 * time.Second, nil},
		{"reload 0 means to not scan for changes", "file " + db + " example.org {\n reload 0\n}", nil, "", []string{"example.org."}, 0, nil},
		{"fallthrough", "file " + db + " example.org {\n fallthrough\n}", nil, "", []string{"example.org."}, time.Minute, []string{"."}},
		{"fallthrough ZONES", "file " + db + " example.org {\n fallthrough sub.example.org\n}", nil, "", []string{"example.org."}, time.Minute, []string{"sub.example.org."}},
		{"upstream is accepted and ignored", "file " + db + " example.org {\n upstream 10.0.0.1\n}", nil, "", []string{"example.org."}, time.Minute, nil},
		{"a missing file is tried again when reload is set", "file " + missing + " example.org", nil, "", []string{"example.org."}, time.Minute, nil},
		{"several directives", "file " + db + " example.org\nfile " + db + " example.com", nil, "", []string{"example.org.", "example.com."}, time.Minute, nil},
		{"no DBFILE", "file", nil, "Corefile:1 - Error during parsing: Wrong argument count", nil, 0, nil},
		{"a missing file without reload is fatal", "file " + missing + " example.org {\n reload 0\n}", nil, "no such file or directory", nil, 0, nil},
		{"a zone file without SOA", "file " + bad + " example.org", nil, "has no SOA record", nil, 0, nil},
		{"unknown property", "file " + db + " example.org {\n bogus\n}", nil, "Corefile:2 - Error during parsing: unknown property 'bogus'", nil, 0, nil},
		{"reload needs a value", "file " + db + " example.org {\n reload\n}", nil, "Corefile:2 - Error during parsing: reload duration value is expected", nil, 0, nil},
		{"reload must be a duration", "file " + db + " example.org {\n reload soon\n}", nil, `invalid reload duration "soon"`, nil, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parse(controller(tc.input, tc.zones))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.Names, tc.names) || !slices.Equal(f.Fall.Zones, tc.fall) {
				t.Errorf("names %v fall %v, want %v %v", f.Names, f.Fall.Zones, tc.names, tc.fall)
			}
			for _, n := range f.Names {
				if f.Z[n].ReloadInterval != tc.reload {
					t.Errorf("zone %s reload %v, want %v", n, f.Z[n].ReloadInterval, tc.reload)
				}
			}
		})
	}
}

func TestSetupErrorNamesPlugin(t *testing.T) {
	err := setup(controller("file", nil))
	if err == nil || !strings.HasPrefix(err.Error(), "plugin/file: Corefile:1") {
		t.Errorf("error %v, want plugin/file: Corefile:1 ...", err)
	}
}
