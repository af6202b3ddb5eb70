package git

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

const (
	// numRetries is how often a failed pull is tried: "If a pull fails,
	// the service will retry up to three times."
	numRetries = 3
	// latestTag is the branch placeholder for the most recent tag.
	latestTag = "{latest}"
	// minPullGap: "the number of seconds between pulls; ... minimum 5"
	// (upstream skips a pull less than 5 seconds after the last one).
	minPullGap = 5 * time.Second
	// opTimeout bounds one clone or fetch.
	opTimeout = 5 * time.Minute
)

// Repo is one repository kept checked out in a directory.
type Repo struct {
	URL       string        // as written in the Corefile (normalized)
	Path      string        // directory the checkout lives in
	Branch    string        // branch or tag; "{latest}" for the newest tag
	KeyPath   string        // ssh private key, "" for none
	Interval  time.Duration // between pulls; <= 0: no periodic pull
	CloneArgs []string      // git clone arguments (see cloneOptions)
	PullArgs  []string      // git pull arguments (see README)

	depth        int  // from --depth in CloneArgs / PullArgs
	singleBranch bool // --single-branch (default) / --no-single-branch
	recurse      bool // --recurse-submodules

	logger *slog.Logger

	mu         sync.Mutex
	pulled     bool      // the directory holds our checkout
	lastPull   time.Time // of the last successful pull
	lastCommit string    // hash checked out
	latestTag  string    // tag checked out in {latest} mode
	minGap     time.Duration
}

// dirLocks serializes work on one directory across instances (a reload
// builds a new Repo for the directory while the old one may still pull).
var dirLocks sync.Map // path -> *sync.Mutex

func dirLock(path string) *sync.Mutex {
	m, _ := dirLocks.LoadOrStore(path, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// endpointURL turns the Corefile's REPO into what go-git fetches from,
// as the upstream plugin's parseURL: https://, http:// and ssh:// URLs
// as they are, other schemes refused, and a bare "host/path" taken as
// https:// (ssh:// when a key is given). Extensions: file:// URLs and
// absolute local paths (a repository on this machine), and scp-like
// "user@host:path" with a key.
func endpointURL(raw string, private bool) (string, error) {
	switch {
	case strings.HasPrefix(raw, "https://"), strings.HasPrefix(raw, "http://"), strings.HasPrefix(raw, "ssh://"), strings.HasPrefix(raw, "file://"):
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("invalid repository URL %q: %v", raw, err)
		}
		if u.Scheme == "file" && u.Path == "" {
			return "", fmt.Errorf("invalid repository URL %q: no path", raw)
		}
		return raw, nil
	case filepath.IsAbs(raw):
		return raw, nil
	case strings.Contains(raw, "://"):
		scheme, _, _ := strings.Cut(raw, "://")
		return "", fmt.Errorf("invalid url scheme %q. If url contains port, scheme is required", scheme)
	case private && strings.Contains(raw, "@") && strings.Contains(raw, ":"):
		return raw, nil // scp-like: git@github.com:user/repo
	case private:
		raw = "ssh://" + raw
	default:
		raw = "https://" + raw
	}
	if _, err := url.Parse(raw); err != nil {
		return "", fmt.Errorf("invalid repository URL %q: %v", raw, err)
	}
	return raw, nil
}

// parseArgs reads the git command line arguments go-git can honour
// (--depth N, --depth=N, --single-branch, --no-single-branch,
// --recurse-submodules, --recursive, -q, --quiet) and logs the others
// as ignored: there is no git binary to pass them to.
func (r *Repo) parseArgs(args []string, what string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--depth" && i+1 < len(args):
			n, err := strconv.Atoi(args[i+1])
			if err != nil || n < 0 {
				return fmt.Errorf("%s: invalid --depth %q", what, args[i+1])
			}
			r.depth = n
			i++
		case strings.HasPrefix(a, "--depth="):
			n, err := strconv.Atoi(strings.TrimPrefix(a, "--depth="))
			if err != nil || n < 0 {
				return fmt.Errorf("%s: invalid %q", what, a)
			}
			r.depth = n
		case a == "--single-branch":
			r.singleBranch = true
		case a == "--no-single-branch":
			r.singleBranch = false
		case a == "--recurse-submodules" || a == "--recursive":
			r.recurse = true
		case a == "-q" || a == "--quiet":
		default:
			r.logger.Warn("git: argument ignored (no git binary; go-git does the work)", "args", what, "arg", a)
		}
	}
	return nil
}

func (r *Repo) auth() (transport.AuthMethod, error) {
	if r.KeyPath == "" {
		return nil, nil
	}
	user := "git"
	if u, err := url.Parse(r.URL); err == nil && u.User != nil && u.User.Username() != "" {
		user = u.User.Username()
	} else if at := strings.IndexByte(r.URL, '@'); at > 0 && !strings.Contains(r.URL[:at], "/") {
		user = r.URL[:at]
	}
	keys, err := gitssh.NewPublicKeysFromFile(user, r.KeyPath, "")
	if err != nil {
		return nil, fmt.Errorf("reading ssh key %s: %w", r.KeyPath, err)
	}
	return keys, nil
}

