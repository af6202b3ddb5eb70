package hosts

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hosts")
	writeFile(t, file, "")
	tests := []struct {
		name    string
		input   string
		zones   []string
		wantErr string
		path    string
		origins []string
		fall    []string
		ttl     uint32
		reload  time.Duration
		reverse bool
	}{
		{"Defaults to /etc/hosts if omitted", "hosts", nil, "", defaultPath, []string{"."}, nil, 3600, 5 * time.Second, true},
		{"FILE", "hosts " + file, nil, "", file, []string{"."}, nil, 3600, 5 * time.Second, true},
		{"a missing file is only a warning", "hosts " + filepath.Join(dir, "absent"), nil, "", filepath.Join(dir, "absent"), []string{"."}, nil, 3600, 5 * time.Second, true},
		{"ZONES", "hosts " + file + " miek.nl. pun.gent", nil, "", file, []string{"miek.nl.", "pun.gent."}, nil, 3600, 5 * time.Second, true},
		{"If ZONES is empty, the zones from the configuration block are used", "hosts " + file, []string{"example.org.", "example.net."}, "", file, []string{"example.org.", "example.net."}, nil, 3600, 5 * time.Second, true},
		{"fallthrough without zones is every zone", "hosts {\n fallthrough\n}", nil, "", defaultPath, []string{"."}, []string{"."}, 3600, 5 * time.Second, true},
		{"fallthrough ZONES", "hosts " + file + " {\n fallthrough In-Addr.Arpa ip6.arpa\n}", nil, "", file, []string{"."}, []string{"in-addr.arpa.", "ip6.arpa."}, 3600, 5 * time.Second, true},
		{"ttl", "hosts {\n ttl 60\n}", nil, "", defaultPath, []string{"."}, nil, 60, 5 * time.Second, true},
		{"reload", "hosts {\n reload 1.5h\n}", nil, "", defaultPath, []string{"."}, nil, 3600, 90 * time.Minute, true},
		{"reload 0 disables", "hosts {\n reload 0s\n}", nil, "", defaultPath, []string{"."}, nil, 3600, 0, true},
		{"no_reverse", "hosts {\n no_reverse\n}", nil, "", defaultPath, []string{"."}, nil, 3600, 5 * time.Second, false},
		{"can only be used once per Server Block", "hosts {\n fallthrough\n}\nhosts {\n fallthrough\n}", nil, "Corefile:4 - Error during parsing: this plugin can only be used once per Server Block", "", nil, nil, 0, 0, false},
		{"ttl needs a time in second", "hosts {\n ttl\n}", nil, "Corefile:2 - Error during parsing: ttl needs a time in second", "", nil, nil, 0, 0, false},
		{"ttl needs a number of second", "hosts {\n ttl x\n}", nil, "ttl needs a number of second", "", nil, nil, 0, 0, false},
		{"ttl 0 is invalid", "hosts {\n ttl 0\n}", nil, "ttl provided is invalid", "", nil, nil, 0, 0, false},
		{"ttl above 65535 is invalid", "hosts {\n ttl 65536\n}", nil, "ttl provided is invalid", "", nil, nil, 0, 0, false},
		{"reload needs a duration", "hosts {\n reload\n}", nil, "reload needs a duration (zero seconds to disable)", "", nil, nil, 0, 0, false},
		{"invalid duration for reload", "hosts {\n reload 5x\n}", nil, "invalid duration for reload '5x'", "", nil, nil, 0, 0, false},
		{"negative reload", "hosts {\n reload -5s\n}", nil, "invalid negative duration for reload '-5s'", "", nil, nil, 0, 0, false},
		{"inline lines only before fallthrough", "hosts {\n fallthrough\n 10.0.0.1 example.org\n}", nil, "Corefile:3 - Error during parsing: unknown property '10.0.0.1'", "", nil, nil, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := parse(controller(tc.input, tc.zones, nil))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.path != tc.path || !slices.Equal(h.Origins, tc.origins) || !slices.Equal(h.Fall.Zones, tc.fall) ||
				h.options.ttl != tc.ttl || h.options.reload != tc.reload || h.options.autoReverse != tc.reverse {
				t.Errorf("got path %q origins %v fall %v ttl %d reload %v reverse %v", h.path, h.Origins, h.Fall.Zones, h.options.ttl, h.options.reload, h.options.autoReverse)
			}
		})
	}
}

// TestParseUnreadableFile: a hosts path that exists but cannot be
// accessed is an error ("unable to access hosts file"). A path below a
// regular file fails with ENOTDIR, also for root.
func TestParseUnreadableFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "plain")
	writeFile(t, f, "")
	_, err := parse(controller("hosts "+filepath.Join(f, "below"), nil, nil))
	if err == nil || !strings.Contains(err.Error(), "unable to access hosts file") || !strings.Contains(err.Error(), "Corefile:1") {
		t.Errorf("error %v, want unable to access hosts file at Corefile:1", err)
	}
}

func TestInlineParse(t *testing.T) {
	h, err := parse(controller("hosts highly_unlikely_to_exist_hosts_file example.org {\n 10.0.0.1 example.org\n 10.0.0.2 other.net\n fallthrough\n}", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := h.LookupStaticAddr("10.0.0.1"); !slices.Equal(got, []string{"example.org."}) {
		t.Errorf("inline 10.0.0.1 -> %v", got)
	}
	if got := h.LookupStaticAddr("10.0.0.2"); got != nil {
		t.Errorf("name outside ZONES loaded: %v", got)
	}
	if !slices.Equal(h.Fall.Zones, []string{"."}) {
		t.Errorf("fall %v", h.Fall.Zones)
	}
}
