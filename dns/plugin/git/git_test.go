package git

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/miekg/dns"

	"github.com/switchboard-dev/switchboard/dns/dnsserver"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/bind"
	_ "github.com/switchboard-dev/switchboard/dns/plugin/file"
)

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// source is a repository the test creates and commits to, standing for
// the remote a user pushes to.
type source struct {
	t    *testing.T
	dir  string
	repo *gogit.Repository
	when time.Time
}

func newSource(t *testing.T) *source {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	repo, err := gogit.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	return &source{t: t, dir: dir, repo: repo, when: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// commit writes files (path -> content; "" removes) and commits them.
func (s *source) commit(msg string, files map[string]string) plumbing.Hash {
	s.t.Helper()
	wt, err := s.repo.Worktree()
	if err != nil {
		s.t.Fatal(err)
	}
	for p, content := range files {
		full := filepath.Join(s.dir, p)
		if content == "" {
			if _, err := wt.Remove(p); err != nil {
				s.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			s.t.Fatal(err)
		}
		if _, err := wt.Add(p); err != nil {
			s.t.Fatal(err)
		}
	}
	s.when = s.when.Add(time.Minute)
	h, err := wt.Commit(msg, &gogit.CommitOptions{Author: &object.Signature{Name: "test", Email: "test@example.org", When: s.when}})
	if err != nil {
		s.t.Fatal(err)
	}
	return h
}

func (s *source) tag(name string, h plumbing.Hash) {
	s.t.Helper()
	if _, err := s.repo.CreateTag(name, h, nil); err != nil {
		s.t.Fatal(err)
	}
}

func zoneText(serial int, a string) string {
	return "$ORIGIN example.org.\n$TTL 300\n@ IN SOA ns1.example.org. hostmaster.example.org. " + strconv.Itoa(serial) + " 7200 3600 1209600 300\n  IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A " + a + "\n"
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newRepo(url, path string) *Repo {
	return &Repo{URL: url, Path: path, Branch: "master", Interval: time.Hour, singleBranch: true, logger: discardLogger(), minGap: time.Nanosecond}
}

// TestPull: "When the service starts, it clones the repository. While
// the server is still up, it pulls the latest every so often."
func TestPull(t *testing.T) {
	src := newSource(t)
	src.commit("one", map[string]string{"db.example.org": zoneText(1, "192.0.2.1"), "old": "x"})
	dst := filepath.Join(t.TempDir(), "checkout")
	r := newRepo(src.dir, dst)
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst, "db.example.org")); got != zoneText(1, "192.0.2.1") {
		t.Fatalf("clone has %q", got)
	}
	first := r.lastCommit

	h := src.commit("two", map[string]string{"db.example.org": zoneText(2, "192.0.2.2"), "old": "", "sub/new": "y"})
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	if r.lastCommit != h.String() || r.lastCommit == first {
		t.Errorf("checked out %s, want %s", r.lastCommit, h)
	}
	if got := readFile(t, filepath.Join(dst, "db.example.org")); got != zoneText(2, "192.0.2.2") {
		t.Errorf("pulled file has %q", got)
	}
	if _, err := os.Stat(filepath.Join(dst, "old")); !os.IsNotExist(err) {
		t.Errorf("a file removed upstream is still there: %v", err)
	}
	if got := readFile(t, filepath.Join(dst, "sub/new")); got != "y" {
		t.Errorf("new file has %q", got)
	}
	// A local change in the deployment directory is overwritten: the
	// checkout follows the branch.
	if err := os.WriteFile(filepath.Join(dst, "db.example.org"), []byte("local edit"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst, "db.example.org")); got != zoneText(2, "192.0.2.2") {
		t.Errorf("local edit survived a pull: %q", got)
	}

	// "If a pull fails, the service will retry up to three times": a
	// repository that went away fails, and the checkout stays.
	if err := os.RemoveAll(src.dir); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(); err == nil {
		t.Error("pull from a removed repository succeeded")
	}
	if got := readFile(t, filepath.Join(dst, "db.example.org")); got != zoneText(2, "192.0.2.2") {
		t.Errorf("failed pull changed the checkout: %q", got)
	}
}

func TestPullBranch(t *testing.T) {
	src := newSource(t)
	src.commit("master", map[string]string{"f": "master"})
	wt, _ := src.repo.Worktree()
	if err := wt.Checkout(&gogit.CheckoutOptions{Branch: plumbing.NewBranchReferenceName("deploy"), Create: true}); err != nil {
		t.Fatal(err)
	}
	src.commit("deploy", map[string]string{"f": "deploy"})
	dst := filepath.Join(t.TempDir(), "co")
	r := newRepo("file://"+src.dir, dst)
	r.Branch = "deploy"
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst, "f")); got != "deploy" {
		t.Errorf("branch deploy: %q", got)
	}
	r2 := newRepo(src.dir, filepath.Join(t.TempDir(), "co"))
	r2.Branch = "nope"
	if err := r2.Pull(); err == nil {
		t.Error("clone of a missing branch succeeded")
	}
}

