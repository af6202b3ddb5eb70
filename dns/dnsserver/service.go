package dnsserver

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// Service runs the current Instance of a Corefile and replaces it on
// reload (SIGHUP, the reload plugin): the new instance is built and
// started before the old one stops, taking over its sockets, so no query
// is dropped; when the new Corefile fails, the old instance keeps running
// and the error is returned and logged.
type Service struct {
	filename string
	opts     Options

	mu      sync.Mutex // serializes Start, Reload and Stop
	cur     *Instance
	stopped bool
}

// NewService returns a service for the Corefile named filename (read
// again by ReloadFile and the reload plugin).
func NewService(filename string, opts Options) *Service {
	return &Service{filename: filename, opts: opts}
}

// Filename is the Corefile's path.
func (s *Service) Filename() string { return s.filename }

// Start builds an instance from corefile and starts it.
func (s *Service) Start(corefile []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil || s.stopped {
		return errors.New("dnsserver: service already started")
	}
	inst, err := NewInstance(s.filename, corefile, s.opts)
	if err != nil {
		return err
	}
	inst.svc = s
	if err := inst.Start(); err != nil {
		return err
	}
	s.cur = inst
	return nil
}

// Instance returns the running instance (nil before Start).
func (s *Service) Instance() *Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Reload replaces the running instance with one built from corefile.
func (s *Service) Reload(corefile []byte) error {
	return s.reloadFrom(nil, corefile)
}

// ReloadFile reads the Corefile again and reloads it.
func (s *Service) ReloadFile() error {
	b, err := os.ReadFile(s.filename)
	if err != nil {
		s.log().Error("Corefile changed but reload failed", "err", err)
		return err
	}
	return s.Reload(b)
}

func (s *Service) log() *slog.Logger { return s.opts.Env.Log() }

// reloadFrom reloads when from is the running instance (or nil).
func (s *Service) reloadFrom(from *Instance, corefile []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || s.cur == nil {
		return errors.New("dnsserver: service not running")
	}
	if from != nil && from != s.cur {
		return errors.New("dnsserver: instance was already replaced")
	}
	old := s.cur
	inst, err := NewInstance(s.filename, corefile, s.opts)
	if err == nil {
		inst.svc = s
		err = inst.Start()
	}
	if err != nil {
		err = fmt.Errorf("reload: %w", err)
		s.log().Error("Corefile changed but reload failed; the running configuration stays", "err", err)
		return err
	}
	s.cur = inst
	if err := old.stop(false); err != nil {
		s.log().Error("stopping the replaced instance", "err", err)
	}
	s.log().Info("Reloaded Corefile", "file", s.filename)
	return nil
}

// Stop stops the running instance for good (OnShutdown and
// OnFinalShutdown hooks run; health's lameduck delays it).
func (s *Service) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	if s.cur == nil {
		return nil
	}
	return s.cur.Stop()
}
