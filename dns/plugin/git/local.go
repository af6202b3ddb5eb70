package git

import (
	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// go-git fetches file:// repositories (and local paths) by running the
// git-upload-pack binary. This plugin needs no git binary: it serves
// local repositories in process instead, bare or with a worktree.
func init() {
	client.InstallProtocol("file", server.NewClient(localLoader{}))
}

// localLoader opens the repository at an endpoint's path: a bare one
// (with "config" at its top) or the ".git" directory of a worktree.
type localLoader struct{}

func (localLoader) Load(ep *transport.Endpoint) (storer.Storer, error) {
	fs := osfs.New(ep.Path)
	if _, err := fs.Stat("config"); err != nil {
		if _, err := fs.Stat(".git"); err != nil {
			return nil, transport.ErrRepositoryNotFound
		}
		fs, err = fs.Chroot(".git")
		if err != nil {
			return nil, err
		}
		if _, err := fs.Stat("config"); err != nil {
			return nil, transport.ErrRepositoryNotFound
		}
	}
	return filesystem.NewStorage(fs, cache.NewObjectLRUDefault()), nil
}
