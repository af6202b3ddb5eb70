package manifests

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDirs lists the directories whose changes matter: every directory
// under a directory path (recursively unless told not to, hidden ones
// excepted), and the parent of each file path and of each path that does
// not exist yet (so that its creation, and editors' rename-saves, are
// seen).
func watchDirs(paths []string, recursive bool) []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, p := range paths {
		if p == "-" {
			continue
		}
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() {
			parent := filepath.Dir(p)
			if pst, perr := os.Stat(parent); perr == nil && pst.IsDir() {
				add(parent)
			}
			continue
		}
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				if d != nil && d.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if path != p && (!recursive || strings.HasPrefix(d.Name(), ".")) {
				return fs.SkipDir
			}
			add(path)
			return nil
		})
	}
	return dirs
}

// Run watches the paths (fsnotify, recursively, picking up new
// subdirectories) and reloads after each burst of changes has settled for
// Options.Debounce: changed files are re-read, objects whose documents
// changed are applied again, and objects whose documents (or files) are
// gone are deleted. It returns when ctx is done (nil) or when the watcher
// cannot start.
func (s *Source) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	// On return: stop the watcher and any pod-recreation waiter.
	defer s.wg.Wait()
	defer s.stop()
	defer w.Close()

	watched := map[string]bool{}
	syncWatches := func(dirs []string) {
		want := map[string]bool{}
		for _, d := range dirs {
			want[d] = true
			if !watched[d] {
				if err := w.Add(d); err != nil {
					s.log.Warn("cannot watch a directory", "dir", d, "error", err)
					continue
				}
				watched[d] = true
			}
		}
		for d := range watched {
			if !want[d] {
				_ = w.Remove(d)
				delete(watched, d)
			}
		}
	}

	// Watch first, then catch up (debounced, like any change) with
	// whatever changed since Load.
	syncWatches(watchDirs(s.paths, !s.opts.NotRecursive))
	dirty := map[string]bool{}
	full := true
	var timer *time.Timer
	var fire <-chan time.Time
	var first time.Time
	schedule := func() {
		now := time.Now()
		if fire == nil {
			first = now
		}
		wait := s.opts.Debounce
		// A file that keeps changing must not hold reloads off forever.
		if limit := first.Add(10 * s.opts.Debounce); now.Add(wait).After(limit) {
			wait = max(limit.Sub(now), 0)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Stop()
			timer.Reset(wait)
		}
		fire = timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	schedule()

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			dirty[filepath.Clean(ev.Name)] = true
			schedule()
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				full = true
				schedule()
				continue
			}
			s.log.Warn("file watch error", "error", err)
		case <-s.kick:
			s.mu.Lock()
			s.reconcile(ctx)
			s.mu.Unlock()
		case <-fire:
			fire = nil
			s.mu.Lock()
			syncWatches(s.refresh(dirty, full))
			s.reconcile(ctx)
			s.mu.Unlock()
			dirty, full = map[string]bool{}, false
		}
	}
}
