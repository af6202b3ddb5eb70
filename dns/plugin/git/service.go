package git

import "time"

// service pulls a repository every interval until stopped.
type service struct {
	stop chan struct{}
	done chan struct{}
}

// start begins the periodic pull; an interval <= 0 disables it ("An
// interval of -1 disables periodic pull").
func (r *Repo) start() *service {
	s := &service{stop: make(chan struct{}), done: make(chan struct{})}
	if r.Interval <= 0 {
		r.logger.Warn("git: interval negative, periodic pull not enabled", "repo", redact(r.URL))
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(r.Interval)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if err := r.Pull(); err != nil {
					r.logger.Warn("git: pull failed", "repo", redact(r.URL), "error", err)
				}
			}
		}
	}()
	return s
}

// halt stops the periodic pull and waits for a pull in progress.
func (s *service) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
