package main

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// scope is testnet.TB for a program: it collects clean-ups and runs them
// last first on close; Fatalf and Skipf panic with a scopeStop that run
// turns back into an error.
type scope struct {
	log io.Writer // Logf output; nil: dropped

	mu       sync.Mutex
	cleanups []func()
	errs     []error
}

type scopeStop struct{ err error }

func newScope(log io.Writer) *scope { return &scope{log: log} }

func (s *scope) Helper() {}

func (s *scope) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

func (s *scope) Errorf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Errorf(format, args...))
}

func (s *scope) Fatalf(format string, args ...any) {
	panic(scopeStop{fmt.Errorf(format, args...)})
}

func (s *scope) Skipf(format string, args ...any) {
	panic(scopeStop{fmt.Errorf("skipped: "+format, args...)})
}

func (s *scope) Logf(format string, args ...any) {
	if s.log != nil {
		fmt.Fprintf(s.log, format+"\n", args...)
	}
}

// run calls f and turns a Fatalf/Skipf (or any panic) in the calling
// goroutine into an error.
func (s *scope) run(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if st, ok := r.(scopeStop); ok {
				err = st.err
				return
			}
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// close runs the clean-ups, last registered first, each even when an
// earlier one panicked, and returns the errors they and Errorf reported.
func (s *scope) close() error {
	for {
		s.mu.Lock()
		n := len(s.cleanups)
		if n == 0 {
			errs := s.errs
			s.errs = nil
			s.mu.Unlock()
			return errors.Join(errs...)
		}
		f := s.cleanups[n-1]
		s.cleanups = s.cleanups[:n-1]
		s.mu.Unlock()
		if err := s.run(func() error { f(); return nil }); err != nil {
			s.Errorf("clean-up: %v", err)
		}
	}
}
