package git

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

func controller(input string) *dnsserver.Controller {
	return &dnsserver.Controller{
		Dispenser: caddyfile.NewDispenser("Corefile", strings.NewReader(input)),
		Directive: pluginName,
		Config:    &dnsserver.Config{Zone: ".", Zones: []string{"."}},
		Env:       &dnsserver.Env{Logger: discardLogger()},
	}
}

func TestParse(t *testing.T) {
	cwd, _ := os.Getwd()
	key := filepath.Join(t.TempDir(), "not-a-key")
	os.WriteFile(key, []byte("junk"), 0o600)
	tests := []struct {
		name     string
		input    string
		wantErr  string
		url      string
		path     string
		branch   string
		interval time.Duration
		minGap   time.Duration
		clone    []string
		depth    int
	}{
		{"git REPO PATH pulls from master every 3600 seconds", "git github.com/user/myproject /srv/zones", "",
			"https://github.com/user/myproject", "/srv/zones", "master", time.Hour, 0, nil, 0},
		{"relative PATH is taken from the working directory", "git https://example.org/zones.git zones", "",
			"https://example.org/zones.git", filepath.Join(cwd, "zones"), "master", time.Hour, 0, nil, 0},
		{"block form", "git {\n repo https://example.org/z.git\n path /srv/z\n branch deploy\n interval 30\n args --depth=1\n pull_args -s recursive -X theirs\n}", "",
			"https://example.org/z.git", "/srv/z", "deploy", 30 * time.Second, 0, []string{"--depth=1"}, 1},
		{"clone_args is args", "git https://example.org/z.git /srv/z {\n clone_args --depth 3 --single-branch\n}", "",
			"https://example.org/z.git", "/srv/z", "master", time.Hour, 0, []string{"--depth", "3", "--single-branch"}, 3},
		{"An interval of -1 disables periodic pull", "git https://example.org/z.git /srv/z {\n interval -1\n}", "",
			"https://example.org/z.git", "/srv/z", "master", -1, 0, nil, 0},
		{"interval below the minimum 5 seconds is throttled to 5", "git https://example.org/z.git /srv/z {\n interval 2\n}", "",
			"https://example.org/z.git", "/srv/z", "master", 2 * time.Second, 0, nil, 0},
		{"a Go duration is accepted and not throttled", "git https://example.org/z.git /srv/z {\n interval 250ms\n}", "",
			"https://example.org/z.git", "/srv/z", "master", 250 * time.Millisecond, 250 * time.Millisecond, nil, 0},
		{"{latest} tag", "git https://example.org/z.git /srv/z {\n branch {latest}\n}", "",
			"https://example.org/z.git", "/srv/z", "{latest}", time.Hour, 0, nil, 0},
		{"local path", "git /srv/repo /srv/z", "", "/srv/repo", "/srv/z", "master", time.Hour, 0, nil, 0},
		{"file URL", "git file:///srv/repo /srv/z", "", "file:///srv/repo", "/srv/z", "master", time.Hour, 0, nil, 0},
		{"no URL", "git {\n path /srv/z\n}", "Corefile:1 - Error during parsing: no URL set", "", "", "", 0, 0, nil, 0},
		{"no path", "git https://example.org/z.git", "Corefile:1 - Error during parsing: no path set", "", "", "", 0, 0, nil, 0},
		{"unsupported scheme", "git ftp://example.org/z /srv/z", `invalid url scheme "ftp"`, "", "", "", 0, 0, nil, 0},
		{"too many arguments", "git a b c", "Corefile:1 - Error during parsing: Wrong argument count", "", "", "", 0, 0, nil, 0},
		{"unknown property", "git https://example.org/z.git /srv/z {\n bogus 1\n}", "Corefile:2 - Error during parsing: Wrong argument count", "", "", "", 0, 0, nil, 0},
		{"bad interval", "git https://example.org/z.git /srv/z {\n interval soon\n}", `Corefile:2 - Error during parsing: invalid interval "soon"`, "", "", "", 0, 0, nil, 0},
		{"bad depth", "git https://example.org/z.git /srv/z {\n args --depth x\n}", `invalid --depth "x"`, "", "", "", 0, 0, nil, 0},
		{"branch needs a value", "git https://example.org/z.git /srv/z {\n branch\n}", "Corefile:2 - Error during parsing: Wrong argument count", "", "", "", 0, 0, nil, 0},
		{"unreadable ssh key", "git git@example.org:z.git /srv/z {\n key " + key + "\n}", "reading ssh key", "", "", "", 0, 0, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repos, err := parse(controller(tc.input))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(repos) != 1 {
				t.Fatalf("%d repos", len(repos))
			}
			r := repos[0]
			if r.URL != tc.url || r.Path != tc.path || r.Branch != tc.branch || r.Interval != tc.interval || r.minGap != tc.minGap ||
				!slices.Equal(r.CloneArgs, tc.clone) || r.depth != tc.depth {
				t.Errorf("got url %q path %q branch %q interval %v minGap %v clone %v depth %d", r.URL, r.Path, r.Branch, r.Interval, r.minGap, r.CloneArgs, r.depth)
			}
		})
	}
}

// TestSetup: setup clones at once (so that file finds the zones), only
// for the first key of a block, and reports a failed clone with the
// Corefile position.
func TestSetup(t *testing.T) {
	src := newSource(t)
	src.commit("one", map[string]string{"f": "1"})
	dst := filepath.Join(t.TempDir(), "co")

	c := controller("git " + src.dir + " " + dst)
	c.Index = 1
	if err := setup(c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("second key of a block cloned too: %v", err)
	}

	bad := controller("git " + filepath.Join(t.TempDir(), "nothing-here") + " " + dst)
	err := setup(bad)
	if err == nil || !strings.HasPrefix(err.Error(), "plugin/git: Corefile:1 - ") {
		t.Errorf("clone of a missing repository: %v", err)
	}
}

func TestEndpointURL(t *testing.T) {
	tests := []struct {
		in      string
		private bool
		want    string
		err     bool
	}{
		{"github.com/user/repo", false, "https://github.com/user/repo", false},
		{"github.com/user/repo", true, "ssh://github.com/user/repo", false},
		{"git@github.com:user/repo.git", true, "git@github.com:user/repo.git", false},
		{"https://github.com/user/repo", false, "https://github.com/user/repo", false},
		{"http://example.org:8080/repo", false, "http://example.org:8080/repo", false},
		{"ssh://git@example.org/repo", true, "ssh://git@example.org/repo", false},
		{"example.org:8080/repo", false, "https://example.org:8080/repo", false},
		{"gopher://example.org/repo", false, "", true},
	}
	for _, tc := range tests {
		got, err := endpointURL(tc.in, tc.private)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("endpointURL(%q, %v) = %q, %v; want %q (error %v)", tc.in, tc.private, got, err, tc.want, tc.err)
		}
	}
	if got := redact("https://user:secret@example.org/r"); strings.Contains(got, "secret") {
		t.Errorf("redact kept the password: %s", got)
	}
}