// Prepare checks the directory before the first pull, as upstream: a
// missing or empty directory is created; one holding a clone of the same
// repository is reused; anything else is an error.
func (r *Repo) Prepare() error {
	entries, err := os.ReadDir(r.Path)
	if err != nil || len(entries) == 0 {
		if err := os.MkdirAll(r.Path, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", r.Path, err)
		}
		return nil
	}
	isGit := false
	for _, e := range entries {
		if e.IsDir() && e.Name() == ".git" {
			isGit = true
			break
		}
	}
	if !isGit {
		return fmt.Errorf("cannot git clone into %v, directory not empty", r.Path)
	}
	repo, err := gogit.PlainOpen(r.Path)
	if err != nil {
		return fmt.Errorf("cannot retrieve repo url for %v Error: %v", r.Path, err)
	}
	remote, err := repo.Remote("origin")
	if err != nil || len(remote.Config().URLs) == 0 {
		return fmt.Errorf("cannot retrieve repo url for %v Error: %v", r.Path, err)
	}
	origin := remote.Config().URLs[0]
	if strings.TrimSuffix(origin, ".git") != strings.TrimSuffix(r.URL, ".git") {
		return fmt.Errorf("another git repo '%v' exists at %v", origin, r.Path)
	}
	r.pulled = true
	return nil
}

// Pull clones the repository or brings the checkout to the branch's
// latest commit (or the newest tag), trying up to three times. A pull
// sooner than the minimum gap after the last one does nothing.
func (r *Repo) Pull() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	gap := r.minGap
	if gap == 0 {
		gap = minPullGap
	}
	if !r.lastPull.IsZero() && time.Since(r.lastPull) < gap {
		return nil
	}
	lock := dirLock(r.Path)
	lock.Lock()
	defer lock.Unlock()

	last := r.lastCommit
	var err error
	for i := 0; i < numRetries; i++ {
		if err = r.pull(); err == nil {
			break
		}
		r.logger.Warn("git: pull failed", "repo", redact(r.URL), "path", r.Path, "try", i+1, "error", err)
	}
	if err != nil {
		return err
	}
	if r.lastCommit == last {
		r.logger.Debug("git: no new changes", "repo", redact(r.URL), "commit", r.lastCommit)
	} else {
		r.logger.Info("git: pulled", "repo", redact(r.URL), "path", r.Path, "commit", r.lastCommit)
	}
	return nil
}

func (r *Repo) pull() error {
	if !r.pulled {
		return r.clone()
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	repo, err := gogit.PlainOpen(r.Path)
	if err != nil {
		return err
	}
	auth, err := r.auth()
	if err != nil {
		return err
	}
	if r.Branch == latestTag {
		return r.checkoutLatestTag(ctx, repo, auth)
	}
	remoteRef := plumbing.NewRemoteReferenceName("origin", r.Branch)
	err = repo.FetchContext(ctx, &gogit.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []config.RefSpec{config.RefSpec("+" + plumbing.NewBranchReferenceName(r.Branch).String() + ":" + remoteRef.String())},
		Depth:      r.depth,
		Auth:       auth,
		Force:      true,
	})
	if err != nil && !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetching %s of %s: %w", r.Branch, redact(r.URL), err)
	}
	ref, err := repo.Reference(remoteRef, true)
	if err != nil {
		return fmt.Errorf("branch %s of %s: %w", r.Branch, redact(r.URL), err)
	}
	if err := r.resetTo(repo, ref.Hash()); err != nil {
		return err
	}
	r.pulled = true
	r.lastPull = time.Now()
	r.lastCommit = ref.Hash().String()
	return nil
}

// resetTo makes the checkout the commit's tree (git reset --hard): the
// directory is a deployment of the branch, so the remote wins.
func (r *Repo) resetTo(repo *gogit.Repository, h plumbing.Hash) error {
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if head, err := repo.Head(); err == nil && head.Hash() == h {
		if st, err := wt.Status(); err == nil && st.IsClean() {
			return nil
		}
	}
	if err := wt.Reset(&gogit.ResetOptions{Commit: h, Mode: gogit.HardReset}); err != nil {
		return fmt.Errorf("checking out %s: %w", h, err)
	}
	return nil
}

