package standalone

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// stateLock is the exclusive lock a running node holds on its state
// directory, so that two nodes never share one. The kernel releases it
// when the process ends, however it ends: a crash leaves no stale lock.
type stateLock struct {
	f    *os.File
	path string
}

// lockStateDir creates dir (0700) and takes its lock, or says which
// process holds it.
func lockStateDir(dir string) (*stateLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, "lock")
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("state directory lock %s: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			b, _ := os.ReadFile(path)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				pid := strings.TrimSpace(string(b))
				return nil, fmt.Errorf("another switchboard node (pid %s) is running with state directory %s; stop it, or pass --state-dir", pid, dir)
			}
			return nil, fmt.Errorf("state directory lock %s: %w", path, err)
		}
		// The holder before us removes the file when it stops; if it did
		// so between our open and our flock, we hold a lock on a file
		// nobody else can see: start again on the new file.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) != nil || unix.Stat(path, &now) != nil || held.Ino != now.Ino {
			f.Close()
			if attempt > 10 {
				return nil, fmt.Errorf("state directory lock %s keeps changing", path)
			}
			continue
		}
		if err := f.Truncate(0); err == nil {
			_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
		return &stateLock{f: f, path: path}, nil
	}
}

// release removes the lock file, then drops the lock (a node starting at
// the same moment notices the removal, see lockStateDir).
func (l *stateLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = os.Remove(l.path)
	_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	_ = l.f.Close()
	l.f = nil
}
