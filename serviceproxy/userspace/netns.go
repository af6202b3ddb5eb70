package userspace

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// nsRunner runs functions with the OS thread in a network namespace, so
// that the sockets they create belong to it (a socket stays in the
// namespace it was created in). Without a path it runs them in place.
//
// A few worker goroutines stay locked in the namespace; when all are
// busy (a slow dial) a one-off goroutine enters it instead. A goroutine
// that entered a namespace never unlocks its thread, so the runtime
// discards that thread when the goroutine ends.
type nsRunner struct {
	fd   int // -1 without a namespace
	work chan nsJob
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type nsJob struct {
	f    func() error
	done chan error
}

const nsWorkers = 4

func newNSRunner(path string) (*nsRunner, error) {
	r := &nsRunner{fd: -1}
	if path == "" {
		return r, nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	r.fd = fd
	r.work = make(chan nsJob)
	r.stop = make(chan struct{})
	// Enter once synchronously so a bad path fails New, not every dial.
	if err := r.oneShot(func() error { return nil }); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netns %s: %w", path, err)
	}
	for range nsWorkers {
		r.wg.Add(1)
		go r.worker()
	}
	return r, nil
}

func (r *nsRunner) enter() error {
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	return unix.Setns(r.fd, unix.CLONE_NEWNET)
}

func (r *nsRunner) worker() {
	defer r.wg.Done()
	if err := r.enter(); err != nil {
		return
	}
	for {
		select {
		case <-r.stop:
			return
		case j := <-r.work:
			j.done <- j.f()
		}
	}
}

func (r *nsRunner) oneShot(f func() error) error {
	done := make(chan error, 1)
	go func() {
		if err := r.enter(); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		done <- f()
	}()
	return <-done
}

// do runs f in the namespace.
func (r *nsRunner) do(f func() error) error {
	if r == nil || r.fd < 0 {
		return f()
	}
	j := nsJob{f: f, done: make(chan error, 1)}
	select {
	case r.work <- j:
		return <-j.done
	case <-r.stop:
		return errors.New("proxier closed")
	default:
		return r.oneShot(f)
	}
}

func (r *nsRunner) close() {
	if r == nil || r.fd < 0 {
		return
	}
	r.once.Do(func() {
		close(r.stop)
		r.wg.Wait()
		unix.Close(r.fd)
	})
}
