package testnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces live (as with "ip netns").
const NetnsDir = "/run/netns"

// Prefix starts the name of every namespace this package creates.
const Prefix = "sbt-"

// createNamed creates a new network namespace bound to NetnsDir/name.
// owned is set as soon as the file exists, so a clean-up registered
// before the call removes exactly what this call made (and never a
// namespace of the same name that it did not create).
func createNamed(name string, owned *atomic.Bool) error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", NetnsDir, err)
	}
	path := filepath.Join(NetnsDir, name)
	errc := make(chan error, 1)
	go func() {
		// The thread is locked and never unlocked: it ends up in the new
		// namespace, and the runtime destroys it when this goroutine
		// returns instead of handing it to other goroutines.
		runtime.LockOSThread()
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			errc <- fmt.Errorf("create namespace file: %w", err)
			return
		}
		owned.Store(true)
		f.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount %s on %s: %w", src, path, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// deleteNamed unmounts and removes a namespace file. The kernel destroys
// the namespace (and every link in it) once nothing else refers to it.
func deleteNamed(path string) error {
	var errs []error
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount %s: %w", path, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ownerPID returns the process id encoded in a namespace name made by
// this package ("sbt-<pid>x<random>-<name>"), or 0.
func ownerPID(name string) int {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0
	}
	pid, _, ok := strings.Cut(rest, "x")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// sweepGrace keeps Sweep away from a namespace whose owner seems gone
// but that was made moments ago (e.g. by a process in another PID
// namespace that shares /run/netns).
const sweepGrace = 30 * time.Second

// Sweep removes namespaces under NetnsDir named Prefix+"*" that a crashed
// or killed run left behind: those older than maxAge, and those whose
// owning process (encoded in the name) no longer exists. Namespaces of the
// calling process are never removed. It returns the names it removed.
func Sweep(maxAge time.Duration) ([]string, error) {
	return sweep(time.Now(), maxAge, nil)
}

// sweep is Sweep as seen at time now, limited to the names only accepts
// (all when only is nil).
func sweep(now time.Time, maxAge time.Duration, only func(name string) bool) ([]string, error) {
	entries, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, Prefix) || (only != nil && !only(name)) {
			continue
		}
		pid := ownerPID(name)
		if pid == os.Getpid() {
			continue
		}
		path := filepath.Join(NetnsDir, name)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			continue
		}
		age := now.Sub(time.Unix(st.Ctim.Unix()))
		stale := age > maxAge || (pid > 0 && age > sweepGrace && !processAlive(pid))
		if !stale {
			continue
		}
		if err := deleteNamed(path); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}
