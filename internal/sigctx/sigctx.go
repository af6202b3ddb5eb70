// Package sigctx owns how Switchboard's long-running commands (up, dns,
// kube-proxy) stop on a signal: the first SIGINT or SIGTERM cancels a
// context so the command stops in order; a second one exits at once.
package sigctx

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Context returns a context cancelled by the first SIGINT or SIGTERM; a
// second signal exits the process at once with status 130. stop releases
// the signal handler (and cancels the context); it may be called more
// than once.
func Context() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
		case <-done:
			return
		}
		cancel()
		select {
		case <-ch:
			fmt.Fprintln(os.Stderr, "second signal: exiting now")
			os.Exit(130)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel()
		})
	}
}
