package testnet

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
)

type atomicBool struct{ atomic.Bool }

// fakeTB stands in for a *testing.T where a test needs to observe a
// Fatalf or run clean-ups early (benchmark iterations).
type fakeTB struct {
	testing.TB
	cleanups []func()
	fatal    string
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Errorf(format string, args ...any) { f.TB.Errorf(format, args...) }
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

// runFake runs body with a fakeTB on its own goroutine (so Fatalf can end
// it) and then the clean-ups it registered.
func runFake(t testing.TB, body func(*fakeTB)) *fakeTB {
	ft := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(ft)
	}()
	<-done
	ft.runCleanups()
	return ft
}