func (r *Repo) clone() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	auth, err := r.auth()
	if err != nil {
		return err
	}
	opts := &gogit.CloneOptions{
		URL:          r.URL,
		Auth:         auth,
		Depth:        r.depth,
		SingleBranch: r.singleBranch,
	}
	if r.recurse {
		opts.RecurseSubmodules = gogit.DefaultSubmoduleRecursionDepth
	}
	tagMode := r.Branch == latestTag
	if !tagMode {
		opts.ReferenceName = plumbing.NewBranchReferenceName(r.Branch)
	} else {
		opts.SingleBranch = false
		opts.Tags = gogit.AllTags
	}
	repo, err := gogit.PlainCloneContext(ctx, r.Path, false, opts)
	if err != nil {
		// Leave the directory empty for the next try.
		cleanDir(r.Path)
		return fmt.Errorf("cloning %s into %s: %w", redact(r.URL), r.Path, err)
	}
	r.pulled = true
	r.lastPull = time.Now()
	head, err := repo.Head()
	if err != nil {
		return err
	}
	r.lastCommit = head.Hash().String()
	if tagMode {
		return r.checkoutLatestTag(ctx, repo, auth)
	}
	return nil
}

// checkoutLatestTag fetches the tags and checks out the most recent one
// reachable from the remote's HEAD (git describe origin --abbrev=0 --tags).
func (r *Repo) checkoutLatestTag(ctx context.Context, repo *gogit.Repository, auth transport.AuthMethod) error {
	err := repo.FetchContext(ctx, &gogit.FetchOptions{RemoteName: "origin", Tags: gogit.AllTags, Auth: auth, Force: true,
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"}})
	if err != nil && !errors.Is(err, gogit.NoErrAlreadyUpToDate) {
		return fmt.Errorf("fetching tags of %s: %w", redact(r.URL), err)
	}
	start, err := remoteHead(ctx, repo, auth)
	if err != nil {
		return err
	}
	tag, h, err := latestTagOf(repo, start)
	if err != nil {
		return err
	}
	if tag == "" {
		return fmt.Errorf("no tags found for repo: %v", redact(r.URL))
	}
	r.lastPull = time.Now()
	if tag == r.latestTag {
		return nil
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.Checkout(&gogit.CheckoutOptions{Hash: h, Force: true}); err != nil {
		return fmt.Errorf("checking out tag %s: %w", tag, err)
	}
	r.latestTag = tag
	r.lastCommit = h.String()
	return nil
}

// remoteHead asks the remote for the commit its HEAD points at.
func remoteHead(ctx context.Context, repo *gogit.Repository, auth transport.AuthMethod) (plumbing.Hash, error) {
	rem, err := repo.Remote("origin")
	if err != nil {
		return plumbing.ZeroHash, err
	}
	refs, err := rem.ListContext(ctx, &gogit.ListOptions{Auth: auth})
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("listing the remote's references: %w", err)
	}
	byName := map[plumbing.ReferenceName]*plumbing.Reference{}
	for _, ref := range refs {
		byName[ref.Name()] = ref
	}
	ref := byName[plumbing.HEAD]
	for i := 0; ref != nil && ref.Type() == plumbing.SymbolicReference && i < 5; i++ {
		ref = byName[ref.Target()]
	}
	if ref == nil || ref.Type() != plumbing.HashReference {
		return plumbing.ZeroHash, errors.New("the remote has no HEAD")
	}
	return ref.Hash(), nil
}

// latestTagOf finds the newest tag on the history from start (git
// describe --abbrev=0 --tags): the first tagged commit in committer time
// order; of several tags on it, the greatest name.
func latestTagOf(repo *gogit.Repository, start plumbing.Hash) (string, plumbing.Hash, error) {
	byCommit := map[plumbing.Hash][]string{}
	tags, err := repo.Tags()
	if err != nil {
		return "", plumbing.ZeroHash, err
	}
	err = tags.ForEach(func(ref *plumbing.Reference) error {
		h := ref.Hash()
		if to, err := repo.TagObject(h); err == nil {
			c, err := to.Commit()
			if err != nil {
				return nil // a tag of something else than a commit
			}
			h = c.Hash
		}
		byCommit[h] = append(byCommit[h], ref.Name().Short())
		return nil
	})
	if err != nil {
		return "", plumbing.ZeroHash, err
	}
	commits, err := repo.Log(&gogit.LogOptions{From: start, Order: gogit.LogOrderCommitterTime})
	if err != nil {
		return "", plumbing.ZeroHash, err
	}
	var found string
	var at plumbing.Hash
	err = commits.ForEach(func(c *object.Commit) error {
		if names := byCommit[c.Hash]; len(names) > 0 {
			sort.Strings(names)
			found, at = names[len(names)-1], c.Hash
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return "", plumbing.ZeroHash, err
	}
	return found, at, nil
}

var errStop = errors.New("stop")

func cleanDir(path string) {
	entries, err := os.ReadDir(path)
	if err != nil {
		return
	}
	for _, e := range entries {
		os.RemoveAll(filepath.Join(path, e.Name()))
	}
}

// redact removes a password from a URL for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}
