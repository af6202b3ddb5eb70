// Package spawn starts child processes whose SysProcAttr.Pdeathsig is
// meant as "when this program dies". The kernel sends the parent-death
// signal when the thread that created the child exits (prctl(2),
// PR_SET_PDEATHSIG: "the parent thread"; go.dev/issue/27505), and the Go
// runtime ends any thread whose goroutine returns while locked to it, as
// code that switches a thread into a network namespace does (the netns
// sandbox, internal/testnet). A child forked from such a thread would be
// killed at a random moment. Start forks every child from one thread
// locked for the life of the program, which therefore never ends.
//
// It owns that one thread; it does not wait for, signal or reap children.
package spawn

import (
	"os/exec"
	"runtime"
	"sync"
)

type request struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	once     sync.Once
	requests chan request
)

// Start is cmd.Start run on the program's spawning thread. The caller
// waits for the process as usual (cmd.Wait).
func Start(cmd *exec.Cmd) error {
	once.Do(func() {
		requests = make(chan request)
		go func() {
			// Never unlocked: the thread lives as long as the program.
			runtime.LockOSThread()
			for r := range requests {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	requests <- request{cmd, done}
	return <-done
}