// TestLatestTag: "{latest} is a placeholder for latest tag which ensures
// the most recent tag is always pulled."
func TestLatestTag(t *testing.T) {
	src := newSource(t)
	h1 := src.commit("one", map[string]string{"f": "v1"})
	src.tag("v1.0.0", h1)
	src.commit("untagged", map[string]string{"f": "wip"})
	dst := filepath.Join(t.TempDir(), "co")
	r := newRepo(src.dir, dst)
	r.Branch = latestTag
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst, "f")); got != "v1" || r.latestTag != "v1.0.0" {
		t.Fatalf("latest tag checkout: %q tag %q", got, r.latestTag)
	}
	h3 := src.commit("two", map[string]string{"f": "v2"})
	src.tag("v2.0.0", h3)
	src.commit("more wip", map[string]string{"f": "wip2"})
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst, "f")); got != "v2" || r.latestTag != "v2.0.0" {
		t.Errorf("after a new tag: %q tag %q", got, r.latestTag)
	}
}

func TestPrepare(t *testing.T) {
	src := newSource(t)
	src.commit("one", map[string]string{"f": "1"})
	other := newSource(t)
	other.commit("one", map[string]string{"g": "1"})

	dst := filepath.Join(t.TempDir(), "co")
	r := newRepo(src.dir, dst)
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	// The same repository already checked out there is reused (a restart).
	again := newRepo(src.dir, dst)
	if err := again.Prepare(); err != nil || !again.pulled {
		t.Errorf("reuse of an existing clone: %v pulled=%v", err, again.pulled)
	}
	// Another repository there is an error.
	if err := newRepo(other.dir, dst).Prepare(); err == nil || !strings.Contains(err.Error(), "another git repo") {
		t.Errorf("other repo in the directory: %v", err)
	}
	// So is a directory with other files.
	busy := t.TempDir()
	os.WriteFile(filepath.Join(busy, "x"), []byte("x"), 0o644)
	if err := newRepo(src.dir, busy).Prepare(); err == nil || !strings.Contains(err.Error(), "directory not empty") {
		t.Errorf("non-empty directory: %v", err)
	}
}

// TestService: the periodic pull picks up a new commit, and stops.
func TestService(t *testing.T) {
	src := newSource(t)
	src.commit("one", map[string]string{"f": "1"})
	dst := filepath.Join(t.TempDir(), "co")
	r := newRepo(src.dir, dst)
	r.Interval = 10 * time.Millisecond
	if err := r.Prepare(); err != nil {
		t.Fatal(err)
	}
	if err := r.Pull(); err != nil {
		t.Fatal(err)
	}
	s := r.start()
	t.Cleanup(s.halt)
	src.commit("two", map[string]string{"f": "2"})
	deadline := time.Now().Add(10 * time.Second)
	for readFile(t, filepath.Join(dst, "f")) != "2" {
		if time.Now().After(deadline) {
			t.Fatal("new commit not pulled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.halt()
	s.halt()
	// "An interval of -1 disables periodic pull."
	r.Interval = -1
	r.start().halt()
}

// TestCorefile is the deployment the plugin exists for: a zone file
// committed to a repository is served by file from the checkout, and a
// new commit changing a record (and the SOA serial) is answered after the
// next pull and zone reload.
func TestCorefile(t *testing.T) {
	src := newSource(t)
	src.commit("zone", map[string]string{"zones/db.example.org": zoneText(2024010101, "192.0.2.1")})
	checkout := filepath.Join(t.TempDir(), "deploy")
	corefile := `example.org {
		bind 127.0.0.1
		git ` + src.dir + ` ` + checkout + ` {
			branch master
			interval 20ms
		}
		file ` + filepath.Join(checkout, "zones", "db.example.org") + ` {
			reload 20ms
		}
	}`
	inst, err := dnsserver.NewInstance("Corefile", []byte(corefile), dnsserver.Options{Port: "0", Env: &dnsserver.Env{Logger: discardLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop() })
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	addr := inst.Servers()[0].UDPAddr().String()
	get := func() string {
		t.Helper()
		m, err := dns.Exchange(new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA), addr)
		if err != nil {
			t.Fatal(err)
		}
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
			return dns.RcodeToString[m.Rcode]
		}
		return m.Answer[0].(*dns.A).A.String()
	}
	// The clone happens at setup, before file reads the zone: answered
	// from the start.
	if got := get(); got != "192.0.2.1" {
		t.Fatalf("first answer %s, want 192.0.2.1", got)
	}
	src.commit("change www", map[string]string{"zones/db.example.org": zoneText(2024010102, "192.0.2.2")})
	deadline := time.Now().Add(15 * time.Second)
	for get() != "192.0.2.2" {
		if time.Now().After(deadline) {
			t.Fatalf("new commit not answered: %s", get())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
